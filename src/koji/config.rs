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
    /// `sslLogin` behind SPNEGO (GSSAPI): a Kerberos ticket from the user's credential
    /// cache, or from a keytab.
    Kerberos(KerberosLogin),
}

/// Whose Kerberos credentials log in (koji's `principal` and `keytab`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KerberosLogin {
    /// The client principal; without a keytab it picks that principal's cache from
    /// the user's cache collection (koji's `--principal`).
    pub principal: Option<String>,
    /// Log in with this keytab's key for `principal` (unattended use); the ticket is
    /// kept in this process's memory only.
    pub keytab: Option<PathBuf>,
}

/// Upload chunk size when a profile sets no `upload_blocksize`.
pub const DEFAULT_UPLOAD_BLOCKSIZE: usize = 8 << 20;

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
    /// Log in as this user instead (koji's `--runas`; the hub must allow the
    /// logged-in principal or certificate to proxy).
    pub runas: Option<String>,
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
            // koji's client sends 1 MiB; 8 MiB took a release to the hub under httpd
            // 3.0x as fast as koji's client at its defaults, at 95 MiB peak RSS
            // (16 MiB: 3.3x at 176 MiB), benches/upload.rs.
            upload_blocksize: DEFAULT_UPLOAD_BLOCKSIZE,
            timeout: Duration::from_secs(12 * 3600),
            runas: None,
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
    /// Kerberos login with this principal (and `keytab`, when given).
    pub principal: Option<String>,
    pub keytab: Option<PathBuf>,
    pub runas: Option<String>,
    /// How to log in, whatever the profile says (koji's `--authtype`).
    pub authtype: Option<AuthType>,
    pub retries: Option<u32>,
    pub retry_interval: Option<Duration>,
}

