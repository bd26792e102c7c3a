//! What koji's image import wants of a build (`nodeimg koji imgdata OUTDIR`): the
//! builder plugin returns it from its task, and kojid's `completeImageBuild` records
//! it. Made from the typed build record, so the plugin never reads build.json itself.

use std::path::Path;

use anyhow::{Result, ensure};
use serde::Serialize;

use crate::build::record::{BuildRecord, FILE_NAME, OutputKind};

/// The image task's result, as far as nodeimg knows it (the task id, buildroot and
/// source package are the plugin's).
#[derive(Debug, Serialize)]
pub struct ImageData {
    pub arch: String,
    pub name: String,
    pub version: String,
    pub release: String,
    /// The image archive(s): koji's `files`.
    pub files: Vec<String>,
    /// koji's `rootdev`: a liveimg has none.
    pub rootdev: Option<String>,
    /// The update RPM, imported as the build's RPM.
    pub update_rpm: String,
    /// The other outputs and build.json: kept with the task as logs.
    pub extra_files: Vec<String>,
    /// The image's packages: koji's `rpmlist` (`importImageInternal` resolves them, or
    /// `markExternalRPMs` records them).
    pub rpmlist: Vec<RpmEntry>,
}

/// One package of the image as koji's rpmlist holds it.
#[derive(Debug, Serialize)]
pub struct RpmEntry {
    pub name: String,
    pub version: String,
    pub release: String,
    pub epoch: Option<u32>,
    pub arch: String,
    /// SIGMD5, hex.
    pub payloadhash: Option<String>,
    pub size: Option<u64>,
    pub buildtime: Option<u64>,
}

impl ImageData {
    /// Read OUTDIR's record and check that its outputs are there, whole.
    pub fn of(outdir: &Path) -> Result<ImageData> {
        let record = BuildRecord::load(outdir)?;
        record.output_paths(outdir)?;
        let of_kind = |kind| -> Vec<String> {
            record
                .outputs
                .iter()
                .filter(|o| o.kind == kind)
                .map(|o| o.file.clone())
                .collect()
        };
        let files = of_kind(OutputKind::Image);
        let rpms = of_kind(OutputKind::UpdateRpm);
        ensure!(
            files.len() == 1 && rpms.len() == 1,
            "{}: {FILE_NAME} lists {} image(s) and {} update RPM(s), not one of each",
            outdir.display(),
            files.len(),
            rpms.len()
        );
        let mut extra_files: Vec<String> = record
            .outputs
            .iter()
            .filter(|o| !matches!(o.kind, OutputKind::Image | OutputKind::UpdateRpm))
            .map(|o| o.file.clone())
            .collect();
        extra_files.push(FILE_NAME.to_owned());
        let rpmlist = record
            .rpms
            .iter()
            .map(|p| RpmEntry {
                name: p.name.clone(),
                version: p.version.clone(),
                release: p.release.clone(),
                epoch: p.epoch,
                arch: p.arch.clone(),
                payloadhash: p.sigmd5.clone(),
                size: p.size,
                buildtime: p.buildtime,
            })
            .collect();
        Ok(ImageData {
            arch: record.arch,
            name: record.name,
            version: record.version,
            release: record.release,
            files,
            rootdev: None,
            update_rpm: rpms.into_iter().next().unwrap_or_default(),
            extra_files,
            rpmlist,
        })
    }
}
