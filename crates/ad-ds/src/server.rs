//! The LDAP listeners: plain LDAP (with StartTLS) and LDAPS, each connection a [`Session`]
//! fed by the ldap3_proto codec. Servers take a bound listener and a shutdown future, so
//! tests run many on free ports.

use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::codec::AdCodec;
use futures::{SinkExt, StreamExt};
use ldap3_proto::proto::LdapOp;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Framed;
use tracing::{debug, info, warn};

use crate::directory::Directory;
use crate::session::{Next, Session, notice_of_disconnection};
use crate::tls::TlsIdentity;

/// AD's MaxReceiveBuffer: the largest request a DC accepts (10 MiB).
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// AD's MaxConnIdleTime.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(900);
/// How long a TLS handshake (LDAPS, or after StartTLS) may take before the DC hangs up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections per listener (AD's MaxActiveQueries/MaxConnections keep a DC alive the
/// same way): past it a new connection is closed at once, so idle clients cannot take every
/// file descriptor from the lab.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long a lone client's connection polls for its next request before its task sleeps.
pub const LONE_CLIENT_SPIN: Duration = Duration::from_micros(100);

/// How much a listener holds on to: connections, and how long a silent client may keep one.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    /// The largest request of a connection that has not bound.
    pub max_unbound_request: usize,
    /// Receive buffers' memory, all connections together / those not bound.
    pub receive_budget: usize,
    pub unbound_receive_budget: usize,
}

/// The largest request before a bind: twice Kerberos' largest token (MaxTokenSize, 65,535
/// bytes), so a SASL bind fits; an anonymous search is far smaller.
pub const MAX_UNBOUND_REQUEST_BYTES: usize = 128 * 1024;
/// Receive buffers' memory: 25 requests of MaxReceiveBuffer at once; a quarter of it for
/// connections that have not bound, so anonymous clients cannot take it all.
pub const RECEIVE_BUDGET: usize = 256 * 1024 * 1024;
pub const UNBOUND_RECEIVE_BUDGET: usize = 64 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: MAX_CONNECTIONS,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_unbound_request: MAX_UNBOUND_REQUEST_BYTES,
            receive_budget: RECEIVE_BUDGET,
            unbound_receive_budget: UNBOUND_RECEIVE_BUDGET,
        }
    }
}

/// A running domain controller's shared state: the directory, its TLS identity, and the
/// faults a lab can switch on.
pub struct DomainController {
    pub directory: RwLock<Directory>,
    pub tls: Option<TlsIdentity>,
    pub faults: Faults,
    /// The recent operations, passwords redacted (the lab dashboard lists them).
    pub ops: crate::oplog::OpLog,
    pub limits: Limits,
    /// Connections open on both listeners.
    clients: AtomicUsize,
    /// Connections taken in since the start (a counter, as a DC's performance counters keep).
    accepted: std::sync::atomic::AtomicU64,
    /// Reads that spun for a lone client's next request.
    spins: std::sync::atomic::AtomicU64,
    receive_budget: Arc<crate::codec::ReceiveBudget>,
    /// The domain's PDC emulator, on a DC that is not it ([`crate::topology`]): where a
    /// wrong password is checked again and a password write is sent at once.
    pub pdc: std::sync::OnceLock<Arc<DomainController>>,
    /// The domain's other DCs (weak: they point back here), which a lockout reaches at once.
    pub partners: std::sync::OnceLock<Vec<std::sync::Weak<DomainController>>>,
}

impl DomainController {
    /// Urgent replication of one object to every partner that is up (an account lockout:
    /// AD replicates it at once to the PDC emulator and the site's DCs). Copied out first,
    /// applied after: no two directory locks at once.
    pub fn replicate_urgently(&self, key: &crate::dn::DnKey) {
        let change = self.directory.read().unwrap_or_else(std::sync::PoisonError::into_inner).change_of(key);
        let Some(change) = change else { return };
        let changes = crate::directory::Changes { changes: vec![change], high_usn: 0 };
        for p in self.partners.get().into_iter().flatten().filter_map(std::sync::Weak::upgrade) {
            if p.faults.state() != DcState::Down {
                p.directory.write().unwrap_or_else(std::sync::PoisonError::into_inner).apply(&changes);
            }
        }
    }

    pub fn new(directory: Directory, tls: Option<TlsIdentity>) -> Arc<DomainController> {
        DomainController::with_limits(directory, tls, Limits::default())
    }

