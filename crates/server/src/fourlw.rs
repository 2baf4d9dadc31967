//! Four-letter words, answered on the client port in ZooKeeper 3.8's formats.
//!
//! Every word prints the same keys, in the same order and with the same line shapes as a
//! standalone Apache ZooKeeper 3.8 server (recorded transcripts: tests/interop/fourlw-reference).
//! Where ZooKeeper prints a value zkrs has no truthful equivalent for (JVM properties and heap
//! sizes, metrics of machinery zkrs does not have), the line is either left out or carries
//! ZooKeeper's own "not available" marker `<NA>`; see the notes at each word.

use crate::clock::now_ms;
use jute::op;
use node::{ConnId, Node};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;

/// The version string zkrs reports (`srvr`, `envi`, `mntr`); kazoo and others parse the number.
pub const VERSION: &str = concat!("3.8.0-zkrs-", env!("CARGO_PKG_VERSION"));

/// ZooKeeper's default trace mask (ZooTrace: client requests, client pings, server packets).
const DEFAULT_TRACE_MASK: i64 = 306;

/// The trace mask `gtmk` reports and `stmk` sets. zkrs has no ZooTrace-style tracing, so the
/// mask is kept (process-wide, as in ZooKeeper) but does not change what is logged.
static TRACE_MASK: AtomicI64 = AtomicI64::new(DEFAULT_TRACE_MASK);

/// The four-letter words, as the int a client sends instead of a packet length.
pub fn is_four_letter_word(first4: [u8; 4]) -> Option<String> {
    let word = std::str::from_utf8(&first4).ok()?;
    config::DEFAULT_FOUR_LETTER_WORDS
        .contains(&word)
        .then(|| word.to_owned())
}

/// `VERSION, built on <date>`, ZooKeeper's "full version". The build date is the time the
/// running executable was written (zkrs has no build script to stamp one in).
pub fn full_version() -> &'static str {
    static FULL: OnceLock<String> = OnceLock::new();
    FULL.get_or_init(|| {
        let built = std::env::current_exe()
            .and_then(std::fs::metadata)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| chrono::DateTime::from_timestamp_millis(d.as_millis() as i64))
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "<NA>".into());
        format!("{VERSION}, built on {built}")
    })
}

/// The refusal of a word that is not whitelisted (the node counted it as a packet already,
/// on the connection and the server, before the check, as ZooKeeper does).
fn admit(core: &Node, word: &str) -> Result<(), String> {
    if core.config().four_letter_whitelist.allows(word) {
        Ok(())
    } else {
        Err(format!(
            "{word} is not executed because it is not in the whitelist.\n"
        ))
    }
}

/// Answers a four-letter word sent on connection `conn`; the caller writes the text and closes.
pub fn run(core: &Node, conn: ConnId, word: &str) -> String {
    if let Err(refusal) = admit(core, word) {
        return refusal;
    }
    let mut out = String::new();
    if core.mode().is_none() && !matches!(word, "ruok" | "isro" | "conf" | "envi" | "dirs") {
        // ZooKeeper answers this while its server has no quorum (looking, syncing)
        return "This ZooKeeper instance is not currently serving requests\n".into();
    }
    match word {
        "ruok" => out.push_str("imok"),
        // a standalone zkrs server is never in read-only mode
        "isro" => out.push_str("rw"),
        "srvr" => server_summary(core, conn, false, &mut out),
        "stat" => server_summary(core, conn, true, &mut out),
        "mntr" => monitor(core, &mut out),
        "conf" => conf(core, &mut out),
        "cons" => {
            for id in sorted_conn_ids(core) {
                connection_info(core, conn, id, false, &mut out);
                out.push('\n');
            }
            out.push('\n');
        }
        // (the node reset them when it counted the word)
        "crst" => out.push_str("Connection stats reset.\n"),
        "srst" => out.push_str("Server stats reset.\n"),
        "envi" => environment(&mut out),
        "wchs" => {
            let w = core.tree().data_watches();
            let _ = write!(
                out,
                "{} connections watching {} paths\nTotal watches:{}",
                w.by_watcher().count(),
                w.path_count(),
                w.watch_count()
            );
            out.push('\n');
        }
        "wchc" => {
            watches_by_session(core, &mut out);
            out.push('\n');
        }
        "wchp" => {
            watches_by_path(core, &mut out);
            out.push('\n');
        }
        "dump" => dump(core, &mut out),
        "dirs" => {
            let (data, log) = data_and_log_dirs(core);
            let _ = writeln!(out, "datadir_size: {}", dir_size(&data));
            let _ = writeln!(out, "logdir_size: {}", dir_size(&log));
        }
        "gtmk" => {
            let _ = write!(out, "{}", TRACE_MASK.load(Ordering::Relaxed));
        }
        // `stmk` carries an 8-byte mask after the word, handled by `run_set_trace_mask`; without
        // the mask ZooKeeper fails the command and closes the connection silently.
        "stmk" => {}
        // ZooKeeper lists the tree digests it logged every 128 zxids; zkrs computes no tree
        // digest, so it answers like ZooKeeper with zookeeper.digest.enabled=false: nothing.
        "hash" => {}
        _ => {
            let _ = writeln!(out, "{word} is not implemented");
        }
    }
    out
}

