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
    /// Empty for cloud-only users.
    pub sam: String,
    pub upn: String,
    /// Empty for cloud-only users.
    pub dn: String,
    pub password: Option<String>,
    pub about: String,
    /// Has an account in the tenant.
    pub cloud: bool,
    /// The tenant's account is the synced twin of the AD account.
    pub synced: bool,
    /// The sync agent whose scope holds it (`ConnectSync` or `CloudSync`), for a synced user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<relay::AgentKind>,
}

/// The domain's built-in administrator (RID 500): provisioned with the domain, so seeding
/// lists it but never adds it.
pub const ADMINISTRATOR: &str = "Administrator";
pub const ADMIN_PASSWORD: &str = "Lab-Admin-Pa55!";

/// Azure AD Connect's AD DS connector account (express settings name it MSOL_<hex>).
pub const CONNECTOR: &str = "MSOL_5f2a9c31d7e8";
/// Its password, as the lab's environment (Connect's configuration) holds it.
pub const CONNECTOR_PASSWORD: &str = "Connector-Svc-4417!";

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
/// threshold (Windows ships 0 = never) so that lockout and unlock can be tried, and the
/// minimum password age of 0 that Microsoft's writeback tutorial lists as a prerequisite
/// ("Enable Azure AD SSPR writeback", Prerequisites: with a larger one writeback still works,
/// but only once a day per user) — so a fresh lab's first written-back reset works on day 0.
/// Scenarios about the minimum age set Windows' day themselves (`policy: {min_age: 1d}`).
pub const POLICY: &[(&str, &str)] = &[("lockoutThreshold", "5"), ("minPwdAge", "0")];

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
        sam: CLOUD_SYNC_USER,
        given: CLOUD_SYNC_USER,
        ou: CLOUD_SYNC_OU,
        password: "Harbor-Light-36",
        uac: UF_NORMAL_ACCOUNT,
        groups: &[],
        about: "plain user in Cloud Sync's scope (labs with Cloud Sync's provisioning agent): the tutorial's second user",
    },
    Spec {
        sam: CONNECTOR,
        given: "",
        ou: "OU=Service Accounts",
        password: CONNECTOR_PASSWORD,
        uac: UF_NORMAL_ACCOUNT | UF_DONT_EXPIRE_PASSWD,
        groups: &[],
        about: "Azure AD Connect's AD DS connector account, meant to hold exactly the writeback rights",
    },
];

pub const OUS: &[(&str, &str)] = &[
    ("Lab Users", "Users in the sync scope"),
    ("Service Accounts", "Service accounts (the AD DS connector account)"),
    ("Not Synced", "Users outside the sync scope"),
    ("Cloud Sync Users", "Users in Cloud Sync's scope"),
];

/// The OU Cloud Sync's provisioning agent covers beside Connect's (alone, it covers
/// `OU=Lab Users` instead), and the user seeded there.
pub const CLOUD_SYNC_OU: &str = "OU=Cloud Sync Users";
pub const CLOUD_SYNC_USER: &str = "User6";

/// Where Cloud Sync's installer creates its gMSA (AD's container for managed service
/// accounts, made with it here).
pub const MANAGED_SERVICE_ACCOUNTS: &str = "CN=Managed Service Accounts";

