//! A real koji for the integration tests: tests/realkoji/kojienv.py (PostgreSQL, koji's
//! own hub from its source with nodeimg's hub plugin; on request kojid and mock, or a
//! Kerberos KDC and the hub on https with SPNEGO), run as a child and driven through
//! its stdin.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::node::nodeimg;
use super::require_root;

/// A real koji, up until dropped.
pub struct RealKoji {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub info: Value,
}

impl RealKoji {
    pub fn start() -> RealKoji {
        Self::start_with(&[])
    }

    /// With kojid and mock too, and the Node build tag made of the synthetic buildroot
    /// and `rpms` (the image's packages); the builder plugin runs nodeimg's dnf backend
    /// (livemedia-creator needs anaconda).
    pub fn start_with_kojid(rpms: &[PathBuf]) -> RealKoji {
        let mut args: Vec<OsString> = vec![
            "--kojid".into(),
            "backend = dnf\\nlog_interval = 1\\n".into(),
            "--nodeimg".into(),
            env!("CARGO_BIN_EXE_nodeimg").into(),
        ];
        args.extend(rpms.iter().map(|p| p.as_os_str().to_owned()));
        Self::start_with(&args)
    }

    pub fn start_with(args: &[OsString]) -> RealKoji {
        require_root(); // PostgreSQL runs as its own user; koji's topdir is root's
        let top = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(top.join(".venv/bin/python"))
            .arg(top.join("tests/realkoji/kojienv.py"))
            .arg("serve")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run scripts/setup.sh first: .venv/bin/python");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let info: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("kojienv.py serve said {line:?}; see its stderr"));
        RealKoji {
            child,
            stdin: Some(stdin),
            stdout,
            info,
        }
    }

    pub fn control(&mut self, command: &str) {
        writeln!(self.stdin.as_mut().unwrap(), "{command}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ok", "{command}");
    }

    pub fn field(&self, key: &str) -> &str {
        self.info[key].as_str().unwrap()
    }

    /// `nodeimg koji ARGS` as the release engineer `releng` (content generator access).
    pub fn koji(&self, args: &[&str]) -> Command {
        self.koji_as(args, "user", "password_file")
    }

    pub fn koji_as(&self, args: &[&str], user: &str, password: &str) -> Command {
        let mut cmd = nodeimg();
        cmd.arg("koji").args(args).args([
            "--server",
            self.field("hub"),
            "--user",
            self.field(user),
            "--password-file",
            self.field(password),
            "--retries",
            "1",
            "--retry-interval",
            "0.1",
        ]);
        cmd
    }

    /// A hub method called as the admin, through nodeimg's own client.
    pub fn admin(&self, method: &str, args: &[&str]) -> Value {
        let mut call = vec!["call", method];
        call.extend_from_slice(args);
        json_out(
            &self
                .koji_as(&call, "admin", "admin_password_file")
                .output()
                .unwrap(),
        )
    }
}

impl Drop for RealKoji {
    fn drop(&mut self) {
        // End of input: the harness stops kojid, the hub and the database and removes
        // its tree; it is killed only when it does not manage that in time.
        drop(self.stdin.take());
        // A farm stops kojira, two kojid hosts (15 s each at most), httpd and the
        // database.
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let root = self.info["root"].as_str().unwrap_or("").to_owned();
        if root.starts_with("/var/tmp/nodeimg-realkoji-") {
            let _ = fs::remove_dir_all(&root);
        }
    }
}

impl RealKoji {
    /// koji's own CLI (PyPI) with nodeimg's CLI plugin, as `releng`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(self.field("koji_cli"))
            .args(["-c", self.field("cli_config"), "-p", self.field("profile")])
            .args([
                "--user",
                self.field("user"),
                "--password",
                self.field("password"),
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A build tag for x86_64 and a target building from it into `node-candidate`.
    pub fn node_target(&self) {
        self.admin("createTag", &["node-build", "--kwarg", "arches=x86_64"]);
        self.admin("createTag", &["node-candidate"]);
        self.admin(
            "createBuildTarget",
            &["node-target", "node-build", "node-candidate"],
        );
        self.admin(
            "grantPermission",
            &["releng", "image", "--kwarg", "create=true"],
        );
    }

    pub fn task_count(&self) -> usize {
        self.admin("listTasks", &[]).as_array().unwrap().len()
    }
}

pub fn json_out(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
