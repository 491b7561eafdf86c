//! Test kit for end-to-end tests: start a lab on free ports with a frozen clock, and
//! connect real clients to it.

use std::sync::Arc;

pub mod browser;

use labkit::{Lab, LabConfig, LabInfo};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};

pub struct TestLab {
    pub lab: Lab,
    _dir: tempfile::TempDir,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// ldap:// in clear
    Plain,
    /// ldap:// upgraded with StartTLS
    StartTls,
    /// ldaps://
    Ldaps,
}

impl TestLab {
    pub async fn start() -> TestLab {
        TestLab::start_with(|_| {}).await
    }

    /// Starts a lab after `tune` has adjusted its configuration.
    pub async fn start_with(tune: impl FnOnce(&mut LabConfig)) -> TestLab {
        // the tests' own HTTPS clients use rustls's process default (the lab installs none)
        install_crypto();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = LabConfig::ephemeral(dir.path().to_path_buf());
        tune(&mut cfg);
        let lab = Lab::start(cfg).await.expect("lab starts");
        TestLab { lab, _dir: dir }
    }

    /// Graph's resetPassword for `user` (UPN or object id) with `token`, polled to its end:
    /// the operation's status (`succeeded`, `failed`).
    pub async fn graph_reset(&self, token: &str, user: &str, password: &str) -> String {
        let id = if uuid_like(user) {
            user.to_string()
        } else {
            let (_, u) = self.call("GET", &format!("/v1.0/users/{user}?$select=id"), Some(token), None).await;
            u["id"].as_str().expect("user id").to_string()
        };
        let path = format!("/v1.0/users/{id}/authentication/methods/{PASSWORD_METHOD}/resetPassword");
        let r = self
            .http()
            .post(format!("{}{path}", self.lab.info.tenant.https))
            .bearer_auth(token)
            .json(&serde_json::json!({ "newPassword": password }))
            .send()
            .await
            .expect("resetPassword");
        assert_eq!(r.status().as_u16(), 202);
        let location = r.headers()["location"].to_str().expect("location").to_string();
        let op: serde_json::Value =
            self.http().get(location).bearer_auth(token).send().await.expect("operation").json().await.expect("JSON");
        op["status"].as_str().expect("status").to_string()
    }

    /// Whether AD takes `password` for `name` in a simple bind over LDAPS.
    pub async fn ad_accepts(&self, name: &str, password: &str) -> bool {
        let mut l = self.connect(Via::Ldaps).await;
        let ok = l.simple_bind(name, password).await.map(|r| r.rc == 0).unwrap_or(false);
        let _ = l.unbind().await;
        ok
    }

    /// Whether the cloud takes `password` for `upn` (AADSTS50055, "change it now", counts:
    /// an administrator's reset asks for a change, and the password was right).
    pub async fn cloud_accepts(&self, upn: &str, password: &str) -> bool {
        let (status, body) = self.token(upn, password).await;
        status == 200 || body["error_codes"][0].as_u64() == Some(50055)
    }

    /// Stops the lab (its temp directory goes after).
    pub async fn stop(self) {
        self.lab.stop().await;
    }

