//! The relay between the tenant and the writeback engine: what travels over the engine's
//! outbound WebSocket ([`ToEngine`], [`ToTenant`]) and how a password travels inside it —
//! sealed for the engine's RSA key ([`Sealed`]: AES-256-GCM under a data key, the data key
//! wrapped with RSA-OAEP-SHA256), opened only in the engine's memory. The tenant keeps one
//! [`DataKey`] per relay link (new on every link, and after [`DATA_KEY_USES`] passwords) and
//! the engine a [`KeyCache`] of unwrapped ones, so a password costs an RSA operation on
//! neither side: an RSA-2048 private-key operation is 1.7 ms of CPU, the whole reset's budget.
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

/// How long after a request's deadline the tenant still waits for its answer. The engine
/// commits to an AD write only before the deadline and gives the write this long, so an
/// answer to a write AD took arrives while the tenant still listens: a request the tenant
/// reports failed was never written (short of a DC that takes longer than this to answer,
/// which the next password hash sync settles).
pub const WRITE_GRACE_MS: u64 = 2_000;

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

/// How many passwords one data key seals before the tenant makes another (random 96-bit
/// nonces stay far from GCM's 2^32 bound).
pub const DATA_KEY_USES: u64 = 100_000;

/// An AES-256 key and its RSA-OAEP-SHA256 wrapping for one engine.
#[derive(Clone)]
pub struct DataKey {
    key: [u8; 32],
    wrapped: String,
}

impl DataKey {
    pub fn new(public: &RsaPublicKey, rng: &mut (impl rand::RngCore + rand::CryptoRng)) -> DataKey {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        let wrapped = public.encrypt(rng, Oaep::new::<sha2::Sha256>(), &key).expect("RSA-OAEP of a 32-byte key");
        DataKey { key, wrapped: B64.encode(wrapped) }
    }

    /// Seals `secret` under this key with a fresh nonce.
    pub fn seal(&self, secret: &str, rng: &mut impl rand::RngCore) -> Sealed {
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new_from_slice(&self.key).expect("32-byte key");
        let ciphertext = cipher.encrypt(&Nonce::from(nonce), secret.as_bytes()).expect("AES-GCM encryption");
        Sealed { wrapped_key: self.wrapped.clone(), nonce: B64.encode(nonce), ciphertext: B64.encode(ciphertext) }
    }
}

/// The engine's unwrapped data keys, the newest few (a link's key, and its predecessor's
/// while requests sealed under it are still in flight).
#[derive(Default)]
pub struct KeyCache {
    keys: std::sync::Mutex<std::collections::VecDeque<(String, [u8; 32])>>,
}

const KEY_CACHE_SIZE: usize = 4;

impl Sealed {
    /// Seals `secret` for the holder of `public` under a data key of its own.
    pub fn seal(public: &RsaPublicKey, secret: &str, rng: &mut (impl rand::RngCore + rand::CryptoRng)) -> Sealed {
        DataKey::new(public, rng).seal(secret, rng)
    }

    /// Opens a sealed value with the engine's private key.
    pub fn open(&self, private: &RsaPrivateKey) -> Result<String, CryptoError> {
        self.open_with(&unwrap_key(private, &self.wrapped_key)?)
    }

    /// Opens it with a data key the cache holds, unwrapping (and keeping) the key first if
    /// it is new.
    pub fn open_cached(&self, private: &RsaPrivateKey, cache: &KeyCache) -> Result<String, CryptoError> {
        let known = {
            let keys = cache.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            keys.iter().find(|(w, _)| *w == self.wrapped_key).map(|(_, k)| *k)
        };
        let key = match known {
            Some(k) => k,
            None => {
                let k = unwrap_key(private, &self.wrapped_key)?;
                let mut keys = cache.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                keys.push_front((self.wrapped_key.clone(), k));
                keys.truncate(KEY_CACHE_SIZE);
                k
            }
        };
        self.open_with(&key)
    }

    fn open_with(&self, key: &[u8; 32]) -> Result<String, CryptoError> {
        let nonce: [u8; 12] = B64.decode(&self.nonce).ok().and_then(|n| n.try_into().ok()).ok_or(CryptoError::Decryption)?;
        let ciphertext = B64.decode(&self.ciphertext).map_err(|_| CryptoError::Decryption)?;
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| CryptoError::Decryption)?;
        let plain = cipher.decrypt(&Nonce::from(nonce), ciphertext.as_slice()).map_err(|_| CryptoError::Decryption)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Decryption)
    }
}

