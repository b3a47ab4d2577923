//! `vouchsafe serve` as a child process, for the tests that need the real binary (signals, kill -9).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vouchsafe_proto::v1::matching_client::MatchingClient;

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

/// Starts `vouchsafe serve --config`, its stderr to `log`, and waits (bounded) for the address it prints.
pub fn spawn_server(config_path: &Path, log: &Path) -> ServerProc {
    let log = std::fs::File::create(log).unwrap_or_else(|e| panic!("log: {e}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouchsafe"))
        .arg("serve")
        .arg("--config")
        .arg(config_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {} // drain
    });
    let line = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            panic!("the server did not report its address within 60 s");
        }
    };
    let addr = line
        .strip_prefix("vouchsafe: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .trim()
        .to_owned();
    ServerProc { child, addr }
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
