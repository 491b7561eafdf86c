//! Passwords in the cloud: Entra's password rules for cloud-only users, Password
//! Protection's banned-password evaluation (applied to every cloud-initiated change and
//! reset, synced users included), and how the tenant keeps a password — never in clear:
//! the password hash sync form (MD4, hex, UTF-16LE, PBKDF2-HMAC-SHA256 with a salt), so
//! cloud-set and synced passwords verify the same way.

use md4::{Digest, Md4};
use rand::RngCore;

/// Why Entra refuses a cloud password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Outside 8..=256 characters.
    Length,
    /// A character Entra does not allow (anything but ASCII letters, digits, the listed
    /// symbols and the space — no Unicode).
    Character(char),
    /// Fewer than three of: lower case, upper case, digits, symbols.
    Complexity,
    /// Password Protection: the banned-password score is under 5 (audit reason
    /// `FuzzyPolicyViolationInvalidPassword`).
    Banned { score: usize },
}

const SYMBOLS: &str = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ";

/// Entra's rules for cloud-only users: 8 to 256 characters from the allowed set, and three
/// of the four character classes unless the user's passwordPolicies carry
/// `DisableStrongPassword`.
pub fn check_cloud_rules(password: &str, disable_strong_password: bool) -> Result<(), Refusal> {
    let n = password.chars().count();
    if !(8..=256).contains(&n) {
        return Err(Refusal::Length);
    }
    if let Some(c) = password.chars().find(|c| !(c.is_ascii_alphanumeric() || SYMBOLS.contains(*c))) {
        return Err(Refusal::Character(c));
    }
    if disable_strong_password {
        return Ok(());
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| SYMBOLS.contains(c)),
    ];
    if classes.iter().filter(|&&x| x).count() < 3 { Err(Refusal::Complexity) } else { Ok(()) }
}

/// The banned-password lists: Microsoft's global list (its contents are not published; the
/// lab ships a small stand-in of well-known weak terms) and the tenant's custom list.
#[derive(Clone, Debug, Default)]
pub struct BannedList {
    pub global: Vec<String>,
    pub custom: Vec<String>,
}

/// The lab's stand-in for the global banned list.
pub const LAB_GLOBAL_BANNED: &[&str] = &[
    "password",
    "passw0rd",
    "welcome",
    "letmein",
    "qwerty",
    "abc123",
    "iloveyou",
    "admin",
    "administrator",
    "monkey",
    "dragon",
    "football",
    "changeme",
    "secret",
];

/// The context Password Protection also checks: the user's names and the tenant's name.
#[derive(Clone, Debug, Default)]
pub struct Subject<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub tenant_name: &'a str,
}

/// Password Protection's normalisation: lower case, then 0→o, 1→l, $→s, @→a.
pub fn normalize(password: &str) -> String {
    password
        .to_lowercase()
        .chars()
        .map(|c| match c {
            '0' => 'o',
            '1' => 'l',
            '$' => 's',
            '@' => 'a',
            c => c,
        })
        .collect()
}

