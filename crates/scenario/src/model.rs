//! The scenario file: what a user writes. Strict (unknown keys are errors); every step keeps
//! its line and column so that a failure points at it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

/// One scenario file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A sentence: what happens.
    pub name: String,
    /// What real behaviour the scenario pins down, and where that behaviour is documented.
    pub about: String,
    /// The environment: `testlab` (the built-in default) or a path to an LDIF file for the
    /// AD DS (relative to the scenario file).
    #[serde(default)]
    pub lab: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Start the writeback engine, onboarded (default: true, as `lab up`). `false`: the lab
    /// has no engine, and the tenant answers as Entra does without one.
    #[serde(default)]
    pub engine: Option<bool>,
    /// The sourceAnchor Connect was installed with (default objectGUID). With
    /// `mS-DS-ConsistencyGuid` the synced users' AD objects carry a copy of their objectGUID in
    /// it, and the engine finds users by it.
    #[serde(default)]
    pub source_anchor: Option<writeback::SourceAnchor>,
    /// Known: a real Samba AD DC answers this scenario differently from Windows (whose
    /// behaviour the scenario and the lab follow) — why, in a sentence. `lab conformance`
    /// then expects it to fail against Samba, and says so in its table.
    #[serde(default)]
    pub samba_differs: Option<String>,
    /// Known: under Cloud Sync's provisioning agent (`lab run --agent cloud-sync`) this
    /// scenario comes out differently from Connect Sync, and why — with Microsoft's source.
    /// The run then expects it to fail there and reports it as a known difference.
    #[serde(default)]
    pub cloud_sync_differs: Option<String>,
    /// The tenant starts as Connect's cycles left it (default: true). `false`: before the
    /// first cycle — only cloud-only accounts; `sync.run` brings the on-premises users.
    #[serde(default)]
    pub presynced: Option<bool>,
    /// Settings applied, as an administrator would, before the first step.
    #[serde(default)]
    pub given: Given,
    #[schemars(with = "Vec<Step>")]
    pub steps: Vec<Spanned<Step>>,
}

/// Overrides on top of the environment, applied over the same HTTP and LDAP as the steps.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Given {
    /// The sync agent(s) the lab runs (read when the lab starts): `connect-sync` (Connect's
    /// engine), `cloud-sync` (Cloud Sync's provisioning agent alone, in Connect's place:
    /// OU=Lab Users) or `both` (side by side: Connect OU=Lab Users, Cloud Sync OU=Cloud Sync
    /// Users with User6). Unset: the runner's `--agent` (default connect-sync).
    #[serde(default)]
    pub agent: Option<AgentArg>,
    /// Domain controllers of the domain (1–8; default 1): DC1, the PDC emulator, and
    /// replicas replicating every 15 s of the lab clock (`adds.replication`, `adds.use_dc`).
    #[serde(default)]
    #[schemars(range(min = 1, max = 8))]
    pub dcs: Option<u8>,
    /// Forests: 2 adds fabrikam.example (FDC1…, FUser1, FUser2), `dcs` DCs of its own.
    #[serde(default)]
    #[schemars(range(min = 1, max = 2))]
    pub forests: Option<u8>,
    /// A child domain in testlab's forest: child.testlab.example (CDC1…, CUser1).
    #[serde(default)]
    pub child_domain: bool,
    #[serde(default)]
    pub tenant: TenantGiven,
    #[serde(default, rename = "ad-ds")]
    pub ad_ds: AdGiven,
    #[serde(default)]
    pub connect: ConnectGiven,
}

/// The sync agents a lab can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AgentArg {
    /// Microsoft Entra Connect Sync (the default).
    ConnectSync,
    /// Microsoft Entra Cloud Sync's provisioning agent alone.
    CloudSync,
    /// Both, side by side, each with its own OU.
    Both,
}

impl AgentArg {
    pub fn lab(self) -> labkit::SyncAgents {
        match self {
            AgentArg::ConnectSync => labkit::SyncAgents::ConnectSync,
            AgentArg::CloudSync => labkit::SyncAgents::CloudSync,
            AgentArg::Both => labkit::SyncAgents::Both,
        }
    }
}

/// What Connect (and its authentication agents) are set to before the steps.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectGiven {
    /// User sign-in: `phs` (password hash sync) or `pta` (pass-through authentication),
    /// set by Connect's "Change user sign-in" task.
    pub sign_in: Option<SignInMethodArg>,
    /// Standalone authentication agents installed beside Connect's (PTA2, PTA3, …).
    pub pta_agents: Option<u8>,
    /// How long a sign-in waits for its agent (ms) before AADSTS80002 (default 10000).
    pub pta_timeout_ms: Option<u64>,
}

/// The sign-in methods Connect's "Change user sign-in" offers (Seamless SSO is not modelled:
/// it needs Kerberos).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignInMethodArg {
    /// Password hash synchronization.
    Phs,
    /// Pass-through authentication.
    Pta,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantGiven {
    pub sspr: Option<SetSspr>,
    pub writeback: Option<SetWriteback>,
    pub risk_policy: Option<SetRiskPolicy>,
    pub password_rules: Option<SetPasswordRules>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdGiven {
    /// The domain's password and lockout policy, written on the domain object.
    pub policy: Option<AdPolicy>,
}

/// The default domain policy's knobs (durations like `1d`, `30m`; `0` for none).
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdPolicy {
    pub min_length: Option<u32>,
    pub history: Option<u32>,
    pub complexity: Option<bool>,
    pub min_age: Option<String>,
    pub max_age: Option<String>,
    pub lockout_threshold: Option<u32>,
    pub lockout_duration: Option<String>,
    pub lockout_window: Option<String>,
}

/// How an LDAP client connects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// ldap:// in clear
    Ldap,
    /// ldap:// upgraded with StartTLS
    Starttls,
    /// ldaps:// (the default)
    #[default]
    Ldaps,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Base,
    One,
    Sub,
}

