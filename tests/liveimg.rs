//! `nodeimg liveimg pack` on real images made here: trees with every kind of file,
//! ext4 images, MBR and GPT disks with several partitions, and broken inputs.
//! The results are checked with the real tools (unsquashfs, e2fsck, e2label) and by
//! mounting the packed rootfs.img and comparing it with the source tree.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::disk::{fix_gpt_crcs, mbr_disk, write_at};
use common::{interrupt, require_root, run, spawn_until_paused};
use nodeimg::sys::{LoopDevice, LoopOptions, Mount};
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// A scratch area: `work` is nodeimg's workdir, which must end up empty.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("work")).unwrap();
        Scratch { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn nodeimg(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nodeimg"));
        cmd.env("NODEIMG_WORKDIR", self.path("work"))
            .env_remove("SOURCE_DATE_EPOCH");
        cmd
    }

    /// `nodeimg liveimg pack --from SOURCE -o OUT ARGS… --format json`, which must succeed.
    fn pack(&self, source: &str, out: &Path, args: &[&str]) -> Value {
        let output = self.try_pack(source, out, args);
        assert!(
            output.status.success(),
            "pack {source} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.assert_work_empty();
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn try_pack(&self, source: &str, out: &Path, args: &[&str]) -> Output {
        self.nodeimg()
            .args([
                "liveimg", "pack", "--format", "json", "--from", source, "-o",
            ])
            .arg(out)
            .args(args)
            .output()
            .unwrap()
    }

    /// A pack that must fail with status 1, a message containing `expect`, and nothing
    /// left behind.
    fn pack_fails(&self, source: &str, expect: &str) {
        let out = self.path("bad.liveimg.squashfs");
        let output = self.try_pack(source, &out, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{source}: {stderr}");
        assert!(
            stderr.contains(expect),
            "{source}: expected {expect:?} in:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out.exists(), "an output was left for {source}");
        assert!(!self.path("bad.liveimg.squashfs.partial").exists());
        self.assert_work_empty();
    }

    fn assert_work_empty(&self) {
        let left: Vec<_> = fs::read_dir(self.path("work"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "scratch left in the workdir: {left:?}");
    }
}

/// A root tree with every kind of file an OS tree has.
fn make_tree(root: &Path) {
    for dir in [
        "etc",
        "usr/lib",
        "usr/bin",
        "usr/share/doc",
        "home/node",
        "tmp",
        "dev",
        "var/lib/empty",
        "boot",
    ] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::write(
        root.join("usr/lib/os-release"),
        "NAME=\"CentOS Stream\"\nVERSION_ID=\"9\"\n",
    )
    .unwrap();
    symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    symlink("/nonexistent/dangling", root.join("etc/dangling")).unwrap();
    fs::write(root.join("etc/hostname"), "node\n").unwrap();
    xattr::set(
        root.join("etc/hostname"),
        "security.selinux",
        b"system_u:object_r:hostname_etc_t:s0\0",
    )
    .unwrap();
    xattr::set(root.join("etc/hostname"), "user.nodeimg", b"kept").unwrap();

    fs::write(root.join("usr/bin/tool"), b"\x7fELF pretend").unwrap();
    fs::set_permissions(
        root.join("usr/bin/tool"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(root.join("home/node/secret"), "private\n").unwrap();
    fs::set_permissions(
        root.join("home/node/secret"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    nix::unistd::chown(
        &root.join("home/node"),
        Some(1000.into()),
        Some(1000.into()),
    )
    .unwrap();
    nix::unistd::chown(
        &root.join("home/node/secret"),
        Some(1000.into()),
        Some(1000.into()),
    )
    .unwrap();

    fs::write(root.join("usr/share/doc/original"), "hard linked\n").unwrap();
    fs::hard_link(
        root.join("usr/share/doc/original"),
        root.join("usr/share/doc/link"),
    )
    .unwrap();

    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    mknod(
        &root.join("dev/null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .unwrap();
    mknod(
        &root.join("dev/loop9"),
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o660),
        makedev(7, 9),
    )
    .unwrap();
    nix::unistd::mkfifo(&root.join("dev/initctl"), Mode::from_bits_truncate(0o600)).unwrap();

    let mut sparse = fs::File::create(root.join("var/lib/sparse")).unwrap();
    sparse.seek(SeekFrom::Start(10 * MIB)).unwrap();
    sparse.write_all(b"end of a sparse file").unwrap();

    fs::write(
        root.join("boot").join("n".repeat(255)),
        "a name of 255 bytes\n",
    )
    .unwrap();
    fs::write(root.join("usr/share/doc/café ünïcode"), "").unwrap();
}

/// Everything about a tree that packing must keep, keyed by path.
fn manifest(root: &Path) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == "lost+found" {
                continue;
            }
            let meta = fs::symlink_metadata(&path).unwrap();
            let kind = meta.file_type();
            let detail = if kind.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else if kind.is_symlink() {
                format!("symlink -> {}", fs::read_link(&path).unwrap().display())
            } else if kind.is_file() {
                format!(
                    "file {} bytes crc {:08x}",
                    meta.len(),
                    crc32fast::hash(&fs::read(&path).unwrap())
                )
            } else {
                format!("special rdev {:x}", meta.rdev())
            };
            let mut attrs: Vec<String> = xattr::list(&path)
                .map(|names| {
                    names
                        .map(|n| {
                            let v = xattr::get(&path, &n).ok().flatten().unwrap_or_default();
                            format!("{}={}", n.to_string_lossy(), String::from_utf8_lossy(&v))
                        })
                        .collect()
                })
                .unwrap_or_default();
            attrs.sort();
            entries.insert(
                rel,
                format!(
                    "{detail} mode {:o} owner {}:{} links {} xattrs {attrs:?}",
                    meta.mode(),
                    meta.uid(),
                    meta.gid(),
                    meta.nlink()
                ),
            );
        }
    }
    entries
}

/// Unpack LiveOS/rootfs.img from a squashfs with unsquashfs; check its listing.
fn unpack_rootfs(squashfs: &Path, into: &Path) -> PathBuf {
    let listing = run(Command::new("unsquashfs")
        .args(["-d", "", "-lc"])
        .arg(squashfs));
    let files = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert_eq!(
        files.trim(),
        "/LiveOS/rootfs.img",
        "squashfs holds more or less than rootfs.img"
    );
    run(Command::new("unsquashfs").arg("-d").arg(into).arg(squashfs));
    let rootfs = into.join("LiveOS/rootfs.img");
    assert_eq!(
        fs::metadata(&rootfs).unwrap().permissions().mode() & 0o777,
        0o644
    );
    run(Command::new("e2fsck").args(["-f", "-n"]).arg(&rootfs));
    let label = run(Command::new("e2label").arg(&rootfs));
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "LiveOS");
    rootfs
}

/// The manifest of an ext4 image, read through a read-only loop mount.
fn mounted_manifest(rootfs: &Path, scratch: &Scratch, name: &str) -> BTreeMap<String, String> {
    let target = scratch.path(name);
    fs::create_dir(&target).unwrap();
    let device = LoopDevice::attach(
        rootfs,
        LoopOptions {
            read_only: true,
            ..Default::default()
        },
    )
    .unwrap();
    let mount = Mount::new(device.path(), &target, Some("ext4"), &["ro"]).unwrap();
    let found = manifest(mount.target());
    mount.unmount().unwrap();
    device.detach().unwrap();
    found
}

/// An ext4 image of `tree`, `size` bytes, with `label`.
fn ext4_image(path: &Path, tree: &Path, size: u64, label: &str) {
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", label, "-d"])
        .arg(tree)
        .arg(path)
        .arg(format!("{}k", size / 1024)));
}

/// A GPT disk: partitions of (MiB, sgdisk type code, name), from sector 2048 on.
/// Returns the byte offset of each partition.
fn gpt_disk(path: &Path, parts: &[(u64, &str, &str)]) -> Vec<u64> {
    let total: u64 = parts.iter().map(|p| p.0).sum::<u64>() + 2;
    fs::File::create(path)
        .unwrap()
        .set_len(total * MIB)
        .unwrap();
    let mut cmd = Command::new("sgdisk");
    let mut start = 2048u64;
    let mut offsets = Vec::new();
    for (i, (mib, code, name)) in parts.iter().enumerate() {
        let n = i + 1;
        let end = start + mib * 2048 - 1;
        cmd.arg(format!("--new={n}:{start}:{end}"))
            .arg(format!("--typecode={n}:{code}"))
            .arg(format!("--change-name={n}:{name}"));
        offsets.push(start * 512);
        start = end + 1;
    }
    run(cmd.arg(path));
    offsets
}

/// Invert one byte of a file in place.
fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0xFF;
    fs::write(path, bytes).unwrap();
}

fn sha(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn dir_source_keeps_every_kind_of_file_its_owner_mode_links_and_labels() {
    require_root();
    let s = Scratch::new();
    let tree = s.path("tree");
    make_tree(&tree);
    let out = s.path("node.liveimg.squashfs");
    let report = s.pack(&format!("dir:{}", tree.display()), &out, &["--size", "64M"]);
    assert_eq!(report["filesystem_bytes"], 64 * MIB);
    assert_eq!(report["label"], "LiveOS");

    let rootfs = unpack_rootfs(&out, &s.path("unpacked"));
    assert_eq!(fs::metadata(&rootfs).unwrap().len(), 64 * MIB);
    let packed = mounted_manifest(&rootfs, &s, "mnt");
    let source = manifest(&tree);
    assert!(source.len() >= 20, "{source:#?}");
    let differ: Vec<_> = source
        .iter()
        .filter(|(path, want)| packed.get(*path) != Some(want))
        .map(|(path, want)| format!("{path}:\n  source {want}\n  packed {:?}", packed.get(path)))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert_eq!(
        packed.len(),
        source.len(),
        "extra files in the image: {packed:#?}"
    );
}

#[test]
fn gpt_disk_root_is_found_and_sized_by_its_superblock() {
    require_root();
    let s = Scratch::new();
    let tree = s.path("tree");
    make_tree(&tree);
    let disk = s.path("disk.raw");
    let offsets = gpt_disk(
        &disk,
        &[
            (4, "ef00", "EFI"),
            (4, "8200", "swap"),
            (80, "8300", "root"),
        ],
    );
    // A 48 MiB filesystem in an 80 MiB partition: rootfs.img is 48 MiB.
    let fs_image = s.path("root.ext4");
    ext4_image(&fs_image, &tree, 48 * MIB, "root");
    write_at(&disk, offsets[2], &fs_image);

    let out = s.path("node.liveimg.squashfs");
    let report = s.pack(&format!("disk:{}", disk.display()), &out, &[]);
    assert_eq!(report["partition"]["number"], 3, "{report:#}");
    assert_eq!(report["partition"]["kind"], "linux");
    assert_eq!(report["partition"]["name"], "root");
    assert_eq!(report["filesystem_bytes"], 48 * MIB);

    let rootfs = unpack_rootfs(&out, &s.path("unpacked"));
    assert_eq!(fs::metadata(&rootfs).unwrap().len(), 48 * MIB);
    // Free blocks are holes: the copy takes about what the filesystem uses.
    let used = report["filesystem_used_bytes"].as_u64().unwrap();
    let allocated = fs::metadata(&rootfs).unwrap().blocks() * 512;
    assert!(
        allocated <= used + 4 * MIB,
        "allocated {allocated} for {used} used"
    );
    assert_eq!(mounted_manifest(&rootfs, &s, "mnt"), manifest(&tree));
    // The input is untouched: its filesystem keeps its own label.
    let label = run(Command::new("e2label").arg(format!("{}", fs_image.display())));
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "root");
}

#[test]
fn of_two_ext4_partitions_the_one_holding_an_os_is_the_root() {
    require_root();
    let s = Scratch::new();
    let (boot, root) = (s.path("boot"), s.path("root"));
    fs::create_dir_all(&boot).unwrap();
    fs::write(boot.join("vmlinuz"), "kernel").unwrap();
    make_tree(&root);
    let disk = s.path("disk.raw");
    let offsets = gpt_disk(&disk, &[(16, "8300", "boot"), (64, "8300", "root")]);
    ext4_image(&s.path("boot.ext4"), &boot, 16 * MIB, "boot");
    ext4_image(&s.path("root.ext4"), &root, 64 * MIB, "root");
    write_at(&disk, offsets[0], &s.path("boot.ext4"));
    write_at(&disk, offsets[1], &s.path("root.ext4"));

    let out = s.path("node.liveimg.squashfs");
    let report = s.pack(&format!("disk:{}", disk.display()), &out, &[]);
    assert_eq!(report["partition"]["number"], 2, "{report:#}");
    let rootfs = unpack_rootfs(&out, &s.path("unpacked"));
    assert_eq!(mounted_manifest(&rootfs, &s, "mnt"), manifest(&root));

    s.pack_fails(
        &format!("disk:{}:7", disk.display()),
        "has no partition 7; it has: 1 (linux, 16.0 MiB), 2 (linux, 64.0 MiB)",
    );
    // Naming the partition overrides the search, even for a poor choice.
    let report = s.pack(
        &format!("disk:{}:1", disk.display()),
        &s.path("boot.liveimg.squashfs"),
        &[],
    );
    assert_eq!(report["partition"]["number"], 1);
}

#[test]
fn a_qcow2_disk_is_read_through_qemu_img() {
    let s = Scratch::new();
    let tree = s.path("tree");
    fs::create_dir_all(tree.join("usr/lib")).unwrap();
    fs::write(tree.join("usr/lib/os-release"), "ID=centos\n").unwrap();
    let disk = s.path("disk.raw");
    let offsets = gpt_disk(&disk, &[(4, "ef00", "EFI"), (24, "8300", "root")]);
    ext4_image(&s.path("os.ext4"), &tree, 24 * MIB, "os");
    write_at(&disk, offsets[1], &s.path("os.ext4"));
    let qcow2 = s.path("disk.qcow2");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "qcow2"])
        .arg(&disk)
        .arg(&qcow2));

    let from_raw = s.path("raw.liveimg.squashfs");
    let from_qcow2 = s.path("qcow2.liveimg.squashfs");
    let report = s.pack(
        &format!("disk:{}", qcow2.display()),
        &from_qcow2,
        &["--source-date-epoch", "1700000000"],
    );
    assert_eq!(report["partition"]["number"], 2);
    s.pack(
        &format!("disk:{}", disk.display()),
        &from_raw,
        &["--source-date-epoch", "1700000000"],
    );
    assert_eq!(
        sha(&from_raw),
        sha(&from_qcow2),
        "qcow2 and raw forms of one disk differ"
    );
}

#[test]
fn a_disk_with_two_os_trees_needs_the_root_named() {
    let s = Scratch::new();
    let tree = s.path("tree");
    fs::create_dir_all(tree.join("usr/lib")).unwrap();
    fs::write(tree.join("usr/lib/os-release"), "ID=centos\n").unwrap();
    let disk = s.path("disk.raw");
    let offsets = gpt_disk(&disk, &[(16, "8300", "a"), (16, "8300", "b")]);
    ext4_image(&s.path("os.ext4"), &tree, 16 * MIB, "os");
    write_at(&disk, offsets[0], &s.path("os.ext4"));
    write_at(&disk, offsets[1], &s.path("os.ext4"));
    s.pack_fails(&format!("disk:{}", disk.display()), "several partitions of");
    s.pack_fails(
        &format!("disk:{}", disk.display()),
        "(1, 2); name the root one as disk:",
    );
    s.pack(
        &format!("disk:{}:2", disk.display()),
        &s.path("b.liveimg.squashfs"),
        &[],
    );
}

#[test]
fn mbr_disk_with_the_root_in_a_logical_partition() {
    require_root();
    let s = Scratch::new();
    let tree = s.path("tree");
    make_tree(&tree);
    let disk = s.path("disk.raw");
    // 1: FAT (raw), 2: extended holding 5: swap and 6: Linux root.
    mbr_disk(
        &disk,
        100,
        "label: dos\nstart=2048, size=8192, type=c\nstart=10240, type=5\nstart=12288, size=8192, type=82\nstart=22528, size=131072, type=83\n",
    );
    let layout = run(Command::new("sfdisk").arg("--dump").arg(&disk));
    let layout = String::from_utf8_lossy(&layout.stdout).into_owned();
    assert!(
        layout.contains("disk.raw6 : start=       22528"),
        "{layout}"
    );
    ext4_image(&s.path("root.ext4"), &tree, 64 * MIB, "root");
    write_at(&disk, 22528 * 512, &s.path("root.ext4"));

    let out = s.path("node.liveimg.squashfs");
    let report = s.pack(&format!("disk:{}", disk.display()), &out, &[]);
    assert_eq!(report["partition"]["number"], 6, "{report:#}");
    assert_eq!(report["partition"]["kind"], "linux");
    let rootfs = unpack_rootfs(&out, &s.path("unpacked"));
    assert_eq!(mounted_manifest(&rootfs, &s, "mnt"), manifest(&tree));
}

#[test]
fn fsimage_source_is_relabelled_and_can_be_resized() {
    require_root();
    let s = Scratch::new();
    let tree = s.path("tree");
    make_tree(&tree);
    let image = s.path("root.ext4");
    ext4_image(&image, &tree, 40 * MIB, "_/");
    let before = sha(&image);

    let out = s.path("node.liveimg.squashfs");
    let report = s.pack(
        &format!("fsimage:{}", image.display()),
        &out,
        &["--size", "96M", "--compression", "zstd", "--level", "3"],
    );
    assert_eq!(report["filesystem_bytes"], 96 * MIB);
    assert_eq!(report["squashfs"]["compression"], "zstd");
    let superblock = run(Command::new("unsquashfs").arg("-s").arg(&out));
    assert!(String::from_utf8_lossy(&superblock.stdout).contains("Compression zstd"));
    let rootfs = unpack_rootfs(&out, &s.path("unpacked"));
    assert_eq!(fs::metadata(&rootfs).unwrap().len(), 96 * MIB);
    assert_eq!(mounted_manifest(&rootfs, &s, "mnt"), manifest(&tree));
    assert_eq!(sha(&image), before, "the input image was modified");
}

#[test]
fn xz_output_uses_the_x86_branch_filter_by_default() {
    let s = Scratch::new();
    let tree = s.path("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/hostname"), "node\n").unwrap();
    let out = s.path("node.liveimg.squashfs");
    s.pack(
        &format!("dir:{}", tree.display()),
        &out,
        &["--size", "8M", "--arch", "x86_64"],
    );
    let superblock = run(Command::new("unsquashfs").arg("-s").arg(&out));
    let text = String::from_utf8_lossy(&superblock.stdout).into_owned();
    assert!(text.contains("Compression xz"), "{text}");
    assert!(text.contains("Filters selected: x86"), "{text}");
}

