//! `GET /api/v1/namespaces/{ns}/pods/{name}/log` (`kubectl logs`): checked as
//! kube-apiserver checks it, then proxied to the pod's node agent.
//!
//! kube-apiserver's order is kept: the options are validated (422 `PodLogOptions … is
//! invalid`), the pod is read (404), the container is chosen (400 `a container name must
//! be specified for pod X, choose one of: [a b]` when the pod has several and none is
//! named; 400 `container c is not valid for pod X` for a name the pod does not have — init
//! and ephemeral containers count), and a pod not bound to a node answers **204 No
//! Content** with no body, as kube-apiserver does (its log location is empty, so kubectl
//! prints nothing). Otherwise the request goes to the node agent:
//! `https://{address}:{port}/containerLogs/{ns}/{pod}/{container}?…` with the same
//! options (as kube-apiserver forwards them: `follow`, `previous`, `timestamps`,
//! `sinceSeconds`, `sinceTime`, `tailLines`, `limitBytes`), where the address is the
//! Node's `InternalIP` (else its `Hostname`) and the port its
//! `status.daemonEndpoints.kubeletEndpoint.Port`. A node that is missing, has no address
//! or no port is a 500 naming what is missing.
//!
//! **Trust.** As kube-apiserver without `--kubelet-certificate-authority`, the agent's
//! serving certificate is *not* verified (agents make their own self-signed ones); the
//! TLS handshake's signatures still are, so the connection is encrypted, but a machine
//! that can take over the node's address can impersonate the agent and see the
//! request (the bearer token and the log options). The API server authenticates to the
//! agent with `Authorization: Bearer <token>`, a random token created at every start for
//! the user [`KUBELET_CLIENT_USER`](super::auth::KUBELET_CLIENT_USER) and registered in
//! the server's own tokens, so that an agent checks it with a TokenReview. That user may
//! do nothing else against the API (see [`auth`](super::auth)).
//!
//! **Streaming.** The agent's body is passed on as it comes (chunked), so `kubectl logs
//! -f` follows. When the client goes away the response body is dropped, and with it the
//! upstream connection (its task is aborted, closing the TLS and TCP connection). An
//! upstream answer that is not 2xx becomes a `Status` with the same code and the agent's
//! message (the `message` of a JSON Status, else the text, at most 4 KiB).

use super::handlers::{get_object, Api, Target};
use super::kubelet::KubeletClient;
use super::objects;
use super::status::ApiError;
use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

/// How long connecting to an agent and getting its response headers may take.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an agent's error body is passed on.
const MAX_ERROR_BODY: usize = 4096;

/// `PodLogOptions` from the query.
#[derive(Debug, Default, Clone, PartialEq)]
struct LogOptions {
    container: String,
    follow: bool,
    previous: bool,
    timestamps: bool,
    since_seconds: Option<i64>,
    since_time: Option<jiff::Timestamp>,
    tail_lines: Option<i64>,
    limit_bytes: Option<i64>,
}

/// Go's `strconv.ParseBool`, as the query conversion uses it.
fn parse_bool(name: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "invalid value for {name}: strconv.ParseBool: parsing {v:?}: invalid syntax"
        ))),
    }
}

fn parse_int(name: &str, v: &str) -> Result<i64, ApiError> {
    v.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "invalid value for {name}: strconv.ParseInt: parsing {v:?}: invalid syntax"
        ))
    })
}

