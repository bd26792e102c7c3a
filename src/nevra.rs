//! RPM names, versions and releases as types: parsed and checked in one place, so a
//! value that reaches an RPM header, a file name or a koji hub has been validated.
//!
//! The rules are rpm's: a name holds letters, digits and `. _ + -`; a version or a
//! release holds no `-` (it separates them) and, here, only the characters rpm's
//! version comparison understands (letters, digits, `. _ + ~ ^`).

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail, ensure};
use serde::{Deserialize, Serialize};

/// A package name.
pub fn check_name(name: &str) -> Result<()> {
    ensure!(!name.is_empty(), "the package name is empty");
    ensure!(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)),
        "package name {name:?} may only hold letters, digits and . _ + -"
    );
    Ok(())
}

/// An RPM architecture (`noarch`, `x86_64`, `i686`, `aarch64`, …): what names a
/// package file and an RPM header's ARCH.
pub fn check_arch(arch: &str) -> Result<()> {
    ensure!(
        !arch.is_empty()
            && arch.len() <= 32
            && arch
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "architecture {arch:?} is not one: lower-case letters, digits and _, at most 32"
    );
    Ok(())
}

/// A version or a release (`what` says which, for the error).
pub fn check_evr_part(what: &str, value: &str) -> Result<()> {
    ensure!(!value.is_empty(), "the {what} is empty");
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._+~^".contains(*c)))
    {
        bail!(
            "{what} {value:?} contains {bad:?}; it may only hold letters, digits and . _ + ~ ^ \
             (a '-' separates version from release)"
        );
    }
    Ok(())
}

/// `V-R`: what the update RPM, the image file and the koji build are versioned by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VersionRelease {
    pub version: String,
    pub release: String,
}

impl VersionRelease {
    /// Both parts checked.
    pub fn new(version: &str, release: &str) -> Result<VersionRelease> {
        check_evr_part("version", version)?;
        check_evr_part("release", release)?;
        Ok(VersionRelease {
            version: version.to_owned(),
            release: release.to_owned(),
        })
    }
}

impl FromStr for VersionRelease {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let Some((version, release)) = s.split_once('-') else {
            bail!("{s:?} is not VERSION-RELEASE");
        };
        VersionRelease::new(version, release)
    }
}

impl fmt::Display for VersionRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.version, self.release)
    }
}

/// `[E:]V-R`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Evr {
    pub epoch: Option<u32>,
    pub vr: VersionRelease,
}

impl FromStr for Evr {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let (epoch, vr) = match s.split_once(':') {
            Some((epoch, vr)) => match epoch.parse::<u32>() {
                Ok(epoch) => (Some(epoch), vr),
                Err(_) => bail!("{s:?}: the epoch {epoch:?} is not a number"),
            },
            None => (None, s),
        };
        Ok(Evr {
            epoch,
            vr: vr.parse()?,
        })
    }
}

impl fmt::Display for Evr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(epoch) = self.epoch {
            write!(f, "{epoch}:")?;
        }
        write!(f, "{}", self.vr)
    }
}

/// `N-V-R`: a koji build, a source package without its `.src.rpm`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nvr {
    pub name: String,
    pub vr: VersionRelease,
}

impl Nvr {
    pub fn new(name: &str, vr: VersionRelease) -> Result<Nvr> {
        check_name(name)?;
        Ok(Nvr {
            name: name.to_owned(),
            vr,
        })
    }
}

impl FromStr for Nvr {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        // The name may hold '-'; the version and the release cannot.
        let parts = s
            .rsplit_once('-')
            .and_then(|(nv, r)| nv.rsplit_once('-').map(|(n, v)| (n, v, r)));
        let Some((name, version, release)) = parts else {
            bail!("{s:?} is not NAME-VERSION-RELEASE");
        };
        Nvr::new(name, VersionRelease::new(version, release)?)
    }
}

impl fmt::Display for Nvr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.name, self.vr)
    }
}

/// `N-[E:]V-R.A`: one package of a repository or an rpmdb.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nevra {
    pub name: String,
    pub evr: Evr,
    pub arch: String,
}

impl FromStr for Nevra {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let Some((nevr, arch)) = s.rsplit_once('.') else {
            bail!("{s:?} is not NAME-[EPOCH:]VERSION-RELEASE.ARCH");
        };
        ensure!(
            !arch.is_empty() && arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{s:?}: the architecture {arch:?} is not one"
        );
        let parts = nevr
            .rsplit_once('-')
            .and_then(|(nev, r)| nev.rsplit_once('-').map(|(n, ev)| (n, ev, r)));
        let Some((name, ev, release)) = parts else {
            bail!("{s:?} is not NAME-[EPOCH:]VERSION-RELEASE.ARCH");
        };
        check_name(name)?;
        Ok(Nevra {
            name: name.to_owned(),
            evr: format!("{ev}-{release}").parse()?,
            arch: arch.to_owned(),
        })
    }
}

impl fmt::Display for Nevra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}.{}", self.name, self.evr, self.arch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_release_splits_at_its_dash_and_round_trips() {
        let vr: VersionRelease = "4.5.6-1.el9".parse().unwrap();
        assert_eq!(
            (vr.version.as_str(), vr.release.as_str()),
            ("4.5.6", "1.el9")
        );
        assert_eq!(vr.to_string(), "4.5.6-1.el9");
        for bad in ["4.5.6", "4.5-6-1", "-1", "4.5.6-", "4 5-1", "4.5/6-1"] {
            assert!(bad.parse::<VersionRelease>().is_err(), "{bad}");
        }
        assert!("4.5.6~rc1-0.1^git2".parse::<VersionRelease>().is_ok());
    }

    #[test]
    fn an_nvr_keeps_the_dashes_of_its_name() {
        let nvr: Nvr = "ovirt-node-ng-image-update-4.5.6-1.el9".parse().unwrap();
        assert_eq!(nvr.name, "ovirt-node-ng-image-update");
        assert_eq!(nvr.vr.to_string(), "4.5.6-1.el9");
        assert_eq!(nvr.to_string(), "ovirt-node-ng-image-update-4.5.6-1.el9");
        assert!("bash-5.1".parse::<Nvr>().is_err());
        assert!("ba sh-5.1-1".parse::<Nvr>().is_err());
    }

    #[test]
    fn an_evr_and_a_nevra_carry_the_epoch() {
        let evr: Evr = "2:1.0-3".parse().unwrap();
        assert_eq!(evr.epoch, Some(2));
        assert_eq!(evr.to_string(), "2:1.0-3");
        assert!("x:1.0-3".parse::<Evr>().is_err());
        let p: Nevra = "kernel-core-1:5.14.0-570.el9.x86_64".parse().unwrap();
        assert_eq!(p.name, "kernel-core");
        assert_eq!(p.evr.epoch, Some(1));
        assert_eq!(p.arch, "x86_64");
        assert_eq!(p.to_string(), "kernel-core-1:5.14.0-570.el9.x86_64");
        let src: Nevra = "ovirt-node-ng-image-update-4.5.6-1.el9.src"
            .parse()
            .unwrap();
        assert_eq!(
            (src.name.as_str(), src.arch.as_str()),
            ("ovirt-node-ng-image-update", "src")
        );
        assert!("bash-5.1-1".parse::<Nevra>().is_err());
    }
}
