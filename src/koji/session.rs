//! A koji session: XML-RPC calls over one keep-alive HTTPS connection, logged in with a
//! client certificate (`sslLogin` at `/ssllogin`) or a password (`login`), header
//! authentication (`Koji-Session-Id`, `-Key`, `-Callnum`) with a strict call-number
//! sequence, and koji's retry rules:
//!
//! - connection errors and HTTP errors are retried with backoff (1 s, 2 s, 4 s … up to
//!   the profile's `retry_interval`, `max_retries` times), the same call number again;
//! - ServerOffline is retried the same way;
//! - RetryError means the hub already ran a call with this number, so the call is
//!   repeated with a new number only when it is safe to run twice (reads and uploads);
//! - AuthExpired logs in again (`renew`) and repeats the call once;
//! - certificate errors and every other fault are not retried.
//!
//! The session key never reaches a log.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use dxr::Value;

use super::config::{Auth, Profile};
use super::xmlrpc::{self, Fault};

/// Methods that are safe to run twice (after a RetryError).
const IDEMPOTENT: &[&str] = &[
    "checkUpload",
    "echo",
    "getAPIVersion",
    "getBuild",
    "getLoggedInUser",
    "getTag",
    "listTags",
    "rawUpload",
];

#[derive(Clone)]
struct Logged {
    id: i64,
    key: String,
}

impl std::fmt::Debug for Logged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Logged {{ id: {}, key: <hidden> }}", self.id)
    }
}

/// What went wrong with one HTTP exchange.
enum Attempt {
    /// Worth another try (connection, HTTP status, ServerOffline).
    Retry(anyhow::Error),
    /// Final.
    Fail(anyhow::Error),
}

#[derive(Debug)]
pub struct Session {
    pub profile: Profile,
    http: reqwest::blocking::Client,
    logged: Option<Logged>,
    callnum: u64,
    /// `Koji-Version` of the last response.
    pub hub_version: Option<String>,
}

/// The HTTP client for a profile: only `serverca` is trusted when it is given, the
/// system's roots otherwise; the client certificate for `Auth::Ssl`.
fn http_client(profile: &Profile) -> Result<reqwest::blocking::Client> {
    let mut builder = reqwest::blocking::Client::builder()
        .user_agent(concat!("nodeimg/", env!("CARGO_PKG_VERSION")))
        .timeout(profile.timeout)
        .connect_timeout(Duration::from_secs(60));
    if let Some(ca) = &profile.serverca {
        let pem =
            std::fs::read(ca).with_context(|| format!("reading serverca {}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{}: not a PEM CA bundle", ca.display()))?;
        anyhow::ensure!(!certs.is_empty(), "{}: no certificate in it", ca.display());
        builder = builder.tls_certs_only(certs);
    }
    if let Auth::Ssl { cert, key } = &profile.auth {
        builder = builder.identity(identity(cert, key.as_deref())?);
    }
    builder.build().context("setting up HTTPS")
}

/// A client identity from koji's `cert` file (certificate and key in one PEM, as koji
/// expects) or from two files. PKCS#1 keys are converted to PKCS#8 for native-tls.
fn identity(cert: &std::path::Path, key: Option<&std::path::Path>) -> Result<reqwest::Identity> {
    let pem = std::fs::read(cert).with_context(|| format!("reading cert {}", cert.display()))?;
    let key_pem = match key {
        Some(key) => {
            std::fs::read(key).with_context(|| format!("reading key {}", key.display()))?
        }
        None => pem.clone(),
    };
    let pkey = openssl::pkey::PKey::private_key_from_pem(&key_pem)
        .with_context(|| format!("{}: no private key in it", key.unwrap_or(cert).display()))?;
    let pkcs8 = pkey.private_key_to_pem_pkcs8()?;
    // Only the certificates: native-tls wants the key separately.
    let text = String::from_utf8_lossy(&pem);
    let mut certs = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE") {
            inside = true;
        }
        if inside {
            certs.push_str(line);
            certs.push('\n');
        }
        if line.starts_with("-----END CERTIFICATE") {
            inside = false;
        }
    }
    anyhow::ensure!(
        !certs.is_empty(),
        "{}: no certificate in it",
        cert.display()
    );
    reqwest::Identity::from_pkcs8_pem(certs.as_bytes(), &pkcs8)
        .with_context(|| format!("{}: not a usable client certificate", cert.display()))
}

