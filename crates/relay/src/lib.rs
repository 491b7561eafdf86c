//! The relay between the tenant and the writeback engine: what travels over the engine's
//! outbound WebSocket ([`ToEngine`], [`ToTenant`]) and how a password travels inside it —
//! sealed for the engine's RSA key ([`Sealed`]: AES-256-GCM under a fresh key, the key
//! wrapped with RSA-OAEP-SHA256), opened only in the engine's memory.
//!
//! The shared vocabulary of two parts that never call each other's code.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The path of the relay's WebSocket on the tenant.
pub const RELAY_PATH: &str = "/lab/writeback/relay";
/// How often the engine says it is alive (Connect reports health every 5 minutes; the lab's
/// engine beats more often so a status page is fresh).
pub const HEARTBEAT_SECONDS: u64 = 30;

/// A password (or any secret) sealed for one engine's public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sealed {
    /// The AES-256 key, RSA-OAEP-SHA256-encrypted for the engine (base64).
    pub wrapped_key: String,
    /// The 96-bit GCM nonce (base64).
    pub nonce: String,
    /// Ciphertext and tag (base64).
    pub ciphertext: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    BadKey,
    /// The sealed value is not for this key, or was altered (Connect's 32004 DecryptionError).
    Decryption,
}

impl Sealed {
    /// Seals `secret` for the holder of `public`.
    pub fn seal(public: &RsaPublicKey, secret: &str, rng: &mut (impl rand::RngCore + rand::CryptoRng)) -> Sealed {
        let mut key = [0u8; 32];
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new_from_slice(&key).expect("32-byte key");
        let ciphertext = cipher.encrypt(Nonce::from_slice(&nonce), secret.as_bytes()).expect("AES-GCM encryption");
        let wrapped = public.encrypt(rng, Oaep::new::<sha2::Sha256>(), &key).expect("RSA-OAEP of a 32-byte key");
        Sealed { wrapped_key: B64.encode(wrapped), nonce: B64.encode(nonce), ciphertext: B64.encode(ciphertext) }
    }

    /// Opens a sealed value with the engine's private key.
    pub fn open(&self, private: &RsaPrivateKey) -> Result<String, CryptoError> {
        let d = |s: &str| B64.decode(s).map_err(|_| CryptoError::Decryption);
        let key = private.decrypt(Oaep::new::<sha2::Sha256>(), &d(&self.wrapped_key)?).map_err(|_| CryptoError::Decryption)?;
        let nonce = d(&self.nonce)?;
        if key.len() != 32 || nonce.len() != 12 {
            return Err(CryptoError::Decryption);
        }
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| CryptoError::Decryption)?;
        let plain = cipher.decrypt(Nonce::from_slice(&nonce), d(&self.ciphertext)?.as_slice()).map_err(|_| CryptoError::Decryption)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Decryption)
    }
}

/// A public key as it travels at onboarding (SPKI DER, base64).
pub fn public_key_to_b64(key: &RsaPublicKey) -> String {
    B64.encode(key.to_public_key_der().expect("SPKI DER").as_bytes())
}

pub fn public_key_from_b64(s: &str) -> Result<RsaPublicKey, CryptoError> {
    let der = B64.decode(s).map_err(|_| CryptoError::BadKey)?;
    let key = RsaPublicKey::from_public_key_der(&der).map_err(|_| CryptoError::BadKey)?;
    use rsa::traits::PublicKeyParts;
    if key.size() < 256 { Err(CryptoError::BadKey) } else { Ok(key) }
}

/// What the tenant asks of on-premises.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Operation {
    /// A reset (SSPR, or an administrator's): no old password.
    Reset {
        password: Sealed,
        /// Also unlock (SSPR resets do).
        unlock: bool,
        /// Must change at next logon (pwdLastSet 0), when forced-change writeback is on.
        force_change: bool,
        /// An administrator's reset (Connect's 31009–31011 events) rather than the user's.
        by_admin: bool,
    },
    /// A user's own change: AD checks the old password, history and minimum age.
    Change { old: Sealed, new: Sealed },
    /// Unlock only (lockoutTime 0).
    Unlock,
}

impl Operation {
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::Reset { by_admin: true, .. } => "admin reset",
            Operation::Reset { .. } => "reset",
            Operation::Change { .. } => "change",
            Operation::Unlock => "unlock",
        }
    }
}