    /// A request to the lab's control surface (`/lab/…`) as the lab's administrator.
    pub async fn lab_call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let token = self.admin_token().await;
        self.call(method, path, Some(&token), body).await
    }

    pub fn info(&self) -> &LabInfo {
        &self.lab.info
    }

    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.lab.info.adds.ca_cert).expect("CA file")
    }

    /// A connected, unauthenticated client.
    pub async fn connect(&self, via: Via) -> Ldap {
        let a = &self.lab.info.adds;
        let url = match via {
            Via::Plain | Via::StartTls => a.ldap.clone(),
            Via::Ldaps => a.ldaps.clone(),
        };
        self.connect_to(&url, via == Via::StartTls).await
    }

    /// A connected, unauthenticated client of one DC (`ldaps://…` or `ldap://…` from
    /// `info().adds.domains`: another domain's DC too).
    pub async fn connect_to(&self, url: &str, starttls: bool) -> Ldap {
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(&self.ca_pem()) {
            roots.add(c.expect("PEM")).expect("CA");
        }
        let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let settings = LdapConnSettings::new().set_config(Arc::new(tls)).set_starttls(starttls);
        // `localhost` so that the certificate's DNS name is checked, not only its IP.
        let url = url.replace("127.0.0.1", "localhost");
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &url).await.expect("connect");
        ldap3::drive!(conn);
        ldap
    }

    /// A client bound as `name` / `password`.
    pub async fn bind(&self, via: Via, name: &str, password: &str) -> Ldap {
        let mut l = self.connect(via).await;
        l.simple_bind(name, password).await.expect("bind sent").success().unwrap_or_else(|e| panic!("bind as {name}: {e}"));
        l
    }

    /// A client bound as the domain's Administrator.
    pub async fn admin(&self, via: Via) -> Ldap {
        let a = self.lab.info.adds.clone();
        self.bind(via, &a.admin_dn, &a.admin_password).await
    }

    pub fn password_of(&self, sam: &str) -> String {
        self.lab.info.users.iter().find(|u| u.sam == sam).and_then(|u| u.password.clone()).expect("seeded user")
    }

    /// An HTTP client that trusts the lab CA (for the tenant's https listener).
    pub fn http(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(&self.ca_pem()).expect("CA");
        reqwest::Client::builder().add_root_certificate(ca).build().expect("client")
    }

    /// A client that trusts the lab CA and shows redirects instead of following them (what a
    /// page answers, as a browser sees it before it moves on).
    pub fn http_no_redirects(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(&self.ca_pem()).expect("CA");
        reqwest::Client::builder().add_root_certificate(ca).redirect(reqwest::redirect::Policy::none()).build().expect("client")
    }

    pub fn base(&self) -> String {
        self.lab.info.adds.base_dn.clone()
    }

    /// The lab administrator's portal session cookie, as a trainer signs in to the dashboard.
    pub async fn admin_cookie(&self) -> String {
        let t = &self.info().tenant;
        self.admin_center_cookie(&t.admin_upn, &t.admin_password).await
    }

    /// The admin center's session cookie for any tenant user (Entra lets any user sign in).
    pub async fn admin_center_cookie(&self, upn: &str, password: &str) -> String {
        let r = self
            .http_no_redirects()
            .post(format!("{}/portal/admin/signin", self.info().tenant.https))
            .form(&[("user", upn), ("password", password)])
            .send()
            .await
            .expect("the portal's sign-in");
        r.headers()["set-cookie"].to_str().expect("a cookie").split(';').next().unwrap_or_default().to_string()
    }

    /// The ROPC grant for a user: (status, body).
    pub async fn token(&self, upn: &str, password: &str) -> (u16, serde_json::Value) {
        let tn = &self.lab.info.tenant;
        let form = [
            ("grant_type", "password"),
            ("client_id", tn.client_id.as_str()),
            ("username", upn),
            ("password", password),
            ("scope", "https://graph.microsoft.com/.default"),
        ];
        let r = self.http().post(format!("{}/oauth2/v2.0/token", tn.authority)).form(&form).send().await.expect("token endpoint");
        (r.status().as_u16(), r.json().await.expect("JSON"))
    }

    /// A user's access token; panics when the sign-in fails.
    pub async fn user_token(&self, upn: &str, password: &str) -> String {
        let (status, body) = self.token(upn, password).await;
        assert_eq!(status, 200, "sign-in as {upn}: {body}");
        body["access_token"].as_str().expect("access_token").to_string()
    }

    /// The cloud-only Global Administrator's token.
    pub async fn admin_token(&self) -> String {
        let tn = self.lab.info.tenant.clone();
        self.user_token(&tn.admin_upn, &tn.admin_password).await
    }

    /// The testlab app's token (client credentials).
    pub async fn app_token(&self) -> String {
        let tn = &self.lab.info.tenant;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", tn.client_id.as_str()),
            ("client_secret", tn.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ];
        let r = self.http().post(format!("{}/oauth2/v2.0/token", tn.authority)).form(&form).send().await.expect("token endpoint");
        let body: serde_json::Value = r.json().await.expect("JSON");
        body["access_token"].as_str().expect("access_token").to_string()
    }

    /// One request to the tenant's https listener (`path` from the root, e.g. `/v1.0/me`):
    /// (status, body as JSON or Null when empty).
    pub async fn call(&self, method: &str, path: &str, bearer: Option<&str>, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http().request(method, format!("{}{path}", self.lab.info.tenant.https));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        (status, if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text).expect("JSON body") })
    }
}

/// Graph's fixed id of a user's password authentication method.
pub const PASSWORD_METHOD: &str = "28c10230-6103-485e-b985-444c60001490";

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs `case` on its own two-thread runtime against a fresh lab with the writeback engine
/// (what each proptest case needs: a sync body, a whole lab of its own).
pub fn with_engine_lab<F, Fut>(case: F)
where
    F: FnOnce(TestLab, writeback::Engine) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async move {
        install_crypto();
        let t = TestLab::start_with(|c| c.engine = true).await;
        let engine = t.lab.engine.clone().expect("the lab runs an engine");
        case(t, engine).await;
    });
}
