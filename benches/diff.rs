//! `nodeimg diff` of two Node images of 500 packages each, as a user (no root needed
//! to read), against what one does by hand without it: unsquashfs both images, copy
//! the rpmdb out of each rootfs.img with debugfs, `rpm -qa` each with the SIGMD5, and
//! diff the lists (which still gives no EVR order, changelog or CVEs).
//!
//! The images: one spec with 500 subpackages of 50 files each (one rpmbuild run), recorded with
//! `rpm --justdb` and packed with `nodeimg liveimg pack`; the new image has 100 of them
//! upgraded (with new %changelog entries naming CVEs), 20 removed and 20 added.
//! Each side is run 5 times; the fastest run is reported with the peak RSS. Run:
//! `cargo bench --bench diff` (after `scripts/setup.sh`).

mod common;

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::timed;

const ROUNDS: usize = 5;
const PACKAGES: usize = 500;
/// Files in each package.
const FILES: usize = 50;

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One spec, `names` as subpackages at `version`, with `changelog`.
fn build(top: &Path, version: &str, names: &[String], changelog: &str) -> Vec<PathBuf> {
    fs::create_dir_all(top).unwrap();
    let mut spec = format!(
        "Name: bench\nVersion: {version}\nRelease: 1\nSummary: bench\nLicense: MIT\nBuildArch: noarch\n\
         %description\nbench\n"
    );
    // Each package owns FILES files, so its header has file lists as real ones do.
    let _ = write!(
        spec,
        "%install\nfor n in {}; do mkdir -p %{{buildroot}}/usr/share/bench/$n; \
         for f in $(seq 1 {FILES}); do echo $n $f > %{{buildroot}}/usr/share/bench/$n/file$f; done; done\n",
        names.join(" ")
    );
    for name in names {
        let _ = write!(
            spec,
            "%package -n {name}\nSummary: {name}\n%description -n {name}\n{name}\n\
             %files -n {name}\n/usr/share/bench/{name}\n"
        );
    }
    let _ = write!(spec, "%changelog\n{changelog}");
    let file = top.join("bench.spec");
    fs::write(&file, spec).unwrap();
    run(Command::new("rpmbuild")
        .args(["-bb", "--quiet", "--define"])
        .arg(format!("_topdir {}", top.display()))
        .arg(&file));
    names
        .iter()
        .map(|n| top.join(format!("RPMS/noarch/{n}-{version}-1.noarch.rpm")))
        .collect()
}

fn image(nodeimg: &Path, dir: &Path, rpms: &[PathBuf]) -> PathBuf {
    let root = dir.join("root");
    for d in ["etc", "usr/lib", "boot", "var/lib"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("usr/lib/os-release"), "ID=centos\nVERSION_ID=9\n").unwrap();
    symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    fs::write(root.join("boot/vmlinuz-5.14.0-570.el9.x86_64"), "k").unwrap();
    let rpm = || {
        let mut c = Command::new("rpm");
        c.arg("--root")
            .arg(&root)
            .args(["--dbpath", "/var/lib/rpm"]);
        c
    };
    run(rpm().arg("--initdb"));
    run(rpm()
        .args(["-i", "--justdb", "--nodeps", "--nosignature"])
        .args(rpms));
    let out = dir.join("image.liveimg.squashfs");
    run(Command::new(nodeimg)
        .args([
            "-q",
            "liveimg",
            "pack",
            "--size",
            "128M",
            "--compression",
            "zstd",
        ])
        .arg(format!("--from=dir:{}", root.display()))
        .arg("-o")
        .arg(&out));
    out
}

fn best(mut f: impl FnMut() -> (Duration, u64)) -> (Duration, u64) {
    (0..ROUNDS).map(|_| f()).min().unwrap()
}

fn main() {
    let nodeimg = PathBuf::from(env!("CARGO_BIN_EXE_nodeimg"));
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    let names: Vec<String> = (0..PACKAGES + 20).map(|i| format!("pkg{i:03}")).collect();
    let log_old = "* Mon Jan 06 2025 A <a@x> - 1.0-1\n- first (CVE-2024-0001)\n";
    let log_new = format!(
        "* Tue Sep 02 2025 B <b@x> - 1.1-1\n- fixes CVE-2025-1234, CVE-2025-5678\n\n{log_old}"
    );
    // Old: pkg000..pkg499. New: 100 upgraded, 20 removed (480..499), 20 added (500..519).
    let old_rpms = build(&s.join("old-rpms"), "1.0", &names[..PACKAGES], log_old);
    let upgraded = build(&s.join("new-rpms"), "1.1", &names[..100], &log_new);
    let added = build(&s.join("added-rpms"), "1.0", &names[PACKAGES..], log_old);
    let new_rpms: Vec<PathBuf> = upgraded
        .into_iter()
        .chain(old_rpms[100..PACKAGES - 20].iter().cloned())
        .chain(added)
        .collect();
    let old = image(&nodeimg, &s.join("old"), &old_rpms);
    let new = image(&nodeimg, &s.join("new"), &new_rpms);

    let out = Command::new(&nodeimg)
        .args(["diff", "--format", "json"])
        .arg(&old)
        .arg(&new)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let count = |k: &str| json["packages"][k].as_array().unwrap().len();
    assert_eq!(
        (count("upgraded"), count("removed"), count("added")),
        (100, 20, 20)
    );

    let (ours, ours_rss) = best(|| {
        timed(
            Command::new(&nodeimg)
                .env("NODEIMG_WORKDIR", s)
                .arg("diff")
                .arg(&old)
                .arg(&new),
        )
    });
    let (files, files_rss) = best(|| {
        timed(
            Command::new(&nodeimg)
                .env("NODEIMG_WORKDIR", s)
                .args(["diff", "--files"])
                .arg(&old)
                .arg(&new),
        )
    });
    let script = r#"set -e
w=$(mktemp -d)
for side in old new; do
  img=$1; shift
  unsquashfs -q -no-progress -d "$w/$side" "$img" >/dev/null
  debugfs -R "rdump /var/lib/rpm $w/$side" "$w/$side/LiveOS/rootfs.img" 2>/dev/null
  rpm --dbpath "$w/$side/rpm" -qa --qf '%{NEVRA} %{SIGMD5}\n' | sort > "$w/$side.list"
done
diff "$w/old.list" "$w/new.list" > "$w/diff" || true
rm -rf "$w"
"#;
    let (by_hand, by_hand_rss) = best(|| {
        timed(
            Command::new("bash")
                .arg("-c")
                .arg(script)
                .arg("by-hand")
                .arg(&old)
                .arg(&new),
        )
    });
    println!(
        "diff of two images of {PACKAGES} packages (100 upgraded, 20 removed, 20 added), best of {ROUNDS}:"
    );
    println!(
        "  nodeimg diff:                       {:>8.3} s, peak {:>6} KiB",
        ours.as_secs_f64(),
        ours_rss
    );
    println!(
        "  nodeimg diff --files ({} files):  {:>8.3} s, peak {:>6} KiB",
        PACKAGES * FILES,
        files.as_secs_f64(),
        files_rss
    );
    println!(
        "  unsquashfs + debugfs + rpm -qa + diff: {:>6.3} s, peak {:>6} KiB",
        by_hand.as_secs_f64(),
        by_hand_rss
    );
    println!(
        "  ratio: nodeimg is {:.1}x faster",
        by_hand.as_secs_f64() / ours.as_secs_f64()
    );
}
