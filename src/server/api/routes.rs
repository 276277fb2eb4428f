//! HTTP routing: paths to resources, authentication, the request's verb, body decoding
//! (JSON, YAML, Kubernetes protobuf), content negotiation (JSON, Tables, metadata) and
//! dispatch to the verbs (`handlers`), updates and patches (`patch`) and watches
//! (`watch`).

use super::auth::User;
use super::handlers::*;
use super::kinds;
use super::kinds::ResourceType;
use super::objects::meta_str;
use super::status::{self, ApiError};
use super::table::{self, IncludeObject};
use super::{discovery, patch, protobuf, watch};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The router: every path goes through one dispatcher (routing, authentication, verbs).
pub fn router(api: Arc<Api>) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(api)
}

/// What the path names.
#[derive(Debug)]
enum Route {
    Health,
    Version,
    Api,
    Apis,
    Group(String),
    Resources(String, String),
    OpenApiV3,
    OpenApiV3Group(String),
    OpenApiV2,
    Metrics,
    Object(Target),
}

fn parse_route(path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["healthz" | "readyz" | "livez", ..] => return Ok(Route::Health),
        ["version"] => return Ok(Route::Version),
        ["metrics"] => return Ok(Route::Metrics),
        ["api"] => return Ok(Route::Api),
        ["apis"] => return Ok(Route::Apis),
        ["apis", g] => return Ok(Route::Group(g.to_string())),
        ["openapi", "v3"] => return Ok(Route::OpenApiV3),
        ["openapi", "v3", rest @ ..] => return Ok(Route::OpenApiV3Group(rest.join("/"))),
        ["openapi", "v2"] => return Ok(Route::OpenApiV2),
        ["api", v] => return Ok(Route::Resources(String::new(), v.to_string())),
        ["apis", g, v] => return Ok(Route::Resources(g.to_string(), v.to_string())),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::no_route()),
    };
    let find = |plural: &str| kinds::find(group, version, plural).ok_or_else(ApiError::no_route);
    let t = |rt, ns: &str, name: Option<&&str>, sub: Option<&&str>| {
        Route::Object(Target {
            rt,
            namespace: ns.to_string(),
            name: name.map(|s| s.to_string()),
            sub: sub.map(|s| s.to_string()),
        })
    };
    let route = match rest {
        // /api/v1/namespaces/{ns}/status is the namespace's own subresource.
        ["namespaces", name, sub @ "status"] => t(find("namespaces")?, "", Some(name), Some(sub)),
        ["namespaces", ns, plural, tail @ ..] if tail.len() <= 2 => {
            let rt = find(plural)?;
            if !rt.namespaced {
                return Err(ApiError::no_route());
            }
            t(rt, ns, tail.first(), tail.get(1))
        }
        [plural, tail @ ..] if tail.len() <= 2 => {
            let rt = find(plural)?;
            t(rt, "", tail.first(), tail.get(1))
        }
        _ => return Err(ApiError::no_route()),
    };
    if let Route::Object(target) = &route {
        if target.name.as_deref() == Some("") {
            return Err(ApiError::no_route());
        }
        if let Some(sub) = &target.sub {
            if !target.rt.has_subresource(sub) {
                return Err(ApiError::no_route());
            }
        }
        if target.rt.namespaced && target.name.is_some() && target.namespace.is_empty() {
            return Err(ApiError::no_route());
        }
    }
    Ok(route)
}

fn negotiate(headers: &HeaderMap, q: &HashMap<String, String>) -> Result<As, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let include = q
        .get("includeObject")
        .map(|s| {
            IncludeObject::parse(s)
                .ok_or_else(|| ApiError::bad_request(format!("invalid includeObject: {s}")))
        })
        .transpose()?
        .unwrap_or_default();
    let mut plain = false;
    for media in accept.split(',') {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        let ty = params[0];
        let is_meta = params.contains(&"g=meta.k8s.io")
            && (params.contains(&"v=v1") || params.contains(&"v=v1beta1"));
        if is_meta && params.contains(&"as=Table") {
            return Ok(As::Table(include));
        }
        if is_meta
            && (params.contains(&"as=PartialObjectMetadata")
                || params.contains(&"as=PartialObjectMetadataList"))
        {
            return Ok(As::Metadata);
        }
        if params.iter().any(|p| p.starts_with("as=")) {
            continue;
        }
        if matches!(
            ty,
            "application/json" | "*/*" | "application/*" | "application/yaml" | ""
        ) {
            plain = true;
        }
    }
    if plain {
        Ok(As::Json)
    } else {
        Err(ApiError::not_acceptable(format!(
            "only the following media types are accepted: application/json, application/yaml; got {accept}"
        )))
    }
}

