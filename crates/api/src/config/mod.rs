//! Settings from the environment (and `rotor serve` flags), checked once at startup so that a
//! typo stops the server with one line naming the variable instead of failing later. Each
//! setting is declared once, below: its variable, flag, default, parser and doc (which is the
//! `--help` text and the README's configuration table, checked by a test).

mod parse;
mod secrets;
mod source;
#[cfg(test)]
mod table;
#[cfg(test)]
mod tests;

pub use parse::{decode_master_key, value_error};
pub use secrets::{redact_url, JwtSecret, MasterKey, SecretUrl};
pub use source::{drop_blank_flags, unset_blank_env};

use clap::builder::{EnumValueParser, PathBufValueParser};
use ipnet::IpNet;
use parse::Trim;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A startup configuration error; its message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Which product this instance is: a customer's own install or the vendor's hosted service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Deployment {
    /// Features come from the license only; plans have no effect.
    SelfHosted,
    /// The hosted service: workspace plans grant features too.
    Saas,
}

impl Deployment {
    /// The name `ROTOR_DEPLOYMENT` takes (`self-hosted`, `saas`).
    pub fn as_str(self) -> &'static str {
        match self {
            Deployment::SelfHosted => "self-hosted",
            Deployment::Saas => "saas",
        }
    }
}

/// Whether anyone may sign up (`ROTOR_SIGNUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Signup {
    /// Anyone may sign up.
    Open,
    /// Only the first user may sign up; the others are invited.
    Closed,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log shippers).
    Json,
    /// Human-readable lines.
    Pretty,
}

/// One entry of `ROTOR_UPSTREAM_ALLOW` / `ROTOR_UPSTREAM_DENY`.
pub use rotor_dispatch::policy::Rule as AddressRule;

