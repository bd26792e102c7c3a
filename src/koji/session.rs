//! A koji session: XML-RPC calls over one keep-alive HTTPS connection, logged in with a
//! client certificate or a Kerberos ticket (`sslLogin` at `/ssllogin`, see
//! `kerberos`) or a password (`login`), header
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

use anyhow::{Context, Result, anyhow, bail, ensure};
use dxr::Value;

use super::config::{Auth, KerberosLogin, Profile};
use super::kerberos::{self, Negotiation};
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
    /// `WWW-Authenticate: Negotiate …` of the last response (a Kerberos login's proof).
    negotiate_reply: Option<String>,
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
    pub fn new(mut profile: Profile) -> Result<Session> {
        if matches!(profile.auth, Auth::Kerberos(_))
            && let Some(rest) = profile.server.strip_prefix("http://")
        {
            // As koji's gssapi_login: the login and the session go over https.
            profile.server = format!("https://{rest}");
            tracing::info!("Kerberos login: using {}", profile.server);
        }
        let http = http_client(&profile)?;
        Ok(Session {
            profile,
            http,
            logged: None,
            callnum: 0,
            hub_version: None,
            negotiate_reply: None,
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
        let mut kwargs: Vec<(&str, Value)> = Vec::new();
        if renew {
            kwargs.push(("renew", Value::Boolean(true)));
        }
        if let Some(user) = &self.profile.runas {
            kwargs.push(("proxyuser", xmlrpc::string(user.clone())));
        }
        // Logging in carries no session (a renewal carries the old one).
        let saved = if renew { self.logged.clone() } else { None };
        self.logged = saved;
        let (method, value) = match self.profile.auth.clone() {
            Auth::None => return Ok(()),
            Auth::Password { user, password } => {
                let server = self.profile.server.clone();
                let params = [xmlrpc::string(user), xmlrpc::string(password)];
                (
                    "login",
                    self.plain_login(&server, "login", &params, &kwargs)?,
                )
            }
            Auth::Ssl { .. } => {
                let url = self.ssllogin_url();
                (
                    "sslLogin",
                    self.plain_login(&url, "sslLogin", &[], &kwargs)?,
                )
            }
            Auth::Kerberos(login) => ("sslLogin", self.kerberos_login(&login, &kwargs)?),
        };
        let logged = self.session_of(method, &value)?;
        tracing::debug!(
            "logged in to {} (session {})",
            self.profile.server,
            logged.id
        );
        self.logged = Some(logged);
        self.callnum = 0;
        Ok(())
    }

    /// The session a login or `subsession` answered with.
    fn session_of(&self, method: &str, value: &Value) -> Result<Logged> {
        let id = xmlrpc::member(value, "session-id").and_then(xmlrpc::as_i64);
        let key = xmlrpc::member(value, "session-key").and_then(xmlrpc::as_str);
        match (id, key) {
            (Some(id), Some(key)) => Ok(Logged {
                id,
                key: key.to_owned(),
            }),
            _ => bail!("{method} on {} returned no session", self.profile.server),
        }
    }

    /// A sibling session of this logged-in one (koji's `subsession`): the same user,
    /// its own call numbers, so that it can send requests while this one does. It
    /// logs out (only itself) when dropped.
    pub fn subsession(&mut self) -> Result<Session> {
        ensure!(
            self.logged.is_some(),
            "a subsession needs a logged-in session"
        );
        let value = self.call("subsession", &[], &[])?;
        let logged = self.session_of("subsession", &value)?;
        tracing::debug!("subsession {} of {}", logged.id, self.profile.server);
        Ok(Session {
            profile: self.profile.clone(),
            http: self.http.clone(),
            logged: Some(logged),
            callnum: 0,
            hub_version: self.hub_version.clone(),
            negotiate_reply: None,
        })
    }

    /// Where `sslLogin` goes: the hub's `/ssllogin`, which its web server guards with
    /// the client certificate or Kerberos.
    fn ssllogin_url(&self) -> String {
        format!("{}/ssllogin", self.profile.server.trim_end_matches('/'))
    }

    /// `login` with a password or `sslLogin` with the client certificate, with the
    /// retry rules (no renewal: this is the login).
    fn plain_login(
        &mut self,
        url: &str,
        method: &str,
        params: &[Value],
        kwargs: &[(&str, Value)],
    ) -> Result<Value> {
        let body = xmlrpc::encode_call(method, params, kwargs);
        self.send_retrying(url, method, &[], body.into_bytes().into(), "text/xml")
            .with_context(|| format!("logging in to {} ({method})", self.profile.server))
    }

    /// `sslLogin` with a new SPNEGO token for each attempt (the hub's replay cache
    /// refuses a token twice); the session is trusted only once the hub's answer
    /// completes the mutual authentication.
    fn kerberos_login(&mut self, login: &KerberosLogin, kwargs: &[(&str, Value)]) -> Result<Value> {
        let server = self.profile.server.clone();
        let url = self.ssllogin_url();
        let host = kerberos::service_host(&server)?;
        let body = bytes::Bytes::from(xmlrpc::encode_call("sslLogin", &[], kwargs));
        let context = || format!("logging in to {server} with Kerberos (sslLogin)");
        let mut tries = 0;
        loop {
            let (negotiation, authorization) =
                Negotiation::start(login, &host).with_context(context)?;
            let callnum = self.next_callnum();
            self.negotiate_reply = None;
            match self.exchange_once(
                &url,
                &[],
                body.clone(),
                "text/xml",
                callnum,
                Some(&authorization),
            ) {
                Ok(value) => {
                    negotiation
                        .finish(self.negotiate_reply.take().as_deref())
                        .with_context(context)?;
                    return Ok(value);
                }
                Err(Attempt::Fail(err)) => {
                    // A refusal may carry the KDC's or the hub's reason in a token.
                    if let Some(reply) = self.negotiate_reply.take()
                        && let Err(why) = negotiation.finish(Some(&reply))
                    {
                        return Err(why.context(format!("{err:#}")).context(context()));
                    }
                    return Err(err.context(context()));
                }
                Err(Attempt::Retry(err)) => {
                    tries += 1;
                    self.back_off("sslLogin", tries, err)
                        .with_context(context)?;
                }
            }
        }
    }

    /// Close the session on the hub: one attempt, no retries (it also runs on drop,
    /// where an unreachable hub must not hold nodeimg up).
    pub fn logout(&mut self) {
        if self.logged.is_some() {
            let url = self.profile.server.clone();
            let body = xmlrpc::encode_call("logout", &[], &[]);
            let callnum = self.next_callnum();
            let _ = self.exchange_once(&url, &[], body.into(), "text/xml", callnum, None);
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
        let body = xmlrpc::encode_call(method, params, kwargs);
        self.send(&url, method, &[], body.into_bytes().into(), "text/xml")
    }

    /// Send a request body with the retry rules; when the hub says the session has
    /// expired, log in again (a renewal) and send it once more. Calls and uploads
    /// come through here.
    pub(super) fn send(
        &mut self,
        url: &str,
        method: &str,
        query: &[(&str, String)],
        body: bytes::Bytes,
        content_type: &str,
    ) -> Result<Value> {
        match self.send_retrying(url, method, query, body.clone(), content_type) {
            Err(err)
                if err
                    .downcast_ref::<Fault>()
                    .is_some_and(|f| f.code == xmlrpc::AUTH_EXPIRED)
                    && self.logged.is_some() =>
            {
                tracing::info!("koji session expired; logging in again");
                self.login_inner(true)?;
                self.send_retrying(url, method, query, body, content_type)
            }
            other => other,
        }
    }

    /// Send a request body, retrying as the rules say. `query` is for raw uploads.
    fn send_retrying(
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
            match self.exchange_once(url, query, body.clone(), content_type, callnum, None) {
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
                    self.back_off(method, tries, err)?;
                }
            }
        }
    }

    /// Wait before retry number `tries` of `method` (1 s, 2 s, 4 s … up to
    /// `retry_interval`), or give up with `err` after `max_retries`.
    fn back_off(&self, method: &str, tries: u32, err: anyhow::Error) -> Result<()> {
        if tries > self.profile.max_retries {
            return Err(err.context(format!(
                "koji call {method}: gave up after {} retries",
                self.profile.max_retries
            )));
        }
        crate::sys::cancel::check()?;
        let wait = Duration::from_secs(1 << (tries - 1).min(10)).min(self.profile.retry_interval);
        tracing::warn!(
            "koji call {method} failed ({err:#}); retry {tries} of {} in {:.1} s",
            self.profile.max_retries,
            wait.as_secs_f64()
        );
        std::thread::sleep(wait);
        Ok(crate::sys::cancel::check()?)
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
        authorization: Option<&str>,
    ) -> Result<Value, Attempt> {
        let mut request = self
            .http
            .post(url)
            .query(query)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(value) = authorization {
            let mut value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| Attempt::Fail(anyhow!("an Authorization header that is not text")))?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
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
        self.negotiate_reply = response
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("Negotiate "))
            .map(str::to_owned);
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED && authorization.is_some() {
            return Err(Attempt::Fail(anyhow!(
                "the hub refused the Kerberos token (HTTP 401): its web server does not accept this principal's ticket, or is not set up for Kerberos at {url}"
            )));
        }
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
