//! Self-service password reset as the portal runs it: the policy, the eligibility checks in
//! Microsoft's order, verification gates with one-time codes sent to a lab outbox,
//! throttling, then the reset (or unlock) — for synced users through the writeback port.
//! Facts: concept-sspr-howitworks, the SSPR troubleshooting table (SSPR_xxxx codes), and
//! the passwords FAQ (5-minute codes, 15-minute sessions, throttling).

use std::time::Duration;

use clock::OffsetDateTime;
use rand::Rng;
use serde::Serialize;
use uuid::Uuid;

/// Who SSPR is enabled for: nobody, the members (transitively) of one group, or everyone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enabled {
    None,
    Selected(Uuid),
    All,
}

impl Serialize for Enabled {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Enabled::None => "None",
            Enabled::Selected(_) => "Selected",
            Enabled::All => "All",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub enabled: Enabled,
    /// 1 or 2.
    pub methods_required: u8,
    pub email_enabled: bool,
    pub mobile_phone_enabled: bool,
    /// "Notify users on password resets?"
    pub notify_users_on_password_reset: bool,
    /// "Notify all admins when other admins reset their password?"
    pub notify_admins_on_admin_reset: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            enabled: Enabled::All,
            methods_required: 1,
            email_enabled: true,
            mobile_phone_enabled: true,
            notify_users_on_password_reset: true,
            notify_admins_on_admin_reset: false,
        }
    }
}

/// A registered verification method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "type", content = "address")]
pub enum Method {
    Email(String),
    MobilePhone(String),
}

impl Method {
    pub fn kind(&self) -> &'static str {
        match self {
            Method::Email(_) => "email",
            Method::MobilePhone(_) => "mobilePhone",
        }
    }
    pub fn address(&self) -> &str {
        match self {
            Method::Email(a) | Method::MobilePhone(a) => a,
        }
    }
    /// How the portal shows it: `u*****@alt.example`, `+X XXXXXXXX01`.
    pub fn masked(&self) -> String {
        match self {
            Method::Email(a) => {
                let (user, domain) = a.split_once('@').unwrap_or((a, ""));
                let first: String = user.chars().take(1).collect();
                format!("{first}{}@{domain}", "*".repeat(user.chars().count().saturating_sub(1).max(1)))
            }
            Method::MobilePhone(p) => {
                let digits: String = p.chars().filter(char::is_ascii_digit).collect();
                let tail: String = digits.chars().rev().take(2).collect::<Vec<_>>().into_iter().rev().collect();
                format!("+X XXXXXXXX{tail}")
            }
        }
    }
}

/// The SSPR errors users see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// SSPR_0009: reset not enabled for the organisation.
    NotEnabled,
    /// SSPR_0010: the password is managed on-premises and writeback is not enabled.
    WritebackNotEnabled,
    /// SSPR_0012: the user lacks the licence SSPR needs (Entra ID P1 or P2).
    NotLicensed,
    /// SSPR_0013: SSPR is enabled for a selected group the user is not in.
    NotInScopedGroup,
    /// SSPR_0014: not enough registered methods.
    NotProperlyConfigured,
    /// SSPR_0029: the on-premises configuration refused (protected account, rights...).
    OnPremisesAdminActionRequired,
    /// SSPR_0030: the on-premises environment could not be reached.
    OnPremisesConnectivity,
    /// AD took the new password but the cloud's own write failed (a time-out, throttling):
    /// the user is told it worked and to wait; the next password hash sync brings AD's
    /// password to the cloud (troubleshoot-sspr's "OnPremisesSuccessCloudFailure").
    OnPremisesSuccessCloudFailure,
    /// The new password broke a rule; `on_premises` when AD's policy refused it.
    Policy {
        on_premises: bool,
    },
    /// Too many attempts: blocked for 24 hours.
    Blocked,
    UnknownUser,
    /// No such flow, or its 15 minutes are over.
    FlowExpired,
    /// The code is wrong, or its 5 minutes are over.
    BadCode,
    /// The step is not allowed yet (gates missing) or at all (unlock not offered).
    NotAllowed,
}

