//! The rootDSE: what a client reads before anything else, shaped like a Windows Server
//! 2016 domain controller's, listing only what this lab really offers.

use crate::directory::{Directory, Rendered, Selection};
use crate::session::{OID_STARTTLS, OID_WHOAMI, SUPPORTED_CONTROLS};

pub struct RootDse(pub Vec<(&'static str, Vec<Vec<u8>>)>);

pub fn entry(d: &Directory, tls_available: bool, _encrypted: bool) -> RootDse {
    let base = d.base_dn().to_string();
    let cfg = d.config();
    let config_nc = format!("CN=Configuration,{base}");
    let server = format!("CN={},CN=Servers,CN=Default-First-Site-Name,CN=Sites,{config_nc}", cfg.dc_name);
    let host = format!("{}.{}", cfg.dc_name.to_lowercase(), cfg.dns_name);
    let s = |v: &str| vec![v.as_bytes().to_vec()];
    let many = |v: &[&str]| v.iter().map(|x| x.as_bytes().to_vec()).collect::<Vec<_>>();
    let mut ext = vec![OID_WHOAMI];
    if tls_available {
        ext.insert(0, OID_STARTTLS);
    }
    RootDse(vec![
        ("currentTime", s(&clock::generalized_time(d.clock().now()))),
        ("subschemaSubentry", s(&format!("CN=Aggregate,{}", d.schema_dn()))),
        ("dsServiceName", s(&format!("CN=NTDS Settings,{server}"))),
        // Only the domain naming context is served; AD also lists Configuration, Schema
        // and the DNS zones, which the lab does not hold (docs/fidelity.md).
        ("namingContexts", s(&base)),
        ("defaultNamingContext", s(&base)),
        ("rootDomainNamingContext", s(&base)),
        ("configurationNamingContext", s(&config_nc)),
        ("schemaNamingContext", s(&d.schema_dn())),
        ("serverName", s(&server)),
        ("supportedControl", many(SUPPORTED_CONTROLS)),
        ("supportedLDAPVersion", many(&["3", "2"])),
        ("supportedLDAPPolicies", many(&["MaxPageSize", "MaxResultSetSize", "MaxQueryDuration"])),
        ("highestCommittedUSN", s(&d.highest_usn().to_string())),
        ("supportedSASLMechanisms", vec![]),
        ("dnsHostName", s(&host)),
        ("ldapServiceName", s(&format!("{}:{}$@{}", cfg.dns_name, cfg.dc_name.to_lowercase(), cfg.dns_name.to_uppercase()))),
        (
            "supportedCapabilities",
            many(&[
                "1.2.840.113556.1.4.800",
                "1.2.840.113556.1.4.1670",
                "1.2.840.113556.1.4.1791",
                "1.2.840.113556.1.4.1935",
                "1.2.840.113556.1.4.2080",
                "1.2.840.113556.1.4.2237",
            ]),
        ),
        ("supportedExtension", many(&ext)),
        ("isSynchronized", s("TRUE")),
        ("isGlobalCatalogReady", s("TRUE")),
        ("domainFunctionality", s("7")),
        ("forestFunctionality", s("7")),
        ("domainControllerFunctionality", s("7")),
    ])
}

pub fn render(root: &RootDse, sel: &Selection) -> Rendered {
    let all = sel.all_user || sel.all_operational;
    let attrs = root
        .0
        .iter()
        .filter(|(n, v)| !v.is_empty() && (all || sel.named.iter().any(|x| x.eq_ignore_ascii_case(n))))
        .map(|(n, v)| (n.to_string(), if sel.types_only { vec![] } else { v.clone() }))
        .collect();
    (String::new(), attrs)
}

pub struct Subject<'a>(pub &'a RootDse);

impl crate::filter::Subject for Subject<'_> {
    fn values_of(&self, attr: &str) -> std::borrow::Cow<'_, [Vec<u8>]> {
        let found = self.0.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(attr));
        found.map(|(_, v)| v.as_slice()).unwrap_or_default().into()
    }
    fn in_chain(&self, _: &str, _: &str) -> bool {
        false
    }
}
