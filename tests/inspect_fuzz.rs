//! A bounded mutation run of `nodeimg inspect` over real-looking images made here: a
//! squashfs liveimg, a bare ext4 image, a GPT disk holding it (its CRCs fixed after
//! each mutation, so the table is read), an MBR disk holding it in a logical partition
//! (the EBR chain), the ext4 image with only its rpmdb's bytes changed (sqlite
//! pages and rpm header blobs, whose words are big-endian), and an update RPM carrying
//! the liveimg (its lead, headers and cpio framing weighted, big-endian), which is
//! read in place; and the ext4 image read as `diff --files` reads it (the whole tree
//! and every package's file list, also with only the rpmdb's bytes changed). Every mutant must end with
//! exit 0, 1 or 3 — no panic, abort or signal — within the time limit, without
//! anything left in the work directory, and every run's peak memory must stay within
//! the contract.
//!
//! `NODEIMG_FUZZ_CASES` sets the mutants per image kind (default 400: 3,200 in about 80 s, a CI-sized run),
//! `NODEIMG_FUZZ_SEED` the seed, `NODEIMG_FUZZ_JOBS` the runs at once (default: the
//! CPUs). A failing mutant is copied beside the work directory and named in the
//! failure, to be kept as a regression test.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::disk::{fix_gpt_crcs, gpt_disk_around, mbr_disk, write_at};
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

/// The 4 KiB blocks of `image` that hold anything (where metadata lives), as byte
/// ranges to mutate.
fn used_blocks(image: &[u8]) -> Vec<(usize, usize)> {
    image
        .chunks(4096)
        .enumerate()
        .filter(|(_, block)| block.iter().any(|&b| b != 0))
        .map(|(i, block)| (i * 4096, block.len()))
        .collect()
}

/// Change 1–8 bytes within `targets` to random values, or a 4-byte aligned word to an
/// extreme one: sizes, counts and offsets are 32-bit words in ext4, GPT, squashfs,
/// sqlite and rpm headers alike, and their high bytes are where a reader's trust shows.
fn mutate(image: &mut [u8], targets: &[(usize, usize)], big_endian: bool, rng: &mut Rng) {
    for _ in 0..1 + rng.below(8) {
        let (start, len) = targets[rng.below(targets.len() as u64) as usize];
        let at = (start + rng.below(len as u64) as usize).min(image.len() - 1);
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
                    let bytes = if big_endian {
                        value.to_be_bytes()
                    } else {
                        value.to_le_bytes()
                    };
                    image[word..word + 4].copy_from_slice(&bytes);
                }
            }
        }
    }
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

