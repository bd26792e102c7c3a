//! Helpers shared by the integration tests.

pub mod disk;
pub mod node;
pub mod realkoji;
pub mod repo;

use std::path::Path;
use std::time::{Duration, Instant};

#[allow(dead_code)]
/// Wait until a process is gone: /proc no longer lists it, or lists it as a zombie.
/// Panics when it still runs after five seconds.
pub fn assert_gone(pid: &str) {
    let stat = Path::new("/proc").join(pid).join("stat");
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Ok(text) = std::fs::read_to_string(&stat) {
        // The state follows the command name, which is in parentheses.
        if text
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "process {pid} still runs: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Panic with a clear message unless the suite runs as root.
#[allow(dead_code)]
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test attaches loop devices and mounts filesystems: run the suite as root (see README)"
    );
}

/// Start `cmd` with `NODEIMG_PAUSE_AT=point` and return once it reports that it paused
/// there, with the lines it printed on stderr so far and a receiver for the rest.
#[allow(dead_code)]
pub fn spawn_until_paused(
    cmd: &mut std::process::Command,
    point: &str,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let mut child = cmd
        .env("NODEIMG_PAUSE_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.contains(&format!("paused at {point}")) => return (child, rx),
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                panic!("never reached {point} ({status}): {seen:#?}");
            }
        }
    }
}

/// Send `signal` to a paused child and return its exit code and remaining stderr.
#[allow(dead_code)]
pub fn interrupt(
    mut child: std::process::Child,
    rx: std::sync::mpsc::Receiver<String>,
    signal: nix::sys::signal::Signal,
) -> (Option<i32>, Vec<String>) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let status = child.wait().unwrap();
    // The reader thread ends with the pipe; collect what it saw.
    let rest: Vec<String> = rx.iter().collect();
    (status.code(), rest)
}

/// SIGTERM a child and return its exit code once it has ended.
#[allow(dead_code)]
pub fn terminate(child: &mut std::process::Child) -> Option<i32> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait().unwrap().code()
}

/// Run a command that must succeed; its output on failure.
#[allow(dead_code)]
pub fn run(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[allow(dead_code)]
/// A file's SHA-256, hex.
pub fn sha256_file(path: &std::path::Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// The venv scripts/setup.sh makes.
const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");

/// Validate an SBOM with the venv's validators (spdx-tools for `spdx`, CycloneDX's
/// 1.5 schema for `cyclonedx`); a failure shows their complaints.
#[allow(dead_code)]
pub fn validate_sbom(kind: &str, file: &Path) {
    let script = match kind {
        "spdx" => {
            "import sys\n\
             from spdx_tools.spdx.parser.parse_anything import parse_file\n\
             from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document\n\
             messages = validate_full_spdx_document(parse_file(sys.argv[1]))\n\
             print('\\n'.join(m.validation_message for m in messages))\n\
             sys.exit(1 if messages else 0)\n"
        }
        _ => {
            "import sys\n\
             from cyclonedx.schema import SchemaVersion\n\
             from cyclonedx.validation.json import JsonStrictValidator\n\
             error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\n\
             print(str(error or '')[:3000])\n\
             sys.exit(1 if error else 0)\n"
        }
    };
    run(std::process::Command::new(PYTHON)
        .arg("-c")
        .arg(script)
        .arg(file));
}
