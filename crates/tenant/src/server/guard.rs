//! The lab's front door: what every request to the lab's HTTP listeners passes before a
//! handler sees it. A lab listens on loopback, but everything on the machine — another user,
//! a page in the trainee's browser — can reach loopback, so:
//!
//! - **Host**: only the lab's own names (`localhost`, loopback and listening addresses, the
//!   names in the lab's certificate). A DNS-rebinding page reaches 127.0.0.1 under its own
//!   name, and is refused here (421).
//! - **Cross-site writes**: a POST/PATCH/PUT/DELETE whose `Origin` is not the request's own
//!   (host and port exactly: a page of another server on this machine is another site, though
//!   it be `localhost`), or that a browser marks `Sec-Fetch-Site: cross-site`, is refused
//!   (403). Tools such as curl send neither header and are not affected.
//! - **JSON bodies**: Graph and `/lab/` writes with a body must say `application/json`
//!   (415), so a plain HTML form elsewhere can never post one.
//! - **The lab's administrator**: every `/lab/` endpoint needs a Global Administrator's
//!   token, except what a real user or a real engine reaches without one: the SSPR flow
//!   (`/lab/sspr/flows…`), the sign-in page's password change, and the engine's relay and
//!   export (they take the engine's relay credential instead). The lab outbox is *not*
//!   open: its codes would let anyone finish anyone's SSPR reset — a real user's mailbox is
//!   theirs alone.

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::*;

/// The names and addresses a request may use to reach the lab.
#[derive(Clone, Debug, Default)]
pub struct Hosts {
    /// Names besides `localhost` and loopback addresses (lower case): the certificate's
    /// names, addresses the lab listens on.
    pub names: Vec<String>,
}

impl Hosts {
    /// Whether `host` (a Host header or URI authority, with or without a port) names the lab.
    pub fn allows(&self, host: &str) -> bool {
        let name = strip_port(host).to_ascii_lowercase();
        if name == "localhost" {
            return true;
        }
        if let Ok(ip) = name.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>()
            && ip.is_loopback()
        {
            return true;
        }
        self.names.contains(&name)
    }
}

/// Whether a browser's `Origin` is the origin a request came to: scheme, host and port, as
/// browsers compare them (a missing port is the scheme's). The listener's scheme is not known
/// here; a port serves one of them only, so host and port decide.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => 443,
        "http" => 80,
        _ => return false,
    };
    let (a, h) = (host_port(authority, default), host_port(host, default));
    a.zip(h).is_some_and(|((an, ap), (hn, hp))| an.eq_ignore_ascii_case(hn) && ap == hp)
}