impl Error {
    /// The code on the error page (SSPR_xxxx) or the lab's name for a plain message.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotEnabled => "SSPR_0009",
            Error::WritebackNotEnabled => "SSPR_0010",
            Error::NotLicensed => "SSPR_0012",
            Error::NotInScopedGroup => "SSPR_0013",
            Error::NotProperlyConfigured => "SSPR_0014",
            Error::OnPremisesAdminActionRequired => "SSPR_0029",
            Error::OnPremisesConnectivity => "SSPR_0030",
            Error::OnPremisesSuccessCloudFailure => "OnPremisesSuccessCloudFailure",
            Error::Policy { on_premises: true } => "OnPremisesPolicyViolation",
            Error::Policy { on_premises: false } => "PasswordPolicyViolation",
            Error::Blocked => "Blocked",
            Error::UnknownUser => "UserNotFound",
            Error::FlowExpired => "SessionExpired",
            Error::BadCode => "InvalidCode",
            Error::NotAllowed => "NotAllowed",
        }
    }

    /// Every code [`Error::code`] gives (what a scenario's `expect: { sspr: … }` may name).
    pub fn codes() -> Vec<&'static str> {
        // one of each variant: a new variant belongs here too (the match in `code` lists them)
        [
            Error::NotEnabled,
            Error::WritebackNotEnabled,
            Error::NotLicensed,
            Error::NotInScopedGroup,
            Error::NotProperlyConfigured,
            Error::OnPremisesAdminActionRequired,
            Error::OnPremisesConnectivity,
            Error::OnPremisesSuccessCloudFailure,
            Error::Policy { on_premises: true },
            Error::Policy { on_premises: false },
            Error::Blocked,
            Error::UnknownUser,
            Error::FlowExpired,
            Error::BadCode,
            Error::NotAllowed,
        ]
        .iter()
        .map(Error::code)
        .collect()
    }

    pub fn message(&self) -> &'static str {
        match self {
            Error::NotEnabled => "Your organization has not enabled password reset. Contact your administrator.",
            Error::WritebackNotEnabled => {
                "Your password is managed on-premises and your organization has not enabled password writeback. Contact your administrator."
            }
            Error::NotLicensed => "Your account doesn't have the license password reset needs. Contact your administrator.",
            Error::NotInScopedGroup => "Your organization hasn't enabled password reset for you. Contact your administrator.",
            Error::NotProperlyConfigured => {
                "You don't have enough security info registered to reset your password. Contact your administrator."
            }
            Error::OnPremisesAdminActionRequired => {
                "We're unable to reset your password due to an error in your on-premises configuration. Contact your administrator."
            }
            Error::OnPremisesConnectivity => {
                "We can't reset your password due to a poor connection with your on-premises environment. Try again later."
            }
            Error::OnPremisesSuccessCloudFailure => {
                "Your password has been reset, but it can take a few minutes before it works with cloud apps. Wait a few minutes and sign in with your new password."
            }
            Error::Policy { on_premises: true } => "Your new password doesn't meet your organization's on-premises password policy.",
            Error::Policy { on_premises: false } => "Your new password doesn't meet the password policy. Choose a different password.",
            Error::Blocked => "You've tried too many times. Try again in 24 hours.",
            Error::UnknownUser => "We couldn't find an account with that user ID.",
            Error::FlowExpired => "Your session has expired. Start again.",
            Error::BadCode => "The code is wrong or has expired.",
            Error::NotAllowed => "This step is not available.",
        }
    }
}

/// One-time codes live 5 minutes; a reset session 15 (the passwords FAQ).
pub const CODE_LIFETIME: Duration = Duration::from_secs(5 * 60);
pub const SESSION_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Failed verifications before a 24-hour block (the FAQ's and the troubleshooting page's 5).
pub const MAX_FAILURES: u32 = 5;
pub const BLOCK: Duration = Duration::from_secs(24 * 3600);

/// A reset in progress.
#[derive(Clone, Debug)]
pub struct Flow {
    pub id: Uuid,
    pub user: Uuid,
    pub started: OffsetDateTime,
    pub gates_required: usize,
    /// The methods already proven, by kind.
    pub passed: Vec<&'static str>,
    /// The code sent for a method and when.
    pub pending: Vec<(&'static str, String, OffsetDateTime)>,
    pub unlock_offered: bool,
}

impl Flow {
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        now - self.started > SESSION_LIFETIME
    }
    pub fn verified(&self) -> bool {
        self.passed.len() >= self.gates_required
    }
}

/// A user's SSPR counters (throttling).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub failures: Vec<OffsetDateTime>,
    pub blocked_until: Option<OffsetDateTime>,
    /// Codes sent recently, by channel ("email", "sms", "voice").
    pub sends: Vec<(OffsetDateTime, &'static str)>,
}

