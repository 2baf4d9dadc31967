//! Dynamic configuration files (dynamic reconfiguration), written exactly as ZooKeeper 3.8
//! writes them. Pure: texts and names in, texts and names out; the server crate does the I/O.
//!
//! The files next to a static `zoo.cfg`:
//! - `zoo.cfg.bak`: a verbatim copy of a single-file configuration, made at boot when
//!   reconfigEnabled and the configuration is replicated and has no `dynamicConfigFile`;
//! - `zoo.cfg.dynamic.<hex version>`: a configuration once it is active, with only its
//!   `server.`/`group.`/`weight.` lines, sorted, no `version=` line (the version is the file
//!   name's suffix) and no final newline; old ones are never deleted;
//! - `zoo.cfg.dynamic.next`: a configuration proposed and not yet active, the same lines plus
//!   `version=<hex>`, sorted; deleted once that configuration is active;
//! - `zoo.cfg` itself, rewritten each time a configuration becomes active: its keys in Java
//!   Properties hash order without the membership, `dynamicConfigFile`, `peerType` (and the
//!   client port keys when the active configuration gives this server its client address),
//!   then `dynamicConfigFile=<absolute path of the new dynamic file>`.

use crate::java_props::{java_properties_order, java_string_cmp, load_java_properties};
use crate::{QuorumConfig, QuorumSystem};
use std::path::{Path, PathBuf};

/// The suffix of the proposed-configuration file.
pub const NEXT_SUFFIX: &str = ".dynamic.next";

