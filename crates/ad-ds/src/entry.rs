//! One directory object: its DN, its attributes (by lower-case name, spelled as AD's schema
//! spells them), and its password material, which lives outside the attributes so that no
//! search can ever return it.

use crate::dn::Dn;
use crate::schema::{self, AttrId, AttrName, Syntax};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// The attribute's id in the lab's schema (objects store ids, not names).
    id: u16,
    /// AD's spelling (`sAMAccountName`).
    pub name: &'static str,
    /// Most attributes hold one value: keep it inline (one allocation less per attribute).
    pub values: Values,
}

pub type Values = smallvec::SmallVec<[Vec<u8>; 1]>;

/// What AD keeps of a password: the NT hash (MD4 of UTF-16LE) and the hashes before it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secrets {
    pub nt_hash: Option<[u8; 16]>,
    /// Most recent first, the current hash included, at most pwdHistoryLength long.
    pub nt_history: Vec<[u8; 16]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub dn: Dn,
    /// Sorted by schema id, so objectClass comes first and lookups are a binary search.
    attrs: Vec<Attr>,
    pub secrets: Secrets,
}

impl Entry {
    pub fn new(dn: Dn) -> Entry {
        Entry { dn, attrs: Vec::new(), secrets: Secrets::default() }
    }

    pub fn attrs(&self) -> impl Iterator<Item = &Attr> {
        self.attrs.iter()
    }

    fn find(&self, id: u16) -> Result<usize, usize> {
        self.attrs.binary_search_by_key(&id, |a| a.id)
    }

    pub fn get(&self, name: impl AttrName) -> Option<&Attr> {
        let id = name.id()?;
        self.find(id).ok().map(|i| &self.attrs[i])
    }

    pub fn values(&self, name: impl AttrName) -> &[Vec<u8>] {
        self.get(name).map(|a| a.values.as_slice()).unwrap_or(&[])
    }

    pub fn first_str(&self, name: impl AttrName) -> Option<&str> {
        self.values(name).first().and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn int(&self, name: impl AttrName) -> Option<i64> {
        self.values(name).first().and_then(|v| parse_int(v))
    }

    pub fn has(&self, name: impl AttrName) -> bool {
        self.get(name).is_some_and(|a| !a.values.is_empty())
    }

    /// Replaces all values; no values removes the attribute. Only attributes of the lab's
    /// schema can be stored: every write path checks names against it first.
    pub fn set(&mut self, name: &str, values: Vec<Vec<u8>>) {
        let Some(id) = schema::attribute_id(name) else {
            debug_assert!(false, "{name} is not in the schema");
            return;
        };
        match (self.find(id), values.is_empty()) {
            (Ok(i), true) => {
                self.attrs.remove(i);
            }
            (Ok(i), false) => self.attrs[i].values = Values::from_vec(values),
            (Err(_), true) => {}
            (Err(i), false) => self.attrs.insert(i, Attr { id, name: schema::attribute_by_id(id).name, values: Values::from_vec(values) }),
        }
    }

    pub fn set_str(&mut self, name: &str, value: impl Into<String>) {
        self.set(name, vec![value.into().into_bytes()]);
    }

    pub fn remove(&mut self, name: &str) {
        self.set(name, Vec::new());
    }

    /// True when the attribute holds a value equal to `v` under the attribute's matching rule.
    pub fn has_value(&self, name: &str, v: &[u8]) -> bool {
        self.values(name).iter().any(|x| values_equal(name, x, v))
    }

    pub fn is_class(&self, class: &str) -> bool {
        const OBJECT_CLASS: AttrId = AttrId::of("objectClass");
        self.values(OBJECT_CLASS).iter().any(|v| v.eq_ignore_ascii_case(class.as_bytes()))
    }

    /// The structural class: the last in AD's stored objectClass chain.
    pub fn structural_class(&self) -> Option<&str> {
        self.values("objectClass").last().and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn guid(&self) -> Option<[u8; 16]> {
        self.values("objectGUID").first().and_then(|v| v.as_slice().try_into().ok())
    }
}

/// Equality under the attribute's syntax: case-insensitive strings and DNs, numbers by value,
/// binary byte for byte.
pub fn values_equal(attr: &str, a: &[u8], b: &[u8]) -> bool {
    let syntax = schema::attribute(attr).map(|d| d.syntax).unwrap_or(Syntax::String);
    match syntax {
        // AD also accepts the text form of a SID in an assertion: (objectSid=S-1-5-21-...)
        Syntax::Sid => a == b || crate::sid::Sid::parse(&String::from_utf8_lossy(b)).is_some_and(|s| s.to_bytes() == a),
        Syntax::Binary | Syntax::Guid | Syntax::SecurityDescriptor => a == b,
        Syntax::Integer | Syntax::LargeInteger => match (parse_int(a), parse_int(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
        Syntax::Dn => match (std::str::from_utf8(a), std::str::from_utf8(b)) {
            (Ok(x), Ok(y)) => match (Dn::parse(x), Dn::parse(y)) {
                (Ok(x), Ok(y)) => x.key() == y.key(),
                _ => x.eq_ignore_ascii_case(y),
            },
            _ => false,
        },
        Syntax::String | Syntax::Oid | Syntax::Boolean | Syntax::GeneralizedTime => {
            if a.is_ascii() && b.is_ascii() {
                return a.eq_ignore_ascii_case(b);
            }
            match (std::str::from_utf8(a), std::str::from_utf8(b)) {
                (Ok(x), Ok(y)) => fold(x) == fold(y),
                _ => a == b,
            }
        }
    }
}

pub fn parse_int(v: &[u8]) -> Option<i64> {
    // (ASCII digits need no UTF-8 check: i64's parser refuses anything else)
    let t = v.trim_ascii();
    std::str::from_utf8(t).ok()?.parse().ok()
}

/// AD's case folding for string matching.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}
