//! Kerberos (GSSAPI) login of `nodeimg koji` against a real MIT KDC and a real kojihub.
//!
//! tests/realkoji/kojienv.py `serve --kerberos` starts Debian's krb5kdc in a temporary
//! realm NODEIMG.TEST (and OTHER.TEST, which it trusts) on 127.0.0.1, with principals
//! made by kadmin.local and keytabs exported; koji's own hub behind Apache httpd at
//! https://localhost:PORT/kojihub, whose /ssllogin takes SPNEGO through
//! mod_auth_gssapi with the keytab of HTTP/localhost@NODEIMG.TEST, as koji's own
//! httpd.conf sets it up; koji maps the principal to a user (user_krb_principals,
//! AllowedKrbRealms = NODEIMG.TEST, ProxyPrincipals = kojiweb@NODEIMG.TEST). Every program here gets the realm's own
//! krb5.conf through KRB5_CONFIG and a credential cache of the test's own.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::node::{nodeimg, outdir};
use common::realkoji::{RealKoji, json_out};
use serde_json::Value;

/// A real koji with a KDC, and the test's own files.
struct Realm {
    koji: RealKoji,
    dir: tempfile::TempDir,
}

impl Realm {
    fn start() -> Realm {
        Realm {
            koji: RealKoji::start_with(&["--kerberos".into()]),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn krb(&self, key: &str) -> &str {
        self.koji.info["kerberos"][key].as_str().unwrap()
    }

    /// A principal's field: principal, password, keytab.
    fn principal(&self, name: &str, field: &str) -> String {
        self.koji.info["kerberos"][name][field]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn ccache(&self, name: &str) -> String {
        format!("FILE:{}", self.dir.path().join(name).display())
    }

    /// A koji configuration with profile `krb` (the README's Kerberos profile) plus
    /// `extra` lines; its path.
    fn profile(&self, extra: &str) -> PathBuf {
        self.profile_for(self.koji.field("hub_https"), extra)
    }

    /// The same, for the hub at `server`.
    fn profile_for(&self, server: &str, extra: &str) -> PathBuf {
        let path = self.dir.path().join(format!(
            "koji-{}.conf",
            fs::read_dir(self.dir.path()).unwrap().count()
        ));
        fs::write(
            &path,
            format!(
                "[krb]\nserver = {}\nserverca = {}\nauthtype = kerberos\nmax_retries = 1\nretry_interval = 1\n{extra}",
                server,
                self.koji.field("serverca"),
            ),
        )
        .unwrap();
        path
    }

    /// `kinit` as a user runs it, into `ccache`.
    fn kinit(&self, who: &str, ccache: &str, lifetime: Option<&str>) {
        let mut cmd = Command::new("kinit");
        cmd.env("KRB5_CONFIG", self.krb("krb5_conf"))
            .args(["-c", ccache]);
        if let Some(l) = lifetime {
            cmd.args(["-l", l]);
        }
        let mut child = cmd
            .arg(self.principal(who, "principal"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kinit (Debian: krb5-user; scripts/setup.sh installs it)");
        use std::io::Write;
        writeln!(
            child.stdin.take().unwrap(),
            "{}",
            self.principal(who, "password")
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kinit: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `nodeimg koji ARGS --config PROFILE -p krb`, with the realm's krb5.conf and
    /// `ccache` as the credential cache.
    fn nodeimg(&self, profile: &Path, ccache: &str, args: &[&str]) -> Command {
        let mut cmd = nodeimg();
        cmd.env("KRB5_CONFIG", self.krb("krb5_conf"))
            .env("KRB5CCNAME", ccache)
            .env_remove("KRB5_CLIENT_KTNAME")
            .arg("koji")
            .args(args)
            .arg("--config")
            .arg(profile)
            .args(["-p", "krb"]);
        cmd
    }

    fn logged_in_user(&self, profile: &Path, ccache: &str, extra: &[&str]) -> Output {
        let mut args = vec!["call", "getLoggedInUser"];
        args.extend_from_slice(extra);
        self.nodeimg(profile, ccache, &args).output().unwrap()
    }
}

fn failure(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// GSSAPI's authtype in koji (koji.AUTHTYPES['GSSAPI']).
const AUTHTYPE_GSSAPI: i64 = 3;

#[test]
fn a_release_engineer_logs_in_with_the_ticket_kinit_made() {
    let realm = Realm::start();
    let profile = realm.profile("");
    let ccache = realm.ccache("releng");

    // No ticket yet: say so, and what to run.
    let err = failure(&realm.logged_in_user(&profile, &ccache, &[]));
    assert!(err.contains("no Kerberos ticket"), "{err}");
    assert!(err.contains("run `kinit"), "{err}");
    assert!(err.contains(&ccache), "{err}");

    realm.kinit("releng", &ccache, None);
    // The hub maps releng@NODEIMG.TEST to the koji user releng; nothing secret is
    // logged, even at the most verbose level.
    let out = realm.logged_in_user(&profile, &ccache, &["-vvv"]);
    let user = json_out(&out);
    assert_eq!(user["name"], "releng");
    assert_eq!(user["krb_principal"], "releng@NODEIMG.TEST");
    assert_eq!(user["authtype"], AUTHTYPE_GSSAPI);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("HTTP/localhost authenticated (mutual)"),
        "{log}"
    );
    assert!(
        !log.contains("Negotiate "),
        "a token reached the log: {log}"
    );
    assert!(!log.contains("Koji-Session-Key"), "{log}");

    // koji's own CLI (PyPI, requests-gssapi) logs in through the same front end with
    // the same ticket: the hub side is what koji's client expects.
    let out = Command::new(realm.koji.field("koji_cli"))
        .env("KRB5_CONFIG", realm.krb("krb5_conf"))
        .env("KRB5CCNAME", &ccache)
        .arg("-c")
        .arg(&profile)
        .args(["-p", "krb", "moshimoshi"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("releng") && said.contains("GSSAPI"), "{said}");

    // A front end that does not prove the hub is HTTP/localhost (httpd drops the
    // WWW-Authenticate header of /broken/kojihub/ssllogin): no session is used.
    let hub = realm.koji.field("hub_https");
    let broken = realm.profile_for(&hub.replace("/kojihub", "/broken/kojihub"), "");
    let out = realm.logged_in_user(&broken, &ccache, &[]);
    let err = failure(&out);
    assert!(
        err.contains("the hub did not prove it is HTTP/localhost"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // The same hub under a name the KDC has no HTTP/ principal for.
    let other = realm.profile_for(&hub.replace("https://localhost:", "https://127.0.0.1:"), "");
    let err = failure(&realm.logged_in_user(&other, &ccache, &[]));
    assert!(
        err.contains("the KDC knows no principal HTTP/127.0.0.1 for the hub"),
        "{err}"
    );

    // A clock an hour ahead of the KDC's and the hub's (libfaketime under nodeimg).
    let mut skewed = Command::new("faketime");
    let inner = realm.nodeimg(&profile, &ccache, &["call", "getLoggedInUser"]);
    skewed
        .args(["-f", "+1h"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let err = failure(&skewed.output().expect("faketime (Debian: faketime)"));
    assert!(err.contains("clock skew"), "{err}");

    // A ticket that has run out.
    let short = realm.ccache("short");
    realm.kinit("releng", &short, Some("2s"));
    std::thread::sleep(Duration::from_secs(3));
    let err = failure(&realm.logged_in_user(&profile, &short, &[]));
    assert!(err.contains("has expired: run `kinit"), "{err}");
}

#[test]
fn a_keytab_logs_in_unattended_and_again_when_the_session_expires() {
    let mut realm = Realm::start();
    let keytab = realm.principal("robot", "keytab");
    let profile = realm.profile(&format!(
        "principal = {}\nkeytab = {keytab}\n",
        realm.principal("robot", "principal")
    ));
    // No credential cache at all: the key comes from the keytab, and the ticket stays
    // in nodeimg's memory (the user's cache is not written).
    let ccache = realm.ccache("untouched");
    let user = json_out(&realm.logged_in_user(&profile, &ccache, &[]));
    assert_eq!(user["name"], "robot");
    assert_eq!(user["authtype"], AUTHTYPE_GSSAPI);
    assert!(!realm.dir.path().join("untouched").exists());

    // A keytab without the principal's key.
    let err =
        failure(&realm.logged_in_user(&profile, &ccache, &["--principal", "releng@NODEIMG.TEST"]));
    assert!(
        err.contains(&format!(
            "keytab {keytab} holds no key for releng@NODEIMG.TEST"
        )),
        "{err}"
    );

    // A keytab made before the principal's key changed.
    realm.koji.control("rekey stranger");
    let stale = realm.principal("stranger", "keytab");
    let err = failure(&realm.logged_in_user(
        &profile,
        &ccache,
        &["--principal", "stranger@NODEIMG.TEST", "--keytab", &stale],
    ));
    assert!(
        err.contains(&format!("the KDC refuses keytab {stale}'s key")),
        "{err}"
    );

    // No KDC answers (the realm's KDC is on a port nothing listens on).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = fs::read_to_string(realm.krb("krb5_conf")).unwrap();
    let port = conf
        .split("kdc = 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let dead = realm.dir.path().join("dead-krb5.conf");
    fs::write(
        &dead,
        conf.replace(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{closed}")),
    )
    .unwrap();
    let out = realm
        .nodeimg(&profile, &ccache, &["call", "getLoggedInUser"])
        .env("KRB5_CONFIG", &dead)
        .output()
        .unwrap();
    let err = failure(&out);
    assert!(err.contains("no KDC answered for the realm"), "{err}");

    // A long upload whose session expires while robot's ticket (4 s) has run out too:
    // nodeimg logs in again with a new ticket from the keytab and goes on. It is
    // stopped (SIGSTOP) while the session and the ticket expire.
    let file = realm.dir.path().join("payload");
    fs::write(&file, vec![7u8; 4 << 20]).unwrap();
    let upload = realm
        .nodeimg(
            &profile,
            &ccache,
            &[
                "upload",
                "--path",
                "nodeimg-test/relogin",
                "--chunk-size",
                "4096",
            ],
        )
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(upload.id() as i32);
    realm.koji.control("wait-session robot");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    realm.koji.control("expire-sessions robot");
    let resumed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let out = upload.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("koji session expired; logging in again"),
        "{log}"
    );
    // The renewal's ticket is a new one from the KDC (the first had run out).
    let kdc_log = fs::read_to_string(realm.krb("kdc_log")).unwrap();
    let renewed = kdc_log.lines().any(|line| {
        line.contains("AS_REQ")
            && line.contains("robot@NODEIMG.TEST for krbtgt/")
            && line
                .split("authtime ")
                .nth(1)
                .and_then(|t| t.split(',').next())
                .and_then(|t| t.parse::<u64>().ok())
                .is_some_and(|t| t >= resumed)
    });
    assert!(
        renewed,
        "no ticket issued to robot after {resumed}: {kdc_log}"
    );
}

#[test]
fn koji_maps_principals_as_its_rules_say() {
    let realm = Realm::start();
    let profile = realm.profile("");

    // Another realm's principal, with a valid cross-realm ticket: AllowedKrbRealms.
    let alien = realm.ccache("alien");
    realm.kinit("alien", &alien, None);
    let err = failure(&realm.logged_in_user(&profile, &alien, &[]));
    assert!(
        err.contains("Kerberos principal's realm: OTHER.TEST is not allowed"),
        "{err}"
    );

    // A principal of the realm with no koji user (LoginCreatesUser is off).
    let stranger = realm.ccache("stranger");
    realm.kinit("stranger", &stranger, None);
    let err = failure(&realm.logged_in_user(&profile, &stranger, &[]));
    assert!(err.contains("Unknown user: stranger@NODEIMG.TEST"), "{err}");

    // kojiweb is in ProxyPrincipals: it may act as releng; releng may not act as
    // anyone.
    let proxy = realm.ccache("kojiweb");
    let user = json_out(&realm.logged_in_user(
        &profile,
        &proxy,
        &[
            "--principal",
            "kojiweb@NODEIMG.TEST",
            "--keytab",
            &realm.principal("kojiweb", "keytab"),
            "--runas",
            "releng",
        ],
    ));
    assert_eq!(user["name"], "releng");
    let releng = realm.ccache("releng");
    realm.kinit("releng", &releng, None);
    let err = failure(&realm.logged_in_user(&profile, &releng, &["--runas", "robot"]));
    assert!(
        err.contains("releng@NODEIMG.TEST is not authorized to login other users"),
        "{err}"
    );
}

#[test]
fn a_build_is_imported_over_a_kerberos_session() {
    let realm = Realm::start();
    let scratch = tempfile::tempdir().unwrap();
    let out = outdir(scratch.path());
    let profile = realm.profile("");
    let ccache = realm.ccache("releng");
    realm.kinit("releng", &ccache, None);

    let imported: Value = json_out(
        &realm
            .nodeimg(&profile, &ccache, &["import", "--format", "json"])
            .arg(&out)
            .output()
            .unwrap(),
    );
    let nvr = imported["nvr"].as_str().unwrap();
    let build = json_out(
        &realm
            .nodeimg(&profile, &ccache, &["call", "getBuild", nvr])
            .output()
            .unwrap(),
    );
    assert_eq!(build["state"], 1, "COMPLETE: {build}");
    assert_eq!(build["owner_name"], "releng");
    assert_eq!(build["cg_name"], "nodeimg");
}
