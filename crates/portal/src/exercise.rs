//! An exercise's checklist on the dashboard: tasks a trainee does in the lab's pages, each
//! done when its checks hold. The checks read the lab the way the dashboard does — Graph, the
//! `/lab/` API, the engine's event log, AD over LDAPS — and a task once done stays done.
//! Events, audit entries and AD's writes count only from the moment the exercise began
//! (after its setup), so nothing the lab did before the trainee arrived ticks a task.

use std::collections::{HashMap, HashSet};

use reqwest::Method;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Portal;

/// One thing the trainee does.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// What to do, in a line ("Turn on password writeback in Connect").
    pub title: String,
    /// Where and how, in a few sentences.
    #[serde(default)]
    pub how: String,
    /// Hints the trainee can open one by one.
    #[serde(default)]
    pub hints: Vec<String>,
    /// The task is done when every check holds (at the same look).
    pub done_when: Vec<Check>,
}

/// What decides that a task is done.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// The sync side's `passwordWritebackEnabled` (Graph `onPremisesSynchronization`): what
    /// Connect's wizard sets when Password writeback is configured.
    SyncWriteback(bool),
    /// The cloud half: the password reset blade's On-premises integration.
    CloudWriteback {
        #[serde(default)]
        write_back_passwords: Option<bool>,
        #[serde(default)]
        allow_unlock: Option<bool>,
        /// "Write back passwords with Microsoft Entra Connect cloud sync".
        #[serde(default)]
        cloud_sync: Option<bool>,
    },
    /// The writeback service's state (the dashboard's engine card).
    Engine {
        #[serde(default)]
        running: Option<bool>,
        #[serde(default)]
        connected: Option<bool>,
    },
    /// Connect logged this event since the exercise began (its message containing
    /// `message`, when given).
    Event {
        id: u32,
        #[serde(default)]
        message: Option<String>,
    },
    /// A directory audit entry since the exercise began: its activity, and if given its
    /// result (`success`/`failure`), reason, and the target's userPrincipalName.
    Audit {
        activity: String,
        #[serde(default)]
        result: Option<String>,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        user: Option<String>,
        /// Additional details by key, e.g. `{ OnPremisesAgent: CloudSync }`.
        #[serde(default)]
        details: std::collections::BTreeMap<String, String>,
    },
    /// AD accepted a new password for the user (by sAMAccountName) since the exercise
    /// began: the DC's own record of a unicodePwd modify answered success — proof that a
    /// password landed on-premises (pwdLastSet would not move on a frozen lab clock).
    AdPasswordWritten {
        /// A sAMAccountName of the lab's first domain, or a DN (another domain's user).
        user: String,
        /// The DC whose record is read (`FDC1`: fabrikam's; default the first DC).
        #[serde(default)]
        dc: Option<String>,
    },
    /// One of Connect's connectors (Synchronization Service Manager's Connectors tab), by its
    /// directory: password writeback enabled on it, its last run's status (`success`,
    /// `no-start-credentials`).
    Connector {
        directory: String,
        #[serde(default)]
        password_writeback: Option<bool>,
        #[serde(default)]
        last_run: Option<String>,
    },
    /// The connector account (or `account`, a sAMAccountName or DN: Cloud Sync's
    /// `provAgentgMSA$`) holds (or lacks) this right on the domain root.
    Right {
        right: String,
        granted: bool,
        #[serde(default)]
        account: Option<String>,
    },
    /// A domain controller (by name) has this many changes waiting from its partners
    /// (`repadmin /showrepl`; 0: up to date).
    DomainController { name: String, pending_changes: u64 },
    /// Replication between the DCs: inbound replication disabled (`paused: true`) or not.
    Replication { paused: bool },
    /// A cloud user's properties as Graph answers them (`{ displayName: FUser2 (Sales) }`;
    /// a boolean or number compares by its text).
    CloudUser { user: String, props: std::collections::BTreeMap<String, String> },
    /// The trainee answers a question on the dashboard; an answer that is one of `accept`
    /// as a whole (ignoring case, extra spaces and surrounding punctuation) is right.
    Answer { question: String, accept: Vec<String> },
    /// How synced users sign in: `pta` (pass-through authentication on) or `phs`.
    SignInMethod(String),
    /// A sign-in in the sign-in log since the exercise began: the user's, and if given its
    /// error code (0: success) and authentication method detail ("Pass-through
    /// Authentication", "Password Hash Sync").
    SignIn {
        user: String,
        #[serde(default)]
        error_code: Option<u64>,
        #[serde(default)]
        method: Option<String>,
    },
    /// Smart lockout's settings (Password protection): a threshold of at most
    /// `threshold_at_most` failures and a lockout of at least `duration_at_least` seconds.
    SmartLockout {
        #[serde(default)]
        threshold_at_most: Option<u32>,
        #[serde(default)]
        duration_at_least: Option<u32>,
    },
}

