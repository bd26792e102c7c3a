//! Kerberos login to a koji hub (`authtype = kerberos`), as koji's `gssapi_login`
//! does it: `sslLogin` POSTed to the hub's `/ssllogin` with an SPNEGO token
//! (`Authorization: Negotiate …`, RFC 4559). The hub's web server (mod_auth_gssapi)
//! accepts the token and hands koji the client principal, which koji maps to a user
//! (`AllowedKrbRealms`, the users' Kerberos principals, `ProxyPrincipals` for
//! `--runas`).
//!
//! - The hub's principal is the host-based service `HTTP@HOST`, HOST from the hub's
//!   URL, as requests-gssapi names it for koji. How HOST is canonicalized is
//!   krb5.conf's business (`dns_canonicalize_hostname`, `rdns`): koji 1.22 dropped its
//!   own `krbservice`, `krb_rdns` and `krb_canon_host` (koji's
//!   docs/source/migrations/migrating_to_1.22.rst), and so does nodeimg.
//! - Credentials: with a keytab, the principal's key from it, the ticket kept in a
//!   memory cache of this process (the user's caches are left alone); else the user's
//!   credential cache (`KRB5CCNAME`, `kinit`), the principal's own cache of the
//!   collection when a principal is named.
//! - Mutual authentication is required: the hub's answer must carry the token that
//!   completes the context, which proves the answer comes from the principal's keys.
//! - Tokens and tickets are never logged.
//!
//! The GSSAPI is the system's (MIT's libgssapi_krb5) through the `libgssapi` crate.
//! One call it does not wrap, `gss_acquire_cred_from` (a keytab and a cache for one
//! credential, without setting process-wide environment variables), is made here
//! through its `-sys` crate.

use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine;
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::Cred;
use libgssapi::error::{Error as GssError, MajorFlags};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_SPNEGO, GSS_NT_HOSTBASED_SERVICE};

use super::config::KerberosLogin;

/// One SPNEGO exchange: the token for the request, then the hub's answer.
pub struct Negotiation {
    ctx: ClientCtx,
    service: String,
    /// For the messages: how we logged in, as whom, to which host.
    login: KerberosLogin,
    who: Option<String>,
    host: String,
}

impl std::fmt::Debug for Negotiation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Negotiation {{ service: {} }}", self.service)
    }
}

/// A principal name as koji's users have them: NAME[/INSTANCE]@REALM, printable,
/// no whitespace.
pub fn check_principal(principal: &str) -> Result<()> {
    let (name, realm) = principal
        .rsplit_once('@')
        .with_context(|| format!("{principal}: expected NAME@REALM"))?;
    ensure!(
        !name.is_empty() && !realm.is_empty(),
        "{principal}: expected NAME@REALM"
    );
    ensure!(
        principal.len() <= 255 && principal.chars().all(|c| c.is_ascii_graphic()),
        "{principal}: a principal is at most 255 printable ASCII characters, without spaces"
    );
    Ok(())
}

/// The host part of the hub's principal: the URL's host, without port or brackets.
pub fn service_host(server: &str) -> Result<String> {
    let url = reqwest::Url::parse(server).with_context(|| format!("koji server {server}"))?;
    let host = url
        .host_str()
        .with_context(|| format!("koji server {server} names no host"))?;
    Ok(host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned())
}

