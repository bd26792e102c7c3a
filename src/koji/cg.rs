//! Content-generator import of a finished build (`nodeimg koji import OUTDIR`):
//! `CGInitBuild` reserves the NVR, every artifact and log goes to a directory of its
//! own on the hub, `CGImport` takes metadata version 0 made from build.json (uploaded
//! as metadata.json, so long component lists never meet the hub's 4 MiB request
//! limit), and `tagBuild` tags it. Anything failing after the reservation refunds it
//! (`CGRefundBuild`, state FAILED).
//!
//! The koji build is named after the update RPM's source package
//! (`ovirt-node-ng-image-update-V-R`) and holds the image archive, the update RPM and
//! the logs: CGImport takes an RPM only into the build its SOURCERPM names
//! (`import_rpm`'s "srpm mismatch"), and one build keeps the image and the package
//! that carries it in one reservation, one state and one tag.
//!
//! The reservation (hub, build id, token, upload directory) is written to
//! OUTDIR/koji-reservation.json before the first upload and removed when the build is
//! imported or refunded. When even the refund fails (the hub went away), a re-run of
//! `nodeimg koji import OUTDIR` resumes the reserved build, and `nodeimg koji refund
//! OUTDIR` releases it: a build can never be stranded in BUILDING with its token lost.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::session::Session;
use super::upload::{self, Uploaded};
use super::xmlrpc::{self, Fault, as_i64, as_str, member};
use crate::build::record::{BuildRecord, OutputKind};
use crate::nevra::{Nevra, Nvr, VersionRelease};

/// What to import and how.
pub struct ImportOptions<'a> {
    pub outdir: &'a Path,
    /// The content generator's name (`grantCGAccess`).
    pub cg: &'a str,
    pub tag: Option<&'a str>,
    /// The build's `source` (a git URL, say); default: the kickstart and its hash.
    pub source: Option<&'a str>,
    pub chunk: usize,
    /// How many files go up at once.
    pub parallel: usize,
}

#[derive(Debug, Serialize)]
pub struct Imported {
    pub nvr: String,
    pub build_id: i64,
    pub directory: String,
    pub uploads: Vec<Uploaded>,
    pub tag_task: Option<i64>,
}

/// Where OUTDIR keeps an open reservation.
pub const RESERVATION_FILE: &str = "koji-reservation.json";

/// koji's build states (koji.BUILD_STATES).
const BUILDING: i64 = 0;
const COMPLETE: i64 = 1;
pub const FAILED: i64 = 3;
pub const CANCELED: i64 = 4;

fn state_name(state: i64) -> &'static str {
    match state {
        BUILDING => "BUILDING",
        COMPLETE => "COMPLETE",
        2 => "DELETED",
        FAILED => "FAILED",
        CANCELED => "CANCELED",
        _ => "unknown",
    }
}

/// A build reserved with CGInitBuild and not yet imported or refunded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reservation {
    pub hub: String,
    pub cg: String,
    pub build_id: i64,
    pub nvr: String,
    /// The content generator's token for this build: it is what CGImport and
    /// CGRefundBuild need, so it is kept (mode 0600), never logged.
    pub token: String,
    /// The upload directory on the hub, so a resumed import resumes its uploads.
    pub directory: String,
}

impl Reservation {
    fn path(outdir: &Path) -> PathBuf {
        outdir.join(RESERVATION_FILE)
    }

    /// The reservation OUTDIR holds, if any.
    pub fn load(outdir: &Path) -> Result<Option<Reservation>> {
        let path = Self::path(outdir);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let r: Reservation = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a nodeimg reservation", path.display()))?;
        ensure!(
            r.build_id > 0 && !r.token.is_empty(),
            "{}: no build id or token",
            path.display()
        );
        upload::check_names(&r.directory, "metadata.json")
            .with_context(|| format!("{}: directory", path.display()))?;
        Ok(Some(r))
    }

