//! The pages' data, one struct per template (`templates/`). Nothing here holds a password:
//! a page that asks for one again shows an empty field.

use askama::Template;
use serde_json::Value;

#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexPage;

#[derive(Template)]
#[template(path = "sspr_user.html")]
pub struct SsprUserPage {
    pub error: Option<String>,
    pub user: String,
    /// Where the sign-in page that sent the user here wants them back ("Forgot my password").
    pub back: String,
}

/// A verification method as the page offers it.
pub struct MethodView {
    pub kind: String,
    pub display: String,
    /// What the portal calls it ("Email my alternate email", "Text my mobile phone").
    pub label: String,
}

impl MethodView {
    pub fn new(kind: &str, display: &str) -> MethodView {
        let label = match kind {
            "email" => "Email my alternate email",
            "mobilePhone" => "Text my mobile phone",
            "officePhone" => "Call my office phone",
            "securityQuestions" => "Answer my security questions",
            _ => kind,
        };
        MethodView { kind: kind.to_string(), display: display.to_string(), label: label.to_string() }
    }
}

#[derive(Template)]
#[template(path = "sspr_verify.html")]
pub struct SsprVerifyPage {
    pub flow: String,
    pub user: String,
    pub step: u64,
    pub steps: u64,
    pub methods: Vec<MethodView>,
    pub code_sent: Option<MethodView>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "sspr_password.html")]
pub struct SsprPasswordPage {
    pub flow: String,
    pub user: String,
    pub unlock_offered: bool,
    /// The on-premises policy judges the password (not Entra's 8 characters).
    pub synced: bool,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "sspr_done.html")]
pub struct SsprDonePage {
    pub user: String,
    pub unlocked_only: bool,
    /// The sign-in the user came from, or the lab's sign-in page.
    pub back: String,
}

#[derive(Template)]
#[template(path = "sspr_error.html")]
pub struct SsprErrorPage {
    pub code: String,
    pub message: String,
    pub support_code: String,
}

pub struct OutboxRow {
    pub sent_at: String,
    pub channel: String,
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[derive(Template)]
#[template(path = "outbox.html")]
pub struct OutboxPage {
    pub messages: Vec<OutboxRow>,
}

pub struct SignInError {
    pub code: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignInPage {
    pub user: String,
    pub error: Option<SignInError>,
}

#[derive(Template)]
#[template(path = "signed_in.html")]
pub struct SignedInPage {
    pub user: String,
}

#[derive(Template)]
#[template(path = "signin_change.html")]
pub struct ChangeInterruptPage {
    pub user: String,
    /// The user-risk policy's secure change (AADSTS50142), not an expired password (50055).
    pub risky: bool,
    pub error: Option<String>,
}

pub struct EngineView {
    pub id: String,
    pub running: bool,
    pub connected: bool,
    /// The writeback client as the admin center judges it (up, and its words): a running,
    /// connected service is not yet a configured one (Connect's Password writeback off).
    pub client_up: bool,
    pub client_status: String,
}

impl From<&Value> for EngineView {
    fn from(v: &Value) -> EngineView {
        EngineView {
            id: v["engineId"].as_str().unwrap_or_default().to_string(),
            running: v["running"].as_bool().unwrap_or(false),
            connected: v["connected"].as_bool().unwrap_or(false),
            client_up: false,
            client_status: String::new(),
        }
    }
}

pub struct EventRow {
    pub time: String,
    pub id: u64,
    pub level: String,
    pub message: String,
    /// Connect's tracking ID ("" for an event outside an operation).
    pub tracking: String,
}

/// The dashboard's filters as the form sent them.
#[derive(Default)]
pub struct FilterView {
    pub ids: String,
    pub level: String,
    pub tracking: String,
    pub since_exercise: bool,
    pub heartbeats: bool,
    pub own_reads: bool,
    pub narrows: bool,
}

pub struct FaultView {
    pub state: String,
    pub policy_hints: bool,
}

pub struct OpRow {
    /// The client's address and port.
    pub client: String,
    /// One of the lab pages' own reads.
    pub own: bool,
    pub who: String,
    pub request: String,
    pub result: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub tenant_id: String,
    /// The AD DS as an LDAPS client finds it.
    pub adds: crate::onprem::Health,
    /// The built-in DC's fault switches (None: an external directory).
    pub fault: Option<FaultView>,
    /// The connector's rights on the domain root: (right, granted, an id for its button).
    pub rights: Vec<(String, bool, String)>,
    /// The DC's recent operations, newest first.
    pub operations: Vec<OpRow>,
    /// The user the on-premises view shows.
    pub user: String,
    pub user_view: Result<crate::onprem::UserView, String>,
    pub now: String,
    pub engine: Option<EngineView>,
    pub events: Vec<EventRow>,
    /// How many events the filter matched (more than are shown when over 50).
    pub events_matched: usize,
    /// The event filter's fields as sent, to fill the form again.
    pub filter: FilterView,
    /// How many of the DC's operations were the pages' own reads, left out.
    pub own_hidden: usize,
    pub outbox_count: usize,
    /// The last writeback operation as a sequence diagram (SVG), when there was one.
    pub last_operation: String,
    /// The running exercise's checklist (`lab up --exercise`).
    pub exercise: Option<crate::exercise::ExerciseView>,
    /// The lab can be reset from here.
    pub resettable: bool,
    /// Pass-through authentication: on, its agents, their newest trace lines (newest first).
    pub pta: Option<PtaView>,
    /// Cloud Sync's provisioning agent's trace log, newest first (None: no such agent):
    /// (time, level, component, message).
    pub cloud_sync_trace: Option<Vec<(String, String, String, String)>>,
    pub error: Option<String>,
}

/// The dashboard's pass-through authentication card.
pub struct PtaView {
    pub enabled: bool,
    pub agents: Vec<AgentView>,
    pub trace: Vec<AgentTraceRow>,
}

pub struct AgentView {
    pub machine: String,
    pub connected: bool,
    pub stopped: bool,
    pub wrong_key: bool,
    pub no_dc: bool,
    pub delay_ms: u64,
    pub authentications: u64,
    pub failed: u64,
    pub errors: u64,
    /// The faults switched on, in words ("wrong key", "no DC", "delay 800 ms").
    pub faults: String,
}

pub struct AgentTraceRow {
    pub time: String,
    pub agent: String,
    pub level: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "lab_security.html")]
pub struct SecurityPage {
    /// The domain's first label (ADUC: "Advanced Security Settings for testlab").
    pub domain: String,
    pub base_dn: String,
    pub entries: Vec<crate::delegation::EntryView>,
    /// (value, label) of the Add dialog's choices.
    pub applies_to: Vec<(&'static str, &'static str)>,
    pub rights: Vec<&'static str>,
    pub error: Option<String>,
    pub done: Option<String>,
}

impl SecurityPage {
    pub fn empty(error: String) -> SecurityPage {
        SecurityPage {
            domain: String::new(),
            base_dn: String::new(),
            entries: vec![],
            applies_to: crate::delegation::APPLIES_TO.to_vec(),
            rights: ad_wire::rights::Right::ALL.iter().map(|r| r.name()).collect(),
            error: (!error.is_empty()).then_some(error),
            done: None,
        }
    }
}

/// While the lab resets: back to the dashboard once it answers again.
#[derive(Template)]
#[template(path = "resetting.html")]
pub struct ResettingPage;
