//! Distinguished names as AD treats them: RFC 4514 syntax, case-insensitive attribute
//! types and values, spaces around separators ignored, single-valued RDNs only.

use std::fmt;

/// One relative DN: `CN=User1`. `attr` keeps the case it was written in; AD prints the
/// naming attributes of DNs in upper case (`CN=`, `OU=`, `DC=`), and so does [`Dn`]'s
/// `Display`.
#[derive(Clone, Debug)]
pub struct Rdn {
    pub attr: String,
    pub value: String,
}

impl Rdn {
    pub fn new(attr: &str, value: &str) -> Rdn {
        Rdn { attr: attr.to_string(), value: value.to_string() }
    }

    fn norm(&self) -> String {
        format!("{}={}", self.attr.to_ascii_lowercase(), self.value.to_lowercase())
    }
}

impl PartialEq for Rdn {
    fn eq(&self, other: &Rdn) -> bool {
        self.norm() == other.norm()
    }
}
impl Eq for Rdn {}

/// A DN, leaf first (`CN=User1,CN=Users,DC=testlab,DC=example`). The empty DN is the
/// rootDSE.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dn {
    pub rdns: Vec<Rdn>,
}

/// A DN in the order the directory sorts by: root first, so that a subtree is a
/// contiguous key range and parents sort before their children.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnKey(std::sync::Arc<str>);

/// Separates RDNs inside a [`DnKey`]; it cannot occur in a parsed value.
const KEY_SEP: char = '\u{1}';

impl DnKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `self` is strictly below `base`.
    pub fn is_below(&self, base: &DnKey) -> bool {
        if base.0.is_empty() {
            return !self.0.is_empty();
        }
        self.0.len() > base.0.len() && self.0.starts_with(&*base.0) && self.0[base.0.len()..].starts_with(KEY_SEP)
    }

    /// The smallest key strictly below `self` (start of the subtree range).
    pub fn subtree_start(&self) -> DnKey {
        if self.0.is_empty() { DnKey("".into()) } else { DnKey(format!("{}{KEY_SEP}", self.0).into()) }
    }

    /// How many RDNs this key has.
    pub fn depth(&self) -> usize {
        if self.0.is_empty() { 0 } else { self.0.matches(KEY_SEP).count() + 1 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnError(pub String);

impl fmt::Display for DnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Dn {
    pub fn root() -> Dn {
        Dn::default()
    }

    pub fn is_root(&self) -> bool {
        self.rdns.is_empty()
    }

    pub fn parse(s: &str) -> Result<Dn, DnError> {
        // Not trimmed as a whole: a trailing `\ ` is an escaped, significant space.
        if s.trim().is_empty() {
            return Ok(Dn::root());
        }
        let mut rdns = Vec::new();
        let mut chars = s.chars().peekable();
        loop {
            // attribute type
            let mut attr = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' {
                    break;
                }
                attr.push(c);
                chars.next();
            }
            if chars.next() != Some('=') {
                return Err(DnError(format!("`{s}`: an RDN has no `=`")));
            }
            let attr = attr.trim().to_string();
            let valid_type = !attr.is_empty()
                && (attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && attr.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    || attr.chars().all(|c| c.is_ascii_digit() || c == '.'));
            if !valid_type {
                return Err(DnError(format!("`{s}`: `{attr}` is not an attribute type")));
            }
            // value
            let mut value = String::new();
            let mut pending_space = 0usize; // unescaped spaces not yet known to be interior
            let mut started = false;
            let mut raw_bytes: Vec<u8> = Vec::new();
            let flush_bytes = |raw: &mut Vec<u8>, value: &mut String| -> Result<(), DnError> {
                if !raw.is_empty() {
                    let text =
                        String::from_utf8(std::mem::take(raw)).map_err(|_| DnError(format!("`{s}`: escaped bytes are not UTF-8")))?;
                    value.push_str(&text);
                }
                Ok(())
            };
            let mut end_of_rdn = false;
            while let Some(c) = chars.next() {
                match c {
                    ',' | ';' => {
                        end_of_rdn = true;
                        break;
                    }
                    '+' => return Err(DnError(format!("`{s}`: multi-valued RDNs are not supported by AD"))),
                    '\\' => {
                        let Some(n) = chars.next() else {
                            return Err(DnError(format!("`{s}`: the DN ends in a lone `\\`")));
                        };
                        if n.is_ascii_hexdigit() {
                            let Some(m) = chars.next().filter(char::is_ascii_hexdigit) else {
                                return Err(DnError(format!("`{s}`: `\\{n}` is not a two-digit hex escape")));
                            };
                            raw_bytes.extend(std::iter::repeat_n(b' ', pending_space));
                            pending_space = 0;
                            let byte = u8::from_str_radix(&format!("{n}{m}"), 16).unwrap_or(0);
                            raw_bytes.push(byte);
                        } else if ",+\"\\<>;=# ".contains(n) {
                            flush_bytes(&mut raw_bytes, &mut value)?;
                            value.extend(std::iter::repeat_n(' ', pending_space));
                            pending_space = 0;
                            value.push(n);
                        } else {
                            return Err(DnError(format!("`{s}`: `\\{n}` is not a valid escape")));
                        }
                        started = true;
                    }
                    ' ' if !started => {}
                    ' ' => pending_space += 1,
                    '"' | '<' | '>' | '=' => {
                        return Err(DnError(format!("`{s}`: `{c}` must be escaped in a DN value")));
                    }
                    c if (c as u32) < 0x20 => {
                        return Err(DnError(format!("`{s}`: control characters are not allowed in a DN")));
                    }
                    c => {
                        flush_bytes(&mut raw_bytes, &mut value)?;
                        value.extend(std::iter::repeat_n(' ', pending_space));
                        pending_space = 0;
                        value.push(c);
                        started = true;
                    }
                }
            }
            flush_bytes(&mut raw_bytes, &mut value)?;
            if value.chars().any(|c| (c as u32) < 0x20) {
                return Err(DnError(format!("`{s}`: control characters are not allowed in a DN")));
            }
            if value.is_empty() {
                return Err(DnError(format!("`{s}`: the RDN `{attr}=` has an empty value")));
            }
            rdns.push(Rdn { attr, value });
            if !end_of_rdn {
                break;
            }
            if chars.peek().is_none() {
                return Err(DnError(format!("`{s}`: the DN ends in a separator")));
            }
        }
        Ok(Dn { rdns })
    }

    pub fn key(&self) -> DnKey {
        let mut k = String::with_capacity(self.rdns.iter().map(|r| r.attr.len() + r.value.len() + 2).sum());
        for (i, r) in self.rdns.iter().rev().enumerate() {
            if i > 0 {
                k.push(KEY_SEP);
            }
            k.extend(r.attr.chars().map(|c| c.to_ascii_lowercase()));
            k.push('=');
            k.extend(r.value.chars().flat_map(char::to_lowercase));
        }
        DnKey(k.into())
    }

    pub fn parent(&self) -> Option<Dn> {
        if self.rdns.is_empty() { None } else { Some(Dn { rdns: self.rdns[1..].to_vec() }) }
    }

    pub fn rdn(&self) -> Option<&Rdn> {
        self.rdns.first()
    }

    pub fn child(&self, rdn: Rdn) -> Dn {
        let mut rdns = vec![rdn];
        rdns.extend(self.rdns.iter().cloned());
        Dn { rdns }
    }

    /// True when `self` is `base` or lies below it.
    pub fn is_within(&self, base: &Dn) -> bool {
        self.rdns.len() >= base.rdns.len() && self.rdns[self.rdns.len() - base.rdns.len()..] == base.rdns[..]
    }

    /// `DC=testlab,DC=example` → `testlab.example`.
    pub fn dns_domain(&self) -> String {
        self.rdns.iter().filter(|r| r.attr.eq_ignore_ascii_case("dc")).map(|r| r.value.to_lowercase()).collect::<Vec<_>>().join(".")
    }

    pub fn from_dns_domain(domain: &str) -> Dn {
        Dn { rdns: domain.split('.').map(|p| Rdn::new("DC", p)).collect() }
    }
}

fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            // only tombstone names hold one (`CN=name\0ADEL:guid`); clients may not
            '\n' => out.push_str("\\0A"),
            ' ' if i == 0 || i + 1 == n => out.push_str("\\ "),
            c => out.push(c),
        }
    }
    out
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.rdns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}={}", r.attr.to_ascii_uppercase(), escape_value(&r.value))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_ad_dns_ignoring_case_and_spaces() {
        let a = Dn::parse("CN=User One,CN=Users,DC=testlab,DC=example").unwrap();
        let b = Dn::parse(" cn = user one , cn=users,  dc=TESTLAB,dc=Example ").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.key(), b.key());
        assert_eq!(b.to_string(), "CN=user one,CN=users,DC=TESTLAB,DC=Example");
        assert_eq!(a.dns_domain(), "testlab.example");
    }

    #[test]
    fn escapes() {
        let d = Dn::parse(r"CN=Smith\, John,OU=Sales,DC=x").unwrap();
        assert_eq!(d.rdns[0].value, "Smith, John");
        assert_eq!(d.to_string(), r"CN=Smith\, John,OU=Sales,DC=x");
        let h = Dn::parse(r"CN=caf\C3\A9,DC=x").unwrap();
        assert_eq!(h.rdns[0].value, "café");
        assert_eq!(Dn::parse(r"CN=\ lead,DC=x").unwrap().rdns[0].value, " lead");
    }

    #[test]
    fn rejects_bad_dns() {
        for bad in ["CN", "CN=a,", "=a", "CN=a+SN=b,DC=x", "CN=a\\", "CN=a\\zz", "CN=,DC=x", "C N=a", "CN=a=b"] {
            assert!(Dn::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn subtree_keys() {
        let base = Dn::parse("DC=testlab,DC=example").unwrap().key();
        let child = Dn::parse("CN=Users,DC=testlab,DC=example").unwrap().key();
        let other = Dn::parse("DC=testlab2,DC=example").unwrap().key();
        assert!(child.is_below(&base));
        assert!(!other.is_below(&base));
        assert!(!base.is_below(&base));
        assert!(base < child && child.depth() == 3);
    }

    fn value() -> impl Strategy<Value = String> {
        // printable text including every special character, and some non-ASCII
        proptest::string::string_regex("[a-zA-Z0-9 ,+\"\\\\<>;=#é-]{1,12}").unwrap().prop_filter("not blank", |s| !s.trim().is_empty())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn display_then_parse_is_identity(vals in proptest::collection::vec(value(), 1..5)) {
            let dn = Dn { rdns: vals.iter().map(|v| Rdn::new("CN", v)).collect() };
            let back = Dn::parse(&dn.to_string()).unwrap();
            prop_assert_eq!(&back, &dn);
            for (a, b) in back.rdns.iter().zip(&dn.rdns) {
                prop_assert_eq!(&a.value, &b.value);
            }
        }

        #[test]
        fn case_never_changes_the_key(vals in proptest::collection::vec(value(), 1..4)) {
            let dn = Dn { rdns: vals.iter().map(|v| Rdn::new("ou", v)).collect() };
            let upper = Dn::parse(&dn.to_string().to_uppercase()).unwrap();
            prop_assert_eq!(upper.key(), dn.key());
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Dn::parse(&s);
        }
    }
}
