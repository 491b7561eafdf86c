//! Opens `ldap3` connections to a DC over the lab's own rustls.
//!
//! `ldap3` refuses to build with both of its TLS back ends ("Only one of tls-native and
//! tls-rustls"), and cargo unifies features: had the lab's crates asked for ldap3's rustls, a
//! project whose own `ldap3` keeps its default (native-tls) could not add the lab as a
//! dev-dependency. So the lab builds `ldap3` without TLS and does TLS here: the TCP
//! connection, StartTLS's extended operation and the rustls handshake are ours, and `ldap3`
//! is handed a plain stream — the TCP socket itself for `ldap://`, or for TLS one end of a
//! Unix socket pair whose other end a task pumps through the TLS session. Whatever TLS the
//! application's `ldap3` has, none of it is used by the lab.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, StdStream};
use ldap3_proto::proto::{LdapExtendedRequest, LdapMsg, LdapOp, LdapResultCode};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::codec::Framed;

/// StartTLS's extended operation (RFC 4511 §4.14).
const OID_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";

/// Each way of the pump's buffer: a TLS record's worth (16 KiB) and more, so a sync's search
/// pages cross in few reads (8 KiB, tokio's default, cost its initial sync ~5%); 128 KiB a
/// connection in all.
const PUMP_BUFFER: usize = 64 * 1024;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// As the URL says: TLS from the first byte for `ldaps://`, none for `ldap://`.
    Url,
    /// `ldap://`, then StartTLS before anything else.
    StartTls,
}

/// Why a connection could not be opened. The texts name the step, as Windows' client
/// and ldap3 do ("server down" is the caller's to say).
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("not an LDAP URL: {0}")]
    Url(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("StartTLS refused: {0}")]
    StartTls(String),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("{0}")]
    Ldap(#[from] ldap3::LdapError),
}

/// Connects to `url` (`ldap://host:port` or `ldaps://host:port`), with TLS by `tls` where the
/// URL or `security` asks for it, the certificate checked against the URL's host. The whole
/// of connecting — TCP, StartTLS, the handshake — must finish within `timeout`.
///
/// As `LdapConnAsync::with_settings`: the connection must be driven (`ldap3::drive!`).
pub async fn connect(url: &str, security: Security, tls: Arc<ClientConfig>, timeout: Duration) -> Result<(LdapConnAsync, Ldap), DialError> {
    connect_noting_address(url, security, tls, timeout).await.map(|(conn, ldap, _)| (conn, ldap))
}

/// As [`connect`], with the connection's local address: the client address a DC's logs
/// name it by (the lab's pages tell their own reads apart in the DC's operations by it).
pub async fn connect_noting_address(
    url: &str,
    security: Security,
    tls: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<(LdapConnAsync, Ldap, std::net::SocketAddr), DialError> {
    let target = Target::parse(url)?;
    tokio::time::timeout(timeout, target.open(security, tls)).await.map_err(|_| DialError::Timeout(timeout))?
}

/// The first binary value of `attr` in the first entry a search finds (an objectSid, an
/// nTSecurityDescriptor), with `controls` on the search (the SD-flags control). None: no
/// entry, or no such value; Err: the search failed, in ldap3's words.
pub async fn first_binary(
    l: &mut Ldap,
    base: &str,
    scope: ldap3::Scope,
    filter: &str,
    attr: &str,
    controls: Vec<ldap3::controls::RawControl>,
) -> Result<Option<Vec<u8>>, String> {
    let (found, _) = l
        .with_controls(controls)
        .search(base, scope, filter, vec![attr])
        .await
        .map_err(|e| e.to_string())?
        .success()
        .map_err(|e| e.to_string())?;
    Ok(found.into_iter().next().map(ldap3::SearchEntry::construct).and_then(|e| e.bin_attrs.get(attr).and_then(|v| v.first().cloned())))
}

/// LDAP_SERVER_SD_FLAGS_OID with DACL_SECURITY_INFORMATION: nTSecurityDescriptor's DACL only,
/// read or written (an administrator writes no owner or SACL without privileges it lacks).
pub fn sd_flags_dacl() -> ldap3::controls::RawControl {
    ldap3::controls::RawControl { ctype: "1.2.840.113556.1.4.801".into(), crit: true, val: Some(vec![0x30, 0x03, 0x02, 0x01, 0x04]) }
}

/// The parts of an LDAP URL a connection needs.
#[derive(Debug, PartialEq)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
}

