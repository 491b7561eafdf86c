//! Account state of user objects: userAccountControl flags, what a new user starts with,
//! setting a password, the constructed account attributes, and what a simple bind checks
//! and records (badPwdCount, badPasswordTime, lockoutTime, lastLogon...).

use crate::directory::Directory;
use crate::entry::Entry;
use crate::error::{AdError, AdResult, ResultCode};
use crate::password::nt_hash;
use crate::policy::Policy;
use crate::schema::AttrId;
use clock::FILETIME_NEVER;

// What a bind reads, by id (no name lookup on the hot path).
const USER_ACCOUNT_CONTROL: AttrId = AttrId::of("userAccountControl");
const PWD_LAST_SET: AttrId = AttrId::of("pwdLastSet");
const LOCKOUT_TIME: AttrId = AttrId::of("lockoutTime");
const BAD_PWD_COUNT: AttrId = AttrId::of("badPwdCount");
const BAD_PASSWORD_TIME: AttrId = AttrId::of("badPasswordTime");
const ACCOUNT_EXPIRES: AttrId = AttrId::of("accountExpires");
const LAST_LOGON_TIMESTAMP: AttrId = AttrId::of("lastLogonTimestamp");

pub const UF_ACCOUNTDISABLE: i64 = 0x0002;
pub const UF_LOCKOUT: i64 = 0x0010;
pub const UF_PASSWD_NOTREQD: i64 = 0x0020;
pub const UF_NORMAL_ACCOUNT: i64 = 0x0200;
pub const UF_WORKSTATION_TRUST_ACCOUNT: i64 = 0x1000;
pub const UF_SERVER_TRUST_ACCOUNT: i64 = 0x2000;
pub const UF_DONT_EXPIRE_PASSWD: i64 = 0x1_0000;
pub const UF_TRUSTED_FOR_DELEGATION: i64 = 0x8_0000;
pub const UF_PASSWORD_EXPIRED: i64 = 0x80_0000;

pub const SAM_USER_OBJECT: i64 = 0x3000_0000;
pub const SAM_MACHINE_ACCOUNT: i64 = 0x3000_0001;
pub const SAM_GROUP_OBJECT: i64 = 0x1000_0000;
pub const SAM_ALIAS_OBJECT: i64 = 0x2000_0000;

pub const GROUP_GLOBAL_SECURITY: i64 = -2_147_483_646;
pub const GROUP_DOMAIN_LOCAL_SECURITY: i64 = -2_147_483_644;
pub const GROUP_BUILTIN_LOCAL_SECURITY: i64 = -2_147_483_643;

/// lastLogonTimestamp is rewritten only when older than this (msDS-LogonTimeSyncInterval,
/// 14 days by default), which is why it is replicated and lastLogon is not.
const LOGON_TIMESTAMP_INTERVAL: i64 = 14 * 86_400 * 10_000_000;

/// Attributes that are not replicated: changing only these does not move uSNChanged or
/// whenChanged (seen on Samba: badPwdCount 0 → 2 with uSNChanged fixed).
const NOT_REPLICATED: &[&str] = &["badpwdcount", "badpasswordtime", "lastlogon", "logoncount", "memberof", "directreports"];

pub fn group_sam_account_type(group_type: i64) -> i64 {
    if group_type & 0x4 != 0 { SAM_ALIAS_OBJECT } else { SAM_GROUP_OBJECT }
}

/// What AD gives a user object created over LDAP.
pub fn init_user(e: &mut Entry, computer: bool) {
    let uac =
        if computer { UF_WORKSTATION_TRUST_ACCOUNT | UF_PASSWD_NOTREQD } else { UF_NORMAL_ACCOUNT | UF_PASSWD_NOTREQD | UF_ACCOUNTDISABLE };
    let defaults: [(&str, String); 11] = [
        ("userAccountControl", uac.to_string()),
        ("primaryGroupID", if computer { "515".into() } else { "513".into() }),
        ("pwdLastSet", "0".into()),
        ("accountExpires", FILETIME_NEVER.to_string()),
        ("badPwdCount", "0".into()),
        ("badPasswordTime", "0".into()),
        ("logonCount", "0".into()),
        ("lastLogon", "0".into()),
        ("lastLogoff", "0".into()),
        ("codePage", "0".into()),
        ("countryCode", "0".into()),
    ];
    for (a, v) in defaults {
        if !e.has(a) {
            e.set_str(a, v);
        }
    }
    let uac = stored_uac(e.int("userAccountControl").unwrap_or(0));
    e.set_str("userAccountControl", uac.to_string());
    let sam_type = if uac & (UF_WORKSTATION_TRUST_ACCOUNT | UF_SERVER_TRUST_ACCOUNT) != 0 { SAM_MACHINE_ACCOUNT } else { SAM_USER_OBJECT };
    e.set_str("sAMAccountType", sam_type.to_string());
}

