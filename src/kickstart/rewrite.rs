//! Pointing a flattened kickstart at other repositories, as koji's image tasks do
//! (`ImageTask.prepareKickstart`): with `--replace-repos` every `repo` line gives way to
//! the `--repo` repositories (in koji: the build tag's repository, or the task's
//! `--repo` URLs); without it a `--repo` replaces the `repo` of the same name and adds
//! the others; `--url` replaces the installation source. Useful outside koji too: a
//! local mirror, an air-gapped site.
//!
//! Unlike koji, which re-serialises the kickstart with pykickstart (comments and order
//! lost), the text stays as it is: a replaced line is kept as a comment that says why,
//! and the new lines go where the first replaced line was (or before the first
//! section). Only top-level commands are touched, never a `%post` line that happens
//! to start with `repo`.
//!
//! With `--post-repos` the same repositories are also what `%post`'s dnf sees: a
//! `%post --nochroot` added before the first `%post` writes them to the tree's
//! /etc/yum.repos.d/nodeimg-build.repo, and one added at the end removes the file, so
//! a `%post` that installs packages (the Node's installs its release package and the
//! placeholder) needs no other source, and the image keeps nothing of it. Anaconda and
//! nodeimg's dnf backend run `%post` sections in kickstart order, both kinds alike.

use std::path::Path;

use anyhow::{Result, bail, ensure};

use super::parser::{self, Item};
use super::source;

/// A repository given on the command line: `NAME=URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoOverride {
    pub name: String,
    pub url: String,
}

impl std::str::FromStr for RepoOverride {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<RepoOverride> {
        let Some((name, url)) = s.split_once('=') else {
            bail!("`{s}`: expected NAME=URL (koji-node-build=http://koji.example/repos/…)");
        };
        check_name(name)?;
        check_url(url)?;
        Ok(RepoOverride {
            name: name.to_owned(),
            url: url.to_owned(),
        })
    }
}

/// A repository name that needs no quoting in a kickstart and is a valid dnf repo id.
fn check_name(name: &str) -> Result<()> {
    ensure!(
        !name.is_empty()
            && name.len() <= 100
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c)),
        "repository name `{name}`: letters, digits, `.`, `_`, `-` and `:` only"
    );
    Ok(())
}

/// A URL that goes into a kickstart line as one word: a scheme dnf reads, no white
/// space, quotes, `#` (it would start a comment) or control characters.
pub fn check_url(url: &str) -> Result<()> {
    ensure!(
        ["http://", "https://", "ftp://", "file://"]
            .iter()
            .any(|scheme| url.starts_with(scheme)),
        "URL `{url}`: http://, https://, ftp:// or file:// only"
    );
    ensure!(
        url.len() > "file://".len()
            && url.len() <= 2048
            && !url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "\"'#\\".contains(c)),
        "URL `{url}`: no white space, quotes, `#` or backslashes"
    );
    Ok(())
}

/// What to change.
#[derive(Debug, Clone, Default)]
pub struct Rewrite {
    pub repos: Vec<RepoOverride>,
    pub replace_repos: bool,
    pub url: Option<String>,
    /// Make `url` and `repos` visible to `%post`'s dnf while `%post` runs.
    pub post_repos: bool,
}

impl Rewrite {
    pub fn is_empty(&self) -> bool {
        self.repos.is_empty() && !self.replace_repos && self.url.is_none() && !self.post_repos
    }

    /// The repositories `%post` sees: the installation source first.
    fn post_repositories(&self) -> Vec<RepoOverride> {
        let mut all: Vec<RepoOverride> = self
            .url
            .iter()
            .map(|url| RepoOverride {
                name: "nodeimg-install-source".to_owned(),
                url: url.clone(),
            })
            .collect();
        all.extend(self.repos.iter().cloned());
        all
    }
}

/// Where the repositories for `%post` are written in the tree.
pub const POST_REPO_FILE: &str = "etc/yum.repos.d/nodeimg-build.repo";

