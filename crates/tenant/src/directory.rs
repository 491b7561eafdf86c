//! The tenant's directory: its users (cloud-only and synced), app registrations and
//! sign-in rules (AADSTS errors, smart lockout), as plain synchronous Rust.

use std::collections::HashMap;

use clock::{Clock, OffsetDateTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use uuid::Uuid;

use crate::passwords::{self, BannedList, Credential, Refusal};
use crate::roles::{self, Role};

/// A new password as a finish stores it: hashed ahead, off the tenant's lock while AD
/// answered (`server::writeback::through`), when the request carries a hash; else hashed now.
struct NewPassword<'a> {
    clear: &'a str,
    hashed: Option<Credential>,
}

impl<'a> NewPassword<'a> {
    fn clear(clear: &'a str) -> Self {
        NewPassword { clear, hashed: None }
    }

    fn written_back(clear: &'a str, request: &crate::sspr::OnPremRequest) -> Self {
        NewPassword { clear, hashed: request.hashed.clone() }
    }

    fn credential(self) -> Credential {
        self.hashed.unwrap_or_else(|| Credential::from_password(self.clear, &mut rand::rngs::OsRng))
    }
}

/// What password hash sync left on a synced user (Graph's onPremises* properties).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OnPremises {
    /// base64 of the AD objectGUID (or mS-DS-ConsistencyGuid): the sourceAnchor.
    pub immutable_id: String,
    /// The on-premises userPrincipalName (the cloud's differs when its suffix is not a
    /// verified domain of the tenant).
    pub user_principal_name: String,
    pub sam_account_name: String,
    pub domain_name: String,
    pub distinguished_name: String,
    pub security_identifier: String,
    /// Which sync agent provisions the user (its writeback goes to an agent of that kind).
    #[serde(skip)]
    pub agent: relay::AgentKind,
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
    pub user_principal_name: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub mail: Option<String>,
    pub account_enabled: bool,
    pub on_premises: Option<OnPremises>,
    pub credential: Option<Credential>,
    pub force_change_password_next_sign_in: bool,
    /// `DisablePasswordExpiration`, `DisableStrongPassword`.
    pub password_policies: Vec<String>,
    pub last_password_change: OffsetDateTime,
    pub roles: Vec<Role>,
    /// Registered SSPR methods.
    pub methods: Vec<crate::sspr::Method>,
    /// Assigned licence SKU ids.
    pub licenses: Vec<Uuid>,
    pub sspr_counters: crate::sspr::Counters,
    /// Identity Protection's view of the user.
    pub risk: crate::risk::UserRisk,
    smart_lockout: SmartLockout,
}

impl User {
    pub fn synced(&self) -> bool {
        self.on_premises.is_some()
    }

    /// A user built from its creation spec.
    fn from_spec(id: Uuid, spec: &NewUser, credential: Option<Credential>, now: OffsetDateTime) -> User {
        User {
            id,
            user_principal_name: spec.user_principal_name.clone(),
            display_name: spec.display_name.clone(),
            given_name: spec.given_name.clone(),
            surname: spec.surname.clone(),
            mail: spec.mail.clone(),
            account_enabled: spec.account_enabled,
            on_premises: spec.on_premises.clone(),
            credential,
            force_change_password_next_sign_in: false,
            password_policies: spec.password_policies.clone(),
            last_password_change: now,
            roles: spec.roles.clone(),
            methods: spec.methods.clone(),
            licenses: spec.licenses.clone(),
            sspr_counters: Default::default(),
            risk: Default::default(),
            smart_lockout: SmartLockout::default(),
        }
    }

    /// A user not yet created, for checking a password against its names.
    pub fn probe(spec: &NewUser) -> User {
        User::from_spec(Uuid::nil(), spec, None, OffsetDateTime::UNIX_EPOCH)
    }

    /// Entra ID P1 or P2: what SSPR (and writeback) need for non-administrators.
    pub fn has_premium(&self) -> bool {
        self.licenses.iter().any(|l| *l == SKU_ENTRA_ID_P1 || *l == SKU_ENTRA_ID_P2)
    }
}

/// SKU ids of Microsoft Entra ID P1 (AAD_PREMIUM) and P2 (AAD_PREMIUM_P2).
pub const SKU_ENTRA_ID_P1: Uuid = uuid::uuid!("078d2b04-f1bd-4111-bbd4-b4b1b354cef4");
pub const SKU_ENTRA_ID_P2: Uuid = uuid::uuid!("84a661c4-e949-4bd2-a560-ed7766fcaf2b");

/// An app registration with a client secret and Graph application permissions.
#[derive(Clone, Debug)]
pub struct App {
    pub client_id: Uuid,
    pub display_name: String,
    /// The app's first secret (the lab's own app is seeded with one); more come from
    /// `addPassword` ([`App::passwords`]). None for an app registered without one.
    pub secret: Option<Credential>,
    /// Graph application permissions granted with admin consent (the token's `roles`).
    pub permissions: Vec<String>,
    /// The application object's id (Graph's `/applications/{id}`; the client id is its `appId`).
    pub object_id: Uuid,
    /// The service principal's id, once there is one (`/servicePrincipals`).
    pub service_principal: Option<Uuid>,
    /// Redirect URIs by platform: web, public client (mobile and desktop), single-page app.
    pub web_redirect_uris: Vec<String>,
    pub public_redirect_uris: Vec<String>,
    pub spa_redirect_uris: Vec<String>,
    /// "Allow public client flows": ROPC and device code without a secret.
    pub is_fallback_public_client: bool,
    /// Secrets added with `addPassword`.
    pub passwords: Vec<AppPassword>,
}

/// Entra's default directory quota: 50,000 objects for a tenant ("Microsoft Entra service
/// limits and restrictions"); the lab's bound on what Graph may create.
pub const OBJECT_QUOTA: usize = 50_000;

/// Graph's answer past the quota.
pub const QUOTA_MESSAGE: &str = "The directory object quota limit for the Tenant has been exceeded. Please ask your administrator to increase the quota limit or delete objects to reduce the used quota.";

/// An id that follows from another (an app's object and service principal ids from its
/// appId): reproducible, and drawing nothing from the generator other ids come from.
pub fn derived_id(from: Uuid, what: &str) -> Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::new().chain_update(from.as_bytes()).chain_update(what.as_bytes()).finalize();
    let bytes: [u8; 16] = digest[..16].try_into().expect("16 of 32 bytes");
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// A client secret added over Graph (`passwordCredential`): the text is shown once.
#[derive(Clone, Debug)]
pub struct AppPassword {
    pub key_id: Uuid,
    pub display_name: Option<String>,
    /// The first three characters of the secret (Graph's `hint`).
    pub hint: String,
    pub credential: Credential,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

impl App {
    /// Every redirect URI the app registered, on any platform.
    pub fn redirect_uris(&self) -> impl Iterator<Item = &String> {
        self.web_redirect_uris.iter().chain(&self.public_redirect_uris).chain(&self.spa_redirect_uris)
    }

    /// A public client: it holds no secret a token request could prove (mobile, desktop,
    /// single-page), so PKCE is its proof. An app whose redirect URI is a public client's or
    /// a single-page app's, or that allows public client flows.
    pub fn is_public_for(&self, redirect_uri: &str) -> bool {
        crate::authorize::redirect_uri_registered(self.public_redirect_uris.iter().chain(&self.spa_redirect_uris), redirect_uri)
            || (self.is_fallback_public_client && !crate::authorize::redirect_uri_registered(&self.web_redirect_uris, redirect_uri))
    }

    /// Whether `secret` is one of the app's secrets (expired ones are not) at `now`.
    pub fn secret_matches(&self, secret: &str, now: OffsetDateTime) -> bool {
        self.secret.as_ref().is_some_and(|c| c.verify(secret))
            || self.passwords.iter().any(|p| p.end > now && p.start <= now && p.credential.verify(secret))
    }
}

/// Entra smart lockout, apart from AD's: after 10 failed sign-ins the account is locked for
/// a minute, each further lockout longer (Microsoft's defaults; the Password Rule Settings
/// change both). It keeps fingerprints of the last three wrong passwords, and one of those
/// again does not count ("Smart lockout tracks the last three bad password hashes to avoid
/// incrementing the lockout counter for the same password", Microsoft's smart lockout page):
/// a phone retrying an old password does not lock its owner out. Once a lockout has ended,
/// the next failure locks again at once ("If the first sign-in after a lockout also fails,
/// the account locks out again", the Lockout threshold setting's own description).
#[derive(Clone, Debug, Default)]
struct SmartLockout {
    failures: u32,
    locked_until: Option<OffsetDateTime>,
    lockouts: u32,
    /// Locked before, and no good sign-in since: one more failure locks again.
    on_probation: bool,
    recent_bad: std::collections::VecDeque<[u8; 32]>,
}

impl SmartLockout {
    /// A wrong password: counted (unless `fingerprint` is one of the last few, which only
    /// password-hash sign-ins can tell), locking at the threshold, or at once on probation;
    /// each lockout lasts longer than the last.
    fn failure(&mut self, fingerprint: Option<[u8; 32]>, threshold: u32, duration: u32, now: OffsetDateTime) -> SignInError {
        if let Some(fingerprint) = fingerprint {
            if self.recent_bad.contains(&fingerprint) {
                return SignInError::InvalidCredentials;
            }
            if self.recent_bad.len() == RECENT_BAD_PASSWORDS {
                self.recent_bad.pop_front();
            }
            self.recent_bad.push_back(fingerprint);
        }
        self.failures += 1;
        if self.failures >= threshold || self.on_probation {
            self.lockouts += 1;
            self.on_probation = true;
            let seconds = u64::from(duration) * u64::from(self.lockouts);
            self.locked_until = Some(now + std::time::Duration::from_secs(seconds));
            self.failures = 0;
            return SignInError::Locked;
        }
        SignInError::InvalidCredentials
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.recent_bad.clear();
        self.on_probation = false;
    }
}

/// How many wrong passwords smart lockout remembers.
const RECENT_BAD_PASSWORDS: usize = 3;

/// A wrong password's fingerprint: SHA-256 under a key drawn from the OS once per process, so
/// what is kept in memory is useless outside it (and never the password).
fn bad_password_fingerprint(password: &str) -> [u8; 32] {
    use sha2::Digest;
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k);
        k
    });
    sha2::Sha256::new().chain_update(key).chain_update(password.as_bytes()).finalize().into()
}

/// Sign-in failures, as AADSTS codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignInError {
    /// AADSTS50034: no such user in this tenant.
    UnknownUser,
    /// AADSTS50126: wrong user name or password.
    InvalidCredentials,
    /// AADSTS50057: the account is disabled.
    Disabled,
    /// AADSTS50053: locked by smart lockout.
    Locked,
    /// AADSTS50055: the password has expired / must be changed.
    PasswordChangeRequired,
    /// AADSTS50142: the user-risk policy demands a secure password change.
    RiskyUserPasswordChange,
    /// AADSTS50057 from an authentication agent: AD says disabled (or account expired).
    DisabledOnPrem,
    /// AADSTS50053 from an authentication agent: AD says locked out (no published code).
    LockedOnPrem,
    /// AADSTS50144: AD says the password expired (or must change at next logon).
    PasswordExpiredOnPrem,
    /// AADSTS80012: outside the account's logon hours.
    LogonHours,
    /// AADSTS80001: no authentication agent available.
    NoAgent,
    /// AADSTS80002: the agent's validation timed out.
    AgentTimedOut,
    /// AADSTS80010: the agent could not decrypt the password.
    AgentCannotDecrypt,
    /// AADSTS80007: the agent could not reach (or understand) AD.
    AgentCannotReachDirectory,
}

