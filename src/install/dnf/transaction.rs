//! `%packages` as one dnf transaction into the tree.
//!
//! dnf runs on the host (`--installroot`) inside the sandbox: /dev, /proc, /sys and
//! /run are bound into the tree for rpm's scriptlets, and the shared cache is bound at
//! the cache path of the configuration (dnf puts every cache path under the install
//! root). rpm's macros for the run (`_dbpath`, `_install_langs`) come from a
//! `.rpmmacros` in a HOME of our own, so the host's rpm configuration (Debian's puts
//! the database under ~/.rpmdb) never decides where the tree's database goes.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::repos::{self, MainSettings, Repository};
use crate::install::sandbox::{self, Sandbox};
use crate::kickstart::model::Packages;

/// What `%packages` asks dnf for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Install specs: packages and `@group[/types]`.
    pub specs: Vec<String>,
    pub excludes: Vec<String>,
    pub main: MainSettings,
    /// `--inst-langs`: rpm's `_install_langs`.
    pub install_langs: Option<String>,
    pub excludedocs: bool,
}

/// The header options nodeimg honours; anything else in the header is an error.
const HONOURED: [&str; 11] = [
    "--excludedocs",
    "--ignoremissing",
    "--nocore",
    "--multilib",
    "--inst-langs",
    "--instLangs",
    "--exclude-weakdeps",
    "--excludeWeakdeps",
    "--timeout",
    "--retries",
    "--ignorebroken",
];

impl Request {
    pub fn from_packages(packages: &Packages) -> Result<Request> {
        let option = |names: &[&str]| {
            packages
                .options
                .iter()
                .rev()
                .find(|(k, _)| names.contains(&k.as_str()))
                .map(|(_, v)| v.clone())
        };
        let unsupported: Vec<&str> = packages
            .options
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !HONOURED.contains(k))
            .collect();
        if !unsupported.is_empty() {
            bail!(
                "%packages {}: not supported by the dnf backend",
                unsupported.join(" ")
            );
        }
        if !packages.excluded_groups.is_empty() {
            bail!(
                "%packages: excluding groups (-@{}) is not supported by the dnf backend; exclude their packages instead",
                packages.excluded_groups.join(", -@")
            );
        }
        let mut specs = Vec::new();
        if option(&["--nocore"]).is_none() {
            specs.push("@core".to_owned());
        }
        if let Some(env) = &packages.environment {
            specs.push(format!("@{env}"));
        }
        for group in &packages.groups {
            // dnf's `@group/types` selects the package types per group.
            specs.push(match group.include.as_str() {
                "nodefaults" => format!("@{}/mandatory,conditional", group.name),
                "optional" => format!("@{}/mandatory,default,optional,conditional", group.name),
                _ => format!("@{}", group.name),
            });
        }
        specs.extend(packages.packages.iter().cloned());
        // `@core` in %packages as well as the implicit one: dnf needs it once.
        let mut seen = std::collections::HashSet::new();
        specs.retain(|spec| seen.insert(spec.clone()));
        for word in specs.iter().chain(&packages.excluded_packages) {
            if word.starts_with('-') || word.contains(['\n', '\r', '\0']) {
                bail!("%packages: `{word}` is not a package, group or exclude dnf can take");
            }
        }
        let int = |names: &[&str]| -> Result<Option<i64>> {
            option(names)
                .map(|v| {
                    v.parse()
                        .with_context(|| format!("%packages {}={v}: not a number", names[0]))
                })
                .transpose()
        };
        let install_langs = option(&["--inst-langs", "--instLangs"]);
        if let Some(langs) = &install_langs
            && !langs
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.@:-".contains(c))
        {
            bail!("%packages --inst-langs={langs}: expected language codes separated by ':'");
        }
        let excludedocs = option(&["--excludedocs"]).is_some();
        Ok(Request {
            specs,
            excludes: packages.excluded_packages.clone(),
            main: MainSettings {
                install_weak_deps: option(&["--exclude-weakdeps", "--excludeWeakdeps"]).is_none(),
                nodocs: excludedocs,
                multilib_all: option(&["--multilib"]).is_some(),
                strict: option(&["--ignoremissing"]).is_none(),
                skip_broken: option(&["--ignorebroken"]).is_some(),
                timeout: int(&["--timeout"])?,
                retries: int(&["--retries"])?,
            },
            install_langs,
            excludedocs,
        })
    }

    /// rpm macros for the transaction, and for the installed system.
    pub fn rpm_macros(&self) -> String {
        let mut s = String::new();
        if let Some(langs) = &self.install_langs {
            s.push_str(&format!("%_install_langs {langs}\n"));
        }
        if self.excludedocs {
            s.push_str("%_excludedocs 1\n");
        }
        s
    }
}

