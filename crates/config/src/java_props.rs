//! java.util.Properties as ZooKeeper uses it when it rewrites configuration files: the load
//! syntax (separators, continuation lines, escapes) and the order in which `entrySet()`
//! returns the keys.
//!
//! Since Java 9 a `Properties` object keeps its entries in a `ConcurrentHashMap` created with
//! an initial capacity of 8, so `entrySet()` follows that map's bins: the order depends on the
//! keys' `String.hashCode()`, the table size (16, doubled as the map fills) and, inside a bin,
//! on insertion order and on how resizes split bins. ZooKeeper writes the rewritten static
//! zoo.cfg in that order, so we reproduce it exactly (checked against OpenJDK 17).

/// Loads properties text as `Properties.load` does: natural lines end at `\n`, `\r` or `\r\n`;
/// leading blanks (space, tab, form feed) are skipped; `#` and `!` start comment lines; a line
/// ending in an odd number of backslashes continues on the next; the key ends at the first
/// unescaped `=`, `:` or blank; escapes `\t \n \r \f \uXXXX` are decoded, any other escaped
/// character stands for itself.
///
/// Returns the distinct keys in first-insertion order with their last value, which is what a
/// sequence of `put` calls leaves in the map. Errors (a malformed `\u` escape) are described,
/// as Java's IllegalArgumentException is.
pub fn load_java_properties(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for logical in logical_lines(text) {
        let (key, value) = split_key_value(&logical)?;
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => out.push((key, value)),
        }
    }
    Ok(out)
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\x0c'
}

/// The logical lines of the text (continuations joined, comments and blank lines dropped),
/// still escaped.
fn logical_lines(text: &str) -> Vec<Vec<char>> {
    // natural lines: terminated by \n, \r or \r\n
    let mut naturals: Vec<&str> = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                naturals.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                naturals.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        naturals.push(&text[start..]);
    }

    let mut out = Vec::new();
    let mut current: Option<Vec<char>> = None;
    for natural in naturals {
        let trimmed: Vec<char> = natural.chars().skip_while(|c| is_blank(*c)).collect();
        let mut line = match current.take() {
            // a continuation: leading blanks of the next line are skipped, even if it is
            // empty or looks like a comment
            Some(prefix) => {
                let mut l = prefix;
                l.extend(trimmed);
                l
            }
            None => {
                if trimmed.is_empty() || trimmed[0] == '#' || trimmed[0] == '!' {
                    continue;
                }
                trimmed
            }
        };
        let trailing_backslashes = line.iter().rev().take_while(|c| **c == '\\').count();
        if trailing_backslashes % 2 == 1 {
            line.pop();
            current = Some(line);
        } else {
            out.push(line);
        }
    }
    if let Some(line) = current {
        // a continuation at the end of the input: Java keeps what it has
        if !line.is_empty() {
            out.push(line);
        }
    }
    out
}

