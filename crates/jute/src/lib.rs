//! ZooKeeper's jute wire format: the codec, every record, opcodes and error codes.
//!
//! Pure data: no I/O. Decoding never panics; malformed input is a [`JuteError`].

pub mod codec;
pub mod consts;
pub mod records;
pub mod request;

pub use codec::{write_buffer, write_opt_buffer, write_str, Jute, JuteError, Reader, Result};
pub use consts::*;
pub use records::*;
