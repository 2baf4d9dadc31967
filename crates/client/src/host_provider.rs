//! Which server a client connects to next, and ZooKeeper's probabilistic rebalancing when the
//! server list changes (Shraer et al., "Dynamic Reconfiguration of Primary/Backup Clusters",
//! USENIX ATC 2012, §4; ZooKeeper's StaticHostProvider.updateServerList).
//!
//! When servers are added, a client stays with probability |S|/|S'| and otherwise moves to a
//! new server; when its server is removed it moves, to a kept server with the probability
//! that keeps the load uniform, else to a new one. The expected number of clients that move
//! is the minimum needed for every server to end up with the same expected load.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Round-robin over a shuffled server list, with a reconfiguration mode after a list change.
#[derive(Debug)]
pub struct HostProvider {
    servers: Vec<String>,
    rng: StdRng,
    /// Index of the server last returned by `next_server`.
    current: Option<usize>,
    /// Index of the server of the last successful connection (round-robin wraps to it).
    last: Option<usize>,
    reconfig_mode: bool,
    old_servers: Vec<String>,
    new_servers: Vec<String>,
    tried_old: usize,
    tried_new: usize,
    p_new: f64,
}

impl HostProvider {
    /// `servers` as `host:port` strings; `seed` makes the shuffles reproducible.
    pub fn new(servers: Vec<String>, seed: u64) -> HostProvider {
        assert!(
            !servers.is_empty(),
            "a host provider needs at least one server"
        );
        let mut rng = StdRng::seed_from_u64(seed);
        let mut servers = servers;
        servers.shuffle(&mut rng);
        HostProvider {
            servers,
            rng,
            current: None,
            last: None,
            reconfig_mode: false,
            old_servers: Vec::new(),
            new_servers: Vec::new(),
            tried_old: 0,
            tried_new: 0,
            p_new: 0.0,
        }
    }

    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    pub fn in_reconfig_mode(&self) -> bool {
        self.reconfig_mode
    }

    /// The server to try next.
    pub fn next_server(&mut self) -> &str {
        if self.reconfig_mode {
            if let Some(addr) = self.next_in_reconfig_mode() {
                self.current = self.servers.iter().position(|s| *s == addr);
                return &self.servers[self.current.expect("chosen from the list")];
            }
            // every old and new server was tried: plain round-robin from here
            self.reconfig_mode = false;
        }
        let next = self.current.map_or(0, |c| (c + 1) % self.servers.len());
        self.current = Some(next);
        &self.servers[next]
    }

    /// The client connected to the server `next_server` returned last.
    pub fn on_connected(&mut self) {
        self.last = self.current;
        self.reconfig_mode = false;
    }

    fn next_in_reconfig_mode(&mut self) -> Option<String> {
        let take_new = self.rng.random::<f64>() <= self.p_new;
        if self.tried_new < self.new_servers.len()
            && (take_new || self.tried_old >= self.old_servers.len())
        {
            self.tried_new += 1;
            return Some(self.new_servers[self.tried_new - 1].clone());
        }
        if self.tried_old < self.old_servers.len() {
            self.tried_old += 1;
            return Some(self.old_servers[self.tried_old - 1].clone());
        }
        None
    }

    /// Replaces the server list. `connected_to` is the server the client is connected to now
    /// (None when disconnected). Returns true when the client should drop its connection and
    /// reconnect through `next_server` (its session survives the move).
    pub fn update_server_list(&mut self, servers: Vec<String>, connected_to: Option<&str>) -> bool {
        assert!(
            !servers.is_empty(),
            "a host provider needs at least one server"
        );
        let mut shuffled = servers;
        shuffled.shuffle(&mut self.rng);
        let mine: String = if self.reconfig_mode {
            self.next_server().to_owned()
        } else if let Some(c) = connected_to {
            c.to_owned()
        } else {
            self.servers[self.last.unwrap_or(0)].clone()
        };
        let mine_kept = shuffled.contains(&mine);
        let before = self.servers.len() as f64;
        let (old, new): (Vec<String>, Vec<String>) = shuffled
            .iter()
            .cloned()
            .partition(|s| self.servers.contains(s));
        let (num_old, num_new) = (old.len() as f64, new.len() as f64);
        let after = num_old + num_new;
        self.reconfig_mode = true;
        self.p_new = 0.0;
        if after > before {
            // more servers: keep the expected load per server equal by moving a share of
            // every server's clients to the new ones
            if mine_kept {
                if self.rng.random::<f32>() <= (1.0 - before / after) as f32 {
                    self.p_new = 1.0;
                } else {
                    self.reconfig_mode = false;
                }
            } else {
                self.p_new = 1.0;
            }
        } else if mine_kept {
            // same or fewer servers: clients of kept servers stay
            self.reconfig_mode = false;
        } else {
            // our server left: go to a kept server with the probability that evens the load
            let p_old = (num_old * (before - after)) / (after * (before - num_old));
            self.p_new = 1.0 - p_old;
        }
        self.current = if self.reconfig_mode {
            None
        } else {
            shuffled.iter().position(|s| *s == mine)
        };
        self.servers = shuffled;
        self.old_servers = old;
        self.new_servers = new;
        self.tried_old = 0;
        self.tried_new = 0;
        self.last = self.current;
        self.reconfig_mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn servers(ids: std::ops::Range<u32>) -> Vec<String> {
        ids.map(|i| format!("10.10.10.{i}:2181")).collect()
    }

    /// `clients` each connected to one server; returns the load per server.
    fn load(clients: &[(HostProvider, String)]) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (_, s) in clients {
            *out.entry(s.clone()).or_insert(0) += 1;
        }
        out
    }

