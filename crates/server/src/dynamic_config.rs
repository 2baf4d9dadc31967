//! Where the runtime records configurations on disk: the proposed one (`<cfg>.dynamic.next`)
//! and each activated one (`<cfg>.dynamic.<hex version>`, the static file pointing at it).
//! The file formats and the writing are in [`crate::dynamic_files`].

use config::{QuorumConfig, ZooCfg};

/// A reconfig was logged (or NEWLEADER brought a configuration): it is proposed.
pub fn write_next(cfg: &ZooCfg, config: &QuorumConfig) {
    crate::dynamic_files::on_proposed(cfg, config);
}

/// A configuration was activated.
pub fn write_committed(cfg: &ZooCfg, my_id: u64, config: &QuorumConfig) {
    crate::dynamic_files::on_activated(cfg, my_id, config);
}