/// How many codes a channel may send in its window before the user is blocked for 24 hours,
/// as the SSPR FAQ gives them: email 10 in 10 minutes, a phone 5 in an hour.
pub fn send_limit(channel: &str) -> (usize, Duration) {
    match channel {
        "email" => (10, Duration::from_secs(600)),
        _ => (5, Duration::from_secs(3600)),
    }
}

impl Counters {
    pub fn blocked(&self, now: OffsetDateTime) -> bool {
        self.blocked_until.is_some_and(|t| t > now)
    }

    /// Records a code sent by `channel`; false (and the user blocked for 24 hours) when it is
    /// one more than the channel's limit allows.
    pub fn send(&mut self, now: OffsetDateTime, channel: &'static str) -> bool {
        // what is older than its channel's window counts no more
        self.sends.retain(|(t, c)| now - *t < send_limit(c).1);
        let max = send_limit(channel).0;
        if self.sends.iter().filter(|(_, c)| *c == channel).count() >= max {
            self.blocked_until = Some(now + BLOCK);
            self.sends.clear();
            return false;
        }
        self.sends.push((now, channel));
        true
    }

    /// Records a failed verification; true when it blocks the user.
    pub fn fail(&mut self, now: OffsetDateTime) -> bool {
        self.failures.retain(|t| now - *t < Duration::from_secs(3600));
        self.failures.push(now);
        if self.failures.len() as u32 >= MAX_FAILURES {
            self.blocked_until = Some(now + BLOCK);
            self.failures.clear();
            return true;
        }
        false
    }
}

/// A message the lab "sent": what a test or a trainee reads instead of a mailbox or phone.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxMessage {
    pub to: String,
    pub channel: &'static str,
    pub subject: String,
    pub body: String,
    /// The one-time code, for convenience (none in notifications).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub sent_at: String,
}

/// An eight-digit one-time code.
pub fn new_code(rng: &mut impl Rng) -> String {
    format!("{:08}", rng.gen_range(0..100_000_000u32))
}

/// What happened on-premises (the writeback port's answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WritebackError {
    NotEnabled,
    /// No engine connected, or it did not answer in time.
    Unreachable,
    /// AD refused: policy (history, age, length, complexity) — Connect's 33008.
    Policy,
    /// AD refused: access (protected account, missing rights) — 33004.
    AccessDenied,
    /// AD refused a change: the old password is not the current one — 33007.
    BadOldPassword,
    /// Anything else on-premises (user not found 33002, disabled 33005, locked 33006,
    /// directory errors 33001/33009, decryption 32004), by its Connect event.
    OnPremises(u32),
}

/// A password operation on a synced user, for on-premises. (Its `Debug` never shows a
/// password.)
#[derive(Clone, PartialEq, Eq)]
pub enum OnPremOp {
    Reset { password: String, unlock: bool, force_change: bool, by_admin: bool },
    Change { old: String, new: String },
    Unlock,
}

impl OnPremOp {
    /// The password the operation sets, if it sets one.
    pub fn new_password(&self) -> Option<&str> {
        match self {
            OnPremOp::Reset { password, .. } => Some(password),
            OnPremOp::Change { new, .. } => Some(new),
            OnPremOp::Unlock => None,
        }
    }
}

impl std::fmt::Debug for OnPremOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OnPremOp::Reset { unlock, force_change, by_admin, .. } => f
                .debug_struct("Reset")
                .field("password", &"<redacted>")
                .field("unlock", unlock)
                .field("force_change", force_change)
                .field("by_admin", by_admin)
                .finish(),
            OnPremOp::Change { .. } => f.debug_struct("Change").field("old", &"<redacted>").field("new", &"<redacted>").finish(),
            OnPremOp::Unlock => f.write_str("Unlock"),
        }
    }
}

/// What goes through the port: the operation and the object it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnPremRequest {
    pub user: Uuid,
    /// onPremisesImmutableId, the sourceAnchor.
    pub anchor: String,
    /// The agent kind that provisions the user: only one of that kind may write it back.
    pub agent: relay::AgentKind,
    /// onPremisesDistinguishedName (Cloud Sync finds the user by it).
    pub distinguished_name: String,
    pub user_principal_name: String,
    pub op: OnPremOp,
    /// The cloud's hash of the new password, made on another core while AD answers
    /// (`server::writeback::through`), so that finishing under the tenant's lock does not
    /// spend a PBKDF2 there; the finish hashes the password itself when this is None.
    pub hashed: Option<crate::passwords::Credential>,
}

pub type WritebackFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), WritebackError>> + Send>>;

