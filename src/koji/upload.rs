//! koji's fast-upload protocol: a raw POST per chunk (`filename`, `filepath`,
//! `fileverify=adler32`, `offset`, `overwrite`), the size and adler32 of every chunk
//! checked against the hub's answer, and `checkUpload` with sha256 at the end.
//!
//! Reading and hashing run on their own thread, a chunk ahead of the network, so the
//! disk, the digests and the round trips overlap (koji's Python client does them one
//! after the other). Several files go up at once (`upload_files`), each on a session of
//! its own: the hub locks a file while it takes a chunk and wants every chunk to end at
//! the file's end, so one file's chunks go in order, but different files need not
//! wait for each other, and a hub under httpd serves them in different processes. An upload that was cut off resumes: `checkUpload` says how much
//! the hub has, and when the adler32 of that much of the local file matches, the upload
//! goes on from there.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::mpsc;

use anyhow::{Context, Result, bail, ensure};
use dxr::Value;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::session::Session;
use super::xmlrpc::{self, as_i64, as_str, member};

/// How the whole file is checked once every chunk is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FinalCheck {
    /// checkUpload with sha256: the hub reads the whole file again and hashes it.
    Sha256,
    /// checkUpload's size only, as koji's own client does (the chunks' adler32 were
    /// checked on the way).
    Size,
}

/// What an upload did.
#[derive(Debug, Clone, Serialize)]
pub struct Uploaded {
    /// `DIR/NAME` under the hub's work directory.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    /// Where this run started (non-zero when it resumed an earlier one).
    pub resumed_at: u64,
    pub requests: u64,
}

/// Check an upload directory and file name as the hub does (`get_upload_path`), before
/// anything is sent.
pub fn check_names(dir: &str, name: &str) -> Result<()> {
    ensure!(
        !name.is_empty() && !name.contains('/') && !name.starts_with('.'),
        "upload name `{name}`: no `/`, not starting with `.`"
    );
    ensure!(
        !dir.is_empty()
            && !dir.starts_with('/')
            && !dir
                .split('/')
                .any(|c| c == ".." || c == "." || c.is_empty()),
        "upload directory `{dir}`: a relative path without `.`, `..` or empty parts"
    );
    for text in [dir, name] {
        ensure!(
            !text.chars().any(char::is_control),
            "upload path `{dir}/{name}`: control characters"
        );
    }
    Ok(())
}

fn adler32(data: &[u8]) -> u32 {
    let mut a = adler2::Adler32::new();
    a.write_slice(data);
    a.checksum()
}

