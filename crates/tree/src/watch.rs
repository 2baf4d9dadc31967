//! Watches as ZooKeeper 3.8 keeps them: one table for data/exists watches and one for child
//! watches, each mapping a path to its watchers and each (watcher, path) to a mode.

use crate::{HashMap, HashSet};

/// Identifies whoever receives events: the runtime's connection id.
pub type WatcherId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchMode {
    /// Fires once, then is removed.
    Standard,
    /// Fires on every change of its path, never removed by firing.
    Persistent,
    /// Like Persistent, for the path and every descendant (never NodeChildrenChanged).
    PersistentRecursive,
}

/// A watch event for one watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub watcher: WatcherId,
    pub event_type: i32,
    pub path: String,
    /// The ACL of the znode the event is about: a watcher without READ on it does not get the
    /// event (ZooKeeper's fix of CVE-2024-23944). None: deliver unconditionally.
    pub acl: Option<Vec<jute::Acl>>,
}

#[derive(Debug, Default, Clone)]
pub struct WatchManager {
    by_path: HashMap<String, HashMap<WatcherId, WatchMode>>,
    by_watcher: HashMap<WatcherId, HashSet<String>>,
    recursive_count: usize,
}

impl WatchManager {
    pub fn add(&mut self, path: &str, watcher: WatcherId, mode: WatchMode) {
        let watchers = self.by_path.entry(path.to_owned()).or_default();
        // as in 3.8, the latest mode for a (watcher, path) replaces the earlier one
        if let Some(old) = watchers.insert(watcher, mode) {
            if old == WatchMode::PersistentRecursive {
                self.recursive_count -= 1;
            }
        }
        if mode == WatchMode::PersistentRecursive {
            self.recursive_count += 1;
        }
        self.by_watcher
            .entry(watcher)
            .or_default()
            .insert(path.to_owned());
    }

    pub fn contains(&self, path: &str, watcher: WatcherId) -> bool {
        self.by_watcher
            .get(&watcher)
            .is_some_and(|paths| paths.contains(path))
    }

    /// checkWatches as ZooKeeper 3.8 answers it: true when *any* watcher watches `path` in
    /// this table (its WatchManager.containsWatcher looks only at the path). Kept for
    /// compatibility; removeWatches uses the exact [`WatchManager::remove`].
    pub fn contains_as_zookeeper(&self, path: &str, _watcher: WatcherId) -> bool {
        self.by_path.contains_key(path)
    }

    pub fn remove(&mut self, path: &str, watcher: WatcherId) -> bool {
        let Some(paths) = self.by_watcher.get_mut(&watcher) else {
            return false;
        };
        if !paths.remove(path) {
            return false;
        }
        if paths.is_empty() {
            self.by_watcher.remove(&watcher);
        }
        if let Some(watchers) = self.by_path.get_mut(path) {
            if watchers.remove(&watcher) == Some(WatchMode::PersistentRecursive) {
                self.recursive_count -= 1;
            }
            if watchers.is_empty() {
                self.by_path.remove(path);
            }
        }
        true
    }

    /// Drops every watch of a watcher (its connection closed).
    pub fn remove_watcher(&mut self, watcher: WatcherId) {
        let Some(paths) = self.by_watcher.remove(&watcher) else {
            return;
        };
        for path in paths {
            if let Some(watchers) = self.by_path.get_mut(&path) {
                if watchers.remove(&watcher) == Some(WatchMode::PersistentRecursive) {
                    self.recursive_count -= 1;
                }
                if watchers.is_empty() {
                    self.by_path.remove(&path);
                }
            }
        }
    }

    /// The watchers that fire for an event of `event_type` on `path`; standard watches on the
    /// path are consumed. Recursive watches on ancestors fire for all but NodeChildrenChanged.
    /// No watch at all (a recovery replaying its log, a server nobody watches).
    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    pub fn trigger(&mut self, path: &str, event_type: i32) -> Vec<WatcherId> {
        let mut fired = Vec::new();
        if self.by_path.is_empty() {
            // no watch at all (a recovery replaying its log): not even a hash of the path
            return fired;
        }
        if let Some(watchers) = self.by_path.get_mut(path) {
            let mut consumed = Vec::new();
            for (&watcher, &mode) in watchers.iter() {
                match mode {
                    WatchMode::PersistentRecursive => {
                        if event_type != jute::event::NODE_CHILDREN_CHANGED {
                            fired.push(watcher);
                        }
                    }
                    WatchMode::Persistent => fired.push(watcher),
                    WatchMode::Standard => {
                        fired.push(watcher);
                        consumed.push(watcher);
                    }
                }
            }
            for watcher in consumed {
                watchers.remove(&watcher);
                if let Some(paths) = self.by_watcher.get_mut(&watcher) {
                    paths.remove(path);
                    if paths.is_empty() {
                        self.by_watcher.remove(&watcher);
                    }
                }
            }
            if watchers.is_empty() {
                self.by_path.remove(path);
            }
        }
        if self.recursive_count > 0 && event_type != jute::event::NODE_CHILDREN_CHANGED {
            let mut ancestor = crate::path::parent(path);
            while let Some(p) = ancestor {
                if let Some(watchers) = self.by_path.get(p) {
                    for (&watcher, &mode) in watchers {
                        if mode == WatchMode::PersistentRecursive && !fired.contains(&watcher) {
                            fired.push(watcher);
                        }
                    }
                }
                ancestor = crate::path::parent(p);
            }
        }
        fired.sort_unstable();
        fired.dedup();
        fired
    }

    /// Number of (path, watcher) pairs.
    pub fn watch_count(&self) -> usize {
        self.by_path.values().map(HashMap::len).sum()
    }

    pub fn path_count(&self) -> usize {
        self.by_path.len()
    }

    pub fn by_path(&self) -> impl Iterator<Item = (&String, Vec<WatcherId>)> {
        self.by_path
            .iter()
            .map(|(p, w)| (p, w.keys().copied().collect()))
    }

    pub fn by_watcher(&self) -> impl Iterator<Item = (&WatcherId, &HashSet<String>)> {
        self.by_watcher.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jute::event::*;

    #[test]
    fn standard_fires_once_persistent_stays() {
        let mut w = WatchManager::default();
        w.add("/a", 1, WatchMode::Standard);
        w.add("/a", 2, WatchMode::Persistent);
        assert_eq!(w.trigger("/a", NODE_DATA_CHANGED), vec![1, 2]);
        assert_eq!(w.trigger("/a", NODE_DATA_CHANGED), vec![2]);
        assert!(!w.contains("/a", 1));
    }

    #[test]
    fn recursive_fires_for_descendants_except_children_changed() {
        let mut w = WatchManager::default();
        w.add("/a", 1, WatchMode::PersistentRecursive);
        assert_eq!(w.trigger("/a/b/c", NODE_CREATED), vec![1]);
        assert_eq!(w.trigger("/a", NODE_DATA_CHANGED), vec![1]);
        assert!(w.trigger("/a", NODE_CHILDREN_CHANGED).is_empty());
        assert!(w.trigger("/b", NODE_CREATED).is_empty());
        w.remove_watcher(1);
        assert!(w.trigger("/a/b", NODE_CREATED).is_empty());
        assert_eq!(w.watch_count(), 0);
    }
}
