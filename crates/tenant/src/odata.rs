//! Graph's query options on directory objects, as rules: `$filter` parsed and evaluated
//! against an object's JSON (eq, ne, not, in, startsWith, endsWith, `any()` on collections,
//! and/or, booleans, nulls, GUIDs), `$orderby`, `$search`'s `"property:term"` clauses, and
//! which of them Graph serves only as an *advanced query* (`ConsistencyLevel: eventual` and
//! `$count=true`) — Microsoft's "Advanced query capabilities on Microsoft Entra ID objects".
//! Plain synchronous Rust; the HTTP handlers turn the errors into Graph's bodies.

use serde_json::Value;

/// A literal in a filter (an unquoted GUID or date-time is a `Str`: compared as text).
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Str(String),
    Bool(bool),
    Null,
    Num(f64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A parsed `$filter`.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Cmp {
        path: String,
        op: Op,
        value: Lit,
    },
    StartsWith {
        path: String,
        value: String,
    },
    EndsWith {
        path: String,
        value: String,
    },
    In {
        path: String,
        values: Vec<Lit>,
    },
    /// `path/any(var: body)`: some element of the collection at `path` satisfies `body`.
    Any {
        path: String,
        var: String,
        body: Box<Expr>,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

/// Why a query is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryError {
    /// Not a filter Graph parses (`BadRequest`, "Invalid filter clause").
    Syntax(String),
    /// A property the resource cannot be filtered (or sorted) on: Request_UnsupportedQuery.
    Property(String),
    /// An operator Graph serves only in advanced queries, asked without them.
    NeedsAdvanced(&'static str),
}

impl QueryError {
    /// Graph's message, for a resource named as Graph names it (`User`, `Group`).
    pub fn message(&self, resource: &str) -> String {
        match self {
            QueryError::Syntax(m) => format!("Invalid filter clause: {m}"),
            QueryError::Property(p) => {
                format!("Unsupported or invalid query filter clause specified for property '{p}' of resource '{resource}'.")
            }
            QueryError::NeedsAdvanced(op) => format!(
                "Operator '{op}' is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information"
            ),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            QueryError::Syntax(_) => "BadRequest",
            _ => "Request_UnsupportedQuery",
        }
    }
}

/// The longest `$filter` read (Graph's URLs are bounded too).
pub const MAX_FILTER: usize = 4096;
/// How deep a filter may nest (parentheses, not, any).
const MAX_DEPTH: usize = 32;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(f64),
    Open,
    Close,
    Comma,
    Colon,
}

fn tokens(s: &str) -> Result<Vec<Tok>, QueryError> {
    let mut out = vec![];
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' | ':' => {
                chars.next();
                out.push(match c {
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    ',' => Tok::Comma,
                    _ => Tok::Colon,
                });
            }
            '\'' => {
                chars.next();
                let mut v = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\'')) if chars.peek().map(|x| x.1) == Some('\'') => {
                            chars.next();
                            v.push('\'');
                        }
                        Some((_, '\'')) => break,
                        Some((_, c)) => v.push(c),
                        None => return Err(QueryError::Syntax(format!("unterminated string literal at position {i}"))),
                    }
                }
                out.push(Tok::Str(v));
            }
            _ => {
                let mut w = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | ',' | ':' | '\'') {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                if w.is_empty() {
                    return Err(QueryError::Syntax(format!("unexpected '{c}' at position {i}")));
                }
                match w.parse::<f64>() {
                    Ok(n) => out.push(Tok::Num(n)),
                    _ => out.push(Tok::Word(w)),
                }
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
    }

    fn expect(&mut self, t: Tok, what: &str) -> Result<(), QueryError> {
        match self.next() {
            Some(x) if x == t => Ok(()),
            other => Err(QueryError::Syntax(format!("expected {what}, found {}", describe(other.as_ref())))),
        }
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.next();
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.next();
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(QueryError::Syntax("the filter nests too deeply".into()));
        }
        let e = if self.keyword("not") {
            self.next();
            Ok(Expr::Not(Box::new(self.unary()?)))
        } else {
            self.primary()
        };
        self.depth -= 1;
        e
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        match self.next() {
            Some(Tok::Open) => {
                let e = self.or()?;
                self.expect(Tok::Close, "')'")?;
                Ok(e)
            }
            Some(Tok::Word(w))
                if self.peek() == Some(&Tok::Open) && (w.eq_ignore_ascii_case("startswith") || w.eq_ignore_ascii_case("endswith")) =>
            {
                self.next();
                let path = self.path()?;
                self.expect(Tok::Comma, "','")?;
                let value = match self.next() {
                    Some(Tok::Str(s)) => s,
                    other => return Err(QueryError::Syntax(format!("{w} needs a string, found {}", describe(other.as_ref())))),
                };
                self.expect(Tok::Close, "')'")?;
                Ok(if w.eq_ignore_ascii_case("startswith") { Expr::StartsWith { path, value } } else { Expr::EndsWith { path, value } })
            }
            Some(Tok::Word(w)) => {
                // path/any(var: body)
                if let Some(path) = w.strip_suffix("/any").or_else(|| w.strip_suffix("/ANY")) {
                    self.expect(Tok::Open, "'('")?;
                    let var = match self.next() {
                        Some(Tok::Word(v)) => v,
                        other => return Err(QueryError::Syntax(format!("expected a lambda variable, found {}", describe(other.as_ref())))),
                    };
                    self.expect(Tok::Colon, "':'")?;
                    let body = self.or()?;
                    self.expect(Tok::Close, "')'")?;
                    return Ok(Expr::Any { path: path.to_string(), var, body: Box::new(body) });
                }
                let path = w;
                if self.keyword("in") {
                    self.next();
                    self.expect(Tok::Open, "'('")?;
                    let mut values = vec![self.literal()?];
                    while self.peek() == Some(&Tok::Comma) {
                        self.next();
                        values.push(self.literal()?);
                    }
                    self.expect(Tok::Close, "')'")?;
                    return Ok(Expr::In { path, values });
                }
                let op = match self.next() {
                    Some(Tok::Word(o)) => match o.to_ascii_lowercase().as_str() {
                        "eq" => Op::Eq,
                        "ne" => Op::Ne,
                        "gt" => Op::Gt,
                        "ge" => Op::Ge,
                        "lt" => Op::Lt,
                        "le" => Op::Le,
                        _ => return Err(QueryError::Syntax(format!("'{o}' is not an operator"))),
                    },
                    other => {
                        return Err(QueryError::Syntax(format!("expected an operator after '{path}', found {}", describe(other.as_ref()))));
                    }
                };
                Ok(Expr::Cmp { path, op, value: self.literal()? })
            }
            other => Err(QueryError::Syntax(format!("expected a property, found {}", describe(other.as_ref())))),
        }
    }

    fn path(&mut self) -> Result<String, QueryError> {
        match self.next() {
            Some(Tok::Word(w)) => Ok(w),
            other => Err(QueryError::Syntax(format!("expected a property, found {}", describe(other.as_ref())))),
        }
    }

    fn literal(&mut self) -> Result<Lit, QueryError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Num(n)) => Ok(Lit::Num(n)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Lit::Bool(true)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Lit::Bool(false)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Lit::Null),
            // a GUID or a date-time, unquoted as OData writes them (compared as text)
            Some(Tok::Word(w)) => Ok(Lit::Str(w)),
            other => Err(QueryError::Syntax(format!("expected a value, found {}", describe(other.as_ref())))),
        }
    }
}

