//! The embedded default: with no `DATABASE_URL`, Rotor runs a private PostgreSQL from the
//! machine's own binaries and keeps generated secrets beside it, so `rotor serve` alone gives a
//! working, persistent instance. PostgreSQL refuses to run as root, so as root the cluster lives
//! under `/var/lib/rotor/<id>` owned by the `postgres` account, recorded in the data directory.

use anyhow::{bail, Context};
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// Secrets generated on first start and reused afterwards.
#[derive(Serialize, Deserialize)]
pub struct Secrets {
    /// Base64 master key.
    pub master_key: String,
    /// JWT signing secret.
    pub jwt_secret: String,
    /// Password of the `rotor` database role.
    pub db_password: String,
}

/// A running private PostgreSQL.
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    pgdata: PathBuf,
    as_postgres: bool,
    url: String,
}

fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Whether this process runs as root (PostgreSQL then runs as the `postgres` account).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Finds a directory holding `initdb`, `pg_ctl` and `postgres`: PATH first, then the newest
/// `/usr/lib/postgresql/*/bin`.
fn find_bin_dir() -> anyhow::Result<PathBuf> {
    let has_all = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                if let Some(parent) = real.parent() {
                    if has_all(parent) {
                        return Ok(parent.to_path_buf());
                    }
                }
                if has_all(&dir) {
                    return Ok(dir);
                }
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            Some((
                e.file_name().to_str()?.parse::<u32>().ok()?,
                e.path().join("bin"),
            ))
        })
        .filter(|(_, d)| has_all(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d).context(
        "no PostgreSQL found for the embedded default (install PostgreSQL, e.g. `apt-get install postgresql`, or set DATABASE_URL)",
    )
}

async fn run(cmd: &mut Command, what: &str) -> anyhow::Result<std::process::Output> {
    let out = cmd
        .output()
        .await
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .trim()
        );
    }
    Ok(out)
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free local port")?;
    Ok(l.local_addr()?.port())
}

