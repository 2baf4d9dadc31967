//! Four-letter words over a real socket: each word's lines, keys and order as ZooKeeper 3.8
//! prints them (tests/interop/fourlw-reference holds the recorded Apache ZooKeeper output).

use client::{open_acl, Client};
use jute::CreateMode;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(extra: &str) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("zkrs-fourlw-{}-{nanos}", std::process::id()));
    let text = format!(
        "tickTime=2000\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n{extra}",
        dir.display()
    );
    let cfg = config::ZooCfg::parse(&text, "test.cfg").unwrap();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let stop = async {
            let _ = stop_rx.await;
        };
        server::run(cfg, stop, move |a| {
            let _ = addr_tx.send(a);
        })
        .await
        .unwrap();
    });
    (addr_rx.await.unwrap(), stop_tx)
}

async fn word(addr: SocketAddr, w: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(w.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("answer within 5 s")
        .unwrap();
    String::from_utf8(out).unwrap()
}

/// The line shape of a text: `0x<hex>` becomes `0xH` and every run of digits `N`.
fn shape(text: &str) -> String {
    let mut out = String::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'0'
            && b.get(i + 1) == Some(&b'x')
            && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            out.push_str("0xH");
            i += 2;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
        } else if b[i].is_ascii_digit() {
            out.push('N');
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn keys(text: &str, sep: char) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.split_once(sep).map(|(k, _)| k))
        .collect()
}

fn value<'a>(text: &'a str, key: &str, sep: char) -> &'a str {
    text.lines()
        .find_map(|l| l.split_once(sep).filter(|(k, _)| *k == key).map(|(_, v)| v))
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
}

const VERSION_SHAPE: &str = "N.N.N-zkrs-N.N.N, built on N-N-N N:N UTC";

/// Two sessions with ephemerals and watches, as tests/interop/fourlw_capture.py sets up.
async fn workload(addr: SocketAddr) -> (Client, Client) {
    let a = Client::connect(&addr.to_string(), 10_000).await.unwrap();
    let b = Client::connect(&addr.to_string(), 10_000).await.unwrap();
    a.create("/fourlw", b"", &open_acl(), CreateMode::Persistent)
        .await
        .unwrap();
    a.create("/fourlw/a", b"", &open_acl(), CreateMode::Persistent)
        .await
        .unwrap();
    a.create("/fourlw/eph-a", b"x", &open_acl(), CreateMode::Ephemeral)
        .await
        .unwrap();
    a.get_data("/fourlw/a", true).await.unwrap();
    b.create("/fourlw/eph-b1", b"y", &open_acl(), CreateMode::Ephemeral)
        .await
        .unwrap();
    b.create("/fourlw/eph-b2", b"z", &open_acl(), CreateMode::Ephemeral)
        .await
        .unwrap();
    assert!(b.exists("/fourlw/missing", true).await.unwrap().is_none());
    b.get_data("/fourlw/a", true).await.unwrap();
    (a, b)
}

