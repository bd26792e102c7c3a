//! Kickstart syntax versions (pykickstart's handlers) and which commands each knows.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A pykickstart handler version nodeimg knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Version {
    F40,
    F41,
    F42,
    F43,
    F44,
    F45,
    F46,
    Rhel9,
    Rhel10,
}

impl Version {
    /// What nodeimg assumes without `--ks-version` or a `#version=` line: the Node is
    /// built on EL9.
    pub const DEFAULT: Version = Version::Rhel9;

    pub fn is_fedora(self) -> bool {
        !matches!(self, Version::Rhel9 | Version::Rhel10)
    }

    /// The Fedora release number, for Fedora versions.
    fn fedora(self) -> u32 {
        match self {
            Version::F40 => 40,
            Version::F41 => 41,
            Version::F42 => 42,
            Version::F43 => 43,
            Version::F44 => 44,
            Version::F45 => 45,
            Version::F46 => 46,
            Version::Rhel9 | Version::Rhel10 => 0,
        }
    }

    /// Fedora `n` or later.
    pub fn fedora_since(self, n: u32) -> bool {
        self.is_fedora() && self.fedora() >= n
    }

    /// The release the syntax targets, as livemedia-creator's --releasever wants it.
    pub fn releasever(self) -> String {
        match self {
            Version::Rhel9 => "9".to_owned(),
            Version::Rhel10 => "10".to_owned(),
            other => other.fedora().to_string(),
        }
    }

    pub const ALL: [Version; 9] = [
        Version::F40,
        Version::F41,
        Version::F42,
        Version::F43,
        Version::F44,
        Version::F45,
        Version::F46,
        Version::Rhel9,
        Version::Rhel10,
    ];
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Rhel9 => write!(f, "RHEL9"),
            Version::Rhel10 => write!(f, "RHEL10"),
            other => write!(f, "F{}", other.fedora()),
        }
    }
}

impl FromStr for Version {
    type Err = String;

    /// `RHEL9`, `rhel10`, `F40`, `Fedora 42`, `DEVEL` (F46), as `#version=` lines and
    /// `ksvalidator -v` spell them.
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
            Some(Version::F46)
        } else if let Some(n) = number("rhel").or_else(|| number("redhatenterpriselinux")) {
            match n {
                9 => Some(Version::Rhel9),
                10 => Some(Version::Rhel10),
                _ => None,
            }
        } else if let Some(n) = number("fedora").or_else(|| number("f")) {
            Version::ALL
                .into_iter()
                .find(|v| v.is_fedora() && v.fedora() == n)
        } else {
            None
        };
        found.ok_or_else(|| {
            format!(
                "unknown kickstart version {text:?}: nodeimg knows F40 to F46 (DEVEL), RHEL9 and RHEL10"
            )
        })
    }
}

/// What a version says about a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Known,
    Deprecated,
    Removed,
    Unknown,
}

/// Commands every supported version knows and keeps.
const COMMON: &[&str] = &[
    "authselect",
    "autopart",
    "bootloader",
    "cdrom",
    "clearpart",
    "cmdline",
    "driverdisk",
    "eula",
    "fcoe",
    "firewall",
    "firstboot",
    "graphical",
    "group",
    "halt",
    "harddrive",
    "hmc",
    "ignoredisk",
    "iscsi",
    "iscsiname",
    "keyboard",
    "lang",
    "liveimg",
    "logging",
    "logvol",
    "mediacheck",
    "mount",
    "network",
    "nfs",
    "ostreecontainer",
    "ostreesetup",
    "part",
    "partition",
    "poweroff",
    "raid",
    "realm",
    "reboot",
    "repo",
    "reqpart",
    "rescue",
    "rootpw",
    "selinux",
    "services",
    "shutdown",
    "skipx",
    "snapshot",
    "sshkey",
    "sshpw",
    "text",
    "timesource",
    "timezone",
    "updates",
    "url",
    "user",
    "volgroup",
    "xconfig",
    "zerombr",
    "zfcp",
    "zipl",
];

/// Commands every supported version rejects as removed.
const ALWAYS_REMOVED: &[&str] = &["device", "deviceprobe", "dmraid", "install", "multipath"];

/// How `version` treats the command `name` (case-sensitive, as pykickstart).
pub fn command_status(version: Version, name: &str) -> Status {
    use Status::*;
    use Version::*;
    if COMMON.contains(&name) {
        return Known;
    }
    if ALWAYS_REMOVED.contains(&name) {
        return Removed;
    }
    let fedora_since = |n| version.fedora_since(n);
    match name {
        "auth" | "authconfig" => match version {
            Rhel9 => Known,
            _ => Removed,
        },
        "autostep" | "method" => match version {
            Rhel9 => Deprecated,
            _ => Removed,
        },
        "bootc" | "rdp" => {
            if version == Rhel10 || fedora_since(43) {
                Known
            } else {
                Unknown
            }
        }
        "btrfs" => match version {
            Rhel9 => Deprecated,
            Rhel10 => Removed,
            _ => Known,
        },
        "module" => match version {
            Rhel9 | F40 => Known,
            Rhel10 => Deprecated,
            _ if fedora_since(45) => Removed,
            _ => Deprecated,
        },
        "nvdimm" => match version {
            Rhel9 => Known,
            Rhel10 => Removed,
            _ if fedora_since(45) => Removed,
            _ => Deprecated,
        },
        "vnc" => match version {
            Rhel9 => Known,
            Rhel10 => Deprecated,
            _ if fedora_since(45) => Removed,
            _ if fedora_since(43) => Deprecated,
            _ => Known,
        },
        "rhsm" | "syspurpose" => match version {
            Rhel9 | Rhel10 => Known,
            _ => Unknown,
        },
        "stratisfs" | "stratispool" => {
            if fedora_since(45) {
                Known
            } else {
                Unknown
            }
        }
        _ => Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_ksvalidator_spells_them() {
        assert_eq!("RHEL9".parse(), Ok(Version::Rhel9));
        assert_eq!("rhel10".parse(), Ok(Version::Rhel10));
        assert_eq!("Fedora 42".parse(), Ok(Version::F42));
        assert_eq!("F40".parse(), Ok(Version::F40));
        assert_eq!("DEVEL".parse(), Ok(Version::F46));
        assert!("RHEL8".parse::<Version>().unwrap_err().contains("RHEL9"));
        assert_eq!(Version::F43.to_string(), "F43");
    }

    #[test]
    fn statuses_follow_the_handlers() {
        assert_eq!(command_status(Version::Rhel9, "auth"), Status::Known);
        assert_eq!(command_status(Version::Rhel10, "auth"), Status::Removed);
        assert_eq!(command_status(Version::F43, "vnc"), Status::Deprecated);
        assert_eq!(command_status(Version::F46, "module"), Status::Removed);
        assert_eq!(command_status(Version::Rhel9, "TEXT"), Status::Unknown);
        assert_eq!(command_status(Version::Rhel9, "install"), Status::Removed);
    }
}
