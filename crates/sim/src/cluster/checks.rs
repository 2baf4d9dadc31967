//! The cluster simulation's oracles: what clients saw, checked as they see it, and the
//! servers' final state.

use super::{clients::Phase, Cluster};
use std::collections::{HashMap, HashSet};

/// An acknowledged register write.
#[derive(Debug, Clone)]
struct AckedWrite {
    key: usize,
    zxid: i64,
    invoked: i64,
    acked: i64,
}

/// What clients asked and were told, for the real-time checks.
#[derive(Debug, Default)]
pub struct History {
    next_value: u64,
    acked: Vec<AckedWrite>,
    /// The zxid each acknowledged value was written at.
    value_zxid: HashMap<u64, i64>,
    /// Sessions their clients know ended (closed, or found expired).
    ended: HashSet<i64>,
}

impl History {
    /// A value no write used yet (register values identify their write).
    pub fn next_value(&mut self) -> u64 {
        self.next_value += 1;
        self.next_value
    }

    pub fn invoke_write(&mut self, _key: usize, _value: u64, _at: i64) {}

    /// A write acknowledged at `zxid`: every write acknowledged before it was invoked has a
    /// lower zxid (real-time order).
    pub fn ack_write(
        &mut self,
        key: usize,
        value: u64,
        zxid: i64,
        invoked: i64,
        acked: i64,
    ) -> Result<(), String> {
        for a in &self.acked {
            if a.acked < invoked && a.zxid >= zxid {
                return Err(format!(
                    "write of /k{key} invoked at {invoked} got zxid 0x{zxid:x}, not above 0x{:x} of a write acknowledged at {}",
                    a.zxid, a.acked
                ));
            }
        }
        self.acked.push(AckedWrite {
            key,
            zxid,
            invoked,
            acked,
        });
        self.value_zxid.insert(value, zxid);
        Ok(())
    }

    /// A read of register `key` gave `value` modified at `mzxid`. After a sync it shows every
    /// write of that register acknowledged before the sync was sent.
    pub fn check_read(
        &self,
        key: usize,
        value: u64,
        mzxid: i64,
        synced: bool,
        invoked: i64,
        client: usize,
    ) -> Result<(), String> {
        if let Some(&z) = self.value_zxid.get(&value) {
            if z != mzxid {
                return Err(format!(
                    "client {client} read /k{key} = {value} with mzxid 0x{mzxid:x}, written at 0x{z:x}"
                ));
            }
        }
        if !synced {
            return Ok(());
        }
        for a in &self.acked {
            if a.key == key && a.acked < invoked && a.zxid > mzxid {
                return Err(format!(
                    "client {client}: a synced read of /k{key} (sync sent at {invoked}) saw mzxid 0x{mzxid:x}, missing the write at 0x{:x} acknowledged at {} (invoked {})",
                    a.zxid, a.acked, a.invoked
                ));
            }
        }
        Ok(())
    }

    pub fn session_ended(&mut self, session: i64) {
        if session != 0 {
            self.ended.insert(session);
        }
    }
}

/// After the heal and the clients' goodbyes: one state everywhere, nothing left of any
/// session, every session's writes in the order it sent them, every client answered.
pub fn final_checks(c: &mut Cluster) -> Result<(), String> {
    let mut reference: Option<(u64, i64, Vec<u8>)> = None;
    let mut leaders = Vec::new();
    for (&id, s) in &c.servers {
        let node = s
            .node
            .as_ref()
            .ok_or_else(|| format!("server {id} is down at the end"))?;
        let mode = node.mode().ok_or_else(|| {
            let r = node.replica();
            format!(
                "server {id} does not serve at the end (state {:?}, leader {:?}, epoch {}, zxid 0x{:x}; links {:?})",
                r.map(|r| r.state()),
                r.and_then(|r| r.leader()),
                r.map_or(0, |r| r.peer().current_epoch()),
                node.last_zxid(),
                c.links
                    .iter()
                    .filter(|(_, l)| {
                        (l.learner == id || l.leader == id) && !(l.dirs[0].closed && l.dirs[1].closed)
                    })
                    .map(|(k, l)| format!(
                        "link {k} {}->{} lives {}/{} knows {} pending {}/{} sched {}/{} gone {}/{} closed {}/{}",
                        l.learner, l.leader, l.learner_life, l.leader_life, l.leader_knows,
                        l.dirs[0].bytes.len(), l.dirs[1].bytes.len(),
                        l.dirs[0].scheduled, l.dirs[1].scheduled,
                        l.dirs[0].receiver_gone, l.dirs[1].receiver_gone,
                        l.dirs[0].closed, l.dirs[1].closed,
                    ))
                    .collect::<Vec<_>>()
            )
        })?;
        if mode == "leader" {
            leaders.push(id);
        }
        let mut bytes = Vec::new();
        node.tree().serialize_into(&mut bytes);
        let zxid = node.last_zxid();
        match &reference {
            None => reference = Some((id, zxid, bytes)),
            Some((rid, rzxid, rbytes)) => {
                if *rzxid != zxid || *rbytes != bytes {
                    let other = c.servers[rid].node.as_ref().map(|n| n.tree());
                    let diff = other.map_or(String::new(), |o| first_difference(o, node.tree()));
                    return Err(format!(
                        "servers {rid} (0x{rzxid:x}) and {id} (0x{zxid:x}) end with different trees: {diff}"
                    ));
                }
            }
        }
        if let Some((owner, paths)) = node.tree().ephemerals().iter().find(|(_, p)| !p.is_empty()) {
            return Err(format!(
                "server {id} still has ephemerals {paths:?} of session 0x{owner:x} after every session ended"
            ));
        }
        check_session_order(id, &s.disk.log)?;
    }
    if leaders.len() != 1 {
        return Err(format!("leaders at the end: {leaders:?}"));
    }
    let leader = &c.servers[&leaders[0]];
    if let Some(node) = &leader.node {
        if let Some(s) = node.sessions().iter().next() {
            return Err(format!(
                "the leader still tracks session 0x{:x} after every client closed or expired: {s:?}",
                s.id
            ));
        }
    }
    for client in &c.clients {
        if client.phase != Phase::Done {
            return Err(format!(
                "client {} never closed its session (phase {:?}, {} pending)",
                client.id,
                client.phase,
                client.pending.len()
            ));
        }
        if client.answered_after_heal == 0 {
            return Err(format!(
                "client {} got no answer after the faults stopped",
                client.id
            ));
        }
    }
    for client in &c.clients {
        check_watches(client.id, &client.watch_log, &c.history)?;
    }
    c.stats.last_zxid = reference.map_or(0, |r| r.1);
    Ok(())
}

