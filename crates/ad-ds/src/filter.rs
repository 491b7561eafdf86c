//! Search filters (RFC 4515) evaluated as AD evaluates them: three-valued logic, matching
//! by attribute syntax, `(objectCategory=person)` shorthand, and AD's bitwise and in-chain
//! matching rules.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::entry::{fold, parse_int};
use crate::schema::{self, Syntax};

/// LDAP_MATCHING_RULE_BIT_AND.
pub const RULE_BIT_AND: &str = "1.2.840.113556.1.4.803";
/// LDAP_MATCHING_RULE_BIT_OR.
pub const RULE_BIT_OR: &str = "1.2.840.113556.1.4.804";
/// LDAP_MATCHING_RULE_IN_CHAIN (transitive member / memberOf).
pub const RULE_IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Equal(String, String),
    Substring { attr: String, initial: Option<String>, any: Vec<String>, last: Option<String> },
    GreaterOrEqual(String, String),
    LessOrEqual(String, String),
    Present(String),
    Approx(String, String),
    Extensible { rule: Option<String>, attr: Option<String>, value: String, dn_attributes: bool },
}

/// RFC 4511's three truth values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    Undefined,
}

impl Truth {
    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Undefined => Truth::Undefined,
        }
    }
    fn from_bool(b: bool) -> Truth {
        if b { Truth::True } else { Truth::False }
    }
}

/// What the evaluator needs of an object: its values (stored and constructed) and, for the
/// in-chain rule, the directory around it.
pub trait Subject {
    fn values_of(&self, attr: &str) -> Cow<'_, [crate::entry::Value]>;
    /// True when `dn` can be reached from this object by following `attr` (member, memberOf)
    /// transitively.
    fn in_chain(&self, attr: &str, dn: &str) -> bool;
}

impl Filter {
    pub fn matches(&self, s: &dyn Subject) -> bool {
        self.eval(s) == Truth::True
    }

    pub fn eval(&self, s: &dyn Subject) -> Truth {
        match self {
            Filter::And(fs) => {
                let mut out = Truth::True;
                for f in fs {
                    match f.eval(s) {
                        Truth::False => return Truth::False,
                        Truth::Undefined => out = Truth::Undefined,
                        Truth::True => {}
                    }
                }
                out
            }
            Filter::Or(fs) => {
                let mut out = Truth::False;
                for f in fs {
                    match f.eval(s) {
                        Truth::True => return Truth::True,
                        Truth::Undefined => out = Truth::Undefined,
                        Truth::False => {}
                    }
                }
                out
            }
            Filter::Not(f) => f.eval(s).not(),
            Filter::Present(a) => {
                if a.eq_ignore_ascii_case("objectClass") {
                    return Truth::True;
                }
                Truth::from_bool(!s.values_of(a).is_empty())
            }
            Filter::Equal(a, v) | Filter::Approx(a, v) => {
                let Some(def) = schema::published(a) else { return Truth::Undefined };
                let want = if def.name == "objectCategory" { Cow::Owned(expand_category(v).into_bytes()) } else { assertion_bytes(v) };
                let vals = s.values_of(a);
                Truth::from_bool(vals.iter().any(|x| equal(def.syntax, a, x, &want)))
            }
            Filter::GreaterOrEqual(a, v) => order(s, a, v, |o| o != Ordering::Less),
            Filter::LessOrEqual(a, v) => order(s, a, v, |o| o != Ordering::Greater),
            Filter::Substring { attr, initial, any, last } => {
                let Some(def) = schema::published(attr) else { return Truth::Undefined };
                if def.binary() {
                    return Truth::Undefined;
                }
                let vals = s.values_of(attr);
                Truth::from_bool(vals.iter().any(|x| {
                    let x = fold(&String::from_utf8_lossy(x));
                    substring_match(&x, initial.as_deref(), any, last.as_deref())
                }))
            }
            Filter::Extensible { rule, attr, value, .. } => {
                let (Some(rule), Some(attr)) = (rule, attr) else { return Truth::Undefined };
                if schema::published(attr).is_none() {
                    return Truth::Undefined;
                }
                match rule.as_str() {
                    RULE_BIT_AND | RULE_BIT_OR => {
                        let Ok(mask) = value.trim().parse::<i64>() else { return Truth::Undefined };
                        let vals = s.values_of(attr);
                        Truth::from_bool(vals.iter().filter_map(|v| parse_int(v)).any(|n| {
                            // AD compares bit patterns as unsigned 32-bit for Integer syntax.
                            let (n, m) = (n as u64, mask as u64);
                            if rule == RULE_BIT_AND { n & m == m } else { n & m != 0 }
                        }))
                    }
                    RULE_IN_CHAIN => Truth::from_bool(s.in_chain(attr, value)),
                    _ => Truth::Undefined,
                }
            }
        }
    }

