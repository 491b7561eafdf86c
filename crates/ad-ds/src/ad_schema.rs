//! Microsoft's whole schema, Windows Server 2016's, as `build.rs` reads it from Microsoft's
//! published files (schema/*.ldf): every attributeSchema and classSchema definition, what
//! the subschema entry publishes of each (RFC 4512 descriptions in AD's spelling), and
//! each as the object it is under `CN=Schema,CN=Configuration,…`.
//!
//! This is what the DC *publishes*, so schema-aware clients (Python ldap3's `get_info=ALL`,
//! Apache Directory Studio) accept any AD attribute. What the lab keeps values for and how
//! it treats them is [`crate::schema`]'s smaller table; a test holds the two to agreement.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::schema::{AttrDef, Syntax};

/// One definition as Microsoft's file states it: its CN and `attribute: value` pairs.
pub struct SchemaObject {
    pub cn: &'static str,
    pub fields: &'static [(&'static str, &'static [u8])],
}

include!(concat!(env!("OUT_DIR"), "/ad_schema.rs"));

impl SchemaObject {
    /// The first value of a field, as text.
    pub fn get(&self, key: &str) -> Option<&'static str> {
        self.all(key).next()
    }

    /// Every value of a (multi-valued) field, as text, in the file's order.
    pub fn all<'a>(&self, key: &'a str) -> impl Iterator<Item = &'static str> + 'a {
        let fields: &'static [(&'static str, &'static [u8])] = self.fields;
        fields.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(key)).filter_map(|(_, v)| std::str::from_utf8(v).ok())
    }

    pub fn name(&self) -> &'static str {
        self.get("lDAPDisplayName").unwrap_or(self.cn)
    }

    pub fn is_class(&self) -> bool {
        self.all("objectClass").any(|c| c == "classSchema")
    }

    fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("TRUE")
    }

    fn raw(&self, key: &str) -> Option<&'static [u8]> {
        self.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| *v)
    }
}

/// oMObjectClass values (BER-encoded OIDs) that tell apart the object syntaxes sharing an
/// attributeSyntax (MS-ADTS 3.1.1.2.2.2).
const OM_DN_BINARY: &[u8] = b"\x2a\x86\x48\x86\xf7\x14\x01\x01\x01\x0b"; // 1.2.840.113556.1.1.1.11
const OM_DN_STRING: &[u8] = b"\x2a\x86\x48\x86\xf7\x14\x01\x01\x01\x0c"; // 1.2.840.113556.1.1.1.12
const OM_OR_NAME: &[u8] = b"\x56\x06\x01\x02\x05\x0b\x1d"; // 2.6.6.1.2.5.11.29
const OM_ACCESS_POINT: &[u8] = b"\x2b\x0c\x02\x87\x73\x1c\x00\x85\x3e"; // 1.3.12.2.1011.28.0.702

