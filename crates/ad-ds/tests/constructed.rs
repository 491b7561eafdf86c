//! The password-related constructed attributes AD computes on every read, never stores:
//! msDS-User-Account-Control-Computed (UF_LOCKOUT, UF_PASSWORD_EXPIRED),
//! msDS-UserPasswordExpiryTimeComputed and msDS-ResultantPSO — each following the policy
//! that governs the user (the domain's, or the PSO that wins) and the lab clock — and a
//! search's typesOnly, which names them without their values.

use ad_ds::account::{UF_LOCKOUT, UF_PASSWORD_EXPIRED};
use ad_ds::directory::{ModOp, Modification, OpContext};
use ad_ds::domain::system;
use ad_ds::password::unicode_pwd;
use ad_ds::{Directory, DomainConfig};
use clock::{Clock, FILETIME_NEVER};
use std::time::Duration;

const DAY: u64 = 86_400;

const PASSWORD: &str = "Constructed-Pass-1";
/// The default domain policy's maxPwdAge: 42 days, as a positive FILETIME interval.
const MAX_AGE: i64 = 36_288_000_000_000;

fn domain(clock: &Clock) -> (Directory, String) {
    let cfg = DomainConfig {
        dns_name: "computed.example".into(),
        netbios: "COMPUTED".into(),
        dc_name: "DC1".into(),
        sid: [7, 8, 9],
        seed: 1,
        admin_password: "Computed-Admin-Pass-1".into(),
    };
    let mut d = Directory::new(cfg, clock.clone());
    let dn = format!("CN=Dana,CN=Users,{}", d.base_dn());
    let attrs = vec![
        ("objectClass".to_string(), vec![b"user".to_vec()]),
        ("sAMAccountName".to_string(), vec![b"Dana".to_vec()]),
        ("unicodePwd".to_string(), vec![unicode_pwd(PASSWORD)]),
        ("userAccountControl".to_string(), vec![b"512".to_vec()]),
    ];
    d.add(&system(), &dn, attrs, OpContext::TLS).expect("user");
    (d, dn)
}

fn read(d: &Directory, attr: &str) -> Vec<String> {
    let e = d.by_sam("Dana").expect("seeded");
    d.values_of(e, attr).into_iter().map(|v| String::from_utf8(v).unwrap()).collect()
}

fn one(d: &Directory, attr: &str) -> i64 {
    let v = read(d, attr);
    assert_eq!(v.len(), 1, "{attr}: {v:?}");
    v[0].parse().unwrap()
}

fn set(d: &mut Directory, dn: &str, attr: &str, value: &str) {
    let m = Modification { op: ModOp::Replace, attr: attr.into(), values: vec![value.as_bytes().to_vec()] };
    d.modify(&system(), dn, vec![m], OpContext::TLS).expect("modify");
}

#[test]
fn a_password_expires_max_pwd_age_after_pwdlastset_and_reads_expired_from_then() {
    let clock = Clock::frozen(Clock::lab_epoch());
    let (mut d, dn) = domain(&clock);
    let last_set = one(&d, "pwdLastSet");
    assert_eq!(last_set, clock.filetime(), "set by an administrator: now");
    assert_eq!(one(&d, "msDS-User-Account-Control-Computed"), 0, "fresh, unlocked");
    assert_eq!(one(&d, "msDS-UserPasswordExpiryTimeComputed"), last_set + MAX_AGE);
    assert!(read(&d, "msDS-ResultantPSO").is_empty(), "no PSO: the attribute has no value");

    clock.advance(Duration::from_secs(42 * DAY - 1));
    assert_eq!(one(&d, "msDS-User-Account-Control-Computed"), 0, "a second before its maximum age");
    clock.advance(Duration::from_secs(2));
    assert_eq!(one(&d, "msDS-User-Account-Control-Computed"), UF_PASSWORD_EXPIRED);
    assert_eq!(one(&d, "userAccountControl"), 512, "the computed bit is never stored");

    // must change at next logon: expired now, expiry time 0
    set(&mut d, &dn, "pwdLastSet", "0");
    assert_eq!(one(&d, "msDS-User-Account-Control-Computed"), UF_PASSWORD_EXPIRED);
    assert_eq!(one(&d, "msDS-UserPasswordExpiryTimeComputed"), 0);

    // password never expires: neither expired nor an expiry time (the must-change too)
    set(&mut d, &dn, "userAccountControl", "66048");
    assert_eq!(one(&d, "msDS-User-Account-Control-Computed"), 0);
    assert_eq!(one(&d, "msDS-UserPasswordExpiryTimeComputed"), FILETIME_NEVER);
}