    /// Written (0600) as a partial file and renamed into place once synced, before the
    /// first upload.
    fn save(&self, outdir: &Path) -> Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let partial = crate::artifacts::PartialFile::new(&Self::path(outdir), true)?;
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(partial.path())
            .and_then(|mut f| f.write_all(&serde_json::to_vec_pretty(self)?))
            .with_context(|| format!("writing {}", partial.path().display()))?;
        partial.commit()?;
        fs::File::open(outdir)?.sync_all()?;
        Ok(())
    }

    fn remove(outdir: &Path) -> Result<()> {
        let path = Self::path(outdir);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}

/// A name koji and a file system can both take.
fn check_word(what: &str, value: &str) -> Result<()> {
    ensure!(
        !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)),
        "{what} `{value}`: letters, digits, `.`, `_`, `+` and `-` only"
    );
    Ok(())
}

/// One file to upload and describe.
struct Artifact {
    local: PathBuf,
    name: String,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Image,
    Rpm,
    Log,
}

fn random_hex() -> Result<String> {
    let mut bytes = [0u8; 6];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// This host's operating system as koji records it (os-release's PRETTY_NAME).
fn host_os() -> String {
    fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned())
}

/// The artifacts of an OUTDIR, checked against its build.json.
fn artifacts(outdir: &Path, record: &BuildRecord) -> Result<Vec<Artifact>> {
    let mut found = Vec::new();
    for (local, output) in record.output_paths(outdir)? {
        let kind = match output.kind {
            OutputKind::Image => Kind::Image,
            OutputKind::UpdateRpm => Kind::Rpm,
            OutputKind::Kickstart
            | OutputKind::ManifestRpm
            | OutputKind::UnsignedRpms
            | OutputKind::Sbom => Kind::Log,
        };
        found.push(Artifact {
            local,
            name: output.file.clone(),
            kind,
        });
    }
    for name in ["build.json", "CHECKSUMS.sha256"] {
        found.push(Artifact {
            local: outdir.join(name),
            name: name.to_owned(),
            kind: Kind::Log,
        });
    }
    let logs = outdir.join("logs");
    if let Ok(entries) = fs::read_dir(&logs) {
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect();
        names.sort();
        for name in names {
            // Log names share the directory with the artifacts: keep them apart.
            found.push(Artifact {
                local: logs.join(&name),
                name: format!("log-{name}"),
                kind: Kind::Log,
            });
        }
    }
    ensure!(
        found.iter().any(|a| a.kind == Kind::Image),
        "{}: build.json lists no image",
        outdir.display()
    );
    Ok(found)
}

