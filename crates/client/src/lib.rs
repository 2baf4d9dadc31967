//! An async ZooKeeper client (tokio) for Apache ZooKeeper 3.8 and zkrs alike.
//!
//! A [`ZooKeeper`] handle is one session. As with ZooKeeper's Java client, the session
//! survives connection loss: the client reconnects across its connect string with the same
//! session id and password, re-sends its auth and re-registers its watches (SetWatches2);
//! requests are pipelined and complete in the order they were issued; state changes
//! (Disconnected, SyncConnected, Expired, Closed) and watch notifications arrive on one
//! event channel ([`ZooKeeper::take_events`]), like Java's default watcher.
//!
//! Beyond ZooKeeper's client: [`ZooKeeper::reconfig_and_wait`] returns once the new
//! configuration is in force, and the opt-in auto-rebalance mode
//! ([`ZooKeeperBuilder::auto_rebalance`]) follows /zookeeper/config and moves the connection
//! as ZooKeeper's StaticHostProvider rebalancing says.

pub mod config_data;
pub mod error;
pub mod host_provider;
mod rebalance;
mod session;
pub mod types;

pub use config_data::ClientConfig;
pub use error::{Error, Result};
pub use host_provider::HostProvider;
pub use jute::{Acl, ClientInfo, CreateMode, Id, Stat};
pub use session::CONFIG_NODE;
pub use types::{
    validate_path, AddWatchMode, ConnectString, EventType, KeeperState, Op, OpResult, WatchedEvent,
    WatcherType,
};

use bytes::{Bytes, BytesMut};
use jute::{op, Jute, MultiHeader};
use session::{Control, Reply, Request, SessionInfo, SessionTask, Shared, WatchRegistration};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Former name of the handle.
pub type Client = ZooKeeper;

