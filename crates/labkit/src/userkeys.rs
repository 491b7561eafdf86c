//! The OS user's two RSA keys — the tenant's token-signing key and the writeback engine's
//! key — made once from the OS generator and kept, as mkcert keeps its CA, in a directory only
//! the user can read: `$HYBRID_LAB_KEY_CACHE`, else `$XDG_CACHE_HOME/hybrid-lab/keys`, else
//! `~/.cache/hybrid-lab/keys` (0700, each key PKCS#1 DER in a 0600 file). Every lab of that
//! user uses them, so no lab ever makes a key on its start path (an RSA-2048 key is 0.1–2 s of
//! a core, and under load no pool of consumable keys keeps up).
//!
//! What keeps two labs apart is per-lab randomness, not the keys: the `kid` a tenant signs
//! under (its JWKS lists no other), engine ids and relay credentials, relay data keys, SSPR
//! flow ids and codes. A key is never derived from a lab's seed and never shipped.
//!
//! A key file that is not the user's own (another owner, a mode that lets others read it, a
//! symbolic link, not a key) is refused and replaced by a new key. With no usable directory
//! (`HYBRID_LAB_KEY_CACHE=off`, no HOME, a directory of another owner) the keys are made once
//! per process and kept in memory only.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The file names in the key directory.
pub const SIGNING_FILE: &str = "tenant-signing.der";
pub const ENGINE_FILE: &str = "writeback-engine.der";

/// The two keys every lab of this OS user uses, parsed once a process.
pub struct UserKeys {
    /// The tenant's RS256 signing key (each lab signs under its own `kid`).
    pub signing: Arc<tenant::token::SigningKey>,
    /// The writeback engine's RSA key (relay payloads are sealed for its public half).
    pub engine: rsa::RsaPrivateKey,
}

/// This process's keys: loaded (or made, the first time on this machine) on first use.
pub fn get() -> &'static UserKeys {
    static KEYS: OnceLock<UserKeys> = OnceLock::new();
    static LOADING: Mutex<()> = Mutex::new(());
    if let Some(k) = KEYS.get() {
        return k;
    }
    // one loader a process: two labs starting at once on a new machine make one pair
    let _one = LOADING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    KEYS.get_or_init(|| load(dir().as_deref()))
}

fn load(dir: Option<&Path>) -> UserKeys {
    let kept = dir.and_then(|d| match usable_dir(d) {
        Ok(()) => Some(d),
        Err(why) => {
            tracing::warn!("key directory {}: {why}; this process's labs use keys kept in memory only", d.display());
            None
        }
    });
    let signing = key(kept, SIGNING_FILE, tenant::token::SigningKey::new_der, tenant::token::SigningKey::from_der);
    let engine = key(kept, ENGINE_FILE, new_engine_der, engine_key);
    UserKeys { signing: Arc::new(signing), engine }
}

/// A key from the directory, or a new one (kept there when there is a directory).
fn key<K>(dir: Option<&Path>, name: &str, make: fn() -> Vec<u8>, parse: impl Fn(&[u8]) -> Option<K>) -> K {
    if let Some(d) = dir {
        match load_or_make(d, name, make, &parse) {
            Ok(k) => return k,
            Err(e) => tracing::warn!("key {}: {e}; using a key kept in memory only", d.join(name).display()),
        }
    }
    parse(&make()).expect("a key just made parses")
}

/// Authentication agent `n`'s key (`pta-agent-N.der`; index [`relay::pta::MAX_AGENTS`] is
/// `pta-agent-spare.der`, a key no agent registers): made the first time this OS user runs
/// that agent — only labs with pass-through authentication pay for it, once — and kept like
/// the other two. Blocking: call it off the async threads.
pub fn agent(n: usize) -> rsa::RsaPrivateKey {
    static KEYS: Mutex<Vec<Option<rsa::RsaPrivateKey>>> = Mutex::new(Vec::new());
    let mut keys = KEYS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if keys.len() <= n {
        keys.resize(n + 1, None);
    }
    if let Some(k) = &keys[n] {
        return k.clone();
    }
    let name = if n >= relay::pta::MAX_AGENTS { "pta-agent-spare.der".to_string() } else { format!("pta-agent-{}.der", n + 1) };
    let kept = dir().filter(|d| usable_dir(d).is_ok());
    let k = key(kept.as_deref(), &name, new_engine_der, engine_key);
    keys[n] = Some(k.clone());
    k
}