fn with_suffix(static_cfg: &Path, suffix: &str) -> PathBuf {
    let mut name = static_cfg.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `<static>.dynamic.<hex version>`: where an active configuration is written.
pub fn dynamic_file_path(static_cfg: &Path, version: i64) -> PathBuf {
    with_suffix(static_cfg, &format!(".dynamic.{version:x}"))
}

/// `<static>.dynamic.next`: where a proposed configuration is written.
pub fn next_file_path(static_cfg: &Path) -> PathBuf {
    with_suffix(static_cfg, NEXT_SUFFIX)
}

/// `<static>.bak`: the copy of a single-file configuration made before its first split.
pub fn backup_file_path(static_cfg: &Path) -> PathBuf {
    with_suffix(static_cfg, ".bak")
}

/// The version a dynamic file's name carries: what follows its last '.', read as a signed
/// 64-bit hexadecimal number (`zoo.cfg.dynamic.100000000` → 0x100000000). None when that is
/// not a number (`zoo.cfg.dynamic`): the configuration then has version 0.
pub fn version_from_file_name(name: &str) -> Option<i64> {
    let dot = name.rfind('.')?;
    i64::from_str_radix(&name[dot + 1..], 16).ok()
}

/// Whether the static file should lose clientPort/clientPortAddress when `config` becomes
/// active on server `my_id`: when that configuration gives it a client address of its own.
/// A legacy server line (no client part) takes its address from the static file, which keeps it.
pub fn drop_client_port_for(config: &QuorumConfig, my_id: u64) -> bool {
    config
        .members
        .get(&my_id)
        .is_some_and(|spec| spec.client.is_some())
}

/// The static file's new text once the configuration in `dynamic_file_abs_path` is active.
///
/// `original_text` is the static file as it is now (a single file with `server.N` lines or an
/// already split one). Its properties are reloaded as java.util.Properties does, written back
/// one `key=value` line each in the Properties' hash order, without the keys starting with
/// `server.`, `group`, `weight`, `dynamicConfigFile` or `peerType`, nor, when
/// `drop_client_port`, those starting with `clientPort` (which includes clientPortAddress and
/// clientPortListenBacklog, as in ZooKeeper); then `dynamicConfigFile=<path>` is appended.
/// Keys and values are trimmed. Errors describe a malformed `\uXXXX` escape.
pub fn static_text_after_split(
    original_text: &str,
    dynamic_file_abs_path: &str,
    drop_client_port: bool,
) -> Result<String, String> {
    let props = load_java_properties(original_text)?;
    let keys: Vec<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
    let mut out = String::new();
    for i in java_properties_order(&keys) {
        let key = props[i].0.trim();
        let dropped = [
            "server.",
            "group",
            "weight",
            "dynamicConfigFile",
            "peerType",
        ]
        .iter()
        .any(|p| key.starts_with(p))
            || (drop_client_port && key.starts_with("clientPort"));
        if dropped {
            continue;
        }
        out.push_str(key);
        out.push('=');
        out.push_str(props[i].1.trim());
        out.push('\n');
    }
    out.push_str("dynamicConfigFile=");
    out.push_str(dynamic_file_abs_path);
    out.push('\n');
    Ok(out)
}

/// The lines of a configuration as ZooKeeper's QuorumVerifier prints them: server lines, then
/// for a hierarchical system group and weight lines. A group lists its servers in the order
/// of ZooKeeper's HashMap of server ids (by id for ids below the table size).
fn config_lines(config: &QuorumConfig) -> Vec<String> {
    let mut lines: Vec<String> = config
        .members
        .values()
        .map(|spec| format!("server.{}={}", spec.id, spec.to_config_value()))
        .collect();
    if let QuorumSystem::Hierarchical { groups, weights } = &config.system {
        let all_sids: Vec<u64> = groups.values().flatten().copied().collect();
        let order = java_long_hashmap_order(&all_sids);
        for (gid, sids) in groups {
            let mut members: Vec<u64> = sids.iter().copied().collect();
            members.sort_by_key(|sid| order(*sid));
            let list: Vec<String> = members.iter().map(u64::to_string).collect();
            lines.push(format!("group.{gid}={}", list.join(":")));
        }
        for (sid, w) in weights {
            lines.push(format!("weight.{sid}={w}"));
        }
    }
    lines
}

/// The iteration position of a Long key in a java.util.HashMap holding `keys`: by bin
/// (`hash ^ hash >>> 16` modulo the table size, 16 doubled while more than 3/4 full), then by
/// value inside a bin (ZooKeeper inserts in its Properties order; ids that collide in a bin
/// are rare in practice).
fn java_long_hashmap_order(keys: &[u64]) -> impl Fn(u64) -> (u64, u64) {
    let mut capacity: u64 = 16;
    while keys.len() as u64 > capacity * 3 / 4 {
        capacity *= 2;
    }
    move |key: u64| {
        let h = (key ^ (key >> 32)) as u32;
        let spread = h ^ (h >> 16);
        (u64::from(spread) & (capacity - 1), key)
    }
}

fn sorted_joined(mut lines: Vec<String>) -> String {
    lines.sort_by(|a, b| java_string_cmp(a, b));
    lines.join("\n")
}

/// The text of `<static>.dynamic.<hex version>`: the configuration's lines sorted as strings
/// (so group < server < weight, and server.10 < server.2), joined by newlines, without a
/// version line and without a final newline.
pub fn dynamic_file_text(config: &QuorumConfig) -> String {
    sorted_joined(config_lines(config))
}

/// The text of `<static>.dynamic.next`: as [`dynamic_file_text`] plus `version=<hex>` sorted
/// among the lines, without a final newline.
pub fn next_file_text(config: &QuorumConfig) -> String {
    let mut lines = config_lines(config);
    lines.push(format!("version={:x}", config.version));
    sorted_joined(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_properties;

    fn config(text: &str) -> QuorumConfig {
        QuorumConfig::from_properties(&parse_properties(text, "test").unwrap()).unwrap()
    }

    /// `cat -A` lines of the transcript back to bytes: `$` marks a line end; a last line
    /// without `$` had no final newline.
    fn from_cat_a(lines: &[&str]) -> String {
        let mut out = String::new();
        for line in lines {
            match line.strip_suffix('$') {
                Some(l) => {
                    out.push_str(l);
                    out.push('\n');
                }
                None => out.push_str(line),
            }
        }
        out
    }

    const F1_ORIGINAL: &[&str] = &[
        "tickTime=2000$",
        "initLimit=10$",
        "syncLimit=5$",
        "dataDir=/tmp/zkref-ens-12100/s1/data$",
        "reconfigEnabled=true$",
        "standaloneEnabled=false$",
        "4lw.commands.whitelist=*$",
        "admin.enableServer=true$",
        "admin.serverAddress=127.0.0.1$",
        "admin.serverPort=12161$",
        "DigestAuthenticationProvider.superDigest=super:pRrI+8tARV2hNsXgQkXL5qvmGJY=$",
        "server.1=127.0.0.1:12121:12141:participant;127.0.0.1:12101$",
        "server.2=127.0.0.1:12122:12142:participant;127.0.0.1:12102$",
        "server.3=127.0.0.1:12123:12143:participant;127.0.0.1:12103$",
    ];

    fn f1_static(dynamic: &str) -> String {
        from_cat_a(&[
            "dataDir=/tmp/zkref-ens-12100/s1/data$",
            "4lw.commands.whitelist=*$",
            "syncLimit=5$",
            "DigestAuthenticationProvider.superDigest=super:pRrI+8tARV2hNsXgQkXL5qvmGJY=$",
            "reconfigEnabled=true$",
            "standaloneEnabled=false$",
            "admin.enableServer=true$",
            "initLimit=10$",
            "tickTime=2000$",
            "admin.serverAddress=127.0.0.1$",
            "admin.serverPort=12161$",
            &format!("dynamicConfigFile={dynamic}$"),
        ])
    }

    #[test]
    fn f1_first_split_and_a_later_reconfig() {
        let original = from_cat_a(F1_ORIGINAL);
        assert_eq!(original.len(), 476);
        let d0 = "/tmp/zkref-ens-12100/s1/conf/zoo.cfg.dynamic.100000000";
        let split = static_text_after_split(&original, d0, true).unwrap();
        assert_eq!(split, f1_static(d0));
        assert_eq!(split.len(), 372);

        let mut first = config(&original.lines().skip(11).collect::<Vec<_>>().join("\n"));
        first.version = 0x1_0000_0000;
        let text = dynamic_file_text(&first);
        assert_eq!(
            text,
            from_cat_a(&[
                "server.1=127.0.0.1:12121:12141:participant;127.0.0.1:12101$",
                "server.2=127.0.0.1:12122:12142:participant;127.0.0.1:12102$",
                "server.3=127.0.0.1:12123:12143:participant;127.0.0.1:12103",
            ])
        );
        assert_eq!(text.len(), 176);
        assert_eq!(
            dynamic_file_path(
                Path::new("/tmp/zkref-ens-12100/s1/conf/zoo.cfg"),
                first.version
            ),
            PathBuf::from(d0)
        );

        // reconfig -remove 3 → version 100000002, the already split file is rewritten
        let mut second = first.clone();
        second.members.remove(&3);
        second.version = 0x1_0000_0002;
        let d2 = "/tmp/zkref-ens-12100/s1/conf/zoo.cfg.dynamic.100000002";
        assert_eq!(
            static_text_after_split(&split, d2, drop_client_port_for(&second, 1)).unwrap(),
            f1_static(d2)
        );
        let text = dynamic_file_text(&second);
        assert_eq!(
            text,
            from_cat_a(&[
                "server.1=127.0.0.1:12121:12141:participant;127.0.0.1:12101$",
                "server.2=127.0.0.1:12122:12142:participant;127.0.0.1:12102",
            ])
        );
        assert_eq!(text.len(), 117);
        // the removed server 3 writes the same files, and keeps no client port either
        assert!(!drop_client_port_for(&second, 3));
    }

    #[test]
    fn f3_legacy_client_port_stays_until_a_reconfig_gives_one() {
        let original = from_cat_a(&[
            "tickTime=2000$",
            "initLimit=10$",
            "syncLimit=5$",
            "dataDir=/tmp/zkref-ens-12200/s1/data$",
            "reconfigEnabled=true$",
            "standaloneEnabled=false$",
            "4lw.commands.whitelist=*$",
            "admin.enableServer=true$",
            "admin.serverAddress=127.0.0.1$",
            "admin.serverPort=12261$",
            "DigestAuthenticationProvider.superDigest=super:pRrI+8tARV2hNsXgQkXL5qvmGJY=$",
            "clientPort=12201$",
            "server.1=127.0.0.1:12221:12241$",
            "server.2=127.0.0.1:12222:12242$",
            "server.3=127.0.0.1:12223:12243$",
        ]);
        assert_eq!(original.len(), 409);
        let mut first = config(&original.lines().skip(12).collect::<Vec<_>>().join("\n"));
        first.version = 0x1_0000_0000;
        assert!(!drop_client_port_for(&first, 1));
        let d0 = "/tmp/zkref-ens-12200/s1/conf/zoo.cfg.dynamic.100000000";
        let split = static_text_after_split(&original, d0, false).unwrap();
        let expected = |client_port: bool, dynamic: &str| {
            let mut lines = vec![
                "dataDir=/tmp/zkref-ens-12200/s1/data$",
                "4lw.commands.whitelist=*$",
                "syncLimit=5$",
                "DigestAuthenticationProvider.superDigest=super:pRrI+8tARV2hNsXgQkXL5qvmGJY=$",
                "reconfigEnabled=true$",
                "standaloneEnabled=false$",
                "admin.enableServer=true$",
                "initLimit=10$",
                "tickTime=2000$",
            ];
            if client_port {
                lines.push("clientPort=12201$");
            }
            lines.extend(["admin.serverAddress=127.0.0.1$", "admin.serverPort=12261$"]);
            let last = format!("dynamicConfigFile={dynamic}$");
            lines.push(&last);
            from_cat_a(&lines)
        };
        assert_eq!(split, expected(true, d0));
        assert_eq!(split.len(), 389);
        let text = dynamic_file_text(&first);
        assert_eq!(
            text,
            from_cat_a(&[
                "server.1=127.0.0.1:12221:12241:participant$",
                "server.2=127.0.0.1:12222:12242:participant$",
                "server.3=127.0.0.1:12223:12243:participant",
            ])
        );
        assert_eq!(text.len(), 128);

        // reconfig -add server.1=…;127.0.0.1:12201 → 100000004
        let mut second = first.clone();
        second.members.insert(
            1,
            crate::ServerSpec::parse(1, "127.0.0.1:12221:12241:participant;127.0.0.1:12201")
                .unwrap(),
        );
        second.version = 0x1_0000_0004;
        let d4 = "/tmp/zkref-ens-12200/s1/conf/zoo.cfg.dynamic.100000004";
        assert!(drop_client_port_for(&second, 1));
        let rewritten = static_text_after_split(&split, d4, true).unwrap();
        assert_eq!(rewritten, expected(false, d4));
        assert_eq!(rewritten.len(), 372);
        let text = dynamic_file_text(&second);
        assert_eq!(
            text,
            from_cat_a(&[
                "server.1=127.0.0.1:12221:12241:participant;127.0.0.1:12201$",
                "server.2=127.0.0.1:12222:12242:participant$",
                "server.3=127.0.0.1:12223:12243:participant",
            ])
        );
        assert_eq!(text.len(), 144);
        // server 2 was not given a client port: its static file keeps clientPort
        assert!(!drop_client_port_for(&second, 2));
        let s2 = static_text_after_split(
            &original
                .replace("clientPort=12201", "clientPort=12202")
                .replace("s1/data", "s2/data")
                .replace("12261", "12262"),
            "/tmp/zkref-ens-12200/s2/conf/zoo.cfg.dynamic.100000004",
            false,
        )
        .unwrap();
        assert_eq!(
            s2,
            from_cat_a(&[
                "dataDir=/tmp/zkref-ens-12200/s2/data$",
                "4lw.commands.whitelist=*$",
                "syncLimit=5$",
                "DigestAuthenticationProvider.superDigest=super:pRrI+8tARV2hNsXgQkXL5qvmGJY=$",
                "reconfigEnabled=true$",
                "standaloneEnabled=false$",
                "admin.enableServer=true$",
                "initLimit=10$",
                "tickTime=2000$",
                "clientPort=12202$",
                "admin.serverAddress=127.0.0.1$",
                "admin.serverPort=12262$",
                "dynamicConfigFile=/tmp/zkref-ens-12200/s2/conf/zoo.cfg.dynamic.100000004$",
            ])
        );
    }

    #[test]
    fn f4_redundant_client_port_and_address_are_dropped_at_the_split() {
        let mut lines = F1_ORIGINAL.to_vec();
        lines.extend(["clientPort=12201$", "clientPortAddress=127.0.0.1$"]);
        let original = from_cat_a(&lines)
            .replace("12100", "12200")
            .replace("1216", "1226")
            .replace("1212", "1222")
            .replace("1214", "1224")
            .replace("1210", "1220");
        assert_eq!(original.len(), 521);
        let mut first = config(
            &original
                .lines()
                .skip(11)
                .take(3)
                .collect::<Vec<_>>()
                .join("\n"),
        );
        first.version = 0x1_0000_0000;
        assert!(drop_client_port_for(&first, 1));
        let d0 = "/tmp/zkref-ens-12200/s1/conf/zoo.cfg.dynamic.100000000";
        let split = static_text_after_split(&original, d0, true).unwrap();
        assert_eq!(
            split,
            f1_static(d0)
                .replace("12100", "12200")
                .replace("12161", "12261")
        );
        assert_eq!(split.len(), 372);
        assert_eq!(dynamic_file_text(&first).len(), 176);
    }

    #[test]
    fn f5_hand_written_dynamic_file_is_repointed() {
        let original = from_cat_a(&[
            "tickTime=2000$",
            "initLimit=10$",
            "syncLimit=5$",
            "dataDir=/tmp/zkref-ens-12200/s1/data$",
            "reconfigEnabled=true$",
            "standaloneEnabled=false$",
            "4lw.commands.whitelist=*$",
            "admin.enableServer=true$",
            "admin.serverAddress=127.0.0.1$",
            "admin.serverPort=12261$",
            "DigestAuthenticationProvider.superDigest=super:pRrI+8tARV2hNsXgQkXL5qvmGJY=$",
            "dynamicConfigFile=/tmp/zkref-ens-12200/s1/conf/zoo.cfg.dynamic$",
        ]);
        assert_eq!(original.len(), 362);
        assert_eq!(
            version_from_file_name("/tmp/zkref-ens-12200/s1/conf/zoo.cfg.dynamic"),
            None
        );
        let d0 = "/tmp/zkref-ens-12200/s1/conf/zoo.cfg.dynamic.100000000";
        assert_eq!(
            static_text_after_split(&original, d0, true).unwrap(),
            f1_static(d0)
                .replace("12100", "12200")
                .replace("12161", "12261")
        );
    }

    #[test]
    fn next_file_keeps_the_version_line_sorted_among_the_others() {
        let mut c = config(
            "server.1=127.0.0.1:12121:12141:participant;127.0.0.1:12101\n\
             server.2=127.0.0.1:12122:12142:participant;127.0.0.1:12102\n",
        );
        c.version = 0x1_0000_0002;
        assert_eq!(
            next_file_text(&c),
            "server.1=127.0.0.1:12121:12141:participant;127.0.0.1:12101\n\
             server.2=127.0.0.1:12122:12142:participant;127.0.0.1:12102\n\
             version=100000002"
        );
        assert_eq!(
            next_file_path(Path::new("conf/zoo.cfg")),
            PathBuf::from("conf/zoo.cfg.dynamic.next")
        );
        assert_eq!(
            backup_file_path(Path::new("conf/zoo.cfg")),
            PathBuf::from("conf/zoo.cfg.bak")
        );
    }

    #[test]
    fn lines_sort_as_strings_and_groups_come_first() {
        let mut c = config(
            "server.10=h:1:2;2181\nserver.2=h:3:4;2182\nserver.3=h:5:6:observer;2183\n\
             group.2=10\ngroup.1=2\nweight.10=3\n",
        );
        c.version = 0x20000000b;
        assert_eq!(
            dynamic_file_text(&c),
            "group.1=2\ngroup.2=10\n\
             server.10=h:1:2:participant;0.0.0.0:2181\n\
             server.2=h:3:4:participant;0.0.0.0:2182\n\
             server.3=h:5:6:observer;0.0.0.0:2183\n\
             weight.10=3\nweight.2=1"
        );
        assert!(next_file_text(&c).ends_with("version=20000000b\nweight.10=3\nweight.2=1"));
    }

    #[test]
    fn versions_come_from_the_name_suffix() {
        assert_eq!(
            version_from_file_name("zoo.cfg.dynamic.100000000"),
            Some(0x1_0000_0000)
        );
        assert_eq!(version_from_file_name("/a/zoo.cfg.dynamic.0"), Some(0));
        assert_eq!(version_from_file_name("zoo.cfg.dynamic.next"), None);
        assert_eq!(version_from_file_name("zoo.cfg.dynamic"), None);
        assert_eq!(version_from_file_name("zoo_cfg_dynamic"), None);
        // what follows the last dot is read, whatever it is (as ZooKeeper does)
        assert_eq!(version_from_file_name("dyn.cafe"), Some(0xcafe));
    }

    #[test]
    fn java_properties_syntax_as_zookeeper_3_8_rewrites_it() {
        // expected outputs produced by ZooKeeper 3.8.0's QuorumPeerConfig.editStaticConfig
        // on OpenJDK 17 from this very input
        let original = "# comment\n  ! comment 2\ntickTime 2000\ninitLimit:10\nsyncLimit = 5   \n\
dataDir=/var/lib/zk\\\n    /data\npeerType=observer\nclientPort=2181\nclientPortAddress=0.0.0.0\n\
clientPortListenBacklog=50\nkey\\ with\\ space=v\\u0041lue\ndup=1\ndup=2\nserver.1=a:1:2;3\n\
group.1=1\nweight.1=1\ndynamicConfigFile=/old/path\ngroupish=x\nweightless=y\n\
secureClientPort=2281\nadmin.serverPort=8080\nsnapCount=1000\n";
        let d = "/tmp/jv/zk/zoo.cfg.dynamic.1f";
        assert_eq!(
            static_text_after_split(original, d, true).unwrap(),
            "dataDir=/var/lib/zk/data\nsyncLimit=5\nkey with space=vAlue\ntickTime=2000\n\
initLimit=10\nsecureClientPort=2281\nsnapCount=1000\ndup=2\nadmin.serverPort=8080\n\
dynamicConfigFile=/tmp/jv/zk/zoo.cfg.dynamic.1f\n"
        );
        assert_eq!(
            static_text_after_split(original, d, false).unwrap(),
            "dataDir=/var/lib/zk/data\nsyncLimit=5\nclientPortAddress=0.0.0.0\n\
key with space=vAlue\ntickTime=2000\ninitLimit=10\nclientPort=2181\nsecureClientPort=2281\n\
snapCount=1000\nclientPortListenBacklog=50\ndup=2\nadmin.serverPort=8080\n\
dynamicConfigFile=/tmp/jv/zk/zoo.cfg.dynamic.1f\n"
        );
    }

    #[test]
    fn properties_details_zookeeper_keeps() {
        // duplicate keys keep their first place and last value; values are trimmed; a key
        // that merely starts with clientPort is dropped too; peerType is dropped
        let text = "b=1\na = 2  \nb=3\npeerType=observer\nclientPortListenBacklog=5\n";
        assert_eq!(
            static_text_after_split(text, "/x", true).unwrap(),
            "a=2\nb=3\ndynamicConfigFile=/x\n"
        );
        assert_eq!(
            static_text_after_split(text, "/x", false).unwrap(),
            "a=2\nb=3\nclientPortListenBacklog=5\ndynamicConfigFile=/x\n"
        );
    }
}
