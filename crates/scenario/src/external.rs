//! Scenarios against an external directory (a real Samba AD DC, a Windows DC): which
//! scenarios can run there, and the testlab's OUs, users and domain policy seeded into it
//! over LDAP, as an administrator would, before each one.
//!
//! The directory must hold the testlab's domain (`testlab.example`, NetBIOS `TESTLAB`), so
//! that the scenarios' names and DNs mean the same objects. Only the on-premises part runs:
//! a scenario that needs the tenant, the engine, the lab clock or delegated rights is
//! skipped with the reason.

use std::collections::HashSet;
use std::sync::Arc;

use ldap3::{LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};

use crate::model::{Action, Scenario};

/// How to reach the directory: LDAPS, an administrator, and the CA its certificate chains to.
#[derive(Clone, Debug)]
pub struct External {
    /// `ldaps://HOST:PORT`.
    pub ldaps: String,
    pub admin_dn: String,
    pub admin_password: String,
    pub ca_pem: Vec<u8>,
}

/// Why a scenario cannot run against an external directory (None: it can).
pub fn ineligible(s: &Scenario) -> Option<String> {
    if s.lab.as_deref().is_some_and(|l| l != "testlab") {
        return Some("starts from its own LDIF (an external directory holds the testlab)".into());
    }
    if s.presynced == Some(false) || s.source_anchor.is_some() {
        return Some("sets up the sync side (the engine runs against the built-in directory only)".into());
    }
    let t = &s.given.tenant;
    if t.sspr.is_some() || t.writeback.is_some() || t.risk_policy.is_some() || t.password_rules.is_some() {
        return Some("sets tenant settings (on-premises steps only run against an external directory)".into());
    }
    for (i, step) in s.steps.iter().enumerate() {
        let a = &step.value.action;
        let name = a.name();
        let why = match a {
            Action::ClockAdvance(_) => Some("advances the lab clock, which an external directory does not follow"),
            _ if name.starts_with("ldap.") || name == "expect.entry" => None,
            _ => Some("needs the tenant or the engine"),
        };
        if let Some(why) = why {
            return Some(format!("step {} `{name}` {why}", i + 1));
        }
        if a.actor().is_some_and(|who| who.contains(labkit::testlab::CONNECTOR)) {
            return Some(format!(
                "step {} `{name}` acts as the connector account, whose delegated rights the runner does not grant on an external directory",
                i + 1
            ));
        }
    }
    None
}

fn tls(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.map_err(|e| format!("CA: {e}"))?).map_err(|e| format!("CA: {e}"))?;
    }
    Ok(Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()))
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

/// Seeds the testlab into the external directory (replacing what an earlier seeding left)
/// and answers the LabInfo scenarios run with: its endpoints, the seeded users.
pub async fn seed(ext: &External) -> Result<labkit::LabInfo, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // the testlab as the built-in directory holds it: the source of every value seeded
    let mut model = ad_ds::Directory::new(labkit::testlab::domain(1), clock::Clock::frozen(clock::Clock::lab_epoch()));
    let users = labkit::testlab::seed(&mut model);
    let base = model.base_dn().to_string();

    let settings = LdapConnSettings::new().set_config(tls(&ext.ca_pem)?);
    let (conn, mut l) = LdapConnAsync::with_settings(settings, &ext.ldaps).await.map_err(|e| format!("{}: {e}", ext.ldaps))?;
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
            "the directory's domain is {theirs:?}; scenarios need {base} (provision realm testlab.example, domain TESTLAB)"
        ));
    }

    // the domain policy
    let domain = model.get_dn(model.base_dn()).ok_or("the testlab domain object")?;
    let mods: Vec<Mod<Vec<u8>>> = POLICY_ATTRS
        .iter()
        .filter_map(|a| domain.values(a).first().map(|v| Mod::Replace(a.as_bytes().to_vec(), HashSet::from([v.clone()]))))
        .collect();
    l.modify(&base, mods).await.map_err(ldap_err)?.success().map_err(|e| format!("domain policy: {e}"))?;

    // the OUs, emptied and made again
    for (ou, desc) in labkit::testlab::OUS {
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
    for u in users.iter().filter(|u| u.sam != "Administrator") {
        let e = model.by_sam(&u.sam).ok_or("a seeded user")?;
        let mut attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![];
        for a in ["objectClass", "sAMAccountName", "userPrincipalName", "displayName", "givenName", "sn", "mail", "description"] {
            let vals: HashSet<Vec<u8>> =
                if a == "objectClass" { HashSet::from([b"user".to_vec()]) } else { e.values(a).iter().cloned().collect() };
            if !vals.is_empty() {
                attrs.push((a.as_bytes().to_vec(), vals));
            }
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
    let _ = l.unbind().await;

    let url = ext.ldaps.trim_end_matches('/');
    let host = url.trim_start_matches("ldaps://").rsplit_once(':').map(|(h, _)| h).unwrap_or("localhost");
    let cfg = model.config();
    Ok(labkit::LabInfo {
        adds: labkit::AddsInfo {
            ldap: format!("ldap://{host}:389"),
            ldaps: url.to_string(),
            base_dn: base,
            domain: cfg.dns_name.clone(),
            netbios: cfg.netbios.clone(),
            admin_dn: ext.admin_dn.clone(),
            admin_password: ext.admin_password.clone(),
            ca_cert: std::path::PathBuf::new(),
        },
        tenant: labkit::TenantInfo::none(),
        users,
        engine: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(steps: &str) -> Scenario {
        crate::model::parse("t.yaml", &format!("name: t\nabout: t\nsteps:\n{steps}")).unwrap()
    }

    #[test]
    fn only_on_premises_steps_without_the_clock_or_the_connector_run_externally() {
        assert_eq!(
            ineligible(&scenario(
                "  - ldap.bind: { user: 'TESTLAB\\User1', password: x }\n  - expect.entry: { entry: User1, attrs: {} }\n"
            )),
            None
        );
        let why = ineligible(&scenario("  - ldap.bind: { user: u, password: x }\n  - clock.advance: 1d\n")).unwrap();
        assert!(why.starts_with("step 2 `clock.advance`"), "{why}");
        let why = ineligible(&scenario("  - sspr.reset: { user: u, new_password: x }\n")).unwrap();
        assert!(why.contains("tenant or the engine"), "{why}");
        let why = ineligible(&scenario("  - ldap.unlock: { user: User4, as: 'TESTLAB\\MSOL_5f2a9c31d7e8' }\n")).unwrap();
        assert!(why.contains("delegated rights"), "{why}");
    }
}