    /// N when the filter requires `uSNChanged>=N` (itself, or in an AND).
    pub fn usn_floor(&self) -> Option<i64> {
        match self {
            Filter::GreaterOrEqual(a, v) if a.eq_ignore_ascii_case("uSNChanged") => v.trim().parse().ok(),
            Filter::And(fs) => fs.iter().find_map(Filter::usn_floor),
            _ => None,
        }
    }

    /// Attribute names the filter mentions (used to pick an index).
    pub fn indexed_equalities(&self) -> Vec<(&str, &str)> {
        match self {
            Filter::Equal(a, v) => vec![(a.as_str(), v.as_str())],
            Filter::And(fs) => fs.iter().flat_map(Filter::indexed_equalities).collect(),
            _ => vec![],
        }
    }
}

/// The bytes a filter value stands for: the value itself, or, for one that was not UTF-8 on
/// the wire, the bytes the codec kept as [`crate::codec::BINARY_MARK`] + hex.
pub fn assertion_bytes(v: &str) -> Cow<'_, [u8]> {
    let Some(hex) = v.strip_prefix(crate::codec::BINARY_MARK) else { return Cow::Borrowed(v.as_bytes()) };
    let bytes: Option<Vec<u8>> =
        (0..hex.len()).step_by(2).map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    bytes.map(Cow::Owned).unwrap_or(Cow::Borrowed(v.as_bytes()))
}

/// `person` → `CN=Person,CN=Schema,...` is matched by comparing the category's RDN value,
/// which is what AD's shorthand amounts to.
fn expand_category(v: &str) -> String {
    if v.contains('=') {
        return v.to_string();
    }
    schema::category_by_short_name(v).map(|c| format!("CN={c}")).unwrap_or_else(|| v.to_string())
}

fn equal(syntax: Syntax, attr: &str, stored: &[u8], asserted: &[u8]) -> bool {
    if attr.eq_ignore_ascii_case("objectCategory")
        && let (Ok(s), Ok(a)) = (std::str::from_utf8(stored), std::str::from_utf8(asserted))
    {
        // `CN=Person` (from the shorthand) matches the full category DN by its RDN.
        if !a.contains(',') {
            let rdn = s.split(',').next().unwrap_or("");
            return rdn.eq_ignore_ascii_case(a);
        }
    }
    let _ = syntax;
    crate::entry::values_equal(attr, stored, asserted)
}

fn order(s: &dyn Subject, a: &str, v: &str, ok: impl Fn(Ordering) -> bool) -> Truth {
    let Some(def) = schema::published(a) else { return Truth::Undefined };
    let vals = s.values_of(a);
    match def.syntax {
        Syntax::Integer | Syntax::LargeInteger => {
            let Ok(want) = v.trim().parse::<i64>() else { return Truth::Undefined };
            Truth::from_bool(vals.iter().filter_map(|x| parse_int(x)).any(|n| ok(n.cmp(&want))))
        }
        Syntax::Binary | Syntax::Guid | Syntax::Sid => {
            let want = assertion_bytes(v);
            Truth::from_bool(vals.iter().any(|x| ok(x.as_slice().cmp(&want))))
        }
        _ => {
            let want = fold(v);
            Truth::from_bool(vals.iter().any(|x| ok(fold(&String::from_utf8_lossy(x)).cmp(&want))))
        }
    }
}

