//! Refresh tokens as Entra hands them to public and confidential clients that ask for
//! `offline_access`: opaque, redeemed at the token endpoint for a new access token and a new
//! refresh token, revoked when the user's password changes or is reset, expired after 90 days
//! without use. A redeemed token stays valid: "The Microsoft identity platform doesn't revoke
//! old refresh tokens when used to fetch new access tokens" (Microsoft's refresh-token page);
//! clients are told to delete it. Plain synchronous Rust.

use std::collections::{HashMap, VecDeque};

use base64::Engine;
use clock::OffsetDateTime;
use sha2::Digest;
use uuid::Uuid;

/// Entra's refresh tokens expire after 90 days without use.
pub const INACTIVITY_LIMIT: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);
/// The most refresh tokens the tenant keeps; the oldest go first.
pub const KEPT: usize = 10_000;

/// What a refresh token stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub user: Uuid,
    pub client_id: String,
    /// The scope asked for when the chain began.
    pub scope: String,
    pub issued: OffsetDateTime,
    pub last_used: OffsetDateTime,
    /// The salt of the user's credential when the token was issued: any new password
    /// (change, reset, hash sync) has another, which revokes the token.
    pub credential: [u8; 10],
}

/// Why a refresh token is refused, as AADSTS codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshError {
    /// AADSTS9002313: not a refresh token this tenant issued (or one the tenant no longer
    /// keeps: the oldest go first past [`KEPT`]).
    Malformed,
    /// AADSTS70000: issued to another client.
    WrongClient,
    /// AADSTS50173: the password changed (or was reset) after the token was issued.
    Revoked { issued: OffsetDateTime, valid_from: OffsetDateTime },
    /// AADSTS700082: unused for longer than [`INACTIVITY_LIMIT`].
    Inactive { issued: OffsetDateTime },
    /// AADSTS50057: the account is disabled.
    Disabled,
}

impl RefreshError {
    pub fn code(&self) -> u32 {
        match self {
            RefreshError::Malformed => 9002313,
            RefreshError::WrongClient => 70000,
            RefreshError::Revoked { .. } => 50173,
            RefreshError::Inactive { .. } => 700082,
            RefreshError::Disabled => 50057,
        }
    }

    /// Entra's description (without the AADSTS prefix the endpoint adds).
    pub fn message(&self) -> String {
        match self {
            RefreshError::Malformed => "Invalid request. Request is malformed or invalid.".into(),
            RefreshError::WrongClient => "Provided grant is invalid or malformed.".into(),
            RefreshError::Revoked { issued, valid_from } => format!(
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.",
                stamp(issued),
                stamp(valid_from)
            ),
            RefreshError::Inactive { issued } => format!(
                "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for 90.00:00:00.",
                stamp(issued)
            ),
            RefreshError::Disabled => "The user account is disabled.".into(),
        }
    }
}

fn stamp(t: &OffsetDateTime) -> String {
    format!("{}T{:02}:{:02}:{:02}.0000000Z", t.date(), t.hour(), t.minute(), t.second())
}

/// The tenant's refresh tokens, kept by the SHA-256 of the token (never the token itself).
#[derive(Debug, Default)]
pub struct Store {
    grants: HashMap<[u8; 32], Grant>,
    order: VecDeque<[u8; 32]>,
}

fn key(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

impl Store {
    /// A new refresh token for `grant`: 32 bytes from the OS, base64url.
    pub fn issue(&mut self, grant: Grant) -> String {
        let mut raw = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        let token = format!("1.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw));
        while self.order.len() >= KEPT {
            if let Some(old) = self.order.pop_front() {
                self.grants.remove(&old);
            }
        }
        let k = key(&token);
        self.grants.insert(k, grant);
        self.order.push_back(k);
        token
    }

    /// The grant behind `token` if `client_id` may redeem it (the caller issues the next
    /// token). The redeemed one stays valid, its inactivity counted from now; a token unused
    /// past [`INACTIVITY_LIMIT`] is forgotten.
    pub fn redeem(&mut self, token: &str, client_id: &str, now: OffsetDateTime) -> Result<Grant, RefreshError> {
        let k = key(token);
        let grant = self.grants.get_mut(&k).ok_or(RefreshError::Malformed)?;
        if !grant.client_id.eq_ignore_ascii_case(client_id) {
            return Err(RefreshError::WrongClient);
        }
        if (now - grant.last_used).whole_seconds() > INACTIVITY_LIMIT.as_secs() as i64 {
            let issued = grant.issued;
            // its key stays in `order` until it comes round (evicting a forgotten key is a
            // no-op): a scan here would cost every redemption O(KEPT)
            self.grants.remove(&k);
            return Err(RefreshError::Inactive { issued });
        }
        grant.last_used = now;
        Ok(grant.clone())
    }

    pub fn len(&self) -> usize {
        self.grants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(now: OffsetDateTime) -> Grant {
        Grant { user: Uuid::nil(), client_id: "app".into(), scope: "openid".into(), issued: now, last_used: now, credential: [1; 10] }
    }

    /// issue 31, item 15: Entra does not revoke a refresh token when it is redeemed.
    #[test]
    fn a_redeemed_token_stays_valid_until_it_is_unused_too_long() {
        let now = clock::Clock::lab_epoch();
        let mut s = Store::default();
        let t = s.issue(grant(now));
        assert_eq!(s.redeem("1.not-issued", "app", now), Err(RefreshError::Malformed));
        assert_eq!(s.redeem(&t, "other", now), Err(RefreshError::WrongClient));
        assert_eq!(s.redeem(&t, "APP", now).unwrap().user, Uuid::nil());
        // used again 60 days later, and again 60 days after that: each use restarts its clock
        let day = std::time::Duration::from_secs(24 * 3600);
        assert_eq!(s.redeem(&t, "app", now + day * 60).unwrap().last_used, now + day * 60, "not single-use");
        assert!(s.redeem(&t, "app", now + day * 120).is_ok());
        let later = now + day * 120 + INACTIVITY_LIMIT + std::time::Duration::from_secs(1);
        assert!(matches!(s.redeem(&t, "app", later), Err(RefreshError::Inactive { .. })));
        assert_eq!(s.redeem(&t, "app", later), Err(RefreshError::Malformed), "an expired token is forgotten");
    }

    #[test]
    fn the_store_is_bounded_and_keeps_no_token() {
        let now = clock::Clock::lab_epoch();
        let mut s = Store::default();
        let first = s.issue(grant(now));
        for _ in 0..KEPT {
            s.issue(grant(now));
        }
        assert_eq!(s.len(), KEPT);
        assert_eq!(s.redeem(&first, "app", now), Err(RefreshError::Malformed), "the oldest went first");
        assert!(!format!("{s:?}").contains(first.trim_start_matches("1.")));
    }
}
