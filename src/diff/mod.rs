//! `nodeimg diff OLD NEW`: what changed between two Node images, read without root and
//! without mounting (the `image` readers). Packages are matched by name and arch and
//! ordered by rpm's own EVR comparison (rpmvercmp, `~` and `^` included, from the
//! `rpm-version` crate); for each upgrade, the `%changelog` entries newer than the old
//! package's newest one and the CVEs they name.

pub mod files;
mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::build::record::{BuildRecord, OutputKind};
use crate::image::rpmdb::Package;
use crate::image::{self, Inspection};
pub use render::{render_markdown, render_text};

/// One side of a diff: an image as inspected, and what was named to find it.
pub struct Snapshot {
    /// What the user named (an image, or an OUTDIR).
    pub named: PathBuf,
    pub image_bytes: u64,
    pub inspection: Inspection,
}

/// Read OLD or NEW: an image file (squashfs liveimg, ext4 image, disk image), an update
/// RPM (the image inside is read in place), or a build's OUTDIR (its build.json names
/// the image).
pub fn snapshot(named: &Path, scratch: &Path, reading: image::Reading) -> Result<Snapshot> {
    let image = if named.is_dir() {
        let record = BuildRecord::load(named)?;
        let output = record
            .output(OutputKind::Image)
            .with_context(|| format!("{}: build.json lists no image", named.display()))?;
        named.join(&output.file)
    } else {
        named.to_owned()
    };
    let (inspection, embedded) = image::inspect_file(&image, scratch, reading)?;
    let image_bytes = match embedded {
        Some(e) => e.len,
        None => std::fs::metadata(&image)
            .with_context(|| format!("reading {}", image.display()))?
            .len(),
    };
    Ok(Snapshot {
        named: named.to_owned(),
        image_bytes,
        inspection,
    })
}

/// What changed.
#[derive(Debug, Serialize)]
pub struct Diff {
    pub old: Side,
    pub new: Side,
    /// Image-wide facts that differ (os-release, imgbased NVR, placeholder V-R).
    pub changed: Vec<Changed>,
    pub kernels_added: Vec<String>,
    pub kernels_removed: Vec<String>,
    pub packages: Packages,
    /// Every CVE the new changelog entries name, sorted.
    pub cves: Vec<String>,
    /// With `--files`: files added, removed and changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<files::Files>,
}

/// One side's summary.
#[derive(Debug, Serialize)]
pub struct Side {
    pub source: String,
    pub image_bytes: u64,
    pub filesystem_bytes: u64,
    pub filesystem_used_bytes: u64,
    pub os_release: Option<String>,
    pub nvr: Option<String>,
    pub placeholder: Option<String>,
    pub kernels: Vec<String>,
    pub packages: usize,
}

#[derive(Debug, Serialize)]
pub struct Changed {
    pub what: &'static str,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Packages {
    pub added: Vec<Installed>,
    pub removed: Vec<Installed>,
    pub upgraded: Vec<Moved>,
    pub downgraded: Vec<Moved>,
    /// Same name, arch and EVR, but another build (SIGMD5 differs).
    pub rebuilt: Vec<Rebuilt>,
}

/// A package on one side only.
#[derive(Debug, Serialize)]
pub struct Installed {
    pub name: String,
    pub arch: String,
    pub evr: String,
    pub sigkey: Option<String>,
}

