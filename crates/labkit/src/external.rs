//! An external directory (a real Samba AD DC, a Windows DC) as the lab's AD DS: the
//! testlab's OUs, users, domain policy and the connector's delegated rights seeded into it
//! over LDAP, as an administrator would, and what the tenant's synced twins are made from
//! read back from it (objectGUID, objectSid).
//!
//! The directory must hold the testlab's domain (`testlab.example`, NetBIOS `TESTLAB`), so
//! that the scenarios' names and DNs mean the same objects.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ad_ds::access::Right;
use ad_ds::security::{self, Ace};
use ldap3::{Mod, Scope, SearchEntry};

use crate::testlab::{self, OnPremObject, SeededUser};

/// How to reach the directory: LDAPS, an administrator, and the CA its certificate chains to.
#[derive(Clone, Debug)]
pub struct External {
    /// `ldaps://HOST:PORT`.
    pub ldaps: String,
    pub admin_dn: String,
    pub admin_password: String,
    pub ca_pem: Vec<u8>,
}

/// What the directory can do that scenarios ask about, from its rootDSE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// LDAP_SERVER_POLICY_HINTS (…4.2239, or the deprecated …4.2066) in supportedControl:
    /// without it Connect's resets fail (6329 MMS(3040)). Samba 4.17 has neither.
    pub policy_hints: bool,
}

/// An LDAPS connection to the directory, checked against its CA.
async fn dial(ext: &External) -> Result<(ldap3::LdapConnAsync, ldap3::Ldap), String> {
    ldap_dial::connect(&ext.ldaps, ldap_dial::Security::Url, tls(&ext.ca_pem)?, Duration::from_secs(10))
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", ext.ldaps))
}

/// Reads the directory's rootDSE (anonymously, as any client may).
pub async fn probe(ext: &External) -> Result<Capabilities, String> {
    let (conn, mut l) = dial(ext).await?;
    ldap3::drive!(conn);
    let (root, _) =
        l.search("", Scope::Base, "(objectClass=*)", vec!["supportedControl"]).await.map_err(ldap_err)?.success().map_err(ldap_err)?;
    let _ = l.unbind().await;
    let controls =
        root.into_iter().next().map(SearchEntry::construct).and_then(|e| e.attrs.get("supportedControl").cloned()).unwrap_or_default();
    let has = |oid: &str| controls.iter().any(|c| c == oid);
    Ok(Capabilities { policy_hints: has("1.2.840.113556.1.4.2239") || has("1.2.840.113556.1.4.2066") })
}

fn tls(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.map_err(|e| format!("CA: {e}"))?).map_err(|e| format!("CA: {e}"))?;
    }
    #[allow(deprecated)] // ring on purpose: docs/security.md, "ring, not AWS-LC, for TLS"
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    Ok(Arc::new(tls.with_root_certificates(roots).with_no_client_auth()))
}

fn ldap_err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The policy attributes the seeding copies from the testlab's domain object.
const POLICY_ATTRS: &[&str] = &[
    "minPwdLength",
    "pwdHistoryLength",
    "minPwdAge",
    "maxPwdAge",
    "pwdProperties",
    "lockoutThreshold",
    "lockoutDuration",
    "lockOutObservationWindow",
];