fn describe(t: Option<&Tok>) -> String {
    match t {
        None => "the end".into(),
        Some(Tok::Word(w)) => format!("'{w}'"),
        Some(Tok::Str(s)) => format!("'{s}'"),
        Some(Tok::Num(n)) => n.to_string(),
        Some(Tok::Open) => "'('".into(),
        Some(Tok::Close) => "')'".into(),
        Some(Tok::Comma) => "','".into(),
        Some(Tok::Colon) => "':'".into(),
    }
}

/// Parses a `$filter`.
pub fn parse(filter: &str) -> Result<Expr, QueryError> {
    if filter.len() > MAX_FILTER {
        return Err(QueryError::Syntax(format!("the filter is longer than {MAX_FILTER} characters")));
    }
    let mut p = Parser { toks: tokens(filter)?, at: 0, depth: 0 };
    let e = p.or()?;
    match p.peek() {
        None => Ok(e),
        Some(t) => Err(QueryError::Syntax(format!("unexpected {} after the expression", describe(Some(t))))),
    }
}

/// What a resource lets be filtered: each property and whether `startsWith` applies (strings).
pub struct Filterable<'a> {
    pub resource: &'a str,
    /// (property, its values are strings)
    pub properties: &'a [(&'a str, bool)],
    /// Collections `any()` reaches, with what their elements' paths may name (`""` for a
    /// collection of strings).
    pub collections: &'a [(&'a str, &'a [&'a str])],
}

