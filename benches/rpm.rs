//! `nodeimg rpm update` against `rpmbuild -bb` of the spec `nodeimg rpm spec` renders,
//! in one run, on the same Node liveimg (a real one: a Node-like tree with an rpmdb
//! holding the placeholder, and incompressible data to reach the size), at 1 GiB and
//! 4 GiB (`NODEIMG_BENCH_SIZES`, in GiB). Both write an uncompressed payload.
//!
//! * floor: one pass that reads the image and writes a copy while MD5, SHA-256 and
//!   SHA-256 run on their own threads, no fsync: less than any writer can do (the
//!   header's digests must be known before the MD5 can start);
//! * nodeimg: `nodeimg rpm update` (which fsyncs the package before naming it);
//! * rpmbuild: `rpmbuild -bb` (copies the image into the buildroot, digests it, writes
//!   the package; no fsync).
//!
//! Warm page cache for all: the image was just written. Each is run twice, alternating,
//! and the faster run is reported, with the peak RSS of the largest process. Needs
//! root (loop mounts for packing), and 7× the largest size free in `NODEIMG_BENCH_DIR`
//! (default /var/tmp/nodeimg-bench-rpm). Run: `cargo bench --bench rpm`.

mod common;
#[path = "../tests/common/node.rs"]
mod node;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use md5::Md5;
use nodeimg::package::fanout::{self, CHUNK, Chunk};
use sha2::{Digest, Sha256};

use common::{must, timed};

/// What tests/common's helpers call `run`.
fn run(c: &mut Command) -> std::process::Output {
    must(c)
}

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
const EPOCH: &str = "1764028800";
const UPDATE: &str = "ovirt-node-ng-image-update";

