//! Starts real servers for the client's integration tests: Apache ZooKeeper 3.8 (Debian's
//! package) or zkrs (target/release/zkrs), standalone or as a replicated ensemble, on free
//! loopback ports. Every process is killed when its handle is dropped.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SUPER_AUTH: &[u8] = b"super:test";
// digest of super:test
const SUPER_DIGEST: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";
const ZK_JARS: [&str; 4] = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
    "/usr/share/java/servlet-api.jar",
];
pub const TICK_MS: u64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Zk,
    Zkrs,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Zk => "zk",
            Kind::Zkrs => "zkrs",
        }
    }
}

pub fn zkrs_binary() -> PathBuf {
    if let Ok(p) = std::env::var("ZKRS_BIN") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/zkrs")
}

/// Fails (never skips) with what to install when a server of `kind` cannot run here.
pub fn check_prerequisites(kind: Kind) {
    match kind {
        Kind::Zk => {
            let missing: Vec<&str> = ZK_JARS
                .iter()
                .copied()
                .filter(|j| !Path::new(j).exists())
                .collect();
            let java = Command::new("java")
                .arg("-version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok();
            assert!(
                java && missing.is_empty(),
                "Apache ZooKeeper 3.8 is not installed (missing java or {missing:?}): \
                 apt-get install -y zookeeper zookeeper-bin"
            );
        }
        Kind::Zkrs => assert!(
            zkrs_binary().exists(),
            "{} is missing: build it with `cargo build --release`",
            zkrs_binary().display()
        ),
    }
}

static PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A free loopback port below the kernel's ephemeral range (outgoing connections cannot
/// take it between our check and the server's bind).
pub fn free_port() -> u16 {
    let mut handed = PORTS.lock().unwrap();
    let handed = handed.get_or_insert_with(HashSet::new);
    loop {
        let port = 12000 + (rand::random::<u16>() % 18000);
        if handed.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed.insert(port);
            return port;
        }
    }
}

