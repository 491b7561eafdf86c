//! The naming contexts a DC holds beside its domain's: the Configuration NC (Partitions with
//! a crossRef per naming context — where tools read a domain's NetBIOS name —, Sites with
//! this DC's server and NTDS Settings objects, Services), the Schema NC (an attributeSchema
//! or classSchema object per definition of Microsoft's schema, and the subschema entry), and
//! the DNS application partitions. Read-only, made on first use from the domain's
//! configuration, the same on every read.
//!
//! Also which of them a search of the domain NC meets (continuation references, RFC 4511
//! 4.5.3): AD places Configuration and the DNS partitions under the domain's name but holds
//! them apart, so a subtree search at the domain's root returns them as references.

use crate::directory::{Directory, Rendered, Selection};
use crate::dn::{Dn, DnKey};
use crate::error::AdError;
use crate::filter::Filter;
use crate::rootdse::RootDse;

/// The scheme of a referral: Windows writes `ldap://` whatever the connection (Samba writes
/// the connection's own: docs/fidelity.md).
pub const REFERENCE_SCHEME: &str = "ldap";

/// A search's scope within these naming contexts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Base,
    OneLevel,
    Subtree,
}

pub struct Partitions {
    entries: Vec<(DnKey, RootDse)>,
    layout: Layout,
}

/// Where the naming contexts are, without their objects: what every search of the domain
/// asks (is the base in another NC? which references end it?), cheap to make — the objects
/// ([`Partitions`], 1,769 of them) are built only for a search based in one of these NCs.
pub struct Layout {
    /// The naming contexts' heads: Configuration, Schema, DomainDnsZones, ForestDnsZones.
    heads: Vec<DnKey>,
    /// Each NC a search may be referred to (its head, its DN, the host a reference names),
    /// in Windows' order: ForestDnsZones, DomainDnsZones, Configuration, Schema.
    referrals: Vec<(DnKey, String, String)>,
}

/// The NCs' DNs for a domain (the forest's root domain: it holds Configuration, Schema and
/// ForestDnsZones).
pub struct Names {
    pub config: String,
    pub schema: String,
    pub domain_dns: String,
    pub forest_dns: String,
}

pub fn names(base: &Dn) -> Names {
    Names {
        config: format!("CN=Configuration,{base}"),
        schema: format!("CN=Schema,CN=Configuration,{base}"),
        domain_dns: format!("DC=DomainDnsZones,{base}"),
        forest_dns: format!("DC=ForestDnsZones,{base}"),
    }
}

/// The forest a DC's domain belongs to, as its Configuration NC describes it: the forest
/// root (whose name the Configuration, Schema and ForestDnsZones NCs are under), every domain
/// and every DC. A lab with one domain has the default: that domain alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forest {
    /// The forest root domain's DNS name.
    pub root_dns: String,
    pub domains: Vec<ForestDomain>,
    /// Every DC of the forest: its name and its domain's DNS name.
    pub dcs: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForestDomain {
    pub dns_name: String,
    pub netbios: String,
}

impl Forest {
    /// A forest of one domain: this DC's, its DCs the computer accounts under OU=Domain
    /// Controllers.
    pub fn single(d: &Directory) -> Forest {
        let cfg = d.config();
        let dcs_ou = format!("OU=Domain Controllers,{}", d.base_dn());
        let mut dcs: Vec<String> = d
            .unordered_entries()
            .filter(|e| e.is_class("computer") && e.dn.parent().is_some_and(|p| p.to_string().eq_ignore_ascii_case(&dcs_ou)))
            .filter_map(|e| e.dn.rdns.first().map(|r| r.value.clone()))
            .collect();
        if !dcs.iter().any(|x| x.eq_ignore_ascii_case(&cfg.dc_name)) {
            dcs.push(cfg.dc_name.clone());
        }
        dcs.sort();
        Forest {
            root_dns: cfg.dns_name.clone(),
            domains: vec![ForestDomain { dns_name: cfg.dns_name.clone(), netbios: cfg.netbios.clone() }],
            dcs: dcs.into_iter().map(|n| (n, cfg.dns_name.clone())).collect(),
        }
    }
}

/// A DC's forest and its NCs' DNs: Configuration, Schema and ForestDnsZones are under the
/// forest root's name; each domain has its own DomainDnsZones.
fn forest_names(d: &Directory) -> (Forest, Names) {
    let forest = d.forest().cloned().unwrap_or_else(|| Forest::single(d));
    let root = Dn::from_dns_domain(&forest.root_dns);
    let n = Names { domain_dns: format!("DC=DomainDnsZones,{}", d.base_dn()), ..names(&root) };
    (forest, n)
}

