//! ACLs: the reference-counted ACL cache of ZooKeeper's snapshots, permission checks, the
//! digest and ip schemes, and the expansion of `auth` ACLs.

use crate::nodes::MAX_ACL_ID;
use crate::HashMap;
use base64::Engine;
use jute::{perms, Acl, ErrorCode, Id};
use sha1::{Digest, Sha1};
use std::net::IpAddr;
use std::sync::Arc;

/// The cache id ZooKeeper uses for world:anyone:cdrwa on its internal nodes.
pub const OPEN_UNSAFE_ACL_ID: i64 = -1;

pub fn world_anyone(perms: i32) -> Acl {
    Acl {
        perms,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }
}

/// The scheme of [`missing_acl`]'s entry. No client can set it: [`fixup_acl`] accepts only
/// world, auth, digest and ip ids.
pub const MISSING_ACL_SCHEME: &str = "zkrs-missing-acl";

/// What a znode whose ACL id is missing from the ACL cache (a damaged snapshot) has instead
/// of a list: one entry, naming the id, that grants nothing, so that [`check_acl`] denies
/// every permission to everyone but a super user (and skipACL skips it). ZooKeeper gives such
/// a node an empty list, which its checkACL takes as open to everyone.
pub fn missing_acl(id: i64) -> Vec<Acl> {
    vec![Acl {
        perms: 0,
        id: Id {
            scheme: MISSING_ACL_SCHEME.into(),
            id: id.to_string(),
        },
    }]
}

/// Whether `acl` is [`missing_acl`]'s marker.
pub fn is_missing_acl(acl: &[Acl]) -> bool {
    matches!(acl, [a] if a.id.scheme == MISSING_ACL_SCHEME)
}

/// ACL lists are stored once and referenced by id from each znode (ReferenceCountedACLCache).
#[derive(Debug, Clone, Default)]
pub struct AclCache {
    /// Shared lists: the preparer's change records hold them without copying.
    by_id: HashMap<i64, (Arc<[Acl]>, u64)>,
    by_acl: HashMap<Arc<[Acl]>, i64>,
    last_id: i64,
    /// While a fuzzy snapshot is being written, unused entries are kept: a node serialized
    /// earlier may still name them.
    pinned: bool,
}

impl AclCache {
    /// The id of `acl`, adding one reference.
    pub fn intern(&mut self, acl: &[Acl]) -> i64 {
        if let Some(&id) = self.by_acl.get(acl) {
            self.by_id.get_mut(&id).expect("cache maps agree").1 += 1;
            return id;
        }
        let id = if self.last_id < MAX_ACL_ID {
            self.last_id += 1;
            self.last_id
        } else {
            // past the ids a znode can store (four billion lists): reuse a free one
            (0..=MAX_ACL_ID)
                .find(|id| !self.by_id.contains_key(id))
                .expect("fewer than four billion ACL lists in memory")
        };
        let shared: Arc<[Acl]> = Arc::from(acl);
        self.by_acl.insert(shared.clone(), id);
        self.by_id.insert(id, (shared, 1));
        id
    }

