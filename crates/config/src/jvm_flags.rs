//! Security settings carried as JVM system properties.
//!
//! zkrs is not a JVM and reads no `-D` flags, but operators moving from ZooKeeper carry
//! `-Dzookeeper.ssl.keyStore.location=...`, `-Djava.security.auth.login.config=...` and the
//! like in `SERVER_JVMFLAGS` / `JVMFLAGS` (set by zkEnv.sh or zookeeper-env.sh). Ignoring
//! them would start an open server, so a flag that turns on a security feature zkrs does not
//! implement refuses the start, as the same key in zoo.cfg does. Pure: the caller reads the
//! environment.

use crate::security_keys::{is_unsupported_security_key, refusal};
use crate::ConfigError;

/// The `-Dkey=value` system properties in a JVM command-line fragment, in order. Words are
/// split at whitespace only, as zkServer.sh's unquoted `$SERVER_JVMFLAGS` is; quotes around a
/// value are dropped. `-Dkey` alone has the empty value, as in Java.
pub fn system_properties(flags: &str) -> Vec<(String, String)> {
    flags
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("-D"))
        .filter(|property| !property.is_empty())
        .map(|property| match property.split_once('=') {
            Some((key, value)) => (key.to_owned(), unquote(value).to_owned()),
            None => (property.to_owned(), String::new()),
        })
        .collect()
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// Refuses the flags in the environment variable `var` (its name, without `$`) when one of
/// them turns on a security feature zkrs does not implement:
/// `$SERVER_JVMFLAGS: -D<key> is not supported by zkrs yet; refusing to start without it`.
pub fn check_jvm_flags(var: &str, flags: &str) -> Result<(), ConfigError> {
    match system_properties(flags)
        .into_iter()
        .find(|(key, value)| is_unsupported_security_key(key, value))
    {
        None => Ok(()),
        Some((key, _)) => Err(ConfigError {
            file: format!("${var}"),
            line: None,
            message: refusal(&format!("-D{key}")),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_read_from_d_flags_only() {
        let props = system_properties(
            "-Xmx1g -Dzookeeper.ssl.keyStore.location=/k.jks  -XX:+UseG1GC\t-Dflag -Da=\"b\" -D",
        );
        assert_eq!(
            props,
            vec![
                ("zookeeper.ssl.keyStore.location".into(), "/k.jks".into()),
                ("flag".into(), String::new()),
                ("a".into(), "b".into()),
            ]
        );
    }

    #[test]
    fn a_flag_that_turns_security_on_is_refused() {
        let err = check_jvm_flags(
            "SERVER_JVMFLAGS",
            "-Xmx512m -Djava.security.auth.login.config=/etc/zk/jaas.conf",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "$SERVER_JVMFLAGS: -Djava.security.auth.login.config is not supported by zkrs yet; \
             refusing to start without it"
        );
        let err = check_jvm_flags(
            "JVMFLAGS",
            "-Dzookeeper.sasl.client=false -Dzookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "$JVMFLAGS: -Dzookeeper.authProvider.1 is not supported by zkrs yet; refusing to \
             start without it"
        );
        for flags in [
            "-Dzookeeper.ssl.quorum.trustStore.location=/t.jks",
            "-Dzookeeper.sslQuorum=true",
            "-DsslQuorum=true",
            "-Dzookeeper.enforce.auth.enabled=true",
            "-Dzookeeper.client.secure=true",
        ] {
            assert!(
                check_jvm_flags("SERVER_JVMFLAGS", flags).is_err(),
                "{flags}"
            );
        }
    }

    #[test]
    fn harmless_and_unrelated_flags_pass() {
        for flags in [
            "",
            "-Xmx1g -XX:+UseG1GC",
            "-Dzookeeper.sasl.client=false -Dzookeeper.sslQuorum=false",
            "-Dzookeeper.enforce.auth.enabled=false",
            "-Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
            "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:abc=",
            "-Dzookeeper.snapCount=1000",
        ] {
            assert_eq!(check_jvm_flags("JVMFLAGS", flags), Ok(()), "{flags}");
        }
    }
}