/// koji's `authtype` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthType {
    Noauth,
    Ssl,
    Password,
    Kerberos,
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
        if self.principal.is_some() || self.keytab.is_some() {
            let mut login = match profile.auth {
                Auth::Kerberos(login) => login,
                _ => KerberosLogin::default(),
            };
            if let Some(principal) = &self.principal {
                login.principal = Some(principal.clone());
            }
            if let Some(keytab) = &self.keytab {
                login.keytab = Some(keytab.clone());
            }
            profile.auth = Auth::Kerberos(login);
        }
        match (self.authtype, &profile.auth) {
            (None, _)
            | (Some(AuthType::Ssl), Auth::Ssl { .. })
            | (Some(AuthType::Password), Auth::Password { .. })
            | (Some(AuthType::Kerberos), Auth::Kerberos(_)) => {}
            (Some(AuthType::Noauth), _) => profile.auth = Auth::None,
            (Some(AuthType::Kerberos), _) => profile.auth = Auth::Kerberos(Default::default()),
            (Some(AuthType::Ssl), _) => {
                bail!("--authtype ssl needs a certificate (--cert, or cert in the profile)")
            }
            (Some(AuthType::Password), _) => {
                bail!("--authtype password needs --user (or user and password in the profile)")
            }
        }
        if let Auth::Kerberos(login) = &profile.auth {
            check_kerberos(&profile.name, login)?;
        }
        if let Some(user) = &self.runas {
            profile.runas = Some(user.clone());
        }
        if profile.runas.is_some() && !matches!(profile.auth, Auth::Ssl { .. } | Auth::Kerberos(_))
        {
            bail!(
                "--runas needs a certificate or Kerberos login (koji's proxy users log in with sslLogin)"
            );
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

/// A keytab needs the principal whose key it holds (as koji's CLI: `keytab` is used
/// only with `principal`).
fn check_kerberos(profile: &str, login: &KerberosLogin) -> Result<()> {
    if let Some(keytab) = &login.keytab {
        ensure!(
            login.principal.is_some(),
            "[{profile}] keytab = {}: a keytab needs the principal to log in as (principal = NAME@REALM, or --principal)",
            keytab.display()
        );
    }
    if let Some(principal) = &login.principal {
        crate::koji::kerberos::check_principal(principal)
            .with_context(|| format!("[{profile}] principal = {principal}"))?;
    }
    Ok(())
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
        Some("noauth") => Auth::None,
        // As koji's CLI: a profile that names no other way logs in with Kerberos.
        Some("kerberos") | None => Auth::Kerberos(KerberosLogin {
            principal: get("principal"),
            keytab: get("keytab").map(|v| expand(&v)),
        }),
        Some("ssl") => bail!("[{name}] authtype = ssl needs cert"),
        Some("password") => bail!("[{name}] authtype = password needs user and password"),
        Some(other) => {
            bail!("[{name}] authtype = {other}: expected kerberos, ssl, password or noauth")
        }
    };
    for dropped in ["krbservice", "krb_rdns", "krb_canon_host"] {
        if get(dropped).is_some() {
            // koji 1.22 dropped them: the hub's principal is HTTP/<host of server>, and
            // krb5.conf decides how that host is canonicalized.
            tracing::warn!(
                "[{name}] {dropped} is ignored, as koji ignores it since 1.22: the hub's principal is HTTP/<host of server>; krb5.conf's dns_canonicalize_hostname and rdns decide how the host is canonicalized"
            );
        }
    }
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
        // As koji's CLI: a profile that names no other way logs in with Kerberos.
        let stg = load(&files, "stg").unwrap();
        assert_eq!(stg.auth, Auth::Kerberos(KerberosLogin::default()));
        let err = load(&files, "prod").unwrap_err().to_string();
        assert!(err.contains("no koji profile [prod]"), "{err}");
        std::fs::write(
            &first,
            "[koji]\nserver = https://x/\nno_ssl_verify = true\n",
        )
        .unwrap();
        assert!(load(&[first], "koji").is_err());
    }

    #[test]
    fn kerberos_profiles_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("koji.conf");
        std::fs::write(
            &conf,
            "[fedora]\nserver = https://koji.fedoraproject.org/kojihub\nauthtype = kerberos\n\
             \n[bot]\nserver = http://koji.example/kojihub\nauthtype = kerberos\n\
             principal = nodeimg/builder@EXAMPLE.COM\nkeytab = /etc/nodeimg.keytab\nkrbservice = host\n\
             \n[half]\nserver = https://k/\nauthtype = kerberos\nkeytab = /etc/k.keytab\n\
             \n[anon]\nserver = https://k/\nauthtype = noauth\n",
        )
        .unwrap();
        let resolve = |profile: &str, tweak: &dyn Fn(&mut Overrides)| {
            let mut o = Overrides {
                profile: profile.to_owned(),
                config: Some(conf.clone()),
                ..Default::default()
            };
            tweak(&mut o);
            o.resolve()
        };
        let fedora = resolve("fedora", &|_| {}).unwrap();
        assert_eq!(fedora.auth, Auth::Kerberos(KerberosLogin::default()));
        let bot = resolve("bot", &|_| {}).unwrap();
        assert_eq!(
            bot.auth,
            Auth::Kerberos(KerberosLogin {
                principal: Some("nodeimg/builder@EXAMPLE.COM".into()),
                keytab: Some(PathBuf::from("/etc/nodeimg.keytab")),
            })
        );
        // A keytab alone does not say whom to log in as.
        let err = format!("{:#}", resolve("half", &|_| {}).unwrap_err());
        assert!(err.contains("a keytab needs the principal"), "{err}");
        // --principal picks a cache of the collection; --authtype forces a way.
        let picked = resolve("fedora", &|o| {
            o.principal = Some("me@FEDORAPROJECT.ORG".into())
        });
        assert_eq!(
            picked.unwrap().auth,
            Auth::Kerberos(KerberosLogin {
                principal: Some("me@FEDORAPROJECT.ORG".into()),
                keytab: None
            })
        );
        let forced = resolve("anon", &|o| o.authtype = Some(AuthType::Kerberos)).unwrap();
        assert_eq!(forced.auth, Auth::Kerberos(KerberosLogin::default()));
        let none = resolve("fedora", &|o| o.authtype = Some(AuthType::Noauth)).unwrap();
        assert_eq!(none.auth, Auth::None);
        let err = format!(
            "{:#}",
            resolve("fedora", &|o| o.authtype = Some(AuthType::Ssl)).unwrap_err()
        );
        assert!(err.contains("--authtype ssl needs a certificate"), "{err}");
        let bad = resolve("fedora", &|o| o.principal = Some("no realm".into()));
        assert!(bad.is_err());
        // Proxy logins are sslLogin's: not with a password.
        let err = format!(
            "{:#}",
            resolve("anon", &|o| {
                o.runas = Some("releng".into());
                o.authtype = Some(AuthType::Noauth)
            })
            .unwrap_err()
        );
        assert!(
            err.contains("--runas needs a certificate or Kerberos login"),
            "{err}"
        );
    }
}
