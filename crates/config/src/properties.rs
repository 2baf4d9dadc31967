//! The subset of java.util.Properties syntax that ZooKeeper configuration files use.

use crate::ConfigError;

/// One `key=value` line of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
    /// 1-based line number in the file.
    pub line: usize,
}

/// Parses `key=value` lines (also `key: value`), skipping blank lines and `#`/`!` comments.
/// A line without a separator is an error, unlike java.util.Properties which silently turns
/// it into a key with an empty value: in a zoo.cfg that is always a typo.
pub fn parse_properties(text: &str, file: &str) -> Result<Vec<Property>, ConfigError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let separator = line.find(['=', ':']).filter(|&i| {
            // `key:value` only when the key has no '=' later, so server.1=h:1:2 splits at '='
            line.as_bytes()[i] == b'=' || !line[i..].contains('=')
        });
        let Some(at) = separator else {
            return Err(ConfigError {
                file: file.to_owned(),
                line: Some(index + 1),
                message: format!("expected key=value, found {line:?}"),
            });
        };
        let key = line[..at].trim();
        if key.is_empty() {
            return Err(ConfigError {
                file: file.to_owned(),
                line: Some(index + 1),
                message: format!(
                    "expected a key before '{}', found {line:?}",
                    &line[at..at + 1]
                ),
            });
        }
        out.push(Property {
            key: key.to_owned(),
            value: line[at + 1..].trim().to_owned(),
            line: index + 1,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_values_and_comments() {
        let props =
            parse_properties("# c\n\ntickTime = 2000\nserver.1=h:1:2;3\n! x\n", "zoo.cfg").unwrap();
        assert_eq!(props.len(), 2);
        assert_eq!(props[0].key, "tickTime");
        assert_eq!(props[0].value, "2000");
        assert_eq!(props[0].line, 3);
        assert_eq!(props[1].key, "server.1");
        assert_eq!(props[1].value, "h:1:2;3");
    }

    #[test]
    fn a_line_without_separator_names_file_and_line() {
        let err = parse_properties("tickTime=1\ngarbage\n", "/etc/zoo.cfg").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert_eq!(
            err.to_string(),
            "/etc/zoo.cfg:2: expected key=value, found \"garbage\""
        );
    }
}
