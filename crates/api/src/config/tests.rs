//! Parsing, defaults, the errors' one line, blank values, and that Debug keeps secrets out.

use super::*;
use std::collections::HashMap;
use std::ffi::OsString;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

#[test]
fn defaults_without_database_url_are_the_embedded_mode() {
    let c = Config::from_vars(&vars(&[])).unwrap();
    assert!(c.database_url.is_none());
    assert_eq!(c.listen, SocketAddr::from(([0, 0, 0, 0], 8080)));
    assert_eq!(c.deployment, Deployment::SelfHosted);
    assert!(!c.signup_open);
    assert_eq!(c.upstream_timeout, Duration::from_secs(120));
    assert_eq!(c.request_deadline, Duration::from_secs(300));
    assert_eq!(c.stream_idle_timeout, Duration::from_secs(60));
    assert_eq!(c.probe_interval, Duration::from_secs(300));
    assert_eq!(c.usage_retention_days, 400);
    assert_eq!(c.gateway_max_body, 32 * 1024 * 1024);
    assert_eq!(c.upstream_max_body, 64 * 1024 * 1024);
    assert_eq!(c.max_connections, 10_000);
    assert!(c.upstream_allow.is_empty() && c.trusted_proxies.is_empty());
    assert_eq!(c.data_dir, PathBuf::from("./.rotor"));
    assert_eq!(c.log_format, LogFormat::Pretty);
    assert_eq!(c.log_filter, crate::telemetry::DEFAULT_FILTER);
    assert!(!c.embedded);
}

#[test]
fn database_url_requires_keys_and_names_the_missing_one() {
    let e = Config::from_vars(&vars(&[("DATABASE_URL", "postgres://x/y")])).unwrap_err();
    assert!(e.0.starts_with("missing ROTOR_MASTER_KEY:"), "{e}");
    let e = Config::from_vars(&vars(&[
        ("DATABASE_URL", "postgres://x/y"),
        ("ROTOR_MASTER_KEY", KEY),
    ]))
    .unwrap_err();
    assert!(e.0.starts_with("missing ROTOR_JWT_SECRET:"), "{e}");
}

#[test]
fn malformed_values_name_their_variable_in_one_line() {
    for (var, value, why) in [
        ("ROTOR_LISTEN", "nope", "expected host:port"),
        ("ROTOR_MASTER_KEY", "c2hvcnQ=", "expected 32 bytes, got 5"),
        ("ROTOR_MASTER_KEY_PREVIOUS", "!!", "encoded as base64"),
        ("ROTOR_JWT_SECRET", "short", "at least 32 bytes"),
        ("ROTOR_DEPLOYMENT", "cloud", "expected self-hosted or saas"),
        ("ROTOR_SIGNUP", "maybe", "expected open or closed"),
        ("ROTOR_UPSTREAM_TIMEOUT", "-1", "greater than 0"),
        ("ROTOR_STREAM_IDLE_TIMEOUT", "90000", "at most 86400"),
        ("ROTOR_PROBE_INTERVAL", "0", "greater than 0"),
        ("ROTOR_USAGE_RETENTION_DAYS", "0", "from 1 to 36500"),
        ("ROTOR_USAGE_RETENTION_DAYS", "a year", "from 1 to 36500"),
        ("ROTOR_REQUEST_DEADLINE", "soon", "a number of seconds"),
        ("ROTOR_GATEWAY_MAX_BODY", "12XB", "32MiB"),
        ("ROTOR_UPSTREAM_MAX_BODY", "0", "64MiB"),
        ("ROTOR_MAX_CONNECTIONS", "many", "from 1 to 1000000"),
        ("ROTOR_MAX_CONNECTIONS", "0", "from 1 to 1000000"),
        (
            "ROTOR_TRUSTED_PROXIES",
            "10.0.0.0/99",
            "`10.0.0.0/99` is not",
        ),
        ("ROTOR_UPSTREAM_ALLOW", "not a host!", "`host!` is not"),
        ("ROTOR_LOG_FORMAT", "xml", "expected json or pretty"),
        ("REDIS_URL", "http://x", "redis://"),
        ("DATABASE_URL", "mysql://x", "postgres://"),
        ("RUST_LOG", "a=b=c", ""),
    ] {
        let e = Config::from_vars(&vars(&[(var, value)])).unwrap_err();
        assert!(e.0.starts_with(&format!("invalid {var}: ")), "{var}: {e}");
        assert!(e.0.contains(why), "{var}: {e}");
        assert!(!e.0.contains('\n'), "{var}: {e}");
        if var.contains("KEY") || var.contains("SECRET") {
            assert!(!e.0.contains(value), "a secret's error echoes it: {e}");
        }
    }
}