/// Levenshtein distance, bounded: true when `a` and `b` are at most one edit apart.
fn within_one_edit(a: &[char], b: &[char]) -> bool {
    let (la, lb) = (a.len(), b.len());
    if la.abs_diff(lb) > 1 {
        return false;
    }
    let (mut i, mut j, mut edits) = (0, 0, 0);
    while i < la && j < lb {
        if a[i] == b[j] {
            i += 1;
            j += 1;
            continue;
        }
        edits += 1;
        if edits > 1 {
            return false;
        }
        match la.cmp(&lb) {
            std::cmp::Ordering::Greater => i += 1,
            std::cmp::Ordering::Less => j += 1,
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    edits + (la - i) + (lb - j) <= 1
}

/// The evaluation score: each banned term found (fuzzy, one edit away) counts 1, each of the
/// remaining characters counts 1. Entra accepts a password scoring at least 5.
pub fn banned_score(password: &str, lists: &BannedList, subject: &Subject<'_>) -> usize {
    let mut chars: Vec<Option<char>> = normalize(password).chars().map(Some).collect();
    let mut found = 0;
    // Banned terms: fuzzy (edit distance 1). Names: plain substrings, 4 characters or more.
    let mut terms: Vec<(Vec<char>, bool)> =
        lists.global.iter().chain(&lists.custom).map(|t| (normalize(t).chars().collect(), true)).collect();
    for name in [subject.first_name, subject.last_name, subject.tenant_name] {
        if name.chars().count() >= 4 {
            terms.push((name.to_lowercase().chars().collect(), false));
        }
    }
    // Longest terms first, so a long term is not split by a short one it contains.
    terms.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    for (term, fuzzy) in &terms {
        let min = if *fuzzy { term.len().saturating_sub(1).max(1) } else { term.len() };
        let max = if *fuzzy { term.len() + 1 } else { term.len() };
        let mut start = 0;
        while start < chars.len() {
            let mut matched = None;
            for len in (min..=max).rev() {
                if start + len > chars.len() {
                    continue;
                }
                let window: Option<Vec<char>> = chars[start..start + len].iter().copied().collect();
                let Some(window) = window else { continue };
                let hit = if *fuzzy { within_one_edit(&window, term) } else { window == *term };
                if hit {
                    matched = Some(len);
                    break;
                }
            }
            match matched {
                Some(len) => {
                    found += 1;
                    for c in &mut chars[start..start + len] {
                        *c = None;
                    }
                    start += len;
                }
                None => start += 1,
            }
        }
    }
    found + chars.iter().filter(|c| c.is_some()).count()
}

pub fn check_banned(password: &str, lists: &BannedList, subject: &Subject<'_>) -> Result<(), Refusal> {
    let score = banned_score(password, lists, subject);
    if score < 5 { Err(Refusal::Banned { score }) } else { Ok(()) }
}

/// A password as the tenant keeps it: the password hash sync form. Connect sends exactly
/// this for synced users; the tenant computes the same for passwords set in the cloud.
#[derive(Clone)]
pub struct Credential {
    pub salt: [u8; 10],
    pub iterations: u32,
    hash: Hash,
}

#[derive(Clone)]
enum Hash {
    Known([u8; 32]),
    /// Derived on first use, by whoever gets there first (a lab's seeded passwords: 1,000
    /// PBKDF2 rounds each are not a lab start's to wait for). Clones share the result.
    Deferred(std::sync::Arc<Deferred>),
}

struct Deferred {
    nt: [u8; 16],
    /// Only ever try-locked: nobody waits for another thread's derivation (on a busy machine
    /// that thread may not run for a while); a reader that finds it busy derives its own.
    hash: std::sync::Mutex<Option<[u8; 32]>>,
}

/// Connect's password hash sync iteration count.
pub const PHS_ITERATIONS: u32 = relay::phs::ITERATIONS;

fn nt_hash(password: &str) -> [u8; 16] {
    let utf16: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    Md4::digest(&utf16).into()
}

impl Credential {
    /// From a clear-text password (a cloud-side set): MD4 → hex → UTF-16LE → PBKDF2.
    pub fn from_password(password: &str, rng: &mut impl RngCore) -> Credential {
        Credential::from_nt_hash(&nt_hash(password), rng)
    }

    /// As [`Credential::from_password`], the PBKDF2 left for the first [`Credential::hash`]
    /// or [`Credential::verify`] (or [`Credential::derive`] on a thread of its own).
    pub fn deferred(password: &str, rng: &mut impl RngCore) -> Credential {
        let mut salt = [0u8; 10];
        rng.fill_bytes(&mut salt);
        let deferred = Deferred { nt: nt_hash(password), hash: std::sync::Mutex::new(None) };
        Credential { salt, iterations: PHS_ITERATIONS, hash: Hash::Deferred(std::sync::Arc::new(deferred)) }
    }

    /// From an NT hash (what password hash sync starts from on-premises).
    pub fn from_nt_hash(nt: &[u8; 16], rng: &mut impl RngCore) -> Credential {
        let mut salt = [0u8; 10];
        rng.fill_bytes(&mut salt);
        Credential::with_salt(nt, salt, PHS_ITERATIONS)
    }

    pub fn with_salt(nt: &[u8; 16], salt: [u8; 10], iterations: u32) -> Credential {
        Credential::with_hash(salt, iterations, relay::phs::derive(nt, &salt, iterations))
    }

    /// As password hash sync delivers it.
    pub fn with_hash(salt: [u8; 10], iterations: u32, hash: [u8; 32]) -> Credential {
        Credential { salt, iterations, hash: Hash::Known(hash) }
    }

    /// The derived hash (PBKDF2-HMAC-SHA256 of the NT hash's hex in UTF-16LE).
    pub fn hash(&self) -> [u8; 32] {
        match &self.hash {
            Hash::Known(h) => *h,
            Hash::Deferred(d) => {
                if let Ok(Some(h)) = d.hash.try_lock().map(|known| *known) {
                    return h;
                }
                let h = relay::phs::derive(&d.nt, &self.salt, self.iterations);
                if let Ok(mut known) = d.hash.try_lock() {
                    *known = Some(h);
                }
                h
            }
        }
    }

    /// Derives a deferred hash now (a no-op for one that is known).
    pub fn derive(&self) {
        let _ = self.hash();
    }

    pub fn verify(&self, password: &str) -> bool {
        Credential::with_salt(&nt_hash(password), self.salt, self.iterations).hash() == self.hash()
    }
}

impl PartialEq for Credential {
    fn eq(&self, other: &Credential) -> bool {
        let same_deferral = match (&self.hash, &other.hash) {
            (Hash::Deferred(a), Hash::Deferred(b)) => std::sync::Arc::ptr_eq(a, b),
            _ => false,
        };
        self.salt == other.salt && self.iterations == other.iterations && (same_deferral || self.hash() == other.hash())
    }
}

impl Eq for Credential {}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let derived = match &self.hash {
            Hash::Known(_) => true,
            Hash::Deferred(d) => d.hash.try_lock().is_ok_and(|known| known.is_some()),
        };
        f.debug_struct("Credential")
            .field("salt", &self.salt)
            .field("iterations", &self.iterations)
            .field("derived", &derived)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn contoso() -> BannedList {
        BannedList { global: vec![], custom: vec!["contoso".into(), "blank".into()] }
    }

    #[test]
    fn microsofts_worked_examples() {
        // From "Eliminate bad passwords using Microsoft Entra Password Protection":
        // "C0ntos0Blank12" scores 4 (rejected), "ContoS0Bl@nkf9!" scores 5 (accepted).
        assert_eq!(banned_score("C0ntos0Blank12", &contoso(), &Subject::default()), 4);
        assert_eq!(check_banned("C0ntos0Blank12", &contoso(), &Subject::default()), Err(Refusal::Banned { score: 4 }));
        assert_eq!(banned_score("ContoS0Bl@nkf9!", &contoso(), &Subject::default()), 5);
        assert!(check_banned("ContoS0Bl@nkf9!", &contoso(), &Subject::default()).is_ok());
    }

    #[test]
    fn fuzzy_terms_and_names() {
        let lists = BannedList { global: LAB_GLOBAL_BANNED.iter().map(|s| s.to_string()).collect(), custom: vec![] };
        // one edit away from "password": still the banned term
        assert_eq!(banned_score("Passwrd1!", &lists, &Subject::default()), 1 + 2);
        assert_eq!(banned_score("P@$$w0rd", &lists, &Subject::default()), 1);
        // the user's own name counts as a banned term (4 characters or more)
        let me = Subject { first_name: "Alice", last_name: "Lee", tenant_name: "Testlab" };
        assert_eq!(banned_score("alice2026", &lists, &me), 1 + 4);
        assert_eq!(banned_score("lee-2026", &lists, &me), 8, "names under four characters are not checked");
        assert_eq!(banned_score("Testlab-Blue-7", &lists, &me), 1 + 7);
        // the testlab's seeded passwords pass
        for pw in ["Summer-Lake-41", "Granite-Peak-27", "Lab-Admin-Pa55!"] {
            assert!(check_banned(pw, &lists, &me).is_ok(), "{pw}");
        }
    }

    #[test]
    fn cloud_rules() {
        assert_eq!(check_cloud_rules("Short1!", false), Err(Refusal::Length));
        assert_eq!(check_cloud_rules(&"Aa1!".repeat(65), false), Err(Refusal::Length));
        assert_eq!(check_cloud_rules("lowercase1", false), Err(Refusal::Complexity));
        assert!(check_cloud_rules("lowercase1", true).is_ok(), "DisableStrongPassword");
        assert_eq!(check_cloud_rules("Pässword-12", false), Err(Refusal::Character('ä')));
        assert!(check_cloud_rules("Blue Harbor 73", false).is_ok(), "space is allowed");
    }

    #[test]
    fn credentials_verify_and_hide_the_password() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let c = Credential::from_password("Summer-Lake-41", &mut rng);
        assert!(c.verify("Summer-Lake-41"));
        assert!(!c.verify("summer-lake-41"));
        let again = Credential::from_password("Summer-Lake-41", &mut rng);
        assert_ne!(c.hash(), again.hash(), "a fresh salt each time");
        assert_eq!(c.iterations, 1000);
    }

    #[test]
    fn a_deferred_credential_is_the_same_credential_derived_later() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let d = Credential::deferred("Granite-Peak-27", &mut rng);
        let copy = d.clone();
        assert!(format!("{d:?}").contains("derived: false"), "nothing derived yet: {d:?}");
        // the same salt, derived at once, is the same hash
        let now = Credential::with_salt(&nt_hash("Granite-Peak-27"), d.salt, d.iterations);
        assert!(copy.verify("Granite-Peak-27") && !copy.verify("Granite-Peak-28"));
        assert!(format!("{d:?}").contains("derived: true"), "a clone's derivation is shared: {d:?}");
        assert_eq!(d.hash(), now.hash());
        assert_eq!(d, now);
        assert_ne!(Credential::deferred("Granite-Peak-27", &mut rng), d, "another salt");
    }

    #[test]
    fn two_threads_deriving_one_credential_agree() {
        let d = Credential::deferred("Summer-Lake-41", &mut rand::rngs::OsRng);
        let hashes: Vec<[u8; 32]> = std::thread::scope(|s| {
            let t: Vec<_> = (0..4).map(|_| s.spawn(|| d.hash())).collect();
            t.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert!(hashes.iter().all(|h| *h == hashes[0]));
        assert!(d.verify("Summer-Lake-41"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn the_score_never_exceeds_the_length_and_counts_every_character_when_nothing_is_banned(pw in "[ -~]{0,24}") {
            let lists = BannedList { global: LAB_GLOBAL_BANNED.iter().map(|s| s.to_string()).collect(), custom: vec!["testlab".into()] };
            let s = banned_score(&pw, &lists, &Subject::default());
            prop_assert!(s <= pw.chars().count());
            // a password made only of non-letters can contain no banned term
            if !pw.chars().any(|c| c.is_ascii_alphabetic() || "01$@".contains(c)) {
                prop_assert_eq!(s, pw.chars().count());
            }
        }

        #[test]
        fn the_cloud_rules_accept_exactly_what_they_say(pw in "[ -~]{0,20}") {
            let n = pw.chars().count();
            let classes = [
                pw.chars().any(|c| c.is_ascii_lowercase()),
                pw.chars().any(|c| c.is_ascii_uppercase()),
                pw.chars().any(|c| c.is_ascii_digit()),
                pw.chars().any(|c| !c.is_ascii_alphanumeric()),
            ].iter().filter(|&&x| x).count();
            let ok = check_cloud_rules(&pw, false).is_ok();
            prop_assert_eq!(ok, (8..=256).contains(&n) && classes >= 3);
        }
    }
}
