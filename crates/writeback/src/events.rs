//! Connect's application events for writeback (PasswordResetService and ADSync sources), and
//! how an AD answer reads in them. Plain data; the IDs and names are Microsoft's (the
//! writeback troubleshooting page's event table).

use relay::Failure;
use serde::Serialize;

/// One event in the engine's log. Messages never carry a password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: u32,
    pub source: &'static str,
    pub name: &'static str,
    /// Information, Warning or Error.
    pub level: &'static str,
    pub message: String,
    /// Ties the events of one operation together (Connect's tracking ID).
    pub tracking_id: Option<String>,
    pub time: String,
}

/// Password hash sync could not read the directory (Connect's event 611).
pub const PHS_FAILED: u32 = 611;
/// A sync cycle's start and end. Connect shows cycles in Synchronization Service Manager's
/// run history rather than as documented event IDs: these three are the lab's own.
pub const SYNC_STARTED: u32 = 9101;
pub const SYNC_COMPLETED: u32 = 9102;
pub const SYNC_FAILED: u32 = 9103;

/// 32004's text: the sealed password is not for this engine's key.
pub const KEY_MISMATCH: &str = "The password could not be decrypted: it was encrypted for another key than this service's (disable and re-enable password writeback to exchange keys).";

/// Microsoft's name for each event ID the engine logs (Connect's event tables; the sync cycle's
/// three are the lab's own). Data, not a rule: `name` looks it up.
const NAMES: &[(u32, &str)] = &[
    (31001, "PasswordResetStart"),
    (31002, "PasswordResetSuccess"),
    (31003, "PasswordResetFail"),
    (31004, "OnboardingEventStart"),
    (31005, "OnboardingEventSuccess"),
    (31006, "ChangePasswordStart"),
    (31007, "ChangePasswordSuccess"),
    (31008, "ChangePasswordFail"),
    (31009, "ResetUserPasswordByAdminStart"),
    (31010, "ResetUserPasswordByAdminSuccess"),
    (31011, "ResetUserPasswordByAdminFail"),
    (31012, "OffboardingEventStart"),
    (31013, "OffboardingEventSuccess"),
    (31014, "OffboardingEventFail"),
    (31015, "WriteBackServiceStarted"),
    (31016, "WriteBackServiceStopped"),
    (31017, "AuthTokenSuccess"),
    (31018, "KeyPairCreationSuccess"),
    (31019, "ServiceBusHeartBeat"),
    (32000, "UnknownError"),
    (32002, "ServiceBusError"),
    (32004, "DecryptionError"),
    (32009, "AuthTokenError"),
    (32011, "OnBoardingServiceError"),
    (32014, "ServiceBusWarning"),
    (33001, "ADUnKnownError"),
    (33002, "ADUserNotFoundError"),
    (33003, "ADMutliMatchError"),
    (33004, "ADPermissionsError"),
    (33005, "ADUserAccountDisabled"),
    (33006, "ADUserAccountLockedOut"),
    (33007, "ADUserIncorrectPassword"),
    (33008, "ADPasswordPolicyError"),
    (33009, "ADConfigurationError"),
    (6329, "ADSync"),
    (RUN_FAILED, "ADSync"),
    (656, "PasswordChangeRequest"),
    (657, "PasswordChangeResult"),
    (611, "PasswordHashSyncFailed"),
    (SYNC_STARTED, "SyncCycleStarted"),
    (SYNC_COMPLETED, "SyncCycleCompleted"),
    (SYNC_FAILED, "SyncCycleFailed"),
];

/// The name Microsoft gives an event ID ("Unknown" for one the engine never logs).
pub fn name(id: u32) -> &'static str {
    NAMES.iter().find(|(i, _)| *i == id).map_or("Unknown", |(_, n)| n)
}

pub fn level(id: u32) -> &'static str {
    match id {
        31003 | 31008 | 31011 | 31014 | 32000..=32999 | 33001..=33999 | 6329 | RUN_FAILED | PHS_FAILED | SYNC_FAILED => "Error",
        _ => "Information",
    }
}