/// AD never stores the computed bits in userAccountControl: a client writing them is
/// accepted and the bits dropped (Samba #: UAC 528 reads back 512).
pub fn stored_uac(uac: i64) -> i64 {
    uac & !(UF_LOCKOUT | UF_PASSWORD_EXPIRED)
}

/// Stores a new password as AD does: the NT hash, the history, and `pwd_last_set` (now, or 0
/// when the writer may not unexpire: see `Directory`'s password writes).
pub fn set_password(e: &mut Entry, password: &str, pwd_last_set: i64, history_len: usize) {
    let h = nt_hash(password);
    e.secrets.nt_hash = Some(h);
    e.secrets.nt_history.insert(0, h);
    e.secrets.nt_history.truncate(history_len.max(1));
    e.set_str("pwdLastSet", pwd_last_set.to_string());
}

/// The password-related constructed attributes of a user.
pub fn constructed(dir: &Directory, e: &Entry, name: &str, now: i64) -> Option<Vec<Vec<u8>>> {
    let one = |n: i64| Some(vec![n.to_string().into_bytes()]);
    match name {
        "msDS-User-Account-Control-Computed" => one(computed_uac(e, &dir.effective_policy(e), now)),
        "msDS-UserPasswordExpiryTimeComputed" => one(password_expiry(e, &dir.effective_policy(e))),
        "msDS-ResultantPSO" => dir.effective_policy(e).pso.map(|p| vec![p.into_bytes()]),
        _ => None,
    }
}

/// When the password expires (FILETIME): never for DONT_EXPIRE_PASSWD, a machine account
/// (a computer or a gMSA changes its own password: MS-ADTS's
/// msDS-UserPasswordExpiryTimeComputed) or maxPwdAge 0, 0 when the user must change it now.
pub fn password_expiry(e: &Entry, policy: &Policy) -> i64 {
    let uac = e.int(USER_ACCOUNT_CONTROL).unwrap_or(0);
    let last = e.int(PWD_LAST_SET).unwrap_or(0);
    let machine = uac & (UF_WORKSTATION_TRUST_ACCOUNT | UF_SERVER_TRUST_ACCOUNT) != 0;
    if uac & UF_DONT_EXPIRE_PASSWD != 0 || machine || policy.max_age == 0 {
        return FILETIME_NEVER;
    }
    if last == 0 {
        return 0;
    }
    last.saturating_add(policy.max_age)
}

pub fn is_locked(e: &Entry, policy: &Policy, now: i64) -> bool {
    let lockout_time = e.int(LOCKOUT_TIME).unwrap_or(0);
    lockout_time != 0 && (policy.lockout_duration == 0 || lockout_time.saturating_add(policy.lockout_duration) > now)
}

pub fn must_change(e: &Entry) -> bool {
    e.int(PWD_LAST_SET) == Some(0) && e.int(USER_ACCOUNT_CONTROL).unwrap_or(0) & UF_DONT_EXPIRE_PASSWD == 0
}

pub fn is_expired(e: &Entry, policy: &Policy, now: i64) -> bool {
    let expiry = password_expiry(e, policy);
    expiry != FILETIME_NEVER && expiry != 0 && expiry <= now
}

pub fn computed_uac(e: &Entry, policy: &Policy, now: i64) -> i64 {
    let mut v = 0;
    if is_locked(e, policy, now) {
        v |= UF_LOCKOUT;
    }
    if must_change(e) || is_expired(e, policy, now) {
        v |= UF_PASSWORD_EXPIRED;
    }
    v
}

/// Attribute writes a bind (or a failed password change) makes on the account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bookkeeping(pub Vec<(&'static str, String)>);

