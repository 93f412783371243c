//! The processes a chaos run starts, all its own (free ports, its own files), stopped when the
//! run ends whatever happens: a private PostgreSQL server (`initdb` as the `postgres` user), a
//! private `redis-server`, the gateway's processes, and the webhook receivers.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::Context as _;

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A child process, killed when dropped.
pub struct Proc {
    pub name: String,
    pub child: Option<Child>,
    pub port: u16,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Proc {
    /// Starts `argv` with `env`, its output appended to `log`.
    pub fn spawn(
        name: &str,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        port: u16,
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let mut p = Self {
            name: name.to_owned(),
            child: None,
            port,
            argv,
            env,
            log,
        };
        p.start()?;
        Ok(p)
    }

    /// (Re)starts the process.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} ({})", self.name, self.argv[0]))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, and reaped.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([signal, &pid.to_string()])
                .status();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A stopped process cannot die of SIGKILL until it runs again... it can: SIGKILL works
        // on stopped processes. Continue it anyway so nothing stays frozen.
        self.signal("-CONT");
        self.kill9();
    }
}

/// Waits until `url` answers 2xx (at most `within`).
pub async fn wait_http(url: &str, within: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{url} did not answer"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A private PostgreSQL server in `dir`, on a free port, run as the `postgres` user.
pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
}

fn as_postgres(args: &[&str]) -> anyhow::Result<()> {
    let bin = postgres_bin()?;
    let program = bin.join(args[0]);
    let status = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "{} failed", args[0]);
    Ok(())
}

/// Where the PostgreSQL server's programs are (`/usr/lib/postgresql/N/bin`).
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .context("no PostgreSQL server programs under /usr/lib/postgresql")
}

impl Postgres {
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let dir = dir.join("pg");
        std::fs::create_dir_all(&dir)?;
        let chown = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&dir)
            .status()?;
        anyhow::ensure!(chown.success(), "chown failed");
        let data = dir.join("data");
        let data_s = data.to_string_lossy().into_owned();
        as_postgres(&[
            "initdb",
            "-D",
            &data_s,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ])?;
        let pg = Self { port, dir };
        pg.run_ctl("start")?;
        Ok(pg)
    }

    fn run_ctl(&self, what: &str) -> anyhow::Result<()> {
        let data = self.dir.join("data").to_string_lossy().into_owned();
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.to_string_lossy()
        );
        as_postgres(&[
            "pg_ctl", "-D", &data, "-l", &log, "-o", &opts, "-w", "-m", "fast", what,
        ])
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops and starts the server (connections drop; nothing committed is lost).
    pub fn restart(&self) -> anyhow::Result<()> {
        self.run_ctl("restart")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.run_ctl("stop");
    }
}
