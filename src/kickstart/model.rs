//! The typed model of an appliance kickstart: what the install backends and the image
//! build read (the root partition's size and filesystem, the repositories, `%packages`
//! after pykickstart's merge rules, users, services, scripts). Built from commands the
//! checker accepts; a command with errors is left out (the check reports it).
//! Single-instance commands are last-wins, list commands accumulate, as in pykickstart.

use std::fmt;

use serde::Serialize;

use super::Origin;
use super::options::{Parsed, Spec, packages_notation, script_notation};
use super::parser::{Command, Kickstart, Section};
use super::version::Version;

#[derive(Debug, Default, Serialize)]
pub struct Model {
    pub source: Option<Source>,
    pub repos: Vec<Repo>,
    pub lang: Option<String>,
    pub keyboard: Option<String>,
    pub timezone: Option<Timezone>,
    pub network: Vec<Network>,
    pub firewall: Option<Firewall>,
    pub selinux: Option<String>,
    pub authselect: Option<Vec<String>>,
    pub rootpw: Option<Password>,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub sshkeys: Vec<SshKey>,
    pub services: Services,
    pub firstboot: Option<String>,
    pub bootloader: Option<Bootloader>,
    pub zerombr: bool,
    pub clearpart: Option<Clearpart>,
    pub ignoredisk: Option<Vec<String>>,
    pub partitions: Vec<Partition>,
    pub autopart: bool,
    pub reqpart: Option<bool>,
    pub volgroups: Vec<String>,
    pub logvols: Vec<Partition>,
    /// `text`, `cmdline` or `graphical`.
    pub display: Option<String>,
    /// How the install ends.
    pub action: Option<FinalAction>,
    pub packages: Option<Packages>,
    pub scripts: Vec<Script>,
    /// Every command line, in order: what a backend checks it can honour.
    #[serde(skip)]
    pub commands: Vec<(String, Origin)>,
}

impl Model {
    /// The last partition for `/`: what sizes a filesystem image (livemedia-creator
    /// keeps the last definition per mount point).
    pub fn root(&self) -> Option<&Partition> {
        self.partitions
            .iter()
            .chain(&self.logvols)
            .rfind(|p| p.mountpoint == "/")
    }
}

#[derive(Debug, Serialize)]
pub struct Source {
    /// `url`, `liveimg`, `nfs`, …
    pub kind: String,
    pub url: Option<String>,
    pub mirrorlist: Option<String>,
    pub metalink: Option<String>,
    pub proxy: Option<String>,
    pub noverifyssl: bool,
}

/// Where a repository is and what of it to take: the settings a `repo` line and a
/// dnf .repo file share.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepoSettings {
    pub baseurl: Option<String>,
    pub mirrorlist: Option<String>,
    pub metalink: Option<String>,
    pub cost: Option<i64>,
    pub includepkgs: Vec<String>,
    pub excludepkgs: Vec<String>,
    pub proxy: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Repo {
    pub name: String,
    #[serde(flatten)]
    pub settings: RepoSettings,
    pub install: bool,
    pub noverifyssl: bool,
    pub origin: Origin,
}

#[derive(Debug, Serialize)]
pub struct Timezone {
    pub zone: Option<String>,
    pub utc: bool,
}

#[derive(Debug, Serialize)]
pub struct Network {
    pub device: Option<String>,
    pub bootproto: Option<String>,
    pub hostname: Option<String>,
    pub ip: Option<String>,
    pub netmask: Option<String>,
    pub gateway: Option<String>,
    pub nameserver: Option<String>,
    pub activate: bool,
    pub onboot: Option<bool>,
    pub noipv6: bool,
}

#[derive(Debug, Serialize)]
pub struct Firewall {
    pub enabled: bool,
    pub services: Vec<String>,
    pub ports: Vec<String>,
    pub remove_services: Vec<String>,
    pub trust: Option<String>,
    pub use_system_defaults: bool,
}

#[derive(Debug, Serialize)]
pub struct Password {
    /// Never serialised: a report must not carry it.
    #[serde(skip)]
    pub password: Option<String>,
    pub iscrypted: bool,
    pub lock: bool,
    pub allow_ssh: bool,
}

