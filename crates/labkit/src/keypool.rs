//! RSA keys made ahead of time, so that a lab in a fresh state directory starts without the
//! ~100 ms each RSA-2048 key takes to generate. The keys are random (the OS generator, never
//! the seed, never shipped in the binary), kept one per file (PKCS#1 DER, mode 0600) in a
//! directory only the user can read — `$HYBRID_LAB_KEY_CACHE`, else
//! `$XDG_CACHE_HOME/hybrid-lab/keys`, else `~/.cache/hybrid-lab/keys` — and each is taken
//! *once*: a lab claims a file by renaming it (atomic: two labs, in one process or many,
//! never get the same key), moves it into its own state directory, and from then on it is
//! that lab's key only. After a start the pool is topped up in the background, at most
//! [`KEPT`] keys, on idle CPU only. `HYBRID_LAB_KEY_CACHE=off` turns the pool off (every key
//! made on the spot).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// One top-up at a time in a process: [`fill`] waits for a background one to finish instead
/// of generating keys beside it.
static FILLING: Mutex<()> = Mutex::new(());

/// How many keys the pool holds at most (two labs' worth: each takes two).
pub const KEPT: usize = 4;

/// The pool's directory, or None when it is off or no cache directory is known.
pub fn dir() -> Option<PathBuf> {
    match std::env::var_os("HYBRID_LAB_KEY_CACHE") {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|c| c.join("hybrid-lab").join("keys")),
    }
}

/// Takes one key out of the pool (its DER), or None when the pool is empty or off.
pub fn take(dir: &Path) -> Option<Vec<u8>> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("key-") && name.ends_with(".der")) {
            continue;
        }
        // the claim: whoever renames the file first has it; everyone else moves on
        let claimed = dir.join(format!("claimed-{}", uuid::Uuid::new_v4()));
        if std::fs::rename(entry.path(), &claimed).is_err() {
            continue;
        }
        let der = std::fs::read(&claimed);
        let _ = std::fs::remove_file(&claimed);
        match der {
            // the DER's structure only: checking the key's arithmetic too (rsa's from_pkcs1_der)
            // costs a start ~0.3 ms a key, and the key is parsed again where it is used
            Ok(der) if rsa::pkcs1::RsaPrivateKey::try_from(der.as_slice()).is_ok() => return Some(der),
            _ => continue,
        }
    }
    None
}

/// How many keys the pool holds now.
pub fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("key-")).count()).unwrap_or(0)
}

/// Makes keys until the pool holds [`KEPT`]. Each is written under a temporary name and then
/// renamed into place, so that a half-written key is never taken.
pub fn fill(dir: &Path) -> std::io::Result<()> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let _one = FILLING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    while count(dir) < KEPT {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(std::io::Error::other)?;
        let der = key.to_pkcs1_der().map_err(std::io::Error::other)?;
        let id = uuid::Uuid::new_v4();
        let tmp = dir.join(format!("tmp-{id}"));
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(der.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(format!("key-{id}.der")))?;
    }
    Ok(())
}

/// Tops the pool up on a thread of its own, one such thread per process at a time, scheduled
/// only when a core is otherwise idle: each key is ~150 ms of a core, and the lab that just
/// started (its first requests, the next test's start) goes first.
pub fn fill_in_background(dir: PathBuf) {
    static STARTED: AtomicBool = AtomicBool::new(false);
    if count(&dir) >= KEPT || STARTED.swap(true, Ordering::SeqCst) {
        return;
    }
    let refill = move || {
        idle_priority();
        if let Err(e) = fill(&dir) {
            tracing::debug!("key pool {}: {e}", dir.display());
        }
        STARTED.store(false, Ordering::SeqCst);
    };
    if std::thread::Builder::new().name("keypool-refill".into()).spawn(refill).is_err() {
        STARTED.store(false, Ordering::SeqCst);
    }
}

/// The calling thread runs only on CPU nothing else wants (Linux's SCHED_IDLE).
fn idle_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` outlives the call. On failure the thread
    // keeps its normal priority, which is only slower for others.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refill_thread_asks_for_idle_cpu_only() {
        // SAFETY: reads the calling (spawned) thread's policy
        let policy = std::thread::spawn(|| {
            idle_priority();
            unsafe { libc::sched_getscheduler(0) }
        });
        assert_eq!(policy.join().unwrap(), libc::SCHED_IDLE);
    }

    #[test]
    fn each_key_is_taken_once_and_the_pool_refills_to_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let pool = dir.path().join("keys");
        assert_eq!(take(&pool), None, "no pool yet");
        fill(&pool).unwrap();
        assert_eq!(count(&pool), KEPT);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&pool).unwrap().permissions().mode() & 0o777, 0o700);
        let taken: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..KEPT + 2).map(|_| s.spawn(|| take(&pool))).collect();
            handles.into_iter().filter_map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(taken.len(), KEPT, "as many keys as the pool held, no more");
        let distinct: std::collections::HashSet<&Vec<u8>> = taken.iter().collect();
        assert_eq!(distinct.len(), KEPT, "no key given twice");
        assert_eq!(count(&pool), 0);
        fill(&pool).unwrap();
        assert_eq!(count(&pool), KEPT);
        assert!(!taken.contains(&take(&pool).unwrap()), "new keys, not the old ones again");
    }

    #[test]
    fn a_file_that_is_not_a_key_is_skipped_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let pool = dir.path().join("keys");
        std::fs::create_dir_all(&pool).unwrap();
        std::fs::write(pool.join("key-cut-short.der"), [0x30, 0x82, 0x04]).unwrap();
        assert_eq!(take(&pool), None);
        assert_eq!(count(&pool), 0, "the damaged file is gone, not offered again");
        fill(&pool).unwrap();
        let der = take(&pool).unwrap();
        use rsa::pkcs1::DecodeRsaPrivateKey;
        assert!(rsa::RsaPrivateKey::from_pkcs1_der(&der).is_ok());
    }
}
