//! Transactions: what Prepare produces, what the log stores, what every server applies.

use jute::{op, Jute, JuteError, Reader};
use jute::{
    CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn,
    CreateTxn, DeleteTxn, ErrorTxn, SetAclTxn, SetDataTxn, TxnHeader,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    CreateSession(CreateSessionTxn),
    CloseSession(CloseSessionTxn),
    Create(CreateTxn),
    /// A create2 request: same txn as create, but the reply carries the Stat.
    Create2(CreateTxn),
    CreateContainer(CreateContainerTxn),
    CreateTtl(CreateTtlTxn),
    Delete(DeleteTxn),
    DeleteContainer(DeleteTxn),
    SetData(SetDataTxn),
    SetAcl(SetAclTxn),
    Check(CheckVersionTxn),
    Multi(Vec<Txn>),
    Error(ErrorTxn),
    /// A reconfig: a SetDataTxn of /zookeeper/config.
    Reconfig(SetDataTxn),
}

impl Txn {
    /// The type written in TxnHeader.type (and in multi sub-txns).
    pub fn txn_type(&self) -> i32 {
        match self {
            Txn::CreateSession(_) => op::CREATE_SESSION,
            Txn::CloseSession(_) => op::CLOSE_SESSION,
            Txn::Create(_) => op::CREATE,
            Txn::Create2(_) => op::CREATE2,
            Txn::CreateContainer(_) => op::CREATE_CONTAINER,
            Txn::CreateTtl(_) => op::CREATE_TTL,
            Txn::Delete(_) => op::DELETE,
            Txn::DeleteContainer(_) => op::DELETE_CONTAINER,
            Txn::SetData(_) => op::SET_DATA,
            Txn::SetAcl(_) => op::SET_ACL,
            Txn::Check(_) => op::CHECK,
            Txn::Multi(_) => op::MULTI,
            Txn::Error(_) => op::ERROR,
            Txn::Reconfig(_) => op::RECONFIG,
        }
    }

    pub fn write_body(&self, w: &mut Vec<u8>) {
        match self {
            Txn::CreateSession(t) => t.write(w),
            Txn::CloseSession(t) => t.write(w),
            Txn::Create(t) | Txn::Create2(t) => t.write(w),
            Txn::CreateContainer(t) => t.write(w),
            Txn::CreateTtl(t) => t.write(w),
            Txn::Delete(t) | Txn::DeleteContainer(t) => t.write(w),
            Txn::SetData(t) | Txn::Reconfig(t) => t.write(w),
            Txn::SetAcl(t) => t.write(w),
            Txn::Check(t) => t.write(w),
            Txn::Error(t) => t.write(w),
            // MultiTxn's layout (vector<SubTxn{int type; buffer data}>), each sub-txn encoded
            // in place and its length patched in after: no buffer per sub-txn
            Txn::Multi(txns) => {
                (txns.len() as i32).write(w);
                for t in txns {
                    t.txn_type().write(w);
                    let at = w.len();
                    0i32.write(w);
                    t.write_body(w);
                    let len = (w.len() - at - 4) as i32;
                    w[at..at + 4].copy_from_slice(&len.to_be_bytes());
                }
            }
        }
    }

    pub fn body(&self) -> Vec<u8> {
        // serialized into a reused buffer and copied out at its exact size: one allocation
        // per txn, not a doubling series (each a realloc) and a shrink; the leader keeps its
        // last 500 proposals for DIFF syncs, and doubling growth left up to half of each
        // large multi's buffer unused (about 11 MB of a leader's heap after a bulk load)
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.clear();
            self.write_body(&mut scratch);
            let body = scratch.to_vec();
            // a huge multi's buffer is not kept for good
            if scratch.capacity() > 1 << 20 {
                *scratch = Vec::new();
            }
            body
        })
    }

    /// Decodes a txn body of the given type. A CloseSessionTxn may be empty (older servers).
    pub fn decode(txn_type: i32, body: &[u8]) -> Result<Txn, JuteError> {
        let r = &mut Reader::new(body);
        Ok(match txn_type {
            op::CREATE_SESSION => Txn::CreateSession(CreateSessionTxn::read(r)?),
            op::CLOSE_SESSION => {
                if body.is_empty() {
                    Txn::CloseSession(CloseSessionTxn::default())
                } else {
                    Txn::CloseSession(CloseSessionTxn::read(r)?)
                }
            }
            op::CREATE => Txn::Create(CreateTxn::read(r)?),
            op::CREATE2 => Txn::Create2(CreateTxn::read(r)?),
            op::CREATE_CONTAINER => Txn::CreateContainer(CreateContainerTxn::read(r)?),
            op::CREATE_TTL => Txn::CreateTtl(CreateTtlTxn::read(r)?),
            op::DELETE => Txn::Delete(DeleteTxn::read(r)?),
            op::DELETE_CONTAINER => Txn::DeleteContainer(DeleteTxn::read(r)?),
            op::SET_DATA => Txn::SetData(SetDataTxn::read(r)?),
            op::RECONFIG => Txn::Reconfig(SetDataTxn::read(r)?),
            op::SET_ACL => Txn::SetAcl(SetAclTxn::read(r)?),
            op::CHECK => Txn::Check(CheckVersionTxn::read(r)?),
            op::ERROR => Txn::Error(ErrorTxn::read(r)?),
            // MultiTxn read in place: each SubTxn's data is decoded from the body's bytes
            op::MULTI => {
                let count = r.read_count()?.unwrap_or(0);
                let mut txns = Vec::with_capacity(count.min(body.len() / 8));
                for _ in 0..count {
                    let txn_type = r.read_i32()?;
                    let data = r.read_buffer_ref()?.unwrap_or(&[]);
                    txns.push(Txn::decode(txn_type, data)?);
                }
                Txn::Multi(txns)
            }
            other => {
                return Err(JuteError::InvalidValue {
                    what: "txn type",
                    value: other as i64,
                })
            }
        })
    }
}

/// A txn with its header, as proposed, logged and applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnEntry {
    pub header: TxnHeader,
    pub txn: Txn,
}

impl TxnEntry {
    pub fn zxid(&self) -> i64 {
        self.header.zxid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_round_trips() {
        let txn = Txn::Multi(vec![
            Txn::Create(CreateTxn {
                path: "/a".into(),
                data: Some(vec![1]),
                acl: vec![],
                ephemeral: false,
                parent_cversion: 1,
            }),
            Txn::Error(ErrorTxn { err: -101 }),
        ]);
        assert_eq!(Txn::decode(op::MULTI, &txn.body()).unwrap(), txn);
    }
}