/// `checkUpload(dir, name, verify)`: the hub's size and digest, None when it has nothing.
fn check_upload(
    session: &mut Session,
    dir: &str,
    name: &str,
    verify: &str,
) -> Result<Option<(u64, String)>> {
    let kwargs: Vec<(&str, Value)> = if verify.is_empty() {
        Vec::new()
    } else {
        vec![("verify", xmlrpc::string(verify))]
    };
    let value = session.call(
        "checkUpload",
        &[xmlrpc::string(dir), xmlrpc::string(name)],
        &kwargs,
    )?;
    if matches!(value, Value::Nil) {
        return Ok(None);
    }
    let size = member(&value, "size")
        .and_then(as_i64)
        .context("checkUpload returned no size")?;
    let digest = member(&value, "hexdigest")
        .and_then(as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(Some((size as u64, digest)))
}

/// One chunk, read and hashed ahead of its request.
struct Chunk {
    offset: u64,
    data: bytes::Bytes,
    adler32: u32,
}

/// Upload `local` as `dir/name` in chunks of `chunk` bytes.
pub fn upload(
    session: &mut Session,
    local: &Path,
    dir: &str,
    name: &str,
    chunk: usize,
    final_check: FinalCheck,
) -> Result<Uploaded> {
    check_names(dir, name)?;
    ensure!(chunk > 0, "the chunk size must be positive");
    ensure!(
        session.logged_in(),
        "uploading needs a logged-in session (a profile with authtype)"
    );
    let mut file = File::open(local).with_context(|| format!("opening {}", local.display()))?;
    let size = file.metadata()?.len();
    let path = format!("{dir}/{name}");
    let start = resume_point(session, &mut file, dir, name, size)?;
    file.seek(SeekFrom::Start(0))?;

    // The reader reads ahead while the chunks before go out.
    let (rx, reader) = read_ahead(file, chunk, start);
    let mut progress = crate::sys::progress::Progress::bytes(format!("upload {name}"), size, 0);
    let (requests, failure) = send_chunks(session, &rx, dir, name, |done| {
        progress.set(done, size);
    });
    drop(rx);
    let sha256 = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the upload reader panicked"))?;
    if let Some(err) = failure {
        return Err(err.context(format!("uploading {path}")));
    }
    let sha256 = sha256.with_context(|| format!("reading {}", local.display()))?;
    drop(progress);
    verify(session, dir, name, final_check, (size, &sha256))?;
    Ok(Uploaded {
        path,
        bytes: size,
        sha256,
        resumed_at: start,
        requests,
    })
}

/// Upload FILES (local path, name) into `dir`, `parallel` at a time at most: the first
/// on this session, the others on subsessions of it (koji checks call numbers per
/// session). What each upload did, in FILES' order; the first failure stops the
/// files not yet started.
pub fn upload_files(
    session: &mut Session,
    files: &[(std::path::PathBuf, String)],
    dir: &str,
    chunk: usize,
    final_check: FinalCheck,
    parallel: usize,
) -> Result<Vec<Uploaded>> {
    let one = |session: &mut Session, (local, name): &(std::path::PathBuf, String)| {
        crate::sys::cancel::check()?;
        tracing::info!("uploading {name} to {dir}");
        upload(session, local, dir, name, chunk, final_check)
    };
    let workers = parallel.clamp(1, files.len().max(1));
    if workers == 1 {
        return files.iter().map(|file| one(session, file)).collect();
    }
    let mut others = Vec::with_capacity(workers - 1);
    for _ in 1..workers {
        others.push(session.subsession()?);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<Uploaded>>>> =
        files.iter().map(|_| Default::default()).collect();
    std::thread::scope(|scope| {
        for worker in std::iter::once(session).chain(others.iter_mut()) {
            let (next, results, one) = (&next, &results, &one);
            scope.spawn(move || {
                use std::sync::atomic::Ordering::SeqCst;
                loop {
                    let i = next.fetch_add(1, SeqCst);
                    let Some(file) = files.get(i) else { break };
                    let result = one(worker, file);
                    let failed = result.is_err();
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                    if failed {
                        next.store(files.len(), SeqCst);
                        break;
                    }
                }
            });
        }
    });
    let mut done = Vec::with_capacity(files.len());
    for result in results {
        match result.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(uploaded)) => done.push(uploaded),
            Some(Err(err)) => return Err(err),
            None => {}
        }
    }
    ensure!(
        done.len() == files.len(),
        "only {} of {} files were uploaded",
        done.len(),
        files.len()
    );
    Ok(done)
}

/// Where to start: the hub's copy's size when it is a prefix of this very file, else 0.
fn resume_point(
    session: &mut Session,
    file: &mut File,
    dir: &str,
    name: &str,
    size: u64,
) -> Result<u64> {
    let path = format!("{dir}/{name}");
    let Some((have, digest)) = check_upload(session, dir, name, "adler32")? else {
        return Ok(0);
    };
    if have == 0 || have > size {
        return Ok(0);
    }
    let mut prefix = adler2::Adler32::new();
    let mut reader = file.take(have);
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        prefix.write_slice(&buf[..n]);
    }
    if format!("{:08x}", prefix.checksum()) == digest {
        tracing::info!("{path}: the hub has {have} of {size} bytes of this file; resuming");
        Ok(have)
    } else {
        tracing::info!("{path}: the hub has {have} bytes of another file; replacing it");
        Ok(0)
    }
}

