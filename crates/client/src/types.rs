//! The vocabulary of the client API: watch events and states, multi operations and their
//! results, connect strings and path validation (as ZooKeeper's Java client does them).

use crate::error::{Error, Result};
use jute::{Acl, CreateMode, Stat};
use std::fmt;

/// Watcher.Event.EventType.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    None,
    NodeCreated,
    NodeDeleted,
    NodeDataChanged,
    NodeChildrenChanged,
    DataWatchRemoved,
    ChildWatchRemoved,
    PersistentWatchRemoved,
}

impl EventType {
    pub fn from_code(code: i32) -> Option<EventType> {
        use jute::event as e;
        Some(match code {
            e::NONE => EventType::None,
            e::NODE_CREATED => EventType::NodeCreated,
            e::NODE_DELETED => EventType::NodeDeleted,
            e::NODE_DATA_CHANGED => EventType::NodeDataChanged,
            e::NODE_CHILDREN_CHANGED => EventType::NodeChildrenChanged,
            e::DATA_WATCH_REMOVED => EventType::DataWatchRemoved,
            e::CHILD_WATCH_REMOVED => EventType::ChildWatchRemoved,
            e::PERSISTENT_WATCH_REMOVED => EventType::PersistentWatchRemoved,
            _ => return None,
        })
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Watcher.Event.KeeperState: the session's state as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeeperState {
    /// Not connected; the client is trying the servers of its connect string.
    Disconnected,
    SyncConnected,
    AuthFailed,
    ConnectedReadOnly,
    /// The server declared the session expired: the handle is dead, make a new one.
    Expired,
    /// Closed by this client.
    Closed,
}

impl KeeperState {
    pub fn from_code(code: i32) -> Option<KeeperState> {
        use jute::keeper_state as s;
        Some(match code {
            s::DISCONNECTED => KeeperState::Disconnected,
            s::SYNC_CONNECTED => KeeperState::SyncConnected,
            s::AUTH_FAILED => KeeperState::AuthFailed,
            s::CONNECTED_READ_ONLY => KeeperState::ConnectedReadOnly,
            s::EXPIRED => KeeperState::Expired,
            s::CLOSED => KeeperState::Closed,
            _ => return None,
        })
    }

    /// Whether the handle can still be used (it may be reconnecting).
    pub fn is_alive(self) -> bool {
        !matches!(
            self,
            KeeperState::Expired | KeeperState::Closed | KeeperState::AuthFailed
        )
    }
}

impl fmt::Display for KeeperState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A watch notification or a change of the session's state (event type None, no path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub event_type: EventType,
    pub state: KeeperState,
    pub path: Option<String>,
}

impl fmt::Display for WatchedEvent {
    /// As Java's WatchedEvent.toString(), which zkCli.sh prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WatchedEvent state:{} type:{} path:{}",
            self.state,
            self.event_type,
            self.path.as_deref().unwrap_or("null")
        )
    }
}

/// AddWatchMode of addWatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddWatchMode {
    Persistent,
    PersistentRecursive,
}

impl AddWatchMode {
    pub fn code(self) -> i32 {
        match self {
            AddWatchMode::Persistent => jute::add_watch_mode::PERSISTENT,
            AddWatchMode::PersistentRecursive => jute::add_watch_mode::PERSISTENT_RECURSIVE,
        }
    }
}

/// Watcher.WatcherType of removeWatches / checkWatches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherType {
    Children,
    Data,
    Persistent,
    PersistentRecursive,
    Any,
}

impl WatcherType {
    pub fn code(self) -> i32 {
        use jute::watcher_type as w;
        match self {
            WatcherType::Children => w::CHILDREN,
            WatcherType::Data => w::DATA,
            WatcherType::Persistent => w::PERSISTENT,
            WatcherType::PersistentRecursive => w::PERSISTENT_RECURSIVE,
            WatcherType::Any => w::ANY,
        }
    }
}

/// One operation of a multi (Op.create, delete, setData, check) or a multiRead (getChildren,
/// getData).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Create {
        path: String,
        data: Vec<u8>,
        acl: Vec<Acl>,
        mode: CreateMode,
        /// milliseconds, for the TTL modes
        ttl: Option<i64>,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    GetChildren {
        path: String,
    },
    GetData {
        path: String,
    },
}

impl Op {
    pub fn path(&self) -> &str {
        match self {
            Op::Create { path, .. }
            | Op::Delete { path, .. }
            | Op::SetData { path, .. }
            | Op::Check { path, .. }
            | Op::GetChildren { path }
            | Op::GetData { path } => path,
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, Op::GetChildren { .. } | Op::GetData { .. })
    }
}