#[test]
fn same_input_and_source_date_epoch_give_identical_bytes() {
    let s = Scratch::new();
    let tree = s.path("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/hostname"), "node\n").unwrap();
    fs::write(tree.join("etc/motd"), "welcome\n").unwrap();
    let image = s.path("root.ext4");
    ext4_image(&image, &tree, 16 * MIB, "root");
    let disk = s.path("disk.raw");
    let offsets = gpt_disk(&disk, &[(16, "8300", "root")]);
    write_at(&disk, offsets[0], &image);

    for source in [
        format!("dir:{}", tree.display()),
        format!("fsimage:{}", image.display()),
        format!("disk:{}", disk.display()),
    ] {
        let mut digests = Vec::new();
        for round in 0..2 {
            let out = s.path(&format!("r{round}.liveimg.squashfs"));
            let mut cmd = s.nodeimg();
            cmd.env("SOURCE_DATE_EPOCH", "1700000000")
                .args([
                    "liveimg", "pack", "--force", "--size", "16M", "--from", &source, "-o",
                ])
                .arg(&out);
            run(&mut cmd);
            digests.push(sha(&out));
            // Let the clock move on: nothing may depend on it.
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        assert_eq!(digests[0], digests[1], "{source} is not reproducible");
    }
}

#[test]
fn broken_inputs_fail_clearly_and_leave_nothing() {
    let s = Scratch::new();
    let tree = s.path("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/hostname"), "node\n").unwrap();

    // A GPT whose header checksum no longer matches.
    let disk = s.path("badcrc.raw");
    let offsets = gpt_disk(&disk, &[(16, "8300", "root")]);
    ext4_image(&s.path("root.ext4"), &tree, 16 * MIB, "root");
    write_at(&disk, offsets[0], &s.path("root.ext4"));
    flip_byte(&disk, 512 + 48); // the last usable LBA
    s.pack_fails(
        &format!("disk:{}", disk.display()),
        "GPT header checksum mismatch",
    );

    // A GPT whose partition entries were altered.
    let disk = s.path("badentries.raw");
    gpt_disk(&disk, &[(16, "8300", "root")]);
    flip_byte(&disk, 1024 + 56); // the first entry's name
    s.pack_fails(
        &format!("disk:{}", disk.display()),
        "GPT partition entries checksum mismatch",
    );

    // A GPT whose header (checksums fixed) claims 2^32-1 entries of 4 KiB: a 16 TiB
    // array was read into memory before anything was checked.
    let disk = s.path("huge-array.raw");
    gpt_disk(&disk, &[(16, "8300", "root")]);
    let mut bytes = fs::read(&disk).unwrap();
    bytes[512 + 80..512 + 84].copy_from_slice(&u32::MAX.to_le_bytes());
    bytes[512 + 84..512 + 88].copy_from_slice(&4096u32.to_le_bytes());
    fix_gpt_crcs(&mut bytes);
    fs::write(&disk, &bytes).unwrap();
    s.pack_fails(
        &format!("disk:{}", disk.display()),
        "GPT declares 4294967295 entries of 4096 bytes",
    );

    // An entry whose first LBA is 2^55 + 6144 (checksums fixed): first_lba * 512
    // wrapped to 3 MiB, and the partition was read from there instead of refused.
    let disk = s.path("wrapping-lba.raw");
    let offsets = gpt_disk(&disk, &[(16, "8300", "root")]);
    write_at(&disk, offsets[0], &s.path("root.ext4"));
    let mut bytes = fs::read(&disk).unwrap();
    let first_lba = (1u64 << 55) + 6144;
    bytes[1024 + 32..1024 + 40].copy_from_slice(&first_lba.to_le_bytes());
    bytes[1024 + 40..1024 + 48].copy_from_slice(&(first_lba + 32767).to_le_bytes());
    fix_gpt_crcs(&mut bytes);
    fs::write(&disk, &bytes).unwrap();
    s.pack_fails(
        &format!("disk:{}", disk.display()),
        &format!("GPT partition 1 (LBA {first_lba} to"),
    );

    // A partition that runs past the end of a truncated disk.
    let disk = s.path("truncated.raw");
    gpt_disk(&disk, &[(16, "8300", "root")]);
    fs::OpenOptions::new()
        .write(true)
        .open(&disk)
        .unwrap()
        .set_len(8 * MIB)
        .unwrap();
    s.pack_fails(&format!("disk:{}", disk.display()), "ends at byte");

    // MBR partition past the end.
    let disk = s.path("mbrpast.raw");
    mbr_disk(&disk, 32, "label: dos\nstart=2048, size=20480, type=83\n");
    fs::OpenOptions::new()
        .write(true)
        .open(&disk)
        .unwrap()
        .set_len(4 * MIB)
        .unwrap();
    s.pack_fails(&format!("disk:{}", disk.display()), "partition 1 of");

    // A filesystem image given as a disk.
    s.pack_fails(
        &format!("disk:{}", s.path("root.ext4").display()),
        "no partition table",
    );

    // ext2 is not ext4.
    let ext2 = s.path("root.ext2");
    run(Command::new("mkfs.ext2")
        .args(["-q", "-F"])
        .arg(&ext2)
        .arg("8M"));
    s.pack_fails(
        &format!("fsimage:{}", ext2.display()),
        "holds an ext2 filesystem, not ext4",
    );

    // Not a filesystem at all.
    let noise = s.path("noise.img");
    fs::write(&noise, vec![0x5Au8; 4 * MIB as usize]).unwrap();
    s.pack_fails(
        &format!("fsimage:{}", noise.display()),
        "holds no ext4 filesystem",
    );

    // A filesystem that claims more than the file holds.
    let cut = s.path("cut.ext4");
    fs::copy(s.path("root.ext4"), &cut).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(8 * MIB)
        .unwrap();
    s.pack_fails(&format!("fsimage:{}", cut.display()), "truncated image?");

    // A filesystem with errors: an inode wiped behind its directory's back.
    let broken = s.path("broken.ext4");
    fs::copy(s.path("root.ext4"), &broken).unwrap();
    run(Command::new("debugfs")
        .args(["-w", "-R", "clri /etc/hostname"])
        .arg(&broken));
    s.pack_fails(
        &format!("fsimage:{}", broken.display()),
        "has errors (e2fsck -fn)",
    );

    // Missing inputs and bad options.
    s.pack_fails(
        &format!("fsimage:{}", s.path("absent.img").display()),
        "absent.img",
    );
    s.pack_fails(
        &format!("dir:{}", s.path("absent").display()),
        "is not a directory",
    );
    let out = s.path("x.liveimg.squashfs");
    let output = s.try_pack(
        &format!("dir:{}", tree.display()),
        &out,
        &["--compression", "xz", "--level", "9"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--level does not apply to xz"));
    let output = s.try_pack(
        &format!("dir:{}", tree.display()),
        &out,
        &["--label", "two words"],
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("may hold only letters"));
    assert!(!out.exists());
}

#[test]
fn an_existing_output_is_kept_unless_forced() {
    let s = Scratch::new();
    let tree = s.path("tree");
    fs::create_dir_all(&tree).unwrap();
    let out = s.path("node.liveimg.squashfs");
    fs::write(&out, "precious").unwrap();
    let output = s.try_pack(&format!("dir:{}", tree.display()), &out, &["--size", "8M"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("already exists; remove it or pass --force")
    );
    assert_eq!(fs::read(&out).unwrap(), b"precious");
    s.pack(
        &format!("dir:{}", tree.display()),
        &out,
        &["--size", "8M", "--force"],
    );
    assert_ne!(fs::read(&out).unwrap(), b"precious");
}

#[test]
fn sigterm_during_pack_leaves_no_output_partial_or_scratch() {
    let s = Scratch::new();
    let tree = s.path("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    let out = s.path("node.liveimg.squashfs");
    let mut cmd = s.nodeimg();
    cmd.args(["liveimg", "pack", "--size", "8M", "--from"])
        .arg(format!("dir:{}", tree.display()))
        .arg("-o")
        .arg(&out);
    let (child, rx) = spawn_until_paused(&mut cmd, "liveimg.before-squashfs");
    assert_eq!(
        fs::read_dir(s.path("work")).unwrap().count(),
        1,
        "the scratch tree should exist while paused"
    );
    let (code, rest) = interrupt(child, rx, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(143), "{rest:#?}");
    assert!(!out.exists());
    assert!(!s.path("node.liveimg.squashfs.partial").exists());
    s.assert_work_empty();
}
