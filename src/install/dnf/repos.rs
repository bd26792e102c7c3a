//! The kickstart's `url` and `repo` lines as a dnf configuration file.
//!
//! dnf reads only this file: no host repositories (`reposdir=` empty), no host
//! configuration. Values go into an INI file, so every one is checked for line breaks
//! before it is written; repository ids are derived from the names the way anaconda
//! does it (characters dnf refuses become `_`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, bail};

use crate::kickstart::Origin;
use crate::kickstart::model::{Model, RepoSettings};

/// Where dnf's cache appears inside the tree while dnf runs (bound from the shared
/// cache directory; see `transaction`).
pub const CACHE_IN_TREE: &str = "var/cache/nodeimg-dnf";

/// The `[main]` settings that come from `%packages`' header.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MainSettings {
    pub install_weak_deps: bool,
    pub nodocs: bool,
    pub multilib_all: bool,
    pub strict: bool,
    pub skip_broken: bool,
    pub timeout: Option<i64>,
    pub retries: Option<i64>,
}

/// One repository as dnf sees it.
#[derive(Debug, Clone)]
pub struct Repository {
    pub id: String,
    pub name: String,
    pub settings: RepoSettings,
    pub sslverify: bool,
    /// `repo --install`: also written into the tree's /etc/yum.repos.d.
    pub install: bool,
    /// The kickstart line it comes from (`url` or `repo`).
    pub origin: Option<Origin>,
}

impl Repository {
    /// Where it was defined, for messages.
    pub fn described(&self) -> String {
        match &self.origin {
            Some(origin) => format!("repository '{}' ({origin})", self.id),
            None => format!("repository '{}'", self.id),
        }
    }

    /// Its INI section.
    pub fn section(&self) -> String {
        let mut s = format!("[{}]\nname={}\n", self.id, self.name);
        let mut line = |key: &str, value: &Option<String>| {
            if let Some(value) = value {
                let _ = writeln!(s, "{key}={value}");
            }
        };
        line("baseurl", &self.settings.baseurl);
        line("mirrorlist", &self.settings.mirrorlist);
        line("metalink", &self.settings.metalink);
        line("proxy", &self.settings.proxy);
        line("cost", &self.settings.cost.map(|c| c.to_string()));
        if !self.settings.includepkgs.is_empty() {
            let _ = writeln!(s, "includepkgs={}", self.settings.includepkgs.join(","));
        }
        if !self.settings.excludepkgs.is_empty() {
            let _ = writeln!(s, "excludepkgs={}", self.settings.excludepkgs.join(","));
        }
        if !self.sslverify {
            s.push_str("sslverify=0\n");
        }
        // Kickstart repositories carry no keys (anaconda installs them unchecked too).
        s.push_str("gpgcheck=0\nenabled=1\nskip_if_unavailable=0\n");
        s
    }
}