/// Checks `e` against what the resource allows: a property outside the list, `startsWith`
/// on a non-string, and — without advanced queries — `ne`, `not` and `endsWith`.
pub fn check(e: &Expr, allowed: &Filterable, advanced: bool) -> Result<(), QueryError> {
    let prop = |path: &str, string_op: bool| -> Result<(), QueryError> {
        match allowed.properties.iter().find(|(p, _)| p.eq_ignore_ascii_case(path)) {
            Some((_, is_string)) if !string_op || *is_string => Ok(()),
            _ => Err(QueryError::Property(path.to_string())),
        }
    };
    match e {
        Expr::Cmp { path, op, .. } => {
            prop(path, false)?;
            if *op == Op::Ne && !advanced {
                return Err(QueryError::NeedsAdvanced("ne"));
            }
            Ok(())
        }
        Expr::In { path, .. } => prop(path, false),
        Expr::StartsWith { path, .. } => prop(path, true),
        Expr::EndsWith { path, .. } => {
            prop(path, true)?;
            if !advanced { Err(QueryError::NeedsAdvanced("endsWith")) } else { Ok(()) }
        }
        Expr::Not(inner) => {
            if !advanced {
                return Err(QueryError::NeedsAdvanced("not"));
            }
            check(inner, allowed, advanced)
        }
        Expr::And(a, b) | Expr::Or(a, b) => {
            check(a, allowed, advanced)?;
            check(b, allowed, advanced)
        }
        Expr::Any { path, var, body } => {
            let Some((_, elements)) = allowed.collections.iter().find(|(c, _)| c.eq_ignore_ascii_case(path)) else {
                return Err(QueryError::Property(path.clone()));
            };
            check_lambda(body, var, elements, advanced)
        }
    }
}

fn check_lambda(e: &Expr, var: &str, elements: &[&str], advanced: bool) -> Result<(), QueryError> {
    let ok = |path: &str| {
        let rest = if path == var { Some("") } else { path.strip_prefix(var).and_then(|r| r.strip_prefix('/')) };
        match rest {
            Some(r) if elements.iter().any(|x| x.eq_ignore_ascii_case(r)) => Ok(()),
            _ => Err(QueryError::Property(path.to_string())),
        }
    };
    match e {
        Expr::Cmp { path, op, .. } => {
            ok(path)?;
            if *op == Op::Ne && !advanced { Err(QueryError::NeedsAdvanced("ne")) } else { Ok(()) }
        }
        Expr::In { path, .. } | Expr::StartsWith { path, .. } => ok(path),
        Expr::EndsWith { path, .. } => {
            ok(path)?;
            if !advanced { Err(QueryError::NeedsAdvanced("endsWith")) } else { Ok(()) }
        }
        Expr::And(a, b) | Expr::Or(a, b) => {
            check_lambda(a, var, elements, advanced)?;
            check_lambda(b, var, elements, advanced)
        }
        Expr::Not(_) | Expr::Any { .. } => Err(QueryError::Syntax("only comparisons inside any()".into())),
    }
}

/// A property's value in `obj` (case-insensitive names; `a/b` reaches into objects).
fn lookup<'v>(obj: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = obj;
    for seg in path.split('/') {
        let Value::Object(m) = cur else { return None };
        cur = m.iter().find(|(k, _)| k.eq_ignore_ascii_case(seg)).map(|(_, v)| v)?;
    }
    Some(cur)
}

/// String comparisons on directory objects ignore case, as Graph's do.
fn compare(have: Option<&Value>, op: Op, want: &Lit) -> bool {
    use std::cmp::Ordering;
    let have = have.unwrap_or(&Value::Null);
    let ord: Option<Ordering> = match (have, want) {
        (Value::Null, Lit::Null) => Some(Ordering::Equal),
        (Value::String(h), Lit::Str(w)) => Some(h.to_lowercase().cmp(&w.to_lowercase())),
        (Value::Bool(h), Lit::Bool(w)) => Some(h.cmp(w)),
        (Value::Number(h), Lit::Num(w)) => h.as_f64().and_then(|h| h.partial_cmp(w)),
        _ => None,
    };
    match op {
        Op::Eq => ord == Some(Ordering::Equal),
        Op::Ne => ord != Some(Ordering::Equal),
        Op::Gt => ord == Some(Ordering::Greater),
        Op::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
        Op::Lt => ord == Some(Ordering::Less),
        Op::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
    }
}

