//! `group`, `user`, `rootpw` and `sshkey`, written straight into the tree's account
//! files.
//!
//! anaconda runs the tree's useradd/groupadd in a chroot. nodeimg edits /etc/passwd,
//! /etc/group, /etc/shadow and /etc/gshadow itself: the result does not depend on
//! which shadow-utils the tree has (or whether it has one), and the rules are few —
//! ids from /etc/login.defs' ranges, a private group per user, /etc/skel copied into
//! the home directory, passwords as SHA-512 crypt. Every field is checked for the
//! characters that would break the files (`:` and line breaks).

use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use sha_crypt::ShaCrypt;
use sha_crypt::password_hash::PasswordHasher;

use crate::kickstart::model::{Model, Password};

/// One of the colon-separated files.
#[derive(Debug)]
struct Table {
    path: PathBuf,
    rows: Vec<Vec<String>>,
    mode: u32,
}

impl Table {
    fn load(tree: &Path, name: &str, mode: u32, required: bool) -> Result<Table> {
        let path = tree.join("etc").join(name);
        let (rows, mode) = match fs::read_to_string(&path) {
            Ok(text) => (
                text.lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| l.split(':').map(str::to_owned).collect())
                    .collect(),
                fs::metadata(&path)?.permissions().mode() & 0o7777,
            ),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => {
                (Vec::new(), mode)
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("reading /etc/{name} in the tree (does %packages install `setup`?)")
                });
            }
        };
        Ok(Table { path, rows, mode })
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.rows.iter().position(|r| r[0] == name)
    }

    fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.rows.iter().filter_map(|r| r.get(2)?.parse().ok())
    }

    fn save(&self) -> Result<()> {
        let mut text = String::new();
        for row in &self.rows {
            text.push_str(&row.join(":"));
            text.push('\n');
        }
        super::write_file(&self.path, text.as_bytes(), self.mode)
    }
}

/// The tree's account database, edited in memory and saved at once.
pub struct Accounts {
    tree: PathBuf,
    passwd: Table,
    group: Table,
    shadow: Table,
    gshadow: Table,
    uid_min: u32,
    gid_min: u32,
    /// Days since the epoch for shadow's "last changed" (SOURCE_DATE_EPOCH when set).
    today: u64,
}

/// A field that cannot break the files.
fn field(what: &str, value: &str) -> Result<()> {
    ensure!(
        !value.contains([':', '\n', '\r', '\0']),
        "{what}: `:` and line breaks are not allowed"
    );
    Ok(())
}

/// A user or group name useradd would accept.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .trim_end_matches('$')
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    ensure!(
        ok,
        "{what} `{name}`: a name is lower-case letters, digits, `_` and `-`, starting with a letter or `_`, at most 32 characters"
    );
    Ok(())
}

/// SHA-512 crypt of `password` with a random salt, as anaconda writes it.
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 12];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut salt))
        .context("reading a salt from /dev/urandom")?;
    let hash = ShaCrypt::SHA512
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?;
    Ok(hash.to_string())
}

/// The shadow field for a kickstart password.
fn shadow_hash(what: &str, password: &Password) -> Result<String> {
    let hash = match &password.password {
        Some(p) if password.iscrypted => {
            field(what, p)?;
            p.clone()
        }
        Some(p) => hash_password(p)?,
        // No password: the account cannot log in with one.
        None => "!!".to_owned(),
    };
    Ok(if password.lock && !hash.starts_with('!') {
        format!("!{hash}")
    } else {
        hash
    })
}

impl Accounts {
    pub fn load(tree: &Path) -> Result<Accounts> {
        let defs = fs::read_to_string(tree.join("etc/login.defs")).unwrap_or_default();
        let def = |key: &str, default: u32| {
            defs.lines()
                .filter_map(|l| {
                    let mut words = l.split_whitespace();
                    (words.next()? == key).then(|| words.next()?.parse().ok())?
                })
                .next_back()
                .unwrap_or(default)
        };
        let epoch = crate::sys::source_date_epoch().unwrap_or_else(crate::sys::now);
        Ok(Accounts {
            tree: tree.to_owned(),
            passwd: Table::load(tree, "passwd", 0o644, true)?,
            group: Table::load(tree, "group", 0o644, true)?,
            shadow: Table::load(tree, "shadow", 0o000, false)?,
            gshadow: Table::load(tree, "gshadow", 0o000, false)?,
            uid_min: def("UID_MIN", 1000),
            gid_min: def("GID_MIN", 1000),
            today: epoch / 86_400,
        })
    }

    fn free_id(used: impl Iterator<Item = u32>, min: u32) -> u32 {
        let used: std::collections::BTreeSet<u32> = used.collect();
        (min..).find(|id| !used.contains(id)).unwrap_or(min)
    }