impl Bookkeeping {
    /// Sets `attr`, replacing an earlier write of it.
    fn put(&mut self, attr: &'static str, value: impl ToString) {
        self.0.retain(|(a, _)| *a != attr);
        self.0.push((attr, value.to_string()));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a simple bind answers, and what it writes on the account.
pub struct BindOutcome {
    pub result: AdResult<()>,
    pub writes: Bookkeeping,
}

/// A bad password: badPwdCount counts within the observation window, and reaching the
/// threshold locks the account (lockoutTime = the attempt's time, as badPasswordTime).
/// With no threshold AD (as recorded on Samba) counts nothing.
pub fn bad_password(e: &Entry, policy: &Policy, now: i64, w: &mut Bookkeeping) {
    if policy.lockout_threshold <= 0 {
        return;
    }
    let lockout_ran_out = e.int(LOCKOUT_TIME).unwrap_or(0) != 0;
    let mut count = if lockout_ran_out { 0 } else { e.int(BAD_PWD_COUNT).unwrap_or(0) };
    let last = e.int(BAD_PASSWORD_TIME).unwrap_or(0);
    if policy.observation_window > 0 && last.saturating_add(policy.observation_window) <= now {
        count = 0;
    }
    count += 1;
    w.put("badPwdCount", count);
    w.put("badPasswordTime", now);
    if count >= policy.lockout_threshold {
        w.put("lockoutTime", now);
    }
}

/// A simple bind's checks, in the order AD applies them: locked beats everything (and
/// counts nothing); a wrong password is 52e whatever else holds; with the right password,
/// disabled (533), account expired (701), must change (773), password expired (532).
/// Whether `logonHours` lets the account log on at `now`: 21 bytes, a bit per hour of the
/// week from Sunday 00:00 UTC (bit 0 of byte 0), as ADUC's Logon Hours grid writes them. No
/// value (or one of another length, which ADUC never writes) allows every hour.
pub fn within_logon_hours(e: &Entry, now: i64) -> bool {
    let Some(hours) = e.values("logonHours").first().filter(|v| v.len() == 21) else { return true };
    let seconds = clock::from_filetime(now).unix_timestamp();
    // 1970-01-01 was a Thursday: day 4 of a week that starts on Sunday
    let day = (seconds.div_euclid(86_400) + 4).rem_euclid(7);
    let hour = day * 24 + seconds.div_euclid(3_600).rem_euclid(24);
    hours[(hour / 8) as usize] & (1 << (hour % 8)) != 0
}

pub fn bind(e: &Entry, password: &str, policy: &Policy, now: i64) -> BindOutcome {
    let mut w = Bookkeeping::default();
    if is_locked(e, policy, now) {
        return BindOutcome { result: Err(AdError::bind("775")), writes: w };
    }
    if e.int(LOCKOUT_TIME).unwrap_or(0) != 0 {
        // The lockout has run out: this attempt starts afresh.
        w.put("lockoutTime", 0);
        w.put("badPwdCount", 0);
    }
    let h = nt_hash(password);
    if e.secrets.nt_hash != Some(h) {
        // The two passwords before the current one are answered 52e without counting (the
        // history check Windows applies before it increments badPwdCount).
        if !e.secrets.nt_history.iter().skip(1).take(2).any(|x| *x == h) {
            bad_password(e, policy, now, &mut w);
        }
        return BindOutcome { result: Err(AdError::bind("52e")), writes: w };
    }
    let uac = e.int(USER_ACCOUNT_CONTROL).unwrap_or(0);
    let account_expires = e.int(ACCOUNT_EXPIRES).unwrap_or(0);
    let refused = if uac & UF_ACCOUNTDISABLE != 0 {
        Some("533")
    } else if account_expires != 0 && account_expires != FILETIME_NEVER && account_expires <= now {
        Some("701")
    } else if !within_logon_hours(e, now) {
        Some("530")
    } else if must_change(e) {
        Some("773")
    } else if is_expired(e, policy, now) {
        Some("532")
    } else {
        None
    };
    if let Some(data) = refused {
        return BindOutcome { result: Err(AdError::bind(data)), writes: w };
    }
    if e.int(BAD_PWD_COUNT).unwrap_or(0) != 0 {
        w.put("badPwdCount", 0);
        w.put("lastLogon", now);
    }
    if e.int(LAST_LOGON_TIMESTAMP).is_none_or(|t| t.saturating_add(LOGON_TIMESTAMP_INTERVAL) <= now) {
        w.put("lastLogonTimestamp", now);
    }
    BindOutcome { result: Ok(()), writes: w }
}

/// Refuses account states AD refuses: enabling a user that has no password and needs one.
pub fn check_user_state(old: &Entry, new: &Entry) -> AdResult<()> {
    if !new.is_class("user") || old.int("userAccountControl") == new.int("userAccountControl") {
        return Ok(());
    }
    let uac = new.int("userAccountControl").unwrap_or(0);
    if uac & (UF_ACCOUNTDISABLE | UF_PASSWD_NOTREQD) == 0 && new.secrets.nt_hash.is_none() {
        return Err(AdError::new(
            ResultCode::UnwillingToPerform,
            "0000052D: SvcErr: DSID-031A126C, problem 5003 (WILL_NOT_PERFORM), data 0\n",
        ));
    }
    Ok(())
}

/// True when the change touches something AD replicates (and so stamps uSNChanged).
pub fn replicated_change(old: &Entry, new: &Entry) -> bool {
    if old.secrets != new.secrets {
        return true;
    }
    let names: std::collections::BTreeSet<&str> = old.attrs().chain(new.attrs()).map(|a| a.name()).collect();
    names.iter().any(|n| !NOT_REPLICATED.contains(&n.to_ascii_lowercase().as_str()) && old.values(n) != new.values(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dn::Dn;

    fn policy(lockout_duration: i64) -> Policy {
        Policy {
            min_length: 0,
            complexity: false,
            history_length: 0,
            min_age: 0,
            max_age: 0,
            lockout_threshold: 3,
            lockout_duration,
            observation_window: 0,
            pso: None,
        }
    }

    /// A user made over LDAP starts disabled, needing no password yet, with a password that
    /// must change (546, pwdLastSet 0) in Domain Users; a computer as a workstation trust
    /// (4128) in Domain Computers; what the client gave is kept, less the computed bits.
    #[test]
    fn a_new_account_starts_as_ad_makes_it() {
        let made = |computer: bool, uac: Option<&str>| {
            let mut e = Entry::new(Dn::parse("CN=x,DC=y").unwrap());
            if let Some(u) = uac {
                e.set_str("userAccountControl", u);
            }
            init_user(&mut e, computer);
            let v = |a: &str| e.first_str(a).unwrap_or_default().to_string();
            (v("userAccountControl"), v("primaryGroupID"), v("sAMAccountType"), v("pwdLastSet"), v("accountExpires"))
        };
        let never = FILETIME_NEVER.to_string();
        assert_eq!(made(false, None), ("546".into(), "513".into(), SAM_USER_OBJECT.to_string(), "0".into(), never.clone()));
        assert_eq!(made(true, None), ("4128".into(), "515".into(), SAM_MACHINE_ACCOUNT.to_string(), "0".into(), never));
        // 512 | UF_LOCKOUT | UF_PASSWORD_EXPIRED written: the computed bits dropped
        assert_eq!(made(false, Some(&(512 | UF_LOCKOUT | UF_PASSWORD_EXPIRED).to_string())).0, "512");
        assert_eq!(made(false, Some("8192")).2, SAM_MACHINE_ACCOUNT.to_string(), "a server trust is a machine");
        assert_eq!(stored_uac(512), 512);
    }

    /// lastLogonTimestamp is rewritten by a good bind only once it is 14 days old
    /// (msDS-LogonTimeSyncInterval's default), so that it replicates rarely.
    #[test]
    fn last_logon_timestamp_moves_once_in_fourteen_days() {
        let mut e = Entry::new(Dn::parse("CN=x,DC=y").unwrap());
        e.set_str("userAccountControl", "512");
        set_password(&mut e, "Right-Pass-1", 1, 1);
        let written = |e: &Entry, now: i64| {
            let out = bind(e, "Right-Pass-1", &policy(0), now);
            assert!(out.result.is_ok());
            out.writes.0.iter().any(|(a, _)| *a == "lastLogonTimestamp")
        };
        let day = 864_000_000_000;
        assert!(written(&e, 100 * day), "never set: set now");
        e.set_str("lastLogonTimestamp", (100 * day).to_string());
        assert!(!written(&e, 113 * day), "13 days on: left as it is");
        assert!(written(&e, 114 * day), "14 days on: moved");
    }

    /// groupType (MS-ADTS 2.2.12): the security bit 0x80000000 with the scope's, read as the
    /// signed 32-bit integer AD stores: global 0x2, domain local 0x4, builtin local 0x1|0x4.
    #[test]
    fn group_types_are_the_security_bit_and_a_scope() {
        let as_stored = |flags: u32| i64::from(flags as i32);
        assert_eq!(GROUP_GLOBAL_SECURITY, as_stored(0x8000_0002));
        assert_eq!(GROUP_DOMAIN_LOCAL_SECURITY, as_stored(0x8000_0004));
        assert_eq!(GROUP_BUILTIN_LOCAL_SECURITY, as_stored(0x8000_0005));
        // sAMAccountType follows the scope: a global group is a group, a local one an alias
        assert_eq!(group_sam_account_type(GROUP_GLOBAL_SECURITY), SAM_GROUP_OBJECT);
        assert_eq!(group_sam_account_type(GROUP_DOMAIN_LOCAL_SECURITY), SAM_ALIAS_OBJECT);
        assert_eq!(group_sam_account_type(GROUP_BUILTIN_LOCAL_SECURITY), SAM_ALIAS_OBJECT);
    }

    /// lockoutDuration 0 is "until an administrator unlocks it" (MS-ADTS; ADUC's "Account
    /// lockout duration: 0"), not "never locked"; else the lock ends when the duration has run.
    #[test]
    fn a_lockout_lasts_its_duration_and_a_duration_of_0_lasts_until_an_unlock() {
        let mut e = Entry::new(Dn::parse("CN=x,DC=y").unwrap());
        assert!(!is_locked(&e, &policy(0), 1_000), "never locked out");
        e.set_str("lockoutTime", "1000");
        let year = 365 * 864_000_000_000;
        assert!(is_locked(&e, &policy(0), 1_000 + year), "duration 0: still locked a year on");
        assert!(is_locked(&e, &policy(500), 1_499), "within the duration");
        assert!(!is_locked(&e, &policy(500), 1_500), "the duration has run");
        e.set_str("lockoutTime", "0");
        assert!(!is_locked(&e, &policy(0), 1_000), "unlocked (lockoutTime 0)");
    }

    fn user(uac: i64, password: Option<&str>) -> Entry {
        let mut e = Entry::new(Dn::parse("CN=x,CN=Users,DC=y").unwrap());
        e.set_str("objectClass", "user");
        e.set_str("userAccountControl", uac.to_string());
        if let Some(p) = password {
            set_password(&mut e, p, 1, 3);
        }
        e
    }

    fn written(w: &Bookkeeping, attr: &str) -> Option<String> {
        w.0.iter().find(|(a, _)| *a == attr).map(|(_, v)| v.clone())
    }

    /// badPwdCount counts the bad passwords within the observation window and starts again
    /// once the window has passed since the last one (badPasswordTime + window ≤ now); with
    /// no window it never starts again; with no threshold nothing is counted at all.
    #[test]
    fn bad_passwords_count_within_the_observation_window() {
        let window = 30 * 60 * 10_000_000;
        let policy = |threshold, observation_window| Policy { lockout_threshold: threshold, observation_window, ..policy(0) };
        let mut e = user(512, Some("Right-Pass-1"));
        e.set_str("badPwdCount", "2");
        e.set_str("badPasswordTime", "1000");
        let count = |p: &Policy, now: i64| {
            let mut w = Bookkeeping::default();
            bad_password(&e, p, now, &mut w);
            written(&w, "badPwdCount")
        };
        assert_eq!(count(&policy(0, window), 2000), None, "no threshold: nothing counted");
        assert_eq!(count(&policy(5, window), 1000 + window - 1), Some("3".into()), "within the window");
        assert_eq!(count(&policy(5, window), 1000 + window), Some("1".into()), "the window has passed");
        assert_eq!(count(&policy(5, 0), 1000 + 100 * window), Some("3".into()), "no window: counted on");
        let mut w = Bookkeeping::default();
        bad_password(&e, &policy(3, window), 5000, &mut w);
        assert_eq!(
            (written(&w, "badPasswordTime"), written(&w, "lockoutTime")),
            (Some("5000".into()), Some("5000".into())),
            "the third bad password locks, at the attempt's time"
        );
    }

    /// A good bind of a clean account writes nothing but a lastLogonTimestamp that is due;
    /// one that ends a bad-password run resets badPwdCount and writes lastLogon (as Samba:
    /// simple binds write lastLogon only then, reference/samba-ad-transcripts.md).
    #[test]
    fn a_good_bind_writes_only_what_has_changed() {
        let mut e = user(512, Some("Right-Pass-1"));
        e.set_str("lastLogonTimestamp", "900");
        let out = bind(&e, "Right-Pass-1", &policy(0), 1000);
        assert!(out.result.is_ok());
        assert!(out.writes.is_empty(), "{:?}", out.writes);
        e.set_str("badPwdCount", "2");
        let out = bind(&e, "Right-Pass-1", &policy(0), 1000);
        assert_eq!((written(&out.writes, "badPwdCount"), written(&out.writes, "lastLogon")), (Some("0".into()), Some("1000".into())));
        assert!(!out.writes.is_empty());
        assert_eq!(written(&out.writes, "lockoutTime"), None, "never locked: lockoutTime untouched");
    }

    /// logonHours: a bit per hour of the week from Sunday 00:00 UTC; outside them the right
    /// password is refused with 530 (ERROR_INVALID_LOGON_HOURS), a wrong one still 52e.
    #[test]
    fn logon_hours_refuse_the_right_password_outside_them() {
        // the lab epoch, 2026-01-05 09:00 UTC, is a Monday: hour 24 + 9 = 33 of the week
        let monday_nine = clock::to_filetime(clock::Clock::lab_epoch());
        let mut e = user(512, Some("Right-Pass-1"));
        assert!(within_logon_hours(&e, monday_nine), "no value: every hour");
        let mut hours = vec![0u8; 21];
        e.set("logonHours", [hours.clone()]);
        let out = bind(&e, "Right-Pass-1", &policy(0), monday_nine);
        assert!(out.result.unwrap_err().message.contains("data 530"));
        assert!(bind(&e, "Wrong-Pass-1", &policy(0), monday_nine).result.unwrap_err().message.contains("data 52e"));
        hours[4] = 0b10;
        e.set("logonHours", [hours.clone()]);
        assert!(bind(&e, "Right-Pass-1", &policy(0), monday_nine).result.is_ok(), "hour 33 allowed");
        let hour = 3600 * 10_000_000;
        assert!(!within_logon_hours(&e, monday_nine + hour), "10:00 is not");
        assert!(!within_logon_hours(&e, monday_nine - hour), "08:00 is not");
        // a week later, the same hour
        assert!(within_logon_hours(&e, monday_nine + 7 * 24 * hour));
        e.set("logonHours", [vec![0u8; 20]]);
        assert!(within_logon_hours(&e, monday_nine), "not 21 bytes: not a logonHours ADUC writes");
    }

    /// A lockout that has run its duration ends at the next attempt: lockoutTime and
    /// badPwdCount back to 0, whatever the password.
    #[test]
    fn the_attempt_after_a_lockout_ran_out_starts_afresh() {
        let mut e = user(512, Some("Right-Pass-1"));
        e.set_str("lockoutTime", "1000");
        e.set_str("badPwdCount", "3");
        let locked = bind(&e, "Right-Pass-1", &policy(500), 1499);
        assert!(locked.result.unwrap_err().message.contains("data 775"));
        assert!(locked.writes.is_empty(), "a locked account counts nothing");
        let out = bind(&e, "Right-Pass-1", &policy(500), 1500);
        assert!(out.result.is_ok());
        assert_eq!((written(&out.writes, "lockoutTime"), written(&out.writes, "badPwdCount")), (Some("0".into()), Some("0".into())));
    }

    /// The two passwords before the current one are refused (52e) without counting; any other
    /// wrong password counts.
    #[test]
    fn the_two_previous_passwords_are_refused_without_counting() {
        let mut e = user(512, Some("First-Pass-1"));
        set_password(&mut e, "Second-Pass-2", 2, 3);
        set_password(&mut e, "Third-Pass-3", 3, 3);
        let p = Policy { lockout_threshold: 5, ..policy(0) };
        for old in ["Second-Pass-2", "First-Pass-1"] {
            let out = bind(&e, old, &p, 1000);
            assert!(out.result.unwrap_err().message.contains("data 52e"));
            assert_eq!(written(&out.writes, "badPwdCount"), None, "{old}: not counted");
        }
        let out = bind(&e, "Never-Used-4", &p, 1000);
        assert!(out.result.unwrap_err().message.contains("data 52e"));
        assert_eq!(written(&out.writes, "badPwdCount"), Some("1".into()));
    }

    /// accountExpires: 0 and "never" never expire; a time at or before now answers 701.
    #[test]
    fn an_account_expires_at_its_account_expires_time() {
        let data = |expires: i64| {
            let mut e = user(512, Some("Right-Pass-1"));
            e.set_str("accountExpires", expires.to_string());
            bind(&e, "Right-Pass-1", &policy(0), 1000).result.err().map(|err| err.message)
        };
        assert_eq!(data(0), None);
        assert_eq!(data(FILETIME_NEVER), None);
        assert_eq!(data(1001), None, "expires later");
        assert!(data(1000).is_some_and(|m| m.contains("data 701")), "expires now");
    }

    /// AD refuses to enable a user that has no password and needs one (52D); disabled, or
    /// with PASSWD_NOTREQD, or with a password, or not a change of userAccountControl at all,
    /// the object is accepted.
    #[test]
    fn an_enabled_user_needs_a_password() {
        let old = user(546, None);
        let refused = |uac: i64, password: Option<&str>| check_user_state(&old, &user(uac, password)).is_err();
        assert!(refused(512, None), "enabled, password required, none set");
        assert!(!refused(514, None), "disabled");
        assert!(!refused(544, None), "PASSWD_NOTREQD");
        assert!(!refused(512, Some("Right-Pass-1")));
        let err = check_user_state(&old, &user(512, None)).unwrap_err();
        assert_eq!(err.code, ResultCode::UnwillingToPerform);
        assert!(err.message.starts_with("0000052D"), "{}", err.message);
        let same = user(512, None);
        assert!(check_user_state(&same, &user(512, None)).is_ok(), "userAccountControl not changed");
        let mut group = Entry::new(Dn::parse("CN=g,DC=y").unwrap());
        group.set_str("objectClass", "group");
        let mut group2 = group.clone();
        group2.set_str("userAccountControl", "512");
        assert!(check_user_state(&group, &group2).is_ok(), "not a user");
    }

    /// A change stamps uSNChanged when a secret or a replicated attribute changed; badPwdCount,
    /// badPasswordTime, lastLogon and logonCount alone do not (any case of their names).
    #[test]
    fn only_replicated_changes_count() {
        let old = user(512, Some("Right-Pass-1"));
        assert!(!replicated_change(&old, &old.clone()), "nothing changed");
        let mut new = old.clone();
        new.set_str("BadPwdCount", "2");
        new.set_str("lastLogon", "5");
        assert!(!replicated_change(&old, &new), "not replicated");
        new.set_str("description", "x");
        assert!(replicated_change(&old, &new), "a replicated attribute");
        let mut new = old.clone();
        set_password(&mut new, "Other-Pass-2", 1, 3);
        new.set_str("pwdLastSet", old.first_str("pwdLastSet").unwrap_or_default());
        assert!(replicated_change(&old, &new), "a secret");
    }

    /// A machine account (a computer, a gMSA: Cloud Sync's agent runs as one) changes its own
    /// password: maxPwdAge does not expire it (msDS-UserPasswordExpiryTimeComputed "never").
    #[test]
    fn a_machine_accounts_password_never_expires_by_age() {
        let mut p = policy(0);
        p.max_age = 42 * 864_000_000_000;
        let mut e = Entry::new(Dn::parse("CN=x,DC=y").unwrap());
        e.set_str("pwdLastSet", "1000");
        e.set_str("userAccountControl", UF_NORMAL_ACCOUNT.to_string());
        assert_eq!(password_expiry(&e, &p), 1000 + p.max_age);
        e.set_str("userAccountControl", UF_WORKSTATION_TRUST_ACCOUNT.to_string());
        assert_eq!(password_expiry(&e, &p), FILETIME_NEVER);
        e.set_str("userAccountControl", UF_SERVER_TRUST_ACCOUNT.to_string());
        assert_eq!(password_expiry(&e, &p), FILETIME_NEVER);
    }
}
