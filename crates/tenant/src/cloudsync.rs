//! Cloud Sync's configuration as the tenant keeps it ("configuration is stored in Entra ID,
//! not on the server"): its job's state — active, or in quarantine — with accidental-delete
//! prevention (the `SyncNotificationSettings` secret's DeleteThresholdValue: an export with
//! that many deletes or more quarantines the job, nothing deleted), the restart that lifts a
//! quarantine (`resetScope: ForceDeletes` lets the held deletes through once), and the
//! provisioning log (Graph's provisioningObjectSummary, what the admin center's Provisioning
//! logs list). Plain data and rules: `sync::apply` and `server::cloudsync` use them.

use std::collections::VecDeque;

use serde::Serialize;
use serde_json::{Value, json};

/// DeleteThresholdValue's default (Cloud Sync's Graph configuration: "500 → at most 499
/// deletes a run").
pub const DELETE_THRESHOLD: usize = 500;

/// How many provisioning log entries the tenant keeps (the oldest go first)…
pub const ENTRIES_KEPT: usize = 5_000;
/// …and how much memory they may take, by estimate: their text comes from AD (names, DNs),
/// whose values an LDAP client chooses.
pub const ENTRIES_BYTES: usize = 4 << 20;

/// The job's `templateId` for users from AD (Cloud Sync's Graph configuration).
pub const TEMPLATE_ID: &str = "AD2AADProvisioning";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum JobState {
    Active,
    Quarantine,
}

/// `restart`'s `criteria.resetScope` the lab takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetScope {
    /// "Clear quarantine" / "Restart sync": the job runs again (held deletes stay held).
    Full,
    /// The held deletes go through on the next run.
    ForceDeletes,
}

/// One provisioning action (Graph's provisioningObjectSummary, the fields the lab fills).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub id: String,
    pub activity_date_time: String,
    pub job_id: String,
    pub cycle_id: String,
    /// create, update, delete, other.
    pub provisioning_action: &'static str,
    pub provisioning_status_info: Value,
    pub source_identity: Value,
    pub target_identity: Value,
    pub source_system: Value,
    pub target_system: Value,
    pub initiated_by: Value,
}

/// What one action came to, for [`Job::record`].
pub struct Action<'a> {
    pub action: &'static str,
    /// The AD object's DN and display name.
    pub source: (&'a str, &'a str),
    /// The cloud user's id and userPrincipalName, when there is one.
    pub target: Option<(String, String)>,
    /// None: success; else Graph's errorCode and reason.
    pub error: Option<(&'a str, &'a str)>,
}

#[derive(Clone, Debug)]
pub struct Job {
    pub id: String,
    pub state: JobState,
    /// Why it is in quarantine (synchronizationQuarantine's `reason`, and a sentence).
    pub quarantine: Option<(&'static str, String)>,
    /// DeleteThresholdValue: at least 1 ([`Job::set_delete_threshold`]).
    delete_threshold: usize,
    force_deletes: bool,
    entries: VecDeque<(Entry, usize)>,
    /// The entries' estimated size.
    bytes: usize,
    next: u64,
    cycles: u64,
}

impl Job {
    pub fn new(id: String) -> Job {
        Job {
            id,
            state: JobState::Active,
            quarantine: None,
            delete_threshold: DELETE_THRESHOLD,
            force_deletes: false,
            entries: VecDeque::new(),
            bytes: 0,
            next: 0,
            cycles: 0,
        }
    }

    /// Whether an export may be applied: not while the job is in quarantine, and not one
    /// whose deletes reach the threshold (it quarantines the job: "TooManyDeletes") unless
    /// a restart forced them through. Err: why, in the lab's words.
    pub fn admit(&mut self, deletes: usize) -> Result<(), String> {
        if self.state == JobState::Quarantine {
            return Err(self.quarantine.as_ref().map(|(_, why)| why.clone()).unwrap_or_default());
        }
        // (the threshold is at least 1: an export without deletes never reaches it)
        if deletes >= self.delete_threshold && !self.force_deletes {
            let why = format!(
                "The job is in quarantine: this run would delete {deletes} objects, at or over the accidental-delete threshold of {}. Review the deletes, then restart the job with resetScope ForceDeletes to let them through.",
                self.delete_threshold
            );
            self.state = JobState::Quarantine;
            self.quarantine = Some(("TooManyDeletes", why.clone()));
            return Err(why);
        }
        if deletes > 0 {
            self.force_deletes = false;
        }
        self.cycles += 1;
        Ok(())
    }