/// The LDAP syntax OID AD publishes for an attributeSyntax / oMSyntax / oMObjectClass
/// (MS-ADTS 3.1.1.2.2.2, as Windows and Samba write it in attributeTypes).
pub fn ldap_syntax(attribute_syntax: &str, om_syntax: u32, om_class: Option<&[u8]>) -> &'static str {
    match (attribute_syntax, om_syntax) {
        ("2.5.5.1", _) => "1.3.6.1.4.1.1466.115.121.1.12",
        ("2.5.5.2", _) => "1.3.6.1.4.1.1466.115.121.1.38",
        ("2.5.5.3", _) => "1.2.840.113556.1.4.1362",
        ("2.5.5.4", _) => "1.2.840.113556.1.4.905",
        ("2.5.5.5", 22) => "1.3.6.1.4.1.1466.115.121.1.26",
        ("2.5.5.5", _) => "1.3.6.1.4.1.1466.115.121.1.44",
        ("2.5.5.6", _) => "1.3.6.1.4.1.1466.115.121.1.36",
        ("2.5.5.7", _) if om_class == Some(OM_OR_NAME) => "1.2.840.113556.1.4.1221",
        ("2.5.5.7", _) if om_class == Some(OM_DN_BINARY) => "1.2.840.113556.1.4.903",
        ("2.5.5.7", _) => "1.2.840.113556.1.4.903",
        ("2.5.5.8", _) => "1.3.6.1.4.1.1466.115.121.1.7",
        ("2.5.5.9", _) => "1.3.6.1.4.1.1466.115.121.1.27",
        ("2.5.5.10", _) => "1.3.6.1.4.1.1466.115.121.1.40",
        ("2.5.5.11", 23) => "1.3.6.1.4.1.1466.115.121.1.53",
        ("2.5.5.11", _) => "1.3.6.1.4.1.1466.115.121.1.24",
        ("2.5.5.12", _) => "1.3.6.1.4.1.1466.115.121.1.15",
        ("2.5.5.13", _) => "1.3.6.1.4.1.1466.115.121.1.43",
        ("2.5.5.14", _) if om_class == Some(OM_ACCESS_POINT) => "1.3.6.1.4.1.1466.115.121.1.2",
        ("2.5.5.14", _) if om_class == Some(OM_DN_STRING) => "1.2.840.113556.1.4.904",
        ("2.5.5.14", _) => "1.2.840.113556.1.4.904",
        ("2.5.5.15", _) => "1.2.840.113556.1.4.907",
        ("2.5.5.16", _) => "1.2.840.113556.1.4.906",
        ("2.5.5.17", _) => "1.3.6.1.4.1.1466.115.121.1.40",
        _ => "1.3.6.1.4.1.1466.115.121.1.40",
    }
}

/// Every definition, attributes first.
pub fn objects() -> &'static [SchemaObject] {
    AD_SCHEMA
}

pub fn attributes() -> impl Iterator<Item = &'static SchemaObject> {
    AD_SCHEMA.iter().filter(|o| !o.is_class())
}

pub fn classes() -> impl Iterator<Item = &'static SchemaObject> {
    AD_SCHEMA.iter().filter(|o| o.is_class())
}

/// A definition by lDAPDisplayName, any case.
pub fn find(name: &str) -> Option<&'static SchemaObject> {
    static INDEX: OnceLock<HashMap<String, usize>> = OnceLock::new();
    let index = INDEX.get_or_init(|| AD_SCHEMA.iter().enumerate().map(|(i, o)| (o.name().to_ascii_lowercase(), i)).collect());
    index.get(&name.to_ascii_lowercase()).map(|i| &AD_SCHEMA[*i])
}

/// An attribute of Microsoft's schema in the lab's terms (its syntax for comparing values
/// in a filter), for the attributes the lab keeps no values for.
pub fn attribute_def(name: &str) -> Option<&'static AttrDef> {
    static DEFS: OnceLock<HashMap<String, AttrDef>> = OnceLock::new();
    let defs = DEFS.get_or_init(|| {
        attributes()
            .map(|a| {
                let syntax = match a.get("attributeSyntax").unwrap_or("") {
                    "2.5.5.1" => Syntax::Dn,
                    "2.5.5.2" => Syntax::Oid,
                    "2.5.5.8" => Syntax::Boolean,
                    "2.5.5.9" => Syntax::Integer,
                    "2.5.5.10" => Syntax::Binary,
                    "2.5.5.11" => Syntax::GeneralizedTime,
                    "2.5.5.15" => Syntax::SecurityDescriptor,
                    "2.5.5.16" => Syntax::LargeInteger,
                    "2.5.5.17" => Syntax::Sid,
                    _ => Syntax::String,
                };
                let flags = if a.flag("isSingleValued") { crate::schema::SINGLE } else { 0 };
                let def = AttrDef { name: a.name(), oid: a.get("attributeID").unwrap_or(""), syntax, flags };
                (a.name().to_ascii_lowercase(), def)
            })
            .collect()
    });
    defs.get(&name.to_ascii_lowercase())
}

