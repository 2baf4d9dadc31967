//! The typed settings of a zoo.cfg.

use crate::security_keys::{self, SecurityKey};
use crate::{parse_properties, ConfigError, Property};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Every four-letter word zkrs knows, in ZooKeeper's spelling.
pub const DEFAULT_FOUR_LETTER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srst", "srvr", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

/// Which four-letter words may run (`4lw.commands.whitelist`). As in ZooKeeper, `srvr` is
/// always allowed (zkServer.sh needs it) and everything else only when listed; `*` allows all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FourLetterWhitelist(BTreeSet<String>);

impl FourLetterWhitelist {
    pub fn parse(list: Option<&str>, read_only_mode: bool) -> Self {
        let mut set = BTreeSet::new();
        for word in list.unwrap_or("").split(',').map(str::trim) {
            if word == "*" {
                set.extend(DEFAULT_FOUR_LETTER_WORDS.iter().map(|w| w.to_string()));
            } else if !word.is_empty() {
                set.insert(word.to_owned());
            }
        }
        if read_only_mode {
            set.insert("isro".into());
        }
        set.insert("srvr".into());
        FourLetterWhitelist(set)
    }

    pub fn allows(&self, word: &str) -> bool {
        self.0.contains(word)
    }
}

/// A parsed zoo.cfg. Times are milliseconds.
#[derive(Debug, Clone)]
pub struct ZooCfg {
    /// The file it came from, for messages (`<embedded default>` when none).
    pub source: String,
    pub tick_time: u32,
    pub data_dir: PathBuf,
    pub data_log_dir: Option<PathBuf>,
    pub client_port: Option<u16>,
    pub client_port_address: Option<String>,
    pub max_client_cnxns: u32,
    pub min_session_timeout: u32,
    pub max_session_timeout: u32,
    pub jute_max_buffer: usize,
    pub four_letter_whitelist: FourLetterWhitelist,
    pub extended_types_enabled: bool,
    pub skip_acl: bool,
    pub super_digest: Option<String>,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u32,
    pub snap_count: u64,
    pub pre_alloc_size_kb: u64,
    pub force_sync: bool,
    pub autopurge_snap_retain_count: u32,
    pub autopurge_purge_interval_hours: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// globalOutstandingLimit: while more requests than this are read and not answered on
    /// the whole server, clients are not read (ZooKeeper's default, 1000; 0: no limit).
    pub global_outstanding_limit: u64,
    pub read_only_mode: bool,
    /// `reconfigEnabled` (default false, as in ZooKeeper since 3.5.3).
    pub reconfig_enabled: bool,
    /// `standaloneEnabled` (default true): a single server line runs standalone.
    pub standalone_enabled: bool,
    /// `dynamicConfigFile`, as written: the membership then lives in that file.
    pub dynamic_config_file: Option<PathBuf>,
    /// `server.N=` / `group.N=` / `weight.N=` lines: the ensemble's membership (from the
    /// dynamic file when there is one; their `line` is then a line of that file).
    pub membership: Vec<Property>,
    /// The membership as a configuration, when there is one. With a dynamic file its version
    /// is the file name's hexadecimal suffix (0 without one).
    pub quorum: Option<crate::QuorumConfig>,
    /// A configuration proposed and not yet active when the server stopped
    /// (`<zoo.cfg>.dynamic.next`), set by the server's loader.
    pub last_seen_quorum: Option<crate::QuorumConfig>,
    /// The zoo.cfg this was read from, set by the server's loader (None for text parsed in
    /// memory): dynamic configuration files are written next to it, and only then.
    pub config_file: Option<PathBuf>,
    /// Every key=value as written, for `conf` and `envi`.
    pub properties: Vec<Property>,
    /// Keys zkrs does not know: warned about at startup, otherwise ignored. (A key that turns
    /// on a security feature zkrs does not implement is an error instead: see
    /// [`crate::security_keys`].)
    pub unknown_keys: Vec<Property>,
}

impl Default for ZooCfg {
    fn default() -> Self {
        ZooCfg::parse("", "<embedded default>").expect("the empty config is valid")
    }
}