fn main() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "run the benchmark as root"
    );
    let base = PathBuf::from(
        std::env::var("NODEIMG_BENCH_DIR").unwrap_or("/var/tmp/nodeimg-bench-rpm".into()),
    );
    let sizes: Vec<u64> = std::env::var("NODEIMG_BENCH_SIZES")
        .unwrap_or("1 4".into())
        .split_whitespace()
        .map(|s| s.parse().expect("NODEIMG_BENCH_SIZES: sizes in GiB"))
        .collect();
    let nodeimg = PathBuf::from(env!("CARGO_BIN_EXE_nodeimg"));
    println!(
        "{:>6}  {:<9} {:>9} {:>10} {:>10}",
        "image", "writer", "seconds", "peak RSS", "MiB/s"
    );
    for size in sizes {
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let image = node_image(&base, &nodeimg, size * GIB);
        let image_bytes = fs::metadata(&image).unwrap().len();

        let specdir = base.join("spec");
        fs::create_dir_all(&specdir).unwrap();
        must(
            Command::new(&nodeimg)
                .args(["-q", "rpm", "spec", "--image"])
                .arg(&image)
                .arg("-o")
                .arg(&specdir),
        );
        let spec = specdir.join(format!("{UPDATE}.spec"));

        let mut best: [(Duration, u64); 3] = [(Duration::MAX, 0); 3];
        for _round in 0..2 {
            let copy = base.join("floor.copy");
            let started = Instant::now();
            floor(&image, &copy);
            let elapsed = started.elapsed();
            fs::remove_file(&copy).unwrap();
            // The floor runs in this process; its memory is the pool of buffers.
            best[0] = best[0].min((elapsed, (fanout_pool_bytes() / 1024) as u64));

            let out = base.join("nodeimg-out");
            let _ = fs::remove_dir_all(&out);
            fs::create_dir_all(&out).unwrap();
            let run = timed(
                Command::new(&nodeimg)
                    .env("SOURCE_DATE_EPOCH", EPOCH)
                    .args(["-q", "rpm", "update", "--image"])
                    .arg(&image)
                    .arg("-o")
                    .arg(&out),
            );
            best[1] = best[1].min(run);

            let top = base.join("rpmbuild");
            let _ = fs::remove_dir_all(&top);
            let run = timed(
                Command::new("rpmbuild")
                    .env("SOURCE_DATE_EPOCH", EPOCH)
                    .arg("--quiet")
                    .arg("-bb")
                    .arg("--define")
                    .arg(format!("_topdir {}", top.display()))
                    .arg("--define")
                    .arg(format!("_sourcedir {}", base.display()))
                    .arg(&spec),
            );
            best[2] = best[2].min(run);
        }
        // Both packages are real: rpm checks every digest of each.
        let ours = fs::read_dir(base.join("nodeimg-out"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let theirs = fs::read_dir(base.join("rpmbuild/RPMS/noarch"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        for rpm in [&ours, &theirs] {
            must(Command::new("rpm").args(["-K", "--nosignature"]).arg(rpm));
        }

        for (name, (elapsed, peak)) in ["floor", "nodeimg", "rpmbuild"].iter().zip(best) {
            println!(
                "{:>4}G  {:<9} {:>9.2} {:>6} MiB {:>10.0}",
                size,
                name,
                elapsed.as_secs_f64(),
                peak / 1024,
                image_bytes as f64 / MIB as f64 / elapsed.as_secs_f64()
            );
        }
        println!(
            "{:>4}G  rpmbuild / nodeimg = {:.2}x, nodeimg / floor = {:.2}x, image {} MiB",
            size,
            best[2].0.as_secs_f64() / best[1].0.as_secs_f64(),
            best[1].0.as_secs_f64() / best[0].0.as_secs_f64(),
            image_bytes / MIB
        );
    }
    let _ = fs::remove_dir_all(&base);
}

fn fanout_pool_bytes() -> usize {
    8 * CHUNK
}

/// A Node liveimg of about `bytes`: the tests' Node-like tree (os-release, a kernel, the
/// imgbased NVR, an rpmdb written by rpm) and random data.
fn node_image(base: &Path, nodeimg: &Path, bytes: u64) -> PathBuf {
    let tree = node::node_tree(base);
    // Random bytes, so that the squashfs is as large as asked.
    let mut random = File::open("/dev/urandom").unwrap();
    let mut data = File::create(tree.join("usr/lib/data.bin")).unwrap();
    let mut buf = vec![0u8; 4 * MIB as usize];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        random.read_exact(&mut buf[..n]).unwrap();
        data.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    drop(data);
    let image = base.join("ovirt-node-ng-image.liveimg.squashfs");
    let rootfs = bytes + bytes / 10 + 64 * MIB;
    must(
        Command::new(nodeimg)
            .args(["-q", "liveimg", "pack", "--compression", "lz4", "--size"])
            .arg(rootfs.to_string())
            .arg("--from")
            .arg(format!("dir:{}", tree.display()))
            .arg("-o")
            .arg(&image)
            .env("NODEIMG_WORKDIR", base),
    );
    fs::remove_dir_all(&tree).unwrap();
    image
}

/// Read once, write once, three digests on their own threads.
fn floor(image: &Path, copy: &Path) {
    let mut md5 = Md5::new();
    let mut file_sha = Sha256::new();
    let mut payload_sha = Sha256::new();
    let mut input = File::open(image).unwrap();
    let mut output = File::create(copy).unwrap();
    fanout::run(
        vec![
            Box::new(|c: &Chunk| md5.update(&c.data[..])),
            Box::new(|c: &Chunk| file_sha.update(&c.data[..])),
            Box::new(|c: &Chunk| payload_sha.update(&c.data[..])),
        ],
        |feeder| {
            loop {
                let chunk = feeder.push(None, |buf| {
                    buf.resize(CHUNK, 0);
                    let n = input.read(buf)?;
                    buf.truncate(n);
                    Ok::<(), std::io::Error>(())
                })??;
                if chunk.is_empty() {
                    break;
                }
                output.write_all(&chunk)?;
            }
            Ok(())
        },
    )
    .unwrap();
    std::hint::black_box((md5.finalize(), file_sha.finalize(), payload_sha.finalize()));
}