/// Every setting of `rotor serve`: each value checked by its parser as it is read, the rest
/// by [`Config::finish`]. A paragraph `Default: …` in a doc comment describes a default that
/// is not a value (the README's table shows it). Lists are typed `std::vec::Vec` so that
/// clap parses the whole value at once instead of one item per flag.
#[derive(Debug, clap::Args)]
pub struct Config {
    /// PostgreSQL URL. When set, `ROTOR_MASTER_KEY` and `ROTOR_JWT_SECRET` are required.
    ///
    /// Default: — (embedded default).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = Trim(parse::postgres_url))]
    pub database_url: Option<SecretUrl>,
    /// Shared dispatch state (rotation, credential states, limits, affinity) for several replicas.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, value_parser = Trim(parse::redis_url))]
    pub redis_url: Option<SecretUrl>,
    /// Listen address.
    #[arg(long, env = "ROTOR_LISTEN", default_value = "0.0.0.0:8080", value_parser = Trim(parse::listen))]
    pub listen: SocketAddr,
    /// 32 bytes, base64. Wraps each workspace's data key.
    ///
    /// Default: generated in embedded mode.
    #[arg(long, env = "ROTOR_MASTER_KEY", hide_env_values = true, value_parser = Trim(parse::master_key))]
    pub master_key: Option<Arc<MasterKey>>,
    /// The old master key during a rotation.
    #[arg(long, env = "ROTOR_MASTER_KEY_PREVIOUS", hide_env_values = true, value_parser = Trim(parse::master_key))]
    pub master_key_previous: Option<Arc<MasterKey>>,
    /// At least 32 bytes; signs session tokens (HS256, 1 h).
    ///
    /// Default: generated in embedded mode.
    #[arg(long, env = "ROTOR_JWT_SECRET", hide_env_values = true, value_parser = Trim(parse::jwt_secret))]
    pub jwt_secret: Option<Arc<JwtSecret>>,
    /// License token or a path to a file holding one.
    #[arg(long, env = "ROTOR_LICENSE", hide_env_values = true, value_parser = Trim(parse::secret))]
    pub license: Option<SecretString>,
    /// `self-hosted` (features from the license only) or `saas` (plans grant features; needs a
    /// valid license listing `saas`, else startup refuses).
    #[arg(long, env = "ROTOR_DEPLOYMENT", default_value = "self-hosted", value_parser = Trim(EnumValueParser::<Deployment>::new()))]
    pub deployment: Deployment,
    /// Whether anyone may sign up; the first user always may.
    ///
    /// Default: `closed` self-hosted, `open` saas.
    #[arg(long, env = "ROTOR_SIGNUP", value_parser = Trim(EnumValueParser::<Signup>::new()))]
    pub signup: Option<Signup>,
    /// `signup`, or the deployment's default when unset.
    #[arg(skip)]
    pub signup_open: bool,
    /// Comma-separated CIDRs and host names upstream calls may reach, even loopback and
    /// private ones.
    #[arg(long, env = "ROTOR_UPSTREAM_ALLOW", default_value = "", hide_default_value = true, value_parser = Trim(parse::rules))]
    pub upstream_allow: std::vec::Vec<AddressRule>,
    /// Comma-separated CIDRs and host names upstream calls may not reach (wins over the allow
    /// list).
    #[arg(long, env = "ROTOR_UPSTREAM_DENY", default_value = "", hide_default_value = true, value_parser = Trim(parse::rules))]
    pub upstream_deny: std::vec::Vec<AddressRule>,
    /// First-byte timeout per upstream attempt, seconds.
    #[arg(long, env = "ROTOR_UPSTREAM_TIMEOUT", default_value = "120", value_parser = Trim(parse::seconds))]
    pub upstream_timeout: Duration,
    /// Deadline of a whole gateway request, seconds.
    #[arg(long, env = "ROTOR_REQUEST_DEADLINE", default_value = "300", value_parser = Trim(parse::seconds))]
    pub request_deadline: Duration,
    /// Longest pause between stream chunks, seconds.
    #[arg(long, env = "ROTOR_STREAM_IDLE_TIMEOUT", default_value = "60", value_parser = Trim(parse::seconds))]
    pub stream_idle_timeout: Duration,
    /// How often rejected and quota-exhausted credentials are probed (the provider's model
    /// list), seconds; one replica at a time.
    #[arg(long, env = "ROTOR_PROBE_INTERVAL", default_value = "300", value_parser = Trim(parse::seconds))]
    pub probe_interval: Duration,
    /// Days of usage kept in the ledger (older rows are deleted hourly), 1 to 36500.
    #[arg(long, env = "ROTOR_USAGE_RETENTION_DAYS", default_value = "400", value_parser = Trim(parse::retention_days))]
    pub usage_retention_days: u32,
    /// Largest gateway body (bytes, or with KiB/MiB/GiB).
    #[arg(long, env = "ROTOR_GATEWAY_MAX_BODY", default_value = "32MiB", value_parser = Trim(parse::gateway_size))]
    pub gateway_max_body: usize,
    /// Largest non-streamed provider answer held; larger → 502 `upstream_response_too_large`,
    /// streams are cut there.
    #[arg(long, env = "ROTOR_UPSTREAM_MAX_BODY", default_value = "64MiB", value_parser = Trim(parse::upstream_size))]
    pub upstream_max_body: usize,
    /// Most connections open at once (request headers must arrive within 30 s).
    #[arg(long, env = "ROTOR_MAX_CONNECTIONS", default_value = "10000", value_parser = Trim(parse::connections))]
    pub max_connections: usize,
    /// Bearer token for `/metrics` (loopback only without it).
    #[arg(long, env = "ROTOR_METRICS_TOKEN", hide_env_values = true, value_parser = Trim(parse::secret))]
    pub metrics_token: Option<SecretString>,
    /// CIDRs whose `X-Forwarded-For` is believed (login throttling).
    #[arg(long, env = "ROTOR_TRUSTED_PROXIES", default_value = "", hide_default_value = true, value_parser = Trim(parse::nets))]
    pub trusted_proxies: std::vec::Vec<IpNet>,
    /// Directory of the embedded default.
    #[arg(long, env = "ROTOR_DATA_DIR", default_value = "./.rotor", value_parser = Trim(PathBufValueParser::new()))]
    pub data_dir: PathBuf,
    /// `json` or `pretty`.
    #[arg(long, env = "ROTOR_LOG_FORMAT", default_value = "pretty", value_parser = Trim(EnumValueParser::<LogFormat>::new()))]
    pub log_format: LogFormat,
    /// Log filter (`tracing` directives, e.g. `rotor_api=debug,info`); each request's access
    /// line is `rotor_api::access` at `info` (`rotor_api::access=off` silences it).
    #[arg(long, env = "RUST_LOG", default_value = crate::telemetry::DEFAULT_FILTER, value_parser = Trim(parse::log_filter))]
    pub log_filter: String,
    /// Running on the embedded default (local model servers on loopback/private addresses
    /// are then allowed by default).
    #[arg(skip)]
    pub embedded: bool,
}

impl Config {
    /// Checks what no single value can: `DATABASE_URL` needs both keys; and settles the
    /// signup default, which depends on the deployment.
    pub fn finish(mut self) -> Result<Self, ConfigError> {
        if self.database_url.is_some() {
            if self.master_key.is_none() {
                return Err(ConfigError(
                    "missing ROTOR_MASTER_KEY: required with DATABASE_URL (32 random bytes, base64: `openssl rand -base64 32`)".into(),
                ));
            }
            if self.jwt_secret.is_none() {
                return Err(ConfigError(
                    "missing ROTOR_JWT_SECRET: required with DATABASE_URL (at least 32 bytes: `openssl rand -base64 48`)".into(),
                ));
            }
        }
        self.signup_open = match self.signup {
            None => self.deployment == Deployment::Saas,
            Some(signup) => signup == Signup::Open,
        };
        Ok(self)
    }
}
