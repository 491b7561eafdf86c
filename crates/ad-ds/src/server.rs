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

/// A running domain controller's shared state: the directory and its TLS identity.
pub struct DomainController {
    pub directory: RwLock<Directory>,
    pub tls: Option<TlsIdentity>,
}

impl DomainController {
    pub fn new(directory: Directory, tls: Option<TlsIdentity>) -> Arc<DomainController> {
        Arc::new(DomainController { directory: RwLock::new(directory), tls })
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
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    debug!(%peer, ?transport, "connection");
                    let _ = stream.set_nodelay(true);
                    conns.spawn(connection(stream, dc.clone(), transport));
                }
                Err(e) => warn!("accept: {e}"),
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
    let acceptor = dc.tls.as_ref().map(|t| TlsAcceptor::from(t.config.clone()));
    let mut session = Session::new(transport == Transport::Ldaps, acceptor.is_some());
    if transport == Transport::Ldaps {
        let Some(acceptor) = acceptor else { return };
        match acceptor.accept(stream).await {
            Ok(tls) => {
                run(Framed::new(tls, codec()), &mut session, &dc).await;
            }
            Err(e) => debug!("LDAPS handshake: {e}"),
        }
        return;
    }
    let Some(framed) = run(Framed::new(stream, codec()), &mut session, &dc).await else { return };
    // StartTLS: the response has been sent in clear; the handshake follows on the same socket.
    let parts = framed.into_parts();
    if !parts.read_buf.is_empty() {
        return; // the client sent data before the handshake: RFC 4511 4.14.1 forbids it
    }
    let Some(acceptor) = acceptor else { return };
    match acceptor.accept(parts.io).await {
        Ok(tls) => {
            session.tls_started();
            run(Framed::new(tls, codec()), &mut session, &dc).await;
        }
        Err(e) => debug!("StartTLS handshake: {e}"),
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
        let msg = match tokio::time::timeout(IDLE_TIMEOUT, framed.next()).await {
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
                debug!("closing connection: {e}");
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
        let reply = session.handle(&dc.directory, msg);
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