    /// Add a group (nothing when it exists with the same or no requested gid).
    pub fn add_group(&mut self, name: &str, gid: Option<u32>) -> Result<u32> {
        check_name("group", name)?;
        if let Some(i) = self.group.find(name) {
            let existing: u32 = self.group.rows[i][2].parse().unwrap_or(0);
            ensure!(
                gid.is_none_or(|g| g == existing),
                "group {name} exists with gid {existing}, not {}",
                gid.unwrap_or(0)
            );
            return Ok(existing);
        }
        let gid = match gid {
            Some(g) => {
                ensure!(
                    !self.group.ids().any(|id| id == g),
                    "group {name}: gid {g} belongs to another group"
                );
                g
            }
            None => Self::free_id(self.group.ids(), self.gid_min),
        };
        self.group.rows.push(vec![
            name.into(),
            "x".into(),
            gid.to_string(),
            String::new(),
        ]);
        self.gshadow
            .rows
            .push(vec![name.into(), "!".into(), String::new(), String::new()]);
        Ok(gid)
    }

    fn add_member(&mut self, group: &str, user: &str) {
        for table in [&mut self.group, &mut self.gshadow] {
            let column = 3;
            if let Some(i) = table.find(group) {
                let row = &mut table.rows[i];
                row.resize(row.len().max(column + 1), String::new());
                let mut members: Vec<&str> =
                    row[column].split(',').filter(|m| !m.is_empty()).collect();
                if !members.contains(&user) {
                    members.push(user);
                }
                row[column] = members.join(",");
            }
        }
    }

    fn set_shadow(&mut self, user: &str, hash: String) {
        let today = self.today.to_string();
        match self.shadow.find(user) {
            Some(i) => {
                let row = &mut self.shadow.rows[i];
                row.resize(row.len().max(9), String::new());
                row[1] = hash;
                row[2] = today;
            }
            None => self.shadow.rows.push(vec![
                user.into(),
                hash,
                today,
                "0".into(),
                "99999".into(),
                "7".into(),
                String::new(),
                String::new(),
                String::new(),
            ]),
        }
    }

    /// `rootpw`.
    pub fn set_root(&mut self, password: &Password) -> Result<()> {
        ensure!(
            self.passwd.find("root").is_some(),
            "rootpw: the tree's /etc/passwd has no root"
        );
        let hash = shadow_hash("rootpw", password)?;
        self.set_shadow("root", hash);
        if password.allow_ssh {
            let dir = self.tree.join("etc/ssh/sshd_config.d");
            fs::create_dir_all(&dir)?;
            super::write_file(
                &dir.join("01-permitrootlogin.conf"),
                b"# rootpw --allow-ssh in the kickstart\nPermitRootLogin yes\n",
                0o600,
            )?;
        }
        Ok(())
    }

    /// `user`: returns the uid and gid.
    pub fn add_user(&mut self, user: &crate::kickstart::model::User) -> Result<(u32, u32)> {
        let name = user.name.as_str();
        check_name("user", name)?;
        ensure!(
            self.passwd.find(name).is_none(),
            "user {name} already exists in the tree's /etc/passwd"
        );
        let id = |v: Option<i64>, what: &str| -> Result<Option<u32>> {
            v.map(|v| u32::try_from(v).with_context(|| format!("user {name}: --{what}={v}")))
                .transpose()
        };
        let uid = match id(user.uid, "uid")? {
            Some(uid) => {
                ensure!(
                    !self.passwd.ids().any(|u| u == uid),
                    "user {name}: uid {uid} belongs to another user"
                );
                uid
            }
            None => Self::free_id(self.passwd.ids(), self.uid_min),
        };
        // The user's private group: the requested gid, else the uid when free.
        let gid = match id(user.gid, "gid")? {
            Some(g) => match self.group.rows.iter().find(|r| r[2] == g.to_string()) {
                Some(row) => row[2].parse().unwrap_or(g),
                None => self.add_group(name, Some(g))?,
            },
            None if self.group.find(name).is_none() && !self.group.ids().any(|g| g == uid) => {
                self.add_group(name, Some(uid))?
            }
            None => self.add_group(name, None)?,
        };
        for group in &user.groups {
            self.add_group(group, None)?;
            self.add_member(group, name);
        }
        let home = user
            .homedir
            .clone()
            .unwrap_or_else(|| format!("/home/{name}"));
        let shell = user.shell.clone().unwrap_or_else(|| "/bin/bash".to_owned());
        let gecos = user.gecos.clone().unwrap_or_default();
        for (what, value) in [
            ("--homedir", &home),
            ("--shell", &shell),
            ("--gecos", &gecos),
        ] {
            field(&format!("user {name} {what}"), value)?;
        }
        ensure!(
            home.starts_with('/') && !home.split('/').any(|c| c == ".."),
            "user {name}: --homedir {home} must be an absolute path without `..`"
        );
        self.passwd.rows.push(vec![
            name.into(),
            "x".into(),
            uid.to_string(),
            gid.to_string(),
            gecos,
            home.clone(),
            shell,
        ]);
        let hash = shadow_hash(&format!("user {name}"), &user.password)?;
        self.set_shadow(name, hash);
        self.make_home(&home, uid, gid)?;
        Ok((uid, gid))
    }