impl Target {
    fn parse(url: &str) -> Result<Target, DialError> {
        let bad = || DialError::Url(url.to_string());
        let parsed = url::Url::parse(url).map_err(|_| bad())?;
        let tls = match parsed.scheme() {
            "ldap" => false,
            "ldaps" => true,
            _ => return Err(bad()),
        };
        let host = match parsed.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) if !h.to_string().is_empty() => h.to_string(),
            _ => return Err(bad()),
        };
        Ok(Target { tls, host, port: parsed.port().unwrap_or(if tls { 636 } else { 389 }) })
    }

    async fn open(self, security: Security, tls: Arc<ClientConfig>) -> Result<(LdapConnAsync, Ldap, std::net::SocketAddr), DialError> {
        // `localhost` is the loopback address (RFC 6761): no resolver call, which tokio makes on
        // a thread of its blocking pool (a new thread at a lab's start, the cost of the hop
        // highest when the cores are busy)
        let mut tcp = match self.host.eq_ignore_ascii_case("localhost") {
            true => TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, self.port)).await,
            false => TcpStream::connect((self.host.as_str(), self.port)).await,
        }
        .map_err(DialError::Connect)?;
        let local = tcp.local_addr().map_err(DialError::Connect)?;
        // one LDAP message a write: Nagle would hold a request behind the last answer's ACK
        tcp.set_nodelay(true).map_err(DialError::Connect)?;
        let tls_needed = match (self.tls, security) {
            (true, _) => true,
            (false, Security::StartTls) => {
                start_tls(&mut tcp).await?;
                true
            }
            (false, Security::Url) => false,
        };
        if !tls_needed {
            let std = tcp.into_std().map_err(DialError::Connect)?;
            let settings = LdapConnSettings::new().set_std_stream(StdStream::Tcp(std));
            let (conn, ldap) = LdapConnAsync::with_settings(settings, &format!("ldap://{}:{}", url_host(&self.host), self.port)).await?;
            return Ok((conn, ldap, local));
        }
        let name = ServerName::try_from(self.host.clone()).map_err(|e| DialError::Url(format!("{}: {e}", self.host)))?;
        let session = TlsConnector::from(tls).connect(name, tcp).await.map_err(DialError::Tls)?;
        let (conn, ldap) = pump(session).await?;
        Ok((conn, ldap, local))
    }
}

fn url_host(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_string() }
}

/// StartTLS on a fresh connection: the request, and a success before any TLS byte.
async fn start_tls(tcp: &mut TcpStream) -> Result<(), DialError> {
    let mut framed = Framed::new(&mut *tcp, ldap3_proto::LdapCodec::default());
    let request =
        LdapMsg { msgid: 1, op: LdapOp::ExtendedRequest(LdapExtendedRequest { name: OID_STARTTLS.into(), value: None }), ctrl: vec![] };
    framed.send(request).await.map_err(|e| DialError::StartTls(e.to_string()))?;
    let answer = match framed.next().await {
        Some(Ok(m)) => m,
        Some(Err(e)) => return Err(DialError::StartTls(e.to_string())),
        None => return Err(DialError::StartTls("the connection was closed".into())),
    };
    if !framed.read_buffer().is_empty() {
        return Err(DialError::StartTls("the server sent more than its answer before TLS".into()));
    }
    match answer.op {
        LdapOp::ExtendedResponse(r) if answer.msgid == 1 && r.res.code == LdapResultCode::Success => Ok(()),
        LdapOp::ExtendedResponse(r) => Err(DialError::StartTls(format!("{:?}: {}", r.res.code, r.res.message))),
        other => Err(DialError::StartTls(format!("unexpected answer {other:?}"))),
    }
}

/// Hands `ldap3` one end of a Unix socket pair, and pumps the other through the TLS session
/// until either side closes.
async fn pump(mut session: tokio_rustls::client::TlsStream<TcpStream>) -> Result<(LdapConnAsync, Ldap), DialError> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(DialError::Connect)?;
    ours.set_nonblocking(true).map_err(DialError::Connect)?;
    let mut ours = tokio::net::UnixStream::from_std(ours).map_err(DialError::Connect)?;
    tokio::spawn(async move {
        // an error ends the pump, and with it ldap3's connection: its callers see it closed
        let _ = tokio::io::copy_bidirectional_with_sizes(&mut ours, &mut session, PUMP_BUFFER, PUMP_BUFFER).await;
    });
    let settings = LdapConnSettings::new().set_std_stream(StdStream::Unix(theirs));
    Ok(LdapConnAsync::with_settings(settings, "ldapi:///").await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_scheme_host_and_port() {
        let t = |u: &str| Target::parse(u).unwrap();
        assert_eq!(t("ldap://localhost:3890"), Target { tls: false, host: "localhost".into(), port: 3890 });
        assert_eq!(t("LDAPS://127.0.0.1"), Target { tls: true, host: "127.0.0.1".into(), port: 636 });
        assert_eq!(t("ldap://dc1.example/"), Target { tls: false, host: "dc1.example".into(), port: 389 });
        assert_eq!(t("ldaps://[::1]:6360/dc=x??sub"), Target { tls: true, host: "::1".into(), port: 6360 });
        for bad in ["http://x", "ldap://", "ldap://h:port", "localhost:389", "ldap://h:70000"] {
            assert!(matches!(Target::parse(bad), Err(DialError::Url(_))), "{bad}");
        }
    }
}
