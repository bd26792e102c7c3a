//! `build.json`: what a build made and how, as one typed record. It is the contract
//! between `nodeimg build` and everything that reads an OUTDIR afterwards (`koji
//! import`, `koji imgdata` for the builder plugin, release tooling), so it has a
//! `format` number and [`BuildRecord::load`] is its one reader.
//!
//! Format 1 (nodeimg 0.1 before the field existed) had no `format` and no output
//! `kind`; it is read by giving each output the kind its file name shows, the one
//! place a kind is ever inferred from a name.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::image::rpmdb::Package;
use crate::install::dnf::Installed;
use crate::kickstart::check::Policy;
use crate::liveimg::Compression;

/// The format this nodeimg writes.
pub const FORMAT: u32 = 2;
/// The oldest format it reads.
const OLDEST_FORMAT: u32 = 1;
/// The record's file name in OUTDIR.
pub const FILE_NAME: &str = "build.json";
/// build.json is nodeimg's own, but OUTDIR may have been handed over: a cap on what is read.
const MAX_BYTES: u64 = 256 << 20;

/// build.json.
#[derive(Debug, Serialize, Deserialize)]
pub struct BuildRecord {
    pub format: u32,
    /// The nodeimg version that wrote it.
    pub nodeimg: String,
    /// Base of the artifact names.
    pub name: String,
    pub version: String,
    pub release: String,
    pub arch: String,
    /// The image's imgbased NVR (`/usr/share/imgbased/nvr` or the like), if it has one.
    pub nvr: Option<String>,
    /// Seconds since the epoch.
    pub started: u64,
    pub finished: u64,
    pub input: Input,
    pub stages: Vec<Stage>,
    pub outputs: Vec<Output>,
    /// The image's packages as `rpm -qa` names them (manifest-rpm).
    pub packages: Vec<String>,
    /// The same packages with what koji records of them (sigmd5, signing key).
    pub rpms: Vec<Package>,
}

/// What went in.
#[derive(Debug, Serialize, Deserialize)]
pub struct Input {
    pub kickstart: String,
    /// SHA-256 of the flattened kickstart: the one the installer reads.
    pub kickstart_sha256: String,
    pub ks_version: String,
    pub from_result: Option<String>,
    /// `lmc`, `lmc in mock CONFIG`, `dnf` or `from-result`.
    pub backend: String,
    /// The dnf backend's account of the install: commands applied, timings, bootloader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<Installed>,
    pub options: RecordedOptions,
    /// Tool name → version, as `nodeimg doctor` reads them.
    pub tools: BTreeMap<String, String>,
}

/// The options that shaped the artifacts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedOptions {
    pub compression: Compression,
    pub level: Option<u32>,
    pub label: String,
    /// The size of LiveOS/rootfs.img.
    pub rootfs_bytes: u64,
    pub source_date_epoch: Option<u64>,
    pub policy: Policy,
    /// The lowest imgbased the update RPM requires.
    pub imgbased: String,
}

/// One stage of the build, timed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub seconds: f64,
    pub detail: String,
}

/// One artifact in OUTDIR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    pub file: String,
    pub kind: OutputKind,
    pub bytes: u64,
    pub sha256: String,
}

/// What an artifact is: data, never guessed from a file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputKind {
    /// NAME-V-R.ARCH.liveimg.squashfs.
    Image,
    /// ovirt-node-ng-image-update-V-R.noarch.rpm.
    UpdateRpm,
    /// NAME.ks, the flattened kickstart the installer read.
    Kickstart,
    /// NAME.manifest-rpm: the image's packages, one a line.
    ManifestRpm,
    /// NAME.unsigned-rpms: those of them that are not signed.
    UnsignedRpms,
    /// NAME.spdx.json: the image's bill of materials (SPDX 2.3).
    Sbom,
}

impl BuildRecord {
    /// The first output of `kind`.
    pub fn output(&self, kind: OutputKind) -> Option<&Output> {
        self.outputs.iter().find(|o| o.kind == kind)
    }

    /// Each output's path in `outdir`, checked to be there at its recorded size (it
    /// changed after the build otherwise).
    pub fn output_paths(&self, outdir: &Path) -> Result<Vec<(PathBuf, &Output)>> {
        self.outputs
            .iter()
            .map(|output| {
                let path = outdir.join(&output.file);
                let bytes = fs::metadata(&path)
                    .with_context(|| {
                        format!("{}: listed in {FILE_NAME} but missing", path.display())
                    })?
                    .len();
                anyhow::ensure!(
                    bytes == output.bytes,
                    "{} is {bytes} bytes, {FILE_NAME} says {}: it changed after the build",
                    path.display(),
                    output.bytes
                );
                Ok((path, output))
            })
            .collect()
    }

    /// The record as written: pretty JSON and a final newline.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }

    /// Read OUTDIR/build.json: this format or an older one; a newer one is refused.
    pub fn load(outdir: &Path) -> Result<BuildRecord> {
        let path = outdir.join(FILE_NAME);
        let text = read_capped(&path)?;
        Self::from_json(&text).with_context(|| format!("{}", path.display()))
    }