    pub fn delete_threshold(&self) -> usize {
        self.delete_threshold
    }

    /// The `SyncNotificationSettings` secret's DeleteThresholdValue; 0 is refused (every
    /// run would quarantine the job).
    pub fn set_delete_threshold(&mut self, n: usize) -> Result<(), String> {
        if n == 0 {
            return Err("deleteThreshold must be 1 or more.".into());
        }
        self.delete_threshold = n;
        Ok(())
    }

    /// "Clear quarantine" / "Restart sync" (`POST …/jobs/{id}/restart`).
    pub fn restart(&mut self, scope: ResetScope) {
        self.state = JobState::Active;
        self.quarantine = None;
        self.force_deletes = scope == ResetScope::ForceDeletes;
    }

    pub fn record(&mut self, now: &str, a: Action<'_>) {
        self.next += 1;
        let status = match a.error {
            None => json!({ "status": "success" }),
            Some((code, reason)) => json!({ "status": "failure", "errorInformation": { "errorCode": code, "reason": reason } }),
        };
        let (target_id, target_name) = a.target.unwrap_or_default();
        let e = Entry {
            id: format!("{}-{:06}", self.id, self.next),
            activity_date_time: now.to_string(),
            job_id: self.id.clone(),
            cycle_id: format!("{}-cycle-{}", self.id, self.cycles),
            provisioning_action: a.action,
            provisioning_status_info: status,
            source_identity: json!({ "id": a.source.0, "displayName": a.source.1, "identityType": "User" }),
            target_identity: json!({ "id": target_id, "displayName": target_name, "identityType": "User" }),
            source_system: json!({ "displayName": "Active Directory" }),
            target_system: json!({ "displayName": "Entra ID" }),
            initiated_by: json!({ "displayName": "Azure AD Provisioning Service", "initiatorType": "system" }),
        };
        let size = estimate(&e);
        while !self.entries.is_empty() && (self.entries.len() >= ENTRIES_KEPT || self.bytes + size > ENTRIES_BYTES) {
            if let Some((_, gone)) = self.entries.pop_front() {
                self.bytes -= gone;
            }
        }
        self.bytes += size;
        self.entries.push_back((e, size));
    }

    /// The provisioning log, newest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().rev().map(|(e, _)| e)
    }

    /// The job as Graph's synchronizationJob shows it (the fields the lab keeps).
    pub fn to_json(&self) -> Value {
        let quarantine = self.quarantine.as_ref().map(|(reason, why)| json!({ "reason": reason, "error": { "message": why } }));
        let code = match self.state {
            JobState::Active => "Active",
            JobState::Quarantine => "Quarantine",
        };
        json!({
            "id": self.id,
            "templateId": TEMPLATE_ID,
            "schedule": { "interval": "PT2M", "state": "Active" },
            "status": { "code": code, "quarantine": quarantine },
            "deleteThreshold": self.delete_threshold,
        })
    }
}

/// An entry's memory, by estimate: its JSON text (what it holds, give or take the keys) and
/// a fixed overhead for its allocations.
fn estimate(e: &Entry) -> usize {
    ENTRY_OVERHEAD + serde_json::to_string(e).map(|t| t.len()).unwrap_or(0)
}