#[derive(Debug, Serialize)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    pub password: Password,
    pub homedir: Option<String>,
    pub shell: Option<String>,
    pub uid: Option<i64>,
    pub gid: Option<i64>,
    pub gecos: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Group {
    pub name: String,
    pub gid: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct SshKey {
    pub username: String,
    pub key: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Services {
    pub enabled: Vec<String>,
    pub disabled: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Bootloader {
    pub location: Option<String>,
    pub append: Option<String>,
    pub timeout: Option<i64>,
    pub disabled: bool,
}

#[derive(Debug, Serialize)]
pub struct Clearpart {
    /// `all`, `linux`, `none`, or `list`.
    pub which: Option<String>,
    pub initlabel: bool,
    pub drives: Vec<String>,
    pub disklabel: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Partition {
    pub mountpoint: String,
    /// MiB.
    pub size: Option<i64>,
    /// `--size` is on the line (even when its value is not a number).
    #[serde(skip)]
    pub size_given: bool,
    pub grow: bool,
    pub fstype: Option<String>,
    pub fsoptions: Option<String>,
    pub label: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, Default, Serialize)]
pub struct Packages {
    pub packages: Vec<String>,
    pub groups: Vec<PackageGroup>,
    /// `@^environment`.
    pub environment: Option<String>,
    pub excluded_packages: Vec<String>,
    pub excluded_groups: Vec<String>,
    /// The last header's options (`--nocore`, `--excludedocs`, `--inst-langs=…`, …).
    pub options: Vec<(String, String)>,
    /// Each line's first word (`pkg`, `-pkg`, `@group`) and where it is, in every
    /// section: what the policy rules judge line by line.
    #[serde(skip)]
    pub lines: Vec<(String, Origin)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageGroup {
    pub name: String,
    /// `default` (the default), `nodefaults` or `optional`.
    pub include: String,
}

/// The script sections, in the order anaconda runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ScriptSection {
    #[serde(rename = "%pre")]
    Pre,
    #[serde(rename = "%pre-install")]
    PreInstall,
    #[serde(rename = "%post")]
    Post,
    #[serde(rename = "%onerror")]
    OnError,
    #[serde(rename = "%traceback")]
    Traceback,
}

impl ScriptSection {
    /// The section a header names, if it is a script section.
    pub fn from_header(name: &str) -> Option<ScriptSection> {
        Some(match name {
            "%pre" => ScriptSection::Pre,
            "%pre-install" => ScriptSection::PreInstall,
            "%post" => ScriptSection::Post,
            "%onerror" => ScriptSection::OnError,
            "%traceback" => ScriptSection::Traceback,
            _ => return None,
        })
    }

    pub fn header(self) -> &'static str {
        match self {
            ScriptSection::Pre => "%pre",
            ScriptSection::PreInstall => "%pre-install",
            ScriptSection::Post => "%post",
            ScriptSection::OnError => "%onerror",
            ScriptSection::Traceback => "%traceback",
        }
    }
}

impl fmt::Display for ScriptSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header())
    }
}

/// How the install ends (`reboot`; `shutdown` or `poweroff`; `halt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinalAction {
    Reboot,
    Shutdown,
    Halt,
}

#[derive(Debug, Serialize)]
pub struct Script {
    pub section: ScriptSection,
    pub interpreter: Option<String>,
    pub nochroot: bool,
    pub erroronfail: bool,
    pub log: Option<String>,
    pub body: String,
    pub origin: Origin,
}

fn list(value: Option<&str>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn text(p: &Parsed, option: &str) -> Option<String> {
    p.get(option).map(str::to_owned)
}

fn int(p: &Parsed, option: &str) -> Option<i64> {
    p.get(option)
        .and_then(|v| v.trim().replace('_', "").parse().ok())
}

fn boolean(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "on" | "yes" | "true" | "1"
    )
}

/// Build the model of `ks` under `version`.
pub fn build(ks: &Kickstart, version: Version) -> Model {
    let mut model = Model::default();
    let mut specs = super::options::SpecCache::default();
    for command in ks.commands() {
        model
            .commands
            .push((command.name.clone(), command.origin.clone()));
        let Some(spec) = specs.get(version, &command.name) else {
            continue;
        };
        let Ok(p) = spec.apply(&command.args) else {
            continue;
        };
        apply(&mut model, command, &p);
    }
    let mut first_packages = true;
    for section in ks.sections() {
        match section.name.as_str() {
            "%packages" => {
                let packages = model.packages.get_or_insert_with(Packages::default);
                merge_packages(packages, section, version, first_packages);
                first_packages = false;
            }
            _ if section.is_script() => {
                if let Some(script) = script(section, version) {
                    model.scripts.push(script);
                }
            }
            _ => {}
        }
    }
    model
}