impl ZooCfg {
    /// The configuration `zkrs server` runs with when given no file.
    pub fn embedded_default() -> Self {
        let text =
            "tickTime=2000\ndataDir=./zkrs-data\nclientPort=2181\nclientPortAddress=127.0.0.1\n";
        ZooCfg::parse(text, "<embedded default>").expect("the embedded default is valid")
    }

    pub fn parse(text: &str, file: &str) -> Result<ZooCfg, ConfigError> {
        let properties = parse_properties(text, file)?;
        let mut cfg = ZooCfg {
            source: file.to_owned(),
            tick_time: 2000,
            data_dir: PathBuf::from("./zkrs-data"),
            data_log_dir: None,
            client_port: None,
            client_port_address: None,
            max_client_cnxns: 60,
            min_session_timeout: 0,
            max_session_timeout: 0,
            jute_max_buffer: 0xfffff,
            four_letter_whitelist: FourLetterWhitelist::parse(None, false),
            extended_types_enabled: false,
            skip_acl: false,
            super_digest: None,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            snap_count: 100_000,
            pre_alloc_size_kb: 65536,
            force_sync: true,
            autopurge_snap_retain_count: 3,
            autopurge_purge_interval_hours: 0,
            init_limit: 10,
            sync_limit: 5,
            global_outstanding_limit: 1000,
            read_only_mode: false,
            reconfig_enabled: false,
            standalone_enabled: true,
            dynamic_config_file: None,
            membership: Vec::new(),
            quorum: None,
            last_seen_quorum: None,
            config_file: None,
            properties: properties.clone(),
            unknown_keys: Vec::new(),
        };
        let mut min_session = None;
        let mut max_session = None;
        let mut whitelist = None;
        let mut has_data_dir = false;
        for p in &properties {
            let v = p.value.as_str();
            let err = |what: &str| ConfigError {
                file: file.to_owned(),
                line: Some(p.line),
                message: format!("{}: expected {what}, found {:?}", p.key, p.value),
            };
            let int = |what: &str| v.parse::<u64>().map_err(|_| err(what));
            let boolean = || parse_bool(v).ok_or_else(|| err("yes/no or true/false"));
            match p.key.as_str() {
                "tickTime" => {
                    cfg.tick_time = int("a positive number of milliseconds").and_then(|n| {
                        positive_u32(n).ok_or_else(|| err("a positive number of milliseconds"))
                    })?
                }
                "dataDir" => {
                    cfg.data_dir = PathBuf::from(v);
                    has_data_dir = true;
                }
                "dataLogDir" => cfg.data_log_dir = Some(PathBuf::from(v)),
                "clientPort" => {
                    cfg.client_port = Some(
                        v.parse::<u16>()
                            .map_err(|_| err("a port number (0-65535)"))?,
                    )
                }
                "clientPortAddress" => cfg.client_port_address = Some(v.to_owned()),
                "maxClientCnxns" => {
                    cfg.max_client_cnxns =
                        int("a number of connections").map(|n| n.min(u32::MAX as u64) as u32)?
                }
                "minSessionTimeout" => {
                    min_session = Some(v.parse::<i64>().map_err(|_| err("milliseconds"))?)
                }
                "maxSessionTimeout" => {
                    max_session = Some(v.parse::<i64>().map_err(|_| err("milliseconds"))?)
                }
                "jute.maxbuffer" => cfg.jute_max_buffer = int("a number of bytes")? as usize,
                "4lw.commands.whitelist" => whitelist = Some(v.to_owned()),
                "extendedTypesEnabled" | "zookeeper.extendedTypesEnabled" => {
                    cfg.extended_types_enabled = boolean()?
                }
                "skipACL" | "zookeeper.skipACL" => cfg.skip_acl = boolean()?,
                "DigestAuthenticationProvider.superDigest"
                | "zookeeper.DigestAuthenticationProvider.superDigest" => {
                    if !v.contains(':') {
                        return Err(err("user:base64(sha1(user:password))"));
                    }
                    cfg.super_digest = Some(v.to_owned());
                }
                "znode.container.checkIntervalMs" => {
                    cfg.container_check_interval_ms = int("milliseconds")?.max(1)
                }
                "znode.container.maxPerMinute" => {
                    cfg.container_max_per_minute = int("a number")?.min(u32::MAX as u64) as u32
                }
                "snapCount" | "zookeeper.snapCount" => {
                    cfg.snap_count = int("a number of transactions")?.max(2)
                }
                "preAllocSize" | "zookeeper.preAllocSize" => {
                    cfg.pre_alloc_size_kb = int("kilobytes")?
                }
                "forceSync" | "zookeeper.forceSync" => cfg.force_sync = boolean()?,
                "autopurge.snapRetainCount" => {
                    cfg.autopurge_snap_retain_count = int("a count")?.max(3) as u32
                }
                "autopurge.purgeInterval" => {
                    cfg.autopurge_purge_interval_hours = int("hours")? as u32
                }
                "initLimit" => cfg.init_limit = int("a number of ticks")? as u32,
                "syncLimit" => cfg.sync_limit = int("a number of ticks")? as u32,
                "globalOutstandingLimit" | "zookeeper.globalOutstandingLimit" => {
                    cfg.global_outstanding_limit = int("a number of requests")?
                }
                "readonlymode.enabled" => cfg.read_only_mode = boolean()?,
                "reconfigEnabled" => cfg.reconfig_enabled = boolean()?,
                "standaloneEnabled" => cfg.standalone_enabled = boolean()?,
                "dynamicConfigFile" => cfg.dynamic_config_file = Some(PathBuf::from(v)),
                k if k.starts_with("server.")
                    || k.starts_with("group.")
                    || k.starts_with("weight.") =>
                {
                    cfg.membership.push(p.clone())
                }
                // Keys ZooKeeper knows that a standalone zkrs accepts and does not need.
                "admin.enableServer"
                | "admin.serverPort"
                | "admin.serverAddress"
                | "clientPortListenBacklog"
                | "peerType"
                | "electionAlg"
                | "quorumListenOnAllIPs"
                | "electionPortBindRetry"
                | "metricsProvider.className"
                | "syncEnabled"
                | "localSessionsEnabled"
                | "localSessionsUpgradingEnabled"
                | "leaderServes"
                | "cnxTimeout"
                | "maxCnxns" => {}
                // Security keys zkrs does not implement fail closed; their "off" values pass.
                k => match security_keys::classify(k, v) {
                    SecurityKey::Unsupported => {
                        return Err(ConfigError {
                            file: file.to_owned(),
                            line: Some(p.line),
                            message: security_keys::refusal(k),
                        })
                    }
                    SecurityKey::Off => {}
                    SecurityKey::Other => cfg.unknown_keys.push(p.clone()),
                },
            }
        }
        if !has_data_dir && file != "<embedded default>" && !properties.is_empty() {
            return Err(ConfigError {
                file: file.to_owned(),
                line: None,
                message: "dataDir is not set".into(),
            });
        }
        cfg.min_session_timeout = match min_session {
            Some(n) if n > 0 => n as u32,
            _ => cfg.tick_time * 2,
        };
        cfg.max_session_timeout = match max_session {
            Some(n) if n > 0 => n as u32,
            _ => cfg.tick_time * 20,
        };
        if cfg.min_session_timeout > cfg.max_session_timeout {
            return Err(ConfigError {
                file: file.to_owned(),
                line: None,
                message: format!(
                    "minSessionTimeout ({}) must not be larger than maxSessionTimeout ({})",
                    cfg.min_session_timeout, cfg.max_session_timeout
                ),
            });
        }
        cfg.four_letter_whitelist =
            FourLetterWhitelist::parse(whitelist.as_deref(), cfg.read_only_mode);
        if cfg.dynamic_config_file.is_some() {
            if let Some(p) = cfg.membership.first() {
                return Err(ConfigError {
                    file: file.to_owned(),
                    line: Some(p.line),
                    message: format!(
                        "parameter: {} must be in a separate dynamic config file",
                        p.key
                    ),
                });
            }
        }
        if !cfg.membership.is_empty() {
            cfg.quorum = Some(membership_quorum(&cfg.membership, file)?);
        }
        Ok(cfg)
    }