/// Watch delivery, as each client saw it: a notification only for a watch it set (and once
/// per watch), and never after a reply whose zxid shows the change that fired it — a
/// NodeDataChanged reaches the client before any later read result of its session. Changes
/// are known by their acknowledged writes (any client's).
fn check_watches(
    client: usize,
    log: &[super::clients::WatchEvent],
    history: &History,
) -> Result<(), String> {
    use super::clients::WatchEvent;
    let mut changes: HashMap<usize, Vec<i64>> = HashMap::new();
    for a in &history.acked {
        changes.entry(a.key).or_default().push(a.zxid);
    }
    for zxids in changes.values_mut() {
        zxids.sort_unstable();
    }
    // per connection: key -> the zxid its watch was set at (the earliest of a repeat)
    let mut armed: HashMap<u64, std::collections::BTreeMap<usize, i64>> = HashMap::new();
    for event in log {
        match *event {
            WatchEvent::Set { conn, key, zxid } => {
                armed.entry(conn).or_default().entry(key).or_insert(zxid);
            }
            WatchEvent::Fired { conn, key } => {
                if armed.entry(conn).or_default().remove(&key).is_none() {
                    return Err(format!(
                        "client {client}: NodeDataChanged for /k{key} on connection {conn} without a watch set (or twice)"
                    ));
                }
            }
            WatchEvent::Reply { conn, zxid } => {
                for (&key, &set) in armed.entry(conn).or_default().iter() {
                    let missed = changes.get(&key).and_then(|zs| {
                        zs.iter()
                            .copied()
                            .find(|&change| change > set && change <= zxid)
                    });
                    if let Some(change) = missed {
                        return Err(format!(
                            "client {client}: a reply at 0x{zxid:x} on connection {conn} came before the notification of /k{key}'s change at 0x{change:x} (watched since 0x{set:x})"
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// A session's requests are committed in the order it sent them (ZooKeeper's FIFO client
/// order): in the log, each session's cxids ascend. Error txns are left out (a refused stale
/// request is logged as one, late), and so are session creations and expiries (cxid 0).
fn check_session_order(id: u64, log: &[super::disk::LogEntry]) -> Result<(), String> {
    let mut last: HashMap<i64, (i32, i64)> = HashMap::new();
    for e in log {
        let h = &e.header;
        let skipped = matches!(
            h.txn_type,
            jute::op::ERROR | jute::op::CREATE_SESSION | jute::op::CLOSE_SESSION
        ) || h.client_id == 0;
        if skipped {
            continue;
        }
        if let Some(&(cxid, zxid)) = last.get(&h.client_id) {
            if h.cxid <= cxid {
                return Err(format!(
                    "server {id}'s log: session 0x{:x}'s request {} (txn type {}) committed at 0x{:x} after its request {cxid} at 0x{zxid:x}",
                    h.client_id, h.cxid, h.txn_type, h.zxid
                ));
            }
        }
        last.insert(h.client_id, (h.cxid, h.zxid));
    }
    Ok(())
}

/// The first znode (breadth first) whose data, stat or children differ between two trees.
fn first_difference(a: &tree::DataTree, b: &tree::DataTree) -> String {
    let mut queue = std::collections::VecDeque::from(["/".to_owned()]);
    while let Some(path) = queue.pop_front() {
        match (a.node(&path), b.node(&path)) {
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => return format!("{path} exists on one side only"),
            (Some(x), Some(y)) => {
                if x.data() != y.data() || x.stat() != y.stat() {
                    let text =
                        |d: Option<&[u8]>| d.map(|d| String::from_utf8_lossy(d).into_owned());
                    return format!(
                        "{path}: {:?} {:?} vs {:?} {:?}",
                        text(x.data()),
                        x.stat(),
                        text(y.data()),
                        y.stat()
                    );
                }
                let mut xs: Vec<&str> = a.child_names(x).collect();
                let mut ys: Vec<&str> = b.child_names(y).collect();
                xs.sort_unstable();
                ys.sort_unstable();
                if xs != ys {
                    return format!("{path}: children {xs:?} vs {ys:?}");
                }
                for child in xs {
                    let sep = if path == "/" { "" } else { "/" };
                    queue.push_back(format!("{path}{sep}{child}"));
                }
            }
        }
    }
    "no znode differs (the serialized forms do: ACL table or order)".into()
}
