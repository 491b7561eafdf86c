//! The fixture as another project's tests use it: many labs in one process, each its own;
//! dropping one frees its ports and its state directory; the switches change what clients
//! see on the wire.

use std::time::Duration;

use hybrid_lab::{DcState, Lab, LabConfig, Right};

async fn bind(lab: &Lab, name: &str, password: &str) -> Result<(), String> {
    let settings = ldap3::LdapConnSettings::new().set_config(lab.tls_client_config()).set_conn_timeout(Duration::from_secs(5));
    let (conn, mut ldap) = ldap3::LdapConnAsync::with_settings(settings, lab.adds().ldaps_url()).await.map_err(|e| e.to_string())?;
    ldap3::drive!(conn);
    ldap.simple_bind(name, password).await.map_err(|e| e.to_string())?.success().map_err(|e| e.to_string())?;
    Ok(())
}

fn port(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap()
}

fn ports(lab: &Lab) -> [u16; 4] {
    [port(lab.adds().ldap_url()), port(lab.adds().ldaps_url()), port(lab.tenant().https_url()), port(lab.tenant().http_url())]
}

#[tokio::test]
async fn three_labs_at_once_share_no_port_no_ca_and_no_key_id() {
    let (a, b, c) =
        tokio::join!(Lab::start(LabConfig::testlab()), Lab::start(LabConfig::testlab()), Lab::start(LabConfig::testlab().no_engine()));
    let labs = [a.unwrap(), b.unwrap(), c.unwrap()];
    let mut all: Vec<u16> = labs.iter().flat_map(ports).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 12, "every listener its own port");
    assert!(labs[0].ca_pem() != labs[1].ca_pem() && labs[1].ca_pem() != labs[2].ca_pem());
    // the same seed, the same tenant id; never the same keys
    assert_eq!(labs[0].tenant().tenant_id(), labs[1].tenant().tenant_id());
    let mut kids = vec![];
    for lab in &labs {
        let http = reqwest::Client::builder().tls_backend_preconfigured((*lab.tls_client_config()).clone()).build().unwrap();
        let keys: serde_json::Value =
            http.get(format!("{}/discovery/v2.0/keys", lab.tenant().authority())).send().await.unwrap().json().await.unwrap();
        kids.push(keys["keys"][0]["kid"].as_str().expect("a key id").to_string());
        let user1 = lab.user("User1").unwrap();
        bind(lab, &user1.dn, user1.password.as_deref().unwrap()).await.unwrap();
    }
    // one OS user's signing key, each lab under its own key id (its JWKS lists no other)
    assert!(kids[0] != kids[1] && kids[1] != kids[2] && kids[0] != kids[2], "two labs never sign under one kid: {kids:?}");
    // nothing here installed a process-wide rustls provider, and the labs did not either
    assert!(rustls::crypto::CryptoProvider::get_default().is_none(), "Lab::start installs no process-wide crypto provider");
}

#[tokio::test]
async fn a_dropped_lab_frees_its_ports_and_its_state_directory() {
    let lab = Lab::start(LabConfig::testlab()).await.unwrap();
    let ports = ports(&lab);
    let state_dir = lab.adds().ca_path().parent().unwrap().to_path_buf();
    assert!(state_dir.join("ca.pem").exists());
    for p in ports {
        assert!(std::net::TcpListener::bind(("127.0.0.1", p)).is_err(), "port {p} is the lab's while it runs");
    }
    drop(lab);
    assert!(!state_dir.exists(), "the temporary state directory goes with the lab");
    // the cancelled listener tasks close their sockets when the runtime next runs them
    tokio::task::yield_now().await;
    for p in ports {
        std::net::TcpListener::bind(("127.0.0.1", p)).unwrap_or_else(|e| panic!("port {p} still held after the drop: {e}"));
    }
}

#[tokio::test]
async fn a_stopped_lab_frees_its_ports_and_a_named_state_directory_stays() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(LabConfig::testlab().no_engine().state_dir(dir.path().join("lab"))).await.unwrap();
    let ports = ports(&lab);
    lab.stop().await;
    for p in ports {
        std::net::TcpListener::bind(("127.0.0.1", p)).unwrap_or_else(|e| panic!("port {p} still held after stop: {e}"));
    }
    assert!(dir.path().join("lab/ca.pem").exists());
}

