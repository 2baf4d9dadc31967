//! Reading the data of /zookeeper/config on the client side: the connect string of the
//! ensemble (ConfigUtils.getClientConfigStr) and hints for failed reconfigs.

use config::java_props::{java_properties_order, load_java_properties};
use config::{LearnerType, ServerSpec};

/// The client's view of a configuration: its version and every server's client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// the version as written (hex zxid), e.g. "100000000"
    pub version_text: String,
    pub version: i64,
    /// `host:port` of each server that has a client address, in getClientConfigStr's order
    pub servers: Vec<String>,
}

impl ClientConfig {
    /// Parses the data of /zookeeper/config. None if it holds no version or no server with a
    /// client address.
    pub fn parse(config_data: &str) -> Option<ClientConfig> {
        let props = load_java_properties(config_data).ok()?;
        let keys: Vec<&str> = props.iter().map(|(k, _)| k.trim()).collect();
        let mut version_text = None;
        let mut servers = Vec::new();
        // Properties iterates in its hash table's order; zkCli's `config -c` prints it so
        for i in java_properties_order(&keys) {
            let (key, value) = (&props[i].0, props[i].1.trim());
            let key = key.trim();
            if key == "version" {
                version_text = Some(value.to_owned());
            }
            let Some(id) = key.strip_prefix("server.") else {
                continue;
            };
            let Ok(spec) = ServerSpec::parse(id.parse().unwrap_or(0), value) else {
                continue;
            };
            if let Some(client) = spec.client {
                servers.push(client.to_string());
            }
        }
        let version_text = version_text?;
        let version = i64::from_str_radix(&version_text, 16).ok()?;
        Some(ClientConfig {
            version_text,
            version,
            servers,
        })
    }

    /// The connect string of the servers ("h:p,h:p").
    pub fn connect_string(&self) -> String {
        self.servers.join(",")
    }

    /// As ConfigUtils.getClientConfigStr (and `config -c`): "version h:p,h:p".
    pub fn to_client_config_str(&self) -> String {
        format!("{} {}", self.version_text, self.connect_string())
    }
}

fn roles(config_data: &str) -> Vec<(u64, LearnerType)> {
    config_data
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let id: u64 = k.trim().strip_prefix("server.")?.parse().ok()?;
            Some((id, ServerSpec::parse(id, v.trim()).ok()?.role))
        })
        .collect()
}

/// `server.N=…` or `N=…` entries of a reconfig argument, as (id, normalized line, spec).
fn specs(list: &str) -> Vec<(u64, String, ServerSpec)> {
    list.split(',')
        .filter_map(|item| {
            let (k, v) = item.trim().split_once('=')?;
            let k = k.trim();
            let id: u64 = k.strip_prefix("server.").unwrap_or(k).parse().ok()?;
            let spec = ServerSpec::parse(id, v.trim()).ok()?;
            Some((id, format!("server.{id}={}", v.trim()), spec))
        })
        .collect()
}

/// For a reconfig that failed with NewConfigNoQuorum: if it made a current observer a
/// participant, the two commands that do it safely (manual §4.2.6, "Changing an observer
/// into a follower"): an observer cannot acknowledge the new configuration's history, while
/// a removed server stays connected as a non-voting follower that can.
pub fn observer_to_participant_hint(
    current_config: &str,
    joining: Option<&str>,
    new_members: Option<&str>,
) -> Option<String> {
    let current = roles(current_config);
    let proposed = specs(joining.or(new_members)?);
    let promoted: Vec<&(u64, String, ServerSpec)> = proposed
        .iter()
        .filter(|(id, _, spec)| {
            spec.role == LearnerType::Participant
                && current
                    .iter()
                    .any(|(cid, role)| cid == id && *role == LearnerType::Observer)
        })
        .collect();
    let (id, line, _) = promoted.first()?;
    Some(format!(
        "server {id} is an observer and an observer cannot acknowledge a new configuration; \
         make it a participant in two steps: first `reconfig -remove {id}`, then \
         `reconfig -add {line}`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "server.1=127.0.0.1:12121:12141:participant;127.0.0.1:12101\n\
                          server.2=127.0.0.1:12122:12142:participant;127.0.0.1:12102\n\
                          server.3=127.0.0.1:12123:12143:participant;127.0.0.1:12103\n\
                          version=100000000";

    #[test]
    fn client_config_str_as_zkcli_prints_it() {
        // recorded from zkCli.sh 3.8 (reference transcript a_config.txt)
        let c = ClientConfig::parse(CONFIG).unwrap();
        assert_eq!(
            c.to_client_config_str(),
            "100000000 127.0.0.1:12102,127.0.0.1:12101,127.0.0.1:12103"
        );
        assert_eq!(c.version, 0x100000000);
    }

    #[test]
    fn hint_names_the_two_commands() {
        let current = format!(
            "{}\nserver.4=127.0.0.1:12124:12144:observer;127.0.0.1:12104",
            CONFIG.replace("\nversion=100000000", "")
        );
        let line = "server.4=127.0.0.1:12124:12144:participant;127.0.0.1:12104";
        let hint = observer_to_participant_hint(&current, Some(line), None).unwrap();
        assert!(hint.contains("`reconfig -remove 4`"), "{hint}");
        assert!(hint.contains(&format!("`reconfig -add {line}`")), "{hint}");
        // the N= shorthand is recognized too
        let short = "4=127.0.0.1:12124:12144:participant;127.0.0.1:12104";
        assert!(observer_to_participant_hint(&current, Some(short), None).is_some());
        // a participant being added is no such case
        assert!(observer_to_participant_hint(CONFIG, Some(line), None).is_none());
    }
}