    pub fn release(&mut self, id: i64) {
        if id == OPEN_UNSAFE_ACL_ID {
            return;
        }
        if let Some(entry) = self.by_id.get_mut(&id) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 && !self.pinned {
                let (acl, _) = self.by_id.remove(&id).expect("present");
                self.by_acl.remove(&acl);
            }
        }
    }

    /// Keeps every entry, even unused ones, until [`AclCache::unpin`].
    pub fn pin(&mut self) {
        self.pinned = true;
    }

    /// Ends a pin and drops the entries nobody uses any more.
    pub fn unpin(&mut self) {
        self.pinned = false;
        self.purge_unused();
    }

    /// The list of `id`; [`missing_acl`] if the cache lacks it.
    pub fn get(&self, id: i64) -> Vec<Acl> {
        if id == OPEN_UNSAFE_ACL_ID {
            return vec![world_anyone(perms::ALL)];
        }
        self.by_id
            .get(&id)
            .map_or_else(|| missing_acl(id), |(acl, _)| acl.to_vec())
    }

    /// The cache's own copy of `acl`, if it holds that list.
    pub fn find_shared(&self, acl: &[Acl]) -> Option<Arc<[Acl]>> {
        let (shared, _) = self.by_acl.get_key_value(acl)?;
        Some(shared.clone())
    }

    /// The list of `id` without copying it ([`missing_acl`] if unknown, as [`AclCache::get`]).
    pub fn shared(&self, id: i64) -> Arc<[Acl]> {
        if id == OPEN_UNSAFE_ACL_ID {
            static OPEN: std::sync::OnceLock<Arc<[Acl]>> = std::sync::OnceLock::new();
            return OPEN
                .get_or_init(|| Arc::from([world_anyone(perms::ALL)]))
                .clone();
        }
        self.by_id
            .get(&id)
            .map_or_else(|| Arc::from(missing_acl(id)), |(acl, _)| acl.clone())
    }

    pub fn get_ref(&self, id: i64) -> Option<&[Acl]> {
        self.by_id.get(&id).map(|(acl, _)| &acl[..])
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every cached ACL list with its id, in id order (snapshots write them this way).
    pub fn entries(&self) -> Vec<(i64, &[Acl])> {
        let mut out: Vec<(i64, &[Acl])> = self
            .by_id
            .iter()
            .map(|(id, (acl, _))| (*id, &acl[..]))
            .collect();
        out.sort_unstable_by_key(|(id, _)| *id);
        out
    }

    /// Restores an entry read from a snapshot, with no references yet.
    pub fn restore(&mut self, id: i64, acl: Vec<Acl>) {
        self.last_id = self.last_id.max(id);
        let shared: Arc<[Acl]> = Arc::from(acl);
        self.by_acl.insert(shared.clone(), id);
        self.by_id.insert(id, (shared, 0));
    }

    /// Adds a reference to an existing id (a node read from a snapshot). False if unknown.
    pub fn add_usage(&mut self, id: i64) -> bool {
        if id == OPEN_UNSAFE_ACL_ID {
            return true;
        }
        match self.by_id.get_mut(&id) {
            Some(entry) => {
                entry.1 += 1;
                true
            }
            None => false,
        }
    }

    /// Drops entries no node references (after loading a snapshot).
    pub fn purge_unused(&mut self) {
        let unused: Vec<i64> = self
            .by_id
            .iter()
            .filter(|(_, (_, n))| *n == 0)
            .map(|(id, _)| *id)
            .collect();
        for id in unused {
            if let Some((acl, _)) = self.by_id.remove(&id) {
                self.by_acl.remove(&acl);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Java's String.hashCode (over UTF-16 code units).
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The hashCode jute generates for an Id record.
fn java_id_hash(id: &Id) -> i32 {
    let h = 17i32
        .wrapping_mul(37)
        .wrapping_add(java_string_hash(&id.scheme));
    h.wrapping_mul(37).wrapping_add(java_string_hash(&id.id))
}

/// Orders a connection's auth ids as ZooKeeper iterates them: it keeps them in a
/// ConcurrentHashMap-backed set, so whoAmI and the expansion of `auth` ACLs follow bucket
/// order (insertion order within a bucket). Clients can observe both.
pub fn in_zookeeper_auth_order(ids: &[Id]) -> Vec<Id> {
    let mut table = 16usize;
    while ids.len() * 4 >= table * 3 {
        table *= 2;
    }
    let bucket = |id: &Id| {
        let h = java_id_hash(id);
        let spread = (h ^ ((h as u32) >> 16) as i32) & 0x7fff_ffff;
        spread as usize & (table - 1)
    };
    let mut out = ids.to_vec();
    out.sort_by_key(bucket);
    out
}

/// `user:base64(sha1("user:password"))`, ZooKeeper's digest id for `user:password`.
pub fn generate_digest(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Whether an id is well formed for its scheme (AuthenticationProvider.isValid).
pub fn is_valid_id(scheme: &str, id: &str) -> bool {
    match scheme {
        "digest" => id.split(':').count() == 2,
        "ip" => parse_ip_acl(id).is_some(),
        _ => false,
    }
}

fn parse_ip_acl(expr: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (expr, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr, bits))
}

/// Whether the client address `client` matches an ip ACL expression `a.b.c.d[/bits]`.
pub fn ip_matches(client: &str, expr: &str) -> bool {
    let (Some((net, bits)), Ok(client)) = (parse_ip_acl(expr), client.parse::<IpAddr>()) else {
        return false;
    };
    match (net, client) {
        (IpAddr::V4(n), IpAddr::V4(c)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(c) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(c)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(c) & mask
        }
        _ => false,
    }
}

/// Checks that `auth` (the ids a connection has authenticated as) grants `perm` under `acl`.
/// An empty ACL grants everything, as in ZooKeeper; [`missing_acl`]'s marker grants nothing
/// (a super user passes both).
pub fn check_acl(acl: &[Acl], perm: i32, auth: &[Id]) -> bool {
    if acl.is_empty() || auth.iter().any(|id| id.scheme == "super") {
        return true;
    }
    if is_missing_acl(acl) {
        return false;
    }
    acl.iter().any(|a| {
        if a.perms & perm == 0 {
            return false;
        }
        if a.id.scheme == "world" && a.id.id == "anyone" {
            return true;
        }
        auth.iter().any(|id| {
            id.scheme == a.id.scheme
                && match a.id.scheme.as_str() {
                    "digest" => id.id == a.id.id,
                    "ip" => ip_matches(&id.id, &a.id.id),
                    _ => false,
                }
        })
    })
}

/// Validates an ACL of a create or setACL and expands `auth` entries into the requester's
/// authenticated digest ids (PrepRequestProcessor.fixupACL).
pub fn fixup_acl(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        if a.id.scheme == "world" && a.id.id == "anyone" {
            out.push(a.clone());
        } else if a.id.scheme == "auth" {
            // only schemes whose ids are authenticated (digest) expand; ip does not
            let mut expanded = false;
            for id in auth.iter().filter(|id| id.scheme == "digest") {
                out.push(Acl {
                    perms: a.perms,
                    id: id.clone(),
                });
                expanded = true;
            }
            if !expanded {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if is_valid_id(&a.id.scheme, &a.id.id) {
            out.push(a.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(out)
}

/// [`fixup_acl`] of an ACL the caller owns: returned as it is when nothing changes (no
/// duplicate, no `auth` id, every id valid), which is nearly always.
pub fn fixup_acl_owned(acl: Vec<Acl>, auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let unchanged = !acl.is_empty()
        && acl.iter().enumerate().all(|(i, a)| {
            !acl[..i].contains(a)
                && ((a.id.scheme == "world" && a.id.id == "anyone")
                    || (a.id.scheme != "auth" && is_valid_id(&a.id.scheme, &a.id.id)))
        });
    if unchanged {
        Ok(acl)
    } else {
        fixup_acl(&acl, auth)
    }
}

/// The ACL as getACL shows it to a client without ADMIN: digest hashes replaced by `x`.
pub fn redact_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("");
                Acl {
                    perms: a.perms,
                    id: Id {
                        scheme: "digest".into(),
                        id: format!("{user}:x"),
                    },
                }
            } else {
                a.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    #[test]
    fn digest_matches_zookeeper() {
        // zoo.cfg examples in ZooKeeper's docs: super:test
        assert_eq!(
            generate_digest("super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
    }

    #[test]
    fn acl_checks() {
        let acl = vec![
            Acl {
                perms: perms::READ,
                id: id("digest", "u:h"),
            },
            Acl {
                perms: perms::ALL,
                id: id("ip", "10.0.0.0/8"),
            },
        ];
        assert!(check_acl(&acl, perms::READ, &[id("digest", "u:h")]));
        assert!(!check_acl(&acl, perms::WRITE, &[id("digest", "u:h")]));
        assert!(check_acl(&acl, perms::WRITE, &[id("ip", "10.1.2.3")]));
        assert!(!check_acl(&acl, perms::WRITE, &[id("ip", "11.1.2.3")]));
        assert!(check_acl(&acl, perms::WRITE, &[id("super", "")]));
        assert!(check_acl(&[], perms::WRITE, &[]));
        // an id missing from the cache: nothing for anyone but a super user
        let missing = missing_acl(7);
        assert!(is_missing_acl(&missing) && !is_missing_acl(&acl) && !is_missing_acl(&[]));
        for perm in [
            perms::READ,
            perms::WRITE,
            perms::CREATE,
            perms::DELETE,
            perms::ADMIN,
        ] {
            assert!(!check_acl(&missing, perm, &[]));
            assert!(!check_acl(&missing, perm, &[id("digest", "u:h")]));
            assert!(!check_acl(&missing, perm, &[id("ip", "127.0.0.1")]));
            assert!(check_acl(&missing, perm, &[id("super", "")]));
        }
        // and no client can set it
        assert_eq!(fixup_acl(&missing, &[]), Err(ErrorCode::InvalidAcl));
        let mut cache = AclCache::default();
        assert_eq!(cache.get(7), missing);
        assert_eq!(&cache.shared(7)[..], &missing[..]);
        let known = cache.intern(&acl);
        assert_eq!(cache.get(known), acl);
    }

    #[test]
    fn auth_acl_expands_to_digest_ids() {
        let auth = [id("ip", "127.0.0.1"), id("digest", "u:h")];
        let out = fixup_acl(
            &[Acl {
                perms: 31,
                id: id("auth", ""),
            }],
            &auth,
        )
        .unwrap();
        assert_eq!(
            out,
            vec![Acl {
                perms: 31,
                id: id("digest", "u:h")
            }]
        );
        assert!(fixup_acl(
            &[Acl {
                perms: 31,
                id: id("auth", "")
            }],
            &auth[..1]
        )
        .is_err());
        assert!(fixup_acl(&[], &auth).is_err());
        assert!(fixup_acl(
            &[Acl {
                perms: 31,
                id: id("world", "everyone")
            }],
            &auth
        )
        .is_err());
    }

    proptest::proptest! {
        #[test]
        fn fixing_up_an_owned_acl_agrees_with_fixing_up_a_borrowed_one(
            entries in proptest::collection::vec((0..5usize, 0..2i32), 0..4),
        ) {
            let ids = [
                id("world", "anyone"),
                id("world", "everyone"),
                id("auth", ""),
                id("ip", "10.0.0.0/8"),
                id("digest", "u:h"),
            ];
            // few ids and perms: duplicates are common
            let acl: Vec<Acl> = entries
                .iter()
                .map(|&(i, perms)| Acl { perms, id: ids[i].clone() })
                .collect();
            let auth = [id("ip", "127.0.0.1"), id("digest", "u:h")];
            proptest::prop_assert_eq!(fixup_acl_owned(acl.clone(), &auth), fixup_acl(&acl, &auth));
        }
    }

    #[test]
    fn acl_cache_counts_references() {
        let mut cache = AclCache::default();
        let acl = vec![world_anyone(perms::READ)];
        let a = cache.intern(&acl);
        let b = cache.intern(&acl);
        assert_eq!(a, b);
        cache.release(a);
        assert_eq!(cache.get(a), acl);
        cache.release(a);
        assert!(cache.is_empty());
    }
}