/// RSA-OAEP (SHA-256) decryption of a wrapped data key, by AWS-LC: the `rsa` crate's private-key
/// operation is not constant-time (RUSTSEC-2023-0071, the Marvin attack), and this is the one
/// place a private key decrypts what a peer sent. (The `rsa` crate still makes and encrypts to
/// keys: public operations leak nothing secret.)
fn unwrap_key(private: &RsaPrivateKey, wrapped: &str) -> Result<[u8; 32], CryptoError> {
    use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey};
    use rsa::pkcs8::EncodePrivateKey;
    let wrapped = B64.decode(wrapped).map_err(|_| CryptoError::Decryption)?;
    let der = private.to_pkcs8_der().map_err(|_| CryptoError::Decryption)?;
    let key = PrivateDecryptingKey::from_pkcs8(der.as_bytes()).map_err(|_| CryptoError::Decryption)?;
    let key = OaepPrivateDecryptingKey::new(key).map_err(|_| CryptoError::Decryption)?;
    let mut out = vec![0u8; key.min_output_size()];
    let plain = key.decrypt(&OAEP_SHA256_MGF1SHA256, &wrapped, &mut out, None).map_err(|_| CryptoError::Decryption)?;
    <[u8; 32]>::try_from(&plain[..]).map_err(|_| CryptoError::Decryption)
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

/// Which sync agent an engine is: Connect Sync's engine, or Cloud Sync's provisioning agent.
/// It registers as one or the other; the tenant sends a synced user's password operations to
/// an agent of the kind whose export synced that user, and names it in the audit log's
/// `OnPremisesAgent` detail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AgentKind {
    /// Microsoft Entra Connect Sync: finds the user by its sourceAnchor, logs the
    /// PasswordResetService events.
    #[default]
    #[serde(rename = "ConnectSync")]
    ConnectSync,
    /// Microsoft Entra Cloud Sync's provisioning agent: finds the user by its distinguished
    /// name, runs as a gMSA, keeps a trace log (no published event IDs).
    #[serde(rename = "CloudSync")]
    CloudSync,
}

impl AgentKind {
    /// The audit log's `OnPremisesAgent` value for a synced user's reset (howto-sspr-reporting).
    pub fn audit_name(self) -> &'static str {
        match self {
            AgentKind::ConnectSync => "Microsoft Entra Connect",
            AgentKind::CloudSync => "CloudSync",
        }
    }

    /// As the command line and scenario files spell it.
    pub fn slug(self) -> &'static str {
        match self {
            AgentKind::ConnectSync => "connect-sync",
            AgentKind::CloudSync => "cloud-sync",
        }
    }

    pub fn parse(s: &str) -> Option<AgentKind> {
        match s.to_ascii_lowercase().as_str() {
            "connect-sync" | "connectsync" | "connect" => Some(AgentKind::ConnectSync),
            "cloud-sync" | "cloudsync" => Some(AgentKind::CloudSync),
            _ => None,
        }
    }
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
        /// onPremisesDistinguishedName as the last sync left it: how Cloud Sync's agent finds
        /// the user (a stale DN after an OU rename is its documented blind spot). Connect
        /// ignores it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        distinguished_name: Option<String>,
        operation: Operation,
        /// Unix time (ms) after which the tenant no longer waits: the engine refuses the
        /// request then, so an answer nobody hears cannot leave the sides apart.
        deadline_ms: u64,
    },
    /// The answer to a heartbeat.
    HeartbeatAck,
    /// Run a sync cycle now (`Start-ADSyncSyncCycle -PolicyType Initial | Delta`), asked by
    /// an administrator through the tenant.
    Sync { id: Uuid, policy_type: PolicyType },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyType {
    /// Full import of the scoped OUs, every password hash again.
    Initial,
    /// What changed since the last cycle (uSNChanged, deleted objects).
    Delta,
}

/// Engine → tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ToTenant {
    Heartbeat,
    Answer {
        id: Uuid,
        outcome: Outcome,
    },
    /// How a sync cycle asked for with [`ToEngine::Sync`] went.
    SyncDone {
        id: Uuid,
        report: SyncReport,
    },
}

/// The error code of an export the tenant refused whole because Cloud Sync's job is in
/// quarantine (nothing applied: the agent sends it all again later).
pub const QUARANTINED: &str = "SyncJobQuarantined";

/// One sync cycle's outcome, as Synchronization Service Manager's run history counts it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub policy_type: Option<PolicyType>,
    pub added: usize,
    pub updated: usize,
    pub deleted: usize,
    /// Password hashes sent (and taken by the tenant).
    pub passwords: usize,
    pub errors: Vec<SyncError>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncError {
    /// Connect's error type: `AttributeValueMustBeUnique`, `DuplicateSourceAnchor`, ….
    pub code: String,
    pub distinguished_name: String,
    pub message: String,
}

/// What the engine exports to the tenant in one cycle (`POST /lab/sync/export`, with the
/// engine's relay credential): users to create or update by sourceAnchor, anchors to
/// delete, password hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncExport {
    pub users: Vec<SyncedUser>,
    pub deletes: Vec<String>,
    pub passwords: Vec<PasswordHash>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncedUser {
    /// base64 of the anchor attribute: the cloud user's onPremisesImmutableId.
    pub anchor: String,
    pub user_principal_name: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub mail: Option<String>,
    pub account_enabled: bool,
    pub sam_account_name: String,
    pub domain_name: String,
    pub distinguished_name: String,
    pub security_identifier: String,
}

