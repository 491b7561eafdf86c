//! What a freshly promoted domain controller holds (the domain object with Windows'
//! default policy, the well-known containers, accounts and groups), and loading a saved
//! directory from LDIF on top of it.

use std::collections::HashMap;

use crate::account;
use crate::directory::{Directory, ModOp, Modification, OpContext, Principal};
use crate::dn::Dn;
use crate::entry::Entry;
use crate::error::AdError;
use crate::ldif::Record;
use crate::password::{decode_unicode_pwd, nt_hash};
use crate::schema;
use crate::sid::Sid;

/// The directory acting on itself during provisioning and import.
pub fn system() -> Principal {
    Principal::User { dn: Dn::root(), sam: "SYSTEM".into(), admin: true }
}

const TLS: OpContext = OpContext::TLS;

/// Windows Server's Default Domain Policy (also Samba's provisioning defaults).
pub const DEFAULT_POLICY: &[(&str, &str)] = &[
    ("minPwdLength", "7"),
    ("pwdProperties", "1"),
    ("pwdHistoryLength", "24"),
    ("minPwdAge", "-864000000000"),
    ("maxPwdAge", "-36288000000000"),
    ("lockoutThreshold", "0"),
    ("lockoutDuration", "-18000000000"),
    ("lockOutObservationWindow", "-18000000000"),
    ("forceLogoff", "-9223372036854775808"),
];

