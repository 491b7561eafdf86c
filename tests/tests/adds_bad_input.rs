//! Bad input over a raw socket: the server answers with a Notice of Disconnection or an
//! LDAP error, stays up, and the directory is unchanged.

use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use hybrid_lab_tests::{TestLab, Via, install_crypto};
use ldap3::Scope;
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Encoder, Framed};

fn addr(t: &TestLab) -> String {
    t.info().adds.ldap.trim_start_matches("ldap://").to_string()
}

async fn usn(t: &TestLab) -> String {
    let mut l = t.admin(Via::Plain).await;
    let (rs, _) = l.search("", Scope::Base, "(objectClass=*)", vec!["highestCommittedUSN"]).await.unwrap().success().unwrap();
    ldap3::SearchEntry::construct(rs.into_iter().next().unwrap()).attrs["highestCommittedUSN"][0].clone()
}

/// Reads until the server closes; returns the decoded messages it sent first.
async fn drain(stream: TcpStream) -> Vec<LdapMsg> {
    let mut f = Framed::new(stream, LdapCodec::default());
    let mut out = vec![];
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), f.next()).await {
        out.push(m);
    }
    out
}

fn is_notice(m: &LdapMsg) -> bool {
    matches!(&m.op, LdapOp::ExtendedResponse(r) if r.name.as_deref() == Some("1.3.6.1.4.1.1466.20036") && r.res.code == LdapResultCode::ProtocolError)
        && m.msgid == 0
}

/// A simple bind as the domain's Administrator, message 1.
fn admin_bind(t: &TestLab) -> LdapMsg {
    let a = &t.info().adds;
    LdapMsg {
        msgid: 1,
        op: LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: a.admin_dn.clone(),
            cred: LdapBindCred::Simple(a.admin_password.clone()),
        }),
        ctrl: vec![],
    }
}

