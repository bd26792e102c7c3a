//! The command line: version, help on every subcommand, usage errors.

use assert_cmd::Command;
use clap::CommandFactory;
use nodeimg::cli::Cli;

fn nodeimg() -> Command {
    Command::cargo_bin("nodeimg").unwrap()
}

#[test]
fn version_names_the_crate_version() {
    let out = nodeimg().arg("--version").assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert_eq!(
        text.trim(),
        format!("nodeimg {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_documents_exit_statuses() {
    let out = nodeimg().arg("--help").assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for line in [
        "0      success",
        "2      usage error",
        "3      checks ran and found errors",
        "128+N",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

/// Every subcommand path, nested ones included: ["doctor"], ["liveimg", "pack"], …
fn subcommand_paths(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
    // Hidden subcommands are nodeimg's own plumbing (internal-sandbox).
    for sub in cmd
        .get_subcommands()
        .filter(|c| c.get_name() != "help" && !c.is_hide_set())
    {
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_owned());
        subcommand_paths(sub, &path, out);
        out.push(path);
    }
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    let mut paths = Vec::new();
    subcommand_paths(&Cli::command(), &[], &mut paths);
    assert!(paths.len() >= 3, "{paths:?}");
    for path in paths {
        let out = nodeimg().args(&path).arg("--help").assert().success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        let name = path.join(" ");
        assert!(
            text.contains("Example:") || text.contains("Examples:"),
            "`nodeimg {name} --help` shows no example:\n{text}"
        );
        assert!(text.contains(&format!("nodeimg {name}")), "{text}");
    }
}

#[test]
fn usage_errors_exit_2_and_say_what_is_wrong() {
    let out = nodeimg().arg("no-such-command").assert().code(2);
    let text = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(text.contains("no-such-command"), "{text}");

    let out = nodeimg()
        .args(["doctor", "--format", "yaml"])
        .assert()
        .code(2);
    let text = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(text.contains("--format") && text.contains("yaml"), "{text}");

    nodeimg().args(["-v", "-q", "doctor"]).assert().code(2);
}
