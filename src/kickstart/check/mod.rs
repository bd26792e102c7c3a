//! Judging a parsed kickstart:
//!
//! * **syntax**, as pykickstart judges it under the chosen version: unknown, removed
//!   and deprecated commands, options (argparse's rules), each command's own
//!   argument rules, conflicting partitioning methods, duplicates, section headers;
//! * **traps** pykickstart is silent about (from the parser, and plaintext passwords);
//! * **unattended**: what would leave an anaconda spoke incomplete, which stops a
//!   livemedia-creator build (it runs anaconda in cmdline mode);
//! * **lmc**: livemedia-creator's own rules for a `--no-virt --make-fsimage` build;
//! * **node**: the Node's policy (`--policy node`).

mod livemedia;
mod node;
mod syntax;
mod traps;
mod unattended;

use std::path::Path;
use std::rc::Rc;

use serde::Serialize;

use super::options::Parsed;
use super::parser::{self, Command};
use super::source;
use super::version::Version;
use super::{Finding, Origin, Rule, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Syntax, traps, unattended completeness and livemedia-creator's rules.
    Generic,
    /// All of that and the oVirt Node image's rules.
    Node,
}

/// The livemedia-creator build the kickstart is for: its rules differ by mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LmcMode {
    /// `--no-virt --make-fsimage`, as nodeimg runs it: a single /, source from url,
    /// nfs or ostreesetup.
    NoVirt,
    /// `--make-fsimage` in a VM: a single /, and the install must end with shutdown.
    Virt,
    /// `--make-iso`: dracut-live in %packages, and shutdown (a VM install).
    Iso,
    /// Not a livemedia-creator build (the dnf backend): skip its rules.
    Off,
}

/// Where the version came from.
#[derive(Debug, Clone, Serialize)]
pub struct VersionChoice {
    pub version: String,
    pub from: String,
    /// The release it targets (livemedia-creator's --releasever).
    pub releasever: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub kickstart: String,
    pub version: VersionChoice,
    pub policy: Policy,
    pub lmc: LmcMode,
    pub findings: Vec<Finding>,
    pub errors: usize,
    pub warnings: usize,
    /// What the kickstart says, as typed values (passwords left out).
    pub model: super::model::Model,
}

impl Report {
    /// Whether the check fails: errors, or warnings too under `strict`.
    pub fn failed(&self, strict: bool) -> bool {
        self.errors > 0 || (strict && self.warnings > 0)
    }
}

/// Load, parse and check `path`. `version` overrides a `#version=` line.
pub fn check(path: &Path, version: Option<Version>, policy: Policy, lmc: LmcMode) -> Report {
    let source = source::load(path);
    let ks = parser::parse(&source);
    let mut findings = ks.findings.clone();
    let (version, from) = match version {
        Some(v) => (v, "--ks-version".to_owned()),
        None => match version_line(&source) {
            Some((Ok(v), origin)) => (v, format!("#version= at {origin}")),
            Some((Err(err), origin)) => {
                findings.push(Finding::error(Some(origin), Rule::Syntax, err));
                (Version::default_version(), "default".to_owned())
            }
            None => (Version::default_version(), "default".to_owned()),
        },
    };
    let mut checker = Checker {
        version,
        findings,
        parsed: Vec::new(),
    };
    let model = super::model::build(&ks, version);
    // When pykickstart reads nothing, neither does the rest of the check: a missing
    // time zone is no news about an empty or undecodable file.
    if !source.fatal {
        checker.syntax(&ks);
        checker.traps(&ks);
        checker.unattended(&ks);
        if lmc != LmcMode::Off {
            checker.livemedia(&model, lmc);
        }
        if policy == Policy::Node {
            checker.node(&model);
        }
    }
    let mut findings = checker.findings;
    // Every finding names a file: those about the kickstart as a whole name the top one.
    let top = Rc::new(path.to_owned());
    for finding in &mut findings {
        if finding.origin.is_none() {
            finding.origin = Some(Origin::new(Rc::clone(&top), 0));
        }
    }
    // In reading order: by file, then line; a file's own findings after its lines.
    let position = |f: &Finding| match &f.origin {
        Some(o) => (
            source
                .files
                .iter()
                .position(|p| *p == o.file)
                .unwrap_or(usize::MAX),
            o.line == 0,
            o.line,
        ),
        None => (usize::MAX, true, 0),
    };
    findings.sort_by_key(position);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    Report {
        kickstart: path.display().to_string(),
        version: VersionChoice {
            version: version.to_string(),
            from,
            releasever: version.releasever(),
        },
        policy,
        lmc,
        findings,
        errors,
        warnings,
        model,
    }
}

/// The first `#version=` line of the top file.
fn version_line(source: &source::Source) -> Option<(Result<Version, String>, Origin)> {
    let top = source.files.first()?;
    source
        .lines
        .iter()
        .filter(|l| &l.origin.file == top)
        .find_map(|l| {
            l.text
                .trim()
                .strip_prefix("#version=")
                .map(|v| (v.trim().parse(), l.origin.clone()))
        })
}

struct Checker {
    version: Version,
    findings: Vec<Finding>,
    /// Typed commands and their parsed arguments.
    parsed: Vec<(Command, Parsed)>,
}

impl Checker {
    fn error(&mut self, origin: &Origin, rule: Rule, message: String) {
        self.findings
            .push(Finding::error(Some(origin.clone()), rule, message));
    }

    fn warn(&mut self, origin: &Origin, rule: Rule, message: String) {
        self.findings
            .push(Finding::warning(Some(origin.clone()), rule, message));
    }

    fn parsed(&self, name: &str) -> impl Iterator<Item = &(Command, Parsed)> {
        self.parsed
            .iter()
            .filter(move |(c, _)| c.name == name || (name == "part" && c.name == "partition"))
    }

    fn last(&self, name: &str) -> Option<&(Command, Parsed)> {
        self.parsed(name).last()
    }
}

/// Text lines for people: `FILE:LINE: severity: message`.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    for finding in &report.findings {
        if finding.severity == Severity::Info {
            continue;
        }
        out.push_str(&finding.to_string());
        out.push('\n');
    }
    out.push_str(&format!(
        "{}: {} error{}, {} warning{} ({} syntax from {}, policy {})\n",
        report.kickstart,
        report.errors,
        if report.errors == 1 { "" } else { "s" },
        report.warnings,
        if report.warnings == 1 { "" } else { "s" },
        report.version.version,
        report.version.from,
        match report.policy {
            Policy::Generic => "generic",
            Policy::Node => "node",
        }
    ));
    out
}