/// Seeds the testlab — as the built-in directory `model` holds it, with its `users` — into
/// the external directory (replacing what an earlier seeding left), stamps
/// mS-DS-ConsistencyGuid when that is the sourceAnchor, and reads back the synced users'
/// objects (their objectGUIDs and objectSids are the directory's own).
pub async fn seed(
    ext: &External,
    model: &ad_ds::Directory,
    users: &[SeededUser],
    anchor_attribute: &str,
    provisioning_agent: Option<&str>,
) -> Result<HashMap<String, OnPremObject>, String> {
    let base = model.base_dn().to_string();
    let (conn, mut l) = dial(ext).await?;
    ldap3::drive!(conn);
    l.simple_bind(&ext.admin_dn, &ext.admin_password)
        .await
        .map_err(ldap_err)?
        .success()
        .map_err(|e| format!("bind as {}: {e}", ext.admin_dn))?;
    let (root, _) =
        l.search("", Scope::Base, "(objectClass=*)", vec!["defaultNamingContext"]).await.map_err(ldap_err)?.success().map_err(ldap_err)?;
    let theirs = root
        .into_iter()
        .next()
        .map(SearchEntry::construct)
        .and_then(|e| e.attrs.get("defaultNamingContext").and_then(|v| v.first().cloned()));
    if !theirs.as_deref().is_some_and(|b| b.eq_ignore_ascii_case(&base)) {
        return Err(format!(
            "the directory's domain is {theirs:?}; the testlab needs {base} (provision realm testlab.example, domain TESTLAB)"
        ));
    }

    // the domain policy
    let domain = model.get_dn(model.base_dn()).ok_or("the testlab domain object")?;
    let mods: Vec<Mod<Vec<u8>>> = POLICY_ATTRS
        .iter()
        .filter_map(|a| domain.values(a).first().map(|v| Mod::Replace(a.as_bytes().to_vec(), HashSet::from([v.to_vec()]))))
        .collect();
    l.modify(&base, mods).await.map_err(ldap_err)?.success().map_err(|e| format!("domain policy: {e}"))?;

    // fine-grained password policies an earlier scenario left
    let psos = format!("CN=Password Settings Container,CN=System,{base}");
    let ldap3::SearchResult(left, _) = l.search(&psos, Scope::OneLevel, "(objectClass=*)", vec!["1.1"]).await.map_err(ldap_err)?;
    for c in left.into_iter().map(SearchEntry::construct) {
        l.delete(&c.dn).await.map_err(ldap_err)?.success().map_err(|e| format!("delete {}: {e}", c.dn))?;
    }
    // the OUs, emptied and made again
    for (ou, desc) in testlab::OUS {
        let dn = format!("OU={ou},{base}");
        let ldap3::SearchResult(children, r) = l.search(&dn, Scope::OneLevel, "(objectClass=*)", vec!["1.1"]).await.map_err(ldap_err)?;
        if r.rc == 0 {
            for c in children.into_iter().map(SearchEntry::construct) {
                l.delete(&c.dn).await.map_err(ldap_err)?.success().map_err(|e| format!("delete {}: {e}", c.dn))?;
            }
        } else {
            let attrs = vec![
                (b"objectClass".to_vec(), HashSet::from([b"organizationalUnit".to_vec()])),
                (b"description".to_vec(), HashSet::from([desc.as_bytes().to_vec()])),
            ];
            l.add(&dn, attrs).await.map_err(ldap_err)?.success().map_err(|e| format!("add {dn}: {e}"))?;
        }
    }
    // the users, with the testlab's attributes, passwords and groups
    for u in users.iter().filter(|u| !u.dn.is_empty() && u.sam != testlab::ADMINISTRATOR) {
        let e = model.by_sam(&u.sam).ok_or("a seeded user")?;
        let mut attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![];
        for a in ["objectClass", "sAMAccountName", "userPrincipalName", "displayName", "givenName", "sn", "mail", "description"] {
            let vals: HashSet<Vec<u8>> =
                if a == "objectClass" { HashSet::from([b"user".to_vec()]) } else { e.values(a).iter().map(|v| v.to_vec()).collect() };
            if !vals.is_empty() {
                attrs.push((a.as_bytes().to_vec(), vals));
            }
        }
        // the same account where an earlier scenario left it (moved, or in a renamed OU)
        let filter = format!("(sAMAccountName={})", ldap3::ldap_escape(&u.sam));
        let ldap3::SearchResult(left, _) = l.search(&base, Scope::Subtree, &filter, vec!["1.1"]).await.map_err(ldap_err)?;
        for c in left.into_iter().map(SearchEntry::construct) {
            l.delete(&c.dn).await.map_err(ldap_err)?.success().map_err(|e| format!("delete {}: {e}", c.dn))?;
        }
        l.add(&u.dn, attrs).await.map_err(ldap_err)?.success().map_err(|err| format!("add {}: {err}", u.dn))?;
        let password = u.password.as_deref().unwrap_or_default();
        let mut mods = vec![Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([ad_ds::password::unicode_pwd(password)]))];
        let uac = e.int("userAccountControl").unwrap_or(512).to_string();
        mods.push(Mod::Replace(b"userAccountControl".to_vec(), HashSet::from([uac.into_bytes()])));
        l.modify(&u.dn, mods).await.map_err(ldap_err)?.success().map_err(|err| format!("password of {}: {err}", u.dn))?;
        for g in e.values("memberOf") {
            let g = String::from_utf8_lossy(g).to_string();
            let m = vec![Mod::Add(b"member".to_vec(), HashSet::from([u.dn.as_bytes().to_vec()]))];
            let r = l.modify(&g, m).await.map_err(ldap_err)?;
            // 20: already a member (a group the directory fills itself)
            if r.rc != 0 && r.rc != 20 {
                return Err(format!("{} into {g}: {}", u.dn, r.text));
            }
        }
    }
    grant_connector_rights(&mut l, &base).await?;
    if let Some(password) = provisioning_agent {
        seed_provisioning_agent(&mut l, &base, password).await?;
    }

    // what Connect would have imported: the synced users as the directory now holds them
    let mut objects = HashMap::new();
    for u in users.iter().filter(|u| u.synced) {
        let mut attrs = testlab::ON_PREM_ATTRS.to_vec();
        attrs.push("objectGUID");
        let (found, _) = l.search(&u.dn, Scope::Base, "(objectClass=*)", attrs).await.map_err(ldap_err)?.success().map_err(ldap_err)?;
        let e = found.into_iter().next().map(SearchEntry::construct).ok_or_else(|| format!("{} after seeding", u.dn))?;
        let value = |a: &str| {
            e.bin_attrs
                .get(a)
                .and_then(|v| v.first().cloned())
                .or_else(|| e.attrs.get(a).and_then(|v| v.first()).map(|v| v.clone().into_bytes()))
        };
        if anchor_attribute.eq_ignore_ascii_case("mS-DS-ConsistencyGuid") {
            // Connect writes the objectGUID back as the anchor of a user that has none
            let guid = value("objectGUID").ok_or_else(|| format!("objectGUID of {}", u.dn))?;
            let m = vec![Mod::Replace(b"mS-DS-ConsistencyGuid".to_vec(), HashSet::from([guid]))];
            l.modify(&u.dn, m).await.map_err(ldap_err)?.success().map_err(|err| format!("mS-DS-ConsistencyGuid of {}: {err}", u.dn))?;
        }
        // either anchor's value is the objectGUID (mS-DS-ConsistencyGuid: its copy)
        let o = OnPremObject::read(value, "objectGUID").ok_or_else(|| format!("{} has no objectGUID", u.dn))?;
        objects.insert(u.sam.clone(), o);
    }
    let _ = l.unbind().await;
    Ok(objects)
}

