//! The tenant's directory: its users (cloud-only and synced), app registrations and
//! sign-in rules (AADSTS errors, smart lockout), as plain synchronous Rust.

use std::collections::HashMap;

use clock::{Clock, OffsetDateTime};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use uuid::Uuid;

use crate::passwords::Credential;
use crate::roles::Role;

/// What password hash sync left on a synced user (Graph's onPremises* properties).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OnPremises {
    /// base64 of the AD objectGUID (or mS-DS-ConsistencyGuid): the sourceAnchor.
    pub immutable_id: String,
    pub sam_account_name: String,
    pub domain_name: String,
    pub distinguished_name: String,
    pub security_identifier: String,
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
    smart_lockout: SmartLockout,
}

impl User {
    pub fn synced(&self) -> bool {
        self.on_premises.is_some()
    }
}

/// An app registration with a client secret and Graph application permissions.
#[derive(Clone, Debug)]
pub struct App {
    pub client_id: Uuid,
    pub display_name: String,
    pub secret: Credential,
    /// Graph application permissions granted with admin consent (the token's `roles`).
    pub permissions: Vec<String>,
}

/// Entra smart lockout, apart from AD's: after 10 failed sign-ins the account is locked for
/// a minute, each further lockout longer (Microsoft's defaults).
#[derive(Clone, Debug, Default)]
struct SmartLockout {
    failures: u32,
    locked_until: Option<OffsetDateTime>,
    lockouts: u32,
}

pub const SMART_LOCKOUT_THRESHOLD: u32 = 10;
pub const SMART_LOCKOUT_SECONDS: i64 = 60;

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
}

impl SignInError {
    pub fn code(&self) -> u32 {
        match self {
            SignInError::UnknownUser => 50034,
            SignInError::InvalidCredentials => 50126,
            SignInError::Disabled => 50057,
            SignInError::Locked => 50053,
            SignInError::PasswordChangeRequired => 50055,
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

pub struct Tenant {
    pub id: Uuid,
    /// The organisation's display name (Password Protection checks it too).
    pub name: String,
    /// Verified domains; the first is the initial `.onmicrosoft.com` domain.
    pub domains: Vec<String>,
    users: HashMap<Uuid, User>,
    by_upn: HashMap<String, Uuid>,
    apps: HashMap<Uuid, App>,
    clock: Clock,
    rng: StdRng,
}

impl Tenant {
    pub fn new(id: Uuid, name: &str, domains: Vec<String>, clock: Clock, seed: u64) -> Tenant {
        Tenant {
            id,
            name: name.into(),
            domains,
            users: HashMap::new(),
            by_upn: HashMap::new(),
            apps: HashMap::new(),
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

    pub fn add_user(&mut self, spec: NewUser) -> Uuid {
        let id = self.new_id();
        let credential = spec.password.as_deref().map(|p| Credential::from_password(p, &mut self.rng));
        let user = User {
            id,
            user_principal_name: spec.user_principal_name.clone(),
            display_name: spec.display_name,
            given_name: spec.given_name,
            surname: spec.surname,
            mail: spec.mail,
            account_enabled: spec.account_enabled,
            on_premises: spec.on_premises,
            credential,
            force_change_password_next_sign_in: false,
            password_policies: spec.password_policies,
            last_password_change: self.clock.now(),
            roles: spec.roles,
            smart_lockout: SmartLockout::default(),
        };
        self.by_upn.insert(spec.user_principal_name.to_lowercase(), id);
        self.users.insert(id, user);
        id
    }

    pub fn add_app(&mut self, display_name: &str, secret: &str, permissions: &[&str]) -> Uuid {
        let client_id = self.new_id();
        let secret = Credential::from_password(secret, &mut self.rng);
        let app =
            App { client_id, display_name: display_name.into(), secret, permissions: permissions.iter().map(|p| p.to_string()).collect() };
        self.apps.insert(client_id, app);
        client_id
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
    pub fn users(&self) -> Vec<&User> {
        let mut v: Vec<&User> = self.users.values().collect();
        v.sort_by_key(|u| u.user_principal_name.to_lowercase());
        v
    }

    pub fn app(&self, client_id: &Uuid) -> Option<&App> {
        self.apps.get(client_id)
    }

    /// A user's sign-in with a password (the ROPC grant): the checks and smart lockout's
    /// bookkeeping, in Entra's order — locked, then the password, then the account state.
    pub fn sign_in(&mut self, upn: &str, password: &str) -> Result<Uuid, SignInError> {
        let now = self.clock.now();
        let Some(id) = self.by_upn.get(&upn.to_lowercase()).copied() else { return Err(SignInError::UnknownUser) };
        let user = self.users.get_mut(&id).expect("indexed");
        let lock = &mut user.smart_lockout;
        if lock.locked_until.is_some_and(|t| t > now) {
            return Err(SignInError::Locked);
        }
        let good = user.credential.as_ref().is_some_and(|c| c.verify(password));
        if !good {
            lock.failures += 1;
            if lock.failures >= SMART_LOCKOUT_THRESHOLD {
                lock.lockouts += 1;
                let seconds = SMART_LOCKOUT_SECONDS.unsigned_abs() * u64::from(lock.lockouts);
                lock.locked_until = Some(now + std::time::Duration::from_secs(seconds));
                lock.failures = 0;
                return Err(SignInError::Locked);
            }
            return Err(SignInError::InvalidCredentials);
        }
        lock.failures = 0;
        if !user.account_enabled {
            return Err(SignInError::Disabled);
        }
        if user.force_change_password_next_sign_in {
            return Err(SignInError::PasswordChangeRequired);
        }
        Ok(id)
    }

    /// The client-credentials grant: the app and its secret.
    pub fn authenticate_app(&self, client_id: &str, secret: &str) -> Result<&App, ClientError> {
        let id = Uuid::parse_str(client_id).map_err(|_| ClientError::UnknownApp)?;
        let app = self.apps.get(&id).ok_or(ClientError::UnknownApp)?;
        if app.secret.verify(secret) { Ok(app) } else { Err(ClientError::InvalidSecret) }
    }
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
    pub password_policies: Vec<String>,
    pub roles: Vec<Role>,
}