/// `stmk` with its argument (the big-endian i64 that follows the word): stores the trace mask
/// and prints it back, as ZooKeeper does.
pub fn run_set_trace_mask(core: &Node, mask: i64) -> String {
    if let Err(refusal) = admit(core, "stmk") {
        return refusal;
    }
    TRACE_MASK.store(mask, Ordering::Relaxed);
    mask.to_string()
}

/// srvr and stat: version, (stat: one brief line per connection), the server stats, node count.
fn server_summary(core: &Node, conn: ConnId, with_clients: bool, out: &mut String) {
    let _ = writeln!(out, "Zookeeper version: {}", full_version());
    if with_clients {
        out.push_str("Clients:\n");
        for id in sorted_conn_ids(core) {
            connection_info(core, conn, id, true, out);
            out.push('\n');
        }
        out.push('\n');
    }
    let s = &core.stats();
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{}/{}",
        s.min(),
        java_double(s.avg()),
        s.max()
    );
    let _ = writeln!(out, "Received: {}", s.packets_received);
    let _ = writeln!(out, "Sent: {}", s.packets_sent);
    let _ = writeln!(out, "Connections: {}", core.connections().len());
    // the core answers each request before it takes the next one: nothing is ever in flight
    let _ = writeln!(out, "Outstanding: 0");
    let _ = writeln!(out, "Zxid: 0x{:x}", core.last_zxid());
    let _ = writeln!(out, "Mode: {}", core.mode().unwrap_or("standalone"));
    let _ = writeln!(out, "Node count: {}", zk_node_count(core));
}

/// ZooKeeper's node count: the size of its node table, which holds the root twice (under ""
/// and "/"), so it is one more than the number of znodes. zkrs reports the same number.
fn zk_node_count(core: &Node) -> usize {
    core.tree().node_count() + 1
}

fn sorted_conn_ids(core: &Node) -> Vec<ConnId> {
    let mut ids: Vec<ConnId> = core.connections().keys().copied().collect();
    ids.sort_unstable();
    ids
}

/// One connection as ZooKeeper's ServerCnxn.dumpConnectionInfo prints it, without newline:
/// ` /ip:port[ops](queued=..,recved=..,sent=..[,sid=..,lop=..,...])`.
fn connection_info(core: &Node, asking: ConnId, id: ConnId, brief: bool, out: &mut String) {
    let Some(c) = core.connections().get(&id) else {
        return;
    };
    let s = &c.stats;
    // ZooKeeper prints the selector interest set: 1 (read) for a live connection, 0 for one
    // that no longer reads (the four-letter-word connection itself, or one being closed)
    let interest = if id == asking || c.closing { 0 } else { 1 };
    let _ = write!(
        out,
        " {}[{interest}](queued=0,recved={},sent={}",
        java_socket_address(&c.remote),
        s.received,
        s.sent
    );
    if !brief && c.session_id != 0 {
        let _ = write!(
            out,
            ",sid=0x{:x},lop={},est={},to={}",
            c.session_id,
            op_abbreviation(s.last_op),
            s.established_ms,
            s.session_timeout
        );
        if s.last_cxid >= 0 {
            let _ = write!(out, ",lcxid=0x{:x}", s.last_cxid);
        }
        let _ = write!(
            out,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            s.last_zxid,
            s.last_response_ms,
            s.last_latency,
            s.latency.min(),
            s.latency.avg_whole(),
            s.latency.max()
        );
    }
    out.push(')');
}