/// A password as password hash sync sends it: never the NT hash, only [`phs::derive`] of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordHash {
    pub anchor: String,
    /// base64 of the 10-byte salt and of the 32-byte PBKDF2 output.
    pub salt: String,
    pub hash: String,
    pub iterations: u32,
    /// AD's pwdLastSet was 0 ("must change password at next logon").
    pub force_change: bool,
}

/// What the tenant did with an export.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportResult {
    pub added: usize,
    pub updated: usize,
    pub deleted: usize,
    pub passwords: usize,
    pub errors: Vec<SyncError>,
}

/// Password hash sync's derivation, as Microsoft documents it: the NT hash as hex, encoded
/// UTF-16LE (64 bytes), through PBKDF2-HMAC-SHA256 with a per-user 10-byte salt and 1,000
/// iterations. The engine derives it; the tenant runs a typed password through the same.
pub mod pta;

pub mod phs {
    use sha2::Sha256;

    pub const ITERATIONS: u32 = 1000;

    /// Microsoft's description does not say which hex case; the lab uses upper case
    /// (docs/fidelity.md).
    pub fn derive(nt: &[u8; 16], salt: &[u8; 10], iterations: u32) -> [u8; 32] {
        let hex: String = nt.iter().map(|b| format!("{b:02X}")).collect();
        let input: Vec<u8> = hex.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(&input, salt, iterations, &mut out);
        out
    }
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
    /// Refused before anything was written: the deadline had passed, or the service was
    /// stopping. The tenant answers at once, as it would with no engine connected.
    NotWritten,
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
    fn a_data_key_seals_many_passwords_and_the_engine_unwraps_it_once() {
        let (k1, k2) = (key(1), key(2));
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let dk = DataKey::new(&k1.to_public_key(), &mut rng);
        let (a, b) = (dk.seal("First-Pass-1", &mut rng), dk.seal("First-Pass-1", &mut rng));
        assert_eq!(a.wrapped_key, b.wrapped_key);
        assert_ne!(a.nonce, b.nonce, "a fresh nonce per password");
        assert_ne!(a.ciphertext, b.ciphertext);
        let cache = KeyCache::default();
        assert_eq!(a.open_cached(&k1, &cache).unwrap(), "First-Pass-1");
        assert_eq!(cache.keys.lock().unwrap().len(), 1);
        assert_eq!(b.open_cached(&k1, &cache).unwrap(), "First-Pass-1");
        assert_eq!(cache.keys.lock().unwrap().len(), 1, "the second opens with the cached key");
        // a cached key does not open a tampered value, nor a value for another engine
        let mut t = b.clone();
        t.ciphertext = B64.encode([0u8; 30]);
        assert_eq!(t.open_cached(&k1, &cache), Err(CryptoError::Decryption));
        assert_eq!(Sealed::seal(&k2.to_public_key(), "x", &mut rng).open_cached(&k1, &cache), Err(CryptoError::Decryption));
        // the cache keeps the newest few keys
        for _ in 0..6 {
            DataKey::new(&k1.to_public_key(), &mut rng).seal("y", &mut rng).open_cached(&k1, &cache).unwrap();
        }
        assert_eq!(cache.keys.lock().unwrap().len(), KEY_CACHE_SIZE);
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
            distinguished_name: None,
            operation: Operation::Unlock,
            deadline_ms: 1,
        };
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains("\"kind\":\"request\"") && text.contains("\"type\":\"unlock\""), "{text}");
        assert!(!text.contains("distinguishedName"), "Connect's requests carry no DN: {text}");
        assert_eq!(serde_json::from_str::<ToEngine>(&text).unwrap(), m);
        // Cloud Sync's carry the DN it finds the user by
        let dn = Some("CN=User6,OU=Cloud Sync Users,DC=testlab,DC=example".to_string());
        let m = ToEngine::Request {
            id: Uuid::nil(),
            anchor: "AAAA".into(),
            user_principal_name: "u@x".into(),
            distinguished_name: dn,
            operation: Operation::Unlock,
            deadline_ms: 1,
        };
        assert_eq!(serde_json::from_str::<ToEngine>(&serde_json::to_string(&m).unwrap()).unwrap(), m);
        assert_eq!(AgentKind::parse("cloud-sync"), Some(AgentKind::CloudSync));
        assert_eq!(serde_json::to_string(&AgentKind::CloudSync).unwrap(), "\"CloudSync\"");
        assert_eq!((AgentKind::ConnectSync.audit_name(), AgentKind::CloudSync.audit_name()), ("Microsoft Entra Connect", "CloudSync"));
        let a = ToTenant::Answer { id: Uuid::nil(), outcome: Outcome::Failed { failure: Failure::Permissions, event: 33004 } };
        assert_eq!(serde_json::from_str::<ToTenant>(&serde_json::to_string(&a).unwrap()).unwrap(), a);
    }
}