/// The repository id anaconda would use for `name`.
pub fn repo_id(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The repositories of `model`, checked. `allow_noverifyssl` lets `--noverifyssl`
/// through; without it such a line is an error.
pub fn repositories(model: &Model, allow_noverifyssl: bool) -> Result<Vec<Repository>> {
    let mut repos = Vec::new();
    let mut problems = Vec::new();
    if let Some(source) = &model.source {
        if source.kind != "url" {
            problems.push(format!(
                "`{}`: the dnf backend installs from url and repo lines only",
                source.kind
            ));
        } else {
            repos.push(Repository {
                id: "anaconda".to_owned(),
                name: "kickstart url".to_owned(),
                settings: RepoSettings {
                    baseurl: source.url.clone(),
                    mirrorlist: source.mirrorlist.clone(),
                    metalink: source.metalink.clone(),
                    proxy: source.proxy.clone(),
                    ..RepoSettings::default()
                },
                sslverify: !source.noverifyssl,
                install: false,
                origin: model
                    .commands
                    .iter()
                    .rfind(|(name, _)| name == "url")
                    .map(|(_, o)| o.clone()),
            });
        }
    }
    for repo in &model.repos {
        repos.push(Repository {
            id: repo_id(&repo.name),
            name: repo.name.clone(),
            settings: repo.settings.clone(),
            sslverify: !repo.noverifyssl,
            install: repo.install,
            origin: Some(repo.origin.clone()),
        });
    }
    for (i, repo) in repos.iter().enumerate() {
        let at = repo.described();
        if repos[..i].iter().any(|r| r.id == repo.id) {
            problems.push(format!("{at}: a second repository with this id"));
        }
        let urls = [
            &repo.settings.baseurl,
            &repo.settings.mirrorlist,
            &repo.settings.metalink,
        ];
        if urls.iter().all(|u| u.is_none()) {
            problems.push(format!("{at}: no --baseurl, --mirrorlist or --metalink"));
        }
        for url in urls.into_iter().flatten() {
            if let Err(why) = check_url(url) {
                problems.push(format!("{at}: {why}"));
            }
        }
        if let Some(proxy) = &repo.settings.proxy
            && let Err(why) = check_url(proxy)
        {
            // Never repeat the proxy itself: it may hold a password.
            problems.push(format!(
                "{at}: --proxy: {}",
                why.split(':').next().unwrap_or("")
            ));
        }
        let values = [&repo.name]
            .into_iter()
            .chain(&repo.settings.includepkgs)
            .chain(&repo.settings.excludepkgs);
        for value in values {
            if value.contains(['\n', '\r']) || value.trim().is_empty() {
                problems.push(format!("{at}: an empty value or one with a line break"));
            }
        }
        if !repo.sslverify && !allow_noverifyssl {
            problems.push(format!(
                "{at}: --noverifyssl turns off TLS verification; pass --allow-noverifyssl to nodeimg build if you mean it"
            ));
        }
    }
    if repos.is_empty() {
        problems.push("no url or repo line: dnf has nowhere to install from".to_owned());
    }
    if !problems.is_empty() {
        bail!(
            "the kickstart's repositories cannot be used:\n  - {}",
            problems.join("\n  - ")
        );
    }
    Ok(repos)
}

/// A URL dnf can fetch from: http, https, ftp or file, one line, no spaces.
fn check_url(url: &str) -> Result<(), String> {
    if url.contains(['\n', '\r', ' ', '\t']) {
        return Err("a URL with white space or a line break".to_owned());
    }
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https" | "ftp" | "file") => Ok(()),
        Some("nfs") => Err(format!(
            "{url}: nfs sources are not supported by the dnf backend (mount it and use file://)"
        )),
        _ => Err(format!(
            "{url}: not an http://, https://, ftp:// or file:// URL"
        )),
    }
}

/// The dnf configuration file: `[main]` and one section per repository.
pub fn config(repos: &[Repository], main: &MainSettings) -> String {
    let mut s =
        String::from("# Written by nodeimg for one build; dnf reads nothing else.\n[main]\n");
    s.push_str("reposdir=\n");
    let _ = writeln!(s, "cachedir=/{CACHE_IN_TREE}");
    s.push_str("keepcache=1\ngpgcheck=0\nrepo_gpgcheck=0\ninstallonly_limit=0\n");
    s.push_str("skip_if_unavailable=0\nclean_requirements_on_remove=0\n");
    let _ = writeln!(s, "install_weak_deps={}", u8::from(main.install_weak_deps));
    let _ = writeln!(s, "strict={}", u8::from(main.strict));
    if main.skip_broken {
        s.push_str("skip_broken=1\n");
    }
    if main.nodocs {
        s.push_str("tsflags=nodocs\n");
    }
    if main.multilib_all {
        s.push_str("multilib_policy=all\n");
    }
    if let Some(timeout) = main.timeout {
        let _ = writeln!(s, "timeout={timeout}");
    }
    if let Some(retries) = main.retries {
        let _ = writeln!(s, "retries={retries}");
    }
    for repo in repos {
        s.push('\n');
        s.push_str(&repo.section());
    }
    s
}

/// `repo --install`: the repositories the installed system keeps, as .repo files.
pub fn install_into(tree: &Path, repos: &[Repository]) -> Result<Vec<String>> {
    let dir = tree.join("etc/yum.repos.d");
    let mut written = Vec::new();
    for repo in repos.iter().filter(|r| r.install) {
        std::fs::create_dir_all(&dir)?;
        let file = dir.join(format!("{}.repo", repo.id));
        crate::install::dnf::write_file(&file, repo.section().as_bytes(), 0o644)?;
        written.push(format!("/etc/yum.repos.d/{}.repo", repo.id));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_what_dnf_accepts() {
        assert_eq!(repo_id("oVirt 4.5 (el9)"), "oVirt_4.5__el9_");
        assert_eq!(repo_id("centos-stream_9:base"), "centos-stream_9:base");
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://mirror.example/$releasever/x/").is_ok());
        assert!(check_url("file:///srv/repo").is_ok());
        assert!(check_url("nfs://server/path").is_err());
        assert!(check_url("http://a/b\nbaseurl=http://evil").is_err());
        assert!(check_url("/srv/repo").is_err());
    }
}
