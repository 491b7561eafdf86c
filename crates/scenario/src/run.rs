//! Plays a scenario against a lab. Steps reach the tenant only over HTTP and the AD DS only
//! over LDAP, as any client would; what acts on the lab itself (the clock, the engine's and
//! the DC's switches, the engine's log) goes through the lab's control surface under `/lab/`,
//! as the lab's administrator — one path whether the lab runs in this process or elsewhere,
//! so every scenario exercises that surface and its checks.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use labkit::LabInfo;
use ldap_dial::Security;
use ldap3::{Mod, Scope as LdapScope, SearchEntry};
use serde_json::{Value, json};

use crate::model::*;
use crate::observe::{self, Observed};
use crate::transcript::{Transcript, clean_form, clean_json};

/// A request's body: JSON, or a form (the token endpoint's).
enum Payload {
    Json(Value),
    Form(Vec<(String, String)>),
}

/// The lab a scenario runs against.
#[derive(Clone)]
pub struct Target {
    pub info: LabInfo,
    /// The AD DS is an external directory (`external::ineligible` let only the fault
    /// switches through that name the state it is in anyway).
    pub external_adds: bool,
    /// The lab CA's certificate (PEM).
    pub ca_pem: Vec<u8>,
}

/// A step that could not be played (not an outcome to compare: a broken reference, a
/// connection that failed).
#[derive(Debug, Clone)]
pub struct RunError(pub String);

impl<E: std::fmt::Display> From<E> for RunError {
    fn from(e: E) -> RunError {
        RunError(e.to_string())
    }
}

/// Where a scenario stopped, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// 1-based step number; 0 for the `given:` section.
    pub step: usize,
    pub action: String,
    pub line: u64,
    pub column: u64,
    pub expected: String,
    pub actual: String,
}

/// An SSPR flow the scenario has started.
struct Flow {
    id: String,
    user: String,
    methods: Vec<String>,
    gates: u64,
}

pub struct Runner<'a> {
    target: &'a Target,
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
    captures: HashMap<String, String>,
    /// The report of the last sync cycle (asked for, or run by the schedule).
    last_sync: Option<Value>,
    /// Passwords learned during the run (changes, resets), by account, for `as:` lookups.
    passwords: HashMap<String, String>,
    flow: Option<Flow>,
    pub transcript: Transcript,
    step: usize,
    last_body: Value,
    /// The DC the LDAP steps talk to (`adds.use_dc`; None: the first).
    dc: Option<String>,
    /// The engine's wire trace read so far (its last sequence number).
    trace_seq: u64,
    /// The lab administrator's token for the control surface (see `lab_token`).
    lab_token: Option<String>,
    /// SSPR flows started so far (their ids show as `<flow-N>`).
    flows_seen: usize,
    /// A browser's client for the STS's pages: redirects shown, not followed.
    sts: reqwest::Client,
    /// The STS's session cookie (`ESTSAUTH`), kept between interactive steps.
    sts_cookie: Option<String>,
    /// Headers the next Graph call sends besides its token (`admin.graph`'s `headers`).
    next_headers: Vec<(String, String)>,
}

/// Where a walk through the sign-in pages ended.
enum Walked {
    /// Sent back to the app: the address (query or fragment).
    Redirect(String),
    /// A page that posts the answer to the app (`response_mode=form_post`): its fields.
    FormPost(Vec<(String, String)>),
    /// A page the walk cannot go past: the STS's error, a refused password, the
    /// "Update your password" page without a new password, the device's "signed in".
    Page { header: String, error: Option<String> },
}

fn tls_config(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, RunError> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.map_err(|e| RunError(format!("lab CA: {e}")))?)?;
    }
    Ok(Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()))
}

