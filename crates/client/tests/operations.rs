//! Every operation of the 3.8 protocol, against a real Apache ZooKeeper 3.8 standalone
//! server and against zkrs: the same script, the same expected results.

mod common;

use client::{
    open_acl, read_acl, AddWatchMode, CreateMode, Error, EventType, Id, KeeperState, Op, OpResult,
    WatchedEvent, WatcherType, ZooKeeper,
};
use common::{Ensemble, Kind, SUPER_AUTH};
use jute::Acl;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

async fn next_event(events: &mut UnboundedReceiver<WatchedEvent>) -> WatchedEvent {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an event within 10 s")
            .expect("event channel open");
        if ev.event_type != EventType::None {
            return ev;
        }
    }
}

fn ev(t: EventType, path: &str) -> (EventType, Option<String>) {
    (t, Some(path.to_owned()))
}

fn got(e: WatchedEvent) -> (EventType, Option<String>) {
    assert_eq!(e.state, KeeperState::SyncConnected);
    (e.event_type, e.path)
}

/// Polls every future once in order (so their requests are queued in that order), then
/// awaits them all.
async fn in_order<F: Future + Unpin>(mut futs: Vec<F>) -> Vec<F::Output> {
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    loop {
        let done = std::future::poll_fn(|cx| {
            for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
                if o.is_none() {
                    if let Poll::Ready(v) = Pin::new(f).poll(cx) {
                        *o = Some(v);
                    }
                }
            }
            if out.iter().all(Option::is_some) {
                Poll::Ready(true)
            } else {
                Poll::Ready(false)
            }
        })
        .await;
        if done {
            return out.into_iter().map(Option::unwrap).collect();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn every_operation(kind: Kind) {
    let server = Ensemble::standalone(kind);
    let cs = server.connect_string();
    let zk = ZooKeeper::connect(&cs, 10_000).await.unwrap();
    assert_eq!(zk.state(), KeeperState::SyncConnected);
    assert_ne!(zk.session_id(), 0);
    let acl = open_acl();
    let mut events = zk.take_events().unwrap();

    // create in every mode
    assert_eq!(
        zk.create("/t", b"root", &acl, CreateMode::Persistent)
            .await
            .unwrap(),
        "/t"
    );
    assert_eq!(
        zk.create("/t", b"", &acl, CreateMode::Persistent).await,
        Err(Error::NodeExists)
    );
    assert_eq!(
        zk.create("/missing/x", b"", &acl, CreateMode::Persistent)
            .await,
        Err(Error::NoNode)
    );
    let (p, stat) = zk
        .create2("/t/a", b"hello", &acl, CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(p, "/t/a");
    assert_eq!((stat.version, stat.data_length), (0, 5));
    assert_eq!(stat.czxid, stat.mzxid);
    let seq = zk
        .create("/t/s-", b"", &acl, CreateMode::PersistentSequential)
        .await
        .unwrap();
    assert_eq!(seq, "/t/s-0000000001", "parent cversion counts /t/a");
    let eph = zk
        .create("/t/e", b"", &acl, CreateMode::Ephemeral)
        .await
        .unwrap();
    let eseq = zk
        .create("/t/es-", b"", &acl, CreateMode::EphemeralSequential)
        .await
        .unwrap();
    assert!(eseq.starts_with("/t/es-00000000"), "{eseq}");
    let (_, estat) = zk
        .exists(&eph, false)
        .await
        .map(|s| ((), s.unwrap()))
        .unwrap();
    assert_eq!(estat.ephemeral_owner, zk.session_id());
    assert_eq!(
        zk.create("/t/e/child", b"", &acl, CreateMode::Persistent)
            .await,
        Err(Error::NoChildrenForEphemerals)
    );
    let (_, cstat) = zk
        .create2("/t/c", b"", &acl, CreateMode::Container)
        .await
        .unwrap();
    // the container and TTL markers stay inside the server: clients see ephemeralOwner 0
    assert_eq!(cstat.ephemeral_owner, 0);
    assert_eq!(
        zk.create("/t/c2", b"", &acl, CreateMode::Container)
            .await
            .unwrap(),
        "/t/c2"
    );
    let (_, tstat) = zk
        .create_ttl("/t/ttl", b"", &acl, CreateMode::PersistentWithTtl, 60_000)
        .await
        .unwrap();
    assert_eq!(tstat.ephemeral_owner, 0);
    let (tseq, _) = zk
        .create_ttl(
            "/t/ttls-",
            b"",
            &acl,
            CreateMode::PersistentSequentialWithTtl,
            60_000,
        )
        .await
        .unwrap();
    assert!(tseq.starts_with("/t/ttls-"));
    assert!(matches!(
        zk.create("/t/x", b"", &acl, CreateMode::PersistentWithTtl)
            .await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        zk.create("t", b"", &acl, CreateMode::Persistent).await,
        Err(Error::InvalidArgument(_))
    ));

    // get / set / exists / delete with versions
    let (data, stat) = zk.get_data("/t/a", false).await.unwrap();
    assert_eq!((data.as_deref(), stat.version), (Some(&b"hello"[..]), 0));
    assert_eq!(zk.set_data("/t/a", b"x", 5).await, Err(Error::BadVersion));
    let stat = zk.set_data("/t/a", b"world", 0).await.unwrap();
    assert_eq!(stat.version, 1);
    assert_eq!(zk.exists("/t/a", false).await.unwrap(), Some(stat));
    assert_eq!(zk.exists("/t/none", false).await.unwrap(), None);
    assert_eq!(zk.get_data("/t/none", false).await, Err(Error::NoNode));
    assert_eq!(zk.delete("/t/a", 0).await, Err(Error::BadVersion));
    assert_eq!(zk.delete("/t", -1).await, Err(Error::NotEmpty));
    assert_eq!(zk.delete("/t/none", -1).await, Err(Error::NoNode));

    // children
    let mut children = zk.get_children("/t", false).await.unwrap();
    children.sort();
    assert!(children.contains(&"a".to_owned()) && children.contains(&"e".to_owned()));
    let (children2, pstat) = zk.get_children2("/t", false).await.unwrap();
    assert_eq!(pstat.num_children as usize, children2.len());
    assert_eq!(
        zk.get_all_children_number("/t").await.unwrap() as usize,
        children2.len()
    );
    let mut ephemerals = zk.get_ephemerals("/t").await.unwrap();
    ephemerals.sort();
    assert_eq!(ephemerals, vec![eph.clone(), eseq.clone()]);

    // multi: all or nothing
    let results = zk
        .multi(&[
            Op::Create {
                path: "/t/m".into(),
                data: b"1".to_vec(),
                acl: acl.clone(),
                mode: CreateMode::Persistent,
                ttl: None,
            },
            Op::SetData {
                path: "/t/m".into(),
                data: b"2".to_vec(),
                version: 0,
            },
            Op::Check {
                path: "/t/m".into(),
                version: 1,
            },
            Op::Delete {
                path: "/t/c2".into(),
                version: -1,
            },
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    assert!(matches!(&results[0], OpResult::Create { path, .. } if path == "/t/m"));
    assert!(matches!(&results[1], OpResult::SetData { stat } if stat.version == 1));
    assert_eq!(results[2..], [OpResult::Check, OpResult::Delete]);
    let failing = [
        Op::SetData {
            path: "/t/m".into(),
            data: b"3".to_vec(),
            version: -1,
        },
        Op::Check {
            path: "/t/m".into(),
            version: 7,
        },
    ];
    assert_eq!(zk.multi(&failing).await, Err(Error::BadVersion));
    assert_eq!(
        zk.try_multi(&failing).await.unwrap(),
        vec![OpResult::RolledBack, OpResult::Error(Error::BadVersion)]
    );
    assert_eq!(
        zk.get_data("/t/m", false).await.unwrap().0.as_deref(),
        Some(&b"2"[..]),
        "a failed multi changes nothing"
    );
    let reads = zk
        .multi_read(&[
            Op::GetData {
                path: "/t/m".into(),
            },
            Op::GetChildren {
                path: "/t/none".into(),
            },
            Op::GetChildren {
                path: "/t/m".into(),
            },
        ])
        .await
        .unwrap();
    assert!(matches!(&reads[0], OpResult::GetData { data: Some(d), .. } if d == b"2"));
    assert_eq!(reads[1], OpResult::Error(Error::NoNode));
    assert_eq!(reads[2], OpResult::GetChildren { children: vec![] });

    // ACLs and auth
    let (acl_now, _) = zk.get_acl("/t/m").await.unwrap();
    assert_eq!(acl_now, open_acl());
    let s = zk.set_acl("/t/m", &read_acl(), 0).await.unwrap();
    assert_eq!(s.aversion, 1);
    // world:anyone lost ADMIN with the first setAcl
    assert_eq!(zk.set_acl("/t/m", &read_acl(), 1).await, Err(Error::NoAuth));
    assert_eq!(zk.set_data("/t/m", b"", -1).await, Err(Error::NoAuth));
    let who = zk.who_am_i().await.unwrap();
    assert_eq!(who.len(), 1);
    assert_eq!(
        (who[0].auth_scheme.as_str(), who[0].user.as_str()),
        ("ip", "127.0.0.1")
    );
    zk.add_auth("digest", b"alice:secret").await.unwrap();
    let who = zk.who_am_i().await.unwrap();
    assert!(who
        .iter()
        .any(|c| c.auth_scheme == "digest" && c.user == "alice"));
    let creator = vec![Acl {
        perms: jute::perms::ALL,
        id: Id {
            scheme: "auth".into(),
            id: String::new(),
        },
    }];
    zk.create("/t/private", b"p", &creator, CreateMode::Persistent)
        .await
        .unwrap();
    let other = ZooKeeper::connect(&cs, 10_000).await.unwrap();
    assert_eq!(
        other.get_data("/t/private", false).await,
        Err(Error::NoAuth)
    );
    other.add_auth("digest", b"alice:secret").await.unwrap();
    assert!(other.get_data("/t/private", false).await.is_ok());
    other.add_auth("digest", SUPER_AUTH).await.unwrap();

    // sync
    zk.sync("/t").await.unwrap();

    // one-shot watches
    zk.get_data("/t/m", true).await.unwrap();
    assert!(zk.exists("/t/w", true).await.unwrap().is_none());
    zk.get_children("/t", true).await.unwrap();
    other.set_data("/t/m", b"changed", -1).await.unwrap();
    assert_eq!(
        got(next_event(&mut events).await),
        ev(EventType::NodeDataChanged, "/t/m")
    );
    other
        .create("/t/w", b"", &acl, CreateMode::Persistent)
        .await
        .unwrap();
    let mut two = vec![
        got(next_event(&mut events).await),
        got(next_event(&mut events).await),
    ];
    two.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        two,
        vec![
            ev(EventType::NodeChildrenChanged, "/t"),
            ev(EventType::NodeCreated, "/t/w")
        ]
    );
    // persistent and recursive watches fire until removed
    zk.add_watch("/t/w", AddWatchMode::Persistent)
        .await
        .unwrap();
    zk.add_watch("/t", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    other.set_data("/t/w", b"1", -1).await.unwrap();
    // one notification per session, however many of its watches match
    assert_eq!(
        got(next_event(&mut events).await),
        ev(EventType::NodeDataChanged, "/t/w")
    );
    other.set_data("/t/a", b"2", -1).await.unwrap();
    assert_eq!(
        got(next_event(&mut events).await),
        ev(EventType::NodeDataChanged, "/t/a")
    );
    zk.remove_watches("/t/w", WatcherType::Any, false)
        .await
        .unwrap();
    assert_eq!(
        got(next_event(&mut events).await),
        ev(EventType::PersistentWatchRemoved, "/t/w")
    );
    assert_eq!(
        zk.remove_watches("/t/w", WatcherType::Persistent, false)
            .await,
        Err(Error::NoWatcher)
    );
    assert_eq!(
        zk.check_watches("/t/a", WatcherType::Data).await,
        Err(Error::NoWatcher)
    );
    zk.get_data("/t/a", true).await.unwrap();
    zk.check_watches("/t/a", WatcherType::Data).await.unwrap();
    zk.remove_watches("/t/a", WatcherType::Data, false)
        .await
        .unwrap();
    assert_eq!(
        got(next_event(&mut events).await),
        ev(EventType::DataWatchRemoved, "/t/a")
    );
    zk.remove_watches("/t", WatcherType::Any, false)
        .await
        .unwrap();
    assert_eq!(
        got(next_event(&mut events).await),
        ev(EventType::PersistentWatchRemoved, "/t")
    );

    // configuration: a standalone server has no reconfig
    assert!(zk.get_config(false).await.is_ok());
    assert_eq!(
        zk.reconfig(None, Some("1"), None, -1).await,
        Err(Error::ReconfigDisabled)
    );

    // chroot: paths in and out are relative to it, events too
    let rooted = ZooKeeper::connect(&format!("{cs}/t"), 10_000)
        .await
        .unwrap();
    let mut revents = rooted.take_events().unwrap();
    assert_eq!(
        rooted
            .create("/r", b"", &acl, CreateMode::Persistent)
            .await
            .unwrap(),
        "/r"
    );
    assert!(zk.exists("/t/r", false).await.unwrap().is_some());
    assert!(rooted
        .get_children("/", false)
        .await
        .unwrap()
        .contains(&"r".to_owned()));
    rooted.get_data("/r", true).await.unwrap();
    zk.set_data("/t/r", b"x", -1).await.unwrap();
    assert_eq!(
        got(next_event(&mut revents).await),
        ev(EventType::NodeDataChanged, "/r")
    );
    let results = rooted
        .multi(&[Op::Create {
            path: "/r/s-".into(),
            data: vec![],
            acl: acl.clone(),
            mode: CreateMode::PersistentSequential,
            ttl: None,
        }])
        .await
        .unwrap();
    assert!(matches!(&results[0], OpResult::Create { path, .. } if path == "/r/s-0000000000"));

    // pipelining: requests complete in the order they were issued
    let futs: Vec<_> = (0..200)
        .map(|i| {
            Box::pin(zk.create(
                "/t/p-",
                format!("{i}").into_bytes().leak(),
                &acl,
                CreateMode::PersistentSequential,
            ))
        })
        .collect();
    let paths: Vec<String> = in_order(futs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "FIFO completion");
    // cancel-safety: dropping half of the futures after they were sent disturbs nothing
    let mut futs: Vec<_> = (0..100)
        .map(|i| Box::pin(zk.set_data("/t/w", format!("{i}").into_bytes().leak(), -1)))
        .collect();
    std::future::poll_fn(|cx| {
        for f in futs.iter_mut() {
            let _ = f.as_mut().poll(cx);
        }
        Poll::Ready(())
    })
    .await;
    let kept: Vec<_> = futs
        .into_iter()
        .enumerate()
        .filter_map(|(i, f)| (i % 2 == 0).then_some(f))
        .collect();
    let stats: Vec<_> = in_order(kept)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(stats.windows(2).all(|w| w[0].version < w[1].version));
    let (last, stat) = zk.get_data("/t/w", false).await.unwrap();
    assert_eq!(last.as_deref(), Some(&b"99"[..]));
    assert_eq!(stat.version, 101);

    // closing: the session's ephemerals go, the handle reports SessionExpired
    zk.close().await.unwrap();
    assert_eq!(zk.state(), KeeperState::Closed);
    assert_eq!(zk.exists("/t", false).await, Err(Error::SessionExpired));
    assert!(other.exists(&eph, false).await.unwrap().is_none());
    other.close().await.unwrap();
    rooted.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_against_apache_zookeeper() {
    every_operation(Kind::Zk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_against_zkrs() {
    every_operation(Kind::Zkrs).await;
}