/// The users a testlab directory holds once [`seed`] has run, as `lab up --json` lists
/// them: the built-in Administrator, the Test Lab Guide's users and connector account, and
/// `load` more plain synced users, Load0..Load{load-1} in OU=Lab Users (password
/// `Load-Pass-{i}-Aa`) for load and concurrency tests. Known before the directory is, so a
/// lab hashes their cloud twins' passwords while it seeds.
pub fn users(domain: &DomainConfig, load: usize, agents: crate::SyncAgents) -> Vec<SeededUser> {
    let base = domain.base_dn().to_string();
    let dns = &domain.dns_name;
    let admin = SeededUser {
        sam: ADMINISTRATOR.into(),
        upn: format!("{ADMINISTRATOR}@{dns}"),
        dn: format!("CN={ADMINISTRATOR},CN=Users,{base}"),
        password: Some(ADMIN_PASSWORD.into()),
        about: "the domain's built-in administrator (RID 500)".into(),
        cloud: false,
        synced: false,
        agent: None,
    };
    // Cloud Sync's OU and its user only in a lab with both agents (alone, Cloud Sync takes
    // Connect's place: the same users)
    let specs = USERS.iter().filter(|u| u.ou != CLOUD_SYNC_OU || agents == crate::SyncAgents::Both).map(|u| {
        // Connect syncs OU=Lab Users (Cloud Sync does when it is the only agent), Cloud Sync
        // its own OU; User5's OU is out of scope.
        let agent = match u.ou {
            CLOUD_SYNC_OU => Some(relay::AgentKind::CloudSync),
            SYNC_OU => Some(agents.lab_users()),
            _ => None,
        };
        let synced = agent.is_some();
        SeededUser {
            sam: u.sam.into(),
            upn: format!("{}@{dns}", u.sam.to_lowercase()),
            dn: format!("CN={},{},{base}", u.sam, u.ou),
            password: Some(u.password.into()),
            about: u.about.into(),
            cloud: synced,
            synced,
            agent,
        }
    });
    let loads = (0..load).map(|i| {
        let sam = format!("Load{i}");
        SeededUser {
            upn: format!("{}@{dns}", sam.to_lowercase()),
            dn: format!("CN={sam},OU=Lab Users,{base}"),
            sam,
            password: Some(format!("Load-Pass-{i}-Aa")),
            about: "a load-test user".into(),
            cloud: true,
            synced: true,
            agent: Some(agents.lab_users()),
        }
    });
    std::iter::once(admin).chain(specs).chain(loads).collect()
}

/// Seeds a freshly provisioned directory with the testlab's policy, OUs, the connector's
/// rights and `users` (from [`users`]).
pub fn seed(d: &mut Directory, users: &[SeededUser]) {
    let base = d.base_dn().to_string();
    let sys = system();
    let tls = OpContext::TLS;
    let policy =
        POLICY.iter().map(|(a, v)| Modification { op: ModOp::Replace, attr: (*a).into(), values: vec![v.as_bytes().to_vec()] }).collect();
    d.modify(&sys, &base, policy, tls).expect("testlab policy");
    // (Cloud Sync's OU only when a seeded user lives there)
    let cloud_sync = users.iter().any(|u| u.dn.contains(&format!("{CLOUD_SYNC_OU},")));
    for (ou, desc) in OUS.iter().filter(|(ou, _)| cloud_sync || format!("OU={ou}") != CLOUD_SYNC_OU) {
        let attrs =
            vec![("objectClass".into(), vec![b"organizationalUnit".to_vec()]), ("description".into(), vec![desc.as_bytes().to_vec()])];
        d.add(&sys, &format!("OU={ou},{base}"), attrs, tls).expect("testlab OU");
    }
    let add = |d: &mut Directory, u: &SeededUser, description: Option<&str>, uac: i64, extra: Vec<(String, Vec<Vec<u8>>)>| {
        let mut attrs: Vec<(String, Vec<Vec<u8>>)> = vec![
            ("objectClass".into(), vec![b"user".to_vec()]),
            ("sAMAccountName".into(), vec![u.sam.as_bytes().to_vec()]),
            ("userPrincipalName".into(), vec![u.upn.as_bytes().to_vec()]),
            ("displayName".into(), vec![u.sam.as_bytes().to_vec()]),
        ];
        attrs.extend(description.map(|a| ("description".into(), vec![a.as_bytes().to_vec()])));
        attrs.push(("unicodePwd".into(), vec![unicode_pwd(u.password.as_deref().unwrap_or_default())]));
        attrs.push(("userAccountControl".into(), vec![uac.to_string().into_bytes()]));
        attrs.extend(extra);
        d.add(&sys, &u.dn, attrs, tls).unwrap_or_else(|e| panic!("testlab user {}: {e}", u.sam));
    };
    let spec = |u: &SeededUser| USERS.iter().find(|s| s.sam == u.sam);
    for (u, s) in users.iter().filter_map(|u| Some((u, spec(u)?))) {
        let mut extra = vec![];
        if !s.given.is_empty() {
            extra.push(("givenName".into(), vec![s.given.as_bytes().to_vec()]));
            extra.push(("sn".into(), vec![b"Lab".to_vec()]));
            extra.push(("mail".into(), vec![u.upn.as_bytes().to_vec()]));
        }
        add(d, u, Some(s.about), s.uac, extra);
        for g in s.groups {
            // Joining a protected group stamps adminCount=1, as SDProp does.
            member_add(d, &format!("CN={g},CN=Users,{base}"), &u.dn);
        }
    }
    grant_writeback_rights(d);
    // the load users
    for u in users.iter().filter(|u| spec(u).is_none() && u.sam != ADMINISTRATOR) {
        add(d, u, None, UF_NORMAL_ACCOUNT, vec![]);
    }
}

