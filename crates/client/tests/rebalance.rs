//! Client rebalancing (reconfiguration manual §5; Shraer et al., ATC 2012 §4–5.1).
//!
//! Statistically, over the HostProvider alone: 10,000 simulated clients spread uniformly over
//! the servers, then the server list changes (3 → 5, 5 → 3, one server replaced): the load
//! per server stays within ±3% of uniform and only the minimum share of clients moves.
//!
//! End to end: ~200 real sessions with auto-rebalance against a real zkrs ensemble grown
//! from 3 to 5 servers by reconfig; connections per server (`cons`) before and after.

mod common;

use client::{HostProvider, ZooKeeper};
use common::{connection_count, Ensemble, Kind, SUPER_AUTH};
use std::collections::BTreeMap;
use std::time::Duration;

fn servers(ids: &[u32]) -> Vec<String> {
    ids.iter().map(|i| format!("10.0.0.{i}:2181")).collect()
}

struct Sim {
    clients: Vec<(HostProvider, String)>,
}

impl Sim {
    /// `n` clients, exactly uniform over `list` (client i on server i mod |list|).
    fn uniform(n: usize, list: &[String], seed: u64) -> Sim {
        let clients = (0..n)
            .map(|i| {
                let mut hp = HostProvider::new(list.to_vec(), seed * 1_000_003 + i as u64);
                let want = &list[i % list.len()];
                while hp.next_server() != want {}
                hp.on_connected();
                (hp, want.clone())
            })
            .collect();
        Sim { clients }
    }

    /// Applies a new list to every client; returns how many moved.
    fn update(&mut self, list: &[String]) -> usize {
        let mut moved = 0;
        for (hp, server) in self.clients.iter_mut() {
            if hp.update_server_list(list.to_vec(), Some(server)) {
                let next = hp.next_server().to_owned();
                hp.on_connected();
                if next != *server {
                    moved += 1;
                }
                *server = next;
            }
        }
        moved
    }

    fn load(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (_, s) in &self.clients {
            *m.entry(s.clone()).or_insert(0) += 1;
        }
        m
    }
}