/// A package whose EVR moved.
#[derive(Debug, Serialize)]
pub struct Moved {
    pub name: String,
    pub arch: String,
    pub old_evr: String,
    pub new_evr: String,
    pub old_sigkey: Option<String>,
    pub new_sigkey: Option<String>,
    /// The new package's changelog entries newer than the old one's newest.
    pub changelog: Vec<Entry>,
    pub cves: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Entry {
    pub date: String,
    pub author: String,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct Rebuilt {
    pub name: String,
    pub arch: String,
    pub evr: String,
    pub old_sigmd5: Option<String>,
    pub new_sigmd5: Option<String>,
    pub old_sigkey: Option<String>,
    pub new_sigkey: Option<String>,
}

impl Diff {
    /// Whether the two images hold the same packages and facts.
    pub fn is_empty(&self) -> bool {
        let p = &self.packages;
        self.changed.is_empty()
            && self.kernels_added.is_empty()
            && self.kernels_removed.is_empty()
            && p.added.is_empty()
            && p.removed.is_empty()
            && p.upgraded.is_empty()
            && p.downgraded.is_empty()
            && p.rebuilt.is_empty()
            && self.files.as_ref().is_none_or(files::Files::is_empty)
    }
}

/// A package's `[E:]V-R`, as rpm orders it.
fn evr(p: &Package) -> rpm_version::Evr<'static> {
    rpm_version::Evr::new(
        p.epoch.map(|e| e.to_string()).unwrap_or_default(),
        p.version.clone(),
        p.release.clone(),
    )
}

/// Compare two snapshots (their files too, when they were read with them).
pub fn diff(old: &Snapshot, new: &Snapshot, with_files: bool) -> Diff {
    let (a, b) = (&old.inspection, &new.inspection);
    let mut changed = Vec::new();
    let pretty = |i: &Inspection| i.os_release.as_ref().and_then(|o| o.pretty_name.clone());
    for (what, old, new) in [
        ("os-release", pretty(a), pretty(b)),
        ("imgbased NVR", a.nvr.clone(), b.nvr.clone()),
        (
            "placeholder V-R",
            a.placeholder.clone(),
            b.placeholder.clone(),
        ),
    ] {
        if old != new {
            changed.push(Changed { what, old, new });
        }
    }
    let packages = compare_packages(&a.packages, &b.packages);
    let cves: BTreeSet<String> = packages
        .upgraded
        .iter()
        .chain(&packages.downgraded)
        .flat_map(|m| m.cves.iter().cloned())
        .collect();
    Diff {
        old: side(old),
        new: side(new),
        changed,
        kernels_added: only_in(&b.kernels, &a.kernels),
        kernels_removed: only_in(&a.kernels, &b.kernels),
        packages,
        cves: cves.into_iter().collect(),
        files: with_files.then(|| files::compare(a, b)),
    }
}

fn side(s: &Snapshot) -> Side {
    let i = &s.inspection;
    Side {
        source: s.named.display().to_string(),
        image_bytes: s.image_bytes,
        filesystem_bytes: i.filesystem.size_bytes,
        filesystem_used_bytes: i.filesystem.used_bytes,
        os_release: i.os_release.as_ref().and_then(|o| o.pretty_name.clone()),
        nvr: i.nvr.clone(),
        placeholder: i.placeholder.clone(),
        kernels: i.kernels.clone(),
        packages: i.packages.len(),
    }
}

fn only_in(these: &[String], those: &[String]) -> Vec<String> {
    these
        .iter()
        .filter(|k| !those.contains(k))
        .cloned()
        .collect()
}

/// Packages matched by (name, arch); a name installed in several versions (kernels)
/// is matched version by version, and what is left over counts as added or removed.
fn compare_packages(old: &[Package], new: &[Package]) -> Packages {
    let group = |list: &[Package]| {
        let mut map: BTreeMap<(String, String), Vec<Package>> = BTreeMap::new();
        for p in list {
            map.entry((p.name.clone(), p.arch.clone()))
                .or_default()
                .push(p.clone());
        }
        map
    };
    let (mut old, mut new) = (group(old), group(new));
    let mut out = Packages::default();
    let keys: BTreeSet<(String, String)> = old.keys().chain(new.keys()).cloned().collect();
    for key in keys {
        let mut a = old.remove(&key).unwrap_or_default();
        let mut b = new.remove(&key).unwrap_or_default();
        // The same EVR on both sides: unchanged, or rebuilt.
        a.retain(|p| match b.iter().position(|q| evr(q) == evr(p)) {
            Some(i) => {
                let q = b.remove(i);
                if p.sigmd5 != q.sigmd5 {
                    out.rebuilt.push(Rebuilt {
                        name: p.name.clone(),
                        arch: p.arch.clone(),
                        evr: p.evr(),
                        old_sigmd5: p.sigmd5.clone(),
                        new_sigmd5: q.sigmd5.clone(),
                        old_sigkey: p.sigkey.clone(),
                        new_sigkey: q.sigkey.clone(),
                    });
                }
                false
            }
            None => true,
        });
        match (a.as_slice(), b.as_slice()) {
            ([p], [q]) => {
                let moved = moved(p, q);
                if evr(q) > evr(p) {
                    out.upgraded.push(moved);
                } else {
                    out.downgraded.push(moved);
                }
            }
            _ => {
                out.removed.extend(a.iter().map(installed));
                out.added.extend(b.iter().map(installed));
            }
        }
    }
    out
}

fn installed(p: &Package) -> Installed {
    Installed {
        name: p.name.clone(),
        arch: p.arch.clone(),
        evr: p.evr(),
        sigkey: p.sigkey.clone(),
    }
}

fn moved(old: &Package, new: &Package) -> Moved {
    // The old package's newest entry: what is newer than it is news.
    let since = old.changelog.iter().map(|c| c.time).max();
    let changelog: Vec<Entry> = new
        .changelog
        .iter()
        .filter(|c| since.is_none_or(|t| c.time > t))
        .map(|c| Entry {
            date: crate::units::date(c.time),
            author: c.author.clone(),
            text: c.text.clone(),
        })
        .collect();
    let cves: BTreeSet<String> = changelog.iter().flat_map(|e| cves_in(&e.text)).collect();
    Moved {
        name: new.name.clone(),
        arch: new.arch.clone(),
        old_evr: old.evr(),
        new_evr: new.evr(),
        old_sigkey: old.sigkey.clone(),
        new_sigkey: new.sigkey.clone(),
        changelog,
        cves: cves.into_iter().collect(),
    }
}

/// The CVE identifiers in `text`: `CVE-YYYY-NNNN…` (four or more digits), upper-cased.
pub fn cves_in(text: &str) -> Vec<String> {
    let upper = text.to_ascii_uppercase();
    let bytes = upper.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(i) = upper[at..].find("CVE-").map(|i| i + at) {
        let digits = |from: usize| {
            bytes[from.min(bytes.len())..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let year = digits(i + 4);
        let after_year = i + 4 + year;
        let number = if year == 4 && bytes.get(after_year) == Some(&b'-') {
            digits(after_year + 1)
        } else {
            0
        };
        let end = after_year + 1 + number;
        // Not the middle of a longer word.
        let starts_word = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let ends_word = !bytes.get(end).is_some_and(u8::is_ascii_alphanumeric);
        if number >= 4 && starts_word && ends_word {
            found.push(upper[i..end].to_owned());
        }
        at = i + 4;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::rpmdb::Change;

    fn pkg(name: &str, epoch: Option<u32>, version: &str, release: &str) -> Package {
        Package {
            name: name.into(),
            epoch,
            version: version.into(),
            release: release.into(),
            arch: "x86_64".into(),
            signed: true,
            sigmd5: Some(format!("{name}{version}{release}")),
            sigkey: Some("fd431d51".into()),
            size: None,
            buildtime: None,
            license: None,
            sourcerpm: None,
            payload_digest: None,
            changelog: Vec::new(),
            files: Vec::new(),
        }
    }

    #[test]
    fn cves_are_found_as_words() {
        assert_eq!(
            cves_in("- fix cve-2024-1234 and CVE-2023-456789 (CVE-2021-12 is short)"),
            ["CVE-2024-1234", "CVE-2023-456789"]
        );
        assert!(cves_in("XCVE-2024-1234 CVE-2024-1234x CVE-24-1234").is_empty());
    }

    #[test]
    fn packages_are_added_removed_moved_and_rebuilt() {
        let mut bash_new = pkg("bash", None, "5.2", "1");
        bash_new.changelog = vec![
            Change {
                time: 200 * 86_400,
                author: "A <a@x> - 5.2-1".into(),
                text: "- Fix CVE-2024-0001".into(),
            },
            Change {
                time: 100 * 86_400,
                author: "A <a@x> - 5.1-1".into(),
                text: "- old news, CVE-2020-0001".into(),
            },
        ];
        let mut bash_old = pkg("bash", None, "5.1", "1");
        bash_old.changelog = vec![bash_new.changelog[1].clone()];
        let mut rebuilt = pkg("glibc", None, "2.34", "1");
        rebuilt.sigmd5 = Some("other".into());
        let old = [
            bash_old,
            pkg("gone", None, "1", "1"),
            pkg("glibc", None, "2.34", "1"),
            pkg("epoch", None, "9", "1"),
            pkg("pre", None, "1.0", "1"),
        ];
        let new = [
            bash_new,
            pkg("fresh", None, "1", "1"),
            rebuilt,
            pkg("epoch", Some(1), "1", "1"),
            pkg("pre", None, "1.0~rc1", "1"),
        ];
        let p = compare_packages(&old, &new);
        let names = |v: &[Moved]| v.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&p.upgraded), ["bash", "epoch"]);
        assert_eq!(names(&p.downgraded), ["pre"]);
        assert_eq!(p.added[0].name, "fresh");
        assert_eq!(p.removed[0].name, "gone");
        assert_eq!(p.rebuilt[0].name, "glibc");
        let bash = &p.upgraded[0];
        assert_eq!(bash.changelog.len(), 1);
        assert_eq!(bash.changelog[0].date, "1970-07-20");
        assert_eq!(bash.cves, ["CVE-2024-0001"]);
        assert_eq!(p.upgraded[1].new_evr, "1:1-1");
    }
}