/// Whether `obj` satisfies `e`.
pub fn eval(e: &Expr, obj: &Value) -> bool {
    eval_in(e, obj, None)
}

fn eval_in(e: &Expr, obj: &Value, lambda: Option<(&str, &Value)>) -> bool {
    let get = |path: &str| -> Option<&Value> {
        if let Some((var, elem)) = lambda {
            if path == var {
                return Some(elem);
            }
            if let Some(rest) = path.strip_prefix(var).and_then(|r| r.strip_prefix('/')) {
                return lookup(elem, rest);
            }
        }
        lookup(obj, path)
    };
    let text = |path: &str| get(path).and_then(Value::as_str).map(str::to_lowercase);
    match e {
        Expr::Cmp { path, op, value } => compare(get(path), *op, value),
        Expr::In { path, values } => values.iter().any(|v| compare(get(path), Op::Eq, v)),
        Expr::StartsWith { path, value } => text(path).is_some_and(|h| h.starts_with(&value.to_lowercase())),
        Expr::EndsWith { path, value } => text(path).is_some_and(|h| h.ends_with(&value.to_lowercase())),
        Expr::And(a, b) => eval_in(a, obj, lambda) && eval_in(b, obj, lambda),
        Expr::Or(a, b) => eval_in(a, obj, lambda) || eval_in(b, obj, lambda),
        Expr::Not(a) => !eval_in(a, obj, lambda),
        Expr::Any { path, var, body } => match lookup(obj, path) {
            Some(Value::Array(items)) => items.iter().any(|item| eval_in(body, obj, Some((var, item)))),
            _ => false,
        },
    }
}

/// A parsed `$orderby`: the property and whether descending.
pub fn parse_orderby(s: &str, sortable: &[(&str, bool)], advanced: bool, resource: &str) -> Result<(String, bool), String> {
    let mut parts = s.split_whitespace();
    let prop = parts.next().unwrap_or_default();
    let desc = match parts.next().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(format!("Syntax error: '{other}' is not 'asc' or 'desc' in $orderby.")),
    };
    if parts.next().is_some() || s.contains(',') {
        return Err("Sorting on more than one property is not supported.".into());
    }
    match sortable.iter().find(|(p, _)| p.eq_ignore_ascii_case(prop)) {
        Some((p, needs_advanced)) if !*needs_advanced || advanced => Ok((p.to_string(), desc)),
        _ => Err(format!("Order by not supported for property '{prop}' of resource '{resource}'.")),
    }
}

/// Sorts by a property (strings ignoring case; nulls first, as Graph puts them).
pub fn sort_by(items: &mut [Value], prop: &str, desc: bool) {
    items.sort_by(|a, b| {
        let key = |v: &Value| lookup(v, prop).and_then(Value::as_str).map(str::to_lowercase);
        let o = key(a).cmp(&key(b));
        if desc { o.reverse() } else { o }
    });
}

/// A `$search` expression: `"property:term"` clauses joined by AND/OR (OR binding looser).
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    /// Alternatives, each a list of clauses that must all match.
    any_of: Vec<Vec<(String, String)>>,
}

impl Search {
    /// Parses `$search`; `searchable` names the properties allowed.
    pub fn parse(s: &str, searchable: &[&str]) -> Result<Search, String> {
        let s = s.trim();
        if s.len() > MAX_FILTER {
            return Err("The $search value is too long.".into());
        }
        let mut any_of = vec![];
        for alternative in split_words(s, " OR ") {
            let mut all = vec![];
            for clause in split_words(&alternative, " AND ") {
                let clause = clause.trim();
                let inner = clause
                    .strip_prefix('"')
                    .and_then(|c| c.strip_suffix('"'))
                    .ok_or_else(|| format!("Invalid $search clause {clause}: write it as \"property:term\", in double quotes."))?;
                let (prop, term) = inner
                    .split_once(':')
                    .ok_or_else(|| format!("Invalid $search clause {clause}: name the property, as \"displayName:term\"."))?;
                let Some(p) = searchable.iter().find(|p| p.eq_ignore_ascii_case(prop.trim())) else {
                    return Err(format!("Invalid $search property '{}'.", prop.trim()));
                };
                all.push((p.to_string(), term.trim().to_lowercase()));
            }
            any_of.push(all);
        }
        Ok(Search { any_of })
    }

