//! `ovirt-node-ng-image-update` and `ovirt-node-ng-image-update-placeholder`, as the
//! upstream specs define them (ovirt-node-ng-image's `ovirt-node-ng.spec.in`,
//! ovirt-release's `ovirt-release-host-node.spec.in`; facts in
//! shared/reference/ovirt-node-build.md §9–10), and the spec that makes the update
//! package with rpmbuild.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

use super::writer::{Content, Dependency, FileEntry, PackageSpec, sense};
use crate::nevra::{VersionRelease, check_arch, check_evr_part};

pub const UPDATE_NAME: &str = "ovirt-node-ng-image-update";
pub use crate::image::PLACEHOLDER as PLACEHOLDER_NAME;
/// The name the package obsoletes since image and image-update merged (BZ 1456254).
const OLD_IMAGE_NAME: &str = "ovirt-node-ng-image";
/// The lowest imgbased the `%post` works with. Raising it broke 4.4 → 4.5 upgrades once
/// (hosts filter imgbased out of their repositories), so it stays low by default.
pub const DEFAULT_IMGBASED: &str = "0.7.2";

const SUMMARY: &str = "oVirt Node Next Image Update";
const LICENSE: &str = "GPL-2.0-only";
const URL: &str = "https://www.ovirt.org/download/node.html";
const DESCRIPTION: &str = "The oVirt Node image. Installing or updating this package \
hands the image to imgbased, which adds it to the host as a new layer that becomes the \
default boot entry.";

const PRE: &str = include_str!("scripts/update-pre.sh");
const POST: &str = include_str!("scripts/update-post.sh");
const SPEC_TEMPLATE: &str = include_str!("../../spec/ovirt-node-ng-image-update.spec.in");

/// What the update package is made of.
#[derive(Debug, Clone)]
pub struct Update {
    pub version: String,
    pub release: String,
    /// The image's architecture, which the package takes: a Node of another arch
    /// cannot install it (`noarch` only for an image that holds no arch-specific
    /// package).
    pub arch: String,
    pub image: PathBuf,
    pub product_img: Option<PathBuf>,
    /// The lowest imgbased version required.
    pub imgbased: String,
}

impl Update {
    fn validate(&self) -> Result<()> {
        check_evr_part("version", &self.version)?;
        check_evr_part("release", &self.release)?;
        check_evr_part("imgbased version", &self.imgbased)?;
        check_arch(&self.arch)?;
        Ok(())
    }

    /// Where the image is installed.
    pub fn image_dir() -> String {
        format!("/usr/share/{UPDATE_NAME}/image")
    }

    pub fn image_path(&self) -> String {
        format!(
            "{}/{UPDATE_NAME}-{}-{}.squashfs.img",
            Self::image_dir(),
            self.version,
            self.release
        )
    }

    fn post(&self) -> String {
        POST.replace("@IMAGE@", &self.image_path())
    }

    /// What a package of this arch conflicts with: for a 32-bit arch that a 64-bit
    /// host also installs (multilib: x86_64 takes i686), the 64-bit C library, which
    /// every such host has and no 32-bit one can: dnf then never gives a 64-bit Node a
    /// 32-bit image. The solver refuses it, so nothing changes (a failing %pretrans
    /// would skip the package but still erase the placeholder it obsoletes).
    fn conflicts(&self) -> Vec<Dependency> {
        let host_isa = match self.arch.as_str() {
            "i386" | "i486" | "i586" | "i686" | "athlon" | "pentium4" => "x86-64",
            "ppc" => "ppc-64",
            "s390" => "s390-64",
            _ => return Vec::new(),
        };
        vec![Dependency::new(
            &format!("glibc({host_isa})"),
            sense::ANY,
            "",
        )]
    }

    /// The package for the native writer.
    pub fn package(&self) -> Result<PackageSpec> {
        self.validate()?;
        let evr = format!("{}-{}", self.version, self.release);
        let mut files = vec![
            FileEntry {
                path: Self::image_dir(),
                perms: 0o755,
                content: Content::Directory,
            },
            FileEntry {
                path: self.image_path(),
                perms: 0o644,
                content: Content::File(self.image.clone()),
            },
        ];
        if let Some(product_img) = &self.product_img {
            files.push(FileEntry {
                path: format!("{}/product.img", Self::image_dir()),
                perms: 0o644,
                content: Content::File(product_img.clone()),
            });
        }
        Ok(PackageSpec {
            name: UPDATE_NAME.to_owned(),
            version: self.version.clone(),
            release: self.release.clone(),
            arch: self.arch.clone(),
            summary: SUMMARY.to_owned(),
            description: DESCRIPTION.to_owned(),
            license: LICENSE.to_owned(),
            url: Some(URL.to_owned()),
            requires: vec![Dependency::new(
                "imgbased",
                sense::GREATER | sense::EQUAL,
                &self.imgbased,
            )],
            provides: vec![
                Dependency::new(PLACEHOLDER_NAME, sense::EQUAL, &evr),
                Dependency::new(OLD_IMAGE_NAME, sense::EQUAL, &evr),
            ],
            obsoletes: vec![
                Dependency::new(PLACEHOLDER_NAME, sense::LESS, &evr),
                Dependency::new(OLD_IMAGE_NAME, sense::LESS, &evr),
            ],
            conflicts: self.conflicts(),
            pre: Some(PRE.to_owned()),
            post: Some(self.post()),
            files,
        })
    }