    /// A record from its JSON text (any format this nodeimg reads).
    pub fn from_json(text: &str) -> Result<BuildRecord> {
        let mut value: serde_json::Value =
            serde_json::from_str(text).context("not JSON: not a nodeimg build record")?;
        let Some(object) = value.as_object_mut() else {
            bail!("not a nodeimg build record (not a JSON object)");
        };
        let format = match object.get("format") {
            None => 1,
            Some(format) => format
                .as_u64()
                .and_then(|f| u32::try_from(f).ok())
                .with_context(|| format!("format {format} is not a number"))?,
        };
        if format > FORMAT {
            bail!(
                "written by a newer nodeimg (record format {format}); this nodeimg {} reads \
                 formats {OLDEST_FORMAT} to {FORMAT}: upgrade it",
                env!("CARGO_PKG_VERSION")
            );
        }
        if format < OLDEST_FORMAT {
            bail!("record format {format} does not exist");
        }
        if format == 1 {
            upgrade_from_format_1(object);
        }
        serde_json::from_value(value).context("not a nodeimg build record")
    }
}

/// Format 1 → 2: the format number, and each output's kind from its file name.
fn upgrade_from_format_1(record: &mut serde_json::Map<String, serde_json::Value>) {
    record.insert("format".into(), 1.into());
    let Some(outputs) = record.get_mut("outputs").and_then(|o| o.as_array_mut()) else {
        return;
    };
    for output in outputs {
        let kind = match output.get("file").and_then(|f| f.as_str()) {
            Some(f) if f.ends_with(".liveimg.squashfs") => "image",
            Some(f) if f.ends_with(".rpm") => "update-rpm",
            Some(f) if f.ends_with(".ks") => "kickstart",
            Some(f) if f.ends_with(".manifest-rpm") => "manifest-rpm",
            Some(f) if f.ends_with(".unsigned-rpms") => "unsigned-rpms",
            // Left without a kind: the record is refused, naming the field.
            _ => continue,
        };
        if let Some(output) = output.as_object_mut() {
            output.insert("kind".into(), kind.into());
        }
    }
}

fn read_capped(path: &PathBuf) -> Result<String> {
    let file = fs::File::open(path).with_context(|| {
        format!(
            "reading {} (is it a nodeimg build's OUTDIR?)",
            path.display()
        )
    })?;
    let mut text = String::new();
    file.take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    if text.len() as u64 > MAX_BYTES {
        bail!(
            "{}: larger than {} MiB; not a build record",
            path.display(),
            MAX_BYTES >> 20
        );
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMAT_1: &str = include_str!("../../tests/fixtures/build-format1.json");

    #[test]
    fn a_format_1_record_is_read_with_the_kinds_its_names_show() {
        let record = BuildRecord::from_json(FORMAT_1).unwrap();
        assert_eq!(record.format, 1);
        assert_eq!(record.input.backend, "dnf");
        let kinds: Vec<OutputKind> = record.outputs.iter().map(|o| o.kind).collect();
        assert_eq!(
            kinds,
            [
                OutputKind::Image,
                OutputKind::UpdateRpm,
                OutputKind::Kickstart,
                OutputKind::ManifestRpm,
                OutputKind::UnsignedRpms
            ]
        );
        assert!(
            record
                .output(OutputKind::Image)
                .unwrap()
                .file
                .ends_with(".x86_64.liveimg.squashfs")
        );
        let install = record.input.install.as_ref().unwrap();
        assert_eq!(install.timings[1].0, "packages");
        assert_eq!(record.input.tools["mksquashfs"], "4.5.1");
        assert_eq!(record.rpms.len(), record.packages.len());
    }

    #[test]
    fn a_record_round_trips_with_its_format() {
        let mut record = BuildRecord::from_json(FORMAT_1).unwrap();
        record.format = FORMAT;
        let json = record.to_json().unwrap();
        assert!(json.starts_with("{\n  \"format\": 2,"), "{json}");
        assert!(json.contains("\"kind\": \"update-rpm\""));
        let again = BuildRecord::from_json(&json).unwrap();
        assert_eq!(again.outputs, record.outputs);
        assert_eq!(again.to_json().unwrap(), json);
    }

    #[test]
    fn newer_or_broken_records_are_refused_with_the_reason() {
        let mut value: serde_json::Value = serde_json::from_str(FORMAT_1).unwrap();
        value["format"] = 3.into();
        let err = BuildRecord::from_json(&value.to_string()).unwrap_err();
        assert!(
            format!("{err:#}").contains("newer nodeimg (record format 3)"),
            "{err:#}"
        );

        value["format"] = 2.into();
        // Format 2 has kinds: an output without one is refused, not guessed.
        let err = BuildRecord::from_json(&value.to_string()).unwrap_err();
        assert!(
            format!("{err:#}").contains("missing field `kind`"),
            "{err:#}"
        );

        let mut value: serde_json::Value = serde_json::from_str(FORMAT_1).unwrap();
        value["outputs"][0]["file"] = "mystery.bin".into();
        let err = BuildRecord::from_json(&value.to_string()).unwrap_err();
        assert!(format!("{err:#}").contains("kind"), "{err:#}");

        for text in ["", "[]", "{\"format\": \"two\"}"] {
            assert!(BuildRecord::from_json(text).is_err(), "{text}");
        }
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = BuildRecord::load(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("build.json (is it a nodeimg build's OUTDIR?)"));
        fs::write(dir.path().join(FILE_NAME), "{}").unwrap();
        let err = format!("{:#}", BuildRecord::load(dir.path()).unwrap_err());
        assert!(
            err.contains(&dir.path().join(FILE_NAME).display().to_string()),
            "{err}"
        );
    }
}
