//! Password and lockout policy: the domain's (on the domain object) or a fine-grained
//! password policy's (msDS-PasswordSettings) when one applies, and the checks a new
//! password goes through.

use crate::entry::Entry;
use crate::password::nt_hash;

/// Intervals are kept as positive 100 ns ticks (AD stores them negative).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub min_length: usize,
    pub complexity: bool,
    pub history_length: usize,
    pub min_age: i64,
    /// 0 = passwords never expire.
    pub max_age: i64,
    /// 0 = accounts never lock out.
    pub lockout_threshold: i64,
    /// 0 = locked until an administrator unlocks.
    pub lockout_duration: i64,
    pub observation_window: i64,
    /// The PSO this policy came from; `None` for the domain policy.
    pub pso: Option<String>,
}

/// DOMAIN_PASSWORD_COMPLEX in pwdProperties.
pub const DOMAIN_PASSWORD_COMPLEX: i64 = 1;

impl Policy {
    pub fn from_domain(d: &Entry) -> Policy {
        let i = |a: &str| d.int(a).unwrap_or(0);
        Policy {
            min_length: usize::try_from(i("minPwdLength")).unwrap_or(0),
            complexity: i("pwdProperties") & DOMAIN_PASSWORD_COMPLEX != 0,
            history_length: usize::try_from(i("pwdHistoryLength")).unwrap_or(0),
            min_age: i("minPwdAge").saturating_abs(),
            max_age: i("maxPwdAge").saturating_abs(),
            lockout_threshold: i("lockoutThreshold"),
            lockout_duration: i("lockoutDuration").saturating_abs(),
            observation_window: i("lockOutObservationWindow").saturating_abs(),
            pso: None,
        }
    }

    pub fn from_pso(p: &Entry) -> Policy {
        let i = |a: &str| p.int(a).unwrap_or(0);
        let b = |a: &str| p.first_str(a).is_some_and(|v| v.eq_ignore_ascii_case("TRUE"));
        Policy {
            min_length: usize::try_from(i("msDS-MinimumPasswordLength")).unwrap_or(0),
            complexity: b("msDS-PasswordComplexityEnabled"),
            history_length: usize::try_from(i("msDS-PasswordHistoryLength")).unwrap_or(0),
            min_age: i("msDS-MinimumPasswordAge").saturating_abs(),
            max_age: i("msDS-MaximumPasswordAge").saturating_abs(),
            lockout_threshold: i("msDS-LockoutThreshold"),
            lockout_duration: i("msDS-LockoutDuration").saturating_abs(),
            observation_window: i("msDS-LockoutObservationWindow").saturating_abs(),
            pso: Some(p.dn.to_string()),
        }
    }
}

/// The attributes every msDS-PasswordSettings object must carry (its mustContain).
pub const PSO_SETTINGS: &[&str] = &[
    "msDS-PasswordSettingsPrecedence",
    "msDS-PasswordReversibleEncryptionEnabled",
    "msDS-PasswordHistoryLength",
    "msDS-PasswordComplexityEnabled",
    "msDS-MinimumPasswordLength",
    "msDS-MinimumPasswordAge",
    "msDS-MaximumPasswordAge",
    "msDS-LockoutThreshold",
    "msDS-LockoutObservationWindow",
    "msDS-LockoutDuration",
];

/// Why a new password was refused, in the order AD checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    TooYoung,
    TooShort(usize),
    NotComplex,
    /// Equal to the current password.
    Current,
    /// Equal to an older password still in the history.
    InHistory,
}

impl Refusal {
    /// Samba's reason text (Windows gives none), for the lab's added diagnostic line.
    pub fn reason(&self) -> String {
        match self {
            Refusal::TooYoung => "password is too young to change!".into(),
            Refusal::TooShort(n) => format!("the password is too short. It should be equal or longer than {n} characters!"),
            Refusal::NotComplex => "the password does not meet the complexity criteria!".into(),
            Refusal::Current => "the password was already used (previous password)!".into(),
            Refusal::InHistory => "the password was already used (in history)!".into(),
        }
    }
}

/// What kind of password write is being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// The user (or anyone) with the old password: age and history apply.
    Change,
    /// A reset: length and complexity only, unless the policy-hints control asked for the
    /// full policy (history and minimum age too).
    Reset { full_policy: bool },
}