    fn apply(clients: &mut [(HostProvider, String)], list: &[String]) {
        for (hp, server) in clients.iter_mut() {
            if hp.update_server_list(list.to_vec(), Some(server)) {
                *server = hp.next_server().to_owned();
                hp.on_connected();
            }
        }
    }

    fn assert_balanced(clients: &[(HostProvider, String)], list: &[String], step: &str) {
        let load = load(clients);
        let fair = clients.len() as f64 / list.len() as f64;
        for s in list {
            let n = *load.get(s).unwrap_or(&0) as f64;
            assert!(
                (n - fair).abs() <= fair * 0.10,
                "{step}: {s} has {n} clients, fair share {fair}: {load:?}"
            );
        }
        assert!(
            load.keys().all(|s| list.contains(s)),
            "{step}: a removed server kept clients: {load:?}"
        );
    }

    /// ZooKeeper's StaticHostProviderTest.testUpdateLoadBalancing: 10,000 clients stay within
    /// ±10% of an even share through shrinking and growing lists.
    #[test]
    fn load_stays_even_as_servers_come_and_go() {
        let first = servers(0..9);
        let mut clients: Vec<(HostProvider, String)> = (0..10_000)
            .map(|i| {
                let mut hp = HostProvider::new(first.clone(), i);
                let s = hp.next_server().to_owned();
                hp.on_connected();
                (hp, s)
            })
            .collect();
        assert_balanced(&clients, &first, "initial");
        let steps: Vec<(&str, Vec<String>)> = vec![
            ("remove one", servers(0..8)),
            ("remove two", servers(0..6)),
            ("replace one", [servers(0..5), servers(9..10)].concat()),
            ("add three", [servers(0..5), servers(9..13)].concat()),
            ("shrink to three", servers(10..13)),
            ("grow to nine", servers(10..19)),
        ];
        let mut previous = first;
        for (step, list) in steps {
            let before: Vec<String> = clients.iter().map(|(_, s)| s.clone()).collect();
            apply(&mut clients, &list);
            assert_balanced(&clients, &list, step);
            if list.len() <= previous.len() {
                // shrinking: a client whose server stays never moves
                for ((_, now), was) in clients.iter().zip(&before) {
                    assert!(
                        !list.contains(was) || now == was,
                        "{step}: moved from kept {was} to {now}"
                    );
                }
            }
            previous = list;
        }
    }

    #[test]
    fn only_the_needed_share_of_clients_moves_when_servers_are_added() {
        let mut clients: Vec<(HostProvider, String)> = (0..10_000)
            .map(|i| {
                let mut hp = HostProvider::new(servers(0..3), 1000 + i);
                let s = hp.next_server().to_owned();
                hp.on_connected();
                (hp, s)
            })
            .collect();
        let before: Vec<String> = clients.iter().map(|(_, s)| s.clone()).collect();
        apply(&mut clients, &servers(0..4));
        let moved = clients
            .iter()
            .zip(&before)
            .filter(|((_, now), was)| now != *was)
            .count();
        // the minimum is a quarter of the clients (the new server's fair share)
        assert!((2_250..=2_750).contains(&moved), "{moved} clients moved");
        assert!(clients
            .iter()
            .zip(&before)
            .all(|((_, now), was)| now == was || now == "10.10.10.3:2181"));
    }

    #[test]
    fn round_robin_after_all_reconfig_candidates_are_tried() {
        let mut hp = HostProvider::new(servers(0..3), 5);
        hp.next_server();
        hp.on_connected();
        assert!(
            hp.update_server_list(servers(3..5), None),
            "the old server is gone: move"
        );
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..6 {
            seen.insert(hp.next_server().to_owned());
        }
        assert_eq!(seen, servers(3..5).into_iter().collect());
    }
}
