//! One directory object: its DN, its attributes (stored by schema id, named as AD's schema
//! spells them), and its password material, which lives outside the attributes so that no
//! search can ever return it.

use crate::dn::Dn;
use crate::schema::{self, AttrId, AttrName, Syntax};

/// One attribute of an entry, as read: its id and its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr<'a> {
    /// The attribute's id in the lab's schema (objects store ids, not names).
    id: u16,
    pub values: &'a [Value],
}

impl Attr<'_> {
    /// AD's spelling (`sAMAccountName`).
    pub fn name(&self) -> &'static str {
        schema::attribute_by_id(self.id).name
    }
}

/// One value. Most of a user's values are short (`512`, `0`, a GUID, `top`): up to 16 bytes
/// sit inline, in the 24 bytes a `Vec` would take, with no allocation of their own.
pub type Value = smallvec::SmallVec<[u8; 16]>;

/// What AD keeps of a password: the NT hash (MD4 of UTF-16LE) and the hashes before it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secrets {
    pub nt_hash: Option<[u8; 16]>,
    /// Most recent first, the current hash included, at most pwdHistoryLength long.
    pub nt_history: Vec<[u8; 16]>,
}

/// An object's attributes are two arrays side by side rather than one list of attributes
/// each holding its own list of values: a user's ~30 values cost one allocation (plus the
/// few longer than 16 bytes), and finding an attribute is a binary search in the ids, 60-odd
/// bytes, one cache line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub dn: Dn,
    /// Each value's attribute id, sorted (a multi-valued attribute's values side by side),
    /// so objectClass comes first.
    ids: Vec<u16>,
    /// The values, in the order of `ids`.
    vals: Vec<Value>,
    pub secrets: Secrets,
    /// The object's latest originating write (replication's quick check, and a delete's).
    pub version: Version,
    /// Each attribute's latest originating write after the object's creation, by attribute
    /// id (the password material under unicodePwd's): replication takes an attribute from a
    /// partner only where the partner's write is the later one, as AD's per-attribute
    /// metadata does. An attribute without one has kept its value since creation.
    pub meta: Vec<(u16, Version)>,
}

/// One originating write (AD's replication metadata, MS-DRSR's PROPERTY_META_DATA_EXT): how
/// many the object or attribute had, when this one was, on which DC. A higher version wins;
/// two DCs that wrote the same version between replications are told apart by time, then DC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub writes: u32,
    /// FILETIME of the write on the lab clock.
    pub at: i64,
    /// The originating DC's number in its domain (0 for the first).
    pub dc: u8,
}

impl Entry {
    pub fn new(dn: Dn) -> Entry {
        Entry { dn, ids: Vec::new(), vals: Vec::new(), secrets: Secrets::default(), version: Version::default(), meta: Vec::new() }
    }

