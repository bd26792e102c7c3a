//! nodeimg's koji client against tests/kojihub/testhub.py, a hub that answers with
//! koji's own marshalling (the koji package from PyPI) and enforces koji's session,
//! upload and content-generator rules: calls and faults, Python-marshalled values,
//! retries, session renewal, uploads cut off and resumed, a whole import, a refund,
//! TLS with client certificates and a wrong CA. What koji accepts (names, tags,
//! components, refunds) is proven against the real hub in tests/realkoji.rs.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::node::{nodeimg, outdir};
use common::run;

struct Hub {
    child: Child,
    url: String,
    workdir: PathBuf,
    _dir: tempfile::TempDir,
    password_file: PathBuf,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/setup.sh",
        venv.display()
    );
    venv
}

/// Start the test hub with `extra` options; users admin:secret and bob:hunter2, admin
/// may import as content generator `nodeimg`.
fn hub_with(extra: &[&str], tls: Option<&Tls>) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let workdir = dir.path().join("work");
    let mut cmd = Command::new(python());
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kojihub/testhub.py"))
        .arg("--workdir")
        .arg(&workdir)
        .args([
            "--user",
            "admin:secret",
            "--user",
            "bob:hunter2",
            "--cg",
            "nodeimg:admin",
        ])
        .args(extra)
        .stdout(Stdio::piped());
    if let Some(tls) = tls {
        cmd.arg("--tls")
            .arg(&tls.server_cert)
            .arg(&tls.server_key)
            .arg(&tls.ca);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the test hub said {line:?}"))
        .to_owned();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let password_file = dir.path().join("password");
    fs::write(&password_file, "secret\n").unwrap();
    Hub {
        child,
        url: format!("{scheme}://127.0.0.1:{port}/kojihub"),
        workdir,
        _dir: dir,
        password_file,
    }
}

fn hub(extra: &[&str]) -> Hub {
    hub_with(extra, None)
}

/// `nodeimg koji …` against `hub` as admin with password login.
fn koji(hub: &Hub, args: &[&str]) -> Command {
    let mut cmd = nodeimg();
    cmd.arg("koji").args(args).args([
        "--server",
        &hub.url,
        "--user",
        "admin",
        "--retries",
        "3",
        "--retry-interval",
        "0.1",
    ]);
    cmd.arg("--password-file").arg(&hub.password_file);
    cmd
}

