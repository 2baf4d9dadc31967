//! A recovered tree as JSON, in the shape `tests/zk_side.py` prints what kazoo reads from a
//! server: `{"nodes": {path: {"data": hex or null, "acl": [[perms, scheme, id], ...],
//! "stat": [czxid, mzxid, ctime, mtime, version, cversion, aversion, ephemeralOwner,
//! dataLength, numChildren, pzxid]}}, "sessions": {"<id>": timeout}, ...}`.

#![allow(dead_code)]

use serde_json::{json, Map, Value};
use storage::datadir::Recovered;
use tree::DataTree;

pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn nodes_json(tree: &DataTree) -> Value {
    let mut nodes = Map::new();
    for p in storage::inspect::node_paths(tree) {
        let node = tree.node(&p).expect("listed");
        let s = node.stat();
        let acl: Vec<Value> = tree
            .acl_of(node)
            .iter()
            .map(|a| json!([a.perms, a.id.scheme, a.id.id]))
            .collect();
        nodes.insert(
            p,
            json!({
                "data": node.data().map(hex),
                "acl": acl,
                "stat": [s.czxid, s.mzxid, s.ctime, s.mtime, s.version, s.cversion, s.aversion,
                         s.ephemeral_owner, s.data_length, s.num_children, s.pzxid],
            }),
        );
    }
    Value::Object(nodes)
}

pub fn recovered_json(r: &Recovered) -> Value {
    let sessions: Map<String, Value> = r
        .sessions
        .iter()
        .map(|(id, t)| (id.to_string(), json!(t)))
        .collect();
    json!({
        "nodes": nodes_json(&r.tree),
        "sessions": sessions,
        "last_zxid": r.last_zxid,
        "snapshot": r.snapshot.as_ref().map(|p| p.display().to_string()),
        "torn_tail": r.torn_tail,
        "warnings": r.warnings,
    })
}