fn split_key_value(line: &[char]) -> Result<(String, String), String> {
    let limit = line.len();
    let mut key_len = 0;
    let mut value_start = limit;
    let mut has_separator = false;
    let mut preceding_backslash = false;
    while key_len < limit {
        let c = line[key_len];
        if (c == '=' || c == ':') && !preceding_backslash {
            value_start = key_len + 1;
            has_separator = true;
            break;
        } else if is_blank(c) && !preceding_backslash {
            value_start = key_len + 1;
            break;
        }
        preceding_backslash = c == '\\' && !preceding_backslash;
        key_len += 1;
    }
    while value_start < limit {
        let c = line[value_start];
        if !is_blank(c) {
            if !has_separator && (c == '=' || c == ':') {
                has_separator = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    Ok((
        unescape(&line[..key_len])?,
        unescape(&line[value_start.min(limit)..])?,
    ))
}

fn unescape(chars: &[char]) -> Result<String, String> {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = chars.get(i) else {
            break;
        };
        i += 1;
        match e {
            'u' => {
                let hex: String = chars.get(i..i + 4).unwrap_or(&[]).iter().collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| "Malformed \\uxxxx encoding.".to_owned())?;
                i += 4;
                // a lone surrogate cannot be a Rust char; it could only come from a hand-made
                // escape, and the replacement character keeps the rest of the file usable
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'n' => out.push('\n'),
            'f' => out.push('\x0c'),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// `String.hashCode()`: s[0]*31^(n-1) + … + s[n-1] over UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32))
}

/// Orders `a` and `b` as Java's `String.compareTo` does (UTF-16 code units).
pub fn java_string_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

const TREEIFY_THRESHOLD: usize = 8;
const UNTREEIFY_THRESHOLD: usize = 6;
const MIN_TREEIFY_CAPACITY: usize = 64;

/// One bin of the simulated table: entry indices in iteration order, and whether it is a
/// tree bin (whose list order differs: new nodes go first).
#[derive(Clone, Default)]
struct Bin {
    nodes: Vec<(u32, usize)>,
    tree: bool,
}

/// The order in which `entrySet()` of a `Properties` returns these keys, given that they were
/// put in this order (distinct keys). Returns indices into `keys`.
pub fn java_properties_order<S: AsRef<str>>(keys: &[S]) -> Vec<usize> {
    let spread = |h: i32| -> u32 { ((h ^ ((h as u32) >> 16) as i32) & 0x7fff_ffff) as u32 };
    // new ConcurrentHashMap<>(8): (long)(1.0 + 8 / 0.75) = 11, rounded up to a power of two
    let mut n: usize = 16;
    let mut size_ctl: usize = n - (n >> 2);
    let mut table: Vec<Bin> = vec![Bin::default(); n];
    let mut count = 0usize;

    fn transfer(table: &mut Vec<Bin>, n: &mut usize, size_ctl: &mut usize) {
        let old = *n;
        let mut next = vec![Bin::default(); old * 2];
        for (i, bin) in table.iter().enumerate() {
            if bin.nodes.is_empty() {
                continue;
            }
            let (lo, hi) = if bin.tree {
                // TreeBin split keeps the list order
                let lo: Vec<_> = bin
                    .nodes
                    .iter()
                    .copied()
                    .filter(|(h, _)| *h as usize & old == 0)
                    .collect();
                let hi: Vec<_> = bin
                    .nodes
                    .iter()
                    .copied()
                    .filter(|(h, _)| *h as usize & old != 0)
                    .collect();
                let lo_tree = lo.len() > UNTREEIFY_THRESHOLD;
                let hi_tree = hi.len() > UNTREEIFY_THRESHOLD;
                (
                    Bin {
                        nodes: lo,
                        tree: lo_tree,
                    },
                    Bin {
                        nodes: hi,
                        tree: hi_tree,
                    },
                )
            } else {
                // the last run of nodes going to the same side is reused as is; the nodes
                // before it are copied, each pushed to the front of its side's list
                let bit = |(h, _): &(u32, usize)| *h as usize & old;
                let mut last_run = 0;
                let mut run_bit = bit(&bin.nodes[0]);
                for (k, node) in bin.nodes.iter().enumerate().skip(1) {
                    if bit(node) != run_bit {
                        run_bit = bit(node);
                        last_run = k;
                    }
                }
                let mut lo: Vec<(u32, usize)> = Vec::new();
                let mut hi: Vec<(u32, usize)> = Vec::new();
                if run_bit == 0 {
                    lo.extend_from_slice(&bin.nodes[last_run..]);
                } else {
                    hi.extend_from_slice(&bin.nodes[last_run..]);
                }
                for node in &bin.nodes[..last_run] {
                    if bit(node) == 0 {
                        lo.insert(0, *node);
                    } else {
                        hi.insert(0, *node);
                    }
                }
                (
                    Bin {
                        nodes: lo,
                        tree: false,
                    },
                    Bin {
                        nodes: hi,
                        tree: false,
                    },
                )
            };
            next[i] = lo;
            next[i + old] = hi;
        }
        *table = next;
        *n = old * 2;
        // sizeCtl after a resize: 0.75 of the new length
        *size_ctl = *n - (*n >> 2);
    }

    for (index, key) in keys.iter().enumerate() {
        let h = spread(java_string_hash(key.as_ref()));
        let i = h as usize & (n - 1);
        let bin = &mut table[i];
        let mut treeify = false;
        if bin.tree {
            bin.nodes.insert(0, (h, index));
        } else {
            let before = bin.nodes.len();
            bin.nodes.push((h, index));
            treeify = before >= TREEIFY_THRESHOLD;
        }
        if treeify {
            if n < MIN_TREEIFY_CAPACITY {
                // tryPresize(n << 1)
                let size = n << 1;
                let c = (size + (size >> 1) + 1).next_power_of_two();
                while c > size_ctl {
                    transfer(&mut table, &mut n, &mut size_ctl);
                }
            } else {
                table[i].tree = true;
            }
        }
        count += 1;
        while count >= size_ctl {
            transfer(&mut table, &mut n, &mut size_ctl);
        }
    }
    table
        .iter()
        .flat_map(|bin| bin.nodes.iter().map(|(_, k)| *k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_hash_is_javas() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("tickTime"), 1_936_851_466);
        assert_eq!(java_string_hash("dataDir"), 1_443_169_411);
    }

    #[test]
    fn load_follows_java_syntax() {
        let props = load_java_properties(
            "# comment\n  ! also\nk1 = v1  \nk2:v2\nk3 v3\nk4\\ x=y\\\n   z\nk5=a\\tb\\u0041\\q\r\nk1=again\n\n=empty key\nlonely\n",
        )
        .unwrap();
        assert_eq!(
            props,
            vec![
                ("k1".into(), "again".into()),
                ("k2".into(), "v2".into()),
                ("k3".into(), "v3".into()),
                ("k4 x".into(), "yz".into()),
                ("k5".into(), "a\tbAq".into()),
                ("".into(), "empty key".into()),
                ("lonely".into(), "".into()),
            ]
        );
        assert!(load_java_properties("a=\\u00zz\n").is_err());
    }

    #[test]
    fn zoo_cfg_keys_come_out_in_the_order_zookeeper_writes_them() {
        // f_files.txt f1: the original order, and the order of the rewritten static file
        let keys = [
            "tickTime",
            "initLimit",
            "syncLimit",
            "dataDir",
            "reconfigEnabled",
            "standaloneEnabled",
            "4lw.commands.whitelist",
            "admin.enableServer",
            "admin.serverAddress",
            "admin.serverPort",
            "DigestAuthenticationProvider.superDigest",
            "server.1",
            "server.2",
            "server.3",
        ];
        let order: Vec<&str> = java_properties_order(&keys)
            .into_iter()
            .map(|i| keys[i])
            .collect();
        assert_eq!(
            order,
            vec![
                "dataDir",
                "4lw.commands.whitelist",
                "syncLimit",
                "DigestAuthenticationProvider.superDigest",
                "reconfigEnabled",
                "standaloneEnabled",
                "server.2",
                "admin.enableServer",
                "server.1",
                "initLimit",
                "tickTime",
                "server.3",
                "admin.serverAddress",
                "admin.serverPort",
            ]
        );
    }
}
