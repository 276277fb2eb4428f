//! Authentication (static bearer tokens) and authorisation (node restriction) for the
//! API server.
//!
//! **Authentication**: [`Tokens`] maps bearer tokens to [`User`]s, filled with
//! [`Tokens::insert`] or from a file in Kubernetes' static token file format
//! (`--token-auth-file`, [`Tokens::load_file`]). [`Tokens::authenticate`] takes an
//! `Authorization` header value and answers the user, adding the group
//! `system:authenticated` as Kubernetes does.
//!
//! **Authorisation**: [`authorize`] is deliberately small. There is no RBAC: every
//! authenticated user may do everything, except node identities, which get a simplified
//! form of Kubernetes' Node authorizer and NodeRestriction admission plugin (a node may
//! read everything but Secrets and ConfigMaps, which it may only `get`, and only those a
//! pod bound to it references ([`node_read_needs_pods`], [`authorize_node_read`]); it
//! may write only its own Node, its own Lease, the status of pods bound to it, and
//! events). Group `system:masters` may always do everything. The API server's own
//! credential for node agents ([`KUBELET_CLIENT_USER`]) may do nothing.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// The group every authenticated user is in.
pub const GROUP_AUTHENTICATED: &str = "system:authenticated";
/// The group whose members may do everything.
pub const GROUP_MASTERS: &str = "system:masters";
/// The group of node (kubelet) identities.
pub const GROUP_NODES: &str = "system:nodes";
/// The prefix of a node identity's user name: `system:node:NAME`.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The namespace that holds node heartbeat leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// The user the API server is to node agents (the bearer token it sends them with
/// `kubectl logs` requests; see `logs`). It may do nothing against the API itself.
pub const KUBELET_CLIENT_USER: &str = "system:kube-apiserver-kubelet-client";

/// An authenticated user, as Kubernetes' `user.Info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name (`admin`, `system:node:worker-1`, …).
    pub name: String,
    /// A unique id (may be empty).
    pub uid: String,
    /// The groups the user is in.
    pub groups: Vec<String>,
}

impl User {
    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The node this user acts for: `Some(NAME)` for `system:node:NAME` (an empty
    /// `NAME` too), `None` for a user that is no node identity.
    ///
    /// Stricter than Kubernetes, where only a user both named `system:node:NAME` *and*
    /// in `system:nodes` is a node: here either makes the user node-restricted (there
    /// is no RBAC behind to restrict the others). A member of `system:nodes` whose name
    /// has no node prefix gets `Some("")`, which may write nothing.
    pub fn node_name(&self) -> Option<&str> {
        match self.name.strip_prefix(NODE_USER_PREFIX) {
            Some(name) => Some(name),
            None if self.in_group(GROUP_NODES) => Some(""),
            None => None,
        }
    }
}

/// What can go wrong adding tokens.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token file could not be read.
    #[error("token file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line of the token file is wrong (tokens themselves are never shown).
    #[error("token file {}, line {line}: {reason}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A token inserted is empty, contains whitespace or commas, or is already in use.
    #[error("token for user {user:?}: {reason}")]
    Token {
        /// The user the token was meant for.
        user: String,
        /// What is wrong.
        reason: String,
    },
}