/// The result of one operation of a multi or multiRead (OpResult).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Create {
        path: String,
        stat: Option<Stat>,
    },
    Delete,
    SetData {
        stat: Stat,
    },
    Check,
    GetChildren {
        children: Vec<String>,
    },
    GetData {
        data: Option<Vec<u8>>,
        stat: Stat,
    },
    /// The op failed (or, with RuntimeInconsistency, was not tried: an earlier op failed).
    Error(Error),
    /// ErrorResult with code OK: the op would have succeeded, but another op of the multi
    /// failed, so it was rolled back.
    RolledBack,
}

/// Java's PathUtils.validatePath; `sequential` allows a trailing '/'.
pub fn validate_path(path: &str, sequential: bool) -> Result<()> {
    let bad = |why: String| Err(Error::InvalidArgument(why));
    if path.is_empty() {
        return bad("Path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return bad("Path must start with / character".into());
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') && !sequential {
        return bad("Path must not end with / character".into());
    }
    let chars: Vec<char> = path.chars().collect();
    for i in 1..chars.len() {
        let c = chars[i];
        let prev = chars[i - 1];
        let reason = if c == '\0' {
            Some(format!("null character not allowed @{i}"))
        } else if c == '/' && prev == '/' {
            Some(format!("empty node name specified @{i}"))
        } else if c == '.' && prev == '.' {
            if chars[i - 2] == '/' && (i + 1 == chars.len() || chars[i + 1] == '/') {
                Some(format!("relative paths not allowed @{i}"))
            } else {
                None
            }
        } else if c == '.' {
            if prev == '/' && (i + 1 == chars.len() || chars[i + 1] == '/') {
                Some(format!("relative paths not allowed @{i}"))
            } else {
                None
            }
        } else if ('\u{1}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
        {
            Some(format!("invalid character @{i}"))
        } else {
            None
        };
        if let Some(r) = reason {
            return bad(format!("Invalid path string \"{path}\" caused by {r}"));
        }
    }
    Ok(())
}

/// A parsed connect string: `host:port,host:port[/chroot]` (port 2181 when omitted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    pub servers: Vec<String>,
    pub chroot: Option<String>,
}

impl ConnectString {
    pub fn parse(s: &str) -> Result<ConnectString> {
        let (hosts, chroot) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i..])),
            None => (s, None),
        };
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                validate_path(c, false)?;
                Some(c.to_owned())
            }
        };
        let mut servers = Vec::new();
        for h in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let with_port = if h.starts_with('[') {
                // [v6]:port or [v6]
                if h.contains("]:") {
                    h.to_owned()
                } else {
                    format!("{h}:2181")
                }
            } else if h.contains(':') {
                h.to_owned()
            } else {
                format!("{h}:2181")
            };
            if let Some((_, port)) = with_port.rsplit_once(':') {
                if port.parse::<u16>().is_err() {
                    return Err(Error::InvalidArgument(format!("bad port in {h:?}")));
                }
            }
            servers.push(with_port);
        }
        if servers.is_empty() {
            return Err(Error::InvalidArgument(
                "A HostProvider may not be empty!".into(),
            ));
        }
        Ok(ConnectString { servers, chroot })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_strings_parse_as_in_java() {
        let c = ConnectString::parse("a:1,b,c:3/app/x").unwrap();
        assert_eq!(c.servers, ["a:1", "b:2181", "c:3"]);
        assert_eq!(c.chroot.as_deref(), Some("/app/x"));
        assert_eq!(ConnectString::parse("a:1/").unwrap().chroot, None);
        assert!(ConnectString::parse("").is_err());
        assert!(ConnectString::parse("a:x").is_err());
        assert!(ConnectString::parse("a:1/b/").is_err());
    }

    #[test]
    fn paths_are_validated_as_in_java() {
        assert!(validate_path("/", false).is_ok());
        assert!(validate_path("/a/b", false).is_ok());
        assert!(validate_path("/a/", true).is_ok());
        assert_eq!(
            validate_path("a", false).unwrap_err().to_string(),
            "Path must start with / character"
        );
        assert!(validate_path("/a/", false).is_err());
        assert!(validate_path("/a//b", false).is_err());
        assert!(validate_path("/a/./b", false).is_err());
        assert!(validate_path("/a/../b", false).is_err());
        assert!(validate_path("/a/..b", false).is_ok());
    }
}