/// Fold one parsed command into the model: each family of commands has its helper,
/// which says whether the command was one of its own.
fn apply(model: &mut Model, command: &Command, p: &Parsed) {
    let _ = apply_source(model, command, p)
        || apply_system(model, command, p)
        || apply_accounts(model, command, p)
        || apply_services(model, command, p)
        || apply_disks(model, command, p)
        || apply_install(model, command);
}

/// Where the packages come from.
fn apply_source(model: &mut Model, command: &Command, p: &Parsed) -> bool {
    match command.name.as_str() {
        "url" | "liveimg" => {
            model.source = Some(Source {
                kind: command.name.clone(),
                url: text(p, "--url"),
                mirrorlist: text(p, "--mirrorlist"),
                metalink: text(p, "--metalink"),
                proxy: text(p, "--proxy"),
                noverifyssl: p.has("--noverifyssl"),
            })
        }
        "repo" => model.repos.push(Repo {
            name: text(p, "--name").unwrap_or_default(),
            settings: RepoSettings {
                baseurl: text(p, "--baseurl"),
                mirrorlist: text(p, "--mirrorlist"),
                metalink: text(p, "--metalink"),
                cost: int(p, "--cost"),
                includepkgs: list(p.get("--includepkgs")),
                excludepkgs: list(p.get("--excludepkgs")),
                proxy: text(p, "--proxy"),
            },
            install: p.has("--install"),
            noverifyssl: p.has("--noverifyssl"),
            origin: command.origin.clone(),
        }),
        _ => return false,
    }
    true
}

/// The installed system's settings.
fn apply_system(model: &mut Model, command: &Command, p: &Parsed) -> bool {
    let first = p.positionals.first().cloned();
    match command.name.as_str() {
        "lang" => model.lang = first,
        "keyboard" => {
            model.keyboard = first
                .or_else(|| text(p, "--vckeymap"))
                .or_else(|| list(p.get("--xlayouts")).into_iter().next())
        }
        "timezone" => {
            model.timezone = Some(Timezone {
                zone: first,
                utc: p.has("--utc") || p.has("--isUtc"),
            })
        }
        "network" => model.network.push(Network {
            device: text(p, "--device"),
            bootproto: text(p, "--bootproto"),
            hostname: text(p, "--hostname"),
            ip: text(p, "--ip"),
            netmask: text(p, "--netmask"),
            gateway: text(p, "--gateway"),
            nameserver: text(p, "--nameserver"),
            activate: p.has("--activate"),
            onboot: p.get("--onboot").map(boolean),
            noipv6: p.has("--noipv6"),
        }),
        "firewall" => {
            model.firewall = Some(Firewall {
                enabled: !p.has("--disable"),
                services: list(p.get("--service")),
                ports: list(p.get("--port")),
                remove_services: list(p.get("--remove-service")),
                trust: text(p, "--trust"),
                use_system_defaults: p.has("--use-system-defaults"),
            })
        }
        "selinux" => {
            // Flags sharing a destination: the last one given wins; we keep the
            // strongest statement of intent in the order pykickstart checks them.
            let mode = ["--disabled", "--permissive", "--enforcing"]
                .iter()
                .find(|m| p.has(m))
                .map(|m| m.trim_start_matches('-').to_owned());
            model.selinux = mode.or(model.selinux.take());
        }
        "authselect" => model.authselect = Some(p.positionals.clone()),
        _ => return false,
    }
    true
}

/// Accounts and keys.
fn apply_accounts(model: &mut Model, command: &Command, p: &Parsed) -> bool {
    let first = p.positionals.first().cloned();
    match command.name.as_str() {
        "rootpw" => model.rootpw = Some(password(p, first)),
        "user" => model.users.push(User {
            name: text(p, "--name").unwrap_or_default(),
            groups: list(p.get("--groups")),
            password: password(p, text(p, "--password")),
            homedir: text(p, "--homedir"),
            shell: text(p, "--shell"),
            uid: int(p, "--uid"),
            gid: int(p, "--gid"),
            gecos: text(p, "--gecos"),
        }),
        "group" => model.groups.push(Group {
            name: text(p, "--name").unwrap_or_default(),
            gid: int(p, "--gid"),
        }),
        "sshkey" => model.sshkeys.push(SshKey {
            username: text(p, "--username").unwrap_or_default(),
            key: first.unwrap_or_default(),
        }),
        _ => return false,
    }
    true
}

