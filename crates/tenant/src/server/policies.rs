//! `/policies/authorizationPolicy`: the tenant's authorization policy, of which the lab models
//! `allowedToUseSSPR` — whether administrators may use self-service password reset (their own
//! two-gate policy, SSPR-A). Off, an administrator gets SSPR_0009 at "Who are you?".

use super::*;

/// Reading takes Policy.Read.All (apps) or a Global Administrator; writing takes
/// Policy.ReadWrite.Authorization (apps) or a Global Administrator. The caller, for the audit.
fn policy_caller(s: &TenantServer, headers: &HeaderMap, write: bool) -> Result<Actor, Response> {
    match caller(s, headers)? {
        Caller::App { id, roles } if roles.iter().any(|r| r == "Policy.ReadWrite.Authorization" || (!write && r == "Policy.Read.All")) => {
            Ok(Actor::App(id))
        }
        Caller::User { id, .. } if s.lock().user(&id).is_some_and(|u| u.roles.contains(&crate::roles::Role::GlobalAdministrator)) => {
            Ok(Actor::User(id))
        }
        _ => Err(insufficient_privileges(s)),
    }
}

/// Graph's authorizationPolicy (v1.0, a singleton); the properties the lab does not model keep
/// Entra's defaults for a new tenant.
fn policy_json(s: &TenantServer, allowed_to_use_sspr: bool) -> Value {
    json!({
        "@odata.context": format!("{}/v1.0/$metadata#policies/authorizationPolicy/$entity", s.https_base),
        "id": "authorizationPolicy",
        "displayName": "Authorization Policy",
        "description": "Used to manage authorization related settings across the company.",
        "allowInvitesFrom": "everyone",
        "allowedToSignUpEmailBasedSubscriptions": true,
        "allowedToUseSSPR": allowed_to_use_sspr,
        "allowEmailVerifiedUsersToJoinOrganization": false,
        "blockMsolPowerShell": false,
        "defaultUserRolePermissions": {
            "allowedToCreateApps": true,
            "allowedToCreateSecurityGroups": true,
            "allowedToReadOtherUsers": true,
        },
        "guestUserRoleId": "10dae51f-b6af-4016-8d66-8c2a99b929b3",
    })
}

pub(super) async fn get_authorization_policy(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = policy_caller(&s, &headers, false) {
        return r;
    }
    let allowed = s.lock().allowed_to_use_sspr();
    Json(policy_json(&s, allowed)).into_response()
}

/// A PATCH body: the one property the lab acts on. Anything else is refused by name rather
/// than accepted and ignored.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuthorizationPolicyPatch {
    #[serde(rename = "allowedToUseSSPR")]
    allowed_to_use_sspr: Option<bool>,
}

pub(super) async fn patch_authorization_policy(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let actor = match policy_caller(&s, &headers, true) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let patch: AuthorizationPolicyPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) if e.is_data() => {
            let message = format!("Invalid request: {e}. The lab models only 'allowedToUseSSPR' of the authorization policy.");
            return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", &message);
        }
        Err(_) => return unreadable_json(&s),
    };
    if let Some(allowed) = patch.allowed_to_use_sspr {
        s.lock().set_allowed_to_use_sspr(allowed, actor);
    }
    StatusCode::NO_CONTENT.into_response()
}