impl LogOptions {
    /// Parses and validates the options (`ValidatePodLogOptions`): 400 for a value that
    /// does not parse, 422 for one out of range.
    fn from_query(q: &HashMap<String, String>, pod: &str) -> Result<Self, ApiError> {
        let flag = |name: &str| match q.get(name) {
            Some(v) if !v.is_empty() => parse_bool(name, v),
            _ => Ok(false),
        };
        let int = |name: &str| match q.get(name) {
            Some(v) if !v.is_empty() => parse_int(name, v).map(Some),
            _ => Ok(None),
        };
        let since_time = match q.get("sinceTime").filter(|s| !s.is_empty()) {
            Some(s) => Some(s.parse::<jiff::Timestamp>().map_err(|e| {
                ApiError::bad_request(format!("invalid value for sinceTime: {s:?}: {e}"))
            })?),
            None => None,
        };
        // Parsed so a malformed value is refused, though it changes nothing here: the
        // agent's certificate is never verified.
        flag("insecureSkipTLSVerifyBackend")?;
        let o = LogOptions {
            container: q.get("container").cloned().unwrap_or_default(),
            follow: flag("follow")?,
            previous: flag("previous")?,
            timestamps: flag("timestamps")?,
            since_seconds: int("sinceSeconds")?,
            since_time,
            tail_lines: int("tailLines")?,
            limit_bytes: int("limitBytes")?,
        };
        let mut causes: Vec<(String, String)> = Vec::new();
        if let Some(n) = o.tail_lines.filter(|n| *n < 0) {
            causes.push((
                "tailLines".into(),
                format!("Invalid value: {n}: must be greater than or equal to 0"),
            ));
        }
        if let Some(n) = o.limit_bytes.filter(|n| *n < 1) {
            causes.push((
                "limitBytes".into(),
                format!("Invalid value: {n}: must be greater than 0"),
            ));
        }
        if o.since_seconds.is_some() && o.since_time.is_some() {
            causes.push((
                String::new(),
                "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified".into(),
            ));
        }
        if let Some(n) = o.since_seconds.filter(|n| *n < 1) {
            causes.push((
                "sinceSeconds".into(),
                format!("Invalid value: {n}: must be greater than 0"),
            ));
        }
        if causes.is_empty() {
            Ok(o)
        } else {
            Err(ApiError::invalid("PodLogOptions", pod, &causes))
        }
    }