fn encode(msg: LdapMsg) -> Vec<u8> {
    let mut buf = BytesMut::new();
    LdapCodec::new(Some(64 * 1024 * 1024), None).encode(msg, &mut buf).unwrap();
    buf.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gets_a_notice_of_disconnection_and_the_server_stays_up() {
    install_crypto();
    let t = TestLab::start().await;
    let before = usn(&t).await;
    for junk in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0x30, 0x03, 0x02, 0x01, 0x01][..],
        &[0x30, 0x84, 0x00, 0x00, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff][..],
    ] {
        let mut s = TcpStream::connect(addr(&t)).await.unwrap();
        s.write_all(junk).await.unwrap();
        // Half-close: whatever the server still waits for will never come.
        s.shutdown().await.unwrap();
        let msgs = drain(s).await;
        assert_eq!(msgs.len(), 1, "{junk:?}: {msgs:?}");
        assert!(is_notice(&msgs[0]), "{msgs:?}");
    }
    assert_eq!(usn(&t).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_is_refused_whole() {
    install_crypto();
    let t = TestLab::start().await;
    let before = usn(&t).await;
    let huge = LdapMsg {
        msgid: 1,
        op: LdapOp::AddRequest(LdapAddRequest {
            dn: "CN=Huge,CN=Users,DC=testlab,DC=example".into(),
            attributes: vec![
                LdapPartialAttribute { atype: "objectClass".into(), vals: vec![b"user".to_vec()] },
                LdapPartialAttribute { atype: "description".into(), vals: vec![vec![b'x'; 11 * 1024 * 1024]] },
            ],
        }),
        ctrl: vec![],
    };
    let mut s = TcpStream::connect(addr(&t)).await.unwrap();
    // The server may hang up before it has read it all; that is the point.
    let _ = s.write_all(&encode(huge)).await;
    let msgs = drain(s).await;
    assert!(msgs.iter().all(is_notice) && msgs.len() <= 1, "{msgs:?}");
    assert_eq!(usn(&t).await, before);

    // a large value under the PDU limit gets AD's constraint violation, not a crash
    let mut l = t.admin(Via::Plain).await;
    let big = "y".repeat(2 * 1024 * 1024);
    let r = l
        .add("CN=Big,CN=Users,DC=testlab,DC=example", vec![("objectClass", ["user"].into()), ("description", [big.as_str()].into())])
        .await
        .unwrap();
    assert_eq!(r.rc, 19, "{}", r.text);
    assert_eq!(usn(&t).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_request_changes_nothing() {
    install_crypto();
    let t = TestLab::start().await;
    let before = usn(&t).await;
    let add = LdapMsg {
        msgid: 2,
        op: LdapOp::AddRequest(LdapAddRequest {
            dn: "CN=Half,CN=Users,DC=testlab,DC=example".into(),
            attributes: vec![LdapPartialAttribute { atype: "objectClass".into(), vals: vec![b"group".to_vec()] }],
        }),
        ctrl: vec![],
    };
    let bytes = encode(add);
    for cut in [1, bytes.len() / 2, bytes.len() - 1] {
        let mut s = TcpStream::connect(addr(&t)).await.unwrap();
        s.write_all(&bytes[..cut]).await.unwrap();
        drop(s);
    }
    // a bind then half a request, then gone
    let mut s = TcpStream::connect(addr(&t)).await.unwrap();
    let bind = admin_bind(&t);
    s.write_all(&encode(bind)).await.unwrap();
    let mut buf = [0u8; 256];
    let _ = s.read(&mut buf).await.unwrap();
    s.write_all(&bytes[..bytes.len() - 3]).await.unwrap();
    drop(s);
    assert_eq!(usn(&t).await, before);
    let mut l = t.admin(Via::Plain).await;
    assert_eq!(l.search("CN=Half,CN=Users,DC=testlab,DC=example", Scope::Base, "(objectClass=*)", vec!["1.1"]).await.unwrap().1.rc, 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_misuse_is_answered_as_ad_answers_it() {
    install_crypto();
    let t = TestLab::start().await;
    let s = TcpStream::connect(addr(&t)).await.unwrap();
    let mut f = Framed::new(s, LdapCodec::default());
    // SASL: authMethodNotSupported; LDAPv4: protocolError; unknown extended op: protocolError
    let sasl = LdapBindCred::SASL(SaslCredentials { mechanism: "GSSAPI".into(), credentials: vec![] });
    let requests = [
        (1, LdapOp::BindRequest(LdapBindRequest { version: 3, dn: String::new(), cred: sasl })),
        (2, LdapOp::BindRequest(LdapBindRequest { version: 4, dn: String::new(), cred: LdapBindCred::Simple(String::new()) })),
        (3, LdapOp::ExtendedRequest(LdapExtendedRequest { name: "1.3.6.1.4.1.4203.1.11.1".into(), value: None })),
        (4, LdapOp::AbandonRequest(1)),
        (
            5,
            LdapOp::SearchRequest(LdapSearchRequest {
                base: String::new(),
                scope: LdapSearchScope::Base,
                aliases: LdapDerefAliases::Never,
                sizelimit: 0,
                timelimit: 0,
                typesonly: true,
                filter: LdapFilter::Present("objectClass".into()),
                attrs: vec!["defaultNamingContext".into()],
            }),
        ),
    ];
    for (msgid, op) in requests {
        f.send(LdapMsg { msgid, op, ctrl: vec![] }).await.unwrap();
    }
    let codes: Vec<(i32, LdapResultCode)> =
        vec![(1, LdapResultCode::AuthMethodNotSupported), (2, LdapResultCode::ProtocolError), (3, LdapResultCode::ProtocolError)];
    for (msgid, code) in codes {
        let m = f.next().await.unwrap().unwrap();
        let res = match m.op {
            LdapOp::BindResponse(r) => r.res,
            LdapOp::ExtendedResponse(r) => r.res,
            other => panic!("{other:?}"),
        };
        assert_eq!((m.msgid, res.code), (msgid, code), "{}", res.message);
    }
    // abandon has no answer: the next message answers the search, types only
    let m = f.next().await.unwrap().unwrap();
    assert_eq!(m.msgid, 5);
    let LdapOp::SearchResultEntry(e) = m.op else { panic!("{:?}", m.op) };
    assert_eq!(e.attributes.len(), 1);
    assert!(e.attributes[0].vals.is_empty());
    // sending a response is a protocol violation: notice, then the connection closes
    f.send(LdapMsg {
        msgid: 6,
        op: LdapOp::DelResponse(LdapResult {
            code: LdapResultCode::Success,
            matcheddn: String::new(),
            message: String::new(),
            referral: vec![],
        }),
        ctrl: vec![],
    })
    .await
    .unwrap();
    let mut rest = vec![];
    while let Some(Ok(m)) = f.next().await {
        rest.push(m);
    }
    assert!(rest.last().is_some_and(is_notice), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_that_cannot_be_decoded_closes_the_connection_and_changes_nothing() {
    install_crypto();
    let t = TestLab::start().await;
    let before = usn(&t).await;
    // A SearchRequest whose filter has an unknown choice tag ([12]): the PDU is well framed
    // but the filter is not RFC 4511's.
    let body: Vec<u8> = [
        &[0x04, 0x00][..],               // baseObject ""
        &[0x0a, 0x01, 0x00],             // scope base
        &[0x0a, 0x01, 0x00],             // derefAliases never
        &[0x02, 0x01, 0x00],             // sizeLimit 0
        &[0x02, 0x01, 0x00],             // timeLimit 0
        &[0x01, 0x01, 0x00],             // typesOnly false
        &[0xac, 0x03, 0x04, 0x01, 0x78], // filter: [12] { "x" } — no such filter type
        &[0x30, 0x00],                   // attributes
    ]
    .concat();
    let mut search = vec![0x63, body.len() as u8];
    search.extend(body);
    let mut pdu = vec![0x30, (3 + search.len()) as u8, 0x02, 0x01, 0x07];
    pdu.extend(search);
    let mut s = TcpStream::connect(addr(&t)).await.unwrap();
    s.write_all(&pdu).await.unwrap();
    let msgs = drain(s).await;
    assert!(msgs.len() == 1 && is_notice(&msgs[0]), "{msgs:?}");
    assert_eq!(usn(&t).await, before);
}

/// A lab without the engine, so that a test's client is the DC's only one (its connection
/// then polls for the next request before sleeping: ad_ds::server::LONE_CLIENT_SPIN).
async fn lone_client_lab() -> TestLab {
    TestLab::start_with(|c| c.engine = false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_clients_request_in_two_parts_is_answered_once_whole() {
    install_crypto();
    let t = lone_client_lab().await;
    assert_eq!(t.lab.adds.as_ref().unwrap().clients(), 0);
    let bind = admin_bind(&t);
    let whoami = LdapMsg {
        msgid: 2,
        op: LdapOp::ExtendedRequest(LdapExtendedRequest { name: "1.3.6.1.4.1.4203.1.11.3".into(), value: None }),
        ctrl: vec![],
    };
    let mut f = Framed::new(TcpStream::connect(addr(&t)).await.unwrap(), LdapCodec::default());
    for (msg, cut) in [(bind, 7), (whoami, 3)] {
        let bytes = encode(msg);
        f.get_mut().write_all(&bytes[..cut]).await.unwrap();
        // the server reads the first part (a spin, then asleep) and answers nothing yet
        assert!(tokio::time::timeout(Duration::from_millis(200), f.next()).await.is_err(), "no answer to part of a request");
        f.get_mut().write_all(&bytes[cut..]).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), f.next()).await.expect("an answer").unwrap().unwrap();
        match answer.op {
            LdapOp::BindResponse(r) => assert_eq!(r.res.code, LdapResultCode::Success),
            LdapOp::ExtendedResponse(r) => {
                assert_eq!(r.res.code, LdapResultCode::Success);
                assert!(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).starts_with("u:TESTLAB\\Administrator"), "{r:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Every way in counts as one client and every way out uncounts it: were the count to drift,
/// a lone client would lose its spin, or many clients would spin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dc_counts_its_clients_on_every_way_in_and_out() {
    install_crypto();
    let t = lone_client_lab().await;
    let dc = t.lab.adds.clone().unwrap();
    let settles_at = |n: usize| {
        let dc = dc.clone();
        async move {
            let counted = tokio::time::timeout(Duration::from_secs(5), async {
                while dc.clients() != n {
                    tokio::task::yield_now().await;
                }
            });
            assert!(counted.await.is_ok(), "{} clients counted, {n} connected", dc.clients());
        }
    };
    let mut clients = vec![];
    for (n, via) in [Via::Plain, Via::StartTls, Via::Ldaps].into_iter().enumerate() {
        let mut l = t.admin(via).await;
        l.extended(ldap3::exop::WhoAmI).await.unwrap().success().unwrap();
        clients.push(l);
        settles_at(n + 1).await;
    }
    // a raw socket that never speaks, and one whose TLS handshake fails
    let silent = TcpStream::connect(addr(&t)).await.unwrap();
    settles_at(4).await;
    let mut bad = TcpStream::connect(t.info().adds.ldaps.trim_start_matches("ldaps://")).await.unwrap();
    bad.write_all(b"not a TLS hello").await.unwrap();
    let _ = bad.read(&mut [0u8; 64]).await;
    settles_at(4).await;
    drop(silent);
    settles_at(3).await;
    for mut l in clients {
        l.unbind().await.unwrap();
    }
    settles_at(0).await;
}