/// The short operation names ZooKeeper's FinalRequestProcessor records as a connection's last
/// operation (`lop=` in cons); operations it does not name are `NA`.
fn op_abbreviation(op_type: i32) -> &'static str {
    match op_type {
        op::PING => "PING",
        op::CREATE_SESSION => "SESS",
        op::MULTI => "MULT",
        op::MULTI_READ => "MLTR",
        op::CREATE | op::CREATE2 | op::CREATE_TTL | op::CREATE_CONTAINER => "CREA",
        op::DELETE | op::DELETE_CONTAINER => "DELE",
        op::SET_DATA => "SETD",
        op::RECONFIG => "RECO",
        op::SET_ACL => "SETA",
        op::CLOSE_SESSION => "CLOS",
        op::SYNC => "SYNC",
        op::CHECK => "CHEC",
        op::EXISTS => "EXIS",
        op::GET_DATA => "GETD",
        op::SET_WATCHES => "SETW",
        op::SET_WATCHES2 => "STW2",
        op::ADD_WATCH => "ADDW",
        op::GET_ACL => "GETA",
        op::GET_CHILDREN | op::GET_CHILDREN2 => "GETC",
        op::GET_ALL_CHILDREN_NUMBER => "GETACN",
        op::CHECK_WATCHES => "CHKW",
        op::REMOVE_WATCHES => "REMW",
        op::WHO_AM_I => "HOMI",
        op::GET_EPHEMERALS => "GETE",
        _ => "NA",
    }
}

/// mntr: `zk_<key>\t<value>` lines. The keys are the subset of ZooKeeper 3.8's standalone set
/// that zkrs tracks, in ZooKeeper's order; metrics of machinery zkrs lacks are left out.
fn monitor(core: &Node, out: &mut String) {
    let s = &core.stats();
    let tree = &core.tree();
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "zk_{key}\t{value}");
    };
    line("version", full_version().to_owned());
    line("server_state", core.mode().unwrap_or("standalone").into());
    line("ephemerals_count", tree.ephemeral_count().to_string());
    line(
        "num_alive_connections",
        core.connections().len().to_string(),
    );
    line("avg_latency", java_double(s.avg()));
    line("outstanding_requests", "0".into());
    line("znode_count", zk_node_count(core).to_string());
    line("global_sessions", core.sessions().len().to_string());
    line("packets_sent", s.packets_sent.to_string());
    line("packets_received", s.packets_received.to_string());
    line(
        "watch_count",
        (tree.data_watches().watch_count() + tree.child_watches().watch_count()).to_string(),
    );
    line("min_latency", s.min().to_string());
    let (open_fds, max_fds) = (open_file_descriptors(), max_file_descriptors());
    if let Some(max) = max_fds {
        line("max_file_descriptor_count", max.to_string());
    }
    line(
        "approximate_data_size",
        tree.approximate_data_size().to_string(),
    );
    if let Some(open) = open_fds {
        line("open_file_descriptor_count", open.to_string());
    }
    // zkrs has no local sessions (localSessionsEnabled is not supported)
    line("local_sessions", "0".into());
    line("uptime", (now_ms() - core.started_ms()).max(0).to_string());
    line("max_latency", s.max().to_string());
    if let Some((counts, pending_syncs)) = core.replica().and_then(|z| z.leader_gauges()) {
        // the leader's own lines, as ZooKeeper's leader adds them
        line("learners", counts.learners.to_string());
        line("synced_followers", counts.synced_followers.to_string());
        line(
            "synced_non_voting_followers",
            counts.synced_non_voting_followers.to_string(),
        );
        line("synced_observers", counts.synced_observers.to_string());
        line("pending_syncs", pending_syncs.to_string());
    }
}