/// Cloud Sync's provisioning agent's key (`provisioning-agent.der`): made the first time this
/// OS user runs a lab with Cloud Sync — only those labs pay for it, once — and kept like the
/// others. Blocking: call it off the async threads.
pub fn provisioning_agent() -> rsa::RsaPrivateKey {
    static KEY: Mutex<Option<rsa::RsaPrivateKey>> = Mutex::new(None);
    let mut slot = KEY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(k) = slot.as_ref() {
        return k.clone();
    }
    let kept = dir().filter(|d| usable_dir(d).is_ok());
    let k = key(kept.as_deref(), "provisioning-agent.der", new_engine_der, engine_key);
    *slot = Some(k.clone());
    k
}

/// The engine's key, if `der` is one: RSA of at least 2,048 bits, as the tenant registers
/// (a smaller key is refused and remade, not a failed onboarding later). ring refuses small
/// signing keys itself.
fn engine_key(der: &[u8]) -> Option<rsa::RsaPrivateKey> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    rsa::RsaPrivateKey::from_pkcs1_der(der).ok().filter(|k| k.size() >= 256)
}

fn new_engine_der() -> Vec<u8> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("RSA key generation");
    key.to_pkcs1_der().expect("DER").as_bytes().to_vec()
}

/// The key directory, or None when it is off or no cache directory is known.
pub fn dir() -> Option<PathBuf> {
    match std::env::var_os("HYBRID_LAB_KEY_CACHE") {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))
            .map(|c| c.join("hybrid-lab").join("keys")),
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail
    unsafe { libc::geteuid() }
}

/// Why a file or directory with this owner and mode is not the user's own, or None.
pub fn refusal(owner: u32, mode: u32, user: u32) -> Option<String> {
    if owner != user {
        return Some(format!("owned by uid {owner}, not by uid {user}"));
    }
    if mode & 0o077 != 0 {
        return Some(format!("mode {:04o}: others may read it", mode & 0o7777));
    }
    None
}

/// Makes the directory (0700) if it is missing; refuses one that is not the user's own.
fn usable_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| format!("cannot create it: {e}"))?;
    let meta = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Err("not a directory".into());
    }
    match refusal(meta.uid(), meta.mode(), euid()) {
        None => Ok(()),
        // our own directory, too open (made by hand, or by a umask): closed, not abandoned
        Some(_) if meta.uid() == euid() => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| format!("cannot make it 0700: {e}"))
        }
        Some(why) => Err(why),
    }
}

/// The key kept in `dir/name`, checked: the user's own regular file, mode 0600 or stricter,
/// a key `parse` accepts (and parsed once). Anything else is refused (a warning says why), removed,
/// and a new key is made. A new key is written under a temporary name and linked into place,
/// which fails if another process linked its key first: then that one is used, so every lab
/// of the user ends up with the same key.
pub fn load_or_make<K>(dir: &Path, name: &str, make: fn() -> Vec<u8>, parse: impl Fn(&[u8]) -> Option<K>) -> std::io::Result<K> {
    let path = dir.join(name);
    for _ in 0..3 {
        match read_own(&path).map(|der| parse(&der)) {
            Ok(Some(key)) => return Ok(key),
            Ok(None) => refuse(&path, "not a key")?,
            Err(Refused::Missing) => {}
            Err(Refused::Because(why)) => refuse(&path, &why)?,
            Err(Refused::Io(e)) => return Err(e),
        }
        let der = make();
        let tmp = dir.join(format!(".{name}.{}", uuid::Uuid::new_v4()));
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(&der)?;
        f.sync_all()?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => return parse(&der).ok_or_else(|| std::io::Error::other("a key just made does not parse")),
            // another process's key got there first: read it on the next turn
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!("{} keeps changing under us", path.display())))
}

enum Refused {
    Missing,
    Because(String),
    Io(std::io::Error),
}

/// Reads a file that must be the user's own: not through a symbolic link, a regular file, no
/// access for others.
fn read_own(path: &Path) -> Result<Vec<u8>, Refused> {
    use std::io::Read;
    let mut f = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Refused::Missing),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(Refused::Because("a symbolic link".into())),
        Err(e) => return Err(Refused::Io(e)),
    };
    let meta = f.metadata().map_err(Refused::Io)?;
    if !meta.is_file() {
        return Err(Refused::Because("not a regular file".into()));
    }
    if let Some(why) = refusal(meta.uid(), meta.mode(), euid()) {
        return Err(Refused::Because(why));
    }
    // an RSA-2048 key is ~1.2 KB; a key file past 64 KiB is not one of ours
    if meta.len() > 64 * 1024 {
        return Err(Refused::Because(format!("{} bytes: not a key", meta.len())));
    }
    let mut der = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut der).map_err(Refused::Io)?;
    Ok(der)
}