impl Partitions {
    pub fn build(d: &Directory) -> Partitions {
        let cfg = d.config();
        let (forest, n) = forest_names(d);
        let created = d.get_dn(d.base_dn()).and_then(|e| e.values("whenCreated").first().map(|v| v.to_vec())).unwrap_or_default();
        let usn = d.get_dn(d.base_dn()).and_then(|e| e.values("uSNCreated").first().map(|v| v.to_vec())).unwrap_or_else(|| b"1".to_vec());
        let site = format!("CN=Default-First-Site-Name,CN=Sites,{}", n.config);
        // the operations masters' holder: the forest root's first DC
        let first = forest.dcs.iter().find(|(_, dom)| dom.eq_ignore_ascii_case(&forest.root_dns)).map(|(n, _)| n.clone());
        let ntds = format!("CN=NTDS Settings,CN={},CN=Servers,{site}", first.unwrap_or_else(|| cfg.dc_name.clone()));
        let seed = cfg.seed;
        let mut out = Builder { entries: vec![], created, usn, seed, schema: n.schema.clone() };

        let s = |v: &str| vec![v.as_bytes().to_vec()];
        // Configuration
        out.add(&n.config, "configuration", "Configuration", 13, vec![("subRefs", s(&n.schema))]);
        let partitions = format!("CN=Partitions,{}", n.config);
        out.add(
            &partitions,
            "crossRefContainer",
            "Cross-Ref-Container",
            4,
            vec![("msDS-Behavior-Version", s("7")), ("fSMORoleOwner", s(&ntds)), ("systemFlags", s("-2147483648"))],
        );
        let cross_ref = |nc: &str, dns_root: &str, flags: &str, netbios: Option<&str>| {
            let mut a = vec![("nCName", s(nc)), ("dnsRoot", s(dns_root)), ("systemFlags", s(flags))];
            if let Some(nb) = netbios {
                a.push(("nETBIOSName", s(nb)));
            }
            a
        };
        // a crossRef per domain of the forest (FLAG_CR_NTDS_NC | FLAG_CR_NTDS_DOMAIN)
        for dom in &forest.domains {
            let nc = Dn::from_dns_domain(&dom.dns_name).to_string();
            out.add(
                &format!("CN={},{partitions}", dom.netbios),
                "crossRef",
                "Cross-Ref",
                4,
                cross_ref(&nc, &dom.dns_name, "3", Some(&dom.netbios)),
            );
        }
        out.add(
            &format!("CN=Enterprise Configuration,{partitions}"),
            "crossRef",
            "Cross-Ref",
            4,
            cross_ref(&n.config, &forest.root_dns, "1", None),
        );
        out.add(
            &format!("CN=Enterprise Schema,{partitions}"),
            "crossRef",
            "Cross-Ref",
            4,
            cross_ref(&n.schema, &forest.root_dns, "1", None),
        );
        // the DNS application partitions (FLAG_CR_NTDS_NC | FLAG_CR_NTDS_NOT_GC_REPLICATED), each
        // crossRef named by a GUID: the forest's one and every domain's
        let mut dns_ncs = vec![(n.forest_dns.clone(), format!("ForestDnsZones.{}", forest.root_dns))];
        for dom in &forest.domains {
            let nc = format!("DC=DomainDnsZones,{}", Dn::from_dns_domain(&dom.dns_name));
            dns_ncs.push((nc, format!("DomainDnsZones.{}", dom.dns_name)));
        }
        for (nc, dns_root) in &dns_ncs {
            let mut a = cross_ref(nc, dns_root, "5", None);
            a.push(("msDS-NC-Replica-Locations", s(&ntds)));
            out.add(&format!("CN={},{partitions}", guid_text(&derived_guid(seed, dns_root))), "crossRef", "Cross-Ref", 4, a);
        }
        // Sites: every DC of the forest, a server object and its NTDS Settings each
        let sites = format!("CN=Sites,{}", n.config);
        out.add(&sites, "sitesContainer", "Sites-Container", 4, vec![("systemFlags", s("-2113929216"))]);
        out.add(&site, "site", "Site", 4, vec![("systemFlags", s("33554432"))]);
        out.add(&format!("CN=Servers,{site}"), "serversContainer", "Servers-Container", 4, vec![("systemFlags", s("33554432"))]);
        for (name, dom) in &forest.dcs {
            let dom_base = Dn::from_dns_domain(dom).to_string();
            let server = format!("CN={name},CN=Servers,{site}");
            out.add(
                &server,
                "server",
                "Server",
                4,
                vec![
                    ("dNSHostName", s(&format!("{}.{dom}", name.to_lowercase()))),
                    ("serverReference", s(&format!("CN={name},OU=Domain Controllers,{dom_base}"))),
                    ("systemFlags", s("1375731712")),
                ],
            );
            let dom_dns_nc = format!("DC=DomainDnsZones,{dom_base}");
            out.add(
                &format!("CN=NTDS Settings,{server}"),
                "nTDSDSA",
                "NTDS-DSA",
                4,
                vec![
                    ("options", s("1")), // NTDSDSA_OPT_IS_GC
                    ("invocationId", vec![derived_guid(seed, &format!("invocation {name}.{dom}")).to_vec()]),
                    ("dMDLocation", s(&n.schema)),
                    ("hasMasterNCs", vec![n.schema.clone().into_bytes(), n.config.clone().into_bytes(), dom_base.clone().into_bytes()]),
                    (
                        "msDS-hasMasterNCs",
                        vec![
                            n.forest_dns.clone().into_bytes(),
                            dom_dns_nc.into_bytes(),
                            n.schema.clone().into_bytes(),
                            n.config.clone().into_bytes(),
                            dom_base.clone().into_bytes(),
                        ],
                    ),
                    ("msDS-HasDomainNCs", s(&dom_base)),
                    ("msDS-Behavior-Version", s("7")),
                    ("systemFlags", s("33554432")),
                ],
            );
        }
        // Services: where tools read the tombstone lifetime and dSHeuristics
        let services = format!("CN=Services,{}", n.config);
        out.add(&services, "container", "Container", 4, vec![("systemFlags", s("-2147483648"))]);
        out.add(&format!("CN=Windows NT,{services}"), "container", "Container", 4, vec![]);
        out.add(
            &format!("CN=Directory Service,CN=Windows NT,{services}"),
            "nTDSService",
            "NTDS-Service",
            4,
            vec![("tombstoneLifetime", s("180"))],
        );

        // Schema: the head, then one object per definition
        out.add(&n.schema, "dMD", "DMD", 13, vec![("objectVersion", s("87")), ("fSMORoleOwner", s(&ntds))]);
        for o in crate::ad_schema::objects() {
            out.schema_object(o);
        }
        let mut aggregate = crate::rootdse::subschema(d);
        aggregate.dn = crate::rootdse::subschema_dn(d);
        out.entries.push(aggregate);

        // The DNS application partitions this DC holds: its domain's and the forest's
        for (nc, zone) in [(&n.domain_dns, cfg.dns_name.clone()), (&n.forest_dns, format!("_msdcs.{}", forest.root_dns))] {
            out.add(nc, "domainDNS", "Domain-DNS", 5, vec![("dc", s(nc.split(',').next().unwrap_or("").trim_start_matches("DC=")))]);
            out.add(
                &format!("CN=Infrastructure,{nc}"),
                "infrastructureUpdate",
                "Infrastructure-Update",
                4,
                vec![("fSMORoleOwner", s(&ntds))],
            );
            let mdns = format!("CN=MicrosoftDNS,{nc}");
            out.add(&mdns, "container", "Container", 4, vec![]);
            out.add(&format!("DC={zone},{mdns}"), "dnsZone", "Dns-Zone", 4, vec![("dc", s(&zone))]);
        }

        let mut entries: Vec<(DnKey, RootDse)> =
            out.entries.into_iter().filter_map(|e| Dn::parse(&e.dn).ok().map(|dn| (dn.key(), e))).collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Partitions { entries, layout: Layout::build(d) }
    }

