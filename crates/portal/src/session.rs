//! Signed-in people: an access token kept on the server, found again by a random id in an
//! HttpOnly, Secure, SameSite=Strict cookie. Administrators and users have a store (and a
//! cookie name) each.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::HeaderMap;

/// A signed-in person: (user, access token, what renews it).
type Session = (String, String, Option<String>);

pub struct Sessions {
    cookie: String,
    /// session id → its session
    map: Mutex<HashMap<String, Session>>,
}

/// How many sessions a store keeps (the oldest signed-in goes first).
const KEPT: usize = 1_000;

impl Sessions {
    pub fn new(cookie: String) -> Sessions {
        Sessions { cookie, map: Mutex::default() }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new session for `user`: the Set-Cookie value.
    pub fn start(&self, user: &str, token: &str) -> String {
        self.start_renewable(user, token, None)
    }

    /// A session that can sign in again when its token expires: the lab's tokens live on
    /// the lab clock, which a trainer moves by days. `password` stays in this process's
    /// memory only — never rendered, logged or sent anywhere but the token endpoint.
    pub fn start_renewable(&self, user: &str, token: &str, password: Option<&str>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut map = self.map();
        if map.len() >= KEPT {
            // a bound: sign-ins nobody ends must not grow the store for ever
            if let Some(k) = map.keys().next().cloned() {
                map.remove(&k);
            }
        }
        map.insert(id.clone(), (user.to_string(), token.to_string(), password.map(str::to_string)));
        format!("{}={id}; Path=/portal; HttpOnly; Secure; SameSite=Strict", self.cookie)
    }

    /// The request's (user, token), when its cookie names a live session.
    pub fn get(&self, headers: &HeaderMap) -> Option<(String, String)> {
        let id = cookie(headers, &self.cookie)?;
        self.map().get(&id).map(|(u, t, _)| (u.clone(), t.clone()))
    }

    /// The id of the request's live session (what per-session state is kept under).
    pub fn id(&self, headers: &HeaderMap) -> Option<String> {
        let id = cookie(headers, &self.cookie)?;
        self.map().contains_key(&id).then_some(id)
    }

    /// What renews the request's session, if it can be renewed.
    pub fn renewal(&self, headers: &HeaderMap) -> Option<(String, String)> {
        let id = cookie(headers, &self.cookie)?;
        self.map().get(&id).and_then(|(u, _, p)| p.clone().map(|p| (u.clone(), p)))
    }

    /// Replaces the request's session's token.
    pub fn renew(&self, headers: &HeaderMap, token: &str) {
        if let Some(id) = cookie(headers, &self.cookie)
            && let Some(s) = self.map().get_mut(&id)
        {
            s.1 = token.to_string();
        }
    }

    /// Forgets the request's session: the Set-Cookie value that clears the cookie.
    pub fn end(&self, headers: &HeaderMap) -> String {
        if let Some(id) = cookie(headers, &self.cookie) {
            self.map().remove(&id);
        }
        format!("{}=; Path=/portal; HttpOnly; Secure; SameSite=Strict; Max-Age=0", self.cookie)
    }
}

/// A cookie's value from the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(prefix.as_str()).map(str::to_string))
        .filter(|v| !v.is_empty())
}

/// The signed-in (user, token), or a redirect to `$signin`.
macro_rules! signed_in {
    ($sessions:expr, $headers:expr, $signin:expr) => {
        match $sessions.get(&$headers) {
            Some(s) => s,
            None => return axum::response::Redirect::to($signin).into_response(),
        }
    };
}
pub(crate) use signed_in;
