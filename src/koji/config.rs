//! koji's own client configuration, read as koji's CLI reads it, so that
//! `--profile NAME` means what it means to `koji -p NAME`.
//!
//! Files, later ones overriding earlier ones: /etc/koji.conf.d/*.conf, /etc/koji.conf,
//! ~/.koji/config.d/*.conf, ~/.koji/config (or only the file `--config` names). Each
//! section is a profile; `[koji]` is the default one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

/// How to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Anonymous calls only.
    None,
    /// `login(user, password)`: development hubs.
    Password { user: String, password: String },
    /// `sslLogin` with a client certificate (PEM: certificate and key, in one file or two).
    Ssl { cert: PathBuf, key: Option<PathBuf> },
}

/// A resolved profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub server: String,
    pub auth: Auth,
    /// CA bundle that must have signed the hub's certificate (only it is trusted).
    pub serverca: Option<PathBuf>,
    pub max_retries: u32,
    pub retry_interval: Duration,
    pub upload_blocksize: usize,
    pub timeout: Duration,
}

impl Profile {
    /// A profile from options alone (no configuration file).
    pub fn direct(server: &str) -> Profile {
        Profile {
            name: "(command line)".to_owned(),
            server: server.to_owned(),
            auth: Auth::None,
            serverca: None,
            max_retries: 30,
            retry_interval: Duration::from_secs(20),
            upload_blocksize: 1 << 20,
            timeout: Duration::from_secs(12 * 3600),
        }
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn expand(value: &str) -> PathBuf {
    match (value.strip_prefix("~/"), home()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(value),
    }
}

/// What a command line says over a profile: which profile (or hub) and how to log in.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The profile's name (`koji -p NAME`).
    pub profile: String,
    /// Read only this configuration file (`koji -c FILE`).
    pub config: Option<PathBuf>,
    /// The hub's URL: no configuration file is read.
    pub server: Option<String>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub serverca: Option<PathBuf>,
    /// Password login as this user; the password from `password_file`, else from
    /// `NODEIMG_KOJI_PASSWORD` (never from a command line).
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    pub retries: Option<u32>,
    pub retry_interval: Option<Duration>,
}

/// The environment variable a password may come from.
const PASSWORD_ENV: &str = "NODEIMG_KOJI_PASSWORD";

impl Overrides {
    /// The profile these options select, with their overrides applied.
    pub fn resolve(&self) -> Result<Profile> {
        let mut profile = match &self.server {
            Some(server) => Profile::direct(server),
            None => {
                let files = match &self.config {
                    Some(file) => {
                        ensure!(file.is_file(), "--config {}: no such file", file.display());
                        vec![file.clone()]
                    }
                    None => default_files(),
                };
                load(&files, &self.profile)?
            }
        };
        ensure!(
            profile.server.starts_with("https://") || profile.server.starts_with("http://"),
            "koji server {}: not an http(s) URL",
            profile.server
        );
        if let Some(cert) = &self.cert {
            profile.auth = Auth::Ssl {
                cert: cert.clone(),
                key: self.key.clone(),
            };
        }
        if let Some(user) = &self.user {
            profile.auth = Auth::Password {
                user: user.clone(),
                password: self.password()?,
            };
        }
        if let Some(ca) = &self.serverca {
            profile.serverca = Some(ca.clone());
        }
        if let Some(n) = self.retries {
            profile.max_retries = n;
        }
        if let Some(interval) = self.retry_interval {
            profile.retry_interval = interval;
        }
        Ok(profile)
    }