/// Minimum age, then length and complexity, then history: the order AD checks in (a wrong
/// old password is checked before all of these, by the caller).
pub fn check_new_password(policy: &Policy, user: &Entry, write: Write, new: &str, now: i64) -> Result<(), Refusal> {
    let full = matches!(write, Write::Change | Write::Reset { full_policy: true });
    if full && policy.min_age > 0 {
        let last = user.int("pwdLastSet").unwrap_or(0);
        if last > 0 && last.saturating_add(policy.min_age) > now {
            return Err(Refusal::TooYoung);
        }
    }
    if new.chars().count() < policy.min_length {
        return Err(Refusal::TooShort(policy.min_length));
    }
    if policy.complexity {
        let sam = user.first_str("sAMAccountName").unwrap_or("");
        let display = user.first_str("displayName").unwrap_or("");
        if !is_complex(new, sam, display) {
            return Err(Refusal::NotComplex);
        }
    }
    if full && policy.history_length > 0 {
        let h = nt_hash(new);
        let history = &user.secrets.nt_history;
        if user.secrets.nt_hash == Some(h) {
            return Err(Refusal::Current);
        }
        if history.iter().take(policy.history_length).any(|x| *x == h) {
            return Err(Refusal::InHistory);
        }
    }
    Ok(())
}