    /// True when `base` names one of these naming contexts or something under one.
    pub fn holds(&self, base: &str) -> bool {
        self.layout.holds(base)
    }

    /// The entries a search finds, by position (a paged search keeps positions).
    pub fn search(&self, base: &str, scope: Scope, filter: &Filter) -> Result<Vec<usize>, AdError> {
        let key = Dn::parse(base).map_err(|_| AdError::invalid_dn(base))?.key();
        let Ok(at) = self.entries.binary_search_by(|(k, _)| k.cmp(&key)) else {
            let best = self.entries.iter().rev().find(|(k, _)| key.is_below(k)).map(|(_, e)| e.dn.clone()).unwrap_or_default();
            return Err(AdError::no_such_object(&best));
        };
        // an NC's search stays in that NC: the Schema NC is not part of Configuration's subtree
        let nc_below = |k: &DnKey| self.layout.heads.iter().any(|h| h != &key && h.is_below(&key) && (k == h || k.is_below(h)));
        let found = self.entries.iter().enumerate().skip(at).take_while(|(_, (k, _))| k == &key || k.is_below(&key));
        Ok(found
            .filter(|(_, (k, _))| match scope {
                Scope::Base => k == &key,
                Scope::OneLevel => k.is_below(&key) && k.depth() == key.depth() + 1,
                Scope::Subtree => true,
            })
            .filter(|(_, (k, _))| !nc_below(k))
            .filter(|(_, (_, e))| filter.matches(&crate::rootdse::Subject(e)))
            .map(|(i, _)| i)
            .collect())
    }

