//! Four-letter words, answered on the client port in ZooKeeper's formats.

use crate::core::ServerCore;
use crate::session::ConnId;
use std::fmt::Write;

/// The version string zkrs reports (`srvr`, `envi`); kazoo and others parse the number.
pub const VERSION: &str = concat!("3.8.0-zkrs-", env!("CARGO_PKG_VERSION"));

/// The four-letter words, as the int a client sends instead of a packet length.
pub fn is_four_letter_word(first4: [u8; 4]) -> Option<String> {
    let word = std::str::from_utf8(&first4).ok()?;
    config::DEFAULT_FOUR_LETTER_WORDS
        .contains(&word)
        .then(|| word.to_owned())
}

pub fn run(core: &mut ServerCore, _conn: ConnId, word: &str) -> String {
    if !core.cfg.four_letter_whitelist.allows(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    let mut out = String::new();
    match word {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str("rw"),
        "srvr" | "stat" => {
            let _ = writeln!(
                out,
                "Zookeeper version: {VERSION}, built on {}",
                env!("CARGO_PKG_VERSION")
            );
            if word == "stat" {
                out.push_str("Clients:\n");
                for c in core.conns.values() {
                    let _ = writeln!(
                        out,
                        " /{}[{}](queued=0,recved={},sent={})",
                        c.remote, 1, c.stats.received, c.stats.sent
                    );
                }
                out.push('\n');
            }
            let s = &core.stats;
            let _ = writeln!(
                out,
                "Latency min/avg/max: {}/{}/{}",
                s.min(),
                s.avg(),
                s.max_latency
            );
            let _ = writeln!(out, "Received: {}", s.packets_received);
            let _ = writeln!(out, "Sent: {}", s.packets_sent);
            let _ = writeln!(out, "Connections: {}", core.conns.len());
            let _ = writeln!(out, "Outstanding: 0");
            let _ = writeln!(out, "Zxid: 0x{:x}", core.last_zxid());
            let _ = writeln!(out, "Mode: standalone");
            let _ = writeln!(out, "Node count: {}", core.tree.node_count());
        }
        "srst" => {
            core.stats.reset();
            out.push_str("Server stats reset.\n");
        }
        "crst" => {
            for c in core.conns.values_mut() {
                c.stats.reset();
            }
            out.push_str("Connection stats reset.\n");
        }
        _ => {
            let _ = writeln!(out, "{word} is not implemented yet");
        }
    }
    out
}
