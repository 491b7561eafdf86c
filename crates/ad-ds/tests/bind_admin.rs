//! What a bind works out from the rest of the directory — whether the account is an
//! administrator (nested membership of Domain Admins, Enterprise Admins, Administrators), the
//! domain's lockout policy, a PSO that applies — is kept between binds for speed, and every
//! write that could change it is seen by the very next bind.

use ad_ds::directory::{ModOp, Modification, OpContext};
use ad_ds::domain::system;
use ad_ds::password::unicode_pwd;
use ad_ds::{Directory, DomainConfig, Principal};
use clock::Clock;

const PASSWORD: &str = "Bind-Admin-Pass-1";

fn domain() -> Directory {
    let cfg = DomainConfig {
        dns_name: "admins.example".into(),
        netbios: "ADMINS".into(),
        dc_name: "DC1".into(),
        sid: [4, 5, 6],
        seed: 1,
        admin_password: "Admins-Admin-Pass-1".into(),
    };
    let mut d = Directory::new(cfg, Clock::frozen(Clock::lab_epoch()));
    let base = d.base_dn().to_string();
    let attrs = |class: &str, sam: &str| {
        vec![("objectClass".to_string(), vec![class.as_bytes().to_vec()]), ("sAMAccountName".to_string(), vec![sam.as_bytes().to_vec()])]
    };
    let mut user = attrs("user", "Carol");
    user.push(("unicodePwd".into(), vec![unicode_pwd(PASSWORD)]));
    user.push(("userAccountControl".into(), vec![b"512".to_vec()]));
    d.add(&system(), &format!("CN=Carol,CN=Users,{base}"), user, OpContext::TLS).expect("user");
    d.add(&system(), &format!("CN=Helpdesk,CN=Users,{base}"), attrs("group", "Helpdesk"), OpContext::TLS).expect("group");
    d
}

fn set(d: &mut Directory, dn: &str, op: ModOp, attr: &str, value: &str) {
    let m = Modification { op, attr: attr.into(), values: vec![value.as_bytes().to_vec()] };
    d.modify(&system(), dn, vec![m], OpContext::TLS).expect("modify");
}

fn admin(d: &mut Directory) -> bool {
    match d.bind("ADMINS\\Carol", PASSWORD).expect("bind") {
        Principal::User { admin, .. } => admin,
        Principal::Anonymous => panic!("a user bind"),
    }
}

#[test]
fn nested_membership_of_an_admin_group_is_seen_by_the_next_bind() {
    let mut d = domain();
    let base = d.base_dn().to_string();
    let (carol, helpdesk) = (format!("CN=Carol,CN=Users,{base}"), format!("CN=Helpdesk,CN=Users,{base}"));
    let domain_admins = format!("CN=Domain Admins,CN=Users,{base}");
    assert!(!admin(&mut d));
    set(&mut d, &helpdesk, ModOp::Add, "member", &carol);
    assert!(!admin(&mut d), "Helpdesk is no admin group");
    set(&mut d, &domain_admins, ModOp::Add, "member", &helpdesk);
    assert!(admin(&mut d), "Carol ∈ Helpdesk ∈ Domain Admins");
    set(&mut d, &helpdesk, ModOp::Delete, "member", &carol);
    assert!(!admin(&mut d), "out of Helpdesk, out of the admins");
    set(&mut d, &helpdesk, ModOp::Add, "member", &carol);
    assert!(admin(&mut d));
    // deleting the group in between takes its members' rights with it
    d.delete(&system(), &helpdesk).expect("delete");
    assert!(!admin(&mut d));
    // Administrators (Builtin) counts as well; the built-in Administrator always does
    set(&mut d, &format!("CN=Administrators,CN=Builtin,{base}"), ModOp::Add, "member", &carol);
    assert!(admin(&mut d));
    let root = d.bind("ADMINS\\Administrator", "Admins-Admin-Pass-1").expect("bind");
    assert!(root.is_admin());
}

#[test]
fn the_domain_lockout_policy_and_a_new_pso_are_seen_by_the_next_bind() {
    let mut d = domain();
    let base = d.base_dn().to_string();
    set(&mut d, &base, ModOp::Replace, "lockoutThreshold", "2");
    for _ in 0..2 {
        assert!(d.bind("ADMINS\\Carol", "Wrong-Pass-1").is_err());
    }
    let locked = d.bind("ADMINS\\Carol", PASSWORD).expect_err("locked by the domain policy");
    assert!(locked.message.contains("data 775"), "{}", locked.message);
    // an administrator unlocks; a PSO for Carol with no lockout then governs her binds
    let carol = format!("CN=Carol,CN=Users,{base}");
    set(&mut d, &carol, ModOp::Replace, "lockoutTime", "0");
    let pso = format!("CN=No Lockout,CN=Password Settings Container,CN=System,{base}");
    let attrs = [
        ("objectClass", "msDS-PasswordSettings"),
        ("msDS-PasswordSettingsPrecedence", "1"),
        ("msDS-PasswordReversibleEncryptionEnabled", "FALSE"),
        ("msDS-PasswordHistoryLength", "0"),
        ("msDS-PasswordComplexityEnabled", "FALSE"),
        ("msDS-MinimumPasswordLength", "0"),
        ("msDS-MinimumPasswordAge", "0"),
        ("msDS-MaximumPasswordAge", "0"),
        ("msDS-LockoutThreshold", "0"),
        ("msDS-LockoutObservationWindow", "0"),
        ("msDS-LockoutDuration", "0"),
        ("msDS-PSOAppliesTo", carol.as_str()),
    ];
    d.add(&system(), &pso, attrs.iter().map(|(a, v)| (a.to_string(), vec![v.as_bytes().to_vec()])).collect(), OpContext::TLS).expect("PSO");
    for _ in 0..5 {
        assert!(d.bind("ADMINS\\Carol", "Wrong-Pass-2").is_err());
    }
    assert!(d.bind("ADMINS\\Carol", PASSWORD).is_ok(), "the PSO has no lockout");
}