/// Services, first boot and the bootloader.
fn apply_services(model: &mut Model, command: &Command, p: &Parsed) -> bool {
    match command.name.as_str() {
        "services" => {
            model.services = Services {
                enabled: list(p.get("--enabled")),
                disabled: list(p.get("--disabled")),
            }
        }
        "firstboot" => {
            model.firstboot = ["--reconfig", "--enable", "--disable"]
                .iter()
                .find(|m| p.has(m))
                .map(|m| m.trim_start_matches('-').to_owned())
        }
        "bootloader" => {
            model.bootloader = Some(Bootloader {
                location: text(p, "--location"),
                append: text(p, "--append"),
                timeout: int(p, "--timeout"),
                disabled: p.has("--disabled"),
            })
        }
        _ => return false,
    }
    true
}

/// Disks and partitions.
fn apply_disks(model: &mut Model, command: &Command, p: &Parsed) -> bool {
    let first = p.positionals.first().cloned();
    match command.name.as_str() {
        "zerombr" => model.zerombr = true,
        "clearpart" => {
            model.clearpart = Some(Clearpart {
                which: ["--all", "--linux", "--none", "--list"]
                    .iter()
                    .find(|m| p.has(m))
                    .map(|m| m.trim_start_matches('-').to_owned()),
                initlabel: p.has("--initlabel"),
                drives: list(p.get("--drives")),
                disklabel: text(p, "--disklabel"),
            })
        }
        "ignoredisk" => model.ignoredisk = Some(list(p.get("--only-use").or(p.get("--drives")))),
        "part" | "partition" | "logvol" => {
            let partition = Partition {
                mountpoint: first.unwrap_or_default(),
                size: int(p, "--size"),
                size_given: p.has("--size"),
                grow: p.has("--grow"),
                fstype: text(p, "--fstype"),
                fsoptions: text(p, "--fsoptions"),
                label: text(p, "--label"),
                origin: command.origin.clone(),
            };
            if command.name == "logvol" {
                model.logvols.push(partition);
            } else {
                model.partitions.push(partition);
            }
        }
        "autopart" => model.autopart = true,
        "reqpart" => model.reqpart = Some(p.has("--add-boot")),
        "volgroup" => model.volgroups.extend(first),
        _ => return false,
    }
    true
}

/// How the install runs and ends.
fn apply_install(model: &mut Model, command: &Command) -> bool {
    match command.name.as_str() {
        "text" | "cmdline" | "graphical" => model.display = Some(command.name.clone()),
        "reboot" => model.action = Some(FinalAction::Reboot),
        "halt" => model.action = Some(FinalAction::Halt),
        "poweroff" | "shutdown" => model.action = Some(FinalAction::Shutdown),
        _ => return false,
    }
    true
}

fn password(p: &Parsed, password: Option<String>) -> Password {
    Password {
        password,
        iscrypted: p.has("--iscrypted"),
        lock: p.has("--lock"),
        allow_ssh: p.has("--allow-ssh"),
    }
}

/// Merge one `%packages` section as pykickstart does: a later section's `pkg` undoes
/// an earlier `-pkg` and the other way round, inside one section both stay; a later
/// `-@grp` drops an earlier `@grp`; the last header's options win.
fn merge_packages(packages: &mut Packages, section: &Section, version: Version, first: bool) {
    if let Ok(header) = Spec::parse(&packages_notation(version)).apply(&section.args) {
        packages.options = header.options.into_iter().collect();
    } else if first {
        packages.options.clear();
    }
    let mut added = Vec::new();
    let mut excluded = Vec::new();
    let mut groups = Vec::new();
    let mut excluded_groups = Vec::new();
    for line in &section.body {
        let text = line.text.split('#').next().unwrap_or("").trim();
        let mut words = text.split_whitespace();
        let Some(word) = words.next() else { continue };
        packages.lines.push((word.to_owned(), line.origin.clone()));
        if let Some(env) = word.strip_prefix("@^") {
            packages.environment = Some(env.to_owned());
        } else if let Some(group) = word.strip_prefix("-@") {
            excluded_groups.push(group.to_owned());
        } else if let Some(group) = word.strip_prefix('@') {
            let include = if text.contains("--nodefaults") {
                "nodefaults"
            } else if text.contains("--optional") {
                "optional"
            } else {
                "default"
            };
            groups.push(PackageGroup {
                name: group.to_owned(),
                include: include.to_owned(),
            });
        } else if let Some(name) = word.strip_prefix('-') {
            excluded.push(name.to_owned());
        } else {
            added.push(word.to_owned());
        }
    }
    packages.excluded_packages.retain(|p| !added.contains(p));
    packages.packages.retain(|p| !excluded.contains(p));
    packages
        .groups
        .retain(|g| !excluded_groups.contains(&g.name));
    push_unique(&mut packages.packages, added);
    push_unique(&mut packages.excluded_packages, excluded);
    push_unique(&mut packages.excluded_groups, excluded_groups);
    for group in groups {
        packages.groups.retain(|g| g.name != group.name);
        packages.groups.push(group);
    }
}