/// The attributeTypes value AD publishes for an attribute definition.
pub fn attribute_description(a: &SchemaObject) -> String {
    let om: u32 = a.get("oMSyntax").and_then(|v| v.parse().ok()).unwrap_or(0);
    let syntax = ldap_syntax(a.get("attributeSyntax").unwrap_or(""), om, a.raw("oMObjectClass"));
    let mut s = format!("( {} NAME '{}' SYNTAX '{syntax}'", a.get("attributeID").unwrap_or(""), a.name());
    if a.flag("isSingleValued") {
        s.push_str(" SINGLE-VALUE");
    }
    if a.flag("systemOnly") {
        s.push_str(" NO-USER-MODIFICATION");
    }
    s.push_str(" )");
    s
}

/// The objectClasses value AD publishes for a class definition: its own MUST and MAY (user
/// then system lists, as Windows and Samba order them), not what it inherits.
pub fn class_description(c: &SchemaObject) -> String {
    let mut s = format!("( {} NAME '{}'", c.get("governsID").unwrap_or(""), c.name());
    if c.name() != "top" {
        s.push_str(&format!(" SUP {}", c.get("subClassOf").unwrap_or("top")));
    }
    s.push_str(match c.get("objectClassCategory") {
        Some("2") => " ABSTRACT",
        Some("3") => " AUXILIARY",
        // structural, and the X.500 1988 classes (category 0) as Samba publishes them
        _ => " STRUCTURAL",
    });
    push_list(&mut s, "MUST", c.all("mustContain").chain(c.all("systemMustContain")).collect());
    push_list(&mut s, "MAY", c.all("mayContain").chain(c.all("systemMayContain")).collect());
    s.push_str(" )");
    s
}

/// The dITContentRules value of a class with auxiliary classes (system ones first, as Samba
/// orders them): those classes' (and their superclasses') MUST and MAY.
pub fn content_rule(c: &SchemaObject) -> Option<String> {
    let aux: Vec<&str> = c.all("systemAuxiliaryClass").chain(c.all("auxiliaryClass")).collect();
    if aux.is_empty() {
        return None;
    }
    let (mut must, mut may) = (vec![], vec![]);
    for a in aux.iter().flat_map(|a| with_superclasses(a)) {
        must.extend(a.all("mustContain").chain(a.all("systemMustContain")));
        may.extend(a.all("mayContain").chain(a.all("systemMayContain")));
    }
    dedup(&mut must);
    dedup(&mut may);
    let mut s = format!("( {} NAME '{}' AUX ( {} )", c.get("governsID").unwrap_or(""), c.name(), aux.join(" $ "));
    push_list(&mut s, "MUST", must);
    push_list(&mut s, "MAY", may);
    s.push_str(" )");
    Some(s)
}

/// A class and its superclasses below `top`.
fn with_superclasses(name: &str) -> Vec<&'static SchemaObject> {
    let mut out = vec![];
    let mut next = find(name);
    while let Some(c) = next.filter(|c| c.name() != "top" && out.len() < 32) {
        out.push(c);
        next = c.get("subClassOf").and_then(find);
    }
    out
}

fn dedup(v: &mut Vec<&str>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.to_ascii_lowercase()));
}

/// ` MUST (a $ b )`, AD's spacing.
fn push_list(s: &mut String, key: &str, names: Vec<&str>) {
    if !names.is_empty() {
        s.push_str(&format!(" {key} ({} )", names.join(" $ ")));
    }
}

/// The subschema entry's three lists, made once per process (the schema never changes).
pub struct Descriptions {
    pub attribute_types: Vec<Vec<u8>>,
    pub object_classes: Vec<Vec<u8>>,
    pub content_rules: Vec<Vec<u8>>,
}