    /// The spec's arch: `BuildArch: noarch`, else `ExclusiveArch: ARCH` (the package
    /// takes the arch of the machine rpmbuild builds for, which must be the image's).
    fn arch_line(&self) -> String {
        if self.arch == "noarch" {
            "BuildArch: noarch".to_owned()
        } else {
            format!("ExclusiveArch: {}", self.arch)
        }
    }

    /// The spec for rpmbuild, with the image (and product.img) as sources found in
    /// `_sourcedir` under their own file names.
    pub fn spec(&self) -> Result<String> {
        self.validate()?;
        let source = source_name(&self.image)?;
        if let Some(product_img) = &self.product_img {
            ensure!(
                product_img.file_name().and_then(|n| n.to_str()) == Some("product.img"),
                "{}: rpmbuild takes the product image from _sourcedir as product.img; \
                 name it so",
                product_img.display()
            );
        }
        let fields = [
            ("@VERSION@", self.version.as_str()),
            ("@RELEASE@", self.release.as_str()),
            ("@SUMMARY@", SUMMARY),
            ("@LICENSE@", LICENSE),
            ("@URL@", URL),
            ("@IMAGE_SOURCE@", source),
            ("@IMGBASED@", self.imgbased.as_str()),
            ("@ARCH@", &self.arch_line()),
            (
                "@WITH_PRODUCT_IMG@",
                if self.product_img.is_some() { "1" } else { "0" },
            ),
            ("@DESCRIPTION@", DESCRIPTION),
            ("@PRE@", PRE.trim_end()),
            ("@POST@", &self.post()),
        ];
        let conflicts: String = self
            .conflicts()
            .iter()
            .map(|c| format!("Conflicts: {}\n", c.name))
            .collect();
        let mut spec = SPEC_TEMPLATE.replace("@CONFLICTS@\n", &conflicts);
        for (field, value) in fields {
            // rpmbuild would expand a % in a scriptlet or description; ours have none.
            debug_assert!(!value.contains('%'), "{field} holds a %");
            spec = spec.replace(field, value.trim_end());
        }
        debug_assert!(
            !spec.contains("@"),
            "a field of the spec template is unfilled"
        );
        Ok(spec)
    }
}

/// The architecture of the image `report` inspected: the one its arch-specific
/// packages share (rpm's own `i686` and the like), `noarch` when it has none. Images
/// whose packages name several arches (multilib) take the most common one.
pub fn image_arch(report: &crate::image::Inspection) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for package in &report.packages {
        if package.arch != "noarch" && check_arch(&package.arch).is_ok() {
            *counts.entry(package.arch.as_str()).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or_else(|| "noarch".to_owned(), |(arch, _)| arch.to_owned())
}

/// The image's file name as a spec `Source:` line can hold it.
fn source_name(image: &Path) -> Result<&str> {
    let name = image.file_name().and_then(|n| n.to_str()).unwrap_or("");
    ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)),
        "{}: rpmbuild takes the image from _sourcedir by its file name, which may only hold \
         letters, digits and . _ + -",
        image.display()
    );
    Ok(name)
}

/// The update's version-release for the squashfs liveimg `image` whose inspection is
/// `report`: `given`, else the image's placeholder's. An image imgbased would refuse
/// gets no package.
pub fn version_release(
    image: &Path,
    report: &crate::image::Inspection,
    given: Option<VersionRelease>,
) -> Result<VersionRelease> {
    ensure!(
        report.format == crate::image::Format::Squashfs,
        "{} is {} image, not a squashfs liveimg; wrap it first with `nodeimg liveimg pack`",
        image.display(),
        match report.format {
            crate::image::Format::Ext4 => "an ext4",
            _ => "a disk",
        }
    );
    if !report.problems.is_empty() {
        anyhow::bail!(
            "{}: imgbased would refuse this image, so a Node could not install the update:\n  - {}",
            image.display(),
            report.problems.join("\n  - ")
        );
    }
    let image = image.display().to_string();
    resolve_version_release(&image, given, report.placeholder.as_deref())
}

/// The one rule for the update's V-R, shared by `build` and `rpm update`: the one
/// given, else the placeholder's in the image. A given V-R that differs from the
/// placeholder's is warned about: a Node running the image would be offered an update
/// to itself when it is newer.
pub fn resolve_version_release(
    image: &str,
    given: Option<VersionRelease>,
    placeholder: Option<&str>,
) -> Result<VersionRelease> {
    let placeholder = placeholder
        .map(|vr| {
            vr.parse::<VersionRelease>()
                .with_context(|| format!("{image}: the installed {PLACEHOLDER_NAME}"))
        })
        .transpose();
    match (given, placeholder) {
        (Some(given), placeholder) => {
            if let Ok(Some(placeholder)) = placeholder
                && placeholder != given
            {
                tracing::warn!(
                    "the image's {PLACEHOLDER_NAME} is {placeholder} but the package will be \
                     {given}; if that is newer, a Node running this image will be offered the \
                     same image again as an update"
                );
            }
            Ok(given)
        }
        (None, Ok(Some(vr))) => Ok(vr),
        (None, Err(err)) => Err(err),
        (None, Ok(None)) => anyhow::bail!(
            "{image} has no {PLACEHOLDER_NAME} installed, so it gives no version-release; \
             install it in %post or pass --version and --release (without it a Node has no \
             upgrade path)"
        ),
    }
}