/// Every request enters here, and is counted in `apiserver_request_total` (and its
/// duration, to the response's headers, in `apiserver_request_duration_seconds`).
async fn dispatch(State(api): State<Arc<Api>>, req: Request) -> Response {
    let start = std::time::Instant::now();
    let (verb, resource) = request_labels(&req);
    let resp = match handle(api.clone(), req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    };
    api.metrics
        .api
        .observe_request(verb, resource, resp.status().as_u16(), start.elapsed());
    resp
}

/// The verb (as kube's metrics name it) and resource (the plural; empty for paths that
/// are not resources) of a request.
fn request_labels(req: &Request) -> (&'static str, &'static str) {
    let method = req.method();
    let Ok(Route::Object(target)) = parse_route(req.uri().path()) else {
        return (method_name(method), "");
    };
    let verb = match query(req) {
        Ok(q) => match verb(method, &target, &q) {
            "get" => "GET",
            "list" => "LIST",
            "watch" => "WATCH",
            "create" => "POST",
            "update" => "PUT",
            "patch" => "PATCH",
            "delete" => "DELETE",
            "deletecollection" => "DELETECOLLECTION",
            _ => method_name(method),
        },
        Err(_) => method_name(method),
    };
    (verb, target.rt.plural)
}

/// The method's name, or `OTHER` for methods not in HTTP/1.1 (labels stay bounded).
fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// `GET /metrics`: every metric of the process, as OpenMetrics text. Any authenticated
/// user may read it but a node identity (in Kubernetes `/metrics` takes a
/// non-resource-URL grant that the `system:node` role does not have) and the server's
/// own agent client.
fn metrics(api: &Api, user: &User) -> Result<Response, ApiError> {
    if user.node_name().is_some() || user.name == super::auth::KUBELET_CLIENT_USER {
        return Err(ApiError::forbidden(format!(
            "forbidden: User \"{}\" cannot get path \"/metrics\"",
            user.name
        )));
    }
    let mut r = (StatusCode::OK, api.metrics.encode()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::server::metrics::OPENMETRICS_CONTENT_TYPE),
    );
    Ok(r)
}

async fn handle(api: Arc<Api>, req: Request) -> Result<Response, ApiError> {
    let route = parse_route(req.uri().path());
    if matches!(route, Ok(Route::Health)) {
        return Ok((StatusCode::OK, "ok").into_response());
    }
    let user = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| api.tokens.authenticate(h))
        .ok_or_else(ApiError::unauthorized)?;
    // The body is read before anything can fail, so that an error answer never leaves
    // a client writing into a connection about to close.
    let req = if matches!(*req.method(), Method::GET | Method::HEAD) {
        req
    } else {
        let (parts, body) = req.into_parts();
        let (_, bytes) = read_body(&api, Request::from_parts(parts.clone(), body)).await?;
        Request::from_parts(parts, axum::body::Body::from(bytes))
    };
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // Served outside the store: usage reports and history, metrics.k8s.io, TokenReviews.
    if let Some(r) = super::usage_api::UsageRoute::parse(req.uri().path()) {
        return super::usage_api::handle(&api, &user, r, req).await;
    }
    if super::tokenreview::serves(req.uri().path()) {
        return super::tokenreview::handle(&api, &user, req).await;
    }
    let get_only = |r: Response| -> Result<Response, ApiError> {
        if req.method() == Method::GET {
            Ok(r)
        } else {
            Err(ApiError::method_not_allowed(format!(
                "{} is not supported here",
                req.method()
            )))
        }
    };
    match route? {
        Route::Health => unreachable!("handled above"),
        Route::Version => get_only(json_response(200, &discovery::version())),
        Route::Api | Route::Apis if discovery::wants_aggregated(&accept) => {
            let core = matches!(parse_route(req.uri().path()), Ok(Route::Api));
            let mut r = json_response(200, &discovery::aggregated(core));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE),
            );
            get_only(r)
        }
        Route::Api => get_only(json_response(
            200,
            &discovery::api_versions(&api.options.server_address),
        )),
        Route::Apis => get_only(json_response(200, &discovery::api_group_list())),
        Route::Group(g) => get_only(json_response(
            200,
            &discovery::api_group(&g).ok_or_else(ApiError::no_route)?,
        )),
        Route::Resources(g, v) => get_only(json_response(
            200,
            &discovery::api_resource_list(&g, &v).ok_or_else(ApiError::no_route)?,
        )),
        Route::OpenApiV3 => get_only(json_response(200, &discovery::openapi_index())),
        Route::OpenApiV3Group(p) => get_only(json_response(
            200,
            &discovery::openapi_group(&p).ok_or_else(ApiError::no_route)?,
        )),
        Route::OpenApiV2 => Err(ApiError::no_route()),
        Route::Metrics => get_only(metrics(&api, &user)?),
        Route::Object(target) => resource(api, user, target, req).await,
    }
}