impl Session {
    pub fn new(profile: Profile) -> Result<Session> {
        let http = http_client(&profile)?;
        Ok(Session {
            profile,
            http,
            logged: None,
            callnum: 0,
            hub_version: None,
        })
    }

    pub fn logged_in(&self) -> bool {
        self.logged.is_some()
    }

    /// Log in as the profile says (nothing for `Auth::None`).
    pub fn login(&mut self) -> Result<()> {
        self.login_inner(false)
    }

    fn login_inner(&mut self, renew: bool) -> Result<()> {
        let (url, method, params) = match &self.profile.auth {
            Auth::None => return Ok(()),
            Auth::Password { user, password } => (
                self.profile.server.clone(),
                "login",
                vec![
                    xmlrpc::string(user.clone()),
                    xmlrpc::string(password.clone()),
                ],
            ),
            Auth::Ssl { .. } => (
                format!("{}/ssllogin", self.profile.server.trim_end_matches('/')),
                "sslLogin",
                Vec::new(),
            ),
        };
        let kwargs: Vec<(&str, Value)> = if renew {
            vec![("renew", Value::Boolean(true))]
        } else {
            Vec::new()
        };
        // Logging in carries no session (a renewal carries the old one).
        let saved = if renew { self.logged.clone() } else { None };
        self.logged = saved;
        let value = self
            .exchange_retrying(&url, method, &params, &kwargs)
            .with_context(|| format!("logging in to {} ({method})", self.profile.server))?;
        let id = xmlrpc::member(&value, "session-id").and_then(xmlrpc::as_i64);
        let key = xmlrpc::member(&value, "session-key").and_then(xmlrpc::as_str);
        match (id, key) {
            (Some(id), Some(key)) => {
                self.logged = Some(Logged {
                    id,
                    key: key.to_owned(),
                });
                self.callnum = 0;
                tracing::debug!("logged in to {} (session {id})", self.profile.server);
                Ok(())
            }
            _ => bail!("{method} on {} returned no session", self.profile.server),
        }
    }

    /// Close the session on the hub: one attempt, no retries (it also runs on drop,
    /// where an unreachable hub must not hold nodeimg up).
    pub fn logout(&mut self) {
        if self.logged.is_some() {
            let url = self.profile.server.clone();
            let body = xmlrpc::encode_call("logout", &[], &[]);
            let callnum = self.next_callnum();
            let _ = self.exchange_once(&url, &[], body.into(), "text/xml", callnum);
            self.logged = None;
        }
    }

    /// Call `method`; faults come back as [`Fault`] inside the error (downcast to look).
    pub fn call(
        &mut self,
        method: &str,
        params: &[Value],
        kwargs: &[(&str, Value)],
    ) -> Result<Value> {
        let url = self.profile.server.clone();
        match self.exchange_retrying(&url, method, params, kwargs) {
            Err(err)
                if err
                    .downcast_ref::<Fault>()
                    .is_some_and(|f| f.code == xmlrpc::AUTH_EXPIRED)
                    && self.logged.is_some() =>
            {
                tracing::info!("koji session expired; logging in again");
                self.login_inner(true)?;
                self.exchange_retrying(&url, method, params, kwargs)
            }
            other => other,
        }
    }

    /// One call with the retry rules; uploads come through here too.
    fn exchange_retrying(
        &mut self,
        url: &str,
        method: &str,
        params: &[Value],
        kwargs: &[(&str, Value)],
    ) -> Result<Value> {
        let body = xmlrpc::encode_call(method, params, kwargs);
        self.send_retrying(url, method, &[], body.into_bytes().into(), "text/xml")
    }

