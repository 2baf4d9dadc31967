//! The arguments of a reconfig request (joining, leaving, new members, version) validated
//! against a running configuration: a ZooKeeper error code or a new configuration, never a
//! panic; an accepted configuration always prints and parses back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;
use zab::reconfig::{next_config, parse_config_text, ReconfigContext, ReconfigRequest};

const ACTIVE: &str = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n\
server.3=127.0.0.1:2890:3890:participant;127.0.0.1:2183\n\
server.4=127.0.0.1:2891:3891:observer;127.0.0.1:2184\n\
version=100000000";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // fields separated by NUL: joining, leaving, new members, and which ones are present
    let mut parts = text.split('\0');
    let joining = parts.next().map(str::to_owned);
    let leaving = parts.next().map(str::to_owned);
    let members = parts.next().map(str::to_owned);
    let flags = data.first().copied().unwrap_or(0);
    let active = parse_config_text(ACTIVE).expect("the fixture parses");
    let synced: BTreeSet<u64> = [1, 2, 3, 4, 5].into_iter().collect();
    let request = ReconfigRequest {
        joining: joining.filter(|_| flags & 1 != 0),
        leaving: leaving.filter(|_| flags & 2 != 0),
        new_members: members.filter(|_| flags & 4 != 0),
        from_config: if flags & 8 != 0 { 0x1_0000_0000 } else { -1 },
    };
    let context = ReconfigContext {
        active: &active,
        last_seen: &active,
        standalone_enabled: flags & 16 != 0,
        synced: &synced,
    };
    if let Ok(next) = next_config(&context, &request) {
        let again =
            parse_config_text(&next.to_config_text()).expect("an accepted config parses back");
        assert_eq!(again.members, next.members);
    }
});
