//! Syntax, as pykickstart judges it under the chosen version: unknown, removed and
//! deprecated commands, options, each command's own rules, conflicting partitioning
//! methods, duplicates, section headers.

use std::collections::{BTreeMap, HashMap};

use super::Checker;
use crate::kickstart::options::{self, Parsed, Spec};
use crate::kickstart::parser::{self, Command, Kickstart, Section};
use crate::kickstart::version::{self, Status, Version};
use crate::kickstart::{Origin, Rule};

impl Checker {
    pub(super) fn syntax(&mut self, ks: &Kickstart) {
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

    /// Each command's own argument rules (pykickstart's `parse` methods).
    fn semantics(&mut self, command: &Command, parsed: &Parsed) {
        for message in command_rules(self.version, &command.name, parsed) {
            self.error(&command.origin, Rule::BadOption, message);
        }
    }

    /// pykickstart warns (without a line) about a second definition of the same part,
    /// user, group, repo or network device; we name both lines.
    fn duplicates(&mut self) {
        // What makes two definitions of a list command the same one: the first
        // positional (None) or an option's value.
        let keys: [(&str, Option<&str>, &str); 5] = [
            ("part", None, "A partition with the mountpoint"),
            ("user", Some("--name"), "A user with the name"),
            ("group", Some("--name"), "A group with the name"),
            ("repo", Some("--name"), "A repo with the name"),
            (
                "network",
                Some("--device"),
                "A network device with the name",
            ),
        ];
        let mut found = Vec::new();
        for (name, key, what) in keys {
            let mut seen: BTreeMap<String, Origin> = BTreeMap::new();
            for (command, parsed) in self.parsed(name) {
                let k = match key {
                    None => parsed.positionals.first().map(String::as_str),
                    Some(option) => parsed.get(option),
                };
                let Some(k) = k.map(str::to_owned) else {
                    continue;
                };
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
}

/// What pykickstart's `parse` methods refuse in a command whose options parsed: one
/// message a broken rule.
fn command_rules(version: Version, name: &str, parsed: &Parsed) -> Vec<String> {
    let positionals = parsed.positionals.len();
    let count = |options: [&str; 3]| options.iter().filter(|o| parsed.has(o)).count();
    let mut broken = Vec::new();
    match name {
        "rootpw" if positionals == 0 && !parsed.has("--lock") => {
            broken.push("A single argument is expected for the rootpw command".to_owned());
        }
        "timezone" if positionals > 1 => {
            broken.push("One or zero arguments are expected for the timezone command".to_owned());
        }
        "timezone" if positionals == 0 && parsed.options.is_empty() => broken.push(
            "At least one option and/or an argument are expected for the timezone command"
                .to_owned(),
        ),
        "keyboard" if positionals > 1 => {
            broken.push("A single argument is expected for the keyboard command".to_owned());
        }
        "keyboard"
            if positionals == 0 && !parsed.has("--vckeymap") && !parsed.has("--xlayouts") =>
        {
            broken.push("keyboard needs a layout, --vckeymap or --xlayouts".to_owned());
        }
        "services" if !parsed.has("--enabled") && !parsed.has("--disabled") => {
            broken.push("One of --disabled or --enabled must be provided.".to_owned());
        }
        "ostreesetup" => {
            let url = parsed.get("--url").unwrap_or("");
            if !["file:", "http:", "https:"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
            {
                broken.push(format!(
                    "ostree repos must use file, HTTP or HTTPS protocol (--url={url})"
                ));
            }
        }
        "url" => {
            let sources = count(["--url", "--mirrorlist", "--metalink"]);
            if sources != 1 {
                broken.push(format!(
                    "url needs exactly one of --url, --mirrorlist and --metalink ({sources} given)"
                ));
            }
        }
        "repo" if count(["--baseurl", "--mirrorlist", "--metalink"]) > 1 => broken.push(
            "Only one of --baseurl, --mirrorlist and --metalink may be specified for repo command."
                .to_owned(),
        ),
        "autopart" => {
            // RHEL8_AutoPart and RHEL10_AutoPart refuse it; RHEL7 and RHEL11 (on
            // Fedora's F45 class) take it.
            let refuses = [8, 9, 10].iter().any(|&n| version.is_rhel(n));
            if refuses && parsed.get("--type").is_some_and(|t| t == "btrfs") {
                broken.push("autopart --type=btrfs is not supported".to_owned());
            }
            if let Some(t) = parsed.get("--type")
                && !["lvm", "btrfs", "plain", "thinp"].contains(&t)
            {
                broken.push(format!(
                    "autopart --type={t}: choose lvm, btrfs, plain or thinp"
                ));
            }
        }
        "volgroup" if positionals == 0 && !parsed.has("--useexisting") => {
            broken.push("volgroup must be given a VG name".to_owned());
        }
        _ => {}
    }
    broken
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kickstart::options::Spec;

    fn rules(version: Version, line: &str) -> Vec<String> {
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        let spec = Spec::parse(version.generated_spec(&words[0]).unwrap());
        let parsed = spec.apply(&words[1..]).unwrap();
        command_rules(version, &words[0], &parsed)
    }

    #[test]
    fn each_command_keeps_its_own_argument_rules() {
        let rhel9 = Version::rhel(9);
        assert!(rules(rhel9, "rootpw --lock").is_empty());
        assert_eq!(rules(rhel9, "rootpw").len(), 1);
        assert!(rules(rhel9, "timezone")[0].contains("At least one option"));
        assert!(rules(rhel9, "timezone a b")[0].contains("One or zero"));
        assert!(rules(rhel9, "keyboard")[0].contains("needs a layout"));
        assert!(rules(rhel9, "services")[0].contains("--disabled or --enabled"));
        assert!(rules(rhel9, "url --url=file:///r").is_empty());
        assert!(rules(rhel9, "url --url=file:///r --mirrorlist=http://m")[0].contains("2 given"));
        assert!(rules(rhel9, "repo --name=a --baseurl=x --metalink=y")[0].contains("Only one"));
        assert!(
            rules(
                rhel9,
                "ostreesetup --osname=a --remote=a --url=ftp://x --ref=r"
            )[0]
            .contains("file, HTTP or HTTPS")
        );
        assert!(rules(rhel9, "autopart --type=btrfs")[0].contains("not supported"));
        assert!(rules(Version::rhel(7), "autopart --type=btrfs").is_empty());
        assert!(rules(rhel9, "volgroup")[0].contains("VG name"));
    }
}