/// Bearer tokens → users.
///
/// Filled with [`insert`](Tokens::insert) or from Kubernetes' static token file format
/// ([`load_file`](Tokens::load_file)): CSV lines `token,user,uid,"group1,group2"` (the
/// groups column is optional; a quoted field may hold commas, `""` is a quote). Blank
/// lines and lines starting with `#` are ignored.
///
/// Lookups compare the presented token with every stored one in constant time (no early
/// exit, no hashing of the secret), so their timing reveals nothing about the tokens; a
/// lookup costs one comparison per stored token, which is fine for the handful a static
/// file holds. `Debug` shows the users, never the tokens.
#[derive(Default, Clone)]
pub struct Tokens {
    entries: Vec<(Vec<u8>, User)>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field(
                "users",
                &self
                    .entries
                    .iter()
                    .map(|(_, u)| &u.name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why a token cannot be used, if it cannot.
fn token_problem(token: &str) -> Option<&'static str> {
    if token.is_empty() {
        Some("empty token")
    } else if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        // `Authorization: Bearer <token>` can carry no whitespace in the token.
        Some("token contains whitespace or control characters")
    } else {
        None
    }
}

impl Tokens {
    /// No tokens.
    pub fn new() -> Self {
        Tokens::default()
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `token` for `user`. Errors if the token is empty, contains whitespace, or is
    /// already in use (by this user or another).
    pub fn insert(&mut self, token: String, user: User) -> Result<(), AuthError> {
        if let Some(problem) = token_problem(&token) {
            return Err(AuthError::Token {
                user: user.name,
                reason: problem.into(),
            });
        }
        if let Some(existing) = self.holder(&token) {
            return Err(AuthError::Token {
                user: user.name,
                reason: format!("token already in use by user {:?}", existing.name),
            });
        }
        self.entries.push((token.into_bytes(), user));
        Ok(())
    }

    fn holder(&self, token: &str) -> Option<&User> {
        self.entries
            .iter()
            .find(|(t, _)| t.as_slice() == token.as_bytes())
            .map(|(_, u)| u)
    }

    /// Adds every token of a static token file (see [`Tokens`]); returns how many.
    ///
    /// All or nothing: on any error nothing is added. Errors name the file and line:
    /// fewer than 3 columns, an empty token or user name, an unterminated quote, a token
    /// used twice (in the file, or already present).
    pub fn load_file(&mut self, path: &Path) -> Result<usize, AuthError> {
        let bytes = std::fs::read(path).map_err(|source| AuthError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            AuthError::Line {
                path: path.to_path_buf(),
                line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
                reason: "not valid UTF-8".into(),
            }
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut added = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let err = |reason: String| AuthError::Line {
                path: path.to_path_buf(),
                line,
                reason,
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fields = split_csv_line(raw).map_err(|r| err(r.into()))?;
            if fields.len() < 3 {
                return Err(err(format!(
                    "expected at least 3 columns (token, user name, user uid), found {}",
                    fields.len()
                )));
            }
            let token = fields[0].as_str();
            if let Some(problem) = token_problem(token) {
                return Err(err(problem.into()));
            }
            if fields[1].is_empty() {
                return Err(err("empty user name".into()));
            }
            if !seen.insert(token.to_string()) {
                return Err(err(format!(
                    "duplicate token (user {:?}): each token must be unique",
                    fields[1]
                )));
            }
            if let Some(existing) = self.holder(token) {
                return Err(err(format!(
                    "token already in use by user {:?}",
                    existing.name
                )));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            added.push((
                token.as_bytes().to_vec(),
                User {
                    name: fields[1].clone(),
                    uid: fields[2].clone(),
                    groups,
                },
            ));
        }
        let count = added.len();
        self.entries.extend(added);
        Ok(count)
    }

    /// The user for an `Authorization` header value (`Bearer <token>`, the scheme in
    /// any case), if the token is valid; the user's groups then include
    /// `system:authenticated`. Like Kubernetes, the value is trimmed and an empty
    /// token is no token.
    pub fn authenticate(&self, header: &str) -> Option<User> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = rest.split(' ').next().unwrap_or("");
        if token.is_empty() {
            return None;
        }
        let mut found: Option<&User> = None;
        for (stored, user) in &self.entries {
            // Every entry is compared in full, whatever matched before.
            if constant_time_eq(stored, token.as_bytes()) {
                found = Some(user);
            }
        }
        let mut user = found?.clone();
        if !user.in_group(GROUP_AUTHENTICATED) {
            user.groups.push(GROUP_AUTHENTICATED.to_string());
        }
        Some(user)
    }
}

/// Compares two byte strings in time depending only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Splits one CSV line (RFC 4180 quoting, leading spaces of a field ignored as Go's
/// `csv.Reader{TrimLeadingSpace: true}` does).
fn split_csv_line(line: &str) -> Result<Vec<String>, &'static str> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted field"),
                    Some('"') => {
                        if chars.next_if_eq(&'"').is_some() {
                            field.push('"');
                        } else {
                            break;
                        }
                    }
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("extraneous text after a quoted field"),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err("bare \" in an unquoted field"),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// What a request does (Kubernetes' authorizer attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes<'a> {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete` or
    /// `deletecollection` (any other verb counts as a write).
    pub verb: &'a str,
    /// The API group (`""` for the core group).
    pub group: &'a str,
    /// The resource, plural (`pods`).
    pub resource: &'a str,
    /// The subresource (`status`), `""` if none.
    pub subresource: &'a str,
    /// The namespace, `""` for cluster-scoped resources or all namespaces.
    pub namespace: &'a str,
    /// The object's name, `""` for collections (and for a create whose name is in the
    /// body only).
    pub name: &'a str,
}

fn is_read(verb: &str) -> bool {
    matches!(verb, "get" | "list" | "watch")
}

fn json_str<'v>(value: Option<&'v serde_json::Value>, pointer: &str) -> Option<&'v str> {
    value?.pointer(pointer)?.as_str()
}