pub(crate) fn provision(d: &mut Directory) {
    let base = d.base_dn().clone();
    let now = d.clock().now();
    let mut dom = Entry::new(base.clone());
    dom.set("objectClass", schema::class("domainDNS").expect("known").chain.iter().map(|c| c.as_bytes()));
    dom.set_str("dc", base.rdns[0].value.clone());
    dom.set_str("name", base.rdns[0].value.clone());
    dom.set_str("distinguishedName", base.to_string());
    let guid = d.new_guid();
    dom.set("objectGUID", vec![guid.to_vec()]);
    dom.set("objectSid", vec![d.domain_sid().to_bytes()]);
    dom.set_str("objectCategory", format!("CN=Domain-DNS,{}", d.schema_dn()));
    dom.set_str("instanceType", "5");
    dom.set_str("whenCreated", clock::generalized_time(now));
    dom.set_str("whenChanged", clock::generalized_time(now));
    let usn = d.next_usn();
    dom.set_str("uSNCreated", usn.to_string());
    dom.set_str("uSNChanged", usn.to_string());
    for (a, v) in DEFAULT_POLICY {
        dom.set_str(a, *v);
    }
    dom.set_str("msDS-Behavior-Version", "7");
    dom.set_str("nTMixedDomain", "0");
    d.store(dom);

    let sys = system();
    let add = |d: &mut Directory, dn: String, attrs: &[(&str, &str)]| {
        let attrs = attrs.iter().map(|(a, v)| (a.to_string(), vec![v.as_bytes().to_vec()])).collect();
        d.add(&sys, &dn, attrs, TLS).unwrap_or_else(|e| panic!("provisioning {dn}: {e}"));
    };
    let critical = ("isCriticalSystemObject", "TRUE");
    add(
        d,
        format!("CN=Users,{base}"),
        &[("objectClass", "container"), ("description", "Default container for upgraded user accounts"), critical],
    );
    add(
        d,
        format!("CN=Computers,{base}"),
        &[("objectClass", "container"), ("description", "Default container for upgraded computer accounts"), critical],
    );
    add(
        d,
        format!("OU=Domain Controllers,{base}"),
        &[("objectClass", "organizationalUnit"), ("description", "Default container for domain controllers"), critical],
    );
    add(d, format!("CN=System,{base}"), &[("objectClass", "container"), ("description", "Builtin system settings"), critical]);
    add(d, format!("CN=AdminSDHolder,CN=System,{base}"), &[("objectClass", "container"), critical]);
    add(d, format!("CN=Password Settings Container,CN=System,{base}"), &[("objectClass", "msDS-PasswordSettingsContainer"), critical]);
    add(d, format!("CN=Builtin,{base}"), &[("objectClass", "builtinDomain"), critical]);

    // Well-known accounts and groups with their fixed RIDs.
    let dsid = d.domain_sid().clone();
    let users = format!("CN=Users,{base}");
    let builtin = format!("CN=Builtin,{base}");
    let mk_group = |d: &mut Directory, parent: &str, name: &str, sid: Sid, gt: i64, protected: bool, desc: &str| {
        let dn = format!("CN={name},{parent}");
        add(
            d,
            dn.clone(),
            &[("objectClass", "group"), ("sAMAccountName", name), ("groupType", &gt.to_string()), ("description", desc), critical],
        );
        fix_sid(d, &dn, sid, protected);
    };
    mk_group(
        d,
        &builtin,
        "Administrators",
        Sid::builtin().child(544),
        account::GROUP_BUILTIN_LOCAL_SECURITY,
        true,
        "Administrators have complete and unrestricted access to the computer/domain",
    );
    mk_group(
        d,
        &builtin,
        "Users",
        Sid::builtin().child(545),
        account::GROUP_BUILTIN_LOCAL_SECURITY,
        false,
        "Users are prevented from making accidental or intentional system-wide changes",
    );
    mk_group(
        d,
        &builtin,
        "Account Operators",
        Sid::builtin().child(548),
        account::GROUP_BUILTIN_LOCAL_SECURITY,
        true,
        "Members can administer domain user and group accounts",
    );
    mk_group(
        d,
        &builtin,
        "Server Operators",
        Sid::builtin().child(549),
        account::GROUP_BUILTIN_LOCAL_SECURITY,
        true,
        "Members can administer domain servers",
    );
    mk_group(
        d,
        &builtin,
        "Print Operators",
        Sid::builtin().child(550),
        account::GROUP_BUILTIN_LOCAL_SECURITY,
        true,
        "Members can administer printers installed on domain controllers",
    );
    mk_group(
        d,
        &builtin,
        "Backup Operators",
        Sid::builtin().child(551),
        account::GROUP_BUILTIN_LOCAL_SECURITY,
        true,
        "Backup Operators can override security restrictions for the sole purpose of backing up or restoring files",
    );
    for (name, rid, protected, desc) in [
        ("Domain Admins", 512, true, "Designated administrators of the domain"),
        ("Domain Users", 513, false, "All domain users"),
        ("Domain Guests", 514, false, "All domain guests"),
        ("Domain Computers", 515, false, "All workstations and servers joined to the domain"),
        ("Domain Controllers", 516, true, "All domain controllers in the domain"),
        ("Schema Admins", 518, true, "Designated administrators of the schema"),
        ("Enterprise Admins", 519, true, "Designated administrators of the enterprise"),
        ("Group Policy Creator Owners", 520, false, "Members in this group can modify group policy for the domain"),
        (
            "Protected Users",
            525,
            false,
            "Members of this group are afforded additional protections against authentication security threats",
        ),
    ] {
        mk_group(d, &users, name, dsid.child(rid), account::GROUP_GLOBAL_SECURITY, protected, desc);
    }

    // Administrator (500), Guest (501), krbtgt (502), and the DC's own computer account.
    let admin_dn = format!("CN=Administrator,{users}");
    let upn = format!("Administrator@{}", d.config().dns_name);
    let pw = crate::password::unicode_pwd(&d.config().admin_password.clone());
    d.add(
        &sys,
        &admin_dn,
        vec![
            ("objectClass".into(), vec![b"user".to_vec()]),
            ("sAMAccountName".into(), vec![b"Administrator".to_vec()]),
            ("userPrincipalName".into(), vec![upn.into_bytes()]),
            ("description".into(), vec![b"Built-in account for administering the computer/domain".to_vec()]),
            ("userAccountControl".into(), vec![account::UF_NORMAL_ACCOUNT.to_string().into_bytes()]),
            ("unicodePwd".into(), vec![pw]),
            ("isCriticalSystemObject".into(), vec![b"TRUE".to_vec()]),
        ],
        TLS,
    )
    .expect("provisioning Administrator");
    fix_sid(d, &admin_dn, dsid.child(500), true);
    add(
        d,
        format!("CN=Guest,{users}"),
        &[
            ("objectClass", "user"),
            ("sAMAccountName", "Guest"),
            ("userAccountControl", "66082"),
            ("description", "Built-in account for guest access to the computer/domain"),
            critical,
        ],
    );
    fix_sid(d, &format!("CN=Guest,{users}"), dsid.child(501), false);
    add(
        d,
        format!("CN=krbtgt,{users}"),
        &[
            ("objectClass", "user"),
            ("sAMAccountName", "krbtgt"),
            ("userAccountControl", "514"),
            ("description", "Key Distribution Center Service Account"),
            critical,
        ],
    );
    fix_sid(d, &format!("CN=krbtgt,{users}"), dsid.child(502), true);
    let dc = d.config().dc_name.clone();
    let dc_dn = format!("CN={dc},OU=Domain Controllers,{base}");
    // (The two seeded draws the DC's password once took are still drawn, so that a seed keeps
    // naming the same GUIDs it always did.)
    let _ = (d.random_u64(), d.random_u64());
    let attrs = dc_account(d, &dc);
    d.add(&sys, &dc_dn, attrs, TLS).expect("provisioning the DC account");
    fix_sid(d, &dc_dn, dsid.child(1000), false);

    // AD's default ACL lets Everyone change a password they know (User-Change-Password).
    let root = base.to_string();
    d.grant(None, crate::access::Right::ChangePassword, &root).expect("domain root");
    // and the domain object grants Authenticated Users Unexpire Password: whoever writes a
    // password leaves pwdLastSet at now, not 0 (MS-SAMR 3.1.1.8.7), unless denied it
    d.grant(None, crate::access::Right::UnexpirePassword, &root).expect("domain root");

    for g in ["Domain Admins", "Enterprise Admins", "Schema Admins", "Group Policy Creator Owners"] {
        member_add(d, &format!("CN={g},{users}"), &admin_dn);
    }
    member_add(d, &format!("CN=Administrators,{builtin}"), &admin_dn);
    member_add(d, &format!("CN=Administrators,{builtin}"), &format!("CN=Domain Admins,{users}"));
    member_add(d, &format!("CN=Administrators,{builtin}"), &format!("CN=Enterprise Admins,{users}"));
    member_add(d, &format!("CN=Domain Controllers,{users}"), &dc_dn);
    // as dcpromo leaves it: every domain user is in BUILTIN\Users (tokenGroups shows it)
    member_add(d, &format!("CN=Users,{builtin}"), &format!("CN=Domain Users,{users}"));
}