/// A step: one action (its name is the key) plus what to expect of it and what to keep.
#[derive(Debug)]
pub struct Step {
    pub action: Action,
    pub expect: Option<Expect>,
    /// `name: field` — keep a field of the answer (e.g. `newPassword`) as `${name}`.
    pub capture: BTreeMap<String, String>,
}

/// What a step should come to.
#[derive(Debug, Clone, PartialEq)]
// one per step of a parsed file: its size does not matter, a Box would in every match
#[allow(clippy::large_enum_variant)]
pub enum Expect {
    Ok,
    /// Any refusal, whatever its code (where the documentation names none).
    Failure,
    Outcome(Outcome),
}

/// An expected failure by its real code, or a detail of a success.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// LDAP result name, e.g. `invalidCredentials`, `constraintViolation`.
    pub ldap: Option<String>,
    /// AD's `data` sub-code in the diagnostic, e.g. `52e`, `775`, `0000052D`.
    pub data: Option<String>,
    /// Graph's error code, e.g. `Authorization_RequestDenied`.
    pub graph: Option<String>,
    /// The HTTP status.
    pub status: Option<u16>,
    /// The AADSTS number of a sign-in failure, e.g. 50126.
    pub aadsts: Option<u32>,
    /// The SSPR code, e.g. `SSPR_0010`, or the lab's name of a portal message.
    pub sspr: Option<String>,
    /// A Graph resetPassword operation's end: `succeeded` or `failed`.
    pub operation: Option<String>,
    /// The operation's statusDetail.
    pub detail: Option<String>,
    /// How many entries a search returns.
    pub count: Option<usize>,
    /// What a compare answers.
    pub compare: Option<bool>,
    /// Text the error message contains.
    pub message: Option<String>,
    /// Fields of the step's JSON answer by dotted path (`unlockOffered`, `value.0.id`,
    /// `error.code`), each equal to the value given (`null`: null or absent; `"*"`: any value
    /// present, e.g. `"@odata.nextLink": "*"`): a detail of a success or of a refusal.
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub json: Option<BTreeMap<String, serde_json::Value>>,
    /// HTTP response headers by name (any case): a value, `"*"` for present with any value,
    /// `null` for absent — e.g. Graph's `202 Accepted` `{ Location: "*" }`.
    pub headers: Option<BTreeMap<String, Option<String>>>,
}