/// An exercise as the dashboard runs it.
#[derive(Clone, Debug)]
pub struct Checklist {
    pub title: String,
    pub about: String,
    pub tasks: Vec<Task>,
}

/// What the dashboard shows of a task (and `GET /portal/lab/exercise` answers).
#[derive(Clone, Debug, Serialize)]
pub struct TaskView {
    pub title: String,
    pub how: String,
    /// The hints the trainee has asked for, in order (the next only after the one before).
    pub hints: Vec<String>,
    /// How many hints the task has.
    pub hints_total: usize,
    /// The shown hints as the page renders them (`code` spans).
    #[serde(skip)]
    pub hints_html: Vec<String>,
    pub done: bool,
    /// The task's question, when it asks one.
    pub question: Option<String>,
    /// The trainee's last answer, when it was not (yet) right.
    pub wrong_answer: Option<String>,
    /// How many answers the task's question has had (the trainer sees guessing).
    pub tries: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExerciseView {
    pub title: String,
    pub about: String,
    pub tasks: Vec<TaskView>,
    pub complete: bool,
}

/// A running exercise: the checklist, what is done, and where the lab stood when it began.
pub(crate) struct Active {
    list: Checklist,
    done: Vec<bool>,
    answers: HashMap<usize, String>,
    /// Answers given, per task.
    tries: Vec<u32>,
    /// Hints shown, per task (they are shown in order, and stay shown).
    hints_shown: Vec<usize>,
    /// Engine events logged before the exercise began.
    pub(crate) events_before: usize,
    audit_before: HashSet<String>,
    /// Each DC's last operation before the exercise began (by the name checks give; "" the first).
    ops_before: HashMap<String, u64>,
    /// The DNs of the users `ad_password_written` names (sAMAccountName → DN).
    dns: HashMap<String, String>,
    /// Sign-ins logged before the exercise began (ids).
    sign_ins_before: HashSet<String>,
}

impl Active {
    fn view(&self) -> ExerciseView {
        let tasks = self
            .list
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| TaskView {
                title: t.title.clone(),
                how: t.how.clone(),
                hints: t.hints[..self.hints_shown[i]].to_vec(),
                hints_total: t.hints.len(),
                hints_html: t.hints[..self.hints_shown[i]].iter().map(|h| inline_code(h)).collect(),
                done: self.done[i],
                question: t.done_when.iter().find_map(|c| match c {
                    Check::Answer { question, .. } => Some(question.clone()),
                    _ => None,
                }),
                wrong_answer: (!self.done[i]).then(|| self.answers.get(&i).cloned()).flatten(),
                tries: self.tries[i],
            })
            .collect();
        ExerciseView { title: self.list.title.clone(), about: self.list.about.clone(), tasks, complete: self.done.iter().all(|d| *d) }
    }
}

/// Whether an answer is right: it is one of the accepted answers as a whole, ignoring case,
/// runs of spaces and punctuation around it — not an answer that merely contains one (a list
/// of guesses would tick any question).
pub fn answer_matches(answer: &str, accept: &[String]) -> bool {
    let norm = |s: &str| {
        let words = s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        words.trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace() || "“”‘’".contains(c)).to_string()
    };
    let a = norm(answer);
    !a.is_empty() && accept.iter().any(|w| norm(w) == a)
}

/// What the checks read, each fetched at most once per look.
#[derive(Default)]
struct Look {
    sync: Option<Value>,
    integration: Option<Value>,
    engine: Option<Value>,
    /// `value` lists by API path (the engine's events, the audit log, the connectors).
    lists: HashMap<&'static str, Vec<Value>>,
    /// Each DC's recent operations, by name ("": the first).
    operations: HashMap<String, Vec<Value>>,
    dcs: Option<Value>,
    /// By account (None: the connector's).
    rights: HashMap<Option<String>, Value>,
    pta: Option<Value>,
    settings: Option<Value>,
}