    /// Graph's tokenized match: the term begins the value or one of its words (split at
    /// spaces, punctuation and case changes: "displayName:wa" finds "Contoso Wagner" and
    /// "JohnWagner").
    pub fn matches(&self, obj: &Value) -> bool {
        self.any_of.iter().any(|all| {
            all.iter().all(|(prop, term)| {
                let Some(v) = lookup(obj, prop).and_then(Value::as_str) else { return false };
                words(v).iter().any(|w| w.starts_with(term.as_str())) || v.to_lowercase().starts_with(term.as_str())
            })
        })
    }
}

fn split_words(s: &str, sep: &str) -> Vec<String> {
    // outside quotes only
    let mut out = vec![];
    let (mut cur, mut quoted, mut i) = (String::new(), false, 0);
    let b = s.as_bytes();
    while i < s.len() {
        if b[i] == b'"' {
            quoted = !quoted;
        }
        if !quoted && s[i..].starts_with(sep) {
            out.push(std::mem::take(&mut cur));
            i += sep.len();
            continue;
        }
        let c = s[i..].chars().next().expect("a char");
        cur.push(c);
        i += c.len_utf8();
    }
    out.push(cur);
    out
}

fn words(v: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in v.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// An opaque `$skiptoken` for the page that starts at `offset` (tied to nothing secret: a
/// forged one only pages through what the caller may read anyway).
pub fn skiptoken(offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("RFNwdAIAAQAAA:{offset}"))
}

