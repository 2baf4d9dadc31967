//! Every record of ZooKeeper's client protocol, txn log and quorum protocol, field for field
//! as in ZooKeeper's `zookeeper.jute`.

use crate::codec::{Jute, Reader, Result};
use crate::record;
use bytes::BufMut;

/// Znode data and other jute buffers: null and empty are different values on the wire.
pub type Data = Option<Vec<u8>>;

record! { pub struct Id { pub scheme: String, pub id: String } }
record! { pub struct Acl { pub perms: i32, pub id: Id } }
record! {
    pub struct Stat {
        pub czxid: i64, pub mzxid: i64, pub ctime: i64, pub mtime: i64, pub version: i32,
        pub cversion: i32, pub aversion: i32, pub ephemeral_owner: i64, pub data_length: i32,
        pub num_children: i32, pub pzxid: i64,
    }
}
record! {
    /// The Stat as stored in snapshots: without dataLength and numChildren.
    pub struct StatPersisted {
        pub czxid: i64, pub mzxid: i64, pub ctime: i64, pub mtime: i64, pub version: i32,
        pub cversion: i32, pub aversion: i32, pub ephemeral_owner: i64, pub pzxid: i64,
    }
}
record! { pub struct ClientInfo { pub auth_scheme: String, pub user: String } }

/// The first packet of a client. `read_only` is absent on the wire for clients before 3.4.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Data,
    pub read_only: bool,
}

impl Jute for ConnectRequest {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            time_out: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: Data::read(r)?,
            read_only: if r.remaining() > 0 {
                r.read_bool()?
            } else {
                false
            },
        })
    }
    fn write<B: BufMut>(&self, w: &mut B) {
        self.protocol_version.write(w);
        self.last_zxid_seen.write(w);
        self.time_out.write(w);
        self.session_id.write(w);
        self.passwd.write(w);
        self.read_only.write(w);
    }
}

record! {
    pub struct ConnectResponse {
        pub protocol_version: i32, pub time_out: i32, pub session_id: i64, pub passwd: Data,
        pub read_only: bool,
    }
}
record! {
    pub struct SetWatches {
        pub relative_zxid: i64, pub data_watches: Vec<String>, pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}
record! {
    pub struct SetWatches2 {
        pub relative_zxid: i64, pub data_watches: Vec<String>, pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>, pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}
record! { pub struct RequestHeader { pub xid: i32, pub op_type: i32 } }
record! { pub struct MultiHeader { pub op_type: i32, pub done: bool, pub err: i32 } }
record! { pub struct AuthPacket { pub auth_type: i32, pub scheme: String, pub auth: Data } }
record! { pub struct ReplyHeader { pub xid: i32, pub zxid: i64, pub err: i32 } }
record! { pub struct GetDataRequest { pub path: String, pub watch: bool } }
record! { pub struct SetDataRequest { pub path: String, pub data: Data, pub version: i32 } }
record! {
    pub struct ReconfigRequest {
        pub joining_servers: Option<String>, pub leaving_servers: Option<String>,
        pub new_members: Option<String>, pub cur_config_id: i64,
    }
}
record! { pub struct SetDataResponse { pub stat: Stat } }
record! { pub struct CreateRequest { pub path: String, pub data: Data, pub acl: Vec<Acl>, pub flags: i32 } }
record! {
    pub struct CreateTtlRequest {
        pub path: String, pub data: Data, pub acl: Vec<Acl>, pub flags: i32, pub ttl: i64,
    }
}
record! { pub struct DeleteRequest { pub path: String, pub version: i32 } }
record! { pub struct GetChildrenRequest { pub path: String, pub watch: bool } }
record! { pub struct GetAllChildrenNumberRequest { pub path: String } }
record! { pub struct CheckVersionRequest { pub path: String, pub version: i32 } }
record! { pub struct SyncRequest { pub path: String } }
record! { pub struct SyncResponse { pub path: String } }
record! { pub struct GetAclRequest { pub path: String } }
record! { pub struct SetAclRequest { pub path: String, pub acl: Vec<Acl>, pub version: i32 } }
record! { pub struct SetAclResponse { pub stat: Stat } }
record! { pub struct AddWatchRequest { pub path: String, pub mode: i32 } }
record! { pub struct WatcherEvent { pub event_type: i32, pub state: i32, pub path: String } }
record! { pub struct ErrorResponse { pub err: i32 } }
record! { pub struct CreateResponse { pub path: String } }
record! { pub struct Create2Response { pub path: String, pub stat: Stat } }
record! { pub struct ExistsRequest { pub path: String, pub watch: bool } }
record! { pub struct ExistsResponse { pub stat: Stat } }
record! { pub struct GetDataResponse { pub data: Data, pub stat: Stat } }
record! { pub struct GetChildrenResponse { pub children: Vec<String> } }
record! { pub struct GetAllChildrenNumberResponse { pub total_number: i32 } }
record! { pub struct GetChildren2Response { pub children: Vec<String>, pub stat: Stat } }
record! { pub struct GetAclResponse { pub acl: Vec<Acl>, pub stat: Stat } }
record! { pub struct CheckWatchesRequest { pub path: String, pub watcher_type: i32 } }
record! { pub struct RemoveWatchesRequest { pub path: String, pub watcher_type: i32 } }
record! { pub struct GetEphemeralsRequest { pub prefix_path: String } }
record! { pub struct GetEphemeralsResponse { pub ephemerals: Vec<String> } }
record! { pub struct WhoAmIResponse { pub client_info: Vec<ClientInfo> } }

// --- quorum ---
record! { pub struct LearnerInfo { pub serverid: i64, pub protocol_version: i32, pub config_version: i64 } }
record! { pub struct QuorumPacket { pub packet_type: i32, pub zxid: i64, pub data: Data, pub authinfo: Vec<Id> } }

// --- persistence ---
record! { pub struct FileHeader { pub magic: i32, pub version: i32, pub dbid: i64 } }

// --- txns ---
record! { pub struct TxnDigest { pub version: i32, pub tree_digest: i64 } }
record! { pub struct TxnHeader { pub client_id: i64, pub cxid: i32, pub zxid: i64, pub time: i64, pub txn_type: i32 } }
record! {
    pub struct CreateTxn {
        pub path: String, pub data: Data, pub acl: Vec<Acl>, pub ephemeral: bool,
        pub parent_cversion: i32,
    }
}
record! {
    pub struct CreateTtlTxn {
        pub path: String, pub data: Data, pub acl: Vec<Acl>, pub parent_cversion: i32, pub ttl: i64,
    }
}
record! { pub struct CreateContainerTxn { pub path: String, pub data: Data, pub acl: Vec<Acl>, pub parent_cversion: i32 } }
record! { pub struct DeleteTxn { pub path: String } }
record! { pub struct SetDataTxn { pub path: String, pub data: Data, pub version: i32 } }
record! { pub struct CheckVersionTxn { pub path: String, pub version: i32 } }
record! { pub struct SetAclTxn { pub path: String, pub acl: Vec<Acl>, pub version: i32 } }
record! { pub struct CreateSessionTxn { pub time_out: i32 } }
record! { pub struct CloseSessionTxn { pub paths_to_delete: Vec<String> } }
record! { pub struct ErrorTxn { pub err: i32 } }
record! { pub struct SubTxn { pub txn_type: i32, pub data: Data } }
record! { pub struct MultiTxn { pub txns: Vec<SubTxn> } }
