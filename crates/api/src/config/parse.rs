//! The value parsers of the settings (each error message says what is expected; the caller
//! prefixes the variable's name), and the mapping of clap's errors to that one line.

use super::secrets::{JwtSecret, MasterKey, SecretUrl};
use super::{AddressRule, ConfigError};
use base64::Engine;
use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use ipnet::IpNet;
use std::ffi::OsStr;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// Trims a value before `P` parses it: a setting written as `ROTOR_SIGNUP= open ` is `open`.
#[derive(Clone)]
pub struct Trim<P>(pub P);

impl<P: TypedValueParser> TypedValueParser for Trim<P> {
    type Value = P::Value;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let trimmed = value.to_str().map_or(value, |v| OsStr::new(v.trim()));
        self.0.parse_ref(cmd, arg, trimmed)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        self.0.possible_values()
    }
}

/// The one line `invalid VAR: why` for a bad value of a setting of `cmd`; `None` for other
/// errors (unknown flags, `--help`), which clap reports itself.
pub fn value_error(cmd: &clap::Command, err: &clap::Error) -> Option<ConfigError> {
    let Some(ContextValue::String(shown)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    // Shown as `--listen <LISTEN>`.
    let long = shown.split_whitespace().next()?.strip_prefix("--")?;
    let arg = cmd.get_arguments().find(|a| a.get_long() == Some(long))?;
    let var = arg.get_env()?.to_string_lossy();
    let why = match err.kind() {
        ErrorKind::ValueValidation => std::error::Error::source(err)?.to_string(),
        ErrorKind::InvalidValue => match err.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(valid)) => format!("expected {}", either(valid)),
            _ => return None,
        },
        _ => return None,
    };
    Some(ConfigError(format!("invalid {var}: {why}")))
}

/// `a`, `a or b`, `a, b or c`.
fn either(words: &[String]) -> String {
    match words.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// `DATABASE_URL`.
pub fn postgres_url(v: &str) -> Result<SecretUrl, String> {
    if v.starts_with("postgres://") || v.starts_with("postgresql://") {
        Ok(SecretUrl::new(v.to_owned()))
    } else {
        Err("expected a postgres:// URL".into())
    }
}

/// `REDIS_URL`.
pub fn redis_url(v: &str) -> Result<SecretUrl, String> {
    if v.starts_with("redis://") || v.starts_with("rediss://") {
        Ok(SecretUrl::new(v.to_owned()))
    } else {
        Err("expected a redis:// or rediss:// URL".into())
    }
}

/// `ROTOR_LISTEN`.
pub fn listen(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| "expected host:port, e.g. 0.0.0.0:8080".into())
}

/// A 32-byte base64 key (standard or URL-safe alphabet, padding optional). Shared by
/// clap (an `Arc`: parsed values must be `Clone`, the key is not).
pub fn master_key(v: &str) -> Result<Arc<MasterKey>, String> {
    decode_master_key(v).map(Arc::new)
}

/// Decodes a master key; the decoded bytes are wiped once copied into the key.
pub fn decode_master_key(v: &str) -> Result<MasterKey, String> {
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let bytes = engines
        .iter()
        .find_map(|e| e.decode(v).ok().map(Zeroizing::new))
        .ok_or("expected 32 bytes encoded as base64 (`openssl rand -base64 32`)")?;
    if bytes.len() != 32 {
        return Err(format!("expected 32 bytes, got {}", bytes.len()));
    }
    Ok(MasterKey::init(|key| key.copy_from_slice(&bytes)))
}

/// `ROTOR_JWT_SECRET`: at least 32 bytes, used as they are.
pub fn jwt_secret(v: &str) -> Result<Arc<JwtSecret>, String> {
    if v.len() < 32 {
        return Err("must be at least 32 bytes".into());
    }
    Ok(Arc::new(JwtSecret::new(v.as_bytes().to_vec())))
}

/// A secret kept as text (`ROTOR_LICENSE`, `ROTOR_METRICS_TOKEN`).
pub fn secret(v: &str) -> Result<secrecy::SecretString, String> {
    Ok(v.into())
}

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn net(item: &str) -> Option<IpNet> {
    item.parse::<IpNet>()
        .ok()
        .or_else(|| item.parse::<IpAddr>().ok().map(IpNet::from))
}

/// `ROTOR_TRUSTED_PROXIES`: CIDRs or IP addresses, separated by commas or spaces.
pub fn nets(v: &str) -> Result<Vec<IpNet>, String> {
    split_list(v)
        .map(|item| net(item).ok_or_else(|| format!("`{item}` is not a CIDR or IP address")))
        .collect()
}

/// `ROTOR_UPSTREAM_ALLOW`, `ROTOR_UPSTREAM_DENY`: CIDRs, IP addresses and host names
/// (`*` wildcards allowed), separated by commas or spaces.
pub fn rules(v: &str) -> Result<Vec<AddressRule>, String> {
    split_list(v)
        .map(|item| {
            if let Some(net) = net(item) {
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
                Err(format!("`{item}` is not a CIDR, IP address or host name"))
            }
        })
        .collect()
}

/// A duration in seconds, decimals allowed (`120`, `0.5`), above 0 and at most a day.
pub fn seconds(v: &str) -> Result<Duration, String> {
    let secs = v
        .parse::<f64>()
        .map_err(|_| "expected a number of seconds, e.g. 120 or 0.5")?;
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err("expected a number of seconds greater than 0 and at most 86400".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `ROTOR_GATEWAY_MAX_BODY`: a size (see `parse_size`).
pub fn gateway_size(v: &str) -> Result<usize, String> {
    parse_size(v).ok_or_else(|| "expected a size such as 33554432, 32MiB or 512KiB".into())
}

/// `ROTOR_UPSTREAM_MAX_BODY`: a size (see `parse_size`).
pub fn upstream_size(v: &str) -> Result<usize, String> {
    parse_size(v).ok_or_else(|| "expected a size such as 67108864, 64MiB or 512KiB".into())
}

/// A size in bytes, above 0: a whole number, optionally followed by a unit (`b`, `k`/`kb`/
/// `kib`, `m`/`mb`/`mib`, `g`/`gb`/`gib`, any case; all powers of 1024).
fn parse_size(v: &str) -> Option<usize> {
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

/// `ROTOR_USAGE_RETENTION_DAYS`: 1 to 36500 (a hundred years).
pub fn retention_days(v: &str) -> Result<u32, String> {
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=36_500).contains(n))
        .ok_or_else(|| "expected a number of days from 1 to 36500".into())
}

/// `ROTOR_MAX_CONNECTIONS`: 1 to 1000000.
pub fn connections(v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .ok()
        .filter(|n| (1..=1_000_000).contains(n))
        .ok_or_else(|| "expected a number of connections from 1 to 1000000".into())
}

/// `RUST_LOG`: a tracing filter directive list.
pub fn log_filter(v: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(v)
        .map(|_| v.to_owned())
        .map_err(|e| e.to_string())
}
