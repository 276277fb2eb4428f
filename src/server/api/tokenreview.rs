//! `POST /apis/authentication.k8s.io/v1/tokenreviews`: tells a node agent (or anyone
//! authenticated) whom a bearer token belongs to, as kube-apiserver does for the
//! kubelet's webhook authentication.
//!
//! The body is a `TokenReview` with `spec.token`; the answer (201) is the same object
//! with `status: {authenticated, user: {username, uid, groups}}` — `groups` includes
//! `system:authenticated`, as authentication adds it. An unknown token gives
//! `authenticated: false` and `error`. A missing token is a 400 (kube's message);
//! `spec.audiences` is refused (400): static tokens carry no audiences and the server
//! would otherwise answer a question it cannot check. Any authenticated user may ask,
//! node identities included; the API server's own agent-client identity may not.

use super::auth::{self, Attributes, User};
use super::handlers::{json_response, read_body, Api};
use super::status::ApiError;
use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use serde_json::{json, Value};

/// The path served.
pub(crate) const PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// Whether `path` is the TokenReview collection.
pub(crate) fn serves(path: &str) -> bool {
    path.trim_end_matches('/') == PATH
}

/// Handles a request to [`PATH`].
pub(crate) async fn handle(api: &Api, user: &User, req: Request) -> Result<Response, ApiError> {
    if req.method() != Method::POST {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} tokenreviews.authentication.k8s.io)",
            req.method()
        )));
    }
    let attrs = Attributes {
        verb: "create",
        group: "authentication.k8s.io",
        resource: "tokenreviews",
        subresource: "",
        namespace: "",
        name: "",
    };
    auth::authorize(user, &attrs, None, None).map_err(|why| {
        ApiError::forbidden(format!(
            "tokenreviews.authentication.k8s.io is forbidden: User \"{}\" cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope: {why}",
            user.name
        ))
    })?;
    let (headers, body) = read_body(api, req).await?;
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let mut review: Value = match ct.split(';').next().unwrap_or("").trim() {
        "application/json" | "" => serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON body: {e}")))?,
        "application/yaml" => super::handlers::yaml_value(&body)?,
        other => {
            return Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {other})"
            )))
        }
    };
    let out = review_token(api, &mut review)?;
    Ok(json_response(201, &out))
}

/// Fills in the review's `status` (and defaults `apiVersion`/`kind`).
fn review_token(api: &Api, review: &mut Value) -> Result<Value, ApiError> {
    let obj = review
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the body is not a TokenReview object"))?;
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("authentication.k8s.io/v1") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({other}) does not match the expected API version (authentication.k8s.io/v1)"
            )))
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("TokenReview") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({other}) does not match the expected kind (TokenReview)"
            )))
        }
    }
    obj.insert("apiVersion".into(), json!("authentication.k8s.io/v1"));
    obj.insert("kind".into(), json!("TokenReview"));
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj.insert("metadata".into(), json!({"creationTimestamp": null}));
    }
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    if spec
        .get("audiences")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        return Err(ApiError::bad_request(
            "spec.audiences is not supported: this server's tokens have no audiences",
        ));
    }
    // A token with whitespace is no token (the header parser would read only its
    // first word).
    let user = if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        None
    } else {
        api.tokens.authenticate(&format!("Bearer {token}"))
    };
    let status = match user {
        Some(u) => json!({
            "authenticated": true,
            "user": {"username": u.name, "uid": u.uid, "groups": u.groups},
        }),
        None => json!({
            "authenticated": false,
            "user": {},
            "error": "invalid bearer token",
        }),
    };
    obj.insert("status".into(), status);
    Ok(review.clone())
}
