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

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use serde::Serialize;

use super::options::{self, Parsed, Spec};
use super::parser::{self, Command, Kickstart, Section};
use super::source;
use super::version::{self, Status, Version};
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
            checker.livemedia(&ks, lmc);
        }
        if policy == Policy::Node {
            checker.node(&ks);
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

/// What makes two definitions of a list command the same one.
type KeyOf = fn(&Parsed) -> Option<String>;

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

    fn syntax(&mut self, ks: &Kickstart) {
        let version = self.version;
        let mut specs = options::SpecCache::default();
        // The first line of each command seen: what pykickstart's conflict check
        // (`conflictingCommands`) looks back at, in constant time a command.
        let mut first_seen: HashMap<&str, &Command> = HashMap::new();
        for item in &ks.items {
            let command = match item {
                parser::Item::Section(section) => {
                    self.section(section);
                    continue;
                }
                parser::Item::Command(c) => c,
            };
            match version::command_status(version, &command.name) {
                Status::Unknown => {
                    self.error(
                        &command.origin,
                        Rule::UnknownCommand,
                        format!("Unknown command: {}", command.name),
                    );
                    continue;
                }
                Status::Removed => {
                    self.error(
                        &command.origin,
                        Rule::RemovedCommand,
                        format!(
                            "{} has been removed from the {version} syntax",
                            command.name
                        ),
                    );
                    continue;
                }
                Status::Deprecated => {
                    self.warn(
                        &command.origin,
                        Rule::DeprecatedCommand,
                        format!(
                            "the {} command is deprecated in {version} and has no effect; remove it",
                            command.name
                        ),
                    );
                    continue;
                }
                Status::Known => {}
            }
            let conflict = version
                .conflicts(&command.name)
                .iter()
                .filter_map(|other| first_seen.get(other))
                .min_by_key(|earlier| earlier.origin.line);
            if let Some(earlier) = conflict {
                let message = format!(
                    "The {} and {} commands can't be used at the same time (the other is at line {}).",
                    command.name, earlier.name, earlier.origin.line
                );
                self.error(&command.origin, Rule::Syntax, message);
            }
            first_seen.entry(command.name.as_str()).or_insert(command);
            if version.warns_deprecated(&command.name) {
                let message = if matches!(command.name.as_str(), "auth" | "authconfig") {
                    "The authconfig command will be deprecated, use authselect instead.".to_owned()
                } else {
                    format!(
                        "{} is deprecated in {version} (ksvalidator rejects it)",
                        command.name
                    )
                };
                self.warn(&command.origin, Rule::DeprecatedCommand, message);
            }
            let Some(spec) = specs.get(version, &command.name) else {
                continue;
            };
            match spec.apply(&command.args) {
                Ok(parsed) => {
                    for option in &parsed.deprecated {
                        self.warn(
                            &command.origin,
                            Rule::DeprecatedOption,
                            format!(
                                "{} {option} is deprecated in {version} (ksvalidator rejects it)",
                                command.name
                            ),
                        );
                    }
                    self.semantics(command, &parsed);
                    self.parsed.push((command.clone(), parsed));
                }
                Err(message) => self.error(&command.origin, Rule::BadOption, message),
            }
        }
        self.duplicates();
    }

    /// The rules each command's own parser adds to argparse's.
    fn semantics(&mut self, command: &Command, parsed: &Parsed) {
        let origin = &command.origin;
        let positionals = parsed.positionals.len();
        match command.name.as_str() {
            "rootpw" if positionals == 0 && !parsed.has("--lock") => {
                self.error(
                    origin,
                    Rule::BadOption,
                    "A single argument is expected for the rootpw command".to_owned(),
                );
            }
            "timezone" => {
                if positionals > 1 {
                    self.error(
                        origin,
                        Rule::BadOption,
                        "One or zero arguments are expected for the timezone command".to_owned(),
                    );
                } else if positionals == 0 && parsed.options.is_empty() {
                    self.error(
                        origin,
                        Rule::BadOption,
                        "At least one option and/or an argument are expected for the timezone command"
                            .to_owned(),
                    );
                }
            }
            "keyboard" => {
                if positionals > 1 {
                    self.error(
                        origin,
                        Rule::BadOption,
                        "A single argument is expected for the keyboard command".to_owned(),
                    );
                } else if positionals == 0 && !parsed.has("--vckeymap") && !parsed.has("--xlayouts")
                {
                    self.error(
                        origin,
                        Rule::BadOption,
                        "keyboard needs a layout, --vckeymap or --xlayouts".to_owned(),
                    );
                }
            }
            "services" if !parsed.has("--enabled") && !parsed.has("--disabled") => {
                self.error(
                    origin,
                    Rule::BadOption,
                    "One of --disabled or --enabled must be provided.".to_owned(),
                );
            }
            "ostreesetup" => {
                let url = parsed.get("--url").unwrap_or("");
                if !["file:", "http:", "https:"]
                    .iter()
                    .any(|scheme| url.starts_with(scheme))
                {
                    self.error(
                        origin,
                        Rule::BadOption,
                        format!("ostree repos must use file, HTTP or HTTPS protocol (--url={url})"),
                    );
                }
            }
            "url" => {
                let sources = ["--url", "--mirrorlist", "--metalink"]
                    .iter()
                    .filter(|o| parsed.has(o))
                    .count();
                if sources != 1 {
                    self.error(
                        origin,
                        Rule::BadOption,
                        format!(
                            "url needs exactly one of --url, --mirrorlist and --metalink ({sources} given)"
                        ),
                    );
                }
            }
            "repo" => {
                let sources = ["--baseurl", "--mirrorlist", "--metalink"]
                    .iter()
                    .filter(|o| parsed.has(o))
                    .count();
                if sources > 1 {
                    self.error(
                        origin,
                        Rule::BadOption,
                        "Only one of --baseurl, --mirrorlist and --metalink may be specified for repo command."
                            .to_owned(),
                    );
                }
            }
            "autopart" => {
                // RHEL8_AutoPart and RHEL10_AutoPart refuse it; RHEL7 and RHEL11 (on
                // Fedora's F45 class) take it.
                let refuses = [8, 9, 10].iter().any(|&n| self.version.is_rhel(n));
                if refuses && parsed.get("--type").is_some_and(|t| t == "btrfs") {
                    self.error(
                        origin,
                        Rule::BadOption,
                        "autopart --type=btrfs is not supported".to_owned(),
                    );
                }
                if let Some(t) = parsed.get("--type")
                    && !["lvm", "btrfs", "plain", "thinp"].contains(&t)
                {
                    self.error(
                        origin,
                        Rule::BadOption,
                        format!("autopart --type={t}: choose lvm, btrfs, plain or thinp"),
                    );
                }
            }
            "volgroup" if positionals == 0 && !parsed.has("--useexisting") => {
                self.error(
                    origin,
                    Rule::BadOption,
                    "volgroup must be given a VG name".to_owned(),
                );
            }
            _ => {}
        }
    }

    /// pykickstart warns (without a line) about a second definition of the same part,
    /// user, group, repo or network device; we name both lines.
    fn duplicates(&mut self) {
        let keys: [(&str, KeyOf, &str); 5] = [
            (
                "part",
                |p| p.positionals.first().cloned(),
                "A partition with the mountpoint",
            ),
            (
                "user",
                |p| p.get("--name").map(str::to_owned),
                "A user with the name",
            ),
            (
                "group",
                |p| p.get("--name").map(str::to_owned),
                "A group with the name",
            ),
            (
                "repo",
                |p| p.get("--name").map(str::to_owned),
                "A repo with the name",
            ),
            (
                "network",
                |p| p.get("--device").map(str::to_owned),
                "A network device with the name",
            ),
        ];
        let mut found = Vec::new();
        for (name, key, what) in keys {
            let mut seen: BTreeMap<String, Origin> = BTreeMap::new();
            for (command, parsed) in self.parsed(name) {
                let Some(k) = key(parsed) else { continue };
                if let Some(first) = seen.get(&k) {
                    found.push((
                        command.origin.clone(),
                        format!(
                            "{what} {k} has already been defined (at line {}); the installer keeps both, livemedia-creator sizes with the last",
                            first.line
                        ),
                    ));
                } else {
                    seen.insert(k, command.origin.clone());
                }
            }
        }
        for (origin, message) in found {
            self.warn(&origin, Rule::Duplicate, message);
        }
    }

    fn section(&mut self, section: &Section) {
        let notation = match section.name.as_str() {
            "%packages" => options::packages_notation(self.version),
            "%certificate" => "--filename=! --dir= --type=".to_owned(),
            "%addon" | "%anaconda" => return,
            name if section.is_script() => options::script_notation(self.version, name).to_owned(),
            _ => return,
        };
        match Spec::parse(&notation).apply(&section.args) {
            Ok(parsed) => {
                for option in &parsed.deprecated {
                    self.warn(
                        &section.origin,
                        Rule::DeprecatedOption,
                        format!(
                            "{} {option} is deprecated in {} (ksvalidator rejects it)",
                            section.name, self.version
                        ),
                    );
                }
                if section.name == "%packages" && parsed.has("--default") && parsed.has("--nocore")
                {
                    self.error(
                        &section.origin,
                        Rule::BadOption,
                        "--default and --nocore cannot be used together".to_owned(),
                    );
                }
            }
            Err(message) => self.error(&section.origin, Rule::BadOption, message),
        }
        if section.name == "%traceback" && self.version.warns_deprecated("%traceback") {
            self.warn(
                &section.origin,
                Rule::DeprecatedCommand,
                "The %traceback section has been deprecated; use %onerror".to_owned(),
            );
        }
        if section.name == "%certificate" && section.body.iter().all(|l| l.text.trim().is_empty()) {
            self.error(
                &section.origin,
                Rule::Syntax,
                "The %certificate section is empty".to_owned(),
            );
        }
        if section.name == "%packages" {
            for line in &section.body {
                let text = line.text.split('#').next().unwrap_or("");
                let words: Vec<&str> = text.split_whitespace().collect();
                if words.first().is_some_and(|w| w.starts_with('@'))
                    && words.contains(&"--nodefaults")
                    && words.contains(&"--optional")
                {
                    self.warn(
                        &line.origin,
                        Rule::BadOption,
                        "Group cannot specify both --nodefaults and --optional".to_owned(),
                    );
                }
            }
        }
    }

    fn traps(&mut self, _ks: &Kickstart) {
        let plaintext: Vec<Origin> = self
            .parsed
            .iter()
            .filter(|(c, p)| match c.name.as_str() {
                "rootpw" => !p.positionals.is_empty() && !p.has("--iscrypted"),
                "user" => p.has("--password") && !p.has("--iscrypted"),
                _ => false,
            })
            .map(|(c, _)| c.origin.clone())
            .collect();
        for origin in plaintext {
            self.warn(
                &origin,
                Rule::PlaintextPassword,
                "a plaintext password: anyone who reads the kickstart (or the image's \
                 anaconda-ks.cfg) has it; give a crypt hash with --iscrypted, or --lock"
                    .to_owned(),
            );
        }
    }

    fn unattended(&mut self, ks: &Kickstart) {
        let top = ks.items.first().map(|i| match i {
            parser::Item::Command(c) => c.origin.clone(),
            parser::Item::Section(s) => s.origin.clone(),
        });
        let missing = |rule_message: String, severity: Severity, findings: &mut Vec<Finding>| {
            findings.push(Finding::new(
                severity,
                top.as_ref().map(|o| Origin::new(o.file.clone(), 0)),
                Rule::Unattended,
                rule_message,
            ));
        };
        let mut findings = Vec::new();
        let has = |name: &str| ks.commands().any(|c| c.name == name);
        let timezone_set = self
            .last("timezone")
            .is_some_and(|(_, p)| !p.positionals.is_empty());
        if !timezone_set {
            missing(
                "no time zone (timezone Area/City): the Time & date spoke stays incomplete and anaconda stops"
                    .to_owned(),
                Severity::Error,
                &mut findings,
            );
        }
        let image_payload = ["liveimg", "ostreesetup", "ostreecontainer", "bootc"]
            .iter()
            .any(|c| has(c));
        if !image_payload && !ks.sections().any(|s| s.name == "%packages") {
            missing(
                "no %packages section: the Software selection spoke stays incomplete".to_owned(),
                Severity::Error,
                &mut findings,
            );
        }
        let sources = [
            "url",
            "nfs",
            "cdrom",
            "harddrive",
            "liveimg",
            "ostreesetup",
            "ostreecontainer",
            "bootc",
        ];
        if !sources.iter().any(|c| has(c)) {
            missing(
                "no installation source (url, nfs, cdrom, harddrive, liveimg, ostreesetup): the Installation source spoke stays incomplete, unless the build tool adds one"
                    .to_owned(),
                Severity::Error,
                &mut findings,
            );
        }
        let root = self
            .parsed("part")
            .any(|(_, p)| p.positionals.first().is_some_and(|m| m == "/"))
            || self
                .parsed("logvol")
                .any(|(_, p)| p.positionals.first().is_some_and(|m| m == "/"))
            || has("autopart")
            || ks
                .command_all("mount")
                .any(|c| c.args.get(1).is_some_and(|m| m == "/"))
            || ks
                .command_all("raid")
                .any(|c| c.args.first().is_some_and(|m| m == "/"));
        if !root {
            missing(
                "no root filesystem (part /, logvol /, autopart): the Installation destination spoke stays incomplete"
                    .to_owned(),
                Severity::Error,
                &mut findings,
            );
        }
        let admin = has("rootpw")
            || self.parsed("user").any(|(_, p)| {
                !p.has("--lock")
                    && p.get("--groups")
                        .is_some_and(|g| g.split(',').any(|g| g.trim() == "wheel"))
            });
        if !admin {
            missing(
                "no rootpw and no unlocked user in wheel: the Root password and User spokes stay incomplete"
                    .to_owned(),
                Severity::Error,
                &mut findings,
            );
        }
        if !has("lang") {
            missing(
                "no lang: harmless in cmdline installs, incomplete in graphical ones".to_owned(),
                Severity::Warning,
                &mut findings,
            );
        }
        if !has("keyboard") {
            missing(
                "no keyboard: harmless in cmdline installs, incomplete in graphical ones"
                    .to_owned(),
                Severity::Warning,
                &mut findings,
            );
        }
        self.findings.extend(findings);
    }

    fn livemedia(&mut self, ks: &Kickstart, mode: LmcMode) {
        let file = ks
            .commands()
            .next()
            .map(|c| Origin::new(c.origin.file.clone(), 0));
        if mode != LmcMode::NoVirt
            && ks.command("shutdown").is_none()
            && ks.command("poweroff").is_none()
            && let Some(origin) = &file
        {
            self.error(
                origin,
                Rule::Livemedia,
                "The kickstart must include shutdown (or poweroff) when using virt installation"
                    .to_owned(),
            );
        }
        if mode == LmcMode::Iso {
            let dracut_live = ks
                .sections()
                .filter(|s| s.name == "%packages")
                .flat_map(|s| &s.body)
                .any(|l| l.text.split('#').next().unwrap_or("").trim() == "dracut-live");
            if !dracut_live && let Some(origin) = &file {
                self.error(
                    origin,
                    Rule::Livemedia,
                    "dracut-live package is missing from the kickstart (a live ISO boots with it)"
                        .to_owned(),
                );
            }
        }
        for name in ["text", "cmdline", "graphical"] {
            for command in ks.command_all(name) {
                self.error(
                    &command.origin,
                    Rule::Livemedia,
                    format!(
                        "livemedia-creator refuses a display mode ({name}): it chooses the mode itself; remove the line"
                    ),
                );
            }
        }
        let has = |name: &str| ks.commands().any(|c| c.name == name);
        if (has("url") || has("nfs")) && !has("network") {
            let origin = ks
                .command("url")
                .or(ks.command("nfs"))
                .map(|c| c.origin.clone());
            if let Some(origin) = origin {
                self.error(
                    &origin,
                    Rule::Livemedia,
                    "livemedia-creator needs a network line when the source is url or nfs (even file: URLs)"
                        .to_owned(),
                );
            }
        }
        if !has("url") {
            for repo in ks.command_all("repo") {
                self.error(
                    &repo.origin,
                    Rule::Livemedia,
                    "repo can only be used with the url install method (livemedia-creator)"
                        .to_owned(),
                );
            }
        }
        if mode == LmcMode::NoVirt
            && !has("url")
            && !has("nfs")
            && !has("ostreesetup")
            && let Some(first) = ks.commands().next()
        {
            let origin = Origin::new(first.origin.file.clone(), 0);
            self.error(
                &origin,
                Rule::Livemedia,
                "livemedia-creator --no-virt installs only from url, nfs or ostreesetup".to_owned(),
            );
        }
        if mode == LmcMode::Iso {
            return;
        }
        // A filesystem image holds one filesystem: / (swap is allowed and ignored).
        if let Some(autopart) = ks.command("autopart") {
            self.error(
                &autopart.origin,
                Rule::Livemedia,
                "Filesystem images must use a single / part, not autopart".to_owned(),
            );
        }
        let others: Vec<(Origin, String)> = self
            .parsed("part")
            .chain(self.parsed("logvol"))
            .filter_map(|(c, p)| {
                let mount = p.positionals.first()?;
                (mount != "/" && mount != "swap").then(|| (c.origin.clone(), mount.clone()))
            })
            .collect();
        for (origin, mount) in others {
            self.error(
                &origin,
                Rule::Livemedia,
                format!("Filesystem images must use a single / part, not {mount}"),
            );
        }
    }

    fn node(&mut self, ks: &Kickstart) {
        let file_origin = ks
            .commands()
            .next()
            .map(|c| Origin::new(c.origin.file.clone(), 0));
        let need =
            |ok: bool, origin: Option<Origin>, message: &str, findings: &mut Vec<Finding>| {
                if !ok {
                    findings.push(Finding::new(
                        Severity::Error,
                        origin,
                        Rule::NodePolicy,
                        message.to_owned(),
                    ));
                }
            };
        let mut findings = Vec::new();
        let origin_of = |name: &str| {
            ks.command(name)
                .map(|c| c.origin.clone())
                .or(file_origin.clone())
        };
        need(
            ks.command("selinux").is_some(),
            file_origin.clone(),
            "the Node sets SELinux explicitly: add selinux --enforcing",
            &mut findings,
        );
        need(
            self.last("rootpw").is_some_and(|(_, p)| p.has("--lock")),
            origin_of("rootpw"),
            "the Node's root account is locked: rootpw --lock",
            &mut findings,
        );
        need(
            self.parsed("user")
                .any(|(_, p)| p.get("--name") == Some("node") && p.has("--lock")),
            origin_of("user"),
            "the Node has a locked user node: user --name=node --lock",
            &mut findings,
        );
        need(
            self.last("clearpart")
                .is_some_and(|(_, p)| p.has("--all") && p.has("--initlabel")),
            origin_of("clearpart"),
            "the Node clears the disk: clearpart --all --initlabel",
            &mut findings,
        );
        let parts: Vec<&(Command, Parsed)> = self.parsed("part").collect();
        match parts.as_slice() {
            [(command, p)] => {
                let origin = Some(command.origin.clone());
                need(
                    p.positionals.first().is_some_and(|m| m == "/"),
                    origin.clone(),
                    "the Node's one partition is /",
                    &mut findings,
                );
                need(
                    p.get("--fstype") == Some("ext4"),
                    origin.clone(),
                    "the Node's / is ext4 (rootfs.img): --fstype=ext4",
                    &mut findings,
                );
                need(
                    p.get("--fsoptions")
                        .is_some_and(|o| o.split(',').any(|o| o.trim() == "discard")),
                    origin.clone(),
                    "the Node's / is mounted with discard: --fsoptions=discard",
                    &mut findings,
                );
                need(
                    p.has("--size") && !p.has("--grow"),
                    origin,
                    "the Node's / has an explicit --size (it sizes rootfs.img), without --grow",
                    &mut findings,
                );
            }
            _ => need(
                false,
                parts
                    .get(1)
                    .map(|(c, _)| c.origin.clone())
                    .or(file_origin.clone()),
                "the Node has exactly one partition, / (ext4, discard, explicit size)",
                &mut findings,
            ),
        }
        need(
            ks.command("poweroff").is_some() || ks.command("shutdown").is_some(),
            file_origin.clone(),
            "the Node's build ends the install with poweroff (or shutdown)",
            &mut findings,
        );
        // The placeholder must be in the image, the update package kept out of it.
        let text: String = ks
            .sections()
            .filter(|s| s.name == "%packages" || s.name == "%post")
            .flat_map(|s| s.body.iter().map(|l| l.text.clone()))
            .collect::<Vec<_>>()
            .join("\n");
        need(
            text.contains("ovirt-node-ng-image-update-placeholder"),
            file_origin.clone(),
            "the image installs ovirt-node-ng-image-update-placeholder (in %packages or %post): without it a Node has no upgrade path",
            &mut findings,
        );
        let excluded = text.contains("-ovirt-node-ng-image-update\n")
            || text.ends_with("-ovirt-node-ng-image-update")
            || text.contains("--exclude ovirt-node-ng-image-update")
            || text.contains("--exclude=ovirt-node-ng-image-update");
        need(
            excluded,
            file_origin.clone(),
            "ovirt-node-ng-image-update itself is kept out of the image (-ovirt-node-ng-image-update, or dnf --exclude): its Obsoletes would replace the placeholder",
            &mut findings,
        );
        // %packages stays small: anything beyond the base is installed by %post.
        let base = [
            "@core",
            "dracut-live",
            "dracut-config-generic",
            "-dracut-config-rescue",
            "centos-stream-repos",
            "scap-security-guide",
            "centos-release-ovirt45",
            "cockpit",
            "ovirt-release-host-node",
            "ovirt-node-ng-image-update-placeholder",
            "-ovirt-node-ng-image-update",
        ];
        for section in ks.sections().filter(|s| s.name == "%packages") {
            for line in &section.body {
                let word = line.text.split('#').next().unwrap_or("").trim();
                let name = word.split_whitespace().next().unwrap_or("");
                if !name.is_empty() && !base.contains(&name) {
                    findings.push(Finding::warning(
                        Some(line.origin.clone()),
                        Rule::NodePolicy,
                        format!(
                            "{name} in %packages: the Node keeps %packages to its base set and installs the rest from %post"
                        ),
                    ));
                }
            }
        }
        self.findings.extend(findings);
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