    fn password(&self) -> Result<String> {
        match &self.password_file {
            Some(file) => Ok(std::fs::read_to_string(file)
                .with_context(|| format!("reading --password-file {}", file.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned()),
            None => std::env::var(PASSWORD_ENV).with_context(|| {
                format!("--user needs --password-file FILE (or {PASSWORD_ENV} in the environment)")
            }),
        }
    }
}

/// The files koji's CLI reads, in reading order.
pub fn default_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let conf_d = |dir: &Path, files: &mut Vec<PathBuf>| {
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut found: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .collect();
            found.sort();
            files.extend(found);
        }
    };
    conf_d(Path::new("/etc/koji.conf.d"), &mut files);
    files.push(PathBuf::from("/etc/koji.conf"));
    if let Some(home) = home() {
        conf_d(&home.join(".koji/config.d"), &mut files);
        files.push(home.join(".koji/config"));
    }
    files
}

/// Read profile `name` from `files` (missing files are skipped).
pub fn load(files: &[PathBuf], name: &str) -> Result<Profile> {
    let mut values: std::collections::BTreeMap<String, (String, PathBuf)> = Default::default();
    let mut seen = false;
    let mut read = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err).with_context(|| format!("reading {}", file.display())),
        };
        read.push(file.display().to_string());
        let ini = ini::Ini::load_from_str(&text)
            .with_context(|| format!("{}: not an INI file", file.display()))?;
        if let Some(section) = ini.section(Some(name)) {
            seen = true;
            for (key, value) in section.iter() {
                values.insert(key.to_owned(), (value.to_owned(), file.clone()));
            }
        }
    }
    if !seen {
        bail!(
            "no koji profile [{name}] in {}",
            if read.is_empty() {
                "any configuration file (none of /etc/koji.conf, ~/.koji/config exists)".to_owned()
            } else {
                read.join(", ")
            }
        );
    }
    let get = |key: &str| values.get(key).map(|(v, _)| v.trim().to_owned());
    let server = get("server").with_context(|| format!("koji profile [{name}] has no server"))?;
    let mut profile = Profile::direct(&server);
    profile.name = name.to_owned();
    profile.serverca = get("serverca").map(|v| expand(&v));
    if let Some(v) = get("max_retries") {
        profile.max_retries = v
            .parse()
            .with_context(|| format!("[{name}] max_retries = {v}: not a number"))?;
    }
    if let Some(v) = get("retry_interval") {
        let secs: f64 = v
            .parse()
            .with_context(|| format!("[{name}] retry_interval = {v}: not a number"))?;
        profile.retry_interval = Duration::from_secs_f64(secs);
    }
    if let Some(v) = get("upload_blocksize") {
        profile.upload_blocksize = v
            .parse()
            .with_context(|| format!("[{name}] upload_blocksize = {v}: not a number"))?;
    }
    if let Some(v) = get("timeout") {
        let secs: f64 = v
            .parse()
            .with_context(|| format!("[{name}] timeout = {v}: not a number"))?;
        profile.timeout = Duration::from_secs_f64(secs);
    }
    ensure!(
        !matches!(
            get("no_ssl_verify").as_deref(),
            Some("true" | "True" | "1" | "yes")
        ),
        "[{name}] no_ssl_verify: nodeimg always verifies the hub's certificate"
    );
    let authtype = get("authtype");
    profile.auth = match authtype.as_deref() {
        Some("ssl") | None if get("cert").is_some() => Auth::Ssl {
            cert: expand(&get("cert").unwrap_or_default()),
            key: None,
        },
        Some("password") | None if get("user").is_some() => Auth::Password {
            user: get("user").unwrap_or_default(),
            password: get("password")
                .with_context(|| format!("[{name}] authtype = password needs user and password"))?,
        },
        Some("noauth") | None => Auth::None,
        Some("ssl") => bail!("[{name}] authtype = ssl needs cert"),
        Some("password") => bail!("[{name}] authtype = password needs user and password"),
        Some("kerberos") => bail!(
            "[{name}] authtype = kerberos: nodeimg has no GSSAPI login yet; use a client certificate (authtype = ssl)"
        ),
        Some(other) => bail!("[{name}] authtype = {other}: expected ssl, password or noauth"),
    };
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_read_as_kojis_cli_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("a.conf");
        let second = dir.path().join("b.conf");
        std::fs::write(
            &first,
            "[koji]\nserver = https://koji.example/kojihub\nauthtype = ssl\ncert = /etc/pki/koji.pem\nserverca = /etc/pki/ca.pem\n\n[stg]\nserver = https://stg/kojihub\n",
        )
        .unwrap();
        std::fs::write(&second, "[koji]\nmax_retries = 3\nretry_interval = 0.5\n").unwrap();
        let files = [first.clone(), dir.path().join("missing.conf"), second];
        let koji = load(&files, "koji").unwrap();
        assert_eq!(koji.server, "https://koji.example/kojihub");
        assert_eq!(
            koji.auth,
            Auth::Ssl {
                cert: PathBuf::from("/etc/pki/koji.pem"),
                key: None
            }
        );
        assert_eq!(koji.max_retries, 3);
        assert_eq!(koji.retry_interval, Duration::from_millis(500));
        let stg = load(&files, "stg").unwrap();
        assert_eq!(stg.auth, Auth::None);
        let err = load(&files, "prod").unwrap_err().to_string();
        assert!(err.contains("no koji profile [prod]"), "{err}");
        std::fs::write(
            &first,
            "[koji]\nserver = https://x/\nno_ssl_verify = true\n",
        )
        .unwrap();
        assert!(load(&[first], "koji").is_err());
    }
}
