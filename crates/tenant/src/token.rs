//! Tokens as Entra issues them: RS256 JWTs signed with the tenant's key, published as a
//! JWKS. Lifetimes are judged by the lab clock (not the system's), so a scenario can let a
//! token expire by advancing time.

use std::collections::HashMap;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
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
    /// Entra's unique token identifier (JWT's `jti`): two tokens minted in the same second
    /// for the same caller still differ.
    #[serde(default)]
    pub uti: String,
}

/// A new `uti`: 16 bytes from the OS generator, base64url (22 characters, as Entra's).
pub fn new_uti() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b)
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

/// An RSA signing key, parsed once: every lab of an OS user signs with the same key (kept in
/// the user's cache directory, see `labkit::userkeys`), each under a [`Signer`] of its own.
pub struct SigningKey {
    /// RS256 signatures: ring's for a process's first [`RING_FIRST`] tokens, AWS-LC's after
    /// (~0.35 ms of CPU a token here, ring's ~0.65 ms, the rsa crate's ~3.5 ms). AWS-LC's first
    /// signature seeds its random generator from CPU jitter entropy, ~28 ms of a core once a
    /// process: a lab started for a test signs a handful of tokens and must not pay that, a
    /// tenant under load warms AWS-LC on a thread of its own and then signs faster. PKCS#1
    /// v1.5 signatures are deterministic: both give the same token.
    ring: ring::signature::RsaKeyPair,
    /// Parsed when AWS-LC is warmed (its key check is another ~ms a process would pay for
    /// nothing when it signs only a few tokens).
    aws_lc: std::sync::OnceLock<aws_lc_rs::signature::RsaKeyPair>,
    der: Vec<u8>,
    signed: std::sync::atomic::AtomicU64,
    decoding: DecodingKey,
    /// The public key as a JWK, without a key id (each signer gives its own).
    jwk: Jwk,
    /// A self-signed certificate of the key (the JWKS's `x5c`), made when first asked for.
    certificate: std::sync::OnceLock<Option<Vec<u8>>>,
}

/// How many tokens a process signs with ring before AWS-LC is warmed (in the background).
pub const RING_FIRST: u64 = 64;

/// AWS-LC's random generator has been seeded in this process (it is process-wide).
static AWS_LC_WARM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl SigningKey {
    /// A new RSA-2048 signing key (PKCS#1 DER) from the OS's random generator: a secret, so
    /// never derived from the lab's seed.
    pub fn new_der() -> Vec<u8> {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("RSA key generation");
        key.to_pkcs1_der().expect("DER").as_bytes().to_vec()
    }

    /// A kept key (PKCS#1 DER); None when it is not an RSA key ring accepts.
    pub fn from_der(der: &[u8]) -> Option<SigningKey> {
        let ring = ring::signature::RsaKeyPair::from_der(der).ok()?;
        let encoding = EncodingKey::from_rsa_der(der);
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).ok()?;
        let decoding = DecodingKey::from_jwk(&jwk).ok()?;
        Some(SigningKey {
            ring,
            aws_lc: Default::default(),
            der: der.to_vec(),
            signed: Default::default(),
            decoding,
            jwk,
            certificate: Default::default(),
        })
    }

    /// The key's self-signed certificate (DER), as Entra publishes one per signing key in its
    /// JWKS (`x5c`) for clients that validate against a certificate; made once per key (one
    /// RSA signature), not on a start path.
    pub fn certificate(&self) -> Option<&[u8]> {
        self.certificate
            .get_or_init(|| {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                use rsa::pkcs8::EncodePrivateKey;
                let pkcs8 = RsaPrivateKey::from_pkcs1_der(&self.der).ok()?.to_pkcs8_der().ok()?;
                let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_bytes());
                let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).ok()?;
                let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).ok()?;
                // Entra's signing certificates name the token service
                params.distinguished_name.push(rcgen::DnType::CommonName, "accounts.accesscontrol.windows.net");
                params.not_before = rcgen::date_time_ymd(2026, 1, 1);
                params.not_after = rcgen::date_time_ymd(2031, 1, 1);
                Some(params.self_signed(&key).ok()?.der().to_vec())
            })
            .as_deref()
    }

    /// The key for AWS-LC (None if AWS-LC refuses a key ring took: ring signs then).
    fn aws_lc(&self) -> Option<&aws_lc_rs::signature::RsaKeyPair> {
        if self.aws_lc.get().is_none()
            && let Ok(k) = aws_lc_rs::signature::RsaKeyPair::from_der(&self.der)
        {
            let _ = self.aws_lc.set(k);
        }
        self.aws_lc.get()
    }

    /// An RS256 signature of `input`.
    fn sign(&self, input: &[u8]) -> Vec<u8> {
        use std::sync::atomic::Ordering;
        if AWS_LC_WARM.load(Ordering::Relaxed)
            && let Some(key) = self.aws_lc()
        {
            let mut signature = vec![0u8; key.public_modulus_len()];
            key.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), input, &mut signature)
                .expect("signing with our own key");
            return signature;
        }
        if self.signed.fetch_add(1, Ordering::Relaxed) == RING_FIRST {
            // (a failed spawn only leaves ring signing)
            let _ = std::thread::Builder::new().name("aws-lc-warm".into()).spawn(|| {
                let mut one = [0u8; 1];
                if aws_lc_rs::rand::fill(&mut one).is_ok() {
                    AWS_LC_WARM.store(true, Ordering::Relaxed);
                }
            });
        }
        let mut signature = vec![0u8; self.ring.public().modulus_len()];
        self.ring
            .sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input, &mut signature)
            .expect("signing with our own key");
        signature
    }
}