#[tokio::test]
async fn the_dc_switch_takes_the_directory_down_and_up() {
    let lab = Lab::start(LabConfig::testlab().no_engine()).await.unwrap();
    let (dn, pw) = (lab.adds().admin_dn(), lab.adds().admin_password());
    bind(&lab, dn, pw).await.unwrap();
    lab.adds().set_state(DcState::Down);
    assert!(bind(&lab, dn, pw).await.is_err(), "a DC that is down takes no bind");
    lab.adds().set_state(DcState::UntrustedCertificate);
    let e = bind(&lab, dn, pw).await.unwrap_err();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    lab.adds().set_state(DcState::Up);
    bind(&lab, dn, pw).await.unwrap();
}

#[tokio::test]
async fn connector_rights_and_denies_are_switches() {
    let lab = Lab::start(LabConfig::testlab().no_engine()).await.unwrap();
    let a = lab.adds();
    assert!(a.connector_holds(Right::ResetPassword) && a.connector_holds(Right::WriteLockoutTime));
    a.revoke_from_connector(Right::ResetPassword).unwrap();
    assert!(!a.connector_holds(Right::ResetPassword));
    assert!(a.connector_holds(Right::WriteLockoutTime), "the others stay");
    a.grant_to_connector(Right::ResetPassword).unwrap();
    assert!(a.connector_holds(Right::ResetPassword));
    assert!(a.deny_everyone(Right::ChangePassword, "OU=Nowhere,DC=testlab,DC=example").is_err(), "no such object");
}

#[tokio::test]
async fn the_engine_switches_and_the_clock_drive_what_connect_does() {
    let lab = Lab::start(LabConfig::testlab()).await.unwrap();
    let engine = lab.engine().unwrap();
    let ids = |lab: &Lab| lab.engine().unwrap().events().iter().map(|e| e.id).collect::<Vec<_>>();
    assert!(ids(&lab).contains(&31005), "onboarded: {:?}", ids(&lab));
    engine.stop().await;
    assert!(!engine.is_running());
    assert_eq!(ids(&lab).last(), Some(&31016));
    engine.start().await.unwrap();
    assert!(engine.is_running());
    assert_eq!(ids(&lab).last(), Some(&31015));
    // Connect's scheduler on the lab clock: nothing is due at once, a delta cycle after 30 min
    let before = ids(&lab).len();
    lab.clock().advance(Duration::from_secs(60)).await;
    assert_eq!(ids(&lab).len(), before, "nothing due after a minute");
    let t0 = lab.clock().now();
    lab.clock().advance(Duration::from_secs(30 * 60)).await;
    assert_eq!(lab.clock().now().duration_since(t0).unwrap(), Duration::from_secs(30 * 60));
    let after = ids(&lab);
    assert!(after[before..].contains(&9101) && after[before..].contains(&9102), "a scheduled cycle ran: {after:?}");
}

#[tokio::test]
async fn an_unsynced_lab_gets_its_users_from_a_sync_cycle() {
    let lab = Lab::start(LabConfig::testlab().unsynced()).await.unwrap();
    assert!(lab.users().iter().all(|u| !u.synced || u.sam.is_empty()));
    let report = lab.engine().unwrap().sync(true).await.unwrap();
    assert!(report.added >= 4 && report.passwords == report.added && report.errors.is_empty(), "{report:?}");
}

#[tokio::test]
async fn a_bad_ldif_is_an_error_naming_its_place() {
    let e = match Lab::start(LabConfig::testlab().no_engine().adds_ldif("broken.ldif", "dn: CN=x\nnot an attribute line\n")).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a broken LDIF started a lab"),
    };
    assert!(e.starts_with("broken.ldif:2"), "{e}");
}

/// One lab for a whole test binary (docs/embedding.md's recipe): started once by the first
/// caller, alive across tests whose own runtimes come and go.
static SHARED: hybrid_lab::Shared = hybrid_lab::Shared::new(|| LabConfig::testlab().no_engine());

#[tokio::test]
async fn a_shared_lab_outlives_the_runtime_of_the_test_that_started_it() {
    // started inside a runtime that ends here
    let first = std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { SHARED.get().map(|l| l as *const Lab as usize) })
    })
    .join()
    .unwrap()
    .unwrap();
    let lab = SHARED.get().unwrap();
    assert_eq!(lab as *const Lab as usize, first, "the same lab for every caller");
    let user1 = lab.user("User1").unwrap();
    bind(lab, &user1.dn, user1.password.as_deref().unwrap()).await.expect("still answering after the starter's runtime ended");
}
