//! A client request decoded from its opcode and body.

use crate::codec::{Jute, JuteError, Reader, Result};
use crate::consts::{op, CreateMode};
use crate::records::*;

/// A create of any kind; `op_type` is create, create2, createContainer or createTTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    pub op_type: i32,
    pub path: String,
    pub data: Data,
    pub acl: Vec<Acl>,
    pub flags: i32,
    pub ttl: i64,
}

/// One operation inside a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create(Create),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetChildren(GetChildrenRequest),
    GetData(GetDataRequest),
}

impl MultiOp {
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }
}

/// A decoded client request body. Connect is handled separately (it has no header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(Create),
    Delete(DeleteRequest),
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    SetData(SetDataRequest),
    GetAcl(GetAclRequest),
    SetAcl(SetAclRequest),
    GetChildren(GetChildrenRequest),
    GetChildren2(GetChildrenRequest),
    Sync(SyncRequest),
    Ping,
    Check(CheckVersionRequest),
    Multi(Vec<MultiOp>),
    MultiRead(Vec<MultiOp>),
    Reconfig(ReconfigRequest),
    CheckWatches(CheckWatchesRequest),
    RemoveWatches(RemoveWatchesRequest),
    DeleteContainer(String),
    Auth(AuthPacket),
    SetWatches(SetWatches2),
    GetEphemerals(GetEphemeralsRequest),
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
}

impl Request {
    /// Decodes the body of a request of type `op_type`. Trailing bytes are tolerated, as
    /// ZooKeeper does; a truncated or malformed body is an error.
    pub fn decode(op_type: i32, body: &[u8]) -> Result<Request> {
        let r = &mut Reader::new(body);
        Ok(match op_type {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => {
                Request::Create(create_from(op_type, CreateRequest::read(r)?))
            }
            op::CREATE_TTL => Request::Create(create_ttl_from(CreateTtlRequest::read(r)?)),
            op::DELETE => Request::Delete(DeleteRequest::read(r)?),
            op::EXISTS => Request::Exists(ExistsRequest::read(r)?),
            op::GET_DATA => Request::GetData(GetDataRequest::read(r)?),
            op::SET_DATA => Request::SetData(SetDataRequest::read(r)?),
            op::GET_ACL => Request::GetAcl(GetAclRequest::read(r)?),
            op::SET_ACL => Request::SetAcl(SetAclRequest::read(r)?),
            op::GET_CHILDREN => Request::GetChildren(GetChildrenRequest::read(r)?),
            op::GET_CHILDREN2 => Request::GetChildren2(GetChildrenRequest::read(r)?),
            op::SYNC => Request::Sync(SyncRequest::read(r)?),
            op::PING => Request::Ping,
            op::CHECK => Request::Check(CheckVersionRequest::read(r)?),
            op::MULTI => Request::Multi(read_multi(r)?),
            op::MULTI_READ => Request::MultiRead(read_multi(r)?),
            op::RECONFIG => Request::Reconfig(ReconfigRequest::read(r)?),
            op::CHECK_WATCHES => Request::CheckWatches(CheckWatchesRequest::read(r)?),
            op::REMOVE_WATCHES => Request::RemoveWatches(RemoveWatchesRequest::read(r)?),
            op::DELETE_CONTAINER => Request::DeleteContainer(
                // deleteContainer carries the bare path bytes, not a record
                String::from_utf8(body.to_vec())
                    .map_err(|_| JuteError::InvalidUtf8 { offset: 0 })?,
            ),
            op::AUTH => Request::Auth(AuthPacket::read(r)?),
            op::SET_WATCHES => {
                let w = SetWatches::read(r)?;
                Request::SetWatches(SetWatches2 {
                    relative_zxid: w.relative_zxid,
                    data_watches: w.data_watches,
                    exist_watches: w.exist_watches,
                    child_watches: w.child_watches,
                    persistent_watches: Vec::new(),
                    persistent_recursive_watches: Vec::new(),
                })
            }
            op::SET_WATCHES2 => Request::SetWatches(SetWatches2::read(r)?),
            op::GET_EPHEMERALS => Request::GetEphemerals(GetEphemeralsRequest::read(r)?),
            op::GET_ALL_CHILDREN_NUMBER => {
                Request::GetAllChildrenNumber(GetAllChildrenNumberRequest::read(r)?)
            }
            op::ADD_WATCH => Request::AddWatch(AddWatchRequest::read(r)?),
            op::WHO_AM_I => Request::WhoAmI,
            op::CLOSE_SESSION => Request::CloseSession,
            other => {
                return Err(JuteError::InvalidValue {
                    what: "opcode",
                    value: other as i64,
                })
            }
        })
    }

    /// Whether the request changes state (goes through Prepare and gets a zxid).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create(_)
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Check(_)
                | Request::Multi(_)
                | Request::Reconfig(_)
                | Request::DeleteContainer(_)
                | Request::CloseSession
        )
    }
}

fn create_from(op_type: i32, c: CreateRequest) -> Create {
    Create {
        op_type,
        path: c.path,
        data: c.data,
        acl: c.acl,
        flags: c.flags,
        ttl: -1,
    }
}

fn create_ttl_from(c: CreateTtlRequest) -> Create {
    Create {
        op_type: op::CREATE_TTL,
        path: c.path,
        data: c.data,
        acl: c.acl,
        flags: c.flags,
        ttl: c.ttl,
    }
}