impl<'a> Runner<'a> {
    #[allow(deprecated)] // ring on purpose: docs/security.md, "ring, not AWS-LC, for TLS"
    pub fn new(target: &'a Target) -> Result<Runner<'a>, RunError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // (`localhost` is the loopback address, RFC 6761: no resolver call per connection)
        let http = reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&target.ca_pem)?)
            .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .build()?;
        let sts = reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&target.ca_pem)?)
            .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let mut transcript = Transcript::default();
        for u in &target.info.users {
            if let Some(p) = &u.password {
                transcript.secret(p);
            }
        }
        transcript.secret(&target.info.adds.admin_password);
        transcript.secret(&target.info.tenant.admin_password);
        transcript.secret(&target.info.tenant.client_secret);
        transcript.alias(&target.info.tenant.https, "https://tenant");
        Ok(Runner {
            target,
            http,
            tls: tls_config(&target.ca_pem)?,
            captures: HashMap::new(),
            last_sync: None,
            passwords: HashMap::new(),
            flow: None,
            transcript,
            step: 0,
            last_body: Value::Null,
            dc: None,
            trace_seq: 0,
            lab_token: None,
            flows_seen: 0,
            sts,
            sts_cookie: None,
            next_headers: vec![],
        })
    }

    /// Plays a whole scenario; the first step whose outcome differs from its expectation
    /// (or that cannot be played) stops it.
    pub async fn run(&mut self, s: &Scenario) -> Result<(), Failure> {
        self.transcript.step(0, "given");
        self.given(&s.given).await.map_err(|e| Failure {
            step: 0,
            action: "given".into(),
            line: 1,
            column: 1,
            expected: "the `given:` settings to apply".into(),
            actual: e.0,
        })?;
        for (i, spanned) in s.steps.iter().enumerate() {
            let step = &spanned.value;
            self.step = i + 1;
            self.transcript.step(self.step, step.action.name());
            let expect = step.expect.clone().unwrap_or(Expect::Ok);
            let fail = |actual: String| Failure {
                step: i + 1,
                action: step.action.name().into(),
                line: spanned.referenced.line(),
                column: spanned.referenced.column(),
                expected: observe::describe_expect(&expect),
                actual,
            };
            let got = self.exec(&step.action).await.map_err(|e| fail(format!("could not be played: {}", e.0)))?;
            // an operation the tenant gave up on may still end on-premises during the step
            self.engine_trace().await;
            if !observe::matches(&expect, &got) {
                return Err(fail(observe::describe_against(&expect, &got)));
            }
            for (name, field) in &step.capture {
                let v = lookup(&self.last_body, field).ok_or_else(|| fail(format!("no field `{field}` to capture in the answer")))?;
                if field.to_ascii_lowercase().contains("password") {
                    self.transcript.secret(&v);
                }
                self.captures.insert(name.clone(), v);
            }
        }
        Ok(())
    }

    // ----- values -----

    /// `${name}`: a capture, or `initial.<sam|upn>`, `tenant_id`, `base_dn`, `domain`, `netbios`.
    fn s(&self, text: &str) -> Result<String, RunError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let end = rest[i..].find('}').ok_or_else(|| RunError(format!("unclosed `${{` in {text:?}")))?;
            let name = &rest[i + 2..i + end];
            out.push_str(&self.value_of(name)?);
            rest = &rest[i + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// An attribute value: text with `${…}` filled in; `base64:…` for a binary one; a
    /// unicodePwd given as text is sent as AD takes it (quoted UTF-16LE).
    fn value(&self, attr: &str, text: &str) -> Result<Vec<u8>, RunError> {
        let v = self.s(text)?;
        match v.strip_prefix("base64:") {
            Some(b) => {
                base64::engine::general_purpose::STANDARD.decode(b.trim()).map_err(|e| RunError(format!("{text:?}: not base64: {e}")))
            }
            None if attr.eq_ignore_ascii_case("unicodePwd") => Ok(unicode_pwd(&v)),
            None => Ok(v.into_bytes()),
        }
    }

    fn value_of(&self, name: &str) -> Result<String, RunError> {
        let info = &self.target.info;
        if let Some(v) = self.captures.get(name) {
            return Ok(v.clone());
        }
        if let Some(who) = name.strip_prefix("initial.") {
            return self.seeded(who).and_then(|u| u.password.clone()).ok_or_else(|| RunError(format!("no seeded password for `{who}`")));
        }
        Ok(match name {
            "tenant_id" => info.tenant.tenant_id.clone(),
            "client_id" => info.tenant.client_id.clone(),
            "base_dn" => info.adds.base_dn.clone(),
            "domain" => info.adds.domain.clone(),
            "netbios" => info.adds.netbios.clone(),
            _ => return Err(RunError(format!("`${{{name}}}` is neither a capture nor a built-in value"))),
        })
    }

    fn seeded(&self, who: &str) -> Option<&labkit::SeededUser> {
        let who = who.rsplit('\\').next().unwrap_or(who);
        self.target
            .info
            .users
            .iter()
            .find(|u| u.sam.eq_ignore_ascii_case(who) || u.upn.eq_ignore_ascii_case(who) || u.dn.eq_ignore_ascii_case(who))
    }

    /// The password of an account acting in a step: given, learned during the run, or seeded.
    fn password_for(&self, who: &str, given: Option<&str>) -> Result<String, RunError> {
        if let Some(p) = given {
            return self.s(p);
        }
        let key = who.to_ascii_lowercase();
        if let Some(p) = self.passwords.get(&key) {
            return Ok(p.clone());
        }
        let t = &self.target.info.tenant;
        if who.eq_ignore_ascii_case(&t.admin_upn) {
            return Ok(t.admin_password.clone());
        }
        if who.eq_ignore_ascii_case(&self.target.info.adds.admin_dn) {
            return Ok(self.target.info.adds.admin_password.clone());
        }
        self.seeded(who)
            .and_then(|u| u.password.clone())
            .ok_or_else(|| RunError(format!("no password known for `{who}`: give `password:`")))
    }

    fn learn(&mut self, who: &str, password: &str) {
        self.transcript.secret(password);
        let key = who.to_ascii_lowercase();
        self.passwords.insert(key, password.to_string());
        // the same account under its other names
        if let Some(u) = self.seeded(who).cloned() {
            for name in [
                u.sam,
                u.upn,
                u.dn,
                format!("{}\\{}", self.target.info.adds.netbios, self.seeded(who).map(|x| x.sam.clone()).unwrap_or_default()),
            ] {
                if !name.is_empty() {
                    self.passwords.insert(name.to_ascii_lowercase(), password.to_string());
                }
            }
        }
    }

    // ----- HTTP -----

    async fn call(&mut self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Result<Observed, RunError> {
        self.call_with(method, path, token, body.map(Payload::Json)).await
    }

    async fn call_with(&mut self, method: &str, path: &str, token: Option<&str>, payload: Option<Payload>) -> Result<Observed, RunError> {
        // a form is shown as the JSON object it stands for, its secrets redacted the same way
        let body = match &payload {
            Some(Payload::Json(b)) => Some(b.clone()),
            Some(Payload::Form(f)) => Some(Value::Object(f.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())),
            None => None,
        };
        // one-time codes are secrets too: never in a transcript or a report
        for code in body.iter().flat_map(crate::transcript::one_time_codes) {
            self.transcript.secret(&code);
        }
        let shown = body.as_ref().map(|b| format!(" {}", clean_json(b))).unwrap_or_default();
        self.transcript.request(self.step, &format!("{method} {path}{shown}"));
        let m = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self.http.request(m, format!("{}{path}", self.target.info.tenant.https));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in std::mem::take(&mut self.next_headers) {
            req = req.header(k, v);
        }
        match &payload {
            Some(Payload::Json(b)) => req = req.json(b),
            Some(Payload::Form(f)) => req = req.form(f),
            None => {}
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let headers: Vec<(String, String)> =
            r.headers().iter().map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or_default().to_string())).collect();
        let text = r.text().await?;
        let body: Value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        for code in crate::transcript::one_time_codes(&body) {
            self.transcript.secret(&code);
        }
        // an SSPR flow's id is random (it is what lets its caller drive the flow): shown by
        // its order, so transcripts stay the same run after run
        if path == "/lab/sspr/flows"
            && let Some(id) = body["id"].as_str()
        {
            self.flows_seen += 1;
            let shown = format!("<flow-{}>", self.flows_seen);
            self.transcript.alias(id, &shown);
        }
        // what the tenant's request set off behind it (relay, engine, AD DS), before its answer
        self.engine_trace().await;
        let shown = if body.is_null() { String::new() } else { format!(" {}", clean_json(&body)) };
        self.transcript.response(self.step, &format!("{status}{shown}"));
        self.last_body = body.clone();
        let mut o = Observed::http(status, body);
        o.headers = headers;
        if let Some(l) = location {
            o.http.as_mut().expect("set").1["@location"] = json!(l);
        }
        Ok(o)
    }

    /// The engine's wire trace since the last look, into the transcript (`⇢ from → to: text`).
    async fn engine_trace(&mut self) {
        if self.target.info.engine.is_none() {
            return;
        }
        let path = format!("/lab/engine/trace?since={}", self.trace_seq);
        let v = self.lab_get(&path).await.unwrap_or(Value::Null);
        let lines: Vec<(u64, String, String, String)> = v["value"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                let s = |k: &str| l[k].as_str().unwrap_or_default().to_string();
                (l["seq"].as_u64().unwrap_or(0), s("from"), s("to"), s("text"))
            })
            .collect();
        for (seq, from, to, text) in lines {
            self.trace_seq = self.trace_seq.max(seq);
            self.transcript.wire(self.step, &from, &to, &text);
            // AD's refusal ("19 0000052D: …") in plain words, as the dashboard says it
            let (rc, diagnostic) = text.split_once(' ').map_or((0, text.as_str()), |(rc, d)| (rc.parse().unwrap_or(0), d));
            if from == "AD DS"
                && let Some(why) = writeback::events::plain_reason(rc, diagnostic)
            {
                self.transcript.note(self.step, why);
            }
        }
    }

    /// A browser's request to the STS: the session cookie sent, and kept from the answer.
    async fn browse(&mut self, req: reqwest::RequestBuilder) -> Result<(u16, Option<String>, String), RunError> {
        let req = match &self.sts_cookie {
            Some(c) => req.header("Cookie", format!("ESTSAUTH={c}")),
            None => req,
        };
        let r = req.send().await?;
        for c in r.headers().get_all("set-cookie") {
            if let Some(v) = c.to_str().ok().and_then(|c| c.strip_prefix("ESTSAUTH=")) {
                let v = v.split(';').next().unwrap_or_default();
                self.sts_cookie = (!v.is_empty()).then(|| v.to_string());
            }
        }
        let status = r.status().as_u16();
        let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        Ok((status, location, r.text().await?))
    }

    /// Posts a step of the sign-in pages (a same-origin form, as a browser sends it).
    async fn post_page(&mut self, path: &str, fields: &[(&str, &str)]) -> Result<(u16, Option<String>, String), RunError> {
        let https = self.target.info.tenant.https.clone();
        let shown: Vec<String> = fields
            .iter()
            .filter(|(k, _)| *k != "ctx")
            .map(|(k, v)| if k.contains("passwd") || *k == "otc" { format!("{k}=***") } else { format!("{k}={v}") })
            .collect();
        self.transcript.request(self.step, &format!("POST {path} {}", shown.join("&")));
        let req = self.sts.post(format!("{https}{path}")).header("Origin", https).form(fields);
        let (status, location, html) = self.browse(req).await?;
        self.transcript.response(self.step, &page_line(status, location.as_deref(), &html));
        Ok((status, location, html))
    }

    /// Walks the sign-in pages from `html` on: the username, the password, the account
    /// picker, "Update your password" (with `new_password`), the device's confirmation.
    async fn walk(
        &mut self,
        mut answer: (u16, Option<String>, String),
        user: Option<&str>,
        password: Option<&str>,
        new_password: Option<&str>,
        decline: bool,
    ) -> Result<Walked, RunError> {
        let login = format!("/{}/login", self.target.info.tenant.tenant_id);
        let mut changed = false;
        // every page moves the walk on or ends it: a few pages at most
        for _ in 0..8 {
            let (_, location, html) = &answer;
            if let Some(l) = location {
                return Ok(Walked::Redirect(l.clone()));
            }
            if html.contains("document.forms[0].submit()") {
                let fields = ["code", "state", "session_state", "error", "error_description"]
                    .iter()
                    .filter_map(|k| crate::sts::field(html, k).map(|v| (k.to_string(), v)))
                    .collect();
                return Ok(Walked::FormPost(fields));
            }
            let header = crate::sts::text(html, "loginHeader").unwrap_or_default();
            let error = ["errorMessage", "usernameError", "passwordError", "error"].iter().find_map(|id| crate::sts::text(html, id));
            let ctx = crate::sts::field(html, "ctx").unwrap_or_default();
            let login_field = crate::sts::field(html, "loginfmt").unwrap_or_else(|| user.unwrap_or_default().to_string());
            let next = match header.as_str() {
                _ if error.is_some() && !(header == "Update your password" && new_password.is_some() && !changed) => {
                    return Ok(Walked::Page { header, error });
                }
                "Sign in" => match user {
                    Some(u) => vec![("step", "username".to_string()), ("loginfmt", u.to_string())],
                    None => return Ok(Walked::Page { header, error: Some("the username page, and no user to type".into()) }),
                },
                "Enter password" => match password {
                    Some(p) => vec![("step", "password".to_string()), ("loginfmt", login_field), ("passwd", p.to_string())],
                    None => return Ok(Walked::Page { header, error: Some("the password page, and no password to type".into()) }),
                },
                "Update your password" => match (new_password, password) {
                    (Some(n), Some(p)) if !changed => {
                        changed = true;
                        vec![
                            ("step", "change".to_string()),
                            ("loginfmt", login_field),
                            ("oldpasswd", p.to_string()),
                            ("newpasswd", n.to_string()),
                            ("confirmnewpasswd", n.to_string()),
                        ]
                    }
                    _ => return Ok(Walked::Page { header, error }),
                },
                "Pick an account" => vec![("step", "session".to_string())],
                h if h.starts_with("Are you trying to sign in to") => {
                    vec![("step", if decline { "decline" } else { "other" }.to_string())]
                }
                _ => return Ok(Walked::Page { header, error }),
            };
            let mut fields: Vec<(&str, &str)> = vec![("ctx", ctx.as_str())];
            fields.extend(next.iter().map(|(k, v)| (*k, v.as_str())));
            answer = self.post_page(&login, &fields).await?;
        }
        Err(RunError("the sign-in pages went round in circles".into()))
    }

    /// `user.sign_in_interactive`.
    async fn sign_in_interactive(&mut self, a: &crate::model::Interactive) -> Result<Observed, RunError> {
        use base64::Engine;
        let t = self.target.info.tenant.clone();
        let user = a.user.as_deref().map(|u| self.s(u)).transpose()?;
        let password = a.password.as_deref().map(|p| self.s(p)).transpose()?;
        let new_password = a.new_password.as_deref().map(|p| self.s(p)).transpose()?;
        for p in password.iter().chain(&new_password) {
            self.transcript.secret(p);
        }
        let client = a.client_id.as_deref().map(|c| self.s(c)).transpose()?.unwrap_or(t.client_id.clone());
        let redirect = a.redirect_uri.as_deref().map(|r| self.s(r)).transpose()?.unwrap_or("http://localhost:53100".into());
        // PKCE with a verifier the step makes (a test client's; the transcript stays stable)
        let verifier = format!("scenario-step-{:03}-pkce-verifier-0123456789abcdefghij", self.step);
        let challenge =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
        let nonce = format!("nonce-{}", self.step);
        let mut q: Vec<(&str, String)> = vec![
            ("client_id", client.clone()),
            ("response_type", "code".into()),
            ("redirect_uri", redirect.clone()),
            ("scope", "openid profile offline_access User.Read".into()),
            ("state", "scenario-state".into()),
            ("nonce", nonce),
        ];
        if !a.no_pkce {
            q.push(("code_challenge", challenge));
            q.push(("code_challenge_method", "S256".into()));
        }
        for (k, v) in [("prompt", &a.prompt), ("response_mode", &a.response_mode)] {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        if a.login_hint
            && let Some(u) = &user
        {
            q.push(("login_hint", u.clone()));
        }
        let path = format!("/{}/oauth2/v2.0/authorize", t.tenant_id);
        let shown: Vec<String> = q.iter().filter(|(k, _)| *k != "code_challenge").map(|(k, v)| format!("{k}={v}")).collect();
        self.transcript.request(self.step, &format!("GET {path}?{}", shown.join("&")));
        let query = form_query(&q);
        let first = self.browse(self.sts.get(format!("{}{path}?{query}", t.https))).await?;
        self.transcript.response(self.step, &page_line(first.0, first.1.as_deref(), &first.2));
        let walked = self.walk(first, user.as_deref(), password.as_deref(), new_password.as_deref(), false).await?;
        let params: Vec<(String, String)> = match walked {
            Walked::Redirect(l) => {
                let rest = l.strip_prefix(&redirect).unwrap_or(&l);
                let q = rest.split_once(['?', '#']).map(|(_, q)| q).unwrap_or_default();
                parse_pairs(q)
            }
            Walked::FormPost(f) => f,
            Walked::Page { header, error } => return Ok(page_observed(&header, error)),
        };
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if let Some(e) = get("error") {
            let description = get("error_description").unwrap_or_default();
            let codes: Vec<u64> = crate::sts::aadsts(&description).into_iter().collect();
            return Ok(Observed::http(
                400,
                json!({ "error": e, "error_codes": codes, "error_description": description, "state": get("state") }),
            ));
        }
        let Some(code) = get("code") else { return Err(RunError("the app was sent back neither a code nor an error".into())) };
        self.transcript.secret(&code);
        let mut form: Vec<(&str, &str)> =
            vec![("grant_type", "authorization_code"), ("client_id", &client), ("code", &code), ("redirect_uri", &redirect)];
        if !a.no_pkce {
            form.push(("code_verifier", &verifier));
        }
        let o = self.redeem(&form).await?;
        if let (true, Some(u), Some(p)) = (o.ok, &user, new_password.as_ref().or(password.as_ref())) {
            self.learn(u, p);
        }
        Ok(o)
    }

    /// A token request of an interactive grant: the answer, with the ID token's claims
    /// (`id_token_claims`, less what differs between runs) for expectations.
    async fn redeem(&mut self, form: &[(&str, &str)]) -> Result<Observed, RunError> {
        use base64::Engine;
        let t = self.target.info.tenant.clone();
        let path = format!("/{}/oauth2/v2.0/token", t.tenant_id);
        self.transcript.request(self.step, &format!("POST {path} {}", clean_form(form)));
        let r = self.http.post(format!("{}{path}", t.https)).form(form).send().await?;
        let status = r.status().as_u16();
        let mut body: Value = r.json().await?;
        if let Some(claims) = body["id_token"]
            .as_str()
            .and_then(|j| j.split('.').nth(1))
            .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        {
            let mut claims: Value = serde_json::from_slice(&claims)?;
            if let Some(m) = claims.as_object_mut() {
                for k in ["uti", "iat", "nbf", "exp"] {
                    m.remove(k);
                }
            }
            body["id_token_claims"] = claims;
        }
        self.transcript.response(self.step, &format!("{status} {}", clean_json(&body)));
        self.last_body = body.clone();
        Ok(Observed::http(status, body))
    }

    /// `user.device_code`.
    async fn device_code(&mut self, a: &crate::model::DeviceCode) -> Result<Observed, RunError> {
        let t = self.target.info.tenant.clone();
        let user = a.user.as_deref().map(|u| self.s(u)).transpose()?;
        let password = a.password.as_deref().map(|p| self.s(p)).transpose()?;
        if let Some(p) = &password {
            self.transcript.secret(p);
        }
        let path = format!("/{}/oauth2/v2.0/devicecode", t.tenant_id);
        let form = [("client_id", t.client_id.as_str()), ("scope", "openid profile User.Read")];
        self.transcript.request(self.step, &format!("POST {path} {}", clean_form(&form)));
        let r = self.http.post(format!("{}{path}", t.https)).form(&form).send().await?;
        let status = r.status().as_u16();
        let started: Value = r.json().await?;
        if status != 200 {
            self.transcript.response(self.step, &format!("{status} {}", clean_json(&started)));
            return Ok(Observed::http(status, started));
        }
        let (device, code) = (
            started["device_code"].as_str().unwrap_or_default().to_string(),
            started["user_code"].as_str().unwrap_or_default().to_string(),
        );
        self.transcript.secret(&code);
        self.transcript.response(
            self.step,
            &format!("{status} {}", clean_json(&json!({ "interval": started["interval"], "expires_in": started["expires_in"] }))),
        );
        let poll = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", t.client_id.as_str()),
            ("device_code", device.as_str()),
        ];
        // the device polls at once: nobody has entered the code yet
        let pending = self.redeem(&poll).await?;
        if let Some(d) = &a.advance {
            clock::parse_duration(d).map_err(RunError)?;
            self.transcript.request(self.step, &format!("advance the lab clock by {d}"));
            self.lab_call("POST", "/lab/clock", Some(json!({ "advance": d }))).await?;
            self.lab_token = None;
        }
        let Some(user) = user else { return Ok(pending) };
        // a second client: the "Enter code" page in a browser
        self.transcript.request(self.step, "GET /devicelogin");
        let page = self.browse(self.sts.get(format!("{}/devicelogin", t.https))).await?;
        self.transcript.response(self.step, &page_line(page.0, None, &page.2));
        let entered = self.post_page("/devicelogin", &[("otc", code.as_str())]).await?;
        if let Walked::Page { header, error: Some(e) } = self.walk(entered, Some(&user), password.as_deref(), None, a.decline).await?
            && header != "Enter code"
        {
            return Ok(page_observed(&header, Some(e)));
        }
        // the device's next poll, the interval later
        let o = self.redeem(&poll).await?;
        if o.ok
            && let Some(p) = &password
        {
            self.learn(&user, p);
        }
        Ok(o)
    }

    /// `user.sign_out`: the end_session endpoint with the STS session.
    async fn sign_out(&mut self) -> Result<Observed, RunError> {
        let t = self.target.info.tenant.clone();
        let path = format!("/{}/oauth2/v2.0/logout", t.tenant_id);
        self.transcript.request(self.step, &format!("GET {path}"));
        let (status, location, html) = self.browse(self.sts.get(format!("{}{path}", t.https))).await?;
        self.transcript.response(self.step, &page_line(status, location.as_deref(), &html));
        Ok(Observed::http(status, json!({ "page": crate::sts::text(&html, "loginHeader") })))
    }

    async fn token(&mut self, upn: &str, password: &str) -> Result<(Observed, Option<String>), RunError> {
        let t = self.target.info.tenant.clone();
        let form = [
            ("grant_type", "password"),
            ("client_id", t.client_id.as_str()),
            ("username", upn),
            ("password", password),
            ("scope", "https://graph.microsoft.com/.default"),
        ];
        let path = format!("/{}/oauth2/v2.0/token", t.tenant_id);
        self.transcript.request(self.step, &format!("POST {path} {}", clean_form(&form)));
        let r = self.http.post(format!("{}{path}", t.https)).form(&form).send().await?;
        let status = r.status().as_u16();
        let body: Value = r.json().await?;
        self.transcript.response(self.step, &format!("{status} {}", clean_json(&body)));
        let token = body.get("access_token").and_then(Value::as_str).map(str::to_string);
        self.last_body = body.clone();
        Ok((Observed::http(status, body), token))
    }

    /// The engine's log as Connect's events. Cloud Sync's agent logs no event IDs: its trace
    /// lines stand in, each under the ID Connect logs for the same happening.
    async fn engine_events(&mut self) -> Result<Value, RunError> {
        let cloud_sync = self.target.info.engine.as_ref().is_some_and(|e| e.kind == relay::AgentKind::CloudSync);
        if !cloud_sync {
            return Ok(self.lab_get("/lab/engine/events").await?["value"].take());
        }
        let lines = self.lab_get("/lab/engine/agent-trace").await?["value"].take();
        let events: Vec<Value> = lines
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| json!({ "id": l["connectEvent"], "message": l["message"], "trackingId": l["trackingId"] }))
            .collect();
        Ok(Value::Array(events))
    }

    /// The account the lab's engine writes AD as, when it is not Connect's connector: Cloud
    /// Sync's gMSA (None: the connector, the rights switch's default).
    fn agent_account(&self) -> Option<String> {
        let info = &self.target.info;
        let cloud_sync = info.engine.as_ref().is_some_and(|e| e.kind == relay::AgentKind::CloudSync);
        info.cloud_sync.as_ref().filter(|_| cloud_sync).map(|c| c.gmsa.clone())
    }

    /// The lab administrator's token for `/lab/` (the tenant's Global Administrator), kept
    /// until the lab clock moves (tokens live on it) or the lab refuses it. Fetched quietly:
    /// not a step's answer, not in the transcript.
    async fn lab_token(&mut self, fresh: bool) -> Result<String, RunError> {
        if let Some(t) = self.lab_token.clone().filter(|_| !fresh) {
            return Ok(t);
        }
        let t = self.target.info.tenant.clone();
        let password = self.password_for(&t.admin_upn, None)?;
        let form = [
            ("grant_type", "password"),
            ("client_id", t.client_id.as_str()),
            ("username", t.admin_upn.as_str()),
            ("password", password.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ];
        let r = self.http.post(format!("{}/{}/oauth2/v2.0/token", t.https, t.tenant_id)).form(&form).send().await?;
        let body: Value = r.json().await?;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| RunError(format!("the lab administrator {} could not sign in: {}", t.admin_upn, clean_json(&body))))?
            .to_string();
        self.lab_token = Some(token.clone());
        Ok(token)
    }

    /// A call to the lab's control surface as its administrator, in the transcript.
    async fn lab_call(&mut self, method: &str, path: &str, body: Option<Value>) -> Result<Observed, RunError> {
        let token = self.lab_token(false).await?;
        let o = self.call(method, path, Some(&token), body.clone()).await?;
        if matches!(&o.http, Some((401, _))) {
            let token = self.lab_token(true).await?;
            return self.call(method, path, Some(&token), body).await;
        }
        Ok(o)
    }

    /// A read of the lab's control surface that the transcript does not show (the engine's
    /// trace and log are looked at around every step).
    async fn lab_get(&mut self, path: &str) -> Result<Value, RunError> {
        for fresh in [false, true] {
            let token = self.lab_token(fresh).await?;
            let r = self.http.get(format!("{}{path}", self.target.info.tenant.https)).bearer_auth(token).send().await?;
            if r.status() != reqwest::StatusCode::UNAUTHORIZED {
                return Ok(r.json().await.unwrap_or(Value::Null));
            }
        }
        Err(RunError(format!("the lab refused its administrator's token for {path}")))
    }

    /// An administrator's token (default: the tenant's Global Administrator).
    async fn admin_token(&mut self, who: Option<&str>, password: Option<&str>) -> Result<String, RunError> {
        let who = match who {
            Some(w) => self.s(w)?,
            None => self.target.info.tenant.admin_upn.clone(),
        };
        let password = self.password_for(&who, password)?;
        let (o, token) = self.token(&who, &password).await?;
        token.ok_or_else(|| RunError(format!("the administrator {who} could not sign in: {}", o.describe())))
    }

    async fn user_id(&mut self, token: &str, upn: &str) -> Result<String, RunError> {
        let o = self.call("GET", &format!("/v1.0/users/{upn}?$select=id"), Some(token), None).await?;
        o.http.and_then(|(_, b)| b["id"].as_str().map(str::to_string)).ok_or_else(|| RunError(format!("no cloud user {upn}")))
    }

    async fn group_id(&mut self, token: &str, name: &str) -> Result<String, RunError> {
        let o = self.call("GET", "/v1.0/groups", Some(token), None).await?;
        let list = o.http.map(|(_, b)| b["value"].clone()).unwrap_or(Value::Null);
        list.as_array()
            .and_then(|a| a.iter().find(|g| g["displayName"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name))))
            .and_then(|g| g["id"].as_str().map(str::to_string))
            .ok_or_else(|| RunError(format!("no group named {name}")))
    }

    // ----- LDAP -----

    async fn connect(&mut self, via: Via) -> Result<ldap3::Ldap, RunError> {
        let a = &self.target.info.adds;
        // the DC `adds.use_dc` chose, else the first
        let dc = self.dc.as_ref().and_then(|n| a.domains.iter().flat_map(|d| &d.dcs).find(|d| d.name.eq_ignore_ascii_case(n)));
        let (ldap, ldaps) = dc.map_or((&a.ldap, &a.ldaps), |d| (&d.ldap, &d.ldaps));
        let (security, url) = match via {
            Via::Ldap => (Security::Url, ldap),
            Via::Starttls => (Security::StartTls, ldap),
            Via::Ldaps => (Security::Url, ldaps),
        };
        // `localhost`, so the certificate's DNS name is checked
        let url = url.replace("127.0.0.1", "localhost");
        let (conn, ldap) = ldap_dial::connect(&url, security, self.tls.clone(), Duration::from_secs(10))
            .await
            .map_err(|e| RunError(format!("{url}: {e}")))?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    fn via_name(via: Via) -> &'static str {
        match via {
            Via::Ldap => "LDAP",
            Via::Starttls => "LDAP+StartTLS",
            Via::Ldaps => "LDAPS",
        }
    }

    /// A connection bound as `who` (default: the domain's Administrator); Err(observed) when
    /// the bind itself fails.
    async fn bound(&mut self, who: Option<&str>, password: Option<&str>, via: Via) -> Result<Result<ldap3::Ldap, Observed>, RunError> {
        let who = match who {
            Some(w) => self.s(w)?,
            None => self.target.info.adds.admin_dn.clone(),
        };
        let password = self.password_for(&who, password)?;
        let mut l = self.connect(via).await?;
        self.transcript.request(self.step, &format!("{} bind {who} {}", Self::via_name(via), crate::transcript::REDACTED));
        let r = l.simple_bind(&who, &password).await?;
        self.transcript.response(self.step, &ldap_line(r.rc, &r.text));
        if r.rc != 0 {
            return Ok(Err(Observed::ldap(r.rc, &r.text)));
        }
        Ok(Ok(l))
    }

    /// A DN for a DN, sAMAccountName, `NETBIOS\sam` or UPN (looked up as the administrator).
    async fn dn_of(&mut self, entry: &str) -> Result<String, RunError> {
        let entry = self.s(entry)?;
        if entry.contains('=') {
            return Ok(entry);
        }
        if let Some(u) = self.seeded(&entry).filter(|u| !u.dn.is_empty()) {
            return Ok(u.dn.clone());
        }
        let name = entry.rsplit('\\').next().unwrap_or(&entry).to_string();
        let mut l = self.connect(Via::Ldaps).await?;
        let a = self.target.info.adds.clone();
        l.simple_bind(&a.admin_dn, &a.admin_password).await?.success()?;
        let filter = format!("(|(sAMAccountName={name})(userPrincipalName={name}))");
        let (entries, _) = l.search(&a.base_dn, LdapScope::Subtree, &filter, vec!["1.1"]).await?.success()?;
        let _ = l.unbind().await;
        entries.into_iter().next().map(|e| SearchEntry::construct(e).dn).ok_or_else(|| RunError(format!("no AD entry for {name}")))
    }

    async fn ldap_modify(
        &mut self,
        l: &mut ldap3::Ldap,
        dn: &str,
        mods: Vec<Mod<Vec<u8>>>,
        shown: &str,
        hints: bool,
    ) -> Result<Observed, RunError> {
        self.transcript.request(self.step, &format!("modify {dn}: {shown}{}", if hints { " [policy hints]" } else { "" }));
        let r = if hints {
            // LDAP_SERVER_POLICY_HINTS_OID, value SEQUENCE { INTEGER 1 }: apply history to a reset
            let ctrl = ldap3::controls::RawControl {
                ctype: "1.2.840.113556.1.4.2239".into(),
                crit: true,
                val: Some(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
            };
            l.with_controls(vec![ctrl]).modify(dn, mods).await?
        } else {
            l.modify(dn, mods).await?
        };
        self.transcript.response(self.step, &ldap_line(r.rc, &r.text));
        let _ = l.unbind().await;
        Ok(Observed::ldap(r.rc, &r.text))
    }

    /// An allow or deny entry as ADUC writes it, on the built-in directory and on a real DC
    /// alike: the object's DACL read over LDAPS as the administrator with the SD-flags
    /// control, the ACEs for the right added (or taken out) in canonical order, written back the same way.
    /// ADUC's "User cannot change password" denies Everyone and SELF: a deny's default trustees.
    async fn write_ace(&mut self, a: &DenyArg, allow: bool, add: bool) -> Result<Observed, RunError> {
        use ad_wire::security::{self, SecurityDescriptor};
        // a modelled right, or None: "All extended rights" (control access, no object type);
        // "Full control" is a plain access-allowed or -denied entry (below)
        let full_control = a.right.eq_ignore_ascii_case("Full control");
        let right = if a.right.eq_ignore_ascii_case("All extended rights") || full_control {
            None
        } else {
            Some(ad_wire::rights::Right::parse(&a.right).ok_or_else(|| RunError(format!("no right named {:?}", a.right)))?)
        };
        if allow && a.trustee.is_none() {
            return Err(RunError("an allow entry names its `trustee`".into()));
        }
        let dn = self.dn_of(&a.entry).await?;
        let well_known = |s: &str| ad_wire::sid::Sid::parse(s).expect("a well-known SID").to_bytes();
        let sids = match a.trustee.as_deref().map(|t| self.s(t)).transpose()? {
            None => vec![well_known("S-1-1-0"), well_known("S-1-5-10")],
            Some(t) if t.eq_ignore_ascii_case("Everyone") => vec![well_known("S-1-1-0")],
            Some(t) if t.eq_ignore_ascii_case("SELF") => vec![well_known("S-1-5-10")],
            Some(t) => {
                let tdn = self.dn_of(&t).await?;
                let sid = self.read_binary(&tdn, "objectSid", vec![]).await?.0;
                vec![sid.ok_or_else(|| RunError(format!("{tdn} has no objectSid")))?]
            }
        };
        let sd_flags = || ldap3::controls::RawControl {
            ctype: "1.2.840.113556.1.4.801".into(),
            crit: true,
            val: Some(vec![0x30, 0x03, 0x02, 0x01, 0x04]),
        };
        let (sd, leaf) = self.read_binary(&dn, "nTSecurityDescriptor", vec![sd_flags()]).await?;
        let sd = sd.ok_or_else(|| RunError(format!("{dn}: no nTSecurityDescriptor was returned")))?;
        let sd = SecurityDescriptor::parse(&sd).map_err(|_| RunError(format!("{dn}: a security descriptor the runner cannot read")))?;
        let applies = a.applies_to.unwrap_or(if leaf || right.is_some_and(|r| r.on_the_domain()) {
            AppliesTo::ThisObject
        } else {
            AppliesTo::DescendantUsers
        });
        let reach = match applies {
            AppliesTo::ThisObject => security::AppliesTo::ThisObject,
            AppliesTo::ThisObjectAndDescendants => security::AppliesTo::ThisObjectAndDescendants,
            AppliesTo::Descendants => security::AppliesTo::Descendants,
            AppliesTo::DescendantUsers => security::AppliesTo::DescendantUsers,
            AppliesTo::DescendantComputers => security::AppliesTo::DescendantComputers,
        };
        let ace =
            |sid| if full_control { security::full_control(allow, sid, reach) } else { security::ace_applying(allow, right, sid, reach) };
        let aces: Vec<security::Ace> = sids.into_iter().map(ace).collect();
        let mut dacl = sd.dacl.unwrap_or_default();
        dacl.retain(|x| !aces.contains(x));
        if add {
            // canonical order: explicit denies first, then explicit allows, then what is inherited
            let at = if allow { dacl.iter().position(|x| x.flags() & security::INHERITED != 0).unwrap_or(dacl.len()) } else { 0 };
            dacl.splice(at..at, aces);
        }
        let new = SecurityDescriptor { dacl: Some(dacl), dacl_control: sd.dacl_control, ..Default::default() }.to_bytes();
        let mut l = match self.bound(None, None, Via::Ldaps).await? {
            Ok(l) => l,
            Err(o) => return Ok(o),
        };
        let what = match (allow, add) {
            (false, true) => "deny",
            (false, false) => "no deny",
            (true, true) => "allow",
            (true, false) => "no allow",
        };
        let right = right.map_or(if full_control { "Full control" } else { "All extended rights" }.to_string(), |r| r.to_string());
        let applies = format!("{applies:?}");
        self.transcript
            .request(self.step, &format!("modify {dn}: replace nTSecurityDescriptor ({what} of {right}, {applies}) [SD flags: DACL]"));
        let m = vec![Mod::Replace(b"nTSecurityDescriptor".to_vec(), HashSet::from([new]))];
        let r = l.with_controls(vec![sd_flags()]).modify(&dn, m).await?;
        self.transcript.response(self.step, &ldap_line(r.rc, &r.text));
        let _ = l.unbind().await;
        Ok(Observed::ldap(r.rc, &r.text))
    }

    /// ADUC's "Disable inheritance" / "Enable inheritance": the object's DACL written back with
    /// SE_DACL_PROTECTED set (and the inherited entries dropped) or cleared.
    async fn set_inheritance(&mut self, a: &crate::model::InheritanceArg) -> Result<Observed, RunError> {
        use ad_wire::security::{self, SecurityDescriptor};
        let dn = self.dn_of(&a.entry).await?;
        let sd_flags = ldap_dial::sd_flags_dacl;
        let (sd, _) = self.read_binary(&dn, "nTSecurityDescriptor", vec![sd_flags()]).await?;
        let sd = sd.ok_or_else(|| RunError(format!("{dn}: no nTSecurityDescriptor was returned")))?;
        let sd = SecurityDescriptor::parse(&sd).map_err(|_| RunError(format!("{dn}: a security descriptor the runner cannot read")))?;
        let mut dacl = sd.dacl.unwrap_or_default();
        let control = if a.inherit {
            sd.dacl_control & !security::SE_DACL_PROTECTED
        } else {
            dacl.retain(|x| x.flags() & security::INHERITED == 0);
            sd.dacl_control | security::SE_DACL_PROTECTED
        };
        let new = SecurityDescriptor { dacl: Some(dacl), dacl_control: control, ..Default::default() }.to_bytes();
        let mut l = match self.bound(None, None, Via::Ldaps).await? {
            Ok(l) => l,
            Err(o) => return Ok(o),
        };
        let what = if a.inherit { "enable inheritance" } else { "disable inheritance, inherited entries removed" };
        self.transcript.request(self.step, &format!("modify {dn}: replace nTSecurityDescriptor ({what}) [SD flags: DACL]"));
        let m = vec![Mod::Replace(b"nTSecurityDescriptor".to_vec(), HashSet::from([new]))];
        let r = l.with_controls(vec![sd_flags()]).modify(&dn, m).await?;
        self.transcript.response(self.step, &ldap_line(r.rc, &r.text));
        let _ = l.unbind().await;
        Ok(Observed::ldap(r.rc, &r.text))
    }

    /// The first value of a binary attribute of one entry, read as the administrator, and
    /// whether the entry is a user.
    async fn read_binary(
        &mut self,
        dn: &str,
        attr: &str,
        controls: Vec<ldap3::controls::RawControl>,
    ) -> Result<(Option<Vec<u8>>, bool), RunError> {
        let mut l = self.connect(Via::Ldaps).await?;
        let a = self.target.info.adds.clone();
        l.simple_bind(&a.admin_dn, &a.admin_password).await?.success()?;
        let (found, _) =
            l.with_controls(controls).search(dn, LdapScope::Base, "(objectClass=*)", vec![attr, "objectClass"]).await?.success()?;
        let _ = l.unbind().await;
        let Some(e) = found.into_iter().next().map(SearchEntry::construct) else { return Ok((None, false)) };
        let user = e.attrs.get("objectClass").is_some_and(|c| c.iter().any(|x| x.eq_ignore_ascii_case("user")));
        // (a value that happens to be valid UTF-8 comes back among the text attributes)
        let text = e.attrs.get(attr).and_then(|v| v.first()).map(|v| v.as_bytes().to_vec());
        Ok((e.bin_attrs.get(attr).and_then(|v| v.first().cloned()).or(text), user))
    }

    // ----- the steps -----

    async fn exec(&mut self, action: &Action) -> Result<Observed, RunError> {
        match action {
            Action::SsprStart(a) => {
                let user = self.s(&a.user)?;
                self.sspr_start(&user).await
            }
            Action::SsprVerify(a) => self.sspr_verify(&a.method, a.code.as_deref()).await,
            Action::SsprSendCode(a) => self.sspr_send_code(&a.method).await,
            Action::SsprEnterCode(a) => self.sspr_enter_code(&a.method, a.code.as_deref()).await,
            Action::SsprReset(a) => {
                let password = self.s(&a.new_password)?;
                self.transcript.secret(&password);
                if let Some(u) = &a.user {
                    let u = self.s(u)?;
                    let o = self.sspr_through_gates(&u).await?;
                    if !o.ok {
                        return Ok(o);
                    }
                }
                let flow = self.flow.as_ref().ok_or_else(|| RunError("no SSPR flow: start one (sspr.start) or give `user`".into()))?;
                let (id, user) = (flow.id.clone(), flow.user.clone());
                let o = self.call("POST", &format!("/lab/sspr/flows/{id}/reset"), None, Some(json!({ "newPassword": password }))).await?;
                if o.ok {
                    self.learn(&user, &password);
                    self.flow = None;
                }
                Ok(o)
            }
            Action::SsprUnlock(a) => {
                if let Some(u) = &a.user {
                    let u = self.s(u)?;
                    let o = self.sspr_through_gates(&u).await?;
                    if !o.ok {
                        return Ok(o);
                    }
                }
                let id =
                    self.flow.as_ref().map(|f| f.id.clone()).ok_or_else(|| RunError("no SSPR flow: start one or give `user`".into()))?;
                let o = self.call("POST", &format!("/lab/sspr/flows/{id}/unlock"), None, None).await?;
                if o.ok {
                    self.flow = None;
                }
                Ok(o)
            }
            Action::UserSignIn(a) => {
                let (user, password) = (self.s(&a.user)?, self.s(&a.password)?);
                self.transcript.secret(&password);
                Ok(self.token(&user, &password).await?.0)
            }
            Action::UserSignInInteractive(a) => self.sign_in_interactive(a).await,
            Action::UserSignOut(_) => self.sign_out().await,
            Action::UserDeviceCode(a) => self.device_code(a).await,
            Action::UserChangePassword(a) => {
                let (user, current, new) = (self.s(&a.user)?, self.s(&a.current)?, self.s(&a.new)?);
                self.transcript.secret(&current);
                self.transcript.secret(&new);
                let o = match a.via {
                    ChangeVia::Graph => {
                        let (signed, token) = self.token(&user, &current).await?;
                        let Some(token) = token else { return Ok(signed) };
                        let body = json!({ "currentPassword": current, "newPassword": new });
                        self.call("POST", "/v1.0/me/changePassword", Some(&token), Some(body)).await?
                    }
                    ChangeVia::SignIn => {
                        let body = json!({ "userPrincipalName": user, "currentPassword": current, "newPassword": new });
                        self.call("POST", "/lab/signIn/changePassword", None, Some(body)).await?
                    }
                };
                if o.ok {
                    self.learn(&user, &new);
                }
                Ok(o)
            }
            Action::AdminReset(a) => self.admin_reset(a).await,
            Action::AdminSetRole(a) => {
                let token = self.admin_token(None, None).await?;
                let user = self.s(&a.user)?;
                let id = self.user_id(&token, &user).await?;
                let role = tenant::roles::Role::parse(&a.role).ok_or_else(|| RunError(format!("no directory role named {:?}", a.role)))?;
                let body = json!({ "principalId": id, "roleDefinitionId": role.template_id(), "directoryScopeId": "/" });
                self.call("POST", "/v1.0/roleManagement/directory/roleAssignments", Some(&token), Some(body)).await
            }
            Action::AdminSetSspr(a) => self.set_sspr(a).await,
            Action::AdminSetWriteback(a) => self.set_writeback(a).await,
            Action::AdminSetRisk(a) => {
                let token = self.admin_token(None, None).await?;
                let user = self.s(&a.user)?;
                self.call(
                    "PATCH",
                    &format!("/lab/identityProtection/riskyUsers/{user}"),
                    Some(&token),
                    Some(json!({ "riskLevel": a.level })),
                )
                .await
            }
            Action::AdminSetRiskPolicy(a) => self.set_risk_policy(a).await,
            Action::AdminSetPasswordRules(a) => self.set_password_rules(a).await,
            Action::AdminSetLicenses(a) => {
                let token = self.admin_token(None, None).await?;
                let user = self.s(&a.user)?;
                let sku = |n: &String| match n.to_ascii_uppercase().as_str() {
                    "P1" => Ok(tenant::directory::SKU_ENTRA_ID_P1.to_string()),
                    "P2" => Ok(tenant::directory::SKU_ENTRA_ID_P2.to_string()),
                    other => Err(RunError(format!("unknown licence {other} (P1, P2)"))),
                };
                let add: Vec<Value> =
                    a.add.iter().map(|n| sku(n).map(|s| json!({ "skuId": s, "disabledPlans": [] }))).collect::<Result<_, _>>()?;
                let remove: Vec<String> = a.remove.iter().map(sku).collect::<Result<_, _>>()?;
                let body = json!({ "addLicenses": add, "removeLicenses": remove });
                self.call("POST", &format!("/v1.0/users/{user}/assignLicense"), Some(&token), Some(body)).await
            }
            Action::AdminAddMember(a) => {
                let token = self.admin_token(None, None).await?;
                let user = self.s(&a.user)?;
                let (group, member) = (self.group_id(&token, &a.group).await?, self.user_id(&token, &user).await?);
                let body = json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{member}") });
                self.call("POST", &format!("/v1.0/groups/{group}/members/$ref"), Some(&token), Some(body)).await
            }
            Action::AdminGraph(a) => {
                let token = self.admin_token(a.actor.as_deref(), a.password.as_deref()).await?;
                let path = self.s(&a.path)?;
                let payload = match (&a.body, &a.form) {
                    (Some(_), Some(_)) => return Err(RunError("admin.graph takes a `body` or a `form`, not both".into())),
                    (Some(b), None) => Some(Payload::Json(serde_json::from_str(&self.s(&b.to_string())?)?)),
                    (None, Some(f)) => {
                        Some(Payload::Form(f.iter().map(|(k, v)| Ok((k.clone(), self.s(v)?))).collect::<Result<_, RunError>>()?))
                    }
                    (None, None) => None,
                };
                for (k, v) in a.headers.iter().flatten() {
                    self.next_headers.push((k.clone(), self.s(v)?));
                }
                self.call_with(&a.method.to_ascii_uppercase(), &path, Some(&token), payload).await
            }
            Action::LdapBind(a) => {
                let (user, password) = (self.s(&a.user)?, self.s(&a.password)?);
                self.transcript.secret(&password);
                let mut l = self.connect(a.via).await?;
                self.transcript.request(self.step, &format!("{} bind {user} {}", Self::via_name(a.via), crate::transcript::REDACTED));
                let r = l.simple_bind(&user, &password).await?;
                self.transcript.response(self.step, &ldap_line(r.rc, &r.text));
                let _ = l.unbind().await;
                Ok(Observed::ldap(r.rc, &r.text))
            }
            Action::LdapSearch(a) => {
                let mut l = match self.bound(a.actor.as_deref(), a.password.as_deref(), a.via).await? {
                    Ok(l) => l,
                    Err(o) => return Ok(o),
                };
                let base = match &a.base {
                    Some(b) => self.s(b)?,
                    None => self.target.info.adds.base_dn.clone(),
                };
                let filter = self.s(a.filter.as_deref().unwrap_or("(objectClass=*)"))?;
                let scope = match a.scope.unwrap_or(Scope::Sub) {
                    Scope::Base => LdapScope::Base,
                    Scope::One => LdapScope::OneLevel,
                    Scope::Sub => LdapScope::Subtree,
                };
                let attrs: Vec<&str> = if a.attrs.is_empty() { vec!["1.1"] } else { a.attrs.iter().map(String::as_str).collect() };
                self.transcript.request(self.step, &format!("search {base} {scope:?} {filter} {attrs:?}"));
                let res = l.search(&base, scope, &filter, attrs).await?;
                let mut entries = vec![];
                for e in &res.0 {
                    let e = SearchEntry::construct(e.clone());
                    let mut m: serde_json::Map<String, Value> = e.attrs.into_iter().map(|(k, v)| (k, json!(v))).collect();
                    // binary values (objectGUID, mS-DS-ConsistencyGuid) as LDIF shows them:
                    // base64, which `base64:` values in ldap.add and ldap.modify take back
                    for (k, vs) in e.bin_attrs {
                        let vs: Vec<String> = vs.iter().map(|v| base64::engine::general_purpose::STANDARD.encode(v)).collect();
                        m.insert(k, json!(vs));
                    }
                    m.insert("dn".into(), json!(e.dn));
                    entries.push(Value::Object(m));
                }
                let r = &res.1;
                self.transcript
                    .response(self.step, &format!("{} entries, {} references; {}", entries.len(), r.refs.len(), ldap_line(r.rc, &r.text)));
                let _ = l.unbind().await;
                // continuation references (a search at a domain's root meets the other NCs)
                self.last_body = json!({ "entries": entries, "references": r.refs });
                let mut o = Observed::ldap(r.rc, &r.text);
                o.count = Some(entries.len());
                o.answer = Some(self.last_body.clone());
                Ok(o)
            }
            Action::LdapCompare(a) => {
                let dn = self.dn_of(&a.entry).await?;
                let mut l = match self.bound(a.actor.as_deref(), a.password.as_deref(), a.via).await? {
                    Ok(l) => l,
                    Err(o) => return Ok(o),
                };
                let value = self.s(&a.value)?;
                self.transcript.request(self.step, &format!("compare {dn} {}={value}", a.attr));
                let r = l.compare(&dn, &a.attr, value.as_str()).await?.0;
                self.transcript.response(self.step, &ldap_line(r.rc, &r.text));
                let _ = l.unbind().await;
                let mut o = Observed::ldap(r.rc, &r.text);
                o.compare = match r.rc {
                    6 => Some(true),
                    5 => Some(false),
                    _ => None,
                };
                Ok(o)
            }
            Action::LdapModify(a) => {
                let dn = self.dn_of(&a.entry).await?;
                let mut mods = vec![];
                let mut shown = vec![];
                for c in &a.changes {
                    let values: HashSet<Vec<u8>> = c.values.iter().map(|v| self.value(&c.attr, v)).collect::<Result<_, _>>()?;
                    let attr = c.attr.clone().into_bytes();
                    shown.push(format!("{} {} {:?}", c.op, c.attr, c.values));
                    mods.push(match c.op.as_str() {
                        "add" => Mod::Add(attr, values),
                        "delete" => Mod::Delete(attr, values),
                        "replace" => Mod::Replace(attr, values),
                        "increment" => Mod::Increment(attr, c.values.first().cloned().unwrap_or_default().into_bytes()),
                        other => return Err(RunError(format!("unknown modify op {other} (add, delete, replace, increment)"))),
                    });
                }
                let mut l = match self.bound(a.actor.as_deref(), a.password.as_deref(), a.via).await? {
                    Ok(l) => l,
                    Err(o) => return Ok(o),
                };
                self.ldap_modify(&mut l, &dn, mods, &shown.join("; "), false).await
            }
            Action::LdapAdd(a) => {
                let dn = self.s(&a.dn)?;
                let mut attrs = vec![];
                for (k, v) in &a.attrs {
                    let vals: HashSet<Vec<u8>> = v.values().iter().map(|x| self.value(k, x)).collect::<Result<_, _>>()?;
                    attrs.push((k.clone().into_bytes(), vals));
                }
                let mut l = match self.bound(a.actor.as_deref(), a.password.as_deref(), a.via).await? {
                    Ok(l) => l,
                    Err(o) => return Ok(o),
                };
                self.transcript.request(self.step, &format!("add {dn} {:?}", a.attrs.keys().collect::<Vec<_>>()));
                let r = l.add(&dn, attrs).await?;
                self.transcript.response(self.step, &ldap_line(r.rc, &r.text));
                let _ = l.unbind().await;
                Ok(Observed::ldap(r.rc, &r.text))
            }
            Action::LdapDelete(a) => {
                let dn = self.dn_of(&a.entry).await?;
                let mut l = match self.bound(a.actor.as_deref(), a.password.as_deref(), a.via).await? {
                    Ok(l) => l,
                    Err(o) => return Ok(o),
                };
                self.transcript.request(self.step, &format!("delete {dn}"));
                let r = l.delete(&dn).await?;
                self.transcript.response(self.step, &ldap_line(r.rc, &r.text));
                let _ = l.unbind().await;
                Ok(Observed::ldap(r.rc, &r.text))
            }
            Action::LdapMove(a) => {
                let dn = self.dn_of(&a.entry).await?;
                let (own_rdn, parent) = dn.split_once(',').unwrap_or((dn.as_str(), ""));
                let to = match &a.to {
                    Some(t) => self.s(t)?,
                    None => parent.to_string(),
                };
                let rdn = match &a.rdn {
                    Some(r) => self.s(r)?,
                    None => own_rdn.to_string(),
                };
                if a.to.is_none() && a.rdn.is_none() {
                    return Err(RunError("ldap.move needs `to` (a new parent), `rdn` (a new name) or both".into()));
                }
                let mut l = match self.bound(a.actor.as_deref(), a.password.as_deref(), a.via).await? {
                    Ok(l) => l,
                    Err(o) => return Ok(o),
                };
                self.transcript.request(self.step, &format!("modifyDN {dn} -> {rdn},{to}"));
                let r = l.modifydn(&dn, &rdn, true, Some(&to)).await?;
                self.transcript.response(self.step, &ldap_line(r.rc, &r.text));
                let _ = l.unbind().await;
                Ok(Observed::ldap(r.rc, &r.text))
            }
            Action::LdapChange(a) => {
                let (user, old, new) = (self.s(&a.user)?, self.s(&a.old)?, self.s(&a.new)?);
                self.transcript.secret(&old);
                self.transcript.secret(&new);
                let dn = self.dn_of(&user).await?;
                let bind_with = a.password.clone().unwrap_or_else(|| old.clone());
                let mut l = match self.bound(Some(&user), Some(&bind_with), a.via).await? {
                    Ok(l) => l,
                    Err(o) => return Ok(o),
                };
                let mods = vec![
                    Mod::Delete(b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(&old)])),
                    Mod::Add(b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(&new)])),
                ];
                let o = self.ldap_modify(&mut l, &dn, mods, "delete unicodePwd ***; add unicodePwd ***", false).await?;
                if o.ok {
                    self.learn(&user, &new);
                }
                Ok(o)
            }
            Action::LdapReset(a) => {
                let (user, new) = (self.s(&a.user)?, self.s(&a.new_password)?);
                self.transcript.secret(&new);
                let dn = self.dn_of(&user).await?;
                let mut l = match self.bound(a.actor.as_deref(), a.password.as_deref(), a.via).await? {
                    Ok(l) => l,
                    Err(o) => return Ok(o),
                };
                let mods = vec![Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(&new)]))];
                let o = self.ldap_modify(&mut l, &dn, mods, "replace unicodePwd ***", a.policy_hints).await?;
                if o.ok {
                    self.learn(&user, &new);
                }
                Ok(o)
            }
            Action::LdapUnlock(a) => {
                let dn = self.dn_of(&a.user).await?;
                let mut l = match self.bound(a.actor.as_deref(), a.password.as_deref(), a.via).await? {
                    Ok(l) => l,
                    Err(o) => return Ok(o),
                };
                let mods = vec![Mod::Replace(b"lockoutTime".to_vec(), HashSet::from([b"0".to_vec()]))];
                self.ldap_modify(&mut l, &dn, mods, "replace lockoutTime 0", false).await
            }
            Action::ClockAdvance(d) => {
                clock::parse_duration(d).map_err(RunError)?;
                self.transcript.request(self.step, &format!("advance the lab clock by {d}"));
                let o = self.lab_call("POST", "/lab/clock", Some(json!({ "advance": d }))).await?;
                // tokens live on the lab clock: the next control call signs in again
                self.lab_token = None;
                if o.ok && self.target.info.adds.domains.iter().any(|d| d.dcs.len() > 1) {
                    // the DCs' replication looks at the clock first (the agents then read DCs
                    // that have replicated what fell due)
                    let r = self.lab_call("POST", "/lab/adds/replication", Some(json!({ "action": "run-due" }))).await?;
                    if !r.ok {
                        return Ok(r);
                    }
                }
                if !o.ok || self.target.info.engine.is_none() {
                    return Ok(o);
                }
                // each agent's scheduler looks at the clock: what fell due runs now (Connect's
                // engine, and Cloud Sync's agent when it runs beside it)
                let mut prefixes = vec!["/lab/engine"];
                if self.target.info.cloud_sync.as_ref().is_some_and(|c| self.target.info.engine.as_ref().is_none_or(|e| e.id != c.id)) {
                    prefixes.push("/lab/cloudsync");
                }
                let mut ok = true;
                // (two agents' cycles count as one report: `expect.sync` sees them added up)
                let mut cycles: Option<relay::SyncReport> = None;
                for prefix in prefixes {
                    let due = self.lab_call("POST", &format!("{prefix}/control"), Some(json!({ "action": "run-due" }))).await?;
                    ok &= due.ok;
                    if let Some((200, body)) = &due.http
                        && body["sync"].is_object()
                    {
                        let report: relay::SyncReport = serde_json::from_value(body["sync"].clone())?;
                        self.transcript.response(self.step, &format!("scheduled sync: {}", report_line(&report)));
                        cycles = Some(match cycles {
                            None => report,
                            Some(mut all) => {
                                all.added += report.added;
                                all.updated += report.updated;
                                all.deleted += report.deleted;
                                all.passwords += report.passwords;
                                all.errors.extend(report.errors);
                                all
                            }
                        });
                    }
                }
                if let Some(all) = cycles {
                    self.last_sync = Some(serde_json::to_value(all)?);
                }
                Ok(Observed { ok, ..Default::default() })
            }
            Action::EngineStop(_) => self.engine_control(json!({ "action": "stop" })).await,
            Action::EngineStart(_) => self.engine_control(json!({ "action": "start" })).await,
            Action::EngineDelay(d) => self.engine_control(json!({ "action": "delay", "ms": d.ms })).await,
            Action::EngineOnboard(_) => {
                let t = self.target.info.tenant.clone();
                self.engine_control(json!({ "action": "onboard", "userPrincipalName": t.admin_upn, "password": t.admin_password })).await
            }
            Action::EngineDisableWriteback(_) => {
                let t = self.target.info.tenant.clone();
                let body = json!({ "action": "disable-writeback", "userPrincipalName": t.admin_upn, "password": t.admin_password });
                self.engine_control(body).await
            }
            Action::EngineAddDirectory(name) => self.lab_call("POST", "/lab/engine/directories", Some(json!({ "name": name }))).await,
            Action::EngineRemoveDirectory(name) => self.lab_call("DELETE", &format!("/lab/engine/directories/{name}"), None).await,
            Action::EngineConnectorPassword(p) => {
                let path = format!("/lab/engine/directories/{}/password", p.directory);
                self.lab_call("PUT", &path, Some(json!({ "password": p.password }))).await
            }
            Action::EngineOffboard(_) => {
                let t = self.target.info.tenant.clone();
                self.engine_control(json!({ "action": "offboard", "userPrincipalName": t.admin_upn, "password": t.admin_password })).await
            }
            Action::EngineRevokeRight(r) => {
                let body = json!({ "action": "revoke", "right": r.right, "trustee": self.agent_account() });
                self.lab_call("POST", "/lab/adds/rights", Some(body)).await
            }
            Action::SyncRun(a) => {
                let token = self.admin_token(None, None).await?;
                let policy = match a.policy_type {
                    Some(PolicyType::Initial) => "Initial",
                    _ => "Delta",
                };
                let o = self.call("POST", "/lab/sync", Some(&token), Some(json!({ "policyType": policy }))).await?;
                if let Some((200, body)) = &o.http {
                    self.last_sync = Some(body.clone());
                }
                Ok(o)
            }
            Action::ExpectSync(a) => {
                let Some(r) = self.last_sync.clone() else { return Err(RunError("no sync cycle has run yet".into())) };
                let mut wrong = vec![];
                for (name, want) in [("added", a.added), ("updated", a.updated), ("deleted", a.deleted), ("passwords", a.passwords)] {
                    if let Some(w) = want
                        && r[name].as_u64() != Some(w as u64)
                    {
                        wrong.push(format!("{name} {} (expected {w})", r[name]));
                    }
                }
                let errors = r["errors"].as_array().cloned().unwrap_or_default();
                if let Some(n) = a.errors
                    && errors.len() != n
                {
                    wrong.push(format!("{} errors (expected {n}): {}", errors.len(), Value::Array(errors.clone())));
                }
                if let Some(code) = &a.error
                    && !errors.iter().any(|e| e["code"].as_str() == Some(code.as_str()))
                {
                    wrong.push(format!("no {code} error among {}", Value::Array(errors.clone())));
                }
                Ok(Observed::check((!wrong.is_empty()).then(|| wrong.join("; "))))
            }
            Action::AddsFault(_) if self.target.external_adds => {
                self.transcript.response(self.step, "(the external directory is in that state already)");
                Ok(Observed { ok: true, ..Default::default() })
            }
            Action::AddsFault(f) => {
                let mut body = json!({});
                if let Some(state) = f.state {
                    body["state"] = json!(match state {
                        DcState::Up => "up",
                        DcState::Down => "down",
                        DcState::UntrustedCertificate => "untrusted-certificate",
                    });
                }
                if let Some(on) = f.policy_hints {
                    body["policyHints"] = json!(on);
                }
                if let Some(ms) = f.search_delay_ms {
                    body["searchDelayMs"] = json!(ms);
                }
                if let Some(dc) = &f.dc {
                    body["dc"] = json!(dc);
                }
                self.lab_call("POST", "/lab/adds/fault", Some(body)).await
            }
            Action::AddsUseDc(name) => {
                let all: Vec<&labkit::DcInfo> = self.target.info.adds.domains.iter().flat_map(|d| &d.dcs).collect();
                if !all.iter().any(|d| d.name.eq_ignore_ascii_case(name)) {
                    let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
                    return Err(RunError(format!(
                        "no domain controller {name} in this lab ({}); start it with `given: {{ dcs: N }}`",
                        names.join(", ")
                    )));
                }
                self.transcript.request(self.step, &format!("Change Domain Controller: {name}"));
                self.dc = Some(name.clone());
                Ok(Observed { ok: true, ..Default::default() })
            }
            Action::AddsReplicate(_) => self.lab_call("POST", "/lab/adds/replication", Some(json!({ "action": "now" }))).await,
            Action::AddsReplication(r) => {
                let mut body = json!({});
                if let Some(p) = r.paused {
                    body["paused"] = json!(p);
                }
                if let Some(i) = &r.interval {
                    let d = clock::parse_duration(i).map_err(RunError)?;
                    body["intervalSeconds"] = json!(d.as_secs());
                }
                self.lab_call("POST", "/lab/adds/replication", Some(body)).await
            }
            Action::EnginePreferredDcs(p) => {
                let body = json!({ "preferred": p.preferred, "onlyPreferred": p.only_preferred });
                self.lab_call("PUT", "/lab/engine/domain-controllers", Some(body)).await
            }
            Action::EngineGrantRight(r) => {
                let body = json!({ "action": "grant", "right": r.right, "trustee": self.agent_account() });
                self.lab_call("POST", "/lab/adds/rights", Some(body)).await
            }
            Action::AddsDeny(a) | Action::AddsRemoveDeny(a) => self.write_ace(a, false, matches!(action, Action::AddsDeny(_))).await,
            Action::AddsAllow(a) | Action::AddsRemoveAllow(a) => self.write_ace(a, true, matches!(action, Action::AddsAllow(_))).await,
            Action::AddsInheritance(a) => self.set_inheritance(a).await,
            Action::ConnectChangeSignIn(a) => {
                let t = self.target.info.tenant.clone();
                let user = a.user.clone().unwrap_or(t.admin_upn);
                let password = match &a.password {
                    Some(p) => p.clone(),
                    None if a.user.is_none() => t.admin_password,
                    None => self.password_for(&user, None)?,
                };
                self.change_sign_in(a.method, &user, &password).await
            }
            Action::PtaFault(a) => {
                let mut body = json!({ "agent": a.agent.clone().unwrap_or_else(|| "all".into()) });
                for (k, v) in [("stopped", a.stopped), ("wrongKey", a.wrong_key), ("directoryUnreachable", a.directory_unreachable)] {
                    if let Some(v) = v {
                        body[k] = json!(v);
                    }
                }
                if let Some(ms) = a.delay_ms {
                    body["delayMs"] = json!(ms);
                }
                self.lab_call("POST", "/lab/engine/pta/faults", Some(body)).await
            }
            Action::EngineFault(a) => {
                let mut body = json!({ "action": "fault" });
                if let Some(b) = a.unsealed_ldap {
                    body["unsealedLdap"] = json!(b);
                }
                if let Some(b) = a.key_mismatch {
                    body["keyMismatch"] = json!(b);
                }
                self.engine_control(body).await
            }
            Action::TenantFault(a) => {
                self.lab_call("PATCH", "/lab/writeback/settings", Some(json!({ "cloudWriteFails": a.cloud_write_fails }))).await
            }
            Action::ExpectEvents(a) => {
                let Some(first) = a.sequence.first() else { return Err(RunError("`sequence` needs at least one event ID".into())) };
                if self.target.info.engine.is_none() {
                    return Err(RunError("this lab runs no writeback engine".into()));
                }
                // (as for expect.event: the engine may still be finishing, look again up to 5 s)
                let until = Instant::now() + Duration::from_secs(5);
                loop {
                    let events = self.engine_events().await?;
                    let events = events.as_array().cloned().unwrap_or_default();
                    let tracking = events
                        .iter()
                        .rev()
                        .find(|e| e["id"].as_u64() == Some(u64::from(*first)) && e["trackingId"].is_string())
                        .map(|e| e["trackingId"].clone());
                    let logged: Vec<u32> = events
                        .iter()
                        .filter(|e| tracking.is_some() && Some(&e["trackingId"]) == tracking.as_ref())
                        .filter_map(|e| e["id"].as_u64().and_then(|i| u32::try_from(i).ok()))
                        .collect();
                    let mut rest = logged.iter();
                    let ok = tracking.is_some() && a.sequence.iter().all(|want| rest.any(|got| got == want));
                    if ok || Instant::now() > until {
                        let names: Vec<String> = logged.iter().map(|i| format!("{i} {}", writeback::events::name(*i))).collect();
                        break Ok(Observed::check((!ok).then(|| match &tracking {
                            None => format!("no operation logged {first} ({})", writeback::events::name(*first)),
                            Some(t) => format!("operation {t} logged [{}]", names.join(", ")),
                        })));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Action::ExpectEvent(a) => {
                // The engine may still be working on a request the tenant gave up on: look
                // again until the event shows (at most 5 s), never a fixed wait. An absence
                // (`count: 0`) holds only once nothing is in flight: judged before that, it
                // would pass on a first look at a log the engine is about to write.
                let until = Instant::now() + Duration::from_secs(5);
                if a.count == Some(0) && self.target.info.engine.is_some() {
                    while self.lab_get("/lab/engine").await?["inFlight"].as_u64() != Some(0) && Instant::now() < until {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                let (ok, found, events) = loop {
                    if self.target.info.engine.is_none() {
                        return Err(RunError("this lab runs no writeback engine".into()));
                    }
                    let events = self.engine_events().await?;
                    let found = events
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|e| e["id"].as_u64() == Some(u64::from(a.id)))
                        .filter(|e| a.message.as_ref().is_none_or(|m| e["message"].as_str().is_some_and(|x| x.contains(m.as_str()))))
                        .count();
                    let ok = match a.count {
                        Some(n) => found == n,
                        None => found > 0,
                    };
                    if ok || Instant::now() > until {
                        break (ok, found, events);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                };
                let want = a.count.map(|n| format!("{n} times")).unwrap_or("at least once".into());
                // what the log does hold, so that a failure says what happened instead
                let logged: Vec<String> = events
                    .as_array()
                    .into_iter()
                    .flatten()
                    .rev()
                    .take(6)
                    .map(|e| format!("{} \"{}\"", e["id"], e["message"].as_str().unwrap_or_default()))
                    .collect();
                Ok(Observed::check((!ok).then(|| {
                    format!(
                        "event {} ({}) expected {want}, logged {found} times; latest events: [{}]",
                        a.id,
                        writeback::events::name(a.id),
                        logged.join("; ")
                    )
                })))
            }
            Action::ExpectAudit(a) => self.expect_audit(a).await,
            Action::ExpectAgentTrace(a) => {
                if self.target.info.cloud_sync.is_none() {
                    return Err(RunError(
                        "this lab runs no Cloud Sync provisioning agent (`given: { agent: cloud-sync }` or `both`)".into(),
                    ));
                }
                // (as for expect.event: the agent may still be finishing, look again up to 5 s;
                // an absence only once nothing is in flight)
                let until = Instant::now() + Duration::from_secs(5);
                if a.count == Some(0) {
                    while self.lab_get("/lab/cloudsync").await?["inFlight"].as_u64() != Some(0) && Instant::now() < until {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                loop {
                    let lines = self.lab_get("/lab/cloudsync/agent-trace").await?["value"].take();
                    let lines = lines.as_array().cloned().unwrap_or_default();
                    let found = lines
                        .iter()
                        .filter(|l| a.component.as_ref().is_none_or(|c| l["component"].as_str() == Some(c.as_str())))
                        .filter(|l| l["message"].as_str().is_some_and(|m| m.contains(a.contains.as_str())))
                        .count();
                    let ok = match a.count {
                        Some(n) => found == n,
                        None => found > 0,
                    };
                    if ok || Instant::now() > until {
                        let latest: Vec<String> = lines
                            .iter()
                            .rev()
                            .take(6)
                            .map(|l| {
                                format!("{}: {}", l["component"].as_str().unwrap_or_default(), l["message"].as_str().unwrap_or_default())
                            })
                            .collect();
                        let want = a.count.map(|n| format!("{n} times")).unwrap_or("at least once".into());
                        break Ok(Observed::check((!ok).then(|| {
                            format!(
                                "a trace line containing {:?} expected {want}, found {found}; latest lines: [{}]",
                                a.contains,
                                latest.join("; ")
                            )
                        })));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Action::ExpectEntry(a) => self.expect_entry(a).await,
            Action::ExpectUser(a) => {
                let token = self.admin_token(None, None).await?;
                let user = self.s(&a.user)?;
                let select = a.props.keys().cloned().collect::<Vec<_>>().join(",");
                let o = self.call("GET", &format!("/v1.0/users/{user}?$select={select}"), Some(&token), None).await?;
                let Some((200, body)) = o.http.clone() else {
                    return Ok(Observed::check(Some(format!("no such cloud user: {}", o.describe()))));
                };
                let mut diffs = vec![];
                for (k, want) in &a.props {
                    // `${…}` in expected values, as everywhere else
                    let want: Value = serde_json::from_str(&self.s(&want.to_string())?)?;
                    if body.get(k.as_str()) != Some(&want) {
                        diffs.push(format!("{k}: expected {want}, found {}", body.get(k.as_str()).unwrap_or(&Value::Null)));
                    }
                }
                Ok(Observed::check((!diffs.is_empty()).then(|| diffs.join("; "))))
            }
            Action::ExpectOutbox(a) => {
                let to = self.s(&a.to)?;
                let o = self.lab_call("GET", &format!("/lab/outbox?to={to}"), None).await?;
                let list = o.http.map(|(_, b)| b["value"].as_array().cloned().unwrap_or_default()).unwrap_or_default();
                let mut diffs = vec![];
                if let Some(n) = a.count.filter(|n| *n != list.len()) {
                    diffs.push(format!("{n} messages to {to} expected, found {}", list.len()));
                }
                if let Some(s) = &a.subject {
                    let last = list.last().and_then(|m| m["subject"].as_str()).unwrap_or("");
                    if !last.contains(s.as_str()) {
                        diffs.push(format!("the newest subject {last:?} does not contain {s:?}"));
                    }
                }
                Ok(Observed::check((!diffs.is_empty()).then(|| diffs.join("; "))))
            }
            Action::ExpectRisk(a) => {
                let token = self.admin_token(None, None).await?;
                let user = self.s(&a.user)?;
                let id = self.user_id(&token, &user).await?;
                let o = self.call("GET", &format!("/v1.0/identityProtection/riskyUsers/{id}"), Some(&token), None).await?;
                let body = o.http.map(|(_, b)| b).unwrap_or(Value::Null);
                let diffs: Vec<String> = [("riskLevel", &a.level), ("riskState", &a.state), ("riskDetail", &a.detail)]
                    .into_iter()
                    .filter_map(|(k, want)| want.as_ref().map(|w| (k, w)))
                    .filter(|(k, w)| body[*k].as_str() != Some(w.as_str()))
                    .map(|(k, w)| format!("{k}: expected {w}, found {}", body[k]))
                    .collect();
                Ok(Observed::check((!diffs.is_empty()).then(|| diffs.join("; "))))
            }
        }
    }

    /// Connect's "Change user sign-in" task, as `user`.
    async fn change_sign_in(&mut self, method: SignInMethodArg, user: &str, password: &str) -> Result<Observed, RunError> {
        if self.target.info.engine.is_none() {
            return Err(RunError("this lab runs no writeback engine (Connect), which changes the sign-in method".into()));
        }
        let method = match method {
            SignInMethodArg::Pta => "pta",
            SignInMethodArg::Phs => "phs",
        };
        self.lab_call("POST", "/lab/engine/sign-in", Some(json!({ "method": method, "userPrincipalName": user, "password": password })))
            .await
    }

    async fn engine_control(&mut self, body: Value) -> Result<Observed, RunError> {
        if self.target.info.engine.is_none() {
            return Err(RunError("this lab runs no writeback engine".into()));
        }
        // (the control surface answers a stop once the relay link is gone, a start once it is
        // up again)
        self.lab_call("POST", "/lab/engine/control", Some(body)).await
    }

    async fn sspr_start(&mut self, user: &str) -> Result<Observed, RunError> {
        let o = self.call("POST", "/lab/sspr/flows", None, Some(json!({ "userPrincipalName": user }))).await?;
        if let (true, Some((_, b))) = (o.ok, &o.http) {
            self.flow = Some(Flow {
                id: b["id"].as_str().unwrap_or_default().to_string(),
                user: user.to_string(),
                methods: b["methods"].as_array().into_iter().flatten().filter_map(|m| m["type"].as_str().map(str::to_string)).collect(),
                gates: b["gatesRequired"].as_u64().unwrap_or(1),
            });
        }
        Ok(o)
    }

    async fn sspr_verify(&mut self, method: &str, code: Option<&str>) -> Result<Observed, RunError> {
        let sent = self.sspr_send_code(method).await?;
        if !sent.ok {
            return Ok(sent);
        }
        self.sspr_enter_code(method, code).await
    }

    fn flow_id(&self) -> Result<String, RunError> {
        self.flow.as_ref().map(|f| f.id.clone()).ok_or_else(|| RunError("no SSPR flow: start one first (sspr.start)".into()))
    }

    async fn sspr_send_code(&mut self, method: &str) -> Result<Observed, RunError> {
        let id = self.flow_id()?;
        self.call("POST", &format!("/lab/sspr/flows/{id}/codes"), None, Some(json!({ "method": method }))).await
    }

    /// The code typed in: `code`, or the latest sent by `method` (from the lab outbox).
    async fn sspr_enter_code(&mut self, method: &str, code: Option<&str>) -> Result<Observed, RunError> {
        let id = self.flow_id()?;
        let code = match code {
            Some(c) => self.s(c)?,
            None => {
                let o = self.lab_call("GET", "/lab/outbox", None).await?;
                let list = o.http.map(|(_, b)| b["value"].as_array().cloned().unwrap_or_default()).unwrap_or_default();
                list.iter()
                    .rev()
                    .find(|m| m["channel"] == method && m["code"].is_string())
                    .and_then(|m| m["code"].as_str().map(str::to_string))
                    .ok_or_else(|| RunError(format!("no {method} code in the outbox")))?
            }
        };
        self.call("POST", &format!("/lab/sspr/flows/{id}/verify"), None, Some(json!({ "method": method, "code": code }))).await
    }

    /// Start, then pass as many gates as the flow needs with the user's methods in order.
    async fn sspr_through_gates(&mut self, user: &str) -> Result<Observed, RunError> {
        let o = self.sspr_start(user).await?;
        if !o.ok {
            return Ok(o);
        }
        let (methods, gates) = self.flow.as_ref().map(|f| (f.methods.clone(), f.gates)).unwrap_or_default();
        let mut last = o;
        for m in methods.iter().take(gates as usize) {
            last = self.sspr_verify(m, None).await?;
            if !last.ok {
                return Ok(last);
            }
        }
        Ok(last)
    }

    async fn admin_reset(&mut self, a: &AdminReset) -> Result<Observed, RunError> {
        let token = self.admin_token(a.actor.as_deref(), a.password.as_deref()).await?;
        let user = self.s(&a.user)?;
        let new = a.new_password.as_deref().map(|p| self.s(p)).transpose()?;
        if let Some(p) = &new {
            self.transcript.secret(p);
        }
        match a.via {
            ResetVia::PasswordProfile => {
                let p = new.clone().ok_or_else(|| RunError("a passwordProfile reset needs `new_password`".into()))?;
                let mut profile = json!({ "password": p });
                if let Some(f) = a.force_change {
                    profile["forceChangePasswordNextSignIn"] = json!(f);
                }
                let o =
                    self.call("PATCH", &format!("/v1.0/users/{user}"), Some(&token), Some(json!({ "passwordProfile": profile }))).await?;
                if o.ok {
                    self.learn(&user, &p);
                }
                Ok(o)
            }
            ResetVia::ResetPassword => {
                let id = self.user_id(&token, &user).await?;
                let body = new.as_ref().map(|p| json!({ "newPassword": p }));
                let path = format!("/v1.0/users/{id}/authentication/methods/{}/resetPassword", tenant::directory::PASSWORD_METHOD_ID);
                let o = self.call("POST", &path, Some(&token), body).await?;
                let Some((202, accepted)) = o.http.clone() else { return Ok(o) };
                if let Some(p) = accepted["newPassword"].as_str() {
                    self.transcript.secret(p);
                }
                let location = accepted["@location"].as_str().unwrap_or_default().to_string();
                let path = location.find("/v1.0/").map(|i| location[i..].to_string()).unwrap_or_default();
                let polled = self.call("GET", &path, Some(&token), None).await?;
                let op = polled.http.map(|(_, b)| b).unwrap_or(Value::Null);
                let status = op["status"].as_str().unwrap_or("unknown").to_string();
                let detail = op["statusDetail"].as_str().map(str::to_string);
                let ok = status == "succeeded";
                if ok {
                    let p = new.clone().or_else(|| accepted["newPassword"].as_str().map(str::to_string));
                    if let Some(p) = p {
                        self.learn(&user, &p);
                    }
                }
                // captures read the 202's body (a generated newPassword)
                self.last_body = accepted;
                Ok(Observed { ok, http: o.http, headers: o.headers, operation: Some((status, detail)), ..Default::default() })
            }
        }
    }

    async fn set_sspr(&mut self, a: &SetSspr) -> Result<Observed, RunError> {
        let token = self.admin_token(None, None).await?;
        let mut body = serde_json::Map::new();
        if let Some(e) = &a.enabled {
            let word = match e.to_ascii_lowercase().as_str() {
                "none" => "None",
                "selected" => "Selected",
                "all" => "All",
                other => return Err(RunError(format!("sspr enabled: {other}? (none, selected, all)"))),
            };
            body.insert("enabled".into(), json!(word));
            if word == "Selected" {
                let g = a.group.as_deref().ok_or_else(|| RunError("`selected` needs `group`".into()))?;
                body.insert("selectedGroupId".into(), json!(self.group_id(&token, g).await?));
            }
        }
        let pairs = [
            ("emailEnabled", a.email),
            ("mobilePhoneEnabled", a.mobile_phone),
            ("notifyUsersOnPasswordReset", a.notify_users),
            ("notifyAdminsOnAdminReset", a.notify_admins),
        ];
        for (k, v) in pairs {
            if let Some(v) = v {
                body.insert(k.into(), json!(v));
            }
        }
        if let Some(n) = a.methods_required {
            body.insert("methodsRequired".into(), json!(n));
        }
        self.call("PATCH", "/lab/sspr/policy", Some(&token), Some(Value::Object(body))).await
    }

    async fn set_writeback(&mut self, a: &SetWriteback) -> Result<Observed, RunError> {
        let token = self.admin_token(None, None).await?;
        let mut last = Observed { ok: true, ..Default::default() };
        let mut features = serde_json::Map::new();
        if let Some(on) = a.sync_side {
            features.insert("passwordWritebackEnabled".into(), json!(on));
        }
        if let Some(on) = a.force_change {
            features.insert("userForcePasswordChangeOnLogonEnabled".into(), json!(on));
        }
        if !features.is_empty() {
            let path = format!("/v1.0/directory/onPremisesSynchronization/{}", self.target.info.tenant.tenant_id);
            last = self.call("PATCH", &path, Some(&token), Some(json!({ "features": features }))).await?;
            if !last.ok {
                return Ok(last);
            }
        }
        if let Some(ms) = a.relay_timeout_ms {
            last = self.call("PATCH", "/lab/writeback/settings", Some(&token), Some(json!({ "timeoutMs": ms }))).await?;
            if !last.ok {
                return Ok(last);
            }
        }
        let mut body = serde_json::Map::new();
        for (k, v) in [
            ("writeBackPasswords", a.write_back_passwords),
            ("allowUnlockWithoutReset", a.allow_unlock),
            ("writeBackGraphChangePassword", a.graph_change_password),
            ("writeBackWithCloudSync", a.cloud_sync),
        ] {
            if let Some(v) = v {
                body.insert(k.into(), json!(v));
            }
        }
        if !body.is_empty() {
            last = self.call("PATCH", "/lab/sspr/onPremisesIntegration", Some(&token), Some(Value::Object(body))).await?;
        }
        Ok(last)
    }

    async fn set_risk_policy(&mut self, a: &SetRiskPolicy) -> Result<Observed, RunError> {
        let token = self.admin_token(None, None).await?;
        let mut body = serde_json::Map::new();
        if let Some(e) = a.enabled {
            body.insert("enabled".into(), json!(e));
        }
        if let Some(l) = &a.level {
            body.insert("level".into(), json!(l));
        }
        self.call("PATCH", "/lab/identityProtection/userRiskPolicy", Some(&token), Some(Value::Object(body))).await
    }

    async fn set_password_rules(&mut self, a: &SetPasswordRules) -> Result<Observed, RunError> {
        let token = self.admin_token(None, None).await?;
        let mut values = vec![json!({ "name": "BannedPasswordList", "value": a.banned.join("\t") })];
        if let Some(e) = a.enabled {
            values.push(json!({ "name": "EnableBannedPasswordCheck", "value": if e { "True" } else { "False" } }));
        }
        if let Some(n) = a.lockout_threshold {
            values.push(json!({ "name": "LockoutThreshold", "value": n.to_string() }));
        }
        if let Some(n) = a.lockout_seconds {
            values.push(json!({ "name": "LockoutDurationInSeconds", "value": n.to_string() }));
        }
        let existing = self.call("GET", "/v1.0/groupSettings", Some(&token), None).await?;
        let id = existing.http.and_then(|(_, b)| b["value"][0]["id"].as_str().map(str::to_string));
        match id {
            Some(id) => self.call("PATCH", &format!("/v1.0/groupSettings/{id}"), Some(&token), Some(json!({ "values": values }))).await,
            None => {
                let body = json!({ "templateId": tenant::settings::PASSWORD_RULE_SETTINGS_TEMPLATE.to_string(), "values": values });
                self.call("POST", "/v1.0/groupSettings", Some(&token), Some(body)).await
            }
        }
    }

    async fn expect_audit(&mut self, a: &ExpectAudit) -> Result<Observed, RunError> {
        let token = self.admin_token(None, None).await?;
        let path = format!("/v1.0/auditLogs/directoryAudits?$filter=activityDisplayName eq '{}'", a.activity);
        let o = self.call("GET", &path, Some(&token), None).await?;
        let list = o.http.map(|(_, b)| b["value"].as_array().cloned().unwrap_or_default()).unwrap_or_default();
        let user = a.user.as_deref().map(|u| self.s(u)).transpose()?;
        let entry = list.iter().find(|e| {
            user.as_ref().is_none_or(|u| e["targetResources"][0]["userPrincipalName"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(u)))
        });
        let Some(e) = entry else { return Ok(Observed::check(Some(format!("no audit entry \"{}\"", a.activity)))) };
        let mut diffs = vec![];
        if let Some(r) = a.result.as_ref().filter(|r| e["result"].as_str() != Some(r.as_str())) {
            diffs.push(format!("result: expected {r}, found {}", e["result"]));
        }
        if let Some(r) = a.reason.as_ref().filter(|r| e["resultReason"].as_str() != Some(r.as_str())) {
            diffs.push(format!("resultReason: expected {r:?}, found {}", e["resultReason"]));
        }
        for (key, want) in &a.details {
            let found =
                e["additionalDetails"].as_array().into_iter().flatten().find(|d| d["key"].as_str() == Some(key)).map(|d| &d["value"]);
            if found.and_then(Value::as_str) != Some(want.as_str()) {
                diffs.push(format!("additionalDetails {key}: expected {want:?}, found {}", found.unwrap_or(&Value::Null)));
            }
        }
        Ok(Observed::check((!diffs.is_empty()).then(|| diffs.join("; "))))
    }

    async fn expect_entry(&mut self, a: &ExpectEntry) -> Result<Observed, RunError> {
        let dn = self.dn_of(&a.entry).await?;
        let mut l = match self.bound(None, None, Via::Ldaps).await? {
            Ok(l) => l,
            Err(o) => return Ok(o),
        };
        let attrs: Vec<&str> = a.attrs.keys().map(String::as_str).collect();
        self.transcript.request(self.step, &format!("search {dn} base {attrs:?}"));
        let ldap3::SearchResult(entries, r) = l.search(&dn, LdapScope::Base, "(objectClass=*)", attrs).await?;
        self.transcript.response(self.step, &format!("{} entries; {}", entries.len(), ldap_line(r.rc, &r.text)));
        let _ = l.unbind().await;
        let Some(e) = entries.into_iter().next() else { return Ok(Observed::check(Some(format!("no entry {dn}")))) };
        let e = SearchEntry::construct(e);
        let mut diffs = vec![];
        for (k, want) in &a.attrs {
            // binary values compare as base64, as ldap.search shows them
            let have = e.attrs.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone()).or_else(|| {
                let b64 = base64::engine::general_purpose::STANDARD;
                e.bin_attrs.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.iter().map(|x| b64.encode(x)).collect())
            });
            let ok = match (want, &have) {
                (None, None) => true,
                (None, Some(_)) | (Some(_), None) => false,
                (Some(AttrWant::Exactly(OneOrMany::One(w))), Some(h)) if w == "*" => !h.is_empty(),
                (Some(AttrWant::Exactly(OneOrMany::One(w))), Some(h)) if w.starts_with('!') => h.iter().all(|x| *x != w[1..]),
                (Some(AttrWant::Exactly(w)), Some(h)) => {
                    let mut w: Vec<String> = w.values().iter().map(|x| self.s(x)).collect::<Result<_, _>>()?;
                    let mut h = h.clone();
                    w.sort();
                    h.sort();
                    w == h
                }
                (Some(AttrWant::Contains(c)), Some(h)) => {
                    let w: Vec<String> = c.contains.values().iter().map(|x| self.s(x)).collect::<Result<_, _>>()?;
                    // as AD compares DNs and most strings: without regard to case
                    w.iter().all(|x| h.iter().any(|y| y.eq_ignore_ascii_case(x)))
                }
            };
            if !ok {
                let want = want
                    .as_ref()
                    .map(|w| match w {
                        AttrWant::Exactly(v) => format!("{:?}", v.values()),
                        AttrWant::Contains(c) => format!("values including {:?}", c.contains.values()),
                    })
                    .unwrap_or("absent".into());
                let have = have.map(|h| format!("{h:?}")).unwrap_or("absent".into());
                diffs.push(format!("{k}: expected {want}, found {have}"));
            }
        }
        Ok(Observed::check((!diffs.is_empty()).then(|| diffs.join("; "))))
    }

    // ----- given -----

    /// Applies a scenario's `given:` only (for `lab up --scenario`, where a trainee plays
    /// the steps by hand).
    pub async fn prepare(&mut self, s: &Scenario) -> Result<(), RunError> {
        self.given(&s.given).await
    }

    async fn given(&mut self, g: &Given) -> Result<(), RunError> {
        let t = &g.tenant;
        let mut results = vec![];
        if let Some(s) = &t.sspr {
            results.push(self.set_sspr(s).await?);
        }
        if let Some(w) = &t.writeback {
            results.push(self.set_writeback(w).await?);
        }
        if let Some(r) = &t.risk_policy {
            results.push(self.set_risk_policy(r).await?);
        }
        if let Some(p) = &t.password_rules {
            results.push(self.set_password_rules(p).await?);
        }
        if let Some(p) = &g.ad_ds.policy {
            results.push(self.set_ad_policy(p).await?);
        }
        let c = &g.connect;
        // Connect's agent first (CONNECT1), then the standalone ones (PTA2, …)
        if let Some(m) = c.sign_in {
            let t = self.target.info.tenant.clone();
            results.push(self.change_sign_in(m, &t.admin_upn, &t.admin_password).await?);
        }
        if let Some(n) = c.pta_agents.filter(|n| *n > 0) {
            let t = self.target.info.tenant.clone();
            let body = json!({ "userPrincipalName": t.admin_upn, "password": t.admin_password, "count": n });
            results.push(self.lab_call("POST", "/lab/engine/pta/agents", Some(body)).await?);
        }
        if let Some(ms) = c.pta_timeout_ms {
            results.push(self.lab_call("PATCH", "/lab/pta/settings", Some(json!({ "timeoutMs": ms }))).await?);
        }
        match results.into_iter().find(|o| !o.ok) {
            Some(o) => Err(RunError(o.describe())),
            None => Ok(()),
        }
    }

    /// The domain policy on the domain object, as an administrator edits it.
    async fn set_ad_policy(&mut self, p: &AdPolicy) -> Result<Observed, RunError> {
        // AD keeps durations as negative 100-ns intervals
        let interval = |d: &str| -> Result<String, RunError> {
            let d = if d == "0" { Duration::ZERO } else { clock::parse_duration(d).map_err(RunError)? };
            Ok((-(d.as_nanos() as i128 / 100)).to_string())
        };
        let mut mods: Vec<Mod<Vec<u8>>> = vec![];
        let mut shown = vec![];
        let mut put = |attr: &str, v: String| {
            shown.push(format!("{attr}={v}"));
            mods.push(Mod::Replace(attr.as_bytes().to_vec(), HashSet::from([v.into_bytes()])));
        };
        if let Some(n) = p.min_length {
            put("minPwdLength", n.to_string());
        }
        if let Some(n) = p.history {
            put("pwdHistoryLength", n.to_string());
        }
        if let Some(c) = p.complexity {
            put("pwdProperties", if c { "1" } else { "0" }.into());
        }
        if let Some(d) = &p.min_age {
            put("minPwdAge", interval(d)?);
        }
        if let Some(d) = &p.max_age {
            put("maxPwdAge", interval(d)?);
        }
        if let Some(n) = p.lockout_threshold {
            put("lockoutThreshold", n.to_string());
        }
        if let Some(d) = &p.lockout_duration {
            put("lockoutDuration", interval(d)?);
        }
        if let Some(d) = &p.lockout_window {
            put("lockOutObservationWindow", interval(d)?);
        }
        let base = self.target.info.adds.base_dn.clone();
        let mut l = match self.bound(None, None, Via::Ldaps).await? {
            Ok(l) => l,
            Err(o) => return Ok(o),
        };
        self.ldap_modify(&mut l, &base, mods, &shown.join("; "), false).await
    }
}

/// A quoted UTF-16LE password, as unicodePwd takes it.
fn unicode_pwd(p: &str) -> Vec<u8> {
    format!("\"{p}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn ldap_line(rc: u32, text: &str) -> String {
    if text.is_empty() {
        format!("{} ({rc})", observe::ldap_result_name(rc))
    } else {
        format!("{} ({rc}) \"{text}\"", observe::ldap_result_name(rc))
    }
}

/// A field of a JSON answer by a dotted path (`newPassword`, `value.0.id`).
fn report_line(r: &relay::SyncReport) -> String {
    format!("{} added, {} updated, {} deleted, {} passwords, {} errors", r.added, r.updated, r.deleted, r.passwords, r.errors.len())
}

fn lookup(body: &Value, path: &str) -> Option<String> {
    match crate::observe::at_path(body, path)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// How a scenario ran in its own lab.
pub struct FreshRun {
    pub outcome: Result<(), Failure>,
    pub transcript: Transcript,
    /// Lab start-up, then the whole scenario (start-up included).
    pub lab_start: Duration,
    pub duration: Duration,
}

/// Runs one scenario in its own lab (ephemeral ports, a frozen clock at the lab epoch).
pub async fn run_in_fresh_lab(s: &Scenario, scenario_dir: &std::path::Path, external: Option<&crate::external::External>) -> FreshRun {
    run_in_fresh_lab_as(s, scenario_dir, external, labkit::SyncAgents::ConnectSync).await
}

/// [`run_in_fresh_lab`] with the sync agent(s) a scenario that names none runs under (the
/// runner's `--agent`).
pub async fn run_in_fresh_lab_as(
    s: &Scenario,
    scenario_dir: &std::path::Path,
    external: Option<&crate::external::External>,
    agents: labkit::SyncAgents,
) -> FreshRun {
    let started = Instant::now();
    let early = |outcome: Result<(), Failure>| FreshRun {
        outcome,
        transcript: Transcript::default(),
        lab_start: started.elapsed(),
        duration: started.elapsed(),
    };
    let fail =
        |what: String| Failure { step: 0, action: "lab".into(), line: 1, column: 1, expected: "a lab to start".into(), actual: what };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return early(Err(fail(e.to_string()))),
    };
    let mut cfg = labkit::LabConfig::ephemeral(dir.path().to_path_buf());
    if let Some(lab) = s.lab.as_deref().filter(|l| *l != "testlab") {
        let path = scenario_dir.join(lab);
        match std::fs::read_to_string(&path) {
            Ok(text) => cfg.adds_ldif = Some((path.display().to_string(), text)),
            Err(e) => return early(Err(fail(format!("lab {}: {e}", path.display())))),
        }
    }
    cfg.engine = s.engine.unwrap_or(true);
    cfg.source_anchor = s.source_anchor.unwrap_or_default();
    cfg.presynced = s.presynced.unwrap_or(true);
    cfg.external_adds = external.cloned();
    cfg.sync_agents = s.given.agent.map(crate::model::AgentArg::lab).unwrap_or(agents);
    cfg.dcs = usize::from(s.given.dcs.unwrap_or(1));
    cfg.forests = usize::from(s.given.forests.unwrap_or(1));
    cfg.child_domain = s.given.child_domain;
    let lab = match labkit::Lab::start(cfg).await {
        Ok(l) => l,
        Err(e) => return early(Err(fail(format!("{e:#}")))),
    };
    let lab_start = started.elapsed();
    let ca_pem = std::fs::read(&lab.info.adds.ca_cert).unwrap_or_default();
    let target = Target { info: lab.info.clone(), external_adds: external.is_some(), ca_pem };
    let (result, transcript) = match Runner::new(&target) {
        Ok(mut r) => {
            let res = r.run(s).await;
            (res, r.transcript)
        }
        Err(e) => (Err(fail(e.0)), Transcript::default()),
    };
    lab.stop().await;
    FreshRun { outcome: result, transcript, lab_start, duration: started.elapsed() }
}

/// A page as a transcript line: its status, where it sends the browser, or its heading and error.
fn page_line(status: u16, location: Option<&str>, html: &str) -> String {
    if let Some(l) = location {
        // a code in the address is a secret: only its name shows
        let shown: Vec<String> = l
            .split(['?', '#', '&'])
            .enumerate()
            .map(|(i, p)| if i == 0 { p.to_string() } else { p.split('=').next().unwrap_or_default().to_string() })
            .collect();
        return format!("{status} → {} ({})", shown[0], shown[1..].join(", "));
    }
    let header = crate::sts::text(html, "loginHeader").unwrap_or_default();
    let error = ["errorMessage", "usernameError", "passwordError", "error"].iter().find_map(|id| crate::sts::text(html, id));
    match error {
        Some(e) => format!("{status} page \"{header}\": {e}"),
        None => format!("{status} page \"{header}\""),
    }
}

/// Where the pages stopped, as a step's answer: `page` and `error`, and the AADSTS code the
/// page shows (`error_codes`, for `expect: { aadsts }`); 400 for an error, 200 otherwise.
fn page_observed(header: &str, error: Option<String>) -> Observed {
    let codes: Vec<u64> = error.as_deref().and_then(crate::sts::aadsts).into_iter().collect();
    let status = if error.is_some() { 400 } else { 200 };
    Observed::http(status, json!({ "page": header, "error": error, "error_codes": codes }))
}

fn form_query(q: &[(&str, String)]) -> String {
    let mut s = url_form::Serializer::new(String::new());
    for (k, v) in q {
        s.append_pair(k, v);
    }
    s.finish()
}

fn parse_pairs(q: &str) -> Vec<(String, String)> {
    url_form::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}
