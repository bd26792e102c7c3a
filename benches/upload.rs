//! Uploading 1 GiB to the same hub in one run: `nodeimg koji upload` against koji's
//! Python client (`koji.ClientSession.uploadWrapper`, the koji package from PyPI), at
//! koji's default 1 MiB chunks and at larger ones. The hub is tests/kojihub/testhub.py
//! (koji's marshalling, adler32 per chunk, files written to disk) on loopback, so both
//! clients pay the same per-request cost on the server side. Fastest of ROUNDS; peak
//! RSS of each client. Run: `cargo bench --bench upload` (after `scripts/setup.sh`).
//!
//! `NODEIMG_BENCH_HUB=real` uploads to a real kojihub instead (tests/realkoji/kojienv.py:
//! koji's hub from its source on PostgreSQL under httpd with mod_wsgi, as root): what a
//! release engineer's upload meets.
//!
//! Then a release: the image and its update RPM (1 GiB each), as `nodeimg koji import`
//! sends them (`nodeimg koji upload` of both: several files at once on subsessions),
//! against koji's client uploading the same two files one after the other at its
//! defaults.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::timed;

const ROUNDS: usize = 3;
const SIZE: u64 = 1 << 30;

const PYTHON_CLIENT: &str = r#"
import sys, koji
url, user, password, directory, blocksize = sys.argv[1:6]
session = koji.ClientSession(url, {"max_retries": 0})
session.opts["user"], session.opts["password"] = user, password
session.login()
for path in sys.argv[6:]:
    session.uploadWrapper(path, directory, blocksize=int(blocksize))
session.logout()
"#;

/// A file of SIZE incompressible-looking bytes (xorshift from SEED).
fn random_file(path: &Path, seed: u64) {
    let mut out = fs::File::create(path).unwrap();
    let mut state = seed;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..(SIZE >> 20) {
        for word in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        out.write_all(&block).unwrap();
    }
}

