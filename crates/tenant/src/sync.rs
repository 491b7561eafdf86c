//! What the tenant does with a directory sync export from an agent (Connect Sync or Cloud
//! Sync; each provisions its own users): synced users created,
//! updated and deleted by sourceAnchor (onPremisesImmutableId), password hashes taken in
//! the password hash sync form. Conflicts are reported, never guessed at: a UPN another
//! object holds is Connect's `AttributeValueMustBeUnique`, and the user is left out.

use std::collections::HashMap;

use base64::Engine;
use relay::{AgentKind, ExportResult, PasswordHash, SyncError, SyncExport, SyncedUser};
use uuid::Uuid;

use crate::directory::{NewUser, OnPremises, Tenant};
use crate::passwords::Credential;

/// Applies one export, all of it, in order: users, deletions, passwords. (The engine leaves
/// out hashes a writeback has superseded: it orders the two itself.)
pub fn apply(t: &mut Tenant, export: &SyncExport, agent: AgentKind) -> ExportResult {
    let mut out = ExportResult::default();
    // Cloud Sync's job: nothing while it is in quarantine, and an export with too many
    // deletes puts it there (accidental-delete prevention)
    if agent == AgentKind::CloudSync
        && let Err(why) = t.cloud_sync_job.admit(export.deletes.len())
    {
        out.errors.push(SyncError { code: relay::QUARANTINED.into(), distinguished_name: String::new(), message: why });
        return out;
    }
    let cloud_sync = agent == AgentKind::CloudSync;
    let mut by_anchor: HashMap<String, (Uuid, AgentKind)> =
        t.users_unordered().filter_map(|u| u.on_premises.as_ref().map(|o| (o.immutable_id.clone(), (u.id, o.agent)))).collect();
    for u in &export.users {
        match by_anchor.get(&u.anchor).copied() {
            // a user is in one agent's scope, never both: the other agent's delete comes first
            Some((_, owner)) if owner != agent => {
                let e = owned_elsewhere(u, owner);
                log(t, cloud_sync, "create", u, None, Some(&e));
                out.errors.push(e);
            }
            Some((id, _)) => match update(t, id, u, agent) {
                Ok(true) => {
                    log(t, cloud_sync, "update", u, Some(id), None);
                    out.updated += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    log(t, cloud_sync, "update", u, Some(id), Some(&e));
                    out.errors.push(e);
                }
            },
            None => match add(t, u, agent) {
                Ok(id) => {
                    by_anchor.insert(u.anchor.clone(), (id, agent));
                    log(t, cloud_sync, "create", u, Some(id), None);
                    out.added += 1;
                }
                Err(e) => {
                    log(t, cloud_sync, "create", u, None, Some(&e));
                    out.errors.push(e);
                }
            },
        }
    }
    for anchor in &export.deletes {
        // an agent deletes only what it provisions
        if let Some((id, _)) = by_anchor.get(anchor).copied().filter(|(_, owner)| *owner == agent) {
            by_anchor.remove(anchor);
            if cloud_sync {
                let (dn, upn) = t
                    .user(&id)
                    .map(|u| {
                        (u.on_premises.as_ref().map(|o| o.distinguished_name.clone()).unwrap_or_default(), u.user_principal_name.clone())
                    })
                    .unwrap_or_default();
                let now = now(t);
                let a = crate::cloudsync::Action {
                    action: "delete",
                    source: (&dn, &upn),
                    target: Some((id.to_string(), upn.clone())),
                    error: None,
                };
                t.cloud_sync_job.record(&now, a);
            }
            t.delete_user(&id);
            out.deleted += 1;
        }
    }
    for p in &export.passwords {
        let Some((id, _)) = by_anchor.get(&p.anchor).filter(|(_, owner)| *owner == agent) else { continue };
        if set_password(t, *id, p) {
            out.passwords += 1;
        }
    }
    out
}

fn unique_upn_error(u: &SyncedUser) -> SyncError {
    SyncError {
        code: "AttributeValueMustBeUnique".into(),
        distinguished_name: u.distinguished_name.clone(),
        message: format!(
            "Unable to update this object because the following attributes associated with this object have values that may already be associated with another object in your local directory services: [UserPrincipalName {}]. Correct or remove the duplicate values in your local directory.",
            u.user_principal_name
        ),
    }
}

