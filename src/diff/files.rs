//! `nodeimg diff --files`: files added, removed and changed, from the rpmdb's file
//! lists (size, mode, owner, digest as each package records them) and, for the files
//! no package owns, from the tree's inodes (size, mode, uid:gid; no digest: reading
//! every unowned file's content is left out).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::image::Inspection;

/// A file as one side has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub size: u64,
    /// Octal, with the type bits (`100644`).
    pub mode: String,
    /// `user:group` from the package, or `uid:gid` from the inode.
    pub owner: String,
    pub digest: Option<String>,
    /// The package that owns it, if any.
    pub package: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct FileChange {
    pub path: String,
    pub old: Option<Facts>,
    pub new: Option<Facts>,
}

#[derive(Debug, Default, Serialize)]
pub struct Files {
    pub added: Vec<FileChange>,
    pub removed: Vec<FileChange>,
    pub changed: Vec<FileChange>,
}

impl Files {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Every file of one side: the packages' first, then the tree's unowned ones.
fn facts(i: &Inspection) -> BTreeMap<&str, Facts> {
    let mut map = BTreeMap::new();
    for p in &i.packages {
        for f in &p.files {
            map.entry(f.path.as_str()).or_insert_with(|| Facts {
                size: f.size,
                mode: format!("{:o}", f.mode),
                owner: f.owner.clone(),
                digest: f.digest.clone().filter(|d| !d.is_empty()),
                package: Some(p.name.clone()),
            });
        }
    }
    for t in &i.tree {
        map.entry(t.path.as_str()).or_insert_with(|| Facts {
            size: t.size,
            mode: format!("{:o}", t.mode),
            owner: format!("{}:{}", t.uid, t.gid),
            digest: None,
            package: None,
        });
    }
    map
}

/// Compare the files of two inspections read with their file lists and trees.
pub fn compare(old: &Inspection, new: &Inspection) -> Files {
    let (a, b) = (facts(old), facts(new));
    let mut files = Files::default();
    for (path, f) in &a {
        match b.get(path) {
            None => files.removed.push(FileChange {
                path: (*path).to_owned(),
                old: Some(f.clone()),
                new: None,
            }),
            Some(g) if g != f => files.changed.push(FileChange {
                path: (*path).to_owned(),
                old: Some(f.clone()),
                new: Some(g.clone()),
            }),
            Some(_) => {}
        }
    }
    for (path, g) in &b {
        if !a.contains_key(path) {
            files.added.push(FileChange {
                path: (*path).to_owned(),
                old: None,
                new: Some(g.clone()),
            });
        }
    }
    files
}

/// What differs between two facts, for people: `size 10 → 12, digest`.
pub fn what_changed(old: &Facts, new: &Facts) -> String {
    let mut parts = Vec::new();
    if old.size != new.size {
        parts.push(format!("size {} → {}", old.size, new.size));
    }
    if old.mode != new.mode {
        parts.push(format!("mode {} → {}", old.mode, new.mode));
    }
    if old.owner != new.owner {
        parts.push(format!("owner {} → {}", old.owner, new.owner));
    }
    if old.digest != new.digest {
        parts.push("content".to_owned());
    }
    if old.package != new.package {
        parts.push(format!(
            "package {} → {}",
            old.package.as_deref().unwrap_or("none"),
            new.package.as_deref().unwrap_or("none")
        ));
    }
    parts.join(", ")
}
