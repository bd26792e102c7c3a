//! `nodeimg liveimg pack --from disk:` against the flows a release engineer would
//! otherwise use, in one run, on the same disk image:
//!
//! * lorax: mount the root partition, mkfs a fresh ext4 rootfs.img, copy the tree in
//!   with `cp -a`, `e2fsck -fy -E discard`, mksquashfs (what livemedia-creator does);
//! * pseudo: mksquashfs streaming the partition through a pseudo file (`dd`), no copy;
//! * floor: mksquashfs of the finished rootfs.img alone: no flow can beat it;
//! * nodeimg: `nodeimg liveimg pack` (e2image -ra of the used blocks, then mksquashfs).
//!
//! All at the same compressor (`NODEIMG_BENCH_COMP`, default zstd at mksquashfs's
//! default level, 15). With `NODEIMG_BENCH_TRADEOFF=1` it also packs the lorax flow's
//! rootfs.img with xz+BCJ, xz, zstd 3/9/15/19, lz4, lz4 -Xhc and gzip, for size
//! against time.
//! Last, `nodeimg inspect` of the packed image is timed.
//!
//! Needs root (loop devices, mounts) and about 12 GiB in `NODEIMG_BENCH_DIR`
//! (default /var/tmp/nodeimg-bench). The tree is hard-linked from the host's /usr
//! (`NODEIMG_BENCH_TREE`, colon-separated directories), so it is real binaries,
//! libraries and data. Run: `cargo bench --bench pack`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{drop_caches, du_bytes, must, timed, timed_with_own_peak};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
const PART_START: u64 = MIB; // sector 2048
const PART_SIZE: u64 = 5 * GIB;

