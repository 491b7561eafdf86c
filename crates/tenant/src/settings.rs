//! Directory settings from Graph's "Password Rule Settings" template (`/groupSettings`):
//! Password Protection's custom banned list and smart lockout's threshold and duration.
//! Graph carries every value as a string; this module checks and converts them.

use serde_json::{Value, json};
use uuid::Uuid;

/// The template's id, as Graph lists it under `/groupSettingTemplates`.
pub const PASSWORD_RULE_SETTINGS_TEMPLATE: Uuid = uuid::uuid!("5cf42378-d67d-4f36-ba46-e8b86229381d");

/// Microsoft's limits on the custom banned list.
pub const MAX_CUSTOM_TERMS: usize = 1000;
pub const TERM_LENGTH: std::ops::RangeInclusive<usize> = 4..=16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordRuleSettings {
    /// The groupSetting's id once an administrator created one; None means defaults.
    pub id: Option<Uuid>,
    pub enable_banned_password_check: bool,
    /// The custom list (Graph: one tab-separated string).
    pub banned_password_list: Vec<String>,
    pub lockout_threshold: u32,
    pub lockout_duration_seconds: u32,
    /// On-premises DC agent's settings: kept and shown, not acted on (no DC agent in the lab).
    pub enable_banned_password_check_on_premises: bool,
    pub banned_password_check_on_premises_mode: String,
}

impl Default for PasswordRuleSettings {
    fn default() -> PasswordRuleSettings {
        PasswordRuleSettings {
            id: None,
            enable_banned_password_check: true,
            banned_password_list: vec![],
            lockout_threshold: 10,
            lockout_duration_seconds: 60,
            enable_banned_password_check_on_premises: true,
            banned_password_check_on_premises_mode: "Audit".into(),
        }
    }
}

impl PasswordRuleSettings {
    /// The custom terms Password Protection applies (none when the check is off).
    pub fn custom_terms(&self) -> &[String] {
        if self.enable_banned_password_check { &self.banned_password_list } else { &[] }
    }

    /// Applies Graph's `values` (`[{"name","value"}]`) on top of `self`; the whole list is
    /// checked first, so a bad value changes nothing.
    pub fn with_values(&self, values: &[Value]) -> Result<PasswordRuleSettings, String> {
        let mut next = self.clone();
        for v in values {
            let (Some(name), Some(value)) = (v.get("name").and_then(Value::as_str), v.get("value").and_then(Value::as_str)) else {
                return Err("Each setting value needs a string 'name' and 'value'.".into());
            };
            let boolean = || match value.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(format!("Invalid value '{value}' for setting '{name}': expected True or False.")),
            };
            let number = |range: std::ops::RangeInclusive<u32>| {
                value.parse::<u32>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                    format!("Invalid value '{value}' for setting '{name}': expected a number in {}..{}.", range.start(), range.end())
                })
            };
            match name {
                "EnableBannedPasswordCheck" => next.enable_banned_password_check = boolean()?,
                "EnableBannedPasswordCheckOnPremises" => next.enable_banned_password_check_on_premises = boolean()?,
                "BannedPasswordCheckOnPremisesMode" => match value {
                    "Audit" | "Enforce" => next.banned_password_check_on_premises_mode = value.into(),
                    _ => return Err(format!("Invalid value '{value}' for setting '{name}': expected Audit or Enforce.")),
                },
                "LockoutThreshold" => next.lockout_threshold = number(1..=50)?,
                "LockoutDurationInSeconds" => next.lockout_duration_seconds = number(5..=18_000)?,
                "BannedPasswordList" => next.banned_password_list = parse_list(value)?,
                _ => return Err(format!("Setting '{name}' is not defined in template 'Password Rule Settings'.")),
            }
        }
        Ok(next)
    }

    /// Graph's groupSetting object.
    pub fn to_graph(&self) -> Value {
        let b = |x: bool| if x { "True" } else { "False" };
        json!({
            "id": self.id.map(|i| i.to_string()),
            "displayName": "Password Rule Settings",
            "templateId": PASSWORD_RULE_SETTINGS_TEMPLATE.to_string(),
            "values": [
                { "name": "BannedPasswordCheckOnPremisesMode", "value": self.banned_password_check_on_premises_mode },
                { "name": "EnableBannedPasswordCheckOnPremises", "value": b(self.enable_banned_password_check_on_premises) },
                { "name": "EnableBannedPasswordCheck", "value": b(self.enable_banned_password_check) },
                { "name": "LockoutDurationInSeconds", "value": self.lockout_duration_seconds.to_string() },
                { "name": "LockoutThreshold", "value": self.lockout_threshold.to_string() },
                { "name": "BannedPasswordList", "value": self.banned_password_list.join("\t") },
            ]
        })
    }
}

/// The custom list: tab-separated terms of 4 to 16 characters, at most 1000, duplicates
/// ignored (case-insensitively).
fn parse_list(value: &str) -> Result<Vec<String>, String> {
    let mut terms: Vec<String> = vec![];
    for t in value.split('\t').map(str::trim).filter(|t| !t.is_empty()) {
        if !TERM_LENGTH.contains(&t.chars().count()) {
            return Err(format!("Banned password '{t}' must be between 4 and 16 characters long."));
        }
        if !terms.iter().any(|x| x.eq_ignore_ascii_case(t)) {
            terms.push(t.to_string());
        }
    }
    if terms.len() > MAX_CUSTOM_TERMS {
        return Err(format!("The custom banned password list holds at most {MAX_CUSTOM_TERMS} terms."));
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str, value: &str) -> Value {
        json!({ "name": name, "value": value })
    }

    #[test]
    fn values_round_trip_through_graph_shape() {
        let s = PasswordRuleSettings::default()
            .with_values(&[v("BannedPasswordList", "testlab\tgranite\tTESTLAB"), v("LockoutThreshold", "5")])
            .unwrap();
        assert_eq!(s.banned_password_list, ["testlab", "granite"]);
        assert_eq!(s.lockout_threshold, 5);
        let back = s.to_graph()["values"].as_array().unwrap().clone();
        assert_eq!(PasswordRuleSettings::default().with_values(&back).unwrap(), s);
    }

    #[test]
    fn a_bad_value_rejects_the_whole_list() {
        let base = PasswordRuleSettings::default();
        for bad in [
            vec![v("LockoutThreshold", "5"), v("BannedPasswordList", "abc")],
            vec![v("EnableBannedPasswordCheck", "yes")],
            vec![v("LockoutDurationInSeconds", "0")],
            vec![v("NoSuchSetting", "x")],
        ] {
            assert!(base.with_values(&bad).is_err(), "{bad:?}");
        }
        let many = (0..1001).map(|i| format!("term{i:04}")).collect::<Vec<_>>().join("\t");
        assert!(base.with_values(&[v("BannedPasswordList", &many)]).is_err());
    }

    #[test]
    fn the_custom_list_applies_only_when_the_check_is_on() {
        let s = PasswordRuleSettings::default()
            .with_values(&[v("BannedPasswordList", "testlab"), v("EnableBannedPasswordCheck", "False")])
            .unwrap();
        assert!(s.custom_terms().is_empty());
    }
}