/// The offset a `$skiptoken` names.
pub fn parse_skiptoken(t: &str) -> Option<usize> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t).ok()?;
    String::from_utf8(raw).ok()?.strip_prefix("RFNwdAIAAQAAA:")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const USERS: Filterable = Filterable {
        resource: "User",
        properties: &[
            ("displayName", true),
            ("userPrincipalName", true),
            ("mail", true),
            ("accountEnabled", false),
            ("onPremisesSyncEnabled", false),
            ("id", false),
        ],
        collections: &[("assignedLicenses", &["skuId"]), ("otherMails", &[""])],
    };

    fn user() -> Value {
        json!({
            "displayName": "Adele Vance", "userPrincipalName": "AdeleV@contoso.com", "mail": null,
            "accountEnabled": true, "onPremisesSyncEnabled": null,
            "assignedLicenses": [{ "skuId": "078d2b04-f1bd-4111-bbd4-b4b1b354cef4" }], "otherMails": ["adele@alt.example"],
        })
    }

    fn yes(f: &str) -> bool {
        let e = parse(f).unwrap_or_else(|e| panic!("{f}: {e:?}"));
        check(&e, &USERS, true).unwrap_or_else(|e| panic!("{f}: {e:?}"));
        eval(&e, &user())
    }

    #[test]
    fn filters_as_the_sdks_send_them() {
        for f in [
            "displayName eq 'adele vance'",
            "startswith(displayName,'ad')",
            "startsWith(userPrincipalName, 'ADELE')",
            "accountEnabled eq true",
            "mail eq null",
            "onPremisesSyncEnabled ne true",
            "userPrincipalName in ('x@contoso.com', 'adelev@contoso.com')",
            "accountEnabled eq true and startswith(displayName,'A')",
            "displayName eq 'x' or accountEnabled eq true",
            "assignedLicenses/any(x:x/skuId eq 078d2b04-f1bd-4111-bbd4-b4b1b354cef4)",
            "otherMails/any(m:startswith(m,'adele'))",
            "not(displayName eq 'Bob')",
            "NOT startsWith(displayName, 'Conf')",
            "endsWith(userPrincipalName,'@contoso.com')",
            "displayName eq 'O''Brien' or (accountEnabled eq true and mail eq null)",
        ] {
            assert!(yes(f), "{f}");
        }
        for f in [
            "displayName eq 'Bob'",
            "accountEnabled eq false",
            "mail ne null",
            "startswith(displayName,'Bo')",
            "assignedLicenses/any(x:x/skuId eq 84a661c4-e949-4bd2-a560-ed7766fcaf2b)",
            "displayName eq 'Adele Vance' and accountEnabled eq false",
        ] {
            assert!(!yes(f), "{f}");
        }
    }

    #[test]
    fn what_graph_refuses_is_refused_with_its_reason() {
        let refusal = |f: &str, advanced: bool| parse(f).and_then(|e| check(&e, &USERS, advanced)).unwrap_err();
        assert_eq!(refusal("displayName ne 'x'", false), QueryError::NeedsAdvanced("ne"));
        assert_eq!(refusal("not(displayName eq 'x')", false), QueryError::NeedsAdvanced("not"));
        assert_eq!(refusal("endswith(mail,'@x')", false), QueryError::NeedsAdvanced("endsWith"));
        assert_eq!(refusal("jobTitle eq 'x'", true), QueryError::Property("jobTitle".into()));
        assert_eq!(refusal("startswith(accountEnabled,'t')", true), QueryError::Property("accountEnabled".into()));
        assert_eq!(refusal("memberOf/any(g:g eq 'x')", true), QueryError::Property("memberOf".into()));
        for bad in [
            "displayName eq",
            "displayName xx 'a'",
            "(displayName eq 'a'",
            "displayName eq 'a' garbage",
            "startswith(displayName, 3)",
            "displayName eq 'open",
        ] {
            assert!(matches!(parse(bad), Err(QueryError::Syntax(_))), "{bad}");
        }
        assert!(matches!(parse(&"not ".repeat(100)), Err(QueryError::Syntax(_))), "depth is bounded");
        assert_eq!(
            QueryError::NeedsAdvanced("endsWith").message("User"),
            "Operator 'endsWith' is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information"
        );
    }

    #[test]
    fn literals_operators_and_lambdas_are_read_and_judged() {
        let cmp = |f: &str| match parse(f).unwrap() {
            Expr::Cmp { op, value, .. } => (op, value),
            other => panic!("{other:?}"),
        };
        assert_eq!(cmp("accountEnabled eq false"), (Op::Eq, Lit::Bool(false)));
        assert_eq!(cmp("accountEnabled eq TRUE"), (Op::Eq, Lit::Bool(true)));
        assert_eq!(cmp("mail eq null"), (Op::Eq, Lit::Null));
        assert_eq!(cmp("n gt 3"), (Op::Gt, Lit::Num(3.0)));
        assert_eq!(cmp("n ge 3"), (Op::Ge, Lit::Num(3.0)));
        assert_eq!(cmp("n lt 3"), (Op::Lt, Lit::Num(3.0)));
        assert_eq!(cmp("n le 3"), (Op::Le, Lit::Num(3.0)));
        assert_eq!(cmp("n NE 3"), (Op::Ne, Lit::Num(3.0)));
        let u = json!({ "displayName": "Adele Vance", "n": 3 });
        for (f, want) in [
            ("displayName gt 'Adam'", true),
            ("displayName lt 'Adam'", false),
            ("n ge 3", true),
            ("n gt 3", false),
            ("n le 3", true),
            ("n lt 3", false),
        ] {
            assert_eq!(eval(&parse(f).unwrap(), &u), want, "{f}");
        }
        // what the parser says it found
        for (f, found) in [
            ("displayName", "found the end"),
            ("startswith(displayName:'x')", "found ':'"),
            ("(", "found the end"),
            ("displayName eq (", "found '('"),
        ] {
            let Err(QueryError::Syntax(m)) = parse(f) else { panic!("{f} parses") };
            assert!(m.contains(found), "{f}: {m}");
        }
        // nesting is bounded; siblings are not nesting
        assert!(parse(&format!("{}a eq 'b'", "not ".repeat(31))).is_ok());
        assert!(parse(&format!("{}a eq 'b'", "not ".repeat(32))).is_err());
        let siblings = (0..40).map(|i| format!("(a eq '{i}')")).collect::<Vec<_>>().join(" and ");
        assert!(parse(&siblings).is_ok());
        // the length bound
        let long = format!("a eq '{}'", "x".repeat(MAX_FILTER - 7));
        assert_eq!(long.len(), MAX_FILTER);
        assert!(parse(&long).is_ok());
        assert!(parse(&format!("{long} ")).is_err());
        // inside any(): only the element's own paths, and the advanced operators still advanced
        let refused = |f: &str, advanced: bool| parse(f).and_then(|e| check(&e, &USERS, advanced)).err();
        assert_eq!(refused("assignedLicenses/any(x:x/foo eq 'a')", true), Some(QueryError::Property("x/foo".into())));
        assert_eq!(refused("assignedLicenses/any(x:y/skuId eq 'a')", true), Some(QueryError::Property("y/skuId".into())));
        assert_eq!(refused("assignedLicenses/any(x:x/skuId ne 'a')", false), Some(QueryError::NeedsAdvanced("ne")));
        assert_eq!(refused("assignedLicenses/any(x:x/skuId ne 'a')", true), None);
        assert_eq!(refused("otherMails/any(m:endswith(m,'x'))", false), Some(QueryError::NeedsAdvanced("endsWith")));
        assert_eq!(refused("otherMails/any(m:endswith(m,'x') or m in ('a'))", true), None);
        assert_eq!(refused("otherMails/any(m:m/x eq 'a')", true), Some(QueryError::Property("m/x".into())));
        assert!(matches!(refused("otherMails/any(m:not(m eq 'a'))", true), Some(QueryError::Syntax(_))));
        assert_eq!(QueryError::Syntax("x".into()).code(), "BadRequest");
        assert_eq!(QueryError::Property("x".into()).code(), "Request_UnsupportedQuery");
        assert_eq!(QueryError::NeedsAdvanced("ne").code(), "Request_UnsupportedQuery");
    }

    #[test]
    fn search_matches_words_and_orderby_sorts() {
        let s = Search::parse("\"displayName:van\"", &["displayName", "mail"]).unwrap();
        assert!(s.matches(&user()));
        assert!(!Search::parse("\"displayName:dele\"", &["displayName"]).unwrap().matches(&user()), "a word's start, not its middle");
        assert!(Search::parse("\"displayName:bob\" OR \"displayName:adele\"", &["displayName"]).unwrap().matches(&user()));
        assert!(!Search::parse("\"displayName:bob\" AND \"displayName:adele\"", &["displayName"]).unwrap().matches(&user()));
        assert!(Search::parse("\"displayName:wag\"", &["displayName"]).unwrap().matches(&json!({ "displayName": "JohnWagner" })));
        assert!(Search::parse("displayName:adele", &["displayName"]).is_err(), "unquoted");
        assert!(Search::parse("\"jobTitle:x\"", &["displayName"]).is_err());
        let sortable = [("displayName", false), ("userPrincipalName", false), ("createdDateTime", true)];
        assert_eq!(parse_orderby("displayName desc", &sortable, false, "User"), Ok(("displayName".into(), true)));
        assert!(parse_orderby("createdDateTime", &sortable, false, "User").is_err());
        assert!(parse_orderby("createdDateTime", &sortable, true, "User").is_ok());
        assert!(parse_orderby("givenName", &sortable, true, "User").is_err());
        let mut v = vec![json!({"displayName": "b"}), json!({"displayName": "A"}), json!({"displayName": "c"})];
        sort_by(&mut v, "displayName", false);
        assert_eq!(v[0]["displayName"], "A");
        assert!(parse_orderby("displayName asc extra", &sortable, true, "User").is_err());
        assert!(parse_orderby("displayName,userPrincipalName", &sortable, true, "User").is_err());
        // a quoted clause is one clause, whatever it holds
        let s = Search::parse("\"displayName:van OR x\"", &["displayName"]).unwrap();
        assert!(s.matches(&json!({ "displayName": "Van or x" })) && !s.matches(&user()), "{s:?}");
        let long = format!("\"displayName:{}\"", "x".repeat(MAX_FILTER - 14));
        assert_eq!(long.len(), MAX_FILTER);
        assert!(Search::parse(&long, &["displayName"]).is_ok());
        assert!(Search::parse(&format!("{long} "), &["displayName"]).is_ok(), "trimmed");
        assert!(Search::parse(&format!("{long}x"), &["displayName"]).is_err());
        assert_eq!(parse_skiptoken(&skiptoken(200)), Some(200));
        assert_eq!(parse_skiptoken("nonsense"), None);
    }
}