    /// Gives back the room the arrays keep for growth: a stored object seldom grows.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.ids.shrink_to_fit();
        self.vals.shrink_to_fit();
    }

    /// An attribute's latest originating write (the default: none since creation).
    pub fn meta_of(&self, id: u16) -> Version {
        self.meta.iter().find(|(i, _)| *i == id).map(|(_, v)| *v).unwrap_or_default()
    }

    pub fn set_meta(&mut self, id: u16, v: Version) {
        match self.meta.iter_mut().find(|(i, _)| *i == id) {
            Some(m) => m.1 = v,
            None => self.meta.push((id, v)),
        }
    }

    /// The ids of the attributes it has values for.
    pub fn attr_ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.ids.chunk_by(|a, b| a == b).map(|c| c[0])
    }

    /// Every attribute, in schema id order.
    pub fn attrs(&self) -> impl Iterator<Item = Attr<'_>> {
        let mut at = 0;
        self.ids.chunk_by(|a, b| a == b).map(move |ids| {
            let values = &self.vals[at..at + ids.len()];
            at += ids.len();
            Attr { id: ids[0], values }
        })
    }

    /// Where an attribute's values are (an empty range at their place when it has none).
    fn range(&self, id: u16) -> std::ops::Range<usize> {
        let start = self.ids.partition_point(|&x| x < id);
        start..start + self.ids[start..].partition_point(|&x| x == id)
    }

    pub fn get(&self, name: impl AttrName) -> Option<Attr<'_>> {
        let id = name.id()?;
        let values = &self.vals[self.range(id)];
        (!values.is_empty()).then_some(Attr { id, values })
    }

    pub fn values(&self, name: impl AttrName) -> &[Value] {
        match name.id() {
            Some(id) => &self.vals[self.range(id)],
            None => &[],
        }
    }

    pub fn first_str(&self, name: impl AttrName) -> Option<&str> {
        self.values(name).first().and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn int(&self, name: impl AttrName) -> Option<i64> {
        self.values(name).first().and_then(|v| parse_int(v))
    }

    pub fn has(&self, name: impl AttrName) -> bool {
        !self.values(name).is_empty()
    }

    /// Replaces all values; no values removes the attribute. Only attributes of the lab's
    /// schema can be stored: every write path checks names against it first.
    pub fn set<V: Into<Value>>(&mut self, name: &str, values: impl IntoIterator<Item = V>) {
        let Some(id) = schema::attribute_id(name) else {
            debug_assert!(false, "{name} is not in the schema");
            return;
        };
        // inline when short, else the heap buffer cut to its length
        let values = values.into_iter().map(|v| {
            let mut v = v.into();
            v.shrink_to_fit();
            v
        });
        let r = self.range(id);
        let before = self.vals.len();
        self.vals.splice(r.clone(), values);
        let added = self.vals.len() + r.len() - before;
        self.ids.splice(r, std::iter::repeat_n(id, added));
    }

    pub fn set_str(&mut self, name: &str, value: impl Into<String>) {
        self.set(name, vec![value.into().into_bytes()]);
    }

    pub fn remove(&mut self, name: &str) {
        self.set(name, Vec::<Value>::new());
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
    let syntax = schema::published(attr).map(|d| d.syntax).unwrap_or(Syntax::String);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const NAMES: [&str; 5] = ["objectClass", "member", "cn", "description", "userAccountControl"];

    proptest! {
        /// The two side-by-side arrays read back as a map from attribute to values would:
        /// replacing a multi-valued attribute with more, fewer or no values leaves its
        /// neighbours as they were.
        #[test]
        fn attributes_read_back_as_a_map_of_value_lists(
            writes in prop::collection::vec((0..NAMES.len(), prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..4)), 0..40)
        ) {
            let mut e = Entry::new(Dn::root());
            let mut model: BTreeMap<u16, (&str, Vec<Vec<u8>>)> = BTreeMap::new();
            for (n, values) in writes {
                let name = NAMES[n];
                e.set(name, values.clone());
                let id = schema::attribute_id(name).unwrap();
                if values.is_empty() { model.remove(&id); } else { model.insert(id, (name, values)); }
                for name in NAMES {
                    let want = model.values().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or_default();
                    let got: Vec<Vec<u8>> = e.values(name).iter().map(|v| v.to_vec()).collect();
                    prop_assert_eq!(&got, &want, "{}", name);
                    prop_assert_eq!(e.has(name), !want.is_empty());
                }
                let listed: Vec<(&str, Vec<Vec<u8>>)> = e.attrs().map(|a| (a.name(), a.values.iter().map(|v| v.to_vec()).collect())).collect();
                let want: Vec<(&str, Vec<Vec<u8>>)> = model.values().cloned().collect();
                prop_assert_eq!(listed, want);
            }
        }
    }

    #[test]
    fn short_values_are_stored_inline_and_long_ones_without_spare_room() {
        let mut e = Entry::new(Dn::root());
        let mut long = Vec::with_capacity(100);
        long.extend_from_slice(b"CN=Person,CN=Schema,CN=Configuration,DC=testlab,DC=example");
        e.set("objectCategory", vec![long]);
        e.set_str("userAccountControl", "512");
        assert!(!e.values("userAccountControl")[0].spilled());
        let stored = &e.values("objectCategory")[0];
        assert!(stored.spilled() && stored.capacity() == stored.len());
    }
}
