//! What a scenario means, checked without a lab: the mistakes the YAML's shape lets through
//! but `lab run` could never play — a duration in no unit the clock knows, a result name or
//! SSPR code that does not exist, a verification method SSPR does not have, a `${name}`
//! nothing captured, an LDIF file that is not there. Each with file:line:column (the step's)
//! and what would be valid. `suite::load` runs it, so `lab check` and `lab run` agree.

use std::collections::BTreeSet;
use std::path::Path;

use crate::model::{Action, Expect, ParseError, Scenario};

/// The names `${…}` may use besides captures (see the runner's `value_of`).
const BUILT_INS: [&str; 5] = ["tenant_id", "client_id", "base_dn", "domain", "netbios"];

/// SSPR's verification methods, as the tenant names them.
const METHODS: [&str; 2] = ["email", "mobilePhone"];

/// Every mistake in `s` (parsed from `text`, in the file `file` in `dir`).
pub fn check(file: &str, text: &str, s: &Scenario, dir: &Path) -> Vec<ParseError> {
    let mut errors = vec![];
    let at = |line: u64, column: u64, message: String| ParseError { file: file.to_string(), line, column, message, detail: String::new() };
    // (line, column) of a key's first occurrence, for what has no span of its own
    let place = |key: &str| {
        text.lines()
            .enumerate()
            .find_map(|(i, l)| {
                l.find(key).filter(|c| l[..*c].trim().is_empty() || l[..*c].ends_with("{ ")).map(|c| (i as u64 + 1, c as u64 + 1))
            })
            .unwrap_or((1, 1))
    };

    if let Some(lab) = s.lab.as_deref().filter(|l| *l != "testlab")
        && !dir.join(lab).is_file()
    {
        let (line, column) = place("lab:");
        errors.push(at(line, column, format!("`lab: {lab}`: no such LDIF file next to the scenario ({})", dir.join(lab).display())));
    }
    if let Some(p) = &s.given.ad_ds.policy {
        for (name, d) in [
            ("min_age", &p.min_age),
            ("max_age", &p.max_age),
            ("lockout_duration", &p.lockout_duration),
            ("lockout_window", &p.lockout_window),
        ] {
            if let Some(d) = d.as_deref().filter(|d| *d != "0")
                && let Err(e) = duration(d)
            {
                let (line, column) = place(&format!("{name}:"));
                errors.push(at(line, column, format!("given.ad-ds.policy.{name}: {e}, e.g. 30m, 1d (0: none)")));
            }
        }
    }

    let lines: Vec<&str> = text.lines().collect();
    let mut captured: BTreeSet<String> = BTreeSet::new();
    for (i, spanned) in s.steps.iter().enumerate() {
        let (line, column) = (spanned.referenced.line(), spanned.referenced.column());
        let step = &spanned.value;
        let mut bad = |message: String| errors.push(at(line, column, format!("step {} ({}): {message}", i + 1, step.action.name())));
        match &step.action {
            Action::ClockAdvance(d) => {
                if let Err(e) = duration(d) {
                    bad(format!("{e}, e.g. 90s, 30m, 2d, 1w"));
                }
            }
            Action::SsprVerify(crate::model::SsprVerify { method, .. })
            | Action::SsprEnterCode(crate::model::SsprVerify { method, .. })
            | Action::SsprSendCode(crate::model::SsprSendCode { method })
                if !METHODS.contains(&method.as_str()) =>
            {
                bad(format!("no verification method `{method}`{} (SSPR's: {})", did_you_mean(method, &METHODS), METHODS.join(", ")));
            }
            Action::AdminGraph(g) if g.body.is_some() && g.form.is_some() => {
                bad("a request has one body: `body` (JSON) or `form` (form-encoded), not both".into());
            }
            _ => {}
        }
        if let Some(Expect::Outcome(o)) = &step.expect {
            if let Some(name) = &o.ldap {
                let names = ldap_names();
                if !names.contains(&name.as_str()) {
                    bad(format!("`ldap: {name}` is not an LDAP result name{}", did_you_mean(name, &names)));
                }
            }
            if let Some(code) = &o.sspr {
                let codes = tenant::sspr::Error::codes();
                if !codes.contains(&code.as_str()) {
                    bad(format!(
                        "`sspr: {code}` is not a code SSPR answers with{} (known: {})",
                        did_you_mean(code, &codes),
                        codes.join(", ")
                    ));
                }
            }
        }
        // `${name}` in the step's own lines: a capture of an earlier step, or a built-in
        let end = s.steps.get(i + 1).map_or(lines.len(), |n| (n.referenced.line() as usize).saturating_sub(1));
        let own = lines.get((line as usize).saturating_sub(1)..end.max(line as usize)).unwrap_or_default();
        for name in references(&own.join("\n")) {
            let known = captured.contains(&name) || BUILT_INS.contains(&name.as_str()) || name.starts_with("initial.");
            if !known {
                let mut all: Vec<&str> = captured.iter().map(String::as_str).chain(BUILT_INS).collect();
                all.push("initial.<user>");
                bad(format!(
                    "`${{{name}}}` is neither a capture of an earlier step nor a built-in value{} (known here: {})",
                    did_you_mean(&name, &all),
                    all.join(", ")
                ));
            }
        }
        captured.extend(step.capture.keys().cloned());
    }
    errors
}

/// The lab clock's reading of a duration, with a plainer word for the common slip.
fn duration(d: &str) -> Result<std::time::Duration, String> {
    if d.trim().contains(char::is_whitespace) {
        return Err(format!("`{d}` is not a duration: a number and a unit (s, m, h, d, w) with no space"));
    }
    clock::parse_duration(d)
}

/// The `${name}`s in a text.
fn references(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let Some(end) = rest[i..].find('}') else { break };
        out.push(rest[i + 2..i + end].trim().to_string());
        rest = &rest[i + end + 1..];
    }
    out
}

/// Every LDAP result name the runner reports (RFC 4511's, as AD spells them).
fn ldap_names() -> Vec<&'static str> {
    (0..=255).map(crate::observe::ldap_result_name).filter(|n| *n != "unknown").collect()
}

/// ", did you mean `x`?" when one of `known` is a slip away from `got`: a letter or two,
/// fewer for short names (SSPR_9999 is not a slip of SSPR_0029).
fn did_you_mean(got: &str, known: &[&str]) -> String {
    let limit = (got.chars().count() / 6).max(1);
    let best = known
        .iter()
        .map(|k| (strsim::levenshtein(&got.to_lowercase(), &k.to_lowercase()), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, k)) => format!(" — did you mean `{k}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested_and_far_ones_not() {
        assert_eq!(did_you_mean("invalidCredential", &ldap_names()), " — did you mean `invalidCredentials`?");
        assert_eq!(did_you_mean("SSPR_0031", &tenant::sspr::Error::codes()), " — did you mean `SSPR_0030`?");
        assert_eq!(did_you_mean("banana", &ldap_names()), "");
        assert_eq!(did_you_mean("SSPR_9999", &tenant::sspr::Error::codes()), "", "a made-up code is not a slip");
        assert_eq!(references("a ${x} b ${ initial.User1 }"), ["x", "initial.User1"]);
    }
}
