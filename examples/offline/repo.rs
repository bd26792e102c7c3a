//! `cargo run --example offline-repo -- DIR [EXTRA.rpm...]`: the offline Node's package
//! repository, made in seconds from this host's own files with rpmbuild and
//! createrepo_c (see `examples/offline/run.sh`).
//!
//! DIR receives filesystem, setup, busybox (the host's static busybox: /bin/sh and the
//! commands a scriptlet uses), tzdata, node-base (os-release and a kernel-shaped file),
//! an `imgbased` that records its calls, every EXTRA package (the placeholder), and a
//! comps file whose `core` group holds them, so the kickstart installs `@core`.

mod packages;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};

const APPLETS: &str = "sh ash cat chmod cp cut date dirname echo env find grep head id ln ls \
     mkdir mktemp mount mv readlink rm rmdir sed sleep sort stat tail test [ touch umount \
     uname wc";

const COMPS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">
<comps>
  <group>
    <id>core</id><name>Core</name><description>The offline Node's base</description>
    <default>true</default><uservisible>false</uservisible>
    <packagelist>
      <packagereq type="mandatory">filesystem</packagereq>
      <packagereq type="mandatory">setup</packagereq>
      <packagereq type="mandatory">busybox</packagereq>
      <packagereq type="mandatory">tzdata</packagereq>
      <packagereq type="mandatory">node-base</packagereq>
      <packagereq type="mandatory">imgbased</packagereq>
    </packagelist>
  </group>
</comps>
"#;

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let dir = PathBuf::from(
        args.next()
            .context("usage: offline-repo DIR [EXTRA.rpm...]")?,
    );
    let extras: Vec<PathBuf> = args.map(PathBuf::from).collect();
    let started = Instant::now();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let top = tempfile::Builder::new()
        .prefix("nodeimg-offline-rpmbuild-")
        .tempdir()
        .context("creating rpmbuild's top directory")?;
    let packages = [
        packages::filesystem(),
        packages::setup(),
        packages::busybox(APPLETS)?,
        packages::tzdata(&["UTC"]),
        packages::node_base(None),
        packages::imgbased_recorder(),
    ];
    for p in &packages {
        let rpm = packages::build(top.path(), p)?;
        copy_into(&rpm, &dir)?;
    }
    for extra in &extras {
        ensure!(extra.is_file(), "{}: no such package", extra.display());
        copy_into(extra, &dir)?;
    }
    packages::createrepo(&dir, Some(COMPS))?;
    println!(
        "{}: {} packages in {:.1} s",
        dir.display(),
        packages.len() + extras.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn copy_into(rpm: &std::path::Path, dir: &std::path::Path) -> Result<()> {
    let name = rpm.file_name().context("a package path without a name")?;
    std::fs::copy(rpm, dir.join(name))
        .with_context(|| format!("copying {} into {}", rpm.display(), dir.display()))?;
    Ok(())
}