/// Inspect `image` as a person would (with `files`, as `nodeimg diff --files` reads
/// it: every file list and the whole tree); the failure, if this run breaks the
/// contract.
fn inspect_once(image: &Path, work: &Path, files: bool) -> Option<String> {
    let started = Instant::now();
    let mut cmd = nodeimg();
    cmd.env("NODEIMG_WORKDIR", work);
    if files {
        cmd.args(["diff", "--files", "--format", "json"]).arg(image);
    } else {
        cmd.args(["inspect", "--format", "json"]);
    }
    let mut child = cmd
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

/// One image kind of the campaign: a seed image and where in it to mutate.
struct Kind {
    name: &'static str,
    image: PathBuf,
    targets: Vec<(usize, usize)>,
    big_endian: bool,
    gpt: bool,
    /// Read as `diff --files` reads it.
    files: bool,
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Inspect `cases` mutants of `kind`, `jobs` at a time; each mutant's bytes come from
/// its own seed, so a failure is reproducible from the seed and case number alone.
fn campaign(kind: &Kind, cases: u64, jobs: u64, seed: u64, dir: &Path) -> (u64, Duration) {
    let pristine = fs::read(&kind.image).unwrap();
    let started = Instant::now();
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for job in 0..jobs {
            let (pristine, failures) = (&pristine, &failures);
            scope.spawn(move || {
                let work = dir.join(format!("work-{}-{job}", kind.name));
                fs::create_dir_all(&work).unwrap();
                let mutant = dir.join(format!("{}-{job}.mutant", kind.name));
                for case in (job..cases).step_by(jobs as usize) {
                    let mut rng = Rng((seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
                    let mut bytes = pristine.clone();
                    mutate(&mut bytes, &kind.targets, kind.big_endian, &mut rng);
                    if kind.gpt {
                        fix_gpt_crcs(&mut bytes);
                    }
                    fs::write(&mutant, &bytes).unwrap();
                    if let Some(why) = inspect_once(&mutant, &work, kind.files) {
                        let kept = dir.join(format!("{}-failing-{case}.img", kind.name));
                        fs::copy(&mutant, &kept).unwrap();
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{}: {why}", kept.display()));
                    }
                }
                fs::remove_file(&mutant).ok();
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{}: {} of {cases} mutants broke the contract:\n{}",
        kind.name,
        failures.len(),
        failures.join("\n")
    );
    (cases, started.elapsed())
}

/// The blocks of the file `path` in the ext4 `image`, as byte ranges (debugfs's
/// `blocks` lists them; the block size is the superblock's).
fn file_blocks(image: &Path, path: &str) -> Vec<(usize, usize)> {
    let debugfs = |request: &str| {
        let out = run(Command::new("debugfs").args(["-R", request]).arg(image));
        String::from_utf8(out.stdout).unwrap()
    };
    let block_size: usize = debugfs("stats")
        .lines()
        .find_map(|line| line.strip_prefix("Block size:"))
        .expect("debugfs stats names the block size")
        .trim()
        .parse()
        .unwrap();
    let blocks: Vec<(usize, usize)> = debugfs(&format!("blocks {path}"))
        .split_whitespace()
        .map(|block| (block.parse::<usize>().unwrap() * block_size, block_size))
        .collect();
    assert!(
        !blocks.is_empty(),
        "{path} has no blocks in {}",
        image.display()
    );
    blocks
}

#[test]
fn mutated_images_are_inspected_within_bounds() {
    let seed = env_number("NODEIMG_FUZZ_SEED", 0x6e6f_6465_696d_6721);
    let cases = env_number("NODEIMG_FUZZ_CASES", 400);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let jobs = env_number("NODEIMG_FUZZ_JOBS", cpus).max(1);
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();

    // The seeds: a Node-like tree with an rpmdb written by rpm, five ways.
    let root = node_tree(s);
    let squashfs = s.join("node.liveimg.squashfs");
    pack(&format!("dir:{}", root.display()), &squashfs);
    let ext4: PathBuf = s.join("root.ext4");
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "LiveOS", "-d"])
        .arg(&root)
        .arg(&ext4)
        .arg("16M"));
    let gpt = s.join("gpt.img");
    gpt_disk_around(&ext4, &gpt, 20);
    // 1: FAT, 2: extended holding 5: the root (an EBR before it).
    let mbr = s.join("mbr.img");
    mbr_disk(
        &mbr,
        20,
        "label: dos\nstart=2048, size=2048, type=c\nstart=4096, type=5\nstart=6144, size=32768, type=83\n",
    );
    write_at(&mbr, 6144 * 512, &ext4);
    let seed_work = s.join("seed-work");
    fs::create_dir_all(&seed_work).unwrap();
    for image in [&squashfs, &ext4, &gpt, &mbr] {
        assert_eq!(
            inspect_once(image, &seed_work, false),
            None,
            "the seed {} itself",
            image.display()
        );
    }

    let ext4_bytes = fs::read(&ext4).unwrap();
    // The partition tables, weighted as much as the rest of the disk: sector 0 (and
    // the GPT header and entries; the MBR's EBR).
    let with_tables = |image: &Path, tables: &[(usize, usize)]| {
        let mut targets = used_blocks(&fs::read(image).unwrap());
        let weight = targets.len() / tables.len().max(1);
        for _ in 0..weight {
            targets.extend_from_slice(tables);
        }
        targets
    };
    let kinds = [
        Kind {
            name: "squashfs",
            targets: used_blocks(&fs::read(&squashfs).unwrap()),
            image: squashfs,
            big_endian: false,
            gpt: false,
            files: false,
        },
        Kind {
            name: "ext4",
            targets: used_blocks(&ext4_bytes),
            image: ext4.clone(),
            big_endian: false,
            gpt: false,
            files: false,
        },
        // The directory tree and every package's file list, as `diff --files` reads
        // them.
        Kind {
            name: "ext4-files",
            targets: used_blocks(&ext4_bytes),
            image: ext4.clone(),
            big_endian: false,
            gpt: false,
            files: true,
        },
        Kind {
            name: "rpmdb",
            targets: file_blocks(&ext4, "/usr/share/rpm/rpmdb.sqlite"),
            image: ext4.clone(),
            big_endian: true,
            gpt: false,
            files: false,
        },
        Kind {
            name: "rpmdb-files",
            targets: file_blocks(&ext4, "/usr/share/rpm/rpmdb.sqlite"),
            image: ext4,
            big_endian: true,
            gpt: false,
            files: true,
        },
        Kind {
            name: "gpt-disk",
            targets: with_tables(&gpt, &[(0, 512), (512, 92), (1024, 512)]),
            image: gpt,
            big_endian: false,
            gpt: true,
            files: false,
        },
        Kind {
            name: "mbr-disk",
            targets: with_tables(&mbr, &[(446, 66), (4096 * 512 + 446, 66)]),
            image: mbr,
            big_endian: false,
            gpt: false,
            files: false,
        },
    ];

    // The update RPM around the squashfs: its headers and cpio framing are in the
    // first blocks; they weigh as much as the image it carries.
    let rpm_dir = s.join("rpm");
    run(nodeimg()
        .args([
            "-q",
            "rpm",
            "update",
            "--version",
            "4.5.6",
            "--release",
            "1.el9",
            "--image",
        ])
        .arg(&kinds[0].image)
        .arg("-o")
        .arg(&rpm_dir));
    let rpm = rpm_dir.join("ovirt-node-ng-image-update-4.5.6-1.el9.noarch.rpm");
    assert_eq!(
        inspect_once(&rpm, &seed_work, false),
        None,
        "the seed {}",
        rpm.display()
    );
    let kinds: Vec<Kind> = kinds
        .into_iter()
        .chain([Kind {
            name: "update-rpm",
            targets: with_tables(&rpm, &[(0, 8192)]),
            image: rpm,
            big_endian: true,
            gpt: false,
            files: false,
        }])
        .collect();

    let mut total = 0;
    for kind in &kinds {
        let (n, took) = campaign(kind, cases, jobs, seed, s);
        eprintln!("{}: {n} mutants in {:.1} s", kind.name, took.as_secs_f64());
        total += n;
    }
    let peak = peak_rss_of_children_kib();
    let ended = |i: usize| ENDINGS[i].load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "{total} mutants (seed {seed:#x}, {jobs} at a time): {} inspected clean, {} refused \
         with an error, {} with findings; peak RSS of any run {} MiB",
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
