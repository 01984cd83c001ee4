//! Processes the tests start: the real `rotor` binary, and private Redis and PostgreSQL
//! servers for the tests that stop them.

use super::app::TestApp;
use super::http::Req;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A free TCP port on 127.0.0.1 for a child process to bind. Taken outside the kernel's
/// ephemeral range, so servers that bind port 0 in parallel tests cannot grab it meanwhile.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = (std::process::id() % 1000) as u16 * 20;
    for _ in 0..2000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 10_000 + (seed + n) % 20_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 10000..30000");
}

/// Path of a binary built by `scripts/test` (`cargo build --workspace --bins`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/it-<hash> → target/debug/<name>
    let dir = exe.parent().and_then(|p| p.parent()).unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build with `cargo build --workspace --bins` (scripts/test does)",
        path.display()
    );
    path
}

/// The `rotor` binary with `args` and exactly `vars` (plus PATH) in its environment.
pub fn rotor_command(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(binary("rotor"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to its end; it must succeed (its stderr is the failure message).
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A temporary file name for `label`.
pub fn temp_path(label: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rotor-{label}-{}", Uuid::new_v4().simple()))
}

/// Polls `child` until it exits, for at most `limit`; `None` when it is still running.
pub async fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the `rotor` binary with `args` and exactly `vars` (plus PATH) to its end (killed after
/// a minute): (status, stdout, stderr). Output goes through files, so a chatty process never
/// blocks on a full pipe.
pub async fn rotor_output(args: &[&str], vars: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let (out, err) = (temp_path("stdout"), temp_path("stderr"));
    let mut child = rotor_command(args, vars)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start rotor");
    let read = |path: &PathBuf| {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
        let _ = std::fs::remove_file(path);
        text
    };
    let limit = Duration::from_secs(60);
    let Some(status) = wait_exit(&mut child, limit).await else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "rotor {args:?} did not exit within {limit:?}; stderr: {}",
            read(&err)
        );
    };
    (status, read(&out), read(&err))
}

/// A `rotor serve` process of the real binary; killed when dropped.
pub struct RotorProcess {
    pub child: Child,
    pub port: u16,
    /// Where its stdout and stderr go, when kept.
    log: Option<PathBuf>,
}

impl RotorProcess {
    /// Starts `rotor serve` with exactly `vars` (plus PATH, `RUST_LOG=warn` unless given) and
    /// waits until it is ready; its output is discarded.
    pub async fn start(vars: &[(&str, String)]) -> Self {
        Self::launch(vars, false).await
    }

    /// Like [`RotorProcess::start`], keeping its stdout and stderr (in one file) for
    /// [`RotorProcess::output`].
    pub async fn start_logged(vars: &[(&str, String)]) -> Self {
        Self::launch(vars, true).await
    }

    async fn launch(vars: &[(&str, String)], logged: bool) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = rotor_command(
            &["serve"],
            &[("ROTOR_LISTEN", &listen), ("RUST_LOG", "warn")],
        );
        cmd.envs(vars.iter().map(|(k, v)| (*k, v.as_str())));
        let log = logged.then(|| temp_path("serve.log"));
        match &log {
            Some(path) => {
                let file = std::fs::File::create(path).unwrap();
                cmd.stdout(file.try_clone().unwrap()).stderr(file);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = cmd.spawn().expect("start rotor");
        let mut rotor = Self { child, port, log };
        rotor.wait_ready().await;
        rotor
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        // The embedded PostgreSQL's first start (initdb) takes a while.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(r) = client.get(self.url("/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("rotor exited during startup ({status}): {}", self.output());
            }
            assert!(Instant::now() < deadline, "rotor did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// A request to this server.
    pub fn req(&self, method: reqwest::Method, path: &str) -> Req {
        Req::new(
            &reqwest::Client::new(),
            ([127, 0, 0, 1], self.port).into(),
            method,
            path,
        )
    }

    /// A client for this server, on the database at `database_url`.
    pub async fn app(&self, database_url: &str) -> TestApp {
        let db = sqlx::PgPool::connect(database_url).await.unwrap();
        TestApp::attach(([127, 0, 0, 1], self.port).into(), database_url, db)
    }

    /// Everything it printed so far (empty unless started with `start_logged`).
    pub fn output(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "rotor did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RotorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(log) = &self.log {
            let _ = std::fs::remove_file(log);
        }
    }
}

/// A private `redis-server` on a free port, for tests that stop it.
pub struct RedisProcess {
    pub child: Option<Child>,
    pub port: u16,
}

impl RedisProcess {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (scripts/test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child: Some(child),
            port,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `redis-cli` against this server.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private PostgreSQL for tests that stop it (run as the `postgres` account when root).
pub struct PgProcess {
    pub dir: std::path::PathBuf,
    pub port: u16,
    bin: std::path::PathBuf,
}

impl PgProcess {
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        let mut c = if rotor_api::embedded::is_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
                .arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// Creates and starts a cluster on a free port.
    pub fn start() -> Self {
        let bin = std::path::PathBuf::from(
            std::env::var("ROTOR_TEST_PG_BIN").expect("ROTOR_TEST_PG_BIN: run scripts/test"),
        );
        let dir = std::env::temp_dir().join(format!("rotor-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if rotor_api::embedded::is_root() {
            assert!(Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap()
                .success());
        }
        let pg = Self {
            dir,
            port: free_port(),
            bin,
        };
        let data = pg.dir.join("data");
        assert!(pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync"])
            .status()
            .unwrap()
            .success());
        pg.resume();
        pg
    }

    /// `postgres://…` of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (as a crash or an outage would).
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w"])
            .status();
    }

    /// Starts (again) on the same port.
    pub fn resume(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let ok = self
            .command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "-t", "30", "-l"])
            .arg(self.dir.join("log"))
            .arg("-o")
            .arg(options)
            .status()
            .unwrap()
            .success();
        assert!(ok, "postgres did not start");
    }
}

impl Drop for PgProcess {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