/// Metadata version 0 for the uploaded files.
fn metadata(
    record: &BuildRecord,
    nvr: &Nvr,
    cg: &str,
    build_id: i64,
    source: &str,
    uploads: &[(Kind, String, Uploaded)],
) -> serde_json::Value {
    let arch = record.arch.as_str();
    let components: Vec<serde_json::Value> = record
        .rpms
        .iter()
        .map(|p| {
            json!({
                "type": "rpm",
                "name": p.name,
                "version": p.version,
                "release": p.release,
                "epoch": p.epoch,
                "arch": p.arch,
                "sigmd5": p.sigmd5,
                "signature": p.sigkey,
            })
        })
        .collect();
    let tools: Vec<serde_json::Value> = record
        .input
        .tools
        .iter()
        .map(|(name, version)| json!({"name": name, "version": version}))
        .collect();
    let output: Vec<serde_json::Value> = uploads
        .iter()
        .map(|(kind, name, up)| {
            let mut o = json!({
                "buildroot_id": 1,
                "filename": name,
                "filesize": up.bytes,
                "checksum": up.sha256,
                "checksum_type": "sha256",
            });
            match kind {
                Kind::Image => {
                    o["type"] = json!("image");
                    o["arch"] = json!(arch);
                    o["extra"] = json!({"image": {"arch": arch}});
                    o["components"] = json!(components);
                }
                Kind::Rpm => {
                    o["type"] = json!("rpm");
                    // N-V-R.ARCH.rpm: the image's arch, or noarch (older builds).
                    let nevra = name
                        .strip_suffix(".rpm")
                        .and_then(|n| n.parse::<Nevra>().ok());
                    o["arch"] = json!(nevra.map_or_else(|| "noarch".to_owned(), |n| n.arch));
                }
                Kind::Log => {
                    o["type"] = json!("log");
                    o["arch"] = json!("noarch");
                }
            }
            o
        })
        .collect();
    json!({
        "metadata_version": 0,
        "build": {
            "build_id": build_id,
            "name": nvr.name,
            "version": nvr.vr.version,
            "release": nvr.vr.release,
            "source": source,
            "start_time": record.started,
            "end_time": record.finished,
            "extra": {
                "typeinfo": {"image": {}},
                "nodeimg": {
                    "backend": record.input.backend,
                    "kickstart_sha256": record.input.kickstart_sha256,
                    "ks_version": record.input.ks_version,
                    "nvr": record.nvr,
                },
            },
        },
        "buildroots": [{
            "id": 1,
            "host": {"os": host_os(), "arch": std::env::consts::ARCH},
            "content_generator": {"name": cg, "version": record.nodeimg},
            "container": {"type": "none", "arch": arch},
            "tools": tools,
            "components": [],
        }],
        "output": output,
    })
}

/// The koji build's name, version and release: the update RPM's source package
/// (CGImport refuses an RPM whose SOURCERPM is not the build's), else build.json's.
fn build_nvr(outdir: &Path, record: &BuildRecord, found: &[Artifact]) -> Result<Nvr> {
    let mut from_rpm: Option<Nvr> = None;
    for rpm in found.iter().filter(|a| a.kind == Kind::Rpm) {
        let header = rpm::PackageMetadata::open(&rpm.local)
            .with_context(|| format!("{}: not a readable RPM", rpm.local.display()))?;
        let source = header
            .get_source_rpm()
            .with_context(|| format!("{}: no SOURCERPM", rpm.local.display()))?;
        let nvr: Nvr = source
            .strip_suffix(".src.rpm")
            .context("no .src.rpm suffix")
            .and_then(str::parse)
            .with_context(|| {
                format!(
                    "{}: SOURCERPM `{source}` is not N-V-R.src.rpm",
                    rpm.local.display()
                )
            })?;
        if let Some(seen) = &from_rpm {
            ensure!(
                *seen == nvr,
                "the RPMs in {} come from different source packages ({seen} and `{source}`): one build takes one",
                outdir.display(),
            );
        }
        from_rpm = Some(nvr);
    }
    match from_rpm {
        Some(nvr) => Ok(nvr),
        None => Nvr::new(
            &record.name,
            VersionRelease::new(&record.version, &record.release)?,
        )
        .with_context(|| format!("{}: build.json", outdir.display())),
    }
}

/// The state of build `id` on the hub.
fn build_state(session: &mut Session, id: i64) -> Result<Option<i64>> {
    let info = session.call("getBuild", &[xmlrpc::int(id)], &[])?;
    Ok(member(&info, "state").and_then(as_i64))
}

