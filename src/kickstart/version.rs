//! Kickstart syntax versions and what each says about its commands, for every version
//! pykickstart knows (RHEL3 … RHEL11, FC3 … F46 and DEVEL).
//!
//! The facts come from pykickstart's own handlers: `scripts/kickstart-handlers.py`
//! reads them into `handlers.txt` (each version's commands, known, deprecated or
//! removed, and the options of the commands nodeimg types), which is compiled in and
//! read once. The table test regenerates it from the venv's pykickstart.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// A pykickstart handler version: an index into the table, in pykickstart's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(u16);

/// What a version says about a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Known,
    Deprecated,
    Removed,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Fedora,
    Rhel,
}

struct Entry {
    name: String,
    family: Family,
    release: u32,
    /// The rest of its line in handlers.txt, read into `commands` when first asked:
    /// a check needs one version of fifty-three.
    raw: &'static str,
    commands: OnceLock<HashMap<&'static str, Command>>,
}

/// What one version says of one command (or section).
struct Command {
    status: Status,
    /// Its parse warns of a deprecation (ksvalidator then rejects the file).
    warns: bool,
    /// For typed commands and sections: the index of its spec.
    spec: Option<usize>,
    /// Commands it may not follow (every name of each).
    conflicts: Vec<&'static str>,
}

struct Table {
    specs: Vec<String>,
    versions: Vec<Entry>,
    /// The version DEVEL names (the newest Fedora).
    devel: usize,
}

const HANDLERS: &str = include_str!("handlers.txt");

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| parse_table(HANDLERS))
}

/// Read `handlers.txt`; it is ours and compiled in, so a malformed line is a bug.
fn parse_table(text: &'static str) -> Table {
    let mut specs = Vec::new();
    let mut versions: Vec<(u64, Entry)> = Vec::new();
    let mut devel_number = None;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (kind, rest) = line.split_once(' ').expect("handlers.txt: a word and more");
        match kind {
            "spec" => {
                let (id, notation) = rest.split_once(' ').unwrap_or((rest, ""));
                assert_eq!(
                    id.parse::<usize>().ok(),
                    Some(specs.len()),
                    "handlers.txt: spec ids in order"
                );
                specs.push(notation.to_owned());
            }
            "version" => {
                let (name, rest) = rest.split_once(' ').expect("handlers.txt: a version name");
                let (number, raw) = rest.split_once(' ').unwrap_or((rest, ""));
                let number: u64 = number.parse().expect("handlers.txt: a version number");
                if name == "DEVEL" {
                    devel_number = Some(number);
                    continue;
                }
                let (family, release) =
                    split_name(name).expect("handlers.txt: a known version name");
                versions.push((
                    number,
                    Entry {
                        name: name.to_owned(),
                        family,
                        release,
                        raw,
                        commands: OnceLock::new(),
                    },
                ));
            }
            other => panic!("handlers.txt: unknown line kind {other}"),
        }
    }
    versions.sort_by_key(|(number, _)| *number);
    let devel = devel_number
        .and_then(|n| versions.iter().position(|(number, _)| *number == n))
        .expect("handlers.txt: DEVEL is one of the versions");
    Table {
        specs,
        versions: versions.into_iter().map(|(_, entry)| entry).collect(),
        devel,
    }
}

/// A version's commands from its line: `NAME:STATUS:SPEC:CONFLICTS` each.
fn parse_commands(raw: &'static str) -> HashMap<&'static str, Command> {
    let mut commands = HashMap::new();
    for entry in raw.split(' ').filter(|e| !e.is_empty()) {
        let mut parts = entry.split(':');
        let command = parts.next().expect("handlers.txt: a command");
        let (status, warns) = match parts.next() {
            Some("k") => (Status::Known, false),
            Some("w") => (Status::Known, true),
            Some("d") => (Status::Deprecated, false),
            Some("r") => (Status::Removed, false),
            other => panic!("handlers.txt: status {other:?} of {command}"),
        };
        let spec = parts
            .next()
            .filter(|id| !id.is_empty())
            .map(|id| id.parse().expect("handlers.txt: a spec id"));
        let conflicts = parts
            .next()
            .unwrap_or("")
            .split(',')
            .filter(|c| !c.is_empty())
            .collect();
        commands.insert(
            command,
            Command {
                status,
                warns,
                spec,
                conflicts,
            },
        );
    }
    commands
}

/// `RHEL9` → (Rhel, 9), `F40` → (Fedora, 40), `FC6` → (Fedora, 6).
fn split_name(name: &str) -> Option<(Family, u32)> {
    if let Some(n) = name.strip_prefix("RHEL") {
        return Some((Family::Rhel, n.parse().ok()?));
    }
    let n = name.strip_prefix("FC").or_else(|| name.strip_prefix('F'))?;
    Some((Family::Fedora, n.parse().ok()?))
}

impl Version {
    /// What nodeimg assumes without `--ks-version` or a `#version=` line: the Node is
    /// built on EL9.
    pub fn default_version() -> Version {
        Version::rhel(9)
    }

    fn find(family: Family, release: u32) -> Option<Version> {
        table()
            .versions
            .iter()
            .position(|e| e.family == family && e.release == release)
            .map(|i| Version(i as u16))
    }

    /// RHEL `n`; panics for a release pykickstart does not know (a bug in the caller).
    pub fn rhel(n: u32) -> Version {
        Version::find(Family::Rhel, n).unwrap_or_else(|| panic!("pykickstart has no RHEL{n}"))
    }

    /// Fedora `n`; panics for a release pykickstart does not know.
    pub fn fedora(n: u32) -> Version {
        Version::find(Family::Fedora, n).unwrap_or_else(|| panic!("pykickstart has no F{n}"))
    }

    /// Every version, oldest first.
    pub fn all() -> impl Iterator<Item = Version> {
        (0..table().versions.len()).map(|i| Version(i as u16))
    }

    fn entry(self) -> &'static Entry {
        &table().versions[usize::from(self.0)]
    }

    fn commands(self) -> &'static HashMap<&'static str, Command> {
        let entry = self.entry();
        entry.commands.get_or_init(|| parse_commands(entry.raw))
    }

    pub fn is_fedora(self) -> bool {
        self.entry().family == Family::Fedora
    }

    /// RHEL `n` itself.
    pub fn is_rhel(self, n: u32) -> bool {
        self.entry().family == Family::Rhel && self.entry().release == n
    }

    /// Fedora `n` or later.
    pub fn fedora_since(self, n: u32) -> bool {
        self.is_fedora() && self.entry().release >= n
    }

    /// The release the syntax targets, as livemedia-creator's --releasever wants it.
    pub fn releasever(self) -> String {
        self.entry().release.to_string()
    }

    /// How this version treats the command `name` (case-sensitive, as pykickstart).
    pub fn command_status(self, name: &str) -> Status {
        self.commands()
            .get(name)
            .map_or(Status::Unknown, |c| c.status)
    }

    /// Whether a known command or section (`%traceback`) makes pykickstart warn of
    /// its deprecation when used, which ksvalidator turns into a rejection.
    pub fn warns_deprecated(self, name: &str) -> bool {
        self.commands().get(name).is_some_and(|c| c.warns)
    }

    /// The commands `name` may not follow in this version (pykickstart's
    /// `conflictingCommands`: autopart and part, mount and the rest …).
    pub fn conflicts(self, name: &str) -> &'static [&'static str] {
        self.commands()
            .get(name)
            .map_or(&[], |c| c.conflicts.as_slice())
    }

    /// The generated spec notation of a typed command or a section (`%packages`,
    /// `%post` …), from pykickstart's parser for it.
    pub fn generated_spec(self, name: &str) -> Option<&'static str> {
        let spec = self.commands().get(name)?.spec?;
        Some(table().specs[spec].as_str())
    }
}