/// A host and its port (the default when none is given), or None when the port is not a port.
fn host_port(hp: &str, default: u16) -> Option<(&str, u16)> {
    let name = strip_port(hp);
    let rest = match hp.strip_prefix('[') {
        Some(inner) => inner.split_once(']').map(|(_, r)| r)?,
        None => &hp[name.len()..],
    };
    match rest.strip_prefix(':') {
        Some(p) => Some((name, p.parse().ok()?)),
        None if rest.is_empty() => Some((name, default)),
        None => None,
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [::1]:8443
        return rest.split(']').next().unwrap_or(rest);
    }
    if host.matches(':').count() > 1 {
        return host; // a bare IPv6 address: no port without brackets
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

/// `/lab/` paths anyone may reach (their handlers check what they need themselves).
fn open_lab_path(path: &str) -> bool {
    // the admin center's Password reset › On-premises integration and Connect's onboarding:
    // Entra's own, for a Hybrid Identity Administrator too, not the lab's switches
    path == "/lab/sspr/onPremisesIntegration"
        || path == "/lab/writeback/engines"
        || path.starts_with("/lab/writeback/engines/")
        || path == "/lab/sspr/flows"
        || path.starts_with("/lab/sspr/flows/")
        || path == "/lab/signIn/changePassword"
        || path == relay::RELAY_PATH
        || path == "/lab/sync/export"
        // Cloud Sync: Set-AADCloudSyncPasswordWritebackConfiguration (a Hybrid Identity
        // Administrator's credentials)
        || path == "/lab/cloudsync/passwordWritebackConfiguration"
        // Cloud Sync's job (its configuration is Entra's: the admin center's Cloud Sync page)
        || path == "/lab/cloudsync/job"
        || path == "/lab/cloudsync/job/restart"
        // pass-through authentication: the Connect task's switch and the agents' own; Connect's
        // "Change user sign-in" signs in with the credentials it is given (a Hybrid Identity or
        // Global Administrator's), as the wizard on the Connect server does, not the lab's
        || path == "/lab/engine/sign-in"
        || path == "/lab/pta"
        || path == relay::pta::AGENTS_PATH
        || path.starts_with("/lab/pta/agents/")
        || path == relay::pta::QUEUE_PATH
}

fn unsafe_method(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The guard as axum middleware; `labkit` puts it around the lab's whole HTTP front.
pub async fn guard(State((s, hosts)): State<(Shared, Hosts)>, mut req: Request, next: Next) -> Response {
    // HTTP/2 names the host in the URI's authority: the handlers read it as Host either way
    if !req.headers().contains_key(header::HOST)
        && let Some(v) = req.uri().authority().and_then(|a| header::HeaderValue::from_str(a.as_str()).ok())
    {
        req.headers_mut().insert(header::HOST, v);
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match &host {
        Some(h) if hosts.allows(h) => {}
        Some(h) => {
            let msg = format!("This lab does not answer to the host name '{}'.", strip_port(h));
            return graph_error(&s, StatusCode::MISDIRECTED_REQUEST, "InvalidHost", &msg);
        }
        None => return graph_error(&s, StatusCode::BAD_REQUEST, "InvalidHost", "The request names no host."),
    }
    let path = req.uri().path().to_string();
    if unsafe_method(req.method()) {
        let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
        // the lab's own name is not enough: another server on this machine (another port,
        // another scheme) is another site, and its pages must not drive the lab
        let foreign_origin = origin.is_some_and(|o| host.as_deref().is_none_or(|h| !same_origin(o, h)));
        let cross_site = req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site");
        if foreign_origin || cross_site {
            return graph_error(&s, StatusCode::FORBIDDEN, "CrossSiteRequest", "The lab refuses changes requested by another site.");
        }
        let json_api = path.starts_with("/v1.0/") || path.starts_with("/lab/");
        let has_body = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|n| n != "0")
            || req.headers().contains_key(header::TRANSFER_ENCODING);
        if json_api && has_body {
            let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if essence != "application/json" && !essence.ends_with("+json") {
                return graph_error(
                    &s,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    "The request body must be JSON (Content-Type: application/json).",
                );
            }
        }
    }
    if path.starts_with("/lab/")
        && !open_lab_path(&path)
        && let Err(r) = lab_admin(&s, req.headers())
    {
        return r;
    }
    next.run(req).await
}

/// The lab's administrator: a Global Administrator's bearer token (401 without a token, 403
/// for anyone else).
fn lab_admin(s: &TenantServer, headers: &HeaderMap) -> Result<(), Response> {
    if !headers.contains_key(header::AUTHORIZATION) {
        // graph_error adds Graph's WWW-Authenticate challenge to every 401
        return Err(graph_error(
            s,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The lab's controls need the lab administrator: a Global Administrator's access token.",
        ));
    }
    global_admin(s, headers)
}

/// Puts the guard around `app` (the tenant, the portal and the lab's switches together).
pub fn protect(app: Router, s: Shared, hosts: Hosts) -> Router {
    app.layer(axum::middleware::from_fn_with_state((s, hosts), guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_the_labs_own() {
        let h = Hosts { names: vec!["dc1.testlab.example".into()] };
        for ok in
            ["localhost", "localhost:8443", "LOCALHOST:1", "127.0.0.1:8080", "127.9.9.9", "[::1]:8443", "::1", "dc1.testlab.example:443"]
        {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in ["evil.example", "evil.example:8443", "localhost.evil.example", "10.0.0.1:8443", "", "127.0.0.1.nip.io"] {
            assert!(!h.allows(bad), "{bad}");
        }
    }

    /// issue 31, item 8: a page of another server on the machine is another site.
    #[test]
    fn an_origin_is_the_requests_own_by_scheme_host_and_port() {
        for (origin, host) in [
            ("https://localhost:8443", "localhost:8443"),
            ("https://LOCALHOST:8443", "localhost:8443"),
            ("http://127.0.0.1:8080", "127.0.0.1:8080"),
            ("https://[::1]:8443", "[::1]:8443"),
            ("https://dc1.testlab.example", "dc1.testlab.example"),
            ("https://dc1.testlab.example", "dc1.testlab.example:443"),
        ] {
            assert!(same_origin(origin, host), "{origin} for {host}");
        }
        for (origin, host) in [
            ("http://localhost:8000", "localhost:8443"),
            ("http://localhost:8443", "localhost:8443:1"),
            ("https://localhost", "localhost:8443"),
            ("https://127.0.0.1:8443", "localhost:8443"),
            ("https://attacker.example:8443", "localhost:8443"),
            ("null", "localhost:8443"),
            ("file://", "localhost:8443"),
            ("https://localhost:8443.evil", "localhost:8443"),
            ("http://dc1.testlab.example", "dc1.testlab.example:443"),
        ] {
            assert!(!same_origin(origin, host), "{origin} for {host}");
        }
    }

    #[test]
    fn open_paths_are_what_users_and_engines_reach() {
        assert!(open_lab_path("/lab/sspr/flows"));
        assert!(open_lab_path("/lab/sspr/flows/abc/codes"));
        assert!(!open_lab_path("/lab/sspr/policy"));
        assert!(!open_lab_path("/lab/outbox"));
        assert!(open_lab_path("/lab/pta") && open_lab_path("/lab/pta/queue") && open_lab_path("/lab/pta/agents/x"));
        assert!(!open_lab_path("/lab/pta/settings"), "the agents' timeout is the lab's switch");
        assert!(open_lab_path("/lab/engine/sign-in") && !open_lab_path("/lab/engine/pta/faults") && !open_lab_path("/lab/engine/control"));
        assert!(!open_lab_path("/lab/engine/control"));
        assert!(!open_lab_path("/lab/adds/rights"));
        assert!(!open_lab_path("/lab/sspr/flowsX"));
    }
}