#[tokio::test]
async fn every_word_prints_zookeepers_lines() {
    let (addr, _stop) = start("4lw.commands.whitelist=*\n").await;
    let (a, b) = workload(addr).await;
    let (sa, sb) = (
        format!("0x{:x}", a.session_id()),
        format!("0x{:x}", b.session_id()),
    );

    assert_eq!(word(addr, "ruok").await, "imok");
    assert_eq!(word(addr, "isro").await, "rw");
    assert_eq!(word(addr, "gtmk").await, "306");
    assert_eq!(word(addr, "hash").await, "");

    // srvr: the summary, in ZooKeeper's order; 9 znodes (4 under /zookeeper and /) + the
    // duplicate root entry ZooKeeper counts
    let srvr = word(addr, "srvr").await;
    let lines: Vec<String> = srvr.lines().map(shape).collect();
    assert_eq!(
        lines,
        [
            format!("Zookeeper version: {VERSION_SHAPE}"),
            "Latency min/avg/max: N/N.N/N".into(),
            "Received: N".into(),
            "Sent: N".into(),
            "Connections: N".into(),
            "Outstanding: N".into(),
            "Zxid: 0xH".into(),
            "Mode: standalone".into(),
            "Node count: N".into(),
        ]
    );
    assert!(srvr.ends_with("Node count: 10\n"), "{srvr}");
    assert_eq!(value(&srvr, "Connections", ':'), " 3");

    // stat: srvr plus a brief line per connection and a blank line
    let stat = word(addr, "stat").await;
    let shapes: Vec<String> = stat.lines().map(shape).collect();
    assert_eq!(shapes[1], "Clients:");
    assert_eq!(shapes[2], " /N.N.N.N:N[N](queued=N,recved=N,sent=N)");
    assert_eq!(shapes[3], shapes[2]);
    assert!(
        stat.lines()
            .nth(4)
            .unwrap()
            .ends_with("[0](queued=0,recved=1,sent=0)"),
        "{stat}"
    );
    assert_eq!(shapes[5], "");
    assert_eq!(shapes[6..], lines[1..]);

    // cons: the full line for connections with a session, then a blank line
    let cons = word(addr, "cons").await;
    let full = " /N.N.N.N:N[N](queued=N,recved=N,sent=N,sid=0xH,lop=GETD,est=N,to=N,lcxid=0xH,lzxid=0xH,lresp=N,llat=N,minlat=N,avglat=N,maxlat=N)";
    let cons_shapes: Vec<String> = cons.lines().map(shape).collect();
    assert_eq!(cons_shapes[..2], [full, full]);
    assert!(
        cons.lines().next().unwrap().contains(&format!("sid={sa},")),
        "{cons}"
    );
    assert!(
        cons.lines().nth(1).unwrap().contains(&format!("sid={sb},")),
        "{cons}"
    );
    assert_eq!(cons_shapes[2], " /N.N.N.N:N[N](queued=N,recved=N,sent=N)");
    assert!(cons.ends_with(")\n\n"), "{cons:?}");

    // mntr: tab-separated, ZooKeeper's keys in ZooKeeper's order
    let mntr = word(addr, "mntr").await;
    assert_eq!(
        keys(&mntr, '\t'),
        [
            "zk_version",
            "zk_server_state",
            "zk_ephemerals_count",
            "zk_num_alive_connections",
            "zk_avg_latency",
            "zk_outstanding_requests",
            "zk_znode_count",
            "zk_global_sessions",
            "zk_packets_sent",
            "zk_packets_received",
            "zk_watch_count",
            "zk_min_latency",
            "zk_max_file_descriptor_count",
            "zk_approximate_data_size",
            "zk_open_file_descriptor_count",
            "zk_local_sessions",
            "zk_uptime",
            "zk_max_latency",
        ]
    );
    assert_eq!(shape(value(&mntr, "zk_version", '\t')), VERSION_SHAPE);
    assert_eq!(value(&mntr, "zk_server_state", '\t'), "standalone");
    assert_eq!(value(&mntr, "zk_ephemerals_count", '\t'), "3");
    assert_eq!(value(&mntr, "zk_znode_count", '\t'), "10");
    assert_eq!(value(&mntr, "zk_global_sessions", '\t'), "2");
    assert_eq!(value(&mntr, "zk_watch_count", '\t'), "3");
    assert_eq!(shape(value(&mntr, "zk_avg_latency", '\t')), "N.N");
    assert!(
        value(&mntr, "zk_open_file_descriptor_count", '\t')
            .parse::<u64>()
            .unwrap()
            > 0
    );

    // conf: the standalone keys
    let conf = word(addr, "conf").await;
    assert_eq!(
        keys(&conf, '='),
        [
            "clientPort",
            "secureClientPort",
            "dataDir",
            "dataDirSize",
            "dataLogDir",
            "dataLogSize",
            "tickTime",
            "maxClientCnxns",
            "minSessionTimeout",
            "maxSessionTimeout",
            "clientPortListenBacklog",
            "serverId",
        ]
    );
    assert!(value(&conf, "dataDir", '=').ends_with("/version-2"));
    assert_eq!(value(&conf, "tickTime", '='), "2000");
    assert_eq!(value(&conf, "minSessionTimeout", '='), "4000");
    assert_eq!(value(&conf, "maxSessionTimeout", '='), "40000");
    assert_eq!(value(&conf, "serverId", '='), "0");

    // envi: ZooKeeper's Environment list without the JVM heap lines
    let envi = word(addr, "envi").await;
    assert!(envi.starts_with("Environment:\nzookeeper.version=3.8.0"));
    assert_eq!(
        keys(&envi, '='),
        [
            "zookeeper.version",
            "host.name",
            "java.version",
            "java.vendor",
            "java.home",
            "java.class.path",
            "java.library.path",
            "java.io.tmpdir",
            "java.compiler",
            "os.name",
            "os.arch",
            "os.version",
            "user.name",
            "user.home",
            "user.dir",
        ]
    );

    // watches: only the data/exists table, as ZooKeeper 3.8 prints them
    assert_eq!(
        word(addr, "wchs").await,
        "2 connections watching 2 paths\nTotal watches:3\n"
    );
    assert_eq!(
        word(addr, "wchc").await,
        format!("{sa}\n\t/fourlw/a\n{sb}\n\t/fourlw/a\n\t/fourlw/missing\n\n")
    );
    assert_eq!(
        word(addr, "wchp").await,
        format!("/fourlw/a\n\t{sa}\n\t{sb}\n/fourlw/missing\n\t{sb}\n\n")
    );

    // dump: sessions and connections by expiry time, ephemerals by session (the two sessions
    // may fall into one expiry set or two: the set headers are checked, then left out)
    let dump = word(addr, "dump").await;
    let expected = [
        "SessionTracker dump:".to_owned(),
        "Session Sets (N)/(N):".into(),
        format!("\t{sa}"),
        format!("\t{sb}"),
        "ephemeral nodes dump:".into(),
        "Sessions with Ephemerals (2):".into(),
        format!("{sa}:"),
        "\t/fourlw/eph-a".into(),
        format!("{sb}:"),
        "\t/fourlw/eph-b1".into(),
        "\t/fourlw/eph-b2".into(),
        "Connections dump:".into(),
        "Connections Sets (N)/(N):".into(),
        format!("\tip: /127.0.0.1:N sessionId: {sa}"),
        format!("\tip: /127.0.0.1:N sessionId: {sb}"),
    ];
    let got: Vec<String> = dump
        .lines()
        .map(dump_line)
        .filter(|l| l != "N expire at <date>:")
        .collect();
    assert_eq!(got, expected, "in\n{dump}");

    // dirs
    let dirs = word(addr, "dirs").await;
    assert_eq!(
        dirs.lines().map(shape).collect::<Vec<_>>(),
        ["datadir_size: N", "logdir_size: N"]
    );

    // resets
    assert_eq!(word(addr, "crst").await, "Connection stats reset.\n");
    let cons = word(addr, "cons").await;
    assert!(cons.contains("lop=NA,"), "{cons}");
    assert_eq!(word(addr, "srst").await, "Server stats reset.\n");
    let srvr = word(addr, "srvr").await;
    assert_eq!(value(&srvr, "Received", ':'), " 1", "{srvr}");
    let _ = (a.close().await, b.close().await);
}

