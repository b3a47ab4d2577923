//! `vouchsafe serve` as a child process, for the tests that need the real binary (signals, kill -9).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vouchsafe_proto::v1::matching_client::MatchingClient;

pub mod scenario;

/// A running `vouchsafe serve` and the address it reported.
pub struct ServerProc {
    pub child: Child,
    pub addr: String,
}

impl Drop for ServerProc {
    /// A test that fails midway must not leave its server running (it would hold the test's files, its port and
    /// any lock the test runner's parent holds).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `vouchsafe args…` (no `VOUCHSAFE_TOKEN` from the environment), its stderr appended to `log`, and waits
/// (bounded, 60 s each) for one stdout line per prefix, in order; returns the process (killed on drop) and each
/// line with its prefix cut. `addr` is the first of them.
pub fn spawn_reporting(args: &[&str], log: &Path, prefixes: &[&str]) -> (ServerProc, Vec<String>) {
    spawn_reporting_env(args, log, prefixes, &[])
}

/// [`spawn_reporting`] with these environment variables set.
pub fn spawn_reporting_env(
    args: &[&str],
    log: &Path,
    prefixes: &[&str],
    env: &[(&str, &str)],
) -> (ServerProc, Vec<String>) {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap_or_else(|e| panic!("log: {e}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouchsafe"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("VOUCHSAFE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let (tx, rx) = std::sync::mpsc::channel();
    let n = prefixes.len();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for _ in 0..n {
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
        }
        for _ in lines {} // drain
    });
    let mut proc = ServerProc { child, addr: String::new() };
    let mut out = Vec::with_capacity(n);
    for p in prefixes {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            panic!("vouchsafe {args:?} did not print {p:?} within 60 s");
        };
        out.push(line.strip_prefix(p).unwrap_or_else(|| panic!("expected {p:?}, got {line:?}")).trim().to_owned());
    }
    proc.addr = out.first().cloned().unwrap_or_default();
    (proc, out)
}

/// Starts `vouchsafe serve --config`, its stderr to `log`, and waits (bounded) for the address it prints.
pub fn spawn_server(config_path: &Path, log: &Path) -> ServerProc {
    let _ = std::fs::remove_file(log);
    let config = config_path.to_str().unwrap_or_else(|| panic!("config path is not UTF-8"));
    spawn_reporting(&["serve", "--config", config], log, &["vouchsafe: listening on "]).0
}

/// SIGKILL, and waits for the process to be gone.
pub fn sigkill(mut p: ServerProc) {
    p.child.kill().unwrap_or_else(|e| panic!("kill: {e}"));
    p.child.wait().unwrap_or_else(|e| panic!("wait: {e}"));
}

/// SIGTERM, then waits (bounded) for a graceful exit with status 0.
pub fn terminate(mut p: ServerProc) {
    let pid = p.child.id().to_string();
    let ok = Command::new("kill").args(["-TERM", &pid]).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "could not send SIGTERM");
    let start = Instant::now();
    loop {
        match p.child.try_wait() {
            Ok(Some(status)) => {
                assert!(status.success(), "graceful shutdown exits 0, got {status}");
                return;
            }
            Ok(None) if start.elapsed() < Duration::from_secs(30) => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = p.child.kill();
                panic!("the server did not stop within 30 s of SIGTERM");
            }
        }
    }
}

/// Connects to `addr`, retrying for up to 20 s.
pub async fn connect(addr: &str) -> MatchingClient<tonic::transport::Channel> {
    let start = Instant::now();
    loop {
        match MatchingClient::connect(format!("http://{addr}")).await {
            Ok(c) => return c,
            Err(e) if start.elapsed() > Duration::from_secs(20) => panic!("connect: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Runs the binary with `args` (no `VOUCHSAFE_TOKEN` from the environment), bounded to 120 s.
pub fn vouchsafe(args: &[&str]) -> Output {
    vouchsafe_with_token(args, None)
}

/// As [`vouchsafe`], with `VOUCHSAFE_TOKEN` set to `token` if given.
pub fn vouchsafe_with_token(args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouchsafe"));
    cmd.args(args).env_remove("VOUCHSAFE_TOKEN");
    if let Some(t) = token {
        cmd.env("VOUCHSAFE_TOKEN", t);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let start = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("vouchsafe {args:?} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap_or_else(|e| panic!("{e}"))
}

/// The one line a failing command prints on stderr.
pub fn stderr_line(o: &Output) -> String {
    let s = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(s.trim_end().lines().count(), 1, "exactly one line on stderr: {s:?}");
    assert!(s.starts_with("vouchsafe: "), "{s:?}");
    s
}
