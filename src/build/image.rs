//! The image stages: pack the installed root filesystem as the liveimg, inspect it as
//! imgbased would, and name it by the update's version-release.

use anyhow::{Context, Result, ensure};

use super::{Ctx, Summary};
use crate::image::{self, Inspection};
use crate::install::RootFs;
use crate::liveimg::{self, PackReport};
use crate::nevra::VersionRelease;
use crate::package::update;
use crate::sys;

/// The staged liveimg before it has its name.
const UNNAMED: &str = "image.liveimg.squashfs";

impl Summary for PackReport {
    fn summary(&self) -> String {
        format!(
            "{} ({})",
            crate::units::human(self.output_bytes),
            self.squashfs.compression
        )
    }
}

impl Summary for Inspection {
    fn summary(&self) -> String {
        format!(
            "{} packages, NVR {}",
            self.packages.len(),
            self.nvr.as_deref().unwrap_or("none")
        )
    }
}

/// Pack the root filesystem into the staged liveimg.
pub fn pack(ctx: &Ctx, rootfs: &RootFs) -> Result<PackReport> {
    let o = ctx.options;
    let pack_options = liveimg::PackOptions {
        label: o.label.clone(),
        size: rootfs.size,
        squashfs: o.squashfs.clone(),
        source_date_epoch: o.source_date_epoch,
        workdir: o.workdir.clone(),
        overwrite: false,
    };
    liveimg::pack(&rootfs.source, &ctx.staging.path(UNNAMED), &pack_options)
}

/// Read the packed image back as imgbased would, and stop if it would refuse it.
pub fn inspect(ctx: &Ctx, packed: &PackReport) -> Result<Inspection> {
    let scratch = sys::inspect_scratch(&ctx.options.workdir)?;
    let inspection = image::inspect(&packed.output, scratch.path())?;
    ensure!(
        inspection.problems.is_empty(),
        "imgbased would refuse the image:\n  - {}",
        inspection.problems.join("\n  - ")
    );
    Ok(inspection)
}

/// The image with its final name: NAME-V-R.ARCH.liveimg.squashfs.
pub struct NamedImage {
    pub vr: VersionRelease,
    pub file: String,
}

/// Settle the version-release (given, else the placeholder's) and name the image by it.
pub fn name(ctx: &Ctx, packed: &PackReport, inspection: &Inspection) -> Result<NamedImage> {
    let o = ctx.options;
    let vr = update::resolve_version_release(
        &format!("the image of {}", o.kickstart.display()),
        o.version_release.clone(),
        inspection.placeholder.as_deref(),
    )?;
    let file = format!("{}-{vr}.{}.liveimg.squashfs", o.name, o.arch);
    std::fs::rename(&packed.output, ctx.staging.path(&file)).context("naming the image")?;
    Ok(NamedImage { vr, file })
}