    /// Parses a static zoo.cfg that names a `dynamicConfigFile`, with that file's text.
    /// `dynamic_file` is the file's name as the static file gives it: its suffix after the
    /// last '.' is the configuration's version when it is hexadecimal (`zoo.cfg.dynamic.1a`),
    /// else the version is 0. The dynamic file may hold only `server.`, `group.` and
    /// `weight.` lines; anything else is an error naming the dynamic file and the line, and a
    /// `version` line is refused as ZooKeeper does ("dynamic file shouldn't have version
    /// inside").
    pub fn parse_with_dynamic(
        static_text: &str,
        static_file: &str,
        dynamic_text: &str,
        dynamic_file: &str,
    ) -> Result<ZooCfg, ConfigError> {
        let mut cfg = ZooCfg::parse(static_text, static_file)?;
        cfg.apply_dynamic(dynamic_text, dynamic_file)?;
        Ok(cfg)
    }

    /// Takes the membership from a dynamic configuration file's text (see
    /// [`ZooCfg::parse_with_dynamic`]), replacing any.
    pub fn apply_dynamic(
        &mut self,
        dynamic_text: &str,
        dynamic_file: &str,
    ) -> Result<(), ConfigError> {
        let membership = parse_properties(dynamic_text, dynamic_file)?;
        for p in &membership {
            let error = |message: String| ConfigError {
                file: dynamic_file.to_owned(),
                line: Some(p.line),
                message,
            };
            if p.key == "version" {
                return Err(error("dynamic file shouldn't have version inside".into()));
            }
            if !["server.", "group.", "weight."]
                .iter()
                .any(|prefix| p.key.starts_with(prefix))
            {
                return Err(error(format!("Unrecognised parameter: {}", p.key)));
            }
        }
        if membership.is_empty() {
            return Err(ConfigError {
                file: dynamic_file.to_owned(),
                line: None,
                message: "no server.N lines: the dynamic configuration file is empty".into(),
            });
        }
        let mut quorum = membership_quorum(&membership, dynamic_file)?;
        quorum.version = crate::dynamic::version_from_file_name(dynamic_file).unwrap_or(0);
        self.membership = membership;
        self.quorum = Some(quorum);
        Ok(())
    }

