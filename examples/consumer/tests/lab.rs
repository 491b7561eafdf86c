//! This project's code talks to AD over LDAPS and to Graph over HTTPS; each test gets its own
//! fresh lab, gone when the test ends.

use hybrid_lab::{Lab, LabConfig};
use ldap3::{LdapConnAsync, LdapConnSettings, Mod};
use serde_json::{Value, json};

/// AD's unicodePwd value: the password in double quotes, UTF-16LE.
fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// LDAPS with ldap3's default TLS (native-tls: OpenSSL here), trusting the lab's CA.
async fn ldap(lab: &Lab) -> ldap3::Ldap {
    let ca = native_tls::Certificate::from_pem(lab.ca_pem().as_bytes()).unwrap();
    let connector = native_tls::TlsConnector::builder().add_root_certificate(ca).build().unwrap();
    let settings = LdapConnSettings::new().set_connector(connector);
    let (conn, ldap) = LdapConnAsync::with_settings(settings, lab.adds().ldaps_url()).await.unwrap();
    ldap3::drive!(conn);
    ldap
}

/// The LDAP result code of a simple bind (0: success, 49: invalidCredentials).
async fn bind(lab: &Lab, dn: &str, password: &str) -> u32 {
    ldap(lab).await.simple_bind(dn, password).await.unwrap().rc
}

/// HTTPS to the lab with the TLS configuration it hands out (its CA only, ring named in it):
/// no process-wide rustls provider needed, and the lab installs none.
fn https(lab: &Lab) -> reqwest::Client {
    reqwest::Client::builder().tls_backend_preconfigured((*lab.tls_client_config()).clone()).build().unwrap()
}

/// A token for the tenant's Global Administrator (resource owner password credentials).
async fn admin_token(lab: &Lab, http: &reqwest::Client) -> String {
    let t = lab.tenant();
    let form = [
        ("grant_type", "password"),
        ("client_id", t.client_id()),
        ("username", t.admin_upn()),
        ("password", t.admin_password()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let body: Value = http.post(t.token_url()).form(&form).send().await.unwrap().json().await.unwrap();
    body["access_token"].as_str().expect("a token").to_string()
}

/// Graph's `resetPassword` on the user's password method: the HTTP status and the operation.
async fn reset_password(lab: &Lab, upn: &str, new_password: &str) -> (u16, Value) {
    let http = https(lab);
    let token = admin_token(lab, &http).await;
    let graph = lab.tenant().graph_url();
    let user: Value = http.get(format!("{graph}/users/{upn}")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let id = user["id"].as_str().unwrap();
    let method = "28c10230-6103-485e-b985-444c60001490"; // Graph's well-known password method id
    let r = http
        .post(format!("{graph}/users/{id}/authentication/methods/{method}/resetPassword"))
        .bearer_auth(&token)
        .json(&json!({ "newPassword": new_password }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let Some(location) = r.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_string) else {
        return (status, r.json().await.unwrap());
    };
    let operation: Value = http.get(location).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    (status, operation)
}

#[tokio::test]
async fn a_user_changes_their_own_password_over_ldaps() {
    let lab = Lab::start(LabConfig::testlab()).await.unwrap();
    let user = lab.user("User1").unwrap();
    let old = user.password.as_deref().unwrap();
    let mut l = ldap(&lab).await;
    l.simple_bind(&user.dn, old).await.unwrap().success().unwrap();
    let change = vec![
        Mod::Delete(b"unicodePwd".to_vec(), [unicode_pwd(old)].into()),
        Mod::Add(b"unicodePwd".to_vec(), [unicode_pwd("Changed-By-User-7q")].into()),
    ];
    l.modify(&user.dn, change).await.unwrap().success().unwrap();
    assert_eq!(bind(&lab, &user.dn, "Changed-By-User-7q").await, 0);
    assert_eq!(bind(&lab, &user.dn, old).await, 49, "the old password is gone");
}

#[tokio::test]
async fn a_helpdesk_reset_through_graph_is_written_back_to_ad() {
    let lab = Lab::start(LabConfig::testlab()).await.unwrap();
    let user = lab.user("User1").unwrap();
    let (status, operation) = reset_password(&lab, &user.upn, "Reset-By-Helpdesk-3k").await;
    assert_eq!((status, operation["status"].as_str()), (202, Some("succeeded")), "{operation}");
    assert_eq!(bind(&lab, &user.dn, "Reset-By-Helpdesk-3k").await, 0, "AD holds the new password");
    let ids: Vec<u32> = lab.engine().unwrap().events().iter().map(|e| e.id).collect();
    assert!(ids.ends_with(&[31009, 31010]), "Connect logged an administrator's reset written back: {ids:?}");
}

#[tokio::test]
async fn with_writeback_stopped_a_reset_fails_and_ad_keeps_the_old_password() {
    let lab = Lab::start(LabConfig::testlab()).await.unwrap();
    lab.engine().unwrap().stop().await;
    let user = lab.user("User1").unwrap();
    let (status, operation) = reset_password(&lab, &user.upn, "Never-Applied-5w").await;
    assert!(status >= 400 || operation["status"] == "failed", "{status} {operation}");
    assert_eq!(bind(&lab, &user.dn, "Never-Applied-5w").await, 49);
    assert_eq!(bind(&lab, &user.dn, user.password.as_deref().unwrap()).await, 0);
}

/// Tests that only read share one lab for the whole binary (started by the first of them).
static SHARED: hybrid_lab::Shared = hybrid_lab::Shared::new(LabConfig::testlab);

#[tokio::test]
async fn read_only_tests_share_one_lab() {
    let lab = SHARED.get().unwrap();
    let user = lab.user("User4").unwrap();
    assert_eq!(bind(lab, &user.dn, user.password.as_deref().unwrap()).await, 0);
    assert!(std::ptr::eq(lab, SHARED.get().unwrap()));
}