/// One tenant's token signer: the (shared) key under this tenant's own key id. The `kid` is
/// what keeps two labs of one OS user apart: it is random per signer (from the OS), the
/// tenant's JWKS lists only its own, and a token whose header names another `kid` is refused
/// before its signature is looked at — as a client picking the key by `kid` from the JWKS
/// would refuse it. The `kid` is inside the signed header, so it cannot be swapped.
pub struct Signer {
    pub kid: String,
    key: std::sync::Arc<SigningKey>,
    jwks: JwkSet,
    /// Tokens whose signature was checked (by their SHA-256), with their claims: clients send
    /// one token for an hour, and the RSA check (the rsa crate, ~0.1 ms) is the costliest part
    /// of a Graph call. Issuer, audience and lifetime are still judged on every use.
    verified: std::sync::Mutex<HashMap<[u8; 32], AccessClaims>>,
}

/// How many checked tokens [`Signer`] remembers (emptied when full: bounded, and a token
/// not remembered is only checked again).
const VERIFIED_KEPT: usize = 4096;

impl Signer {
    /// A signer with a new key (tests; a lab uses its OS user's key: [`Signer::new`]).
    pub fn generate() -> Signer {
        Signer::new(std::sync::Arc::new(SigningKey::from_der(&SigningKey::new_der()).expect("a new key")))
    }