impl Negotiation {
    /// Acquire the credentials and make the first token for the hub at `host`.
    /// Returns the `Authorization` header's value.
    pub fn start(login: &KerberosLogin, host: &str) -> Result<(Negotiation, String)> {
        if let Some(keytab) = &login.keytab {
            ensure!(
                keytab.is_file(),
                "keytab {}: no such file",
                keytab.display()
            );
        }
        let cred = acquire(login).map_err(|e| explain(e, login, None, host))?;
        // The cache's principal, for the messages (a name is not a secret).
        let who = cred
            .name()
            .ok()
            .and_then(|n| n.display_name().ok())
            .map(|n| String::from_utf8_lossy(&n).into_owned());
        // GSSAPI's host-based service name; the principal it stands for, for messages.
        let target = Name::new(
            format!("HTTP@{host}").as_bytes(),
            Some(GSS_NT_HOSTBASED_SERVICE),
        )
        .map_err(|e| anyhow!("the hub's principal HTTP/{host}: {e}"))?;
        let service = format!("HTTP/{host}");
        let mut ctx = ClientCtx::new(
            Some(cred),
            target,
            CtxFlags::GSS_C_MUTUAL_FLAG | CtxFlags::GSS_C_SEQUENCE_FLAG,
            Some(GSS_MECH_SPNEGO),
        );
        let token = ctx
            .step(None, None)
            .map_err(|e| explain(e, login, who.as_deref(), host))?
            .with_context(|| format!("GSSAPI made no token for {service}"))?;
        let header = format!(
            "Negotiate {}",
            base64::engine::general_purpose::STANDARD.encode(&*token)
        );
        tracing::debug!("Kerberos: SPNEGO token for HTTP/{host} made");
        Ok((
            Negotiation {
                ctx,
                service,
                login: login.clone(),
                who,
                host: host.to_owned(),
            },
            header,
        ))
    }

    /// Check the hub's answer (`WWW-Authenticate: Negotiate …` of the login's
    /// response): it must complete the context with mutual authentication.
    pub fn finish(mut self, www_authenticate: Option<&str>) -> Result<()> {
        let refused = || {
            anyhow!(
                "the hub did not prove it is {}: its answer carries no Kerberos token (WWW-Authenticate: Negotiate); not trusting this session",
                self.service
            )
        };
        let token = www_authenticate
            .and_then(|v| v.trim().strip_prefix("Negotiate "))
            .ok_or_else(refused)?;
        let token = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .map_err(|_| anyhow!("the hub's Negotiate answer is not base64"))?;
        ensure!(
            token.len() <= 64 * 1024,
            "the hub's Negotiate answer is {} bytes: too long for a Kerberos token",
            token.len()
        );
        // A hub that refused the token may say why in its own (a KRB-ERROR).
        let answer = self.ctx.step(Some(&token), None).map_err(|e| {
            explain(e, &self.login, self.who.as_deref(), &self.host)
                .context(format!("the hub's Kerberos answer ({})", self.service))
        })?;
        if let Some(more) = answer {
            bail!(
                "the hub's Kerberos answer for {} left the exchange unfinished ({} more bytes to send): not a mutual authentication",
                self.service,
                more.len()
            );
        }
        ensure!(
            self.ctx.is_complete(),
            "the Kerberos exchange with {} did not complete",
            self.service
        );
        let flags = self
            .ctx
            .flags()
            .map_err(|e| anyhow!("the Kerberos context with {}: {e}", self.service))?;
        ensure!(
            flags.contains(CtxFlags::GSS_C_MUTUAL_FLAG),
            "{} did not authenticate itself (no mutual authentication)",
            self.service
        );
        tracing::debug!("Kerberos: {} authenticated (mutual)", self.service);
        Ok(())
    }
}

/// Memory caches of this process, one per login from a keytab.
static MEMORY_CACHES: AtomicU32 = AtomicU32::new(0);

/// The initiator's credentials: from the keytab (into a new memory cache), else from
/// the user's cache (the principal's one, when named).
fn acquire(login: &KerberosLogin) -> Result<Cred, GssError> {
    let mut store: Vec<(&CStr, CString)> = Vec::new();
    if let Some(keytab) = &login.keytab {
        let n = MEMORY_CACHES.fetch_add(1, Ordering::Relaxed);
        store.push((c"client_keytab", c_string(&keytab_name(keytab))?));
        store.push((
            c"ccache",
            c_string(&format!("MEMORY:nodeimg-{}-{n}", std::process::id()))?,
        ));
    }
    acquire_from(login.principal.as_deref(), &store)
}

/// MIT's name of a keytab file: FILE: and its absolute path.
fn keytab_name(path: &Path) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    format!("FILE:{}", path.display())
}

fn c_string(text: &str) -> Result<CString, GssError> {
    CString::new(text).map_err(|_| GssError {
        major: MajorFlags::GSS_S_BAD_NAME,
        minor: 0,
    })
}

/// The krb5 principal name type, 1.2.840.113554.1.2.2.1 (RFC 1964).
const KRB5_NT_PRINCIPAL_NAME: [u8; 10] = *b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";

