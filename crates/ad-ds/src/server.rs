//! The LDAP listeners: plain LDAP (with StartTLS) and LDAPS, each connection a [`Session`]
//! fed by the ldap3_proto codec. Servers take a bound listener and a shutdown future, so
//! tests run many on free ports.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::codec::AdCodec;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
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

/// How much a listener holds on to: connections, and how long a silent client may keep one.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_connections: MAX_CONNECTIONS, handshake_timeout: HANDSHAKE_TIMEOUT, idle_timeout: IDLE_TIMEOUT }
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
}

impl DomainController {
    pub fn new(directory: Directory, tls: Option<TlsIdentity>) -> Arc<DomainController> {
        DomainController::with_limits(directory, tls, Limits::default())
    }

    pub fn with_limits(directory: Directory, tls: Option<TlsIdentity>, limits: Limits) -> Arc<DomainController> {
        Arc::new(DomainController { directory: RwLock::new(directory), tls, faults: Faults::default(), ops: Default::default(), limits })
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
/// a certificate from a CA clients do not trust, or predate the policy-hints control.
#[derive(Default)]
pub struct Faults {
    state: std::sync::atomic::AtomicU8,
    no_policy_hints: std::sync::atomic::AtomicBool,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// ldap://, with StartTLS when the DC has a TLS identity.
    Ldap,
    /// ldaps://: TLS from the first byte.
    Ldaps,
}

/// Serves LDAP on `listener` until `shutdown` completes; open connections are then closed.
pub async fn serve(listener: TcpListener, dc: Arc<DomainController>, transport: Transport, shutdown: impl Future<Output = ()>) {
    let mut conns = JoinSet::new();
    let mut complaints = crate::ratelimit::Every::new(Duration::from_secs(10));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if dc.faults.state() == DcState::Down => drop(stream),
                Ok((stream, peer)) if conns.len() >= dc.limits.max_connections => {
                    if let Some(more) = complaints.due() {
                        let max = dc.limits.max_connections;
                        warn!(%peer, ?transport, "{max} connections open: refusing new ones ({more} refused since the last report)");
                    }
                    drop(stream);
                }
                Ok((stream, peer)) => {
                    debug!(%peer, ?transport, "connection");
                    let _ = stream.set_nodelay(true);
                    conns.spawn(connection(stream, dc.clone(), transport));
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
                        Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    }
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
    info!(?transport, "LDAP listener stopped");
}

fn codec() -> AdCodec {
    AdCodec::new(MAX_REQUEST_BYTES)
}

async fn connection(stream: TcpStream, dc: Arc<DomainController>, transport: Transport) {
    let acceptor = dc.acceptor();
    let mut session = Session::new(transport == Transport::Ldaps, acceptor.is_some());
    if transport == Transport::Ldaps {
        let Some(acceptor) = acceptor else { return };
        match tokio::time::timeout(dc.limits.handshake_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                run(Framed::new(tls, codec()), &mut session, &dc).await;
            }
            Ok(Err(e)) => debug!("LDAPS handshake: {e}"),
            Err(_) => debug!("LDAPS handshake: timed out"),
        }
        return;
    }
    let Some(framed) = run(Framed::new(stream, codec()), &mut session, &dc).await else { return };
    // StartTLS: the response has been sent in clear; the handshake follows on the same socket.
    let parts = framed.into_parts();
    if !parts.read_buf.is_empty() {
        return; // the client sent data before the handshake: RFC 4511 4.14.1 forbids it
    }
    let Some(acceptor) = dc.acceptor() else { return };
    match tokio::time::timeout(dc.limits.handshake_timeout, acceptor.accept(parts.io)).await {
        Ok(Ok(tls)) => {
            session.tls_started();
            run(Framed::new(tls, codec()), &mut session, &dc).await;
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
                    let why = if e.kind() == std::io::ErrorKind::OutOfMemory {
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
        let request = crate::oplog::request(&msg.op);
        let who = match &session.principal {
            crate::Principal::Anonymous => "anonymous".to_string(),
            p => p.dn().map(|d| d.to_string()).unwrap_or_default(),
        };
        let reply = session.handle(&dc.directory, msg);
        if let Some(request) = request {
            dc.ops.record(who, request, crate::oplog::result(&reply.msgs));
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
