//! OAuth 2.0's interactive grants as the Microsoft identity platform keeps them, as plain
//! synchronous rules: redirect URIs matched against an app's registration, PKCE, single-use
//! authorization codes, device codes polled at an interval, and the browser's sign-in
//! sessions (an id token's `sid`, `prompt=none`, the account picker). Every secret here (a
//! code, a device code, a session) comes from the OS generator; every store is bounded by
//! an estimate of its memory, the oldest going first.

use std::collections::{HashMap, VecDeque};

use base64::Engine;
use clock::OffsetDateTime;
use sha2::Digest;
use uuid::Uuid;

/// Authorization codes live about ten minutes ("Authorization codes are short lived,
/// typically expiring after about 10 minutes", the authorization code flow's page).
pub const CODE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(600);
/// Device codes: `expires_in` 900 seconds, polled every 5 (the device code flow's page).
pub const DEVICE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(900);
pub const DEVICE_INTERVAL_SECONDS: u64 = 5;
/// A browser's sign-in session at the STS (the lab keeps it a day).
pub const SESSION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// The memory each store may hold, by estimate.
pub const STORE_BYTES: usize = 2 * 1024 * 1024;
/// The longest `nonce`, `scope` or redirect URI kept (longer ones are refused as a request).
pub const MAX_PARAMETER: usize = 2048;

/// Whether `asked` is one of `registered`, as Entra compares them: exactly (case and trailing
/// slash count), except that the port of an `http://localhost` or `http://127.0.0.1`
/// redirect URI is ignored ("Localhost exceptions", the redirect URI restrictions page:
/// native apps listen on whatever loopback port is free).
pub fn redirect_uri_registered<'a>(registered: impl IntoIterator<Item = &'a String>, asked: &str) -> bool {
    let asked_loopback = loopback_without_port(asked);
    registered.into_iter().any(|r| same_uri(r, asked) || asked_loopback.is_some() && loopback_without_port(r) == asked_loopback)
}

/// Two redirect URIs are the same one: exactly, except that an empty path is `/` (URL
/// parsers write `http://localhost:5000` back as `http://localhost:5000/`).
pub fn same_uri(a: &str, b: &str) -> bool {
    fn normal(u: &str) -> std::borrow::Cow<'_, str> {
        match u.split_once("://") {
            Some((_, rest)) if !rest.contains(['/', '?', '#']) => format!("{u}/").into(),
            _ => u.into(),
        }
    }
    normal(a) == normal(b)
}

/// `http://localhost[:port]/path` as (host, path), None for anything else.
fn loopback_without_port(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("http://")?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    matches!(host, "localhost" | "127.0.0.1" | "[::1]").then(|| (host.to_string(), path))
}

/// PKCE's S256: BASE64URL(SHA-256(verifier)).
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// A code's challenge, as the authorization request gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    S256(String),
    Plain(String),
}

impl Challenge {
    /// From `code_challenge` and `code_challenge_method` (plain when no method is named,
    /// RFC 7636 4.3).
    pub fn parse(challenge: Option<&str>, method: Option<&str>) -> Result<Option<Challenge>, String> {
        match (challenge, method) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err("code_challenge_method was given without a code_challenge.".into()),
            (Some(c), None | Some("plain")) => Ok(Some(Challenge::Plain(c.to_string()))),
            (Some(c), Some("S256")) => Ok(Some(Challenge::S256(c.to_string()))),
            (Some(_), Some(m)) => Err(format!("The code_challenge_method '{m}' is not supported: use S256.")),
        }
    }

    fn verifies(&self, verifier: &str) -> bool {
        match self {
            Challenge::S256(c) => s256(verifier) == *c,
            Challenge::Plain(c) => verifier == c,
        }
    }
}

/// What an authorization code stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeGrant {
    pub client_id: Uuid,
    pub redirect_uri: String,
    pub user: Uuid,
    pub scope: String,
    pub nonce: Option<String>,
    pub challenge: Option<Challenge>,
    /// The sign-in session the code came from (the id token's `sid`).
    pub sid: Uuid,
    pub issued: OffsetDateTime,
}

