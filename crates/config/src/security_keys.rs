//! The keys that configure security (TLS, SASL, quorum authentication, authentication
//! providers, enforced authentication, x509) and that zkrs does not implement yet.
//!
//! zkrs fails closed: such a key, in zoo.cfg or as a `-D` system property, stops the server
//! at startup instead of being ignored, because ignoring it would run in plaintext and
//! without the authentication the operator asked for. A value that leaves the feature off
//! (`sslQuorum=false`, `secureClientPort=0`) is harmless and accepted.
//!
//! Keys are matched as written in zoo.cfg and in their `zookeeper.`-prefixed system-property
//! spelling (ZooKeeper turns a zoo.cfg key it does not parse itself into the system property
//! `zookeeper.<key>`, so both mean the same). Names and defaults follow ZooKeeper 3.8's
//! administrator's guide.

/// What a key means for the fail-closed rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityKey {
    /// Not a key that configures security.
    Other,
    /// A security key whose value leaves the feature off: accepted (and otherwise ignored).
    Off,
    /// A security key whose value asks for something zkrs does not implement: refused.
    Unsupported,
}

/// Switches: refused unless they say `false` (or `no`).
const SWITCHES: &[&str] = &[
    "client.secure",
    "sslQuorum",
    "sslQuorumReloadCertFiles",
    "portUnification",
    "client.portUnification",
    "admin.forceHttps",
    "admin.portUnification",
    "quorum.auth.enableSasl",
    "quorum.auth.learnerRequireSasl",
    "quorum.auth.serverRequireSasl",
    "enforce.auth.enabled",
    "sessionRequireClientSASLAuth",
    "kerberos.removeHostFromPrincipal",
    "kerberos.removeRealmFromPrincipal",
    "kerberos.canonicalizeHostNames",
    "requireKerberosConfig",
    "sasl.client",
];

/// Settings that name a file, a class, a principal, a scheme or a user of a security
/// feature: refused whatever their value.
const SETTINGS: &[&str] = &[
    "secureClientPortAddress",
    "authProvider",
    "enforce.auth.schemes",
    "requireClientAuthScheme",
    "X509AuthenticationProvider.superUser",
    "SASLAuthenticationProvider.superPassword",
    "superUser",
    "letAnySaslUserDoX",
    "security.auth_to_local",
    "server.principal",
    "server.realm",
    "java.security.auth.login.config",
    "jaasLoginRenew",
];

/// Families of settings, refused whatever their value: TLS for clients and quorum
/// (`ssl.*`, `ssl.quorum.*`), quorum SASL (`quorum.auth.*`), SASL (`sasl.*`), SASL super
/// users (`superUser.N`).
const SETTING_PREFIXES: &[&str] = &["ssl.", "quorum.auth.", "sasl.", "superUser."];

/// Authentication provider classes zkrs has built in (the `digest` and `ip` schemes):
/// naming them in `authProvider.N` changes nothing.
const BUILT_IN_PROVIDERS: &[&str] = &[
    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
    "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
];

/// Classifies `key=value` (a zoo.cfg line or a `-Dkey=value` flag).
pub fn classify(key: &str, value: &str) -> SecurityKey {
    let name = key.strip_prefix("zookeeper.").unwrap_or(key);
    let value = value.trim();
    let refused_unless = |harmless: bool| {
        if harmless {
            SecurityKey::Off
        } else {
            SecurityKey::Unsupported
        }
    };
    if SWITCHES.contains(&name) {
        return refused_unless(
            value.eq_ignore_ascii_case("false") || value.eq_ignore_ascii_case("no"),
        );
    }
    match name {
        // ZooKeeper's "not set"
        "secureClientPort" => return refused_unless(value == "0"),
        // zkrs computes digests with SHA1 only
        "DigestAuthenticationProvider.digestAlg" => {
            return refused_unless(
                value.eq_ignore_ascii_case("SHA1") || value.eq_ignore_ascii_case("SHA-1"),
            )
        }
        // the digest scheme cannot be turned off in zkrs (ZooKeeper: anything but "true" is off)
        "DigestAuthenticationProvider.enabled" => {
            return refused_unless(value.eq_ignore_ascii_case("true"))
        }
        _ => {}
    }
    if name.starts_with("authProvider.") {
        return refused_unless(BUILT_IN_PROVIDERS.contains(&value));
    }
    if SETTINGS.contains(&name) || SETTING_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return SecurityKey::Unsupported;
    }
    SecurityKey::Other
}

/// Whether `key=value` configures a security feature zkrs does not implement.
pub fn is_unsupported_security_key(key: &str, value: &str) -> bool {
    classify(key, value) == SecurityKey::Unsupported
}

