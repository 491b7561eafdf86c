//! The name forms a simple bind accepts, as a real DC answers them (Samba 4.17, recorded in
//! the reference transcripts, cases 10–26; MS-ADTS 5.1.1.1.1 for the order): each form that
//! binds finds the same account, each form the DC refuses fails as an unknown name (52e).

use ad_ds::directory::OpContext;
use ad_ds::domain::system;
use ad_ds::password::unicode_pwd;
use ad_ds::{Directory, DomainConfig};
use clock::Clock;

const TLS: OpContext = OpContext::TLS;
const PW: &str = "Bind-Names-Pass-1";

fn lab() -> Directory {
    let cfg = DomainConfig {
        dns_name: "names.example".into(),
        netbios: "NAMES".into(),
        dc_name: "DC1".into(),
        sid: [4, 5, 6],
        seed: 9,
        admin_password: "Names-Admin-Pass-1".into(),
    };
    let mut d = Directory::new(cfg, Clock::frozen(Clock::lab_epoch()));
    let ou = |name: &str| {
        vec![("objectClass".to_string(), vec![b"organizationalUnit".to_vec()]), ("ou".to_string(), vec![name.as_bytes().to_vec()])]
    };
    d.add(&system(), "OU=Lab Users,DC=names,DC=example", ou("Lab Users"), TLS).unwrap();
    d.add(&system(), "OU=Sales/EMEA,DC=names,DC=example", ou("Sales/EMEA"), TLS).unwrap();
    let user = |sam: &str, upn: Option<&str>| {
        let mut a = vec![
            ("objectClass".to_string(), vec![b"user".to_vec()]),
            ("sAMAccountName".to_string(), vec![sam.as_bytes().to_vec()]),
            ("displayName".to_string(), vec![format!("Display {sam}").into_bytes()]),
            ("unicodePwd".to_string(), vec![unicode_pwd(PW)]),
            ("userAccountControl".to_string(), vec![b"512".to_vec()]),
        ];
        if let Some(u) = upn {
            a.push(("userPrincipalName".to_string(), vec![u.as_bytes().to_vec()]));
        }
        a
    };
    d.add(&system(), "CN=Noupn,CN=Users,DC=names,DC=example", user("noupn", None), TLS).unwrap();
    d.add(&system(), "CN=Ann Lee,OU=Lab Users,DC=names,DC=example", user("ann", Some("ann.lee@names.example")), TLS).unwrap();
    d.add(&system(), "CN=Emea One,OU=Sales/EMEA,DC=names,DC=example", user("emea1", Some("emea1@names.example")), TLS).unwrap();
    // an explicit UPN that is another user's implicit one
    d.add(&system(), "CN=Zed,CN=Users,DC=names,DC=example", user("zed", Some("emea1.old@names.example")), TLS).unwrap();
    d.add(&system(), "CN=Emea Old,CN=Users,DC=names,DC=example", user("emea1.old", Some("old@names.example")), TLS).unwrap();
    d
}

fn sam(p: ad_ds::Principal) -> String {
    match p {
        ad_ds::Principal::User { sam, .. } => sam,
        ad_ds::Principal::Anonymous => String::new(),
    }
}

fn sid_of(d: &Directory, sam: &str) -> String {
    ad_ds::sid::Sid::from_bytes(d.by_sam(sam).unwrap().values("objectSid")[0].as_slice()).unwrap().to_string()
}

fn guid_of(d: &Directory, sam: &str) -> String {
    let g = d.by_sam(sam).unwrap().guid().unwrap();
    let u = uuid::Uuid::from_bytes_le(g);
    format!("{{{u}}}")
}

#[test]
fn every_form_a_dc_accepts_binds_to_the_same_account() {
    let mut d = lab();
    let sid = sid_of(&d, "noupn");
    for name in [
        "CN=Noupn,CN=Users,DC=names,DC=example",
        "cn=NOUPN, cn=users, dc=names, dc=example",
        "NAMES\\noupn",
        "names\\NOUPN",
        "noupn@names.example",
        "NOUPN@NAMES.EXAMPLE",
        "names.example/Users/Noupn",
        "NAMES.EXAMPLE/users/noupn",
        "names.example/Users\nNoupn",
        sid.as_str(),
    ] {
        assert_eq!(sam(d.bind(name, PW).unwrap_or_else(|e| panic!("{name:?}: {e:?}"))), "noupn", "{name:?}");
    }
    // an OU path, and a slash inside an OU's name escaped as canonical names escape it
    assert_eq!(sam(d.bind("names.example/Lab Users/Ann Lee", PW).unwrap()), "ann");
    assert_eq!(sam(d.bind("ann.lee@names.example", PW).unwrap()), "ann");
    assert_eq!(sam(d.bind("names.example/Sales\\/EMEA/Emea One", PW).unwrap()), "emea1");
}

/// The implicit UPN binds beside an explicit one that differs, as on Windows (MS-ADTS
/// 5.1.1.1.1 tries the forms in turn; field reports of LDAP binds and logons by
/// `sam@dnsdomain` whatever userPrincipalName says). Issue 31, item 17: the lab refused it.
/// An explicit UPN comes first: where it equals another user's implicit UPN, it wins.
#[test]
fn the_implicit_upn_binds_beside_an_explicit_one_and_an_explicit_one_wins_a_clash() {
    let mut d = lab();
    assert_eq!(sam(d.bind("ann@names.example", PW).unwrap()), "ann", "ann's UPN is ann.lee@");
    assert_eq!(sam(d.bind("ANN@names.example", PW).unwrap()), "ann");
    assert_eq!(sam(d.bind("emea1.old@names.example", PW).unwrap()), "zed", "zed's explicit UPN wins over emea1.old's implicit one");
    assert_eq!(sam(d.bind("old@names.example", PW).unwrap()), "emea1.old");
    // the implicit form is the domain's own DNS name only
    assert!(d.bind("ann@other.example", PW).is_err());
}

#[test]
fn the_forms_a_dc_refuses_fail_as_an_unknown_name() {
    let mut d = lab();
    let guid = guid_of(&d, "noupn");
    for name in [
        "noupn",                        // bare sAMAccountName (case 16)
        "NAMES.EXAMPLE\\noupn",         // DNS domain before the backslash (case 15)
        "Display noupn",                // displayName (case 23)
        guid.as_str(),                  // {GUID} (case 25)
        "other.example/Users/Noupn",    // canonical name in another domain
        "names.example/Users",          // canonical name of a container, not a user
        "names.example/Noupn",          // a path that skips the container
        "OTHER\\noupn",                 // another NetBIOS domain
        "CN=Users,DC=names,DC=example", // DN of a non-user
        "S-1-5-21-4-5-6-99999",         // a SID no one has
    ] {
        let e = d.bind(name, PW).expect_err(name);
        assert!(format!("{e:?}").contains("52e"), "{name:?}: {e:?}");
    }
}