/// Why a code is refused at the token endpoint, as AADSTS codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeError {
    /// AADSTS9002313: not a code this tenant issued (or no longer keeps).
    Malformed,
    /// AADSTS54005: a code is good once.
    Redeemed,
    /// AADSTS70008: older than [`CODE_LIFETIME`].
    Expired,
    /// AADSTS70000: issued to another client.
    OtherClient,
    /// AADSTS50011: not the redirect URI the code was sent to.
    RedirectUri,
    /// AADSTS50148: the verifier does not match the challenge, or is missing.
    Verifier,
}

impl CodeError {
    pub fn code(&self) -> u32 {
        match self {
            CodeError::Malformed => 9002313,
            CodeError::Redeemed => 54005,
            CodeError::Expired => 70008,
            CodeError::OtherClient => 70000,
            CodeError::RedirectUri => 50011,
            CodeError::Verifier => 50148,
        }
    }

    pub fn message(&self) -> String {
        match self {
            CodeError::Malformed => "Invalid request. Request is malformed or invalid.".into(),
            CodeError::Redeemed => {
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.".into()
            }
            CodeError::Expired => "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.".into(),
            CodeError::OtherClient => "The provided value for the 'code' parameter is not valid. The code was issued to another application.".into(),
            CodeError::RedirectUri => "The redirect URI specified in the request does not match the redirect URI the authorization code was issued for.".into(),
            CodeError::Verifier => "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.".into(),
        }
    }
}

/// A new secret from the OS generator, `bytes` long, base64url.
pub fn secret(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A device flow's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceState {
    Pending,
    /// Signed in on the "Enter code" page.
    Approved {
        user: Uuid,
        sid: Uuid,
    },
    /// The user answered "No, cancel" (authorization_declined).
    Declined,
}

/// A device code flow in progress.
#[derive(Clone, Debug)]
pub struct DeviceFlow {
    pub client_id: Uuid,
    pub scope: String,
    pub user_code: String,
    pub issued: OffsetDateTime,
    pub state: DeviceState,
    /// The last poll, in real time: `slow_down` protects the service, whatever the lab clock says.
    last_poll: Option<std::time::Instant>,
    interval: u64,
}

/// What a poll of the token endpoint with a device code gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Poll {
    /// authorization_pending (AADSTS70016).
    Pending,
    /// slow_down: polled within the interval (RFC 8628 3.5; the interval grows by 5 s).
    SlowDown,
    /// expired_token (AADSTS70020).
    Expired,
    /// authorization_declined (AADSTS70000 in Entra's words).
    Declined,
    /// bad_verification_code: no such device code (or another client's).
    Unknown,
    /// Signed in: the flow is over (the device code is good once).
    Approved { user: Uuid, sid: Uuid, scope: String },
}

/// A browser's session at the STS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub sid: Uuid,
    pub user: Uuid,
    pub started: OffsetDateTime,
    /// The salt of the user's credential at sign-in: a new password (change, reset, hash
    /// sync) has another, which ends the session as it revokes refresh tokens.
    pub credential: [u8; 10],
}

/// The tenant's interactive grants: codes, device flows and sessions.
#[derive(Default)]
pub struct Grants {
    codes: HashMap<String, (CodeGrant, usize)>,
    code_order: VecDeque<String>,
    code_bytes: usize,
    /// Codes redeemed (by their SHA-256), so a second use says "already redeemed".
    redeemed: VecDeque<[u8; 32]>,
    devices: HashMap<String, DeviceFlow>,
    device_order: VecDeque<String>,
    sessions: HashMap<String, Session>,
    session_order: VecDeque<String>,
}