    /// Send a request body, retrying as the rules say. `query` is for raw uploads.
    pub(super) fn send_retrying(
        &mut self,
        url: &str,
        method: &str,
        query: &[(&str, String)],
        body: bytes::Bytes,
        content_type: &str,
    ) -> Result<Value> {
        let mut callnum = self.next_callnum();
        let mut tries = 0u32;
        let mut renumbered = false;
        loop {
            match self.exchange_once(url, query, body.clone(), content_type, callnum) {
                Ok(value) => return Ok(value),
                Err(Attempt::Fail(err)) => {
                    let retry_error = err
                        .downcast_ref::<Fault>()
                        .is_some_and(|f| f.code == xmlrpc::RETRY_ERROR);
                    if retry_error && !renumbered && IDEMPOTENT.contains(&method) {
                        // The hub ran this number already; safe to run again.
                        renumbered = true;
                        callnum = self.next_callnum();
                        continue;
                    }
                    return Err(err.context(format!("koji call {method}")));
                }
                Err(Attempt::Retry(err)) => {
                    tries += 1;
                    if tries > self.profile.max_retries {
                        return Err(err.context(format!(
                            "koji call {method}: gave up after {} retries",
                            self.profile.max_retries
                        )));
                    }
                    crate::sys::cancel::check()?;
                    let wait = Duration::from_secs(1 << (tries - 1).min(10))
                        .min(self.profile.retry_interval);
                    tracing::warn!(
                        "koji call {method} failed ({err:#}); retry {tries} of {} in {:.1} s",
                        self.profile.max_retries,
                        wait.as_secs_f64()
                    );
                    std::thread::sleep(wait);
                    crate::sys::cancel::check()?;
                }
            }
        }
    }

    fn next_callnum(&mut self) -> Option<u64> {
        self.logged.as_ref()?;
        self.callnum += 1;
        Some(self.callnum)
    }

    fn exchange_once(
        &mut self,
        url: &str,
        query: &[(&str, String)],
        body: bytes::Bytes,
        content_type: &str,
        callnum: Option<u64>,
    ) -> Result<Value, Attempt> {
        let mut request = self
            .http
            .post(url)
            .query(query)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(logged) = &self.logged {
            request = request
                .header("Koji-Session-Id", logged.id.to_string())
                .header("Koji-Session-Key", &logged.key);
            if let Some(n) = callnum {
                request = request.header("Koji-Session-Callnum", n.to_string());
            }
        }
        let response = request.send().map_err(|err| {
            if is_certificate_error(&err) {
                Attempt::Fail(anyhow!(
                    "TLS verification of {} failed: {}",
                    self.profile.server,
                    chain(&err)
                ))
            } else {
                Attempt::Retry(anyhow!("{}", chain(&err)))
            }
        })?;
        if let Some(version) = response.headers().get("Koji-Version") {
            self.hub_version = version.to_str().ok().map(str::to_owned);
        }
        let status = response.status();
        let text = response
            .text()
            .map_err(|err| Attempt::Retry(anyhow!("reading the response: {}", chain(&err))))?;
        if !status.is_success() {
            let first: String = text.chars().take(200).collect();
            return Err(Attempt::Retry(anyhow!("HTTP {status}: {}", first.trim())));
        }
        match xmlrpc::decode_response(&text) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(fault)) if fault.code == xmlrpc::SERVER_OFFLINE => {
                Err(Attempt::Retry(fault.into()))
            }
            Ok(Err(fault)) => Err(Attempt::Fail(fault.into())),
            Err(why) => Err(Attempt::Fail(anyhow!(why))),
        }
    }

    /// Several calls in one request (`multiCall`): one result or fault per call.
    pub fn multicall(&mut self, calls: &[(&str, Vec<Value>)]) -> Result<Vec<Result<Value, Fault>>> {
        let list = calls
            .iter()
            .map(|(method, params)| {
                let mut map = std::collections::BTreeMap::new();
                map.insert("methodName".to_owned(), xmlrpc::string(*method));
                map.insert("params".to_owned(), Value::Array(params.clone()));
                Value::Struct(map)
            })
            .collect();
        let value = self.call("multiCall", &[Value::Array(list)], &[])?;
        let Value::Array(results) = value else {
            bail!("multiCall returned something other than a list");
        };
        Ok(results
            .into_iter()
            .map(|result| match result {
                Value::Array(mut one) if one.len() == 1 => Ok(one.remove(0)),
                other => Err(Fault {
                    code: xmlrpc::member(&other, "faultCode")
                        .and_then(xmlrpc::as_i64)
                        .map_or(xmlrpc::GENERIC_ERROR, |c| c as i32),
                    message: xmlrpc::member(&other, "faultString")
                        .and_then(xmlrpc::as_str)
                        .unwrap_or("no faultString")
                        .to_owned(),
                }),
            })
            .collect())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.logout();
    }
}

/// An error with its causes, for one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether a request failed on the hub's certificate (never retried).
fn is_certificate_error(err: &reqwest::Error) -> bool {
    let text = chain(err).to_lowercase();
    text.contains("certificate") || text.contains("handshake")
}
