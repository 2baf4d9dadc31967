//! Output formats of zkCli.sh 3.8: Stat, ACLs, Java's Date.toString() and List.toString().

use client::{Acl, Stat};

/// Java's `Date.toString()` in UTC: "Wed Nov 25 06:21:55 UTC 2026".
pub fn java_date(epoch_ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = epoch_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // civil date from days since 1970-01-01 (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        d,
        h,
        m,
        s,
        year
    )
}

/// zkCli's `printStat`.
pub fn stat(s: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\n\
         cversion = {}\ndataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\n\
         dataLength = {}\nnumChildren = {}",
        s.czxid,
        java_date(s.ctime),
        s.mzxid,
        java_date(s.mtime),
        s.pzxid,
        s.cversion,
        s.version,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children
    )
}

/// ZKUtil.getPermString: the letters of the permissions, in the order c d r w a.
pub fn perms(p: i32) -> String {
    let mut out = String::new();
    for (bit, c) in [
        (jute::perms::CREATE, 'c'),
        (jute::perms::DELETE, 'd'),
        (jute::perms::READ, 'r'),
        (jute::perms::WRITE, 'w'),
        (jute::perms::ADMIN, 'a'),
    ] {
        if p & bit != 0 {
            out.push(c);
        }
    }
    out
}

/// getAcl's lines for one ACL: "'world,'anyone" and ": cdrwa".
pub fn acl(a: &Acl) -> String {
    format!("'{},'{}\n: {}", a.id.scheme, a.id.id, perms(a.perms))
}

/// Java's `List.toString()`: "[a, b]".
pub fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// AclParser.parse: "scheme:id:perm,…"; malformed entries are reported and skipped.
pub fn parse_acl(text: &str, err: &mut Vec<String>) -> Vec<Acl> {
    let mut out = Vec::new();
    for a in text.split(',') {
        let (first, last) = match (a.find(':'), a.rfind(':')) {
            (Some(f), Some(l)) if f != l => (f, l),
            _ => {
                err.push(format!("{a} does not have the form scheme:id:perm"));
                continue;
            }
        };
        let mut perms = 0;
        for c in a[last + 1..].chars() {
            perms |= match c {
                'r' | 'R' => jute::perms::READ,
                'w' | 'W' => jute::perms::WRITE,
                'c' | 'C' => jute::perms::CREATE,
                'd' | 'D' => jute::perms::DELETE,
                'a' | 'A' => jute::perms::ADMIN,
                other => {
                    err.push(format!("Unknown perm type: {other}"));
                    0
                }
            };
        }
        out.push(Acl {
            perms,
            id: client::Id {
                scheme: a[..first].to_owned(),
                id: a[first + 1..last].to_owned(),
            },
        });
    }
    out
}

/// ZooKeeperMain's tokenizer: whitespace separated words, "double" or 'single' quoted
/// words keep their spaces (the quotes are removed).
pub fn tokenize(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let q = chars[i];
        if (q == '"' || q == '\'') && chars[i + 1..].contains(&q) {
            let end = i + 1 + chars[i + 1..].iter().position(|c| *c == q).unwrap_or(0);
            out.push(chars[i + 1..end].iter().collect());
            i = end + 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        out.push(chars[start..i].iter().collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_dates() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        // 2026-11-24T23:01:46Z, as printed in the reference transcript
        assert_eq!(java_date(1_795_561_306_000), "Tue Nov 24 23:01:46 UTC 2026");
    }

    #[test]
    fn acl_parsing_as_aclparser() {
        let mut err = Vec::new();
        let acl = parse_acl("world:anyone:r,auth:u:p:cdrwa,bad", &mut err);
        assert_eq!(acl.len(), 2);
        assert_eq!((acl[1].id.id.as_str(), acl[1].perms), ("u:p", 31));
        assert_eq!(err, ["bad does not have the form scheme:id:perm"]);
    }

    #[test]
    fn tokenizer_keeps_quoted_words() {
        assert_eq!(
            tokenize(r#"create /a "x y" 'z'"#),
            ["create", "/a", "x y", "z"]
        );
        assert_eq!(tokenize(r#"set /a """#), ["set", "/a", ""]);
    }
}