    /// A signer of `key` under a new random key id, shaped as Entra's (27 characters of
    /// base64url, as its x5t thumbprints are).
    pub fn new(key: std::sync::Arc<SigningKey>) -> Signer {
        let mut id = [0u8; 20];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
        Signer::with_kid(key, base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, id))
    }

    /// A signer of `key` under a given key id.
    pub fn with_kid(key: std::sync::Arc<SigningKey>, kid: String) -> Signer {
        let mut jwk = key.jwk.clone();
        jwk.common.key_id = Some(kid.clone());
        Signer { kid, key, jwks: JwkSet { keys: vec![jwk] }, verified: Default::default() }
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// The JWKS as Entra publishes it: each key with `use: sig`, its certificate (`x5c`) and
    /// that certificate's SHA-1 thumbprint (`x5t`), and the issuer it signs for.
    pub fn published_jwks(&self, issuer: &str) -> serde_json::Value {
        use base64::Engine;
        let mut keys = vec![];
        for jwk in &self.jwks.keys {
            let mut k = serde_json::to_value(jwk).unwrap_or_default();
            k["use"] = "sig".into();
            if let Some(cert) = self.key.certificate() {
                let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert);
                k["x5t"] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha1.as_ref()).into();
                k["x5c"] = serde_json::json!([base64::engine::general_purpose::STANDARD.encode(cert)]);
            }
            k["issuer"] = issuer.into();
            keys.push(k);
        }
        serde_json::json!({ "keys": keys })
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        let header = serde_json::to_vec(&header).expect("a JWT header");
        let claims = serde_json::to_vec(claims).expect("claims as JSON");
        let mut token = format!("{}.{}", b64.encode(header), b64.encode(claims));
        let signature = self.key.sign(token.as_bytes());
        token.push('.');
        token.push_str(&b64.encode(signature));
        token
    }

    /// An access token for `claims`, remembered as checked: the tenant just signed it, so its
    /// first use skips the RSA check (every lab start's onboarding, every scenario's first
    /// Graph call). Issuer, audience and lifetime are still judged on every use.
    pub fn sign_access(&self, claims: &AccessClaims) -> String {
        let token = self.sign(claims);
        self.remember(&token, claims.clone());
        token
    }

    fn digest(token: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    fn remember(&self, token: &str, claims: AccessClaims) {
        let mut verified = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= VERIFIED_KEPT {
            verified.clear();
        }
        verified.insert(Signer::digest(token), claims);
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
        let digest = Signer::digest(token);
        let known = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&digest).cloned();
        let c = match known {
            Some(c) => c,
            None => {
                // another signer's key id (another lab's token, though its key be the same)
                let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
                if header.kid.as_deref() != Some(self.kid.as_str()) {
                    return Err(TokenError::Signature);
                }
                let mut v = Validation::new(Algorithm::RS256);
                v.validate_exp = false; // judged below by the lab clock
                v.validate_nbf = false;
                v.validate_aud = false;
                v.required_spec_claims.clear();
                let data = jsonwebtoken::decode::<AccessClaims>(token, &self.key.decoding, &v).map_err(|e| match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::Signature,
                    _ => TokenError::Malformed,
                })?;
                self.remember(token, data.claims.clone());
                data.claims
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(aud: &str, iat: i64) -> AccessClaims {
        AccessClaims {
            aud: aud.into(),
            iss: "https://sts.windows.net/lab/".into(),
            iat,
            nbf: iat,
            exp: iat + LIFETIME_SECONDS,
            tid: "lab".into(),
            oid: "o".into(),
            sub: "s".into(),
            appid: "a".into(),
            ver: "1.0".into(),
            scp: None,
            roles: vec![],
            wids: vec![],
            upn: None,
            unique_name: None,
            name: None,
            uti: new_uti(),
        }
    }

    /// The verified-token cache keeps what it was given, up to its bound, and no more.
    #[test]
    fn the_verified_cache_remembers_within_its_bound() {
        let signer = Signer::generate();
        let kept = |s: &Signer| s.verified.lock().unwrap().len();
        for i in 0..3 {
            signer.remember(&format!("token-{i}"), claims(GRAPH_AUDIENCE, 1_000));
        }
        assert_eq!(kept(&signer), 3);
        for i in 0..VERIFIED_KEPT {
            signer.remember(&format!("more-{i}"), claims(GRAPH_AUDIENCE, 1_000));
        }
        assert!(kept(&signer) <= VERIFIED_KEPT && kept(&signer) > 0, "{}", kept(&signer));
    }

    /// Graph's own words for each refusal (401 InvalidAuthenticationToken), which SDKs and
    /// people read: each is distinct and names what failed.
    #[test]
    fn each_refusal_has_graphs_message() {
        let all = [
            (TokenError::Empty, "empty"),
            (TokenError::Malformed, "not well formed"),
            (TokenError::Signature, "Invalid signature"),
            (TokenError::Audience, "Invalid audience"),
            (TokenError::Issuer, "Invalid issuer"),
            (TokenError::Lifetime, "the token is expired"),
        ];
        for (e, words) in &all {
            assert!(e.message().contains(words), "{e:?}: {}", e.message());
        }
        let distinct: std::collections::HashSet<_> = all.iter().map(|(e, _)| e.message()).collect();
        assert_eq!(distinct.len(), all.len());
    }

    /// A token is not valid before its `nbf` (five minutes of clock skew allowed, as Microsoft's
    /// libraries allow), nor at or after its `exp`.
    #[test]
    fn a_token_is_valid_from_nbf_less_the_skew_until_exp() {
        let signer = Signer::generate();
        let iss = "https://sts.windows.net/lab/";
        let mut c = claims(GRAPH_AUDIENCE, 1_000);
        c.nbf = 10_000;
        c.exp = 10_000 + LIFETIME_SECONDS;
        let token = signer.sign(&c);
        assert_eq!(signer.validate(&token, iss, 1_000).map(|c| c.nbf), Err(TokenError::Lifetime), "issued for later");
        assert_eq!(signer.validate(&token, iss, 10_000 - 301).map(|c| c.nbf), Err(TokenError::Lifetime), "past the skew");
        assert_eq!(signer.validate(&token, iss, 10_000 - 300).map(|c| c.nbf), Ok(10_000), "within the skew");
        assert_eq!(signer.validate(&token, iss, 10_000 + LIFETIME_SECONDS - 1).map(|c| c.nbf), Ok(10_000));
        assert_eq!(signer.validate(&token, iss, 10_000 + LIFETIME_SECONDS).map(|c| c.nbf), Err(TokenError::Lifetime), "at exp");
    }

    /// A token's signature is checked once; what depends on the moment or the caller —
    /// lifetime, issuer — is judged on every use, and a remembered token proves nothing
    /// about another one.
    #[test]
    fn a_remembered_token_is_still_judged_on_every_use() {
        let signer = Signer::generate();
        let iss = "https://sts.windows.net/lab/";
        let token = signer.sign(&claims(GRAPH_AUDIENCE, 1_000));
        for _ in 0..2 {
            assert_eq!(signer.validate(&token, iss, 1_000).map(|c| c.iat), Ok(1_000));
        }
        assert_eq!(signer.validate(&token, iss, 1_000 + LIFETIME_SECONDS), Err(TokenError::Lifetime), "expired by the lab clock");
        assert_eq!(signer.validate(&token, "https://sts.windows.net/other/", 1_000), Err(TokenError::Issuer));
        // the same claims with another signature, and a token by another key
        let (head, _) = token.rsplit_once('.').unwrap();
        let forged = format!("{head}.{}", "A".repeat(342));
        assert_eq!(signer.validate(&forged, iss, 1_000), Err(TokenError::Signature));
        let other = Signer::generate().sign(&claims(GRAPH_AUDIENCE, 1_000));
        assert_eq!(signer.validate(&other, iss, 1_000), Err(TokenError::Signature));
        assert_eq!(signer.validate(&signer.sign(&claims("api://other", 1_000)), iss, 1_000), Err(TokenError::Audience));
    }

    /// A token the tenant issues is remembered as checked from the start: its first use finds
    /// the claims another signer with the same key decodes from it, and is judged like any.
    #[test]
    fn an_issued_token_is_remembered_with_the_claims_it_carries() {
        let issuer = Signer::generate();
        let reader = Signer::with_kid(issuer.key.clone(), issuer.kid.clone());
        let iss = "https://sts.windows.net/lab/";
        let mut c = claims(GRAPH_AUDIENCE, 1_000);
        c.scp = Some("User.Read".into());
        c.wids = vec!["62e90394-69f5-4237-9190-012177145e10".into()];
        let token = issuer.sign_access(&c);
        assert!(issuer.verified.lock().unwrap().contains_key(&Signer::digest(&token)), "remembered when issued");
        assert!(reader.verified.lock().unwrap().is_empty());
        assert_eq!(issuer.validate(&token, iss, 1_000), reader.validate(&token, iss, 1_000), "the same claims as decoded");
        assert_eq!(issuer.validate(&token, iss, 1_000 + LIFETIME_SECONDS), Err(TokenError::Lifetime));
        assert_eq!(issuer.validate(&issuer.sign_access(&claims("api://other", 1_000)), iss, 1_000), Err(TokenError::Audience));
    }

    /// Two labs of one OS user sign with one key: what one issues, the other refuses by its
    /// key id, and a token whose header is made to name the other's key id fails its signature.
    #[test]
    fn a_token_under_another_key_id_is_refused_though_the_key_is_the_same() {
        use base64::Engine;
        let key = std::sync::Arc::new(SigningKey::from_der(&SigningKey::new_der()).unwrap());
        let (a, b) = (Signer::new(key.clone()), Signer::new(key));
        assert_ne!(a.kid, b.kid, "a new key id for each signer");
        assert_eq!(a.kid.len(), 27, "Entra's kid shape: {}", a.kid);
        assert_eq!(a.jwks().keys[0].common.key_id.as_deref(), Some(a.kid.as_str()));
        let iss = "https://sts.windows.net/lab/";
        let token = a.sign(&claims(GRAPH_AUDIENCE, 1_000));
        assert_eq!(a.validate(&token, iss, 1_000).map(|c| c.iat), Ok(1_000));
        assert_eq!(b.validate(&token, iss, 1_000), Err(TokenError::Signature), "A's token at B");
        // A's token with its header rewritten to B's kid: the signature covers the header
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (head, rest) = token.split_once('.').unwrap();
        let mut header: serde_json::Value = serde_json::from_slice(&b64.decode(head).unwrap()).unwrap();
        header["kid"] = b.kid.clone().into();
        let rekeyed = format!("{}.{rest}", b64.encode(serde_json::to_vec(&header).unwrap()));
        assert_eq!(b.validate(&rekeyed, iss, 1_000), Err(TokenError::Signature), "a kid swapped in after signing");
        assert!(SigningKey::from_der(b"not a key").is_none());
    }

    /// ring and AWS-LC make the same (deterministic) signature, so which one signed never shows.
    #[test]
    fn ring_and_aws_lc_sign_alike() {
        let key = SigningKey::from_der(&SigningKey::new_der()).unwrap();
        let input = b"header.claims";
        let mut by_ring = vec![0u8; key.ring.public().modulus_len()];
        key.ring.sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input, &mut by_ring).unwrap();
        let mut by_aws_lc = vec![0u8; key.aws_lc().unwrap().public_modulus_len()];
        key.aws_lc()
            .unwrap()
            .sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), input, &mut by_aws_lc)
            .unwrap();
        assert_eq!(by_ring, by_aws_lc);
        // past RING_FIRST tokens the signer warms AWS-LC and moves to it; every token verifies
        let signer = Signer::new(std::sync::Arc::new(key));
        let iss = "https://sts.windows.net/lab/";
        for i in 0..RING_FIRST + 2 {
            let token = signer.sign(&claims(GRAPH_AUDIENCE, 1_000 + i as i64));
            let fresh = Signer::with_kid(signer.key.clone(), signer.kid.clone());
            assert!(fresh.validate(&token, iss, 1_000 + i as i64).is_ok(), "token {i}");
        }
    }

    /// issue 31, item 18: tokens minted in the same second for the same caller differ.
    #[test]
    fn tokens_of_one_second_differ_by_their_uti() {
        let signer = Signer::generate();
        let (a, b) = (signer.sign(&claims(GRAPH_AUDIENCE, 1_000)), signer.sign(&claims(GRAPH_AUDIENCE, 1_000)));
        assert_ne!(a, b);
        let iss = "https://sts.windows.net/lab/";
        let (ca, cb) = (signer.validate(&a, iss, 1_000).unwrap(), signer.validate(&b, iss, 1_000).unwrap());
        assert_eq!(ca.uti.len(), 22);
        assert_ne!(ca.uti, cb.uti);
    }
}