// ----- delegated rights, as ADUC's delegation wizard writes them -----

/// The rights Connect's wizard gives its AD DS connector account on the domain root —
/// writeback (Reset Password; write lockoutTime and pwdLastSet on users) and sync (the
/// replication rights; write mS-DS-ConsistencyGuid on users).
const CONNECTOR_RIGHTS: [Right; 6] = [
    Right::ResetPassword,
    Right::WriteLockoutTime,
    Right::WritePwdLastSet,
    Right::WriteConsistencyGuid,
    Right::ReplicatingDirectoryChanges,
    Right::ReplicatingDirectoryChangesAll,
];

/// Gives the connector account the rights the testlab grants it, on the domain root.
async fn grant_connector_rights(l: &mut ldap3::Ldap, base: &str) -> Result<(), String> {
    grant_rights(l, base, testlab::CONNECTOR, &CONNECTOR_RIGHTS).await
}

/// Cloud Sync's agent account, made again, with its default rights on the domain root. A
/// group managed service account's password is the DC's to make, and Samba 4.17 neither
/// computes one (msDS-ManagedPassword) nor lets an administrator set it: the agent runs there
/// as a computer account of the same name, whose password the lab sets (docs/fidelity.md).
async fn seed_provisioning_agent(l: &mut ldap3::Ldap, base: &str, password: &str) -> Result<(), String> {
    let name = writeback::CLOUD_SYNC_GMSA.trim_end_matches('$');
    let dn = format!("CN={name},{},{base}", testlab::MANAGED_SERVICE_ACCOUNTS);
    // 32: none left by an earlier seeding
    let r = l.delete(&dn).await.map_err(ldap_err)?;
    if r.rc != 0 && r.rc != 32 {
        return Err(format!("delete {dn}: {}", r.text));
    }
    let attrs = vec![
        (b"objectClass".to_vec(), HashSet::from([b"computer".to_vec()])),
        (b"sAMAccountName".to_vec(), HashSet::from([writeback::CLOUD_SYNC_GMSA.as_bytes().to_vec()])),
    ];
    l.add(&dn, attrs).await.map_err(ldap_err)?.success().map_err(|e| format!("add {dn}: {e}"))?;
    let uac = ad_ds::account::UF_WORKSTATION_TRUST_ACCOUNT.to_string();
    let mods = vec![
        Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([ad_ds::password::unicode_pwd(password)])),
        Mod::Replace(b"userAccountControl".to_vec(), HashSet::from([uac.into_bytes()])),
    ];
    l.modify(&dn, mods).await.map_err(ldap_err)?.success().map_err(|e| format!("password of {dn}: {e}"))?;
    let rights: Vec<Right> = Right::WRITEBACK.into_iter().chain(Right::HASH_SYNC).collect();
    grant_rights(l, base, writeback::CLOUD_SYNC_GMSA, &rights).await
}

/// Gives the account `sam` allow entries for `rights` on the domain root.
async fn grant_rights(l: &mut ldap3::Ldap, base: &str, sam: &str, rights: &[Right]) -> Result<(), String> {
    let filter = format!("(sAMAccountName={})", ldap3::ldap_escape(sam));
    let sid = ldap_dial::first_binary(l, base, Scope::Subtree, &filter, "objectSid", vec![]).await?.ok_or(format!("{sam}'s objectSid"))?;
    let sd = ldap_dial::first_binary(l, base, Scope::Base, "(objectClass=*)", "nTSecurityDescriptor", vec![ldap_dial::sd_flags_dacl()])
        .await?
        .ok_or("the domain root's nTSecurityDescriptor")?;
    let aces: Vec<Ace> = rights.iter().map(|r| security::ace_for(true, *r, sid.clone(), false, false)).collect();
    let new = security::dacl_with(&sd, &aces).map_err(|_| "a security descriptor the runner cannot read".to_string())?;
    let m = vec![Mod::Replace(b"nTSecurityDescriptor".to_vec(), HashSet::from([new]))];
    l.with_controls(vec![ldap_dial::sd_flags_dacl()])
        .modify(base, m)
        .await
        .map_err(ldap_err)?
        .success()
        .map_err(|e| format!("granting {sam}'s rights: {e}"))?;
    Ok(())
}
