//! AD's password, lockout, policy and access rules, each over a real socket with the exact
//! result code and diagnostic. Cases marked `#N` replay the Samba AD DC transcript's case N
//! (the answers a real DC gave); where Windows differs, the test says so and follows Windows.

use std::collections::HashSet;
use std::time::Duration;

use ad_ds::password::unicode_pwd;
use hybrid_lab_tests::{TestLab, Via, install_crypto};
use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapResult, Mod, Scope, SearchEntry};

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);
const CONNECTOR: &str = "TESTLAB\\MSOL_5f2a9c31d7e8";
const CONNECTOR_PW: &str = "Connector-Svc-4417!";

fn user_dn(sam: &str) -> String {
    let ou = if sam == "User5" { "OU=Not Synced" } else { "OU=Lab Users" };
    format!("CN={sam},{ou},DC=testlab,DC=example")
}

fn pw(s: &str) -> HashSet<Vec<u8>> {
    HashSet::from([unicode_pwd(s)])
}

async fn reset(l: &mut Ldap, sam: &str, new: &str) -> LdapResult {
    l.modify(&user_dn(sam), vec![Mod::Replace(b"unicodePwd".to_vec(), pw(new))]).await.unwrap()
}

async fn reset_with_hints(l: &mut Ldap, oid: &str, value: Option<Vec<u8>>, sam: &str, new: &str) -> LdapResult {
    let ctrl = RawControl { ctype: oid.into(), crit: true, val: value };
    l.with_controls(ctrl).modify(&user_dn(sam), vec![Mod::Replace(b"unicodePwd".to_vec(), pw(new))]).await.unwrap()
}

async fn change(l: &mut Ldap, sam: &str, old: &str, new: &str) -> LdapResult {
    l.modify(&user_dn(sam), vec![Mod::Delete(b"unicodePwd".to_vec(), pw(old)), Mod::Add(b"unicodePwd".to_vec(), pw(new))]).await.unwrap()
}

async fn set(l: &mut Ldap, dn: &str, attr: &str, value: &str) -> LdapResult {
    l.modify(dn, vec![Mod::Replace(attr, HashSet::from([value]))]).await.unwrap()
}

async fn bind_data(t: &TestLab, name: &str, password: &str) -> String {
    let mut l = t.connect(Via::Ldaps).await;
    let r = l.simple_bind(name, password).await.unwrap();
    if r.rc == 0 {
        return "ok".into();
    }
    assert_eq!(r.rc, 49, "{}", r.text);
    r.text.split("data ").nth(1).and_then(|s| s.split(',').next()).unwrap_or("?").to_string()
}

async fn read(l: &mut Ldap, dn: &str, attrs: &[&str]) -> SearchEntry {
    let (mut rs, _) = l.search(dn, Scope::Base, "(objectClass=*)", attrs.to_vec()).await.unwrap().success().unwrap();
    SearchEntry::construct(rs.pop().unwrap())
}

fn val(e: &SearchEntry, a: &str) -> String {
    e.attrs.get(a).and_then(|v| v.first()).cloned().unwrap_or_default()
}

/// Windows' text for a refused unicodePwd write, with the lab's reason line.
fn assert_refused(r: &LdapResult, win32: &str, reason: &str) {
    assert_eq!(r.rc, 19, "{}", r.text);
    let windows = format!(
        "{win32}: AtrErr: DSID-03190F80, #1:\n\t0: {win32}: DSID-03190F80, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)\n"
    );
    assert!(r.text.starts_with(&windows), "{:?}", r.text);
    assert!(r.text.contains(reason), "{:?} should say {reason:?}", r.text);
}