fn refuse(path: &Path, why: &str) -> std::io::Result<()> {
    tracing::warn!("key file {} refused ({why}): replaced by a new key", path.display());
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_key() -> Vec<u8> {
        tenant::token::SigningKey::new_der()
    }

    fn is_key(der: &[u8]) -> bool {
        tenant::token::SigningKey::from_der(der).is_some()
    }

    /// The DER of a key (what the tests compare).
    fn key_der(der: &[u8]) -> Option<Vec<u8>> {
        is_key(der).then(|| der.to_vec())
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o777
    }

    #[test]
    fn a_key_is_made_once_and_kept_for_the_user_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache/hybrid-lab/keys");
        usable_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let first = load_or_make(&dir, "k.der", new_key, key_der).unwrap();
        assert_eq!(mode(&dir.join("k.der")), 0o600);
        let again = load_or_make(&dir, "k.der", || panic!("the kept key is used, none is made"), key_der).unwrap();
        assert_eq!(first, again);
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["k.der"], "no temporary file left behind");
        // a directory of ours that others may read is closed again
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        usable_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_key_file_others_may_read_a_link_or_a_non_key_is_refused_and_remade() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        usable_dir(&dir).unwrap();
        let path = dir.join("k.der");
        let old = load_or_make(&dir, "k.der", new_key, key_der).unwrap();
        // readable by the group: the key may have been read, so it is not used again
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let new = load_or_make(&dir, "k.der", new_key, key_der).unwrap();
        assert_ne!(old, new, "a new key");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), new);
        // a symbolic link to a key elsewhere
        std::fs::remove_file(&path).unwrap();
        let elsewhere = tmp.path().join("planted.der");
        std::fs::write(&elsewhere, &new).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        let made = load_or_make(&dir, "k.der", new_key, key_der).unwrap();
        assert_ne!(made, new);
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file(), "the link is replaced by a file");
        // not a key at all
        std::fs::write(&path, b"not a key").unwrap();
        let made2 = load_or_make(&dir, "k.der", new_key, key_der).unwrap();
        assert!(is_key(&made2) && made2 != made);
    }

    #[test]
    fn a_key_file_of_another_owner_is_refused_and_remade() {
        assert_eq!(refusal(1000, 0o100600, 1000), None);
        assert_eq!(refusal(0, 0o100600, 1000).as_deref(), Some("owned by uid 0, not by uid 1000"));
        assert_eq!(refusal(1000, 0o100604, 1000).as_deref(), Some("mode 0604: others may read it"));
        if euid() != 0 {
            // only root can give a file away; the rule itself is checked above
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        usable_dir(&dir).unwrap();
        let path = dir.join("k.der");
        let old = load_or_make(&dir, "k.der", new_key, key_der).unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let new = load_or_make(&dir, "k.der", new_key, key_der).unwrap();
        assert_ne!(old, new);
        assert_eq!(std::fs::metadata(&path).unwrap().uid(), 0);
        // a directory of another owner is not used at all
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        assert_eq!(usable_dir(&dir).unwrap_err(), "owned by uid 65534, not by uid 0");
    }

    /// issue 31, item 6: a 1,024-bit key is no key for the lab (it made `lab up` panic when
    /// it sat in a state directory): refused and remade, for either key.
    #[test]
    fn a_key_of_1024_bits_is_refused_and_remade() {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let small = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap().to_pkcs1_der().unwrap().as_bytes().to_vec();
        assert!(engine_key(&small).is_none() && !is_key(&small), "neither the engine nor ring takes it");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        usable_dir(&dir).unwrap();
        std::fs::write(dir.join(ENGINE_FILE), &small).unwrap();
        std::fs::set_permissions(dir.join(ENGINE_FILE), std::fs::Permissions::from_mode(0o600)).unwrap();
        let key = load_or_make(&dir, ENGINE_FILE, new_engine_der, engine_key).unwrap();
        use rsa::traits::PublicKeyParts;
        assert_eq!(key.size(), 256, "a new 2,048-bit key");
        assert_ne!(std::fs::read(dir.join(ENGINE_FILE)).unwrap(), small);
    }

    #[test]
    fn labs_starting_at_once_on_a_new_machine_agree_on_one_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        usable_dir(&dir).unwrap();
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4).map(|_| s.spawn(|| load_or_make(&dir, "k.der", new_key, key_der).unwrap())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]), "every caller has the key that was linked first");
        assert_eq!(std::fs::read(dir.join("k.der")).unwrap(), keys[0]);
    }
}