/// Another domain controller's computer account, as dcpromo leaves it on the DC it
/// replicated from (before [`crate::Directory::replica`] copies the domain to the new DC):
/// under OU=Domain Controllers, a server trust account in Domain Controllers, its machine
/// password from the OS generator and known to nobody.
pub fn add_domain_controller(d: &mut Directory, name: &str) -> crate::error::AdResult<()> {
    let base = d.base_dn().clone();
    let dc_dn = format!("CN={name},OU=Domain Controllers,{base}");
    let attrs = dc_account(d, name);
    d.add(&system(), &dc_dn, attrs, TLS)?;
    member_add(d, &format!("CN=Domain Controllers,CN=Users,{base}"), &dc_dn);
    Ok(())
}

/// A DC's computer account: a server trust account trusted for delegation, in Domain
/// Controllers by its primary group, critical; its machine password random, as Windows makes
/// it, and known to nobody — a credential: from the OS, never from the lab's seed.
fn dc_account(d: &Directory, name: &str) -> Vec<(String, Vec<Vec<u8>>)> {
    let host = format!("{}.{}", name.to_lowercase(), d.config().dns_name);
    let uac = (account::UF_SERVER_TRUST_ACCOUNT | account::UF_TRUSTED_FOR_DELEGATION).to_string();
    let machine_pw = format!("{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>());
    let attrs = [
        ("objectClass", "computer"),
        ("sAMAccountName", &format!("{name}$")),
        ("dNSHostName", &host),
        ("userAccountControl", &uac),
        ("primaryGroupID", "516"),
        ("isCriticalSystemObject", "TRUE"),
    ];
    let mut attrs: Vec<(String, Vec<Vec<u8>>)> = attrs.iter().map(|(a, v)| (a.to_string(), vec![v.as_bytes().to_vec()])).collect();
    attrs.push(("unicodePwd".into(), vec![crate::password::unicode_pwd(&machine_pw)]));
    attrs
}

/// Adds `member` to a group as the system.
pub fn member_add(d: &mut Directory, group: &str, member: &str) {
    let m = Modification { op: ModOp::Add, attr: "member".into(), values: vec![member.as_bytes().to_vec()] };
    d.modify(&system(), group, vec![m], TLS).unwrap_or_else(|e| panic!("adding {member} to {group}: {e}"));
}

/// Well-known objects have fixed SIDs; protected ones carry adminCount=1.
fn fix_sid(d: &mut Directory, dn: &str, sid: Sid, protected: bool) {
    let key = Dn::parse(dn).expect("provisioned DN").key();
    let mut e = d.get(&key).expect("just added").clone();
    e.set("objectSid", vec![sid.to_bytes()]);
    if protected {
        e.set_str("adminCount", "1");
    }
    d.store(e);
}

/// An LDIF record the directory refused, with the line the record starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub line: usize,
    pub error: AdError,
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.line, self.error)
    }
}

