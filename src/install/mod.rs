//! Installer backends: they turn a flattened, checked kickstart into a root
//! filesystem that `liveimg` packs. livemedia-creator on the host or in a VM (`lmc`)
//! or in a mock chroot (`mock`); the native installer (`dnf`): dnf into a directory,
//! then the kickstart's commands and scripts applied to the tree; or no install at all
//! (`--from-result`). [`choose`] is the one place that picks one.

pub mod dnf;
pub mod lmc;
pub mod mock;
pub mod sandbox;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::kickstart::check::LmcMode;
use crate::kickstart::model::Model;
use crate::kickstart::version::Version;
use crate::liveimg;
use crate::sys::cmd::which;

/// The kickstart an installer reads: flattened (and rewritten for `--repo`/`--url`)
/// and checked, with what the check learnt of it.
#[derive(Debug)]
pub struct FlatKickstart {
    pub path: PathBuf,
    pub sha256: String,
    pub version: Version,
    /// The release it targets (livemedia-creator's --releasever).
    pub releasever: String,
    pub model: Model,
}

impl FlatKickstart {
    /// The root filesystem's size from the kickstart's `part /` (bytes), if it sets one.
    pub fn root_size(&self) -> Option<u64> {
        self.model
            .root()
            .and_then(|p| p.size)
            .filter(|mib| *mib > 0)
            .map(|mib| mib as u64 * (1 << 20))
    }
}

/// What an install made: the root filesystem `liveimg` packs, and what it says of itself.
#[derive(Debug)]
pub struct RootFs {
    pub source: liveimg::Source,
    /// The size to make the filesystem when the source is a directory.
    pub size: Option<u64>,
    /// The dnf backend's account of the install (build.json's `install`).
    pub installed: Option<dnf::Installed>,
    /// One line for the build's log.
    pub summary: String,
}

/// An installer.
pub trait Backend {
    /// How build.json names it: `lmc`, `lmc in mock CONFIG`, `dnf`, `from-result`.
    fn name(&self) -> String;
    /// Which livemedia-creator rules the kickstart must follow for it.
    fn lmc_mode(&self) -> LmcMode;
    /// Install `ks` using the empty work directory `work`; the installer's logs go to `logs`.
    fn install(&self, ks: &FlatKickstart, work: &Path, logs: &Path) -> Result<RootFs>;
}

/// `--backend`: which installer the user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// livemedia-creator when present, else the native dnf installer.
    Auto,
    /// livemedia-creator --no-virt --make-fsimage.
    Lmc,
    /// The native dnf installer.
    Dnf,
}

/// Everything that decides the installer and how it runs.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub backend: BackendChoice,
    /// Skip the install: take the root filesystem from an earlier installer result.
    pub from_result: Option<liveimg::Source>,
    /// Run livemedia-creator in a mock chroot of this configuration (name or .cfg).
    pub mock: Option<String>,
    /// Run livemedia-creator's install in a VM instead of `--no-virt`.
    pub virt: Option<lmc::Virt>,
    /// The filesystem label livemedia-creator gives its image.
    pub label: String,
    pub arch: String,
    /// dnf's package cache, shared between builds.
    pub dnf_cache: PathBuf,
    /// Let the kickstart's `--noverifyssl` through (dnf backend).
    pub allow_noverifyssl: bool,
}

/// The installer for `options` on this host, or why there is none.
pub fn choose(options: &InstallOptions) -> Result<Box<dyn Backend>> {
    if let Some(source) = &options.from_result {
        return Ok(Box::new(FromResult(source.clone())));
    }
    let lmc_backend = || -> Box<dyn Backend> {
        Box::new(lmc::Lmc {
            label: options.label.clone(),
            virt: options.virt.clone(),
            mock: options.mock.clone(),
        })
    };
    let dnf_backend = || -> Box<dyn Backend> {
        Box::new(dnf::Dnf {
            arch: options.arch.clone(),
            cache: options.dnf_cache.clone(),
            allow_noverifyssl: options.allow_noverifyssl,
        })
    };
    let runs_lmc = options.mock.is_some() || options.virt.is_some();
    // With --mock, livemedia-creator comes from the chroot, not the host.
    let lmc = match &options.mock {
        Some(_) => which("mock"),
        None => which("livemedia-creator"),
    };
    let dnf = which("dnf");
    Ok(match (options.backend, lmc, dnf) {
        (BackendChoice::Dnf, _, _) if runs_lmc => {
            bail!("--mock and --virt-iso run livemedia-creator: they need --backend lmc")
        }
        (BackendChoice::Auto | BackendChoice::Lmc, Some(_), _) => lmc_backend(),
        (BackendChoice::Lmc, None, _) if options.mock.is_some() => {
            bail!("--mock needs mock (package mock on Fedora/EL)")
        }
        (BackendChoice::Lmc, None, _) => {
            bail!("livemedia-creator is not installed (package lorax-lmc-novirt on Fedora/EL)")
        }
        (BackendChoice::Auto, None, _) if runs_lmc => bail!(
            "--mock and --virt-iso run livemedia-creator, which is not here (package {} on Fedora/EL)",
            if options.mock.is_some() {
                "mock"
            } else {
                "lorax-lmc-novirt"
            }
        ),
        (BackendChoice::Auto | BackendChoice::Dnf, _, Some(_)) => dnf_backend(),
        (BackendChoice::Dnf, _, None) => {
            bail!("the dnf backend needs dnf (package dnf on Debian and Fedora)")
        }
        (BackendChoice::Auto, None, None) => bail!(
            "no installer here: neither livemedia-creator (package lorax-lmc-novirt on Fedora/EL) \
             nor dnf (package dnf) is installed; or pass --from-result with an installed tree or \
             filesystem image"
        ),
    })
}

/// `--from-result`: no install; the root filesystem of an earlier one.
struct FromResult(liveimg::Source);

impl Backend for FromResult {
    fn name(&self) -> String {
        "from-result".to_owned()
    }

    fn lmc_mode(&self) -> LmcMode {
        LmcMode::Off
    }

    fn install(&self, ks: &FlatKickstart, _work: &Path, _logs: &Path) -> Result<RootFs> {
        Ok(RootFs {
            source: self.0.clone(),
            size: match self.0 {
                liveimg::Source::Dir { .. } => ks.root_size(),
                _ => None,
            },
            installed: None,
            summary: format!("skipped: using {}", self.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(backend: BackendChoice) -> InstallOptions {
        InstallOptions {
            backend,
            from_result: None,
            mock: None,
            virt: None,
            label: "LiveOS".into(),
            arch: "x86_64".into(),
            dnf_cache: "/nonexistent".into(),
            allow_noverifyssl: false,
        }
    }

    #[test]
    fn from_result_wins_and_skips_the_livemedia_rules() {
        let mut o = options(BackendChoice::Lmc);
        o.from_result = Some(liveimg::Source::Dir { path: "/t".into() });
        let backend = choose(&o).unwrap();
        assert_eq!(backend.name(), "from-result");
        assert_eq!(backend.lmc_mode(), LmcMode::Off);
    }

    #[test]
    fn mock_and_virt_need_livemedia_creator() {
        let mut o = options(BackendChoice::Dnf);
        o.mock = Some("centos-stream-9-x86_64".into());
        let err = choose(&o).err().unwrap().to_string();
        assert!(err.contains("need --backend lmc"), "{err}");
    }
}