fn json_out(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn state(hub: &Hub) -> serde_json::Value {
    json_out(&koji(hub, &["call", "_testState"]).output().unwrap())
}

#[test]
fn calls_take_pythons_marshalling_and_keyword_arguments() {
    let hub = hub(&[]);
    let value = json_out(&koji(&hub, &["call", "_testMarshal"]).output().unwrap());
    use base64::Engine as _;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(value["blob"]["base64"].as_str().unwrap())
        .unwrap();
    let expected: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    assert_eq!(blob, expected, "base64 wrapped at 76 columns");
    assert_eq!(value["text"], "a <b> & \"c\" é");
    assert_eq!(value["cdata"], "x < y & z");
    assert_eq!(value["when"], "20261126T02:12:34");
    assert!(value["nothing"].is_null());
    assert_eq!(value["big"], 9_007_199_254_740_993_i64);
    assert_eq!(value["size"], "12345678901234");
    assert_eq!(value["untyped"], "plain");

    // Arguments and keyword arguments survive koji's decode_args.
    let value = json_out(
        &koji(
            &hub,
            &[
                "call",
                "echo",
                "1",
                "5000000000",
                "null",
                "plain text",
                r#"{"k": [true, 1.5]}"#,
                "--kwarg",
                "latest=true",
            ],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(
        value,
        serde_json::json!([[1, 5_000_000_000_i64, null, "plain text", {"k": [true, 1.5]}], {"latest": true}])
    );
}

#[test]
fn faults_keep_kojis_codes_and_only_offline_is_retried() {
    let hub = hub(&["--offline-times", "2"]);
    // Two ServerOffline answers (login included), then the call goes through.
    let user = json_out(&koji(&hub, &["call", "getLoggedInUser"]).output().unwrap());
    assert_eq!(user["name"], "admin");

    let out = koji(&hub, &["call", "noSuchMethod"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("koji GenericError (1000): Invalid method: noSuchMethod"),
        "{err}"
    );
    let calls = state(&hub)["calls"].to_string();
    assert_eq!(calls.matches("noSuchMethod").count(), 1, "retried: {calls}");

    let mut wrong = nodeimg();
    wrong
        .args([
            "koji",
            "call",
            "getLoggedInUser",
            "--server",
            &hub.url,
            "--user",
            "bob",
        ])
        .env("NODEIMG_KOJI_PASSWORD", "wrong");
    let out = wrong.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("koji AuthError (1002)"), "{err}");
    assert!(!err.contains("wrong"), "the password was printed: {err}");

    // Offline for longer than the retries: the error says it gave up.
    let hub = hub_with(&["--offline-times", "10"], None);
    let out = koji(&hub, &["call", "getLoggedInUser"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gave up after 3 retries") && err.contains("ServerOffline"),
        "{err}"
    );
}

fn sample(dir: &Path, name: &str, bytes: usize) -> PathBuf {
    let path = dir.join(name);
    let data: Vec<u8> = (0..bytes).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(&path, data).unwrap();
    path
}

#[test]
fn an_upload_cut_off_midway_is_retried_and_resumed() {
    let scratch = tempfile::tempdir().unwrap();
    let file = sample(scratch.path(), "image.liveimg.squashfs", 5 << 20);
    let expected = fs::read(&file).unwrap();

    // In one run: the third request is cut off; the client sends that chunk again.
    let hub = hub(&["--drop-upload-after", "2"]);
    let out = koji(
        &hub,
        &[
            "upload",
            "--chunk-size",
            "1048576",
            "--path",
            "nodeimg/a",
            "--format",
            "json",
        ],
    )
    .arg(&file)
    .output()
    .unwrap();
    let done = json_out(&out);
    assert_eq!(done[0]["bytes"], 5 << 20);
    assert_eq!(
        fs::read(hub.workdir.join("nodeimg/a/image.liveimg.squashfs")).unwrap(),
        expected
    );
    let uploads = state(&hub)["uploads"].as_array().unwrap().clone();
    let offsets: Vec<i64> = uploads
        .iter()
        .map(|u| u["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, [0, 1 << 20, 2 << 20, 2 << 20, 3 << 20, 4 << 20]);
    assert_eq!(uploads[2]["dropped"], true);
    // Every chunk went with overwrite and its own call number.
    assert!(uploads.iter().all(|u| u["overwrite"] == true));

    // Across runs: a run that gives up at the cut leaves half a file; the next run
    // asks checkUpload how much is there and sends only the rest.
    let hub = hub_with(&["--drop-upload-after", "2"], None);
    let mut first = koji(
        &hub,
        &["upload", "--chunk-size", "1048576", "--path", "nodeimg/b"],
    );
    first.arg(&file);
    let args: Vec<String> = first
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut no_retry = nodeimg();
    no_retry.args(args.iter().map(|a| if a == "3" { "0" } else { a.as_str() }));
    let out = no_retry.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let partial = fs::metadata(hub.workdir.join("nodeimg/b/image.liveimg.squashfs"))
        .unwrap()
        .len();
    assert!(partial > 2 << 20 && partial < 3 << 20, "{partial}");
    let out = koji(
        &hub,
        &[
            "upload",
            "--chunk-size",
            "1048576",
            "--path",
            "nodeimg/b",
            "--format",
            "json",
        ],
    )
    .arg(&file)
    .output()
    .unwrap();
    let done = json_out(&out);
    assert_eq!(done[0]["resumed_at"], partial);
    assert_eq!(
        fs::read(hub.workdir.join("nodeimg/b/image.liveimg.squashfs")).unwrap(),
        expected
    );
    let uploads = state(&hub)["uploads"].as_array().unwrap().clone();
    let resumed: Vec<i64> = uploads[3..]
        .iter()
        .map(|u| u["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(resumed[0], partial as i64, "{uploads:?}");
    assert!(resumed.iter().all(|o| *o >= partial as i64));
}

#[test]
fn bad_upload_names_are_refused_before_the_hub_sees_them() {
    let hub = hub(&[]);
    let scratch = tempfile::tempdir().unwrap();
    let file = sample(scratch.path(), "x", 10);
    let out = koji(&hub, &["upload", "--path", "../escape"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("upload directory `../escape`"));
    assert_eq!(state(&hub)["uploads"], serde_json::json!([]));
}

/// The files of an import go up at once on subsessions of the login (koji checks call
/// numbers per session), each file's chunks in order on one session.
#[test]
fn an_import_uploads_its_files_in_parallel_on_subsessions() {
    let scratch = tempfile::tempdir().unwrap();
    let out = outdir(scratch.path());
    let hub = hub(&[]);
    let imported = json_out(
        &koji(
            &hub,
            &["import", "--chunk-size", "65536", "--format", "json"],
        )
        .arg(&out)
        .output()
        .unwrap(),
    );
    assert_eq!(imported["nvr"], "ovirt-node-ng-image-update-4.5.6-1.el9");
    let st = state(&hub);
    let calls: Vec<&str> = st["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        calls.iter().filter(|c| **c == "subsession").count(),
        2,
        "three at once by default: {calls:?}"
    );
    let mut sessions_of: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for upload in st["uploads"].as_array().unwrap() {
        sessions_of
            .entry(upload["name"].as_str().unwrap().to_owned())
            .or_default()
            .insert(upload["session"].as_str().unwrap().to_owned());
    }
    assert!(
        sessions_of.values().all(|s| s.len() == 1),
        "one session a file: {sessions_of:?}"
    );
    let used: std::collections::BTreeSet<&String> = sessions_of.values().flatten().collect();
    assert!(used.len() >= 2, "{sessions_of:?}");
}

#[test]
fn a_build_imports_as_a_content_generator_build_and_is_tagged() {
    let scratch = tempfile::tempdir().unwrap();
    let out = outdir(scratch.path());
    // The session expires after a few calls: the client logs in again and goes on
    // (one session, so that it expires once).
    let hub = hub(&["--expire-after", "4"]);
    let imported = json_out(
        &koji(
            &hub,
            &[
                "import",
                "--parallel",
                "1",
                "--cg",
                "nodeimg",
                "--tag",
                "ovirt-4.5-candidate",
                "--format",
                "json",
            ],
        )
        .arg(&out)
        .output()
        .unwrap(),
    );
    assert_eq!(imported["nvr"], "ovirt-node-ng-image-update-4.5.6-1.el9");
    let id = imported["build_id"].as_i64().unwrap();
    let st = state(&hub);
    let build = &st["builds"][id.to_string()];
    assert_eq!(build["state"], "COMPLETE");
    assert_eq!(st["tags"]["ovirt-4.5-candidate"], serde_json::json!([id]));
    let outputs = build["outputs"].as_array().unwrap();
    let by_type = |t: &str| -> Vec<&serde_json::Value> {
        outputs.iter().filter(|o| o["type"] == t).collect()
    };
    let image = by_type("image");
    assert_eq!(image.len(), 1);
    assert_eq!(
        image[0]["filename"],
        "ovirt-node-ng-image-4.5.6-1.el9.x86_64.liveimg.squashfs"
    );
    assert_eq!(image[0]["extra"]["image"]["arch"], "x86_64");
    // The RPMs inside the image are its components, with rpm's sigmd5.
    let components = image[0]["components"].as_array().unwrap();
    assert_eq!(components.len(), 3);
    assert!(
        components
            .iter()
            .all(|c| c["sigmd5"].as_str().is_some_and(|s| s.len() == 32))
    );
    assert_eq!(
        components
            .iter()
            .filter(|c| !c["signature"].is_null())
            .count(),
        1
    );
    let rpm = by_type("rpm");
    assert_eq!(
        rpm[0]["filename"],
        "ovirt-node-ng-image-update-4.5.6-1.el9.x86_64.rpm"
    );
    let logs: Vec<&str> = by_type("log")
        .iter()
        .map(|o| o["filename"].as_str().unwrap())
        .collect();
    for name in [
        "build.json",
        "ovirt-node-ng-image.manifest-rpm",
        "ovirt-node-ng-image.spdx.json",
        "log-nodeimg.log",
    ] {
        assert!(logs.contains(&name), "{logs:?}");
    }
    // The checksums the hub computed are build.json's.
    let record: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("build.json")).unwrap()).unwrap();
    assert_eq!(image[0]["checksum"], record["outputs"][0]["sha256"]);
    // The expired session was renewed once (the import's calls end with its logout).
    let calls: Vec<&str> = st["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .take_while(|c| *c != "logout")
        .collect();
    assert_eq!(
        calls.iter().filter(|c| **c == "login").count(),
        2,
        "{calls:?}"
    );
    assert_eq!(calls.last(), Some(&"tagBuild"), "{calls:?}");

    // The same NVR again is refused by the hub; nothing is left reserved.
    let out2 = koji(&hub, &["import"]).arg(&out).output().unwrap();
    assert_eq!(out2.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out2.stderr).contains("Build already exists"));
}

#[test]
fn a_fault_during_cgimport_refunds_the_build() {
    let scratch = tempfile::tempdir().unwrap();
    let out = outdir(scratch.path());
    let hub = hub(&["--fault", "CGImport:1020:the database is on fire"]);
    let failed = koji(&hub, &["import"]).arg(&out).output().unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("koji ImportError (1020): the database is on fire")
            && err.contains("refunded"),
        "{err}"
    );
    let st = state(&hub);
    let builds = st["builds"].as_object().unwrap();
    assert_eq!(builds.len(), 1);
    assert_eq!(builds.values().next().unwrap()["state"], "FAILED");

    // A changed artifact is caught before anything is reserved.
    let hub = hub_with(&[], None);
    let image = out.join("ovirt-node-ng-image-4.5.6-1.el9.x86_64.liveimg.squashfs");
    fs::write(&image, b"tampered").unwrap();
    let failed = koji(&hub, &["import"]).arg(&out).output().unwrap();
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("changed after the build"));
    assert_eq!(state(&hub)["builds"], serde_json::json!({}));
}

struct Tls {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client: PathBuf,
}

/// A CA, a server certificate for 127.0.0.1, a client certificate for `admin` (one
/// PEM with its key, as koji's `cert` option wants), and an unrelated CA.
fn tls() -> Tls {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let openssl = |args: &[&str]| {
        run(Command::new("openssl").args(args).current_dir(d));
    };
    for ca in ["ca", "other"] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=nodeimg test {ca}"),
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
        ]);
    }
    fs::write(d.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    for (name, subject) in [("server", "/CN=127.0.0.1"), ("client", "/CN=admin")] {
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            subject,
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        let mut sign = vec![
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        if name == "server" {
            sign.extend(["-extfile".to_owned(), "san.ext".to_owned()]);
        }
        let sign: Vec<&str> = sign.iter().map(String::as_str).collect();
        openssl(&sign);
    }
    let client = [
        fs::read_to_string(d.join("client.pem")).unwrap(),
        fs::read_to_string(d.join("client.key")).unwrap(),
    ]
    .concat();
    fs::write(d.join("client-with-key.pem"), client).unwrap();
    Tls {
        ca: d.join("ca.pem"),
        other_ca: d.join("other.pem"),
        server_cert: d.join("server.pem"),
        server_key: d.join("server.key"),
        client: d.join("client-with-key.pem"),
        _dir: dir,
    }
}

#[test]
fn client_certificates_log_in_and_a_wrong_ca_fails_closed() {
    let tls = tls();
    let hub = hub_with(&[], Some(&tls));
    // A koji configuration profile, as koji's CLI reads it.
    let conf = tls._dir.path().join("koji.conf");
    fs::write(
        &conf,
        format!(
            "[nodeimg-test]\nserver = {}\nauthtype = ssl\ncert = {}\nserverca = {}\nmax_retries = 2\nretry_interval = 0.1\n",
            hub.url,
            tls.client.display(),
            tls.ca.display()
        ),
    )
    .unwrap();
    let with_profile = || {
        let mut cmd = nodeimg();
        cmd.args([
            "koji",
            "call",
            "getLoggedInUser",
            "--profile",
            "nodeimg-test",
        ])
        .arg("--config")
        .arg(&conf);
        cmd
    };
    let user = json_out(&with_profile().output().unwrap());
    assert_eq!(user["name"], "admin");

    // Another CA: refused at once, not retried, nothing sent.
    let started = std::time::Instant::now();
    let out = with_profile()
        .arg("--serverca")
        .arg(&tls.other_ca)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS verification of"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "retried"
    );

    // No serverca: the system's roots do not know the test CA either.
    let out = nodeimg()
        .args([
            "koji",
            "call",
            "getLoggedInUser",
            "--server",
            &hub.url,
            "--cert",
        ])
        .arg(&tls.client)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn multicall_returns_each_result_or_fault_in_one_request() {
    use nodeimg::koji::config::{Auth, Profile};
    use nodeimg::koji::session::Session;
    use nodeimg::koji::xmlrpc;

    let hub = hub(&[]);
    let mut profile = Profile::direct(&hub.url);
    profile.auth = Auth::Password {
        user: "admin".into(),
        password: "secret".into(),
    };
    let mut session = Session::new(profile).unwrap();
    session.login().unwrap();
    let results = session
        .multicall(&[
            ("echo", vec![xmlrpc::int(7)]),
            ("noSuchMethod", vec![]),
            ("getLoggedInUser", vec![]),
        ])
        .unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(
        xmlrpc::to_json(results[0].as_ref().unwrap()),
        serde_json::json!([[7], {}])
    );
    let fault = results[1].as_ref().unwrap_err();
    assert_eq!((fault.code, fault.name()), (1000, "GenericError"));
    assert_eq!(
        xmlrpc::to_json(results[2].as_ref().unwrap())["name"],
        "admin"
    );
    assert_eq!(session.hub_version.as_deref(), Some("1.36.1"));
    drop(session);
    // One login, one multiCall, one logout: the calls inside went in one request.
    let calls = state(&hub)["calls"].clone();
    assert_eq!(
        calls.as_array().unwrap()[..3],
        [
            serde_json::json!("login"),
            serde_json::json!("multiCall"),
            serde_json::json!("logout")
        ]
    );
}