/// The `%post --nochroot` sections that add the repositories before the kickstart's
/// `%post` and take them away after it. Names and URLs were checked (no white space,
/// quotes or `#`), and the here-document's delimiter is quoted: nothing expands.
fn post_repo_sections(repos: &[RepoOverride]) -> (String, String) {
    let mut ini = String::new();
    for r in repos {
        ini.push_str(&format!(
            "[{name}]\nname={name} (nodeimg build repository)\nbaseurl={url}\ngpgcheck=0\nenabled=1\n",
            name = r.name,
            url = r.url
        ));
    }
    let root = "\"${ANA_INSTALL_PATH:-/mnt/sysroot}\"";
    let add = format!(
        "%post --nochroot --erroronfail\n\
         # nodeimg: the build's repositories for %post's dnf (--post-repos)\n\
         mkdir -p {root}/etc/yum.repos.d\n\
         cat > {root}/{POST_REPO_FILE} <<'NODEIMG_REPOS'\n{ini}NODEIMG_REPOS\n%end\n"
    );
    let remove = format!(
        "%post --nochroot --erroronfail\n\
         # nodeimg: the build's repositories leave with the build (--post-repos)\n\
         rm -f {root}/{POST_REPO_FILE}\n%end\n"
    );
    (add, remove)
}

/// The value of `--name` in a `repo` line's words.
fn repo_name(args: &[String]) -> Option<&str> {
    args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--name=")
            .or_else(|| (a == "--name").then(|| args.get(i + 1).map(String::as_str))?)
    })
}