/// What `Set-ADSyncPasswordWritebackPermissions` (and the "Unexpire Password" step of the
/// writeback tutorial) give the connector account: exactly the writeback rights, on the
/// domain root, inherited by every user below it — protected accounts excepted.
pub fn grant_writeback_rights(d: &mut Directory) {
    let Some(connector) = d.by_sam(CONNECTOR).map(|e| e.dn.to_string()) else { return };
    let root = d.base_dn().to_string();
    // what the Connect wizard grants the AD DS connector account: writeback, then directory
    // and password hash sync (replication rights, mS-DS-ConsistencyGuid)
    for right in Right::WRITEBACK.into_iter().chain(Right::SYNC) {
        d.grant(Some(&connector), right, &root).expect("connector and domain root exist");
    }
}

/// What Cloud Sync's installer does in AD with a Domain Administrator's credentials: the
/// group managed service account `provAgentgMSA$` (its password the DC's to manage — here
/// made by the lab from the OS's generator and handed to the agent alone), with Cloud Sync's
/// default rights on the domain root: the writeback four (Reset password, Write lockoutTime,
/// Write pwdLastSet, Unexpire Password) and password hash sync's replication rights. The
/// gMSA's DN.
pub fn install_provisioning_agent(d: &mut Directory, password: &str) -> String {
    let sys = system();
    let tls = OpContext::TLS;
    let base = d.base_dn().to_string();
    let container = format!("{MANAGED_SERVICE_ACCOUNTS},{base}");
    if d.resolve(&container).is_err() {
        let attrs = vec![
            ("objectClass".into(), vec![b"container".to_vec()]),
            ("description".into(), vec![b"Default container for managed service accounts".to_vec()]),
        ];
        d.add(&sys, &container, attrs, tls).expect("the managed service accounts container");
    }
    let name = writeback::CLOUD_SYNC_GMSA.trim_end_matches('$');
    let dn = format!("CN={name},{container}");
    let attrs = vec![
        ("objectClass".into(), vec![b"msDS-GroupManagedServiceAccount".to_vec()]),
        ("sAMAccountName".into(), vec![writeback::CLOUD_SYNC_GMSA.as_bytes().to_vec()]),
        ("description".into(), vec![b"Microsoft Entra Cloud Sync provisioning agent's group managed service account".to_vec()]),
        ("unicodePwd".into(), vec![unicode_pwd(password)]),
        ("userAccountControl".into(), vec![ad_ds::account::UF_WORKSTATION_TRUST_ACCOUNT.to_string().into_bytes()]),
    ];
    d.add(&sys, &dn, attrs, tls).expect("the provisioning agent's gMSA");
    for right in Right::WRITEBACK.into_iter().chain(Right::HASH_SYNC) {
        d.grant(Some(&dn), right, &base).expect("gMSA and domain root exist");
    }
    dn
}

/// A gMSA password for a lab: 32 bytes from the OS's generator (never from the seed).
pub fn gmsa_password() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    // (the character classes AD's complexity rule asks for, whatever the bytes)
    format!("Gm-{}-9a", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// A lab user's registered SSPR methods: an alternate email, and (when `phone`) a mobile
/// number in the fictional 555-01xx range.
fn sspr_methods(name: &str, phone: bool) -> Vec<tenant::sspr::Method> {
    use tenant::sspr::Method;
    let mut m = vec![Method::Email(format!("{name}@alt.testlab.example"))];
    if phone {
        let n = name.bytes().fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b))) % 100;
        m.push(Method::MobilePhone(format!("+1 42555501{n:02}")));
    }
    m
}