const ENTRY_OVERHEAD: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_at_the_threshold_quarantine_the_job_until_a_restart_forces_them() {
        let mut j = Job::new("AD2AADProvisioning.x".into());
        assert!(j.admit(DELETE_THRESHOLD - 1).is_ok(), "499 deletes go through");
        let why = j.admit(DELETE_THRESHOLD).unwrap_err();
        assert!(why.contains("500") && why.contains("ForceDeletes"), "{why}");
        assert_eq!(j.state, JobState::Quarantine);
        assert!(j.admit(0).is_err(), "nothing runs in quarantine");
        assert_eq!(j.to_json()["status"]["quarantine"]["reason"], "TooManyDeletes");
        j.restart(ResetScope::Full);
        assert!(j.admit(0).is_ok());
        assert!(j.admit(DELETE_THRESHOLD).is_err(), "a plain restart does not let them through");
        j.restart(ResetScope::ForceDeletes);
        assert!(j.admit(0).is_ok(), "a run with no deletes keeps the force for the next that has some");
        assert!(j.admit(DELETE_THRESHOLD).is_ok(), "forced once");
        assert!(j.admit(DELETE_THRESHOLD).is_err(), "and only once");
        let mut j = Job::new("j".into());
        assert!(j.set_delete_threshold(0).is_err());
        assert_eq!(j.delete_threshold(), DELETE_THRESHOLD, "a refused value changes nothing");
        j.set_delete_threshold(1).unwrap();
        assert!(j.admit(1).is_err(), "the threshold itself is too many");
    }

    #[test]
    fn the_log_keeps_its_newest_entries_newest_first() {
        let mut j = Job::new("j".into());
        for i in 0..ENTRIES_KEPT + 3 {
            let dn = format!("CN=U{i}");
            j.record("t", Action { action: "create", source: (&dn, "U"), target: None, error: None });
        }
        let all: Vec<&Entry> = j.entries().collect();
        assert_eq!(all.len(), ENTRIES_KEPT);
        assert_eq!(all[0].source_identity["id"], format!("CN=U{}", ENTRIES_KEPT + 2));
        j.record("t", Action { action: "update", source: ("CN=X", "X"), target: None, error: Some(("Code", "why")) });
        let e = j.entries().next().unwrap();
        assert_eq!(e.provisioning_status_info["errorInformation"]["errorCode"], "Code");
        // every entry its own id; each admitted run its own cycle id
        let ids: std::collections::HashSet<&str> = j.entries().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), ENTRIES_KEPT);
        let mut j = Job::new("j".into());
        let mut cycles = std::collections::HashSet::new();
        for _ in 0..3 {
            j.admit(0).unwrap();
            j.record("t", Action { action: "create", source: ("CN=U", "U"), target: None, error: None });
            cycles.insert(j.entries().next().unwrap().cycle_id.clone());
        }
        assert_eq!(cycles.len(), 3, "{cycles:?}");
        // long names from AD: the memory bound, not the count, keeps the newest
        let mut j = Job::new("j".into());
        let long = "x".repeat(60_000);
        for i in 0..100 {
            let dn = format!("CN={i}{long}");
            j.record("t", Action { action: "create", source: (&dn, "U"), target: None, error: None });
        }
        // as many as fit: each its JSON text and the overhead
        let size = ENTRY_OVERHEAD + serde_json::to_string(j.entries().next().unwrap()).unwrap().len();
        assert_eq!(j.entries().count(), ENTRIES_BYTES / size, "{} bytes each", size);
        assert!(j.bytes <= ENTRIES_BYTES);
        assert!(j.entries().next().unwrap().source_identity["id"].as_str().unwrap().starts_with("CN=99"));
        // entries of 64 KiB each: 64 fill the 4 MiB exactly, all kept
        let mut j = Job::new("j".into());
        let sized = |n: usize| format!("CN={}", "y".repeat(n));
        j.record("t", Action { action: "create", source: (&sized(1000), "U"), target: None, error: None });
        let first = ENTRY_OVERHEAD + serde_json::to_string(j.entries().next().unwrap()).unwrap().len();
        let n = 1000 + 65_536 - first;
        let mut j = Job::new("j".into());
        for _ in 0..100 {
            j.record("t", Action { action: "create", source: (&sized(n), "U"), target: None, error: None });
        }
        assert_eq!((j.entries().count(), j.bytes), (64, ENTRIES_BYTES), "the budget itself is not over it");
    }
}