    /// The home directory with /etc/skel's contents, owned by the user.
    fn make_home(&self, home: &str, uid: u32, gid: u32) -> Result<()> {
        let path = self.tree.join(home.trim_start_matches('/'));
        if path.exists() {
            return Ok(());
        }
        fs::create_dir_all(&path).with_context(|| format!("creating {home} in the tree"))?;
        let skel = self.tree.join("etc/skel");
        if skel.is_dir() {
            copy_owned(&skel, &path, uid, gid)?;
        }
        lchown(&path, Some(uid), Some(gid))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o700))?;
        Ok(())
    }

    /// `sshkey --username`.
    pub fn add_ssh_key(&self, user: &str, key: &str) -> Result<()> {
        let i = self
            .passwd
            .find(user)
            .with_context(|| format!("sshkey --username={user}: no such user in the tree"))?;
        ensure!(
            !key.contains(['\n', '\r']),
            "sshkey for {user}: a line break in the key"
        );
        let row = &self.passwd.rows[i];
        let (uid, gid): (u32, u32) = (row[2].parse()?, row[3].parse()?);
        let home = self.tree.join(row[5].trim_start_matches('/'));
        let dir = home.join(".ssh");
        fs::create_dir_all(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        lchown(&dir, Some(uid), Some(gid))?;
        let file = dir.join("authorized_keys");
        let mut text = fs::read_to_string(&file).unwrap_or_default();
        text.push_str(key);
        text.push('\n');
        super::write_file(&file, text.as_bytes(), 0o600)?;
        lchown(&file, Some(uid), Some(gid))?;
        Ok(())
    }

    pub fn save(&self) -> Result<()> {
        self.passwd.save()?;
        self.group.save()?;
        self.shadow.save()?;
        self.gshadow.save()
    }
}

/// Copy a directory's contents, owned by uid:gid (symbolic links as links).
fn copy_owned(from: &Path, to: &Path, uid: u32, gid: u32) -> Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &target)?;
        } else if kind.is_dir() {
            fs::create_dir_all(&target)?;
            fs::set_permissions(&target, entry.metadata()?.permissions())?;
            copy_owned(&entry.path(), &target, uid, gid)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)?;
        } else {
            continue;
        }
        lchown(&target, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// Apply the kickstart's accounts: groups, users, root's password, ssh keys.
pub fn apply(tree: &Path, model: &Model) -> Result<Vec<String>> {
    let mut done = Vec::new();
    if model.groups.is_empty()
        && model.users.is_empty()
        && model.rootpw.is_none()
        && model.sshkeys.is_empty()
    {
        return Ok(done);
    }
    let mut accounts = Accounts::load(tree)?;
    for group in &model.groups {
        let gid = group
            .gid
            .map(|g| u32::try_from(g).with_context(|| format!("group {}: --gid={g}", group.name)))
            .transpose()?;
        let gid = accounts.add_group(&group.name, gid)?;
        done.push(format!("group {} ({gid})", group.name));
    }
    for user in &model.users {
        let (uid, gid) = accounts.add_user(user)?;
        done.push(format!(
            "user {} ({uid}:{gid}{})",
            user.name,
            if user.password.lock { ", locked" } else { "" }
        ));
    }
    if let Some(rootpw) = &model.rootpw {
        accounts.set_root(rootpw)?;
        done.push(format!(
            "root password{}",
            if rootpw.lock { " (locked)" } else { "" }
        ));
    }
    accounts.save()?;
    for key in &model.sshkeys {
        accounts.add_ssh_key(&key.username, &key.key)?;
        done.push(format!("ssh key for {}", key.username));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("user", "node").is_ok());
        assert!(check_name("user", "_svc-1").is_ok());
        assert!(check_name("user", "Root").is_err());
        assert!(check_name("user", "a:b").is_err());
        assert!(check_name("user", "-x").is_err());
        assert!(check_name("user", "").is_err());
    }

    #[test]
    fn passwords_are_sha512_crypt_and_locks_prefix_them() {
        let hash = hash_password("secret").unwrap();
        assert!(hash.starts_with("$6$"), "{hash}");
        let locked = shadow_hash(
            "t",
            &Password {
                password: Some("secret".into()),
                iscrypted: false,
                lock: true,
                allow_ssh: false,
            },
        )
        .unwrap();
        assert!(locked.starts_with("!$6$"), "{locked}");
        let crypted = shadow_hash(
            "t",
            &Password {
                password: Some("$6$abc$def".into()),
                iscrypted: true,
                lock: false,
                allow_ssh: false,
            },
        )
        .unwrap();
        assert_eq!(crypted, "$6$abc$def");
    }
}