/// The request's verb, as authorisation names it.
fn verb(method: &Method, target: &Target, q: &HashMap<String, String>) -> &'static str {
    let watching = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    match (method.as_str(), target.name.is_some()) {
        ("GET", _) if watching => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", true) if target.sub.is_none() => "unknown",
        ("POST", _) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

/// The media type of a body, without parameters.
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decodes a create/update body (JSON, YAML or Kubernetes protobuf).
fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    match content_type(headers).as_str() {
        "application/json" | "" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON body: {e}"))),
        "application/yaml" => yaml_value(body),
        "application/vnd.kubernetes.protobuf" => protobuf::decode(body).map_err(|e| match e {
            protobuf::ProtobufError::UnsupportedKind { .. } => {
                ApiError::unsupported_media_type(e.to_string())
            }
            other => ApiError::bad_request(format!("error decoding protobuf body: {other}")),
        }),
        other => Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other})"
        ))),
    }
}

/// The query parameters of a request.
fn query(req: &Request) -> Result<HashMap<String, String>, ApiError> {
    Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .map(|q| q.0)
        .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))
}

fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

async fn resource(
    api: Arc<Api>,
    user: User,
    target: Target,
    req: Request,
) -> Result<Response, ApiError> {
    let q = query(&req)?;
    let verb = verb(req.method(), &target, &q);
    let name = target.name.clone().unwrap_or_default();
    // Reads are authorised up front; writes once the objects involved are known.
    if matches!(verb, "get" | "list" | "watch") {
        authorize(&user, &target, verb, &name, None, None)?;
        authorize_node_read(&api, &user, &target, verb, &name).await?;
    }
    let sub = target.sub.clone().unwrap_or_default();
    match (verb, sub.as_str()) {
        ("get", "log") => super::logs::pod_log(&api, &target, &q).await,
        ("get", "scale") => {
            let as_ = negotiate(req.headers(), &q)?;
            let _ = as_;
            let obj = get_object(&api, &target).await?;
            Ok(json_response(200, &scale_of(&obj)))
        }
        ("get", _) => {
            let as_ = negotiate(req.headers(), &q)?;
            let obj = get_object(&api, &target).await?;
            Ok(json_response(200, &render_one(target.rt, obj, as_)))
        }
        ("list", "") => {
            let as_ = negotiate(req.headers(), &q)?;
            list(&api, &target, &q, as_).await
        }
        ("watch", "") => {
            let as_ = negotiate(req.headers(), &q)?;
            watch::watch(api.clone(), &target, &q, as_).await
        }
        ("create", "") => {
            let (headers, body) = read_body(&api, req).await?;
            let mut obj = decode_body(&headers, &body)?;
            authorize(
                &user,
                &target,
                verb,
                meta_str(&obj, "name"),
                None,
                Some(&obj),
            )?;
            let mut warnings = Vec::new();
            let created = create(&api, &target, &mut obj, &q, &mut warnings).await?;
            Ok(with_warnings(json_response(201, &created), &warnings))
        }
        ("create", "binding") => {
            let (headers, body) = read_body(&api, req).await?;
            let binding = decode_body(&headers, &body)?;
            let existing = get_object(&api, &target).await?;
            authorize(&user, &target, verb, &name, Some(&existing), Some(&binding))?;
            bind(&api, &target, &binding, &q).await?;
            Ok(json_response(201, &status::success(201, None)))
        }
        ("update", _) => {
            let (headers, body) = read_body(&api, req).await?;
            let obj = decode_body(&headers, &body)?;
            let mut warnings = Vec::new();
            let updated = patch::update(&api, &user, &target, obj, &q, &mut warnings).await?;
            Ok(with_warnings(json_response(200, &updated), &warnings))
        }
        ("patch", _) => {
            let (headers, body) = read_body(&api, req).await?;
            let ct = content_type(&headers);
            let mut warnings = Vec::new();
            let (code, obj) =
                patch::patch(&api, &user, &target, &ct, &body, &q, &mut warnings).await?;
            Ok(with_warnings(json_response(code, &obj), &warnings))
        }
        ("delete", "") => {
            let (_, body) = read_body(&api, req).await?;
            let existing = get_object(&api, &target).await?;
            authorize(&user, &target, verb, &name, Some(&existing), None)?;
            let opts = delete_options(&body, &q)?;
            let (code, v) = delete(&api, &target, &opts).await?;
            Ok(json_response(code, &v))
        }
        ("deletecollection", "") => {
            let (_, body) = read_body(&api, req).await?;
            authorize(&user, &target, verb, "", None, None)?;
            let opts = delete_options(&body, &q)?;
            delete_collection(&api, &target, &q, &opts).await
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({verb} {})",
            if sub.is_empty() {
                target.rt.plural.to_string()
            } else {
                format!("{}/{sub}", target.rt.plural)
            }
        ))),
    }
}

