//! zoo.cfg, dynamic configuration files, `.next` files and the configuration text of
//! /zookeeper/config and election notifications: errors, never panics.
#![no_main]
use config::ZooCfg;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(cfg) = ZooCfg::parse(&text, "fuzz.cfg") {
        let _ = cfg.client_address();
        if let Some(q) = &cfg.quorum {
            // what the server prints must parse back to the same membership
            let again = zab::reconfig::parse_config_text(&q.to_config_text())
                .expect("a configuration's own text parses");
            assert_eq!(again.members, q.members);
        }
    }
    let _ = ZooCfg::parse_next_file(&text, "fuzz.cfg.dynamic.next");
    let _ = zab::reconfig::parse_config_text(&text);
    let _ = config::parse_properties(&text, "fuzz.properties");
});
