//! Dynamic reconfiguration as Zab sees it: a reconfig is an ordinary txn (a SetDataTxn of
//! /zookeeper/config carrying the new configuration's text) whose commit activates that
//! configuration. This module reads the configuration out of such a txn, and validates a
//! client's reconfig request into the next configuration, with ZooKeeper 3.8's checks in
//! ZooKeeper's order (PrepRequestProcessor): in progress, version, syntax, voters, quorum.

use crate::wire::ProposalData;
use config::{parse_properties, QuorumConfig, QuorumSystem, ServerSpec};
use jute::{ErrorCode, Jute};
use std::collections::BTreeSet;

/// The configuration a reconfig txn installs, versioned with the txn's zxid (None for any
/// other txn, or a reconfig whose text does not parse: it cannot be ours to activate).
pub fn config_of_txn(data: &ProposalData) -> Option<QuorumConfig> {
    if data.header.txn_type != jute::op::RECONFIG {
        return None;
    }
    let txn = jute::SetDataTxn::decode(&data.txn).ok()?;
    let text = String::from_utf8(txn.data?).ok()?;
    let mut config = parse_config_text(&text).ok()?;
    config.version = data.header.zxid;
    Some(config)
}

/// The proposal of a reconfig txn that installs `text` (the inverse of [`config_of_txn`]):
/// a SetDataTxn of /zookeeper/config with version -1, as ZooKeeper's leader writes it.
pub fn reconfig_proposal(header: jute::TxnHeader, text: &str) -> ProposalData {
    debug_assert_eq!(header.txn_type, jute::op::RECONFIG);
    ProposalData {
        header,
        txn: jute::Jute::encode(&jute::SetDataTxn {
            path: "/zookeeper/config".into(),
            data: Some(text.as_bytes().to_vec()),
            version: -1,
        })
        .into(),
        digest: None,
    }
}

/// Parses configuration text (`server.N=` lines, `group.`/`weight.`, `version=`) as carried
/// by /zookeeper/config, NEWLEADER and election notifications.
pub fn parse_config_text(text: &str) -> Result<QuorumConfig, String> {
    let props = parse_properties(text, "config").map_err(|e| e.to_string())?;
    QuorumConfig::from_properties(&props)
}

/// A client's reconfig request (ZooKeeper's ReconfigRequest).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconfigRequest {
    /// Incremental: `server.N=spec` or `N=spec` entries, comma separated.
    pub joining: Option<String>,
    /// Incremental: server ids, comma separated.
    pub leaving: Option<String>,
    /// Bulk: the whole new membership, entries comma separated.
    pub new_members: Option<String>,
    /// Only if the current configuration has this version (-1: unconditionally).
    pub from_config: i64,
}

/// What the leader knows when it validates a reconfig.
pub struct ReconfigContext<'a> {
    /// The active configuration.
    pub active: &'a QuorumConfig,
    /// The last configuration proposed (the active one unless a reconfig is in flight).
    pub last_seen: &'a QuorumConfig,
    pub standalone_enabled: bool,
    /// The leader (when it votes) and the followers connected and up to date with it.
    pub synced: &'a BTreeSet<u64>,
}

/// Why a reconfig is refused: ZooKeeper's error code, and the text its leader logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconfigError {
    pub code: ErrorCode,
    pub reason: String,
}

fn refuse(code: ErrorCode, reason: impl Into<String>) -> ReconfigError {
    ReconfigError {
        code,
        reason: reason.into(),
    }
}

/// Validates `request` into the next configuration (version still 0: it becomes the zxid of
/// the txn that proposes it). The caller checks reconfigEnabled and standalone mode before,
/// and the ACL of /zookeeper/config after, as ZooKeeper does.
pub fn next_config(
    ctx: &ReconfigContext<'_>,
    request: &ReconfigRequest,
) -> Result<QuorumConfig, ReconfigError> {
    if ctx.last_seen.version != ctx.active.version {
        return Err(refuse(
            ErrorCode::ReconfigInProgress,
            "Reconfiguration is in progress",
        ));
    }
    if request.from_config != -1 && request.from_config != ctx.last_seen.version {
        return Err(refuse(ErrorCode::BadVersion, "stale configuration version"));
    }
    let mut next = match &request.new_members {
        Some(members) => bulk(members)?,
        None => incremental(ctx.last_seen, request)?,
    };
    next.version = 0;
    let voters = next.voters().count();
    if ctx.standalone_enabled && voters < 2 {
        return Err(refuse(
            ErrorCode::BadArguments,
            "Reconfig failed - new configuration must include at least 2 followers",
        ));
    }
    if voters < 1 {
        return Err(refuse(
            ErrorCode::BadArguments,
            "Reconfig failed - new configuration must include at least 1 follower",
        ));
    }
    if !next.contains_quorum(ctx.synced) {
        return Err(refuse(
            ErrorCode::NewConfigNoQuorum,
            "Reconfig failed - there must be a connected and synced quorum in new configuration",
        ));
    }
    Ok(next)
}

