//! The `rotor` command line: `serve`, `migrate`, `openapi`, `healthcheck`.

use crate::config::{Config, JwtSecret, LogFormat, SecretUrl};
use crate::embedded::EmbeddedPostgres;
use crate::startup::{shutdown_signal, Application};
use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;
use std::sync::Arc;

/// Rotor: pooled LLM provider credentials with load balancing and an OpenAI-compatible gateway.
#[derive(Parser)]
#[command(name = "rotor", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (with no DATABASE_URL: the embedded default, a private PostgreSQL).
    Serve(Box<Config>),
    /// Apply database migrations and exit.
    Migrate {
        /// Database to migrate.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// The vendor's license tools.
    License {
        #[command(subcommand)]
        command: LicenseCommand,
    },
    /// Master-key maintenance.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the OpenAPI document (JSON) on stdout.
    Openapi,
    /// Exit 0 when the local server answers /healthz (for container health checks).
    Healthcheck {
        /// URL to probe; defaults to /healthz on ROTOR_LISTEN's port at 127.0.0.1.
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Subcommand)]
enum LicenseCommand {
    /// Write a new Ed25519 private key (PKCS#8 PEM) to FILE and print its public key.
    Keygen {
        /// Where to write the private key (created with mode 0600; must not exist).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Sign a license with a private key and print the token.
    Issue {
        /// The Ed25519 private key, a PKCS#8 PEM of version 1 (`rotor license keygen`,
        /// `openssl genpkey -algorithm ed25519`) or 2 (with the public key).
        #[arg(long)]
        key: std::path::PathBuf,
        /// Licensee name.
        #[arg(long)]
        licensee: String,
        /// Granted features, comma-separated (e.g. load_balancing).
        #[arg(long, value_delimiter = ',')]
        features: Vec<String>,
        /// Expiry: YYYY-MM-DD (end of that day, UTC) or RFC 3339.
        #[arg(long)]
        expires: String,
        /// Edition name.
        #[arg(long)]
        edition: Option<String>,
        /// Most workspaces the instance may hold.
        #[arg(long)]
        max_workspaces: Option<u64>,
    },
    /// Print a token's claims and status against the key this binary trusts; exit 0 only if valid.
    Verify {
        /// The license token.
        token: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Re-wrap every workspace data key under ROTOR_MASTER_KEY (the old key goes in
    /// ROTOR_MASTER_KEY_PREVIOUS); afterwards the previous key is no longer needed.
    Rewrap(Box<Config>),
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rotor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

/// The command line, blank settings unset; a bad setting is one line naming its variable
/// (exit status 2, as for clap's own usage errors).
fn parse() -> Result<Cli, ExitCode> {
    let argv = crate::config::drop_blank_flags(std::env::args_os().collect());
    let parsed = crate::config::unset_blank_env(Cli::command())
        .try_get_matches_from(argv)
        .and_then(|m| Cli::from_arg_matches(&m));
    parsed.map_err(|e| {
        if let Some(bad) = crate::config::value_error(&Config::command(), &e) {
            eprintln!("rotor: {bad}");
            return ExitCode::from(2);
        }
        let _ = e.print();
        ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
    })
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate { database_url } => {
            let filter = std::env::var("RUST_LOG");
            let filter = filter
                .as_deref()
                .unwrap_or(crate::telemetry::DEFAULT_FILTER);
            crate::telemetry::init(LogFormat::Pretty, filter);
            let result = async {
                let pool = rotor_storage::connect(&database_url, 2).await?;
                rotor_storage::migrate(&pool).await?;
                anyhow::Ok(())
            };
            report(result.await.map(|()| println!("migrations applied")))
        }
        Command::Openapi => match serde_json::to_string_pretty(&crate::app::openapi()) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => report(Err(e.into())),
        },
        Command::Healthcheck { url } => healthcheck(url).await,
        Command::Keys {
            command: KeysCommand::Rewrap(args),
        } => rewrap(*args).await,
        Command::License { command } => license(command),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rotor: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Validated settings, with the embedded PostgreSQL started when there is no DATABASE_URL.
async fn prepare(config: Config) -> Result<(Config, Option<EmbeddedPostgres>), ExitCode> {
    let mut config = config.finish().map_err(|e| {
        eprintln!("rotor: {e}");
        ExitCode::from(2)
    })?;
    crate::telemetry::init(config.log_format, &config.log_filter);
    if config.database_url.is_some() {
        return Ok((config, None));
    }
    let (pg, secrets) = EmbeddedPostgres::start(&config.data_dir)
        .await
        .map_err(|e| report(Err(e.context("embedded default"))))?;
    config.database_url = Some(SecretUrl::new(pg.url().to_owned()));
    config.embedded = true;
    if config.master_key.is_none() {
        let key = crate::config::decode_master_key(&secrets.master_key).map_err(|why| {
            let e = anyhow::anyhow!("invalid ROTOR_DATA_DIR/secrets.json master_key: {why}");
            report(Err(e))
        })?;
        config.master_key = Some(Arc::new(key));
    }
    if config.jwt_secret.is_none() {
        let secret = JwtSecret::new(secrets.jwt_secret.into_bytes());
        config.jwt_secret = Some(Arc::new(secret));
    }
    Ok((config, Some(pg)))
}

async fn stop_embedded(embedded: Option<EmbeddedPostgres>) {
    if let Some(pg) = embedded {
        if let Err(e) = pg.stop().await {
            tracing::warn!(error = %format!("{e:#}"), "embedded PostgreSQL did not stop cleanly");
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    // Before anything starts (the embedded PostgreSQL included): a SIGTERM from then on is a
    // clean stop, at the latest once the instance is up.
    let stop = match shutdown_signal().context("cannot install the SIGTERM handler") {
        Ok(stop) => stop,
        Err(e) => return report(Err(e)),
    };
    let (config, embedded) = match prepare(config).await {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let result = async {
        let app = Application::build(config).await?;
        tracing::info!(address = %app.local_addr()?, "rotor listening");
        app.run_until_stopped(stop).await?;
        tracing::info!("rotor stopped");
        anyhow::Ok(())
    }
    .await;
    stop_embedded(embedded).await;
    report(result)
}

async fn rewrap(config: Config) -> ExitCode {
    let (config, embedded) = match prepare(config).await {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let result = async {
        let keyring = crate::startup::keyring(&config)?;
        let url = config.database_url.as_ref().map(SecretUrl::expose);
        let pool = rotor_storage::connect(url.unwrap_or_default(), 2).await?;
        rotor_storage::migrate(&pool).await?;
        let missing = rotor_storage::credentials::missing_key_ids(&pool, &keyring).await?;
        if let Some(id) = missing.first() {
            anyhow::bail!("workspace keys are wrapped by master key {id}: set it as ROTOR_MASTER_KEY_PREVIOUS");
        }
        let count = rotor_storage::credentials::rewrap_all(&pool, &keyring).await?;
        println!("re-wrapped {count} workspace key(s) under master key {}", keyring.current_id());
        anyhow::Ok(())
    }
    .await;
    stop_embedded(embedded).await;
    report(result)
}

fn parse_expiry(value: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("--expires must be YYYY-MM-DD or RFC 3339, got {value:?}"))?;
    let end = day
        .and_hms_opt(23, 59, 59)
        .ok_or_else(|| anyhow::anyhow!("invalid date"))?;
    Ok(end.and_utc())
}

fn license(command: LicenseCommand) -> ExitCode {
    use crate::license::{issue, keygen, Claims, Verdict, Verifier};
    match command {
        LicenseCommand::Keygen { out } => report((|| {
            let (pem, public) = keygen()?;
            write_private(&out, pem.as_bytes())?;
            println!("{public}");
            eprintln!("rotor: private key written to {} (keep it secret); build with ROTOR_LICENSE_PUBKEY={public}", out.display());
            anyhow::Ok(())
        })()),
        LicenseCommand::Issue {
            key,
            licensee,
            features,
            expires,
            edition,
            max_workspaces,
        } => report((|| {
            let pem = std::fs::read(&key)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", key.display()))?;
            let now = chrono::Utc::now().timestamp();
            let claims = Claims {
                sub: licensee,
                edition,
                features: features
                    .into_iter()
                    .map(|f| f.trim().to_owned())
                    .filter(|f| !f.is_empty())
                    .collect(),
                max_workspaces,
                iat: now,
                exp: parse_expiry(&expires)?.timestamp(),
                jti: Some(uuid::Uuid::new_v4().to_string()),
            };
            println!("{}", issue(&pem, &claims)?);
            anyhow::Ok(())
        })()),
        LicenseCommand::Verify { token } => {
            let verifier = match Verifier::trusted() {
                Ok(v) => v,
                Err(e) => return report(Err(e)),
            };
            let (status, claims) = match verifier.verify(&token, chrono::Utc::now()) {
                Verdict::Valid(c) => ("valid", Some(c)),
                Verdict::Expired(c) => ("expired", Some(c)),
                Verdict::Invalid => ("invalid", None),
            };
            let out = serde_json::json!({ "status": status, "trusted_key_id": verifier.key_id(), "claims": claims });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            if status == "valid" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Writes a private key to a new file, created with mode 0600 (never an existing file, which
/// would keep its mode; never written and then narrowed). A failed write leaves no file.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = std::fs::remove_file(path);
        anyhow::bail!("cannot write {}: {e}", path.display());
    }
    Ok(())
}

async fn healthcheck(url: Option<String>) -> ExitCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = url.unwrap_or_else(|| {
        let port = std::env::var("ROTOR_LISTEN")
            .ok()
            .and_then(|l| l.parse::<std::net::SocketAddr>().ok())
            .map_or(8080, |a| a.port());
        format!("http://127.0.0.1:{port}/healthz")
    });
    let Some(rest) = url.strip_prefix("http://") else {
        eprintln!("rotor: healthcheck supports http:// URLs only");
        return ExitCode::FAILURE;
    };
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(host).await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await?;
        std::io::Result::Ok(buf)
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), probe).await {
        Ok(Ok(buf)) if buf.starts_with(b"HTTP/1.1 200") => ExitCode::SUCCESS,
        _ => {
            eprintln!("rotor: {url} is not healthy");
            ExitCode::FAILURE
        }
    }
}