/// The tenant's cloud-only accounts and app registration.
pub const TENANT_NAME: &str = "Testlab";
pub const INITIAL_DOMAIN: &str = "testlab.onmicrosoft.com";
pub const CLOUD_ADMIN: (&str, &str) = ("labadmin@testlab.onmicrosoft.com", "Cloud-Admin-Pa55!");
pub const HELPDESK: (&str, &str) = ("helpdesk@testlab.example", "Help-Desk-Pa55!");
pub const USER5_CLOUD: (&str, &str) = ("user5@testlab.onmicrosoft.com", "Amber-Cloud-62!");
pub const CLIENT_SECRET: &str = "Lab~Client~Secret~8f2e61";

/// What the testlab's app registration is called and may do (application permissions).
pub const APP_NAME: &str = "hybrid-lab automation";
pub const APP_PERMISSIONS: &[&str] = &[
    "User.ReadWrite.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "Directory.Read.All",
    "AuditLog.Read.All",
    "Group.ReadWrite.All",
    "IdentityRiskyUser.ReadWrite.All",
];

/// The OU Connect syncs in the built-in domain (User5's OU is out of scope).
pub const SYNC_OU: &str = "OU=Lab Users";

/// The Test Lab Guide's security group for SSPR's "Selected" scope (SSPR itself starts
/// enabled for All; a scenario switches it to this group).
pub const SSPR_GROUP: &str = "PWReset";

/// mS-DS-ConsistencyGuid as Connect writes it back when it is the sourceAnchor: a copy of the
/// objectGUID of each synced user that has none yet.
pub fn stamp_consistency_guids(d: &mut Directory, users: &[SeededUser]) {
    use ad_ds::directory::{ModOp, Modification, OpContext};
    for u in users.iter().filter(|u| u.synced) {
        let Some(e) = d.by_sam(&u.sam) else { continue };
        if !e.values("mS-DS-ConsistencyGuid").is_empty() {
            continue;
        }
        let Some(guid) = e.guid() else { continue };
        let m = Modification { op: ModOp::Replace, attr: "mS-DS-ConsistencyGuid".into(), values: vec![guid.to_vec()] };
        let _ = d.modify(&ad_ds::domain::system(), &u.dn, vec![m], OpContext::default());
    }
}

/// What Connect's import reads of a synced user's AD object, and the tenant is seeded from.
#[derive(Clone, Debug)]
pub struct OnPremObject {
    /// The sourceAnchor attribute's value (objectGUID or mS-DS-ConsistencyGuid).
    pub anchor: Vec<u8>,
    /// objectSid, as text.
    pub sid: String,
    pub user_account_control: i64,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub mail: Option<String>,
}

impl OnPremObject {
    /// From an entry's attributes (`values(name)`), wherever the entry came from.
    pub fn read(values: impl Fn(&str) -> Option<Vec<u8>>, anchor_attribute: &str) -> Option<OnPremObject> {
        let text = |a: &str| values(a).map(|v| String::from_utf8_lossy(&v).into_owned());
        Some(OnPremObject {
            anchor: values(anchor_attribute)?,
            sid: values("objectSid").and_then(|s| ad_ds::sid::Sid::from_bytes(&s)).map(|s| s.to_string()).unwrap_or_default(),
            user_account_control: text("userAccountControl").and_then(|v| v.parse().ok()).unwrap_or(0),
            display_name: text("displayName"),
            given_name: text("givenName"),
            surname: text("sn"),
            mail: text("mail"),
        })
    }
}

/// The attributes [`OnPremObject::read`] reads (besides the anchor).
pub const ON_PREM_ATTRS: &[&str] = &["objectSid", "userAccountControl", "displayName", "givenName", "sn", "mail"];