/// The Connect event for a failure (33xxx, or 32004 for a password that would not open).
pub fn for_failure(f: Failure) -> u32 {
    match f {
        Failure::PasswordPolicy => 33008,
        Failure::IncorrectPassword => 33007,
        Failure::Permissions => 33004,
        Failure::UserNotFound => 33002,
        Failure::MultiMatch => 33003,
        Failure::AccountDisabled => 33005,
        Failure::AccountLockedOut => 33006,
        Failure::DirectoryUnavailable => 33001,
        Failure::Configuration => 33009,
        Failure::Decryption => 32004,
        Failure::Unknown => 33001,
    }
}

/// ADSync 6329's text when no object carries the anchor.
pub const NOT_FOUND: &str = "0x80230405: The operation failed because the object cannot be found.";
/// ADSync 6329's text when more than one object carries it (Microsoft's troubleshooting table).
pub const DUPLICATE_ANCHOR: &str =
    "hr=80230402: An attempt to get an object failed because there are duplicated entries with the same anchor.";

/// ADSync 6329's text for a user of a connector without password management: a forest added
/// (or re-added) after writeback was enabled (Microsoft's troubleshooting table).
pub const PWD_SYNC_NOT_ENABLED: &str =
    "hr=0x8023061f: The operation failed because password synchronization is not enabled on this Management Agent.";
/// ADSync 6329's text when the anchor's metaverse object joins more than one enabled account
/// (Connect's writeback troubleshooting: "Multiple matches found").
pub const MULTIPLE_MATCHES: &str =
    "Multiple matches found: hr=80230402: An attempt to get an object failed because there are duplicated entries with the same anchor.";
/// Event 6000: a connector's run that could not start because AD refused its account
/// (Synchronization Service Manager's run status `no-start-credentials`).
pub const RUN_FAILED: u32 = 6000;

/// ADSync 6329's text when the DC does not know the policy-hints control.
pub const NO_POLICY_HINTS: &str = "MMS(3040): admaexport.cpp(2837): The server doesn't contain the LDAP password policy control.";
/// The Win32 text for ERROR_DS_SERVER_DOWN, which Windows' LDAP client also gives for a
/// certificate it does not trust (LDAP_SERVER_DOWN).
pub const SERVER_DOWN: &str = "0x8007203A: The server is not operational.";

/// ADSync 6329's text for a DN the ADSI path form cannot carry (E_ADS_BAD_PATHNAME).
pub const BAD_PATHNAME: &str = "hr=80005000: An invalid directory pathname was passed.";

/// Whether a DN holds, in one of its RDN values, a character Connect's ADSI path
/// (`LDAP://server/DN`) reserves: `/`, `=`, or anything LDAP escapes in a DN (leading space
/// or `#`, trailing space, `,` `+` `"` `\` `<` `>` `;`, LF, CR) — Microsoft's writeback
/// troubleshooting table, event 33001.
pub fn adsi_reserved(dn: &str) -> bool {
    // LDAP escapes every other reserved character with a backslash, so a backslash in a
    // value is enough to know; the first unescaped `=` of an RDN ends its type
    let mut in_value = false;
    for c in dn.chars() {
        match c {
            '\\' | '/' => return true,
            '=' if in_value => return true,
            '=' => in_value = true,
            ',' => in_value = false,
            _ => {}
        }
    }
    false
}

/// How an AD answer to a password write reads: the failure, and the ADSync 6329 text
/// Connect logs beside it (its MMS / HRESULT detail).
pub fn classify(rc: u32, diagnostic: &str) -> (Failure, &'static str) {
    let code = diagnostic.get(..8).filter(|c| c.chars().all(|x| x.is_ascii_hexdigit())).unwrap_or("");
    match (rc, code) {
        (19, "00000056") | (49, _) => (Failure::IncorrectPassword, "0x80070056: The specified network password is not correct."),
        (19, "00000775") => {
            (Failure::AccountLockedOut, "0x80070775: The referenced account is currently locked out and may not be logged on to.")
        }
        // any other refused change — "User cannot change password" among them, which a DC
        // answers with constraintViolation too — reads as the same restriction (Microsoft's
        // table lists PASSWD_CANT_CHANGE under 6329 0x80230619)
        (19, _) => (
            Failure::PasswordPolicy,
            "BAIL: MMS(4924): 0x80230619: A restriction prevents the password from being changed to the current one specified.",
        ),
        (50, _) => (Failure::Permissions, "hr=80230626: The management agent credentials were denied access."),
        (32, _) => (Failure::UserNotFound, NOT_FOUND),
        (53, "0000001F") => (
            Failure::Configuration,
            "0x8023062C: The server is not configured for insecure setting of passwords, or a 128 bit TLS or SSL connection is required.",
        ),
        (12, _) => (Failure::Configuration, NO_POLICY_HINTS),
        _ => (Failure::Unknown, "An unexpected error occurred in the AD connector."),
    }
}

