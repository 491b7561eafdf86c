//! The sign-in method (password hash sync or pass-through authentication), what an
//! authentication agent's answer means for the sign-in, and the sign-in log (Graph's
//! `auditLogs/signIns`). Plain rules; the agents' queue is `server/pta.rs`.

use serde::Serialize;
use uuid::Uuid;

use crate::directory::SignInError;

pub use relay::pta::SignInMethod;

/// What came back for a sign-in sent to the agents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentAnswer {
    /// An agent asked AD: `LogonUser`'s Win32 result (0: good).
    Logon { win32: u32, agent: Uuid },
    /// No agent connected (AADSTS80001).
    NoAgent,
    /// No answer before the deadline (AADSTS80002).
    TimedOut { agent: Uuid },
    /// The agent could not open its copy (AADSTS80010).
    CannotDecrypt { agent: Uuid },
    /// The agent could not reach a DC (AADSTS80007).
    DirectoryUnreachable { agent: Uuid },
}

impl AgentAnswer {
    pub fn agent(&self) -> Option<Uuid> {
        match self {
            AgentAnswer::Logon { agent, .. }
            | AgentAnswer::TimedOut { agent }
            | AgentAnswer::CannotDecrypt { agent }
            | AgentAnswer::DirectoryUnreachable { agent } => Some(*agent),
            AgentAnswer::NoAgent => None,
        }
    }

    /// What the sign-in comes to, for an answer other than a good password or a wrong one
    /// (those go through smart lockout: [`crate::directory::Tenant::pass_through_finish`]).
    /// Microsoft's PTA troubleshooting page and AADSTS reference give the codes; where they
    /// publish none (locked out, must change, account expired) the nearest documented
    /// behaviour is taken (docs/fidelity.md).
    pub fn refusal(&self) -> Option<SignInError> {
        use relay::pta::win32;
        Some(match self {
            AgentAnswer::Logon { win32, .. } => match *win32 {
                win32::SUCCESS | win32::LOGON_FAILURE => return None,
                win32::INVALID_LOGON_HOURS => SignInError::LogonHours,
                // must change at next logon: no published code; the expired password's
                win32::PASSWORD_EXPIRED | win32::PASSWORD_MUST_CHANGE => SignInError::PasswordExpiredOnPrem,
                // account expired: no published code; 50057 names the AD object as unusable
                win32::ACCOUNT_DISABLED | win32::ACCOUNT_EXPIRED => SignInError::DisabledOnPrem,
                // locked out in AD: no published code; the lockout code users see
                win32::ACCOUNT_LOCKED_OUT => SignInError::LockedOnPrem,
                _ => SignInError::AgentCannotReachDirectory,
            },
            AgentAnswer::NoAgent => SignInError::NoAgent,
            AgentAnswer::TimedOut { .. } => SignInError::AgentTimedOut,
            AgentAnswer::CannotDecrypt { .. } => SignInError::AgentCannotDecrypt,
            AgentAnswer::DirectoryUnreachable { .. } => SignInError::AgentCannotReachDirectory,
        })
    }
}