/// Start a hub; its first line of output says where it listens.
fn spawn_hub(cmd: &mut Command) -> (std::process::Child, String) {
    let mut hub = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(hub.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (hub, line)
}

/// Whether `child` exits within `secs` seconds.
fn exits_within(child: &mut std::process::Child, secs: u64) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The fastest of ROUNDS runs of `run(round)`: its wall time and peak RSS.
fn best(mut run: impl FnMut(usize) -> (Duration, u64)) -> (Duration, u64) {
    (0..ROUNDS)
        .map(&mut run)
        .min_by_key(|(elapsed, _)| *elapsed)
        .unwrap()
}

/// The two clients and the hub they upload to.
struct Clients {
    python: PathBuf,
    script: PathBuf,
    nodeimg: PathBuf,
    url: String,
    user: String,
    secret: String,
    password: PathBuf,
    /// The hub's work directory: each run uploads below bench/, emptied first.
    workdir: PathBuf,
}

impl Clients {
    fn clean(&self) {
        let _ = fs::remove_dir_all(self.workdir.join("bench"));
    }

    /// koji's client uploading FILES into bench/DIR one after the other.
    fn python(&self, dir: &str, chunk: usize, files: &[&Path]) -> (Duration, u64) {
        self.clean();
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.script)
            .arg(&self.url)
            .args([&self.user, &self.secret])
            .arg(format!("bench/{dir}"))
            .arg(chunk.to_string())
            .args(files);
        timed(&mut cmd)
    }

    /// `nodeimg koji upload` of FILES into bench/DIR (at once, when several).
    fn nodeimg(&self, dir: &str, chunk: usize, check: &str, files: &[&Path]) -> (Duration, u64) {
        self.clean();
        let mut cmd = Command::new(&self.nodeimg);
        cmd.args([
            "-q", "koji", "upload", "--server", &self.url, "--user", &self.user,
        ])
        .arg("--password-file")
        .arg(&self.password)
        .arg("--path")
        .arg(format!("bench/{dir}"))
        .arg("--chunk-size")
        .arg(chunk.to_string())
        .args(["--final-check", check])
        .args(files);
        timed(&mut cmd)
    }
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "run scripts/setup.sh first");
    let nodeimg = PathBuf::from(env!("CARGO_BIN_EXE_nodeimg"));
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let file = dir.path().join("image.liveimg.squashfs");
    random_file(&file, 0x2545_f491_4f6c_dd1d);
    // The update RPM beside it: as large, other bytes.
    let rpm = dir
        .path()
        .join("ovirt-node-ng-image-update-4.5.6-1.el9.x86_64.rpm");
    random_file(&rpm, 0x9e37_79b9_7f4a_7c15);
    let real = std::env::var("NODEIMG_BENCH_HUB").is_ok_and(|v| v == "real");
    let (mut hub, url, user, secret, workdir) = if real {
        // The real hub: its uploads land in koji's topdir/work.
        let (hub, line) = spawn_hub(
            Command::new(&python)
                .arg(root.join("tests/realkoji/kojienv.py"))
                .arg("serve")
                .stdin(Stdio::piped()),
        );
        let info: serde_json::Value = serde_json::from_str(&line).unwrap();
        let field = |k: &str| info[k].as_str().unwrap().to_owned();
        let workdir = PathBuf::from(field("topdir")).join("work");
        (hub, field("hub"), field("user"), field("password"), workdir)
    } else {
        let workdir = dir.path().join("hub");
        let (hub, line) = spawn_hub(
            Command::new(&python)
                .arg(root.join("tests/kojihub/testhub.py"))
                .arg("--workdir")
                .arg(&workdir)
                .args(["--user", "admin:secret"]),
        );
        let port = line.trim().trim_start_matches("listening on ").to_owned();
        let url = format!("http://127.0.0.1:{port}/kojihub");
        (hub, url, "admin".to_owned(), "secret".to_owned(), workdir)
    };
    let password = dir.path().join("password");
    fs::write(&password, &secret).unwrap();
    let script = dir.path().join("upload.py");
    fs::write(&script, PYTHON_CLIENT).unwrap();

    let clients = Clients {
        python,
        script,
        nodeimg,
        url,
        user,
        secret,
        password,
        workdir,
    };
    let mut results = Vec::new();
    for chunk in [1usize << 20, 8 << 20] {
        let py = best(|round| clients.python(&format!("py-{chunk}-{round}"), chunk, &[&file]));
        // nodeimg with the issue's sha256 end check, then with the size-only check
        // koji's client makes: the transfer alone, without the hub re-reading and
        // hashing the whole file.
        let nodeimg_run = |check: &str| {
            best(|round| {
                clients.nodeimg(
                    &format!("rs-{check}-{chunk}-{round}"),
                    chunk,
                    check,
                    &[&file],
                )
            })
        };
        let ours = nodeimg_run("sha256");
        let size_only = nodeimg_run("size");
        results.push((chunk, py, ours, size_only));
    }
    // A release: both files, koji's client at its defaults (1 MiB, one after the
    // other) against nodeimg at several chunk sizes (both files at once).
    let release_py =
        best(|round| clients.python(&format!("release-py-{round}"), 1 << 20, &[&file, &rpm]));
    let release: Vec<(usize, (Duration, u64))> = [1usize << 20, 4 << 20, 8 << 20, 16 << 20]
        .into_iter()
        .map(|chunk| {
            let ours = best(|round| {
                let dir = format!("release-rs-{chunk}-{round}");
                clients.nodeimg(&dir, chunk, "sha256", &[&file, &rpm])
            });
            (chunk, ours)
        })
        .collect();

    // The real hub's harness cleans up at the end of its input.
    drop(hub.stdin.take());
    if !exits_within(&mut hub, 60) {
        let _ = hub.kill();
    }
    let _ = hub.wait();

    let mib_s = |d: Duration| SIZE as f64 / (1 << 20) as f64 / d.as_secs_f64();
    println!(
        "upload of 1 GiB to {} on loopback, fastest of {ROUNDS}",
        if real {
            "a real kojihub"
        } else {
            "the test hub"
        }
    );
    for (chunk, py, ours, size_only) in &results {
        println!(
            "  {:>2} MiB chunks: koji uploadWrapper {:>6.2} s ({:>5.0} MiB/s, {:>3} MiB RSS) | nodeimg, sha256 check {:>6.2} s ({:>5.0} MiB/s, {:>3} MiB RSS) {:.2}x | nodeimg, size check as koji's {:>6.2} s ({:>5.0} MiB/s, {:>3} MiB RSS) {:.2}x",
            chunk >> 20,
            py.0.as_secs_f64(),
            mib_s(py.0),
            py.1 / 1024,
            ours.0.as_secs_f64(),
            mib_s(ours.0),
            ours.1 / 1024,
            py.0.as_secs_f64() / ours.0.as_secs_f64(),
            size_only.0.as_secs_f64(),
            mib_s(size_only.0),
            size_only.1 / 1024,
            py.0.as_secs_f64() / size_only.0.as_secs_f64(),
        );
    }
    let both_mib_s = |d: Duration| 2.0 * SIZE as f64 / (1 << 20) as f64 / d.as_secs_f64();
    println!(
        "  a release (image + update RPM, 1 GiB each): koji uploadWrapper at its defaults {:>6.2} s ({:>5.0} MiB/s, {:>3} MiB RSS)",
        release_py.0.as_secs_f64(),
        both_mib_s(release_py.0),
        release_py.1 / 1024
    );
    for (chunk, ours) in &release {
        println!(
            "    nodeimg, both at once, {:>2} MiB chunks, sha256 check: {:>6.2} s ({:>5.0} MiB/s, {:>3} MiB RSS) {:.2}x",
            chunk >> 20,
            ours.0.as_secs_f64(),
            both_mib_s(ours.0),
            ours.1 / 1024,
            release_py.0.as_secs_f64() / ours.0.as_secs_f64()
        );
    }
    let py_default = results[0].1.0;
    for (chunk, _, ours, size_only) in &results {
        println!(
            "  nodeimg at {} MiB vs koji's client at its default 1 MiB: {:.2}x with the sha256 check, {:.2}x with the size check",
            chunk >> 20,
            py_default.as_secs_f64() / ours.0.as_secs_f64(),
            py_default.as_secs_f64() / size_only.0.as_secs_f64()
        );
    }
}
