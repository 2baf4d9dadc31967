//! Human-readable dumps of log and snapshot files for operators, in the spirit of ZooKeeper's
//! TxnLogToolkit / LogFormatter and SnapshotFormatter. Times are printed in UTC.

use crate::snapshot::{self, SNAPSHOT_PREFIX};
use crate::txnlog::{self, HEADER_LEN, TXNLOG_MAGIC};
use crate::StorageError;
use jute::{op, Acl, ErrorCode, FileHeader, Jute, StatPersisted};
use std::io::Write;
use std::path::Path;
use tree::{DataTree, Txn, TxnEntry};

/// One line per txn: time, session, cxid, zxid, type, details; then how the file ends. A
/// corrupt log prints the records before the damage, then the error, and returns it.
pub fn format_log(path: &Path, out: &mut dyn Write) -> Result<(), StorageError> {
    let bytes = txnlog::read_log_bytes(path).map_err(|e| StorageError::io(path, e))?;
    let w = |e: std::io::Error| StorageError::new(path, 0, format!("cannot write the dump: {e}"));
    if bytes.len() >= HEADER_LEN as usize {
        let h = FileHeader::decode(&bytes[..HEADER_LEN as usize]).expect("16 bytes");
        if h.magic == TXNLOG_MAGIC {
            writeln!(
                out,
                "ZooKeeper Transactional Log File with dbid {} txnlog format version {}",
                h.dbid, h.version
            )
            .map_err(w)?;
        }
    }
    let (log, error) = match txnlog::parse_log(path, &bytes) {
        Ok(log) => (log, None),
        Err(e) => {
            // the records before the damage are intact
            let prefix = txnlog::parse_log(path, &bytes[..e.offset as usize]).ok();
            match prefix {
                Some(log) => (log, Some(e)),
                None => return Err(e),
            }
        }
    };
    for entry in &log.entries {
        writeln!(out, "{}", format_entry(entry)).map_err(w)?;
    }
    match (&error, &log.torn_tail) {
        (Some(e), _) => {
            writeln!(out, "CORRUPT after {} txns: {}", log.entries.len(), e).map_err(w)?
        }
        (None, Some(t)) => writeln!(
            out,
            "EOF reached after {} txns; torn tail at {}: {t}",
            log.entries.len(),
            log.valid_len
        )
        .map_err(w)?,
        (None, None) => {
            writeln!(out, "EOF reached after {} txns.", log.entries.len()).map_err(w)?
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `time session 0x.. cxid 0x.. zxid 0x.. type details`, as TxnLogToolkit prints a txn.
pub fn format_entry(entry: &TxnEntry) -> String {
    let h = &entry.header;
    format!(
        "{} session {:#x} cxid {:#x} zxid {:#x} {} {}",
        format_time(h.time),
        h.client_id,
        h.cxid,
        h.zxid,
        op::name(h.txn_type),
        format_txn(&entry.txn)
    )
}

/// The fields of a txn, e.g. `/a data="x" acl=[world:anyone:cdrwa] ephemeral=false parentCVersion=3`.
pub fn format_txn(txn: &Txn) -> String {
    match txn {
        Txn::CreateSession(t) => format!("timeout={}", t.time_out),
        Txn::CloseSession(t) => format!("pathsToDelete={:?}", t.paths_to_delete),
        Txn::Create(t) | Txn::Create2(t) => format!(
            "{} data={} acl={} ephemeral={} parentCVersion={}",
            t.path,
            format_data(t.data.as_deref()),
            format_acl(&t.acl),
            t.ephemeral,
            t.parent_cversion
        ),
        Txn::CreateContainer(t) => format!(
            "{} data={} acl={} parentCVersion={}",
            t.path,
            format_data(t.data.as_deref()),
            format_acl(&t.acl),
            t.parent_cversion
        ),
        Txn::CreateTtl(t) => format!(
            "{} data={} acl={} parentCVersion={} ttl={}",
            t.path,
            format_data(t.data.as_deref()),
            format_acl(&t.acl),
            t.parent_cversion,
            t.ttl
        ),
        Txn::Delete(t) | Txn::DeleteContainer(t) => t.path.clone(),
        Txn::SetData(t) | Txn::Reconfig(t) => format!(
            "{} data={} version={}",
            t.path,
            format_data(t.data.as_deref()),
            t.version
        ),
        Txn::SetAcl(t) => format!(
            "{} acl={} version={}",
            t.path,
            format_acl(&t.acl),
            t.version
        ),
        Txn::Check(t) => format!("{} version={}", t.path, t.version),
        Txn::Error(t) => match ErrorCode::from_code(t.err) {
            Some(code) => format!("err={code}"),
            None => format!("err={}", t.err),
        },
        Txn::Multi(txns) => {
            let subs: Vec<String> = txns
                .iter()
                .map(|t| format!("{} {}", op::name(t.txn_type()), format_txn(t)))
                .collect();
            format!("[{}]", subs.join("; "))
        }
    }
}

/// Data as a quoted string when it is printable UTF-8, else hex; long data is shortened.
pub fn format_data(data: Option<&[u8]>) -> String {
    const MAX: usize = 64;
    let Some(d) = data else {
        return "null".into();
    };
    let shown = &d[..d.len().min(MAX)];
    let more = if d.len() > MAX {
        format!("...({} bytes)", d.len())
    } else {
        String::new()
    };
    match std::str::from_utf8(shown) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}{more}"),
        _ => {
            let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}{more}")
        }
    }
}