impl EmbeddedPostgres {
    /// The connection URL of the running cluster's `rotor` database.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin_dir.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
                .arg(exe);
            c
        } else {
            Command::new(exe)
        };
        if let Some(parent) = self.pgdata.parent() {
            cmd.current_dir(parent);
        }
        cmd.env_remove("PGDATA").env("LC_ALL", "C");
        cmd
    }

    /// Starts (creating on first use) the cluster for `data_dir` and returns it with the secrets.
    pub async fn start(data_dir: &Path) -> anyhow::Result<(Self, Secrets)> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create ROTOR_DATA_DIR {}", data_dir.display()))?;
        let data_dir = std::fs::canonicalize(data_dir)?;
        set_mode(&data_dir, 0o700)?;
        let secrets = load_or_create_secrets(&data_dir.join("secrets.json"))?;
        let bin_dir = find_bin_dir()?;
        let as_postgres = is_root();

        let cluster = if as_postgres {
            ensure_postgres_user().await?;
            let id = hex(&Sha256::digest(data_dir.to_string_lossy().as_bytes())[..8]);
            let cluster = PathBuf::from("/var/lib/rotor").join(id);
            std::fs::create_dir_all(&cluster)
                .with_context(|| format!("cannot create {}", cluster.display()))?;
            set_mode(Path::new("/var/lib/rotor"), 0o755)?;
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&cluster),
                "chown",
            )
            .await?;
            set_mode(&cluster, 0o700)?;
            std::fs::write(
                data_dir.join("cluster-location"),
                format!("{}\n", cluster.display()),
            )?;
            cluster
        } else {
            data_dir.join("postgres")
        };
        std::fs::create_dir_all(&cluster)?;
        let pgdata = cluster.join("pgdata");
        let mut pg = EmbeddedPostgres {
            bin_dir,
            pgdata,
            as_postgres,
            url: String::new(),
        };

        if !pg.pgdata.join("PG_VERSION").is_file() {
            tracing::warn!(cluster = %cluster.display(), "embedded default: creating a private PostgreSQL cluster");
            let pwfile = cluster.join(".pwfile");
            write_secret(&pwfile, format!("{}\n", secrets.db_password).as_bytes())?;
            if as_postgres {
                run(
                    Command::new("chown")
                        .args(["postgres:postgres"])
                        .arg(&pwfile),
                    "chown",
                )
                .await?;
            }
            let result = run(
                pg.command("initdb")
                    .arg("-D")
                    .arg(&pg.pgdata)
                    .args([
                        "-U",
                        "rotor",
                        "-E",
                        "UTF8",
                        "--no-locale",
                        "--auth=scram-sha-256",
                    ])
                    .arg(format!("--pwfile={}", pwfile.display())),
                "initdb",
            )
            .await;
            let _ = std::fs::remove_file(&pwfile);
            result?;
        }

        // A previous run that crashed may have left a server running or a stale pid file.
        if pg.pgdata.join("postmaster.pid").exists() {
            let status = pg
                .command("pg_ctl")
                .arg("status")
                .arg("-D")
                .arg(&pg.pgdata)
                .output()
                .await?;
            if status.status.success() {
                tracing::warn!(
                    "embedded PostgreSQL from an earlier run is still up; restarting it"
                );
                pg.stop_inner().await?;
            } else {
                tracing::warn!("removing a stale postmaster.pid left by a crash");
                let _ = std::fs::remove_file(pg.pgdata.join("postmaster.pid"));
            }
        }

        let port = free_port()?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='{}'",
            cluster.display()
        );
        run(
            pg.command("pg_ctl")
                .arg("start")
                .arg("-D")
                .arg(&pg.pgdata)
                .args(["-w", "-t", "60", "-s"])
                .arg("-l")
                .arg(cluster.join("postgres.log"))
                .arg("-o")
                .arg(options),
            "pg_ctl start",
        )
        .await?;
        let admin_url = format!(
            "postgres://rotor:{}@127.0.0.1:{port}/postgres",
            urlencode(&secrets.db_password)
        );
        let admin = rotor_storage::connect(&admin_url, 1)
            .await
            .context("cannot connect to the embedded PostgreSQL")?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'rotor')")
                .fetch_one(&admin)
                .await?;
        if !exists {
            sqlx::query("CREATE DATABASE rotor").execute(&admin).await?;
        }
        admin.close().await;
        pg.url = format!(
            "postgres://rotor:{}@127.0.0.1:{port}/rotor",
            urlencode(&secrets.db_password)
        );
        tracing::warn!(
            data_dir = %data_dir.display(),
            cluster = %cluster.display(),
            port,
            "EMBEDDED DEFAULT: no DATABASE_URL, so Rotor runs its own PostgreSQL and keeps generated \
             secrets in ROTOR_DATA_DIR/secrets.json. Back that directory up. For production set DATABASE_URL, \
             ROTOR_MASTER_KEY and ROTOR_JWT_SECRET."
        );
        Ok((pg, secrets))
    }

    async fn stop_inner(&self) -> anyhow::Result<()> {
        run(
            self.command("pg_ctl")
                .arg("stop")
                .arg("-D")
                .arg(&self.pgdata)
                .args(["-m", "fast", "-w", "-s"]),
            "pg_ctl stop",
        )
        .await
        .map(|_| ())
    }

    /// Stops the cluster (fast shutdown: open sessions are ended, data is flushed).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop_inner().await
    }
}

fn load_or_create_secrets(path: &Path) -> anyhow::Result<Secrets> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid", path.display()));
    }
    let secrets = Secrets {
        master_key: random_b64(32),
        jwt_secret: random_b64(48),
        db_password: hex(&{
            let mut b = [0u8; 24];
            rand::thread_rng().fill_bytes(&mut b);
            b
        }),
    };
    let tmp = path.with_extension("tmp");
    write_secret(&tmp, &serde_json::to_vec_pretty(&secrets)?)?;
    std::fs::rename(&tmp, path)?;
    tracing::warn!(path = %path.display(), "generated a master key and a JWT secret for the embedded default");
    Ok(secrets)
}

/// Writes a file holding a secret, created with mode 0600 from the start (never written and
/// then narrowed, which would leave a window where others can read it).
pub fn write_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // A leftover file keeps its old mode when opened: start from a new one.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

async fn ensure_postgres_user() -> anyhow::Result<()> {
    let exists = Command::new("id")
        .arg("-u")
        .arg("postgres")
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    if !exists {
        run(
            Command::new("useradd").args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "postgres",
            ]),
            "useradd postgres",
        )
        .await?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set permissions of {}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