/// The synced users' objects in the built-in directory, by sAMAccountName.
pub fn on_prem_objects(d: &Directory, users: &[SeededUser], anchor_attribute: &str) -> std::collections::HashMap<String, OnPremObject> {
    users
        .iter()
        .filter(|u| u.synced)
        .filter_map(|u| {
            let e = d.by_sam(&u.sam)?;
            let o = OnPremObject::read(|a| e.values(a).first().map(|v| v.to_vec()), anchor_attribute)?;
            Some((u.sam.clone(), o))
        })
        .collect()
}

/// The tenant's seeded secrets hashed as it keeps them (PBKDF2, 1,000 rounds each, the
/// password hash sync form): the synced users' passwords by lower-case UPN, the cloud-only
/// users', and the lab app's secret. Each gets its own salt from the OS.
pub struct TenantCredentials {
    users: std::collections::HashMap<String, tenant::passwords::Credential>,
    app: tenant::passwords::Credential,
}

/// What [`seed_tenant`] will store. Each secret gets its salt now and its PBKDF2 only when a
/// sign-in first needs it (tenant::passwords::Credential::deferred): ~0.15 ms once per
/// account that signs in, instead of all nine at every start. (A helper thread deriving them
/// all in the background cost ~1.2 ms of CPU per start, taken from the start itself when
/// the cores are busy — measured, issue 30.)
pub struct TenantHashing {
    /// By lower-case UPN; the app's secret under an empty name.
    items: Vec<(String, tenant::passwords::Credential)>,
}

impl TenantHashing {
    pub fn new(synced: Vec<(String, String)>) -> TenantHashing {
        let cloud = [CLOUD_ADMIN, HELPDESK, USER5_CLOUD].map(|(upn, pw)| (upn.to_string(), pw.to_string()));
        let mut items: Vec<(String, String)> = synced.into_iter().chain(cloud).map(|(upn, pw)| (upn.to_lowercase(), pw)).collect();
        items.push((String::new(), CLIENT_SECRET.to_string()));
        let items =
            items.into_iter().map(|(upn, pw)| (upn, tenant::passwords::Credential::deferred(&pw, &mut rand::rngs::OsRng))).collect();
        TenantHashing { items }
    }

    /// The credentials, derived or not.
    pub fn finish(&self) -> TenantCredentials {
        let mut users: std::collections::HashMap<String, tenant::passwords::Credential> = self.items.iter().cloned().collect();
        let app = users.remove("").expect("the app's secret");
        TenantCredentials { users, app }
    }
}