impl Portal {
    /// Starts an exercise: its checklist appears on the dashboard; what the lab logged so far
    /// does not count towards it.
    pub async fn begin_exercise(&self, list: Checklist, admin_upn: &str, admin_password: &str) -> Result<(), String> {
        let (status, body) = self.token(admin_upn, admin_password).await;
        let token =
            body["access_token"].as_str().filter(|_| status == 200).ok_or_else(|| format!("signing in as {admin_upn}: HTTP {status}"))?;
        let mut look = Look::default();
        let events_before = self.look_list(&mut look, token, EVENTS).await.len();
        let audit_before =
            self.look_list(&mut look, token, AUDIT).await.iter().filter_map(|e| e["id"].as_str().map(str::to_string)).collect();
        let mut ops_before = HashMap::new();
        for t in &list.tasks {
            for c in &t.done_when {
                if let Check::AdPasswordWritten { dc, .. } = c {
                    let dc = dc.clone().unwrap_or_default();
                    if let std::collections::hash_map::Entry::Vacant(slot) = ops_before.entry(dc) {
                        let ops = self.operations(&mut look, token, slot.key()).await;
                        slot.insert(ops.iter().filter_map(|o| o["seq"].as_u64()).max().unwrap_or(0));
                    }
                }
            }
        }
        let sign_ins_before =
            self.look_list(&mut look, token, SIGN_INS).await.iter().filter_map(|e| e["id"].as_str().map(str::to_string)).collect();
        let mut dns = HashMap::new();
        for t in &list.tasks {
            for c in &t.done_when {
                if let Check::AdPasswordWritten { user, .. } = c {
                    let dn = if user.contains('=') {
                        user.clone()
                    } else {
                        crate::onprem::user(self.cfg.adds.as_ref(), user).await.map_err(|e| format!("the user {user}: {e}"))?.dn
                    };
                    dns.insert(user.clone(), dn);
                }
            }
        }
        let done = vec![false; list.tasks.len()];
        let tries = vec![0; list.tasks.len()];
        let hints_shown = vec![0; list.tasks.len()];
        *self.exercise() = Some(Active {
            list,
            done,
            answers: HashMap::new(),
            tries,
            hints_shown,
            events_before,
            audit_before,
            ops_before,
            dns,
            sign_ins_before,
        });
        Ok(())
    }