/// Per-server deviation from the fair share, in percent of the fair share.
fn deviations(sim: &Sim, list: &[String], step: &str) -> Vec<f64> {
    let load = sim.load();
    assert!(
        load.keys().all(|s| list.contains(s)),
        "{step}: clients left on removed servers: {load:?}"
    );
    let fair = sim.clients.len() as f64 / list.len() as f64;
    let devs: Vec<f64> = list
        .iter()
        .map(|s| (*load.get(s).unwrap_or(&0) as f64 - fair) / fair * 100.0)
        .collect();
    println!(
        "{step}: load per server {:?}, deviations {:?} %",
        list.iter()
            .map(|s| load.get(s).copied().unwrap_or(0))
            .collect::<Vec<_>>(),
        devs.iter()
            .map(|d| (d * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
    devs
}

/// The rebalancing is probabilistic (each client decides alone, as in ZooKeeper), so one
/// trial of 10,000 clients has a binomial spread of about ±2% (1σ) on a server that receives
/// clients: every trial must be within ±5%, and the load averaged over the trials — the
/// expected load the algorithm equalizes — within ±3% of uniform.
fn assert_uniform(trials: &[Vec<f64>], step: &str) {
    for (i, t) in trials.iter().enumerate() {
        for d in t {
            assert!(
                d.abs() <= 5.0,
                "{step}: trial {i}: deviation {d:.2}% ({t:?})"
            );
        }
    }
    let n = trials.len() as f64;
    for server in 0..trials[0].len() {
        let mean = trials.iter().map(|t| t[server]).sum::<f64>() / n;
        println!("{step}: server {server}: mean deviation over {n} trials {mean:+.2}%");
        assert!(
            mean.abs() <= 3.0,
            "{step}: server {server}: mean deviation {mean:.2}%"
        );
    }
}

#[test]
fn grow_3_to_5_moves_two_fifths_and_stays_uniform() {
    let mut trials = Vec::new();
    for seed in 0..5 {
        let (old, new) = (servers(&[1, 2, 3]), servers(&[1, 2, 3, 4, 5]));
        let mut sim = Sim::uniform(10_000, &old, seed);
        let before: Vec<String> = sim.clients.iter().map(|(_, s)| s.clone()).collect();
        let moved = sim.update(&new);
        trials.push(deviations(&sim, &new, &format!("3 -> 5 (seed {seed})")));
        let fraction = moved as f64 / 10_000.0;
        println!(
            "3 -> 5 (seed {seed}): {moved} of 10000 clients moved ({:.2}%, minimum 40%)",
            fraction * 100.0
        );
        assert!((fraction - 0.4).abs() <= 0.02, "moved {fraction}");
        // only to the new servers: nobody moves between old ones
        for ((_, now), was) in sim.clients.iter().zip(&before) {
            assert!(
                now == was || servers(&[4, 5]).contains(now),
                "{was} -> {now}"
            );
        }
    }
    assert_uniform(&trials, "3 -> 5");
}

#[test]
fn shrink_5_to_3_moves_only_the_clients_of_removed_servers() {
    let mut trials = Vec::new();
    for seed in 0..5 {
        let (old, new) = (servers(&[1, 2, 3, 4, 5]), servers(&[1, 2, 3]));
        let mut sim = Sim::uniform(10_000, &old, seed);
        let before: Vec<String> = sim.clients.iter().map(|(_, s)| s.clone()).collect();
        let moved = sim.update(&new);
        trials.push(deviations(&sim, &new, &format!("5 -> 3 (seed {seed})")));
        println!("5 -> 3 (seed {seed}): {moved} of 10000 clients moved (minimum 4000)");
        assert_eq!(moved, 4_000, "exactly the clients of servers 4 and 5");
        for ((_, now), was) in sim.clients.iter().zip(&before) {
            assert!(!new.contains(was) || now == was, "{was} -> {now}");
        }
    }
    assert_uniform(&trials, "5 -> 3");
}

#[test]
fn replacing_a_server_moves_only_its_clients_to_the_new_one() {
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for seed in 0..5 {
        let (old, new) = (servers(&[1, 2, 3]), servers(&[1, 2, 4]));
        let mut sim = Sim::uniform(9_999, &old, seed);
        let before: Vec<String> = sim.clients.iter().map(|(_, s)| s.clone()).collect();
        let moved = sim.update(&new);
        one.push(deviations(
            &sim,
            &new,
            &format!("replace 3 by 4 (seed {seed})"),
        ));
        println!("replace (seed {seed}): {moved} of 9999 clients moved (minimum 3333)");
        assert_eq!(moved, 3_333);
        for ((_, now), was) in sim.clients.iter().zip(&before) {
            assert!(
                now == was || (was == &old[2] && now == &new[2]),
                "{was} -> {now}"
            );
        }
        // and 5 -> replace two at once
        let five = servers(&[1, 2, 3, 4, 5]);
        let mut sim = Sim::uniform(10_000, &five, seed);
        let moved = sim.update(&servers(&[1, 2, 3, 6, 7]));
        two.push(deviations(
            &sim,
            &servers(&[1, 2, 3, 6, 7]),
            &format!("replace 4,5 by 6,7 (seed {seed})"),
        ));
        assert_eq!(moved, 4_000);
    }
    assert_uniform(&one, "replace 3 by 4");
    assert_uniform(&two, "replace 4,5 by 6,7");
}

fn per_server(zks: &[ZooKeeper], ens: &Ensemble) -> BTreeMap<u64, usize> {
    let mut m: BTreeMap<u64, usize> = ens.servers.keys().map(|s| (*s, 0)).collect();
    for zk in zks {
        if let Some(addr) = zk.connected_to() {
            *m.entry(ens.sid_of_port(common::port_of(&addr)).unwrap())
                .or_insert(0) += 1;
        }
    }
    m
}

fn cons(ens: &Ensemble) -> BTreeMap<u64, usize> {
    // minus one: `cons` lists the connection that asks
    ens.servers
        .iter()
        .map(|(sid, s)| (*sid, connection_count(s.port).saturating_sub(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_rebalance_after_growing_a_zkrs_ensemble_from_3_to_5() {
    auto_rebalance(Kind::Zkrs).await;
}

/// The same against Apache ZooKeeper 3.8 (the oracle for the client's side of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_rebalance_after_growing_a_zookeeper_ensemble_from_3_to_5() {
    auto_rebalance(Kind::Zk).await;
}

async fn auto_rebalance(kind: Kind) {
    const SESSIONS: usize = 200;
    let mut ens = Ensemble::start(kind, 3);
    let cs = ens.connect_string();
    let mut zks = Vec::new();
    for i in 0..SESSIONS {
        zks.push(
            ZooKeeper::builder(&cs)
                .session_timeout(20_000)
                .seed(i as u64)
                .auto_rebalance(Duration::from_secs(3))
                .connect()
                .await
                .unwrap(),
        );
    }
    let ids: Vec<i64> = zks.iter().map(|z| z.session_id()).collect();
    let admin = ZooKeeper::connect(&cs, 20_000).await.unwrap();
    admin.add_auth("digest", SUPER_AUTH).await.unwrap();
    let before = per_server(&zks, &ens);
    let cons_before = cons(&ens);
    println!(
        "{}: before: sessions per server {before:?}; cons {cons_before:?}",
        kind.name()
    );
    let on_before: Vec<String> = zks.iter().map(|z| z.connected_to().unwrap()).collect();

    // two joiners started with the current configuration plus themselves, then one reconfig
    let (current, _) = admin.get_config(false).await.unwrap();
    let current = String::from_utf8(current).unwrap();
    ens.add_joiner(4, "participant", &current);
    ens.add_joiner(5, "participant", &current);
    let joining = format!(
        "{},{}",
        ens.servers[&4].spec("participant"),
        ens.servers[&5].spec("participant")
    );
    admin
        .reconfig_and_wait(Some(&joining), None, None, -1)
        .await
        .unwrap();

    // the clients move within their random delay (< 3 s); wait until they have settled
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let mut stable_since = tokio::time::Instant::now();
    let mut last = per_server(&zks, &ens);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = per_server(&zks, &ens);
        let connected: usize = now.values().sum();
        if now != last || connected < SESSIONS {
            stable_since = tokio::time::Instant::now();
            last = now.clone();
        } else if stable_since.elapsed() > Duration::from_secs(4) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "clients did not settle: {now:?}"
        );
    }
    let after = per_server(&zks, &ens);
    let cons_after = cons(&ens);
    let moved = zks
        .iter()
        .zip(&on_before)
        .filter(|(z, was)| z.connected_to().as_ref() != Some(*was))
        .count();
    println!("{}: after: sessions per server {after:?}; cons {cons_after:?}; {moved} of {SESSIONS} sessions moved (expected 2/5 = 80)", kind.name());
    // the same sessions, all of them connected
    assert_eq!(zks.iter().map(|z| z.session_id()).collect::<Vec<_>>(), ids);
    assert_eq!(after.values().sum::<usize>(), SESSIONS);
    // 200 clients: 40 per server expected, binomial spread about ±6
    for (sid, n) in &after {
        assert!(
            (22..=58).contains(n),
            "server {sid} has {n} sessions: {after:?}"
        );
    }
    assert!((55..=105).contains(&moved), "{moved} moved");
    let on_new = after[&4] + after[&5];
    assert_eq!(on_new, moved, "clients moved only to the new servers");
    // cons agrees with the clients' view (give or take the admin session)
    for (sid, n) in &after {
        let c = cons_after[sid];
        assert!(
            c >= *n && c <= n + 1,
            "server {sid}: cons {c}, sessions {n}"
        );
    }
    for z in &zks {
        z.close().await.unwrap();
    }
    admin.close().await.unwrap();
}
