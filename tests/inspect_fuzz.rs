//! A bounded mutation run of `nodeimg inspect` over real-looking images made here: a
//! squashfs liveimg, a bare ext4 image and a GPT disk holding it (its CRCs fixed after
//! each mutation, so the table is read). Every mutant must end with exit 0, 1 or 3 —
//! no panic, abort or signal — within the time limit, without anything left in the
//! work directory, and every run's peak memory must stay within the contract.
//!
//! `NODEIMG_FUZZ_CASES` sets the mutants per image kind (default 60, a CI-sized run);
//! `NODEIMG_FUZZ_SEED` the seed. A failing mutant is written to the work directory's
//! parent and named in the failure, to be kept as a regression test.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::node::{node_tree, nodeimg, pack};
use common::run;

/// The contract of issue 20: any input in at most 256 MiB.
const PEAK_LIMIT_KIB: i64 = 256 * 1024;
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// xorshift64*: small, deterministic, good enough to pick offsets and values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The 4 KiB blocks of `image` that hold anything: where metadata lives.
fn used_blocks(image: &[u8]) -> Vec<usize> {
    image
        .chunks(4096)
        .enumerate()
        .filter(|(_, block)| block.iter().any(|&b| b != 0))
        .map(|(i, _)| i)
        .collect()
}

/// Change 1–8 bytes in used blocks to random values, or a 4-byte aligned word to an
/// extreme one: sizes, counts and offsets are 32-bit little-endian words in ext4, GPT
/// and squashfs alike, and their high bytes are where a reader's trust shows.
fn mutate(image: &mut [u8], used: &[usize], rng: &mut Rng) {
    for _ in 0..1 + rng.below(8) {
        let block = used[rng.below(used.len() as u64) as usize];
        let at = (block * 4096 + rng.below(4096) as usize).min(image.len() - 1);
        match rng.below(6) {
            0 => image[at] = 0xff,
            1 => image[at] = 0x00,
            2 => image[at] = rng.next() as u8,
            _ => {
                let word = at & !3;
                if word + 4 <= image.len() {
                    let value: u32 = match rng.below(4) {
                        0 => 0xffff_ffff,
                        1 => 0x8000_0000 | rng.next() as u32 & 0xff,
                        2 => 0x7fff_ffff,
                        _ => (rng.next() as u32) << 16,
                    };
                    image[word..word + 4].copy_from_slice(&value.to_le_bytes());
                }
            }
        }
    }
}

/// Recompute a GPT's header and entry-array CRCs (512-byte sectors, header at LBA 1).
fn fix_gpt_crcs(disk: &mut [u8]) {
    let h = 512;
    if &disk[h..h + 8] != b"EFI PART" {
        return;
    }
    let le32 = |d: &[u8], at: usize| u32::from_le_bytes(d[at..at + 4].try_into().unwrap());
    let entries_at = u64::from_le_bytes(disk[h + 72..h + 80].try_into().unwrap());
    let count = le32(disk, h + 80) as u64;
    let size = le32(disk, h + 84) as u64;
    if let Some(start) = entries_at.checked_mul(512)
        && let Some(end) = count.checked_mul(size).and_then(|n| n.checked_add(start))
        && end <= disk.len() as u64
    {
        let crc = crc32fast::hash(&disk[start as usize..end as usize]);
        disk[h + 88..h + 92].copy_from_slice(&crc.to_le_bytes());
    }
    let header_size = (le32(disk, h + 12) as usize).clamp(92, 512);
    disk[h + 16..h + 20].fill(0);
    let crc = crc32fast::hash(&disk[h..h + header_size]);
    disk[h + 16..h + 20].copy_from_slice(&crc.to_le_bytes());
}

fn peak_rss_of_children_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .unwrap()
        .max_rss()
}

/// How the runs ended: exit 0, 1 and 3.
static ENDINGS: [std::sync::atomic::AtomicUsize; 3] = [
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
];