/// AD's reason for refusing a password, in plain words, for the lab's own surfaces (the
/// event view, transcripts): Connect's 6329 text says only "a restriction prevents the
/// password from being changed", and a trainee needs to know which. Read from AD's result
/// code as well as its diagnostic: the same "00000005" is a change the user's object denies
/// under constraintViolation (19), and a reset the writer holds no Reset Password for under
/// insufficientAccessRights (50). None when AD's answer names no rule the lab can explain.
pub fn plain_reason(rc: u32, diagnostic: &str) -> Option<&'static str> {
    let d = diagnostic.to_ascii_lowercase();
    // (Samba words the access refusals its own way)
    let access = d.starts_with("00000005") || d.starts_with("error in module acl");
    match rc {
        19 if access => {
            return Some(
                "the user may not change their password: their object denies the Change Password right (ADUC's \"User cannot change password\"); a reset is still allowed",
            );
        }
        50 if access => {
            return Some(
                "the AD connector account does not hold Reset Password on this user: Connect's account permissions grant it on the synced users (a protected account, adminCount=1, takes AdminSDHolder's permissions instead, and these do not grant it)",
            );
        }
        50 if d.starts_with("00002098") => {
            return Some(
                "the AD connector account may not write an attribute this operation writes: lockoutTime (an unlock, or a reset that unlocks) or pwdLastSet (a reset that asks for a new password at the next sign-in)",
            );
        }
        _ => {}
    }
    if rc != 19 || !d.starts_with("0000052d") {
        return None;
    }
    Some(if d.contains("too young") {
        "the current password is younger than the minimum password age of the user's policy (the domain's minPwdAge, or msDS-MinimumPasswordAge of the fine-grained policy in the user's msDS-ResultantPSO); Microsoft's writeback prerequisites ask for 0, or wait"
    } else if d.contains("already used") || d.contains("history") {
        "the new password is the current one or one of the user's recent passwords (pwdHistoryLength, or a fine-grained policy's msDS-PasswordHistoryLength)"
    } else if d.contains("too short") {
        "the new password is shorter than the minimum length of the user's policy (the domain's minPwdLength, or msDS-MinimumPasswordLength of the fine-grained policy in the user's msDS-ResultantPSO)"
    } else if d.contains("complexity") {
        "the new password does not meet the complexity requirements (the domain's pwdProperties, or a fine-grained policy's msDS-PasswordComplexityEnabled)"
    } else {
        "the new password breaks the domain's (or a fine-grained) password policy"
    })
}