pub fn four_letter_word(port: u16, word: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(word.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Mode from `srvr` ("leader", "follower", "observer", "standalone") while serving.
pub fn mode(port: u16) -> Option<String> {
    let srvr = four_letter_word(port, "srvr").ok()?;
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(|m| m.trim().to_owned())
}

/// The Zxid line of `srvr`.
pub fn srvr_zxid(port: u16) -> Option<i64> {
    let srvr = four_letter_word(port, "srvr").ok()?;
    srvr.lines()
        .find_map(|l| l.strip_prefix("Zxid: 0x"))
        .and_then(|z| i64::from_str_radix(z.trim(), 16).ok())
}

/// Connections per server as `cons` lists them (one line per connection, ours included).
pub fn connection_count(port: u16) -> usize {
    four_letter_word(port, "cons")
        .map(|c| {
            c.lines()
                .filter(|l| l.trim_start().starts_with('/'))
                .count()
        })
        .unwrap_or(0)
}

pub struct Server {
    pub kind: Kind,
    pub sid: u64,
    pub port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
    pub role: &'static str,
    pub dir: PathBuf,
    pub cfg: Vec<(String, String)>,
    child: Option<Child>,
}

impl Server {
    fn new(kind: Kind, sid: u64, base: &Path) -> Server {
        let dir = base.join(format!("server{sid}"));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        Server {
            kind,
            sid,
            port: free_port(),
            quorum_port: free_port(),
            election_port: free_port(),
            role: "participant",
            dir,
            cfg: Vec::new(),
            child: None,
        }
    }

    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `server.N=127.0.0.1:Q:E:role;127.0.0.1:C`
    pub fn spec(&self, role: &str) -> String {
        format!(
            "server.{}=127.0.0.1:{}:{}:{role};127.0.0.1:{}",
            self.sid, self.quorum_port, self.election_port, self.port
        )
    }

    fn base_cfg(&self) -> Vec<(String, String)> {
        let kv = |k: &str, v: String| (k.to_owned(), v);
        vec![
            kv("tickTime", TICK_MS.to_string()),
            kv("initLimit", "20".into()),
            kv("syncLimit", "10".into()),
            kv("dataDir", self.dir.join("data").display().to_string()),
            kv("4lw.commands.whitelist", "*".into()),
            kv("admin.enableServer", "false".into()),
            kv("maxClientCnxns", "0".into()),
            kv("extendedTypesEnabled", "true".into()),
            kv(
                "DigestAuthenticationProvider.superDigest",
                SUPER_DIGEST.into(),
            ),
        ]
    }

    pub fn launch(&mut self) {
        let cfg_path = self.dir.join("zoo.cfg");
        let mut text: String = self.cfg.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        if self.kind == Kind::Zkrs {
            text.push_str("znode.container.checkIntervalMs=1000\n");
        }
        std::fs::write(&cfg_path, text).unwrap();
        std::fs::write(self.dir.join("data/myid"), format!("{}\n", self.sid)).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.out"))
            .unwrap();
        let mut cmd = match self.kind {
            Kind::Zkrs => {
                let mut c = Command::new(zkrs_binary());
                c.arg("server").arg(&cfg_path);
                c
            }
            Kind::Zk => {
                let log4j = self.dir.join("log4j.properties");
                std::fs::write(
                    &log4j,
                    format!(
                        "log4j.rootLogger=INFO, FILE\n\
                         log4j.appender.FILE=org.apache.log4j.FileAppender\n\
                         log4j.appender.FILE.File={}/server.log4j.log\n\
                         log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n\
                         log4j.appender.FILE.layout.ConversionPattern=%d{{ISO8601}} %-5p [%t] %c{{1}} - %m%n\n",
                        self.dir.display()
                    ),
                )
                .unwrap();
                let mut c = Command::new("java");
                c.args([
                    "-Xmx192m",
                    "-XX:+UseSerialGC",
                    "-XX:TieredStopAtLevel=1",
                    &format!("-Dlog4j.configuration=file:{}", log4j.display()),
                    "-Dznode.container.checkIntervalMs=1000",
                    "-Dzookeeper.admin.enableServer=false",
                    "-cp",
                    &ZK_JARS.join(":"),
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                ])
                .arg(&cfg_path);
                c
            }
        };
        cmd.current_dir(&self.dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("start server process"));
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn wait_serving(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if mode(self.port).is_some() {
                return;
            }
            assert!(
                self.running(),
                "{} server {} exited; see {}",
                self.kind.name(),
                self.sid,
                self.dir.join("server.out").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{} server {} did not serve within {timeout:?}; see {}",
            self.kind.name(),
            self.sid,
            self.dir.display()
        );
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A standalone server, or an ensemble of `n` participants (sids 1..=n).
pub struct Ensemble {
    pub kind: Kind,
    pub servers: BTreeMap<u64, Server>,
    base: PathBuf,
}

fn temp_base(kind: Kind) -> PathBuf {
    let base = std::env::temp_dir().join(format!(
        "zkrs-client-{}-{}-{}",
        kind.name(),
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&base).unwrap();
    base
}

impl Ensemble {
    pub fn standalone(kind: Kind) -> Ensemble {
        check_prerequisites(kind);
        let base = temp_base(kind);
        let mut s = Server::new(kind, 1, &base);
        s.cfg = s.base_cfg();
        s.cfg.push(("clientPort".into(), s.port.to_string()));
        s.cfg.push(("clientPortAddress".into(), "127.0.0.1".into()));
        s.launch();
        s.wait_serving(Duration::from_secs(60));
        Ensemble {
            kind,
            servers: BTreeMap::from([(1, s)]),
            base,
        }
    }

    /// `n` participants with reconfigEnabled and standaloneEnabled=false (the super user is
    /// super:test).
    pub fn start(kind: Kind, n: u64) -> Ensemble {
        check_prerequisites(kind);
        let base = temp_base(kind);
        let mut servers: BTreeMap<u64, Server> = (1..=n)
            .map(|sid| (sid, Server::new(kind, sid, &base)))
            .collect();
        let lines: Vec<String> = servers.values().map(|s| s.spec("participant")).collect();
        for s in servers.values_mut() {
            s.cfg = s.base_cfg();
            s.cfg.push(("reconfigEnabled".into(), "true".into()));
            s.cfg.push(("standaloneEnabled".into(), "false".into()));
            for l in &lines {
                let (k, v) = l.split_once('=').unwrap();
                s.cfg.push((k.into(), v.into()));
            }
            s.launch();
        }
        for s in servers.values_mut() {
            s.wait_serving(Duration::from_secs(90));
        }
        Ensemble {
            kind,
            servers,
            base,
        }
    }

    /// Starts server `sid` as a joiner: `current` (the committed config's server lines)
    /// plus itself with `role`. It serves once it has synced with the leader.
    pub fn add_joiner(&mut self, sid: u64, role: &'static str, current: &str) -> &Server {
        let mut s = Server::new(self.kind, sid, &self.base);
        s.role = role;
        s.cfg = s.base_cfg();
        s.cfg.push(("reconfigEnabled".into(), "true".into()));
        s.cfg.push(("standaloneEnabled".into(), "false".into()));
        for line in current.lines().filter(|l| l.starts_with("server.")) {
            let (k, v) = line.split_once('=').unwrap();
            if k != format!("server.{sid}") {
                s.cfg.push((k.into(), v.into()));
            }
        }
        let mine = s.spec(role);
        let (k, v) = mine.split_once('=').unwrap();
        s.cfg.push((k.into(), v.into()));
        s.launch();
        s.wait_serving(Duration::from_secs(90));
        self.servers.insert(sid, s);
        &self.servers[&sid]
    }

    pub fn connect_string(&self) -> String {
        self.servers
            .values()
            .map(|s| s.connect_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn port(&self, sid: u64) -> u16 {
        self.servers[&sid].port
    }

    pub fn sid_of_port(&self, port: u16) -> Option<u64> {
        self.servers
            .values()
            .find(|s| s.port == port)
            .map(|s| s.sid)
    }

    pub fn leader(&self) -> Option<u64> {
        self.servers
            .values()
            .find(|s| mode(s.port).as_deref() == Some("leader"))
            .map(|s| s.sid)
    }

    /// Waits until a leader serves; returns its sid.
    pub fn wait_for_leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(l) = self.leader() {
                return l;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no leader within {timeout:?}")
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for s in self.servers.values_mut() {
            s.kill();
        }
        if std::env::var_os("KEEP_SERVER_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

pub fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}