#[test]
fn a_lockout_reads_as_uf_lockout_until_its_duration_passes() {
    let clock = Clock::frozen(Clock::lab_epoch());
    let (mut d, _) = domain(&clock);
    let base = d.base_dn().to_string();
    set(&mut d, &base, "lockoutThreshold", "2");
    set(&mut d, &base, "lockoutDuration", "-18000000000"); // 30 minutes
    for _ in 0..2 {
        assert!(d.bind("COMPUTED\\Dana", "Wrong-Pass-1").is_err());
    }
    assert_eq!(one(&d, "msDS-User-Account-Control-Computed"), UF_LOCKOUT);
    clock.advance(Duration::from_secs(30 * 60 + 1));
    assert_eq!(one(&d, "msDS-User-Account-Control-Computed"), 0, "the lockout ran out: no write needed");
    assert!(one(&d, "lockoutTime") != 0, "lockoutTime itself stays until the next bind (as on Windows)");
}

#[test]
fn the_winning_pso_is_named_and_its_maximum_age_decides_the_expiry() {
    let clock = Clock::frozen(Clock::lab_epoch());
    let (mut d, dn) = domain(&clock);
    let base = d.base_dn().to_string();
    let pso = |name: &str, precedence: &str, max_age: &str| {
        let attrs = [
            ("objectClass", "msDS-PasswordSettings"),
            ("msDS-PasswordSettingsPrecedence", precedence),
            ("msDS-PasswordReversibleEncryptionEnabled", "FALSE"),
            ("msDS-PasswordHistoryLength", "0"),
            ("msDS-PasswordComplexityEnabled", "FALSE"),
            ("msDS-MinimumPasswordLength", "0"),
            ("msDS-MinimumPasswordAge", "0"),
            ("msDS-MaximumPasswordAge", max_age),
            ("msDS-LockoutThreshold", "0"),
            ("msDS-LockoutObservationWindow", "0"),
            ("msDS-LockoutDuration", "0"),
            ("msDS-PSOAppliesTo", dn.as_str()),
        ];
        (
            format!("CN={name},CN=Password Settings Container,CN=System,{base}"),
            attrs.iter().map(|(a, v)| (a.to_string(), vec![v.as_bytes().to_vec()])).collect::<Vec<_>>(),
        )
    };
    let last_set = one(&d, "pwdLastSet");
    let (weekly, attrs) = pso("Weekly", "5", "-6048000000000");
    d.add(&system(), &weekly, attrs, OpContext::TLS).expect("PSO");
    assert_eq!(read(&d, "msDS-ResultantPSO"), vec![weekly.clone()]);
    assert_eq!(one(&d, "msDS-UserPasswordExpiryTimeComputed"), last_set + 6_048_000_000_000, "7 days, not the domain's 42");
    clock.advance(Duration::from_secs(8 * DAY));
    assert_eq!(one(&d, "msDS-User-Account-Control-Computed"), UF_PASSWORD_EXPIRED, "expired by the PSO's age");

    // a lower precedence wins: this one never expires
    let (never, attrs) = pso("Never", "1", "0");
    d.add(&system(), &never, attrs, OpContext::TLS).expect("PSO");
    assert_eq!(read(&d, "msDS-ResultantPSO"), vec![never]);
    assert_eq!(one(&d, "msDS-UserPasswordExpiryTimeComputed"), FILETIME_NEVER);
    assert_eq!(one(&d, "msDS-User-Account-Control-Computed"), 0);
}

/// RFC 4511 4.5.1.8: typesOnly answers the attribute names without their values — for a
/// constructed attribute as for a stored one.
#[test]
fn types_only_names_attributes_without_values() {
    use ad_ds::directory::Selection;
    let clock = Clock::frozen(Clock::lab_epoch());
    let (d, _) = domain(&clock);
    let key = d.by_sam("Dana").expect("seeded").dn.key();
    let attrs = vec!["sAMAccountName".to_string(), "msDS-User-Account-Control-Computed".to_string()];
    let (_, with_values) = d.render(&key, &Selection::from_request(&attrs, false)).unwrap();
    let (_, types_only) = d.render(&key, &Selection::from_request(&attrs, true)).unwrap();
    let names = |r: &[(String, Vec<Vec<u8>>)]| r.iter().map(|(n, _)| n.to_ascii_lowercase()).collect::<Vec<_>>();
    assert_eq!(names(&with_values), names(&types_only));
    assert_eq!(names(&types_only).len(), 2, "{types_only:?}");
    assert!(with_values.iter().all(|(_, v)| !v.is_empty()));
    assert!(types_only.iter().all(|(_, v)| v.is_empty()), "{types_only:?}");
}
