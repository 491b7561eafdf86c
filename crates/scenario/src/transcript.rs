//! The transcript of a run: every request a step sent and every answer, with every password
//! redacted and the values that change from run to run (request ids, trace ids) left out,
//! so that a transcript is safe to keep and stable enough to snapshot.

use serde_json::Value;

/// Keys whose values are secrets.
const SECRET_KEYS: &[&str] = &[
    "password",
    "newPassword",
    "currentPassword",
    "new_password",
    "client_secret",
    "access_token",
    "id_token",
    "refresh_token",
    "client_info",
    "device_code",
    "user_code",
    "code_verifier",
];

/// Keys whose values differ between runs.
const VOLATILE_KEYS: &[&str] = &["innerError", "supportCode", "trace_id", "correlation_id", "timestamp", "request-id", "client-request-id"];

pub const REDACTED: &str = "***";

#[derive(Debug, Default, Clone)]
pub struct Transcript {
    lines: Vec<(usize, String)>,
    secrets: Vec<String>,
    /// Run-specific text (the tenant's URL with its ephemeral port) and what to show instead.
    aliases: Vec<(String, String)>,
}

impl Transcript {
    /// A value never to appear in the transcript (passwords as typed, secrets).
    pub fn secret(&mut self, s: &str) {
        if s.len() >= 3 && !self.secrets.iter().any(|x| x == s) {
            self.secrets.push(s.to_string());
            // longest first, so a password containing another is replaced whole
            self.secrets.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }

    /// Shows `text` as `shown` (e.g. the tenant's base URL, whose port changes every run).
    pub fn alias(&mut self, text: &str, shown: &str) {
        self.aliases.push((text.to_string(), shown.to_string()));
    }

    pub fn step(&mut self, step: usize, header: &str) {
        self.lines.push((step, format!("#{step} {header}")));
    }

    pub fn request(&mut self, step: usize, text: &str) {
        let line = format!("  → {}", self.scrub(text));
        self.lines.push((step, line));
    }

    pub fn response(&mut self, step: usize, text: &str) {
        let line = format!("  ← {}", self.scrub(text));
        self.lines.push((step, line));
    }

    /// A message between two parts of the lab that the runner did not send itself (the
    /// tenant's relay request, the engine's LDAP writes): `⇢ from → to: text`.
    pub fn wire(&mut self, step: usize, from: &str, to: &str, text: &str) {
        let line = format!("  ⇢ {from} → {to}: {}", self.scrub(text));
        self.lines.push((step, line));
    }

    /// The lab's own remark, in plain words (what AD's refusal meant): `ℹ lab note: text`.
    pub fn note(&mut self, step: usize, text: &str) {
        let line = format!("  ℹ lab note: {}", self.scrub(text));
        self.lines.push((step, line));
    }

    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), REDACTED);
        }
        for (text, shown) in &self.aliases {
            out = out.replace(text.as_str(), shown);
        }
        out
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for (_, l) in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// A JSON body as the transcript shows it: secrets replaced, volatile values dropped, long
/// error descriptions cut to their first line.
pub fn clean_json(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                if VOLATILE_KEYS.contains(&k.as_str()) {
                    continue;
                }
                let v = if SECRET_KEYS.contains(&k.as_str()) && !v.is_null() {
                    Value::String(REDACTED.into())
                } else if k == "error_description" {
                    Value::String(v.as_str().unwrap_or("").lines().next().unwrap_or("").trim_end().to_string())
                } else {
                    clean_json(v)
                };
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(clean_json).collect()),
        other => other.clone(),
    }
}

/// The one-time codes in a body: every `"code"` whose value is all digits (SSPR's codes;
/// error codes such as `SSPR_0030` are not digits and stay readable).
pub fn one_time_codes(v: &Value) -> Vec<String> {
    let mut out = vec![];
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match x.as_str() {
                        Some(c) if k == "code" && c.len() >= 4 && c.bytes().all(|b| b.is_ascii_digit()) => out.push(c.to_string()),
                        _ => walk(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

/// A form body (token requests), with its secrets redacted.
pub fn clean_form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| if SECRET_KEYS.contains(k) { format!("{k}={REDACTED}") } else { format!("{k}={v}") })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_time_codes_are_found_and_error_codes_are_not() {
        let body = serde_json::json!({
            "value": [{ "code": "95612776", "body": "Use 95612776 to verify" }],
            "error": { "code": "SSPR_0030" },
        });
        assert_eq!(one_time_codes(&body), vec!["95612776".to_string()]);
        let mut t = Transcript::default();
        for c in one_time_codes(&body) {
            t.secret(&c);
        }
        t.response(1, &body.to_string());
        assert!(!t.render().contains("95612776"), "{}", t.render());
        assert!(t.render().contains("SSPR_0030"));
    }

    #[test]
    fn secrets_never_reach_the_text() {
        let mut t = Transcript::default();
        t.secret("Summer-Lake-41");
        t.secret("Summer-Lake-41-and-more");
        t.step(1, "ldap.bind");
        t.request(1, "bind TESTLAB\\User1 with Summer-Lake-41-and-more");
        t.response(1, "echo Summer-Lake-41");
        let text = t.render();
        assert!(!text.contains("Summer-Lake"), "{text}");
        assert_eq!(text, "#1 ldap.bind\n  → bind TESTLAB\\User1 with ***\n  ← echo ***\n");
    }

    #[test]
    fn json_is_redacted_and_stable() {
        let body = json!({
            "newPassword": "Cuyo5459",
            "error": { "code": "x", "innerError": { "request-id": "r" } },
            "error_description": "AADSTS50126: Error validating credentials.\r\nTrace ID: 1",
            "value": [{ "password": null, "supportCode": "s" }],
        });
        assert_eq!(
            clean_json(&body),
            json!({ "newPassword": "***", "error": { "code": "x" }, "error_description": "AADSTS50126: Error validating credentials.", "value": [{ "password": null }] })
        );
        assert_eq!(clean_form(&[("username", "u"), ("password", "p")]), "username=u&password=***");
    }
}