    /// Parses a `<zoo.cfg>.dynamic.next` file: a proposed configuration with its
    /// `version=<hex>` line.
    pub fn parse_next_file(text: &str, file: &str) -> Result<crate::QuorumConfig, ConfigError> {
        let props = parse_properties(text, file)?;
        membership_quorum(&props, file)
    }

    /// Replicated mode as ZooKeeper decides it (QuorumPeerConfig.isDistributed): a membership,
    /// and standaloneEnabled=false or more than one participant.
    pub fn is_distributed(&self) -> bool {
        self.quorum
            .as_ref()
            .is_some_and(|q| !self.standalone_enabled || q.voters().count() > 1)
    }

    /// Whether ZooKeeper would copy this single-file configuration to `<zoo.cfg>.bak` at boot:
    /// reconfigEnabled, replicated, and no dynamicConfigFile yet.
    pub fn needs_backup(&self) -> bool {
        self.reconfig_enabled && self.dynamic_config_file.is_none() && self.is_distributed()
    }

    /// Where the transaction log lives (dataLogDir, else dataDir).
    pub fn log_dir(&self) -> &PathBuf {
        self.data_log_dir.as_ref().unwrap_or(&self.data_dir)
    }

    /// The client address to bind: clientPortAddress (default all interfaces) and clientPort.
    pub fn client_address(&self) -> Option<String> {
        let port = self.client_port?;
        let host = self.client_port_address.as_deref().unwrap_or("0.0.0.0");
        Some(if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        })
    }
}