/// Seeds the tenant as Azure AD Connect would have left it: the synced twins of the users in
/// the sync scope (onPremisesImmutableId = base64 of the anchor attribute, the other
/// onPremises* values from the AD object, the password as hash sync carried it), plus
/// cloud-only administrators, a cloud-only user, and one app registration.
/// Returns the cloud-only users (for `lab up --json`) and the app's client id.
pub fn seed_tenant(
    t: &mut tenant::directory::Tenant,
    domain_name: &str,
    users: &[SeededUser],
    objects: &std::collections::HashMap<String, OnPremObject>,
    mut hashed: TenantCredentials,
) -> (Vec<SeededUser>, uuid::Uuid) {
    use base64::Engine;
    use tenant::directory::{NewUser, OnPremises};
    use tenant::roles::Role;
    for u in users.iter().filter(|u| u.synced) {
        let e = objects.get(&u.sam).expect("a synced user's AD object");
        t.add_user(NewUser {
            user_principal_name: u.upn.clone(),
            display_name: e.display_name.clone().unwrap_or_else(|| u.sam.clone()),
            given_name: e.given_name.clone(),
            surname: e.surname.clone(),
            mail: e.mail.clone(),
            account_enabled: e.user_account_control & ad_ds::account::UF_ACCOUNTDISABLE == 0,
            on_premises: Some(OnPremises {
                agent: u.agent.unwrap_or_default(),
                immutable_id: base64::engine::general_purpose::STANDARD.encode(&e.anchor),
                user_principal_name: u.upn.clone(),
                sam_account_name: u.sam.clone(),
                domain_name: domain_name.to_string(),
                distinguished_name: u.dn.clone(),
                security_identifier: e.sid.clone(),
            }),
            password: u.password.clone(),
            credential: hashed.users.remove(&u.upn.to_lowercase()),
            // password hash sync stamps this unless the cloud policy for synced users is on
            password_policies: vec!["DisablePasswordExpiration".into()],
            roles: vec![],
            // registered for SSPR: an alternate email and a mobile phone
            methods: sspr_methods(&u.sam.to_lowercase(), true),
            // the Test Lab Guide's P1 trial
            licenses: vec![tenant::directory::SKU_ENTRA_ID_P1],
        });
    }
    let cloud = [
        (CLOUD_ADMIN, "Lab Admin", vec![Role::GlobalAdministrator], "cloud-only Global Administrator"),
        (
            HELPDESK,
            "Helpdesk",
            vec![Role::HelpdeskAdministrator],
            "cloud-only Helpdesk Administrator: may reset non-admins, not Global Administrators",
        ),
        (USER5_CLOUD, "User5 (cloud)", vec![], "User5's cloud-only twin: not synced, so its password never reaches AD"),
    ];
    let mut out = vec![];
    for ((upn, password), name, roles, about) in cloud {
        t.add_user(NewUser {
            user_principal_name: upn.into(),
            display_name: name.into(),
            account_enabled: true,
            password: Some(password.into()),
            credential: hashed.users.remove(&upn.to_lowercase()),
            methods: sspr_methods(upn.split('@').next().unwrap_or_default(), !roles.is_empty()),
            licenses: vec![tenant::directory::SKU_ENTRA_ID_P1],
            roles,
            ..Default::default()
        });
        out.push(SeededUser {
            sam: String::new(),
            upn: upn.into(),
            dn: String::new(),
            password: Some(password.into()),
            about: about.into(),
            cloud: true,
            synced: false,
            agent: None,
        });
    }
    // PWReset holds User1 and User4 (and not User2, the protected administrator)
    let members = ["User1", "User4"]
        .iter()
        .filter_map(|sam| users.iter().find(|u| u.sam == *sam))
        .filter_map(|u| t.find_user(&u.upn).map(|x| x.id))
        .collect();
    t.add_group(tenant::groups::Group {
        id: uuid::Uuid::nil(),
        display_name: SSPR_GROUP.into(),
        mail_nickname: SSPR_GROUP.into(),
        description: Some("Users allowed to reset their password (the Test Lab Guide's group)".into()),
        security_enabled: true,
        is_assignable_to_role: false,
        members,
    });
    let client_id = t.add_app_hashed(APP_NAME, hashed.app, APP_PERMISSIONS);
    (out, client_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synced() -> Vec<(String, String)> {
        vec![("User1@testlab.example".into(), "Summer-Lake-41".into()), ("user4@testlab.example".into(), "Copper-River-93".into())]
    }

    /// Every secret is there, under its own salt, derived by the first sign-in that needs it
    /// and kept from then on (the tenant's copies share it); none is derived before.
    #[test]
    fn the_seeded_secrets_are_derived_by_the_first_sign_in_that_needs_them() {
        let unhelped = TenantHashing::new(synced()).finish();
        let hashing = TenantHashing::new(synced());
        let handed = hashing.finish();
        assert!(format!("{:?}", handed.app).contains("derived: false"));
        assert!(handed.app.verify(CLIENT_SECRET));
        let again = hashing.finish();
        assert!(format!("{:?}", again.app).contains("derived: true"), "what one sign-in derived, every copy has");
        assert!(format!("{:?}", again.users[&CLOUD_ADMIN.0.to_lowercase()]).contains("derived: false"), "only what was needed");
        for c in [&unhelped, &handed] {
            assert_eq!(c.users.len(), 2 + 3, "the synced users and the three cloud-only accounts");
            assert!(c.users["user1@testlab.example"].verify("Summer-Lake-41"), "lower-case UPN, the right password");
            assert!(!c.users["user1@testlab.example"].verify("Copper-River-93"));
            assert!(c.users[&CLOUD_ADMIN.0.to_lowercase()].verify(CLOUD_ADMIN.1));
            assert!(c.app.verify(CLIENT_SECRET));
        }
        assert_ne!(unhelped.users["user4@testlab.example"], handed.users["user4@testlab.example"], "a salt of its own each time");
    }
}
