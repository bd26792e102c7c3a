//! `nodeimg check` and `nodeimg flatten` on kickstarts with includes, runtime includes,
//! cycles, the Node's policy and the traps pykickstart is silent about.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn nodeimg(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

const NODE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/kickstarts/ovirt-node-ng-image.ks"
);

#[test]
fn the_node_kickstart_meets_the_node_policy() {
    let out = nodeimg(
        Path::new("/"),
        &["check", "--policy", "node", "--strict", NODE],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("0 errors, 0 warnings (RHEL9 syntax from #version="));
}

#[test]
fn findings_in_included_files_name_those_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("parts")).unwrap();
    fs::write(
        d.join("top.ks"),
        "#version=RHEL9\n# the base\nlang en_US.UTF-8\n%include parts/disk.ks\n%ksappend parts/extra.ks\ntimezone UTC\n",
    )
    .unwrap();
    fs::write(d.join("parts/disk.ks"), "zerombr\npart / --size=abc\n").unwrap();
    fs::write(d.join("parts/extra.ks"), "selinux --bogus\n").unwrap();
    // Run from elsewhere: the include resolves from the including file's directory.
    let out = nodeimg(
        Path::new("/"),
        &[
            "check",
            "--format",
            "json",
            d.join("top.ks").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let report = json(&out);
    let syntax: Vec<(String, u64, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["group"] == "syntax")
        .map(|f| {
            (
                f["origin"]["file"].as_str().unwrap().to_owned(),
                f["origin"]["line"].as_u64().unwrap(),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        syntax,
        [
            (
                d.join("parts/disk.ks").display().to_string(),
                2,
                "argument --size: invalid int value: 'abc'".to_owned()
            ),
            (
                d.join("parts/extra.ks").display().to_string(),
                1,
                "unrecognized arguments: --bogus".to_owned()
            ),
        ]
    );
    assert_eq!(report["version"]["version"], "RHEL9");

    // Flattening keeps order and comments, and marks each spliced region.
    let out = nodeimg(d, &["flatten", "top.ks"]);
    assert!(out.status.success(), "{}", text(&out));
    let flat = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = flat.lines().collect();
    assert_eq!(lines[0], "#version=RHEL9");
    assert_eq!(lines[1], "# the base");
    assert!(
        lines[3].starts_with(
            "# nodeimg flatten: %include parts/disk.ks (top.ks:4) spliced from parts/disk.ks"
        ),
        "{flat}"
    );
    assert_eq!(lines[4..6], ["zerombr", "part / --size=abc"]);
    assert_eq!(lines[6], "# nodeimg flatten: end of parts/disk.ks");
    assert!(lines[7].contains("%ksappend parts/extra.ks"), "{flat}");
    assert_eq!(lines[8], "selinux --bogus");
    assert_eq!(lines.last(), Some(&"timezone UTC"));
    // To a file: written whole, and not replaced without --force.
    let out = nodeimg(d, &["flatten", "top.ks", "-o", "flat.ks"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fs::read_to_string(d.join("flat.ks")).unwrap(), flat);
    let again = nodeimg(d, &["flatten", "top.ks", "-o", "flat.ks"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("--force"));
}

#[test]
fn runtime_includes_missing_files_and_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(
        d.join("runtime.ks"),
        "%pre\necho 'part / --size=5120' > /tmp/part-include\n%end\n%include /tmp/part-include\nlang en_US\n",
    )
    .unwrap();
    let out = nodeimg(d, &["check", "--format", "json", "runtime.ks"]);
    let report = json(&out);
    let runtime: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "runtime-include")
        .collect();
    assert_eq!(runtime.len(), 1, "{report:#}");
    assert_eq!(runtime[0]["severity"], "info");
    assert_eq!(runtime[0]["origin"]["line"], 4);
    let out = nodeimg(d, &["flatten", "runtime.ks"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("resolved at install time\n%include /tmp/part-include\n")
    );

    fs::write(d.join("missing.ks"), "lang en_US\n%include nowhere.ks\n").unwrap();
    let out = nodeimg(d, &["check", "missing.ks"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out).contains("missing.ks:2: error: %include nowhere.ks: no such file"),
        "{}",
        text(&out)
    );
    let out = nodeimg(d, &["flatten", "missing.ks"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("missing.ks:2"), "{}", text(&out));

    fs::write(d.join("a.ks"), "lang en_US\n%include b.ks\n").unwrap();
    fs::write(d.join("b.ks"), "%include a.ks\n").unwrap();
    let out = nodeimg(d, &["check", "a.ks"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out).contains("b.ks:1: error: the includes form a cycle"),
        "{}",
        text(&out)
    );
    assert_eq!(nodeimg(d, &["flatten", "a.ks"]).status.code(), Some(1));
}

/// The severity and rule of the finding at `line` of `name`, from `check --format json`.
fn findings_of(report: &serde_json::Value) -> Vec<(String, String, u64)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_owned(),
                f["rule"].as_str().unwrap().to_owned(),
                f["origin"]["line"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn a_missing_include_is_an_error_unless_pre_writes_that_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let include_rules = |name: &str, text: &str| -> Vec<(String, String, u64)> {
        fs::write(d.join(name), text).unwrap();
        let out = nodeimg(d, &["check", "--format", "json", "--lmc", "off", name]);
        findings_of(&json(&out))
            .into_iter()
            .filter(|(_, rule, _)| rule.contains("include"))
            .collect()
    };
    let runtime = |line| vec![("info".to_owned(), "runtime-include".to_owned(), line)];
    let missing = |line| vec![("error".to_owned(), "missing-include".to_owned(), line)];

    for (pre, include) in [
        ("echo 'part /' > /tmp/part-include", "/tmp/part-include"),
        ("echo 'part /' >>/tmp/a.ks 2>/dev/null", "/tmp/a.ks"),
        ("cat > /tmp/b.ks <<EOF\npart /\nEOF", "/tmp/b.ks"),
        ("cp /run/install/repo/ks/disk.ks /tmp/c.ks", "/tmp/c.ks"),
        ("curl -s -o /tmp/d.ks http://server/d.ks", "/tmp/d.ks"),
        ("wget -q -O/tmp/e.ks http://server/e.ks", "/tmp/e.ks"),
        ("printf 'part /\\n' | tee /tmp/f.ks >/dev/null", "/tmp/f.ks"),
    ] {
        let text = format!("%pre\n{pre}\n%end\n%include {include}\n");
        let line = text
            .lines()
            .position(|l| l.starts_with("%include"))
            .unwrap() as u64
            + 1;
        assert_eq!(include_rules("written.ks", &text), runtime(line), "{pre}");
    }
    // Mentioned, but not written: in a comment, read by %pre, or written by
    // %pre-install (which runs after the kickstart is read).
    for text in [
        "# %include /tmp/part-include comes from the PXE server\n%include /tmp/part-include\n",
        "%pre\ncat /tmp/part-include\n%end\n%include /tmp/part-include\n",
        "%pre-install\necho > /tmp/part-include\n%end\n%include /tmp/part-include\n",
        "%include /tmp/part-include\n",
    ] {
        let line = text
            .lines()
            .position(|l| l.starts_with("%include"))
            .unwrap() as u64
            + 1;
        assert_eq!(include_rules("mentioned.ks", text), missing(line), "{text}");
    }
}

#[test]
fn a_hundred_thousand_part_lines_are_checked_one_by_one() {
    // Every line a command the check looks back over (conflicts, duplicates): the
    // verdict is exact and the work linear (the time is measured in
    // benches/kickstart.rs, not here).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut text = fs::read_to_string(NODE).unwrap();
    for i in 0..100_000 {
        text.push_str(&format!("part /srv/p{i} --size=10\n"));
    }
    text.push_str("part /srv/p7 --size=20\nautopart\n");
    fs::write(d.join("big.ks"), &text).unwrap();
    let out = nodeimg(d, &["check", "--format", "json", "--lmc", "off", "big.ks"]);
    let findings: Vec<(String, String, u64)> = findings_of(&json(&out));
    let lines = text.lines().count() as u64;
    assert_eq!(
        findings,
        [
            ("warning".to_owned(), "duplicate".to_owned(), lines - 1),
            ("error".to_owned(), "syntax".to_owned(), lines),
        ],
        "{}",
        text_of_findings(&out)
    );
}

fn text_of_findings(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .chars()
        .take(4000)
        .collect()
}

#[test]
fn deep_includes_are_too_deep_not_a_cycle_and_a_fan_out_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A chain of files each including the next: pykickstart follows 244.
    let chain = |n: usize| {
        for i in 0..n {
            let body = if i + 1 < n {
                format!("%include k{}.ks\n", i + 1)
            } else {
                "lang en_US\n".to_owned()
            };
            fs::write(d.join(format!("k{i}.ks")), body).unwrap();
        }
    };
    chain(244);
    let out = nodeimg(d, &["check", "--format", "json", "--lmc", "off", "k0.ks"]);
    let rules: Vec<String> = findings_of(&json(&out))
        .into_iter()
        .map(|(_, rule, _)| rule)
        .collect();
    assert!(!rules.iter().any(|r| r.starts_with("include")), "{rules:?}");
    chain(300);
    let out = nodeimg(d, &["check", "k0.ks"]);
    assert!(
        text(&out).contains("k255.ks:1: error: includes nested more than 256 deep"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("cycle"), "{}", text(&out));

    // Each file includes the next twice, 24 deep: 16 million lines once spliced.
    for i in 0..24 {
        let body = if i + 1 < 24 {
            format!("%include f{n}.ks\n%include f{n}.ks\n", n = i + 1)
        } else {
            "lang en_US\n".to_owned()
        };
        fs::write(d.join(format!("f{i}.ks")), body).unwrap();
    }
    let out = nodeimg(d, &["check", "f0.ks"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("the kickstart with its includes is more than 1000000 lines"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_node_policy_names_what_a_node_image_needs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let node = fs::read_to_string(NODE).unwrap();
    let broken = node
        .replace("rootpw --lock", "rootpw --plaintext node#1")
        .replace(
            "part / --size=5120 --fstype=ext4 --fsoptions=discard",
            "part / --size=5120 --fstype=xfs\npart /var --size=1024",
        )
        .replace("poweroff", "reboot");
    fs::write(d.join("node.ks"), &broken).unwrap();
    let line_of = |needle: &str| broken.lines().position(|l| l.starts_with(needle)).unwrap() + 1;

    let out = nodeimg(d, &["check", "--policy", "node", "node.ks"]);
    assert_eq!(out.status.code(), Some(3));
    let found = text(&out);
    for expected in [
        format!(
            "node.ks:{}: warning: the '#' at column 24",
            line_of("rootpw")
        ),
        format!(
            "node.ks:{}: warning: a plaintext password",
            line_of("rootpw")
        ),
        format!(
            "node.ks:{}: error: the Node's root account is locked",
            line_of("rootpw")
        ),
        format!(
            "node.ks:{}: error: Filesystem images must use a single / part, not /var",
            line_of("part /var")
        ),
        format!(
            "node.ks:{}: error: the Node has exactly one partition",
            line_of("part /var")
        ),
        "node.ks: error: the Node's build ends the install with poweroff".to_owned(),
    ] {
        assert!(found.contains(&expected), "{expected:?} not in:\n{found}");
    }
    // The generic policy leaves the Node's own rules out.
    let out = nodeimg(d, &["check", "node.ks"]);
    assert!(!text(&out).contains("the Node"), "{}", text(&out));
}

#[test]
fn versions_strictness_and_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = fs::read_to_string(NODE).unwrap();
    // A deprecated option: a warning, so the check passes unless --strict.
    fs::write(
        d.join("dep.ks"),
        good.replace("timezone --utc Etc/UTC", "timezone --isUtc Etc/UTC"),
    )
    .unwrap();
    assert_eq!(nodeimg(d, &["check", "dep.ks"]).status.code(), Some(0));
    let strict = nodeimg(d, &["check", "--strict", "dep.ks"]);
    assert_eq!(strict.status.code(), Some(3));
    assert!(text(&strict).contains("timezone --isUtc is deprecated in RHEL9"));
    // RHEL10 removed it altogether.
    let rhel10 = nodeimg(d, &["check", "--ks-version", "RHEL10", "dep.ks"]);
    assert_eq!(rhel10.status.code(), Some(3));
    assert!(
        text(&rhel10).contains("unrecognized arguments: --isUtc"),
        "{}",
        text(&rhel10)
    );
    assert!(text(&rhel10).contains("RHEL10 syntax from --ks-version"));
    // RHEL7 is one of pykickstart's versions: the Node's kickstart gets the errors
    // `ksvalidator -v RHEL7` gives it, at the same lines.
    fs::write(
        d.join("old.ks"),
        good.replacen("#version=RHEL9", "#version=RHEL7", 1),
    )
    .unwrap();
    let old = nodeimg(d, &["check", "--lmc", "off", "old.ks"]);
    assert_eq!(old.status.code(), Some(3));
    let line_of = |needle: &str| good.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    for expected in [
        format!(
            "old.ks:{}: error: unrecognized arguments: --metalink=",
            line_of("url ")
        ),
        format!(
            "old.ks:{}: error: Unknown command: authselect",
            line_of("authselect")
        ),
        format!(
            "old.ks:{}: error: unrecognized arguments: --exclude-weakdeps",
            line_of("%packages")
        ),
    ] {
        assert!(text(&old).contains(&expected), "{expected}\n{}", text(&old));
    }
    assert!(
        text(&old).contains("RHEL7 syntax from #version="),
        "{}",
        text(&old)
    );
    // A #version= line pykickstart does not know either.
    fs::write(
        d.join("ancient.ks"),
        good.replacen("#version=RHEL9", "#version=RHEL2", 1),
    )
    .unwrap();
    let ancient = nodeimg(d, &["check", "ancient.ks"]);
    assert_eq!(ancient.status.code(), Some(3));
    assert!(
        text(&ancient).contains("ancient.ks:1: error: unknown kickstart version \"RHEL2\""),
        "{}",
        text(&ancient)
    );
    assert_eq!(
        nodeimg(d, &["check", "--ks-version", "RHEL2", "dep.ks"])
            .status
            .code(),
        Some(2)
    );
    let missing = nodeimg(d, &["check", "nothere.ks"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).contains("nothere.ks: no such kickstart file"));
    // Several files: one report each; the worst decides.
    let both = nodeimg(d, &["check", "--format", "json", "dep.ks", "old.ks"]);
    assert_eq!(both.status.code(), Some(3));
    assert_eq!(json(&both).as_array().unwrap().len(), 2);
}

#[test]
fn livemedia_creator_rules_follow_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(
        d.join("install.ks"),
        "text\nreboot\nurl --url=http://mirror.example.org/os/\nlang en_US\nkeyboard us\ntimezone UTC\nrootpw --lock\nautopart\n%packages\n@core\n%end\n",
    )
    .unwrap();
    let lmc_messages = |mode: &str| -> Vec<String> {
        let out = nodeimg(
            d,
            &["check", "--format", "json", "--lmc", mode, "install.ks"],
        );
        json(&out)["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["group"] == "lmc")
            .map(|f| f["message"].as_str().unwrap().to_owned())
            .collect()
    };
    let no_virt = lmc_messages("no-virt");
    assert!(
        no_virt.iter().any(|m| m.contains("display mode (text)")),
        "{no_virt:?}"
    );
    assert!(
        no_virt.iter().any(|m| m.contains("needs a network line")),
        "{no_virt:?}"
    );
    assert!(
        no_virt.iter().any(|m| m.contains("not autopart")),
        "{no_virt:?}"
    );
    assert!(
        !no_virt.iter().any(|m| m.contains("shutdown")),
        "{no_virt:?}"
    );
    let virt = lmc_messages("virt");
    assert!(
        virt.iter().any(|m| m.contains("must include shutdown")),
        "{virt:?}"
    );
    let iso = lmc_messages("iso");
    assert!(
        iso.iter()
            .any(|m| m.contains("dracut-live package is missing")),
        "{iso:?}"
    );
    assert!(!iso.iter().any(|m| m.contains("not autopart")), "{iso:?}");
    assert!(lmc_messages("off").is_empty());
}