/// What Cloud Sync's provisioning agent writes to its trace log where Connect logs event
/// `id`: the same happening in the agent's words, without an event ID (Microsoft publishes
/// none for Cloud Sync); AD's failures by the exception names support cases quote
/// (`ADUserNotFound`, …).
pub fn cloud_sync_line(id: u32, message: String, tracking: Option<&str>, time: String) -> crate::AgentTraceLine {
    let component = match id {
        31015 | 31016 | 31017 | 31018 | 31019 | 32002 | 32009 | 32011 | 32014 => "AgentService",
        656 | 657 | PHS_FAILED | RUN_FAILED | SYNC_STARTED..=SYNC_FAILED => "Provisioning",
        _ => "PasswordWriteback",
    };
    let message = match id {
        31015 => {
            "Microsoft Entra Provisioning Agent service started (running as the gMSA); listening for requests from the cloud.".to_string()
        }
        31016 => "Microsoft Entra Provisioning Agent service stopped; password writeback requests will fail.".to_string(),
        33001..=33009 => {
            let full = name(id);
            message.replacen(full, full.strip_suffix("Error").unwrap_or(full), 1)
        }
        _ => message,
    };
    crate::AgentTraceLine { time, level: level(id), component, message, tracking_id: tracking.map(str::to_string), connect_event: id }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each event ID has one name, every failure's event is named, and an ID the engine never
    /// logs is "Unknown".
    #[test]
    fn every_event_the_engine_logs_has_microsofts_name() {
        let ids: std::collections::HashSet<u32> = NAMES.iter().map(|(i, _)| *i).collect();
        assert_eq!(ids.len(), NAMES.len(), "one name per ID");
        assert_eq!((name(31001), name(33004), name(6329), name(1)), ("PasswordResetStart", "ADPermissionsError", "ADSync", "Unknown"));
        let failures = [
            Failure::PasswordPolicy,
            Failure::IncorrectPassword,
            Failure::Permissions,
            Failure::UserNotFound,
            Failure::MultiMatch,
            Failure::AccountDisabled,
            Failure::AccountLockedOut,
            Failure::DirectoryUnavailable,
            Failure::Configuration,
            Failure::Decryption,
            Failure::Unknown,
        ];
        for f in failures {
            assert_ne!(name(for_failure(f)), "Unknown", "{f:?}");
        }
    }

    #[test]
    fn policy_refusals_get_a_plain_reason() {
        let young = "0000052D: AtrErr: DSID-03190F80, #1:\n\t(lab: check_password_restrictions: password is too young to change!)";
        assert!(plain_reason(19, young).unwrap().contains("minPwdAge"));
        assert!(plain_reason(19, "0000052D: x (lab: the password was already used (in history)!)").unwrap().contains("pwdHistoryLength"));
        assert!(plain_reason(19, "0000052D: x (lab: the password was already used (previous password)!)").unwrap().contains("current one"));
        assert!(
            plain_reason(19, "0000052D: x (lab: the password is too short. It should be equal or longer than 7 characters!)")
                .unwrap()
                .contains("minPwdLength")
        );
        assert!(
            plain_reason(19, "0000052D: x (lab: the password does not meet the complexity criteria!)").unwrap().contains("pwdProperties")
        );
        assert!(plain_reason(19, "0000052D: AtrErr: DSID-03190F80").unwrap().contains("fine-grained"));
        assert_eq!(plain_reason(53, "0000052D: x"), None, "a policy diagnostic under another code is not read as one");
        assert_eq!(plain_reason(32, "0000208D: NameErr"), None);
    }

    /// The note follows AD's result code, not the diagnostic's first word alone (issue 32: a
    /// reset refused for the connector's missing right read as "User cannot change password").
    #[test]
    fn access_refusals_are_told_apart_by_their_result_code() {
        let lab_change = "00000005: SecErr: DSID-031A11E5, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0";
        let lab_reset = "00000005: SecErr: DSID-031A11B9, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0\n";
        let samba_change = "error in module acl: Constraint violation during LDB_MODIFY (19)";
        let samba_reset = "error in module acl: insufficient access rights during LDB_MODIFY (50)";
        for change in [plain_reason(19, lab_change), plain_reason(19, samba_change)] {
            assert!(change.unwrap().contains("User cannot change password"), "{change:?}");
        }
        for reset in [plain_reason(50, lab_reset), plain_reason(50, samba_reset)] {
            let note = reset.unwrap();
            assert!(note.contains("does not hold Reset Password") && note.contains("AdminSDHolder"), "{note}");
            assert!(!note.contains("change their password"), "{note}");
        }
        let write = plain_reason(50, "00002098: SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0\n").unwrap();
        assert!(write.contains("lockoutTime") && write.contains("pwdLastSet"), "{write}");
        assert_eq!(plain_reason(50, "000020E6: SvcErr: DSID-031A1254, problem 5003 (WILL_NOT_PERFORM)"), None, "no rule to explain");
    }

    #[test]
    fn ad_answers_map_to_connects_failures_and_events() {
        let policy = "0000052D: AtrErr: DSID-03190F80, #1:\n\t0: 0000052D: DSID-03190F80, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)\n";
        assert_eq!(classify(19, policy).0, Failure::PasswordPolicy);
        assert_eq!(for_failure(Failure::PasswordPolicy), 33008);
        assert_eq!(classify(19, "00000056: AtrErr: DSID-03190F80").0, Failure::IncorrectPassword);
        assert_eq!(classify(50, "00002098: SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0\n").0, Failure::Permissions);
        assert_eq!(for_failure(Failure::Permissions), 33004);
        assert_eq!(classify(53, "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0\n").0, Failure::Configuration);
        assert_eq!(classify(12, "00002040: SvcErr"), (Failure::Configuration, NO_POLICY_HINTS));
        assert_eq!((for_failure(Failure::Configuration), for_failure(Failure::DirectoryUnavailable)), (33009, 33001));
        assert_eq!(classify(80, "?").0, Failure::Unknown);
        // a change refused for a locked account (data 775), and an object gone (noSuchObject)
        assert_eq!(classify(19, "00000775: AtrErr: DSID-03190F80").0, Failure::AccountLockedOut);
        assert_eq!(for_failure(Failure::AccountLockedOut), 33006);
        assert_eq!(classify(32, "0000208D: NameErr: DSID-03100241, problem 2001 (NO_OBJECT)"), (Failure::UserNotFound, NOT_FOUND));
        // a change the object's ACL refuses: the lab's answer and Samba's
        let denied = classify(19, "00000005: SecErr: DSID-031A11E5, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0");
        assert_eq!(denied, classify(19, "error in module acl: Constraint violation during LDB_MODIFY (19)"));
        assert_eq!(denied.0, Failure::PasswordPolicy);
        assert!(denied.1.contains("0x80230619"));
        assert_eq!((name(33004), level(33004), level(31002)), ("ADPermissionsError", "Error", "Information"));
    }

    #[test]
    fn the_adsi_path_reserves_slash_equals_and_every_escaped_character() {
        for ok in ["CN=User1,OU=Lab Users,DC=testlab,DC=example", "CN=O'Brien (EMEA),OU=Sales-EMEA,DC=x"] {
            assert!(!adsi_reserved(ok), "{ok}");
        }
        for bad in [
            "CN=Emea One,OU=Sales/EMEA,DC=x",
            "CN=Doe\\, John,OU=Users,DC=x",
            "CN=A\\+B,DC=x",
            "CN=\\#hash,DC=x",
            "CN=trailing\\ ,DC=x",
            "CN=x,OU=a=b,DC=x",
            "CN=line\\0Abreak,DC=x",
        ] {
            assert!(adsi_reserved(bad), "{bad}");
        }
    }

    /// Cloud Sync's trace line for a happening Connect logs as an event: no event ID in the
    /// line, the AD failure by its exception name, the agent service's own words.
    #[test]
    fn cloud_syncs_trace_lines_name_no_event_id() {
        let line = |id, m: &str| cloud_sync_line(id, m.into(), Some("t1"), "2026-01-01T00:00:00Z".into());
        let l = line(33002, "ADUserNotFoundError (u@x)");
        assert_eq!((l.component, l.level, l.message.as_str()), ("PasswordWriteback", "Error", "ADUserNotFound (u@x)"));
        assert_eq!((l.connect_event, l.tracking_id.as_deref()), (33002, Some("t1")));
        assert!(!l.message.contains("33002"));
        assert_eq!(line(31016, "The password writeback service stopped").component, "AgentService");
        let started = line(31015, "The password writeback service started and is ready for requests from the cloud.");
        assert!(started.message.starts_with("Microsoft Entra Provisioning Agent service started"), "{}", started.message);
        assert!(line(31016, "x").message.contains("Provisioning Agent service stopped"));
        assert_eq!(line(657, "Password Change Result").component, "Provisioning");
        assert_eq!(
            line(31002, "The reset for u@x was written to Active Directory.").message,
            "The reset for u@x was written to Active Directory."
        );
        // and an agent's log keeps them instead of events
        let log = crate::EventLog::for_agent(clock::Clock::frozen(clock::Clock::lab_epoch()), relay::AgentKind::CloudSync);
        log.log(33004, "ADPermissionsError (u@x)", None);
        assert!(log.all().is_empty());
        assert_eq!(log.agent_trace()[0].message, "ADPermissions (u@x)");
    }
}
