//! The lab's other domains (`lab up --forests 2`, `--child-domain`): a second forest,
//! `fabrikam.example` (FABRIKAM), and a child domain in testlab's forest,
//! `child.testlab.example` (CHILD). Each has its own DCs (FDC1…, CDC1…: names unique in the
//! lab), its own users under `OU=Lab Users`, the testlab's domain policy, and Connect's AD
//! connector account for it with the wizard's writeback and sync rights, as "Add Directory"
//! leaves a forest. The child domain shares testlab's Configuration and Schema NCs: its DCs
//! name the forest root's, and both domains' crossRefs and DCs are in every DC's Partitions
//! and Sites.

use ad_ds::access::Right;
use ad_ds::directory::{ModOp, Modification, OpContext};
use ad_ds::domain::system;
use ad_ds::partitions::{Forest, ForestDomain};
use ad_ds::password::unicode_pwd;
use ad_ds::{Directory, DomainConfig};

use crate::testlab::{self, SeededUser};

/// A domain beside the testlab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtherDomain {
    /// `fabrikam.example`: a forest of its own.
    Fabrikam,
    /// `child.testlab.example`: a child domain of testlab's forest.
    Child,
}

struct Spec {
    dns_name: &'static str,
    netbios: &'static str,
    dc_prefix: &'static str,
    sid: [u32; 3],
    /// The connector account Connect's wizard made for the forest ("Create new AD account").
    connector: &'static str,
    users: &'static [(&'static str, &'static str, &'static str)],
}

const FABRIKAM: Spec = Spec {
    dns_name: "fabrikam.example",
    netbios: "FABRIKAM",
    dc_prefix: "FDC",
    sid: [1_507_311_022, 2_944_530_181, 605_218_774],
    connector: "MSOL_9b3e07d1c4a2",
    users: &[
        ("FUser1", "Maple-Ridge-52", "a user of the second forest, fabrikam.example"),
        ("FUser2", "Stone-Creek-64", "another user of the second forest"),
    ],
};

const CHILD: Spec = Spec {
    dns_name: "child.testlab.example",
    netbios: "CHILD",
    dc_prefix: "CDC",
    sid: [3_118_045_907, 774_502_336, 2_250_981_413],
    connector: "MSOL_4d81a6e0f7b5",
    users: &[("CUser1", "Cedar-Brook-63", "a user of testlab's child domain, child.testlab.example")],
};

/// The connector accounts' password, as the lab's environment (Connect's configuration) holds
/// it, as for the testlab's.
pub const CONNECTOR_PASSWORD: &str = "Connector-Forest-5521!";

