//! Settings from the environment (and `rotor serve` flags), checked once at startup so that a
//! typo stops the server with one line naming the variable instead of failing later.

use base64::Engine;
use ipnet::IpNet;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A startup configuration error; its message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn bad(var: &str, why: impl fmt::Display) -> ConfigError {
    ConfigError(format!("invalid {var}: {why}"))
}

/// Which product this instance is: a customer's own install or the vendor's hosted service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    /// Features come from the license only; plans have no effect.
    SelfHosted,
    /// The hosted service: workspace plans grant features too.
    Saas,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (for log shippers).
    Json,
    /// Human-readable lines.
    Pretty,
}

/// The 32-byte master key that wraps every workspace data key.
#[derive(Clone)]
pub struct MasterKey(pub [u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(****)")
    }
}

/// The HMAC secret that signs session JWTs (at least 32 bytes).
#[derive(Clone)]
pub struct JwtSecret(pub Vec<u8>);

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(****)")
    }
}

/// One entry of `ROTOR_UPSTREAM_ALLOW` / `ROTOR_UPSTREAM_DENY`.
pub use rotor_dispatch::policy::Rule as AddressRule;

/// Every setting of `rotor serve`, validated.
#[derive(Clone)]
pub struct Config {
    /// Postgres URL; `None` means the embedded default.
    pub database_url: Option<String>,
    /// Redis URL for shared dispatch state.
    pub redis_url: Option<String>,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Current master key (generated in the embedded default).
    pub master_key: Option<MasterKey>,
    /// Previous master key, still accepted for reading during a rotation.
    pub master_key_previous: Option<MasterKey>,
    /// JWT signing secret (generated in the embedded default).
    pub jwt_secret: Option<JwtSecret>,
    /// A license token or a path to a file holding one.
    pub license: Option<String>,
    /// Deployment mode.
    pub deployment: Deployment,
    /// Whether anyone may sign up (the first user always may).
    pub signup_open: bool,
    /// Upstream address allow list.
    pub upstream_allow: Vec<AddressRule>,
    /// Upstream address deny list.
    pub upstream_deny: Vec<AddressRule>,
    /// First-byte timeout per upstream attempt.
    pub upstream_timeout: Duration,
    /// Deadline for a whole gateway request across attempts.
    pub request_deadline: Duration,
    /// Longest silence allowed between two stream chunks.
    pub stream_idle_timeout: Duration,
    /// Largest gateway request body, in bytes.
    pub gateway_max_body: usize,
    /// Largest non-streamed upstream answer held, in bytes (streams are cut there).
    pub upstream_max_body: usize,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Bearer token required by `/metrics` (loopback only when unset).
    pub metrics_token: Option<String>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Directory of the embedded default (database, generated secrets).
    pub data_dir: PathBuf,
    /// Log format.
    pub log_format: LogFormat,
    /// Running on the embedded default (local model servers on loopback/private addresses
    /// are then allowed by default).
    pub embedded: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("listen", &self.listen)
            .field("deployment", &self.deployment)
            .field("signup_open", &self.signup_open)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// Hides the password of a `scheme://user:password@host/...` URL for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:****@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The names of every variable `rotor serve` reads.
pub const VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "ROTOR_LISTEN",
    "ROTOR_MASTER_KEY",
    "ROTOR_MASTER_KEY_PREVIOUS",
    "ROTOR_JWT_SECRET",
    "ROTOR_LICENSE",
    "ROTOR_DEPLOYMENT",
    "ROTOR_SIGNUP",
    "ROTOR_UPSTREAM_ALLOW",
    "ROTOR_UPSTREAM_DENY",
    "ROTOR_UPSTREAM_TIMEOUT",
    "ROTOR_REQUEST_DEADLINE",
    "ROTOR_STREAM_IDLE_TIMEOUT",
    "ROTOR_GATEWAY_MAX_BODY",
    "ROTOR_UPSTREAM_MAX_BODY",
    "ROTOR_MAX_CONNECTIONS",
    "ROTOR_METRICS_TOKEN",
    "ROTOR_TRUSTED_PROXIES",
    "ROTOR_DATA_DIR",
    "ROTOR_LOG_FORMAT",
];