/// Windows' "Password must meet complexity requirements": no sAMAccountName (when longer
/// than two characters), no displayName token of three or more characters, and characters
/// from three of the five categories.
pub fn is_complex(password: &str, sam: &str, display_name: &str) -> bool {
    let lower = password.to_lowercase();
    if sam.chars().count() > 2 && lower.contains(&sam.to_lowercase()) {
        return false;
    }
    let delimiters = [',', '.', '-', '_', ' ', '#', '\t'];
    for token in display_name.split(|c| delimiters.contains(&c)) {
        if token.chars().count() >= 3 && lower.contains(&token.to_lowercase()) {
            return false;
        }
    }
    let mut classes = [false; 5];
    for c in password.chars() {
        let k = if c.is_uppercase() {
            0
        } else if c.is_lowercase() {
            1
        } else if c.is_ascii_digit() {
            2
        } else if c.is_alphabetic() {
            4 // letters without case (e.g. Asian scripts)
        } else {
            3
        };
        classes[k] = true;
    }
    classes.iter().filter(|&&x| x).count() >= 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dn::Dn;

    /// A policy of a minimum length, a history and a minimum age, nothing else.
    fn rules(min_length: usize, history_length: usize, min_age: i64) -> Policy {
        Policy {
            min_length,
            complexity: false,
            history_length,
            min_age,
            max_age: 0,
            lockout_threshold: 0,
            lockout_duration: 0,
            observation_window: 0,
            pso: None,
        }
    }

    fn user(sam: &str, display: &str) -> Entry {
        let mut e = Entry::new(Dn::parse("CN=x,DC=y").unwrap());
        e.set_str("sAMAccountName", sam);
        e.set_str("displayName", display);
        e
    }

    /// minPwdAge: a change is too young until the age has passed, and allowed from the moment
    /// it has (pwdLastSet + minPwdAge = now); a password that must change (pwdLastSet 0) is
    /// never too young, and a reset (without the policy hints) is not held to the age at all.
    #[test]
    fn the_minimum_age_ends_when_it_has_passed() {
        let p = rules(0, 0, 100);
        let mut u = user("jsmith", "John Smith");
        u.set_str("pwdLastSet", "1000");
        let check = |u: &Entry, write, now| check_new_password(&p, u, write, "Any-Pass-1", now);
        assert_eq!(check(&u, Write::Change, 1099), Err(Refusal::TooYoung));
        assert_eq!(check(&u, Write::Change, 1100), Ok(()), "exactly minPwdAge later");
        assert_eq!(check(&u, Write::Reset { full_policy: true }, 1099), Err(Refusal::TooYoung), "the policy hints ask for it");
        assert_eq!(check(&u, Write::Reset { full_policy: false }, 1099), Ok(()));
        u.set_str("pwdLastSet", "0");
        assert_eq!(check(&u, Write::Change, 1), Ok(()), "must change at next logon");
    }

    /// pwdHistoryLength 0 keeps no history: the current password may be set again; with a
    /// history, the current one and those in it are refused, older ones are not.
    #[test]
    fn history_refuses_only_what_it_keeps() {
        let policy = |history_length| rules(0, history_length, 0);
        let mut u = user("jsmith", "John Smith");
        for (i, pw) in ["First-Pass-1", "Second-Pass-2", "Third-Pass-3"].iter().enumerate() {
            crate::account::set_password(&mut u, pw, i as i64 + 1, 24);
        }
        let check = |h, pw| check_new_password(&policy(h), &u, Write::Change, pw, 10);
        assert_eq!(check(0, "Third-Pass-3"), Ok(()), "no history: the current one again");
        assert_eq!(check(2, "Third-Pass-3"), Err(Refusal::Current));
        assert_eq!(check(2, "Second-Pass-2"), Err(Refusal::InHistory));
        assert_eq!(check(2, "First-Pass-1"), Ok(()), "past the two the policy keeps");
    }

    /// minPwdLength: a password of exactly the minimum is long enough; one character fewer
    /// is refused, naming the minimum.
    #[test]
    fn the_minimum_length_is_inclusive() {
        let p = rules(7, 0, 0);
        let u = user("jsmith", "John Smith");
        assert_eq!(check_new_password(&p, &u, Write::Change, "Seven-7", 1), Ok(()));
        assert_eq!(check_new_password(&p, &u, Write::Change, "Six-66", 1), Err(Refusal::TooShort(7)));
        assert_eq!(check_new_password(&p, &u, Write::Reset { full_policy: false }, "Six-66", 1), Err(Refusal::TooShort(7)), "a reset too");
    }

    /// The reasons are Samba's words (reference/samba-ad-transcripts.md, "0000052D: Constraint
    /// violation - check_password_restrictions: …"), the length with the policy's minimum.
    #[test]
    fn refusals_give_sambas_reasons() {
        assert_eq!(Refusal::TooYoung.reason(), "password is too young to change!");
        assert_eq!(Refusal::TooShort(12).reason(), "the password is too short. It should be equal or longer than 12 characters!");
        assert_eq!(Refusal::NotComplex.reason(), "the password does not meet the complexity criteria!");
        assert_eq!(Refusal::Current.reason(), "the password was already used (previous password)!");
        assert_eq!(Refusal::InHistory.reason(), "the password was already used (in history)!");
    }

    /// pwdProperties is a bit field: complexity is DOMAIN_PASSWORD_COMPLEX (1) alone, whatever
    /// else is set beside it (e.g. 16, DOMAIN_PASSWORD_STORE_CLEARTEXT).
    #[test]
    fn complexity_is_the_first_bit_of_pwd_properties() {
        let complexity = |props: &str| {
            let mut d = Entry::new(Dn::parse("DC=y").unwrap());
            d.set_str("pwdProperties", props);
            Policy::from_domain(&d).complexity
        };
        assert!(!complexity("0"));
        assert!(complexity("1"));
        assert!(!complexity("16"));
        assert!(complexity("17"));
    }

    #[test]
    fn windows_complexity_rules() {
        assert!(is_complex("Summer-Lake-41", "User1", "User1"));
        assert!(is_complex("summer-lake-41", "User1", "User1"), "lower, digit, symbol: three classes");
        assert!(!is_complex("summerlake41", "User1", "User1"), "two classes");
        assert!(!is_complex("Xprobe-change1!", "probe-change", ""), "contains the sAMAccountName (Samba accepts this, Windows does not)");
        assert!(is_complex("Al-Pass-1", "Al", ""), "a two-character sAMAccountName is not checked");
        assert!(!is_complex("Bob-Pass-1", "Bob", ""), "a three-character one is");
        assert!(!is_complex("Smith-Pass-1", "jsmith", "John Smith"), "contains a displayName token");
        assert!(is_complex("Jo-Pass-1!", "jsmith", "Jo Smith"), "tokens under three characters are ignored");
        assert!(!is_complex("Lee-Pass-1!", "jsmith", "Jo Lee"), "a token of three characters counts");
        assert!(is_complex("密码Pass1", "u", ""), "uncased letters are their own category");
    }

    #[test]
    fn order_of_checks() {
        let p = Policy {
            min_length: 7,
            complexity: true,
            history_length: 24,
            min_age: 100,
            max_age: 0,
            lockout_threshold: 0,
            lockout_duration: 0,
            observation_window: 0,
            pso: None,
        };
        let mut u = user("user1", "User One");
        u.set_str("pwdLastSet", "1000");
        u.secrets.nt_hash = Some(nt_hash("Current-Pass-1"));
        u.secrets.nt_history = vec![nt_hash("Current-Pass-1"), nt_hash("Older-Pass-1"), nt_hash("oldpassword1")];
        // too young beats too short (Samba #88)
        assert_eq!(check_new_password(&p, &u, Write::Change, "x", 1050), Err(Refusal::TooYoung));
        assert_eq!(check_new_password(&p, &u, Write::Change, "x", 2000), Err(Refusal::TooShort(7)));
        // complexity beats history (Samba #106)
        assert_eq!(check_new_password(&p, &u, Write::Change, "oldpassword1", 2000), Err(Refusal::NotComplex));
        assert_eq!(check_new_password(&p, &u, Write::Change, "Current-Pass-1", 2000), Err(Refusal::Current));
        assert_eq!(check_new_password(&p, &u, Write::Change, "Older-Pass-1", 2000), Err(Refusal::InHistory));
        // a reset skips age and history, unless the full policy is asked for
        assert_eq!(check_new_password(&p, &u, Write::Reset { full_policy: false }, "Current-Pass-1", 1050), Ok(()));
        assert_eq!(check_new_password(&p, &u, Write::Reset { full_policy: true }, "Current-Pass-1", 2000), Err(Refusal::Current));
        assert_eq!(check_new_password(&p, &u, Write::Reset { full_policy: true }, "Brand-New-Pass-9", 1050), Err(Refusal::TooYoung));
        // must change (pwdLastSet 0) is never too young
        u.set_str("pwdLastSet", "0");
        assert_eq!(check_new_password(&p, &u, Write::Change, "Brand-New-Pass-9", 1), Ok(()));
    }
}
