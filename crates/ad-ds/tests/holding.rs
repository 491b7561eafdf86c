//! What clients hold on the DC cannot deny it to others (issue 31, items 2 and 3).
//!
//! Half-sent requests cannot take its memory: a connection that has not bound may send at
//! most 128 KiB, such connections together hold at most their share of the receive budget,
//! all connections at most the budget; past it the connection whose buffer would grow is told
//! why and closed, and everyone else — a new client's bind among them — keeps working. Memory
//! is counted as the buffers' capacity, and given back.
//!
//! Connections held open cannot take its listener: at the cap, the oldest connection that
//! has not bound makes room for the new one; only when every connection has bound is a new
//! one refused.

use std::sync::Arc;
use std::time::Duration;

use ad_ds::server::Limits;
use ad_ds::{Directory, DomainConfig, DomainController, Transport};
use clock::Clock;
use futures::{SinkExt, StreamExt};
use ldap3_proto::proto::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Encoder, Framed};

const ADMIN: &str = "CN=Administrator,CN=Users,DC=budget,DC=example";
const PASSWORD: &str = "Budget-Admin-Pass-1";
const MIB: usize = 1024 * 1024;

async fn dc(limits: Limits) -> (Arc<DomainController>, std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let cfg = DomainConfig {
        dns_name: "budget.example".into(),
        netbios: "BUDGET".into(),
        dc_name: "DC1".into(),
        sid: [1, 2, 3],
        seed: 1,
        admin_password: PASSWORD.into(),
    };
    let dc = DomainController::with_limits(Directory::new(cfg, Clock::frozen(Clock::lab_epoch())), None, limits);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ad_ds::serve(listener, dc.clone(), Transport::Ldap, async move {
        let _ = stopped.await;
    }));
    (dc, addr, stop)
}

fn few_connections(max_connections: usize) -> Limits {
    Limits { max_connections, ..Limits::default() }
}

fn small_budget() -> Limits {
    Limits { receive_budget: 8 * MIB, unbound_receive_budget: MIB, ..Limits::default() }
}

fn encode(msg: LdapMsg) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    ldap3_proto::LdapCodec::new(Some(64 * MIB), None).encode(msg, &mut buf).unwrap();
    buf.to_vec()
}

/// A base search of the rootDSE.
fn root_dse_search(msgid: i32, filter: LdapFilter, attrs: Vec<String>) -> LdapMsg {
    let op = LdapSearchRequest {
        base: "".into(),
        scope: LdapSearchScope::Base,
        aliases: LdapDerefAliases::Never,
        sizelimit: 0,
        timelimit: 0,
        typesonly: false,
        filter,
        attrs,
    };
    LdapMsg { msgid, op: LdapOp::SearchRequest(op), ctrl: vec![] }
}

/// A search whose filter value is `size` bytes (what an anonymous client may send).
fn search(size: usize) -> Vec<u8> {
    encode(root_dse_search(2, LdapFilter::Equality("description".into(), "x".repeat(size)), vec![]))
}

/// An add with a `size`-byte description (a bound client's large request).
fn add(size: usize) -> Vec<u8> {
    encode(LdapMsg {
        msgid: 2,
        op: LdapOp::AddRequest(LdapAddRequest {
            dn: "CN=Big,CN=Users,DC=budget,DC=example".into(),
            attributes: vec![
                LdapPartialAttribute { atype: "objectClass".into(), vals: vec![b"user".to_vec()] },
                LdapPartialAttribute { atype: "description".into(), vals: vec![vec![b'y'; size]] },
            ],
        }),
        ctrl: vec![],
    })
}

/// A connection bound as the Administrator.
async fn bound(addr: std::net::SocketAddr) -> Framed<TcpStream, ldap3_proto::LdapCodec> {
    let mut f = Framed::new(TcpStream::connect(addr).await.unwrap(), ldap3_proto::LdapCodec::new(Some(64 * MIB), None));
    let bind = LdapBindRequest { version: 3, dn: ADMIN.into(), cred: LdapBindCred::Simple(PASSWORD.into()) };
    f.send(LdapMsg { msgid: 1, op: LdapOp::BindRequest(bind), ctrl: vec![] }).await.unwrap();
    match f.next().await.unwrap().unwrap().op {
        LdapOp::BindResponse(r) => assert_eq!(r.res.code, LdapResultCode::Success, "{}", r.res.message),
        other => panic!("{other:?}"),
    }
    f
}