/// The one door to on-premises for password operations on synced users: the relay to a
/// connected writeback engine implements it. The tenant never holds its own lock while the
/// answer is awaited (see `server::writeback`).
pub trait Writeback: Send + Sync {
    fn send(&self, request: OnPremRequest) -> WritebackFuture;
    /// Whether the writeback service is up (an engine connected): SSPR tells a synced user
    /// before any gate when it is not.
    fn available(&self, agent: relay::AgentKind) -> bool;
}

/// No engine has connected: what Entra says when the on-premises side cannot be reached.
pub struct NoEngine;

impl Writeback for NoEngine {
    fn send(&self, _: OnPremRequest) -> WritebackFuture {
        Box::pin(async { Err(WritebackError::Unreachable) })
    }
    fn available(&self, _: relay::AgentKind) -> bool {
        false
    }
}

impl From<WritebackError> for Error {
    fn from(e: WritebackError) -> Error {
        match e {
            WritebackError::NotEnabled => Error::WritebackNotEnabled,
            WritebackError::Unreachable => Error::OnPremisesConnectivity,
            WritebackError::Policy => Error::Policy { on_premises: true },
            WritebackError::AccessDenied | WritebackError::BadOldPassword | WritebackError::OnPremises(_) => {
                Error::OnPremisesAdminActionRequired
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal has its own code — Microsoft's SSPR_00xx where the troubleshooting page
    /// numbers it — and its own words; `codes` lists them all (what a scenario may name).
    #[test]
    fn every_refusal_has_its_own_code_and_words() {
        let numbered = [
            (Error::NotEnabled, "SSPR_0009"),
            (Error::WritebackNotEnabled, "SSPR_0010"),
            (Error::NotLicensed, "SSPR_0012"),
            (Error::NotInScopedGroup, "SSPR_0013"),
            (Error::NotProperlyConfigured, "SSPR_0014"),
            (Error::OnPremisesAdminActionRequired, "SSPR_0029"),
            (Error::OnPremisesConnectivity, "SSPR_0030"),
        ];
        for (e, code) in &numbered {
            assert_eq!(e.code(), *code);
        }
        let codes = Error::codes();
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!((codes.len(), distinct.len()), (15, 15), "{codes:?}");
        assert!(codes.contains(&"OnPremisesPolicyViolation") && codes.contains(&"InvalidCode"));
        let words: std::collections::HashSet<&str> = [
            Error::NotEnabled,
            Error::WritebackNotEnabled,
            Error::OnPremisesAdminActionRequired,
            Error::OnPremisesConnectivity,
            Error::Policy { on_premises: true },
            Error::Policy { on_premises: false },
            Error::BadCode,
        ]
        .iter()
        .map(Error::message)
        .collect();
        assert_eq!(words.len(), 7, "distinct words");
        assert!(Error::OnPremisesConnectivity.message().contains("on-premises environment"));
        assert!(Error::Policy { on_premises: true }.message().contains("on-premises password policy"));
    }

    /// The passwords FAQ's figures: a code lives 5 minutes, a reset session 15, five failed
    /// verifications block for 24 hours.
    #[test]
    fn lifetimes_are_the_faqs() {
        assert_eq!((CODE_LIFETIME.as_secs(), SESSION_LIFETIME.as_secs()), (300, 900));
        assert_eq!((MAX_FAILURES, BLOCK.as_secs()), (5, 86_400));
    }

    /// A flow is verified once as many methods as its policy requires have passed (two for an
    /// administrator), and it ends 15 minutes after it began — not a moment before.
    #[test]
    fn a_flow_needs_its_gates_and_lasts_fifteen_minutes() {
        let t0 = clock::Clock::lab_epoch();
        let mut f = Flow {
            id: Uuid::nil(),
            user: Uuid::nil(),
            started: t0,
            gates_required: 2,
            passed: vec![],
            pending: vec![],
            unlock_offered: false,
        };
        assert!(!f.verified());
        f.passed.push("email");
        assert!(!f.verified(), "one of two gates");
        f.passed.push("mobilePhone");
        assert!(f.verified());
        f.gates_required = 1;
        f.passed.truncate(1);
        assert!(f.verified(), "one of one");
        assert!(!f.expired(t0 + SESSION_LIFETIME), "at 15 minutes, still open");
        assert!(f.expired(t0 + SESSION_LIFETIME + Duration::from_secs(1)));
    }

    /// Codes are eight digits from the generator given; an operation names the password it
    /// sets (none for an unlock); a lab without an engine offers no writeback.
    #[test]
    fn codes_operations_and_the_missing_engine() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (a, b) = (new_code(&mut rng), new_code(&mut rng));
        assert!(a.len() == 8 && a.bytes().all(|c| c.is_ascii_digit()), "{a}");
        assert_ne!(a, b);
        let reset = OnPremOp::Reset { password: "New-Pass-1".into(), unlock: false, force_change: false, by_admin: false };
        let change = OnPremOp::Change { old: "Old-Pass-1".into(), new: "New-Pass-2".into() };
        assert_eq!(
            (reset.new_password(), change.new_password(), OnPremOp::Unlock.new_password()),
            (Some("New-Pass-1"), Some("New-Pass-2"), None)
        );
        assert!(!NoEngine.available(relay::AgentKind::ConnectSync));
    }

    #[test]
    fn a_method_is_its_kind_and_address() {
        let (e, p) = (Method::Email("u@alt.example".into()), Method::MobilePhone("+1 4255550101".into()));
        assert_eq!((e.kind(), e.address()), ("email", "u@alt.example"));
        assert_eq!((p.kind(), p.address()), ("mobilePhone", "+1 4255550101"));
    }

    #[test]
    fn masking_like_the_portal() {
        assert_eq!(Method::Email("user1@alt.example".into()).masked(), "u****@alt.example");
        assert_eq!(Method::MobilePhone("+1 4255550101".into()).masked(), "+X XXXXXXXX01");
    }

    #[test]
    fn five_failures_in_an_hour_block_for_a_day() {
        let t0 = clock::Clock::lab_epoch();
        let mut c = Counters::default();
        for i in 0..4 {
            assert!(!c.fail(t0 + Duration::from_secs(i * 60)));
        }
        // more than an hour after the last of them, the old failures no longer count
        assert!(!c.fail(t0 + Duration::from_secs(4000)));
        assert!(!c.blocked(t0 + Duration::from_secs(4000)));
        for i in 0..3 {
            assert!(!c.fail(t0 + Duration::from_secs(4010 + i)));
        }
        assert!(c.fail(t0 + Duration::from_secs(4020)));
        assert!(c.blocked(t0 + Duration::from_secs(4020 + 23 * 3600)));
        assert!(!c.blocked(t0 + Duration::from_secs(4020 + 24 * 3600 + 1)));
        // a failure exactly an hour old counts no more
        let mut c = Counters::default();
        for i in 0..4 {
            assert!(!c.fail(t0 + Duration::from_secs(i)));
        }
        assert!(!c.fail(t0 + Duration::from_secs(3600)), "the first is an hour old: four in the hour");
    }

    #[test]
    fn code_sends_are_throttled_per_channel_as_the_faq_says() {
        let t0 = clock::Clock::lab_epoch();
        let mut c = Counters::default();
        for i in 0..10 {
            assert!(c.send(t0 + Duration::from_secs(i * 30), "email"), "email {i}");
        }
        assert!(!c.send(t0 + Duration::from_secs(300), "email"), "the 11th email within 10 minutes blocks");
        assert!(c.blocked(t0 + Duration::from_secs(301)));
        let mut c = Counters::default();
        for i in 0..5 {
            assert!(c.send(t0 + Duration::from_secs(i * 600), "mobilePhone"));
        }
        assert!(!c.send(t0 + Duration::from_secs(3000), "mobilePhone"), "the 6th text within an hour blocks");
        // spread out, they never block
        let mut c = Counters::default();
        for i in 0..20 {
            assert!(c.send(t0 + Duration::from_secs(i * 3600), "mobilePhone"));
        }
        // a text exactly an hour old has left the window: the sixth goes
        let mut c = Counters::default();
        for i in 0..5 {
            assert!(c.send(t0 + Duration::from_secs(i * 60), "mobilePhone"));
        }
        assert!(c.send(t0 + Duration::from_secs(3600), "mobilePhone"), "the first is an hour old");
        // each channel counts its own: five e-mails do not use up the phone's five
        let mut c = Counters::default();
        for i in 0..5 {
            assert!(c.send(t0 + Duration::from_secs(i), "email"));
        }
        assert!(c.send(t0 + Duration::from_secs(10), "mobilePhone"), "the first text");
        // a block lasts exactly 24 hours
        let mut c = Counters::default();
        for i in 0..11 {
            c.send(t0 + Duration::from_secs(i), "email");
        }
        let end = t0 + Duration::from_secs(10) + BLOCK;
        assert!(c.blocked(end - Duration::from_secs(1)) && !c.blocked(end));
    }
}