macro_rules! actions {
    ($( $(#[doc = $doc:literal])* $name:literal => $variant:ident($args:ty), )*) => {
        /// Every action, by the name a step uses.
        #[derive(Debug)]
        pub enum Action {
            $( $(#[doc = $doc])* $variant($args), )*
        }

        impl Action {
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            pub fn name(&self) -> &'static str {
                match self {
                    $( Action::$variant(_) => $name, )*
                }
            }

            /// Who an LDAP step acts as (`as:`), when it says.
            pub fn actor(&self) -> Option<&str> {
                match self {
                    Action::LdapSearch(a) => a.actor.as_deref(),
                    Action::LdapCompare(a) => a.actor.as_deref(),
                    Action::LdapModify(a) => a.actor.as_deref(),
                    Action::LdapAdd(a) => a.actor.as_deref(),
                    Action::LdapDelete(a) => a.actor.as_deref(),
                    Action::LdapMove(a) => a.actor.as_deref(),
                    Action::LdapReset(a) => a.actor.as_deref(),
                    Action::LdapUnlock(a) => a.actor.as_deref(),
                    _ => None,
                }
            }

            fn next_from<'de, A: MapAccess<'de>>(name: &str, map: &mut A) -> Result<Action, A::Error> {
                Ok(match name {
                    $( $name => Action::$variant(map.next_value()?), )*
                    other => return Err(de::Error::unknown_variant(other, Self::NAMES)),
                })
            }

            /// The JSON Schema of a step: one object per action.
            fn step_schemas(g: &mut schemars::SchemaGenerator) -> Vec<schemars::Schema> {
                let expect = g.subschema_for::<ExpectSchema>();
                let capture = g.subschema_for::<BTreeMap<String, String>>();
                vec![$(
                    schemars::json_schema!({
                        "type": "object",
                        "description": concat!($($doc),*).trim(),
                        "properties": { $name: g.subschema_for::<$args>(), "expect": expect.clone(), "capture": capture.clone() },
                        "required": [$name],
                        "additionalProperties": false,
                    }),
                )*]
            }
        }
    };
}

actions! {
    /// SSPR "Who are you?": starts a reset for a user.
    "sspr.start" => SsprStart(SsprUser),
    /// Sends a code by a method and verifies it with the code from the lab outbox (or `code`).
    "sspr.verify" => SsprVerify(SsprVerify),
    /// Sends a code by `method` only (the verify step's first half): a `clock.advance` may
    /// then sit between sending and entering it.
    "sspr.send_code" => SsprSendCode(SsprSendCode),
    /// Enters the latest code sent by `method` (or `code`): the verify step's second half.
    "sspr.enter_code" => SsprEnterCode(SsprVerify),
    /// The new password; with `user`, the whole flow (start, every gate, reset) in one step.
    "sspr.reset" => SsprReset(SsprReset),
    /// Unlock without reset; with `user`, the whole flow in one step.
    "sspr.unlock" => SsprUnlock(SsprUnlock),
    /// A cloud sign-in (the token endpoint's password grant).
    "user.sign_in" => UserSignIn(Credentials),
    /// An app's sign-in as a browser walks it: the authorization code flow with PKCE through
    /// the sign-in pages (username, password, "Update your password"), the code redeemed.
    /// The answer: the token response with `id_token_claims`, or the page's or redirect's
    /// AADSTS error. The STS session (cookie) is kept for later steps (`prompt: none`).
    "user.sign_in_interactive" => UserSignInInteractive(Interactive),
    /// Signs out at the end_session endpoint: the STS session ends.
    "user.sign_out" => UserSignOut(Nothing),
    /// The device code flow: a device asks for a code, a second client (a browser) enters it
    /// on the "Enter code" page and signs in (or cancels), the device polls for its token.
    "user.device_code" => UserDeviceCode(DeviceCode),
    /// A user's own change: Graph's /me/changePassword or the sign-in page's.
    "user.change_password" => UserChangePassword(UserChange),
    /// An administrator's reset: Graph's resetPassword method (written back) or PATCH passwordProfile (cloud only).
    "admin.reset_password" => AdminReset(AdminReset),
    /// Assigns a directory role.
    "admin.set_role" => AdminSetRole(SetRole),
    /// SSPR's policy blade.
    "admin.set_sspr" => AdminSetSspr(SetSspr),
    /// The two halves of the writeback switch.
    "admin.set_writeback" => AdminSetWriteback(SetWriteback),
    /// Plays an Identity Protection detection at a level.
    "admin.set_risk" => AdminSetRisk(SetRisk),
    /// The user-risk policy.
    "admin.set_risk_policy" => AdminSetRiskPolicy(SetRiskPolicy),
    /// Password Rule Settings: custom banned list, smart lockout.
    "admin.set_password_rules" => AdminSetPasswordRules(SetPasswordRules),
    /// Adds or removes licences (P1, P2).
    "admin.set_licenses" => AdminSetLicenses(SetLicenses),
    /// Adds a user to a group (by display name).
    "admin.add_member" => AdminAddMember(AddMember),
    /// Any Graph call as an administrator.
    "admin.graph" => AdminGraph(GraphCall),
    /// An LDAP simple bind.
    "ldap.bind" => LdapBind(LdapBind),
    /// An LDAP search.
    "ldap.search" => LdapSearch(LdapSearch),
    /// An LDAP compare.
    "ldap.compare" => LdapCompare(LdapCompare),
    /// An LDAP modify.
    "ldap.modify" => LdapModify(LdapModify),
    /// An LDAP add.
    "ldap.add" => LdapAdd(LdapAdd),
    /// An LDAP delete.
    "ldap.delete" => LdapDelete(LdapDelete),
    /// Moves an entry under another parent (a modify DN keeping its RDN).
    "ldap.move" => LdapMove(LdapMove),
    /// A user's own change over LDAP: unicodePwd delete old, add new, bound as the user.
    "ldap.change_password" => LdapChange(LdapChange),
    /// A reset over LDAP: unicodePwd replace, as an administrator or any principal.
    "ldap.reset_password" => LdapReset(LdapReset),
    /// Unlocks an account over LDAP (lockoutTime 0).
    "ldap.unlock" => LdapUnlock(LdapUnlock),
    /// Moves the lab clock forward (`90m`, `2d`).
    "clock.advance" => ClockAdvance(String),
    /// Stops the writeback service (the tenant then has no engine to send to).
    "engine.stop" => EngineStop(Nothing),
    /// Starts it again and waits for its relay link.
    "engine.start" => EngineStart(Nothing),
    /// Makes the engine hold each request this long before acting (0 to stop).
    "engine.delay" => EngineDelay(Delay),
    /// Disables writeback as the Connect wizard does (31012, 31013): registration removed,
    /// the sync side's flag off.
    "engine.offboard" => EngineOffboard(Nothing),
    /// Enables writeback as the Connect wizard's Optional features → Password writeback →
    /// Configure does (31004, 31017, 31018, 31005): the sync side's flag on, password
    /// management on every connector there is, the service started.
    "engine.onboard" => EngineOnboard(Nothing),
    /// Clears the wizard's Optional features → Password writeback, Connect staying installed
    /// for sync (31012, 31013, 31016): the first half of "turn writeback off and on", the fix
    /// for 0x8023061f (`engine.onboard` is the second).
    "engine.disable_writeback" => EngineDisableWriteback(Nothing),
    /// The wizard's Connect your directories › Add Directory for a directory the lab's Connect
    /// server reaches (`fabrikam.example`, `child.testlab.example`): a new connector, without
    /// password writeback until writeback is turned off and on.
    "engine.add_directory" => EngineAddDirectory(String),
    /// Connect your directories › Remove: the connector and its connector space go; the next
    /// cycle deletes the users no other connector holds from the cloud.
    "engine.remove_directory" => EngineRemoveDirectory(String),
    /// Synchronization Service Manager › Connectors › Properties › Connect to Active Directory
    /// Forest: the connector account's new password `{ directory, password }` (after it was
    /// changed in AD, event 6000 "no-start-credentials" until this), the service restarted.
    "engine.connector_password" => EngineConnectorPassword(ConnectorPassword),
    /// Takes a delegated right away from the connector account (`Reset Password`, `Write lockoutTime`, …).
    "engine.revoke_right" => EngineRevokeRight(RightArg),
    /// Gives it back.
    "engine.grant_right" => EngineGrantRight(RightArg),
    /// A deny entry on one object, as ADUC writes it: `{ right: Change Password, entry:
    /// User1 }` is "User cannot change password" (trustees Everyone and SELF unless given).
    "adds.deny" => AddsDeny(DenyArg),
    /// Takes that deny away again.
    "adds.remove_deny" => AddsRemoveDeny(DenyArg),
    /// An allow entry on one object, as ADUC's Advanced Security Settings writes it:
    /// `{ right: Reset Password, entry: '${base_dn}', trustee: 'TESTLAB\User4', applies_to:
    /// descendant_users }` (a trustee is required).
    "adds.allow" => AddsAllow(DenyArg),
    /// Takes that allow entry away again.
    "adds.remove_allow" => AddsRemoveAllow(DenyArg),
    /// Switches a fault on the domain controller: `state: down` (no answer),
    /// `untrusted_certificate` (TLS from a CA the engine does not trust), `up`; and
    /// `policy_hints: false` (a DC that predates the policy-hints control).
    "adds.fault" => AddsFault(AddsFault),
    /// ADUC's "Change Domain Controller…": the LDAP steps after it talk to this DC (`DC2`, or
    /// another domain's: `FDC1`, `CDC1`), `expect.entry` reads from it.
    "adds.use_dc" => AddsUseDc(String),
    /// `repadmin /syncall`: every DC pulls every other's changes now, paused or not.
    "adds.replicate" => AddsReplicate(Nothing),
    /// The replication between the DCs: `paused: true` (as `repadmin /options
    /// +DISABLE_INBOUND_REPL`), `interval: 5m` (default 15s of the lab clock).
    "adds.replication" => AddsReplication(Replication),
    /// Connect's AD connector › Configure Directory Partitions › Domain controller connection
    /// settings: `{ preferred: [DC2], only_preferred: true }`; the connector's connection
    /// restarts (as after restarting ADSync).
    "engine.preferred_dcs" => EnginePreferredDcs(PreferredDcs),
    /// ADUC's Advanced Security Settings › "Disable inheritance" (removing the inherited
    /// entries: SE_DACL_PROTECTED) or "Enable inheritance" on an object, written over LDAPS
    /// as the domain's administrator.
    "adds.inheritance" => AddsInheritance(InheritanceArg),
    /// The tenant's fault switch: `cloud_write_fails: true` makes the cloud's own write of
    /// an SSPR reset fail after AD took it (OnPremisesSuccessCloudFailure).
    "tenant.fault" => TenantFault(TenantFault),
    /// The engine's fault switches: `unsealed_ldap: true` (the connector's "Sign and Encrypt
    /// LDAP traffic" off: 33009, 0x8023062C), `key_mismatch: true` (another private key than
    /// the registered one: 32004 DecryptionError).
    "engine.fault" => EngineFault(EngineFault),
    /// Connect's "Change user sign-in" task: `{ method: pta }` installs the agent beside
    /// Connect (if it is not) and turns pass-through authentication on; `{ method: phs }`
    /// turns it off. As the tenant's Global Administrator, or `user`/`password` given.
    "connect.change_sign_in" => ConnectChangeSignIn(ChangeSignIn),
    /// An authentication agent's fault switches (`agent`: `CONNECT1`, `PTA2`, … or `all`,
    /// the default): `stopped`, `delay_ms`, `wrong_key`, `directory_unreachable`.
    "pta.fault" => PtaFault(PtaFault),
    /// A sync cycle now, asked for as an administrator (`POST /lab/sync`): `delta` (default)
    /// or `initial`.
    "sync.run" => SyncRun(SyncRunArg),
    /// The last sync cycle's report: counts, and an error code it holds.
    "expect.sync" => ExpectSync(ExpectSync),
    /// The engine logged this Connect event (as many times, with this text).
    "expect.event" => ExpectEvent(ExpectEvent),
    /// One operation's Connect events, in this order, sharing one tracking ID.
    "expect.events" => ExpectEvents(ExpectEvents),
    /// A directory audit entry exists (the newest with that activity).
    "expect.audit" => ExpectAudit(ExpectAudit),
    /// Cloud Sync's provisioning agent wrote a trace line (its log has no event IDs).
    "expect.agent_trace" => ExpectAgentTrace(ExpectAgentTrace),
    /// An AD entry's attributes, read as the domain's administrator.
    "expect.entry" => ExpectEntry(ExpectEntry),
    /// A cloud user's properties, read through Graph as an administrator.
    "expect.user" => ExpectUser(ExpectUser),
    /// Messages in the lab outbox.
    "expect.outbox" => ExpectOutbox(ExpectOutbox),
    /// A user's risk in Identity Protection.
    "expect.risk" => ExpectRisk(ExpectRisk),
}

/// No arguments: `{}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Nothing {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RightArg {
    /// Reset Password, Change Password, Write lockoutTime, Write pwdLastSet, Unexpire Password
    pub right: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRunArg {
    #[serde(rename = "type", default)]
    pub policy_type: Option<PolicyType>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyType {
    Delta,
    Initial,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectSync {
    pub added: Option<usize>,
    pub updated: Option<usize>,
    pub deleted: Option<usize>,
    pub passwords: Option<usize>,
    /// How many errors (default: not checked).
    pub errors: Option<usize>,
    /// An error with this code (`AttributeValueMustBeUnique`, `DuplicateSourceAnchor`, …).
    pub error: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Replication {
    pub paused: Option<bool>,
    /// Between runs, on the lab clock (`15s`, `5m`; at least a second, at most a day).
    pub interval: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorPassword {
    /// The connector's directory: `fabrikam.example`.
    pub directory: String,
    pub password: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferredDcs {
    pub preferred: Vec<String>,
    #[serde(default)]
    pub only_preferred: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddsFault {
    /// Which DC (`DC2`; default DC1).
    pub dc: Option<String>,
    pub state: Option<DcState>,
    pub policy_hints: Option<bool>,
    /// How late the DC answers each search, in milliseconds (0: at once; at most 60000): a DC
    /// under load, on which a deadline can pass between the connector's search and its write.
    pub search_delay_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DcState {
    Up,
    Down,
    UntrustedCertificate,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Delay {
    pub ms: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyArg {
    /// `Change Password`, `Reset Password`, …, `All extended rights` (a control-access entry
    /// without an object type: every extended right at once) or `Full control`.
    pub right: String,
    /// The object the entry is on (sAMAccountName, UPN or DN).
    pub entry: String,
    /// Whom it names: `Everyone`, `SELF`, or a user or group (name or DN); for a deny, default
    /// Everyone and SELF, as ADUC's "User cannot change password" writes them.
    pub trustee: Option<String>,
    /// ADUC's "Applies to": what the entry reaches. Default: the object itself for a user or
    /// a right on the domain object, descendant user objects for another container.
    pub applies_to: Option<AppliesTo>,
}

/// `adds.inheritance`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InheritanceArg {
    /// The object (sAMAccountName, UPN or DN).
    pub entry: String,
    /// false: "Disable inheritance" (inherited entries removed); true: "Enable inheritance".
    pub inherit: bool,
}

/// ADUC's "Applies to" list (the ACE's inheritance flags and inherited object type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppliesTo {
    /// "This object only": no inheritance flags.
    ThisObject,
    /// "This object and all descendant objects": container-inherit.
    ThisObjectAndDescendants,
    /// "All descendant objects": container-inherit, inherit-only.
    Descendants,
    /// "Descendant User objects": inherit-only, for the user class.
    DescendantUsers,
    /// "Descendant Computer objects": inherit-only, for the computer class.
    DescendantComputers,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeSignIn {
    pub method: SignInMethodArg,
    /// The administrator who runs the task (default: the tenant's Global Administrator).
    pub user: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PtaFault {
    /// `CONNECT1` (Connect's), `PTA2`, … or `all` (default).
    pub agent: Option<String>,
    /// The agent's service stopped (Inactive: no queue link).
    pub stopped: Option<bool>,
    /// Each validation held this long (ms) before AD is asked.
    pub delay_ms: Option<u64>,
    /// The agent holds another private key than the one it registered (AADSTS80010).
    pub wrong_key: Option<bool>,
    /// The agent cannot reach a domain controller (AADSTS80007).
    pub directory_unreachable: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EngineFault {
    pub unsealed_ldap: Option<bool>,
    pub key_mismatch: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantFault {
    pub cloud_write_fails: bool,
}

/// The newest operation (tracking ID) that logged `sequence[0]` logged every ID of `sequence`
/// in that order (others may come between), e.g. `[31009, 31011, 33004]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectEvents {
    pub sequence: Vec<u32>,
}

/// `expect.agent_trace`: lines of Cloud Sync's agent trace log (`GET /lab/cloudsync/agent-trace`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectAgentTrace {
    /// Text the line contains, e.g. `ADUserNotFound`.
    pub contains: String,
    /// `AgentService`, `PasswordWriteback` or `Provisioning`.
    pub component: Option<String>,
    /// How many lines (default: at least one).
    pub count: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectEvent {
    /// The event ID (31002 PasswordResetSuccess, 33004 ADPermissionsError, …).
    pub id: u32,
    /// How many times (default: at least once).
    pub count: Option<usize>,
    /// Text its message contains.
    pub message: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SsprUser {
    pub user: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SsprVerify {
    /// `email` or `mobilePhone`.
    pub method: String,
    /// A code to type instead of the one sent (to try a wrong one).
    pub code: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SsprSendCode {
    /// `email` or `mobilePhone`.
    pub method: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SsprReset {
    pub user: Option<String>,
    pub new_password: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SsprUnlock {
    pub user: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeVia {
    /// `POST /me/changePassword` with the user's token
    #[default]
    Graph,
    /// the sign-in page's change (`/lab/signIn/changePassword`), no token needed
    SignIn,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    pub user: String,
    pub current: String,
    pub new: String,
    #[serde(default)]
    pub via: ChangeVia,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResetVia {
    /// `POST /users/{id}/authentication/methods/{id}/resetPassword` (written back)
    #[default]
    ResetPassword,
    /// `PATCH /users/{id}` with a passwordProfile (the cloud only)
    PasswordProfile,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminReset {
    /// The administrator (default: the testlab Global Administrator).
    #[serde(rename = "as")]
    pub actor: Option<String>,
    /// The administrator's password, when not a seeded account.
    pub password: Option<String>,
    pub user: String,
    /// Omit for a system-generated password (cloud-only users; capture `newPassword`).
    pub new_password: Option<String>,
    /// Must change at next sign-in (PATCH only; resetPassword always forces).
    pub force_change: Option<bool>,
    #[serde(default)]
    pub via: ResetVia,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    pub user: String,
    /// The role's display name, e.g. `Helpdesk Administrator`.
    pub role: String,
}

/// SSPR's policy blade.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSspr {
    /// `none`, `selected` (with `group`) or `all`.
    pub enabled: Option<String>,
    /// The group's display name for `selected`.
    pub group: Option<String>,
    pub methods_required: Option<u8>,
    pub email: Option<bool>,
    pub mobile_phone: Option<bool>,
    pub notify_users: Option<bool>,
    pub notify_admins: Option<bool>,
}

/// The two halves of writeback's switch, and the lab's Graph-change setting.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWriteback {
    /// The sync side's passwordWritebackEnabled (what Connect sets when it onboards).
    pub sync_side: Option<bool>,
    /// SSPR's "Write back passwords to your on-premises directory?"
    pub write_back_passwords: Option<bool>,
    /// "Allow users to unlock accounts without resetting their password?"
    pub allow_unlock: Option<bool>,
    /// Whether Graph's /me/changePassword of a synced user is written back.
    pub graph_change_password: Option<bool>,
    /// "Write back passwords with Microsoft Entra Connect cloud sync" (Cloud Sync's users are
    /// written back only with it; refused while no provisioning agent is registered).
    pub cloud_sync: Option<bool>,
    /// The sync side's forced-password-change writeback (userForcePasswordChangeOnLogonEnabled).
    pub force_change: Option<bool>,
    /// How long the tenant waits for on-premises (ms) before "can't reach on-premises".
    pub relay_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRisk {
    pub user: String,
    /// none, low, medium, high
    pub level: String,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRiskPolicy {
    pub enabled: Option<bool>,
    /// low, medium, high
    pub level: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRules {
    /// The custom banned list.
    #[serde(default)]
    pub banned: Vec<String>,
    pub enabled: Option<bool>,
    pub lockout_threshold: Option<u32>,
    pub lockout_seconds: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLicenses {
    pub user: String,
    /// `P1`, `P2`
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub group: String,
    pub user: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphCall {
    /// GET, POST, PATCH, DELETE
    pub method: String,
    /// From the root, e.g. `/v1.0/users`.
    pub path: String,
    /// A JSON body (YAML is fine).
    pub body: Option<serde_json::Value>,
    /// A form-encoded body (`application/x-www-form-urlencoded`) instead of `body`: what the
    /// token endpoint takes, e.g. `{ grant_type: refresh_token, refresh_token: "${rt}", … }`.
    pub form: Option<BTreeMap<String, String>>,
    #[serde(rename = "as")]
    pub actor: Option<String>,
    pub password: Option<String>,
    /// Request headers, e.g. `{ ConsistencyLevel: eventual }` for Graph's advanced queries.
    pub headers: Option<BTreeMap<String, String>>,
}

/// `user.sign_in_interactive`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Interactive {
    /// Typed on the username page (none: the flow must end without it, e.g. `prompt: none`).
    pub user: Option<String>,
    pub password: Option<String>,
    /// Typed on "Update your password" when the pages ask for a new password.
    pub new_password: Option<String>,
    /// `login`, `none`, `select_account` (the account picker's signed-in account is chosen).
    pub prompt: Option<String>,
    /// Sends `user` as `login_hint` (the pages start at the password).
    #[serde(default)]
    pub login_hint: bool,
    /// `query` (default), `fragment` or `form_post`.
    pub response_mode: Option<String>,
    /// Default `http://localhost:53100` (the lab app's loopback redirect URI).
    pub redirect_uri: Option<String>,
    /// Default: the lab's own app.
    pub client_id: Option<String>,
    /// Sends no PKCE challenge (a public client is refused: AADSTS9002325).
    #[serde(default)]
    pub no_pkce: bool,
}

/// `user.device_code`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceCode {
    /// Who signs in on the "Enter code" page (none: nobody does, the device's poll says so).
    pub user: Option<String>,
    pub password: Option<String>,
    /// Answers "Cancel" to "Are you trying to sign in to …?".
    #[serde(default)]
    pub decline: bool,
    /// Moves the lab clock this much before the code is entered (`901s`: past its lifetime).
    pub advance: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapBind {
    pub user: String,
    pub password: String,
    #[serde(default)]
    pub via: Via,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapSearch {
    #[serde(rename = "as")]
    pub actor: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub via: Via,
    /// Default: the domain's base DN.
    pub base: Option<String>,
    pub scope: Option<Scope>,
    pub filter: Option<String>,
    #[serde(default)]
    pub attrs: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapCompare {
    #[serde(rename = "as")]
    pub actor: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub via: Via,
    /// A DN, or a user's sAMAccountName or UPN.
    pub entry: String,
    pub attr: String,
    pub value: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// add, delete, replace, increment
    pub op: String,
    pub attr: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapModify {
    #[serde(rename = "as")]
    pub actor: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub via: Via,
    pub entry: String,
    pub changes: Vec<Change>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapAdd {
    #[serde(rename = "as")]
    pub actor: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub via: Via,
    pub dn: String,
    pub attrs: BTreeMap<String, OneOrMany>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapMove {
    #[serde(rename = "as")]
    pub actor: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub via: Via,
    pub entry: String,
    /// The new parent's DN (default: where it is: a rename).
    pub to: Option<String>,
    /// A new RDN, e.g. `OU=Cloud Users` (default: its own: a move).
    pub rdn: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapDelete {
    #[serde(rename = "as")]
    pub actor: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub via: Via,
    pub entry: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapChange {
    pub user: String,
    /// The password to bind with (default: `old`) — to send a wrong `old` after a good bind.
    pub password: Option<String>,
    pub old: String,
    pub new: String,
    #[serde(default)]
    pub via: Via,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapReset {
    #[serde(rename = "as")]
    pub actor: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub via: Via,
    pub user: String,
    pub new_password: String,
    /// Send the policy-hints control (AD then applies history to the reset), as the
    /// writeback engine does.
    #[serde(default)]
    pub policy_hints: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapUnlock {
    #[serde(rename = "as")]
    pub actor: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub via: Via,
    pub user: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn values(&self) -> Vec<String> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectAudit {
    /// The activity display name, e.g. `Reset password (self-service)`.
    pub activity: String,
    /// success or failure
    pub result: Option<String>,
    pub reason: Option<String>,
    /// The target's userPrincipalName.
    pub user: Option<String>,
    /// additionalDetails entries by key, e.g. `{ OnPremisesAgent: Microsoft Entra Connect }`
    /// (None for a cloud-only user; CloudSync for Cloud Sync's agent).
    #[serde(default)]
    pub details: BTreeMap<String, String>,
}

/// Attribute expectations: a value, a list of values (exactly those), `null` for absent,
/// `"*"` for present with any value, `"!v"` for present and not `v`, `{ contains: v }` or
/// `{ contains: [v, w] }` for a multi-valued attribute holding these among others.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectEntry {
    /// A DN, or a user's sAMAccountName or UPN.
    pub entry: String,
    pub attrs: BTreeMap<String, Option<AttrWant>>,
}

/// What an attribute of `expect.entry` must hold.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum AttrWant {
    /// A value, or a list of values: exactly these (and `"*"`, `"!v"`).
    Exactly(OneOrMany),
    /// These values among others (a group's `member`, a user's `objectClass`).
    Contains(Contains),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contains {
    pub contains: OneOrMany,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectUser {
    pub user: String,
    /// Graph property names and their expected JSON values.
    pub props: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectOutbox {
    pub to: String,
    pub count: Option<usize>,
    /// Text the newest message's subject contains.
    pub subject: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectRisk {
    pub user: String,
    pub level: Option<String>,
    pub state: Option<String>,
    pub detail: Option<String>,
}

// ----- hand-written parts: a step's one action key beside `expect`/`capture` -----

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Step, D::Error> {
        struct StepVisitor;
        impl<'de> Visitor<'de> for StepVisitor {
            type Value = Step;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a step: one action (e.g. `ldap.bind: {...}`) with optional `expect` and `capture`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
                let (mut action, mut expect, mut capture) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "expect" if expect.is_none() => expect = Some(map.next_value()?),
                        "capture" if capture.is_none() => capture = Some(map.next_value()?),
                        "expect" | "capture" => return Err(de::Error::duplicate_field("expect/capture")),
                        name if action.is_none() => action = Some(Action::next_from(name, &mut map)?),
                        name => {
                            return Err(de::Error::custom(format!(
                                "a step has one action, found a second `{name}` (start a new `- ` item for it)"
                            )));
                        }
                    }
                }
                let action = action.ok_or_else(|| de::Error::custom("a step needs an action, e.g. `ldap.bind: {...}`"))?;
                Ok(Step { action, expect, capture: capture.unwrap_or_default() })
            }
        }
        d.deserialize_map(StepVisitor)
    }
}

impl JsonSchema for Step {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Step".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "oneOf": Action::step_schemas(g) })
    }
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Expect, D::Error> {
        struct ExpectVisitor;
        impl<'de> Visitor<'de> for ExpectVisitor {
            type Value = Expect;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`ok`, `failure` or a map such as `{ ldap: invalidCredentials, data: 52e }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Expect, E> {
                match v {
                    "ok" => Ok(Expect::Ok),
                    "failure" => Ok(Expect::Failure),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Expect, A::Error> {
                Outcome::deserialize(de::value::MapAccessDeserializer::new(map)).map(Expect::Outcome)
            }
        }
        d.deserialize_any(ExpectVisitor)
    }
}

/// The schema of `expect` (the hand-written Deserialize above accepts exactly this).
#[derive(JsonSchema)]
#[allow(dead_code, clippy::large_enum_variant)]
#[serde(untagged)]
enum ExpectSchema {
    Ok(OkWord),
    Outcome(Outcome),
}

#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
enum OkWord {
    Ok,
    Failure,
}

/// The JSON Schema of the scenario format, for editors (docs/scenario.schema.json).
pub fn schema() -> serde_json::Value {
    let mut v = serde_json::to_value(schemars::schema_for!(Scenario)).expect("schema serialises");
    scalars_as_text(&mut v);
    v
}

/// Where the loader wants text, a YAML plain scalar is text: `data: 533` is "533",
/// `min_age: 0` is "0", `name: true` is "true". A JSON Schema validator (and an editor's YAML
/// extension) sees those as a number or a boolean, so every free-text string in the schema
/// also admits them — the schema then accepts what the loader accepts. Enumerated values
/// (result names, SSPR codes) stay strings: the loader refuses a number there too.
pub(crate) fn scalars_as_text(v: &mut serde_json::Value) {
    use serde_json::{Value, json};
    match v {
        Value::Object(m) => {
            let textual = match m.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
                _ => false,
            };
            if textual && !m.contains_key("enum") && !m.contains_key("const") {
                let mut types = match m.get("type") {
                    Some(Value::Array(ts)) => ts.clone(),
                    _ => vec![json!("string")],
                };
                for t in ["number", "boolean"] {
                    if !types.contains(&json!(t)) {
                        types.push(json!(t));
                    }
                }
                m.insert("type".into(), Value::Array(types));
            }
            m.values_mut().for_each(scalars_as_text);
        }
        Value::Array(a) => a.iter_mut().for_each(scalars_as_text),
        _ => {}
    }
}

/// A scenario file that does not parse: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
    /// The parser's full text (with a source snippet), for humans.
    pub detail: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a scenario; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ParseError> {
    let scenario: Scenario = serde_saphyr::from_str(text).map_err(|e| parse_error(file, &e))?;
    if scenario.steps.is_empty() {
        return Err(ParseError {
            file: file.to_string(),
            line: 1,
            column: 1,
            message: "a scenario needs at least one step under `steps:`".into(),
            detail: String::new(),
        });
    }
    Ok(scenario)
}

/// A YAML or shape error as file:line:column and what.
pub(crate) fn parse_error(file: &str, e: &serde_saphyr::Error) -> ParseError {
    let detail = e.to_string().replace("<input>", file);
    let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    let message = strip_location(detail.lines().next().unwrap_or("invalid file"));
    ParseError { file: file.to_string(), line, column, message, detail }
}

/// serde-saphyr's first line reads "error: line L column C: what"; the location is put in
/// front as file:line:column instead.
fn strip_location(first: &str) -> String {
    let rest = first.trim().trim_start_matches("error: ");
    let rest = match rest.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((place, what)) if place.contains(" column ") => what,
        _ => rest,
    };
    rest.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: a reset\nabout: why\nsteps:\n  - ldap.bind: { user: 'TESTLAB\\User1', password: x }\n    expect: { ldap: invalidCredentials, data: 52e }\n  - clock.advance: 2d\n  - user.sign_in: { user: u, password: p }\n    expect: ok\n    capture: { t: access_token }\n";

    #[test]
    fn a_good_file_parses_with_step_locations() {
        let s = parse("good.yaml", GOOD).unwrap();
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.steps[0].value.action.name(), "ldap.bind");
        assert_eq!(s.steps[1].referenced.line(), 6);
        let Expect::Outcome(o) = s.steps[0].value.expect.clone().unwrap() else { panic!() };
        assert_eq!((o.ldap.as_deref(), o.data.as_deref()), (Some("invalidCredentials"), Some("52e")));
        assert_eq!(s.steps[2].value.expect, Some(Expect::Ok));
        assert_eq!(s.steps[2].value.capture["t"], "access_token");
    }

    fn error(text: &str) -> ParseError {
        parse("bad.yaml", text).unwrap_err()
    }

    #[test]
    fn errors_name_the_place_and_what_was_expected() {
        let e = error("name: n\nabout: a\nsteps:\n  - ldap.bnd: { user: u, password: p }\n");
        assert_eq!((e.line, e.file.as_str()), (4, "bad.yaml"));
        assert!(e.message.contains("ldap.bnd") && e.message.contains("ldap.bind"), "{e}");

        let e = error("name: n\nabout: a\nsteps:\n  - ldap.bind: { user: u, pasword: p }\n");
        assert_eq!(e.line, 4);
        assert!(e.message.contains("pasword") && e.message.contains("password"), "{e}");

        let e = error("name: n\nabout: a\nstep:\n  - clock.advance: 1d\n");
        assert!(e.message.contains("step"), "{e}");

        let e = error("name: n\nabout: a\nsteps:\n  - clock.advance: 1d\n    expect: fine\n");
        assert_eq!(e.line, 5);
        assert!(e.message.contains("ok"), "{e}");

        let e = error("name: n\nabout: a\nsteps:\n  - clock.advance: 1d\n    ldap.bind: { user: u, password: p }\n");
        assert!(e.message.contains("one action"), "{e}");

        let e = error("name: n\nabout: a\nsteps: []\n");
        assert!(e.message.contains("at least one step"), "{e}");
        assert!(e.to_string().starts_with("bad.yaml:1:1: "));
    }

    #[test]
    fn the_schema_lists_every_action() {
        let text = schema().to_string();
        for name in Action::NAMES {
            assert!(text.contains(&format!("\"{name}\"")), "{name} missing from the schema");
        }
    }
}
