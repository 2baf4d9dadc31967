//! Dynamic configuration files on disk, as ZooKeeper 3.8 keeps them next to its zoo.cfg
//! (texts and names come from `config::dynamic`; this module only reads and writes).
//!
//! When ZooKeeper writes what:
//! - boot: a replicated single-file zoo.cfg with reconfigEnabled=true and no
//!   `dynamicConfigFile` is copied verbatim to `zoo.cfg.bak` ([`backup_on_boot`]); nothing
//!   else is written at boot;
//! - a configuration is proposed (a reconfig txn is logged; a NEWLEADER carries the leader's
//!   last proposed configuration; the first leader of a fresh ensemble gives the unversioned
//!   initial configuration the NEWLEADER zxid as its version): `zoo.cfg.dynamic.next`
//!   ([`DynamicFiles::write_next`]);
//! - a configuration becomes active (a reconfig commits; a learner gets UPTODATE after a
//!   NEWLEADER carrying a newer configuration; the leader has a quorum of NEWLEADER acks):
//!   `zoo.cfg.dynamic.<hex version>`, the static file rewritten to point at it, the
//!   `.dynamic.next` deleted ([`DynamicFiles::write_committed`]). The first split of a fresh
//!   ensemble is such an activation: its file is named after the first NEWLEADER zxid
//!   (`zoo.cfg.dynamic.100000000`).
//!
//! Only with reconfigEnabled=true: otherwise ZooKeeper writes none of these files.
//! Writes are atomic (a `.tmp` sibling, fsync, rename, fsync of the directory), like
//! ZooKeeper's AtomicFileWritingIdiom. Every error names the file.

use anyhow::Context;
use config::dynamic::{
    backup_file_path, drop_client_port_for, dynamic_file_path, dynamic_file_text, next_file_path,
    next_file_text, static_text_after_split, version_from_file_name,
};
use config::{QuorumConfig, ZooCfg};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use tracing::{info, warn};

