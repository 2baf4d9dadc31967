//! zoo.cfg in ZooKeeper's syntax: parsing with errors that name the file, the line and what
//! was expected, and the typed settings a server runs with.
//!
//! Pure: the caller reads the file; this crate only sees its text.

pub mod dynamic;
pub mod java_props;
mod jvm_flags;
mod properties;
pub mod quorum;
pub mod security_keys;
mod zoo_cfg;

pub use jvm_flags::{check_jvm_flags, system_properties};
pub use properties::{parse_properties, Property};
pub use quorum::{HostPort, LearnerType, QuorumConfig, QuorumSystem, ServerSpec};
pub use zoo_cfg::{FourLetterWhitelist, ZooCfg, DEFAULT_FOUR_LETTER_WORDS};

use std::fmt;

/// A configuration error, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}
