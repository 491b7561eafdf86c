//! Tokens as Entra issues them: RS256 JWTs signed with the tenant's key, published as a
//! JWKS. Lifetimes are judged by the lab clock (not the system's), so a scenario can let a
//! token expire by advancing time.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::SeedableRng;
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use serde::{Deserialize, Serialize};

/// Graph's audience (v1 access tokens, as Graph receives them).
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
/// Access tokens live an hour.
pub const LIFETIME_SECONDS: i64 = 3600;

/// The claims of an access token for Graph.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub tid: String,
    pub oid: String,
    pub sub: String,
    pub appid: String,
    pub ver: String,
    /// Delegated permissions (space separated); absent on app-only tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    /// Application permissions; absent on delegated tokens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The directory role template ids of the signed-in user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Why a bearer token was refused (Graph answers 401 InvalidAuthenticationToken).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    Empty,
    Malformed,
    Signature,
    Audience,
    Issuer,
    Lifetime,
}

impl TokenError {
    /// Graph's message for the failure.
    pub fn message(&self) -> &'static str {
        match self {
            TokenError::Empty => "Access token is empty.",
            TokenError::Malformed => "IDX14100: JWT is not well formed, there are no dots (.).",
            TokenError::Signature => "Access token validation failure. Invalid signature.",
            TokenError::Audience => "Access token validation failure. Invalid audience.",
            TokenError::Issuer => "Access token validation failure. Invalid issuer.",
            TokenError::Lifetime => "Lifetime validation failed, the token is expired.",
        }
    }
}

pub struct Signer {
    pub kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwks: JwkSet,
}

/// RSA-2048 generation takes a while; labs with the same seed share the key.
static KEYS: LazyLock<Mutex<HashMap<u64, Vec<u8>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

impl Signer {
    /// The signing key for a lab seed: generated once per process (the same seed always gives
    /// the same key).
    pub fn new(seed: u64) -> Signer {
        Signer::from_der(seed, &Signer::key_der(seed))
    }

    /// The PKCS#1 DER of the seed's key, for a lab to keep in its state directory.
    pub fn key_der(seed: u64) -> Vec<u8> {
        KEYS.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(seed)
            .or_insert_with(|| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x007e_4a17);
                let key = RsaPrivateKey::new(&mut rng, 2048).expect("RSA key generation");
                key.to_pkcs1_der().expect("DER").as_bytes().to_vec()
            })
            .clone()
    }

    /// A signer from a kept key (PKCS#1 DER).
    pub fn from_der(seed: u64, der: &[u8]) -> Signer {
        let encoding = EncodingKey::from_rsa_der(der);
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("JWK from an RSA key");
        let kid = format!("lab-{seed:x}");
        jwk.common.key_id = Some(kid.clone());
        let decoding = DecodingKey::from_jwk(&jwk).expect("decoding key");
        Signer { kid, encoding, decoding, jwks: JwkSet { keys: vec![jwk] } }
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing with our own key")
    }

    /// Checks signature, issuer and audience, then the lifetime against `now` (seconds
    /// since the epoch, from the lab clock).
    pub fn validate(&self, token: &str, issuer: &str, now: i64) -> Result<AccessClaims, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        if token.matches('.').count() != 2 {
            return Err(TokenError::Malformed);
        }
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_exp = false; // judged below by the lab clock
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &v).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::Signature,
            _ => TokenError::Malformed,
        })?;
        let c = data.claims;
        if c.aud != GRAPH_AUDIENCE && c.aud != "00000003-0000-0000-c000-000000000000" {
            return Err(TokenError::Audience);
        }
        if c.iss != issuer {
            return Err(TokenError::Issuer);
        }
        if now >= c.exp || now < c.nbf - 300 {
            return Err(TokenError::Lifetime);
        }
        Ok(c)
    }
}
