//! Pass-through Authentication's vocabulary: what travels between the tenant's queue and an
//! authentication agent (Microsoft's "PTA security deep dive": the STS seals the password once
//! for every registered agent, puts the request on the tenant's queue, and one available
//! agent takes it, opens its own copy and asks AD with `LogonUser`), and the Win32 results
//! that come back.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Sealed;

/// The tenant's queue (a WebSocket per connected agent; Entra's is a Service Bus queue).
pub const QUEUE_PATH: &str = "/lab/pta/queue";
/// Where agents register (a Hybrid Identity Administrator's or Global Administrator's token).
pub const AGENTS_PATH: &str = "/lab/pta/agents";
/// At most this many agents per tenant (Microsoft's PTA quick start).
pub const MAX_AGENTS: usize = 40;

/// `LogonUser`'s results the lab's agents report (winerror.h). They are the `data` codes a DC
/// puts in a failed bind's diagnostic (`52e` is 1326), which is how the agent reads them.
pub mod win32 {
    pub const SUCCESS: u32 = 0;
    /// ERROR_LOGON_FAILURE: unknown user or wrong password.
    pub const LOGON_FAILURE: u32 = 1326;
    /// ERROR_INVALID_LOGON_HOURS.
    pub const INVALID_LOGON_HOURS: u32 = 1328;
    /// ERROR_INVALID_WORKSTATION.
    pub const INVALID_WORKSTATION: u32 = 1329;
    /// ERROR_PASSWORD_EXPIRED.
    pub const PASSWORD_EXPIRED: u32 = 1330;
    /// ERROR_ACCOUNT_DISABLED.
    pub const ACCOUNT_DISABLED: u32 = 1331;
    /// ERROR_ACCOUNT_EXPIRED.
    pub const ACCOUNT_EXPIRED: u32 = 1793;
    /// ERROR_PASSWORD_MUST_CHANGE (pwdLastSet 0).
    pub const PASSWORD_MUST_CHANGE: u32 = 1907;
    /// ERROR_ACCOUNT_LOCKED_OUT.
    pub const ACCOUNT_LOCKED_OUT: u32 = 1909;

    /// The Win32 code in an AD bind diagnostic (`…AcceptSecurityContext error, data 52e, v4563`),
    /// if it has one.
    pub fn from_diagnostic(text: &str) -> Option<u32> {
        let rest = &text[text.find("data ")? + 5..];
        let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        u32::from_str_radix(&hex, 16).ok()
    }
}

/// How synced users' passwords are checked at sign-in, for every managed domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SignInMethod {
    /// Against the hash password hash sync left in the cloud.
    #[default]
    PasswordHashSync,
    /// By an on-premises authentication agent, against AD, at every sign-in.
    PassThroughAuthentication,
}

impl SignInMethod {
    /// `phs` / `pta` (as `lab up --sign-in` and Connect's task take them), or the long names.
    pub fn parse(s: &str) -> Option<SignInMethod> {
        match s.to_ascii_lowercase().as_str() {
            "phs" | "passwordhashsync" | "password-hash-sync" => Some(SignInMethod::PasswordHashSync),
            "pta" | "passthroughauthentication" | "pass-through-authentication" => Some(SignInMethod::PassThroughAuthentication),
            _ => None,
        }
    }

    /// The short name (`phs`, `pta`).
    pub fn short(self) -> &'static str {
        match self {
            SignInMethod::PasswordHashSync => "phs",
            SignInMethod::PassThroughAuthentication => "pta",
        }
    }
}

/// One agent's copy of the password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentCopy {
    pub agent: Uuid,
    pub password: Sealed,
}

/// Tenant → agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ToAgent {
    /// Validate a user's password against AD.
    Validate {
        id: Uuid,
        /// The on-premises userPrincipalName the agent sends to AD.
        user_principal_name: String,
        /// The password sealed once for every registered agent: the taker opens its own.
        copies: Vec<AgentCopy>,
        /// Unix time (ms) after which the tenant no longer waits.
        deadline_ms: u64,
    },
    HeartbeatAck,
}

/// Agent → tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum FromAgent {
    Heartbeat,
    Validated { id: Uuid, result: Validation },
}

/// What an agent found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum Validation {
    /// AD answered; `win32` is `LogonUser`'s result (0: the password is good).
    Logon { win32: u32 },
    /// No copy for this agent's key opened (AADSTS80010).
    CannotDecrypt,
    /// No domain controller answered (AADSTS80007).
    DirectoryUnreachable,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_win32_code_is_read_from_ads_and_sambas_diagnostics() {
        let ad = "80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error, data 52e, v4563\u{0}";
        assert_eq!(win32::from_diagnostic(ad), Some(win32::LOGON_FAILURE));
        assert_eq!(win32::from_diagnostic("... data 775, v4563"), Some(win32::ACCOUNT_LOCKED_OUT));
        assert_eq!(win32::from_diagnostic("... data 532, v4563"), Some(win32::PASSWORD_EXPIRED));
        assert_eq!(win32::from_diagnostic("... data 773, v4563"), Some(win32::PASSWORD_MUST_CHANGE));
        assert_eq!(win32::from_diagnostic("Invalid credentials"), None);
    }

    #[test]
    fn messages_round_trip_as_tagged_json() {
        let m = FromAgent::Validated { id: Uuid::nil(), result: Validation::Logon { win32: 1326 } };
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains("\"kind\":\"validated\"") && text.contains("\"result\":\"logon\""), "{text}");
        assert_eq!(serde_json::from_str::<FromAgent>(&text).unwrap(), m);
    }
}