impl std::error::Error for ImportError {}

/// Loads LDIF records into the directory: all of them or none.
pub(crate) fn import(d: &mut Directory, records: Vec<Record>) -> Result<usize, ImportError> {
    let now = d.clock().now();
    let ft = clock::to_filetime(now);
    let mut staged: Vec<(crate::dn::DnKey, Entry)> = Vec::with_capacity(records.len());
    let mut staged_keys: std::collections::HashSet<crate::dn::DnKey> = std::collections::HashSet::with_capacity(records.len());
    let at = |line: usize, error: AdError| ImportError { line, error };
    for r in records {
        let dn = Dn::parse(&r.dn).map_err(|_| at(r.line, AdError::invalid_dn(&r.dn)))?;
        let key = dn.key();
        let replacing = d.get(&key).is_some();
        if let (Some(p), false) = (dn.parent(), replacing) {
            let pk = p.key();
            if !staged_keys.contains(&pk) && d.get(&pk).is_none() {
                return Err(at(r.line, AdError::no_such_object(&p.to_string())));
            }
        }
        let mut e = Entry::new(dn.clone());
        // Group the record's lines by attribute (LDIF lists one value per line).
        let mut grouped: Vec<(&'static str, Vec<Vec<u8>>)> = Vec::with_capacity(r.attrs.len());
        for (a, v) in r.attrs {
            let base = a.split(';').next().unwrap_or(&a);
            let def = schema::attribute(base).ok_or_else(|| at(r.line, AdError::undefined_attribute(base)))?;
            match grouped.iter_mut().find(|(n, _)| *n == def.name) {
                Some((_, vs)) => vs.push(v),
                None => grouped.push((def.name, vec![v])),
            }
        }
        for (name, vals) in grouped {
            let def = schema::attribute(name).expect("looked up above");
            match def.name {
                "unicodePwd" => {
                    let v = &vals[0];
                    if let Ok(h) = <[u8; 16]>::try_from(v.as_slice()) {
                        // a hash as a saved lab (or a Samba sam.ldb dump) holds it
                        e.secrets.nt_hash = Some(h);
                    } else {
                        let pw = decode_unicode_pwd(v).map_err(|err| at(r.line, err))?;
                        e.secrets.nt_hash = Some(nt_hash(&pw));
                        if !e.has("pwdLastSet") {
                            e.set_str("pwdLastSet", ft.to_string());
                        }
                    }
                }
                "ntPwdHistory" => {
                    e.secrets.nt_history = vals[0].chunks_exact(16).map(|c| c.try_into().expect("16 bytes")).collect();
                }
                "objectClass" => {
                    let names: Vec<String> = vals.iter().map(|v| String::from_utf8_lossy(v).to_string()).collect();
                    let class = names.iter().filter_map(|n| schema::class(n)).max_by_key(|c| c.chain.len());
                    let class = class.ok_or_else(|| at(r.line, AdError::object_class("no structural objectClass")))?;
                    e.set("objectClass", class.chain.iter().map(|c| c.as_bytes()));
                }
                _ => {
                    if def.single() && vals.len() > 1 {
                        return Err(at(r.line, AdError::constraint(def.name)));
                    }
                    e.set(def.name, vals);
                }
            }
        }
        if let Some(h) = e.secrets.nt_hash
            && e.secrets.nt_history.is_empty()
        {
            e.secrets.nt_history.push(h);
        }
        let class =
            e.structural_class().and_then(schema::class).ok_or_else(|| at(r.line, AdError::object_class("no structural objectClass")))?;
        d.complete_object(&mut e, class, now);
        staged_keys.insert(key.clone());
        staged.push((key, e));
    }
    let n = staged.len();
    for (key, e) in staged {
        d.store_at(key, e);
    }
    rebuild_back_links(d);
    // Keep counters ahead of anything imported; adopt the domain SID of an imported domain.
    let (mut max_usn, mut max_rid) = (0i64, 0u32);
    let base_key = d.base_dn().key();
    let mut domain_sid = None;
    for e in d.unordered_entries() {
        max_usn = max_usn.max(e.int("uSNChanged").unwrap_or(0)).max(e.int("uSNCreated").unwrap_or(0));
        if let Some(s) = e.values("objectSid").first().and_then(|s| Sid::from_bytes(s)) {
            if e.dn.key() == base_key {
                domain_sid = Some(s);
            } else if s.subs.first() == Some(&21) {
                max_rid = max_rid.max(s.rid().unwrap_or(0));
            }
        }
    }
    if let Some(s) = domain_sid {
        d.set_domain_sid(s);
    }
    d.set_counters(max_usn, max_rid + 1);
    Ok(n)
}

/// memberOf and directReports recomputed from member and manager everywhere.
fn rebuild_back_links(d: &mut Directory) {
    let mut back: HashMap<crate::dn::DnKey, Vec<(&'static str, Vec<u8>)>> = HashMap::new();
    let mut stale: Vec<crate::dn::DnKey> = Vec::new();
    for e in d.unordered_entries() {
        if e.has("memberOf") || e.has("directReports") {
            stale.push(e.dn.key());
        }
        for (fwd, bk) in [("member", "memberOf"), ("manager", "directReports")] {
            for v in e.values(fwd) {
                if let Ok(t) = Dn::parse(&String::from_utf8_lossy(v)) {
                    back.entry(t.key()).or_default().push((bk, e.dn.to_string().into_bytes()));
                }
            }
        }
    }
    let keys: std::collections::HashSet<crate::dn::DnKey> = stale.into_iter().chain(back.keys().cloned()).collect();
    for k in keys {
        let Some(mut e) = d.get(&k).cloned() else { continue };
        let links = back.remove(&k).unwrap_or_default();
        for bk in ["memberOf", "directReports"] {
            e.set(bk, links.iter().filter(|(n, _)| *n == bk).map(|(_, v)| v.as_slice()));
        }
        d.store(e);
    }
}