/// Everything the dnf run needs.
pub struct Transaction<'a> {
    pub tree: &'a Path,
    /// Scratch: dnf.conf and the HOME holding `.rpmmacros`.
    pub work: &'a Path,
    pub cache: &'a Path,
    pub repos: &'a [Repository],
    pub request: &'a Request,
    pub releasever: &'a str,
    /// `--forcearch` when the target is not the host's architecture.
    pub forcearch: Option<&'a str>,
    /// rpm's database inside the tree.
    pub dbpath: &'a str,
}

/// Held while dnf uses the shared cache: two builds never write it at once.
struct CacheLock(File);

impl CacheLock {
    fn take(cache: &Path) -> Result<CacheLock> {
        fs::create_dir_all(cache)
            .with_context(|| format!("creating the dnf cache {}", cache.display()))?;
        let path = cache.join(".nodeimg.lock");
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                tracing::info!(
                    "waiting for another build to finish with the dnf cache {}",
                    cache.display()
                );
                file.lock()
                    .with_context(|| format!("locking {}", path.display()))?;
            }
            Err(fs::TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("locking {}", path.display()));
            }
        }
        Ok(CacheLock(file))
    }
}

impl Drop for CacheLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Run the transaction. On failure the error says what dnf could not do, in the
/// kickstart's terms.
pub fn run(t: &Transaction) -> Result<()> {
    let conf = t.work.join("dnf.conf");
    super::write_file(
        &conf,
        repos::config(t.repos, &t.request.main).as_bytes(),
        0o600,
    )?;
    let home = t.work.join("dnf-home");
    fs::create_dir_all(&home)?;
    let macros = format!("%_dbpath {}\n{}", t.dbpath, t.request.rpm_macros());
    super::write_file(&home.join(".rpmmacros"), macros.as_bytes(), 0o644)?;

    let cache_in_tree = t.tree.join(repos::CACHE_IN_TREE);
    sandbox::mount_point(&cache_in_tree, true)?;
    let _lock = CacheLock::take(t.cache)?;

    let mut args: Vec<std::ffi::OsString> = vec![
        "-y".into(),
        "--installroot".into(),
        t.tree.into(),
        "--config".into(),
        conf.into(),
        "--releasever".into(),
        t.releasever.into(),
        // Fresh metadata for every build; packages come from the cache when they can.
        "--refresh".into(),
        "--setopt=debuglevel=2".into(),
    ];
    if let Some(arch) = t.forcearch {
        args.push(format!("--forcearch={arch}").into());
    }
    for exclude in &t.request.excludes {
        args.push(format!("--exclude={exclude}").into());
    }
    args.push("install".into());
    args.push("--".into());
    args.extend(t.request.specs.iter().map(Into::into));

    let cmd = Sandbox::new(t.tree)
        .api_filesystems()?
        .bind(t.cache, &cache_in_tree)
        .command("dnf", args)?
        .env("HOME", &home)
        .env("LC_ALL", "C.UTF-8")
        .on_line(progress())
        .capture()
        .any_status();
    let result = cmd.run();
    // Daemons started by scriptlets; the mounts went with the namespace.
    sandbox::kill_processes_in(t.tree);
    let _ = fs::remove_dir(&cache_in_tree);
    let output = result?;
    if output.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    bail!("{}", explain(&text, t.repos, output.status.code()))
}

/// How often dnf's progress is reported at the default verbosity.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// A line observer that reports dnf's progress: each phase when it starts
/// (downloading, installing, scriptlets, verifying), then its current line at most
/// every few seconds. Every line is in the build log anyway (debug).
fn progress() -> impl Fn(&str) + Send + Sync + 'static {
    let last = std::sync::Mutex::new((String::new(), std::time::Instant::now()));
    move |line: &str| {
        let text = line.trim();
        let phase = if text.starts_with('(') && text.contains("): ") {
            "downloading"
        } else if let Some((verb, rest)) = text.split_once(':') {
            let verb = verb.trim();
            let counted = rest.trim_end().rsplit(' ').next().is_some_and(|n| {
                n.split_once('/')
                    .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
            });
            match verb {
                "Installing" | "Upgrading" | "Running scriptlet" | "Verifying" | "Preparing"
                    if counted =>
                {
                    verb
                }
                _ => return,
            }
        } else {
            return;
        };
        let Ok(mut last) = last.lock() else { return };
        if last.0 != phase || last.1.elapsed() >= PROGRESS_EVERY {
            tracing::info!(
                "dnf: {}",
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            *last = (phase.to_owned(), std::time::Instant::now());
        }
    }
}