    pub fn with_limits(directory: Directory, tls: Option<TlsIdentity>, limits: Limits) -> Arc<DomainController> {
        Arc::new(DomainController {
            directory: RwLock::new(directory),
            tls,
            faults: Faults::default(),
            ops: Default::default(),
            receive_budget: Arc::new(crate::codec::ReceiveBudget::new(limits.receive_budget, limits.unbound_receive_budget)),
            limits,
            clients: AtomicUsize::new(0),
            accepted: Default::default(),
            spins: Default::default(),
            pdc: Default::default(),
            partners: Default::default(),
        })
    }

    /// How many reads have spun for a lone client's next request (see [`LONE_CLIENT_SPIN`]).
    pub fn spins(&self) -> u64 {
        self.spins.load(Ordering::Relaxed)
    }

    /// What the connections' receive buffers hold now.
    pub fn receive_budget(&self) -> &crate::codec::ReceiveBudget {
        &self.receive_budget
    }

    /// Connections open on both listeners now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// How many connections it has taken in since it started (never goes down: one closing
    /// while another opens is still seen).
    pub fn accepted_total(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// The identity new TLS handshakes get: the DC's own, or, with the untrusted-certificate
    /// fault, one from a CA no client was given.
    fn acceptor(&self) -> Option<TlsAcceptor> {
        let own = self.tls.as_ref()?;
        if self.faults.state() != DcState::UntrustedCertificate {
            return Some(TlsAcceptor::from(own.config.clone()));
        }
        let other = self
            .faults
            .untrusted
            .get_or_init(|| crate::tls::generate(&["localhost".into(), "127.0.0.1".into()], "Untrusted").ok().map(|t| t.config));
        Some(TlsAcceptor::from(other.clone().unwrap_or_else(|| own.config.clone())))
    }
}

/// What a DC can be made to do wrong, as an operator would cause it: stop answering, present
/// a certificate from a CA clients do not trust, predate the policy-hints control, or answer
/// searches late (a DC under load: what lets a deadline pass between a client's search and
/// its write).
#[derive(Default)]
pub struct Faults {
    state: std::sync::atomic::AtomicU8,
    no_policy_hints: std::sync::atomic::AtomicBool,
    search_delay_ms: std::sync::atomic::AtomicU64,
    untrusted: std::sync::OnceLock<Option<Arc<rustls::ServerConfig>>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DcState {
    Up,
    /// Open connections are dropped and new ones closed at once.
    Down,
    /// TLS handshakes (LDAPS, StartTLS) present a certificate from another CA; open
    /// connections are dropped so that clients must handshake again.
    UntrustedCertificate,
}

impl Faults {
    pub fn state(&self) -> DcState {
        match self.state.load(std::sync::atomic::Ordering::SeqCst) {
            1 => DcState::Down,
            2 => DcState::UntrustedCertificate,
            _ => DcState::Up,
        }
    }