/// The op type ZooKeeper gives a create inside a multi: derived from its flags, not its opcode.
fn multi_create_op_type(flags: i32) -> i32 {
    match CreateMode::from_flags(flags) {
        Some(m) if m.is_ttl() => op::CREATE_TTL,
        Some(CreateMode::Container) => op::CREATE_CONTAINER,
        _ => op::CREATE,
    }
}

fn read_multi(r: &mut Reader<'_>) -> Result<Vec<MultiOp>> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        ops.push(match h.op_type {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => {
                let c = CreateRequest::read(r)?;
                MultiOp::Create(create_from(multi_create_op_type(c.flags), c))
            }
            op::CREATE_TTL => {
                let mut c = create_ttl_from(CreateTtlRequest::read(r)?);
                c.op_type = multi_create_op_type(c.flags);
                MultiOp::Create(c)
            }
            op::DELETE => MultiOp::Delete(DeleteRequest::read(r)?),
            op::SET_DATA => MultiOp::SetData(SetDataRequest::read(r)?),
            op::CHECK => MultiOp::Check(CheckVersionRequest::read(r)?),
            op::GET_CHILDREN => MultiOp::GetChildren(GetChildrenRequest::read(r)?),
            op::GET_DATA => MultiOp::GetData(GetDataRequest::read(r)?),
            other => {
                return Err(JuteError::InvalidValue {
                    what: "multi op type",
                    value: other as i64,
                })
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn connect_request_without_read_only_flag() {
        let full = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 7,
            time_out: 30000,
            session_id: 0,
            passwd: Some(vec![0; 16]),
            read_only: true,
        };
        let bytes = full.encode();
        assert_eq!(bytes.len(), 45);
        let old_client = ConnectRequest::decode(&bytes[..44]).unwrap();
        assert_eq!(old_client.time_out, 30000);
        assert!(!old_client.read_only);
        assert_eq!(ConnectRequest::decode(&bytes).unwrap(), full);
    }

    #[test]
    fn stat_round_trip_is_68_bytes() {
        let stat = Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        };
        let bytes = stat.encode();
        assert_eq!(bytes.len(), 68);
        assert_eq!(Stat::decode(&bytes).unwrap(), stat);
    }

    #[test]
    fn multi_decodes_ops_until_done() {
        let mut body = Vec::new();
        MultiHeader {
            op_type: op::CREATE2,
            done: false,
            err: -1,
        }
        .write(&mut body);
        CreateRequest {
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: vec![],
            flags: 4,
        }
        .write(&mut body);
        MultiHeader {
            op_type: op::CHECK,
            done: false,
            err: -1,
        }
        .write(&mut body);
        CheckVersionRequest {
            path: "/a".into(),
            version: 3,
        }
        .write(&mut body);
        MultiHeader {
            op_type: -1,
            done: true,
            err: -1,
        }
        .write(&mut body);
        match Request::decode(op::MULTI, &body).unwrap() {
            Request::Multi(ops) => {
                assert_eq!(ops.len(), 2);
                match &ops[0] {
                    MultiOp::Create(c) => assert_eq!(c.op_type, op::CREATE_CONTAINER),
                    other => panic!("unexpected {other:?}"),
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn huge_vector_count_is_rejected_without_allocating() {
        let mut body = Vec::new();
        body.extend_from_slice(&0i64.to_be_bytes());
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(Request::decode(op::SET_WATCHES, &body).is_err());
    }

    proptest! {
        #[test]
        fn decoding_random_bytes_never_panics(op_type in -12i32..110, body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Request::decode(op_type, &body);
            let _ = ConnectRequest::decode(&body);
        }

        /// `skip` accepts exactly what `read` accepts and stops where it stops, on valid
        /// records and on their corruptions alike.
        #[test]
        fn skip_agrees_with_read(path in "/[a-z]{0,12}", data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)), cut in 0usize..200, flip in any::<(usize, u8)>()) {
            fn check<T: Jute>(bytes: &[u8]) -> std::result::Result<(), TestCaseError> {
                let mut by_read = Reader::new(bytes);
                let mut by_skip = Reader::new(bytes);
                let read = T::read(&mut by_read).map(drop);
                let skipped = T::skip(&mut by_skip);
                prop_assert_eq!(read.is_ok(), skipped.is_ok());
                if read.is_ok() {
                    prop_assert_eq!(by_read.position(), by_skip.position());
                }
                Ok(())
            }
            let acl = vec![Acl { perms: 31, id: Id { scheme: "digest".into(), id: path.clone() } }];
            let create = crate::CreateTxn { path: path.clone(), data: data.clone(), acl, ephemeral: false, parent_cversion: 3 }.encode();
            let set = crate::SetDataTxn { path, data, version: 7 }.encode();
            for record in [create, set] {
                let mut corrupt = record.clone();
                if !corrupt.is_empty() {
                    let at = flip.0 % corrupt.len();
                    corrupt[at] ^= flip.1;
                }
                for bytes in [&record[..], &record[..cut.min(record.len())], &corrupt[..]] {
                    check::<crate::CreateTxn>(bytes)?;
                    check::<crate::SetDataTxn>(bytes)?;
                    check::<crate::MultiTxn>(bytes)?;
                }
            }
        }

        #[test]
        fn create_request_round_trips(path in "/[a-z]{0,12}", data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)), flags in 0i32..7) {
            let req = CreateRequest { path, data, acl: vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }], flags };
            prop_assert_eq!(CreateRequest::decode(&req.encode()).unwrap(), req);
        }
    }
}