/// Checks each server line where it is, then builds the whole membership.
fn membership_quorum(
    membership: &[Property],
    file: &str,
) -> Result<crate::QuorumConfig, ConfigError> {
    for p in membership.iter().filter(|p| p.key.starts_with("server.")) {
        let id = p.key["server.".len()..]
            .trim()
            .parse::<u64>()
            .map_err(|_| ConfigError {
                file: file.to_owned(),
                line: Some(p.line),
                message: format!("{}: expected server.<id> with a numeric id", p.key),
            })?;
        crate::ServerSpec::parse(id, &p.value).map_err(|message| ConfigError {
            file: file.to_owned(),
            line: Some(p.line),
            message,
        })?;
    }
    crate::QuorumConfig::from_properties(membership).map_err(|message| {
        // name the line the message is about when it names a key
        let line = membership
            .iter()
            .find(|p| message.contains(p.key.as_str()))
            .or(membership.first())
            .map(|p| p.line);
        ConfigError {
            file: file.to_owned(),
            line,
            message,
        }
    })
}

fn positive_u32(n: u64) -> Option<u32> {
    (n > 0 && n <= u32::MAX as u64).then_some(n as u32)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_timeouts_default_from_tick_time() {
        let cfg = ZooCfg::parse("tickTime=1000\ndataDir=/tmp/x\n", "zoo.cfg").unwrap();
        assert_eq!(cfg.min_session_timeout, 2000);
        assert_eq!(cfg.max_session_timeout, 20000);
    }

    #[test]
    fn bad_value_names_file_line_and_expectation() {
        let err = ZooCfg::parse("dataDir=/x\ntickTime=soon\n", "/etc/zoo.cfg").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/zoo.cfg:2: tickTime: expected a positive number of milliseconds, found \"soon\""
        );
    }

    #[test]
    fn unknown_keys_are_collected_not_fatal() {
        let cfg = ZooCfg::parse("dataDir=/x\nfrobnicate=3\n", "zoo.cfg").unwrap();
        assert_eq!(cfg.unknown_keys.len(), 1);
        assert_eq!(cfg.unknown_keys[0].key, "frobnicate");
    }

    /// The error for a zoo.cfg of a dataDir line, then `line` (so line 2 of /etc/zoo.cfg).
    fn refused(line: &str) -> String {
        ZooCfg::parse(&format!("dataDir=/x\n{line}\n"), "/etc/zoo.cfg")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn security_keys_fail_closed_with_file_line_and_key() {
        for (line, key) in [
            // TLS for clients
            ("secureClientPort=2281", "secureClientPort"),
            ("secureClientPortAddress=0.0.0.0", "secureClientPortAddress"),
            ("client.portUnification=true", "client.portUnification"),
            ("ssl.keyStore.location=/k.jks", "ssl.keyStore.location"),
            ("ssl.clientAuth=none", "ssl.clientAuth"),
            (
                "zookeeper.ssl.trustStore.location=/t.jks",
                "zookeeper.ssl.trustStore.location",
            ),
            // TLS between servers
            ("sslQuorum=true", "sslQuorum"),
            ("portUnification=true", "portUnification"),
            ("sslQuorumReloadCertFiles=true", "sslQuorumReloadCertFiles"),
            (
                "ssl.quorum.keyStore.password=pw",
                "ssl.quorum.keyStore.password",
            ),
            // SASL between servers
            ("quorum.auth.enableSasl=true", "quorum.auth.enableSasl"),
            (
                "quorum.auth.learnerRequireSasl=true",
                "quorum.auth.learnerRequireSasl",
            ),
            (
                "quorum.auth.kerberos.servicePrincipal=zkquorum/_HOST",
                "quorum.auth.kerberos.servicePrincipal",
            ),
            // authentication providers and super users
            (
                "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
                "authProvider.1",
            ),
            (
                "X509AuthenticationProvider.superUser=CN=admin",
                "X509AuthenticationProvider.superUser",
            ),
            (
                "DigestAuthenticationProvider.digestAlg=SHA3-256",
                "DigestAuthenticationProvider.digestAlg",
            ),
            (
                "kerberos.removeHostFromPrincipal=true",
                "kerberos.removeHostFromPrincipal",
            ),
            // enforced authentication
            ("enforce.auth.enabled=true", "enforce.auth.enabled"),
            ("enforce.auth.schemes=sasl", "enforce.auth.schemes"),
            (
                "sessionRequireClientSASLAuth=true",
                "sessionRequireClientSASLAuth",
            ),
            // system-property spellings
            (
                "zookeeper.sasl.serverconfig=Server",
                "zookeeper.sasl.serverconfig",
            ),
            (
                "zookeeper.authProvider.sasl=org.example.Sasl",
                "zookeeper.authProvider.sasl",
            ),
        ] {
            assert_eq!(
                refused(line),
                format!(
                    "/etc/zoo.cfg:2: {key} is not supported by zkrs yet; refusing to start without it"
                ),
                "{line}"
            );
        }
    }

    #[test]
    fn security_keys_that_say_off_are_accepted_quietly() {
        let cfg = ZooCfg::parse(
            "dataDir=/x\nsecureClientPort=0\nsslQuorum=false\nquorum.auth.enableSasl=false\n\
             quorum.auth.learnerRequireSasl=false\nquorum.auth.serverRequireSasl=false\n\
             enforce.auth.enabled=false\nclient.portUnification=false\n\
             DigestAuthenticationProvider.digestAlg=SHA1\n\
             authProvider.1=org.apache.zookeeper.server.auth.DigestAuthenticationProvider\n",
            "zoo.cfg",
        )
        .unwrap();
        assert!(cfg.unknown_keys.is_empty(), "{:?}", cfg.unknown_keys);
        // keys zkrs implements are not refused
        let cfg = ZooCfg::parse(
            "dataDir=/x\nDigestAuthenticationProvider.superDigest=super:abc=\nskipACL=no\n",
            "zoo.cfg",
        )
        .unwrap();
        assert_eq!(cfg.super_digest.as_deref(), Some("super:abc="));
    }

    #[test]
    fn unknown_non_security_keys_stay_warnings() {
        let cfg = ZooCfg::parse(
            "dataDir=/x\nserverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             quorum.cnxn.threads.size=20\n",
            "zoo.cfg",
        )
        .unwrap();
        let keys: Vec<_> = cfg.unknown_keys.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["serverCnxnFactory", "quorum.cnxn.threads.size"]);
    }

    #[test]
    fn whitelist_always_has_srvr() {
        let w = FourLetterWhitelist::parse(Some("ruok, stat"), false);
        assert!(w.allows("ruok") && w.allows("stat") && w.allows("srvr"));
        assert!(!w.allows("mntr"));
        assert!(FourLetterWhitelist::parse(Some("*"), false).allows("mntr"));
    }

    #[test]
    fn server_lines_are_checked_where_they_are() {
        let cfg = ZooCfg::parse(
            "dataDir=/x\nserver.1=h:1:2;2181\nserver.2=h:3:4:observer\n",
            "zoo.cfg",
        )
        .unwrap();
        let quorum = cfg.quorum.unwrap();
        assert_eq!(
            (quorum.voters().count(), quorum.observers().count()),
            (1, 1)
        );
        let err = ZooCfg::parse("dataDir=/x\nserver.1=h:1:2\nserver.2=h:3\n", "/etc/zoo.cfg")
            .unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(
            err.to_string()
                .starts_with("/etc/zoo.cfg:3: h:3 does not have the form"),
            "{err}"
        );
    }

    #[test]
    fn reconfig_keys_and_their_defaults() {
        let cfg = ZooCfg::parse("dataDir=/x\nserver.1=h:1:2;2181\n", "zoo.cfg").unwrap();
        assert!(!cfg.reconfig_enabled && cfg.standalone_enabled);
        assert!(!cfg.is_distributed() && !cfg.needs_backup());
        let cfg = ZooCfg::parse(
            "dataDir=/x\nreconfigEnabled=true\nstandaloneEnabled=false\nserver.1=h:1:2;2181\n",
            "zoo.cfg",
        )
        .unwrap();
        assert!(cfg.reconfig_enabled && !cfg.standalone_enabled);
        assert!(cfg.is_distributed() && cfg.needs_backup());
        // two servers, one of them an observer: one voter, standalone enabled
        let cfg = ZooCfg::parse(
            "dataDir=/x\nreconfigEnabled=true\nserver.1=h:1:2;2181\nserver.2=h:3:4:observer;2182\n",
            "zoo.cfg",
        )
        .unwrap();
        assert!(!cfg.is_distributed());
    }

    #[test]
    fn membership_comes_from_the_dynamic_file() {
        let static_text =
            "dataDir=/x\nreconfigEnabled=true\ndynamicConfigFile=/c/zoo.cfg.dynamic.100000002\n";
        let alone = ZooCfg::parse(static_text, "/c/zoo.cfg").unwrap();
        assert_eq!(
            alone.dynamic_config_file,
            Some(PathBuf::from("/c/zoo.cfg.dynamic.100000002"))
        );
        assert!(alone.quorum.is_none() && !alone.needs_backup());
        let cfg = ZooCfg::parse_with_dynamic(
            static_text,
            "/c/zoo.cfg",
            "server.1=127.0.0.1:1:2:participant;127.0.0.1:3\nserver.2=127.0.0.1:4:5:participant;127.0.0.1:6",
            "/c/zoo.cfg.dynamic.100000002",
        )
        .unwrap();
        let quorum = cfg.quorum.as_ref().unwrap();
        assert_eq!(quorum.version, 0x1_0000_0002);
        assert_eq!(quorum.members.len(), 2);
        assert!(cfg.is_distributed() && !cfg.needs_backup());
        // unversioned hand-written file: version 0
        let cfg = ZooCfg::parse_with_dynamic(
            static_text,
            "/c/zoo.cfg",
            "server.1=h:1:2;3\n",
            "/c/zoo.cfg.dynamic",
        )
        .unwrap();
        assert_eq!(cfg.quorum.unwrap().version, 0);
    }

    #[test]
    fn dynamic_file_errors_name_the_dynamic_file_and_line() {
        let static_text = "dataDir=/x\ndynamicConfigFile=/c/d.1\n";
        let err = ZooCfg::parse_with_dynamic(
            static_text,
            "/c/zoo.cfg",
            "server.1=h:1:2\ntickTime=5\n",
            "/c/d.1",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/c/d.1:2: Unrecognised parameter: tickTime"
        );
        let err = ZooCfg::parse_with_dynamic(
            static_text,
            "/c/zoo.cfg",
            "server.1=h:1:2\nversion=1\n",
            "/c/d.1",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/c/d.1:2: dynamic file shouldn't have version inside"
        );
        let err = ZooCfg::parse_with_dynamic(static_text, "/c/zoo.cfg", "server.1=h:1\n", "/c/d.1")
            .unwrap_err();
        assert_eq!((err.file.as_str(), err.line), ("/c/d.1", Some(1)));
        let err = ZooCfg::parse(
            "dataDir=/x\ndynamicConfigFile=/c/d.1\nserver.1=h:1:2\n",
            "/c/zoo.cfg",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/c/zoo.cfg:3: parameter: server.1 must be in a separate dynamic config file"
        );
    }

    #[test]
    fn next_file_carries_its_version() {
        let next = ZooCfg::parse_next_file(
            "server.1=h:1:2;3\nserver.2=h:4:5;6\nversion=100000003",
            "/c/zoo.cfg.dynamic.next",
        )
        .unwrap();
        assert_eq!(next.version, 0x1_0000_0003);
        let err = ZooCfg::parse_next_file("server.1=h:1:2;3\nbogus=1", "/c/zoo.cfg.dynamic.next")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/c/zoo.cfg.dynamic.next:2: Unrecognised parameter: bogus"
        );
    }

    #[test]
    fn embedded_default_listens_on_loopback_2181() {
        let cfg = ZooCfg::embedded_default();
        assert_eq!(cfg.client_address().unwrap(), "127.0.0.1:2181");
        assert_eq!(cfg.tick_time, 2000);
    }
}