/// The flattened kickstart at `path` (no includes left) with `r` applied.
pub fn rewrite(path: &Path, r: &Rewrite) -> Result<String> {
    ensure!(
        !(r.replace_repos && r.repos.is_empty() && r.url.is_none()),
        "--replace-repos without --repo or --url would leave nothing to install from"
    );
    ensure!(
        !(r.post_repos && r.repos.is_empty() && r.url.is_none()),
        "--post-repos shows %post the --repo and --url repositories: give at least one"
    );
    let text = std::fs::read_to_string(path)?;
    let ks = parser::parse(&source::load(path));
    // 1-based line → why it is replaced.
    let mut replaced: Vec<(usize, String)> = Vec::new();
    let mut first_section = None;
    let mut first_post = None;
    for item in &ks.items {
        match item {
            Item::Command(c) if c.name == "repo" => {
                let name = repo_name(&c.args);
                let why = if r.replace_repos {
                    Some("--replace-repos".to_owned())
                } else {
                    name.filter(|n| r.repos.iter().any(|o| o.name == *n))
                        .map(|n| format!("--repo {n}=…"))
                };
                if let Some(why) = why {
                    replaced.push((c.origin.line, why));
                }
            }
            Item::Command(c) if c.name == "url" && r.url.is_some() => {
                replaced.push((c.origin.line, "--url".to_owned()));
            }
            Item::Section(s) => {
                first_section.get_or_insert(s.origin.line);
                if s.name == "%post" {
                    first_post.get_or_insert(s.origin.line);
                }
            }
            _ => {}
        }
    }
    let mut added: Vec<String> = r
        .repos
        .iter()
        .map(|o| format!("repo --name={} --baseurl={}", o.name, o.url))
        .collect();
    if let Some(url) = &r.url {
        added.insert(0, format!("url --url={url}"));
    }
    let insert_at = replaced
        .iter()
        .map(|(line, _)| *line)
        .min()
        .or(first_section);

    let post =
        (r.post_repos && first_post.is_some()).then(|| post_repo_sections(&r.post_repositories()));

    let mut out = String::with_capacity(text.len() + 256);
    let emit_added = |out: &mut String| {
        for line in &added {
            out.push_str(line);
            out.push_str("  # nodeimg: added\n");
        }
    };
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if Some(number) == insert_at {
            emit_added(&mut out);
        }
        if let Some((add, _)) = &post
            && Some(number) == first_post
        {
            out.push_str(add);
        }
        match replaced.iter().find(|(n, _)| *n == number) {
            Some((_, why)) => {
                out.push_str(&format!("# nodeimg: replaced by {why}: {line}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if insert_at.is_none() {
        emit_added(&mut out);
    }
    if let Some((_, remove)) = &post {
        out.push_str(remove);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(ks: &str, r: &Rewrite) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ks");
        std::fs::write(&path, ks).unwrap();
        rewrite(&path, r).unwrap()
    }

    const KS: &str = "url --url=https://mirror.example/el9/\nrepo --name=base --baseurl=https://a/\nrepo --name \"ovirt\" --mirrorlist=https://m/\nrootpw --lock\n%post\nrepo --name=base is a shell line here\n%end\n";

    fn o(name: &str, url: &str) -> RepoOverride {
        format!("{name}={url}").parse().unwrap()
    }

    #[test]
    fn replace_repos_comments_every_top_level_repo_and_adds_the_new_ones_in_place() {
        let r = Rewrite {
            repos: vec![o(
                "koji-node-build-7",
                "http://koji/repos/node-build/7/x86_64",
            )],
            replace_repos: true,
            url: Some("http://koji/tree/".into()),
            post_repos: false,
        };
        let out = apply(KS, &r);
        assert_eq!(
            out,
            "url --url=http://koji/tree/  # nodeimg: added\n\
             repo --name=koji-node-build-7 --baseurl=http://koji/repos/node-build/7/x86_64  # nodeimg: added\n\
             # nodeimg: replaced by --url: url --url=https://mirror.example/el9/\n\
             # nodeimg: replaced by --replace-repos: repo --name=base --baseurl=https://a/\n\
             # nodeimg: replaced by --replace-repos: repo --name \"ovirt\" --mirrorlist=https://m/\n\
             rootpw --lock\n%post\nrepo --name=base is a shell line here\n%end\n"
        );
    }

    #[test]
    fn a_repo_replaces_the_one_of_its_name_and_adds_the_others() {
        let r = Rewrite {
            repos: vec![o("ovirt", "file:///srv/ovirt"), o("extra", "http://x/")],
            ..Rewrite::default()
        };
        let out = apply(KS, &r);
        assert!(out.contains("# nodeimg: replaced by --repo ovirt=…: repo --name \"ovirt\""));
        assert!(out.contains("\nrepo --name=base --baseurl=https://a/\n"));
        assert!(out.contains("repo --name=ovirt --baseurl=file:///srv/ovirt  # nodeimg: added"));
        assert!(out.contains("repo --name=extra --baseurl=http://x/  # nodeimg: added"));
        assert!(out.contains("url --url=https://mirror.example/el9/\n"));
    }

    #[test]
    fn with_nothing_to_replace_new_lines_go_before_the_first_section() {
        let r = Rewrite {
            repos: vec![o("a", "http://a/")],
            ..Rewrite::default()
        };
        let out = apply("rootpw --lock\n%packages\nbash\n%end\n", &r);
        assert_eq!(
            out,
            "rootpw --lock\nrepo --name=a --baseurl=http://a/  # nodeimg: added\n%packages\nbash\n%end\n"
        );
    }

    #[test]
    fn post_repos_surround_the_kickstarts_post_sections() {
        let r = Rewrite {
            repos: vec![o(
                "koji-node-build-7",
                "http://koji/repos/node-build/7/x86_64",
            )],
            replace_repos: true,
            url: None,
            post_repos: true,
        };
        let out = apply(KS, &r);
        let add = out
            .find("# nodeimg: the build's repositories for %post's dnf")
            .unwrap();
        let theirs = out
            .find("%post\nrepo --name=base is a shell line here")
            .unwrap();
        let remove = out
            .find("# nodeimg: the build's repositories leave")
            .unwrap();
        assert!(add < theirs && theirs < remove, "{out}");
        assert!(out.contains(
            "cat > \"${ANA_INSTALL_PATH:-/mnt/sysroot}\"/etc/yum.repos.d/nodeimg-build.repo <<'NODEIMG_REPOS'\n\
             [koji-node-build-7]\nname=koji-node-build-7 (nodeimg build repository)\n\
             baseurl=http://koji/repos/node-build/7/x86_64\ngpgcheck=0\nenabled=1\nNODEIMG_REPOS\n%end\n"
        ));
        assert!(out.ends_with(
            "rm -f \"${ANA_INSTALL_PATH:-/mnt/sysroot}\"/etc/yum.repos.d/nodeimg-build.repo\n%end\n"
        ));
        // Without a %post there is nothing to show the repositories to.
        let out = apply("rootpw --lock\n", &r);
        assert!(!out.contains("%post"), "{out}");
    }

    #[test]
    fn names_and_urls_that_would_break_the_line_are_refused() {
        for bad in [
            "noequals",
            "a b=http://x/",
            "a=ftp:/x",
            "a=http://x/ --install",
            "a=http://x/#frag",
            "a=javascript:x",
            "a=http://x/\"",
            "=http://x/",
        ] {
            assert!(bad.parse::<RepoOverride>().is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ks");
        std::fs::write(&path, KS).unwrap();
        let r = Rewrite {
            replace_repos: true,
            ..Rewrite::default()
        };
        assert!(rewrite(&path, &r).is_err());
    }
}