fn push_unique(into: &mut Vec<String>, items: Vec<String>) {
    for item in items {
        if !into.contains(&item) {
            into.push(item);
        }
    }
}

/// A script section; an empty body is dropped, as pykickstart drops it.
fn script(section: &Section, version: Version) -> Option<Script> {
    let body = section
        .body
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    if body.trim().is_empty() {
        return None;
    }
    let header = Spec::parse(script_notation(version, &section.name))
        .apply(&section.args)
        .ok()?;
    Some(Script {
        section: ScriptSection::from_header(&section.name)?,
        interpreter: text(&header, "--interpreter"),
        nochroot: header.has("--nochroot"),
        erroronfail: header.has("--erroronfail"),
        log: text(&header, "--log"),
        body,
        origin: section.origin.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kickstart::{parser, source};

    fn model_of(text: &str) -> Model {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ks.cfg");
        std::fs::write(&path, text).unwrap();
        build(&parser::parse(&source::load(&path)), Version::rhel(9))
    }

    #[test]
    fn the_node_kickstart_reads_as_typed_values() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/kickstarts/ovirt-node-ng-image.ks"
        ))
        .unwrap();
        let model = model_of(&text);
        let root = model.root().unwrap();
        assert_eq!(root.size, Some(5120));
        assert_eq!(root.fstype.as_deref(), Some("ext4"));
        assert_eq!(root.fsoptions.as_deref(), Some("discard"));
        assert_eq!(model.source.as_ref().unwrap().kind, "url");
        assert!(model.source.as_ref().unwrap().metalink.is_some());
        assert_eq!(model.repos.len(), 2);
        assert_eq!(
            model.timezone.as_ref().unwrap().zone.as_deref(),
            Some("Etc/UTC")
        );
        assert!(model.rootpw.as_ref().unwrap().lock);
        assert_eq!(model.users[0].name, "node");
        assert_eq!(model.selinux.as_deref(), Some("enforcing"));
        assert_eq!(model.action, Some(FinalAction::Shutdown));
        assert_eq!(model.firstboot.as_deref(), Some("reconfig"));
        let packages = model.packages.as_ref().unwrap();
        assert!(packages.packages.contains(&"dracut-live".to_owned()));
        assert_eq!(packages.excluded_packages, ["dracut-config-rescue"]);
        assert!(packages.options.iter().any(|(k, _)| k == "--excludedocs"));
        assert!(
            model
                .scripts
                .iter()
                .any(|s| s.section == ScriptSection::Post && s.erroronfail)
        );
    }

    #[test]
    fn packages_merge_as_pykickstart_merges_them() {
        let model = model_of(
            "%packages --nocore\n@core\n@base --optional\n-vim\nvim\n-@dial-up\n%end\n\
             %packages --excludedocs\n@^minimal-environment\n-@base\n-emacs\nemacs-nox\n-vim\n@dial-up --nodefaults\n%end\n",
        );
        let p = model.packages.unwrap();
        // Inside one section both vim and -vim stay; the later -vim then removes vim.
        assert_eq!(p.packages, ["emacs-nox"]);
        assert_eq!(p.excluded_packages, ["vim", "emacs"]);
        assert_eq!(p.environment.as_deref(), Some("minimal-environment"));
        assert_eq!(
            p.groups,
            [
                PackageGroup {
                    name: "core".into(),
                    include: "default".into()
                },
                PackageGroup {
                    name: "dial-up".into(),
                    include: "nodefaults".into()
                }
            ]
        );
        assert_eq!(p.excluded_groups, ["dial-up", "base"]);
        // The last header wins.
        assert_eq!(p.options, [("--excludedocs".to_owned(), String::new())]);
    }

    #[test]
    fn last_wins_and_lists_accumulate() {
        let model = model_of(
            "lang en_US\nlang de_DE\npart / --size=1000\npart / --size=5120 --grow\nnetwork --device=a\nnetwork --device=b\nrootpw --iscrypted $6$x\n%post\n%end\n",
        );
        assert_eq!(model.lang.as_deref(), Some("de_DE"));
        assert_eq!(model.root().unwrap().size, Some(5120));
        assert_eq!(model.network.len(), 2);
        assert!(model.scripts.is_empty(), "an empty %post is dropped");
        let json = serde_json::to_string(&model.rootpw).unwrap();
        assert!(!json.contains("$6$x"), "the password leaked into {json}");
    }
}