pub fn descriptions() -> &'static Descriptions {
    static D: OnceLock<Descriptions> = OnceLock::new();
    D.get_or_init(|| Descriptions {
        attribute_types: attributes().map(|a| attribute_description(a).into_bytes()).collect(),
        object_classes: classes().map(|c| class_description(c).into_bytes()).collect(),
        content_rules: classes().filter_map(content_rule).map(String::into_bytes).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;

    #[test]
    fn the_whole_schema_is_read_from_microsofts_files() {
        assert_eq!(attributes().count(), 1498);
        assert_eq!(classes().count(), 269);
        for name in ["tokenGroups", "sIDHistory", "operatingSystem", "msDS-SupportedEncryptionTypes", "nETBIOSName", "dnsRecord"] {
            assert!(find(name).is_some_and(|a| !a.is_class()), "{name}");
        }
        // a value given in base64 in the file is decoded: schemaIDGUID is 16 bytes
        assert_eq!(find("accountExpires").unwrap().raw("schemaIDGUID").unwrap().len(), 16);
        // a folded line is joined
        assert!(find("user").unwrap().get("defaultSecurityDescriptor").unwrap().contains(")(A;;RPLCLORC;;;PS)"));
    }

    #[test]
    fn descriptions_read_as_samba_publishes_them() {
        // as Samba 4.17's CN=Aggregate has them
        let a = |n: &str| attribute_description(find(n).unwrap());
        assert_eq!(a("tokenGroups"), "( 1.2.840.113556.1.4.1301 NAME 'tokenGroups' SYNTAX '1.3.6.1.4.1.1466.115.121.1.40' )");
        assert_eq!(
            a("wellKnownObjects"),
            "( 1.2.840.113556.1.4.618 NAME 'wellKnownObjects' SYNTAX '1.2.840.113556.1.4.903' NO-USER-MODIFICATION )"
        );
        assert_eq!(
            a("replUpToDateVector"),
            "( 1.2.840.113556.1.4.4 NAME 'replUpToDateVector' SYNTAX '1.3.6.1.4.1.1466.115.121.1.40' SINGLE-VALUE NO-USER-MODIFICATION )"
        );
        assert_eq!(
            a("operatingSystem"),
            "( 1.2.840.113556.1.4.363 NAME 'operatingSystem' SYNTAX '1.3.6.1.4.1.1466.115.121.1.15' SINGLE-VALUE )"
        );
        let user = class_description(find("user").unwrap());
        assert!(
            user.starts_with("( 1.2.840.113556.1.5.9 NAME 'user' SUP organizationalPerson STRUCTURAL MAY (msDS-SourceObjectDN $ "),
            "{user}"
        );
        let rule = content_rule(find("user").unwrap()).unwrap();
        assert!(
            rule.contains(" MUST (sAMAccountName $ objectSid $ cn )") || rule.contains(" MUST (cn $ sAMAccountName $ objectSid )"),
            "{rule}"
        );
    }

    #[test]
    fn the_labs_own_table_agrees_with_microsofts() {
        // Exchange's extensionAttribute1–15 are not Windows': the lab publishes them beside
        for d in schema::attributes().iter().filter(|d| !d.name.starts_with("extensionAttribute")) {
            let ad = find(d.name).unwrap_or_else(|| panic!("{} is not in Microsoft's schema", d.name));
            assert_eq!(ad.name(), d.name, "spelling");
            assert_eq!(ad.get("attributeID"), Some(d.oid), "{}", d.name);
            assert_eq!(ad.flag("isSingleValued"), d.single(), "{}: single-valued", d.name);
            assert_eq!(attribute_description(ad), d.description(), "{}", d.name);
        }
        for c in schema::described_classes() {
            let ad = find(c.name).unwrap_or_else(|| panic!("class {} is not in Microsoft's schema", c.name));
            assert_eq!(ad.get("governsID"), Some(c.oid), "{}", c.name);
        }
    }
}
