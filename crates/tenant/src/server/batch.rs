//! Graph's JSON batching (`POST /v1.0/$batch`): up to 20 requests in one, each answered
//! as if sent alone with the batch's own token — run through the same router, in order
//! (so `dependsOn` always holds), and only Graph's own paths (`/lab/` is not reachable from
//! inside a batch).

use super::*;

/// Graph's limit on requests in one batch.
pub const MAX_REQUESTS: usize = 20;

pub(super) async fn batch(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let bad = |m: &str| graph_error(&s, StatusCode::BAD_REQUEST, "BadRequest", m);
    let Some(m) = body_json(&body) else { return unreadable_json(&s) };
    let Some(requests) = m.get("requests").and_then(Value::as_array) else {
        return bad("Invalid batch payload format: the body must have a 'requests' array.");
    };
    if requests.len() > MAX_REQUESTS {
        return bad(&format!("Invalid batch payload format: the number of requests exceeds the limit of {MAX_REQUESTS}."));
    }
    let mut ids: Vec<&str> = vec![];
    for r in requests {
        let Some(id) = r.get("id").and_then(Value::as_str) else { return bad("Invalid batch payload format: each request needs an 'id'.") };
        if ids.contains(&id) {
            return bad(&format!("Invalid batch payload format: the request id '{id}' is used more than once."));
        }
        ids.push(id);
        let url = r.get("url").and_then(Value::as_str).unwrap_or_default();
        if !url.starts_with('/') || url.starts_with("//") || url.starts_with("/lab") || url.starts_with("/$batch") || url.contains("..") {
            return bad(&format!("Invalid batch payload format: '{url}' is not a relative Graph URL."));
        }
        if r.get("method").and_then(Value::as_str).is_none() {
            return bad("Invalid batch payload format: each request needs a 'method'.");
        }
    }
    let router = app(s.clone());
    let mut responses = vec![];
    for r in requests {
        let id = r["id"].as_str().unwrap_or_default().to_string();
        let method = r["method"].as_str().unwrap_or("GET").to_ascii_uppercase();
        let url = format!("/v1.0{}", escape(r["url"].as_str().unwrap_or_default()));
        let mut req = axum::http::Request::builder().method(method.as_str()).uri(url.as_str());
        // the batch's own token and identity; the request's own headers beside them
        for name in [header::AUTHORIZATION, header::HOST] {
            if let Some(v) = headers.get(&name) {
                req = req.header(name, v);
            }
        }
        if let Some(Value::Object(h)) = r.get("headers") {
            for (k, v) in h {
                if let Some(v) = v.as_str()
                    && !k.eq_ignore_ascii_case("authorization")
                {
                    req = req.header(k.as_str(), v);
                }
            }
        }
        let body = match r.get("body") {
            Some(b) if !b.is_null() => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                axum::body::Body::from(b.to_string())
            }
            _ => axum::body::Body::empty(),
        };
        let Ok(req) = req.body(body) else {
            responses.push(json!({ "id": id, "status": 400, "body": { "error": { "code": "BadRequest", "message": "The request could not be built." } } }));
            continue;
        };
        let res = match tower::ServiceExt::oneshot(router.clone(), req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = res.status().as_u16();
        let mut out_headers = serde_json::Map::new();
        for (k, v) in res.headers() {
            if matches!(k.as_str(), "content-type" | "location" | "retry-after") {
                out_headers.insert(k.to_string(), json!(v.to_str().unwrap_or_default()));
            }
        }
        // each answer within the tenant's own body limit: a batch holds at most 20 MiB
        let bytes = axum::body::to_bytes(res.into_body(), MAX_BODY).await.unwrap_or_default();
        let body = serde_json::from_slice::<Value>(&bytes)
            .unwrap_or_else(|_| if bytes.is_empty() { Value::Null } else { json!(String::from_utf8_lossy(&bytes)) });
        let mut one = json!({ "id": id, "status": status, "headers": out_headers });
        if !body.is_null() {
            one["body"] = body;
        }
        responses.push(one);
    }
    Json(json!({ "responses": responses })).into_response()
}

/// A batch's URL as written (`$filter=a eq 'b'`), made a valid URI: what is not allowed in
/// one is percent-encoded, what is already encoded stays.
fn escape(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for b in url.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
