//! Every way in to a real DC (the lab's ad-ds on 127.0.0.1): plain, StartTLS and LDAPS give an
//! ldap3 connection that binds and works; an untrusted certificate, a StartTLS the DC refuses,
//! a DC that never answers and a closed port are errors that say which.

use std::sync::Arc;
use std::time::Duration;

use ad_ds::{Directory, DomainConfig, DomainController, Transport};
use clock::Clock;
use ldap_dial::{DialError, Security, connect};
use tokio::net::TcpListener;

const ADMIN_PASSWORD: &str = "Dial-Admin-Pass-1";

struct Dc {
    ldap: String,
    ldaps: String,
    ca_pem: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn dc(with_tls: bool) -> Dc {
    let cfg = DomainConfig {
        dns_name: "dial.example".into(),
        netbios: "DIAL".into(),
        dc_name: "DC1".into(),
        sid: [7, 8, 9],
        seed: 1,
        admin_password: ADMIN_PASSWORD.into(),
    };
    let directory = Directory::new(cfg, Clock::frozen(Clock::lab_epoch()));
    let identity = ad_ds::tls::generate(&["localhost".to_string()], "DIAL").expect("a TLS identity");
    let ca_pem = identity.ca_pem.clone();
    let dc = DomainController::new(directory, with_tls.then_some(identity));
    let (ldap, ldaps) = (TcpListener::bind("127.0.0.1:0").await.unwrap(), TcpListener::bind("127.0.0.1:0").await.unwrap());
    let urls = (
        format!("ldap://localhost:{}", ldap.local_addr().unwrap().port()),
        format!("ldaps://localhost:{}", ldaps.local_addr().unwrap().port()),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = futures::future::FutureExt::shared(async move {
        let _ = stopped.await;
    });
    tokio::spawn(ad_ds::serve(ldap, dc.clone(), Transport::Ldap, stopped.clone()));
    if with_tls {
        tokio::spawn(ad_ds::serve(ldaps, dc, Transport::Ldaps, stopped));
    }
    Dc { ldap: urls.0, ldaps: urls.1, ca_pem, _stop: stop }
}

fn trusting(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

const T: Duration = Duration::from_secs(5);

/// Binds as the Administrator and asks WhoAmI: the connection carries requests both ways.
async fn who_am_i(url: &str, security: Security, tls: Arc<rustls::ClientConfig>) -> String {
    let (conn, mut ldap) = connect(url, security, tls, T).await.expect("connected");
    ldap3::drive!(conn);
    ldap.simple_bind("CN=Administrator,CN=Users,DC=dial,DC=example", ADMIN_PASSWORD).await.unwrap().success().expect("bound");
    let (who, _) = ldap.extended(ldap3::exop::WhoAmI).await.unwrap().success().unwrap();
    let who = who.parse::<ldap3::exop::WhoAmIResp>().authzid;
    ldap.unbind().await.unwrap();
    who
}

#[tokio::test]
async fn plain_starttls_and_ldaps_each_carry_a_bind_and_an_extended_operation() {
    let dc = dc(true).await;
    let tls = trusting(&dc.ca_pem);
    for (url, security) in [(&dc.ldap, Security::Url), (&dc.ldap, Security::StartTls), (&dc.ldaps, Security::Url)] {
        assert_eq!(who_am_i(url, security, tls.clone()).await, "u:DIAL\\Administrator", "{url} {security:?}");
    }
}

#[tokio::test]
async fn the_dc_sees_tls_where_tls_was_asked_for() {
    // AD refuses a password change without a protected connection: what the DC sees decides it
    let dc = dc(true).await;
    let tls = trusting(&dc.ca_pem);
    let mut seen = vec![];
    for (url, security) in [(&dc.ldap, Security::Url), (&dc.ldap, Security::StartTls), (&dc.ldaps, Security::Url)] {
        let (conn, mut ldap) = connect(url, security, tls.clone(), T).await.unwrap();
        ldap3::drive!(conn);
        ldap.simple_bind("CN=Administrator,CN=Users,DC=dial,DC=example", ADMIN_PASSWORD).await.unwrap().success().unwrap();
        let dn = "CN=Administrator,CN=Users,DC=dial,DC=example";
        let quoted = |p: &str| format!("\"{p}\"").encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
        let m = ldap3::Mod::Replace(b"unicodePwd".to_vec(), std::collections::HashSet::from([quoted(ADMIN_PASSWORD)]));
        seen.push(ldap.modify(dn, vec![m]).await.unwrap().rc);
    }
    // 53 unwillingToPerform in the clear; 0 over StartTLS and LDAPS
    assert_eq!(seen, vec![53, 0, 0]);
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let (dc, other) = (dc(true).await, dc(true).await);
    for (url, security) in [(&dc.ldaps, Security::Url), (&dc.ldap, Security::StartTls)] {
        let e = connect(url, security, trusting(&other.ca_pem), T).await.err().expect("refused");
        assert!(matches!(e, DialError::Tls(_)), "{e}");
        assert!(e.to_string().contains("invalid peer certificate"), "{e}");
    }
}

#[tokio::test]
async fn starttls_on_a_dc_without_a_certificate_says_what_the_dc_answered() {
    let dc = dc(false).await;
    let e = connect(&dc.ldap, Security::StartTls, trusting(&dc.ca_pem), T).await.err().expect("refused");
    assert!(matches!(e, DialError::StartTls(_)), "{e}");
}

#[tokio::test]
async fn a_dc_that_never_answers_is_a_timeout_and_a_closed_port_a_refusal() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let keep = tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let tls = trusting(&dc(true).await.ca_pem);
    let short = Duration::from_millis(200);
    for (url, security) in [(format!("ldaps://localhost:{port}"), Security::Url), (format!("ldap://localhost:{port}"), Security::StartTls)]
    {
        let e = connect(&url, security, tls.clone(), short).await.err().expect("no answer");
        assert!(matches!(e, DialError::Timeout(d) if d == short), "{url}: {e}");
    }
    keep.abort();
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let e = connect(&format!("ldaps://127.0.0.1:{port}"), Security::Url, tls, T).await.err().expect("refused");
    assert!(matches!(&e, DialError::Connect(io) if io.kind() == std::io::ErrorKind::ConnectionRefused), "{e}");
}

#[tokio::test]
async fn a_dc_that_goes_away_closes_the_connection_for_ldap3() {
    let dc = dc(true).await;
    let tls = trusting(&dc.ca_pem);
    let (conn, mut ldap) = connect(&dc.ldaps, Security::Url, tls, T).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind("CN=Administrator,CN=Users,DC=dial,DC=example", ADMIN_PASSWORD).await.unwrap().success().unwrap();
    drop(dc); // the DC stops: its open connections are closed
    let e = ldap.with_timeout(T).extended(ldap3::exop::WhoAmI).await.expect_err("no DC any more");
    assert!(!matches!(e, ldap3::LdapError::Timeout { .. }), "the close reached ldap3: {e}");
    assert!(ldap.is_closed());
}
