//! Which domain controller the connector talks to. Connect's AD connector has, per
//! directory partition, a list of preferred DCs and a box "Only use preferred domain
//! controllers" (Synchronization Service › Connectors › Properties › Configure Directory
//! Partitions › Domain controller connection settings); the same list serves import, export,
//! password hash sync and writeback. Without the box the preferred DCs come first, then any
//! other DC of the domain; with it, the preferred ones only. A DC that does not answer makes
//! the connector try the next; when none is left the operation fails. Microsoft documents no
//! event for an unreachable DC: the lab logs ADSync 6329 with Windows' "server is not
//! operational" for each DC it passes over (docs/fidelity.md: lab-defined).

use serde::{Deserialize, Serialize};

/// One domain controller of the domain, as the connector reaches it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcEndpoint {
    /// Its name: `DC1`.
    pub name: String,
    /// `ldaps://HOST:PORT`.
    pub ldaps: String,
    /// Its `ldap://HOST:PORT`, for the "Sign and Encrypt LDAP traffic" fault only.
    pub ldap: Option<String>,
}

/// The connector's domain controller connection settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DcSettings {
    /// Preferred DCs by name, in the order they are tried.
    pub preferred: Vec<String>,
    /// "Only use preferred domain controllers".
    pub only_preferred: bool,
}

impl DcSettings {
    /// The settings as Connect's dialog accepts them: names of this domain's DCs, and at least
    /// one when only preferred DCs may be used.
    pub fn check(&self, known: &[DcEndpoint]) -> Result<(), String> {
        if let Some(bad) = self.preferred.iter().find(|p| !known.iter().any(|d| d.name.eq_ignore_ascii_case(p))) {
            let names: Vec<&str> = known.iter().map(|d| d.name.as_str()).collect();
            return Err(format!("{bad} is not a domain controller of this domain ({})", names.join(", ")));
        }
        if self.only_preferred && self.preferred.is_empty() {
            return Err("\"Only use preferred domain controllers\" needs at least one preferred domain controller".into());
        }
        Ok(())
    }
}

/// The DCs to try, in order: the preferred ones as listed, then — unless only preferred
/// DCs may be used — the others in the order the domain lists them.
pub fn candidates<'a>(all: &'a [DcEndpoint], s: &DcSettings) -> Vec<&'a DcEndpoint> {
    let mut out: Vec<&DcEndpoint> = s.preferred.iter().filter_map(|p| all.iter().find(|d| d.name.eq_ignore_ascii_case(p))).collect();
    if !s.only_preferred {
        for d in all {
            if !out.iter().any(|o| o.name == d.name) {
                out.push(d);
            }
        }
    }
    out.dedup_by(|a, b| a.name == b.name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dcs() -> Vec<DcEndpoint> {
        ["DC1", "DC2", "DC3"].iter().map(|n| DcEndpoint { name: n.to_string(), ldaps: format!("ldaps://{n}"), ldap: None }).collect()
    }

    fn names(v: Vec<&DcEndpoint>) -> Vec<&str> {
        v.into_iter().map(|d| d.name.as_str()).collect()
    }

    #[test]
    fn preferred_dcs_come_first_and_only_they_when_the_box_is_checked() {
        let all = dcs();
        assert_eq!(names(candidates(&all, &DcSettings::default())), ["DC1", "DC2", "DC3"]);
        let s = DcSettings { preferred: vec!["dc3".into(), "DC2".into()], only_preferred: false };
        assert_eq!(names(candidates(&all, &s)), ["DC3", "DC2", "DC1"]);
        let s = DcSettings { preferred: vec!["DC2".into()], only_preferred: true };
        assert_eq!(names(candidates(&all, &s)), ["DC2"]);
        let s = DcSettings { preferred: vec!["DC2".into(), "DC2".into()], only_preferred: true };
        assert_eq!(names(candidates(&all, &s)), ["DC2"], "a name listed twice is tried once");
    }

    #[test]
    fn settings_name_known_dcs_and_only_preferred_needs_one() {
        let all = dcs();
        assert!(DcSettings { preferred: vec!["DC9".into()], only_preferred: false }.check(&all).unwrap_err().contains("DC9"));
        assert!(DcSettings { preferred: vec![], only_preferred: true }.check(&all).is_err());
        assert!(DcSettings { preferred: vec!["DC1".into()], only_preferred: true }.check(&all).is_ok());
        assert!(DcSettings::default().check(&all).is_ok());
    }
}