/// `[scheme:id:perms, ...]` with perms as zkCli prints them (cdrwa).
pub fn format_acl(acl: &[Acl]) -> String {
    let items: Vec<String> = acl
        .iter()
        .map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, format_perms(a.perms)))
        .collect();
    format!("[{}]", items.join(", "))
}

fn format_perms(perms: i32) -> String {
    use jute::perms::*;
    [
        (CREATE, 'c'),
        (DELETE, 'd'),
        (READ, 'r'),
        (WRITE, 'w'),
        (ADMIN, 'a'),
    ]
    .iter()
    .filter(|(bit, _)| perms & bit != 0)
    .map(|(_, c)| *c)
    .collect()
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
pub fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S%.3f UTC")
        .to_string()
}

/// Nodes with their Stat fields, data length and ACL; then the sessions, the ACL cache and
/// the digest section, as ZooKeeper's SnapshotFormatter (plus ACLs).
pub fn format_snapshot(path: &Path, out: &mut dyn Write) -> Result<(), StorageError> {
    let snap = snapshot::read_full(path)?;
    let w = |e: std::io::Error| StorageError::new(path, 0, format!("cannot write the dump: {e}"));
    let tree = &snap.tree;
    writeln!(
        out,
        "ZooKeeper Snapshot File with dbid {} format version {}",
        snap.header.dbid, snap.header.version
    )
    .map_err(w)?;
    writeln!(out, "ZNode Details (count={}):", tree.node_count()).map_err(w)?;
    let mut max_zxid = 0i64;
    for p in node_paths(tree) {
        let node = tree.node(&p).expect("listed");
        writeln!(out, "----\n{p}").map_err(w)?;
        write_stat(out, &node.stat).map_err(w)?;
        writeln!(
            out,
            "  dataLength = {}\n  data = {}\n  acl = {}",
            node.data().map_or(0, <[u8]>::len),
            format_data(node.data()),
            format_acl(&tree.acl_of(node))
        )
        .map_err(w)?;
        max_zxid = max_zxid.max(node.stat.mzxid).max(node.stat.pzxid);
    }
    writeln!(out, "----\nSession Details (sid, timeout, ephemeralCount):").map_err(w)?;
    for (sid, timeout) in &snap.sessions {
        writeln!(
            out,
            "{sid:#016x}, {timeout}, {}",
            tree.ephemerals_of(*sid, "/").len()
        )
        .map_err(w)?;
    }
    writeln!(out, "----\nACL cache ({} entries):", tree.acl_cache().len()).map_err(w)?;
    for (id, acl) in tree.acl_cache().entries() {
        writeln!(out, "  {id}: {}", format_acl(acl)).map_err(w)?;
    }
    if let Some(d) = snap.digest {
        writeln!(
            out,
            "----\nDigest: zxid {:#x}, version {}, digest {}",
            d.zxid, d.version, d.digest
        )
        .map_err(w)?;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name_zxid = crate::zxid_from_name(name, SNAPSHOT_PREFIX).unwrap_or(0);
    writeln!(out, "----\nLast zxid: {:#x}", name_zxid.max(max_zxid)).map_err(w)?;
    Ok(())
}

fn write_stat(out: &mut dyn Write, s: &StatPersisted) -> std::io::Result<()> {
    writeln!(out, "  cZxid = {:#016x}", s.czxid)?;
    writeln!(out, "  ctime = {}", format_time(s.ctime))?;
    writeln!(out, "  mZxid = {:#016x}", s.mzxid)?;
    writeln!(out, "  mtime = {}", format_time(s.mtime))?;
    writeln!(out, "  pZxid = {:#016x}", s.pzxid)?;
    writeln!(out, "  cversion = {}", s.cversion)?;
    writeln!(out, "  dataVersion = {}", s.version)?;
    writeln!(out, "  aclVersion = {}", s.aversion)?;
    writeln!(out, "  ephemeralOwner = {:#016x}", s.ephemeral_owner)
}

/// Every path of a tree, depth-first from the root, children in name order.
pub fn node_paths(tree: &DataTree) -> Vec<String> {
    let mut out = Vec::with_capacity(tree.node_count());
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        let Some(node) = tree.node(&p) else { continue };
        let mut names: Vec<&str> = tree.child_names(node).collect();
        names.sort_unstable();
        for name in names.into_iter().rev() {
            stack.push(tree::path::join(&p, name));
        }
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(
            format_time(1_732_492_381_123),
            "2024-11-24 23:53:01.123 UTC"
        );
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00.000 UTC");
        assert_eq!(format_time(-1), "1969-12-31 23:59:59.999 UTC");
    }

    #[test]
    fn data_and_acls() {
        assert_eq!(format_data(None), "null");
        assert_eq!(format_data(Some(b"hi")), "\"hi\"");
        assert_eq!(format_data(Some(&[0, 255])), "0x00ff");
        assert_eq!(
            format_acl(&[tree::acl::world_anyone(31), tree::acl::world_anyone(1)]),
            "[world:anyone:cdrwa, world:anyone:r]"
        );
    }
}