impl SignInError {
    pub fn code(&self) -> u32 {
        match self {
            SignInError::UnknownUser => 50034,
            SignInError::InvalidCredentials => 50126,
            SignInError::Disabled => 50057,
            SignInError::Locked => 50053,
            SignInError::PasswordChangeRequired => 50055,
            SignInError::RiskyUserPasswordChange => 50142,
            SignInError::DisabledOnPrem => 50057,
            SignInError::LockedOnPrem => 50053,
            SignInError::PasswordExpiredOnPrem => 50144,
            SignInError::LogonHours => 80012,
            SignInError::NoAgent => 80001,
            SignInError::AgentTimedOut => 80002,
            SignInError::AgentCannotDecrypt => 80010,
            SignInError::AgentCannotReachDirectory => 80007,
        }
    }
}

/// Client-credential failures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// AADSTS700016: no such application in the directory.
    UnknownApp,
    /// AADSTS7000215: wrong client secret.
    InvalidSecret,
}

/// A directory audit entry (Graph's directoryAudit).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: String,
    pub category: String,
    pub correlation_id: String,
    pub result: String,
    pub result_reason: String,
    pub activity_display_name: String,
    pub activity_date_time: String,
    pub logged_by_service: String,
    pub operation_type: String,
    pub initiated_by: serde_json::Value,
    pub target_resources: Vec<serde_json::Value>,
    pub additional_details: Vec<serde_json::Value>,
}

/// The sync side's feature flags (Graph's onPremisesDirectorySynchronizationFeature), the
/// ones writeback and hash sync depend on.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SyncFeatures {
    pub password_sync_enabled: bool,
    /// Set by Azure AD Connect when it onboards with password writeback ticked.
    pub password_writeback_enabled: bool,
    pub user_force_password_change_on_logon_enabled: bool,
    pub cloud_password_policy_for_password_synced_users_enabled: bool,
}

impl SyncFeatures {
    /// Sets a feature by its Graph name; false for names the lab does not keep.
    pub fn set(&mut self, name: &str, on: bool) -> bool {
        let slot = match name {
            "passwordSyncEnabled" => &mut self.password_sync_enabled,
            "passwordWritebackEnabled" => &mut self.password_writeback_enabled,
            "userForcePasswordChangeOnLogonEnabled" => &mut self.user_force_password_change_on_logon_enabled,
            "cloudPasswordPolicyForPasswordSyncedUsersEnabled" => &mut self.cloud_password_policy_for_password_synced_users_enabled,
            _ => return false,
        };
        *slot = on;
        true
    }
}

/// SSPR's "On-premises integration" blade: the cloud side of writeback.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OnPremisesIntegration {
    /// "Write back passwords to your on-premises directory?"
    pub write_back_passwords: bool,
    /// "Allow users to unlock accounts without resetting their password?"
    pub allow_unlock_without_reset: bool,
    /// Lab setting (sources disagree, see docs/fidelity.md): whether Graph's
    /// `/me/changePassword` of a synced user is written back (true: treated as the
    /// self-service change Microsoft supports) or changes the cloud password only (false).
    pub write_back_graph_change_password: bool,
    /// "Write back passwords with Microsoft Entra Connect cloud sync" (shown only when a
    /// provisioning agent is registered): Cloud Sync's users are written back only with it.
    pub write_back_with_cloud_sync: bool,
}

/// A long-running operation (Graph's longRunningOperation for a password reset).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub id: Uuid,
    #[serde(skip)]
    pub user: Uuid,
    pub created_date_time: String,
    pub last_action_date_time: String,
    /// notStarted, running, succeeded, failed
    pub status: String,
    pub status_detail: Option<String>,
}

/// The id Graph gives every user's password authentication method.
pub const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";

/// Who acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    User(Uuid),
    App(Uuid),
}

/// A step that may have to wait for on-premises: done in the cloud, or a request for the
/// writeback port whose answer the matching `finish_*` takes. The tenant's state does not
/// change in between.
#[derive(Debug)]
pub enum Next<T> {
    Done(T),
    Writeback(crate::sspr::OnPremRequest),
}

/// Why an administrator's reset was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResetError {
    /// The actor's roles do not reach the target (Graph: 403 Authorization_RequestDenied).
    Forbidden,
    NotFound,
    /// Cloud rules or the banned-password list (Graph: 400, the complexity message).
    Policy(Refusal),
    /// A synced user's reset needs the new password (none can be generated for AD).
    PasswordRequired,
}

/// Why a user's own password change was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeError {
    NotFound,
    /// The current password is wrong (in the cloud, or AD said so for a synced user).
    WrongCurrentPassword,
    /// Cloud rules, Password Protection, or reuse of the current password.
    Policy(Refusal),
    /// The new password is the current one ("the last password can't be reused").
    SameAsCurrent,
    /// A synced user's change that cannot reach AD.
    WritebackNotEnabled,
    /// AD's answer, through the writeback port.
    OnPremises(crate::sspr::WritebackError),
}

impl ChangeError {
    /// The audit entry's result reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ChangeError::NotFound => "User not found.",
            ChangeError::WrongCurrentPassword => "InvalidCurrentPassword",
            ChangeError::Policy(Refusal::Banned { .. }) => "FuzzyPolicyViolationInvalidPassword",
            ChangeError::Policy(_) | ChangeError::SameAsCurrent => "PasswordDoesNotComplyWithPolicy",
            ChangeError::WritebackNotEnabled => "SSPR_0010",
            ChangeError::OnPremises(e) => crate::sspr::Error::from(e.clone()).code(),
        }
    }
}

/// Where a user changes their own password: Graph's `POST /me/changePassword`, or the
/// sign-in page's change (voluntary, expired, forced after a reset, or demanded by the
/// user-risk policy). The portal's change is always written back for synced users; Graph's
/// follows [`OnPremisesIntegration::write_back_graph_change_password`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeVia {
    Graph,
    SignIn,
}

/// Live SSPR flows the tenant keeps at most (the oldest go first).
pub const FLOWS_KEPT: usize = 10_000;
/// Below this capacity the flow store is not shrunk.
const FLOWS_SHRINK_MIN: usize = 1024;
/// Graph's password-reset operations kept (each is looked at once or twice, just after).
pub const OPERATIONS_KEPT: usize = 10_000;
/// How many outbox messages the tenant keeps (the oldest go first).
pub const OUTBOX_KEPT: usize = 1_000;
/// How many directory audit entries the tenant keeps (the oldest go first).
pub const AUDIT_KEPT: usize = 10_000;

pub struct Tenant {
    pub id: Uuid,
    /// The organisation's display name (Password Protection checks it too).
    pub name: String,
    /// Verified domains; the first is the initial `.onmicrosoft.com` domain.
    pub domains: Vec<String>,
    pub(crate) users: HashMap<Uuid, User>,
    by_upn: HashMap<String, Uuid>,
    pub(crate) groups: HashMap<Uuid, crate::groups::Group>,
    apps: HashMap<Uuid, App>,
    /// Authorization codes, device flows and the browser's sign-in sessions.
    pub grants: crate::authorize::Grants,
    /// How many directory objects (users, groups, apps) the tenant may hold ([`OBJECT_QUOTA`]).
    pub object_quota: usize,
    /// Newest last.
    /// The newest [`AUDIT_KEPT`] entries (Entra keeps 30 days; the lab keeps a count).
    audit: std::collections::VecDeque<AuditEntry>,
    /// Password Protection's global list (the custom one is in `password_rules`).
    pub banned: BannedList,
    /// The "Password Rule Settings" directory setting: custom banned list, smart lockout.
    pub password_rules: crate::settings::PasswordRuleSettings,
    pub user_risk_policy: crate::risk::UserRiskPolicy,
    /// The two halves of writeback's switch: the sync side's flags and SSPR's blade.
    pub sync_features: SyncFeatures,
    pub on_premises_integration: OnPremisesIntegration,
    /// Cloud Sync's job (quarantine, accidental-delete threshold) and provisioning log.
    pub cloud_sync_job: crate::cloudsync::Job,
    pub sspr_policy: crate::sspr::Policy,
    /// The authorization policy's allowedToUseSSPR: whether administrators may use SSPR.
    allowed_to_use_sspr: bool,
    /// Refresh tokens handed out (by hash), for the refresh grant.
    refresh_tokens: crate::refresh::Store,
    /// The lab's fault switch: the cloud's own write of an SSPR reset fails after AD took it
    /// (OnPremisesSuccessCloudFailure); hash sync converges.
    pub cloud_write_fails: bool,
    /// Live SSPR flows; expired ones are dropped as new ones come, at most [`FLOWS_KEPT`].
    flows: HashMap<Uuid, crate::sspr::Flow>,
    /// Flow ids in the order they started (oldest first).
    flow_order: std::collections::VecDeque<Uuid>,
    /// The newest [`OUTBOX_KEPT`] messages (a real mailbox's old mail is not the lab's to keep).
    outbox: std::collections::VecDeque<crate::sspr::OutboxMessage>,
    /// Graph's password-reset operations, the newest [`OPERATIONS_KEPT`] (oldest first in
    /// `operation_order`).
    operations: HashMap<Uuid, Operation>,
    operation_order: std::collections::VecDeque<Uuid>,
    /// Password hash sync or pass-through authentication, for every managed domain.
    pub sign_in_method: crate::signins::SignInMethod,
    /// The newest sign-ins (Graph's auditLogs/signIns), within a memory bound.
    pub sign_ins: crate::signins::SignInLog,
    clock: Clock,
    rng: StdRng,
}