/// world:anyone with every permission (ZooDefs.Ids.OPEN_ACL_UNSAFE).
pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: jute::perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// world:anyone may read (ZooDefs.Ids.READ_ACL_UNSAFE).
pub fn read_acl() -> Vec<Acl> {
    vec![Acl {
        perms: jute::perms::READ,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// The creator gets every permission (ZooDefs.Ids.CREATOR_ALL_ACL).
pub fn creator_all_acl() -> Vec<Acl> {
    vec![Acl {
        perms: jute::perms::ALL,
        id: Id {
            scheme: "auth".into(),
            id: String::new(),
        },
    }]
}

/// Settings of a new session.
#[derive(Debug, Clone)]
pub struct ZooKeeperBuilder {
    connect_string: String,
    session_timeout_ms: i32,
    connect_timeout: Option<Duration>,
    session: Option<(i64, Vec<u8>)>,
    seed: Option<u64>,
    auto_rebalance: Option<Duration>,
}

impl ZooKeeperBuilder {
    /// Requested session timeout (the server bounds it by its min/max).
    pub fn session_timeout(mut self, ms: i32) -> Self {
        self.session_timeout_ms = ms;
        self
    }

    /// How long `connect` keeps trying before giving up with ConnectionLoss. Default: until
    /// every server of the connect string has refused twice, or the session timeout.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = Some(d);
        self
    }

    /// Resume an existing session (id and password from another handle).
    pub fn session(mut self, session_id: i64, passwd: Vec<u8>) -> Self {
        self.session = Some((session_id, passwd));
        self
    }

    /// Seed of the host provider's shuffles (reproducible tests).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Follow /zookeeper/config and rebalance: when the configuration changes, sync, read it,
    /// wait a random delay in [0, max_delay) (clients must not all move at once) and call
    /// update_server_list with the servers' client addresses.
    pub fn auto_rebalance(mut self, max_delay: Duration) -> Self {
        self.auto_rebalance = Some(max_delay);
        self
    }

    pub async fn connect(self) -> Result<ZooKeeper> {
        let cs = ConnectString::parse(&self.connect_string)?;
        let seed = self.seed.unwrap_or_else(rand::random);
        let hosts = HostProvider::new(cs.servers.clone(), seed);
        let n = hosts.servers().len();
        let (state_tx, mut state_rx) = watch::channel(KeeperState::Disconnected);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (req_tx, req_rx) = mpsc::unbounded_channel();
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (session_id, passwd) = self.session.clone().unwrap_or((0, vec![0; 16]));
        let shared = Arc::new(Shared {
            chroot: cs.chroot.clone(),
            requested_timeout: self.session_timeout_ms,
            last_zxid: AtomicI64::new(0),
            session: Mutex::new(SessionInfo {
                session_id,
                passwd,
                negotiated_timeout: 0,
                connected_to: None,
            }),
            watches: Mutex::new(Default::default()),
            auth_infos: Mutex::new(Vec::new()),
            state: state_tx,
            events: ev_tx,
            internal_events: Mutex::new(None),
            connects: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            auth_failed: Default::default(),
        });
        let internal_rx = self.auto_rebalance.map(|_| {
            let (tx, rx) = mpsc::unbounded_channel();
            *shared.internal_events.lock().expect("lock") = Some(tx);
            rx
        });
        tokio::spawn(
            SessionTask {
                shared: shared.clone(),
                requests: req_rx,
                control: ctl_rx,
                hosts,
                next_xid: 1,
            }
            .run(),
        );
        let zk = ZooKeeper {
            inner: Arc::new(Inner {
                shared,
                requests: req_tx,
                control: ctl_tx,
                events: Mutex::new(Some(ev_rx)),
            }),
        };
        // wait for the first SyncConnected (or a terminal state)
        let default_wait = Duration::from_millis(self.session_timeout_ms.max(1000) as u64);
        let wait = self.connect_timeout.unwrap_or(default_wait);
        let started = tokio::time::Instant::now();
        loop {
            let s = *state_rx.borrow_and_update();
            match s {
                KeeperState::SyncConnected | KeeperState::ConnectedReadOnly => break,
                KeeperState::Expired => return Err(Error::SessionExpired),
                KeeperState::AuthFailed => return Err(Error::AuthFailed),
                KeeperState::Closed => return Err(Error::ConnectionLoss),
                KeeperState::Disconnected => {}
            }
            let left = wait.saturating_sub(started.elapsed());
            if left.is_zero()
                || tokio::time::timeout(left.min(Duration::from_millis(50)), state_rx.changed())
                    .await
                    .is_ok_and(|r| r.is_err())
            {
                let _ = zk.close().await;
                return Err(Error::ConnectionLoss);
            }
            // without an explicit connect timeout, give up once every server refused twice
            if self.connect_timeout.is_none()
                && zk.inner.shared.failed_attempts.load(Ordering::SeqCst) >= 2 * n as u64
            {
                let _ = zk.close().await;
                return Err(Error::ConnectionLoss);
            }
        }
        if let (Some(max_delay), Some(rx)) = (self.auto_rebalance, internal_rx) {
            rebalance::spawn(Arc::downgrade(&zk.inner), rx, max_delay);
        }
        Ok(zk)
    }
}

struct Inner {
    shared: Arc<Shared>,
    requests: mpsc::UnboundedSender<Request>,
    control: mpsc::UnboundedSender<Control>,
    events: Mutex<Option<mpsc::UnboundedReceiver<WatchedEvent>>>,
}

/// One ZooKeeper session. Cheap to clone; all clones share the session.
#[derive(Clone)]
pub struct ZooKeeper {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ZooKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZooKeeper(session 0x{:x})", self.session_id())
    }
}

fn encode<T: Jute>(record: &T) -> Bytes {
    let mut b = BytesMut::new();
    record.write(&mut b);
    b.freeze()
}

fn check(reply: Reply) -> Result<Bytes> {
    if reply.err != 0 {
        Err(Error::from_code(reply.err))
    } else {
        Ok(reply.body)
    }
}

impl ZooKeeper {
    pub fn builder(connect_string: &str) -> ZooKeeperBuilder {
        ZooKeeperBuilder {
            connect_string: connect_string.to_owned(),
            session_timeout_ms: 30_000,
            connect_timeout: None,
            session: None,
            seed: None,
            auto_rebalance: None,
        }
    }

    /// A new session on one of the servers of `connect_string` (`host:port,…[/chroot]`),
    /// returned once connected.
    pub async fn connect(connect_string: &str, session_timeout_ms: i32) -> Result<ZooKeeper> {
        Self::builder(connect_string)
            .session_timeout(session_timeout_ms)
            .connect()
            .await
    }

    /// Resumes `session_id` (with its password) on a new handle.
    pub async fn connect_session(
        connect_string: &str,
        session_timeout_ms: i32,
        session_id: i64,
        passwd: Vec<u8>,
    ) -> Result<ZooKeeper> {
        Self::builder(connect_string)
            .session_timeout(session_timeout_ms)
            .session(session_id, passwd)
            .connect()
            .await
    }

    pub fn session_id(&self) -> i64 {
        self.inner.shared.session.lock().expect("lock").session_id
    }

    pub fn session_password(&self) -> Vec<u8> {
        self.inner
            .shared
            .session
            .lock()
            .expect("lock")
            .passwd
            .clone()
    }

    /// The negotiated session timeout in milliseconds.
    pub fn session_timeout(&self) -> i32 {
        self.inner
            .shared
            .session
            .lock()
            .expect("lock")
            .negotiated_timeout
    }

    /// The server the session is connected to now (`host:port`), if any.
    pub fn connected_to(&self) -> Option<String> {
        self.inner
            .shared
            .session
            .lock()
            .expect("lock")
            .connected_to
            .clone()
    }

    /// How many connections this handle has established so far.
    pub fn connection_count(&self) -> u64 {
        self.inner.shared.connects.load(Ordering::SeqCst)
    }

    pub fn state(&self) -> KeeperState {
        *self.inner.shared.state.borrow()
    }

    /// A receiver of state changes (for waiting on SyncConnected, Expired …).
    pub fn state_watch(&self) -> watch::Receiver<KeeperState> {
        self.inner.shared.state.subscribe()
    }

    /// The highest zxid this session has seen.
    pub fn last_zxid(&self) -> i64 {
        self.inner.shared.last_zxid.load(Ordering::SeqCst)
    }

    /// The session's watch events and state changes, in arrival order (can be taken once).
    pub fn take_events(&self) -> Option<mpsc::UnboundedReceiver<WatchedEvent>> {
        self.inner.events.lock().expect("lock").take()
    }

    fn server_path(&self, path: &str) -> String {
        match &self.inner.shared.chroot {
            Some(c) if path == "/" => c.clone(),
            Some(c) => format!("{c}{path}"),
            None => path.to_owned(),
        }
    }

    fn client_path(&self, path: String) -> String {
        match &self.inner.shared.chroot {
            Some(c) if path == *c => "/".to_owned(),
            Some(c) if path.starts_with(c.as_str()) => path[c.len()..].to_owned(),
            _ => path,
        }
    }

    fn terminal_error(&self) -> Error {
        match self.state() {
            KeeperState::AuthFailed => Error::AuthFailed,
            KeeperState::Expired | KeeperState::Closed => Error::SessionExpired,
            _ => Error::ConnectionLoss,
        }
    }

    /// Queues a request; the returned future resolves with its reply. Requests complete in
    /// the order they were queued.
    async fn submit(
        &self,
        op_type: i32,
        body: Bytes,
        watch: Option<WatchRegistration>,
    ) -> Result<Reply> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .requests
            .send(Request {
                op: op_type,
                body,
                reply: Some(tx),
                watch,
            })
            .map_err(|_| self.terminal_error())?;
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(self.terminal_error()),
        }
    }

    async fn call(
        &self,
        op_type: i32,
        body: Bytes,
        watch: Option<WatchRegistration>,
    ) -> Result<Bytes> {
        check(self.submit(op_type, body, watch).await?)
    }

    // -- create ----------------------------------------------------------------------------

    /// Creates a znode (any mode but the TTL ones; see `create_ttl`); returns its path
    /// (with the sequence number for sequential modes).
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String> {
        if mode.is_ttl() {
            return Err(Error::InvalidArgument(
                "TTL modes need a ttl: use create_ttl".into(),
            ));
        }
        validate_path(path, mode.is_sequential())?;
        let req = jute::CreateRequest {
            path: self.server_path(path),
            data: Some(data.to_vec()),
            acl: acl.to_vec(),
            flags: mode.flags(),
        };
        let opc = if mode.is_container() {
            op::CREATE_CONTAINER
        } else {
            op::CREATE
        };
        let body = self.call(opc, encode(&req), None).await?;
        Ok(self.client_path(jute::CreateResponse::decode_prefix(&body)?.path))
    }

    /// Creates a znode holding null data (Java's create with a null byte array), as
    /// zkCli's `create path` without data does.
    pub async fn create_null(&self, path: &str, acl: &[Acl], mode: CreateMode) -> Result<String> {
        if mode.is_ttl() {
            return Err(Error::InvalidArgument(
                "TTL modes need a ttl: use create_ttl".into(),
            ));
        }
        validate_path(path, mode.is_sequential())?;
        let req = jute::CreateRequest {
            path: self.server_path(path),
            data: None,
            acl: acl.to_vec(),
            flags: mode.flags(),
        };
        let opc = if mode.is_container() {
            op::CREATE_CONTAINER
        } else {
            op::CREATE
        };
        let body = self.call(opc, encode(&req), None).await?;
        Ok(self.client_path(jute::CreateResponse::decode_prefix(&body)?.path))
    }

    /// create2: creates and returns the path and the new znode's Stat.
    pub async fn create2(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat)> {
        if mode.is_ttl() {
            return Err(Error::InvalidArgument(
                "TTL modes need a ttl: use create_ttl".into(),
            ));
        }
        validate_path(path, mode.is_sequential())?;
        let req = jute::CreateRequest {
            path: self.server_path(path),
            data: Some(data.to_vec()),
            acl: acl.to_vec(),
            flags: mode.flags(),
        };
        let opc = if mode.is_container() {
            op::CREATE_CONTAINER
        } else {
            op::CREATE2
        };
        let body = self.call(opc, encode(&req), None).await?;
        let r = jute::Create2Response::decode(&body)?;
        Ok((self.client_path(r.path), r.stat))
    }

    /// Creates a TTL znode (PersistentWithTtl or PersistentSequentialWithTtl), `ttl_ms` > 0.
    pub async fn create_ttl(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: i64,
    ) -> Result<(String, Stat)> {
        if !mode.is_ttl() {
            return Err(Error::InvalidArgument(
                "create_ttl needs a TTL create mode".into(),
            ));
        }
        if ttl_ms <= 0 || ttl_ms > jute::ephemeral_owner::MAX_TTL {
            return Err(Error::InvalidArgument(format!(
                "ttl must be positive and cannot be larger than: {}",
                jute::ephemeral_owner::MAX_TTL
            )));
        }
        validate_path(path, mode.is_sequential())?;
        let req = jute::CreateTtlRequest {
            path: self.server_path(path),
            data: Some(data.to_vec()),
            acl: acl.to_vec(),
            flags: mode.flags(),
            ttl: ttl_ms,
        };
        let body = self.call(op::CREATE_TTL, encode(&req), None).await?;
        let r = jute::Create2Response::decode(&body)?;
        Ok((self.client_path(r.path), r.stat))
    }

    // -- the rest of the znode API -----------------------------------------------------------

    /// Deletes `path` if its version is `version` (-1: any).
    pub async fn delete(&self, path: &str, version: i32) -> Result<()> {
        validate_path(path, false)?;
        let req = jute::DeleteRequest {
            path: self.server_path(path),
            version,
        };
        self.call(op::DELETE, encode(&req), None).await.map(|_| ())
    }

    /// The Stat of `path`, None if it does not exist; `watch` leaves a watch either way.
    pub async fn exists(&self, path: &str, watch: bool) -> Result<Option<Stat>> {
        validate_path(path, false)?;
        let sp = self.server_path(path);
        let reg = watch.then(|| WatchRegistration::Exists(sp.clone()));
        let req = jute::ExistsRequest { path: sp, watch };
        match self.call(op::EXISTS, encode(&req), reg).await {
            Ok(body) => Ok(Some(jute::ExistsResponse::decode(&body)?.stat)),
            Err(Error::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The data (None when the znode holds null) and Stat of `path`.
    pub async fn get_data(&self, path: &str, watch: bool) -> Result<(Option<Vec<u8>>, Stat)> {
        validate_path(path, false)?;
        let sp = self.server_path(path);
        let reg = watch.then(|| WatchRegistration::Data(sp.clone()));
        let req = jute::GetDataRequest { path: sp, watch };
        let body = self.call(op::GET_DATA, encode(&req), reg).await?;
        let r = jute::GetDataResponse::decode(&body)?;
        Ok((r.data, r.stat))
    }

    pub async fn set_data(&self, path: &str, data: &[u8], version: i32) -> Result<Stat> {
        validate_path(path, false)?;
        let req = jute::SetDataRequest {
            path: self.server_path(path),
            data: Some(data.to_vec()),
            version,
        };
        let body = self.call(op::SET_DATA, encode(&req), None).await?;
        Ok(jute::SetDataResponse::decode(&body)?.stat)
    }

    pub async fn get_children(&self, path: &str, watch: bool) -> Result<Vec<String>> {
        validate_path(path, false)?;
        let sp = self.server_path(path);
        let reg = watch.then(|| WatchRegistration::Child(sp.clone()));
        let req = jute::GetChildrenRequest { path: sp, watch };
        let body = self.call(op::GET_CHILDREN, encode(&req), reg).await?;
        Ok(jute::GetChildrenResponse::decode(&body)?.children)
    }

    /// getChildren2: the children and the parent's Stat.
    pub async fn get_children2(&self, path: &str, watch: bool) -> Result<(Vec<String>, Stat)> {
        validate_path(path, false)?;
        let sp = self.server_path(path);
        let reg = watch.then(|| WatchRegistration::Child(sp.clone()));
        let req = jute::GetChildrenRequest { path: sp, watch };
        let body = self.call(op::GET_CHILDREN2, encode(&req), reg).await?;
        let r = jute::GetChildren2Response::decode(&body)?;
        Ok((r.children, r.stat))
    }

    pub async fn get_all_children_number(&self, path: &str) -> Result<i32> {
        validate_path(path, false)?;
        let req = jute::GetAllChildrenNumberRequest {
            path: self.server_path(path),
        };
        let body = self
            .call(op::GET_ALL_CHILDREN_NUMBER, encode(&req), None)
            .await?;
        Ok(jute::GetAllChildrenNumberResponse::decode(&body)?.total_number)
    }

    /// The session's ephemeral znodes whose path starts with `prefix_path` ("/" for all).
    pub async fn get_ephemerals(&self, prefix_path: &str) -> Result<Vec<String>> {
        validate_path(prefix_path, false)?;
        let req = jute::GetEphemeralsRequest {
            prefix_path: self.server_path(prefix_path),
        };
        let body = self.call(op::GET_EPHEMERALS, encode(&req), None).await?;
        Ok(jute::GetEphemeralsResponse::decode(&body)?
            .ephemerals
            .into_iter()
            .map(|p| self.client_path(p))
            .collect())
    }

    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        validate_path(path, false)?;
        let req = jute::GetAclRequest {
            path: self.server_path(path),
        };
        let body = self.call(op::GET_ACL, encode(&req), None).await?;
        let r = jute::GetAclResponse::decode(&body)?;
        Ok((r.acl, r.stat))
    }

    pub async fn set_acl(&self, path: &str, acl: &[Acl], acl_version: i32) -> Result<Stat> {
        validate_path(path, false)?;
        let req = jute::SetAclRequest {
            path: self.server_path(path),
            acl: acl.to_vec(),
            version: acl_version,
        };
        let body = self.call(op::SET_ACL, encode(&req), None).await?;
        Ok(jute::SetAclResponse::decode(&body)?.stat)
    }

    /// Waits until the server the session is connected to has caught up with the leader.
    pub async fn sync(&self, path: &str) -> Result<()> {
        validate_path(path, false)?;
        let req = jute::SyncRequest {
            path: self.server_path(path),
        };
        self.call(op::SYNC, encode(&req), None).await.map(|_| ())
    }

    /// addAuthInfo: authenticates this session; remembered and re-sent after reconnects.
    /// AuthFailed ends the session (state AuthFailed), as in Java's client.
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        self.add_auth_info(scheme, Some(auth)).await
    }

    /// addAuthInfo with possibly null auth data (what zkCli's `addauth scheme` sends).
    pub async fn add_auth_info(&self, scheme: &str, auth: Option<&[u8]>) -> Result<()> {
        if let Some(a) = auth {
            self.inner
                .shared
                .auth_infos
                .lock()
                .expect("lock")
                .push((scheme.to_owned(), a.to_vec()));
        }
        let p = jute::AuthPacket {
            auth_type: 0,
            scheme: scheme.into(),
            auth: auth.map(<[u8]>::to_vec),
        };
        self.call(op::AUTH, encode(&p), None).await.map(|_| ())
    }

    /// The identities this session is authenticated as.
    pub async fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        let body = self.call(op::WHO_AM_I, Bytes::new(), None).await?;
        Ok(jute::WhoAmIResponse::decode(&body)?.client_info)
    }

    // -- watches ---------------------------------------------------------------------------

    /// addWatch: a persistent (or persistent recursive) watch; it stays until removed.
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<()> {
        validate_path(path, false)?;
        let sp = self.server_path(path);
        let reg = match mode {
            AddWatchMode::Persistent => WatchRegistration::Persistent(sp.clone()),
            AddWatchMode::PersistentRecursive => WatchRegistration::PersistentRecursive(sp.clone()),
        };
        let req = jute::AddWatchRequest {
            path: sp,
            mode: mode.code(),
        };
        self.call(op::ADD_WATCH, encode(&req), Some(reg))
            .await
            .map(|_| ())
    }

    /// removeAllWatches: removes this session's watches of `watcher_type` on `path`, on the
    /// server too unless `local`. NoWatcher when the session has none there. Emits the
    /// matching *WatchRemoved events, as Java's client does.
    pub async fn remove_watches(
        &self,
        path: &str,
        watcher_type: WatcherType,
        local: bool,
    ) -> Result<()> {
        validate_path(path, false)?;
        let sp = self.server_path(path);
        let (has_data, has_child, has_persistent) = {
            let w = self.inner.shared.watches.lock().expect("lock");
            (
                w.data.contains(&sp) || w.exist.contains(&sp),
                w.child.contains(&sp),
                w.persistent.contains(&sp) || w.persistent_recursive.contains(&sp),
            )
        };
        let wanted = match watcher_type {
            WatcherType::Data => has_data,
            WatcherType::Children => has_child,
            WatcherType::Persistent | WatcherType::PersistentRecursive => has_persistent,
            WatcherType::Any => has_data || has_child || has_persistent,
        };
        if !wanted {
            return Err(Error::NoWatcher);
        }
        if !local {
            let req = jute::RemoveWatchesRequest {
                path: sp.clone(),
                watcher_type: watcher_type.code(),
            };
            self.call(op::REMOVE_WATCHES, encode(&req), None).await?;
        }
        let mut removed = Vec::new();
        {
            let mut w = self.inner.shared.watches.lock().expect("lock");
            if matches!(watcher_type, WatcherType::Data | WatcherType::Any) && has_data {
                w.data.remove(&sp);
                w.exist.remove(&sp);
                removed.push(EventType::DataWatchRemoved);
            }
            if matches!(watcher_type, WatcherType::Children | WatcherType::Any) && has_child {
                w.child.remove(&sp);
                removed.push(EventType::ChildWatchRemoved);
            }
            if matches!(
                watcher_type,
                WatcherType::Persistent | WatcherType::PersistentRecursive | WatcherType::Any
            ) && has_persistent
            {
                w.persistent.remove(&sp);
                w.persistent_recursive.remove(&sp);
                removed.push(EventType::PersistentWatchRemoved);
            }
        }
        for event_type in removed {
            let _ = self.inner.shared.events.send(WatchedEvent {
                event_type,
                state: KeeperState::SyncConnected,
                path: Some(path.to_owned()),
            });
        }
        Ok(())
    }

    /// checkWatches: whether the server holds a watch of `watcher_type` on `path` for this
    /// session (NoWatcher if not).
    pub async fn check_watches(&self, path: &str, watcher_type: WatcherType) -> Result<()> {
        validate_path(path, false)?;
        let req = jute::CheckWatchesRequest {
            path: self.server_path(path),
            watcher_type: watcher_type.code(),
        };
        self.call(op::CHECK_WATCHES, encode(&req), None)
            .await
            .map(|_| ())
    }

    // -- multi -----------------------------------------------------------------------------

    fn encode_ops(&self, ops: &[Op]) -> Result<Bytes> {
        let mut b = BytesMut::new();
        for o in ops {
            match o {
                Op::Create {
                    path,
                    data,
                    acl,
                    mode,
                    ttl,
                } => {
                    validate_path(path, mode.is_sequential())?;
                    let sp = self.server_path(path);
                    let (opc, rec): (i32, Bytes) = if let Some(ttl) = ttl {
                        (
                            op::CREATE_TTL,
                            encode(&jute::CreateTtlRequest {
                                path: sp,
                                data: Some(data.clone()),
                                acl: acl.clone(),
                                flags: mode.flags(),
                                ttl: *ttl,
                            }),
                        )
                    } else {
                        (
                            if mode.is_container() {
                                op::CREATE_CONTAINER
                            } else {
                                op::CREATE
                            },
                            encode(&jute::CreateRequest {
                                path: sp,
                                data: Some(data.clone()),
                                acl: acl.clone(),
                                flags: mode.flags(),
                            }),
                        )
                    };
                    multi_header(&mut b, opc);
                    b.extend_from_slice(&rec);
                }
                Op::Delete { path, version } => {
                    validate_path(path, false)?;
                    multi_header(&mut b, op::DELETE);
                    jute::DeleteRequest {
                        path: self.server_path(path),
                        version: *version,
                    }
                    .write(&mut b);
                }
                Op::SetData {
                    path,
                    data,
                    version,
                } => {
                    validate_path(path, false)?;
                    multi_header(&mut b, op::SET_DATA);
                    jute::SetDataRequest {
                        path: self.server_path(path),
                        data: Some(data.clone()),
                        version: *version,
                    }
                    .write(&mut b);
                }
                Op::Check { path, version } => {
                    validate_path(path, false)?;
                    multi_header(&mut b, op::CHECK);
                    jute::CheckVersionRequest {
                        path: self.server_path(path),
                        version: *version,
                    }
                    .write(&mut b);
                }
                Op::GetChildren { path } => {
                    validate_path(path, false)?;
                    multi_header(&mut b, op::GET_CHILDREN);
                    jute::GetChildrenRequest {
                        path: self.server_path(path),
                        watch: false,
                    }
                    .write(&mut b);
                }
                Op::GetData { path } => {
                    validate_path(path, false)?;
                    multi_header(&mut b, op::GET_DATA);
                    jute::GetDataRequest {
                        path: self.server_path(path),
                        watch: false,
                    }
                    .write(&mut b);
                }
            }
        }
        MultiHeader {
            op_type: -1,
            done: true,
            err: -1,
        }
        .write(&mut b);
        Ok(b.freeze())
    }

    fn decode_results(&self, body: &[u8]) -> Result<Vec<OpResult>> {
        let mut r = jute::Reader::new(body);
        let mut out = Vec::new();
        loop {
            let h = MultiHeader::read(&mut r)?;
            if h.done {
                break;
            }
            out.push(match h.op_type {
                op::CREATE => OpResult::Create {
                    path: self.client_path(jute::CreateResponse::read(&mut r)?.path),
                    stat: None,
                },
                op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                    let c = jute::Create2Response::read(&mut r)?;
                    OpResult::Create {
                        path: self.client_path(c.path),
                        stat: Some(c.stat),
                    }
                }
                op::DELETE => OpResult::Delete,
                op::SET_DATA => OpResult::SetData {
                    stat: jute::SetDataResponse::read(&mut r)?.stat,
                },
                op::CHECK => OpResult::Check,
                op::GET_CHILDREN => OpResult::GetChildren {
                    children: jute::GetChildrenResponse::read(&mut r)?.children,
                },
                op::GET_DATA => {
                    let g = jute::GetDataResponse::read(&mut r)?;
                    OpResult::GetData {
                        data: g.data,
                        stat: g.stat,
                    }
                }
                op::ERROR => match jute::ErrorResponse::read(&mut r)?.err {
                    0 => OpResult::RolledBack,
                    code => OpResult::Error(Error::from_code(code)),
                },
                _ => return Err(Error::MarshallingError),
            });
        }
        Ok(out)
    }

    /// multi: all write ops or none. On failure the error of the first failing op (use
    /// `try_multi` for every op's result).
    pub async fn multi(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        let results = self.try_multi(ops).await?;
        if let Some(e) = results.iter().find_map(|r| match r {
            OpResult::Error(e) if *e != Error::RuntimeInconsistency => Some(e.clone()),
            _ => None,
        }) {
            return Err(e);
        }
        Ok(results)
    }

    /// multi returning every op's result, errors included (Java's multi callback).
    pub async fn try_multi(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        if ops.iter().any(Op::is_read) {
            return Err(Error::InvalidArgument(
                "multi takes write ops; use multi_read for reads".into(),
            ));
        }
        let body = self.encode_ops(ops)?;
        let reply = self.submit(op::MULTI, body, None).await?;
        match self.decode_results(&reply.body) {
            Ok(results) if !results.is_empty() || ops.is_empty() => Ok(results),
            _ if reply.err != 0 => Err(Error::from_code(reply.err)),
            other => other,
        }
    }

    /// multiRead: getData / getChildren ops; each result is the op's reply or its error.
    pub async fn multi_read(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        if ops.iter().any(|o| !o.is_read()) {
            return Err(Error::InvalidArgument(
                "multi_read takes only get_data and get_children ops".into(),
            ));
        }
        let body = self.encode_ops(ops)?;
        let reply = self.submit(op::MULTI_READ, body, None).await?;
        if reply.err != 0 && reply.body.is_empty() {
            return Err(Error::from_code(reply.err));
        }
        self.decode_results(&reply.body)
    }

    // -- configuration -----------------------------------------------------------------------

    /// getConfig: the data and Stat of /zookeeper/config (never under the chroot).
    pub async fn get_config(&self, watch: bool) -> Result<(Vec<u8>, Stat)> {
        self.get_config_for(watch, true).await
    }

    async fn get_config_for(&self, watch: bool, user: bool) -> Result<(Vec<u8>, Stat)> {
        let reg = watch.then_some(WatchRegistration::Config { user });
        let req = jute::GetDataRequest {
            path: CONFIG_NODE.into(),
            watch,
        };
        let body = self.call(op::GET_DATA, encode(&req), reg).await?;
        let r = jute::GetDataResponse::decode(&body)?;
        Ok((r.data.unwrap_or_default(), r.stat))
    }

    /// reconfig: incremental (`joining` / `leaving`, comma separated server lines and ids)
    /// or bulk (`new_members`); conditional on the config version `from_config` unless it is
    /// -1. Returns the new configuration and the Stat of /zookeeper/config.
    ///
    /// NewConfigNoQuorum for a change that makes an observer a participant carries a hint
    /// with the two reconfigs that achieve it (remove it, then add it back as participant).
    pub async fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_config: i64,
    ) -> Result<(Vec<u8>, Stat)> {
        let req = jute::ReconfigRequest {
            joining_servers: joining.map(str::to_owned),
            leaving_servers: leaving.map(str::to_owned),
            new_members: new_members.map(str::to_owned),
            cur_config_id: from_config,
        };
        match self.call(op::RECONFIG, encode(&req), None).await {
            Ok(body) => {
                let r = jute::GetDataResponse::decode(&body)?;
                Ok((r.data.unwrap_or_default(), r.stat))
            }
            Err(Error::NewConfigNoQuorum { .. }) => {
                let hint = match self.get_config(false).await {
                    Ok((current, _)) => config_data::observer_to_participant_hint(
                        &String::from_utf8_lossy(&current),
                        joining,
                        new_members,
                    ),
                    Err(_) => None,
                };
                Err(Error::NewConfigNoQuorum { hint })
            }
            Err(e) => Err(e),
        }
    }

    /// reconfig, then returns only once the new configuration is active and every operation
    /// scheduled before it is committed: it issues a side-effect-free quorum write (a multi
    /// holding only a check of /zookeeper/config, which the leader proposes and commits like
    /// any txn) and waits for its commit — what the reconfiguration manual (§4.2.1, "Progress
    /// guarantees") says is sufficient. A `sync` would not do: it does not go through a quorum.
    pub async fn reconfig_and_wait(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_config: i64,
    ) -> Result<(Vec<u8>, Stat)> {
        let result = self
            .reconfig(joining, leaving, new_members, from_config)
            .await?;
        // the barrier has no effect, so it can be retried: a reconfig that removes the
        // server we are on (or the leader) drops our connection, and the barrier then runs
        // once the session has reconnected
        let mut attempts = 0;
        loop {
            match self.quorum_barrier().await {
                Ok(_) => return Ok(result),
                Err(Error::ConnectionLoss) if attempts < 5 => attempts += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// A quorum write without side effects; returns the zxid it committed at.
    pub async fn quorum_barrier(&self) -> Result<i64> {
        let mut b = BytesMut::new();
        multi_header(&mut b, op::CHECK);
        jute::CheckVersionRequest {
            path: CONFIG_NODE.into(),
            version: -1,
        }
        .write(&mut b);
        MultiHeader {
            op_type: -1,
            done: true,
            err: -1,
        }
        .write(&mut b);
        let reply = self.submit(op::MULTI, b.freeze(), None).await?;
        if reply.err != 0 {
            return Err(Error::from_code(reply.err));
        }
        Ok(reply.zxid)
    }

    /// updateServerList: a new connect string (chroot ignored). Moves the connection when
    /// the host provider's rebalancing says so (the session moves with it). Returns whether
    /// the client is moving.
    pub async fn update_server_list(&self, connect_string: &str) -> Result<bool> {
        let cs = ConnectString::parse(connect_string)?;
        let (tx, rx) = oneshot::channel();
        self.inner
            .control
            .send(Control::UpdateServerList(cs.servers, tx))
            .map_err(|_| self.terminal_error())?;
        rx.await.map_err(|_| self.terminal_error())
    }

    /// Closes the session (closeSession) and the connection. Idempotent.
    pub async fn close(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        if self.inner.control.send(Control::Close(tx)).is_ok() {
            let _ = rx.await;
        }
        Ok(())
    }
}

fn multi_header(b: &mut BytesMut, op_type: i32) {
    MultiHeader {
        op_type,
        done: false,
        err: -1,
    }
    .write(b);
}

trait DecodePrefix: Sized {
    fn decode_prefix(body: &[u8]) -> Result<Self>;
}

impl DecodePrefix for jute::CreateResponse {
    /// a createContainer reply is a Create2Response: read the path and ignore the rest
    fn decode_prefix(body: &[u8]) -> Result<Self> {
        let mut r = jute::Reader::new(body);
        Ok(jute::CreateResponse::read(&mut r)?)
    }
}
