//! Graph's query options on a collection, as the SDKs send them: `$filter`, `$search`,
//! `$orderby`, `$count` (with `ConsistencyLevel: eventual`), `$top` and `@odata.nextLink`
//! paging (`$skiptoken`), `$select` — the rules in [`crate::odata`], the errors in Graph's
//! words, `/$count` segments.

use super::*;
use crate::odata::{Filterable, QueryError, Search};

/// What a collection allows.
pub(super) struct Spec<'a> {
    /// Graph's type name in errors (`User`, `Group`, `Application`).
    pub resource: &'a str,
    pub filterable: Filterable<'a>,
    pub sortable: &'a [(&'a str, bool)],
    pub searchable: &'a [&'a str],
    /// The properties answered without `$select` (all when None).
    pub default_select: Option<&'a [&'a str]>,
    /// Graph's page size when `$top` is not given.
    pub page_size: usize,
}

pub(super) const USERS: Spec = Spec {
    resource: "User",
    filterable: Filterable {
        resource: "User",
        properties: &[
            ("id", false),
            ("displayName", true),
            ("givenName", true),
            ("surname", true),
            ("mail", true),
            ("userPrincipalName", true),
            ("accountEnabled", false),
            ("jobTitle", true),
            ("mobilePhone", true),
            ("onPremisesImmutableId", true),
            ("onPremisesSyncEnabled", false),
            ("onPremisesSamAccountName", true),
            ("onPremisesUserPrincipalName", true),
        ],
        collections: &[("assignedLicenses", &["skuId"]), ("businessPhones", &[""])],
    },
    sortable: &[("displayName", false), ("userPrincipalName", false)],
    searchable: &["displayName", "givenName", "surname", "mail", "userPrincipalName"],
    default_select: Some(users::DEFAULT_USER_PROPERTIES),
    page_size: 100,
};

pub(super) const GROUPS: Spec = Spec {
    resource: "Group",
    filterable: Filterable {
        resource: "Group",
        properties: &[
            ("id", false),
            ("displayName", true),
            ("mailNickname", true),
            ("description", true),
            ("securityEnabled", false),
            ("mailEnabled", false),
            ("isAssignableToRole", false),
        ],
        collections: &[("groupTypes", &[""])],
    },
    sortable: &[("displayName", false)],
    searchable: &["displayName", "description", "mailNickname"],
    default_select: None,
    page_size: 100,
};

pub(super) const APPLICATIONS: Spec = Spec {
    resource: "Application",
    filterable: Filterable {
        resource: "Application",
        properties: &[("id", false), ("appId", false), ("displayName", true), ("isFallbackPublicClient", false), ("signInAudience", false)],
        collections: &[],
    },
    sortable: &[("displayName", true)],
    searchable: &["displayName"],
    default_select: None,
    page_size: 100,
};

pub(super) const SERVICE_PRINCIPALS: Spec = Spec {
    resource: "ServicePrincipal",
    filterable: Filterable {
        resource: "ServicePrincipal",
        properties: &[("id", false), ("appId", false), ("displayName", true), ("accountEnabled", false)],
        collections: &[],
    },
    sortable: &[("displayName", true)],
    searchable: &["displayName"],
    default_select: None,
    page_size: 100,
};

/// `ConsistencyLevel: eventual`.
fn eventual(headers: &HeaderMap) -> bool {
    headers.get("consistencylevel").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
}

fn unsupported(s: &TenantServer, message: &str) -> Response {
    graph_error(s, StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", message)
}

/// `$select` applied to one object (all properties in `obj`).
pub(super) fn select_value(
    s: &TenantServer,
    obj: &Value,
    sel: Option<&str>,
    default: Option<&[&str]>,
    resource: &str,
) -> Result<Value, Response> {
    let Value::Object(all) = obj else { return Ok(obj.clone()) };
    let names: Vec<&str> = match (sel, default) {
        (Some(s), _) => s.split(',').map(str::trim).filter(|x| !x.is_empty()).collect(),
        (None, Some(d)) => d.to_vec(),
        (None, None) => return Ok(obj.clone()),
    };
    let mut out = serde_json::Map::new();
    // a directory object list names each item's type
    if let Some(t) = all.get("@odata.type") {
        out.insert("@odata.type".into(), t.clone());
    }
    for n in names {
        let Some((k, v)) = all.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)) else {
            return Err(graph_error(
                s,
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!("Could not find a property named '{n}' on type 'Microsoft.DirectoryServices.{resource}'."),
            ));
        };
        out.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(out))
}

/// The items a query keeps, in its order: (the page's items, how many matched, the next
/// page's offset).
struct Page {
    items: Vec<Value>,
    matched: usize,
    next: Option<usize>,
}