/// A testlab whose domain policy has Windows' default minimum password age (a day) again:
/// testlab itself follows the writeback tutorial's 0, these tests are about AD's rules.
async fn windows_policy_lab() -> TestLab {
    let t = TestLab::start().await;
    let mut l = t.admin(Via::Ldaps).await;
    assert_eq!(set(&mut l, &t.base(), "minPwdAge", "-864000000000").await.rc, 0);
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_checks_old_password_then_age_then_length_and_complexity_then_history() {
    install_crypto();
    let t = windows_policy_lab().await;
    let mut u = t.bind(Via::Ldaps, "TESTLAB\\User1", "Summer-Lake-41").await;
    // The testlab's passwords were set "now": the first change must wait minPwdAge (1 day).
    // #89/#101: a wrong old password beats too young and too short.
    assert_refused(&change(&mut u, "User1", "wrong", "x").await, "00000056", "");
    // #88: too young beats too short
    assert_refused(&change(&mut u, "User1", "Summer-Lake-41", "x").await, "0000052D", "password is too young to change!");
    t.lab.clock.advance(DAY);
    assert_refused(&change(&mut u, "User1", "Summer-Lake-41", "Ab1!").await, "0000052D", "It should be equal or longer than 7 characters!");
    assert_refused(&change(&mut u, "User1", "Summer-Lake-41", "alllowercase1").await, "0000052D", "does not meet the complexity criteria");
    // Windows rejects a password containing the sAMAccountName; Samba 4.17 accepts it (#109).
    assert_refused(&change(&mut u, "User1", "Summer-Lake-41", "My-user1-Pass").await, "0000052D", "does not meet the complexity criteria");
    assert_refused(&change(&mut u, "User1", "Summer-Lake-41", "Summer-Lake-41").await, "0000052D", "already used (previous password)");
    assert_eq!(change(&mut u, "User1", "Summer-Lake-41", "Autumn-Lake-42").await.rc, 0);
    t.lab.clock.advance(DAY);
    assert_eq!(change(&mut u, "User1", "Autumn-Lake-42", "Winter-Lake-43").await.rc, 0);
    t.lab.clock.advance(DAY);
    assert_refused(&change(&mut u, "User1", "Winter-Lake-43", "Summer-Lake-41").await, "0000052D", "already used (in history)");
    // #106: complexity beats history
    assert_refused(&change(&mut u, "User1", "Winter-Lake-43", "summerlake41").await, "0000052D", "complexity");
    // #102: the old value must be the current password, not the one before
    assert_refused(&change(&mut u, "User1", "Autumn-Lake-42", "Spring-Lake-44").await, "00000056", "");
    // #150: anyone who knows the current password may change it (Everyone has Change Password)
    let mut other = t.bind(Via::Ldaps, "TESTLAB\\User4", "Copper-River-93").await;
    assert_eq!(change(&mut other, "User1", "Winter-Lake-43", "Spring-Lake-44").await.rc, 0);
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "Spring-Lake-44").await, "ok");
    // malformed changes (Samba's answers)
    let r = u.modify(&user_dn("User1"), vec![Mod::Add(b"unicodePwd".to_vec(), pw("Only-Add-1"))]).await.unwrap();
    assert_eq!(r.rc, 50, "add only: {}", r.text);
    let r = u.modify(&user_dn("User1"), vec![Mod::Delete(b"unicodePwd".to_vec(), pw("Spring-Lake-44"))]).await.unwrap();
    assert_eq!(r.rc, 53, "delete only: {}", r.text);
    let unquoted: Vec<u8> = "Plain-Text-1".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let r = u
        .modify(
            &user_dn("User1"),
            vec![Mod::Delete(b"unicodePwd".to_vec(), pw("Spring-Lake-44")), Mod::Add(b"unicodePwd".to_vec(), HashSet::from([unquoted]))],
        )
        .await
        .unwrap();
    assert_eq!(r.rc, 19);
    assert!(r.text.starts_with("0000202F:"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_checks_length_and_complexity_and_history_only_when_policy_hints_ask() {
    install_crypto();
    let t = windows_policy_lab().await;
    let mut admin = t.admin(Via::Ldaps).await;
    // #123-124: length and complexity apply to a reset
    assert_refused(&reset(&mut admin, "User1", "short").await, "0000052D", "longer than 7");
    assert_refused(&reset(&mut admin, "User1", "nocomplexity").await, "0000052D", "complexity");
    // #125-126: neither history nor minimum age: the current password is accepted at once
    assert_eq!(reset(&mut admin, "User1", "Summer-Lake-41").await.rc, 0);
    // With LDAP_SERVER_POLICY_HINTS (flag 1) the full policy applies, on either OID.
    // (Samba 4.17 does not support these controls: critical → 12. Windows does.)
    let on = Some(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    let off = Some(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
    for oid in ["1.2.840.113556.1.4.2239", "1.2.840.113556.1.4.2066"] {
        // minimum age first (the password was just reset), then history
        assert_refused(&reset_with_hints(&mut admin, oid, on.clone(), "User1", "Brand-New-Pass-1").await, "0000052D", "too young");
        assert_eq!(reset_with_hints(&mut admin, oid, off.clone(), "User1", "Summer-Lake-41").await.rc, 0, "flag 0: a plain reset");
    }
    t.lab.clock.advance(DAY);
    for oid in ["1.2.840.113556.1.4.2239", "1.2.840.113556.1.4.2066"] {
        assert_refused(&reset_with_hints(&mut admin, oid, on.clone(), "User1", "Summer-Lake-41").await, "0000052D", "previous password");
    }
    assert_eq!(reset(&mut admin, "User1", "Granite-Peak-27").await.rc, 0, "User2's password, never User1's");
    t.lab.clock.advance(DAY);
    assert_refused(
        &reset_with_hints(&mut admin, "1.2.840.113556.1.4.2066", on.clone(), "User1", "Summer-Lake-41").await,
        "0000052D",
        "in history",
    );
    assert_eq!(reset_with_hints(&mut admin, "1.2.840.113556.1.4.2239", on.clone(), "User1", "Brand-New-Pass-1").await.rc, 0);
    let r = reset_with_hints(&mut admin, "1.2.840.113556.1.4.2239", Some(vec![0x04, 0x01, 0x01]), "User1", "Other-Pass-2").await;
    assert_eq!(r.rc, 2, "a malformed control value: {}", r.text);
    let root = read(&mut admin, "", &["supportedControl"]).await;
    assert!(root.attrs["supportedControl"].iter().any(|c| c == "1.2.840.113556.1.4.2239"));
    assert!(root.attrs["supportedControl"].iter().any(|c| c == "1.2.840.113556.1.4.2066"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_passwords_lock_the_account_and_lockout_time_zero_unlocks_it() {
    install_crypto();
    let t = TestLab::start().await;
    let dn = user_dn("User1");
    let mut admin = t.admin(Via::Ldaps).await;
    let usn0 = val(&read(&mut admin, &dn, &["uSNChanged"]).await, "uSNChanged");
    // testlab: lockoutThreshold 5, duration and window 30 minutes
    for i in 1..=4 {
        assert_eq!(bind_data(&t, "TESTLAB\\User1", "wrong").await, "52e");
        let e = read(&mut admin, &dn, &["badPwdCount", "lockoutTime", "uSNChanged"]).await;
        assert_eq!(val(&e, "badPwdCount"), i.to_string());
        assert_eq!(val(&e, "uSNChanged"), usn0, "badPwdCount is not replicated: uSNChanged stays");
    }
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "wrong").await, "52e");
    let e = read(
        &mut admin,
        &dn,
        &["badPwdCount", "badPasswordTime", "lockoutTime", "userAccountControl", "msDS-User-Account-Control-Computed", "uSNChanged"],
    )
    .await;
    assert_eq!(val(&e, "badPwdCount"), "5");
    assert_eq!(val(&e, "lockoutTime"), val(&e, "badPasswordTime"), "lockoutTime = the locking attempt's time");
    assert_eq!(val(&e, "msDS-User-Account-Control-Computed"), "16");
    assert_eq!(val(&e, "userAccountControl"), "512", "the lockout bit is never stored");
    assert_ne!(val(&e, "uSNChanged"), usn0, "lockoutTime is replicated");
    // #167-174: locked beats everything, and counts nothing
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "Summer-Lake-41").await, "775");
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "wrong").await, "775");
    assert_eq!(val(&read(&mut admin, &dn, &["badPwdCount"]).await, "badPwdCount"), "5");
    // #194-203: a change on a locked account is refused, even with the right old password
    t.lab.clock.advance(DAY / 48 / 2); // 15 minutes: still locked
    let mut other = t.bind(Via::Ldaps, "TESTLAB\\User4", "Copper-River-93").await;
    assert_refused(&change(&mut other, "User1", "Summer-Lake-41", "Locked-Out-Pass-1").await, "00000775", "");
    // a reset while locked succeeds but does not unlock
    assert_eq!(reset(&mut admin, "User1", "Reset-While-Locked-1").await.rc, 0);
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "Reset-While-Locked-1").await, "775");
    // unlock: the connector writes lockoutTime = 0; badPwdCount goes to 0, badPasswordTime stays
    let bad_time = val(&read(&mut admin, &dn, &["badPasswordTime"]).await, "badPasswordTime");
    let mut connector = t.bind(Via::Ldaps, CONNECTOR, CONNECTOR_PW).await;
    assert_eq!(set(&mut connector, &dn, "lockoutTime", "0").await.rc, 0);
    let e = read(&mut admin, &dn, &["badPwdCount", "badPasswordTime", "lockoutTime", "msDS-User-Account-Control-Computed"]).await;
    assert_eq!((val(&e, "badPwdCount").as_str(), val(&e, "lockoutTime").as_str()), ("0", "0"));
    assert_eq!(val(&e, "badPasswordTime"), bad_time);
    assert_eq!(val(&e, "msDS-User-Account-Control-Computed"), "0");
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "Reset-While-Locked-1").await, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockouts_run_out_bad_counts_age_out_and_recent_passwords_do_not_count() {
    install_crypto();
    let t = TestLab::start().await;
    let dn = user_dn("User1");
    let mut admin = t.admin(Via::Ldaps).await;
    for _ in 0..5 {
        bind_data(&t, "TESTLAB\\User1", "wrong").await;
    }
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "Summer-Lake-41").await, "775");
    t.lab.clock.advance(31 * MINUTE); // lockoutDuration 30 minutes
    assert_eq!(val(&read(&mut admin, &dn, &["msDS-User-Account-Control-Computed"]).await, "msDS-User-Account-Control-Computed"), "0");
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "Summer-Lake-41").await, "ok");
    let e = read(&mut admin, &dn, &["badPwdCount", "lockoutTime"]).await;
    assert_eq!((val(&e, "badPwdCount").as_str(), val(&e, "lockoutTime").as_str()), ("0", "0"));
    // observation window: four bad, 31 minutes, one bad → the count restarts at 1
    for _ in 0..4 {
        bind_data(&t, "TESTLAB\\User1", "wrong").await;
    }
    t.lab.clock.advance(31 * MINUTE);
    bind_data(&t, "TESTLAB\\User1", "wrong").await;
    assert_eq!(val(&read(&mut admin, &dn, &["badPwdCount"]).await, "badPwdCount"), "1");
    // a good bind clears the count
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "Summer-Lake-41").await, "ok");
    assert_eq!(val(&read(&mut admin, &dn, &["badPwdCount"]).await, "badPwdCount"), "0");
    // The two passwords before the current one: 52e without counting. (Samba lets the
    // previous one still bind for an hour, "old password allowed period"; the lab, like an
    // LDAP simple bind on Windows, refuses it.)
    t.lab.clock.advance(DAY);
    let mut u = t.bind(Via::Ldaps, "TESTLAB\\User1", "Summer-Lake-41").await;
    assert_eq!(change(&mut u, "User1", "Summer-Lake-41", "Second-Pass-22").await.rc, 0);
    t.lab.clock.advance(DAY);
    assert_eq!(change(&mut u, "User1", "Second-Pass-22", "Third-Pass-33").await.rc, 0);
    for old in ["Second-Pass-22", "Summer-Lake-41"] {
        assert_eq!(bind_data(&t, "TESTLAB\\User1", old).await, "52e");
    }
    assert_eq!(val(&read(&mut admin, &dn, &["badPwdCount"]).await, "badPwdCount"), "0");
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "never-used").await, "52e");
    assert_eq!(val(&read(&mut admin, &dn, &["badPwdCount"]).await, "badPwdCount"), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_states_give_ads_bind_sub_codes() {
    install_crypto();
    let t = TestLab::start().await;
    let mut admin = t.admin(Via::Ldaps).await;
    let mut connector = t.bind(Via::Ldaps, CONNECTOR, CONNECTOR_PW).await;
    let dn = user_dn("User1");
    // must change at next logon: pwdLastSet 0 → 773, computed PASSWORD_EXPIRED, expiry time 0
    assert_eq!(set(&mut connector, &dn, "pwdLastSet", "0").await.rc, 0);
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "Summer-Lake-41").await, "773");
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "wrong").await, "52e", "a wrong password beats the specific codes");
    let e = read(&mut admin, &dn, &["msDS-User-Account-Control-Computed", "msDS-UserPasswordExpiryTimeComputed"]).await;
    assert_eq!(val(&e, "msDS-User-Account-Control-Computed"), "8388608");
    assert_eq!(val(&e, "msDS-UserPasswordExpiryTimeComputed"), "0");
    // -1: pwdLastSet becomes now (not the old value), and the user binds again
    assert_eq!(set(&mut connector, &dn, "pwdLastSet", "-1").await.rc, 0);
    let now = clock::to_filetime(t.lab.clock.now());
    let e = read(&mut admin, &dn, &["pwdLastSet", "msDS-UserPasswordExpiryTimeComputed"]).await;
    assert_eq!(val(&e, "pwdLastSet"), now.to_string());
    assert_eq!(val(&e, "msDS-UserPasswordExpiryTimeComputed"), (now + 42 * 864_000_000_000).to_string());
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "Summer-Lake-41").await, "ok");
    // anything else: 80 other (Samba's answer; Windows refuses too, code not verified)
    for bad in ["1", "12345", "133000000000000000"] {
        let r = set(&mut admin, &dn, "pwdLastSet", bad).await;
        assert_eq!(r.rc, 80, "{bad}");
        assert!(r.text.starts_with("00000057:"), "{}", r.text);
    }
    // account expired: 701
    assert_eq!(set(&mut admin, &dn, "accountExpires", &(now - 1).to_string()).await.rc, 0);
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "Summer-Lake-41").await, "701");
    assert_eq!(set(&mut admin, &dn, "accountExpires", "0").await.rc, 0);
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "Summer-Lake-41").await, "ok");
    // password older than maxPwdAge (42 days): 532; never-expires User4 is untouched
    t.lab.clock.advance(43 * DAY);
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "Summer-Lake-41").await, "532");
    assert_eq!(bind_data(&t, "user1@testlab.example", "Summer-Lake-41").await, "532");
    assert_eq!(bind_data(&t, "TESTLAB\\User4", "Copper-River-93").await, "ok");
    let e = read(&mut admin, &user_dn("User4"), &["msDS-UserPasswordExpiryTimeComputed"]).await;
    assert_eq!(val(&e, "msDS-UserPasswordExpiryTimeComputed"), i64::MAX.to_string());
    // an admin reset clears it
    assert_eq!(reset(&mut admin, "User1", "Fresh-Again-55").await.rc, 0);
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "Fresh-Again-55").await, "ok");
    // disabled (533), and the stored UAC never keeps the computed bits (#: 528 reads 512)
    assert_eq!(set(&mut admin, &dn, "userAccountControl", "514").await.rc, 0);
    assert_eq!(bind_data(&t, "TESTLAB\\User1", "Fresh-Again-55").await, "533");
    assert_eq!(set(&mut admin, &dn, "userAccountControl", "528").await.rc, 0);
    assert_eq!(val(&read(&mut admin, &dn, &["userAccountControl"]).await, "userAccountControl"), "512");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fine_grained_policies_override_the_domain_policy() {
    install_crypto();
    let t = windows_policy_lab().await;
    let mut admin = t.admin(Via::Ldaps).await;
    let psc = "CN=Password Settings Container,CN=System,DC=testlab,DC=example";
    let pso = |name: &str, precedence: &str, min_len: &str, complexity: &str, threshold: &str, applies: &str| {
        let s = |v: &str| HashSet::from([v.to_string()]);
        (
            format!("CN={name},{psc}"),
            vec![
                ("objectClass".to_string(), s("msDS-PasswordSettings")),
                ("msDS-PasswordSettingsPrecedence".to_string(), s(precedence)),
                ("msDS-PasswordReversibleEncryptionEnabled".to_string(), s("FALSE")),
                ("msDS-PasswordHistoryLength".to_string(), s("5")),
                ("msDS-PasswordComplexityEnabled".to_string(), s(complexity)),
                ("msDS-MinimumPasswordLength".to_string(), s(min_len)),
                ("msDS-MinimumPasswordAge".to_string(), s("0")),
                ("msDS-MaximumPasswordAge".to_string(), s("-8640000000000")),
                ("msDS-LockoutThreshold".to_string(), s(threshold)),
                ("msDS-LockoutObservationWindow".to_string(), s("-18000000000")),
                ("msDS-LockoutDuration".to_string(), s("-18000000000")),
                ("msDS-PSOAppliesTo".to_string(), s(applies)),
            ],
        )
    };
    // one for User1 directly: length 12, no complexity
    let (dn, attrs) = pso("Long Passphrases", "10", "12", "FALSE", "0", &user_dn("User1"));
    admin.add(&dn, attrs).await.unwrap().success().unwrap();
    let e = read(&mut admin, &user_dn("User1"), &["msDS-ResultantPSO", "msDS-UserPasswordExpiryTimeComputed", "pwdLastSet"]).await;
    assert_eq!(val(&e, "msDS-ResultantPSO"), dn);
    let last: i64 = val(&e, "pwdLastSet").parse().unwrap();
    assert_eq!(val(&e, "msDS-UserPasswordExpiryTimeComputed"), (last + 8_640_000_000_000).to_string(), "maxAge 10 days");
    assert!(read(&mut admin, &user_dn("User4"), &["msDS-ResultantPSO"]).await.attrs.is_empty(), "absent when none applies");
    assert_refused(&reset(&mut admin, "User1", "Short-Pass1").await, "0000052D", "equal or longer than 12 characters");
    assert_eq!(reset(&mut admin, "User1", "a long lowercase passphrase").await.rc, 0);
    assert_refused(&reset(&mut admin, "User4", "a long lowercase passphrase").await, "0000052D", "complexity");
    // minAge 0 in the PSO: User1 may change at once; User4 (domain: 1 day) may not
    let mut u1 = t.bind(Via::Ldaps, "TESTLAB\\User1", "a long lowercase passphrase").await;
    assert_eq!(change(&mut u1, "User1", "a long lowercase passphrase", "another long passphrase").await.rc, 0);
    let mut u4 = t.bind(Via::Ldaps, "TESTLAB\\User4", "Copper-River-93").await;
    assert_refused(&change(&mut u4, "User4", "Copper-River-93", "Copper-River-94").await, "0000052D", "too young");

    // through a group: threshold 2 for its members
    let grp = "CN=Strict,OU=Lab Users,DC=testlab,DC=example";
    admin
        .add(grp, vec![("objectClass", HashSet::from(["group"])), ("member", HashSet::from([user_dn("User4").as_str()]))])
        .await
        .unwrap()
        .success()
        .unwrap();
    let (strict, attrs) = pso("Strict Lockout", "20", "7", "TRUE", "2", grp);
    admin.add(&strict, attrs).await.unwrap().success().unwrap();
    assert_eq!(val(&read(&mut admin, &user_dn("User4"), &["msDS-ResultantPSO"]).await, "msDS-ResultantPSO"), strict);
    bind_data(&t, "TESTLAB\\User4", "wrong").await;
    bind_data(&t, "TESTLAB\\User4", "wrong").await;
    assert_eq!(bind_data(&t, "TESTLAB\\User4", "Copper-River-93").await, "775");
    // a direct link beats a group link even at a worse precedence
    admin.modify(grp, vec![Mod::Add("member", HashSet::from([user_dn("User1").as_str()]))]).await.unwrap().success().unwrap();
    assert_eq!(val(&read(&mut admin, &user_dn("User1"), &["msDS-ResultantPSO"]).await, "msDS-ResultantPSO"), dn);
    // deleting the PSO puts the domain policy back (a lockout that happened stays)
    admin.delete(&strict).await.unwrap().success().unwrap();
    assert!(read(&mut admin, &user_dn("User4"), &["msDS-ResultantPSO"]).await.attrs.is_empty());
    assert_eq!(bind_data(&t, "TESTLAB\\User4", "Copper-River-93").await, "775");
    // a PSO missing a required setting is refused
    let (bad, mut attrs) = pso("Incomplete", "5", "7", "TRUE", "0", grp);
    attrs.retain(|(a, _)| a != "msDS-LockoutDuration");
    assert_eq!(admin.add(&bad, attrs).await.unwrap().rc, 65);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_domain_policy_is_edited_over_ldap_by_administrators_only() {
    install_crypto();
    let t = windows_policy_lab().await;
    let base = t.base();
    let mut admin = t.admin(Via::Ldaps).await;
    let e = read(
        &mut admin,
        &base,
        &[
            "minPwdLength",
            "pwdProperties",
            "pwdHistoryLength",
            "minPwdAge",
            "maxPwdAge",
            "lockoutThreshold",
            "lockoutDuration",
            "lockOutObservationWindow",
        ],
    )
    .await;
    // Windows Server's Default Domain Policy (and Samba's #5), plus testlab's threshold
    let want = [
        ("minPwdLength", "7"),
        ("pwdProperties", "1"),
        ("pwdHistoryLength", "24"),
        ("minPwdAge", "-864000000000"),
        ("maxPwdAge", "-36288000000000"),
        ("lockoutThreshold", "5"),
        ("lockoutDuration", "-18000000000"),
        ("lockOutObservationWindow", "-18000000000"),
    ];
    for (a, v) in want {
        assert_eq!(val(&e, a), v, "{a}");
    }
    assert_eq!(set(&mut admin, &base, "minPwdLength", "10").await.rc, 0);
    assert_refused(&reset(&mut admin, "User1", "Nine-Ch1!").await, "0000052D", "longer than 10 characters");
    assert_eq!(set(&mut admin, &base, "pwdProperties", "0").await.rc, 0);
    assert_eq!(reset(&mut admin, "User1", "lowercaseonly").await.rc, 0);
    let mut u = t.bind(Via::Ldaps, "TESTLAB\\User1", "lowercaseonly").await;
    let r = set(&mut u, &base, "minPwdLength", "1").await;
    assert_eq!(r.rc, 50);
    assert!(r.text.starts_with("00002098: SecErr:"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_holds_exactly_the_writeback_rights_and_not_over_protected_accounts() {
    install_crypto();
    let t = TestLab::start().await;
    let mut c = t.bind(Via::Ldaps, CONNECTOR, CONNECTOR_PW).await;
    let dn = user_dn("User1");
    // Reset Password, Write lockoutTime, Write pwdLastSet, Unexpire Password
    assert_eq!(reset(&mut c, "User1", "By-The-Connector-1").await.rc, 0);
    assert_eq!(reset(&mut c, "User5", "By-The-Connector-5").await.rc, 0);
    assert_eq!(set(&mut c, &dn, "lockoutTime", "0").await.rc, 0);
    assert_eq!(set(&mut c, &dn, "pwdLastSet", "0").await.rc, 0);
    assert_eq!(set(&mut c, &dn, "pwdLastSet", "-1").await.rc, 0);
    // nothing else
    let r = set(&mut c, &dn, "description", "x").await;
    assert_eq!(r.rc, 50);
    assert!(r.text.starts_with("00002098: SecErr:"), "{}", r.text);
    // protected accounts (adminCount=1): delegated rights do not reach them (AdminSDHolder)
    for sam in ["User2"] {
        let r = reset(&mut c, sam, "Not-Allowed-Pass-1").await;
        assert_eq!(r.rc, 50, "{sam}");
        assert!(r.text.starts_with("00000005: SecErr:"), "{}", r.text);
        assert_eq!(set(&mut c, &user_dn(sam), "lockoutTime", "0").await.rc, 50);
    }
    let r = c
        .modify("CN=Administrator,CN=Users,DC=testlab,DC=example", vec![Mod::Replace(b"unicodePwd".to_vec(), pw("Not-Allowed-Pass-1"))])
        .await
        .unwrap();
    assert_eq!(r.rc, 50);
    // ordinary users: no reset, not even of themselves; no unlock of others
    let mut u = t.bind(Via::Ldaps, "TESTLAB\\User4", "Copper-River-93").await;
    for sam in ["User1", "User4"] {
        let r = reset(&mut u, sam, "Not-Allowed-Pass-1").await;
        assert_eq!(r.rc, 50, "{sam}");
        assert!(r.text.starts_with("00000005: SecErr:"), "{}", r.text);
    }
    assert_eq!(set(&mut u, &dn, "lockoutTime", "0").await.rc, 50);
    assert_eq!(set(&mut u, &user_dn("User4"), "pwdLastSet", "0").await.rc, 50, "not even on themselves");
    // revoking a right takes effect at once (the lab's control surface does this)
    t.lab
        .adds
        .as_ref()
        .expect("the built-in AD DS")
        .directory
        .write()
        .unwrap()
        .revoke(
            Some(&user_dn("MSOL_5f2a9c31d7e8").replace("OU=Lab Users", "OU=Service Accounts")),
            ad_ds::access::Right::ResetPassword,
            "DC=testlab,DC=example",
        )
        .map(|gone| assert!(gone))
        .unwrap();
    let r = reset(&mut c, "User1", "After-Revoke-Pass-1").await;
    assert_eq!(r.rc, 50);
    assert!(r.text.starts_with("00000005: SecErr:"), "{}", r.text);
}
