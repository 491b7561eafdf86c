//! Deny entries (ADUC's "User cannot change password"): a deny on the object wins over the
//! domain-wide allow that every user's Change Password comes from, for the user and for any
//! other principal it names; other rights and other users are untouched; taking the deny away
//! restores the allow.

use ad_ds::access::Right;
use ad_ds::directory::OpContext;
use ad_ds::domain::system;
use ad_ds::{Directory, DomainConfig, Principal};
use clock::Clock;

fn principal(d: &Directory, sam: &str) -> (Principal, ad_ds::dn::DnKey) {
    let e = d.by_sam(sam).expect("seeded");
    (Principal::User { dn: e.dn.clone(), sam: sam.into(), admin: false }, e.dn.key())
}

#[test]
fn a_deny_on_one_user_wins_over_the_domain_wide_allow() {
    let cfg = DomainConfig {
        dns_name: "deny.example".into(),
        netbios: "DENY".into(),
        dc_name: "DC1".into(),
        sid: [1, 2, 3],
        seed: 1,
        admin_password: "Deny-Admin-Pass-1".into(),
    };
    let mut d = Directory::new(cfg, Clock::frozen(Clock::lab_epoch()));
    seed(&mut d);
    let (u1, k1) = principal(&d, "Alice");
    let (u2, k2) = principal(&d, "Bob");
    assert!(d.has_right(&u1, Right::ChangePassword, &k1), "Everyone may change passwords (the domain root's allow)");
    let dn1 = d.by_sam("Alice").unwrap().dn.to_string();
    d.deny(None, Right::ChangePassword, &dn1).unwrap();
    assert!(!d.has_right(&u1, Right::ChangePassword, &k1), "User cannot change password");
    assert!(!d.has_right(&u2, Right::ChangePassword, &k1), "nor can anyone else change it");
    assert!(d.has_right(&u2, Right::ChangePassword, &k2), "Bob's own is untouched");
    assert!(d.remove_deny(None, Right::ChangePassword, &dn1).unwrap());
    assert!(!d.remove_deny(None, Right::ChangePassword, &dn1).unwrap(), "nothing left to remove");
    assert!(d.has_right(&u1, Right::ChangePassword, &k1));
}

/// Two plain users under CN=Users.
fn seed(d: &mut Directory) {
    let tls = OpContext { encrypted: true, permissive: false, policy_hints: false };
    for sam in ["Alice", "Bob"] {
        let dn = format!("CN={sam},CN=Users,{}", d.base_dn());
        let attrs =
            vec![("objectClass".to_string(), vec![b"user".to_vec()]), ("sAMAccountName".to_string(), vec![sam.as_bytes().to_vec()])];
        d.add(&system(), &dn, attrs, tls).expect("add");
    }
}
