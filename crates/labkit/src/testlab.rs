//! The built-in environment "testlab", after Microsoft's Test Lab Guide: domain
//! testlab.example (NetBIOS TESTLAB), one DC, OUs for users and service accounts, the
//! Administrator, Azure AD Connect's AD DS connector account, and User1..User5 covering
//! the cases password writeback meets.

use ad_ds::access::Right;
use ad_ds::account::{UF_ACCOUNTDISABLE, UF_DONT_EXPIRE_PASSWD, UF_NORMAL_ACCOUNT};
use ad_ds::directory::{ModOp, Modification, OpContext};
use ad_ds::domain::{member_add, system};
use ad_ds::password::unicode_pwd;
use ad_ds::{Directory, DomainConfig};

/// One seeded account, as `lab up --json` reports it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SeededUser {
    pub sam: String,
    pub upn: String,
    pub dn: String,
    pub password: Option<String>,
    pub about: String,
}

pub const ADMIN_PASSWORD: &str = "Lab-Admin-Pa55!";

/// Azure AD Connect's AD DS connector account (express settings name it MSOL_<hex>).
pub const CONNECTOR: &str = "MSOL_5f2a9c31d7e8";

pub fn domain(seed: u64) -> DomainConfig {
    DomainConfig {
        dns_name: "testlab.example".into(),
        netbios: "TESTLAB".into(),
        dc_name: "DC1".into(),
        sid: [2_817_409_516, 1_393_307_201, 3_952_214_780],
        seed,
        admin_password: ADMIN_PASSWORD.into(),
    }
}

/// The Test Lab Guide's domain policy: Windows Server's defaults, plus an account lockout
/// threshold (Windows ships 0 = never) so that lockout and unlock can be tried.
pub const POLICY: &[(&str, &str)] = &[("lockoutThreshold", "5")];

struct Spec {
    sam: &'static str,
    given: &'static str,
    ou: &'static str,
    password: &'static str,
    uac: i64,
    groups: &'static [&'static str],
    about: &'static str,
}

const USERS: &[Spec] = &[
    Spec {
        sam: "User1",
        given: "User1",
        ou: "OU=Lab Users",
        password: "Summer-Lake-41",
        uac: UF_NORMAL_ACCOUNT,
        groups: &[],
        about: "plain synced user: the everyday SSPR reset, change and unlock case",
    },
    Spec {
        sam: "User2",
        given: "User2",
        ou: "OU=Lab Users",
        password: "Granite-Peak-27",
        uac: UF_NORMAL_ACCOUNT,
        groups: &["Domain Admins"],
        about: "administrator in a protected group (adminCount=1): delegated writeback rights do not apply (AdminSDHolder)",
    },
    Spec {
        sam: "User3",
        given: "User3",
        ou: "OU=Lab Users",
        password: "Quiet-Meadow-58",
        uac: UF_NORMAL_ACCOUNT | UF_ACCOUNTDISABLE,
        groups: &[],
        about: "disabled on-premises (userAccountControl 514)",
    },
    Spec {
        sam: "User4",
        given: "User4",
        ou: "OU=Lab Users",
        password: "Copper-River-93",
        uac: UF_NORMAL_ACCOUNT | UF_DONT_EXPIRE_PASSWD,
        groups: &[],
        about: "password never expires (DONT_EXPIRE_PASSWORD): a forced change is not written back",
    },
    Spec {
        sam: "User5",
        given: "User5",
        ou: "OU=Not Synced",
        password: "Amber-Field-62",
        uac: UF_NORMAL_ACCOUNT,
        groups: &[],
        about: "outside the sync scope: its cloud twin is a cloud-only user",
    },
    Spec {
        sam: CONNECTOR,
        given: "",
        ou: "OU=Service Accounts",
        password: "Connector-Svc-4417!",
        uac: UF_NORMAL_ACCOUNT | UF_DONT_EXPIRE_PASSWD,
        groups: &[],
        about: "Azure AD Connect's AD DS connector account, meant to hold exactly the writeback rights",
    },
];

const OUS: &[(&str, &str)] = &[
    ("Lab Users", "Users in the sync scope"),
    ("Service Accounts", "Service accounts (the AD DS connector account)"),
    ("Not Synced", "Users outside the sync scope"),
];

/// Seeds the testlab OUs, users and policy into a freshly provisioned directory.
pub fn seed(d: &mut Directory) -> Vec<SeededUser> {
    let base = d.base_dn().to_string();
    let domain = d.config().dns_name.clone();
    let sys = system();
    let tls = OpContext { encrypted: true, permissive: false, policy_hints: false };
    let policy =
        POLICY.iter().map(|(a, v)| Modification { op: ModOp::Replace, attr: (*a).into(), values: vec![v.as_bytes().to_vec()] }).collect();
    d.modify(&sys, &base, policy, tls).expect("testlab policy");
    for (ou, desc) in OUS {
        let attrs =
            vec![("objectClass".into(), vec![b"organizationalUnit".to_vec()]), ("description".into(), vec![desc.as_bytes().to_vec()])];
        d.add(&sys, &format!("OU={ou},{base}"), attrs, tls).expect("testlab OU");
    }
    let mut out = vec![SeededUser {
        sam: "Administrator".into(),
        upn: format!("Administrator@{domain}"),
        dn: format!("CN=Administrator,CN=Users,{base}"),
        password: Some(ADMIN_PASSWORD.into()),
        about: "the domain's built-in administrator (RID 500)".into(),
    }];
    for u in USERS {
        let dn = format!("CN={},{},{base}", u.sam, u.ou);
        let upn = format!("{}@{domain}", u.sam.to_lowercase());
        let mut attrs: Vec<(String, Vec<Vec<u8>>)> = vec![
            ("objectClass".into(), vec![b"user".to_vec()]),
            ("sAMAccountName".into(), vec![u.sam.as_bytes().to_vec()]),
            ("userPrincipalName".into(), vec![upn.clone().into_bytes()]),
            ("displayName".into(), vec![u.sam.as_bytes().to_vec()]),
            ("description".into(), vec![u.about.as_bytes().to_vec()]),
            ("unicodePwd".into(), vec![unicode_pwd(u.password)]),
            ("userAccountControl".into(), vec![u.uac.to_string().into_bytes()]),
        ];
        if !u.given.is_empty() {
            attrs.push(("givenName".into(), vec![u.given.as_bytes().to_vec()]));
            attrs.push(("sn".into(), vec![b"Lab".to_vec()]));
            attrs.push(("mail".into(), vec![upn.clone().into_bytes()]));
        }
        d.add(&sys, &dn, attrs, tls).unwrap_or_else(|e| panic!("testlab user {}: {e}", u.sam));
        for g in u.groups {
            // Joining a protected group stamps adminCount=1, as SDProp does.
            member_add(d, &format!("CN={g},CN=Users,{base}"), &dn);
        }
        out.push(SeededUser { sam: u.sam.into(), upn, dn, password: Some(u.password.into()), about: u.about.into() });
    }
    grant_writeback_rights(d);
    out
}

/// What `Set-ADSyncPasswordWritebackPermissions` (and the "Unexpire Password" step of the
/// writeback tutorial) give the connector account: exactly the writeback rights, on the
/// domain root, inherited by every user below it — protected accounts excepted.
pub fn grant_writeback_rights(d: &mut Directory) {
    let Some(connector) = d.by_sam(CONNECTOR).map(|e| e.dn.to_string()) else { return };
    let root = d.base_dn().to_string();
    for right in Right::WRITEBACK {
        d.grant(Some(&connector), right, &root).expect("connector and domain root exist");
    }
}
