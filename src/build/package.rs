//! The packaging stages: the update RPM that carries the image, the package
//! manifests, and the build record that lists every output with its digest.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::image::NamedImage;
use super::record::{BuildRecord, Input, Output, OutputKind, RecordedOptions, Stage};
use super::{Ctx, Summary};
use crate::image::Inspection;
use crate::install::FlatKickstart;
use crate::install::dnf::Installed;
use crate::liveimg::PackReport;
use crate::nevra::VersionRelease;
use crate::package::{update, writer};

impl Summary for writer::Written {
    fn summary(&self) -> String {
        file_name(&self.path)
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Write the update RPM around the named image, into the staging directory.
pub fn update_rpm(ctx: &Ctx, image: &NamedImage) -> Result<writer::Written> {
    let o = ctx.options;
    let package = update::Update {
        version: image.vr.version.clone(),
        release: image.vr.release.clone(),
        // What the tree was installed for, which the image is named after too.
        arch: o.arch.clone(),
        image: ctx.staging.path(&image.file),
        product_img: None,
        imgbased: o.imgbased.clone(),
    }
    .package()?;
    let mut info = writer::BuildInfo::from_env(None)?;
    if let Some(epoch) = o.source_date_epoch {
        info.build_time = u32::try_from(epoch).unwrap_or(u32::MAX);
        info.clamp_mtime = Some(info.build_time);
    }
    writer::write(&package, &info, ctx.staging.dir(), false)
}

/// The staged manifests: NAME.manifest-rpm and NAME.unsigned-rpms.
pub struct Manifests {
    pub packages: String,
    pub unsigned: String,
}

/// Write the image's package list and the unsigned ones, one a line.
pub fn manifests(ctx: &Ctx, inspection: &Inspection) -> Result<Manifests> {
    let name = &ctx.options.name;
    let manifests = Manifests {
        packages: format!("{name}.manifest-rpm"),
        unsigned: format!("{name}.unsigned-rpms"),
    };
    let lines = |list: Vec<String>| list.iter().map(|l| format!("{l}\n")).collect::<String>();
    for (file, list) in [
        (&manifests.packages, inspection.manifest()),
        (&manifests.unsigned, inspection.unsigned()),
    ] {
        std::fs::write(ctx.staging.path(file), lines(list))
            .with_context(|| format!("writing {file}"))?;
    }
    Ok(manifests)
}

/// The image's SHA-256: the RPM writer has already hashed it (its file digest), so it
/// is not read a second time.
pub fn image_sha256(rpm: &writer::Written) -> Result<String> {
    rpm.file_digests
        .iter()
        .find(|(path, _)| path.ends_with(".squashfs.img"))
        .map(|(_, digest)| digest.clone())
        .context("the update RPM records no digest for the image")
}

/// The staged NAME.spdx.json: the image and the RPMs in it (SPDX 2.3).
pub struct Sbom {
    pub file: String,
    pub packages: usize,
}

impl Summary for Sbom {
    fn summary(&self) -> String {
        format!("{}: {} packages", self.file, self.packages)
    }
}

/// Write the image's bill of materials.
pub fn sbom(
    ctx: &Ctx,
    image: &NamedImage,
    rpm: &writer::Written,
    inspection: &Inspection,
) -> Result<Sbom> {
    let o = ctx.options;
    let sha256 = image_sha256(rpm)?;
    let version = image.vr.to_string();
    let subject = crate::sbom::Subject {
        name: &image.file,
        sha256: &sha256,
        version: Some(&version),
        created: o.source_date_epoch.unwrap_or_else(crate::sys::now),
    };
    let document = crate::sbom::spdx(&subject, inspection);
    let file = format!("{}.spdx.json", o.name);
    std::fs::write(
        ctx.staging.path(&file),
        serde_json::to_string_pretty(&document)? + "\n",
    )
    .with_context(|| format!("writing {file}"))?;
    Ok(Sbom {
        file,
        packages: inspection.packages.len(),
    })
}

/// Every staged output with its kind, size and digest, the image first.
pub fn outputs(
    ctx: &Ctx,
    image: &NamedImage,
    rpm: &writer::Written,
    ks: &FlatKickstart,
    manifests: &Manifests,
    sbom: &Sbom,
) -> Result<Vec<Output>> {
    let image_sha256 = image_sha256(rpm)?;
    let image_path = ctx.staging.path(&image.file);
    let mut outputs = vec![Output {
        file: image.file.clone(),
        kind: OutputKind::Image,
        bytes: std::fs::metadata(&image_path)
            .with_context(|| format!("reading {}", image_path.display()))?
            .len(),
        sha256: image_sha256,
    }];
    let rest = [
        (file_name(&rpm.path), OutputKind::UpdateRpm),
        (file_name(&ks.path), OutputKind::Kickstart),
        (manifests.packages.clone(), OutputKind::ManifestRpm),
        (manifests.unsigned.clone(), OutputKind::UnsignedRpms),
        (sbom.file.clone(), OutputKind::Sbom),
    ];
    for (file, kind) in rest {
        let (bytes, sha256) = ctx.staging.digest(&file)?;
        outputs.push(Output {
            file,
            kind,
            bytes,
            sha256,
        });
    }
    Ok(outputs)
}

/// What the record is made of.
pub struct RecordParts<'a> {
    pub ctx: &'a Ctx<'a>,
    pub started: u64,
    pub backend: String,
    pub ks: &'a FlatKickstart,
    pub installed: Option<Installed>,
    pub packed: &'a PackReport,
    pub inspection: &'a Inspection,
    pub vr: VersionRelease,
    pub stages: Vec<Stage>,
    pub outputs: Vec<Output>,
}

/// build.json.
pub fn record(parts: RecordParts) -> BuildRecord {
    let o = parts.ctx.options;
    BuildRecord {
        format: super::record::FORMAT,
        nodeimg: env!("CARGO_PKG_VERSION").to_owned(),
        name: o.name.clone(),
        version: parts.vr.version,
        release: parts.vr.release,
        arch: o.arch.clone(),
        nvr: parts.inspection.nvr.clone(),
        started: parts.started,
        finished: crate::sys::now(),
        input: Input {
            kickstart: o.kickstart.display().to_string(),
            kickstart_sha256: parts.ks.sha256.clone(),
            ks_version: parts.ks.version.to_string(),
            from_result: o.install.from_result.as_ref().map(ToString::to_string),
            backend: parts.backend,
            install: parts.installed,
            options: RecordedOptions {
                compression: parts.packed.squashfs.compression,
                level: parts.packed.squashfs.level,
                label: o.label.clone(),
                rootfs_bytes: parts.packed.filesystem_bytes,
                source_date_epoch: o.source_date_epoch,
                policy: o.policy,
                imgbased: o.imgbased.clone(),
            },
            tools: tool_versions(),
        },
        stages: parts.stages,
        outputs: parts.outputs,
        packages: parts.inspection.manifest(),
        rpms: parts.inspection.packages.clone(),
    }
}

/// Versions of the tools a build runs, as `doctor` reads them.
fn tool_versions() -> BTreeMap<String, String> {
    crate::doctor::TOOLS
        .iter()
        .filter(|tool| tool.recorded)
        .filter_map(|tool| {
            crate::doctor::tool_version(tool.name).map(|v| (tool.name.to_owned(), v))
        })
        .collect()
}