/// Bulk mode: the new membership, as a dynamic file would hold it (commas for newlines). It
/// may switch the quorum system. ZooKeeper answers a membership without participants with
/// MarshallingError (an unchecked exception on its side); we keep its code.
fn bulk(members: &str) -> Result<QuorumConfig, ReconfigError> {
    let text = members.replace(',', "\n");
    let props = parse_properties(&text, "reconfig")
        .map_err(|e| refuse(ErrorCode::BadArguments, e.to_string()))?;
    for p in &props {
        let key = p.key.as_str();
        let id = ["server.", "group.", "weight."]
            .iter()
            .find_map(|prefix| key.strip_prefix(prefix));
        if let Some(id) = id {
            if id.trim().parse::<u64>().is_err() {
                return Err(refuse(
                    ErrorCode::MarshallingError,
                    format!("For input string: \"{id}\""),
                ));
            }
        }
    }
    let config =
        QuorumConfig::from_properties(&props).map_err(|e| refuse(ErrorCode::BadArguments, e))?;
    if config.voters().count() == 0 {
        return Err(refuse(
            ErrorCode::MarshallingError,
            "standaloneEnabled = false then number of participants should be >0",
        ));
    }
    Ok(config)
}

/// Incremental mode: the last configuration seen, minus the leaving ids, plus the joiners
/// (a joiner that is already a member replaces its line: that changes its role or ports).
fn incremental(
    last_seen: &QuorumConfig,
    request: &ReconfigRequest,
) -> Result<QuorumConfig, ReconfigError> {
    if last_seen.system != QuorumSystem::Majority {
        return Err(refuse(
            ErrorCode::BadArguments,
            "Incremental reconfiguration requested but last configuration seen has a non-majority quorum system",
        ));
    }
    let mut next = last_seen.clone();
    for id in list(request.leaving.as_deref()) {
        let id = id.parse::<u64>().map_err(|_| {
            refuse(
                ErrorCode::MarshallingError,
                format!("For input string: \"{id}\""),
            )
        })?;
        next.members.remove(&id);
    }
    for entry in list(request.joining.as_deref()) {
        let spec = joiner(entry)?;
        next.members.insert(spec.id, spec);
    }
    Ok(next)
}