/// Waits (up to 10 s) for the DC to have taken in what was sent: `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// What the DC said before it hung up, as text; "reset" when the close came as a reset (a
/// socket closed with unread bytes in it sends one, and the client may lose what came before).
async fn last_words(mut s: TcpStream) -> String {
    let mut out = vec![];
    match tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await.expect("the DC hung up") {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => "reset".into(),
        _ => String::from_utf8_lossy(&out).into_owned(),
    }
}

/// Every connection the DC closed said why, or was reset before it could be read (the usual
/// case: the DC closes with the rest of the request unread, and the reset takes the notice).
async fn each_told(closed: Vec<TcpStream>, why: &str) {
    for s in closed {
        let words = last_words(s).await;
        assert!(words.contains(why) || words == "reset", "{words}");
    }
}

/// A new connection, once the DC has taken it in (counted among its clients).
async fn accepted(dc: &DomainController, addr: std::net::SocketAddr) -> TcpStream {
    // (counted by the total taken in: the number open may not move when another client is
    // counted out at the same moment)
    let before = dc.accepted_total();
    let s = TcpStream::connect(addr).await.unwrap();
    until("the connection accepted", || dc.accepted_total() > before).await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_half_sent_requests_are_held_to_their_share_and_a_bind_still_gets_in() {
    let (dc, addr, _stop) = dc(small_budget()).await;

    // over 128 KiB before a bind: refused by the length it claims, with AD's wording
    let mut s = TcpStream::connect(addr).await.unwrap();
    let big = search(MIB);
    let _ = s.write_all(&big[..64 * 1024]).await;
    let words = last_words(s).await;
    assert!(words.contains("MaxReceiveBuffer") || words == "reset", "{words}");
    // (the DC counts a client out a moment after it hangs up: `accepted` below must not see
    // that going and a new one coming as no change)
    until("the refused connection gone", || dc.clients() == 0).await;

    // 30 anonymous clients, each 120 KiB of a request short of its last byte
    let (mut held, mut closed) = (vec![], vec![]);
    let request = search(120 * 1024);
    for _ in 0..30 {
        let mut s = accepted(&dc, addr).await;
        let (clients, unbound) = (dc.clients(), dc.receive_budget().held_unbound());
        // (the DC may hang up before it has read it all)
        let _ = s.write_all(&request[..request.len() - 1]).await;
        until("the request taken in or refused", || dc.receive_budget().held_unbound() > unbound || dc.clients() < clients).await;
        if dc.clients() < clients {
            closed.push(s)
        } else {
            held.push(s)
        }
        assert!(dc.receive_budget().held_unbound() <= MIB, "{} bytes held", dc.receive_budget().held_unbound());
    }
    assert!(held.len() >= 4 && !closed.is_empty(), "{} held, {} closed", held.len(), closed.len());
    each_told(closed, "receive buffers are full").await;

    // the anonymous share spent: a bind gets in, and a bound client's large request is read
    let admin = bound(addr).await;
    let mut raw = admin.into_inner();
    raw.write_all(&add(2 * MIB)).await.unwrap();
    let mut admin = Framed::new(raw, ldap3_proto::LdapCodec::new(Some(64 * MIB), None));
    match admin.next().await.unwrap().unwrap().op {
        // AD's limit on a value's size (19 constraintViolation): the request was read whole
        LdapOp::AddResponse(r) => assert_eq!(r.code, LdapResultCode::ConstraintViolation, "{}", r.message),
        other => panic!("{other:?}"),
    }
    // …and its 2 MiB buffer is given back once the request is answered
    until("the large buffer given back", || dc.receive_budget().held() == dc.receive_budget().held_unbound()).await;

    // every client gone: nothing is held
    drop((held, admin));
    until("every connection closed", || dc.clients() == 0).await;
    assert_eq!((dc.receive_budget().held(), dc.receive_budget().held_unbound()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_half_sent_requests_share_the_whole_budget() {
    let (dc, addr, _stop) = dc(small_budget()).await;
    let request = add(3 * MIB);
    let (mut held, mut closed) = (vec![], vec![]);
    for _ in 0..4 {
        let f = bound(addr).await;
        let (clients, before) = (dc.clients(), dc.receive_budget().held());
        let mut s = f.into_inner();
        let _ = s.write_all(&request[..request.len() - 1]).await;
        until("the request taken in or refused", || dc.receive_budget().held() >= before + 3 * MIB - 64 * 1024 || dc.clients() < clients)
            .await;
        if dc.clients() < clients {
            closed.push(s)
        } else {
            held.push(s)
        }
        assert!(dc.receive_budget().held() <= 8 * MIB, "{} bytes held", dc.receive_budget().held());
    }
    assert!(!held.is_empty() && !closed.is_empty(), "{} held, {} closed", held.len(), closed.len());
    for s in closed {
        // a 3 MiB write cut short: the close is usually a reset
        let words = last_words(s).await;
        assert!(words.contains("receive buffers are full") || words == "reset", "{words}");
    }
    // a client holding its share finishes its request: answered, and the DC still serves binds
    let mut s = held.pop().unwrap();
    s.write_all(&request[request.len() - 1..]).await.unwrap();
    let mut f = Framed::new(s, ldap3_proto::LdapCodec::new(Some(64 * MIB), None));
    assert!(matches!(f.next().await.unwrap().unwrap().op, LdapOp::AddResponse(_)));
    drop(bound(addr).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_listener_sheds_the_oldest_connection_that_has_not_bound() {
    let (dc, addr, _stop) = dc(few_connections(4)).await;
    // an anonymous client holds every connection the listener takes
    let mut held = vec![];
    for _ in 0..4 {
        held.push(accepted(&dc, addr).await);
    }
    assert_eq!(dc.clients(), 4);
    // the lab's own part comes: it gets in and binds; the oldest anonymous one made room
    let mut engine = bound(addr).await;
    until("the shed connection gone", || dc.clients() == 4).await;
    let first = held.remove(0);
    assert_eq!(last_words(first).await, "", "the oldest held connection was closed");
    // a bound connection is never shed: three more binds take the anonymous ones' places…
    let mut others = vec![];
    for _ in 0..3 {
        others.push(bound(addr).await);
    }
    for s in held {
        assert_eq!(last_words(s).await, "");
    }
    // …and with every connection bound, a new one is refused, and the bound ones still work
    let refused = TcpStream::connect(addr).await.unwrap();
    assert_eq!(last_words(refused).await, "", "closed at once");
    let who = LdapMsg {
        msgid: 9,
        op: LdapOp::ExtendedRequest(LdapExtendedRequest { name: "1.3.6.1.4.1.4203.1.11.3".into(), value: None }),
        ctrl: vec![],
    };
    engine.send(who).await.unwrap();
    assert!(matches!(engine.next().await.unwrap().unwrap().op, LdapOp::ExtendedResponse(r) if r.res.code == LdapResultCode::Success));
    until("the refused connection gone", || dc.clients() == 4).await;
    drop(others);
}

/// A lone client that has not bound is spun for 16 reads at most — a handshake's and a
/// bind's — (issue 31, item 5): an anonymous client trickling bytes could otherwise keep a
/// core busy at no cost to itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_lone_client_is_spun_for_sixteen_reads_at_most() {
    let (dc, addr, _stop) = dc(Limits::default()).await;
    let root_dse = |id: i32| root_dse_search(id, LdapFilter::Present("objectClass".into()), vec!["defaultNamingContext".into()]);
    async fn ask(f: &mut Framed<TcpStream, ldap3_proto::LdapCodec>, m: LdapMsg) {
        f.send(m).await.unwrap();
        // the entry, then the done
        while !matches!(f.next().await.unwrap().unwrap().op, LdapOp::SearchResultDone(_)) {}
    }
    let mut anonymous = Framed::new(TcpStream::connect(addr).await.unwrap(), ldap3_proto::LdapCodec::new(Some(MIB), None));
    for id in 1..=40 {
        ask(&mut anonymous, root_dse(id)).await;
    }
    assert!(dc.spins() <= 16, "an anonymous client is spun for 16 reads at most: {}", dc.spins());
    drop(anonymous);
    until("the anonymous client gone", || dc.clients() == 0).await;
    // a bound client is not held to it (how much it spins is Spin's to ration: server.rs's
    // unit tests); it is answered as ever
    let mut bound = bound(addr).await;
    ask(&mut bound, root_dse(2)).await;
}
