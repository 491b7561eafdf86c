//! `/auditLogs/directoryAudits`: the directory audit log, for the roles that may read it.

use super::*;

/// Roles that may read the directory audit log.
pub(super) const AUDIT_READERS: &[crate::roles::Role] = &[
    crate::roles::Role::GlobalAdministrator,
    crate::roles::Role::ReportsReader,
    crate::roles::Role::SecurityAdministrator,
    crate::roles::Role::UserAdministrator,
    crate::roles::Role::HelpdeskAdministrator,
];

/// The tenant, held for a caller who may read the logs: one of [`AUDIT_READERS`], or an
/// app with AuditLog.Read.All.
pub(super) fn reader<'a>(
    s: &'a TenantServer,
    headers: &HeaderMap,
) -> Result<std::sync::MutexGuard<'a, crate::directory::Tenant>, Response> {
    let c = caller(s, headers)?;
    let t = s.lock();
    let allowed = match &c {
        Caller::User { id, .. } => t.user(id).is_some_and(|u| u.roles.iter().any(|r| AUDIT_READERS.contains(r))),
        Caller::App { roles, .. } => roles.iter().any(|r| r == "AuditLog.Read.All"),
    };
    if allowed {
        Ok(t)
    } else {
        drop(t);
        Err(insufficient_privileges(s))
    }
}

pub(super) async fn directory_audits(State(s): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let t = match reader(&s, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let want =
        q.get("$filter").and_then(|f| f.strip_prefix("activityDisplayName eq '")).and_then(|f| f.strip_suffix('\'')).map(str::to_string);
    let value: Vec<Value> = t
        .audit()
        .filter(|e| want.as_deref().is_none_or(|w| e.activity_display_name == w))
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .collect();
    Json(json!({ "@odata.context": format!("{}/v1.0/$metadata#auditLogs/directoryAudits", s.https_base), "value": value })).into_response()
}

/// `GET /auditLogs/signIns`: the sign-in log, newest first, for the same readers;
/// `$filter=userPrincipalName eq '…'` and `$top` as Graph takes them.
pub(super) async fn sign_ins(State(s): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let t = match reader(&s, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let upn =
        q.get("$filter").and_then(|f| f.strip_prefix("userPrincipalName eq '")).and_then(|f| f.strip_suffix('\'')).map(str::to_lowercase);
    let top = q.get("$top").and_then(|n| n.parse::<usize>().ok()).unwrap_or(1000).min(1000);
    let value: Vec<Value> = t
        .sign_ins
        .newest()
        .filter(|e| upn.as_deref().is_none_or(|u| e.user_principal_name.eq_ignore_ascii_case(u)))
        .take(top)
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .collect();
    Json(json!({ "@odata.context": format!("{}/v1.0/$metadata#auditLogs/signIns", s.https_base), "value": value })).into_response()
}