    pub fn render(&self, at: usize, sel: &Selection) -> Option<Rendered> {
        self.entries.get(at).map(|(_, e)| crate::rootdse::render(e, sel))
    }
}

impl Layout {
    pub fn build(d: &Directory) -> Layout {
        let cfg = d.config();
        let (forest, n) = forest_names(d);
        let key = |dn: &str| Dn::parse(dn).map(|d| d.key()).ok();
        let heads = [&n.config, &n.schema, &n.domain_dns, &n.forest_dns].iter().filter_map(|h| key(h)).collect();
        // what a search may be referred to: these NCs, and the forest's other domains (a
        // child domain's NC is under its parent's name)
        let mut referrals: Vec<(DnKey, String, String)> = [
            (&n.forest_dns, format!("ForestDnsZones.{}", forest.root_dns)),
            (&n.domain_dns, format!("DomainDnsZones.{}", cfg.dns_name)),
            (&n.config, forest.root_dns.clone()),
            (&n.schema, forest.root_dns.clone()),
        ]
        .into_iter()
        .filter_map(|(nc, host)| Some((key(nc)?, nc.clone(), host)))
        .collect();
        for dom in forest.domains.iter().filter(|dom| !dom.dns_name.eq_ignore_ascii_case(&cfg.dns_name)) {
            let nc = Dn::from_dns_domain(&dom.dns_name).to_string();
            if let Some(k) = key(&nc) {
                referrals.push((k, nc, dom.dns_name.clone()));
            }
        }
        Layout { heads, referrals }
    }

    /// True when `base` names one of these naming contexts or something under one.
    pub fn holds(&self, base: &str) -> bool {
        Dn::parse(base).is_ok_and(|b| {
            let k = b.key();
            self.heads.iter().any(|h| &k == h || k.is_below(h))
        })
    }

    /// The referral for a base this DC does not hold but the forest does (another domain's
    /// NC, or below it): the host that holds it (AD's `0000202B: RefErr`).
    pub fn referral_for(&self, base: &str) -> Option<(String, String)> {
        let k = Dn::parse(base).ok()?.key();
        self.referrals
            .iter()
            .filter(|(h, _, _)| !self.heads.contains(h))
            .find(|(h, _, _)| &k == h || k.is_below(h))
            .map(|(_, nc, host)| (format!("{REFERENCE_SCHEME}://{host}/{nc}"), host.clone()))
    }

    /// The naming contexts a search at `base` reaches but another NC holds, as continuation
    /// references (RFC 4511 4.5.3) in Windows' order: the NCs nearest below the base for a
    /// subtree search (Schema is inside Configuration: a search at the domain's root names
    /// only Configuration), its children for a one-level one (with `??base`, as the RFC asks).
    pub fn references(&self, base: &str, one_level: bool, scheme: &str) -> Vec<String> {
        let Ok(b) = Dn::parse(base) else { return vec![] };
        let k = b.key();
        // (an NC inside another the search reaches is that one's to refer to)
        let ncs: Vec<&DnKey> = self.referrals.iter().map(|(h, _, _)| h).collect();
        let nearest = |h: &DnKey| !ncs.iter().any(|h2| *h2 != h && h.is_below(h2) && h2.is_below(&k));
        self.referrals
            .iter()
            .filter(|(h, _, _)| if one_level { h.is_below(&k) && h.depth() == k.depth() + 1 } else { h.is_below(&k) && nearest(h) })
            .map(|(_, nc, host)| format!("{scheme}://{host}/{nc}{}", if one_level { "??base" } else { "" }))
            .collect()
    }
}

struct Builder {
    entries: Vec<RootDse>,
    created: Vec<u8>,
    usn: Vec<u8>,
    seed: u64,
    schema: String,
}