fn list(value: Option<&str>) -> impl Iterator<Item = &str> {
    value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `server.N=spec` or `N=spec`; incremental joiners must name their client port.
fn joiner(entry: &str) -> Result<ServerSpec, ReconfigError> {
    let Some((key, value)) = entry.split_once('=') else {
        return Err(refuse(
            ErrorCode::BadArguments,
            "Wrong format of server string",
        ));
    };
    let key = key.trim();
    let id = key.strip_prefix("server.").unwrap_or(key);
    let id = id.parse::<u64>().map_err(|_| {
        refuse(
            ErrorCode::MarshallingError,
            format!("For input string: \"{id}\""),
        )
    })?;
    let spec = ServerSpec::parse(id, value).map_err(|e| {
        refuse(
            ErrorCode::BadArguments,
            format!("Reconfiguration failed: {e}"),
        )
    })?;
    if spec.client.is_none() {
        return Err(refuse(
            ErrorCode::BadArguments,
            "Wrong format of server string - each server should have 3 ports specified",
        ));
    }
    Ok(spec)
}

/// Which server leads the new configuration once a reconfig commits (ZooKeeper's
/// getDesignatedLeader): the current leader if it is a voter of `next` with the same quorum
/// address; otherwise a voter of `next` that acked the reconfig, preferring the one that also
/// acked the most of the proposals after it (it needs the least catching up).
pub fn designated_leader(
    my_id: u64,
    active: &QuorumConfig,
    next: &QuorumConfig,
    reconfig_acks: &BTreeSet<u64>,
    later_acks: &[BTreeSet<u64>],
) -> u64 {
    let keeps_me = next.is_voter(my_id)
        && next.members.get(&my_id).map(|s| &s.quorum)
            == active.members.get(&my_id).map(|s| &s.quorum);
    if keeps_me {
        return my_id;
    }
    let mut candidates: BTreeSet<u64> = reconfig_acks
        .iter()
        .copied()
        .filter(|id| *id != my_id && next.is_voter(*id))
        .collect();
    for acks in later_acks {
        let narrowed: BTreeSet<u64> = candidates.intersection(acks).copied().collect();
        if narrowed.is_empty() {
            break;
        }
        candidates = narrowed;
    }
    // ZooKeeper returns the last survivor of its walk; any of them is as good
    candidates.iter().next_back().copied().unwrap_or(my_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str, version: i64) -> QuorumConfig {
        let mut c = parse_config_text(text).unwrap();
        c.version = version;
        c
    }

    const THREE: &str = "server.1=127.0.0.1:12121:12141:participant;127.0.0.1:12101\n\
                         server.2=127.0.0.1:12122:12142:participant;127.0.0.1:12102\n\
                         server.3=127.0.0.1:12123:12143:participant;127.0.0.1:12103\n";

    fn ctx<'a>(active: &'a QuorumConfig, synced: &'a BTreeSet<u64>) -> ReconfigContext<'a> {
        ReconfigContext {
            active,
            last_seen: active,
            standalone_enabled: false,
            synced,
        }
    }

    fn ids(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    #[test]
    fn incremental_removes_and_adds_with_the_shorthand() {
        let active = config(THREE, 0x100000000);
        let synced = ids(&[1, 2, 3]);
        let next = next_config(
            &ctx(&active, &synced),
            &ReconfigRequest {
                leaving: Some("3".into()),
                joining: Some("4=127.0.0.1:12124:12144:observer;127.0.0.1:12104".into()),
                from_config: -1,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            next.members.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 4]
        );
        assert!(!next.is_voter(4));
        assert_eq!(next.version, 0);
    }

    #[test]
    fn errors_come_in_zookeepers_order_with_its_codes() {
        let active = config(THREE, 0x100000000);
        let synced = ids(&[1, 2, 3]);
        let run = |r: ReconfigRequest| next_config(&ctx(&active, &synced), &r).unwrap_err().code;
        let inc = |joining: &str, leaving: &str| ReconfigRequest {
            joining: Some(joining.into()),
            leaving: Some(leaving.into()),
            from_config: -1,
            ..Default::default()
        };
        assert_eq!(run(inc("", "1,2,3")), ErrorCode::BadArguments);
        assert_eq!(run(inc("server.4", "")), ErrorCode::BadArguments);
        assert_eq!(
            run(inc("server.4=127.0.0.1:12124:12144", "")),
            ErrorCode::BadArguments,
            "an incremental joiner needs its client port"
        );
        assert_eq!(
            run(inc("server.4=127.0.0.1:1", "")),
            ErrorCode::BadArguments
        );
        assert_eq!(
            run(inc("server.x=127.0.0.1:1:2;3", "")),
            ErrorCode::MarshallingError
        );
        assert_eq!(run(inc("", "abc")), ErrorCode::MarshallingError);
        // stale version before anything else about the request
        let stale = ReconfigRequest {
            from_config: 0x100000001,
            ..inc("", "1,2,3")
        };
        assert_eq!(run(stale), ErrorCode::BadVersion);
        // two new voters that are not connected: no synced quorum of the new config
        assert_eq!(
            run(inc(
                "4=127.0.0.1:12124:12144;12104,5=127.0.0.1:12125:12145;12105",
                "2,3"
            )),
            ErrorCode::NewConfigNoQuorum
        );
        let bulk = |m: &str| ReconfigRequest {
            new_members: Some(m.into()),
            from_config: -1,
            ..Default::default()
        };
        assert_eq!(run(bulk("1=127.0.0.1:1:2;3")), ErrorCode::BadArguments);
        assert_eq!(run(bulk("server.1=garbage")), ErrorCode::BadArguments);
        assert_eq!(
            run(bulk("server.1=127.0.0.1:12121:12141:observer")),
            ErrorCode::MarshallingError
        );
        let mut pending = active.clone();
        pending.version = 0x100000005;
        let in_progress = ReconfigContext {
            last_seen: &pending,
            ..ctx(&active, &synced)
        };
        assert_eq!(
            next_config(&in_progress, &inc("", "3")).unwrap_err().code,
            ErrorCode::ReconfigInProgress
        );
    }

    #[test]
    fn bulk_may_switch_to_hierarchical_but_incremental_may_not_change_it() {
        let active = config(THREE, 0x100000000);
        let synced = ids(&[1, 2, 3]);
        let members =
            THREE.replace('\n', ",") + "group.1=1:2,group.2=3,weight.1=1,weight.2=1,weight.3=1";
        let next = next_config(
            &ctx(&active, &synced),
            &ReconfigRequest {
                new_members: Some(members),
                from_config: 0x100000000,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(matches!(next.system, QuorumSystem::Hierarchical { .. }));
        let err = next_config(
            &ctx(&next, &synced),
            &ReconfigRequest {
                leaving: Some("3".into()),
                from_config: -1,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::BadArguments);
    }

    #[test]
    fn the_leader_stays_unless_removed_demoted_or_moved() {
        let active = config(THREE, 1);
        let acks = ids(&[1, 2, 3]);
        let same = config(THREE, 2);
        assert_eq!(designated_leader(2, &active, &same, &acks, &[]), 2);
        let without_2 = config(&THREE.replace("server.2=", "#"), 2);
        let d = designated_leader(2, &active, &without_2, &acks, &[ids(&[1, 2])]);
        assert_eq!(d, 1, "the voter that acked the most later proposals");
        let moved = config(&THREE.replace("12122", "12132"), 2);
        assert_ne!(designated_leader(2, &active, &moved, &acks, &[]), 2);
    }
}