impl Config {
    /// Reads and checks every setting from `vars` (variable name → value). Empty values count as unset.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            vars.get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let database_url = get("DATABASE_URL");
        if let Some(url) = &database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(bad("DATABASE_URL", "expected a postgres:// URL"));
            }
        }
        let redis_url = get("REDIS_URL");
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(bad("REDIS_URL", "expected a redis:// or rediss:// URL"));
            }
        }
        let listen = match get("ROTOR_LISTEN") {
            None => SocketAddr::from(([0, 0, 0, 0], 8080)),
            Some(v) => v
                .parse()
                .map_err(|_| bad("ROTOR_LISTEN", "expected host:port, e.g. 0.0.0.0:8080"))?,
        };
        let master_key = get("ROTOR_MASTER_KEY")
            .map(|v| parse_master_key("ROTOR_MASTER_KEY", &v))
            .transpose()?;
        let master_key_previous = get("ROTOR_MASTER_KEY_PREVIOUS")
            .map(|v| parse_master_key("ROTOR_MASTER_KEY_PREVIOUS", &v))
            .transpose()?;
        let jwt_secret = get("ROTOR_JWT_SECRET")
            .map(|v| {
                if v.len() < 32 {
                    Err(bad("ROTOR_JWT_SECRET", "must be at least 32 bytes"))
                } else {
                    Ok(JwtSecret(v.into_bytes()))
                }
            })
            .transpose()?;
        if database_url.is_some() {
            if master_key.is_none() {
                return Err(ConfigError(
                    "missing ROTOR_MASTER_KEY: required with DATABASE_URL (32 random bytes, base64: `openssl rand -base64 32`)".into(),
                ));
            }
            if jwt_secret.is_none() {
                return Err(ConfigError(
                    "missing ROTOR_JWT_SECRET: required with DATABASE_URL (at least 32 bytes: `openssl rand -base64 48`)".into(),
                ));
            }
        }
        let deployment = match get("ROTOR_DEPLOYMENT").as_deref() {
            None | Some("self-hosted") => Deployment::SelfHosted,
            Some("saas") => Deployment::Saas,
            Some(_) => return Err(bad("ROTOR_DEPLOYMENT", "expected self-hosted or saas")),
        };
        let signup_open = match get("ROTOR_SIGNUP").as_deref() {
            None => deployment == Deployment::Saas,
            Some("open") => true,
            Some("closed") => false,
            Some(_) => return Err(bad("ROTOR_SIGNUP", "expected open or closed")),
        };
        let upstream_allow = parse_rules("ROTOR_UPSTREAM_ALLOW", get("ROTOR_UPSTREAM_ALLOW"))?;
        let upstream_deny = parse_rules("ROTOR_UPSTREAM_DENY", get("ROTOR_UPSTREAM_DENY"))?;
        let upstream_timeout = parse_seconds(
            "ROTOR_UPSTREAM_TIMEOUT",
            get("ROTOR_UPSTREAM_TIMEOUT"),
            120.0,
        )?;
        let request_deadline = parse_seconds(
            "ROTOR_REQUEST_DEADLINE",
            get("ROTOR_REQUEST_DEADLINE"),
            300.0,
        )?;
        let stream_idle_timeout = parse_seconds(
            "ROTOR_STREAM_IDLE_TIMEOUT",
            get("ROTOR_STREAM_IDLE_TIMEOUT"),
            60.0,
        )?;
        let gateway_max_body = match get("ROTOR_GATEWAY_MAX_BODY") {
            None => 32 * 1024 * 1024,
            Some(v) => parse_size(&v).ok_or_else(|| {
                bad(
                    "ROTOR_GATEWAY_MAX_BODY",
                    "expected a size such as 33554432, 32MiB or 512KiB",
                )
            })?,
        };
        let upstream_max_body = match get("ROTOR_UPSTREAM_MAX_BODY") {
            None => 64 * 1024 * 1024,
            Some(v) => parse_size(&v).filter(|n| *n > 0).ok_or_else(|| {
                bad(
                    "ROTOR_UPSTREAM_MAX_BODY",
                    "expected a size such as 67108864, 64MiB or 512KiB",
                )
            })?,
        };
        let max_connections = match get("ROTOR_MAX_CONNECTIONS") {
            None => 10_000,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| {
                    bad(
                        "ROTOR_MAX_CONNECTIONS",
                        "expected a number of connections from 1 to 1000000",
                    )
                })?,
        };
        let metrics_token = get("ROTOR_METRICS_TOKEN");
        let trusted_proxies = match get("ROTOR_TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(v) => split_list(&v)
                .map(|item| {
                    parse_net(item).ok_or_else(|| {
                        bad(
                            "ROTOR_TRUSTED_PROXIES",
                            format!("`{item}` is not a CIDR or IP address"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let data_dir =
            PathBuf::from(get("ROTOR_DATA_DIR").unwrap_or_else(|| "./.rotor".to_owned()));
        let log_format = match get("ROTOR_LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(_) => return Err(bad("ROTOR_LOG_FORMAT", "expected json or pretty")),
        };
        if let Some(filter) = get("RUST_LOG") {
            tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| bad("RUST_LOG", e))?;
        }
        Ok(Config {
            database_url,
            redis_url,
            listen,
            master_key,
            master_key_previous,
            jwt_secret,
            license: get("ROTOR_LICENSE"),
            deployment,
            signup_open,
            upstream_allow,
            upstream_deny,
            upstream_timeout,
            request_deadline,
            stream_idle_timeout,
            gateway_max_body,
            upstream_max_body,
            max_connections,
            metrics_token,
            trusted_proxies,
            data_dir,
            log_format,
            embedded: false,
        })
    }
}

/// Decodes a 32-byte base64 key (standard or URL-safe alphabet, padding optional).
pub fn parse_master_key(var: &str, value: &str) -> Result<MasterKey, ConfigError> {
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let bytes = engines
        .iter()
        .find_map(|e| e.decode(value).ok())
        .ok_or_else(|| {
            bad(
                var,
                "expected 32 bytes encoded as base64 (`openssl rand -base64 32`)",
            )
        })?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| bad(var, format!("expected 32 bytes, got {}", b.len())))?;
    Ok(MasterKey(key))
}

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn parse_net(item: &str) -> Option<IpNet> {
    item.parse::<IpNet>()
        .ok()
        .or_else(|| item.parse::<IpAddr>().ok().map(IpNet::from))
}

fn parse_rules(var: &str, value: Option<String>) -> Result<Vec<AddressRule>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    split_list(&value)
        .map(|item| {
            if let Some(net) = parse_net(item) {
                return Ok(AddressRule::Net(net));
            }
            let host = item.trim_end_matches('.').to_ascii_lowercase();
            let valid = !host.is_empty()
                && host.len() <= 253
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
                });
            if valid {
                Ok(AddressRule::Host(host))
            } else {
                Err(bad(
                    var,
                    format!("`{item}` is not a CIDR, IP address or host name"),
                ))
            }
        })
        .collect()
}

