//! An ensemble's configuration as a value: its members (`server.N=` lines), its quorum system
//! (majority, or hierarchical groups and weights) and its version (the zxid that created it).
//!
//! Election, commit and reconfiguration all ask one question of it:
//! [`QuorumConfig::contains_quorum`].

use crate::Property;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnerType {
    Participant,
    Observer,
}

/// A host and a port, as written in a server line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// One `server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerSpec {
    pub id: u64,
    pub quorum: HostPort,
    pub election_port: u16,
    pub role: LearnerType,
    pub client: Option<HostPort>,
}

/// `host:port` with the host as Java's `InetSocketAddress.getHostString()` gives it for an
/// address built from that text: a host name as written, an IPv6 literal in full
/// uncompressed form (an IPv4-mapped one as IPv4), in brackets when it contains ':'.
fn java_host_port(hp: &HostPort) -> String {
    let host = match hp.host.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6
                .segments()
                .iter()
                .map(|s| format!("{s:x}"))
                .collect::<Vec<_>>()
                .join(":"),
        },
        Err(_) => hp.host.clone(),
    };
    if host.contains(':') {
        format!("[{host}]:{}", hp.port)
    } else {
        format!("{host}:{}", hp.port)
    }
}

/// Splits `host:port:port…`, keeping `[ipv6]` hosts whole.
fn host_and_ports(s: &str) -> Result<Vec<String>, String> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| format!("{s}: unterminated [ in an IPv6 address"))?;
        let host = &rest[..end];
        let tail = &rest[end + 1..];
        let mut parts = vec![host.to_owned()];
        if !tail.is_empty() {
            let tail = tail
                .strip_prefix(':')
                .ok_or_else(|| format!("{s}: expected ':' after ']'"))?;
            parts.extend(tail.split(':').map(str::to_owned));
        }
        Ok(parts)
    } else {
        Ok(s.split(':').map(str::to_owned).collect())
    }
}

fn port(s: &str, what: &str, line: &str) -> Result<u16, String> {
    s.trim()
        .parse::<u16>()
        .map_err(|_| format!("{line}: {what} {s:?} is not a port number"))
}

impl ServerSpec {
    /// Parses the value of a `server.N` line (ZooKeeper's QuorumServer address string).
    pub fn parse(id: u64, value: &str) -> Result<ServerSpec, String> {
        let value = value.trim();
        let wrong = || {
            format!(
                "{value} does not have the form server_config or server_config;client_config where \
                 server_config is host:port:port or host:port:port:type and client_config is port or host:port"
            )
        };
        let parts: Vec<&str> = value.split(';').collect();
        if parts.len() > 2 {
            return Err(wrong());
        }
        if parts[0].contains('|') {
            return Err(format!(
                "Multiple address feature is disabled, but multiple addresses were specified for sid {id}"
            ));
        }
        let server = host_and_ports(parts[0])?;
        if !(3..=4).contains(&server.len()) || server[0].is_empty() {
            return Err(wrong());
        }
        let quorum = HostPort {
            host: server[0].clone(),
            port: port(&server[1], "quorum port", value)?,
        };
        let election_port = port(&server[2], "election port", value)?;
        if quorum.port == election_port {
            return Err(format!(
                "Client and election port must be different! Please update the configuration file on server.{id}"
            ));
        }
        let role = match server.get(3).map(|r| r.trim().to_ascii_lowercase()) {
            None => LearnerType::Participant,
            Some(r) if r == "participant" => LearnerType::Participant,
            Some(r) if r == "observer" => LearnerType::Observer,
            Some(r) => return Err(format!("Unrecognised peertype: {r}")),
        };
        let client = match parts.get(1).map(|c| c.trim()) {
            None | Some("") => None,
            Some(c) => {
                let cp = host_and_ports(c)?;
                match cp.len() {
                    1 => Some(HostPort {
                        host: "0.0.0.0".into(),
                        port: port(&cp[0], "client port", value)?,
                    }),
                    2 => Some(HostPort {
                        host: cp[0].clone(),
                        port: port(&cp[1], "client port", value)?,
                    }),
                    _ => return Err(wrong()),
                }
            }
        };
        Ok(ServerSpec {
            id,
            quorum,
            election_port,
            role,
            client,
        })
    }

    pub fn is_participant(&self) -> bool {
        self.role == LearnerType::Participant
    }

    /// `host:qp:ep:role[;clientHost:clientPort]`, as ZooKeeper prints it in config text.
    /// IP literals are printed as Java prints them (`::1` as `[0:0:0:0:0:0:0:1]`).
    pub fn to_config_value(&self) -> String {
        let role = match self.role {
            LearnerType::Participant => "participant",
            LearnerType::Observer => "observer",
        };
        let mut s = format!(
            "{}:{}:{}",
            java_host_port(&self.quorum),
            self.election_port,
            role
        );
        if let Some(c) = &self.client {
            s.push(';');
            s.push_str(&java_host_port(c));
        }
        s
    }
}