/// conf in the standalone format.
fn conf(core: &Node, out: &mut String) {
    let cfg = &core.config();
    let (data, log) = data_and_log_dirs(core);
    let _ = writeln!(
        out,
        "clientPort={}",
        core.client_port().map_or(-1, i32::from)
    );
    // zkrs has no TLS client port; -1 is ZooKeeper's "not configured"
    let _ = writeln!(out, "secureClientPort=-1");
    let _ = writeln!(out, "dataDir={}", data.display());
    let _ = writeln!(out, "dataDirSize={}", dir_size(&data));
    let _ = writeln!(out, "dataLogDir={}", log.display());
    let _ = writeln!(out, "dataLogSize={}", dir_size(&log));
    let _ = writeln!(out, "tickTime={}", cfg.tick_time);
    let _ = writeln!(out, "maxClientCnxns={}", cfg.max_client_cnxns);
    let _ = writeln!(out, "minSessionTimeout={}", cfg.min_session_timeout);
    let _ = writeln!(out, "maxSessionTimeout={}", cfg.max_session_timeout);
    // zkrs listens with the runtime's default backlog and ignores clientPortListenBacklog;
    // -1 is ZooKeeper's "use the default"
    let _ = writeln!(out, "clientPortListenBacklog=-1");
    let Some(z) = core.replica() else {
        // a standalone server has id 0 in ZooKeeper, whatever myid says
        let _ = writeln!(out, "serverId=0");
        return;
    };
    let my_id = z.my_id();
    let active = z.active_config();
    // our own line: from the active configuration, else (removed) the one we started with
    let me = active
        .members
        .get(&my_id)
        .or_else(|| cfg.quorum.as_ref().and_then(|q| q.members.get(&my_id)));
    let _ = writeln!(out, "serverId={my_id}");
    let _ = writeln!(out, "initLimit={}", cfg.init_limit);
    let _ = writeln!(out, "syncLimit={}", cfg.sync_limit);
    // fast leader election, the only algorithm ZooKeeper 3.8 has
    let _ = writeln!(out, "electionAlg=3");
    let _ = writeln!(
        out,
        "electionPort={}",
        me.map_or(-1, |m| i32::from(m.election_port))
    );
    let _ = writeln!(
        out,
        "quorumPort={}",
        me.map_or(-1, |m| i32::from(m.quorum.port))
    );
    let peer_type = me.map_or(0, |m| u8::from(m.role == config::LearnerType::Observer));
    let _ = writeln!(out, "peerType={peer_type}");
    // as ZooKeeper: the configuration's text, no newline after version=
    out.push_str("membership: \n");
    out.push_str(&active.to_config_text());
}

/// The snapshot and txn-log directories, as ZooKeeper names them: `<dir>/version-2`, made
/// absolute against the working directory without normalising (like java.io.File).
///
/// Unlike ZooKeeper 3.8, whose dataDirSize/datadir_size measure the txn-log directory and
/// dataLogSize/logdir_size the snapshot directory, zkrs reports each size for the directory
/// it is named after (the two agree unless dataLogDir is set).
fn data_and_log_dirs(core: &Node) -> (PathBuf, PathBuf) {
    let absolute = |p: &Path| {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|cwd| cwd.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        };
        p.join("version-2")
    };
    (
        absolute(&core.config().data_dir),
        absolute(core.config().log_dir()),
    )
}

/// Total bytes of the files under `path` (0 when it does not exist).
fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

fn open_file_descriptors() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

/// The soft limit on open files (RLIMIT_NOFILE), as the JVM reports it.
fn max_file_descriptors() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    match soft {
        "unlimited" => Some(i64::MAX as u64),
        n => n.parse().ok(),
    }
}

/// envi: ZooKeeper's Environment list. The JVM properties have no zkrs counterpart and get
/// ZooKeeper's own marker for an unset property, `<NA>`; the JVM heap lines are left out.
fn environment(out: &mut String) {
    let na = || "<NA>".to_owned();
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let (user, home) = user_name_and_home();
    let entries: Vec<(&str, String)> = vec![
        ("zookeeper.version", full_version().to_owned()),
        (
            "host.name",
            read("/proc/sys/kernel/hostname")
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(na),
        ),
        ("java.version", na()),
        ("java.vendor", na()),
        ("java.home", na()),
        ("java.class.path", na()),
        ("java.library.path", na()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", na()),
        ("os.name", os_name()),
        ("os.arch", os_arch().to_owned()),
        (
            "os.version",
            read("/proc/sys/kernel/osrelease").unwrap_or_else(na),
        ),
        ("user.name", user.unwrap_or_else(na)),
        ("user.home", home.unwrap_or_else(na)),
        (
            "user.dir",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| na()),
        ),
    ];
    out.push_str("Environment:\n");
    for (key, value) in entries {
        let _ = writeln!(out, "{key}={value}");
    }
}

/// os.name as the JVM spells it.
fn os_name() -> String {
    match std::env::consts::OS {
        "linux" => "Linux".into(),
        "macos" => "Mac OS X".into(),
        "freebsd" => "FreeBSD".into(),
        "windows" => "Windows".into(),
        other => other.into(),
    }
}

/// os.arch as the JVM spells it.
fn os_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        other => other,
    }
}