/// How `version` treats the command `name`.
pub fn command_status(version: Version, name: &str) -> Status {
    version.command_status(name)
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.entry().name)
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for Version {
    type Err = String;

    /// `RHEL9`, `rhel 8`, `Red Hat Enterprise Linux 7`, `F40`, `FC6`, `Fedora 42`,
    /// `DEVEL`: as `#version=` lines and `ksvalidator -v` spell them.
    fn from_str(text: &str) -> Result<Version, String> {
        let compact: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        let number = |prefix: &str| {
            compact
                .strip_prefix(prefix)
                .and_then(|n| n.parse::<u32>().ok())
        };
        let found = if compact == "devel" {
            Some(Version(table().devel as u16))
        } else if let Some(n) = number("rhel").or_else(|| number("redhatenterpriselinux")) {
            Version::find(Family::Rhel, n)
        } else if let Some(n) = number("fedora")
            .or_else(|| number("fc"))
            .or_else(|| number("f"))
        {
            Version::find(Family::Fedora, n)
        } else {
            None
        };
        found.ok_or_else(|| {
            let t = table();
            let range = |family: Family| {
                let names: Vec<&str> = t
                    .versions
                    .iter()
                    .filter(|e| e.family == family)
                    .map(|e| e.name.as_str())
                    .collect();
                format!("{}–{}", names[0], names[names.len() - 1])
            };
            format!(
                "unknown kickstart version {text:?}: nodeimg knows pykickstart's {}, {} and DEVEL ({})",
                range(Family::Rhel),
                range(Family::Fedora),
                t.versions[t.devel].name
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_ksvalidator_spells_them() {
        assert_eq!("RHEL9".parse(), Ok(Version::rhel(9)));
        assert_eq!("rhel10".parse(), Ok(Version::rhel(10)));
        assert_eq!("RHEL 8".parse(), Ok(Version::rhel(8)));
        assert_eq!("Fedora 42".parse(), Ok(Version::fedora(42)));
        assert_eq!("F40".parse(), Ok(Version::fedora(40)));
        assert_eq!("FC6".parse::<Version>().unwrap().to_string(), "FC6");
        assert_eq!("DEVEL".parse::<Version>().unwrap().to_string(), "F46");
        let err = "RHEL2".parse::<Version>().unwrap_err();
        assert!(
            err.contains("RHEL3–RHEL11") && err.contains("FC3–F46"),
            "{err}"
        );
        assert_eq!(Version::fedora(43).to_string(), "F43");
        assert_eq!(Version::rhel(7).releasever(), "7");
        assert!(Version::rhel(8) < Version::rhel(9));
        assert_eq!(Version::all().count(), 53);
    }

    #[test]
    fn statuses_follow_the_handlers() {
        let status = |v: &str, c: &str| v.parse::<Version>().unwrap().command_status(c);
        assert_eq!(status("RHEL9", "auth"), Status::Known);
        assert_eq!(status("RHEL10", "auth"), Status::Removed);
        assert_eq!(status("F43", "vnc"), Status::Deprecated);
        assert_eq!(status("F46", "module"), Status::Removed);
        assert_eq!(status("RHEL9", "TEXT"), Status::Unknown);
        assert_eq!(status("RHEL9", "install"), Status::Removed);
        assert_eq!(status("RHEL7", "install"), Status::Known);
        assert_eq!(status("RHEL8", "authselect"), Status::Known);
    }
}