fn substring_match(v: &str, initial: Option<&str>, any: &[String], last: Option<&str>) -> bool {
    let mut rest = v;
    if let Some(i) = initial {
        let i = fold(i);
        let Some(r) = rest.strip_prefix(i.as_str()) else { return false };
        rest = r;
    }
    for a in any {
        let a = fold(a);
        let Some(pos) = rest.find(a.as_str()) else { return false };
        rest = &rest[pos + a.len()..];
    }
    if let Some(l) = last {
        return rest.ends_with(fold(l).as_str());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    struct Obj(HashMap<String, Vec<String>>);
    impl Subject for Obj {
        fn values_of(&self, attr: &str) -> Cow<'_, [crate::entry::Value]> {
            let vals = self.0.get(&attr.to_ascii_lowercase()).map(|v| v.iter().map(|s| s.as_bytes().into()).collect());
            Cow::Owned(vals.unwrap_or_default())
        }
        fn in_chain(&self, _: &str, dn: &str) -> bool {
            dn.eq_ignore_ascii_case("CN=Outer,DC=x")
        }
    }

    fn user() -> Obj {
        Obj(HashMap::from([
            ("samaccountname".into(), vec!["User1".into()]),
            ("objectclass".into(), vec!["top".into(), "person".into(), "organizationalPerson".into(), "user".into()]),
            ("objectcategory".into(), vec!["CN=Person,CN=Schema,CN=Configuration,DC=testlab,DC=example".into()]),
            ("useraccountcontrol".into(), vec!["514".into()]),
            ("displayname".into(), vec!["User One (Lab)".into()]),
        ]))
    }

    fn eq(a: &str, v: &str) -> Filter {
        Filter::Equal(a.into(), v.into())
    }

    #[test]
    fn the_filters_ad_tools_send() {
        let u = user();
        let people = Filter::And(vec![eq("objectCategory", "person"), eq("objectClass", "user")]);
        assert!(people.matches(&u));
        assert!(eq("samaccountname", "USER1").matches(&u));
        let disabled = Filter::Extensible {
            rule: Some(RULE_BIT_AND.into()),
            attr: Some("userAccountControl".into()),
            value: "2".into(),
            dn_attributes: false,
        };
        assert!(disabled.matches(&u));
        let sub = Filter::Substring {
            attr: "displayName".into(),
            initial: Some("user".into()),
            any: vec!["ONE".into()],
            last: Some("lab)".into()),
        };
        assert!(sub.matches(&u));
        assert!(Filter::GreaterOrEqual("userAccountControl".into(), "512".into()).matches(&u));
        assert!(!Filter::LessOrEqual("userAccountControl".into(), "513".into()).matches(&u));
        let chain = Filter::Extensible {
            rule: Some(RULE_IN_CHAIN.into()),
            attr: Some("memberOf".into()),
            value: "CN=Outer,DC=x".into(),
            dn_attributes: false,
        };
        assert!(chain.matches(&u));
    }

    #[test]
    fn unknown_attributes_are_undefined_and_stay_undefined_under_not() {
        let u = user();
        assert_eq!(eq("noSuchAttr", "x").eval(&u), Truth::Undefined);
        assert_eq!(Filter::Not(Box::new(eq("noSuchAttr", "x"))).eval(&u), Truth::Undefined);
        // a known attribute that the object lacks is plainly false
        assert_eq!(Filter::Not(Box::new(eq("mail", "x"))).eval(&u), Truth::True);
    }

    fn leaf() -> impl Strategy<Value = Filter> {
        let attrs = prop::sample::select(vec!["sAMAccountName", "displayName", "userAccountControl", "mail", "bogus"]);
        let vals = prop::sample::select(vec!["User1", "user1", "514", "512", "x", "User One (Lab)"]);
        (attrs, vals, 0..4u8).prop_map(|(a, v, k)| match k {
            0 => Filter::Equal(a.into(), v.into()),
            1 => Filter::Present(a.into()),
            2 => Filter::GreaterOrEqual(a.into(), v.into()),
            _ => Filter::Substring { attr: a.into(), initial: Some(v[..1].into()), any: vec![], last: None },
        })
    }

    fn filter() -> impl Strategy<Value = Filter> {
        leaf().prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Filter::And),
                prop::collection::vec(inner.clone(), 0..4).prop_map(Filter::Or),
                inner.prop_map(|f| Filter::Not(Box::new(f))),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn de_morgan_holds_in_three_valued_logic(a in filter(), b in filter()) {
            let u = user();
            let lhs = Filter::Not(Box::new(Filter::And(vec![a.clone(), b.clone()])));
            let rhs = Filter::Or(vec![Filter::Not(Box::new(a.clone())), Filter::Not(Box::new(b.clone()))]);
            prop_assert_eq!(lhs.eval(&u), rhs.eval(&u));
            // double negation is the identity
            prop_assert_eq!(Filter::Not(Box::new(Filter::Not(Box::new(a.clone())))).eval(&u), a.eval(&u));
        }

        #[test]
        fn and_is_true_iff_every_part_is_true(fs in prop::collection::vec(filter(), 0..5)) {
            let u = user();
            let all = fs.iter().all(|f| f.eval(&u) == Truth::True);
            prop_assert_eq!(Filter::And(fs).eval(&u) == Truth::True, all);
        }

        #[test]
        fn equality_ignores_case_for_strings(s in "[A-Za-z0-9]{1,10}") {
            let o = Obj(HashMap::from([("samaccountname".into(), vec![s.clone()])]));
            prop_assert!(eq("sAMAccountName", &s.to_uppercase()).matches(&o));
            prop_assert!(eq("sAMAccountName", &s.to_lowercase()).matches(&o));
        }
    }
}