fn parse_seconds(var: &str, value: Option<String>, default: f64) -> Result<Duration, ConfigError> {
    let secs = match value {
        None => default,
        Some(v) => v
            .parse::<f64>()
            .map_err(|_| bad(var, "expected a number of seconds, e.g. 120 or 0.5"))?,
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(bad(
            var,
            "expected a number of seconds greater than 0 and at most 86400",
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_size(value: &str) -> Option<usize> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: usize = num.parse().ok()?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult).filter(|&s| s > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.deployment, Deployment::SelfHosted);
        assert!(!c.signup_open);
        assert_eq!(c.gateway_max_body, 32 * 1024 * 1024);
        assert_eq!(c.upstream_max_body, 64 * 1024 * 1024);
        assert_eq!(c.max_connections, 10_000);
    }

    #[test]
    fn database_url_requires_keys_and_names_the_missing_one() {
        let e = Config::from_vars(&vars(&[("DATABASE_URL", "postgres://x/y")])).unwrap_err();
        assert!(e.0.contains("ROTOR_MASTER_KEY"), "{e}");
        let e = Config::from_vars(&vars(&[
            ("DATABASE_URL", "postgres://x/y"),
            ("ROTOR_MASTER_KEY", KEY),
        ]))
        .unwrap_err();
        assert!(e.0.contains("ROTOR_JWT_SECRET"), "{e}");
    }

    #[test]
    fn malformed_values_name_their_variable() {
        for (var, value) in [
            ("ROTOR_LISTEN", "nope"),
            ("ROTOR_MASTER_KEY", "c2hvcnQ="),
            ("ROTOR_JWT_SECRET", "short"),
            ("ROTOR_DEPLOYMENT", "cloud"),
            ("ROTOR_SIGNUP", "maybe"),
            ("ROTOR_UPSTREAM_TIMEOUT", "-1"),
            ("ROTOR_REQUEST_DEADLINE", "soon"),
            ("ROTOR_GATEWAY_MAX_BODY", "12XB"),
            ("ROTOR_UPSTREAM_MAX_BODY", "0"),
            ("ROTOR_MAX_CONNECTIONS", "many"),
            ("ROTOR_TRUSTED_PROXIES", "10.0.0.0/99"),
            ("ROTOR_UPSTREAM_ALLOW", "not a host!"),
            ("ROTOR_LOG_FORMAT", "xml"),
            ("REDIS_URL", "http://x"),
        ] {
            let e = Config::from_vars(&vars(&[(var, value)])).unwrap_err();
            assert!(e.0.contains(var), "{var}: {e}");
            assert!(!e.0.contains('\n'));
        }
    }

    #[test]
    fn saas_opens_signup_by_default_and_lists_parse() {
        let c = Config::from_vars(&vars(&[
            ("ROTOR_DEPLOYMENT", "saas"),
            ("ROTOR_UPSTREAM_ALLOW", "127.0.0.0/8, localhost"),
            ("ROTOR_UPSTREAM_TIMEOUT", "0.5"),
            ("ROTOR_GATEWAY_MAX_BODY", "1MiB"),
        ]))
        .unwrap();
        assert!(c.signup_open);
        assert_eq!(c.upstream_allow.len(), 2);
        assert_eq!(c.upstream_timeout, Duration::from_millis(500));
        assert_eq!(c.gateway_max_body, 1024 * 1024);
    }

    #[test]
    fn redaction_hides_passwords() {
        assert_eq!(
            redact_url("postgres://rotor:s3cret@db:5432/rotor"),
            "postgres://rotor:****@db:5432/rotor"
        );
    }
}