/// The process's user name and home directory, from its real uid and /etc/passwd.
fn user_name_and_home() -> (Option<String>, Option<String>) {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .and_then(|rest| rest.split_whitespace().next().map(str::to_owned))
            })
        });
    let entry = uid.and_then(|uid| {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2] == uid).then(|| (f[0].to_owned(), f[5].to_owned()))
        })
    });
    match entry {
        Some((name, home)) => (Some(name), Some(home)),
        None => (std::env::var("USER").ok(), std::env::var("HOME").ok()),
    }
}

/// Watchers are connections; the dumps name them by their session.
fn session_of(core: &Node, watcher: u64) -> i64 {
    core.connections().get(&watcher).map_or(0, |c| c.session_id)
}

/// wchc: for each watching session, its watched paths. Like ZooKeeper 3.8 this covers the
/// data/exists watch table (which also holds persistent watches), not child watches.
fn watches_by_session(core: &Node, out: &mut String) {
    let mut rows: Vec<(i64, Vec<&String>)> = core
        .tree()
        .data_watches()
        .by_watcher()
        .map(|(w, paths)| {
            let mut paths: Vec<&String> = paths.iter().collect();
            paths.sort();
            (session_of(core, *w), paths)
        })
        .collect();
    rows.sort();
    for (session, paths) in rows {
        let _ = writeln!(out, "0x{session:x}");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
}

/// wchp: for each watched path, the sessions watching it (data/exists table, as wchc).
fn watches_by_path(core: &Node, out: &mut String) {
    let rows: BTreeMap<&String, Vec<i64>> = core
        .tree()
        .data_watches()
        .by_path()
        .map(|(p, watchers)| {
            let mut sessions: Vec<i64> =
                watchers.into_iter().map(|w| session_of(core, w)).collect();
            sessions.sort_unstable();
            (p, sessions)
        })
        .collect();
    for (path, sessions) in rows {
        let _ = writeln!(out, "{path}");
        for s in sessions {
            let _ = writeln!(out, "\t0x{s:x}");
        }
    }
}

/// dump: sessions by expiry time, ephemerals by session, connections by expiry time.
fn dump(core: &Node, out: &mut String) {
    out.push_str("SessionTracker dump:\n");
    let mut sessions: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for s in core.sessions().iter() {
        sessions.entry(s.expires_at).or_default().push(s.id);
    }
    out.push_str("Session ");
    expiry_sets(out, &mut sessions, core.sessions().len(), |id| {
        format!("0x{id:x}")
    });

    out.push_str("ephemeral nodes dump:\n");
    let mut owners: Vec<(&i64, _)> = core.tree().ephemerals().iter().collect();
    owners.sort_by_key(|(id, _)| **id);
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", owners.len());
    for (id, paths) in owners {
        let _ = writeln!(out, "0x{id:x}:");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }

    // A zkrs connection lives as long as its session: it is closed when the session expires.
    // Connections without a session have no deadline in zkrs and are not listed.
    out.push_str("Connections dump:\n");
    let mut conns: BTreeMap<i64, Vec<ConnId>> = BTreeMap::new();
    let mut listed = 0;
    for id in sorted_conn_ids(core) {
        let c = &core.connections()[&id];
        if let Some(s) = core
            .sessions()
            .get(c.session_id)
            .filter(|_| c.session_id != 0)
        {
            conns.entry(s.expires_at).or_default().push(id);
            listed += 1;
        }
    }
    out.push_str("Connections ");
    expiry_sets(out, &mut conns, listed, |id| {
        let c = &core.connections()[&id];
        format!(
            "ip: {} sessionId: 0x{:x}",
            java_socket_address(&c.remote),
            c.session_id
        )
    });
}

/// ZooKeeper's ExpiryQueue dump: `Sets (<times>)/(<elements>):`, then per expiry time
/// `<n> expire at <date>:` and one tab-indented element per line.
fn expiry_sets<T: Copy + Ord>(
    out: &mut String,
    sets: &mut BTreeMap<i64, Vec<T>>,
    total: usize,
    show: impl Fn(T) -> String,
) {
    let _ = writeln!(out, "Sets ({})/({}):", sets.len(), total);
    for (at, elems) in sets.iter_mut() {
        elems.sort_unstable();
        // expiry is on the monotonic clock: shown as a date the way ZooKeeper's
        // Time.elapsedTimeToDate does
        let wall = *at - crate::clock::mono_ms() + crate::clock::now_ms();
        let _ = writeln!(out, "{} expire at {}:", elems.len(), java_date(wall));
        for e in elems {
            let _ = writeln!(out, "\t{}", show(*e));
        }
    }
}

/// A socket address as java.net.InetSocketAddress prints an unresolved-host address:
/// `/127.0.0.1:2181`, `/[0:0:0:0:0:0:0:1]:2181`.
fn java_socket_address(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("/{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => {
            let groups: Vec<String> = a.ip().segments().iter().map(|g| format!("{g:x}")).collect();
            let scope = if a.scope_id() != 0 {
                format!("%{}", a.scope_id())
            } else {
                String::new()
            };
            format!("/[{}{scope}]:{}", groups.join(":"), a.port())
        }
    }
}

