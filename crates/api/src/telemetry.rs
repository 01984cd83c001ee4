//! Log setup: `RUST_LOG` filtering, JSON or pretty lines (`ROTOR_LOG_FORMAT`).

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// Installs the global subscriber; later calls are ignored (tests build several apps). A
/// filter that does not parse (only `rotor migrate` passes one unchecked) falls back to
/// [`DEFAULT_FILTER`].
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