/// What to do with the reservation OUTDIR already holds: resume it while the build is
/// still BUILDING, forget it when the build has ended otherwise.
fn resume_or_forget(
    session: &mut Session,
    o: &ImportOptions,
    r: Reservation,
    nvr: &str,
) -> Result<Option<Reservation>> {
    let file = o.outdir.join(RESERVATION_FILE);
    ensure!(
        r.hub == session.profile.server,
        "{} holds a reservation of build {} ({}) on {}, not {}: import it there, or release it \
         there with `nodeimg koji refund {}`",
        file.display(),
        r.build_id,
        r.nvr,
        r.hub,
        session.profile.server,
        o.outdir.display()
    );
    ensure!(
        r.nvr == nvr && r.cg == o.cg,
        "{} reserves {} for content generator {}, but OUTDIR now holds {nvr} for {}: release \
         it with `nodeimg koji refund {}`",
        file.display(),
        r.nvr,
        r.cg,
        o.cg,
        o.outdir.display()
    );
    match build_state(session, r.build_id)? {
        Some(BUILDING) => {
            tracing::info!(
                "resuming the import of {} into reserved build {}",
                r.nvr,
                r.build_id
            );
            Ok(Some(r))
        }
        Some(COMPLETE) => {
            Reservation::remove(o.outdir)?;
            bail!(
                "{} is already imported as build {} (COMPLETE)",
                r.nvr,
                r.build_id
            )
        }
        state => {
            tracing::info!(
                "reserved build {} ({}) is {} now; reserving anew",
                r.build_id,
                r.nvr,
                state.map_or("gone", state_name)
            );
            Reservation::remove(o.outdir)?;
            Ok(None)
        }
    }
}

/// CGInitBuild, and the reservation written to OUTDIR before anything else happens.
fn reserve(session: &mut Session, o: &ImportOptions, build: &Nvr) -> Result<Reservation> {
    let nvr = build.to_string();
    let (name, version, release) = (&build.name, &build.vr.version, &build.vr.release);
    let reserved = session.call(
        "CGInitBuild",
        &[
            xmlrpc::string(o.cg),
            xmlrpc::from_json(&json!({"name": name, "version": version, "release": release}))
                .map_err(anyhow::Error::msg)?,
        ],
        &[],
    )?;
    let build_id = member(&reserved, "build_id")
        .and_then(as_i64)
        .context("CGInitBuild returned no build_id")?;
    let token = member(&reserved, "token")
        .and_then(as_str)
        .context("CGInitBuild returned no token")?
        .to_owned();
    let r = Reservation {
        hub: session.profile.server.clone(),
        cg: o.cg.to_owned(),
        build_id,
        nvr: nvr.clone(),
        token,
        directory: format!("nodeimg/{nvr}.{}", random_hex()?),
    };
    if let Err(err) = r.save(o.outdir) {
        // Without the file nothing could resume it: give it back now.
        let _ = refund_call(session, &r, FAILED);
        return Err(err.context(format!("build {build_id} ({nvr}) was refunded")));
    }
    tracing::info!("reserved {nvr} as build {build_id}");
    Ok(r)
}

fn refund_call(session: &mut Session, r: &Reservation, state: i64) -> Result<()> {
    session.call(
        "CGRefundBuild",
        &[
            xmlrpc::string(r.cg.as_str()),
            xmlrpc::int(r.build_id),
            xmlrpc::string(r.token.as_str()),
            xmlrpc::int(state),
        ],
        &[],
    )?;
    Ok(())
}

