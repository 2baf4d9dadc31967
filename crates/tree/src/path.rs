//! ZooKeeper's path rules (PathUtils.validatePath).

/// Why a path is not a valid znode path; the text mirrors ZooKeeper's.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return Err("Path must start with / character".into());
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("Path must not end with / character".into());
    }
    for (i, element) in path[1..].split('/').enumerate() {
        if element.is_empty() {
            return Err(format!("empty node name specified @{}", i));
        }
        if element == "." || element == ".." {
            return Err(format!("relative paths not allowed @{}", i));
        }
        if let Some(c) = element.chars().find(|&c| invalid_char(c)) {
            return Err(format!("invalid character @{} ({:?})", i, c));
        }
    }
    Ok(())
}

/// A sequential create's path may end with '/', because the counter is appended to it.
pub fn validate_path_sequential(path: &str) -> Result<(), String> {
    validate_path(&format!("{path}1"))
}

fn invalid_char(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..='\u{ffff}')
}

/// The parent of an absolute path ("/" for top-level nodes). None for "/" itself.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    let at = path.rfind('/')?;
    Some(if at == 0 { "/" } else { &path[..at] })
}

/// The last element of a path.
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(at) => &path[at + 1..],
        None => path,
    }
}

/// `parent` joined with `child`.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_paths() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/zookeeper/config", "/é"] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "a", "/a/", "//a", "/a//b", "/a/./b", "/..", "/a\u{0}b", "/a\u{1}",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
        assert!(validate_path_sequential("/a/").is_ok());
    }

    #[test]
    fn parents_and_names() {
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/"), None);
        assert_eq!(name("/a/b"), "b");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