/// Decides whether `user` may do what `attrs` describe: `Ok(())`, or `Err(reason)` for
/// the 403 message. The reason is the tail only (`node "a" is not allowed to modify node
/// "b"`), to follow the request's description as Kubernetes does (`nodes "b" is
/// forbidden: User "system:node:a" cannot update resource "nodes" …: REASON`).
///
/// `existing` is the stored object the request acts on (if any) and `incoming` the
/// object in the request body (if any), so node rules can check `spec.nodeName` of pods
/// and `metadata.name` of created objects.
///
/// The policy:
/// - group `system:masters`: everything;
/// - a node identity (user `system:node:NAME` or group `system:nodes`, see
///   [`User::node_name`]): may read (get, list, watch) everything but Secrets and
///   ConfigMaps, which it may not list or watch and may get only when a pod bound to it
///   references them (checked by [`authorize_node_read`], since it needs the pods;
///   this function allows the `get`); may create, update
///   and patch its own Node `NAME` and its `nodes/status`, but no other node, and delete
///   no node; may create, get, update and patch the Lease `NAME` in `kube-node-lease`
///   and write no other lease; may update and patch `pods/status` only of pods whose
///   stored `spec.nodeName` is `NAME`; may delete such pods; may create and patch
///   events (core and `events.k8s.io`); may create TokenReviews
///   (`authentication.k8s.io`, to check the bearer token of a request to its agent); may
///   update its own `nodeusage` (`plimsoll.io`; which pods it may report is
///   [`node_may_report_pod`]'s). Every other write is denied. A node identity without a
///   name writes nothing;
/// - the API server's own agent client ([`KUBELET_CLIENT_USER`]): nothing at all — its
///   token is a credential for agents, which they check with a TokenReview;
/// - every other authenticated user: everything. There is no RBAC; only node
///   identities are restricted.
pub fn authorize(
    user: &User,
    attrs: &Attributes,
    existing: Option<&serde_json::Value>,
    incoming: Option<&serde_json::Value>,
) -> Result<(), String> {
    if user.in_group(GROUP_MASTERS) {
        return Ok(());
    }
    if user.name == KUBELET_CLIENT_USER {
        return Err(format!(
            "user {KUBELET_CLIENT_USER:?} is the API server's credential for node agents and may not use the API"
        ));
    }
    match user.node_name() {
        None => Ok(()),
        Some(node) => authorize_node(user, node, attrs, existing, incoming),
    }
}

/// Whether `user` may report usage of a pod whose stored `spec.nodeName` is `bound`
/// (`""`: unbound): a node identity only of pods bound to itself, other users of any pod.
/// `Err(reason)` as [`authorize`] gives it.
pub fn node_may_report_pod(user: &User, bound: &str) -> Result<(), String> {
    if user.in_group(GROUP_MASTERS) {
        return Ok(());
    }
    match user.node_name() {
        None => Ok(()),
        Some(node) if !node.is_empty() && node == bound => Ok(()),
        Some(node) => Err(format!(
            "node {node:?} can only report usage of pods with spec.nodeName set to itself"
        )),
    }
}

/// Whether a read that [`authorize`] allowed still needs [`authorize_node_read`]: a node
/// identity's `get` of a Secret or ConfigMap.
pub fn node_read_needs_pods(user: &User, attrs: &Attributes) -> bool {
    !user.in_group(GROUP_MASTERS)
        && user.node_name().is_some()
        && attrs.verb == "get"
        && attrs.group.is_empty()
        && matches!(attrs.resource, "secrets" | "configmaps")
}

/// Kubernetes' Node authorizer for the `get` [`node_read_needs_pods`] names: allowed only
/// if one of `pods` (the pods of the object's namespace) is bound to the node
/// (`spec.nodeName`) and references the object ([`pod_references`]). `Err(reason)` as
/// [`authorize`] gives it.
pub fn authorize_node_read<'p>(
    user: &User,
    attrs: &Attributes,
    pods: impl IntoIterator<Item = &'p serde_json::Value>,
) -> Result<(), String> {
    if !node_read_needs_pods(user, attrs) {
        return Ok(());
    }
    let node = user.node_name().unwrap_or("");
    let related = !node.is_empty()
        && pods.into_iter().any(|p| {
            json_str(Some(p), "/spec/nodeName") == Some(node)
                && pod_references(p, attrs.resource, attrs.name)
        });
    if related {
        Ok(())
    } else {
        Err(format!(
            "no relationship found between node '{node}' and this object"
        ))
    }
}

/// Whether `pod` references the Secret or ConfigMap (`resource` `secrets` or
/// `configmaps`) `name`: through a volume (`secret`, `configMap`, `projected` sources,
/// the `secretRef`s of other volume types, CSI's `nodePublishSecretRef`), an
/// `env[].valueFrom` key reference or an `envFrom` of any container (init and ephemeral
/// too), or, for Secrets, `imagePullSecrets` — the edges of Kubernetes' node graph.
pub fn pod_references(pod: &serde_json::Value, resource: &str, name: &str) -> bool {
    use serde_json::Value;
    let secret = resource == "secrets";
    let is = |v: Option<&Value>| v.and_then(Value::as_str) == Some(name);
    let spec = pod.get("spec");
    let list = |v: Option<&Value>, key: &str| -> Vec<Value> {
        v.and_then(|s| s.get(key))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    if secret
        && list(spec, "imagePullSecrets")
            .iter()
            .any(|r| is(r.get("name")))
    {
        return true;
    }
    for vol in list(spec, "volumes") {
        let Some(sources) = vol.as_object() else {
            continue;
        };
        for (kind, src) in sources {
            let hit = match (kind.as_str(), secret) {
                ("secret", true) => is(src.get("secretName")),
                ("configMap", false) => is(src.get("name")),
                ("projected", _) => list(Some(src), "sources").iter().any(|s| {
                    is(s.pointer(if secret {
                        "/secret/name"
                    } else {
                        "/configMap/name"
                    }))
                }),
                ("csi", true) => is(src.pointer("/nodePublishSecretRef/name")),
                ("azureFile", true) => is(src.get("secretName")),
                (_, true) => is(src.pointer("/secretRef/name")),
                _ => false,
            };
            if hit {
                return true;
            }
        }
    }
    let (key_ref, from_ref) = if secret {
        ("/valueFrom/secretKeyRef/name", "/secretRef/name")
    } else {
        ("/valueFrom/configMapKeyRef/name", "/configMapRef/name")
    };
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| list(spec, k))
        .any(|c| {
            list(Some(&c), "env").iter().any(|e| is(e.pointer(key_ref)))
                || list(Some(&c), "envFrom")
                    .iter()
                    .any(|e| is(e.pointer(from_ref)))
        })
}