/// Import OUTDIR as a build.
pub fn import(session: &mut Session, o: &ImportOptions) -> Result<Imported> {
    let record = BuildRecord::load(o.outdir)?;
    check_word("content generator", o.cg)?;
    if let Some(tag) = o.tag {
        check_word("tag", tag)?;
    }
    let found = artifacts(o.outdir, &record)?;
    let build = build_nvr(o.outdir, &record, &found)?;
    let nvr = build.to_string();
    let name = build.name.as_str();
    let source = match o.source {
        Some(s) => s.to_owned(),
        None => format!(
            "{}#sha256:{}",
            record.input.kickstart, record.input.kickstart_sha256
        ),
    };

    session.login()?;
    let resumed = match Reservation::load(o.outdir)? {
        Some(r) => resume_or_forget(session, o, r, &nvr)?,
        None => None,
    };
    let reservation = match resumed {
        Some(r) => r,
        None => reserve(session, o, &build)?,
    };
    let build_id = reservation.build_id;

    let result = upload_and_import(session, o, &record, &found, &reservation, &build, &source);
    match result {
        Ok(mut imported) => {
            Reservation::remove(o.outdir)?;
            if let Some(tag) = o.tag {
                let task = session
                    .call(
                        "tagBuild",
                        &[xmlrpc::string(tag), xmlrpc::int(build_id)],
                        &[],
                    )
                    .with_context(|| {
                        format!(
                            "{nvr} is imported as build {build_id}, but tagging it into {tag} \
                             failed (a tag takes only the packages on its list: `koji add-pkg \
                             {tag} {name} --owner USER`); tag it with `koji tag-build {tag} {nvr}`"
                        )
                    })?;
                imported.tag_task = as_i64(&task);
                tracing::info!("tagging {nvr} into {tag}");
            }
            Ok(imported)
        }
        Err(err) => {
            tracing::error!("importing {nvr} failed; refunding build {build_id}");
            let outdir = o.outdir.display();
            if let Err(refund) = refund_call(session, &reservation, FAILED) {
                return Err(err.context(format!(
                    "build {build_id} ({nvr}) is still reserved on {}, and refunding it failed \
                     too ({refund:#}). The reservation is kept in {outdir}/{RESERVATION_FILE}: \
                     run `nodeimg koji import {outdir}` to resume the import, or \
                     `nodeimg koji refund {outdir}` to release the build",
                    reservation.hub
                )));
            }
            Reservation::remove(o.outdir)?;
            Err(err.context(format!(
                "build {build_id} ({nvr}) was refunded (FAILED); run `nodeimg koji import \
                 {outdir}` again once the cause is fixed"
            )))
        }
    }
}

/// Release the build OUTDIR has reserved (`nodeimg koji refund OUTDIR`): CGRefundBuild
/// into `state` (FAILED or CANCELED), then the reservation file goes.
pub fn refund(session: &mut Session, outdir: &Path, state: i64) -> Result<Reservation> {
    let r = Reservation::load(outdir)?.with_context(|| {
        format!(
            "{}: no {RESERVATION_FILE}; nothing is reserved for this OUTDIR",
            outdir.display()
        )
    })?;
    ensure!(
        r.hub == session.profile.server,
        "build {} ({}) is reserved on {}, not {}: refund it there",
        r.build_id,
        r.nvr,
        r.hub,
        session.profile.server
    );
    session.login()?;
    match build_state(session, r.build_id)? {
        Some(BUILDING) => {
            refund_call(session, &r, state)
                .with_context(|| format!("refunding build {} ({})", r.build_id, r.nvr))?;
            tracing::info!(
                "build {} ({}) is {} now",
                r.build_id,
                r.nvr,
                state_name(state)
            );
        }
        other => tracing::info!(
            "build {} ({}) is {} already; nothing to refund",
            r.build_id,
            r.nvr,
            other.map_or("gone", state_name)
        ),
    }
    Reservation::remove(outdir)?;
    Ok(r)
}