/// The reason given when `what` (a key, or a `-Dkey` flag) is refused.
pub fn refusal(what: &str) -> String {
    format!("{what} is not supported by zkrs yet; refusing to start without it")
}

#[cfg(test)]
mod tests {
    use super::*;
    use SecurityKey::*;

    #[test]
    fn tls_keys_are_refused_in_both_spellings() {
        for key in [
            "ssl.keyStore.location",
            "ssl.keyStore.password",
            "ssl.keyStore.passwordPath",
            "ssl.keyStore.type",
            "ssl.trustStore.location",
            "ssl.trustStore.password",
            "ssl.trustStore.type",
            "ssl.clientAuth",
            "ssl.authProvider",
            "ssl.protocol",
            "ssl.enabledProtocols",
            "ssl.ciphersuites",
            "ssl.hostnameVerification",
            "ssl.crl",
            "ssl.ocsp",
            "ssl.context.supplier.class",
            "ssl.handshakeDetectionTimeoutMillis",
            "ssl.sslProvider",
            "ssl.quorum.keyStore.location",
            "ssl.quorum.trustStore.password",
            "ssl.quorum.hostnameVerification",
            "secureClientPortAddress",
        ] {
            assert_eq!(classify(key, "x"), Unsupported, "{key}");
            assert_eq!(
                classify(&format!("zookeeper.{key}"), "x"),
                Unsupported,
                "{key}"
            );
            // even a value that reads as off: it only exists to configure TLS
            assert_eq!(classify(key, "false"), Unsupported, "{key}");
        }
        assert_eq!(classify("secureClientPort", "2281"), Unsupported);
        assert_eq!(classify("secureClientPort", "0"), Off);
    }

    #[test]
    fn switches_are_refused_unless_off() {
        for key in SWITCHES {
            for on in ["true", "TRUE", "yes", "", "ture"] {
                assert_eq!(classify(key, on), Unsupported, "{key}={on}");
            }
            for off in ["false", "False", " no "] {
                assert_eq!(classify(key, off), Off, "{key}={off}");
                assert_eq!(
                    classify(&format!("zookeeper.{key}"), off),
                    Off,
                    "{key}={off}"
                );
            }
        }
    }

    #[test]
    fn sasl_and_auth_settings_are_refused_whatever_their_value() {
        for key in [
            "quorum.auth.learner.saslLoginContext",
            "quorum.auth.server.saslLoginContext",
            "quorum.auth.kerberos.servicePrincipal",
            "enforce.auth.schemes",
            "requireClientAuthScheme",
            "X509AuthenticationProvider.superUser",
            "superUser",
            "superUser.1",
            "sasl.serverconfig",
            "sasl.clientconfig",
            "java.security.auth.login.config",
            "jaasLoginRenew",
            "authProvider",
        ] {
            assert_eq!(classify(key, "x"), Unsupported, "{key}");
            assert_eq!(classify(key, "false"), Unsupported, "{key}");
        }
    }

    #[test]
    fn auth_providers_other_than_the_built_in_ones_are_refused() {
        let sasl = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";
        assert_eq!(classify("authProvider.1", sasl), Unsupported);
        assert_eq!(classify("zookeeper.authProvider.sasl", sasl), Unsupported);
        assert_eq!(
            classify("authProvider.x509", "com.example.Mine"),
            Unsupported
        );
        for built_in in BUILT_IN_PROVIDERS {
            assert_eq!(classify("authProvider.1", built_in), Off);
        }
    }

    #[test]
    fn digest_provider_keys() {
        for sha1 in ["SHA1", "sha1", "SHA-1"] {
            assert_eq!(
                classify("DigestAuthenticationProvider.digestAlg", sha1),
                Off
            );
        }
        assert_eq!(
            classify(
                "zookeeper.DigestAuthenticationProvider.digestAlg",
                "SHA-256"
            ),
            Unsupported
        );
        assert_eq!(
            classify("DigestAuthenticationProvider.enabled", "true"),
            Off
        );
        assert_eq!(
            classify("DigestAuthenticationProvider.enabled", "false"),
            Unsupported
        );
        // implemented by the parser, not a security key it refuses
        assert_eq!(
            classify("DigestAuthenticationProvider.superDigest", "super:x"),
            Other
        );
    }

    #[test]
    fn other_keys_are_not_security_keys() {
        for key in [
            "serverCnxnFactory",
            "zookeeper.serverCnxnFactory",
            "tickTime",
            "frobnicate",
            "quorum.cnxn.threads.size",
            "sslish",
        ] {
            assert_eq!(classify(key, "true"), Other, "{key}");
        }
    }

    #[test]
    fn refusal_has_the_documented_shape() {
        assert_eq!(
            refusal("sslQuorum"),
            "sslQuorum is not supported by zkrs yet; refusing to start without it"
        );
    }
}
