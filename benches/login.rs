//! A Kerberos login and one call, against the same real kojihub and MIT KDC
//! (tests/realkoji/kojienv.py `serve --kerberos`, as root): `nodeimg koji call
//! getLoggedInUser` against koji's own CLI (`koji call getLoggedInUser`, the koji
//! package from PyPI with requests-gssapi), both with the ticket `kinit` put in one
//! credential cache. Each run is a whole process: start, SPNEGO login at /ssllogin,
//! the call, logout. Median and fastest of ROUNDS; peak RSS of each client.
//! Run: `cargo bench --bench login` (after `scripts/setup.sh`).

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::timed;

const ROUNDS: usize = 20;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "run scripts/setup.sh first");
    let nodeimg = PathBuf::from(env!("CARGO_BIN_EXE_nodeimg"));
    let mut env = Command::new(&python)
        .arg(root.join("tests/realkoji/kojienv.py"))
        .args(["serve", "--kerberos"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(env.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&line).expect("kojienv.py serve failed");
    let krb5_conf = info["kerberos"]["krb5_conf"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let ccache = format!("FILE:{}", dir.path().join("ccache").display());
    let conf = dir.path().join("koji.conf");
    fs::write(
        &conf,
        format!(
            "[krb]\nserver = {}\nserverca = {}\nauthtype = kerberos\n",
            info["hub_https"].as_str().unwrap(),
            info["serverca"].as_str().unwrap()
        ),
    )
    .unwrap();
    let mut kinit = Command::new("kinit")
        .env("KRB5_CONFIG", &krb5_conf)
        .args(["-c", &ccache])
        .arg(info["kerberos"]["releng"]["principal"].as_str().unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(
        kinit.stdin.take().unwrap(),
        "{}",
        info["kerberos"]["releng"]["password"].as_str().unwrap()
    )
    .unwrap();
    assert!(kinit.wait().unwrap().success());

    let measure = |program: &PathBuf, args: &[&str]| {
        let mut runs: Vec<(Duration, u64)> = (0..ROUNDS)
            .map(|_| {
                let mut cmd = Command::new(program);
                cmd.env("KRB5_CONFIG", &krb5_conf)
                    .env("KRB5CCNAME", &ccache)
                    .args(args);
                timed(&mut cmd)
            })
            .collect();
        runs.sort();
        (
            runs[ROUNDS / 2],
            runs[0],
            runs.iter().map(|r| r.1).max().unwrap(),
        )
    };
    let conf_arg = conf.to_str().unwrap();
    let ours = measure(
        &nodeimg,
        &[
            "-q",
            "koji",
            "call",
            "getLoggedInUser",
            "--config",
            conf_arg,
            "-p",
            "krb",
        ],
    );
    let theirs = measure(
        &root.join(".venv/bin/koji"),
        &["-c", conf_arg, "-p", "krb", "call", "getLoggedInUser"],
    );
    drop(env.stdin.take());
    let _ = env.wait();

    println!("Kerberos login + getLoggedInUser + logout, one process each, {ROUNDS} runs");
    for (name, (median, fastest, peak)) in [("koji CLI (Python)", theirs), ("nodeimg", ours)] {
        println!(
            "  {name:<18} median {:>6.1} ms, fastest {:>6.1} ms, peak RSS {:>3} MiB",
            median.0.as_secs_f64() * 1e3,
            fastest.0.as_secs_f64() * 1e3,
            peak / 1024
        );
    }
    println!(
        "  nodeimg is {:.1}x faster (medians), {:.1}x less memory",
        theirs.0.0.as_secs_f64() / ours.0.0.as_secs_f64(),
        theirs.2 as f64 / ours.2 as f64
    );
}