/// A double as Java's Double.toString prints it: `0.0`, `1.3571`, `1.0E-4`, `1.2345E7`.
fn java_double(v: f64) -> String {
    if v == 0.0 {
        return "0.0".into();
    }
    let magnitude = v.abs();
    if (1e-3..1e7).contains(&magnitude) {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{v:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_owned()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exponent}")
    }
}

/// A wall-clock time in ms as java.util.Date prints it, in UTC: `Tue Nov 24 23:42:41 UTC 2026`.
fn java_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a %b %d %H:%M:%S UTC %Y")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_like_java() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(2.0), "2.0");
        assert_eq!(java_double(1.3571), "1.3571");
        assert_eq!(java_double(0.0001), "1.0E-4");
        assert_eq!(java_double(12_345_678.0), "1.2345678E7");
    }

    #[test]
    fn dates_print_like_java_util_date_in_utc() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        // from ZooKeeper's own dump: est=1795563750610 is Nov 24 2026
        assert_eq!(java_date(1_795_563_761_000), "Tue Nov 24 23:42:41 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn socket_addresses_print_like_java() {
        assert_eq!(
            java_socket_address(&"127.0.0.1:2181".parse().unwrap()),
            "/127.0.0.1:2181"
        );
        assert_eq!(
            java_socket_address(&"[::1]:2181".parse().unwrap()),
            "/[0:0:0:0:0:0:0:1]:2181"
        );
    }

    #[test]
    fn version_is_what_kazoo_parses() {
        assert!(full_version().starts_with("3.8.0-zkrs-"));
        assert!(full_version().contains(", built on "));
    }

    #[test]
    fn stmk_sets_what_gtmk_reports_and_both_count_as_packets() {
        use node::{Action, Event, Now};
        let cfg =
            config::ZooCfg::parse("dataDir=/nonexistent\n4lw.commands.whitelist=*\n", "t.cfg")
                .unwrap();
        let now = Now {
            mono_ms: 1_000,
            wall_ms: 0,
        };
        let mut core = Node::new(std::sync::Arc::new(cfg), now);
        let remote = "127.0.0.1:5000".parse().unwrap();
        core.handle(now, Event::Accepted { conn: 7, remote });
        // the node counts each word and asks for its answer, then for the close
        let answer = |core: &mut Node, word: &str, arg: Option<i64>| {
            let word = word.to_owned();
            core.handle(now, Event::FourLetter { conn: 7, word, arg });
            let actions = core.take_actions();
            assert!(matches!(
                actions.as_slice(),
                [Action::AnswerFourLetter { .. }, Action::Close { .. }]
                    | [Action::AnswerFourLetter { .. }]
            ));
            match &actions[0] {
                Action::AnswerFourLetter {
                    word,
                    arg: Some(mask),
                    ..
                } if word == "stmk" => run_set_trace_mask(core, *mask),
                Action::AnswerFourLetter { word, .. } => run(core, 7, word),
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(answer(&mut core, "stmk", Some(511)), "511");
        assert_eq!(answer(&mut core, "gtmk", None), "511");
        assert_eq!(answer(&mut core, "stmk", Some(DEFAULT_TRACE_MASK)), "306");
        assert_eq!(core.stats().packets_received, 3);
        assert_eq!(core.connections()[&7].stats.received, 3);
        let cons = answer(&mut core, "cons", None);
        assert_eq!(cons, " /127.0.0.1:5000[0](queued=0,recved=4,sent=0)\n\n");
    }

    #[test]
    fn every_operation_zookeeper_names_has_its_abbreviation() {
        assert_eq!(op_abbreviation(-99), "NA");
        assert_eq!(op_abbreviation(op::GET_CHILDREN2), "GETC");
        assert_eq!(op_abbreviation(op::AUTH), "NA");
    }
}