fn main() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "run the benchmark as root"
    );
    let base = PathBuf::from(
        std::env::var("NODEIMG_BENCH_DIR").unwrap_or("/var/tmp/nodeimg-bench".into()),
    );
    let comp: Vec<String> = std::env::var("NODEIMG_BENCH_COMP")
        .unwrap_or("zstd".into())
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let nodeimg = PathBuf::from(env!("CARGO_BIN_EXE_nodeimg"));
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(&base).unwrap();
    let tree = base.join("tree");
    let disk = base.join("disk.raw");

    println!("== preparing: tree hard-linked from the host, 5 GiB root partition");
    let dirs = std::env::var("NODEIMG_BENCH_TREE")
        .unwrap_or("/usr/bin:/usr/sbin:/usr/share:/usr/include:/usr/libexec:/usr/lib/x86_64-linux-gnu:/usr/lib/python3".into());
    fs::create_dir_all(tree.join("usr")).unwrap();
    for dir in dirs.split(':').filter(|d| Path::new(d).is_dir()) {
        let name = Path::new(dir).file_name().unwrap();
        must(
            Command::new("cp")
                .arg("-al")
                .arg(dir)
                .arg(tree.join("usr").join(name)),
        );
    }
    let tree_bytes = du_bytes(&tree);
    println!("tree: {:.2} GiB", tree_bytes as f64 / GIB as f64);
    fs::File::create(&disk)
        .unwrap()
        .set_len(PART_START + PART_SIZE + MIB)
        .unwrap();
    must(
        Command::new("sgdisk")
            .arg("--new=1:2048:+5G")
            .arg("--typecode=1:8300")
            .arg(&disk),
    );
    must(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "root", "-E"])
            .arg(format!("offset={PART_START}"))
            .arg("-d")
            .arg(&tree)
            .arg(&disk)
            .arg(format!("{}k", PART_SIZE / 1024)),
    );
    drop_caches();

    let mut rows = Vec::new();

    // lorax: mount, fresh mkfs, cp -a, fsck with discard, mksquashfs.
    let lorax_dir = base.join("lorax");
    let lorax_root = lorax_dir.join("squashfs-root");
    fs::create_dir_all(lorax_root.join("LiveOS")).unwrap();
    let rootfs = lorax_root.join("LiveOS/rootfs.img");
    let (src_mnt, dst_mnt) = (base.join("src"), base.join("dst"));
    fs::create_dir_all(&src_mnt).unwrap();
    fs::create_dir_all(&dst_mnt).unwrap();
    let lorax_out = base.join("lorax.squashfs");
    let started = Instant::now();
    let mut peak = 0;
    let steps: Vec<Command> = vec![
        cmd(
            &[
                "mount",
                "-o",
                &format!("ro,loop,offset={PART_START},sizelimit={PART_SIZE}"),
            ],
            &[&disk, &src_mnt],
        ),
        cmd(
            &["mkfs.ext4", "-q", "-F", "-L", "LiveOS"],
            &[&rootfs, Path::new("5G")],
        ),
        cmd(&["mount", "-o", "loop"], &[&rootfs, &dst_mnt]),
        cmd(&["cp", "-a", "--"], &[&src_mnt.join("."), &dst_mnt]),
        cmd(&["umount"], &[&dst_mnt]),
        cmd(&["umount"], &[&src_mnt]),
        cmd(&["e2fsck", "-f", "-y", "-E", "discard"], &[&rootfs]),
        squash(&lorax_root, &lorax_out, &comp),
    ];
    for mut step in steps {
        peak = peak.max(timed(&mut step).1);
    }
    rows.push(Row::new(
        "lorax flow",
        started.elapsed(),
        peak,
        None,
        &lorax_out,
    ));

    // floor: mksquashfs of a finished rootfs.img only (the used blocks of the root
    // partition, as nodeimg packs them; made outside the timing).
    let floor_root = base.join("floor/squashfs-root");
    fs::create_dir_all(floor_root.join("LiveOS")).unwrap();
    must(
        Command::new("e2image")
            .args(["-r", "-a", "-o", &PART_START.to_string()])
            .arg(&disk)
            .arg(floor_root.join("LiveOS/rootfs.img")),
    );
    drop_caches();
    let floor_out = base.join("floor.squashfs");
    let (elapsed, peak) = timed(&mut squash(&floor_root, &floor_out, &comp));
    rows.push(Row::new(
        "floor (mksquashfs of rootfs.img)",
        elapsed,
        peak,
        None,
        &floor_out,
    ));

    // pseudo: the partition streamed into mksquashfs, no copy (and no zeroed free space).
    drop_caches();
    let empty = base.join("empty");
    fs::create_dir_all(&empty).unwrap();
    let pseudo_out = base.join("pseudo.squashfs");
    let stream = format!(
        "LiveOS/rootfs.img f 644 0 0 dd if={} bs=4M iflag=skip_bytes,count_bytes skip={PART_START} count={PART_SIZE} status=none",
        disk.display()
    );
    let mut pseudo = squash(&empty, &pseudo_out, &comp);
    pseudo.args(["-p", "LiveOS d 755 0 0", "-p", &stream]);
    let (elapsed, peak) = timed(&mut pseudo);
    rows.push(Row::new(
        "pseudo file (dd of the partition)",
        elapsed,
        peak,
        None,
        &pseudo_out,
    ));

    // nodeimg.
    drop_caches();
    let work = base.join("work");
    fs::create_dir_all(&work).unwrap();
    let node_out = base.join("nodeimg.liveimg.squashfs");
    let mut pack = Command::new(&nodeimg);
    pack.args(["-q", "liveimg", "pack", "--compression"])
        .arg(&comp[0])
        .arg("--workdir")
        .arg(&work)
        .arg("--from")
        .arg(format!("disk:{}", disk.display()))
        .arg("-o")
        .arg(&node_out);
    if let Some(level) = comp.get(1) {
        pack.args(["--level", level]);
    }
    let (elapsed, peak, own) = timed_with_own_peak(&mut pack);
    rows.push(Row::new(
        "nodeimg liveimg pack",
        elapsed,
        peak,
        Some(own),
        &node_out,
    ));

    drop_caches();
    let mut inspect = Command::new(&nodeimg);
    inspect
        .args(["inspect", "--workdir"])
        .arg(&work)
        .arg(&node_out);
    let started = Instant::now();
    let status = inspect.stdout(Stdio::null()).status().unwrap();
    let inspect_secs = started.elapsed().as_secs_f64();
    // The tree has no rpmdb or NVR: inspect reports problems (status 3) but reads it all.
    assert!(
        matches!(status.code(), Some(0 | 3)),
        "inspect failed: {status}"
    );

    println!(
        "\n== pack, {} ({:.2} GiB of files in a 5 GiB partition)",
        comp.join(" "),
        tree_bytes as f64 / GIB as f64
    );
    println!(
        "{:<36} {:>9} {:>9} {:>12} {:>12} {:>10}",
        "flow", "seconds", "vs floor", "output MiB", "peak RSS MiB", "own MiB"
    );
    let floor_secs = rows[1].seconds;
    for row in &rows {
        println!(
            "{:<36} {:>9.1} {:>8.2}x {:>12.1} {:>12.1} {:>10}",
            row.name,
            row.seconds,
            row.seconds / floor_secs,
            row.bytes as f64 / MIB as f64,
            row.peak_kib as f64 / 1024.0,
            row.own_kib
                .map(|k| format!("{:.1}", k as f64 / 1024.0))
                .unwrap_or("-".into())
        );
    }

    println!("nodeimg inspect of the packed image: {inspect_secs:.2} s (cold cache)");

    if std::env::var_os("NODEIMG_BENCH_TRADEOFF").is_some() {
        println!("\n== compressors on the same rootfs.img");
        println!("{:<14} {:>9} {:>12}", "compressor", "seconds", "output MiB");
        for spec in [
            "xz -Xbcj x86",
            "xz",
            "zstd -Xcompression-level 3",
            "zstd -Xcompression-level 9",
            "zstd -Xcompression-level 15",
            "zstd -Xcompression-level 19",
            "lz4",
            "lz4 -Xhc",
            "gzip",
        ] {
            drop_caches();
            let out = base.join("tradeoff.squashfs");
            let mut parts = spec.split_whitespace();
            let mut c = Command::new("mksquashfs");
            c.arg(&lorax_root)
                .arg(&out)
                .args(["-noappend", "-no-progress", "-all-root", "-comp"])
                .arg(parts.next().unwrap())
                .args(parts);
            let (elapsed, _) = timed(&mut c);
            println!(
                "{:<30} {:>9.1} {:>12.1}",
                spec,
                elapsed.as_secs_f64(),
                fs::metadata(&out).unwrap().len() as f64 / MIB as f64
            );
        }
    }
    let _ = fs::remove_dir_all(&base);
}

struct Row {
    name: &'static str,
    seconds: f64,
    peak_kib: u64,
    own_kib: Option<u64>,
    bytes: u64,
}

impl Row {
    fn new(
        name: &'static str,
        elapsed: Duration,
        peak_kib: u64,
        own_kib: Option<u64>,
        out: &Path,
    ) -> Row {
        Row {
            name,
            seconds: elapsed.as_secs_f64(),
            peak_kib,
            own_kib,
            bytes: fs::metadata(out).unwrap().len(),
        }
    }
}

fn cmd(head: &[&str], paths: &[&Path]) -> Command {
    let mut c = Command::new(head[0]);
    c.args(&head[1..]).args(paths);
    c
}

fn squash(source: &Path, out: &Path, comp: &[String]) -> Command {
    let mut c = Command::new("mksquashfs");
    c.arg(source)
        .arg(out)
        .args([
            "-noappend",
            "-no-progress",
            "-all-root",
            "-no-xattrs",
            "-mem",
            "256M",
            "-comp",
        ])
        .arg(&comp[0]);
    if let Some(level) = comp.get(1) {
        c.args(["-Xcompression-level", level]);
    }
    c
}