/// dnf's failure in the kickstart's terms.
pub fn explain(output: &str, repos: &[Repository], status: Option<i32>) -> String {
    let after = |line: &str, prefix: &str| line.trim().strip_prefix(prefix).map(str::to_owned);
    let missing: Vec<String> = output
        .lines()
        .filter_map(|l| after(l, "No match for argument: "))
        .collect();
    let missing_groups: Vec<String> = output
        .lines()
        .filter_map(|l| {
            let rest = after(l, "Module or Group '")?;
            Some(rest.split('\'').next()?.to_owned())
        })
        .collect();
    let mut reasons = Vec::new();
    if !missing.is_empty() {
        reasons.push(format!(
            "no repository has {} (add --ignoremissing to the %packages header to skip what is missing)",
            missing.join(", ")
        ));
    }
    if !missing_groups.is_empty() {
        reasons.push(format!(
            "no repository's comps has the group or environment {}",
            missing_groups.join(", ")
        ));
    }
    for line in output.lines() {
        if let Some(rest) = after(line, "Error: Failed to download metadata for repo '") {
            let id = rest.split('\'').next().unwrap_or_default();
            let what = repos
                .iter()
                .find(|r| r.id == id)
                .map_or_else(|| format!("repository '{id}'"), Repository::described);
            reasons.push(format!(
                "{what} is unreachable: {}",
                rest.split_once(": ").map_or("", |(_, why)| why)
            ));
        }
    }
    if reasons.is_empty() {
        let tail: Vec<&str> = output
            .lines()
            .filter(|l| !l.trim().is_empty())
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        reasons.push(format!(
            "dnf failed (exit status {}):\n    {}",
            status.map_or("none".to_owned(), |s| s.to_string()),
            tail.join("\n    ")
        ));
    }
    format!(
        "dnf could not install the kickstart's packages: {}",
        reasons.join("; ")
    )
}

/// Move dnf's logs out of the tree into the build's logs: the image does not carry
/// the build host's logs.
pub fn collect_logs(tree: &Path, logs: &Path) -> Vec<PathBuf> {
    let mut moved = Vec::new();
    for name in ["dnf.log", "dnf.rpm.log", "dnf.librepo.log", "hawkey.log"] {
        let from = tree.join("var/log").join(name);
        let to = logs.join(name);
        if from.exists() && fs::copy(&from, &to).is_ok() && fs::remove_file(&from).is_ok() {
            moved.push(to);
        }
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kickstart::model::PackageGroup;

    fn packages(options: &[&str]) -> Packages {
        Packages {
            packages: vec!["vim-minimal".to_owned()],
            groups: vec![
                PackageGroup {
                    name: "base".to_owned(),
                    include: "default".to_owned(),
                },
                PackageGroup {
                    name: "extras".to_owned(),
                    include: "optional".to_owned(),
                },
                PackageGroup {
                    name: "lean".to_owned(),
                    include: "nodefaults".to_owned(),
                },
            ],
            environment: Some("server".to_owned()),
            excluded_packages: vec!["kernel*".to_owned()],
            excluded_groups: Vec::new(),
            options: options
                .iter()
                .map(|o| match o.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (o.to_string(), String::new()),
                })
                .collect(),
            lines: Vec::new(),
        }
    }

    #[test]
    fn packages_become_dnf_specs() {
        let r = Request::from_packages(&packages(&[])).unwrap();
        assert_eq!(
            r.specs,
            [
                "@core",
                "@server",
                "@base",
                "@extras/mandatory,default,optional,conditional",
                "@lean/mandatory,conditional",
                "vim-minimal"
            ]
        );
        assert_eq!(r.excludes, ["kernel*"]);
        assert!(r.main.install_weak_deps && r.main.strict && !r.main.nodocs);
        assert_eq!(r.rpm_macros(), "");
    }

    #[test]
    fn header_options_reach_dnf_and_rpm() {
        let r = Request::from_packages(&packages(&[
            "--nocore",
            "--excludedocs",
            "--ignoremissing",
            "--exclude-weakdeps",
            "--inst-langs=en:de",
            "--multilib",
            "--retries=3",
        ]))
        .unwrap();
        assert_eq!(r.specs[0], "@server");
        assert!(!r.main.install_weak_deps && !r.main.strict && r.main.nodocs);
        assert!(r.main.multilib_all);
        assert_eq!(r.main.retries, Some(3));
        assert_eq!(r.rpm_macros(), "%_install_langs en:de\n%_excludedocs 1\n");
    }

    #[test]
    fn what_dnf_cannot_take_is_refused() {
        assert!(Request::from_packages(&packages(&["--default"])).is_err());
        let mut p = packages(&[]);
        p.excluded_groups.push("docs".to_owned());
        assert!(Request::from_packages(&p).is_err());
        let mut p = packages(&[]);
        p.packages.push("--setopt=reposdir=/etc".to_owned());
        assert!(Request::from_packages(&p).is_err());
        assert!(Request::from_packages(&packages(&["--inst-langs=en;rm"])).is_err());
    }

    #[test]
    fn failures_are_explained() {
        let text = "No match for argument: nothere\nError: Unable to find a match: nothere\n";
        let msg = explain(text, &[], Some(1));
        assert!(msg.contains("no repository has nothere"), "{msg}");
        assert!(msg.contains("--ignoremissing"), "{msg}");
        let text = "Errors during downloading metadata for repository 'x':\nError: Failed to download metadata for repo 'x': Cannot download repomd.xml: Curl error (7)\n";
        let msg = explain(text, &[], Some(1));
        assert!(
            msg.contains("repository 'x' is unreachable: Cannot download repomd.xml"),
            "{msg}"
        );
    }
}
