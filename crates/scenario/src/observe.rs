//! What a step came to ([`Observed`]), and whether that is what the scenario expected:
//! plain data and plain comparisons, unit-tested without a lab.

use serde_json::Value;

use crate::model::Expect;

/// One step's result, in the terms expectations use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub ok: bool,
    /// LDAP: the result code and its diagnostic text.
    pub ldap: Option<(u32, String)>,
    /// HTTP: the status and the body (JSON, or Null).
    pub http: Option<(u16, Value)>,
    /// A resetPassword operation's status and statusDetail.
    pub operation: Option<(String, Option<String>)>,
    pub count: Option<usize>,
    pub compare: Option<bool>,
    /// For `expect.*` steps: what did not match.
    pub mismatch: Option<String>,
    /// HTTP: the response's headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// An LDAP search's answer as JSON (`entries`, `references`), for `expect.json`.
    pub answer: Option<Value>,
}

/// A value by dotted path (`value.0.id`); a key that itself holds dots, as OData's
/// `@odata.nextLink` does, is found whole (the longest key that fits wins).
pub fn at_path<'v>(mut v: &'v Value, path: &str) -> Option<&'v Value> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut i = 0;
    while i < parts.len() {
        if let (Value::Array(items), Ok(n)) = (v, parts[i].parse::<usize>()) {
            v = items.get(n)?;
            i += 1;
            continue;
        }
        let j = (i + 1..=parts.len()).rev().find(|j| v.get(parts[i..*j].join(".")).is_some())?;
        v = v.get(parts[i..j].join("."))?;
        i = j;
    }
    Some(v)
}

impl Observed {
    pub fn ldap(rc: u32, text: &str) -> Observed {
        // compareFalse and compareTrue are answers, not failures
        Observed { ok: matches!(rc, 0 | 5 | 6), ldap: Some((rc, text.to_string())), ..Default::default() }
    }

    pub fn http(status: u16, body: Value) -> Observed {
        Observed { ok: (200..300).contains(&status), http: Some((status, body)), ..Default::default() }
    }

    /// An `expect.*` step: passed, or what was different.
    pub fn check(mismatch: Option<String>) -> Observed {
        Observed { ok: mismatch.is_none(), mismatch, ..Default::default() }
    }

    fn error_code(&self) -> Option<&str> {
        self.http.as_ref().and_then(|(_, b)| b.pointer("/error/code").and_then(Value::as_str))
    }

