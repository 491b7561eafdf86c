//! The dashboard's on-premises views, read over LDAPS as the domain's administrator (what
//! ADUC's attribute editor shows): whether the AD DS answers, and a user's password and
//! lockout state with the flags AD computes from it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::{Scope, SearchEntry};

use crate::AddsAccess;

pub struct Health {
    pub up: bool,
    pub text: String,
}

pub struct UserView {
    pub dn: String,
    /// (attribute, raw value, what it means)
    pub attrs: Vec<(String, String, String)>,
    /// The states AD derives (locked out, disabled, must change, expired, never expires).
    pub flags: Vec<String>,
}

/// How many of the pages' own connections are remembered (a DC's operation log keeps 200
/// operations; a page's look opens one or two connections).
const OWN_KEPT: usize = 256;

/// The local addresses of the pages' own recent LDAP connections: the dashboard tells its
/// own reads apart in the DC's operations by them (as a DC's logs name a client by address
/// and port) and hides them unless asked.
#[derive(Clone, Debug, Default)]
pub struct OwnConnections(Arc<std::sync::Mutex<std::collections::VecDeque<std::net::SocketAddr>>>);

impl OwnConnections {
    fn note(&self, a: std::net::SocketAddr) {
        let mut v = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        v.retain(|x| *x != a);
        v.push_back(a);
        if v.len() > OWN_KEPT {
            v.pop_front();
        }
    }

    /// Whether a client address (as the DC's operations give it) is one of the pages' own.
    pub fn contains(&self, client: &str) -> bool {
        let Ok(a) = client.parse::<std::net::SocketAddr>() else { return false };
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&a)
    }
}

pub(crate) async fn bind(a: &AddsAccess) -> Result<ldap3::Ldap, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&a.ca_pem).flatten() {
        let _ = roots.add(c);
    }
    let tls = crate::tls_with(roots).map_err(|e| e.to_string())?;
    // the certificate names localhost, not the address
    let url = a.ldaps.replace("127.0.0.1", "localhost");
    let (conn, mut l, local) = ldap_dial::connect_noting_address(&url, ldap_dial::Security::Url, Arc::new(tls), Duration::from_secs(3))
        .await
        .map_err(|e| e.to_string())?;
    a.own.note(local);
    ldap3::drive!(conn);
    let r = l.simple_bind(&a.admin_dn, &a.admin_password).await.map_err(|e| e.to_string())?;
    if r.rc != 0 {
        return Err(format!("bind as the administrator: {} {}", r.rc, r.text));
    }
    Ok(l)
}

/// Connect, bind as the administrator, read the rootDSE.
pub async fn health(a: Option<&AddsAccess>) -> Health {
    let Some(a) = a else { return Health { up: false, text: "no AD DS configured".into() } };
    let started = Instant::now();
    let probe = async {
        let mut l = bind(a).await?;
        let r = l.search("", Scope::Base, "(objectClass=*)", vec!["dnsHostName"]).await.map_err(|e| e.to_string())?;
        let _ = l.unbind().await;
        r.success().map_err(|e| e.to_string()).map(|_| ())
    };
    match tokio::time::timeout(Duration::from_secs(5), probe).await {
        Ok(Ok(())) => Health { up: true, text: format!("answering at {} ({} ms)", a.ldaps, started.elapsed().as_millis()) },
        Ok(Err(e)) => Health { up: false, text: format!("not answering at {}: {e}", a.ldaps) },
        Err(_) => Health { up: false, text: format!("no answer from {} within 5 s", a.ldaps) },
    }
}

/// What a FILETIME attribute's value means: its 0 means one thing in pwdLastSet (the
/// password must change at next logon) and another in lockoutTime (not locked out).
fn filetime_meaning(attr: &str, v: i64) -> String {
    match (attr, v) {
        ("pwdLastSet", 0) => "must change at next logon".into(),
        ("lockoutTime", 0) => "not locked out (or unlocked)".into(),
        _ => filetime(v),
    }
}

/// A FILETIME (100 ns since 1601) as UTC text.
fn filetime(v: i64) -> String {
    match v {
        i64::MAX => "never".into(),
        v => {
            let unix = v / 10_000_000 - 11_644_473_600;
            time::OffsetDateTime::from_unix_timestamp(unix)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_else(|| v.to_string())
        }
    }
}

const UAC_FLAGS: &[(i64, &str)] = &[
    (0x2, "ACCOUNTDISABLE"),
    (0x10, "LOCKOUT"),
    (0x20, "PASSWD_NOTREQD"),
    (0x200, "NORMAL_ACCOUNT"),
    (0x10000, "DONT_EXPIRE_PASSWORD"),
    (0x800000, "PASSWORD_EXPIRED"),
];

