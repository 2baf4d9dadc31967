//! Prepare: turns a write request into the txn every server will apply, validating it against
//! the tree *plus the changes still in flight* (ZooKeeper's PrepRequestProcessor), so that a
//! create right after an uncommitted create of the same path fails.

use crate::acl;
use crate::data_tree::DataTree;
use crate::path;
use crate::txn::Txn;
use crate::HashMap;
use jute::request::{Create, MultiOp, Request};
use jute::{ephemeral_owner, op, perms, Acl, CreateMode, ErrorCode, Id, StatPersisted, TxnHeader};
use jute::{
    CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn,
    CreateTxn, DeleteTxn, ErrorTxn, SetAclTxn, SetDataTxn,
};
use std::collections::VecDeque;
use std::sync::Arc;

/// The state of a path as the in-flight txns leave it. `stat: None` means deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChangeRecord {
    zxid: i64,
    stat: Option<StatPersisted>,
    child_count: i32,
    acl: Arc<[Acl]>,
}

/// Who is asking, and the server settings Prepare depends on.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    pub session_id: i64,
    pub cxid: i32,
    pub auth: &'a [Id],
    /// Wall-clock milliseconds, recorded in the txn header (ctime/mtime).
    pub time: i64,
    pub skip_acl: bool,
    pub extended_types_enabled: bool,
    pub reconfig_enabled: bool,
}

/// A prepared txn. `error` is set when the request failed; the txn is then an error txn (or a
/// multi of error txns), which still takes a zxid, as in ZooKeeper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub header: TxnHeader,
    pub txn: Txn,
    pub error: Option<ErrorCode>,
}

#[derive(Debug, Default)]
pub struct Preparer {
    by_path: HashMap<Arc<str>, ChangeRecord>,
    /// (zxid, path) in proposal order, to retire records once applied (the path allocated
    /// once for both).
    order: VecDeque<(i64, Arc<str>)>,
    /// While preparing a multi: the record each touched path had before, for rollback.
    journal: Option<HashMap<String, Option<ChangeRecord>>>,
}

type Outcome<T> = Result<T, ErrorCode>;

/// Change records a drained Preparer keeps room for.
const RETAINED_RECORDS: usize = 1024;