/// One object in the representation asked for.
fn render_one(rt: &ResourceType, obj: Value, as_: As) -> Value {
    match as_ {
        As::Json => obj,
        As::Table(include) => {
            let rv = meta_str(&obj, "resourceVersion").to_string();
            let mut t = table::table(rt.kind, &[obj], now(), include);
            t["metadata"] = json!({"resourceVersion": rv});
            t
        }
        As::Metadata => partial_metadata(&obj),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_to_resources() {
        let Route::Object(t) = parse_route("/api/v1/namespaces/default/pods/p/status").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (
                t.rt.plural,
                t.namespace.as_str(),
                t.name.as_deref(),
                t.sub.as_deref()
            ),
            ("pods", "default", Some("p"), Some("status"))
        );
        let Route::Object(t) = parse_route("/api/v1/namespaces/kube-system").unwrap() else {
            panic!()
        };
        assert_eq!(
            (t.rt.plural, t.name.as_deref()),
            ("namespaces", Some("kube-system"))
        );
        let Route::Object(t) = parse_route("/apis/apps/v1/deployments").unwrap() else {
            panic!()
        };
        assert_eq!(
            (t.rt.plural, t.namespace.as_str(), t.name),
            ("deployments", "", None)
        );
        assert!(parse_route("/api/v1/namespaces/default/nodes").is_err());
        assert!(parse_route("/api/v1/namespaces/default/pods/p/exec").is_err());
        assert!(parse_route("/apis/apps/v2/deployments").is_err());
        assert!(parse_route("/api/v1/pods/p").is_err());
        assert!(matches!(parse_route("/healthz").unwrap(), Route::Health));
        assert!(
            matches!(parse_route("/openapi/v3/apis/apps/v1").unwrap(), Route::OpenApiV3Group(p) if p == "apis/apps/v1")
        );
    }

    #[test]
    fn accept_headers_choose_the_representation() {
        let mut h = HeaderMap::new();
        let q = HashMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"));
        assert_eq!(
            negotiate(&h, &q).unwrap(),
            As::Table(IncludeObject::Metadata)
        );
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.kubernetes.protobuf, */*"),
        );
        assert_eq!(negotiate(&h, &q).unwrap(), As::Json);
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.kubernetes.protobuf"),
        );
        assert_eq!(negotiate(&h, &q).unwrap_err().code, 406);
    }
}
