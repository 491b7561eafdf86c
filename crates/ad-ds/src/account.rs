//! Account state of user objects: userAccountControl flags, what a new user starts with,
//! setting a password, the constructed account attributes, and what a simple bind checks.

use crate::directory::Directory;
use crate::entry::Entry;
use crate::error::{AdError, AdResult, ResultCode};
use crate::password::nt_hash;
use clock::FILETIME_NEVER;

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

/// Attributes that are not replicated: changing only these does not move uSNChanged or
/// whenChanged (seen on Samba: badPwdCount 0 → 2 with uSNChanged fixed).
const NOT_REPLICATED: &[&str] = &["badpwdcount", "badpasswordtime", "lastlogon", "logoncount", "memberof", "directreports"];

pub fn group_sam_account_type(group_type: i64) -> i64 {
    if group_type & 0x4 != 0 { SAM_ALIAS_OBJECT } else { SAM_GROUP_OBJECT }
}

/// What AD gives a user object created over LDAP.
pub fn init_user(e: &mut Entry, computer: bool, _now: clock::OffsetDateTime) {
    let defaults: [(&str, String); 10] = [
        (
            "userAccountControl",
            if computer {
                (UF_WORKSTATION_TRUST_ACCOUNT | UF_PASSWD_NOTREQD).to_string()
            } else {
                (UF_NORMAL_ACCOUNT | UF_PASSWD_NOTREQD | UF_ACCOUNTDISABLE).to_string()
            },
        ),
        ("primaryGroupID", if computer { "515".into() } else { "513".into() }),
        ("pwdLastSet", "0".into()),
        ("accountExpires", FILETIME_NEVER.to_string()),
        ("badPwdCount", "0".into()),
        ("badPasswordTime", "0".into()),
        ("logonCount", "0".into()),
        ("lastLogon", "0".into()),
        ("lastLogoff", "0".into()),
        ("codePage", "0".into()),
    ];
    for (a, v) in defaults {
        if !e.has(a) {
            e.set_str(a, v);
        }
    }
    if !e.has("countryCode") {
        e.set_str("countryCode", "0");
    }
    let uac = e.int("userAccountControl").unwrap_or(0);
    let sam_type = if uac & (UF_WORKSTATION_TRUST_ACCOUNT | UF_SERVER_TRUST_ACCOUNT) != 0 { SAM_MACHINE_ACCOUNT } else { SAM_USER_OBJECT };
    e.set_str("sAMAccountType", sam_type.to_string());
}

/// Stores a new password as AD does: the NT hash, the history, pwdLastSet = now.
pub fn set_password(e: &mut Entry, password: &str, now_filetime: i64, history_len: usize) {
    let h = nt_hash(password);
    e.secrets.nt_hash = Some(h);
    e.secrets.nt_history.insert(0, h);
    e.secrets.nt_history.truncate(history_len.max(1));
    e.set_str("pwdLastSet", now_filetime.to_string());
}

/// The password-related constructed attributes of a user.
pub fn constructed(dir: &Directory, e: &Entry, name: &str, now: i64) -> Option<Vec<Vec<u8>>> {
    let one = |n: i64| Some(vec![n.to_string().into_bytes()]);
    match name {
        "msDS-User-Account-Control-Computed" => one(computed_uac(dir, e, now)),
        "msDS-UserPasswordExpiryTimeComputed" => one(password_expiry(dir, e)),
        _ => None,
    }
}

fn domain_int(dir: &Directory, attr: &str) -> i64 {
    dir.get_dn(dir.base_dn()).and_then(|d| d.int(attr)).unwrap_or(0)
}

/// When the password expires (FILETIME): never for DONT_EXPIRE_PASSWD or maxPwdAge 0, 0 when
/// the user must change it now.
pub fn password_expiry(dir: &Directory, e: &Entry) -> i64 {
    let uac = e.int("userAccountControl").unwrap_or(0);
    let last = e.int("pwdLastSet").unwrap_or(0);
    let max_age = domain_int(dir, "maxPwdAge");
    if uac & UF_DONT_EXPIRE_PASSWD != 0 || max_age == 0 {
        return FILETIME_NEVER;
    }
    if last == 0 {
        return 0;
    }
    last.saturating_add(max_age.saturating_abs())
}

pub fn computed_uac(dir: &Directory, e: &Entry, now: i64) -> i64 {
    let mut v = 0;
    let lockout_time = e.int("lockoutTime").unwrap_or(0);
    let duration = domain_int(dir, "lockoutDuration").saturating_abs();
    if lockout_time != 0 && (duration == 0 || lockout_time.saturating_add(duration) > now) {
        v |= UF_LOCKOUT;
    }
    let expiry = password_expiry(dir, e);
    if expiry != FILETIME_NEVER && expiry <= now {
        v |= UF_PASSWORD_EXPIRED;
    }
    v
}

/// A simple bind's password check and the account states that refuse a right password.
pub fn check_bind(e: &mut Entry, password: &str, _now: i64) -> AdResult<()> {
    if e.secrets.nt_hash != Some(nt_hash(password)) {
        return Err(AdError::bind("52e"));
    }
    let uac = e.int("userAccountControl").unwrap_or(0);
    if uac & UF_ACCOUNTDISABLE != 0 {
        return Err(AdError::bind("533"));
    }
    Ok(())
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
    let names: std::collections::BTreeSet<&str> = old.attrs().chain(new.attrs()).map(|a| a.name).collect();
    names.iter().any(|n| {
        !NOT_REPLICATED.contains(&n.to_ascii_lowercase().as_str()) && old.get(n).map(|a| &a.values) != new.get(n).map(|a| &a.values)
    })
}
