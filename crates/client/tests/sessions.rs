//! Sessions as ZooKeeper's Java client keeps them: failover across a 3-server ensemble with
//! the same session, its ephemerals and its watches (re-registered with SetWatches2), and
//! session expiry after a long disconnection — against Apache ZooKeeper 3.8 and zkrs.

mod common;

use client::{
    open_acl, AddWatchMode, CreateMode, Error, EventType, KeeperState, WatchedEvent, ZooKeeper,
};
use common::{port_of, Ensemble, Kind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;

async fn wait_state(events: &mut UnboundedReceiver<WatchedEvent>, state: KeeperState, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {state} within {secs} s"))
            .expect("events open");
        if ev.event_type == EventType::None && ev.state == state {
            return;
        }
    }
}

async fn wait_node_event(events: &mut UnboundedReceiver<WatchedEvent>) -> (EventType, String) {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(15), events.recv())
            .await
            .expect("a watch event within 15 s")
            .expect("events open");
        if ev.event_type != EventType::None {
            return (ev.event_type, ev.path.unwrap());
        }
    }
}

async fn failover(kind: Kind) {
    let mut ens = Ensemble::start(kind, 3);
    let zk = ZooKeeper::builder(&ens.connect_string())
        .session_timeout(6000)
        .connect()
        .await
        .unwrap();
    let mut events = zk.take_events().unwrap();
    let id = zk.session_id();
    let acl = open_acl();
    zk.create("/eph", b"", &acl, CreateMode::Ephemeral)
        .await
        .unwrap();
    zk.create("/w", b"", &acl, CreateMode::Persistent)
        .await
        .unwrap();
    zk.create("/p", b"", &acl, CreateMode::Persistent)
        .await
        .unwrap();
    zk.get_data("/w", true).await.unwrap();
    zk.exists("/later", true).await.unwrap();
    zk.add_watch("/p", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let first = zk.connected_to().unwrap();
    let victim = ens.sid_of_port(port_of(&first)).unwrap();
    ens.servers.get_mut(&victim).unwrap().kill();
    wait_state(&mut events, KeeperState::Disconnected, 20).await;
    wait_state(&mut events, KeeperState::SyncConnected, 30).await;
    let second = zk.connected_to().unwrap();
    assert_ne!(first, second, "moved to another server");
    assert_eq!(zk.session_id(), id, "same session");
    assert!(
        zk.exists("/eph", false).await.unwrap().is_some(),
        "ephemeral kept"
    );

    // the watches were re-registered on the new server (SetWatches2)
    let others: Vec<String> = ens
        .servers
        .values()
        .filter(|s| s.sid != victim)
        .map(|s| s.connect_string())
        .collect();
    let other = ZooKeeper::connect(&others.join(","), 6000).await.unwrap();
    other.set_data("/w", b"1", -1).await.unwrap();
    assert_eq!(
        wait_node_event(&mut events).await,
        (EventType::NodeDataChanged, "/w".into())
    );
    other
        .create("/later", b"", &acl, CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(
        wait_node_event(&mut events).await,
        (EventType::NodeCreated, "/later".into())
    );
    other
        .create("/p/c", b"", &acl, CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(
        wait_node_event(&mut events).await,
        (EventType::NodeCreated, "/p/c".into())
    );
    other.set_data("/p/c", b"x", -1).await.unwrap();
    assert_eq!(
        wait_node_event(&mut events).await,
        (EventType::NodeDataChanged, "/p/c".into())
    );
    // one-shot watches fired once
    other.set_data("/w", b"2", -1).await.unwrap();
    other.set_data("/p", b"2", -1).await.unwrap();
    assert_eq!(
        wait_node_event(&mut events).await,
        (EventType::NodeDataChanged, "/p".into())
    );
    // update_server_list: a list without our server moves the session to the other one
    let target = others.iter().find(|s| **s != second).unwrap().clone();
    assert!(zk.update_server_list(&target).await.unwrap(), "must move");
    wait_state(&mut events, KeeperState::Disconnected, 10).await;
    wait_state(&mut events, KeeperState::SyncConnected, 30).await;
    assert_eq!(zk.connected_to().as_deref(), Some(target.as_str()));
    assert_eq!(zk.session_id(), id);
    // a list that keeps our server and is no longer never moves it
    assert!(!zk.update_server_list(&target).await.unwrap());
    assert!(zk.exists("/eph", false).await.unwrap().is_some());
    zk.close().await.unwrap();
    // `other` may be on another server: sync before reading (ZooKeeper's consistency model)
    other.sync("/").await.unwrap();
    assert!(other.exists("/eph", false).await.unwrap().is_none());
    other.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_keeps_session_and_watches_apache_zookeeper() {
    failover(Kind::Zk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_keeps_session_and_watches_zkrs() {
    failover(Kind::Zkrs).await;
}

/// A TCP proxy that can cut its connections and refuse new ones (a network partition
/// between the client and the server), or hold back what the server sends.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    hold: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (c, k, hd) = (cut.clone(), conns.clone(), hold.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let hd = hd.clone();
                let h = tokio::spawn(async move {
                    let Ok(out) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let (mut cr, mut cw) = inbound.into_split();
                    let (mut sr, mut sw) = out.into_split();
                    let up = async move {
                        let _ = tokio::io::copy(&mut cr, &mut sw).await;
                    };
                    let down = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match sr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            while hd.load(Ordering::SeqCst) {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            if cw.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    tokio::join!(up, down);
                });
                k.lock().unwrap().push(h);
            }
        });
        Proxy {
            port,
            cut,
            hold,
            conns,
        }
    }

    fn cut(&self, on: bool) {
        self.cut.store(on, Ordering::SeqCst);
        if on {
            for h in self.conns.lock().unwrap().drain(..) {
                h.abort();
            }
        }
    }
}

async fn expiry(kind: Kind) {
    let server = Ensemble::standalone(kind);
    let proxy = Proxy::start(server.port(1)).await;
    let zk = ZooKeeper::builder(&format!("127.0.0.1:{}", proxy.port))
        .session_timeout(2000)
        .connect()
        .await
        .unwrap();
    assert_eq!(zk.session_timeout(), 2000);
    let mut events = zk.take_events().unwrap();
    zk.create("/eph", b"", &open_acl(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let observer = ZooKeeper::connect(&server.connect_string(), 10_000)
        .await
        .unwrap();

    proxy.cut(true);
    wait_state(&mut events, KeeperState::Disconnected, 10).await;
    assert_eq!(zk.state(), KeeperState::Disconnected);
    // while disconnected the session lives on the server until its timeout
    tokio::time::timeout(Duration::from_secs(15), async {
        while observer.exists("/eph", false).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the server expires the session and deletes its ephemeral");
    proxy.cut(false);
    wait_state(&mut events, KeeperState::Expired, 15).await;
    assert_eq!(zk.state(), KeeperState::Expired);
    assert_eq!(zk.exists("/", false).await, Err(Error::SessionExpired));
    observer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_apache_zookeeper() {
    expiry(Kind::Zk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_zkrs() {
    expiry(Kind::Zkrs).await;
}

/// Requests in flight when the connection drops fail with ConnectionLoss; the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_loss_fails_in_flight_requests_only() {
    let server = Ensemble::standalone(Kind::Zkrs);
    let proxy = Proxy::start(server.port(1)).await;
    let zk = ZooKeeper::builder(&format!("127.0.0.1:{}", proxy.port))
        .session_timeout(10_000)
        .connect()
        .await
        .unwrap();
    let mut events = zk.take_events().unwrap();
    let id = zk.session_id();
    zk.create("/n", b"", &open_acl(), CreateMode::Persistent)
        .await
        .unwrap();
    // the server's replies are held back: this request is in flight when the link drops
    proxy.hold.store(true, Ordering::SeqCst);
    let zk2 = zk.clone();
    let inflight = tokio::spawn(async move { zk2.get_data("/n", false).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.cut(true);
    proxy.hold.store(false, Ordering::SeqCst);
    wait_state(&mut events, KeeperState::Disconnected, 10).await;
    assert_eq!(inflight.await.unwrap(), Err(Error::ConnectionLoss));
    // a request made while disconnected waits for the reconnection
    let zk3 = zk.clone();
    let queued = tokio::spawn(async move { zk3.exists("/n", false).await });
    proxy.cut(false);
    wait_state(&mut events, KeeperState::SyncConnected, 15).await;
    assert_eq!(zk.session_id(), id);
    assert!(queued.await.unwrap().unwrap().is_some());
    zk.close().await.unwrap();
}