    /// The query the agent gets (kube-apiserver's `LogLocation` parameters).
    fn upstream_query(&self) -> String {
        let mut params: Vec<(&str, String)> = Vec::new();
        if self.follow {
            params.push(("follow", "true".into()));
        }
        if self.previous {
            params.push(("previous", "true".into()));
        }
        if self.timestamps {
            params.push(("timestamps", "true".into()));
        }
        if let Some(n) = self.since_seconds {
            params.push(("sinceSeconds", n.to_string()));
        }
        if let Some(t) = self.since_time {
            params.push(("sinceTime", t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
        }
        if let Some(n) = self.tail_lines {
            params.push(("tailLines", n.to_string()));
        }
        if let Some(n) = self.limit_bytes {
            params.push(("limitBytes", n.to_string()));
        }
        params
            .iter()
            .map(|(k, v)| format!("{k}={}", escape(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every container name of a pod spec: init containers, containers, ephemeral containers
/// (kube's `VisitContainers` order).
fn container_names(pod: &Value) -> (Vec<String>, usize) {
    let names = |field: &str| -> Vec<String> {
        objects::path(pod, field)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let regular = names("spec.containers");
    let count = regular.len();
    let mut all = names("spec.initContainers");
    all.extend(regular);
    all.extend(names("spec.ephemeralContainers"));
    (all, count)
}

/// kube-apiserver's `validateContainer`: the container the logs are of.
fn choose_container(pod: &Value, name: &str, asked: &str) -> Result<String, ApiError> {
    let (all, regular) = container_names(pod);
    if asked.is_empty() {
        return match regular {
            1 => Ok(objects::path(pod, "spec.containers")
                .and_then(|c| c.get(0))
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()),
            0 => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                all.join(" ")
            ))),
        };
    }
    if all.iter().any(|c| c == asked) {
        Ok(asked.to_string())
    } else {
        Err(ApiError::bad_request(format!(
            "container {asked} is not valid for pod {name}"
        )))
    }
}

/// Where a node's agent listens: host (an IP or a name) and port.
fn agent_endpoint(node_name: &str, node: &Value) -> Result<(String, u16), ApiError> {
    let addresses: Vec<(&str, &str)> = objects::path(node, "status.addresses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| {
                    Some((
                        x.get("type")?.as_str()?,
                        x.get("address")?.as_str().filter(|s| !s.is_empty())?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let host = ["InternalIP", "Hostname"]
        .iter()
        .find_map(|t| addresses.iter().find(|(ty, _)| ty == t).map(|(_, a)| *a))
        .ok_or_else(|| {
            let known: Vec<String> = addresses
                .iter()
                .map(|(t, a)| format!("{{{t} {a}}}"))
                .collect();
            ApiError::internal(format!(
                "node {node_name:?} has no InternalIP or Hostname address (known addresses: [{}]); its agent cannot be reached",
                known.join(" ")
            ))
        })?;
    let port = objects::path(node, "status.daemonEndpoints.kubeletEndpoint.Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            ApiError::internal(format!(
                "node {node_name:?} has no status.daemonEndpoints.kubeletEndpoint.Port; its agent cannot be reached"
            ))
        })?;
    Ok((host.to_string(), port))
}

/// The reason kube gives a status code.
fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Gone",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

/// Aborts the connection task when dropped (the response body is gone: the client left).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `GET …/pods/{name}/log`.
pub(crate) async fn pod_log(
    api: &Api,
    target: &Target,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let name = target.name.clone().unwrap_or_default();
    let opts = LogOptions::from_query(q, &name)?;
    let pod = get_object(api, target).await?;
    let container = choose_container(&pod, &name, &opts.container)?;
    let node_name = objects::path(&pod, "spec.nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node_name.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let nodes = super::kinds::find("", "v1", "nodes").ok_or_else(ApiError::no_route)?;
    let node = get_object(
        api,
        &Target {
            rt: nodes,
            namespace: String::new(),
            name: Some(node_name.clone()),
            sub: None,
        },
    )
    .await?;
    let (host, port) = agent_endpoint(&node_name, &node)?;
    let mut path = format!(
        "/containerLogs/{}/{}/{}",
        escape(&target.namespace),
        escape(&name),
        escape(&container)
    );
    let query = opts.upstream_query();
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query);
    }
    proxy(&api.kubelet, &host, port, &path).await
}

/// Sends `GET path` to the agent at `host:port` and streams its answer back.
async fn proxy(
    client: &KubeletClient,
    host: &str,
    port: u16,
    path: &str,
) -> Result<Response, ApiError> {
    let ip: Option<std::net::IpAddr> = host.parse().ok();
    let authority = match ip {
        Some(std::net::IpAddr::V6(_)) => format!("[{host}]:{port}"),
        _ => format!("{host}:{port}"),
    };
    let url = format!("https://{authority}{path}");
    let fail = |what: String| ApiError::internal(format!("Get \"{url}\": {what}"));
    let connect = async {
        let tcp = match ip {
            Some(ip) => tokio::net::TcpStream::connect((ip, port)).await,
            None => tokio::net::TcpStream::connect((host, port)).await,
        }
        .map_err(|e| fail(format!("dial tcp {authority}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let server_name = match ip {
            Some(ip) => ServerName::IpAddress(ip.into()),
            None => ServerName::try_from(host.to_string())
                .map_err(|e| fail(format!("invalid host name: {e}")))?,
        };
        let tls = tokio_rustls::TlsConnector::from(client.tls.clone())
            .connect(server_name, tcp)
            .await
            .map_err(|e| fail(format!("tls: {e}")))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| fail(e.to_string()))?;
        let task = AbortOnDrop(tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("agent log connection: {e}");
            }
        }));
        let req = axum::http::Request::get(path)
            .header(header::HOST, &authority)
            .header(header::AUTHORIZATION, format!("Bearer {}", client.token))
            .header(header::USER_AGENT, "plimsoll-apiserver")
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| fail(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok::<_, ApiError>((resp, sender, task))
    };
    let (resp, sender, task) = tokio::time::timeout(UPSTREAM_TIMEOUT, connect)
        .await
        .map_err(|_| fail(format!("no answer within {}s", UPSTREAM_TIMEOUT.as_secs())))??;
    let code = resp.status().as_u16();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let body = resp.into_body();
    if !(200..=206).contains(&code) {
        let text = read_error_body(body).await;
        drop((sender, task));
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| text.trim().to_string());
        let message = if message.is_empty() {
            format!("the node agent answered {code} with no message")
        } else {
            message
        };
        return Err(ApiError {
            code,
            reason: reason_for(code),
            message,
            details: None,
        });
    }
    // The body, chunk by chunk; the connection (and its task) lives as long as it.
    let stream = futures::stream::unfold(
        (body, sender, task),
        |(mut body, sender, task)| async move {
            loop {
                match body.frame().await? {
                    Ok(frame) => {
                        if let Ok(data) = frame.into_data() {
                            return Some((Ok::<Bytes, hyper::Error>(data), (body, sender, task)));
                        }
                    }
                    Err(e) => return Some((Err(e), (body, sender, task))),
                }
            }
        },
    );
    let mut out = axum::body::Body::from_stream(stream).into_response();
    *out.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        content_type.unwrap_or_else(|| HeaderValue::from_static("text/plain")),
    );
    Ok(out)
}

/// At most [`MAX_ERROR_BODY`] bytes of an error answer, within 10 s.
async fn read_error_body(mut body: hyper::body::Incoming) -> String {
    let read = async {
        let mut buf = Vec::new();
        while buf.len() < MAX_ERROR_BODY {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buf.extend_from_slice(&data);
                    }
                }
                _ => break,
            }
        }
        buf.truncate(MAX_ERROR_BODY);
        String::from_utf8_lossy(&buf).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_are_parsed_validated_and_forwarded() {
        let o = LogOptions::from_query(
            &q(&[
                ("container", "c"),
                ("follow", "true"),
                ("timestamps", "1"),
                ("tailLines", "5"),
                ("limitBytes", "100"),
                ("sinceTime", "2024-05-01T10:00:00+02:00"),
                ("insecureSkipTLSVerifyBackend", "true"),
            ]),
            "p",
        )
        .unwrap();
        assert_eq!(
            o.upstream_query(),
            "follow=true&timestamps=true&sinceTime=2024-05-01T08%3A00%3A00Z&tailLines=5&limitBytes=100"
        );
        let err = LogOptions::from_query(&q(&[("follow", "yes")]), "p").unwrap_err();
        assert_eq!(err.code, 400);
        let err = LogOptions::from_query(&q(&[("tailLines", "x")]), "p").unwrap_err();
        assert_eq!(err.code, 400);
        let err = LogOptions::from_query(
            &q(&[
                ("tailLines", "-1"),
                ("sinceSeconds", "5"),
                ("sinceTime", "2024-05-01T10:00:00Z"),
            ]),
            "p",
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message
                .starts_with("PodLogOptions \"p\" is invalid: [tailLines"),
            "{}",
            err.message
        );
        assert!(
            err.message
                .contains("at most one of `sinceTime` or `sinceSeconds`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn containers_are_chosen_as_kube_apiserver_does() {
        let pod = json!({"spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "a"}, {"name": "b"}],
        }});
        let err = choose_container(&pod, "p", "").unwrap_err();
        assert_eq!(
            err.message,
            "a container name must be specified for pod p, choose one of: [init a b]"
        );
        assert_eq!(err.code, 400);
        assert_eq!(choose_container(&pod, "p", "init").unwrap(), "init");
        let err = choose_container(&pod, "p", "c").unwrap_err();
        assert_eq!(err.message, "container c is not valid for pod p");
        let one = json!({"spec": {"containers": [{"name": "only"}]}});
        assert_eq!(choose_container(&one, "p", "").unwrap(), "only");
    }

    #[test]
    fn agent_endpoints_come_from_the_node_status() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "worker-1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        }});
        assert_eq!(
            agent_endpoint("w", &node).unwrap(),
            ("10.0.0.5".to_string(), 10250)
        );
        let named = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "worker-1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        }});
        assert_eq!(agent_endpoint("w", &named).unwrap().0, "worker-1");
        let no_port =
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}});
        let err = agent_endpoint("w", &no_port).unwrap_err();
        assert!(
            err.message.contains("kubeletEndpoint.Port"),
            "{}",
            err.message
        );
        let no_addr = json!({"status": {"addresses": [{"type": "ExternalIP", "address": "1.2.3.4"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}});
        let err = agent_endpoint("w", &no_addr).unwrap_err();
        assert_eq!(err.code, 500);
        assert!(
            err.message.contains("{ExternalIP 1.2.3.4}"),
            "{}",
            err.message
        );
    }
}