/// `gss_acquire_cred_from` for initiating, with a cred store (MIT's keys:
/// `client_keytab`, `ccache`; empty: the defaults).
fn acquire_from(principal: Option<&str>, store: &[(&CStr, CString)]) -> Result<Cred, GssError> {
    use libgssapi_sys as sys;
    let fail = |major: u32, minor: u32| GssError {
        major: MajorFlags::from_bits_retain(major),
        minor,
    };
    let mut minor: u32 = 0;
    let mut name: sys::gss_name_t = ptr::null_mut();
    if let Some(principal) = principal {
        let mut oid_bytes = KRB5_NT_PRINCIPAL_NAME;
        let mut oid = sys::gss_OID_desc {
            length: oid_bytes.len() as u32,
            elements: oid_bytes.as_mut_ptr().cast(),
        };
        let mut text = principal.as_bytes().to_vec();
        let mut buffer = sys::gss_buffer_desc {
            length: text.len(),
            value: text.as_mut_ptr().cast(),
        };
        // SAFETY: the buffer and the OID point at live local bytes for the call; GSSAPI
        // copies what it keeps into the new name, which is released below.
        let major = unsafe { sys::gss_import_name(&mut minor, &mut buffer, &mut oid, &mut name) };
        if major != sys::GSS_S_COMPLETE {
            return Err(fail(major, minor));
        }
    }
    let mut elements: Vec<sys::gss_key_value_element_desc> = store
        .iter()
        .map(|(key, value)| sys::gss_key_value_element_desc {
            key: key.as_ptr(),
            value: value.as_ptr(),
        })
        .collect();
    let set = sys::gss_key_value_set_desc {
        count: elements.len() as u32,
        elements: elements.as_mut_ptr(),
    };
    let mut cred: sys::gss_cred_id_t = ptr::null_mut();
    // SAFETY: `name` is null or the name imported above; `set` and its strings live
    // until the call returns; on success `cred` is a new credential handle that the
    // returned `Cred` owns and releases.
    let major = unsafe {
        sys::gss_acquire_cred_from(
            &mut minor,
            name,
            sys::_GSS_C_INDEFINITE,
            ptr::null_mut(),
            sys::GSS_C_INITIATE as sys::gss_cred_usage_t,
            &set,
            &mut cred,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if !name.is_null() {
        let mut ignored = 0;
        // SAFETY: `name` came from gss_import_name and is released once.
        unsafe { sys::gss_release_name(&mut ignored, &mut name) };
    }
    if major != sys::GSS_S_COMPLETE {
        return Err(fail(major, minor));
    }
    // SAFETY: `cred` is the handle gss_acquire_cred_from just made; nothing else owns it.
    Ok(unsafe { Cred::from_c(cred) })
}

/// The GSSAPI failures a release engineer can fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    NoTicket,
    Expired,
    ClockSkew,
    UnknownService,
    UnknownClient,
    KeytabLacksKey,
    KeyMismatch,
    NoKdc,
}

/// MIT krb5's words for them (lib/krb5/error_tables/krb5_err.et and the extended
/// messages of the ccache and KDC code). GSSAPI's mechglue renumbers the minor
/// status (SPNEGO around krb5 renumbers it twice), so the krb5 error code does not
/// survive to the caller; its message does.
const MESSAGES: &[(&str, Failure)] = &[
    ("No credentials cache found", Failure::NoTicket),
    ("in cache collection", Failure::NoTicket),
    ("Matching credential not found", Failure::NoTicket),
    ("Ticket expired", Failure::Expired),
    ("Clock skew too great", Failure::ClockSkew),
    ("Key table entry not found", Failure::KeytabLacksKey),
    ("Preauthentication failed", Failure::KeyMismatch),
    ("Decrypt integrity check failed", Failure::KeyMismatch),
    ("Cannot contact any KDC", Failure::NoKdc),
    ("Cannot find KDC for realm", Failure::NoKdc),
    ("Cannot resolve network address for KDC", Failure::NoKdc),
];

fn classify(err: &GssError) -> Option<Failure> {
    let text = err.to_string();
    if let Some(&(_, failure)) = MESSAGES.iter().find(|(words, _)| text.contains(words)) {
        return Some(failure);
    }
    if text.contains("not found in Kerberos database") {
        return Some(if text.contains("(Server ") {
            Failure::UnknownService
        } else {
            Failure::UnknownClient
        });
    }
    // The routine error of the major status is a number, not a set of bits.
    let routine = |flag: MajorFlags| err.major.bits() & 0x00ff_0000 == flag.bits();
    if routine(MajorFlags::GSS_S_CREDENTIALS_EXPIRED) {
        Some(Failure::Expired)
    } else if routine(MajorFlags::GSS_S_NO_CRED) {
        Some(Failure::NoTicket)
    } else {
        None
    }
}

/// What a GSSAPI failure means for the user, and what to do about it; the library's
/// own words follow in parentheses.
fn explain(err: GssError, login: &KerberosLogin, who: Option<&str>, host: &str) -> anyhow::Error {
    let who = who.or(login.principal.as_deref());
    let kinit = format!("kinit{}", who.map(|p| format!(" {p}")).unwrap_or_default());
    let principal = who.unwrap_or("your principal");
    let cache = std::env::var("KRB5CCNAME")
        .map(|c| format!("credential cache {c}"))
        .unwrap_or_else(|_| "the default credential cache".to_owned());
    let advice = match (classify(&err), &login.keytab) {
        (Some(Failure::NoTicket | Failure::KeytabLacksKey), Some(keytab)) => format!(
            "keytab {} holds no key for {principal}: check the principal, and the keytab with `klist -k {}`",
            keytab.display(),
            keytab.display()
        ),
        (Some(Failure::KeyMismatch), Some(keytab)) => format!(
            "the KDC refuses keytab {}'s key for {principal}: the key was changed after the keytab was made; export it again",
            keytab.display()
        ),
        (Some(Failure::NoTicket), None) => format!(
            "no Kerberos ticket{} in {cache}: run `{kinit}` first (or give the profile a principal and a keytab)",
            who.map(|p| format!(" for {p}")).unwrap_or_default()
        ),
        (Some(Failure::Expired), None) => format!(
            "the Kerberos ticket{} in {cache} has expired: run `{kinit}` again (or log in with a keytab for unattended runs)",
            who.map(|p| format!(" of {p}")).unwrap_or_default()
        ),
        (Some(Failure::ClockSkew), _) => "clock skew: this machine's clock and the KDC's or the hub's differ by more than Kerberos allows (5 minutes by default); set the time (chrony or NTP)".to_owned(),
        (Some(Failure::UnknownService), _) => format!(
            "the KDC knows no principal HTTP/{host} for the hub: check the host in the server URL (koji asks for HTTP/<host of the URL>; krb5.conf's dns_canonicalize_hostname and rdns decide how it is canonicalized)"
        ),
        (Some(Failure::UnknownClient), _) => {
            format!("the KDC knows no principal {principal}: check its name and realm")
        }
        (Some(Failure::NoKdc), _) => "no KDC answered for the realm: check krb5.conf ([realms] kdc, [domain_realm]) and the network".to_owned(),
        _ => return anyhow!("Kerberos login as {principal} to HTTP/{host} failed: {err}"),
    };
    anyhow!("{advice} (GSSAPI: {err})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_and_hosts() {
        check_principal("releng@EXAMPLE.COM").unwrap();
        check_principal("koji/builder1.example.com@EXAMPLE.COM").unwrap();
        for bad in ["releng", "@EXAMPLE.COM", "releng@", "rel eng@X", "a\n@X"] {
            assert!(check_principal(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            service_host("https://koji.example.com:8443/kojihub").unwrap(),
            "koji.example.com"
        );
        assert_eq!(service_host("https://[::1]/kojihub").unwrap(), "::1");
        assert!(service_host("file:///x").is_err());
    }

    #[test]
    fn keytab_names() {
        assert_eq!(
            keytab_name(Path::new("/etc/krb5.keytab")),
            "FILE:/etc/krb5.keytab"
        );
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            keytab_name(Path::new("robot.keytab")),
            format!("FILE:{}", cwd.join("robot.keytab").display())
        );
    }
}