impl Builder {
    fn add(&mut self, dn: &str, class: &'static str, category: &str, instance_type: u32, mut extra: Vec<(&'static str, Vec<Vec<u8>>)>) {
        let chain: &[&str] = match class {
            "domainDNS" => &["top", "domain", "domainDNS"],
            "nTDSService"
            | "crossRef"
            | "crossRefContainer"
            | "server"
            | "site"
            | "sitesContainer"
            | "serversContainer"
            | "dMD"
            | "configuration"
            | "infrastructureUpdate"
            | "dnsZone"
            | "container" => &["top"],
            "nTDSDSA" => &["top", "applicationSettings"],
            _ => &["top"],
        };
        let mut classes: Vec<Vec<u8>> = chain.iter().map(|c| c.as_bytes().to_vec()).collect();
        if !chain.contains(&class) {
            classes.push(class.as_bytes().to_vec());
        }
        let rdn = Dn::parse(dn).ok().and_then(|d| d.rdns.first().map(|r| r.value.clone())).unwrap_or_default();
        let mut attrs = vec![("objectClass", classes)];
        if !extra.iter().any(|(n, _)| *n == "dc") {
            attrs.push(("cn", vec![rdn.clone().into_bytes()]));
        }
        attrs.append(&mut extra);
        attrs.extend(self.common(dn, &rdn, category, instance_type));
        self.entries.push(RootDse { dn: dn.to_string(), attrs, named_only: &[] });
    }

    fn common(&self, dn: &str, rdn: &str, category: &str, instance_type: u32) -> Vec<(&'static str, Vec<Vec<u8>>)> {
        let s = |v: &str| vec![v.as_bytes().to_vec()];
        vec![
            ("distinguishedName", s(dn)),
            ("instanceType", s(&instance_type.to_string())),
            ("whenCreated", vec![self.created.clone()]),
            ("whenChanged", vec![self.created.clone()]),
            ("uSNCreated", vec![self.usn.clone()]),
            ("uSNChanged", vec![self.usn.clone()]),
            ("name", s(rdn)),
            ("objectGUID", vec![derived_guid(self.seed, dn).to_vec()]),
            ("objectCategory", s(&format!("CN={category},{}", self.schema))),
        ]
    }

    /// A definition as its object: Microsoft's fields, the file's placeholder domain
    /// (`DC=X`) made this forest's.
    fn schema_object(&mut self, o: &'static crate::ad_schema::SchemaObject) {
        let dn = format!("CN={},{}", o.cn, self.schema);
        let mut attrs: Vec<(&'static str, Vec<Vec<u8>>)> = vec![];
        for (k, v) in o.fields {
            let v = match std::str::from_utf8(v) {
                Ok(t) if t.ends_with(",CN=Schema,CN=Configuration,DC=X") => {
                    t.replace(",CN=Schema,CN=Configuration,DC=X", &format!(",{}", self.schema)).into_bytes()
                }
                _ => v.to_vec(),
            };
            match attrs.iter_mut().find(|(n, _)| n == k) {
                Some((_, vals)) => vals.push(v),
                None => attrs.push((*k, vec![v])),
            }
        }
        let category = if o.is_class() { "Class-Schema" } else { "Attribute-Schema" };
        attrs.extend(self.common(&dn, o.cn, category, 4).into_iter().filter(|(n, _)| *n != "objectCategory"));
        self.entries.push(RootDse { dn, attrs, named_only: &[] });
    }
}

/// A stable GUID for an object the lab makes up (the seed and a name, through MD4: no secret).
fn derived_guid(seed: u64, name: &str) -> [u8; 16] {
    let mut g = mix(seed, &name.to_ascii_lowercase());
    g[7] = (g[7] & 0x0f) | 0x40; // version 4, in AD's mixed-endian layout
    g[8] = (g[8] & 0x3f) | 0x80;
    g
}

/// 16 bytes that depend on the lab's seed and a name, reproducibly (MD4 as a mixer: no
/// secret is made this way): made-up GUIDs, a replica's GUID generator.
pub(crate) fn mix(seed: u64, name: &str) -> [u8; 16] {
    use md4::Digest;
    let mut h = md4::Md4::new();
    h.update(seed.to_le_bytes());
    h.update(name.as_bytes());
    h.finalize().into()
}

fn guid_text(g: &[u8; 16]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{}",
        g[3],
        g[2],
        g[1],
        g[0],
        g[5],
        g[4],
        g[7],
        g[6],
        g[8],
        g[9],
        g[10..].iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}