    /// A field of the JSON answer by dotted path (`value.0.id`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json_at(&self, path: &str) -> Option<&Value> {
        at_path(self.http.as_ref().map(|(_, b)| b).or(self.answer.as_ref())?, path)
    }

    fn aadsts(&self) -> Option<u64> {
        self.http.as_ref().and_then(|(_, b)| b.pointer("/error_codes/0").and_then(Value::as_u64))
    }

    fn message(&self) -> Option<String> {
        if let Some((_, text)) = &self.ldap {
            return Some(text.clone());
        }
        let (_, b) = self.http.as_ref()?;
        b.pointer("/error/message").or_else(|| b.get("error_description")).and_then(Value::as_str).map(str::to_string)
    }

    /// A one-line description, for "actual:".
    pub fn describe(&self) -> String {
        if let Some(m) = &self.mismatch {
            return m.clone();
        }
        let mut parts = vec![];
        if let Some((rc, text)) = &self.ldap {
            parts.push(format!("ldap {} ({rc})", ldap_result_name(*rc)));
            if let Some(d) = ad_data(text) {
                parts.push(format!("data {d}"));
            }
            if *rc != 0 && !text.is_empty() {
                parts.push(format!("\"{text}\""));
            }
        }
        if let Some((status, _)) = &self.http {
            parts.push(format!("HTTP {status}"));
            if let Some(a) = self.aadsts() {
                parts.push(format!("AADSTS{a}"));
            } else if let Some(c) = self.error_code() {
                parts.push(c.to_string());
            }
            if let Some(m) = self.message().filter(|_| !self.ok) {
                parts.push(format!("\"{}\"", m.lines().next().unwrap_or("")));
            }
        }
        if let Some((status, detail)) = &self.operation {
            parts.push(format!("operation {status}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()));
        }
        if let Some(c) = self.count {
            parts.push(format!("{c} entries"));
        }
        if let Some(c) = self.compare {
            parts.push(format!("compare {c}"));
        }
        if parts.is_empty() {
            parts.push(if self.ok { "ok".into() } else { "failed".into() });
        }
        parts.join(", ")
    }
}

/// What happened, for "actual:", with the answer's fields the expectation named.
pub fn describe_against(e: &Expect, got: &Observed) -> String {
    let mut text = got.describe();
    if let Expect::Outcome(o) = e {
        for path in o.json.iter().flatten().map(|(p, _)| p) {
            match got.json_at(path) {
                Some(v) => text.push_str(&format!(", answer's {path} = {v}")),
                None => text.push_str(&format!(", no {path} in the answer")),
            }
        }
        for name in o.headers.iter().flatten().map(|(n, _)| n) {
            match got.header(name) {
                Some(v) => text.push_str(&format!(", {name}: {v}")),
                None => text.push_str(&format!(", no {name} header")),
            }
        }
    }
    text
}

/// How an expectation reads, for "expected:".
pub fn describe_expect(e: &Expect) -> String {
    let o = match e {
        Expect::Ok => return "ok".into(),
        Expect::Failure => return "a failure (any code)".into(),
        Expect::Outcome(o) => o,
    };
    let mut parts = vec![];
    if let Some(l) = &o.ldap {
        parts.push(format!("ldap {l}"));
    }
    if let Some(d) = &o.data {
        parts.push(format!("data {d}"));
    }
    if let Some(s) = o.status {
        parts.push(format!("HTTP {s}"));
    }
    if let Some(a) = o.aadsts {
        parts.push(format!("AADSTS{a}"));
    }
    for code in [&o.graph, &o.sspr].into_iter().flatten() {
        parts.push(code.clone());
    }
    if let Some(op) = &o.operation {
        parts.push(format!("operation {op}{}", o.detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()));
    }
    if let Some(c) = o.count {
        parts.push(format!("{c} entries"));
    }
    if let Some(c) = o.compare {
        parts.push(format!("compare {c}"));
    }
    if let Some(m) = &o.message {
        parts.push(format!("message containing \"{m}\""));
    }
    for (path, want) in o.json.iter().flatten() {
        parts.push(format!("answer's {path} = {want}"));
    }
    for (name, want) in o.headers.iter().flatten() {
        parts.push(match want.as_deref() {
            None => format!("no {name} header"),
            Some("*") => format!("a {name} header"),
            Some(v) => format!("{name}: {v}"),
        });
    }
    parts.join(", ")
}

/// Does what happened match what was expected?
pub fn matches(e: &Expect, got: &Observed) -> bool {
    let o = match e {
        Expect::Ok => return got.ok,
        Expect::Failure => return !got.ok,
        Expect::Outcome(o) => o,
    };
    // details of a success (count, compare, a succeeded operation) do not imply failure; a
    // JSON field alone says nothing either way
    let success_detail = o.count.is_some() || o.compare.is_some() || o.operation.as_deref() == Some("succeeded");
    let failure_named = o.ldap.as_deref().is_some_and(|l| l != "success")
        || o.data.is_some()
        || o.graph.is_some()
        || o.aadsts.is_some()
        || o.sspr.is_some()
        || o.operation.as_deref() == Some("failed")
        || o.status.is_some_and(|s| !(200..300).contains(&s));
    if failure_named && got.ok && o.operation.is_none() {
        return false;
    }
    if !failure_named && success_detail && !got.ok {
        return false;
    }
    let ldap_ok =
        o.ldap.as_ref().is_none_or(|want| got.ldap.as_ref().is_some_and(|(rc, _)| ldap_result_name(*rc).eq_ignore_ascii_case(want)));
    let data_ok = o.data.as_ref().is_none_or(|want| got.ldap.as_ref().and_then(|(_, t)| ad_data(t)).is_some_and(|d| same_hex(&d, want)));
    let status_ok = o.status.is_none_or(|want| got.http.as_ref().is_some_and(|(s, _)| *s == want));
    let code_ok = [&o.graph, &o.sspr].into_iter().flatten().all(|want| got.error_code() == Some(want.as_str()));
    let aadsts_ok = o.aadsts.is_none_or(|want| got.aadsts() == Some(u64::from(want)));
    let op_ok = o.operation.as_ref().is_none_or(|want| got.operation.as_ref().is_some_and(|(s, _)| s == want));
    let detail_ok = o.detail.as_ref().is_none_or(|want| got.operation.as_ref().and_then(|(_, d)| d.as_ref()) == Some(want));
    let count_ok = o.count.is_none_or(|want| got.count == Some(want));
    let compare_ok = o.compare.is_none_or(|want| got.compare == Some(want));
    let message_ok = o.message.as_ref().is_none_or(|want| got.message().is_some_and(|m| m.contains(want.as_str())));
    // `null` is null or absent, as a header's `null` is absent; `"*"` any value present
    let json_ok = o.json.iter().flatten().all(|(path, want)| match got.json_at(path) {
        Some(v) => v == want || (want == "*" && !v.is_null()),
        None => want.is_null(),
    });
    let headers_ok = o.headers.iter().flatten().all(|(name, want)| match (want.as_deref(), got.header(name)) {
        (None, found) => found.is_none(),
        (Some("*"), found) => found.is_some(),
        (Some(w), found) => found == Some(w),
    });
    ldap_ok
        && data_ok
        && status_ok
        && code_ok
        && aadsts_ok
        && op_ok
        && detail_ok
        && count_ok
        && compare_ok
        && message_ok
        && json_ok
        && headers_ok
}

/// The `data` sub-code AD puts in a diagnostic: "…AcceptSecurityContext error, data 52e, …"
/// for binds, otherwise the leading Win32 code ("0000052D: AtrErr: …").
pub fn ad_data(text: &str) -> Option<String> {
    let hex_after = |i: usize| -> Option<String> {
        let code: String = text[i..].chars().take_while(char::is_ascii_hexdigit).collect();
        (!code.is_empty()).then_some(code)
    };
    const BIND: &str = "AcceptSecurityContext error, data ";
    if let Some(i) = text.find(BIND) {
        return hex_after(i + BIND.len());
    }
    let head: String = text.chars().take_while(char::is_ascii_hexdigit).collect();
    if head.len() == 8 && text[8..].starts_with(':') {
        return Some(head);
    }
    text.find("data ").and_then(|i| hex_after(i + 5))
}

fn same_hex(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim_start_matches("0x").trim_start_matches('0').to_ascii_lowercase();
    norm(a) == norm(b)
}

/// RFC 4511's names for result codes (the names expectations use).
pub fn ldap_result_name(rc: u32) -> &'static str {
    match rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        5 => "compareFalse",
        6 => "compareTrue",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        14 => "saslBindInProgress",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        33 => "aliasProblem",
        34 => "invalidDNSyntax",
        36 => "aliasDereferencingProblem",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        54 => "loopDetect",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        71 => "affectsMultipleDSAs",
        80 => "other",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;
    use serde_json::json;

    fn outcome(f: impl FnOnce(&mut Outcome)) -> Expect {
        let mut o = Outcome::default();
        f(&mut o);
        Expect::Outcome(o)
    }

    #[test]
    fn ad_data_codes_are_found_in_both_of_ads_forms() {
        let bind = "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563";
        assert_eq!(ad_data(bind).as_deref(), Some("52e"));
        let pwd = "0000052D: AtrErr: DSID-03190F80, #1:\n\t0: 0000052D: DSID-03190F80, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)\n";
        assert_eq!(ad_data(pwd).as_deref(), Some("0000052D"));
        assert_eq!(ad_data("no code here"), None);
        assert!(same_hex("0000052D", "52d") && same_hex("775", "0x775") && !same_hex("52e", "52d"));
    }

    #[test]
    fn an_ldap_failure_matches_by_name_and_data() {
        let got = Observed::ldap(49, "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563");
        assert!(matches(&outcome(|o| o.ldap = Some("invalidCredentials".into())), &got));
        assert!(matches(
            &outcome(|o| {
                o.ldap = Some("invalidCredentials".into());
                o.data = Some("775".into())
            }),
            &got
        ));
        assert!(!matches(&outcome(|o| o.data = Some("52e".into())), &got));
        assert!(!matches(&Expect::Ok, &got));
        assert_eq!(
            got.describe(),
            "ldap invalidCredentials (49), data 775, \"80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563\""
        );
    }

    #[test]
    fn a_named_failure_never_matches_a_success() {
        let got = Observed::ldap(0, "");
        assert!(matches(&Expect::Ok, &got));
        assert!(!matches(&outcome(|o| o.ldap = Some("invalidCredentials".into())), &got));
        let ok_http = Observed::http(204, Value::Null);
        assert!(!matches(&outcome(|o| o.status = Some(400)), &ok_http));
        assert!(matches(&outcome(|o| o.status = Some(204)), &ok_http));
    }

    #[test]
    fn any_failure_and_json_fields() {
        let refused = Observed::http(409, json!({ "error": { "code": "NotAllowed" } }));
        let started = Observed::http(201, json!({ "id": "f", "unlockOffered": true, "methods": [{ "type": "email" }] }));
        assert!(matches(&Expect::Failure, &refused) && !matches(&Expect::Failure, &started));
        assert!(matches(&Expect::Failure, &Observed::ldap(49, "80090308: … data 52e")));
        assert!(!matches(&Expect::Failure, &Observed::ldap(6, "")), "compareTrue is an answer");
        let want = |k: &str, v: Value| outcome(|o| o.json = Some([(k.to_string(), v)].into()));
        assert!(matches(&want("unlockOffered", json!(true)), &started));
        assert!(matches(&want("methods.0.type", json!("email")), &started));
        assert!(!matches(&want("unlockOffered", json!(false)), &started));
        assert!(matches(&want("error.code", json!("NotAllowed")), &refused), "a detail of a refusal too");
        // null: null or absent; absent is not any other value
        assert!(matches(&want("methods.1", Value::Null), &started), "no second method");
        assert!(!matches(&want("methods.0", Value::Null), &started), "a first one there is");
        assert!(!matches(&want("methods.1.type", json!("email")), &started));
        assert_eq!(
            describe_against(&want("unlockOffered", json!(false)), &started).split(", ").last(),
            Some("answer's unlockOffered = true")
        );
    }

    #[test]
    fn http_failures_match_graph_aadsts_and_sspr_codes() {
        let graph = Observed::http(
            403,
            json!({ "error": { "code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation." } }),
        );
        assert!(matches(
            &outcome(|o| {
                o.graph = Some("Authorization_RequestDenied".into());
                o.status = Some(403)
            }),
            &graph
        ));
        assert!(matches(&outcome(|o| o.message = Some("Insufficient privileges".into())), &graph));
        assert!(!matches(&outcome(|o| o.graph = Some("Request_BadRequest".into())), &graph));
        let sts = Observed::http(400, json!({ "error": "invalid_grant", "error_codes": [50126] }));
        assert!(matches(&outcome(|o| o.aadsts = Some(50126)), &sts));
        assert!(!matches(&outcome(|o| o.aadsts = Some(50053)), &sts));
        let sspr = Observed::http(403, json!({ "error": { "code": "SSPR_0010", "message": "…" } }));
        assert!(matches(&outcome(|o| o.sspr = Some("SSPR_0010".into())), &sspr));
        assert_eq!(sts.describe(), "HTTP 400, AADSTS50126");
    }

    #[test]
    fn success_details_need_a_success() {
        let mut got = Observed::ldap(0, "");
        got.count = Some(3);
        assert!(matches(&outcome(|o| o.count = Some(3)), &got));
        assert!(!matches(&outcome(|o| o.count = Some(2)), &got));
        let failed = Observed::ldap(32, "0000208D: NameErr");
        assert!(!matches(&outcome(|o| o.count = Some(0)), &failed));
        let mut op = Observed::http(202, json!({}));
        op.ok = false;
        op.operation = Some(("failed".into(), Some("SSPR_0030".into())));
        assert!(matches(
            &outcome(|o| {
                o.operation = Some("failed".into());
                o.detail = Some("SSPR_0030".into())
            }),
            &op
        ));
        assert!(!matches(&Expect::Ok, &op));
    }
}