#[test]
fn values_are_trimmed_and_blank_ones_are_unset() {
    let c = Config::from_vars(&vars(&[
        ("ROTOR_DEPLOYMENT", " saas "),
        ("ROTOR_SIGNUP", "  "),
        ("ROTOR_LISTEN", ""),
        ("ROTOR_UPSTREAM_ALLOW", "127.0.0.0/8, localhost ::1"),
        ("ROTOR_UPSTREAM_TIMEOUT", " 0.5"),
        ("ROTOR_GATEWAY_MAX_BODY", "1 MiB"),
        ("ROTOR_UPSTREAM_MAX_BODY", "512k"),
        ("ROTOR_LICENSE", ""),
    ]))
    .unwrap();
    assert_eq!(c.deployment, Deployment::Saas);
    assert!(c.signup_open, "saas opens signup by default");
    assert_eq!(c.listen.port(), 8080);
    assert_eq!(c.upstream_allow.len(), 3);
    assert_eq!(c.upstream_timeout, Duration::from_millis(500));
    assert_eq!(c.gateway_max_body, 1024 * 1024);
    assert_eq!(c.upstream_max_body, 512 * 1024);
    assert!(c.license.is_none());
    let closed = Config::from_vars(&vars(&[
        ("ROTOR_DEPLOYMENT", "saas"),
        ("ROTOR_SIGNUP", "closed"),
    ]));
    assert!(!closed.unwrap().signup_open);
}

#[test]
fn master_keys_accept_both_base64_alphabets_with_or_without_padding() {
    let bytes = [0xfbu8; 32];
    use base64::Engine;
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        let c = Config::from_vars(&vars(&[("ROTOR_MASTER_KEY", &engine.encode(bytes))])).unwrap();
        assert_eq!(c.master_key.unwrap().expose(), &bytes);
    }
}

#[test]
fn debug_output_carries_no_secret() {
    let jwt = "jwt-secret-jwt-secret-jwt-secret-42";
    let c = Config::from_vars(&vars(&[
        ("DATABASE_URL", "postgres://rotor:db-pass-123@db:5432/rotor"),
        ("REDIS_URL", "redis://:redis-pass-456@cache:6379/"),
        ("ROTOR_MASTER_KEY", KEY),
        (
            "ROTOR_MASTER_KEY_PREVIOUS",
            "ERERERERERERERERERERERERERERERERERERERERERE=",
        ),
        ("ROTOR_JWT_SECRET", jwt),
        ("ROTOR_LICENSE", "license.token.789"),
        ("ROTOR_METRICS_TOKEN", "metrics-token-000"),
    ]))
    .unwrap();
    let debug = format!("{c:?} {c:#?}");
    for secret in [
        "db-pass-123",
        "redis-pass-456",
        KEY,
        "ERERERERERERERERERERERERERERERERERERERERERE=",
        jwt,
        "license.token.789",
        "metrics-token-000",
    ] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(
        debug.contains("postgres://rotor:****@db:5432/rotor"),
        "{debug}"
    );
    assert!(debug.contains("MasterKey(mk_"), "{debug}");
}

#[test]
fn blank_flags_are_dropped_and_others_kept() {
    let argv = |args: &[&str]| args.iter().map(OsString::from).collect::<Vec<_>>();
    assert_eq!(
        drop_blank_flags(argv(&[
            "rotor",
            "serve",
            "--license",
            "",
            "--signup=",
            "--listen",
            "1.2.3.4:5",
            "--data-dir=x"
        ])),
        argv(&["rotor", "serve", "--listen", "1.2.3.4:5", "--data-dir=x"])
    );
    assert_eq!(
        drop_blank_flags(argv(&["rotor", "license", "issue", "--licensee", ""])),
        argv(&["rotor", "license", "issue", "--licensee", ""])
    );
}