fn now(t: &Tenant) -> String {
    t.clock().now().format(&clock::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Cloud Sync's provisioning log: one entry per user an export created or updated, or failed
/// to (Connect's runs show in Synchronization Service Manager, not here).
fn log(t: &mut Tenant, cloud_sync: bool, action: &'static str, u: &SyncedUser, id: Option<Uuid>, error: Option<&SyncError>) {
    if !cloud_sync {
        return;
    }
    let target = id.map(|id| (id.to_string(), t.user(&id).map(|c| c.user_principal_name.clone()).unwrap_or_default()));
    let now = now(t);
    let a = crate::cloudsync::Action {
        action,
        source: (&u.distinguished_name, &u.display_name),
        target,
        error: error.map(|e| (e.code.as_str(), e.message.as_str())),
    };
    t.cloud_sync_job.record(&now, a);
}

/// The lab's words (Microsoft documents none): the anchor is provisioned by the other agent.
fn owned_elsewhere(u: &SyncedUser, owner: AgentKind) -> SyncError {
    let owner = match owner {
        AgentKind::ConnectSync => "Microsoft Entra Connect Sync",
        AgentKind::CloudSync => "Microsoft Entra Cloud Sync",
    };
    SyncError {
        code: "ObjectManagedByAnotherAgent".into(),
        distinguished_name: u.distinguished_name.clone(),
        message: format!(
            "The object with sourceAnchor {} is provisioned by {owner}. A user is in one agent's scope at a time: moved between them, it is deleted by the agent it left and created again by the other.",
            u.anchor
        ),
    }
}

fn on_premises(u: &SyncedUser, agent: AgentKind) -> OnPremises {
    OnPremises {
        agent,
        immutable_id: u.anchor.clone(),
        user_principal_name: u.user_principal_name.clone(),
        sam_account_name: u.sam_account_name.clone(),
        domain_name: u.domain_name.clone(),
        distinguished_name: u.distinguished_name.clone(),
        security_identifier: u.security_identifier.clone(),
    }
}

/// The UPN a synced user gets in the cloud: its own when the tenant has verified its suffix;
/// otherwise the same prefix on the tenant's initial `onmicrosoft.com` domain ("any UPN that
/// contains a nonroutable domain, such as .local … is synchronized to an .onmicrosoft.com
/// domain", Microsoft 365's "Prepare a nonroutable domain for directory synchronization").
fn cloud_upn(t: &Tenant, u: &SyncedUser) -> String {
    let upn = &u.user_principal_name;
    if t.verified_domain(upn) {
        return upn.clone();
    }
    let initial = t.domains.iter().find(|d| d.to_ascii_lowercase().ends_with(".onmicrosoft.com"));
    match (upn.rsplit_once('@'), initial) {
        (Some((prefix, _)), Some(initial)) => format!("{prefix}@{initial}"),
        _ => upn.clone(),
    }
}

fn add(t: &mut Tenant, u: &SyncedUser, agent: AgentKind) -> Result<Uuid, SyncError> {
    let upn = cloud_upn(t, u);
    if t.upn_taken(&upn) {
        return Err(unique_upn_error(u));
    }
    // Synced users arrive without a password (hash sync brings one), licences or methods.
    Ok(t.add_user(NewUser {
        user_principal_name: upn,
        display_name: u.display_name.clone(),
        given_name: u.given_name.clone(),
        surname: u.surname.clone(),
        mail: u.mail.clone(),
        account_enabled: u.account_enabled,
        on_premises: Some(on_premises(u, agent)),
        ..Default::default()
    }))
}

/// True when something changed.
fn update(t: &mut Tenant, id: Uuid, u: &SyncedUser, agent: AgentKind) -> Result<bool, SyncError> {
    let current = t.user(&id).map(|c| c.user_principal_name.clone()).unwrap_or_default();
    let upn = cloud_upn(t, u);
    if !current.eq_ignore_ascii_case(&upn) {
        if t.upn_taken(&upn) {
            return Err(unique_upn_error(u));
        }
        t.rename_upn(&id, &upn);
    }
    let Some(c) = t.user_mut(&id) else { return Ok(false) };
    let before = synced_view(c);
    c.display_name = u.display_name.clone();
    c.given_name = u.given_name.clone();
    c.surname = u.surname.clone();
    c.mail = u.mail.clone();
    c.account_enabled = u.account_enabled;
    c.on_premises = Some(on_premises(u, agent));
    Ok(before != synced_view(c) || !current.eq(&upn))
}

/// What sync writes of a user, to tell whether an update changed anything.
fn synced_view(c: &crate::directory::User) -> impl PartialEq + use<> {
    (
        c.display_name.clone(),
        c.given_name.clone(),
        c.surname.clone(),
        c.mail.clone(),
        c.account_enabled,
        c.on_premises.as_ref().map(|o| o.distinguished_name.clone()),
    )
}

/// A synced hash replaces the cloud password. As Connect does it: DisablePasswordExpiration
/// is stamped unless the cloud policy for synced users is on; "must change at next logon"
/// becomes forceChangePasswordNextSignIn only with UserForcePasswordChangeOnLogOnEnabled.
fn set_password(t: &mut Tenant, id: Uuid, p: &PasswordHash) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Ok(salt), Ok(hash)) = (b64.decode(&p.salt), b64.decode(&p.hash)) else { return false };
    let (Ok(salt), Ok(hash)) = (<[u8; 10]>::try_from(salt), <[u8; 32]>::try_from(hash)) else { return false };
    let features = t.sync_features.clone();
    let now = t.clock().now();
    let Some(u) = t.user_mut(&id) else { return false };
    u.credential = Some(Credential::with_hash(salt, p.iterations, hash));
    u.last_password_change = now;
    let stamp = "DisablePasswordExpiration".to_string();
    if !features.cloud_password_policy_for_password_synced_users_enabled && !u.password_policies.contains(&stamp) {
        u.password_policies.push(stamp);
    }
    u.force_change_password_next_sign_in = p.force_change && features.user_force_password_change_on_logon_enabled;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: AgentKind = AgentKind::ConnectSync;

    fn tenant() -> Tenant {
        let clock = clock::Clock::frozen(clock::Clock::lab_epoch());
        let mut t = Tenant::new(Uuid::nil(), "lab", vec!["testlab.example".into()], clock, 1);
        t.add_user(NewUser {
            user_principal_name: "cloud@testlab.example".into(),
            display_name: "Cloud".into(),
            account_enabled: true,
            ..Default::default()
        });
        t
    }

    fn user(anchor: &str, upn: &str) -> SyncedUser {
        SyncedUser {
            anchor: anchor.into(),
            user_principal_name: upn.into(),
            display_name: upn.into(),
            given_name: None,
            surname: None,
            mail: None,
            account_enabled: true,
            sam_account_name: upn.split('@').next().unwrap_or_default().into(),
            domain_name: "testlab.example".into(),
            distinguished_name: format!("CN={upn},OU=Lab Users,DC=testlab,DC=example"),
            security_identifier: "S-1-5-21-1-2-3-1105".into(),
        }
    }

    fn hash_of(password: &str, anchor: &str, force_change: bool) -> PasswordHash {
        let c = Credential::from_password(password, &mut rand::rngs::mock::StepRng::new(7, 1));
        let b64 = base64::engine::general_purpose::STANDARD;
        PasswordHash { anchor: anchor.into(), salt: b64.encode(c.salt), hash: b64.encode(c.hash()), iterations: c.iterations, force_change }
    }

    #[test]
    fn users_are_matched_by_anchor_and_conflicts_are_reported() {
        let mut t = tenant();
        let export =
            SyncExport { users: vec![user("AAA=", "new@testlab.example"), user("BBB=", "cloud@testlab.example")], ..Default::default() };
        let r = apply(&mut t, &export, C);
        assert_eq!((r.added, r.updated, r.errors.len()), (1, 0, 1));
        assert_eq!(r.errors[0].code, "AttributeValueMustBeUnique");
        assert!(t.find_user("cloud@testlab.example").unwrap().on_premises.is_none(), "the cloud-only user is left alone");
        // the same anchor again, renamed: an update, not a second user
        let export = SyncExport { users: vec![user("AAA=", "renamed@testlab.example")], ..Default::default() };
        let r = apply(&mut t, &export, C);
        assert_eq!((r.added, r.updated), (0, 1));
        assert!(t.find_user("new@testlab.example").is_none() && t.find_user("renamed@testlab.example").is_some());
        // unchanged: nothing counted
        assert_eq!(apply(&mut t, &export, C).updated, 0);
        let r = apply(&mut t, &SyncExport { deletes: vec!["AAA=".into(), "ZZZ=".into()], ..Default::default() }, C);
        assert_eq!(r.deleted, 1);
        assert!(t.find_user("renamed@testlab.example").is_none());
    }

    /// issue 31, item 14: an on-premises UPN whose suffix the tenant has not verified arrives
    /// on the initial onmicrosoft.com domain; once its suffix is a verified one, it moves there.
    #[test]
    fn an_unverified_upn_suffix_becomes_the_initial_domain() {
        let clock = clock::Clock::frozen(clock::Clock::lab_epoch());
        let domains = vec!["testlab.onmicrosoft.com".into(), "testlab.example".into()];
        let mut t = Tenant::new(Uuid::nil(), "lab", domains, clock, 1);
        let r = apply(&mut t, &SyncExport { users: vec![user("AAA=", "bob@corp.local")], ..Default::default() }, C);
        assert_eq!(r.added, 1);
        assert!(t.find_user("bob@corp.local").is_none());
        let bob = t.find_user("bob@testlab.onmicrosoft.com").expect("on the initial domain");
        assert_eq!(bob.on_premises.as_ref().unwrap().immutable_id, "AAA=");
        assert_eq!(apply(&mut t, &SyncExport { users: vec![user("AAA=", "bob@corp.local")], ..Default::default() }, C).updated, 0);
        // the on-premises UPN moves to a verified suffix: so does the cloud's
        let r = apply(&mut t, &SyncExport { users: vec![user("AAA=", "bob@testlab.example")], ..Default::default() }, C);
        assert_eq!(r.updated, 1);
        assert!(t.find_user("bob@testlab.example").is_some() && t.find_user("bob@testlab.onmicrosoft.com").is_none());
    }

    #[test]
    fn hashes_set_the_cloud_password_as_connect_flows_the_flags() {
        let mut t = tenant();
        let export = SyncExport {
            users: vec![user("AAA=", "new@testlab.example")],
            passwords: vec![hash_of("Synced-Pass-1", "AAA=", true)],
            ..Default::default()
        };
        assert_eq!(apply(&mut t, &export, C).passwords, 1);
        let u = t.find_user("new@testlab.example").unwrap();
        assert!(u.credential.as_ref().unwrap().verify("Synced-Pass-1"));
        assert!(u.password_policies.contains(&"DisablePasswordExpiration".to_string()));
        assert!(!u.force_change_password_next_sign_in, "the feature is off by default");
        t.sync_features.user_force_password_change_on_logon_enabled = true;
        let export = SyncExport { passwords: vec![hash_of("Synced-Pass-2", "AAA=", true)], ..Default::default() };
        apply(&mut t, &export, C);
        assert!(t.find_user("new@testlab.example").unwrap().force_change_password_next_sign_in);
        // a hash for an anchor the tenant does not hold is ignored
        let export = SyncExport { passwords: vec![hash_of("Stray-Pass-3", "ZZZ=", false)], ..Default::default() };
        assert_eq!(apply(&mut t, &export, C).passwords, 0);
    }

    /// Cloud Sync FAQ: a user moved from a Cloud Sync OU to a Connect OU is deleted and
    /// created again — an agent touches only what it provisions.
    #[test]
    fn each_agent_provisions_its_own_users_and_a_move_is_a_delete_and_a_create() {
        const CS: AgentKind = AgentKind::CloudSync;
        let mut t = tenant();
        let r = apply(&mut t, &SyncExport { users: vec![user("AAA=", "mover@testlab.example")], ..Default::default() }, CS);
        assert_eq!(r.added, 1);
        let first = t.find_user("mover@testlab.example").unwrap().id;
        assert_eq!(t.agent_of(first), Some(CS));
        // Connect meets it before Cloud Sync's delete: refused, nothing changed
        let r = apply(&mut t, &SyncExport { users: vec![user("AAA=", "mover@testlab.example")], ..Default::default() }, C);
        assert_eq!((r.added, r.updated, r.errors[0].code.as_str()), (0, 0, "ObjectManagedByAnotherAgent"));
        // nor may Connect delete it or set its password
        let r = apply(
            &mut t,
            &SyncExport { deletes: vec!["AAA=".into()], passwords: vec![hash_of("Other-Pass-1", "AAA=", false)], ..Default::default() },
            C,
        );
        assert_eq!((r.deleted, r.passwords), (0, 0));
        assert!(t.find_user("mover@testlab.example").is_some());
        // Cloud Sync's cycle deletes it, Connect's creates it again: a new cloud object
        assert_eq!(apply(&mut t, &SyncExport { deletes: vec!["AAA=".into()], ..Default::default() }, CS).deleted, 1);
        assert_eq!(apply(&mut t, &SyncExport { users: vec![user("AAA=", "mover@testlab.example")], ..Default::default() }, C).added, 1);
        let second = t.find_user("mover@testlab.example").unwrap().id;
        assert_ne!(first, second);
        assert_eq!(t.agent_of(second), Some(C));
    }

    /// Cloud Sync's job judges Cloud Sync's exports only, and only they are in its
    /// provisioning log (Connect's runs are Synchronization Service Manager's), stamped with
    /// the lab clock's time.
    #[test]
    fn only_cloud_syncs_exports_meet_its_job_and_fill_its_log() {
        const CS: AgentKind = AgentKind::CloudSync;
        let mut t = tenant();
        t.cloud_sync_job.set_delete_threshold(1).unwrap();
        apply(&mut t, &SyncExport { users: vec![user("AAA=", "c@testlab.example")], ..Default::default() }, C);
        apply(&mut t, &SyncExport { users: vec![user("BBB=", "s@testlab.example")], ..Default::default() }, CS);
        let log: Vec<_> = t.cloud_sync_job.entries().collect();
        assert_eq!(log.len(), 1, "Connect's create is not in the log");
        assert_eq!((log[0].provisioning_action, log[0].target_identity["displayName"].as_str()), ("create", Some("s@testlab.example")));
        let now = t.clock().now().format(&clock::format_description::well_known::Rfc3339).unwrap();
        assert_eq!(log[0].activity_date_time, now);
        // one delete is the threshold: Cloud Sync's is held (the job quarantined), Connect's not
        let r = apply(&mut t, &SyncExport { deletes: vec!["AAA=".into()], ..Default::default() }, C);
        assert_eq!((r.deleted, r.errors.len()), (1, 0));
        let r = apply(&mut t, &SyncExport { deletes: vec!["BBB=".into()], ..Default::default() }, CS);
        assert_eq!((r.deleted, r.errors[0].code.as_str()), (0, relay::QUARANTINED));
        assert!(t.find_user("s@testlab.example").is_some());
        assert_eq!(t.cloud_sync_job.state, crate::cloudsync::JobState::Quarantine);
        assert_eq!(t.cloud_sync_job.entries().count(), 1, "nothing logged for a refused run");
        assert_eq!(t.agent_of_upn("S@testlab.example"), Some(CS));
        assert_eq!(t.agent_of_upn("cloud@testlab.example"), None, "a cloud-only user has no agent");
    }

    /// What an export writes of a user: its names and mail on create; an update counted when
    /// only a name changed (the UPN the same); the DisablePasswordExpiration stamp once, and
    /// not with the cloud password policy for synced users on.
    #[test]
    fn created_users_carry_their_names_and_updates_and_stamps_count_once() {
        let mut t = tenant();
        let mut u = user("AAA=", "named@testlab.example");
        (u.given_name, u.surname, u.mail) = (Some("Given".into()), Some("Sur".into()), Some("named@testlab.example".into()));
        apply(&mut t, &SyncExport { users: vec![u.clone()], ..Default::default() }, C);
        let c = t.find_user("named@testlab.example").unwrap();
        assert_eq!(
            (c.given_name.as_deref(), c.surname.as_deref(), c.mail.as_deref()),
            (Some("Given"), Some("Sur"), Some("named@testlab.example"))
        );
        u.display_name = "Renamed Only".into();
        assert_eq!(apply(&mut t, &SyncExport { users: vec![u], ..Default::default() }, C).updated, 1, "a name alone is an update");
        for pw in ["Synced-Pass-1", "Synced-Pass-2"] {
            apply(&mut t, &SyncExport { passwords: vec![hash_of(pw, "AAA=", false)], ..Default::default() }, C);
        }
        let stamps =
            t.find_user("named@testlab.example").unwrap().password_policies.iter().filter(|p| *p == "DisablePasswordExpiration").count();
        assert_eq!(stamps, 1);
        let mut t = tenant();
        t.sync_features.cloud_password_policy_for_password_synced_users_enabled = true;
        apply(
            &mut t,
            &SyncExport {
                users: vec![user("BBB=", "b@testlab.example")],
                passwords: vec![hash_of("Synced-Pass-3", "BBB=", false)],
                ..Default::default()
            },
            C,
        );
        assert!(t.find_user("b@testlab.example").unwrap().password_policies.is_empty(), "the cloud policy applies: no stamp");
    }
}