impl OtherDomain {
    fn spec(self) -> &'static Spec {
        match self {
            OtherDomain::Fabrikam => &FABRIKAM,
            OtherDomain::Child => &CHILD,
        }
    }

    pub fn dns_name(self) -> &'static str {
        self.spec().dns_name
    }

    pub fn netbios(self) -> &'static str {
        self.spec().netbios
    }

    /// The forest root's DNS name.
    pub fn forest(self) -> &'static str {
        match self {
            OtherDomain::Fabrikam => FABRIKAM.dns_name,
            OtherDomain::Child => "testlab.example",
        }
    }

    /// Its `n`th DC's name (1-based).
    pub fn dc_name(self, n: usize) -> String {
        format!("{}{n}", self.spec().dc_prefix)
    }

    /// Whether the lab's tenant has its DNS name as a verified custom domain: fabrikam.example
    /// yes; child.testlab.example was never added (a subdomain of a verified domain is
    /// verified once added, Graph's domain-post-domains says; until then it is a suffix the
    /// tenant does not know, and its users sync onto the initial onmicrosoft.com domain).
    pub fn verified_in_tenant(self) -> bool {
        self == OtherDomain::Fabrikam
    }

    pub fn connector(self) -> &'static str {
        self.spec().connector
    }

    pub fn config(self, seed: u64) -> DomainConfig {
        let s = self.spec();
        DomainConfig {
            dns_name: s.dns_name.into(),
            netbios: s.netbios.into(),
            dc_name: self.dc_name(1),
            sid: s.sid,
            // its own GUIDs, reproducible from the lab's seed
            seed: seed ^ u64::from(s.sid[0]),
            admin_password: testlab::ADMIN_PASSWORD.into(),
        }
    }

    /// Its users as `lab up --json` lists them (not synced: Connect syncs the testlab).
    pub fn users(self) -> Vec<SeededUser> {
        let s = self.spec();
        let base = ad_ds::dn::Dn::from_dns_domain(s.dns_name);
        s.users
            .iter()
            .map(|(sam, password, about)| SeededUser {
                sam: sam.to_string(),
                upn: format!("{}@{}", sam.to_lowercase(), s.dns_name),
                dn: format!("CN={sam},{},{base}", testlab::SYNC_OU),
                password: Some(password.to_string()),
                about: about.to_string(),
                cloud: false,
                synced: false,
                agent: None,
            })
            .collect()
    }

    /// Its first DC's directory, seeded: the policy, `OU=Lab Users` and its users, the
    /// connector account with its rights, the other DCs' computer accounts (`dcs` in all).
    pub fn directory(self, seed: u64, clock: clock::Clock, forest: Option<Forest>, dcs: usize) -> Result<Directory, String> {
        let mut d = Directory::in_forest(self.config(seed), clock, forest);
        let base = d.base_dn().to_string();
        let (sys, tls) = (system(), OpContext::TLS);
        let policy = testlab::POLICY
            .iter()
            .map(|(a, v)| Modification { op: ModOp::Replace, attr: (*a).into(), values: vec![v.as_bytes().to_vec()] })
            .collect();
        d.modify(&sys, &base, policy, tls).map_err(|e| e.to_string())?;
        let ou = format!("{},{base}", testlab::SYNC_OU);
        d.add(&sys, &ou, vec![("objectClass".into(), vec![b"organizationalUnit".to_vec()])], tls).map_err(|e| e.to_string())?;
        for u in self.users() {
            let attrs = vec![
                ("objectClass".to_string(), vec![b"user".to_vec()]),
                ("sAMAccountName".into(), vec![u.sam.as_bytes().to_vec()]),
                ("userPrincipalName".into(), vec![u.upn.as_bytes().to_vec()]),
                ("displayName".into(), vec![u.sam.as_bytes().to_vec()]),
                ("description".into(), vec![u.about.as_bytes().to_vec()]),
                ("unicodePwd".into(), vec![unicode_pwd(u.password.as_deref().unwrap_or_default())]),
                ("userAccountControl".into(), vec![b"512".to_vec()]),
            ];
            d.add(&sys, &u.dn, attrs, tls).map_err(|e| format!("{}: {e}", u.sam))?;
        }
        let connector = format!("CN={},CN=Users,{base}", self.connector());
        let attrs = vec![
            ("objectClass".to_string(), vec![b"user".to_vec()]),
            ("sAMAccountName".into(), vec![self.connector().as_bytes().to_vec()]),
            ("description".into(), vec![b"Account created by Microsoft Azure Active Directory Connect".to_vec()]),
            ("unicodePwd".into(), vec![unicode_pwd(CONNECTOR_PASSWORD)]),
            // DONT_EXPIRE_PASSWORD, as the wizard makes it
            ("userAccountControl".into(), vec![b"66048".to_vec()]),
        ];
        d.add(&sys, &connector, attrs, tls).map_err(|e| format!("{}: {e}", self.connector()))?;
        for right in Right::WRITEBACK.into_iter().chain(Right::SYNC) {
            d.grant(Some(&connector), right, &base).map_err(|e| e.to_string())?;
        }
        for i in 2..=dcs {
            ad_ds::domain::add_domain_controller(&mut d, &self.dc_name(i)).map_err(|e| e.to_string())?;
        }
        Ok(d)
    }
}

/// The testlab's forest with a child domain: both domains, every DC of both.
pub fn testlab_forest(dcs: usize) -> Forest {
    let mut all: Vec<(String, String)> = (1..=dcs).map(|i| (format!("DC{i}"), "testlab.example".to_string())).collect();
    all.extend((1..=dcs).map(|i| (OtherDomain::Child.dc_name(i), CHILD.dns_name.to_string())));
    Forest {
        root_dns: "testlab.example".into(),
        domains: vec![
            ForestDomain { dns_name: "testlab.example".into(), netbios: "TESTLAB".into() },
            ForestDomain { dns_name: CHILD.dns_name.into(), netbios: CHILD.netbios.into() },
        ],
        dcs: all,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_domain_is_seeded_with_its_users_connector_and_dcs() {
        let clock = clock::Clock::frozen(clock::Clock::lab_epoch());
        let mut d = OtherDomain::Fabrikam.directory(7, clock.clone(), None, 2).unwrap();
        assert_eq!(d.base_dn().to_string(), "DC=fabrikam,DC=example");
        assert!(d.bind("fuser1@fabrikam.example", "Maple-Ridge-52").is_ok());
        assert!(d.by_sam("FDC2$").is_some(), "the second DC's account");
        let connector = format!("CN={},CN=Users,DC=fabrikam,DC=example", OtherDomain::Fabrikam.connector());
        assert!(d.is_granted(Some(&connector), Right::ResetPassword, "DC=fabrikam,DC=example").unwrap());
        assert_ne!(d.domain_sid(), Directory::new(crate::testlab::domain(7), clock.clone()).domain_sid());
        let child = OtherDomain::Child.directory(7, clock, Some(testlab_forest(1)), 1).unwrap();
        assert_eq!(child.schema_dn(), "CN=Schema,CN=Configuration,DC=testlab,DC=example", "the forest root's schema");
        let user = child.by_sam("CUser1").unwrap();
        assert!(user.first_str("objectCategory").unwrap().ends_with(",CN=Schema,CN=Configuration,DC=testlab,DC=example"));
    }
}
