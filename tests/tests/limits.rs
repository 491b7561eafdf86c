//! The listeners' bounds (issue #15, item 5): a connection count per listener, handshake,
//! header and idle timeouts on LDAP, LDAPS, HTTP and HTTPS. The lab runs with small limits
//! here so that each shows within a second; docs/security.md has the defaults.

use std::time::Duration;

use hybrid_lab_tests::{TestLab, install_crypto};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SHORT: Duration = Duration::from_millis(300);

async fn small_lab() -> TestLab {
    TestLab::start_with(|c| {
        c.limits.ldap = ad_ds::server::Limits {
            max_connections: 3,
            handshake_timeout: SHORT,
            idle_timeout: Duration::from_millis(600),
            ..Default::default()
        };
        c.limits.http = tenant::server::Limits {
            max_connections: 3,
            handshake_timeout: SHORT,
            header_timeout: SHORT,
            idle_timeout: Duration::from_millis(600),
        };
    })
    .await
}

fn addr(url: &str) -> String {
    url.split("://").nth(1).unwrap().trim_end_matches('/').to_string()
}

/// Reads until the server closes the connection (true), or `within` passes (false).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let until = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(until, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // a Notice of Disconnection, an answer: read on
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_listeners_bound_connections_handshakes_and_idle_clients() {
    install_crypto();
    let t = small_lab().await;
    let ldap = addr(&t.info().adds.ldap);
    // three idle clients fill the listener; a fourth takes the oldest one's place (none has
    // bound, so none loses a session: issue 31, item 3), and the listener still holds three
    let mut idle = vec![];
    for _ in 0..3 {
        idle.push(TcpStream::connect(&ldap).await.unwrap());
    }
    tokio::task::yield_now().await;
    let mut fourth = TcpStream::connect(&ldap).await.unwrap();
    assert!(closed_within(&mut idle[0], Duration::from_millis(500)).await, "the oldest connection made room for the fourth");
    assert!(!closed_within(&mut fourth, Duration::from_millis(100)).await, "the fourth is served");
    idle.remove(0);
    idle.push(fourth);
    // the idle ones go after the idle time (AD's MaxConnIdleTime, shortened here)
    for s in &mut idle {
        assert!(closed_within(s, Duration::from_secs(3)).await, "an idle LDAP client is disconnected");
    }
    // and the listener takes new clients again
    let mut again = TcpStream::connect(&ldap).await.unwrap();
    assert!(!closed_within(&mut again, Duration::from_millis(100)).await, "a new client is served");
    drop(again);
    // LDAPS: a client that never starts its handshake is dropped after the handshake time
    let mut silent = TcpStream::connect(addr(&t.info().adds.ldaps)).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(2)).await, "a silent LDAPS client is dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_listeners_bound_connections_handshakes_headers_and_keep_alives() {
    install_crypto();
    let t = small_lab().await;
    let http = addr(&t.info().tenant.http);
    // half a request's headers: dropped after the header time
    let mut partial = TcpStream::connect(&http).await.unwrap();
    partial.write_all(b"GET /v1.0/me HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
    assert!(closed_within(&mut partial, Duration::from_secs(2)).await, "partial headers are not kept");
    // a kept-alive connection with nothing more to ask: dropped after the idle time
    let mut kept = TcpStream::connect(&http).await.unwrap();
    kept.write_all(b"GET /common/userrealm/user1@testlab.example HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    assert!(closed_within(&mut kept, Duration::from_secs(3)).await, "an idle keep-alive is closed");
    // HTTPS: no handshake, no connection
    let https = t.info().tenant.https.replace("https://localhost", "127.0.0.1");
    let mut silent = TcpStream::connect(addr(&format!("x://{https}"))).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(2)).await, "a silent TLS client is dropped");
    // three open connections fill the listener; a fourth is closed at once
    let mut open = vec![];
    for _ in 0..3 {
        open.push(TcpStream::connect(&http).await.unwrap());
    }
    tokio::task::yield_now().await;
    // a fourth takes the place of the oldest (none of them has had a request answered:
    // issue 31, item 3) and is answered
    let mut fourth = TcpStream::connect(&http).await.unwrap();
    fourth.write_all(b"GET /common/userrealm/x@y HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut first = [0u8; 12];
    fourth.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200", "the fourth connection is served");
    assert!(closed_within(&mut open[0], Duration::from_millis(500)).await, "the oldest made room for it");
    assert!(!closed_within(&mut open[1], Duration::from_millis(100)).await, "the others are still open");
}

/// A client holding every connection a listener takes does not shut the lab's own parts out
/// (issue 31, item 3): the trainer still signs in to the portal over HTTPS, and an LDAPS bind
/// still gets in — each in the place of a connection that never got anywhere — and a reset
/// through Graph is still written back over the engine's own (bound) LDAPS connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_holding_every_connection_does_not_shut_the_labs_parts_out() {
    install_crypto();
    let t = TestLab::start_with(|c| {
        c.engine = true;
        c.limits.ldap.max_connections = 3;
        c.limits.http.max_connections = 3;
    })
    .await;
    // the engine's connection is one of the LDAPS listener's three; the holder takes the rest,
    // and three more than it can keep, on both listeners
    let mut held = vec![];
    for _ in 0..6 {
        held.push(TcpStream::connect(addr(&t.info().adds.ldaps)).await.unwrap());
        held.push(TcpStream::connect(addr(&t.info().tenant.https).replace("localhost", "127.0.0.1")).await.unwrap());
    }
    tokio::task::yield_now().await;
    let cookie = t.admin_cookie().await;
    assert!(cookie.contains('='), "the portal's sign-in sets its cookie: {cookie}");
    let mut l = t.admin(hybrid_lab_tests::Via::Ldaps).await;
    let (root, _) = l.search("", ldap3::Scope::Base, "(objectClass=*)", vec!["defaultNamingContext"]).await.unwrap().success().unwrap();
    assert_eq!(root.len(), 1, "an LDAPS bind and search get in");
    let admin = t.admin_token().await;
    assert_eq!(t.graph_reset(&admin, "user4@testlab.example", "Held-Cap-Reset-4").await, "succeeded");
    assert!(t.ad_accepts("TESTLAB\\User4", "Held-Cap-Reset-4").await, "the reset reached AD through the engine while the caps were held");
    drop(held);
}
