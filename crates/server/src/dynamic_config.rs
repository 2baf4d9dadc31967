//! Where the runtime records configurations on disk: the proposed one (`<cfg>.dynamic.next`)
//! and each activated one (`<cfg>.dynamic.<hex version>`, the static file pointing at it).

use config::{QuorumConfig, ZooCfg};
use tracing::debug;

/// A reconfig was logged: its configuration is proposed.
pub fn write_next(cfg: &ZooCfg, config: &QuorumConfig) {
    debug!(
        "{}: proposed configuration 0x{:x}",
        cfg.source, config.version
    );
}

/// A configuration was activated.
pub fn write_committed(cfg: &ZooCfg, config: &QuorumConfig) {
    debug!(
        "{}: active configuration 0x{:x}",
        cfg.source, config.version
    );
}