/// One sign-in, as Graph's `signIn` resource shows it (the properties the lab fills).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignIn {
    pub id: Uuid,
    /// RFC 3339, on the lab clock.
    pub created_date_time: String,
    pub user_principal_name: String,
    pub user_id: Option<Uuid>,
    pub app_id: String,
    pub app_display_name: String,
    pub client_app_used: &'static str,
    pub status: SignInStatus,
    pub authentication_details: Vec<AuthenticationDetail>,
    /// Key/value pairs; a PTA sign-in names its agent ("Pass-through Authentication Agent Id").
    pub authentication_processing_details: Vec<KeyValue>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInStatus {
    /// 0 for a success, else the AADSTS number.
    pub error_code: u32,
    pub failure_reason: Option<String>,
    pub additional_details: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationDetail {
    pub authentication_method: &'static str,
    /// "Password Hash Sync", "Pass-through Authentication" or "Password in the cloud".
    pub authentication_method_detail: &'static str,
    pub succeeded: bool,
    pub authentication_step_result_detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// How much memory the sign-in log may hold (its entries' estimated size).
pub const LOG_BYTES: usize = 4 << 20;

/// The newest sign-ins, within [`LOG_BYTES`] (the oldest go first).
#[derive(Default)]
pub struct SignInLog {
    entries: std::collections::VecDeque<(SignIn, usize)>,
    bytes: usize,
    /// Sign-ins logged so far (each entry's id comes from it).
    count: u64,
}

impl SignInLog {
    /// The next entry's id: the tenant's id and the entry's number through SHA-256, so a lab
    /// replays the same ids without drawing on the generator other ids come from.
    pub fn next_id(&mut self, tenant: Uuid) -> Uuid {
        use sha2::Digest;
        self.count += 1;
        let digest = sha2::Sha256::new().chain_update(tenant.as_bytes()).chain_update(self.count.to_be_bytes()).finalize();
        let bytes: [u8; 16] = digest[..16].try_into().expect("16 of 32 bytes");
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    pub fn push(&mut self, entry: SignIn) {
        self.push_within(entry, LOG_BYTES);
    }

    fn push_within(&mut self, entry: SignIn, bound: usize) {
        let size = estimate(&entry);
        while self.bytes + size > bound {
            let Some((_, s)) = self.entries.pop_front() else { break };
            self.bytes -= s;
        }
        self.bytes += size;
        self.entries.push_back((entry, size));
    }

    /// Newest first.
    pub fn newest(&self) -> impl Iterator<Item = &SignIn> {
        self.entries.iter().rev().map(|(e, _)| e)
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The entry's heap and inline size, near enough to bound the log's memory.
fn estimate(e: &SignIn) -> usize {
    let strings = e.user_principal_name.len()
        + e.created_date_time.len()
        + e.app_id.len()
        + e.app_display_name.len()
        + e.status.failure_reason.as_ref().map_or(0, String::len)
        + e.status.additional_details.as_ref().map_or(0, String::len)
        + e.authentication_details.iter().map(|d| d.authentication_step_result_detail.len()).sum::<usize>()
        + e.authentication_processing_details.iter().map(|kv| kv.key.len() + kv.value.len()).sum::<usize>();
    std::mem::size_of::<(SignIn, usize)>()
        + e.authentication_details.len() * std::mem::size_of::<AuthenticationDetail>()
        + e.authentication_processing_details.len() * std::mem::size_of::<KeyValue>()
        + strings
}

/// Graph's failureReason for a sign-in error (the AADSTS reference's descriptions, shortened).
pub fn failure_reason(e: &SignInError) -> &'static str {
    match e {
        SignInError::UnknownUser => "User account is disabled or does not exist in the directory.",
        SignInError::InvalidCredentials => "Invalid username or password or Invalid on-premise username or password.",
        SignInError::Disabled => "User account is disabled.",
        SignInError::DisabledOnPrem => {
            "The user account is disabled. The user object in Active Directory backing this account has been disabled."
        }
        SignInError::Locked => "Account is locked because user tried to sign in too many times with an incorrect user ID or password.",
        SignInError::LockedOnPrem => {
            "Account is locked because user tried to sign in too many times with an incorrect user ID or password."
        }
        SignInError::PasswordChangeRequired => "The user's password is expired, and therefore their login or session was ended.",
        SignInError::PasswordExpiredOnPrem => "The user's on-premises password is expired.",
        SignInError::RiskyUserPasswordChange => "User needs to perform a password change due to user risk policy.",
        SignInError::LogonHours => "The user is attempting to log in outside of the allowed hours.",
        SignInError::NoAgent => "No Authentication Agent available.",
        SignInError::AgentTimedOut => "Validation request timed out.",
        SignInError::AgentCannotDecrypt => "Authentication Agent unable to decrypt password.",
        SignInError::AgentCannotReachDirectory => "Authentication Agent unable to connect to Active Directory.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> SignIn {
        SignIn {
            id: Uuid::nil(),
            created_date_time: "2026-01-01T00:00:00Z".into(),
            user_principal_name: format!("user{n}@testlab.example"),
            user_id: None,
            app_id: "x".repeat(36),
            app_display_name: "hybrid-lab".into(),
            client_app_used: "Mobile Apps and Desktop clients",
            status: SignInStatus { error_code: 50126, failure_reason: Some("y".repeat(100)), additional_details: None },
            authentication_details: vec![],
            authentication_processing_details: vec![],
        }
    }

    #[test]
    fn the_log_keeps_the_newest_within_its_memory_bound() {
        let mut log = SignInLog::default();
        let one = estimate(&entry(1));
        let fits = LOG_BYTES / one;
        for n in 0..fits + 100 {
            log.push(entry(n));
        }
        assert!(log.bytes() <= LOG_BYTES);
        let kept: usize = log.entries.iter().map(|(e, _)| estimate(e)).sum();
        assert_eq!(log.bytes(), kept, "the count is the kept entries' sizes");
        assert!(log.bytes() > LOG_BYTES - 2 * one, "full, within an entry: {}", log.bytes());
        // (the newest entries' names are a few bytes longer than the first's)
        let fewest = LOG_BYTES / estimate(&entry(fits + 99));
        assert!(log.entries.len() >= fewest && log.entries.len() <= fits, "{} of {fewest}..{fits}", log.entries.len());
        assert_eq!(log.newest().next().unwrap().user_principal_name, format!("user{}@testlab.example", fits + 99));
        // a longer entry pushes out more than one
        let mut big = entry(0);
        big.app_display_name = "z".repeat(10 * one);
        let before = log.entries.len();
        log.push(big);
        assert!(log.entries.len() < before - 5 && log.bytes() <= LOG_BYTES);
    }

    /// The estimate counts every string's bytes and each list item's size: each pushes the
    /// log's bound by exactly that much.
    #[test]
    fn an_entrys_estimate_counts_each_string_and_item() {
        let base = estimate(&entry(1));
        assert!(base > std::mem::size_of::<(SignIn, usize)>() + 100, "the inline part and the strings");
        let grow = |f: &dyn Fn(&mut SignIn)| {
            let mut e = entry(1);
            f(&mut e);
            estimate(&e) - base
        };
        assert_eq!(grow(&|e| e.user_principal_name.push_str("abc")), 3);
        assert_eq!(grow(&|e| e.created_date_time.push_str("abcd")), 4);
        assert_eq!(grow(&|e| e.app_id.push_str("ab")), 2);
        assert_eq!(grow(&|e| e.app_display_name.push('a')), 1);
        assert_eq!(grow(&|e| e.status.failure_reason = Some("y".repeat(105))), 5);
        assert_eq!(grow(&|e| e.status.additional_details = Some("z".repeat(7))), 7);
        let detail = AuthenticationDetail {
            authentication_method: "Password",
            authentication_method_detail: "Pass-through Authentication",
            succeeded: true,
            authentication_step_result_detail: "r".repeat(9),
        };
        let one = std::mem::size_of::<AuthenticationDetail>() + 9;
        assert_eq!(grow(&|e| e.authentication_details.push(detail.clone())), one);
        assert_eq!(grow(&|e| e.authentication_details.extend([detail.clone(), detail.clone()])), 2 * one);
        let kv = KeyValue { key: "k".repeat(3), value: "v".repeat(4) };
        let one = std::mem::size_of::<KeyValue>() + 7;
        assert_eq!(grow(&|e| e.authentication_processing_details.push(kv.clone())), one);
        assert_eq!(grow(&|e| e.authentication_processing_details.extend([kv.clone(), kv.clone()])), 2 * one);
    }

    /// An entry that fits exactly is kept; the next one pushes the oldest out.
    #[test]
    fn the_bound_is_inclusive() {
        let size = estimate(&entry(1));
        let mut log = SignInLog::default();
        log.push_within(entry(1), 2 * size);
        log.push_within(entry(2), 2 * size);
        assert_eq!((log.entries.len(), log.bytes()), (2, 2 * size));
        log.push_within(entry(3), 2 * size);
        assert_eq!(log.entries.len(), 2);
        assert_eq!(log.newest().last().unwrap().user_principal_name, "user2@testlab.example");
    }

    #[test]
    fn failure_reasons_are_the_sign_in_logs_words() {
        assert_eq!(failure_reason(&SignInError::NoAgent), "No Authentication Agent available.");
        assert_eq!(failure_reason(&SignInError::AgentTimedOut), "Validation request timed out.");
        assert!(failure_reason(&SignInError::InvalidCredentials).starts_with("Invalid username or password"));
        assert!(failure_reason(&SignInError::LogonHours).contains("allowed hours"));
    }

    /// Each entry its own id; a lab replays the same ids, another tenant gets others.
    #[test]
    fn sign_in_ids_are_distinct_and_replay_per_tenant() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let ids = |tenant: Uuid| {
            let mut log = SignInLog::default();
            (0..3).map(|_| log.next_id(tenant)).collect::<Vec<_>>()
        };
        let first = ids(a);
        assert_eq!(first.iter().collect::<std::collections::HashSet<_>>().len(), 3, "{first:?}");
        assert!(first.iter().all(|id| !id.is_nil() && id.get_version_num() == 4));
        assert_eq!(ids(a), first, "replayed");
        assert!(ids(b).iter().all(|id| !first.contains(id)), "another tenant's");
    }

    #[test]
    fn an_agents_answer_maps_to_microsofts_codes() {
        let agent = Uuid::nil();
        let code = |win32| AgentAnswer::Logon { win32, agent }.refusal().map(|e| e.code());
        assert_eq!(code(0), None);
        assert_eq!(code(1326), None, "a wrong password goes through smart lockout");
        assert_eq!(code(1328), Some(80012));
        assert_eq!(code(1330), Some(50144));
        assert_eq!(code(1907), Some(50144));
        assert_eq!(code(1331), Some(50057));
        assert_eq!(code(1793), Some(50057));
        assert_eq!(code(1909), Some(50053));
        assert_eq!(code(1), Some(80007));
        assert_eq!(AgentAnswer::NoAgent.refusal().map(|e| e.code()), Some(80001));
        // the sign-in log names the agent that answered, and none when none could
        let other = Uuid::from_u128(5);
        assert_eq!(AgentAnswer::Logon { win32: 0, agent: other }.agent(), Some(other));
        assert_eq!(AgentAnswer::TimedOut { agent: other }.agent(), Some(other));
        assert_eq!(AgentAnswer::NoAgent.agent(), None);
        assert_eq!(AgentAnswer::TimedOut { agent }.refusal().map(|e| e.code()), Some(80002));
        assert_eq!(AgentAnswer::CannotDecrypt { agent }.refusal().map(|e| e.code()), Some(80010));
        assert_eq!(AgentAnswer::DirectoryUnreachable { agent }.refusal().map(|e| e.code()), Some(80007));
        assert_eq!(SignInMethod::parse("PTA"), Some(SignInMethod::PassThroughAuthentication));
        assert_eq!(SignInMethod::parse("phs"), Some(SignInMethod::PasswordHashSync));
        assert_eq!(SignInMethod::parse("adfs"), None);
    }
}