impl Preparer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of in-flight change records.
    pub fn outstanding(&self) -> usize {
        self.order.len()
    }

    /// Retires change records of txns up to `zxid`, now applied to the tree.
    pub fn applied(&mut self, zxid: i64) {
        while let Some((z, _)) = self.order.front() {
            if *z > zxid {
                break;
            }
            let (z, p) = self.order.pop_front().expect("non-empty");
            if self.by_path.get(&p).is_some_and(|r| r.zxid == z) {
                self.by_path.remove(&p);
            }
        }
        // a burst of writes grows these to hold every record in flight; once drained, give
        // the memory back rather than keep it for good (about 6 MB on a leader after a bulk
        // load of multis)
        if self.order.is_empty() && self.order.capacity() > RETAINED_RECORDS {
            self.order.shrink_to(RETAINED_RECORDS);
            self.by_path.shrink_to(RETAINED_RECORDS);
        }
    }

    fn record(&self, tree: &DataTree, p: &str) -> Outcome<ChangeRecord> {
        if let Some(r) = self.by_path.get(p) {
            return if r.stat.is_some() {
                Ok(r.clone())
            } else {
                Err(ErrorCode::NoNode)
            };
        }
        let node = tree.node(p).ok_or(ErrorCode::NoNode)?;
        Ok(ChangeRecord {
            zxid: -1,
            stat: Some(node.stat.clone()),
            child_count: node.num_children() as i32,
            acl: tree.shared_acl_of(node),
        })
    }

    fn add_change(&mut self, p: &str, record: ChangeRecord) {
        if let Some(journal) = self.journal.as_mut() {
            if !journal.contains_key(p) {
                journal.insert(p.to_owned(), self.by_path.get(p).cloned());
            }
        }
        // a path with a pending change keeps its key (writes to one znode in a row)
        let p: Arc<str> = match self.by_path.get_key_value(p) {
            Some((key, _)) => key.clone(),
            None => Arc::from(p),
        };
        self.order.push_back((record.zxid, p.clone()));
        self.by_path.insert(p, record);
    }

    fn rollback(&mut self, zxid: i64, journal: HashMap<String, Option<ChangeRecord>>) {
        while self.order.back().is_some_and(|(z, _)| *z == zxid) {
            self.order.pop_back();
        }
        for (p, before) in journal {
            match before {
                Some(r) => self.by_path.insert(Arc::from(p), r),
                None => self.by_path.remove(p.as_str()),
            };
        }
    }

    fn check_acl(ctx: &RequestContext<'_>, acl: &[Acl], perm: i32) -> Outcome<()> {
        if ctx.skip_acl || acl::check_acl(acl, perm, ctx.auth) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    /// A new session: its txn carries the negotiated timeout.
    pub fn create_session(
        &mut self,
        session_id: i64,
        timeout: i32,
        zxid: i64,
        time: i64,
    ) -> Prepared {
        Prepared {
            header: header(session_id, 0, zxid, time, op::CREATE_SESSION),
            txn: Txn::CreateSession(CreateSessionTxn { time_out: timeout }),
            error: None,
        }
    }

    /// Closing or expiring a session: the txn lists the ephemerals to delete, including ones
    /// created and not yet applied.
    pub fn close_session(
        &mut self,
        tree: &DataTree,
        session_id: i64,
        cxid: i32,
        zxid: i64,
        time: i64,
    ) -> Prepared {
        let mut doomed: std::collections::BTreeSet<String> =
            tree.ephemerals_of(session_id, "/").into_iter().collect();
        for (p, r) in &self.by_path {
            match &r.stat {
                None => {
                    doomed.remove(&**p);
                }
                Some(s) if s.ephemeral_owner == session_id => {
                    doomed.insert(p.to_string());
                }
                Some(_) => {}
            }
        }
        for p in &doomed {
            self.add_change(
                p,
                ChangeRecord {
                    zxid,
                    stat: None,
                    child_count: 0,
                    acl: Arc::from([]),
                },
            );
        }
        Prepared {
            header: header(session_id, cxid, zxid, time, op::CLOSE_SESSION),
            txn: Txn::CloseSession(CloseSessionTxn {
                paths_to_delete: doomed.into_iter().collect(),
            }),
            error: None,
        }
    }

    /// Prepares a write request with the next zxid.
    pub fn prepare(
        &mut self,
        tree: &DataTree,
        ctx: &RequestContext<'_>,
        request: &mut Request,
        zxid: i64,
    ) -> Prepared {
        let op_type = match request {
            Request::Create(c) => c.op_type,
            Request::Delete(_) => op::DELETE,
            Request::SetData(_) => op::SET_DATA,
            Request::SetAcl(_) => op::SET_ACL,
            Request::Check(_) => op::CHECK,
            Request::Multi(_) => op::MULTI,
            Request::Reconfig(_) => op::RECONFIG,
            Request::DeleteContainer(_) => op::DELETE_CONTAINER,
            Request::CloseSession => {
                return self.close_session(tree, ctx.session_id, ctx.cxid, zxid, ctx.time)
            }
            _ => op::ERROR,
        };
        let hdr = header(ctx.session_id, ctx.cxid, zxid, ctx.time, op_type);
        let outcome = match request {
            Request::Multi(ops) => return self.prepare_multi(tree, ctx, ops, hdr),
            // the txn takes the request's data: a write's value is not copied here
            Request::Create(c) => {
                let data = std::mem::take(&mut c.data);
                let acl = std::mem::take(&mut c.acl);
                self.prepare_create(tree, ctx, c, data, acl, zxid)
            }
            Request::Delete(d) => self.prepare_delete(tree, ctx, &d.path, d.version, zxid, false),
            Request::DeleteContainer(p) => self.prepare_delete(tree, ctx, p, -1, zxid, true),
            Request::SetData(s) => {
                let data = std::mem::take(&mut s.data);
                self.prepare_set_data(tree, ctx, &s.path, data, s.version, zxid)
            }
            Request::SetAcl(s) => self.prepare_set_acl(tree, ctx, &s.path, &s.acl, s.version, zxid),
            Request::Check(c) => self.prepare_check(tree, ctx, &c.path, c.version),
            Request::Reconfig(_) => {
                if ctx.reconfig_enabled {
                    // a standalone server cannot reconfigure (ZooKeeper: Unimplemented)
                    Err(ErrorCode::Unimplemented)
                } else {
                    Err(ErrorCode::ReconfigDisabled)
                }
            }
            _ => Err(ErrorCode::Unimplemented),
        };
        match outcome {
            Ok(txn) => Prepared {
                header: hdr,
                txn,
                error: None,
            },
            Err(code) => Prepared {
                header: TxnHeader {
                    txn_type: op::ERROR,
                    ..hdr
                },
                txn: Txn::Error(ErrorTxn { err: code.code() }),
                error: Some(code),
            },
        }
    }

    fn prepare_multi(
        &mut self,
        tree: &DataTree,
        ctx: &RequestContext<'_>,
        ops: &[MultiOp],
        hdr: TxnHeader,
    ) -> Prepared {
        let zxid = hdr.zxid;
        if ops.iter().any(MultiOp::is_read) {
            // reads belong in multiRead; ZooKeeper refuses the mix while decoding
            return Prepared {
                header: TxnHeader {
                    txn_type: op::ERROR,
                    ..hdr
                },
                txn: Txn::Error(ErrorTxn {
                    err: ErrorCode::MarshallingError.code(),
                }),
                error: Some(ErrorCode::MarshallingError),
            };
        }
        self.journal = Some(HashMap::default());
        let mut txns = Vec::with_capacity(ops.len());
        let mut failure = None;
        for o in ops {
            if failure.is_some() {
                txns.push(Txn::Error(ErrorTxn {
                    err: ErrorCode::RuntimeInconsistency.code(),
                }));
                continue;
            }
            let outcome = match o {
                MultiOp::Create(c) => {
                    self.prepare_create(tree, ctx, c, c.data.clone(), c.acl.clone(), zxid)
                }
                MultiOp::Delete(d) => {
                    self.prepare_delete(tree, ctx, &d.path, d.version, zxid, false)
                }
                MultiOp::SetData(s) => {
                    self.prepare_set_data(tree, ctx, &s.path, s.data.clone(), s.version, zxid)
                }
                MultiOp::Check(c) => self.prepare_check(tree, ctx, &c.path, c.version),
                MultiOp::GetChildren(_) | MultiOp::GetData(_) => unreachable!("rejected above"),
            };
            match outcome {
                Ok(txn) => txns.push(txn),
                Err(code) => {
                    failure = Some(code);
                    txns.push(Txn::Error(ErrorTxn { err: code.code() }));
                    let journal = self.journal.take().unwrap_or_default();
                    self.rollback(zxid, journal);
                }
            }
        }
        self.journal = None;
        Prepared {
            header: hdr,
            txn: Txn::Multi(txns),
            error: failure,
        }
    }

    fn prepare_create(
        &mut self,
        tree: &DataTree,
        ctx: &RequestContext<'_>,
        c: &Create,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        zxid: i64,
    ) -> Outcome<Txn> {
        let mode = CreateMode::from_flags(c.flags).ok_or(ErrorCode::BadArguments)?;
        if mode.is_ttl() && !ctx.extended_types_enabled {
            return Err(ErrorCode::Unimplemented);
        }
        let ttl_ok = if mode.is_ttl() {
            c.ttl > 0 && c.ttl <= ephemeral_owner::MAX_TTL
        } else {
            c.ttl < 0
        };
        if !ttl_ok {
            return Err(ErrorCode::BadArguments);
        }
        let last_slash = c.path.rfind('/').ok_or(ErrorCode::BadArguments)?;
        if c.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = if last_slash == 0 {
            "/"
        } else {
            &c.path[..last_slash]
        };
        let acl = acl::fixup_acl_owned(acl, ctx.auth)?;
        let parent = self.record(tree, parent_path)?;
        Self::check_acl(ctx, &parent.acl, perms::CREATE)?;
        let parent_stat = parent.stat.as_ref().expect("record exists");
        let new_path = if mode.is_sequential() {
            format!("{}{:010}", c.path, parent_stat.cversion)
        } else {
            c.path.clone()
        };
        path::validate_path(&new_path).map_err(|_| ErrorCode::BadArguments)?;
        if self.record(tree, &new_path).is_ok() {
            return Err(ErrorCode::NodeExists);
        }
        if ephemeral_owner::is_session(parent_stat.ephemeral_owner) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let new_cversion = parent_stat.cversion + 1;
        // the record shares the cache's copy of the list when there is one (nearly always:
        // most creates use an ACL already in use), the txn takes the list itself
        let record_acl = tree
            .acls
            .find_shared(&acl)
            .unwrap_or_else(|| Arc::from(acl.as_slice()));
        let txn = match c.op_type {
            op::CREATE_CONTAINER => Txn::CreateContainer(CreateContainerTxn {
                path: new_path.clone(),
                data,
                acl,
                parent_cversion: new_cversion,
            }),
            op::CREATE_TTL => Txn::CreateTtl(CreateTtlTxn {
                path: new_path.clone(),
                data,
                acl,
                parent_cversion: new_cversion,
                ttl: c.ttl,
            }),
            op_type => {
                let t = CreateTxn {
                    path: new_path.clone(),
                    data,
                    acl,
                    ephemeral: mode.is_ephemeral(),
                    parent_cversion: new_cversion,
                };
                if op_type == op::CREATE2 {
                    Txn::Create2(t)
                } else {
                    Txn::Create(t)
                }
            }
        };
        let owner = if mode.is_container() {
            ephemeral_owner::CONTAINER
        } else if mode.is_ttl() {
            ephemeral_owner::for_ttl(c.ttl)
        } else if mode.is_ephemeral() {
            ctx.session_id
        } else {
            0
        };
        let mut parent_stat = parent_stat.clone();
        parent_stat.cversion = new_cversion;
        parent_stat.pzxid = zxid;
        self.add_change(
            parent_path,
            ChangeRecord {
                zxid,
                stat: Some(parent_stat),
                child_count: parent.child_count + 1,
                acl: parent.acl,
            },
        );
        let stat = StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: ctx.time,
            mtime: ctx.time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: zxid,
        };
        self.add_change(
            &new_path,
            ChangeRecord {
                zxid,
                stat: Some(stat),
                child_count: 0,
                acl: record_acl,
            },
        );
        Ok(txn)
    }

    fn prepare_delete(
        &mut self,
        tree: &DataTree,
        ctx: &RequestContext<'_>,
        p: &str,
        version: i32,
        zxid: i64,
        container_only: bool,
    ) -> Outcome<Txn> {
        // ZooKeeper checks only this much of a deleted path (getParentPathAndValidate): a
        // malformed path is then simply not found
        let last_slash = p.rfind('/').ok_or(ErrorCode::BadArguments)?;
        if p.contains('\0') || is_special_path(p) {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = if last_slash == 0 {
            "/"
        } else {
            &p[..last_slash]
        };
        let parent = self.record(tree, parent_path)?;
        if !container_only {
            Self::check_acl(ctx, &parent.acl, perms::DELETE)?;
        }
        let node = self.record(tree, p)?;
        let stat = node.stat.as_ref().expect("record exists");
        if !container_only {
            check_version(stat.version, version)?;
        }
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if container_only && ephemeral_owner::is_session(stat.ephemeral_owner) {
            return Err(ErrorCode::BadVersion);
        }
        let mut parent_stat = parent.stat.clone().expect("record exists");
        parent_stat.pzxid = zxid;
        self.add_change(
            parent_path,
            ChangeRecord {
                zxid,
                stat: Some(parent_stat),
                child_count: parent.child_count - 1,
                acl: parent.acl,
            },
        );
        self.add_change(
            p,
            ChangeRecord {
                zxid,
                stat: None,
                child_count: -1,
                acl: Arc::from([]),
            },
        );
        let t = DeleteTxn { path: p.to_owned() };
        Ok(if container_only {
            Txn::DeleteContainer(t)
        } else {
            Txn::Delete(t)
        })
    }

    fn prepare_set_data(
        &mut self,
        tree: &DataTree,
        ctx: &RequestContext<'_>,
        p: &str,
        data: Option<Vec<u8>>,
        version: i32,
        zxid: i64,
    ) -> Outcome<Txn> {
        path::validate_path(p).map_err(|_| ErrorCode::BadArguments)?;
        let mut node = self.record(tree, p)?;
        Self::check_acl(ctx, &node.acl, perms::WRITE)?;
        let stat = node.stat.as_mut().expect("record exists");
        let new_version = check_version(stat.version, version)?;
        stat.version = new_version;
        stat.mtime = ctx.time;
        stat.mzxid = zxid;
        node.zxid = zxid;
        self.add_change(p, node);
        let txn = SetDataTxn {
            path: p.to_owned(),
            data,
            version: new_version,
        };
        Ok(Txn::SetData(txn))
    }

    fn prepare_set_acl(
        &mut self,
        tree: &DataTree,
        ctx: &RequestContext<'_>,
        p: &str,
        acl: &[Acl],
        version: i32,
        zxid: i64,
    ) -> Outcome<Txn> {
        path::validate_path(p).map_err(|_| ErrorCode::BadArguments)?;
        let acl = acl::fixup_acl(acl, ctx.auth)?;
        let mut node = self.record(tree, p)?;
        Self::check_acl(ctx, &node.acl, perms::ADMIN)?;
        let stat = node.stat.as_mut().expect("record exists");
        let new_version = check_version(stat.aversion, version)?;
        stat.aversion = new_version;
        node.zxid = zxid;
        node.acl = Arc::from(acl.as_slice());
        self.add_change(p, node);
        Ok(Txn::SetAcl(SetAclTxn {
            path: p.to_owned(),
            acl,
            version: new_version,
        }))
    }

    fn prepare_check(
        &mut self,
        tree: &DataTree,
        ctx: &RequestContext<'_>,
        p: &str,
        version: i32,
    ) -> Outcome<Txn> {
        path::validate_path(p).map_err(|_| ErrorCode::BadArguments)?;
        let node = self.record(tree, p)?;
        Self::check_acl(ctx, &node.acl, perms::READ)?;
        let stat = node.stat.as_ref().expect("record exists");
        let next = check_version(stat.version, version)?;
        Ok(Txn::Check(CheckVersionTxn {
            path: p.to_owned(),
            version: next,
        }))
    }
}

/// The nodes ZooKeeper never lets a client delete.
fn is_special_path(p: &str) -> bool {
    matches!(
        p,
        "/" | crate::ZOOKEEPER_PATH | crate::QUOTA_PATH | crate::CONFIG_PATH
    )
}

fn header(session_id: i64, cxid: i32, zxid: i64, time: i64, txn_type: i32) -> TxnHeader {
    TxnHeader {
        client_id: session_id,
        cxid,
        zxid,
        time,
        txn_type,
    }
}

/// -1 matches any version; otherwise it must equal the current one. Returns the next version.
fn check_version(current: i32, expected: i32) -> Outcome<i32> {
    if expected != -1 && expected != current {
        Err(ErrorCode::BadVersion)
    } else {
        Ok(current.wrapping_add(1))
    }
}