    pub fn set_state(&self, s: DcState) {
        self.state.store(s as u8, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn policy_hints_supported(&self) -> bool {
        !self.no_policy_hints.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn set_policy_hints_supported(&self, on: bool) {
        self.no_policy_hints.store(!on, std::sync::atomic::Ordering::SeqCst);
    }

    /// How late a search is answered (0: at once).
    pub fn search_delay(&self) -> Duration {
        Duration::from_millis(self.search_delay_ms.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// At most [`MAX_SEARCH_DELAY`].
    pub fn set_search_delay(&self, delay: Duration) {
        let ms = delay.min(MAX_SEARCH_DELAY).as_millis() as u64;
        self.search_delay_ms.store(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The longest search delay the fault takes (a minute: past any writeback deadline).
pub const MAX_SEARCH_DELAY: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// ldap://, with StartTLS when the DC has a TLS identity.
    Ldap,
    /// ldaps://: TLS from the first byte.
    Ldaps,
}

/// A listener's open connections: whether each has bound, in the order they came.
#[derive(Default)]
struct Open {
    by_task: std::collections::HashMap<tokio::task::Id, (u64, Arc<std::sync::atomic::AtomicBool>, tokio::task::AbortHandle)>,
    next: u64,
}

impl Open {
    fn add(&mut self, bound: Arc<std::sync::atomic::AtomicBool>, handle: tokio::task::AbortHandle) {
        self.next += 1;
        self.by_task.insert(handle.id(), (self.next, bound, handle));
    }

    /// Closes the oldest connection that has not bound (nobody's session is lost): a full
    /// listener makes room for the lab's own parts — the engine, the portal, a trainee's
    /// tool — however many connections an anonymous client holds. False: every one has bound.
    fn ended(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(e) => e.id(),
        };
        self.by_task.remove(&id);
    }

    fn shed_one(&mut self) -> bool {
        let oldest = self.by_task.iter().filter(|(_, (_, bound, _))| !bound.load(Ordering::Relaxed)).min_by_key(|(_, (seq, _, _))| *seq);
        let Some(id) = oldest.map(|(id, _)| *id) else { return false };
        if let Some((_, _, handle)) = self.by_task.remove(&id) {
            handle.abort();
        }
        true
    }
}

/// Serves LDAP on `listener` until `shutdown` completes; open connections are then closed.
pub async fn serve(listener: TcpListener, dc: Arc<DomainController>, transport: Transport, shutdown: impl Future<Output = ()>) {
    let mut conns = JoinSet::new();
    let mut open = Open::default();
    let mut complaints = crate::ratelimit::Every::new(Duration::from_secs(10));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if dc.faults.state() == DcState::Down => drop(stream),
                Ok((stream, peer)) if open.by_task.len() >= dc.limits.max_connections && !open.shed_one() => {
                    if let Some(more) = complaints.due() {
                        let max = dc.limits.max_connections;
                        warn!(%peer, ?transport, "{max} connections open, all bound: refusing new ones ({more} refused since the last report)");
                    }
                    drop(stream);
                }
                Ok((stream, peer)) => {
                    debug!(%peer, ?transport, "connection");
                    let _ = stream.set_nodelay(true);
                    let bound = Arc::new(std::sync::atomic::AtomicBool::new(false));
                    let handle = conns.spawn(connection(stream, peer, dc.clone(), transport, bound.clone()));
                    open.add(bound, handle);
                }
                Err(e) => {
                    // out of file descriptors (or another passing failure): the error would
                    // come back at once, so wait a moment instead of spinning
                    if let Some(more) = complaints.due() {
                        warn!(?transport, "accept: {e} ({more} more since the last report)");
                    }
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                        Some(done) = conns.join_next_with_id(), if !conns.is_empty() => open.ended(done),
                    }
                }
            },
            Some(done) = conns.join_next_with_id(), if !conns.is_empty() => open.ended(done),
        }
    }
    conns.shutdown().await;
    info!(?transport, "LDAP listener stopped");
}

/// A codec for the session as it stands (a StartTLS session may already have bound).
fn codec(session: &Session, dc: &DomainController) -> AdCodec {
    let unbound_max = dc.limits.max_unbound_request.min(MAX_REQUEST_BYTES);
    let mut c = AdCodec::with_budget(unbound_max, MAX_REQUEST_BYTES, dc.receive_budget.clone());
    c.set_bound(session.bound());
    c
}

async fn connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    dc: Arc<DomainController>,
    transport: Transport,
    bound: Arc<std::sync::atomic::AtomicBool>,
) {
    let stream = ClientSocket::new(stream, dc.clone(), bound.clone());
    let acceptor = dc.acceptor();
    let mut session = Session::new(transport == Transport::Ldaps, acceptor.is_some());
    session.pdc = dc.pdc.get().cloned();
    session.this_dc = dc.partners.get().is_some().then(|| dc.clone());
    if transport == Transport::Ldaps {
        let Some(acceptor) = acceptor else { return };
        match tokio::time::timeout(dc.limits.handshake_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                run(Framed::new(tls, codec(&session, &dc)), &mut session, &dc, &bound, peer).await;
            }
            Ok(Err(e)) => debug!("LDAPS handshake: {e}"),
            Err(_) => debug!("LDAPS handshake: timed out"),
        }
        return;
    }
    let Some(framed) = run(Framed::new(stream, codec(&session, &dc)), &mut session, &dc, &bound, peer).await else { return };
    // StartTLS: the response has been sent in clear; the handshake follows on the same socket.
    let parts = framed.into_parts();
    if !parts.read_buf.is_empty() {
        return; // the client sent data before the handshake: RFC 4511 4.14.1 forbids it
    }
    let Some(acceptor) = dc.acceptor() else { return };
    match tokio::time::timeout(dc.limits.handshake_timeout, acceptor.accept(parts.io)).await {
        Ok(Ok(tls)) => {
            session.tls_started();
            run(Framed::new(tls, codec(&session, &dc)), &mut session, &dc, &bound, peer).await;
        }
        Ok(Err(e)) => debug!("StartTLS handshake: {e}"),
        Err(_) => debug!("StartTLS handshake: timed out"),
    }
}

/// Reads requests until the client leaves; returns the framed stream when it asked for
/// StartTLS.
async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    mut framed: Framed<S, AdCodec>,
    session: &mut Session,
    dc: &DomainController,
    bound: &std::sync::atomic::AtomicBool,
    peer: std::net::SocketAddr,
) -> Option<Framed<S, AdCodec>> {
    loop {
        let msg = match tokio::time::timeout(dc.limits.idle_timeout, framed.next()).await {
            Err(_) => {
                let _ = framed
                    .send(notice_of_disconnection("00002024: LdapErr: DSID-0C060598, comment: idle connection timed out, data 0, v4563"))
                    .await;
                return None;
            }
            Ok(None) => return None,
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => {
                // Undecodable or oversized PDU: tell the client why, then hang up, as AD does.
                // (OpenLDAP tools drop TLS without close_notify, which also lands here.)
                static BAD_PDUS: crate::ratelimit::Shared = crate::ratelimit::Shared::new(Duration::from_secs(10));
                match BAD_PDUS.due() {
                    Some(held) if e.kind() != std::io::ErrorKind::UnexpectedEof && e.kind() != std::io::ErrorKind::ConnectionReset => {
                        info!("closing a connection that sent an undecodable request: {e} ({held} more since the last report)")
                    }
                    _ => debug!("closing connection: {e}"),
                }
                if e.kind() != std::io::ErrorKind::UnexpectedEof && e.kind() != std::io::ErrorKind::ConnectionReset {
                    let why = if e.to_string() == crate::codec::BUDGET_SPENT {
                        "00002024: LdapErr: DSID-0C060598, comment: the DC's receive buffers are full, data 0, v4563"
                    } else if e.kind() == std::io::ErrorKind::OutOfMemory {
                        "00002024: LdapErr: DSID-0C060598, comment: the request is larger than MaxReceiveBuffer, data 0, v4563"
                    } else {
                        "00002024: LdapErr: DSID-0C060598, comment: the request could not be decoded, data 0, v4563"
                    };
                    let _ = framed.send(notice_of_disconnection(why)).await;
                }
                return None;
            }
        };
        // a fault switched on since this connection opened ends it (a client must connect again)
        if dc.faults.state() != DcState::Up {
            return None;
        }
        session.policy_hints_supported = dc.faults.policy_hints_supported();
        let delay = dc.faults.search_delay();
        if !delay.is_zero() && matches!(msg.op, LdapOp::SearchRequest(_)) {
            tokio::time::sleep(delay).await;
        }
        let request = crate::oplog::request(&msg.op);
        let who = match &session.principal {
            crate::Principal::Anonymous => "anonymous".to_string(),
            p => p.dn().map(|d| d.to_string()).unwrap_or_default(),
        };
        let reply = session.handle(&dc.directory, msg);
        framed.codec_mut().set_bound(session.bound());
        bound.store(session.bound(), Ordering::Relaxed);
        if let Some(request) = request {
            dc.ops.record(peer, who, request, crate::oplog::result(&reply.msgs));
        }
        for m in reply.msgs {
            if framed.feed(m).await.is_err() {
                return None;
            }
        }
        if framed.flush().await.is_err() {
            return None;
        }
        match reply.next {
            Next::Continue => {}
            Next::Close => {
                // Close TLS properly (close_notify) before the socket goes.
                let _ = framed.close().await;
                return None;
            }
            Next::StartTls => return Some(framed),
        }
    }
}

/// A client's TCP socket, counted in [`DomainController::clients`]. When its client is the only
/// one, a read that finds nothing polls the kernel for up to [`LONE_CLIENT_SPIN`] before the
/// task sleeps: a client in a request loop (a script, a sync tool) sends its next request
/// within that time, and on a VM every sleep costs a wake-up through the hypervisor (tens of
/// µs on the 2-vCPU machine of docs/benchmarks.md, more than answering a bind). [`Spin`]
/// stops it where it does not pay; with other clients the task sleeps at once.
struct ClientSocket {
    tcp: TcpStream,
    dc: Arc<DomainController>,
    spin: Spin,
    /// Whether the client has bound: only then is it spun for without end (an anonymous
    /// client trickling a byte at a time would otherwise keep a core spinning for nothing).
    bound: Arc<std::sync::atomic::AtomicBool>,
    unbound: UnboundSpins,
}

/// How many reads of a connection that has not bound (yet) may spin: a new connection's TLS
/// handshake and bind are spun for (on a busy machine each sleep there costs a time slice:
/// the engine's connection at a lab's start, 3–4 ms of its median), a trickling anonymous
/// client's bytes are not.
const UNBOUND_SPINS: u8 = 16;

/// The spins a connection may spend before it binds.
#[derive(Default)]
struct UnboundSpins {
    used: u8,
}

impl UnboundSpins {
    /// Whether this read may spin: always once bound; before, [`UNBOUND_SPINS`] times.
    fn allow(&mut self, bound: bool) -> bool {
        if bound {
            return true;
        }
        if self.used >= UNBOUND_SPINS {
            return false;
        }
        self.used += 1;
        true
    }
}

impl ClientSocket {
    fn new(tcp: TcpStream, dc: Arc<DomainController>, bound: Arc<std::sync::atomic::AtomicBool>) -> ClientSocket {
        dc.clients.fetch_add(1, Ordering::Relaxed);
        dc.accepted.fetch_add(1, Ordering::Relaxed);
        ClientSocket { tcp, dc, spin: Spin::default(), bound, unbound: UnboundSpins::default() }
    }