fn upload_and_import(
    session: &mut Session,
    o: &ImportOptions,
    record: &BuildRecord,
    found: &[Artifact],
    r: &Reservation,
    build: &Nvr,
    source: &str,
) -> Result<Imported> {
    let (build_id, token, nvr, directory) = (
        r.build_id,
        r.token.as_str(),
        r.nvr.as_str(),
        r.directory.as_str(),
    );
    crate::sys::cancel::pause_point("koji.reserved")?;
    let files: Vec<(PathBuf, String)> = found
        .iter()
        .map(|a| (a.local.clone(), a.name.clone()))
        .collect();
    let uploaded = upload::upload_files(
        session,
        &files,
        directory,
        o.chunk,
        upload::FinalCheck::Sha256,
        o.parallel,
    )?;
    let mut uploads = Vec::new();
    for (artifact, up) in found.iter().zip(uploaded) {
        // What was built is what was uploaded.
        let expected = record
            .outputs
            .iter()
            .find(|out| out.file == artifact.name)
            .map(|out| out.sha256.as_str());
        if let Some(expected) = expected {
            ensure!(
                expected == up.sha256,
                "{}: SHA-256 {} is not build.json's {expected}: it changed after the build",
                artifact.local.display(),
                up.sha256
            );
        }
        uploads.push((artifact.kind, artifact.name.clone(), up));
    }
    let meta = metadata(record, build, o.cg, build_id, source, &uploads);
    let scratch = tempfile::tempdir()?;
    let meta_path = scratch.path().join("metadata.json");
    fs::write(&meta_path, serde_json::to_vec_pretty(&meta)?)?;
    upload::upload(
        session,
        &meta_path,
        directory,
        "metadata.json",
        o.chunk,
        upload::FinalCheck::Sha256,
    )?;

    // A replicated hub may not see an upload at once ("Corrupted upload"): retry.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match session.call(
            "CGImport",
            &[xmlrpc::string("metadata.json"), xmlrpc::string(directory)],
            &[("token", xmlrpc::string(token))],
        ) {
            Ok(_) => break,
            Err(err)
                if attempt < 10
                    && err
                        .downcast_ref::<Fault>()
                        .is_some_and(|f| f.message.contains("Corrupted upload")) =>
            {
                tracing::warn!("CGImport: {err:#}; retrying in 1 s ({attempt} of 10)");
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            Err(err) => return Err(err),
        }
    }
    tracing::info!("imported {nvr} as build {build_id}");
    Ok(Imported {
        nvr: nvr.to_owned(),
        build_id,
        directory: directory.to_owned(),
        uploads: uploads.into_iter().map(|(_, _, u)| u).collect(),
        tag_task: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_word("tag", "ovirt-4.5-el9").is_ok());
        assert!(check_word("tag", "a b").is_err());
        assert!(check_word("cg", "").is_err());
    }

    #[test]
    fn metadata_has_what_cg_importer_requires() {
        let mut record =
            BuildRecord::from_json(include_str!("../../tests/fixtures/build-format1.json"))
                .unwrap();
        record.input.tools = [("mksquashfs".to_owned(), "4.5.1".to_owned())].into();
        record.rpms[0].sigkey = Some("fd431d51".to_owned());
        let up = |name: &str| Uploaded {
            path: format!("d/{name}"),
            bytes: 5,
            sha256: "aa".into(),
            resumed_at: 0,
            requests: 1,
        };
        let uploads = vec![
            (Kind::Image, "i.liveimg.squashfs".to_owned(), up("i")),
            (Kind::Rpm, "u.noarch.rpm".to_owned(), up("u")),
            (Kind::Log, "log-nodeimg.log".to_owned(), up("l")),
        ];
        let m = metadata(
            &record,
            &"ovirt-node-ng-image-update-4.5.6-1.el9".parse().unwrap(),
            "nodeimg",
            7,
            "git+https://x#y",
            &uploads,
        );
        assert_eq!(m["metadata_version"], 0);
        for key in [
            "name",
            "version",
            "release",
            "source",
            "extra",
            "start_time",
            "end_time",
        ] {
            assert!(!m["build"][key].is_null(), "{key}");
        }
        assert_eq!(m["build"]["build_id"], 7);
        assert!(m["build"]["extra"]["typeinfo"]["image"].is_object());
        let br = &m["buildroots"][0];
        for key in [
            "id",
            "host",
            "content_generator",
            "container",
            "tools",
            "components",
        ] {
            assert!(!br[key].is_null(), "{key}");
        }
        assert_eq!(br["tools"][0]["name"], "mksquashfs");
        let image = &m["output"][0];
        assert_eq!(image["type"], "image");
        assert_eq!(image["extra"]["image"]["arch"], "x86_64");
        assert_eq!(image["components"][0]["signature"], "fd431d51");
        assert_eq!(m["output"][1]["type"], "rpm");
        assert_eq!(m["output"][2]["type"], "log");
    }
}
