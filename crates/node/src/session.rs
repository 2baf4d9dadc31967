//! Sessions: ids, passwords, timeouts and expiry. Pure: time comes in as milliseconds.

use std::collections::HashMap;

use crate::io::ConnId;

/// ZooKeeper derives a session's password from its id, so any server can check it.
const SUPER_SECRET: i64 = 0xB3415C00;

/// java.util.Random, whose output ZooKeeper uses as session passwords.
struct JavaRandom(i64);

impl JavaRandom {
    const MULTIPLIER: i64 = 0x5DEECE66D;
    const MASK: i64 = (1 << 48) - 1;

    fn new(seed: i64) -> Self {
        JavaRandom((seed ^ Self::MULTIPLIER) & Self::MASK)
    }

    fn next_int(&mut self) -> i32 {
        self.0 = (self.0.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.0 >> 16) as i32
    }

    fn next_bytes(&mut self, out: &mut [u8]) {
        let mut i = 0;
        while i < out.len() {
            let mut rnd = self.next_int();
            for _ in 0..(out.len() - i).min(4) {
                out[i] = rnd as u8;
                rnd >>= 8;
                i += 1;
            }
        }
    }
}

/// The 16-byte password of a session, identical to the one Apache ZooKeeper generates.
pub fn session_password(session_id: i64) -> Vec<u8> {
    let mut out = vec![0u8; 16];
    JavaRandom::new(session_id ^ SUPER_SECRET).next_bytes(&mut out);
    out
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub timeout_ms: u32,
    pub expires_at: i64,
    /// The connection currently attached, if any.
    pub conn: Option<ConnId>,
    /// closeSession has been prepared: further requests get SessionExpired.
    pub closing: bool,
    /// createSession is not applied yet (so the session is not in snapshots).
    pub creating: bool,
    /// Leader: the server whose connection the session was last attached to (created or
    /// revalidated there), None until known. A write arriving through another server is a
    /// stale one from before the client moved: ZooKeeper's SessionMovedException.
    pub owner: Option<u64>,
}

#[derive(Debug)]
pub struct SessionTracker {
    sessions: HashMap<i64, Session>,
    next_id: i64,
    tick_ms: i64,
}

impl SessionTracker {
    /// Session ids start from the clock, with the server id in the high byte, as in ZooKeeper.
    pub fn new(server_id: i64, now_ms: i64, tick_ms: u32) -> Self {
        let mut next_id = (((now_ms as u64) << 24) >> 8) as i64 | (server_id << 56);
        if next_id == jute::ephemeral_owner::CONTAINER {
            next_id += 1;
        }
        SessionTracker {
            sessions: HashMap::new(),
            next_id,
            tick_ms: tick_ms.max(1) as i64,
        }
    }

    /// Ids from now on carry this server's id (ensemble mode: myid), so that no two servers
    /// of an ensemble hand out the same session id.
    pub fn set_server_id(&mut self, server_id: i64, now_ms: i64) {
        let tick = self.tick_ms as u32;
        self.next_id = SessionTracker::new(server_id, now_ms, tick).next_id;
    }

    /// Expiry is rounded up to the next tick, as ZooKeeper's ExpiryQueue does.
    fn expiry(&self, now_ms: i64, timeout_ms: u32) -> i64 {
        let t = now_ms + timeout_ms as i64;
        (t / self.tick_ms + 1) * self.tick_ms
    }

    pub fn create(&mut self, timeout_ms: u32, now_ms: i64) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.add(id, timeout_ms, now_ms);
        self.sessions.get_mut(&id).expect("just added").creating = true;
        id
    }

    /// Tracks a session created elsewhere (replayed txn, or a new one).
    pub fn add(&mut self, id: i64, timeout_ms: u32, now_ms: i64) {
        let expires_at = self.expiry(now_ms, timeout_ms);
        self.sessions.insert(
            id,
            Session {
                id,
                timeout_ms,
                expires_at,
                conn: None,
                closing: false,
                creating: false,
                owner: None,
            },
        );
    }

    pub fn get(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub fn get_mut(&mut self, id: i64) -> Option<&mut Session> {
        self.sessions.get_mut(&id)
    }

    /// Extends a live session; false when it is unknown or closing.
    pub fn touch(&mut self, id: i64, now_ms: i64) -> bool {
        let tick = self.tick_ms;
        match self.sessions.get_mut(&id) {
            Some(s) if !s.closing => {
                let t = now_ms + s.timeout_ms as i64;
                s.expires_at = (t / tick + 1) * tick;
                true
            }
            _ => false,
        }
    }

    /// Leader: the session is now attached through `server`.
    pub fn set_owner(&mut self, id: i64, server: u64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.owner = Some(server);
        }
    }

    /// Leader: may a write of this session come through `server`? An unknown owner becomes
    /// `server` (a new leader learns owners from the first requests, as ZooKeeper's
    /// SessionTrackerImpl.checkSession does).
    pub fn check_owner(&mut self, id: i64, server: u64) -> bool {
        match self.sessions.get_mut(&id) {
            Some(s) => *s.owner.get_or_insert(server) == server,
            None => true,
        }
    }

    /// A new leader knows no owner yet.
    /// Serving changed: the closeSessions prepared before are decided by the new epoch (if
    /// one commits, applying it removes the session); until then the sessions count as
    /// open, so that expiry closes them again. Kept `closing`, a session whose closeSession
    /// was lost with its leader never expired (found by the whole-server simulation: its
    /// ephemerals outlived it on every server).
    pub fn reopen_closing(&mut self) {
        for s in self.sessions.values_mut() {
            s.closing = false;
        }
    }

    pub fn forget_owners(&mut self) {
        for s in self.sessions.values_mut() {
            s.owner = None;
        }
    }

    /// Sessions whose time is up, to be closed through closeSession txns.
    pub fn expired(&self, now_ms: i64) -> Vec<i64> {
        let mut out: Vec<i64> = self
            .sessions
            .values()
            .filter(|s| !s.closing && s.expires_at <= now_ms)
            .map(|s| s.id)
            .collect();
        out.sort_unstable();
        out
    }

    pub fn remove(&mut self, id: i64) -> Option<Session> {
        self.sessions.remove(&id)
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_random_matches_the_jdk() {
        // new java.util.Random(42).nextInt() == -1170105035
        assert_eq!(JavaRandom::new(42).next_int(), -1170105035);
    }

    #[test]
    fn sessions_expire_after_their_timeout_rounded_to_a_tick() {
        let mut t = SessionTracker::new(0, 1_000, 100);
        let id = t.create(1000, 1_000);
        assert!(t.expired(1_900).is_empty());
        assert!(t.touch(id, 1_500));
        assert!(t.expired(2_400).is_empty());
        assert_eq!(t.expired(2_600), vec![id]);
        t.get_mut(id).unwrap().closing = true;
        assert!(!t.touch(id, 2_600));
    }

    #[test]
    fn a_session_moved_to_another_server_refuses_writes_from_the_old_one() {
        let mut t = SessionTracker::new(5, 1_000, 100);
        let id = t.create(1000, 1_000);
        assert!(
            t.check_owner(id, 3),
            "unknown owner: the first server to ask owns it"
        );
        assert!(t.check_owner(id, 3));
        t.set_owner(id, 5);
        assert!(
            !t.check_owner(id, 3),
            "a stale write from the server it left"
        );
        assert!(t.check_owner(id, 5));
        t.forget_owners();
        assert!(t.check_owner(id, 4));
        assert!(
            t.check_owner(0x77, 4),
            "unknown sessions are judged elsewhere"
        );
    }
}