/// The empty package every Node image has installed; `ovirt-node-ng-image-update`
/// obsoletes it. ovirt-release ships it as a subpackage of `ovirt-release-host-node`.
pub fn placeholder(version: &str, release: &str) -> Result<PackageSpec> {
    check_evr_part("version", version)?;
    check_evr_part("release", release)?;
    Ok(PackageSpec {
        name: PLACEHOLDER_NAME.to_owned(),
        version: version.to_owned(),
        release: release.to_owned(),
        arch: "noarch".to_owned(),
        summary: "Placeholder for the oVirt Node image update".to_owned(),
        description: format!(
            "Installed in the oVirt Node image so that {UPDATE_NAME}, which obsoletes it, \
             is offered as an update of the image."
        ),
        license: "Apache-2.0".to_owned(),
        url: Some("https://www.ovirt.org".to_owned()),
        requires: Vec::new(),
        provides: Vec::new(),
        obsoletes: Vec::new(),
        conflicts: Vec::new(),
        pre: None,
        post: None,
        files: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update() -> Update {
        Update {
            version: "4.5.6".into(),
            release: "1.el9".into(),
            arch: "x86_64".into(),
            image: PathBuf::from("/x/ovirt-node-ng-image.squashfs.img"),
            product_img: None,
            imgbased: DEFAULT_IMGBASED.into(),
        }
    }

    #[test]
    fn the_spec_is_filled_and_names_the_image_path() {
        let spec = update().spec().unwrap();
        assert!(spec.contains("Version: 4.5.6\nRelease: 1.el9\n"));
        assert!(spec.contains("Source1: ovirt-node-ng-image.squashfs.img\n"));
        assert!(spec.contains(
            "image=\"/usr/share/ovirt-node-ng-image-update/image/ovirt-node-ng-image-update-4.5.6-1.el9.squashfs.img\""
        ));
        assert!(spec.contains("%global with_product_img 0\n"));
        assert!(spec.contains("\nExclusiveArch: x86_64\n") && !spec.contains("BuildArch"));
        let mut noarch = update();
        noarch.arch = "noarch".into();
        assert!(noarch.spec().unwrap().contains("\nBuildArch: noarch\n"));
        assert!(!spec.contains('@'));
    }

    #[test]
    fn the_version_release_is_the_given_one_else_the_placeholders() {
        let vr = |s: &str| s.parse::<VersionRelease>().unwrap();
        let given = resolve_version_release("img", Some(vr("4.5.7-1.el9")), Some("4.5.6-1.el9"));
        assert_eq!(given.unwrap(), vr("4.5.7-1.el9"));
        let taken = resolve_version_release("img", None, Some("4.5.6-1.el9")).unwrap();
        assert_eq!(taken, vr("4.5.6-1.el9"));
        let none = resolve_version_release("img", None, None).unwrap_err();
        assert!(
            none.to_string()
                .contains("img has no ovirt-node-ng-image-update-placeholder")
        );
        // What an image says is checked as any version-release is.
        let hostile = resolve_version_release("img", None, Some("1-2/../x")).unwrap_err();
        assert!(
            format!("{hostile:#}").contains("img: the installed"),
            "{hostile:#}"
        );
        // A given V-R wins even over a placeholder the image got wrong.
        assert!(resolve_version_release("img", Some(vr("1-1")), Some("bad")).is_ok());
    }

    #[test]
    fn scriptlets_hold_no_percent_sign_for_rpmbuild_to_expand() {
        assert!(!PRE.contains('%') && !POST.contains('%') && !DESCRIPTION.contains('%'));
    }

    #[test]
    fn bad_versions_are_refused_before_anything_is_written() {
        for (version, release) in [
            ("4.5-6", "1"),
            ("4.5.6", "1 el9"),
            ("", "1"),
            ("4.5", "1/2"),
        ] {
            let mut u = update();
            u.version = version.into();
            u.release = release.into();
            assert!(u.package().is_err(), "{version:?} {release:?}");
            assert!(u.spec().is_err());
        }
        for arch in ["", "x86-64", "X86_64", "i686\nRequires: x"] {
            let mut u = update();
            u.arch = arch.into();
            assert!(u.package().is_err() && u.spec().is_err(), "{arch:?}");
        }
        let mut u = update();
        u.image = PathBuf::from("/x/my image.img");
        assert!(u.spec().unwrap_err().to_string().contains("my image.img"));
    }
}