/// A `dump` line with its run-dependent parts (counts, dates, ports) replaced.
fn dump_line(line: &str) -> String {
    if let Some((n, date)) = line.split_once(" expire at ") {
        // java.util.Date: `Tue Nov 24 23:42:41 UTC 2026:`
        let f: Vec<&str> = date.trim_end_matches(':').split(' ').collect();
        let ok = f.len() == 6
            && ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].contains(&f[0])
            && f[1].len() == 3
            && shape(f[2]) == "N"
            && f[2].len() == 2
            && shape(f[3]) == "N:N:N"
            && f[3].len() == 8
            && f[4] == "UTC"
            && shape(f[5]) == "N";
        assert!(ok, "not a java.util.Date: {date}");
        format!("{} expire at <date>:", shape(n))
    } else if line.contains("Sets (") {
        shape(line)
    } else if let Some((ip, session)) = line.split_once(" sessionId: ") {
        format!(
            "{} sessionId: {session}",
            shape(ip).replace("N.N.N.N", "127.0.0.1")
        )
    } else {
        line.to_owned()
    }
}

#[tokio::test]
async fn words_outside_the_whitelist_are_refused_but_srvr_always_runs() {
    let (addr, _stop) = start("4lw.commands.whitelist=ruok\n").await;
    assert_eq!(word(addr, "ruok").await, "imok");
    assert_eq!(
        word(addr, "mntr").await,
        "mntr is not executed because it is not in the whitelist.\n"
    );
    assert_eq!(
        word(addr, "envi").await,
        "envi is not executed because it is not in the whitelist.\n"
    );
    assert!(word(addr, "srvr").await.contains("Mode: standalone\n"));
}