fn read_text(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads zoo.cfg at `static_path`, its dynamic configuration file when it names one, and a
/// `<zoo.cfg>.dynamic.next` left by a configuration proposed and not yet active (only when
/// there is a dynamic file, as ZooKeeper). The result remembers `static_path`
/// ([`ZooCfg::config_file`]), next to which dynamic files are then written.
///
/// `zkrs server <zoo.cfg>` should read its configuration with this.
pub fn load(static_path: &Path) -> anyhow::Result<ZooCfg> {
    let text = read_text(static_path)?;
    let mut cfg = ZooCfg::parse(&text, &static_path.display().to_string())?;
    cfg.config_file = Some(static_path.to_owned());
    complete(&mut cfg)?;
    Ok(cfg)
}

/// Completes a zoo.cfg parsed from text: reads the membership from its `dynamicConfigFile`
/// when not done yet, and, when the zoo.cfg's path is known, a `.dynamic.next`. Does nothing
/// for a single-file configuration.
pub fn complete(cfg: &mut ZooCfg) -> anyhow::Result<()> {
    let Some(dynamic) = cfg.dynamic_config_file.clone() else {
        return Ok(());
    };
    if cfg.quorum.is_none() {
        let dynamic_text = read_text(&dynamic)?;
        cfg.apply_dynamic(&dynamic_text, &dynamic.display().to_string())?;
    }
    if let (Some(path), None) = (&cfg.config_file, &cfg.last_seen_quorum) {
        let next = next_file_path(path);
        if next.exists() {
            let text = read_text(&next)?;
            let proposed = ZooCfg::parse_next_file(&text, &next.display().to_string())?;
            let active = cfg.quorum.as_ref().map_or(0, |q| q.version);
            if proposed.version > active {
                info!(
                    "{}: configuration version {:x} was proposed and is not active yet",
                    next.display(),
                    proposed.version
                );
                cfg.last_seen_quorum = Some(proposed);
            } else {
                info!(
                    "{}: version {:x} is not newer than the active configuration ({active:x}): ignored",
                    next.display(),
                    proposed.version
                );
            }
        }
    }
    Ok(())
}

/// At boot, ZooKeeper copies a replicated single-file zoo.cfg (reconfigEnabled=true, no
/// `dynamicConfigFile`) to `<zoo.cfg>.bak`, byte for byte, before its first split. Returns
/// the backup's path when it wrote one. Nothing happens for a configuration parsed from
/// text (no [`ZooCfg::config_file`]).
pub fn backup_on_boot(cfg: &ZooCfg) -> anyhow::Result<Option<PathBuf>> {
    let Some(path) = &cfg.config_file else {
        return Ok(None);
    };
    if !cfg.needs_backup() {
        return Ok(None);
    }
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let backup = backup_file_path(path);
    write_atomically(&backup, &bytes)?;
    Ok(Some(backup))
}

/// Writes `bytes` to `path` atomically: `<path>.tmp`, fsync, rename, fsync of the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = (|| -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// The version of the configuration the static file points at (0 when it names no dynamic
/// file, or one without a version suffix, or when that file is gone).
fn pointed_version(static_text: &str) -> i64 {
    let Ok(props) = config::java_props::load_java_properties(static_text) else {
        return 0;
    };
    props
        .iter()
        .find(|(k, _)| k.trim() == "dynamicConfigFile")
        .map(|(_, v)| v.trim())
        .filter(|v| Path::new(v).exists())
        .and_then(version_from_file_name)
        .unwrap_or(0)
}

/// Writes `config` as the proposed configuration: `<static>.dynamic.next`, its lines and
/// `version=<hex>` sorted, no final newline. Returns the file's path.
pub fn write_next(static_path: &Path, config: &QuorumConfig) -> anyhow::Result<PathBuf> {
    let next = next_file_path(static_path);
    write_atomically(&next, next_file_text(config).as_bytes())?;
    Ok(next)
}

/// Writes `config` as the active configuration of server `my_id`:
/// 1. `<static>.dynamic.<hex version>` (its lines sorted, no version line, no final newline);
/// 2. the static file rewritten (Properties hash order, without membership,
///    `dynamicConfigFile` and `peerType`, nor clientPort/clientPortAddress when `config`
///    gives `my_id` a client address) with `dynamicConfigFile=<canonical path>` appended;
/// 3. `<static>.dynamic.next` deleted when it holds this version or an older one.
///
/// Older dynamic files and a hand-written unversioned one stay. Does nothing (None) when the
/// static file already points at an existing dynamic file of this version or a newer one
/// (ZooKeeper ignores a known or older configuration). Returns the dynamic file's path.
pub fn write_committed(
    static_path: &Path,
    my_id: u64,
    config: &QuorumConfig,
) -> anyhow::Result<Option<PathBuf>> {
    let static_text = read_text(static_path)?;
    let current = pointed_version(&static_text);
    if current >= config.version {
        return Ok(None);
    }
    let dynamic = dynamic_file_path(static_path, config.version);
    write_atomically(&dynamic, dynamic_file_text(config).as_bytes())?;
    let canonical = fs::canonicalize(&dynamic)
        .with_context(|| format!("cannot resolve {}", dynamic.display()))?;
    let new_static = static_text_after_split(
        &static_text,
        &canonical.to_string_lossy(),
        drop_client_port_for(config, my_id),
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", static_path.display()))?;
    write_atomically(static_path, new_static.as_bytes())?;
    let next = next_file_path(static_path);
    if next.exists() {
        let stale = match fs::read_to_string(&next) {
            Ok(text) => ZooCfg::parse_next_file(&text, &next.display().to_string())
                .map_or(true, |proposed| proposed.version <= config.version),
            Err(_) => true,
        };
        if stale {
            if let Err(e) = fs::remove_file(&next) {
                warn!("cannot delete {}: {e}", next.display());
            }
        }
    }
    Ok(Some(dynamic))
}

/// For the runtime, when a configuration is proposed (`Output::ConfigProposed`): writes
/// `.dynamic.next` when ZooKeeper would (reconfigEnabled and a zoo.cfg read from a file). A
/// failure is logged, as ZooKeeper logs it, and the server goes on.
pub fn on_proposed(cfg: &ZooCfg, config: &QuorumConfig) {
    if let Some(files) = DynamicFiles::for_config(cfg, 0) {
        if let Err(e) = files.write_next(config) {
            tracing::error!("writing the proposed configuration: {e:#}");
        }
    }
}

/// For the runtime, when a configuration becomes active on server `my_id`
/// (`Output::ConfigActivated`): writes `.dynamic.<hex version>` and rewrites zoo.cfg when
/// ZooKeeper would. A failure is logged and the server goes on.
pub fn on_activated(cfg: &ZooCfg, my_id: u64, config: &QuorumConfig) {
    if let Some(files) = DynamicFiles::for_config(cfg, my_id) {
        match files.write_committed(config) {
            Ok(Some(path)) => info!(
                "configuration 0x{:x} written to {}",
                config.version,
                path.display()
            ),
            Ok(None) => {}
            Err(e) => tracing::error!("writing the active configuration: {e:#}"),
        }
    }
}

/// The dynamic files of one server, for the runtime: present only when ZooKeeper would write
/// them (reconfigEnabled=true and the zoo.cfg's path is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicFiles {
    pub static_path: PathBuf,
    pub my_id: u64,
}

impl DynamicFiles {
    pub fn for_config(cfg: &ZooCfg, my_id: u64) -> Option<DynamicFiles> {
        if !cfg.reconfig_enabled {
            return None;
        }
        Some(DynamicFiles {
            static_path: cfg.config_file.clone()?,
            my_id,
        })
    }

    /// A configuration was proposed: see [`write_next`].
    pub fn write_next(&self, config: &QuorumConfig) -> anyhow::Result<PathBuf> {
        write_next(&self.static_path, config)
    }

    /// A configuration became active: see [`write_committed`].
    pub fn write_committed(&self, config: &QuorumConfig) -> anyhow::Result<Option<PathBuf>> {
        write_committed(&self.static_path, self.my_id, config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "zkrs-dynamic-files-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            // canonical, so that paths written in files are what we compare with
            TempDir(fs::canonicalize(&dir).unwrap())
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        fn read(&self, name: &str) -> String {
            fs::read_to_string(self.path(name)).unwrap()
        }

        fn names(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const F1: &str =
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/zkref-ens-12100/s1/data\n\
reconfigEnabled=true\nstandaloneEnabled=false\n4lw.commands.whitelist=*\nadmin.enableServer=true\n\
admin.serverAddress=127.0.0.1\nadmin.serverPort=12161\n\
DigestAuthenticationProvider.superDigest=super:pRrI+8tARV2hNsXgQkXL5qvmGJY=\n\
server.1=127.0.0.1:12121:12141:participant;127.0.0.1:12101\n\
server.2=127.0.0.1:12122:12142:participant;127.0.0.1:12102\n\
server.3=127.0.0.1:12123:12143:participant;127.0.0.1:12103\n";

    fn f1_static(dynamic: &Path) -> String {
        format!(
            "dataDir=/tmp/zkref-ens-12100/s1/data\n4lw.commands.whitelist=*\nsyncLimit=5\n\
DigestAuthenticationProvider.superDigest=super:pRrI+8tARV2hNsXgQkXL5qvmGJY=\n\
reconfigEnabled=true\nstandaloneEnabled=false\nadmin.enableServer=true\ninitLimit=10\n\
tickTime=2000\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=12161\n\
dynamicConfigFile={}\n",
            dynamic.display()
        )
    }

    fn versioned(cfg: &ZooCfg, version: i64) -> QuorumConfig {
        let mut q = cfg.quorum.clone().unwrap();
        q.version = version;
        q
    }

    #[test]
    fn f1_boot_backup_then_first_activation_then_reconfig_then_restart() {
        let dir = TempDir::new();
        let zoo = dir.path("zoo.cfg");
        fs::write(&zoo, F1).unwrap();
        // boot: only the .bak
        let cfg = load(&zoo).unwrap();
        assert_eq!(cfg.config_file.as_deref(), Some(zoo.as_path()));
        assert!(cfg.is_distributed() && cfg.needs_backup());
        assert_eq!(backup_on_boot(&cfg).unwrap(), Some(dir.path("zoo.cfg.bak")));
        assert_eq!(dir.read("zoo.cfg.bak"), F1);
        assert_eq!(dir.names(), ["zoo.cfg", "zoo.cfg.bak"]);

        // the first leader proposes the initial configuration with the NEWLEADER zxid …
        let files = DynamicFiles::for_config(&cfg, 1).unwrap();
        let first = versioned(&cfg, 0x1_0000_0000);
        files.write_next(&first).unwrap();
        assert_eq!(
            dir.read("zoo.cfg.dynamic.next"),
            "server.1=127.0.0.1:12121:12141:participant;127.0.0.1:12101\n\
             server.2=127.0.0.1:12122:12142:participant;127.0.0.1:12102\n\
             server.3=127.0.0.1:12123:12143:participant;127.0.0.1:12103\n\
             version=100000000"
        );
        // … and activates it
        let d0 = dir.path("zoo.cfg.dynamic.100000000");
        assert_eq!(files.write_committed(&first).unwrap(), Some(d0.clone()));
        assert_eq!(
            dir.names(),
            ["zoo.cfg", "zoo.cfg.bak", "zoo.cfg.dynamic.100000000"]
        );
        assert_eq!(dir.read("zoo.cfg"), f1_static(&d0));
        assert_eq!(
            dir.read("zoo.cfg.dynamic.100000000"),
            "server.1=127.0.0.1:12121:12141:participant;127.0.0.1:12101\n\
             server.2=127.0.0.1:12122:12142:participant;127.0.0.1:12102\n\
             server.3=127.0.0.1:12123:12143:participant;127.0.0.1:12103"
        );
        assert_eq!(dir.read("zoo.cfg.bak"), F1);
        // the same configuration again: nothing is rewritten
        assert_eq!(files.write_committed(&first).unwrap(), None);

        // reconfig -remove 3: proposed, then committed
        let mut second = first.clone();
        second.members.remove(&3);
        second.version = 0x1_0000_0002;
        files.write_next(&second).unwrap();
        let d2 = dir.path("zoo.cfg.dynamic.100000002");
        assert_eq!(files.write_committed(&second).unwrap(), Some(d2.clone()));
        assert_eq!(
            dir.names(),
            [
                "zoo.cfg",
                "zoo.cfg.bak",
                "zoo.cfg.dynamic.100000000",
                "zoo.cfg.dynamic.100000002"
            ]
        );
        assert_eq!(dir.read("zoo.cfg"), f1_static(&d2));
        assert_eq!(
            dir.read("zoo.cfg").len(),
            372 - 54 + d2.to_string_lossy().len()
        );
        assert_eq!(dir.read("zoo.cfg.dynamic.100000002").len(), 117);
        // an older configuration arriving late changes nothing
        assert_eq!(files.write_committed(&first).unwrap(), None);
        assert_eq!(dir.read("zoo.cfg"), f1_static(&d2));

        // restart: the static file and the newest dynamic file; no new .bak
        let cfg = load(&zoo).unwrap();
        assert_eq!(cfg.dynamic_config_file.as_deref(), Some(d2.as_path()));
        let quorum = cfg.quorum.as_ref().unwrap();
        assert_eq!(quorum, &second);
        assert_eq!(cfg.last_seen_quorum, None);
        assert!(!cfg.needs_backup());
        assert_eq!(backup_on_boot(&cfg).unwrap(), None);
    }

    #[test]
    fn f3_legacy_client_port_goes_when_a_reconfig_gives_one() {
        // expected static texts as ZooKeeper 3.8's editStaticConfig writes them (OpenJDK 17)
        let dir = TempDir::new();
        let zoo = dir.path("zoo.cfg");
        let original =
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/d\nreconfigEnabled=true\n\
standaloneEnabled=false\nclientPort=12201\nserver.1=127.0.0.1:12221:12241\n\
server.2=127.0.0.1:12222:12242\nserver.3=127.0.0.1:12223:12243\n";
        fs::write(&zoo, original).unwrap();
        let cfg = load(&zoo).unwrap();
        let files = DynamicFiles::for_config(&cfg, 1).unwrap();
        let first = versioned(&cfg, 0x1_0000_0000);
        files.write_committed(&first).unwrap();
        let d0 = dir.path("zoo.cfg.dynamic.100000000");
        assert_eq!(
            dir.read("zoo.cfg"),
            format!(
                "standaloneEnabled=false\ndataDir=/d\ntickTime=2000\ninitLimit=10\n\
clientPort=12201\nsyncLimit=5\nreconfigEnabled=true\ndynamicConfigFile={}\n",
                d0.display()
            )
        );
        assert_eq!(
            dir.read("zoo.cfg.dynamic.100000000"),
            "server.1=127.0.0.1:12221:12241:participant\n\
             server.2=127.0.0.1:12222:12242:participant\n\
             server.3=127.0.0.1:12223:12243:participant"
        );
        // restart reads the legacy client port from the static file
        let cfg = load(&zoo).unwrap();
        assert_eq!(cfg.client_port, Some(12201));
        assert_eq!(cfg.quorum.as_ref().unwrap().version, 0x1_0000_0000);

        let mut second = first.clone();
        second.members.insert(
            1,
            config::ServerSpec::parse(1, "127.0.0.1:12221:12241:participant;127.0.0.1:12201")
                .unwrap(),
        );
        second.version = 0x1_0000_0004;
        // server 2's view: its line has no client part, it keeps clientPort
        let other = TempDir::new();
        fs::write(other.path("zoo.cfg"), dir.read("zoo.cfg")).unwrap();
        write_committed(&other.path("zoo.cfg"), 2, &second).unwrap();
        assert!(other.read("zoo.cfg").contains("clientPort=12201\n"));
        // server 1's: clientPort goes
        files.write_committed(&second).unwrap();
        let d4 = dir.path("zoo.cfg.dynamic.100000004");
        assert_eq!(
            dir.read("zoo.cfg"),
            format!(
                "standaloneEnabled=false\ndataDir=/d\ntickTime=2000\ninitLimit=10\n\
syncLimit=5\nreconfigEnabled=true\ndynamicConfigFile={}\n",
                d4.display()
            )
        );
        assert_eq!(dir.read("zoo.cfg.dynamic.100000004").len(), 144);
    }

    #[test]
    fn f5_hand_written_unversioned_file_stays_and_the_static_file_is_repointed() {
        let dir = TempDir::new();
        let zoo = dir.path("zoo.cfg");
        let hand = dir.path("zoo.cfg.dynamic");
        let servers = "server.1=127.0.0.1:12221:12241:participant;127.0.0.1:12201\n\
server.2=127.0.0.1:12222:12242:participant;127.0.0.1:12202\n\
server.3=127.0.0.1:12223:12243:participant;127.0.0.1:12203\n";
        fs::write(&hand, servers).unwrap();
        fs::write(
            &zoo,
            format!(
                "tickTime=2000\ndataDir=/d\nreconfigEnabled=true\nstandaloneEnabled=false\n\
dynamicConfigFile={}\n",
                hand.display()
            ),
        )
        .unwrap();
        let cfg = load(&zoo).unwrap();
        assert_eq!(cfg.quorum.as_ref().unwrap().version, 0);
        assert_eq!(cfg.quorum.as_ref().unwrap().members.len(), 3);
        // no .bak with a dynamic file
        assert_eq!(backup_on_boot(&cfg).unwrap(), None);
        let files = DynamicFiles::for_config(&cfg, 1).unwrap();
        files
            .write_committed(&versioned(&cfg, 0x1_0000_0000))
            .unwrap();
        assert_eq!(
            dir.names(),
            ["zoo.cfg", "zoo.cfg.dynamic", "zoo.cfg.dynamic.100000000"]
        );
        assert_eq!(dir.read("zoo.cfg.dynamic"), servers);
        assert_eq!(
            dir.read("zoo.cfg.dynamic.100000000"),
            servers.trim_end_matches('\n')
        );
        assert!(dir.read("zoo.cfg").ends_with(&format!(
            "dynamicConfigFile={}\n",
            dir.path("zoo.cfg.dynamic.100000000").display()
        )));
    }

    #[test]
    fn f2_joiner_gets_the_ensemble_configuration_and_its_static_file_is_split() {
        let dir = TempDir::new();
        let zoo = dir.path("zoo.cfg");
        let original = "tickTime=2000\ndataDir=/d\nreconfigEnabled=true\nstandaloneEnabled=false\n\
server.1=127.0.0.1:12121:12141:participant;127.0.0.1:12101\n\
server.2=127.0.0.1:12122:12142:participant;127.0.0.1:12102\n\
server.4=127.0.0.1:12124:12144:observer;127.0.0.1:12104\n";
        fs::write(&zoo, original).unwrap();
        let cfg = load(&zoo).unwrap();
        backup_on_boot(&cfg).unwrap();
        let mut ensemble = cfg.quorum.clone().unwrap();
        ensemble.members.remove(&4);
        ensemble.version = 0x1_0000_0002;
        let files = DynamicFiles::for_config(&cfg, 4).unwrap();
        files.write_next(&ensemble).unwrap();
        files.write_committed(&ensemble).unwrap();
        assert_eq!(
            dir.names(),
            ["zoo.cfg", "zoo.cfg.bak", "zoo.cfg.dynamic.100000002"]
        );
        assert_eq!(dir.read("zoo.cfg.bak"), original);
        // restarted before being added: absent from its own configuration
        let cfg = load(&zoo).unwrap();
        assert!(!cfg.quorum.unwrap().members.contains_key(&4));
    }

    #[test]
    fn a_proposed_configuration_is_loaded_at_boot_until_it_is_active() {
        let dir = TempDir::new();
        let zoo = dir.path("zoo.cfg");
        fs::write(&zoo, F1).unwrap();
        let cfg = load(&zoo).unwrap();
        let files = DynamicFiles::for_config(&cfg, 1).unwrap();
        let first = versioned(&cfg, 0x1_0000_0000);
        files.write_committed(&first).unwrap();
        let mut second = first.clone();
        second.members.remove(&3);
        second.version = 0x1_0000_0002;
        files.write_next(&second).unwrap();
        // crash before the commit: the restart sees both
        let cfg = load(&zoo).unwrap();
        assert_eq!(cfg.quorum.as_ref(), Some(&first));
        assert_eq!(cfg.last_seen_quorum.as_ref(), Some(&second));
        // committing the older one (e.g. an UPTODATE) keeps the newer proposal
        fs::write(dir.path("zoo.cfg"), F1).unwrap();
        files.write_committed(&first).unwrap();
        assert!(dir.path("zoo.cfg.dynamic.next").exists());
        files.write_committed(&second).unwrap();
        assert!(!dir.path("zoo.cfg.dynamic.next").exists());
        // a .next no newer than the active configuration is ignored at boot
        files.write_next(&first).unwrap();
        assert_eq!(load(&zoo).unwrap().last_seen_quorum, None);
    }

    #[test]
    fn errors_name_the_file() {
        let dir = TempDir::new();
        let zoo = dir.path("zoo.cfg");
        let missing = dir.path("zoo.cfg.dynamic.100000000");
        fs::write(
            &zoo,
            format!("dataDir=/d\ndynamicConfigFile={}\n", missing.display()),
        )
        .unwrap();
        let err = format!("{:#}", load(&zoo).unwrap_err());
        assert!(err.contains(&missing.display().to_string()), "{err}");
        fs::write(&missing, "server.1=h:1:2;3\nclientPort=5\n").unwrap();
        let err = load(&zoo).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}:2: Unrecognised parameter: clientPort",
                missing.display()
            )
        );
        fs::write(&missing, "server.1=h:1:2;3\n").unwrap();
        fs::write(
            dir.path("zoo.cfg.dynamic.next"),
            "server.1=h:1:2;3\nversion=zz\n",
        )
        .unwrap();
        let err = load(&zoo).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}:", dir.path("zoo.cfg.dynamic.next").display())),
            "{err}"
        );
        let err = format!("{:#}", load(&dir.path("nope.cfg")).unwrap_err());
        assert!(err.contains("nope.cfg"), "{err}");
        // a static file that cannot be rewritten
        let err = write_committed(
            &dir.path("absent.cfg"),
            1,
            &QuorumConfig::from_properties(&[]).unwrap(),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("absent.cfg"), "{err:#}");
    }

    #[test]
    fn nothing_is_written_without_reconfig_enabled_or_a_known_path() {
        let dir = TempDir::new();
        let zoo = dir.path("zoo.cfg");
        fs::write(
            &zoo,
            F1.replace("reconfigEnabled=true", "reconfigEnabled=false"),
        )
        .unwrap();
        let cfg = load(&zoo).unwrap();
        assert_eq!(backup_on_boot(&cfg).unwrap(), None);
        assert_eq!(DynamicFiles::for_config(&cfg, 1), None);
        let parsed = ZooCfg::parse(F1, "zoo.cfg").unwrap();
        assert_eq!(backup_on_boot(&parsed).unwrap(), None);
        assert_eq!(DynamicFiles::for_config(&parsed, 1), None);
        assert_eq!(dir.names(), ["zoo.cfg"]);
    }
}