    /// Reads straight from the kernel (the runtime's poller has not seen the bytes yet) until
    /// something arrives or the spin is over.
    fn spin_read(&mut self, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let socket = socket2::SockRef::from(&self.tcp);
        let until = Instant::now() + LONE_CLIENT_SPIN;
        // (of a buffer grown for a large request, at most 64 KiB is zeroed for the reads)
        let room = buf.remaining().min(64 * 1024);
        let mut yields = 0;
        loop {
            // a client on this same CPU gets to run and send its request
            let yielded = Instant::now();
            std::thread::yield_now();
            yields += 1;
            // a yield that gave the CPU away for longer than a whole spin: other work wants
            // this core (a busy CI machine), and every further yield would hand it a time
            // slice: no spinning for a long while
            let contended = yielded.elapsed() >= LONE_CLIENT_SPIN;
            if contended {
                self.spin.contended();
            }
            match (&*socket).read(buf.initialize_unfilled_to(room)) {
                Ok(n) => {
                    buf.advance(n);
                    if !contended {
                        self.spin.found_after(yields);
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            if contended {
                return Poll::Pending;
            }
            if Instant::now() >= until {
                self.spin.found_nothing();
                return Poll::Pending;
            }
        }
    }
}

/// When a connection spins: while spinning pays. It does not when the client ran on this same
/// CPU while the server yielded (the request is there after the first yield: the spin saved
/// no wake-up and cost one of the runtime's poller instead), and it does not when the client
/// is not in a loop (the spin ends with nothing: the CPU was taken from the rest of the lab).
/// After [`Spin::SAME_CPU`] of the first or [`Spin::EMPTY`] of the second in a row, the
/// connection sleeps at once for a pause of reads, then tries again; the pause doubles while
/// spinning does not pay, up to [`Spin::MAX_PAUSE`], and is short again once a spin does
/// (a request found after some waiting).
#[derive(Debug)]
struct Spin {
    same_cpu: u8,
    empty: u8,
    paused: u16,
    pause: u16,
}

impl Default for Spin {
    fn default() -> Spin {
        Spin { same_cpu: 0, empty: 0, paused: 0, pause: Spin::MIN_PAUSE }
    }
}

impl Spin {
    const SAME_CPU: u8 = 8;
    const EMPTY: u8 = 2;
    const MIN_PAUSE: u16 = 64;
    const MAX_PAUSE: u16 = 4096;

    /// Whether the next read that finds nothing spins.
    fn wanted(&mut self, lone: bool) -> bool {
        if self.paused > 0 {
            self.paused -= 1;
            return false;
        }
        lone
    }

    /// A spin found a request after `yields` yields.
    fn found_after(&mut self, yields: u32) {
        self.empty = 0;
        if yields > 1 {
            self.same_cpu = 0;
            self.pause = Spin::MIN_PAUSE;
            return;
        }
        self.same_cpu += 1;
        if self.same_cpu == Spin::SAME_CPU {
            self.same_cpu = 0;
            self.pause_reads();
        }
    }

    /// A spin ended with nothing.
    fn found_nothing(&mut self) {
        self.same_cpu = 0;
        self.empty += 1;
        if self.empty == Spin::EMPTY {
            self.empty = 0;
            self.pause_reads();
        }
    }

    /// The core is wanted by other work (a yield gave it away for longer than a spin): the
    /// longest pause at once.
    fn contended(&mut self) {
        self.same_cpu = 0;
        self.empty = 0;
        self.paused = Spin::MAX_PAUSE;
    }

    fn pause_reads(&mut self) {
        self.paused = self.pause;
        self.pause = (self.pause * 2).min(Spin::MAX_PAUSE);
    }
}

impl Drop for ClientSocket {
    fn drop(&mut self) {
        self.dc.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for ClientSocket {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.tcp).poll_read(cx, buf) {
            // the runtime will wake the task when bytes come; a spin may find them sooner
            Poll::Pending
                if {
                    let lone = this.dc.clients.load(Ordering::Relaxed) == 1 && this.unbound.allow(this.bound.load(Ordering::Relaxed));
                    this.spin.wanted(lone)
                } =>
            {
                this.dc.spins.fetch_add(1, Ordering::Relaxed);
                this.spin_read(buf)
            }
            ready => ready,
        }
    }
}

impl AsyncWrite for ClientSocket {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::Spin;

    #[test]
    fn a_connection_that_has_not_bound_spins_sixteen_reads_at_most() {
        let mut u = super::UnboundSpins::default();
        assert_eq!((0..40).filter(|_| u.allow(false)).count(), usize::from(super::UNBOUND_SPINS));
        assert!((0..40).all(|_| u.allow(true)), "bound: every read");
    }

    /// Reads `n` times, each finding nothing and then a request after `yields` yields; how many spun.
    fn spins(spin: &mut Spin, n: usize, yields: u32) -> usize {
        (0..n)
            .filter(|_| {
                let spun = spin.wanted(true);
                if spun {
                    spin.found_after(yields);
                }
                spun
            })
            .count()
    }

    #[test]
    fn a_lone_client_in_a_loop_on_another_cpu_is_always_spun_for() {
        let mut spin = Spin::default();
        assert_eq!(spins(&mut spin, 10_000, 40), 10_000);
        assert!(!Spin::default().wanted(false), "never with other clients");
    }

    #[test]
    fn a_client_on_the_same_cpu_is_spun_for_less_and_less_until_it_moves() {
        let mut spin = Spin::default();
        // 8 finds after the first yield, then a pause of 64 reads; then 8 and 128; 8 and 256...
        assert_eq!(spins(&mut spin, 8 + 64, 1), 8);
        assert_eq!(spins(&mut spin, 8 + 128, 1), 8);
        let spun = spins(&mut spin, 100_000, 1);
        assert!(spun < 100_000 / 400, "the pause grows to 4,096 reads: {spun} spins");
        // the client moved to the other CPU: once a spin has to wait, pauses are short again
        while !spin.wanted(true) {}
        spin.found_after(40);
        assert_eq!(spins(&mut spin, 8 + 64, 1), 8);
    }

    #[test]
    fn spins_that_find_nothing_pause_spinning() {
        let mut spin = Spin::default();
        // one empty spin (the client paused once) changes nothing
        assert!(spin.wanted(true));
        spin.found_nothing();
        assert!(spin.wanted(true));
        spin.found_after(40);
        // two in a row: the next 64 reads sleep at once, the next pause is 128
        for _ in 0..2 {
            assert!(spin.wanted(true));
            spin.found_nothing();
        }
        assert_eq!(spins(&mut spin, 64, 40), 0);
        for _ in 0..2 {
            assert!(spin.wanted(true));
            spin.found_nothing();
        }
        assert_eq!(spins(&mut spin, 128, 40), 0);
        assert!(spin.wanted(true));
    }

    /// A yield that gave the core away for longer than a spin (the machine is busy: CI running
    /// other tests) stops spinning for the longest pause at once: every further yield would
    /// hand another process a whole time slice (a lab's start under load took 15 ms instead of
    /// 3 for its engine's LDAP reads before this).
    #[test]
    fn a_contended_core_stops_the_spin_for_the_longest_pause() {
        let mut spin = Spin::default();
        assert!(spin.wanted(true));
        spin.contended();
        assert_eq!(spins(&mut spin, Spin::MAX_PAUSE as usize, 40), 0, "no spin for 4,096 reads");
        assert!(spin.wanted(true), "then it tries again");
    }
}