    pub(crate) fn exercise(&self) -> std::sync::MutexGuard<'_, Option<Active>> {
        self.exercise.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Looks at the lab, ticks what is now done, and says where the exercise stands.
    pub(crate) async fn exercise_view(&self, token: &str) -> Option<ExerciseView> {
        let (tasks, done, answers, events_before, audit_before, ops_before, dns, sign_ins_before) = {
            let g = self.exercise();
            let a = g.as_ref()?;
            (
                a.list.tasks.clone(),
                a.done.clone(),
                a.answers.clone(),
                a.events_before,
                a.audit_before.clone(),
                a.ops_before.clone(),
                a.dns.clone(),
                a.sign_ins_before.clone(),
            )
        };
        let mut look = Look::default();
        let mut now_done = done.clone();
        for (i, t) in tasks.iter().enumerate() {
            if done[i] {
                continue;
            }
            let mut all = true;
            for c in &t.done_when {
                let holds = match c {
                    Check::Answer { accept, .. } => answers.get(&i).is_some_and(|a| answer_matches(a, accept)),
                    Check::AdPasswordWritten { user, dc } => {
                        let target = format!("modify {}:", dns.get(user).map(String::as_str).unwrap_or_default()).to_lowercase();
                        let dc = dc.clone().unwrap_or_default();
                        let before = ops_before.get(&dc).copied().unwrap_or(0);
                        self.operations(&mut look, token, &dc).await.iter().any(|o| {
                            let request = o["request"].as_str().unwrap_or_default();
                            o["seq"].as_u64().is_some_and(|s| s > before)
                                && request.to_lowercase().starts_with(&target)
                                && request.contains("unicodePwd")
                                && o["result"].as_str().unwrap_or_default().starts_with("success")
                        })
                    }
                    Check::Event { id, message } => self.look_list(&mut look, token, EVENTS).await.iter().skip(events_before).any(|e| {
                        e["id"].as_u64() == Some(u64::from(*id))
                            && message.as_deref().is_none_or(|m| e["message"].as_str().unwrap_or_default().contains(m))
                    }),
                    Check::Audit { activity, result, reason, user, details } => {
                        self.look_list(&mut look, token, AUDIT).await.iter().any(|e| {
                            !e["id"].as_str().is_some_and(|id| audit_before.contains(id))
                                && e["activityDisplayName"].as_str() == Some(activity)
                                && result.as_deref().is_none_or(|r| e["result"].as_str() == Some(r))
                                && reason.as_deref().is_none_or(|r| e["resultReason"].as_str() == Some(r))
                                && user.as_deref().is_none_or(|u| {
                                    e["targetResources"][0]["userPrincipalName"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(u))
                                })
                                && details.iter().all(|(k, v)| {
                                    e["additionalDetails"]
                                        .as_array()
                                        .into_iter()
                                        .flatten()
                                        .any(|d| d["key"] == k.as_str() && d["value"] == v.as_str())
                                })
                        })
                    }
                    Check::SyncWriteback(on) => {
                        if look.sync.is_none() {
                            let path = format!("/v1.0/directory/onPremisesSynchronization/{}", self.cfg.tenant_id);
                            look.sync = Some(self.api(Method::GET, &path, Some(token), None).await.1);
                        }
                        look.sync.as_ref().and_then(|v| v["features"]["passwordWritebackEnabled"].as_bool()) == Some(*on)
                    }
                    Check::CloudWriteback { write_back_passwords, allow_unlock, cloud_sync } => {
                        if look.integration.is_none() {
                            look.integration = Some(self.api(Method::GET, "/lab/sspr/onPremisesIntegration", Some(token), None).await.1);
                        }
                        let v = look.integration.as_ref().unwrap_or(&Value::Null);
                        write_back_passwords.is_none_or(|w| v["writeBackPasswords"].as_bool() == Some(w))
                            && allow_unlock.is_none_or(|u| v["allowUnlockWithoutReset"].as_bool() == Some(u))
                            && cloud_sync.is_none_or(|c| v["writeBackWithCloudSync"].as_bool() == Some(c))
                    }
                    Check::CloudUser { user, props } => {
                        let select: Vec<&str> = props.keys().map(String::as_str).collect();
                        let path = format!(
                            "/v1.0/users/{}?$select={}",
                            url_form::byte_serialize(user.as_bytes()).collect::<String>(),
                            url_form::byte_serialize(select.join(",").as_bytes()).collect::<String>()
                        );
                        let (status, v) = self.api(Method::GET, &path, Some(token), None).await;
                        status == 200
                            && props.iter().all(|(k, want)| match &v[k] {
                                Value::String(s) => s == want,
                                Value::Null => false,
                                other => serde_json::from_str::<Value>(want).is_ok_and(|w| w == *other),
                            })
                    }
                    Check::DomainController { name, pending_changes } => {
                        let v = self.look_dcs(&mut look, token).await;
                        v["value"].as_array().into_iter().flatten().any(|d| {
                            d["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name))
                                && d["pendingChanges"].as_u64() == Some(*pending_changes)
                        })
                    }
                    Check::Replication { paused } => {
                        self.look_dcs(&mut look, token).await["replication"]["paused"].as_bool() == Some(*paused)
                    }
                    Check::Connector { directory, password_writeback, last_run } => {
                        let list = self.look_list(&mut look, token, DIRECTORIES).await;
                        list.iter().any(|d| {
                            d["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(directory))
                                && password_writeback.is_none_or(|w| d["passwordWriteback"].as_bool() == Some(w))
                                && last_run.as_deref().is_none_or(|r| d["lastRun"].as_str() == Some(r))
                        })
                    }
                    Check::Engine { running, connected } => {
                        if look.engine.is_none() {
                            look.engine = Some(self.api(Method::GET, "/lab/engine", Some(token), None).await.1);
                        }
                        let v = look.engine.as_ref().unwrap_or(&Value::Null);
                        running.is_none_or(|r| v["running"].as_bool() == Some(r))
                            && connected.is_none_or(|c| v["connected"].as_bool() == Some(c))
                    }
                    Check::SignInMethod(method) => {
                        if look.pta.is_none() {
                            look.pta = Some(self.api(Method::GET, "/lab/pta", Some(token), None).await.1);
                        }
                        let enabled = look.pta.as_ref().and_then(|v| v["enabled"].as_bool()).unwrap_or(false);
                        method.eq_ignore_ascii_case(if enabled { "pta" } else { "phs" })
                    }
                    Check::SignIn { user, error_code, method } => self.look_list(&mut look, token, SIGN_INS).await.iter().any(|e| {
                        !e["id"].as_str().is_some_and(|id| sign_ins_before.contains(id))
                            && e["userPrincipalName"].as_str().is_some_and(|u| u.eq_ignore_ascii_case(user))
                            && error_code.is_none_or(|c| e["status"]["errorCode"].as_u64() == Some(c))
                            && method
                                .as_deref()
                                .is_none_or(|m| e["authenticationDetails"][0]["authenticationMethodDetail"].as_str() == Some(m))
                    }),
                    Check::SmartLockout { threshold_at_most, duration_at_least } => {
                        if look.settings.is_none() {
                            look.settings = Some(self.api(Method::GET, "/v1.0/groupSettings", Some(token), None).await.1);
                        }
                        let (threshold, duration) = smart_lockout(look.settings.as_ref().unwrap_or(&Value::Null));
                        threshold_at_most.is_none_or(|t| threshold <= t) && duration_at_least.is_none_or(|d| duration >= d)
                    }
                    Check::Right { right, granted, account } => {
                        if !look.rights.contains_key(account) {
                            let path = match account {
                                Some(a) => {
                                    format!("/lab/adds/rights?trustee={}", url_form::byte_serialize(a.as_bytes()).collect::<String>())
                                }
                                None => "/lab/adds/rights".to_string(),
                            };
                            let v = self.api(Method::GET, &path, Some(token), None).await.1;
                            look.rights.insert(account.clone(), v);
                        }
                        let v = look.rights.get(account).unwrap_or(&Value::Null);
                        v["rights"].as_array().into_iter().flatten().any(|r| {
                            r["right"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(right)) && r["granted"].as_bool() == Some(*granted)
                        })
                    }
                };
                if !holds {
                    all = false;
                    break;
                }
            }
            now_done[i] = all;
        }
        let mut g = self.exercise();
        let a = g.as_mut()?;
        for (d, n) in a.done.iter_mut().zip(now_done) {
            *d |= n;
        }
        Some(a.view())
    }

    /// Keeps the trainee's answer to task `task` (the next look decides).
    pub(crate) fn answer(&self, task: usize, answer: &str) {
        if let Some(a) = self.exercise().as_mut()
            && task < a.list.tasks.len()
        {
            // a bound: an answer is a few words
            a.answers.insert(task, answer.chars().take(200).collect());
            a.tries[task] = a.tries[task].saturating_add(1);
        }
    }

    /// Shows task `task`'s next hint (hints come in order; a shown one stays shown).
    pub(crate) fn reveal_hint(&self, task: usize) {
        if let Some(a) = self.exercise().as_mut()
            && let Some(t) = a.list.tasks.get(task)
        {
            a.hints_shown[task] = (a.hints_shown[task] + 1).min(t.hints.len());
        }
    }

    /// The lab's DCs and their replication (`/lab/adds/dcs`), fetched once per look.
    async fn look_dcs<'a>(&self, look: &'a mut Look, token: &str) -> &'a Value {
        if look.dcs.is_none() {
            look.dcs = Some(self.api(Method::GET, "/lab/adds/dcs", Some(token), None).await.1);
        }
        look.dcs.get_or_insert(Value::Null)
    }