/// How votes are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumSystem {
    /// More than half of the participants.
    Majority,
    /// More than half of the weight in more than half of the (non-zero-weight) groups.
    Hierarchical {
        groups: BTreeMap<u64, BTreeSet<u64>>,
        weights: BTreeMap<u64, u64>,
    },
}

/// An immutable ensemble configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    pub members: BTreeMap<u64, ServerSpec>,
    pub system: QuorumSystem,
    /// The zxid of the txn that created this configuration (0 before the first one).
    pub version: i64,
}

impl QuorumConfig {
    /// Builds a configuration from `server.N` / `group.N` / `weight.N` / `version` entries
    /// (zoo.cfg membership lines, a dynamic file, or a bulk reconfig). Anything else is
    /// refused, as ZooKeeper's parseDynamicConfig does.
    pub fn from_properties(props: &[Property]) -> Result<QuorumConfig, String> {
        let mut members = BTreeMap::new();
        let mut groups: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        let mut server_group: BTreeMap<u64, u64> = BTreeMap::new();
        let mut weights = BTreeMap::new();
        let mut version = 0i64;
        let mut hierarchical = false;
        let id_of = |key: &str, prefix: &str| -> Result<u64, String> {
            key[prefix.len()..]
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("{key}: {:?} is not a number", &key[prefix.len()..]))
        };
        for p in props {
            let key = p.key.as_str();
            if key.starts_with("server.") {
                let id = id_of(key, "server.")?;
                if members
                    .insert(id, ServerSpec::parse(id, &p.value)?)
                    .is_some()
                {
                    return Err(format!("{key} is given twice"));
                }
            } else if key.starts_with("group.") {
                hierarchical = true;
                let gid = id_of(key, "group.")?;
                for sid in p.value.split(':') {
                    let sid = sid
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| format!("{key}: {sid:?} is not a server id"))?;
                    if server_group.insert(sid, gid).is_some() {
                        return Err(format!("Server {sid} is in multiple groups"));
                    }
                    groups.entry(gid).or_default().insert(sid);
                }
            } else if key.starts_with("weight.") {
                hierarchical = true;
                let sid = id_of(key, "weight.")?;
                let w = p
                    .value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{key}: {:?} is not a weight", p.value))?;
                weights.insert(sid, w);
            } else if key == "version" {
                version = i64::from_str_radix(p.value.trim(), 16)
                    .map_err(|_| format!("version {:?} is not hexadecimal", p.value))?;
            } else {
                return Err(format!("Unrecognised parameter: {key}"));
            }
        }
        let system = if hierarchical {
            for spec in members.values().filter(|s| s.is_participant()) {
                if !server_group.contains_key(&spec.id) {
                    return Err(format!("Server {} is not in a group", spec.id));
                }
                weights.entry(spec.id).or_insert(1);
            }
            QuorumSystem::Hierarchical { groups, weights }
        } else {
            QuorumSystem::Majority
        };
        Ok(QuorumConfig {
            members,
            system,
            version,
        })
    }

    pub fn voters(&self) -> impl Iterator<Item = &ServerSpec> {
        self.members.values().filter(|s| s.is_participant())
    }

    pub fn observers(&self) -> impl Iterator<Item = &ServerSpec> {
        self.members.values().filter(|s| !s.is_participant())
    }

    pub fn is_voter(&self, id: u64) -> bool {
        self.members
            .get(&id)
            .is_some_and(ServerSpec::is_participant)
    }

    /// Whether `acks` (server ids; non-voters are ignored) is a quorum of this configuration.
    pub fn contains_quorum(&self, acks: &BTreeSet<u64>) -> bool {
        match &self.system {
            QuorumSystem::Majority => {
                let voters = self.voters().count();
                let acked = acks.iter().filter(|id| self.is_voter(**id)).count();
                acked > voters / 2
            }
            QuorumSystem::Hierarchical { groups, weights } => {
                if acks.is_empty() {
                    return false;
                }
                let weight = |sid: &u64| weights.get(sid).copied().unwrap_or(0);
                let live_groups = groups
                    .values()
                    .filter(|g| g.iter().map(weight).sum::<u64>() > 0)
                    .count();
                let majority_groups = groups
                    .values()
                    .filter(|g| {
                        let total: u64 = g.iter().map(weight).sum();
                        let acked: u64 = g
                            .iter()
                            .filter(|sid| acks.contains(sid) && self.is_voter(**sid))
                            .map(weight)
                            .sum();
                        total > 0 && acked > total / 2
                    })
                    .count();
                majority_groups > live_groups / 2
            }
        }
    }

    /// The dynamic configuration text: `server.N=…` lines (then `group.`/`weight.` lines for a
    /// hierarchical system), without the version.
    pub fn to_dynamic_lines(&self) -> String {
        let mut out = String::new();
        for spec in self.members.values() {
            out.push_str(&format!("server.{}={}\n", spec.id, spec.to_config_value()));
        }
        if let QuorumSystem::Hierarchical { groups, weights } = &self.system {
            for (gid, sids) in groups {
                let list: Vec<String> = sids.iter().map(u64::to_string).collect();
                out.push_str(&format!("group.{gid}={}\n", list.join(":")));
            }
            for (sid, w) in weights {
                out.push_str(&format!("weight.{sid}={w}\n"));
            }
        }
        out
    }

    /// What /zookeeper/config holds: the dynamic lines and `version=<hex>`.
    pub fn to_config_text(&self) -> String {
        format!("{}version={:x}", self.to_dynamic_lines(), self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_properties;

    fn config(text: &str) -> QuorumConfig {
        QuorumConfig::from_properties(&parse_properties(text, "test").unwrap()).unwrap()
    }

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn server_lines_parse_and_print_like_zookeeper() {
        let s = ServerSpec::parse(1, "127.0.0.1:12121:12141:participant;127.0.0.1:12101").unwrap();
        assert_eq!(
            s.quorum,
            HostPort {
                host: "127.0.0.1".into(),
                port: 12121
            }
        );
        assert_eq!(s.election_port, 12141);
        assert_eq!(
            s.client,
            Some(HostPort {
                host: "127.0.0.1".into(),
                port: 12101
            })
        );
        assert_eq!(
            s.to_config_value(),
            "127.0.0.1:12121:12141:participant;127.0.0.1:12101"
        );
        let o = ServerSpec::parse(4, "h:1:2:observer;2181").unwrap();
        assert_eq!(o.to_config_value(), "h:1:2:observer;0.0.0.0:2181");
        let old = ServerSpec::parse(2, "zk2:2888:3888").unwrap();
        assert_eq!((old.role, old.client), (LearnerType::Participant, None));
        let v6 = ServerSpec::parse(3, "[::1]:1:2;[::1]:3").unwrap();
        assert_eq!(
            v6.to_config_value(),
            "[0:0:0:0:0:0:0:1]:1:2:participant;[0:0:0:0:0:0:0:1]:3"
        );
        let v6 = ServerSpec::parse(3, "[fe80::a:B]:1:2;[::ffff:10.0.0.1]:3").unwrap();
        assert_eq!(
            v6.to_config_value(),
            "[fe80:0:0:0:0:0:a:b]:1:2:participant;10.0.0.1:3"
        );
    }

    #[test]
    fn malformed_server_lines_say_what_is_wrong() {
        for bad in [
            "127.0.0.1:1",
            "h:1:2:badrole",
            "h:1:1",
            "h:1:2;h:x",
            "a:1:2|b:1:2",
            "h:1:2;a;b",
            "garbage",
        ] {
            assert!(ServerSpec::parse(1, bad).is_err(), "{bad}");
        }
        assert!(ServerSpec::parse(1, "garbage")
            .unwrap_err()
            .contains("does not have the form"));
    }

    #[test]
    fn majority_counts_voters_only() {
        let c = config("server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\nserver.4=h:7:8:observer\nversion=100000000\n");
        assert_eq!(c.version, 0x100000000);
        assert!(c.contains_quorum(&set(&[1, 2])));
        assert!(!c.contains_quorum(&set(&[1, 4])));
        assert!(!c.contains_quorum(&set(&[3])));
        assert_eq!(c.observers().count(), 1);
    }

    #[test]
    fn hierarchical_needs_a_majority_of_weight_in_a_majority_of_groups() {
        let c = config(
            "server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\nserver.4=h:7:8\nserver.5=h:9:10\nserver.6=h:11:12\n\
             group.1=1:2:3\ngroup.2=4:5:6\ngroup.3=7\nweight.1=1\nweight.2=1\nweight.3=1\nweight.4=1\nweight.5=1\nweight.6=1\nweight.7=0\n",
        );
        // group 3 weighs nothing: two live groups, both need a majority
        assert!(c.contains_quorum(&set(&[1, 2, 4, 5])));
        assert!(!c.contains_quorum(&set(&[1, 2, 3, 4])));
        assert!(!c.contains_quorum(&set(&[])));
        assert_eq!(
            c.to_config_text()
                .lines()
                .filter(|l| l.starts_with("group."))
                .collect::<Vec<_>>(),
            vec!["group.1=1:2:3", "group.2=4:5:6", "group.3=7"]
        );
    }

    #[test]
    fn dynamic_config_refuses_other_keys_and_ungrouped_participants() {
        let props = parse_properties("server.1=h:1:2\ntickTime=2000\n", "f").unwrap();
        assert_eq!(
            QuorumConfig::from_properties(&props).unwrap_err(),
            "Unrecognised parameter: tickTime"
        );
        let props = parse_properties("server.1=h:1:2\nserver.2=h:3:4\ngroup.1=1\n", "f").unwrap();
        assert!(QuorumConfig::from_properties(&props)
            .unwrap_err()
            .contains("not in a group"));
    }

    #[test]
    fn config_text_round_trips() {
        let text = "server.1=127.0.0.1:1:2:participant;127.0.0.1:3\nserver.2=127.0.0.1:4:5:observer;127.0.0.1:6\nversion=10000000b";
        let c = config(text);
        assert_eq!(c.to_config_text(), text);
        assert_eq!(config(&c.to_config_text()), c);
    }
}