impl Tenant {
    pub fn new(id: Uuid, name: &str, domains: Vec<String>, clock: Clock, seed: u64) -> Tenant {
        let banned = BannedList { global: passwords::LAB_GLOBAL_BANNED.iter().map(|s| s.to_string()).collect(), custom: vec![] };
        Tenant {
            id,
            name: name.into(),
            domains,
            users: HashMap::new(),
            by_upn: HashMap::new(),
            groups: HashMap::new(),
            apps: HashMap::new(),
            grants: Default::default(),
            object_quota: OBJECT_QUOTA,
            audit: Default::default(),
            banned,
            password_rules: Default::default(),
            user_risk_policy: Default::default(),
            // Hash sync runs; writeback waits for the engine to onboard (the sync side) and
            // the portal's toggle is on, as the tutorial leaves it.
            sync_features: SyncFeatures {
                password_sync_enabled: true,
                password_writeback_enabled: false,
                user_force_password_change_on_logon_enabled: false,
                cloud_password_policy_for_password_synced_users_enabled: false,
            },
            on_premises_integration: OnPremisesIntegration {
                write_back_passwords: true,
                allow_unlock_without_reset: false,
                write_back_graph_change_password: true,
                write_back_with_cloud_sync: false,
            },
            cloud_sync_job: crate::cloudsync::Job::new(format!("{}.{}", crate::cloudsync::TEMPLATE_ID, id.simple())),
            sspr_policy: crate::sspr::Policy::default(),
            allowed_to_use_sspr: true,
            refresh_tokens: Default::default(),
            cloud_write_fails: false,
            flows: HashMap::new(),
            flow_order: Default::default(),
            outbox: Default::default(),
            operations: HashMap::new(),
            operation_order: Default::default(),
            sign_in_method: Default::default(),
            sign_ins: Default::default(),
            clock,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// A new id from the tenant's seeded generator (reproducible labs).
    pub fn new_id(&mut self) -> Uuid {
        let mut b = [0u8; 16];
        rand::RngCore::fill_bytes(&mut self.rng, &mut b);
        uuid::Builder::from_random_bytes(b).into_uuid()
    }

    pub fn add_user(&mut self, mut spec: NewUser) -> Uuid {
        let id = self.new_id();
        let credential =
            spec.credential.take().or_else(|| spec.password.as_deref().map(|p| Credential::from_password(p, &mut rand::rngs::OsRng)));
        let user = User::from_spec(id, &spec, credential, self.clock.now());
        self.by_upn.insert(spec.user_principal_name.to_lowercase(), id);
        self.users.insert(id, user);
        id
    }

    pub fn add_app(&mut self, display_name: &str, secret: &str, permissions: &[&str]) -> Uuid {
        self.add_app_hashed(display_name, Credential::from_password(secret, &mut rand::rngs::OsRng), permissions)
    }

    /// [`Tenant::add_app`] with its secret already hashed.
    pub fn add_app_hashed(&mut self, display_name: &str, secret: Credential, permissions: &[&str]) -> Uuid {
        let client_id = self.new_id();
        let object_id = derived_id(client_id, "application");
        let service_principal = Some(derived_id(client_id, "servicePrincipal"));
        let app = App {
            client_id,
            display_name: display_name.into(),
            secret: Some(secret),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            object_id,
            service_principal,
            web_redirect_uris: vec![],
            // a desktop app's loopback (any port) and MSAL's native client URI
            public_redirect_uris: vec!["http://localhost".into(), "https://login.microsoftonline.com/common/oauth2/nativeclient".into()],
            spa_redirect_uris: vec![],
            is_fallback_public_client: true,
            passwords: vec![],
        };
        self.apps.insert(client_id, app);
        client_id
    }

    /// A new app registration (Graph's `POST /applications`): no secret, no permissions, no
    /// service principal yet.
    pub fn register_app(&mut self, display_name: &str) -> Uuid {
        let client_id = self.new_id();
        let object_id = derived_id(client_id, "application");
        let app = App {
            client_id,
            display_name: display_name.into(),
            secret: None,
            permissions: vec![],
            object_id,
            service_principal: None,
            web_redirect_uris: vec![],
            public_redirect_uris: vec![],
            spa_redirect_uris: vec![],
            is_fallback_public_client: false,
            passwords: vec![],
        };
        self.apps.insert(client_id, app);
        client_id
    }

    pub fn app_mut(&mut self, client_id: &Uuid) -> Option<&mut App> {
        self.apps.get_mut(client_id)
    }

    /// By the application object's id or its appId.
    pub fn app_by_object(&self, id: &Uuid) -> Option<&App> {
        self.apps.values().find(|a| a.object_id == *id).or_else(|| self.apps.get(id))
    }

    /// Apps in a stable order (by display name, then appId).
    pub fn apps(&self) -> Vec<&App> {
        let mut v: Vec<&App> = self.apps.values().collect();
        v.sort_by(|a, b| a.display_name.to_lowercase().cmp(&b.display_name.to_lowercase()).then(a.client_id.cmp(&b.client_id)));
        v
    }

    pub fn remove_app(&mut self, client_id: &Uuid) -> Option<App> {
        self.apps.remove(client_id)
    }

    pub fn user(&self, id: &Uuid) -> Option<&User> {
        self.users.get(id)
    }

    /// By object id or by userPrincipalName, as Graph's `/users/{id | userPrincipalName}`.
    pub fn find_user(&self, key: &str) -> Option<&User> {
        match Uuid::parse_str(key) {
            Ok(id) => self.users.get(&id),
            Err(_) => self.by_upn.get(&key.to_lowercase()).and_then(|id| self.users.get(id)),
        }
    }

    /// Users in a stable order (by userPrincipalName).
    /// Users in no particular order (cheap).
    pub fn users_unordered(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn users(&self) -> Vec<&User> {
        let mut v: Vec<&User> = self.users.values().collect();
        v.sort_by_key(|u| u.user_principal_name.to_lowercase());
        v
    }

    pub fn app(&self, client_id: &Uuid) -> Option<&App> {
        self.apps.get(client_id)
    }

    /// Whether another user, group or app would pass the directory's object quota.
    pub fn quota_reached(&self) -> bool {
        self.users.len() + self.groups.len() + self.apps.len() >= self.object_quota
    }

    /// A browser's sign-in session at the STS: a new one for `user`, its cookie and `sid`.
    pub fn start_session(&mut self, user: Uuid) -> Option<(String, Uuid)> {
        let credential = self.users.get(&user)?.credential.as_ref()?.salt;
        let sid = self.new_id();
        let now = self.clock.now();
        Some((self.grants.start_session(user, sid, credential, now), sid))
    }

    /// The session a cookie names: while it lasts, its user enabled and with the password it
    /// signed in with (a changed or reset password ends every session, as it revokes refresh
    /// tokens).
    pub fn session(&self, cookie: &str) -> Option<crate::authorize::Session> {
        let s = self.grants.session(cookie, self.clock.now())?;
        let u = self.users.get(&s.user)?;
        (u.account_enabled && u.credential.as_ref().is_some_and(|c| c.salt == s.credential)).then(|| s.clone())
    }

    /// A user's sign-in with a password (the ROPC grant): the checks and smart lockout's
    /// bookkeeping, in Entra's order — locked, then the password, then the account state.
    pub fn sign_in(&mut self, upn: &str, password: &str) -> Result<Uuid, SignInError> {
        let (id, credential) = self.sign_in_start(upn)?;
        let good = credential.as_ref().is_some_and(|c| c.verify(password));
        self.sign_in_finish(id, &credential, good, password)
    }

    /// A sign-in's first half: the account and the credential to check the password against,
    /// so that the check (PBKDF2, the costly part) can run without holding the tenant. A
    /// locked account is refused here, before any hashing.
    pub fn sign_in_start(&self, upn: &str) -> Result<(Uuid, Option<Credential>), SignInError> {
        let Some(id) = self.by_upn.get(&upn.to_lowercase()).copied() else { return Err(SignInError::UnknownUser) };
        let user = &self.users[&id];
        if user.smart_lockout.locked_until.is_some_and(|t| t > self.clock.now()) {
            return Err(SignInError::Locked);
        }
        Ok((id, user.credential.clone()))
    }

    /// A sign-in's second half, with the outcome of checking the password against `checked`:
    /// smart lockout's counting and the account's state, as one step. Should the credential
    /// have changed in between (a reset), the password is checked again against the new one.
    pub fn sign_in_finish(&mut self, id: Uuid, checked: &Option<Credential>, good: bool, password: &str) -> Result<Uuid, SignInError> {
        let (now, threshold, duration, demands_change) = self.second_half(id)?;
        let user = self.users.get_mut(&id).expect("looked up");
        let lock = &mut user.smart_lockout;
        let good = if user.credential == *checked { good } else { user.credential.as_ref().is_some_and(|c| c.verify(password)) };
        if !good {
            return Err(lock.failure(Some(bad_password_fingerprint(password)), threshold, duration, now));
        }
        lock.succeeded();
        Self::signed_in(user, demands_change)
    }

    /// A pass-through sign-in's end, with what the agents answered: a wrong password counts
    /// toward smart lockout — every one, as Entra tracks no repeated passwords with PTA (the
    /// password never reaches the cloud) —, a good one is then held to the cloud's checks
    /// (the account, the user-risk policy), and every other answer refuses as Microsoft's
    /// PTA pages say, without counting.
    pub fn pass_through_finish(&mut self, id: Uuid, answer: &crate::signins::AgentAnswer) -> Result<Uuid, SignInError> {
        let (now, threshold, duration, demands_change) = self.second_half(id)?;
        let user = self.users.get_mut(&id).expect("looked up");
        let lock = &mut user.smart_lockout;
        if let Some(refusal) = answer.refusal() {
            return Err(refusal);
        }
        if matches!(answer, crate::signins::AgentAnswer::Logon { win32, .. } if *win32 != 0) {
            return Err(lock.failure(None, threshold, duration, now));
        }
        lock.succeeded();
        Self::signed_in(user, demands_change)
    }

    /// What both second halves start from: now, smart lockout's threshold and duration, and
    /// whether the user-risk policy demands a change — or the refusal of a user gone or locked.
    fn second_half(&self, id: Uuid) -> Result<(OffsetDateTime, u32, u32, bool), SignInError> {
        let now = self.clock.now();
        let Some(user) = self.users.get(&id) else { return Err(SignInError::UnknownUser) };
        if user.smart_lockout.locked_until.is_some_and(|t| t > now) {
            return Err(SignInError::Locked);
        }
        let rules = &self.password_rules;
        Ok((now, rules.lockout_threshold, rules.lockout_duration_seconds, self.user_risk_policy.demands_change(&user.risk)))
    }

    /// Whether a user whose password was good may have a token.
    fn signed_in(user: &User, demands_change: bool) -> Result<Uuid, SignInError> {
        if !user.account_enabled {
            return Err(SignInError::Disabled);
        }
        if user.force_change_password_next_sign_in {
            return Err(SignInError::PasswordChangeRequired);
        }
        if demands_change {
            return Err(SignInError::RiskyUserPasswordChange);
        }
        Ok(user.id)
    }

    /// A refresh token for a user who just signed in (`offline_access` was asked for).
    pub fn issue_refresh_token(&mut self, user: Uuid, client_id: &str, scope: &str) -> Option<String> {
        let now = self.clock.now();
        let credential = self.users.get(&user)?.credential.as_ref()?.salt;
        let grant =
            crate::refresh::Grant { user, client_id: client_id.into(), scope: scope.into(), issued: now, last_used: now, credential };
        Some(self.refresh_tokens.issue(grant))
    }

    /// The refresh grant: the user and scope behind `token`, and the next refresh token (the
    /// redeemed one stays valid, as Entra's). Refused when the password changed or was reset since the chain
    /// began (Entra revokes refresh tokens then), after 90 days unused, or for a disabled user.
    pub fn redeem_refresh_token(&mut self, token: &str, client_id: &str) -> Result<(Uuid, String, String), crate::refresh::RefreshError> {
        use crate::refresh::RefreshError;
        let now = self.clock.now();
        let grant = self.refresh_tokens.redeem(token, client_id, now)?;
        let u = self.users.get(&grant.user).ok_or(RefreshError::Malformed)?;
        if u.credential.as_ref().map(|c| c.salt) != Some(grant.credential) {
            return Err(RefreshError::Revoked { issued: grant.issued, valid_from: u.last_password_change });
        }
        if !u.account_enabled {
            return Err(RefreshError::Disabled);
        }
        let (user, scope) = (grant.user, grant.scope.clone());
        // (the grant `redeem` hands back is stamped used now: the new token's inactivity
        // counts from this redemption)
        let token = self.refresh_tokens.issue(grant);
        Ok((user, scope, token))
    }

    /// The checks a new password goes through in the cloud: Entra's cloud rules for
    /// cloud-only users (synced users are held to AD's policy instead), then Password
    /// Protection for everyone.
    pub fn check_new_password(&self, user: &User, password: &str) -> Result<(), Refusal> {
        if !user.synced() {
            let weak_ok = user.password_policies.iter().any(|p| p.eq_ignore_ascii_case("DisableStrongPassword"));
            passwords::check_cloud_rules(password, weak_ok)?;
        }
        let subject = passwords::Subject {
            first_name: user.given_name.as_deref().unwrap_or(""),
            last_name: user.surname.as_deref().unwrap_or(""),
            tenant_name: &self.name,
        };
        let custom = self.password_rules.custom_terms();
        if custom.is_empty() {
            return passwords::check_banned(password, &self.banned, &subject);
        }
        let lists = BannedList { global: self.banned.global.clone(), custom: custom.to_vec() };
        passwords::check_banned(password, &lists, &subject)
    }

    /// An administrator's reset through Graph (`PATCH /users/{id}` with a passwordProfile):
    /// Microsoft's table of who may reset whom, then the password rules. It changes the cloud
    /// password only, also for synced users (Microsoft lists this path as not written back).
    pub fn admin_reset(&mut self, actor: Actor, target: Uuid, password: &str, force_change: bool) -> Result<(), ResetError> {
        let outcome = self.try_admin_reset(actor, target, password, force_change);
        let reason = match &outcome {
            Ok(()) => String::new(),
            Err(ResetError::Forbidden) => "Insufficient privileges to complete the operation.".into(),
            Err(ResetError::NotFound) => "User not found.".into(),
            Err(ResetError::Policy(Refusal::Banned { .. })) => "FuzzyPolicyViolationInvalidPassword".into(),
            Err(ResetError::Policy(_)) => "PasswordDoesNotComplyWithPolicy".into(),
            Err(ResetError::PasswordRequired) => "PasswordRequired".into(),
        };
        if !matches!(outcome, Err(ResetError::NotFound)) {
            self.record("Reset user password", "UserManagement", "Core Directory", actor, target, outcome.is_ok(), &reason);
        }
        outcome
    }

    fn try_admin_reset(&mut self, actor: Actor, target: Uuid, password: &str, force_change: bool) -> Result<(), ResetError> {
        let target_user = self.users.get(&target).ok_or(ResetError::NotFound)?;
        // App-only callers hold no directory role here, so they reach nobody (Graph needs at
        // least User Administrator assigned to the app).
        let actor_roles: &[Role] = match actor {
            Actor::User(id) => self.users.get(&id).map(|u| u.roles.as_slice()).unwrap_or(&[]),
            Actor::App(_) => &[],
        };
        let t = roles::Target { roles: &target_user.roles, in_role_assignable_group: self.in_role_assignable_group(target) };
        if !roles::can_reset_password(actor_roles, &t) {
            return Err(ResetError::Forbidden);
        }
        self.check_new_password(target_user, password).map_err(ResetError::Policy)?;
        let credential = Credential::from_password(password, &mut rand::rngs::OsRng);
        let now = self.clock.now();
        let u = self.users.get_mut(&target).expect("found above");
        u.credential = Some(credential);
        u.force_change_password_next_sign_in = force_change;
        u.last_password_change = now;
        u.smart_lockout = SmartLockout::default();
        u.risk.remediate(crate::risk::RiskDetail::AdminGeneratedTemporaryPassword);
        Ok(())
    }

    /// Graph's `resetPassword` on the password method: an administrator's reset that is
    /// written back for synced users. A new password is required for synced users; for
    /// cloud-only users the service generates one when none is given. Never on one's own
    /// account; application permissions are not supported. The user must change the
    /// password at next sign-in. Cloud-only users are done at once; a synced user's reset
    /// waits for on-premises (`finish_reset_password_method`).
    pub fn reset_password_method(
        &mut self,
        actor: Actor,
        target: Uuid,
        new_password: Option<&str>,
    ) -> Result<Next<(Operation, Option<String>)>, ResetError> {
        let Actor::User(actor_id) = actor else { return Err(ResetError::Forbidden) };
        if actor_id == target {
            return Err(ResetError::Forbidden);
        }
        let u = self.users.get(&target).ok_or(ResetError::NotFound)?;
        let actor_roles = self.users.get(&actor_id).map(|a| a.roles.clone()).unwrap_or_default();
        if !roles::can_reset_password(
            &actor_roles,
            &roles::Target { roles: &u.roles, in_role_assignable_group: self.in_role_assignable_group(target) },
        ) {
            return Err(ResetError::Forbidden);
        }
        let synced = u.synced();
        let (password, generated) = match new_password {
            Some(p) => (p.to_string(), None),
            None if synced => return Err(ResetError::PasswordRequired),
            None => {
                let g = self.generate_password();
                (g.clone(), Some(g))
            }
        };
        self.check_new_password(&self.users[&target], &password).map_err(ResetError::Policy)?;
        if !synced {
            return Ok(Next::Done(self.complete_reset_method(actor, target, NewPassword::clear(&password), generated, false, Ok(()))));
        }
        if !self.writeback_enabled_for(&self.users[&target]) {
            let code = crate::sspr::Error::WritebackNotEnabled.code().to_string();
            return Ok(Next::Done(self.complete_reset_method(actor, target, NewPassword::clear(&password), None, true, Err(code))));
        }
        // unsupported with Cloud Sync: an administrator's reset of another administrator
        // (the lab refuses it as an on-premises configuration error: docs/fidelity.md)
        if self.cloud_sync_admin(target) {
            let code = crate::sspr::Error::OnPremisesAdminActionRequired.code().to_string();
            return Ok(Next::Done(self.complete_reset_method(actor, target, NewPassword::clear(&password), None, true, Err(code))));
        }
        let force_change = self.sync_features.user_force_password_change_on_logon_enabled;
        // "By default, Microsoft Entra ID unlocks accounts when it performs a password reset"
        // (SSPR "How it works"): Microsoft documents no exception for an administrator's reset
        Ok(Next::Writeback(self.request_for(target, crate::sspr::OnPremOp::Reset { password, unlock: true, force_change, by_admin: true })))
    }

    /// The on-premises answer to a synced user's `resetPassword`: the operation ends with it.
    pub fn finish_reset_password_method(
        &mut self,
        actor: Actor,
        request: &crate::sspr::OnPremRequest,
        outcome: Result<(), crate::sspr::WritebackError>,
    ) -> (Operation, Option<String>) {
        let crate::sspr::OnPremOp::Reset { password, .. } = &request.op else { unreachable!("a reset request") };
        let outcome = outcome.map_err(|e| crate::sspr::Error::from(e).code().to_string());
        self.complete_reset_method(actor, request.user, NewPassword::written_back(password, request), None, true, outcome)
    }

    fn complete_reset_method(
        &mut self,
        actor: Actor,
        target: Uuid,
        password: NewPassword,
        generated: Option<String>,
        synced: bool,
        outcome: Result<(), String>,
    ) -> (Operation, Option<String>) {
        if outcome.is_ok() {
            let credential = password.credential();
            let now = self.clock.now();
            if let Some(u) = self.users.get_mut(&target) {
                u.credential = Some(credential);
                u.force_change_password_next_sign_in = true;
                u.last_password_change = now;
                u.smart_lockout = SmartLockout::default();
                u.risk.remediate(crate::risk::RiskDetail::AdminGeneratedTemporaryPassword);
            }
        }
        let agent = match self.agent_of(target) {
            Some(kind) if synced => kind.audit_name(),
            _ => "None",
        };
        self.record(
            "Reset password (by admin)",
            "UserManagement",
            "Self-service Password Management",
            actor,
            target,
            outcome.is_ok(),
            outcome.as_ref().err().map(String::as_str).unwrap_or(""),
        );
        if let Some(last) = self.audit.back_mut() {
            last.additional_details = vec![serde_json::json!({ "key": "OnPremisesAgent", "value": agent })];
        }
        let now = self.clock.now().format(&clock::format_description::well_known::Rfc3339).unwrap_or_default();
        let op = Operation {
            id: self.new_id(),
            user: target,
            created_date_time: now.clone(),
            last_action_date_time: now,
            status: if outcome.is_ok() { "succeeded".into() } else { "failed".into() },
            status_detail: outcome.err(),
        };
        self.keep_operation(op.clone());
        (op, if synced { None } else { generated })
    }

    /// Keeps an operation for Graph's `GET …/operations/{id}`: the newest [`OPERATIONS_KEPT`].
    fn keep_operation(&mut self, op: Operation) {
        if self.operation_order.len() >= OPERATIONS_KEPT
            && let Some(oldest) = self.operation_order.pop_front()
        {
            self.operations.remove(&oldest);
        }
        self.operation_order.push_back(op.id);
        self.operations.insert(op.id, op);
    }

    /// The port's request for a synced user.
    fn request_for(&self, user: Uuid, op: crate::sspr::OnPremOp) -> crate::sspr::OnPremRequest {
        let u = &self.users[&user];
        crate::sspr::OnPremRequest {
            user,
            anchor: u.on_premises.as_ref().map(|o| o.immutable_id.clone()).unwrap_or_default(),
            agent: u.on_premises.as_ref().map(|o| o.agent).unwrap_or_default(),
            distinguished_name: u.on_premises.as_ref().map(|o| o.distinguished_name.clone()).unwrap_or_default(),
            user_principal_name: u.user_principal_name.clone(),
            op,
            hashed: None,
        }
    }

    /// A user's own password change, knowing the current one. Checks in the cloud first
    /// (current password, reuse, cloud rules, Password Protection); a synced user's change
    /// then goes to AD through the writeback port as a change (AD checks the old password,
    /// history and minimum age), and the cloud takes it only when AD did (`finish_change`).
    /// A successful change clears a forced change and remediates the user's risk.
    pub fn change_password(&mut self, user: Uuid, current: &str, new: &str, via: ChangeVia) -> Result<Next<()>, ChangeError> {
        match self.try_change_password(user, current, new, via) {
            Ok(Next::Done(())) => {
                self.apply_change(user, NewPassword::clear(new));
                self.audit_change(user, Ok(()));
                Ok(Next::Done(()))
            }
            Ok(w) => Ok(w),
            Err(e) => {
                self.audit_change(user, Err(&e));
                Err(e)
            }
        }
    }

    /// AD's answer to a synced user's change.
    pub fn finish_change(
        &mut self,
        request: &crate::sspr::OnPremRequest,
        outcome: Result<(), crate::sspr::WritebackError>,
    ) -> Result<(), ChangeError> {
        let crate::sspr::OnPremOp::Change { new, .. } = &request.op else { unreachable!("a change request") };
        let outcome = outcome.map_err(|e| match e {
            // the cloud's hash agreed but AD's did not: the two sides had drifted
            crate::sspr::WritebackError::BadOldPassword => ChangeError::WrongCurrentPassword,
            e => ChangeError::OnPremises(e),
        });
        if outcome.is_ok() {
            self.apply_change(request.user, NewPassword::written_back(new, request));
        }
        self.audit_change(request.user, outcome.as_ref().map(|_| ()));
        outcome
    }

    fn audit_change(&mut self, user: Uuid, outcome: Result<(), &ChangeError>) {
        if matches!(outcome, Err(ChangeError::NotFound)) {
            return;
        }
        let reason = outcome.err().map(ChangeError::reason).unwrap_or("");
        self.record(
            "Change password (self-service)",
            "UserManagement",
            "Self-service Password Management",
            Actor::User(user),
            user,
            outcome.is_ok(),
            reason,
        );
    }

    fn try_change_password(&mut self, user: Uuid, current: &str, new: &str, via: ChangeVia) -> Result<Next<()>, ChangeError> {
        let u = self.users.get(&user).ok_or(ChangeError::NotFound)?;
        if !u.credential.as_ref().is_some_and(|c| c.verify(current)) {
            return Err(ChangeError::WrongCurrentPassword);
        }
        if current == new {
            return Err(ChangeError::SameAsCurrent);
        }
        self.check_new_password(u, new).map_err(ChangeError::Policy)?;
        let written_back = u.synced() && (via == ChangeVia::SignIn || self.on_premises_integration.write_back_graph_change_password);
        if !written_back {
            return Ok(Next::Done(()));
        }
        if !self.writeback_enabled_for(u) {
            return Err(ChangeError::WritebackNotEnabled);
        }
        Ok(Next::Writeback(self.request_for(user, crate::sspr::OnPremOp::Change { old: current.into(), new: new.into() })))
    }

    fn apply_change(&mut self, user: Uuid, new: NewPassword) {
        let credential = new.credential();
        let now = self.clock.now();
        if let Some(u) = self.users.get_mut(&user) {
            u.credential = Some(credential);
            u.force_change_password_next_sign_in = false;
            u.last_password_change = now;
            u.smart_lockout = SmartLockout::default();
            u.risk.remediate(crate::risk::RiskDetail::UserPerformedSecuredPasswordChange);
        }
    }

    pub fn operation(&self, user: Uuid, id: Uuid) -> Option<&Operation> {
        self.operations.get(&id).filter(|o| o.user == user)
    }

    /// A system-generated password like Entra's ("Cuyo5459"): one upper-case and three
    /// lower-case letters, four digits.
    /// A credential: from the OS, never from the lab's seed.
    fn generate_password(&mut self) -> String {
        let mut rng = rand::rngs::OsRng;
        let upper = (b'A' + rng.gen_range(0..26u8)) as char;
        let lower: String = (0..3).map(|_| (b'a' + rng.gen_range(0..26u8)) as char).collect();
        format!("{upper}{lower}{:04}", rng.gen_range(0..10_000u32))
    }

    /// Writes a directory audit entry.
    #[allow(clippy::too_many_arguments)]
    pub fn record(&mut self, activity: &str, category: &str, service: &str, actor: Actor, target: Uuid, ok: bool, reason: &str) {
        let id = self.new_id();
        let correlation = self.new_id();
        let now = self.clock.now();
        let initiated_by = match actor {
            Actor::User(uid) => {
                let u = self.users.get(&uid);
                serde_json::json!({ "user": { "id": uid.to_string(), "displayName": u.map(|u| &u.display_name), "userPrincipalName": u.map(|u| &u.user_principal_name) }, "app": null })
            }
            Actor::App(aid) => {
                let a = self.apps.get(&aid);
                serde_json::json!({ "user": null, "app": { "appId": aid.to_string(), "displayName": a.map(|a| &a.display_name), "servicePrincipalId": aid.to_string() } })
            }
        };
        let t = self.users.get(&target);
        let target_json = serde_json::json!({
            "id": target.to_string(), "displayName": t.map(|u| &u.display_name), "type": "User",
            "userPrincipalName": t.map(|u| &u.user_principal_name), "modifiedProperties": [],
        });
        if self.audit.len() >= AUDIT_KEPT {
            self.audit.pop_front();
        }
        self.audit.push_back(AuditEntry {
            id: format!("Directory_{id}"),
            category: category.into(),
            correlation_id: correlation.to_string(),
            result: if ok { "success".into() } else { "failure".into() },
            result_reason: reason.into(),
            activity_display_name: activity.into(),
            activity_date_time: now.format(&clock::format_description::well_known::Rfc3339).unwrap_or_default(),
            logged_by_service: service.into(),
            operation_type: "Update".into(),
            initiated_by,
            target_resources: vec![target_json],
            additional_details: vec![],
        });
    }

    /// Connect Sync's writeback is on only when both halves say so (the engine's onboarding
    /// set the sync side's flag; the SSPR blade's "Enable password write back").
    pub fn writeback_enabled(&self) -> bool {
        self.sync_features.password_writeback_enabled && self.on_premises_integration.write_back_passwords
    }

    /// Whether a synced user's password operations are written back: by the agent that
    /// provisions the user. Cloud Sync's need "Enable password write back for synced users"
    /// and "Write back passwords with Microsoft Entra Connect cloud sync" (or
    /// `Set-AADCloudSyncPasswordWritebackConfiguration -Enable $true`); unchecking only the
    /// latter leaves Connect's running (the Cloud Sync tutorial's clean-up).
    pub fn writeback_enabled_for(&self, u: &User) -> bool {
        match u.on_premises.as_ref().map(|o| o.agent) {
            Some(relay::AgentKind::CloudSync) => {
                self.on_premises_integration.write_back_passwords && self.on_premises_integration.write_back_with_cloud_sync
            }
            _ => self.writeback_enabled(),
        }
    }

    /// The agent that provisions a user (None: cloud-only).
    pub fn agent_of(&self, user: Uuid) -> Option<relay::AgentKind> {
        self.users.get(&user)?.on_premises.as_ref().map(|o| o.agent)
    }

    /// An operation Microsoft lists as unsupported with Cloud Sync's writeback: "any
    /// administrator cannot use password reset tool to reset their own password, or any other
    /// Administrator in Microsoft Entra ID" — a Cloud Sync user who holds a directory role.
    pub fn cloud_sync_admin(&self, user: Uuid) -> bool {
        self.users
            .get(&user)
            .is_some_and(|u| !u.roles.is_empty() && u.on_premises.as_ref().is_some_and(|o| o.agent == relay::AgentKind::CloudSync))
    }

    // ----- self-service password reset -----

    /// The authorization policy's allowedToUseSSPR (true in a new tenant).
    pub fn allowed_to_use_sspr(&self) -> bool {
        self.allowed_to_use_sspr
    }

    /// PATCH /policies/authorizationPolicy: at once in the lab (Microsoft: "up to 60
    /// minutes"), audited as Entra audits a policy update.
    pub fn set_allowed_to_use_sspr(&mut self, allowed: bool, actor: Actor) {
        self.allowed_to_use_sspr = allowed;
        self.record("Update authorization policy", "Policy", "Core Directory", actor, self.id, true, "");
    }

    /// "Who are you?": the eligibility checks in Microsoft's order — enabled for the user,
    /// enough registered methods, and for synced users writeback configured and its service
    /// up (`writeback_up`: "If the writeback service is down, the user is informed that their
    /// password can't be reset right now", before any gate — Microsoft's "How it works").
    /// Administrators are always enabled and always need two gates (the two-gate policy).
    /// The agent kind that provisions the user with this UPN (None: cloud-only or unknown).
    pub fn agent_of_upn(&self, upn: &str) -> Option<relay::AgentKind> {
        self.agent_of(*self.by_upn.get(&upn.to_lowercase())?)
    }

    pub fn sspr_start(&mut self, upn: &str, writeback_up: bool) -> Result<crate::sspr::Flow, crate::sspr::Error> {
        use crate::sspr::{Enabled, Error, Flow};
        let now = self.clock.now();
        let Some(id) = self.by_upn.get(&upn.to_lowercase()).copied() else { return Err(Error::UnknownUser) };
        let u = &self.users[&id];
        if u.sspr_counters.blocked(now) {
            return Err(Error::Blocked);
        }
        let admin = !u.roles.is_empty();
        match self.sspr_policy.enabled {
            // administrators have their own policy (SSPR-A): on unless allowedToUseSSPR is false
            _ if admin && !self.allowed_to_use_sspr => return Err(Error::NotEnabled),
            _ if admin => {}
            Enabled::None => return Err(Error::NotEnabled),
            Enabled::Selected(g) if !crate::groups::is_member(&self.groups, g, id) => return Err(Error::NotInScopedGroup),
            Enabled::Selected(_) | Enabled::All => {}
        }
        if !admin && !u.has_premium() {
            return Err(Error::NotLicensed);
        }
        let required = if admin { 2 } else { usize::from(self.sspr_policy.methods_required) };
        if self.usable_methods(u).len() < required {
            return Err(Error::NotProperlyConfigured);
        }
        if u.synced() && !self.writeback_enabled_for(u) {
            return Err(Error::WritebackNotEnabled);
        }
        if u.synced() && !writeback_up {
            let (category, service) = ("UserManagement", "Self-service Password Management");
            let activity = "Self-service password reset flow activity progress";
            self.record(activity, category, service, Actor::User(id), id, false, Error::OnPremisesConnectivity.code());
            return Err(Error::OnPremisesConnectivity);
        }
        let unlock_offered = u.synced() && self.on_premises_integration.allow_unlock_without_reset;
        // the flow id is what lets a caller drive the flow: a secret, from the OS
        let flow =
            Flow { id: Uuid::new_v4(), user: id, started: now, gates_required: required, passed: vec![], pending: vec![], unlock_offered };
        self.keep_flow(flow.clone());
        Ok(flow)
    }

    /// Keeps a new flow: anyone may start one (no sign-in), so the store drops what expired
    /// and holds at most [`FLOWS_KEPT`] (the oldest go first), and gives memory back when it
    /// has shrunk — 100,000 anonymous starts must not stay in memory once they expired. Flows
    /// start in lab-clock order, so the oldest (and the expired) are at the front of
    /// `flow_order`: amortised O(1) a start.
    fn keep_flow(&mut self, flow: crate::sspr::Flow) {
        let now = self.clock.now();
        while let Some(id) = self.flow_order.front() {
            match self.flows.get(id) {
                Some(f) if !f.expired(now) && self.flows.len() < FLOWS_KEPT => break,
                // expired, over the bound, or already ended (finished, blocked): gone
                _ => {
                    let id = *id;
                    self.flows.remove(&id);
                    self.flow_order.pop_front();
                }
            }
        }
        // ended flows leave their ids behind in the order until they reach its front
        if self.flow_order.len() > 2 * FLOWS_KEPT {
            let flows = &self.flows;
            self.flow_order.retain(|id| flows.contains_key(id));
        }
        if self.flows.capacity() > 4 * self.flows.len() + FLOWS_SHRINK_MIN {
            self.flows.shrink_to(2 * self.flows.len());
            self.flow_order.shrink_to(2 * self.flow_order.len());
        }
        self.flow_order.push_back(flow.id);
        self.flows.insert(flow.id, flow);
    }

    /// The methods a user may verify with under the policy (admins: email and phone).
    pub fn usable_methods<'a>(&self, u: &'a User) -> Vec<&'a crate::sspr::Method> {
        use crate::sspr::Method;
        let admin = !u.roles.is_empty();
        u.methods
            .iter()
            .filter(|m| match m {
                Method::Email(_) => admin || self.sspr_policy.email_enabled,
                Method::MobilePhone(_) => admin || self.sspr_policy.mobile_phone_enabled,
            })
            .collect()
    }

    fn live_flow(&mut self, flow: Uuid) -> Result<crate::sspr::Flow, crate::sspr::Error> {
        let now = self.clock.now();
        match self.flows.get(&flow) {
            Some(f) if !f.expired(now) => Ok(f.clone()),
            Some(_) => {
                self.flows.remove(&flow);
                Err(crate::sspr::Error::FlowExpired)
            }
            None => Err(crate::sspr::Error::FlowExpired),
        }
    }

    fn push_outbox(&mut self, m: crate::sspr::OutboxMessage) {
        if self.outbox.len() >= OUTBOX_KEPT {
            self.outbox.pop_front();
        }
        self.outbox.push_back(m);
    }

    /// Ends `flow` for a user SSPR's throttling has just blocked for 24 hours, as Entra
    /// audits it.
    fn block_sspr(&mut self, flow: Uuid, user: Uuid) -> crate::sspr::Error {
        self.flows.remove(&flow);
        let (category, service) = ("UserManagement", "Self-service Password Management");
        self.record("Blocked from self-service password reset", category, service, Actor::User(user), user, true, "");
        crate::sspr::Error::Blocked
    }

    /// Sends a one-time code by one of the user's methods (to the lab outbox).
    pub fn sspr_send_code(&mut self, flow: Uuid, kind: &str) -> Result<(), crate::sspr::Error> {
        use crate::sspr::Error;
        let f = self.live_flow(flow)?;
        let now = self.clock.now();
        let u = &self.users[&f.user];
        let Some(method) = self.usable_methods(u).into_iter().find(|m| m.kind() == kind).cloned() else { return Err(Error::NotAllowed) };
        if f.passed.contains(&method.kind()) {
            return Err(Error::NotAllowed);
        }
        let user = f.user;
        if !self.users.get_mut(&user).expect("flow user").sspr_counters.send(now, method.kind()) {
            return Err(self.block_sspr(flow, user));
        }
        let code = crate::sspr::new_code(&mut rand::rngs::OsRng);
        let tenant = self.name.clone();
        self.push_outbox(crate::sspr::OutboxMessage {
            to: method.address().to_string(),
            channel: method.kind(),
            // (Entra's own subject; the reset notification's differs, so each can be told apart)
            subject: format!("{tenant} account email verification code"),
            body: format!("Use {code} to verify your {tenant} account. The code is valid for 5 minutes."),
            code: Some(code.clone()),
            sent_at: now.format(&clock::format_description::well_known::Rfc3339).unwrap_or_default(),
        });
        let f = self.flows.get_mut(&flow).expect("live");
        f.pending.retain(|(k, _, _)| *k != method.kind());
        f.pending.push((method.kind(), code, now));
        Ok(())
    }

    /// Checks a code; five failures within an hour block the user for 24 hours.
    pub fn sspr_verify(&mut self, flow: Uuid, kind: &str, code: &str) -> Result<(usize, usize), crate::sspr::Error> {
        use crate::sspr::{CODE_LIFETIME, Error};
        let f = self.live_flow(flow)?;
        let now = self.clock.now();
        let good = f.pending.iter().any(|(k, c, at)| *k == kind && c == code.trim() && now - *at <= CODE_LIFETIME);
        if !good {
            let user = f.user;
            let blocked = self.users.get_mut(&user).expect("flow user").sspr_counters.fail(now);
            if blocked {
                return Err(self.block_sspr(flow, user));
            }
            return Err(Error::BadCode);
        }
        let f = self.flows.get_mut(&flow).expect("live");
        let k = f.pending.iter().find(|(k, _, _)| *k == kind).map(|(k, _, _)| *k).expect("matched");
        f.pending.retain(|(x, _, _)| *x != k);
        f.passed.push(k);
        Ok((f.passed.len(), f.gates_required))
    }

    /// The new password. Cloud rules (cloud-only users) and Password Protection are checked
    /// in the cloud first; a cloud-only user is then done. A synced user's password goes
    /// through the writeback port, and the cloud takes it only when AD did ("zero-delay
    /// feedback", `finish_sspr_reset`). A reset also unlocks.
    pub fn sspr_reset(&mut self, flow: Uuid, password: &str) -> Result<Next<()>, crate::sspr::Error> {
        use crate::sspr::Error;
        let f = self.live_flow(flow)?;
        if !f.verified() {
            return Err(Error::NotAllowed);
        }
        let user = f.user;
        let u = &self.users[&user];
        let checked = self.check_new_password(u, password).map_err(|_| Error::Policy { on_premises: false });
        let checked =
            checked.and_then(|()| if u.synced() && !self.writeback_enabled_for(u) { Err(Error::WritebackNotEnabled) } else { Ok(()) });
        // unsupported with Cloud Sync: an administrator resetting their own password with the
        // reset tool (refused as an on-premises configuration error: docs/fidelity.md)
        let checked = checked.and_then(|()| if self.cloud_sync_admin(user) { Err(Error::OnPremisesAdminActionRequired) } else { Ok(()) });
        match checked {
            Err(e) => {
                self.complete_sspr_reset(flow, user, NewPassword::clear(password), Err(e.clone()));
                Err(e)
            }
            Ok(()) if !self.users[&user].synced() => {
                self.complete_sspr_reset(flow, user, NewPassword::clear(password), Ok(()));
                Ok(Next::Done(()))
            }
            Ok(()) => Ok(Next::Writeback(self.request_for(
                user,
                crate::sspr::OnPremOp::Reset { password: password.into(), unlock: true, force_change: false, by_admin: false },
            ))),
        }
    }

    /// AD's answer to a synced user's SSPR reset.
    pub fn finish_sspr_reset(
        &mut self,
        flow: Uuid,
        request: &crate::sspr::OnPremRequest,
        outcome: Result<(), crate::sspr::WritebackError>,
    ) -> Result<(), crate::sspr::Error> {
        let crate::sspr::OnPremOp::Reset { password, .. } = &request.op else { unreachable!("a reset request") };
        let outcome = outcome.map_err(crate::sspr::Error::from);
        if outcome.is_ok() && self.cloud_write_fails {
            // AD has the password; the cloud's write failed: the flow is over (a retry would
            // reset again), the cloud keeps the old hash until hash sync brings AD's
            let failed = Err(crate::sspr::Error::OnPremisesSuccessCloudFailure);
            self.complete_sspr_reset(flow, request.user, NewPassword::clear(password), failed.clone());
            self.flows.remove(&flow);
            return failed;
        }
        self.complete_sspr_reset(flow, request.user, NewPassword::written_back(password, request), outcome.clone());
        outcome
    }

    fn complete_sspr_reset(&mut self, flow: Uuid, user: Uuid, password: NewPassword, outcome: Result<(), crate::sspr::Error>) {
        use crate::sspr::Error;
        let reason = match &outcome {
            Ok(()) => String::new(),
            Err(Error::Policy { on_premises: false }) => "FuzzyPolicyViolationInvalidPassword".into(),
            Err(e) => e.code().into(),
        };
        self.record(
            "Reset password (self-service)",
            "UserManagement",
            "Self-service Password Management",
            Actor::User(user),
            user,
            outcome.is_ok(),
            &reason,
        );
        if outcome.is_ok() {
            let credential = password.credential();
            let now = self.clock.now();
            if let Some(u) = self.users.get_mut(&user) {
                u.credential = Some(credential);
                u.force_change_password_next_sign_in = false;
                u.last_password_change = now;
                u.smart_lockout = SmartLockout::default();
                u.sspr_counters = Default::default();
                u.risk.remediate(crate::risk::RiskDetail::UserPerformedSecuredPasswordReset);
            }
            self.flows.remove(&flow);
            self.notify_reset(user);
        }
    }

    /// The notifications a completed self-service reset sends, per the SSPR policy: to the
    /// user (at their email methods and mail), and when an administrator reset their own
    /// password, to every Global Administrator except them.
    fn notify_reset(&mut self, user: Uuid) {
        let now = self.clock.now().format(&clock::format_description::well_known::Rfc3339).unwrap_or_default();
        let u = &self.users[&user];
        let (name, upn, admin) = (u.display_name.clone(), u.user_principal_name.clone(), !u.roles.is_empty());
        let mut messages = vec![];
        if self.sspr_policy.notify_users_on_password_reset {
            let mut to: Vec<String> =
                u.methods.iter().filter(|m| matches!(m, crate::sspr::Method::Email(_))).map(|m| m.address().to_string()).collect();
            to.extend(u.mail.clone());
            to.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
            for addr in to {
                messages.push((
                    addr,
                    format!("{} account password reset", self.name),
                    format!("The password for {upn} was reset. If you didn't do this, contact your administrator."),
                ));
            }
        }
        if admin && self.sspr_policy.notify_admins_on_admin_reset {
            for a in self.users.values().filter(|a| a.id != user && a.roles.contains(&Role::GlobalAdministrator)) {
                let to = a.mail.clone().unwrap_or_else(|| a.user_principal_name.clone());
                messages.push((
                    to,
                    format!("{} administrator password reset", self.name),
                    format!("{name} ({upn}), an administrator, reset their password."),
                ));
            }
        }
        for (to, subject, body) in messages {
            self.push_outbox(crate::sspr::OutboxMessage { to, channel: "email", subject, body, code: None, sent_at: now.clone() });
        }
    }

    /// "I know my password, but still can't sign in": unlock the AD account only, through the
    /// writeback port (`finish_sspr_unlock` takes AD's answer).
    pub fn sspr_unlock(&mut self, flow: Uuid) -> Result<crate::sspr::OnPremRequest, crate::sspr::Error> {
        use crate::sspr::Error;
        let f = self.live_flow(flow)?;
        if !f.verified() || !f.unlock_offered {
            return Err(Error::NotAllowed);
        }
        Ok(self.request_for(f.user, crate::sspr::OnPremOp::Unlock))
    }

    pub fn finish_sspr_unlock(
        &mut self,
        flow: Uuid,
        request: &crate::sspr::OnPremRequest,
        outcome: Result<(), crate::sspr::WritebackError>,
    ) -> Result<(), crate::sspr::Error> {
        let outcome = outcome.map_err(crate::sspr::Error::from);
        let reason = outcome.as_ref().err().map(|e| e.code().to_string()).unwrap_or_default();
        self.record(
            "Unlock user account (self-service)",
            "UserManagement",
            "Self-service Password Management",
            Actor::User(request.user),
            request.user,
            outcome.is_ok(),
            &reason,
        );
        if outcome.is_ok() {
            self.flows.remove(&flow);
        }
        outcome
    }

    /// The user a live flow is for (the server serialises each user's password operations).
    pub fn flow_user(&self, flow: Uuid) -> Option<Uuid> {
        self.flows.get(&flow).map(|f| f.user)
    }

    /// What the lab "sent", oldest first; only messages to `to` when given.
    pub fn outbox(&self, to: Option<&str>) -> Vec<&crate::sspr::OutboxMessage> {
        self.outbox.iter().filter(|m| to.is_none_or(|t| m.to.eq_ignore_ascii_case(t))).collect()
    }

    /// Audit entries, newest first.
    pub fn audit(&self) -> impl Iterator<Item = &AuditEntry> {
        self.audit.iter().rev()
    }

    /// True for a userPrincipalName whose domain the tenant has verified.
    pub fn verified_domain(&self, upn: &str) -> bool {
        upn.rsplit_once('@').is_some_and(|(_, d)| self.domains.iter().any(|x| x.eq_ignore_ascii_case(d)))
    }

    pub fn upn_taken(&self, upn: &str) -> bool {
        self.by_upn.contains_key(&upn.to_lowercase())
    }

    /// A new userPrincipalName for a user (the caller has checked it is free).
    pub fn rename_upn(&mut self, id: &Uuid, upn: &str) {
        let Some(u) = self.users.get_mut(id) else { return };
        self.by_upn.remove(&u.user_principal_name.to_lowercase());
        u.user_principal_name = upn.to_string();
        self.by_upn.insert(upn.to_lowercase(), *id);
    }

    /// Removes a user (Graph's DELETE: soft delete is not modelled).
    pub fn delete_user(&mut self, id: &Uuid) -> Option<User> {
        let u = self.users.remove(id)?;
        self.by_upn.remove(&u.user_principal_name.to_lowercase());
        Some(u)
    }

    pub fn user_mut(&mut self, id: &Uuid) -> Option<&mut User> {
        self.users.get_mut(id)
    }

    /// Can `actor` take a sensitive action (reset, profile edit) on `target`? Microsoft's
    /// table; app-only callers need User.ReadWrite.All and reach non-administrators only.
    pub fn may_manage(&self, actor: Actor, target: Uuid) -> bool {
        let Some(t) = self.users.get(&target) else { return false };
        let target = roles::Target { roles: &t.roles, in_role_assignable_group: self.in_role_assignable_group(target) };
        match actor {
            Actor::User(id) => self.users.get(&id).is_some_and(|a| roles::can_reset_password(&a.roles, &target)),
            Actor::App(_) => target.roles.is_empty() && !target.in_role_assignable_group,
        }
    }

    /// An administrator's profile edit (`PATCH /users/{id}` without a passwordProfile):
    /// who may touch whom, and on a synced user the on-premises-mastered properties refuse.
    pub fn update_user(&mut self, actor: Actor, target: Uuid, edit: ProfileEdit) -> Result<(), EditError> {
        let u = self.users.get(&target).ok_or(EditError::NotFound)?;
        if !self.may_manage(actor, target) {
            return Err(EditError::Forbidden);
        }
        if u.synced() && edit.touches_synced_properties() {
            return Err(EditError::SyncedProperty);
        }
        let u = self.users.get_mut(&target).expect("found above");
        if let Some(v) = edit.display_name {
            u.display_name = v;
        }
        if let Some(v) = edit.given_name {
            u.given_name = v;
        }
        if let Some(v) = edit.surname {
            u.surname = v;
        }
        if let Some(v) = edit.mail {
            u.mail = v;
        }
        if let Some(v) = edit.account_enabled {
            u.account_enabled = v;
        }
        if let Some(v) = edit.password_policies {
            u.password_policies = v;
        }
        self.record("Update user", "UserManagement", "Core Directory", actor, target, true, "");
        Ok(())
    }

    /// The client-credentials grant: the app and its secret.
    pub fn authenticate_app(&self, client_id: &str, secret: &str) -> Result<&App, ClientError> {
        let id = Uuid::parse_str(client_id).map_err(|_| ClientError::UnknownApp)?;
        let app = self.apps.get(&id).ok_or(ClientError::UnknownApp)?;
        if app.secret_matches(secret, self.clock.now()) { Ok(app) } else { Err(ClientError::InvalidSecret) }
    }
}

/// A profile edit: `Some` for each property the request names (`Some(None)` clears).
#[derive(Clone, Debug, Default)]
pub struct ProfileEdit {
    pub display_name: Option<String>,
    pub given_name: Option<Option<String>>,
    pub surname: Option<Option<String>>,
    pub mail: Option<Option<String>>,
    pub account_enabled: Option<bool>,
    pub password_policies: Option<Vec<String>>,
}

impl ProfileEdit {
    /// Properties Connect masters for synced users (passwordPolicies stays cloud-side).
    pub fn touches_synced_properties(&self) -> bool {
        self.display_name.is_some()
            || self.given_name.is_some()
            || self.surname.is_some()
            || self.mail.is_some()
            || self.account_enabled.is_some()
    }