/// Tenant → engine. (The request dwarfs the ack; messages live only as long as a send.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ToEngine {
    /// A password operation for the on-premises object whose sourceAnchor is `anchor`.
    Request {
        id: Uuid,
        /// onPremisesImmutableId: base64 of the objectGUID (or mS-DS-ConsistencyGuid).
        anchor: String,
        /// For the event log only.
        user_principal_name: String,
        operation: Operation,
        /// Unix time (ms) after which the tenant no longer waits: the engine refuses the
        /// request then, so an answer nobody hears cannot leave the sides apart.
        deadline_ms: u64,
    },
    /// The answer to a heartbeat.
    HeartbeatAck,
}

/// Engine → tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ToTenant {
    Heartbeat,
    Answer { id: Uuid, outcome: Outcome },
}

/// What on-premises said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum Outcome {
    Succeeded,
    Failed {
        failure: Failure,
        /// The Connect event logged for it (33xxx), for the audit's details.
        event: u32,
    },
}

/// Why on-premises refused, in the terms the tenant maps to what the caller sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Failure {
    /// AD's password policy (age, history, complexity, length): 33008.
    PasswordPolicy,
    /// The old password of a change is wrong: 33007.
    IncorrectPassword,
    /// The connector lacks a right, or the account is protected (adminCount 1): 33004.
    Permissions,
    /// No on-premises object with that anchor: 33002.
    UserNotFound,
    /// More than one: 33003.
    MultiMatch,
    /// The account is disabled on-premises (a change): 33005.
    AccountDisabled,
    /// The account is locked out on-premises (a change): 33006.
    AccountLockedOut,
    /// No domain controller answered, or none could be reached over TLS: 33001.
    DirectoryUnavailable,
    /// The directory is set up so that writeback cannot work (an unsealed channel, a DC
    /// without the policy-hints control): 33009.
    Configuration,
    /// The sealed password could not be opened: 32004.
    Decryption,
    /// Anything else AD said: 33001.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn key(seed: u64) -> RsaPrivateKey {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        RsaPrivateKey::new(&mut rng, 2048).unwrap()
    }

    #[test]
    fn a_sealed_password_opens_only_with_its_key_and_not_after_tampering() {
        let (k1, k2) = (key(1), key(2));
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let s = Sealed::seal(&k1.to_public_key(), "Blue-Harbor-73 ünïcode", &mut rng);
        assert!(!serde_json::to_string(&s).unwrap().contains("Blue-Harbor"));
        assert_eq!(s.open(&k1).unwrap(), "Blue-Harbor-73 ünïcode");
        assert_eq!(s.open(&k2), Err(CryptoError::Decryption));
        let mut t = s.clone();
        let mut ct = B64.decode(&t.ciphertext).unwrap();
        ct[0] ^= 1;
        t.ciphertext = B64.encode(ct);
        assert_eq!(t.open(&k1), Err(CryptoError::Decryption));
        // two seals of one password differ (fresh key and nonce)
        assert_ne!(Sealed::seal(&k1.to_public_key(), "x", &mut rng), Sealed::seal(&k1.to_public_key(), "x", &mut rng));
    }

    #[test]
    fn public_keys_travel_as_spki_and_small_keys_are_refused() {
        let k = key(3);
        let b = public_key_to_b64(&k.to_public_key());
        assert_eq!(public_key_from_b64(&b).unwrap(), k.to_public_key());
        assert_eq!(public_key_from_b64("not base64!"), Err(CryptoError::BadKey));
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let small = RsaPrivateKey::new(&mut rng, 1024).unwrap();
        assert_eq!(public_key_from_b64(&public_key_to_b64(&small.to_public_key())), Err(CryptoError::BadKey));
    }

    #[test]
    fn messages_round_trip_as_tagged_json() {
        let m = ToEngine::Request {
            id: Uuid::nil(),
            anchor: "AAAA".into(),
            user_principal_name: "u@x".into(),
            operation: Operation::Unlock,
            deadline_ms: 1,
        };
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains("\"kind\":\"request\"") && text.contains("\"type\":\"unlock\""), "{text}");
        assert_eq!(serde_json::from_str::<ToEngine>(&text).unwrap(), m);
        let a = ToTenant::Answer { id: Uuid::nil(), outcome: Outcome::Failed { failure: Failure::Permissions, event: 33004 } };
        assert_eq!(serde_json::from_str::<ToTenant>(&serde_json::to_string(&a).unwrap()).unwrap(), a);
    }
}
