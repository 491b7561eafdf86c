//! The two entries a client reads to find its way: the rootDSE, shaped like a Windows Server
//! 2016 domain controller's and listing only what this lab really offers, and the
//! subschema entry it names (`CN=Aggregate` in the schema container), AD's schema in
//! RFC 4512's form made from the lab's own schema table, so what clients read and what the
//! lab does cannot drift.

use crate::directory::{Directory, Rendered, Selection};
use crate::schema;
use crate::session::{OID_STARTTLS, OID_WHOAMI, SUPPORTED_CONTROLS};

/// An entry made on the fly. `named_only` attributes are returned only when asked for by
/// name (neither `*` nor `+` brings them, as on AD and Samba).
pub struct RootDse {
    pub dn: String,
    pub attrs: Vec<(&'static str, Vec<Vec<u8>>)>,
    pub named_only: &'static [&'static str],
}

pub fn entry(d: &Directory, tls_available: bool, _encrypted: bool) -> RootDse {
    let base = d.base_dn().to_string();
    let root = d.forest_root().to_string();
    let cfg = d.config();
    let config_nc = format!("CN=Configuration,{root}");
    let server = format!("CN={},CN=Servers,CN=Default-First-Site-Name,CN=Sites,{config_nc}", cfg.dc_name);
    let host = format!("{}.{}", cfg.dc_name.to_lowercase(), cfg.dns_name);
    let s = |v: &str| vec![v.as_bytes().to_vec()];
    let many = |v: &[&str]| v.iter().map(|x| x.as_bytes().to_vec()).collect::<Vec<_>>();
    let mut ext = vec![OID_WHOAMI];
    if tls_available {
        ext.insert(0, OID_STARTTLS);
    }
    let attrs = vec![
        ("currentTime", s(&clock::generalized_time(d.clock().now()))),
        ("subschemaSubentry", s(&subschema_dn(d))),
        ("dsServiceName", s(&format!("CN=NTDS Settings,{server}"))),
        // the domain's, then those crate::partitions holds, in a Windows DC's order
        ("namingContexts", {
            let n = crate::partitions::names(&d.forest_root());
            let domain_dns = format!("DC=DomainDnsZones,{base}");
            many(&[&base, &n.config, &n.schema, &domain_dns, &n.forest_dns])
        }),
        ("defaultNamingContext", s(&base)),
        ("rootDomainNamingContext", s(&root)),
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
    ];
    RootDse { dn: String::new(), attrs, named_only: &[] }
}

/// The DN the rootDSE's subschemaSubentry names.
pub fn subschema_dn(d: &Directory) -> String {
    format!("CN=Aggregate,{}", d.schema_dn())
}

/// The subschema entry: every attribute and class of AD's schema (Microsoft's files, read at
/// build time: [`crate::ad_schema`]), with AD's attributeID, governsID and LDAP syntax OIDs,
/// so schema-aware clients (Python ldap3's `get_info=ALL`, Apache Directory Studio) accept
/// any AD attribute and show objectGUID as a GUID and pwdLastSet as a number.
pub fn subschema(d: &Directory) -> RootDse {
    let s = |v: &str| vec![v.as_bytes().to_vec()];
    // the schema is as old as the domain (the lab's schema never changes)
    let created = d.get_dn(d.base_dn()).and_then(|e| e.values("whenCreated").first().map(|v| v.to_vec())).unwrap_or_default();
    // Microsoft's whole schema, and the lab's attributes it lacks (Exchange's extensionAttributes)
    let all = crate::ad_schema::descriptions();
    let mut types = all.attribute_types.clone();
    types.extend(schema::attributes().iter().filter(|a| crate::ad_schema::find(a.name).is_none()).map(|a| a.description().into_bytes()));
    let classes = all.object_classes.clone();
    let rules = all.content_rules.clone();
    let attrs = vec![
        ("objectClass", vec![b"top".to_vec(), b"subSchema".to_vec()]),
        ("cn", s("Aggregate")),
        ("instanceType", s("4")),
        ("whenCreated", vec![created.clone()]),
        ("whenChanged", vec![created.clone()]),
        ("showInAdvancedViewOnly", s("TRUE")),
        ("name", s("Aggregate")),
        ("systemFlags", s("134217728")),
        ("objectCategory", s(&format!("CN=SubSchema,{}", d.schema_dn()))),
        ("distinguishedName", s(&subschema_dn(d))),
        ("attributeTypes", types),
        ("objectClasses", classes),
        ("dITContentRules", rules),
        ("createTimeStamp", vec![created.clone()]),
        ("modifyTimeStamp", vec![created]),
    ];
    let named_only = &["attributeTypes", "objectClasses", "dITContentRules", "createTimeStamp", "modifyTimeStamp"];
    RootDse { dn: subschema_dn(d), attrs, named_only }
}

pub fn render(root: &RootDse, sel: &Selection) -> Rendered {
    let all = sel.all_user || sel.all_operational;
    let attrs = root
        .attrs
        .iter()
        .filter(|(n, v)| {
            let named = sel.named.iter().any(|x| x.eq_ignore_ascii_case(n));
            !v.is_empty() && (named || all && !root.named_only.contains(n))
        })
        .map(|(n, v)| (n.to_string(), if sel.types_only { vec![] } else { v.clone() }))
        .collect();
    (root.dn.clone(), attrs)
}

pub struct Subject<'a>(pub &'a RootDse);

impl crate::filter::Subject for Subject<'_> {
    fn values_of(&self, attr: &str) -> std::borrow::Cow<'_, [crate::entry::Value]> {
        let found = self.0.attrs.iter().find(|(n, _)| n.eq_ignore_ascii_case(attr));
        found.map(|(_, v)| v.iter().map(|v| v.as_slice().into()).collect()).unwrap_or_default()
    }
    fn in_chain(&self, _: &str, _: &str) -> bool {
        false
    }
}