fn uac_text(v: i64) -> String {
    UAC_FLAGS.iter().filter(|(bit, _)| v & bit != 0).map(|(_, n)| *n).collect::<Vec<_>>().join(" | ")
}

/// A user's password and lockout attributes, by sAMAccountName.
pub async fn user(a: Option<&AddsAccess>, sam: &str) -> Result<UserView, String> {
    let a = a.ok_or("no AD DS configured")?;
    if !sam.chars().all(|c| c.is_ascii_alphanumeric() || "-_.$".contains(c)) {
        return Err(format!("{sam:?} is not a sAMAccountName"));
    }
    let attrs = vec![
        "pwdLastSet",
        "badPwdCount",
        "lockoutTime",
        "userAccountControl",
        "msDS-User-Account-Control-Computed",
        "adminCount",
        "msDS-ResultantPSO",
    ];
    let mut l = tokio::time::timeout(Duration::from_secs(5), bind(a)).await.map_err(|_| "no answer within 5 s".to_string())??;
    let (found, _) = l
        .search(&a.base_dn, Scope::Subtree, &format!("(sAMAccountName={sam})"), attrs.clone())
        .await
        .map_err(|e| e.to_string())?
        .success()
        .map_err(|e| e.to_string())?;
    let _ = l.unbind().await;
    let e = found.into_iter().next().map(SearchEntry::construct).ok_or_else(|| format!("no user {sam}"))?;
    let int = |n: &str| e.attrs.get(n).and_then(|v| v.first()).and_then(|v| v.parse::<i64>().ok());
    let mut rows = vec![];
    for n in attrs {
        if n == "msDS-ResultantPSO" {
            // which policy judges this user's passwords: a fine-grained one, or the domain's
            let pso = e.attrs.get(n).and_then(|v| v.first()).cloned();
            let meaning = if pso.is_some() { "a fine-grained password policy applies" } else { "the domain's password policy applies" };
            rows.push((n.to_string(), pso.unwrap_or_else(|| "(not set)".into()), meaning.into()));
            continue;
        }
        let Some(v) = int(n) else {
            rows.push((n.to_string(), "(not set)".into(), String::new()));
            continue;
        };
        let meaning = match n {
            "pwdLastSet" | "lockoutTime" => filetime_meaning(n, v),
            "userAccountControl" | "msDS-User-Account-Control-Computed" => uac_text(v),
            _ => String::new(),
        };
        rows.push((n.to_string(), v.to_string(), meaning));
    }
    let uac = int("userAccountControl").unwrap_or(0);
    let computed = int("msDS-User-Account-Control-Computed").unwrap_or(0);
    let mut flags = vec![];
    if computed & 0x10 != 0 {
        flags.push("locked out".to_string());
    }
    if uac & 0x2 != 0 {
        flags.push("disabled".into());
    }
    if int("pwdLastSet") == Some(0) {
        flags.push("must change password at next logon".into());
    }
    if computed & 0x800000 != 0 {
        flags.push("password expired".into());
    }
    if uac & 0x10000 != 0 {
        flags.push("password never expires".into());
    }
    if int("adminCount") == Some(1) {
        flags.push("protected (adminCount 1)".into());
    }
    Ok(UserView { dn: e.dn, attrs: rows, flags })
}

/// The directory's OUs (DNs, sorted), as Connect's Domain and OU filtering page lists them.
pub async fn ous(a: Option<&AddsAccess>) -> Result<Vec<String>, String> {
    let a = a.ok_or("no AD DS configured")?;
    let mut l = tokio::time::timeout(Duration::from_secs(5), bind(a)).await.map_err(|_| "no answer within 5 s".to_string())??;
    let (found, _) = l
        .search(&a.base_dn, Scope::Subtree, "(objectClass=organizationalUnit)", vec!["1.1"])
        .await
        .map_err(|e| e.to_string())?
        .success()
        .map_err(|e| e.to_string())?;
    let _ = l.unbind().await;
    let mut dns: Vec<String> = found.into_iter().map(|e| SearchEntry::construct(e).dn).collect();
    dns.sort();
    Ok(dns)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 0 is "must change" in pwdLastSet and "not locked out" in lockoutTime (issue 32: the
    /// dashboard gave lockoutTime 0 pwdLastSet's meaning); other values are UTC times.
    #[test]
    fn a_filetime_zero_means_what_its_attribute_says() {
        assert_eq!(filetime_meaning("pwdLastSet", 0), "must change at next logon");
        assert_eq!(filetime_meaning("lockoutTime", 0), "not locked out (or unlocked)");
        let jan_2026 = (1_767_225_600 + 11_644_473_600) * 10_000_000;
        assert_eq!(filetime_meaning("lockoutTime", jan_2026), "2026-01-01T00:00:00Z");
        assert_eq!(filetime_meaning("pwdLastSet", i64::MAX), "never");
    }
}