/// Inspect `image` as a person would; the failure, if this run breaks the contract.
fn inspect_once(image: &Path, work: &Path) -> Option<String> {
    let started = Instant::now();
    let mut child = nodeimg()
        .env("NODEIMG_WORKDIR", work)
        .args(["inspect", "--format", "json"])
        .arg(image)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Some(format!("no answer in {} s", TIME_LIMIT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let ending = match status.code() {
        Some(0) => 0,
        Some(1) => 1,
        Some(3) => 2,
        _ => return Some(format!("ended with {status}: {err}")),
    };
    ENDINGS[ending].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if err.contains("panicked") {
        return Some(format!("panicked: {err}"));
    }
    if status.code() == Some(1) && !err.contains("error: ") {
        return Some(format!("failed without an error message: {err}"));
    }
    let left = fs::read_dir(work).unwrap().count();
    if left != 0 {
        return Some(format!("left {left} entries in the work directory"));
    }
    None
}

fn campaign(name: &str, seed_image: &Path, gpt: bool, dir: &Path, rng: &mut Rng) -> usize {
    let cases: usize = std::env::var("NODEIMG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let pristine = fs::read(seed_image).unwrap();
    let used = used_blocks(&pristine);
    let work = dir.join("work");
    fs::create_dir_all(&work).unwrap();
    let mutant = dir.join(format!("{name}.mutant"));
    let mut failures = Vec::new();
    for case in 0..cases {
        let mut bytes = pristine.clone();
        mutate(&mut bytes, &used, rng);
        if gpt {
            fix_gpt_crcs(&mut bytes);
        }
        fs::write(&mutant, &bytes).unwrap();
        if let Some(why) = inspect_once(&mutant, &work) {
            let kept = dir.join(format!("{name}-failing-{case}.img"));
            fs::copy(&mutant, &kept).unwrap();
            failures.push(format!("{}: {why}", kept.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {cases} mutants broke the contract:\n{}",
        failures.len(),
        failures.join("\n")
    );
    cases
}

#[test]
fn mutated_images_are_inspected_within_bounds() {
    let seed: u64 = std::env::var("NODEIMG_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6e6f_6465_696d_6721);
    let mut rng = Rng(seed | 1);
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();

    // The seeds: a Node-like tree with an rpmdb written by rpm, three ways.
    let root = node_tree(s);
    let squashfs = s.join("node.liveimg.squashfs");
    pack(&format!("dir:{}", root.display()), &squashfs);
    let ext4: PathBuf = s.join("root.ext4");
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "LiveOS", "-d"])
        .arg(&root)
        .arg(&ext4)
        .arg("16M"));
    let disk = s.join("disk.img");
    run(Command::new("truncate").args(["-s", "20M"]).arg(&disk));
    run(Command::new("sgdisk")
        .args(["-q", "-n", "1:2048:+16M", "-t", "1:8300"])
        .arg(&disk));
    run(Command::new("dd")
        .arg(format!("if={}", ext4.display()))
        .arg(format!("of={}", disk.display()))
        .args(["bs=1M", "seek=1", "conv=notrunc", "status=none"]));
    let seed_work = s.join("seed-work");
    fs::create_dir_all(&seed_work).unwrap();
    for image in [&squashfs, &ext4, &disk] {
        assert_eq!(
            inspect_once(image, &seed_work),
            None,
            "the seed {} itself",
            image.display()
        );
    }

    let mut total = 0;
    total += campaign("squashfs", &squashfs, false, s, &mut rng);
    total += campaign("ext4", &ext4, false, s, &mut rng);
    total += campaign("gpt-disk", &disk, true, s, &mut rng);
    let peak = peak_rss_of_children_kib();
    let ended = |i: usize| ENDINGS[i].load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "{total} mutants (seed {seed:#x}): {} inspected clean, {} refused with an error, {} \
         with findings; peak RSS of any run {} MiB",
        ended(0),
        ended(1),
        ended(2),
        peak / 1024
    );
    assert!(
        peak <= PEAK_LIMIT_KIB,
        "a run peaked at {} MiB (the contract: 256 MiB)",
        peak / 1024
    );
}