/// About what an entry takes: its strings and a fixed overhead.
fn estimate(g: &CodeGrant, code: &str) -> usize {
    256 + code.len() + g.redirect_uri.len() + g.scope.len() + g.nonce.as_ref().map_or(0, String::len)
}
/// A device flow's estimate: its fixed part and its scope.
fn device_estimate(d: &DeviceFlow) -> usize {
    384 + d.scope.len()
}
/// A session's estimate (its strings are short and fixed).
const SESSION_BYTES: usize = 256;

impl Grants {
    /// A new authorization code for `grant`.
    pub fn issue_code(&mut self, grant: CodeGrant) -> String {
        let code = format!("1.{}", secret(48));
        let size = estimate(&grant, &code);
        while self.code_bytes + size > STORE_BYTES {
            let Some(old) = self.code_order.pop_front() else { break };
            if let Some((_, s)) = self.codes.remove(&old) {
                self.code_bytes -= s;
            }
        }
        self.code_bytes += size;
        self.code_order.push_back(code.clone());
        self.codes.insert(code.clone(), (grant, size));
        code
    }

    /// Redeems `code` for `client_id` at `redirect_uri`, with PKCE's `verifier`: good once,
    /// and gone even when refused for another reason than its age (a code seen by a wrong
    /// party is spent).
    pub fn redeem_code(
        &mut self,
        code: &str,
        client_id: Uuid,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<CodeGrant, CodeError> {
        let digest: [u8; 32] = sha2::Sha256::digest(code.as_bytes()).into();
        let Some((grant, size)) = self.codes.remove(code) else {
            return Err(if self.redeemed.contains(&digest) { CodeError::Redeemed } else { CodeError::Malformed });
        };
        self.code_bytes -= size;
        self.code_order.retain(|c| c != code);
        if self.redeemed.len() >= 4096 {
            self.redeemed.pop_front();
        }
        self.redeemed.push_back(digest);
        if now - grant.issued > CODE_LIFETIME {
            return Err(CodeError::Expired);
        }
        if grant.client_id != client_id {
            return Err(CodeError::OtherClient);
        }
        if !redirect_uri.is_some_and(|r| same_uri(r, &grant.redirect_uri)) {
            return Err(CodeError::RedirectUri);
        }
        match (&grant.challenge, verifier) {
            (None, _) => {}
            (Some(c), Some(v)) if c.verifies(v) => {}
            (Some(_), _) => return Err(CodeError::Verifier),
        }
        Ok(grant)
    }

    /// A new device flow: (device_code, user_code).
    pub fn start_device(&mut self, client_id: Uuid, scope: &str, now: OffsetDateTime) -> (String, String) {
        let scope: String = scope.chars().take(MAX_PARAMETER).collect();
        let flow = DeviceFlow {
            client_id,
            scope,
            user_code: user_code(),
            issued: now,
            state: DeviceState::Pending,
            last_poll: None,
            interval: DEVICE_INTERVAL_SECONDS,
        };
        // the oldest go first, expired ones before any other
        self.devices.retain(|_, d| now - d.issued <= DEVICE_LIFETIME);
        self.device_order.retain(|c| self.devices.contains_key(c));
        let mut held: usize = self.devices.values().map(device_estimate).sum();
        while held + device_estimate(&flow) > STORE_BYTES {
            let Some(old) = self.device_order.pop_front() else { break };
            held -= self.devices.remove(&old).map_or(0, |d| device_estimate(&d));
        }
        let device_code = format!("DAQABAAEAAAD{}", secret(48));
        let user_code = flow.user_code.clone();
        self.device_order.push_back(device_code.clone());
        self.devices.insert(device_code.clone(), flow);
        (device_code, user_code)
    }

    /// The flow a user code (as typed: case and spaces do not matter) names, if still open.
    pub fn device_by_user_code(&self, typed: &str, now: OffsetDateTime) -> Option<&DeviceFlow> {
        let typed: String = typed.chars().filter(|c| !c.is_whitespace() && *c != '-').collect::<String>().to_ascii_uppercase();
        self.devices.values().find(|d| d.user_code == typed && d.state == DeviceState::Pending && now - d.issued <= DEVICE_LIFETIME)
    }

    /// The user signed in (or declined) on the "Enter code" page.
    pub fn answer_device(&mut self, user_code: &str, state: DeviceState) -> bool {
        match self.devices.values_mut().find(|d| d.user_code == user_code && d.state == DeviceState::Pending) {
            Some(d) => {
                d.state = state;
                true
            }
            None => false,
        }
    }

    /// The token endpoint polled with `device_code`.
    pub fn poll_device(&mut self, device_code: &str, client_id: Uuid, now: OffsetDateTime, at: std::time::Instant) -> Poll {
        let Some(d) = self.devices.get_mut(device_code).filter(|d| d.client_id == client_id) else { return Poll::Unknown };
        if now - d.issued > DEVICE_LIFETIME {
            self.devices.remove(device_code);
            return Poll::Expired;
        }
        match d.state.clone() {
            DeviceState::Approved { user, sid } => {
                let scope = d.scope.clone();
                self.devices.remove(device_code);
                Poll::Approved { user, sid, scope }
            }
            DeviceState::Declined => {
                self.devices.remove(device_code);
                Poll::Declined
            }
            DeviceState::Pending => {
                let early = d.last_poll.is_some_and(|last| at.duration_since(last) < std::time::Duration::from_secs(d.interval));
                d.last_poll = Some(at);
                if early {
                    d.interval += 5;
                    Poll::SlowDown
                } else {
                    Poll::Pending
                }
            }
        }
    }

    /// A new sign-in session for `user`: the cookie's value and the session.
    pub fn start_session(&mut self, user: Uuid, sid: Uuid, credential: [u8; 10], now: OffsetDateTime) -> String {
        while self.sessions.len() * SESSION_BYTES >= STORE_BYTES {
            let Some(old) = self.session_order.pop_front() else { break };
            self.sessions.remove(&old);
        }
        let cookie = secret(32);
        self.session_order.push_back(cookie.clone());
        self.sessions.insert(cookie.clone(), Session { sid, user, started: now, credential });
        cookie
    }

    /// The session a cookie names, while it lasts.
    pub fn session(&self, cookie: &str, now: OffsetDateTime) -> Option<&Session> {
        self.sessions.get(cookie).filter(|s| now - s.started <= SESSION_LIFETIME)
    }

    /// Signs out: the session is gone (end_session).
    pub fn end_session(&mut self, cookie: &str) -> Option<Session> {
        self.session_order.retain(|c| c != cookie);
        self.sessions.remove(cookie)
    }

    /// What the stores hold, by estimate (codes, device flows, sessions).
    pub fn bytes(&self) -> usize {
        self.code_bytes + self.devices.values().map(device_estimate).sum::<usize>() + self.sessions.len() * SESSION_BYTES
    }
}

/// A user code as Entra shows them: nine letters and digits, without the easily confused
/// (0/O, 1/I/L).
fn user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut b = [0u8; 9];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    b.iter().map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> OffsetDateTime {
        clock::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn grant(challenge: Option<Challenge>) -> CodeGrant {
        CodeGrant {
            client_id: Uuid::from_u128(1),
            redirect_uri: "http://localhost:5000/cb".into(),
            user: Uuid::from_u128(2),
            scope: "openid".into(),
            nonce: None,
            challenge,
            sid: Uuid::from_u128(3),
            issued: t0(),
        }
    }

    #[test]
    fn redirect_uris_match_exactly_but_for_a_loopback_port() {
        let reg = vec!["https://app.example/cb".to_string(), "http://localhost".to_string(), "http://127.0.0.1/auth".to_string()];
        for ok in [
            "https://app.example/cb",
            "http://localhost",
            "http://localhost/",
            "http://localhost:51234",
            "http://localhost:51234/",
            "http://127.0.0.1:8400/auth",
        ] {
            assert!(redirect_uri_registered(&reg, ok), "{ok}");
        }
        for bad in [
            "https://app.example/cb/",
            "https://APP.example/cb",
            "http://app.example/cb",
            "https://app.example:8443/cb",
            "http://localhost:5000/cb",
            "https://localhost:5000",
            "http://127.0.0.1:8400/other",
            "http://localhost.evil.example",
        ] {
            assert!(!redirect_uri_registered(&reg, bad), "{bad}");
        }
        assert!(!redirect_uri_registered(&[], "http://localhost"));
    }

    #[test]
    fn pkce_s256_is_rfc_7636s_example() {
        // RFC 7636 Appendix B
        assert_eq!(s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(Challenge::parse(Some("x"), None), Ok(Some(Challenge::Plain("x".into()))));
        assert!(Challenge::parse(Some("x"), Some("S512")).is_err());
        assert!(Challenge::parse(None, Some("S256")).is_err());
    }

    #[test]
    fn a_code_is_good_once_for_its_client_redirect_uri_and_verifier_within_ten_minutes() {
        let mut g = Grants::default();
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let pkce = Some(Challenge::S256(s256(verifier)));
        let id = Uuid::from_u128(1);
        let uri = Some("http://localhost:5000/cb");
        let code = g.issue_code(grant(pkce.clone()));
        assert_eq!(g.redeem_code(&code, id, uri, Some(verifier), t0()).map(|g| g.user), Ok(Uuid::from_u128(2)));
        assert_eq!(g.redeem_code(&code, id, uri, Some(verifier), t0()), Err(CodeError::Redeemed));
        assert_eq!(g.redeem_code("1.nothing", id, uri, Some(verifier), t0()), Err(CodeError::Malformed));
        type Case<'a> = (Uuid, Option<&'a str>, Option<&'a str>, std::time::Duration, CodeError);
        let cases: [Case; 5] = [
            (id, uri, Some("wrong-verifier"), std::time::Duration::ZERO, CodeError::Verifier),
            (id, uri, None, std::time::Duration::ZERO, CodeError::Verifier),
            (id, Some("http://localhost:5001/cb"), Some(verifier), std::time::Duration::ZERO, CodeError::RedirectUri),
            (Uuid::from_u128(9), uri, Some(verifier), std::time::Duration::ZERO, CodeError::OtherClient),
            (id, uri, Some(verifier), CODE_LIFETIME + std::time::Duration::from_secs(1), CodeError::Expired),
        ];
        for (client, uri, v, later, want) in cases {
            let code = g.issue_code(grant(pkce.clone()));
            assert_eq!(g.redeem_code(&code, client, uri, v, t0() + later), Err(want.clone()), "{want:?}");
            // refused once, spent
            assert_eq!(g.redeem_code(&code, id, Some("http://localhost:5000/cb"), Some(verifier), t0()), Err(CodeError::Redeemed));
        }
        // at exactly ten minutes still good; without PKCE no verifier is asked
        let code = g.issue_code(grant(None));
        assert!(g.redeem_code(&code, id, uri, None, t0() + CODE_LIFETIME).is_ok());
    }

    #[test]
    fn the_code_store_is_bounded_by_memory_the_oldest_going_first() {
        let mut g = Grants::default();
        let mut big = grant(None);
        big.scope = "x".repeat(MAX_PARAMETER);
        let first = g.issue_code(big.clone());
        for _ in 0..2000 {
            g.issue_code(big.clone());
        }
        assert!(g.bytes() <= STORE_BYTES, "{}", g.bytes());
        assert_eq!(g.redeem_code(&first, Uuid::from_u128(1), Some("http://localhost:5000/cb"), None, t0()), Err(CodeError::Malformed));
    }

    #[test]
    fn a_device_flow_is_pending_slowed_approved_once_or_expired() {
        let mut g = Grants::default();
        let app = Uuid::from_u128(1);
        let (device, user) = g.start_device(app, "openid", t0());
        assert_eq!(user.len(), 9);
        let at = std::time::Instant::now();
        assert_eq!(g.poll_device(&device, app, t0(), at), Poll::Pending);
        assert_eq!(g.poll_device(&device, app, t0(), at + std::time::Duration::from_secs(1)), Poll::SlowDown);
        // the interval grew to 10 s
        assert_eq!(g.poll_device(&device, app, t0(), at + std::time::Duration::from_secs(7)), Poll::SlowDown);
        assert_eq!(g.poll_device(&device, app, t0(), at + std::time::Duration::from_secs(30)), Poll::Pending);
        assert_eq!(g.poll_device(&device, Uuid::from_u128(9), t0(), at), Poll::Unknown);
        // typed in lower case with a space, as people do
        let typed = format!("{} {}", &user[..4].to_lowercase(), &user[4..]);
        assert!(g.device_by_user_code(&typed, t0()).is_some());
        let (user_id, sid) = (Uuid::from_u128(2), Uuid::from_u128(3));
        assert!(g.answer_device(&user, DeviceState::Approved { user: user_id, sid }));
        assert!(g.device_by_user_code(&user, t0()).is_none(), "a used code is not offered again");
        assert_eq!(g.poll_device(&device, app, t0(), at), Poll::Approved { user: user_id, sid, scope: "openid".into() });
        assert_eq!(g.poll_device(&device, app, t0(), at), Poll::Unknown, "good once");

        let (device, _) = g.start_device(app, "openid", t0());
        assert_eq!(g.poll_device(&device, app, t0() + DEVICE_LIFETIME + std::time::Duration::from_secs(1), at), Poll::Expired);
        let (device, user) = g.start_device(app, "openid", t0());
        assert!(g.answer_device(&user, DeviceState::Declined));
        assert_eq!(g.poll_device(&device, app, t0(), at), Poll::Declined);
    }

    #[test]
    fn uris_compare_with_an_empty_path_as_slash_and_ports_are_numbers() {
        assert!(same_uri("https://app.example", "https://app.example/"));
        assert!(same_uri("http://localhost:5000/", "http://localhost:5000"));
        assert!(!same_uri("https://app.example/cb", "https://app.example/cb/"), "a path's slash counts");
        assert!(!same_uri("https://app.example?x=1", "https://app.example/?x=1"));
        let reg = vec!["http://localhost".to_string()];
        assert!(!redirect_uri_registered(&reg, "http://localhost:evil.example"), "a port is digits");
    }

    #[test]
    fn a_plain_challenge_is_the_verifier_itself() {
        let c = Challenge::Plain("the-verifier".into());
        assert!(c.verifies("the-verifier"));
        assert!(!c.verifies("another"));
        assert!(!Challenge::S256(s256("v")).verifies("w"));
    }

    #[test]
    fn code_errors_are_entras_codes_and_words() {
        let table = [
            (CodeError::Malformed, 9002313, "Invalid request. Request is malformed or invalid."),
            (CodeError::Redeemed, 54005, "OAuth2 Authorization code was already redeemed"),
            (CodeError::Expired, 70008, "The provided authorization code or refresh token has expired due to inactivity."),
            (CodeError::OtherClient, 70000, "The provided value for the 'code' parameter is not valid."),
            (CodeError::RedirectUri, 50011, "The redirect URI specified in the request does not match"),
            (CodeError::Verifier, 50148, "The code_verifier does not match the code_challenge"),
        ];
        for (e, code, words) in table {
            assert_eq!(e.code(), code, "{e:?}");
            assert!(e.message().starts_with(words), "{e:?}: {}", e.message());
        }
    }

    #[test]
    fn the_code_store_counts_what_each_code_holds_and_keeps_what_fits_exactly() {
        let mut g = Grants::default();
        let mut big = grant(None);
        big.scope = "s".repeat(MAX_PARAMETER);
        big.nonce = Some("n".repeat(MAX_PARAMETER));
        let one = g.issue_code(big.clone());
        // a code's own strings and a fixed part: no more, no less than about that
        let strings = 66 + big.redirect_uri.len() + big.scope.len() + MAX_PARAMETER;
        assert!(g.bytes() >= strings && g.bytes() <= strings + 512, "{}", g.bytes());
        // a redeemed code gives its memory back
        assert!(g.redeem_code(&one, Uuid::from_u128(1), Some("http://localhost:5000/cb"), None, t0()).is_ok());
        assert_eq!(g.bytes(), 0);
        big.nonce = None;
        // two codes whose estimates fill the store exactly are both kept
        let mut g = Grants::default();
        let fixed = 256 + 66 + big.redirect_uri.len();
        let mut a = grant(None);
        a.scope = "a".repeat(STORE_BYTES / 2 - fixed);
        let mut b = grant(None);
        b.scope = "b".repeat(STORE_BYTES - STORE_BYTES / 2 - fixed);
        let (ca, cb) = (g.issue_code(a), g.issue_code(b));
        assert_eq!(g.bytes(), STORE_BYTES);
        let uri = Some("http://localhost:5000/cb");
        assert!(g.redeem_code(&ca, Uuid::from_u128(1), uri, None, t0()).is_ok(), "the first still there");
        assert!(g.redeem_code(&cb, Uuid::from_u128(1), uri, None, t0()).is_ok());
        // filled past it, the store stays near its bound, not far below
        let mut g = Grants::default();
        for _ in 0..2000 {
            g.issue_code(big.clone());
        }
        assert!(g.bytes() <= STORE_BYTES && g.bytes() > STORE_BYTES - 4 * MAX_PARAMETER, "{}", g.bytes());
        let d = g.bytes();
        let mut g2 = Grants::default();
        g2.start_device(Uuid::from_u128(1), "openid", t0());
        assert!(g2.bytes() < 1024 && g2.bytes() >= "openid".len(), "a device flow's estimate: {}", g2.bytes());
        assert!(STORE_BYTES >= 2 * 1024 * 1024 && d > 1024 * 1024);
    }

    #[test]
    fn the_device_store_is_bounded_by_memory_scopes_counted() {
        let mut g = Grants::default();
        let app = Uuid::from_u128(1);
        let (first, _) = g.start_device(app, &"s".repeat(10 * MAX_PARAMETER), t0());
        for _ in 0..2000 {
            g.start_device(app, &"s".repeat(MAX_PARAMETER), t0());
        }
        assert!(g.bytes() <= STORE_BYTES, "{}", g.bytes());
        assert_eq!(g.poll_device(&first, app, t0(), std::time::Instant::now()), Poll::Unknown, "the oldest went first");
    }

    #[test]
    fn redeemed_codes_are_remembered_and_the_order_of_the_rest_kept() {
        let mut g = Grants::default();
        let uri = Some("http://localhost:5000/cb");
        let id = Uuid::from_u128(1);
        let (a, b) = (g.issue_code(grant(None)), g.issue_code(grant(None)));
        assert!(g.redeem_code(&a, id, uri, None, t0()).is_ok());
        assert!(g.redeem_code(&b, id, uri, None, t0()).is_ok());
        assert_eq!(g.redeem_code(&a, id, uri, None, t0()), Err(CodeError::Redeemed), "the earlier one too");
        // a redeemed code leaves the order: what is left still goes first when the store fills
        let kept = g.issue_code(grant(None));
        let c = g.issue_code(grant(None));
        assert!(g.redeem_code(&c, id, uri, None, t0()).is_ok());
        let mut big = grant(None);
        big.scope = "s".repeat(MAX_PARAMETER);
        for _ in 0..2000 {
            g.issue_code(big.clone());
        }
        assert!(g.bytes() <= STORE_BYTES, "{}", g.bytes());
        assert_eq!(g.redeem_code(&kept, id, uri, None, t0()), Err(CodeError::Malformed), "the oldest went");
    }

    #[test]
    fn device_flows_keep_each_other_and_their_edges() {
        let mut g = Grants::default();
        let app = Uuid::from_u128(1);
        let at = std::time::Instant::now();
        let (a, code_a) = g.start_device(app, "openid", t0());
        let (b, code_b) = g.start_device(app, "openid", t0() + std::time::Duration::from_secs(60));
        assert_eq!(g.poll_device(&a, app, t0(), at), Poll::Pending, "a second flow leaves the first");
        // answering one code answers that flow only
        assert!(g.answer_device(&code_b, DeviceState::Declined));
        assert_eq!(
            g.poll_device(&a, app, t0(), at + std::time::Duration::from_secs(5)),
            Poll::Pending,
            "exactly the interval later: not too early"
        );
        assert_eq!(g.poll_device(&b, app, t0(), at), Poll::Declined);
        // exactly at its lifetime a code is still good
        assert_eq!(g.poll_device(&a, app, t0() + DEVICE_LIFETIME, at + std::time::Duration::from_secs(60)), Poll::Pending);
        assert!(!g.answer_device("NOSUCHCODE", DeviceState::Declined));
        let _ = code_a;
        // user codes draw on the whole alphabet
        let mut seen = std::collections::HashSet::new();
        for _ in 0..40 {
            seen.extend(user_code().chars());
        }
        assert!(seen.len() > 20, "{seen:?}");
        // filled, the device store stays near its bound
        for _ in 0..3000 {
            g.start_device(app, &"s".repeat(MAX_PARAMETER), t0());
        }
        assert!(g.bytes() <= STORE_BYTES && g.bytes() > STORE_BYTES / 2, "{}", g.bytes());
    }

    #[test]
    fn device_flows_that_fill_the_store_exactly_are_all_kept() {
        let mut g = Grants::default();
        let app = Uuid::from_u128(1);
        let full = "s".repeat(MAX_PARAMETER);
        let per = 384 + MAX_PARAMETER;
        let (first, _) = g.start_device(app, &full, t0());
        for _ in 1..STORE_BYTES / per {
            g.start_device(app, &full, t0());
        }
        let rest = STORE_BYTES - (STORE_BYTES / per) * per;
        g.start_device(app, &"s".repeat(rest - 384), t0());
        assert_eq!(g.bytes(), STORE_BYTES);
        assert_eq!(g.poll_device(&first, app, t0(), std::time::Instant::now()), Poll::Pending, "nothing had to go");
    }

    #[test]
    fn the_session_store_keeps_sessions_within_its_bound() {
        let mut g = Grants::default();
        let (first, second) = (
            g.start_session(Uuid::from_u128(2), Uuid::from_u128(3), [0; 10], t0()),
            g.start_session(Uuid::from_u128(4), Uuid::from_u128(5), [0; 10], t0()),
        );
        assert!(g.session(&first, t0()).is_some() && g.session(&second, t0()).is_some());
        g.end_session(&second);
        for i in 0..10_000u128 {
            g.start_session(Uuid::from_u128(i), Uuid::from_u128(i), [0; 10], t0());
        }
        assert!(g.bytes() <= STORE_BYTES && g.bytes() > STORE_BYTES / 2, "{}", g.bytes());
        assert!(g.session(&first, t0()).is_none(), "the oldest went first");
    }

    #[test]
    fn sessions_last_a_day_and_end_at_sign_out() {
        let mut g = Grants::default();
        let (user, sid) = (Uuid::from_u128(2), Uuid::from_u128(3));
        let cookie = g.start_session(user, sid, [0; 10], t0());
        assert_eq!(g.session(&cookie, t0()).map(|s| s.sid), Some(sid));
        assert!(g.session(&cookie, t0() + std::time::Duration::from_secs(23 * 3600)).is_some(), "a day long");
        assert!(g.session(&cookie, t0() + SESSION_LIFETIME + std::time::Duration::from_secs(1)).is_none());
        assert!(g.session("another", t0()).is_none());
        assert!(g.end_session(&cookie).is_some());
        assert!(g.session(&cookie, t0()).is_none());
    }
}