    /// A DC's recent operations (`""`: the first DC's), fetched once per look.
    async fn operations<'a>(&self, look: &'a mut Look, token: &str, dc: &str) -> &'a Vec<Value> {
        if !look.operations.contains_key(dc) {
            let path = if dc.is_empty() { OPERATIONS.to_string() } else { format!("{OPERATIONS}?dc={dc}") };
            let (_, v) = self.api(Method::GET, &path, Some(token), None).await;
            look.operations.insert(dc.to_string(), v["value"].as_array().cloned().unwrap_or_default());
        }
        look.operations.entry(dc.to_string()).or_default()
    }

    /// A list the API answers as `{"value": [...]}`, fetched once per look.
    async fn look_list<'a>(&self, look: &'a mut Look, token: &str, path: &'static str) -> &'a Vec<Value> {
        if !look.lists.contains_key(path) {
            let (_, v) = self.api(Method::GET, path, Some(token), None).await;
            look.lists.insert(path, v["value"].as_array().cloned().unwrap_or_default());
        }
        look.lists.entry(path).or_default()
    }
}

/// A hint's text as HTML: escaped, with its `backticked` spans as code (what exercise
/// authors write; the only markup a hint has).
pub fn inline_code(text: &str) -> String {
    let escaped = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;");
    let parts: Vec<&str> = escaped.split('`').collect();
    // an unpaired backtick stays a backtick
    if parts.len().is_multiple_of(2) {
        return escaped;
    }
    parts.iter().enumerate().map(|(i, p)| if i % 2 == 1 { format!("<code>{p}</code>") } else { p.to_string() }).collect()
}