fn run(s: &TenantServer, headers: &HeaderMap, q: &HashMap<String, String>, mut items: Vec<Value>, spec: &Spec) -> Result<Page, Response> {
    let eventual = eventual(headers);
    let count = q.get("$count").is_some_and(|c| c.eq_ignore_ascii_case("true"));
    let advanced = eventual && count;
    let search = match q.get("$search") {
        Some(_) if !eventual => {
            return Err(unsupported(
                s,
                "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
            ));
        }
        Some(text) => Some(
            Search::parse(text, spec.searchable).map_err(|m| graph_error(s, StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", &m))?,
        ),
        None => None,
    };
    let filter = match q.get("$filter") {
        Some(f) => {
            let e = crate::odata::parse(f).and_then(|e| crate::odata::check(&e, &spec.filterable, advanced).map(|()| e));
            match e {
                Ok(e) => Some(e),
                Err(e @ QueryError::Syntax(_)) => return Err(graph_error(s, StatusCode::BAD_REQUEST, e.code(), &e.message(spec.resource))),
                Err(e) => return Err(unsupported(s, &e.message(spec.resource))),
            }
        }
        None => None,
    };
    let order = match q.get("$orderby") {
        Some(_) if filter.is_some() && !advanced => return Err(unsupported(s, "Sorting not supported for current query.")),
        Some(o) => Some(crate::odata::parse_orderby(o, spec.sortable, advanced, spec.resource).map_err(|m| unsupported(s, &m))?),
        None => None,
    };
    let top = match q.get("$top") {
        Some(t) => match t.parse::<usize>() {
            Ok(n @ 1..=999) => n,
            _ => {
                return Err(graph_error(
                    s,
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    &format!("Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."),
                ));
            }
        },
        None => spec.page_size,
    };
    let offset = match q.get("$skiptoken") {
        Some(t) => crate::odata::parse_skiptoken(t).ok_or_else(|| {
            graph_error(
                s,
                StatusCode::BAD_REQUEST,
                "Directory_ExpiredPageToken",
                "The specified page token value has expired and can no longer be included in your request.",
            )
        })?,
        None => 0,
    };
    items.retain(|o| filter.as_ref().is_none_or(|f| crate::odata::eval(f, o)) && search.as_ref().is_none_or(|x| x.matches(o)));
    if let Some((prop, desc)) = order {
        crate::odata::sort_by(&mut items, &prop, desc);
    }
    let matched = items.len();
    let end = offset.saturating_add(top).min(matched);
    let page = items.into_iter().skip(offset).take(end.saturating_sub(offset)).collect();
    Ok(Page { items: page, matched, next: (end < matched).then_some(end) })
}

/// A collection's answer: the query options on `items` (each with every property), under
/// `path` (`/v1.0/users`) and `context` (`users`).
pub(super) fn collection(
    s: &TenantServer,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    items: Vec<Value>,
    spec: &Spec,
    path: &str,
    context: &str,
) -> Response {
    let page = match run(s, headers, q, items, spec) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let sel = q.get("$select").map(String::as_str);
    let mut value = Vec::with_capacity(page.items.len());
    for o in &page.items {
        match select_value(s, o, sel, spec.default_select, spec.resource) {
            Ok(v) => value.push(v),
            Err(r) => return r,
        }
    }
    let cols = sel.map(|c| format!("({c})")).unwrap_or_default();
    let mut body = serde_json::Map::new();
    body.insert("@odata.context".into(), json!(format!("{}/v1.0/$metadata#{context}{cols}", s.https_base)));
    // $count=true counts only in an advanced query; otherwise Graph ignores it, silently
    if eventual(headers) && q.get("$count").is_some_and(|c| c.eq_ignore_ascii_case("true")) {
        body.insert("@odata.count".into(), json!(page.matched));
    }
    if let Some(next) = page.next {
        let mut params: Vec<(&str, String)> =
            q.iter().filter(|(k, _)| k.as_str() != "$skiptoken").map(|(k, v)| (k.as_str(), v.clone())).collect();
        params.sort();
        params.push(("$skiptoken", crate::odata::skiptoken(next)));
        let query = serde_urlencoded::to_string(&params).unwrap_or_default();
        body.insert("@odata.nextLink".into(), json!(format!("{}{path}?{query}", s.base_for(headers))));
    }
    body.insert("value".into(), Value::Array(value));
    Json(Value::Object(body)).into_response()
}

/// `GET …/$count`: the number matching, as text — in an advanced query only (`ConsistencyLevel:
/// eventual`); otherwise Graph's "$count is not currently supported."
pub(super) fn count(s: &TenantServer, headers: &HeaderMap, q: &HashMap<String, String>, items: Vec<Value>, spec: &Spec) -> Response {
    if !eventual(headers) {
        return graph_error(s, StatusCode::BAD_REQUEST, "Request_BadRequest", "$count is not currently supported.");
    }
    let mut q = q.clone();
    q.insert("$count".into(), "true".into());
    q.insert("$top".into(), "999".into());
    q.remove("$skiptoken");
    match run(s, headers, &q, items, spec) {
        Ok(p) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], p.matched.to_string()).into_response(),
        Err(r) => r,
    }
}