    pub fn is_empty(&self) -> bool {
        !self.touches_synced_properties() && self.password_policies.is_none()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditError {
    NotFound,
    Forbidden,
    /// Graph: "Unable to update the specified properties for on-premises mastered Directory
    /// Sync objects or objects currently undergoing migration."
    SyncedProperty,
}

/// What it takes to create a user.
#[derive(Clone, Debug, Default)]
pub struct NewUser {
    pub user_principal_name: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub mail: Option<String>,
    pub account_enabled: bool,
    pub on_premises: Option<OnPremises>,
    pub password: Option<String>,
    /// The password already hashed (`Credential::from_password`), taken instead of
    /// `password`: a lab seeding many users hashes them on another core meanwhile.
    pub credential: Option<Credential>,
    pub password_policies: Vec<String>,
    pub roles: Vec<Role>,
    pub methods: Vec<crate::sspr::Method>,
    pub licenses: Vec<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(t: &Tenant) -> crate::sspr::Flow {
        crate::sspr::Flow {
            id: Uuid::new_v4(),
            user: Uuid::nil(),
            started: t.clock.now(),
            gates_required: 1,
            passed: vec![],
            pending: vec![],
            unlock_offered: false,
        }
    }

    /// issue 31, item 4: anonymous SSPR starts do not stay in memory once they expired, and
    /// never pass FLOWS_KEPT.
    #[test]
    fn expired_flows_are_dropped_and_the_stores_bounded() {
        let clock = Clock::frozen(Clock::lab_epoch());
        let mut t = Tenant::new(Uuid::nil(), "lab", vec!["testlab.example".into()], clock.clone(), 1);
        for _ in 0..50_000 {
            let f = flow(&t);
            t.keep_flow(f);
        }
        assert_eq!(t.flows.len(), FLOWS_KEPT, "bounded: the oldest went");
        clock.advance(crate::sspr::SESSION_LIFETIME + std::time::Duration::from_secs(1));
        let f = flow(&t);
        t.keep_flow(f);
        assert_eq!(t.flows.len(), 1, "the expired ones were dropped");
        assert!(t.flows.capacity() < 4 * FLOWS_SHRINK_MIN, "and their memory given back: capacity {}", t.flows.capacity());
        assert!(t.flow_order.len() == 1);
        // Graph's reset operations: the newest OPERATIONS_KEPT
        let op = |n: usize| Operation {
            id: Uuid::from_u128(n as u128),
            user: Uuid::nil(),
            created_date_time: String::new(),
            last_action_date_time: String::new(),
            status: "succeeded".into(),
            status_detail: None,
        };
        for n in 0..OPERATIONS_KEPT + 5 {
            t.keep_operation(op(n));
        }
        assert_eq!(t.operations.len(), OPERATIONS_KEPT);
        assert!(!t.operations.contains_key(&Uuid::from_u128(4)) && t.operations.contains_key(&Uuid::from_u128(5)));
    }

    /// A tenant with one enabled cloud user, amy@testlab.example, and her password.
    fn with_amy(clock: Clock, password: &str) -> (Tenant, Uuid) {
        let mut t = Tenant::new(Uuid::nil(), "lab", vec!["testlab.example".into()], clock, 1);
        let spec = NewUser {
            user_principal_name: "amy@testlab.example".into(),
            display_name: "Amy".into(),
            account_enabled: true,
            password: Some(password.into()),
            ..Default::default()
        };
        let id = t.add_user(spec);
        (t, id)
    }

    /// Smart lockout with Microsoft's defaults (10 failures, 60 s): distinct wrong passwords
    /// count, one of the last three again does not; a lock holds against the right password
    /// until it has run; the first failure after it locks again, for twice as long; a good
    /// sign-in ends that. Then the account's own state: disabled, must change.
    #[test]
    fn smart_lockout_counts_distinct_wrong_passwords_and_locks_longer_each_time() {
        let clock = Clock::frozen(Clock::lab_epoch());
        let (mut t, id) = with_amy(clock.clone(), "Right-Pass-Word-1");
        let sign_in = |t: &mut Tenant, pw: &str| t.sign_in("amy@testlab.example", pw);
        for n in 0..9 {
            assert_eq!(sign_in(&mut t, &format!("Wrong-{n}")), Err(SignInError::InvalidCredentials), "failure {}", n + 1);
        }
        for _ in 0..5 {
            assert_eq!(sign_in(&mut t, "Wrong-8"), Err(SignInError::InvalidCredentials), "a recent wrong password again does not count");
        }
        assert_eq!(sign_in(&mut t, "Wrong-9"), Err(SignInError::Locked), "the tenth distinct one locks");
        assert_eq!(sign_in(&mut t, "Right-Pass-Word-1"), Err(SignInError::Locked), "locked against the right password too");
        clock.advance(std::time::Duration::from_secs(59));
        assert_eq!(sign_in(&mut t, "Right-Pass-Word-1"), Err(SignInError::Locked));
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(sign_in(&mut t, "Other-Wrong-1"), Err(SignInError::Locked), "the first failure after a lockout locks again");
        clock.advance(std::time::Duration::from_secs(119));
        assert_eq!(sign_in(&mut t, "Right-Pass-Word-1"), Err(SignInError::Locked), "the second lockout lasts 120 s");
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(sign_in(&mut t, "Right-Pass-Word-1"), Ok(id));
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(sign_in(&mut t, "Other-Wrong-2"), Err(SignInError::InvalidCredentials), "a good sign-in ended the probation");
        // the last three wrong passwords are remembered, not a fourth before them
        for pw in ["A-1", "B-2", "C-3", "D-4"] {
            assert_eq!(sign_in(&mut t, pw), Err(SignInError::InvalidCredentials));
        }
        let failures = |t: &Tenant| t.users[&id].smart_lockout.failures;
        let before = failures(&t);
        sign_in(&mut t, "B-2").unwrap_err();
        assert_eq!(failures(&t), before, "B-2 is one of the last three");
        sign_in(&mut t, "A-1").unwrap_err();
        assert_eq!(failures(&t), before + 1, "A-1 was pushed out by D-4: it counts again");
        // the account's own state, once the password is right
        assert_eq!(sign_in(&mut t, "Right-Pass-Word-1"), Ok(id));
        t.users.get_mut(&id).unwrap().force_change_password_next_sign_in = true;
        assert_eq!(sign_in(&mut t, "Right-Pass-Word-1"), Err(SignInError::PasswordChangeRequired));
        t.users.get_mut(&id).unwrap().account_enabled = false;
        assert_eq!(sign_in(&mut t, "Right-Pass-Word-1"), Err(SignInError::Disabled));
    }

    /// Pass-through sign-ins: AD's "wrong password" counts toward smart lockout every time —
    /// the same wrong password too, there being no hash to remember —, the lock holds against
    /// AD's "good" until it has run, and what is not the user's fault (no agent, a timeout, AD
    /// locked, must change) counts nothing. A good answer is still held to the account's state.
    #[test]
    fn pass_through_answers_count_every_wrong_password_and_nothing_else() {
        use crate::signins::AgentAnswer;
        let clock = Clock::frozen(Clock::lab_epoch());
        let (mut t, id) = with_amy(clock.clone(), "Right-Pass-Word-1");
        t.password_rules.lockout_threshold = 3;
        let agent = Uuid::from_u128(7);
        let (good, wrong) = (AgentAnswer::Logon { win32: 0, agent }, AgentAnswer::Logon { win32: 1326, agent });
        let failures = |t: &Tenant| t.users[&id].smart_lockout.failures;
        assert_eq!(t.pass_through_finish(id, &wrong), Err(SignInError::InvalidCredentials));
        assert_eq!(failures(&t), 1);
        for other in [
            AgentAnswer::NoAgent,
            AgentAnswer::TimedOut { agent },
            AgentAnswer::CannotDecrypt { agent },
            AgentAnswer::DirectoryUnreachable { agent },
            AgentAnswer::Logon { win32: 1909, agent },
            AgentAnswer::Logon { win32: 1907, agent },
            AgentAnswer::Logon { win32: 1328, agent },
        ] {
            let refusal = other.refusal().expect("a refusal");
            assert_eq!(t.pass_through_finish(id, &other), Err(refusal), "{other:?}");
            assert_eq!(failures(&t), 1, "{other:?} is not the user's wrong password");
        }
        assert_eq!(t.pass_through_finish(id, &wrong), Err(SignInError::InvalidCredentials), "the same answer again counts");
        assert_eq!(failures(&t), 2);
        assert_eq!(t.pass_through_finish(id, &wrong), Err(SignInError::Locked), "the third locks");
        assert_eq!(t.pass_through_finish(id, &good), Err(SignInError::Locked), "against AD's good answer too");
        assert_eq!(t.pass_through_finish(id, &AgentAnswer::NoAgent), Err(SignInError::Locked), "locked comes first");
        clock.advance(std::time::Duration::from_secs(60));
        assert_eq!(t.pass_through_finish(id, &good), Ok(id));
        assert_eq!(failures(&t), 0);
        assert!(!t.users[&id].smart_lockout.on_probation, "a good sign-in ends the probation");
        // the cloud's own checks after AD's good answer
        t.users.get_mut(&id).unwrap().force_change_password_next_sign_in = true;
        assert_eq!(t.pass_through_finish(id, &good), Err(SignInError::PasswordChangeRequired));
        t.users.get_mut(&id).unwrap().account_enabled = false;
        assert_eq!(t.pass_through_finish(id, &good), Err(SignInError::Disabled));
        assert_eq!(t.pass_through_finish(Uuid::from_u128(99), &good), Err(SignInError::UnknownUser));
    }

    /// A sign-in whose account another sign-in locked while its password was being checked
    /// (the two halves run apart, without the tenant held) is refused as locked.
    #[test]
    fn a_lock_made_while_a_password_is_checked_refuses_that_sign_in() {
        let (mut t, id) = with_amy(Clock::frozen(Clock::lab_epoch()), "Right-Pass-Word-1");
        let (_, checked) = t.sign_in_start("amy@testlab.example").expect("not locked yet");
        for n in 0..10 {
            t.sign_in("amy@testlab.example", &format!("Wrong-{n}")).unwrap_err();
        }
        assert_eq!(t.sign_in_finish(id, &checked, true, "Right-Pass-Word-1"), Err(SignInError::Locked));
    }

    /// The password is checked between the halves without the tenant held; a reset in that gap
    /// must not let the old password through.
    #[test]
    fn a_sign_in_split_around_its_hash_check_sees_a_reset_made_in_between() {
        let (mut t, id) = with_amy(Clock::frozen(Clock::lab_epoch()), "Old-Pass-Word-1");
        let (found, checked) = t.sign_in_start("AMY@testlab.example").expect("known");
        assert_eq!(found, id);
        let good = checked.as_ref().is_some_and(|c| c.verify("Old-Pass-Word-1"));
        assert!(good);
        // meanwhile, a reset
        t.users.get_mut(&id).unwrap().credential = Some(Credential::from_password("New-Pass-Word-2", &mut rand::rngs::OsRng));
        assert_eq!(t.sign_in_finish(id, &checked, good, "Old-Pass-Word-1"), Err(SignInError::InvalidCredentials));
        assert_eq!(t.sign_in("amy@testlab.example", "New-Pass-Word-2"), Ok(id));
        assert_eq!(t.sign_in_start("nobody@testlab.example").map(|(id, _)| id), Err(SignInError::UnknownUser));
        // a locked account is refused before any hashing
        t.users.get_mut(&id).unwrap().smart_lockout.locked_until = Some(t.clock.now() + std::time::Duration::from_secs(60));
        assert_eq!(t.sign_in_start("amy@testlab.example").map(|(id, _)| id), Err(SignInError::Locked));
    }

    /// A synced user's change finishes with the hash made while AD answered, when there is
    /// one (the tenant's lock is not held for a PBKDF2), and hashes the password itself when
    /// there is none; either way the new password signs in and the old one no longer does.
    #[test]
    fn a_written_back_change_keeps_the_hash_made_while_ad_answered() {
        let mut t = Tenant::new(Uuid::nil(), "lab", vec!["testlab.example".into()], Clock::frozen(Clock::lab_epoch()), 1);
        t.sync_features.password_writeback_enabled = true;
        let mut synced = |upn: &str| {
            t.add_user(NewUser {
                user_principal_name: upn.into(),
                display_name: upn.into(),
                account_enabled: true,
                password: Some("Old-Pass-Word-1".into()),
                on_premises: Some(OnPremises { immutable_id: "AAAA".into(), ..Default::default() }),
                ..Default::default()
            })
        };
        let (amy, ben) = (synced("amy@testlab.example"), synced("ben@testlab.example"));
        for (id, ahead) in [(amy, true), (ben, false)] {
            let Ok(Next::Writeback(mut request)) = t.change_password(id, "Old-Pass-Word-1", "New-Pass-Word-2", ChangeVia::SignIn) else {
                panic!("a synced user's change goes to AD")
            };
            assert_eq!(request.hashed, None, "the request leaves the tenant without a hash");
            let made = Credential::from_password("New-Pass-Word-2", &mut rand::rngs::OsRng);
            if ahead {
                request.hashed = Some(made.clone());
            }
            assert_eq!(t.finish_change(&request, Ok(())), Ok(()));
            let stored = t.users[&id].credential.clone().expect("a credential");
            assert_eq!(stored == made, ahead, "the hash made ahead is the one kept, and only then");
            let upn = t.users[&id].user_principal_name.clone();
            assert_eq!(t.sign_in(&upn, "New-Pass-Word-2"), Ok(id));
            assert_eq!(t.sign_in(&upn, "Old-Pass-Word-1"), Err(SignInError::InvalidCredentials));
        }
        // and a request's Debug shows no password
        let Ok(Next::Writeback(request)) = t.change_password(amy, "New-Pass-Word-2", "Third-Pass-Word-3", ChangeVia::SignIn) else {
            panic!("a synced user's change goes to AD")
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("Pass-Word") && shown.contains("<redacted>"), "{shown}");
    }

    /// Issue 35: which agent provisions a synced user decides which switch writes it back
    /// (Connect's sync-side flag, or Cloud Sync's checkbox), what the reset audit names, and
    /// whether an administrator's reset of an administrator is refused (Cloud Sync only).
    #[test]
    fn the_users_agent_decides_its_writeback_switch_audit_and_admin_rule() {
        let clock = Clock::frozen(Clock::lab_epoch());
        let mut t = Tenant::new(Uuid::nil(), "lab", vec!["testlab.example".into()], clock, 1);
        let synced = |upn: &str, agent| NewUser {
            user_principal_name: upn.into(),
            display_name: upn.into(),
            account_enabled: true,
            password: Some("Seeded-Pass-Word-1".into()),
            on_premises: Some(OnPremises {
                immutable_id: upn.into(),
                agent,
                distinguished_name: format!("CN={upn}"),
                ..Default::default()
            }),
            ..Default::default()
        };
        let connect = t.add_user(synced("c@testlab.example", relay::AgentKind::ConnectSync));
        let cloud = t.add_user(synced("s@testlab.example", relay::AgentKind::CloudSync));
        let admin = t.add_user(NewUser {
            user_principal_name: "ga@testlab.example".into(),
            display_name: "GA".into(),
            account_enabled: true,
            roles: vec![Role::GlobalAdministrator],
            ..Default::default()
        });
        let (cu, su) = (t.users[&connect].clone(), t.users[&cloud].clone());
        // a new tenant: neither half on
        assert!(!t.writeback_enabled_for(&cu) && !t.writeback_enabled_for(&su));
        t.sync_features.password_writeback_enabled = true;
        assert!(t.writeback_enabled_for(&cu) && !t.writeback_enabled_for(&su), "Connect's flag is Connect's");
        t.on_premises_integration.write_back_with_cloud_sync = true;
        assert!(t.writeback_enabled_for(&su));
        t.on_premises_integration.write_back_passwords = false;
        assert!(!t.writeback_enabled_for(&cu) && !t.writeback_enabled_for(&su), "the master checkbox stops both");
        t.on_premises_integration.write_back_passwords = true;
        // the request names the agent and the DN Cloud Sync finds the user by
        let Ok(Next::Writeback(r)) = t.reset_password_method(Actor::User(admin), cloud, Some("Reset-Pass-Word-2")) else {
            panic!("a writeback")
        };
        assert_eq!((r.agent, r.distinguished_name.as_str()), (relay::AgentKind::CloudSync, "CN=s@testlab.example"));
        let (op, _) = t.finish_reset_password_method(Actor::User(admin), &r, Ok(()));
        assert_eq!(op.status, "succeeded");
        assert_eq!(t.audit.back().unwrap().additional_details[0]["value"], "CloudSync");
        // Cloud Sync refuses an administrator's reset of an administrator, before AD
        t.users.get_mut(&cloud).unwrap().roles = vec![Role::HelpdeskAdministrator];
        t.users.get_mut(&connect).unwrap().roles = vec![Role::HelpdeskAdministrator];
        let Ok(Next::Done((op, _))) = t.reset_password_method(Actor::User(admin), cloud, Some("Reset-Pass-Word-3")) else {
            panic!("refused at once")
        };
        assert_eq!((op.status.as_str(), op.status_detail.as_deref()), ("failed", Some("SSPR_0029")));
        assert_eq!(t.audit.back().unwrap().additional_details[0]["value"], "CloudSync");
        let Ok(Next::Writeback(r)) = t.reset_password_method(Actor::User(admin), connect, Some("Reset-Pass-Word-3")) else {
            panic!("Connect's goes on")
        };
        assert_eq!(r.agent, relay::AgentKind::ConnectSync);
        t.finish_reset_password_method(Actor::User(admin), &r, Ok(()));
        assert_eq!(t.audit.back().unwrap().additional_details[0]["value"], "Microsoft Entra Connect");
        assert!(t.cloud_sync_admin(cloud) && !t.cloud_sync_admin(connect) && !t.cloud_sync_admin(admin));
    }
}