/// A thread reading `file`: SHA-256 over the whole of it, and the chunks from `start`
/// on with their adler32, two ahead of the requests.
fn read_ahead(
    mut file: File,
    chunk: usize,
    start: u64,
) -> (
    mpsc::Receiver<Result<Chunk>>,
    std::thread::JoinHandle<Result<String>>,
) {
    let (tx, rx) = mpsc::sync_channel::<Result<Chunk>>(2);
    let reader = std::thread::spawn(move || -> Result<String> {
        let mut sha = Sha256::new();
        let mut offset = 0u64;
        let mut sent_any = false;
        loop {
            let mut buf = vec![0u8; chunk];
            let mut filled = 0;
            while filled < chunk {
                let n = file.read(&mut buf[filled..])?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            buf.truncate(filled);
            sha.update(&buf);
            let end = offset + filled as u64;
            // Only what the hub lacks; an empty file still takes one request, as koji's
            // client makes one.
            let lacking = filled > 0 && end > start;
            let empty_file = filled == 0 && offset == 0 && start == 0 && !sent_any;
            if lacking || empty_file {
                let skip = start.saturating_sub(offset) as usize;
                let data = bytes::Bytes::from(buf).slice(skip..);
                let item = Chunk {
                    offset: offset + skip as u64,
                    adler32: adler32(&data),
                    data,
                };
                sent_any = true;
                if tx.send(Ok(item)).is_err() {
                    break;
                }
            }
            offset = end;
            if filled < chunk {
                break;
            }
        }
        Ok(hex::encode(sha.finalize()))
    });
    (rx, reader)
}

/// Send the chunks as `rawUpload` requests, each checked (size and adler32) by the
/// hub's answer. The number of requests, and the first failure.
fn send_chunks(
    session: &mut Session,
    rx: &mpsc::Receiver<Result<Chunk>>,
    dir: &str,
    name: &str,
    mut sent: impl FnMut(u64),
) -> (u64, Option<anyhow::Error>) {
    let mut requests = 0;
    for item in rx.iter() {
        let item = match item {
            Ok(item) => item,
            Err(err) => return (requests, Some(err)),
        };
        let len = item.data.len();
        let query = [
            ("filename", name.to_owned()),
            ("filepath", dir.to_owned()),
            ("fileverify", "adler32".to_owned()),
            ("offset", item.offset.to_string()),
            // Truncate at the offset: a retried or resumed chunk never leaves stale bytes.
            ("overwrite", "1".to_owned()),
        ];
        let result = session
            .send(
                &session.profile.server.clone(),
                "rawUpload",
                &query,
                item.data.clone(),
                "application/octet-stream",
            )
            .and_then(|value| {
                let got = member(&value, "size").and_then(as_i64).unwrap_or(-1);
                let digest = member(&value, "hexdigest").and_then(as_str).unwrap_or("");
                ensure!(
                    got == len as i64,
                    "the hub took {got} bytes of the {len} sent at offset {}",
                    item.offset
                );
                ensure!(
                    digest == format!("{:08x}", item.adler32),
                    "the hub's adler32 {digest} of the chunk at offset {} is not ours ({:08x})",
                    item.offset,
                    item.adler32
                );
                Ok(())
            });
        requests += 1;
        if let Err(err) = result {
            return (requests, Some(err));
        }
        sent(item.offset + len as u64);
    }
    (requests, None)
}

/// The whole file checked on the hub: its size, and its SHA-256 unless only the size
/// is asked for.
fn verify(
    session: &mut Session,
    dir: &str,
    name: &str,
    final_check: FinalCheck,
    (size, sha256): (u64, &str),
) -> Result<()> {
    let path = format!("{dir}/{name}");
    let verify = match final_check {
        FinalCheck::Sha256 => "sha256",
        FinalCheck::Size => "",
    };
    match check_upload(session, dir, name, verify)? {
        Some((have, _)) if have == size && final_check == FinalCheck::Size => Ok(()),
        Some((have, digest)) if have == size && digest == sha256 => Ok(()),
        Some((have, digest)) => bail!(
            "the hub's {path} is {have} bytes with SHA-256 {digest}; ours is {size} bytes with {sha256}: the upload is corrupt"
        ),
        None => bail!("the hub has no {path} after the upload"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_the_hub_checks_them() {
        assert!(check_names("nodeimg/abc", "image.liveimg.squashfs").is_ok());
        assert!(check_names("nodeimg", "a/b").is_err());
        assert!(check_names("nodeimg", ".hidden").is_err());
        assert!(check_names("../etc", "x").is_err());
        assert!(check_names("a/../b", "x").is_err());
        assert!(check_names("/abs", "x").is_err());
        assert!(check_names("a\nb", "x").is_err());
    }

    #[test]
    fn adler32_is_kojis() {
        // zlib.adler32(b"Wikipedia") == 0x11e60398
        assert_eq!(format!("{:08x}", adler32(b"Wikipedia")), "11e60398");
    }
}