const EVENTS: &str = "/lab/engine/events";
const AUDIT: &str = "/v1.0/auditLogs/directoryAudits";
const OPERATIONS: &str = "/lab/adds/operations";
const DIRECTORIES: &str = "/lab/engine/directories";
const SIGN_INS: &str = "/v1.0/auditLogs/signIns";

/// Smart lockout's (threshold, duration in seconds) from `GET /groupSettings`: the Password
/// Rule Settings' values, Entra's defaults (10, 60) where there are none.
pub(crate) fn smart_lockout(settings: &Value) -> (u32, u32) {
    let values = settings["value"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["displayName"] == "Password Rule Settings")
        .and_then(|s| s["values"].as_array().cloned())
        .unwrap_or_default();
    let get = |name: &str, default: u32| {
        values.iter().find(|v| v["name"] == name).and_then(|v| v["value"].as_str()?.parse().ok()).unwrap_or(default)
    };
    (get("LockoutThreshold", 10), get("LockoutDurationInSeconds", 60))
}

/// `GET /portal/lab/exercise`: the checklist as JSON (what the dashboard shows).
pub(crate) fn view_json(v: Option<ExerciseView>) -> Value {
    match v {
        Some(v) => serde_json::to_value(v).unwrap_or(Value::Null),
        None => {
            json!({ "error": { "code": "NotFound", "message": "No exercise is running in this lab (start one with `lab up --exercise NAME`)." } })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hints_backticks_are_code_and_its_markup_is_text() {
        assert_eq!(inline_code("Run `dsacls \"DC=x\"` now"), "Run <code>dsacls &quot;DC=x&quot;</code> now");
        assert_eq!(inline_code("<b>not bold</b> & `a<b`"), "&lt;b&gt;not bold&lt;/b&gt; &amp; <code>a&lt;b</code>");
        assert_eq!(inline_code("one ` alone"), "one ` alone");
        assert_eq!(inline_code("plain"), "plain");
    }

    #[test]
    fn an_answer_is_right_when_it_is_an_accepted_answer_as_a_whole() {
        let accept = vec!["AdminSDHolder".to_string(), "admin count".to_string()];
        assert!(answer_matches("adminsdholder", &accept));
        assert!(answer_matches("  Admin   Count. ", &accept));
        assert!(answer_matches("\"AdminSDHolder\"", &accept));
        // containing the answer is not giving it: a list of guesses ticks nothing
        assert!(!answer_matches("its ACL comes from adminsdholder", &accept));
        assert!(!answer_matches("31015 31016 31017", &["31016".to_string()]));
        assert!(!answer_matches("the connector's password", &accept));
        assert!(!answer_matches("   ", &accept));
        assert!(!answer_matches("anything", &["  ".to_string()]));
        assert!(!answer_matches("", &["".to_string()]));
    }

    #[test]
    fn checks_read_as_an_author_writes_them() {
        let t: Vec<Check> = serde_json::from_value(json!([
            { "sync_writeback": true },
            { "cloud_writeback": { "write_back_passwords": true } },
            { "event": { "id": 31005 } },
            { "ad_password_written": { "user": "User1" } },
            { "answer": { "question": "Which right?", "accept": ["Reset Password"] } }
        ]))
        .unwrap();
        assert!(matches!(t[0], Check::SyncWriteback(true)));
        assert!(matches!(&t[1], Check::CloudWriteback { write_back_passwords: Some(true), allow_unlock: None, cloud_sync: None }));
        assert!(serde_json::from_value::<Check>(json!({ "event": { "id": 1, "colour": "red" } })).is_err());
        let pta: Vec<Check> = serde_json::from_value(json!([
            { "sign_in_method": "pta" },
            { "sign_in": { "user": "user1@testlab.example", "error_code": 0, "method": "Pass-through Authentication" } },
            { "smart_lockout": { "threshold_at_most": 4, "duration_at_least": 1801 } }
        ]))
        .unwrap();
        assert!(matches!(&pta[2], Check::SmartLockout { threshold_at_most: Some(4), duration_at_least: Some(1801) }));
    }

    #[test]
    fn smart_lockouts_settings_are_entras_defaults_until_set() {
        assert_eq!(smart_lockout(&json!({ "value": [] })), (10, 60));
        let set = json!({ "value": [{ "displayName": "Password Rule Settings", "values": [
            { "name": "LockoutDurationInSeconds", "value": "3600" }, { "name": "LockoutThreshold", "value": "3" } ] }] });
        assert_eq!(smart_lockout(&set), (3, 3600));
    }
}