fn authorize_node(
    user: &User,
    node: &str,
    attrs: &Attributes,
    existing: Option<&serde_json::Value>,
    incoming: Option<&serde_json::Value>,
) -> Result<(), String> {
    let verb = attrs.verb;
    if is_read(verb) {
        return match (attrs.group, attrs.resource) {
            // Kubernetes' Node authorizer: only named objects, through the graph.
            ("", "secrets" | "configmaps") if verb != "get" || attrs.name.is_empty() => {
                Err("No Object name found".into())
            }
            ("", "secrets" | "configmaps") if node.is_empty() || !attrs.subresource.is_empty() => {
                Err(format!(
                    "no relationship found between node '{node}' and this object"
                ))
            }
            _ => Ok(()),
        };
    }
    // The reason only: callers prefix the request (`User "…" cannot create resource …`).
    let generic = || {
        Err(if node.is_empty() {
            format!(
                "user {:?} is in group {GROUP_NODES} but not named {NODE_USER_PREFIX}<node name>, \
                 so it may write nothing",
                user.name
            )
        } else {
            format!(
                "node {node:?} may write only its own Node and Lease, the status of pods bound \
                 to it, their deletion, and events"
            )
        })
    };
    if node.is_empty() {
        return generic();
    }
    // The target's name: from the URL, or for a create from the body.
    let target = if attrs.name.is_empty() {
        json_str(incoming, "/metadata/name").unwrap_or("")
    } else {
        attrs.name
    };
    let body_name = json_str(incoming, "/metadata/name");
    match (attrs.group, attrs.resource, attrs.subresource) {
        ("", "nodes", "" | "status") => match verb {
            "create" | "update" | "patch" => {
                if target == node && body_name.is_none_or(|n| n == node) {
                    Ok(())
                } else {
                    let other = if target == node {
                        body_name.unwrap_or(target)
                    } else {
                        target
                    };
                    Err(format!(
                        "node {node:?} is not allowed to modify node {other:?}"
                    ))
                }
            }
            "delete" | "deletecollection" => {
                Err(format!("node {node:?} is not allowed to delete nodes"))
            }
            _ => generic(),
        },
        ("coordination.k8s.io", "leases", "") => match verb {
            "create" | "update" | "patch" => {
                if attrs.namespace != NODE_LEASE_NAMESPACE {
                    Err(format!(
                        "node {node:?} can only access leases in the {NODE_LEASE_NAMESPACE:?} namespace"
                    ))
                } else if target != node || body_name.is_some_and(|n| n != node) {
                    Err(format!(
                        "node {node:?} can only access the node lease with the same name as the node"
                    ))
                } else {
                    Ok(())
                }
            }
            _ => generic(),
        },
        ("", "pods", "status") => match verb {
            "update" | "patch" => match json_str(existing, "/spec/nodeName") {
                Some(bound) if bound == node => Ok(()),
                _ => Err(format!(
                    "node {node:?} can only update pod status for pods with spec.nodeName set to itself"
                )),
            },
            _ => generic(),
        },
        ("", "pods", "") => match verb {
            "delete" => match json_str(existing, "/spec/nodeName") {
                Some(bound) if bound == node => Ok(()),
                _ => Err(format!(
                    "node {node:?} can only delete pods with spec.nodeName set to itself"
                )),
            },
            _ => generic(),
        },
        ("" | "events.k8s.io", "events", "") => match verb {
            "create" | "patch" => Ok(()),
            _ => generic(),
        },
        ("authentication.k8s.io", "tokenreviews", "") => match verb {
            "create" => Ok(()),
            _ => generic(),
        },
        ("plimsoll.io", "nodeusage", "") => match verb {
            "update" if target == node => Ok(()),
            "update" => Err(format!(
                "node {node:?} is not allowed to report usage for node {target:?}"
            )),
            _ => generic(),
        },
        _ => generic(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct TempFile(PathBuf);

    impl TempFile {
        fn new(content: &str) -> TempFile {
            let path = std::env::temp_dir().join(format!(
                "plimsoll-tokens-{}-{:016x}.csv",
                std::process::id(),
                rand::random::<u64>()
            ));
            std::fs::write(&path, content).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn user(name: &str, groups: &[&str]) -> User {
        User {
            name: name.into(),
            uid: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn node(name: &str) -> User {
        user(&format!("system:node:{name}"), &[GROUP_NODES])
    }

    fn attrs<'a>(
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        subresource: &'a str,
        namespace: &'a str,
        name: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            verb,
            group,
            resource,
            subresource,
            namespace,
            name,
        }
    }

    fn pod_on(node: &str) -> serde_json::Value {
        json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"nodeName": node}})
    }

    #[test]
    fn token_file_is_parsed() {
        let file = TempFile::new(
            "\u{feff}# comment\n\
             \n\
             tok-admin,admin,uid-1,\"system:masters,team a\"\n\
             tok-node, system:node:a,uid-2,system:nodes\r\n\
             tok-plain,bob,uid-3\n\
             \"tok,quoted\",\"carol \"\"c\"\"\",uid-4,\n",
        );
        let mut tokens = Tokens::new();
        assert_eq!(tokens.load_file(&file.0).unwrap(), 4);
        assert_eq!(tokens.len(), 4);
        let admin = tokens.authenticate("Bearer tok-admin").unwrap();
        assert_eq!(admin.name, "admin");
        assert_eq!(admin.uid, "uid-1");
        assert_eq!(
            admin.groups,
            ["system:masters", "team a", "system:authenticated"]
        );
        // Leading spaces of a field are trimmed (as Go's csv does); CRLF is fine.
        let node = tokens.authenticate("Bearer tok-node").unwrap();
        assert_eq!(node.name, "system:node:a");
        assert_eq!(node.groups, ["system:nodes", "system:authenticated"]);
        let bob = tokens.authenticate("bearer tok-plain").unwrap();
        assert_eq!(bob.groups, ["system:authenticated"]);
        let carol = tokens.authenticate("Bearer tok,quoted").unwrap();
        assert_eq!(carol.name, "carol \"c\"");
        assert!(format!("{tokens:?}").contains("admin"));
        assert!(!format!("{tokens:?}").contains("tok-admin"));
    }

    #[test]
    fn token_file_errors_name_file_and_line() {
        let cases = [
            ("a,u,1\nb,u\n", 2, "at least 3 columns"),
            ("a,u,1\n\n# c\n,u,1\n", 4, "empty token"),
            ("a,u,1\nb,,1\n", 2, "empty user name"),
            ("a,u,1\nb,v,2\na,w,3\n", 3, "duplicate token"),
            ("\"a,u,1\n", 1, "unterminated"),
            ("a b,u,1\n", 1, "whitespace"),
            ("a,u\"x,1\n", 1, "bare \""),
            ("\"a\"x,u,1\n", 1, "extraneous"),
        ];
        for (content, line, what) in cases {
            let file = TempFile::new(content);
            let mut tokens = Tokens::new();
            let err = tokens.load_file(&file.0).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, AuthError::Line { line: l, .. } if l == line),
                "{content:?}: {text}"
            );
            assert!(text.contains(&file.0.display().to_string()), "{text}");
            assert!(text.contains(&format!("line {line}")), "{text}");
            assert!(text.contains(what), "{content:?}: {text}");
            assert!(tokens.is_empty(), "partial load");
        }
        // Not UTF-8.
        let file = TempFile::new("a,u,1\n");
        std::fs::write(&file.0, b"a,u,1\nb,\xff,2\n").unwrap();
        let err = Tokens::new().load_file(&file.0).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("UTF-8"), "{err}");
        // Missing file.
        let err = Tokens::new()
            .load_file(Path::new("/nonexistent/tokens.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/tokens.csv"), "{err}");
        // A token already inserted, and the error does not show it.
        let file = TempFile::new("secret-token,u,1\n");
        let mut tokens = Tokens::new();
        tokens
            .insert("secret-token".into(), user("first", &[]))
            .unwrap();
        let err = tokens.load_file(&file.0).unwrap_err().to_string();
        assert!(err.contains("already in use by user \"first\""), "{err}");
        assert!(!err.contains("secret-token"), "{err}");
    }

    #[test]
    fn insert_refuses_duplicates_and_bad_tokens() {
        let mut tokens = Tokens::new();
        tokens.insert("t1".into(), user("a", &[])).unwrap();
        let err = tokens.insert("t1".into(), user("b", &[])).unwrap_err();
        assert!(err.to_string().contains("already in use"), "{err}");
        assert!(tokens.insert(String::new(), user("b", &[])).is_err());
        assert!(tokens.insert("a b".into(), user("b", &[])).is_err());
        tokens.insert("t2".into(), user("b", &[])).unwrap();
        assert_eq!(tokens.authenticate("Bearer t2").unwrap().name, "b");
    }

    #[test]
    fn authenticate_parses_the_header_like_kubernetes() {
        let mut tokens = Tokens::new();
        tokens.insert("abc".into(), user("a", &[])).unwrap();
        tokens.insert("abcd".into(), user("b", &[])).unwrap();
        assert_eq!(tokens.authenticate("Bearer abc").unwrap().name, "a");
        assert_eq!(tokens.authenticate("BEARER abcd").unwrap().name, "b");
        assert_eq!(tokens.authenticate("  Bearer abc  ").unwrap().name, "a");
        assert_eq!(tokens.authenticate("Bearer abc extra").unwrap().name, "a");
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Bearer  abc",
            "Basic abc",
            "abc",
            "Bearer ab",
            "Bearer abcde",
            "Bearer ABC",
        ] {
            assert!(tokens.authenticate(bad).is_none(), "{bad:?}");
        }
        assert!(Tokens::new().authenticate("Bearer abc").is_none());
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab\0", b"ab"));
    }

    #[test]
    fn masters_and_ordinary_users_may_do_everything() {
        let admin = user("admin", &[GROUP_MASTERS]);
        let bob = user("bob", &["developers"]);
        let a = attrs("delete", "", "nodes", "", "", "x");
        assert!(authorize(&admin, &a, None, None).is_ok());
        assert!(authorize(&bob, &a, None, None).is_ok());
        let a = attrs("deletecollection", "apps", "deployments", "", "default", "");
        assert!(authorize(&bob, &a, None, None).is_ok());
        // A node that is also a master is unrestricted.
        let mut master_node = node("a");
        master_node.groups.push(GROUP_MASTERS.into());
        let a = attrs("delete", "", "nodes", "", "", "b");
        assert!(authorize(&master_node, &a, None, None).is_ok());
    }

    #[test]
    fn nodes_may_read_everything_but_secrets_and_configmaps() {
        let n = node("a");
        for verb in ["get", "list", "watch"] {
            for (group, resource) in [("", "pods"), ("", "nodes"), ("apps", "deployments")] {
                let a = attrs(verb, group, resource, "", "default", "");
                assert!(authorize(&n, &a, None, None).is_ok(), "{verb} {resource}");
            }
        }
        for resource in ["secrets", "configmaps"] {
            for verb in ["list", "watch"] {
                let a = attrs(verb, "", resource, "", "default", "");
                assert_eq!(
                    authorize(&n, &a, None, None).unwrap_err(),
                    "No Object name found"
                );
            }
            // A get passes here and needs the pods.
            let a = attrs("get", "", resource, "", "default", "s");
            assert!(authorize(&n, &a, None, None).is_ok());
            assert!(node_read_needs_pods(&n, &a));
            assert!(!node_read_needs_pods(&user("admin", &[]), &a));
        }
    }

    #[test]
    fn a_node_gets_only_what_its_pods_reference() {
        let n = node("a");
        let mut mine = pod_on("a");
        mine["spec"]["volumes"] = json!([
            {"name": "v", "secret": {"secretName": "vol-secret"}},
            {"name": "c", "configMap": {"name": "vol-cm"}},
            {"name": "p", "projected": {"sources": [{"secret": {"name": "proj-secret"}},
                {"configMap": {"name": "proj-cm"}}]}},
            {"name": "r", "rbd": {"secretRef": {"name": "rbd-secret"}}}]);
        mine["spec"]["imagePullSecrets"] = json!([{"name": "pull"}]);
        mine["spec"]["containers"] = json!([{"name": "c", "env": [
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}},
            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}}]}]);
        mine["spec"]["initContainers"] = json!([{"name": "i", "envFrom": [
            {"secretRef": {"name": "from-secret"}}, {"configMapRef": {"name": "from-cm"}}]}]);
        let mut theirs = pod_on("b");
        theirs["spec"]["imagePullSecrets"] = json!([{"name": "other"}]);
        let pods = [mine, theirs];
        for s in [
            "vol-secret",
            "proj-secret",
            "rbd-secret",
            "pull",
            "env-secret",
            "from-secret",
        ] {
            let a = attrs("get", "", "secrets", "", "default", s);
            assert!(authorize_node_read(&n, &a, &pods).is_ok(), "{s}");
            let cm = attrs("get", "", "configmaps", "", "default", s);
            assert!(
                authorize_node_read(&n, &cm, &pods).is_err(),
                "{s} as a configmap"
            );
        }
        for c in ["vol-cm", "proj-cm", "env-cm", "from-cm"] {
            let a = attrs("get", "", "configmaps", "", "default", c);
            assert!(authorize_node_read(&n, &a, &pods).is_ok(), "{c}");
        }
        // Referenced by a pod on another node only, or by nothing.
        for s in ["other", "nothing"] {
            let a = attrs("get", "", "secrets", "", "default", s);
            assert_eq!(
                authorize_node_read(&n, &a, &pods).unwrap_err(),
                "no relationship found between node 'a' and this object"
            );
        }
        // Other users and other resources are not its business.
        let a = attrs("get", "", "secrets", "", "default", "other");
        assert!(authorize_node_read(&user("admin", &[]), &a, &pods).is_ok());
        let a = attrs("get", "", "pods", "", "default", "p");
        assert!(authorize_node_read(&n, &a, &pods).is_ok());
    }

    #[test]
    fn nodes_may_write_only_their_own_node() {
        let n = node("a");
        let own = json!({"metadata": {"name": "a"}});
        let other = json!({"metadata": {"name": "b"}});
        // Create: the name is in the body.
        let a = attrs("create", "", "nodes", "", "", "");
        assert!(authorize(&n, &a, None, Some(&own)).is_ok());
        let err = authorize(&n, &a, None, Some(&other)).unwrap_err();
        assert_eq!(err, "node \"a\" is not allowed to modify node \"b\"");
        assert!(authorize(&n, &a, None, None).is_err());
        for verb in ["update", "patch"] {
            for sub in ["", "status"] {
                let a = attrs(verb, "", "nodes", sub, "", "a");
                assert!(authorize(&n, &a, Some(&own), Some(&own)).is_ok());
                assert!(authorize(&n, &a, Some(&own), None).is_ok());
                // A body naming another node.
                assert!(authorize(&n, &a, Some(&own), Some(&other)).is_err());
                let a = attrs(verb, "", "nodes", sub, "", "b");
                let err = authorize(&n, &a, Some(&other), Some(&other)).unwrap_err();
                assert_eq!(err, "node \"a\" is not allowed to modify node \"b\"");
            }
        }
        for name in ["a", "b"] {
            let a = attrs("delete", "", "nodes", "", "", name);
            let err = authorize(&n, &a, Some(&own), None).unwrap_err();
            assert_eq!(err, "node \"a\" is not allowed to delete nodes");
        }
        let a = attrs("deletecollection", "", "nodes", "", "", "");
        assert!(authorize(&n, &a, None, None).is_err());
        // Other node subresources.
        let a = attrs("create", "", "nodes", "proxy", "", "a");
        assert!(authorize(&n, &a, None, None).is_err());
    }

    #[test]
    fn nodes_may_write_only_their_own_lease() {
        let n = node("a");
        let own = json!({"metadata": {"name": "a", "namespace": "kube-node-lease"}});
        let other = json!({"metadata": {"name": "b", "namespace": "kube-node-lease"}});
        let g = "coordination.k8s.io";
        let a = attrs("create", g, "leases", "", NODE_LEASE_NAMESPACE, "");
        assert!(authorize(&n, &a, None, Some(&own)).is_ok());
        assert!(authorize(&n, &a, None, Some(&other)).is_err());
        for verb in ["get", "update", "patch"] {
            let a = attrs(verb, g, "leases", "", NODE_LEASE_NAMESPACE, "a");
            assert!(authorize(&n, &a, Some(&own), Some(&own)).is_ok(), "{verb}");
        }
        for verb in ["update", "patch"] {
            let a = attrs(verb, g, "leases", "", NODE_LEASE_NAMESPACE, "b");
            let err = authorize(&n, &a, Some(&other), None).unwrap_err();
            assert!(err.contains("same name as the node"), "{err}");
            // The same name elsewhere.
            let a = attrs(verb, g, "leases", "", "kube-system", "a");
            let err = authorize(&n, &a, None, None).unwrap_err();
            assert!(err.contains("kube-node-lease"), "{err}");
        }
        let a = attrs("delete", g, "leases", "", NODE_LEASE_NAMESPACE, "a");
        assert!(authorize(&n, &a, Some(&own), None).is_err());
    }

    #[test]
    fn nodes_may_update_status_only_of_their_pods() {
        let n = node("a");
        for verb in ["update", "patch"] {
            let a = attrs(verb, "", "pods", "status", "default", "p");
            assert!(authorize(&n, &a, Some(&pod_on("a")), None).is_ok());
            let err = authorize(&n, &a, Some(&pod_on("b")), None).unwrap_err();
            assert_eq!(
                err,
                "node \"a\" can only update pod status for pods with spec.nodeName set to itself"
            );
            // Unbound, or unknown: denied. The body does not count.
            let unbound = json!({"metadata": {"name": "p"}, "spec": {}});
            assert!(authorize(&n, &a, Some(&unbound), Some(&pod_on("a"))).is_err());
            assert!(authorize(&n, &a, None, Some(&pod_on("a"))).is_err());
            // Not the pod itself.
            let a = attrs(verb, "", "pods", "", "default", "p");
            assert!(authorize(&n, &a, Some(&pod_on("a")), None).is_err());
        }
        let a = attrs("create", "", "pods", "", "default", "");
        assert!(authorize(&n, &a, None, Some(&pod_on("a"))).is_err());
    }

    #[test]
    fn nodes_may_delete_only_their_pods() {
        let n = node("a");
        let a = attrs("delete", "", "pods", "", "default", "p");
        assert!(authorize(&n, &a, Some(&pod_on("a")), None).is_ok());
        let err = authorize(&n, &a, Some(&pod_on("b")), None).unwrap_err();
        assert_eq!(
            err,
            "node \"a\" can only delete pods with spec.nodeName set to itself"
        );
        assert!(authorize(&n, &a, None, None).is_err());
        let a = attrs("deletecollection", "", "pods", "", "default", "");
        assert!(authorize(&n, &a, None, None).is_err());
    }

    #[test]
    fn nodes_may_create_and_patch_events() {
        let n = node("a");
        for group in ["", "events.k8s.io"] {
            for verb in ["create", "patch"] {
                let a = attrs(verb, group, "events", "", "default", "");
                assert!(authorize(&n, &a, None, None).is_ok(), "{group} {verb}");
            }
            for verb in ["delete", "deletecollection"] {
                let a = attrs(verb, group, "events", "", "default", "e");
                assert!(authorize(&n, &a, None, None).is_err(), "{group} {verb}");
            }
        }
    }

    #[test]
    fn nodes_may_review_tokens_and_report_their_own_usage() {
        let n = node("a");
        let a = attrs(
            "create",
            "authentication.k8s.io",
            "tokenreviews",
            "",
            "",
            "",
        );
        assert!(authorize(&n, &a, None, None).is_ok());
        let a = attrs("update", "plimsoll.io", "nodeusage", "", "", "a");
        assert!(authorize(&n, &a, None, None).is_ok());
        let a = attrs("update", "plimsoll.io", "nodeusage", "", "", "b");
        assert_eq!(
            authorize(&n, &a, None, None).unwrap_err(),
            "node \"a\" is not allowed to report usage for node \"b\""
        );
        assert!(node_may_report_pod(&n, "a").is_ok());
        assert_eq!(
            node_may_report_pod(&n, "b").unwrap_err(),
            "node \"a\" can only report usage of pods with spec.nodeName set to itself"
        );
        assert!(node_may_report_pod(&n, "").is_err());
        assert!(node_may_report_pod(&user("kubelet", &[GROUP_NODES]), "").is_err());
        assert!(node_may_report_pod(&user("bob", &[]), "b").is_ok());
    }

    #[test]
    fn the_agent_client_may_not_use_the_api() {
        let k = user(KUBELET_CLIENT_USER, &[GROUP_AUTHENTICATED]);
        for (verb, group, resource) in [
            ("get", "", "pods"),
            ("list", "", "secrets"),
            ("create", "authentication.k8s.io", "tokenreviews"),
            ("delete", "", "nodes"),
        ] {
            let a = attrs(verb, group, resource, "", "", "x");
            let err = authorize(&k, &a, None, None).unwrap_err();
            assert!(err.contains("credential for node agents"), "{err}");
        }
    }

    #[test]
    fn nodes_may_write_nothing_else() {
        let n = node("a");
        for (verb, group, resource, ns) in [
            ("create", "", "configmaps", "default"),
            ("update", "", "secrets", "default"),
            ("delete", "apps", "deployments", "default"),
            ("create", "", "namespaces", ""),
            ("create", "", "pods", "default"),
            ("create", "", "pods/eviction", "default"),
            ("escalate", "rbac.authorization.k8s.io", "clusterroles", ""),
        ] {
            let a = attrs(verb, group, resource, "", ns, "x");
            let err = authorize(&n, &a, None, None).unwrap_err();
            assert_eq!(
                err,
                "node \"a\" may write only its own Node and Lease, the status of pods bound to \
                 it, their deletion, and events",
                "{verb} {resource}"
            );
        }
    }

    #[test]
    fn nodes_without_a_node_name_may_write_nothing() {
        // In system:nodes but not named system:node:…
        let anon_node = user("kubelet", &[GROUP_NODES]);
        assert_eq!(anon_node.node_name(), Some(""));
        let read = attrs("get", "", "pods", "", "default", "p");
        assert!(authorize(&anon_node, &read, None, None).is_ok());
        let own = json!({"metadata": {"name": ""}});
        for a in [
            attrs("create", "", "nodes", "", "", ""),
            attrs("update", "", "nodes", "status", "", "kubelet"),
            attrs("create", "", "events", "", "default", ""),
            attrs("patch", "", "pods", "status", "default", "p"),
        ] {
            let err = authorize(&anon_node, &a, Some(&pod_on("")), Some(&own)).unwrap_err();
            assert_eq!(
                err,
                "user \"kubelet\" is in group system:nodes but not named system:node:<node name>, \
                 so it may write nothing"
            );
        }
        // Named system:node: but with an empty name.
        let empty = user("system:node:", &[GROUP_NODES]);
        let a = attrs("create", "", "nodes", "", "", "");
        assert!(authorize(&empty, &a, None, Some(&own)).is_err());
        // Named like a node without the group: still restricted.
        let named = user("system:node:a", &[]);
        assert_eq!(named.node_name(), Some("a"));
        let a = attrs("delete", "", "nodes", "", "", "b");
        assert!(authorize(&named, &a, None, None).is_err());
        // No node at all.
        assert_eq!(user("bob", &[]).node_name(), None);
    }
}
