//! `micro-gw consumers populate <project> <file>` and `micro-gw consumers clean <project>`.
//!
//! Populate **syncs** the store with a Kargo consumers file ([`crate::consumers_file`]): it
//! plans the changes that make the store equal the file ([`plan`]: creations, updates,
//! activations, and removals or, with `--deactivate`, deactivations), prints one line per
//! change and a summary, and applies them through the admin API of the running gateway, or,
//! when it is stopped, on its store file. Clean removes every user, application, credential
//! and scope.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::admin_client::{self, AdminArgs, Target};
use crate::consumers_file::{self, ConsumersFile, CredentialSpec};

/// A JSON object from the admin API.
pub type Doc = Map<String, Value>;

/// What the store holds now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    /// Scope names.
    pub scopes: Vec<String>,
    /// Users.
    pub users: Vec<Doc>,
    /// Applications.
    pub apps: Vec<Doc>,
    /// Credentials (with `id`, `type`, `consumerId`, `isActive`, `scopes`).
    pub credentials: Vec<Doc>,
}

/// What to do with what the file does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// Remove it (the default: the store equals the file).
    Remove,
    /// Deactivate it (reversible; scopes are kept).
    Deactivate,
}

/// One change of the sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Create a scope.
    CreateScope(String),
    /// Create a user.
    CreateUser {
        /// Its username.
        username: String,
    },
    /// Activate a user (by id).
    ActivateUser {
        /// Username.
        username: String,
        /// Id.
        id: String,
    },
    /// Create an application.
    CreateApp {
        /// Owner.
        username: String,
        /// Name.
        name: String,
        /// Scopes.
        scopes: Vec<String>,
    },
    /// Set an application's scopes.
    UpdateAppScopes {
        /// `user/app`.
        label: String,
        /// App id.
        id: String,
        /// Old scopes.
        from: Vec<String>,
        /// New scopes.
        to: Vec<String>,
    },
    /// Activate an application.
    ActivateApp {
        /// `user/app`.
        label: String,
        /// App id.
        id: String,
    },
    /// Create a credential for `username/app`.
    CreateCredential {
        /// Owner.
        username: String,
        /// Application name.
        app: String,
        /// What the file says.
        spec: CredentialSpec,
        /// Its scopes (the app's).
        scopes: Vec<String>,
        /// Why (`new`, `secret changed`, …).
        reason: String,
    },
    /// Replace a credential's scopes.
    SetCredentialScopes {
        /// Type.
        kind: String,
        /// Id.
        id: String,
        /// `user/app`.
        label: String,
        /// Old.
        from: Vec<String>,
        /// New.
        to: Vec<String>,
    },
    /// Activate or deactivate a credential.
    CredentialStatus {
        /// Type.
        kind: String,
        /// Id.
        id: String,
        /// Owner label.
        label: String,
        /// Activate?
        active: bool,
    },
    /// Remove a credential.
    RemoveCredential {
        /// Type.
        kind: String,
        /// Id.
        id: String,
        /// Owner label.
        label: String,
        /// Why.
        reason: String,
    },
    /// Remove or deactivate an application.
    ExtraApp {
        /// `user/app`.
        label: String,
        /// App id.
        id: String,
        /// Remove or deactivate.
        how: Extra,
    },
    /// Remove or deactivate a user.
    ExtraUser {
        /// Username.
        username: String,
        /// Id.
        id: String,
        /// Remove or deactivate.
        how: Extra,
    },
    /// Remove a scope.
    RemoveScope(String),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |l: &[String]| {
            if l.is_empty() {
                "(none)".to_string()
            } else {
                l.join(",")
            }
        };
        match self {
            Change::CreateScope(s) => write!(f, "create scope {s}"),
            Change::CreateUser { username } => write!(f, "create user {username}"),
            Change::ActivateUser { username, .. } => write!(f, "activate user {username}"),
            Change::CreateApp {
                username,
                name,
                scopes,
            } => write!(f, "create app {username}/{name} (scopes {})", list(scopes)),
            Change::UpdateAppScopes {
                label, from, to, ..
            } => write!(
                f,
                "update app {label}: scopes {} -> {}",
                list(from),
                list(to)
            ),
            Change::ActivateApp { label, .. } => write!(f, "activate app {label}"),
            Change::CreateCredential {
                username,
                app,
                spec,
                reason,
                ..
            } => write!(
                f,
                "create credential {} {}for {username}/{app} ({reason})",
                spec.kind,
                spec.key_id
                    .as_deref()
                    .map(|k| format!("{k} "))
                    .unwrap_or_default()
            ),
            Change::SetCredentialScopes {
                kind,
                id,
                label,
                from,
                to,
            } => write!(
                f,
                "update credential {kind} {id} of {label}: scopes {} -> {}",
                list(from),
                list(to)
            ),
            Change::CredentialStatus {
                kind,
                id,
                label,
                active,
            } => write!(
                f,
                "{} credential {kind} {id} of {label}",
                if *active { "activate" } else { "deactivate" }
            ),
            Change::RemoveCredential {
                kind,
                id,
                label,
                reason,
            } => write!(f, "remove credential {kind} {id} of {label} ({reason})"),
            Change::ExtraApp { label, how, .. } => match how {
                Extra::Remove => write!(f, "remove app {label} (not in the file)"),
                Extra::Deactivate => write!(f, "deactivate app {label} (not in the file)"),
            },
            Change::ExtraUser { username, how, .. } => match how {
                Extra::Remove => write!(
                    f,
                    "remove user {username} (not in the file; its apps and credentials too)"
                ),
                Extra::Deactivate => write!(f, "deactivate user {username} (not in the file)"),
            },
            Change::RemoveScope(s) => write!(f, "remove scope {s} (not in the file)"),
        }
    }
}

impl Change {
    /// `created`, `updated`, `deactivated` or `removed`, for the summary.
    fn class(&self) -> &'static str {
        match self {
            Change::CreateScope(_)
            | Change::CreateUser { .. }
            | Change::CreateApp { .. }
            | Change::CreateCredential { .. } => "created",
            Change::RemoveCredential { .. } | Change::RemoveScope(_) => "removed",
            Change::ExtraApp { how, .. } | Change::ExtraUser { how, .. } => match how {
                Extra::Remove => "removed",
                Extra::Deactivate => "deactivated",
            },
            Change::CredentialStatus { active: false, .. } => "deactivated",
            _ => "updated",
        }
    }
}

fn text<'a>(doc: &'a Doc, key: &str) -> &'a str {
    doc.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn active(doc: &Doc) -> bool {
    match doc.get("isActive") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => true,
    }
}

/// A scope list as stored: an array, a comma-joined string (EG's app `scopes`), a JSON string.
fn scope_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) if s.trim_start().starts_with('[') => {
            scope_list(serde_json::from_str::<Value>(s).ok().as_ref())
        }
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    a == b
}

/// Plans the changes that make `current` equal `file`. `secret_matches(type, id, secret)`
/// tells whether a stored credential holds the file's secret (the store never shows it).
pub fn plan(
    file: &ConsumersFile,
    current: &Current,
    extra: Extra,
    secret_matches: &mut dyn FnMut(&str, &str, &str) -> anyhow::Result<bool>,
) -> anyhow::Result<Vec<Change>> {
    // The file's own consistency first: scopes used must be declared, key ids unique.
    let mut key_ids: HashMap<(String, String), String> = HashMap::new();
    for user in &file.users {
        for app in &user.apps {
            for scope in &app.scopes {
                if !file.scopes.contains(scope) {
                    bail!(
                        "{}: app {}/{} uses the scope {scope:?}, which the file's scopes do not list",
                        app.at,
                        user.username,
                        app.name
                    );
                }
            }
            if let Some(CredentialSpec {
                kind,
                key_id: Some(key_id),
                at,
                ..
            }) = &app.credential
            {
                let owner = format!("{}/{}", user.username, app.name);
                if let Some(first) = key_ids.insert((kind.clone(), key_id.clone()), owner.clone()) {
                    bail!("{at}: {kind} keyId {key_id:?} of {owner} is already the keyId of {first}: key ids are unique");
                }
            }
        }
    }
    let mut changes = Vec::new();
    for scope in &file.scopes {
        if !current.scopes.contains(scope) {
            changes.push(Change::CreateScope(scope.clone()));
        }
    }
    let mut removals = Vec::new();
    let mut removed_credentials: Vec<(String, String)> = Vec::new();
    for user in &file.users {
        let existing = current
            .users
            .iter()
            .find(|u| text(u, "username") == user.username);
        let Some(existing) = existing else {
            changes.push(Change::CreateUser {
                username: user.username.clone(),
            });
            for app in &user.apps {
                push_new_app(&mut changes, &user.username, app, "new");
            }
            continue;
        };
        let user_id = text(existing, "id").to_string();
        if !active(existing) {
            changes.push(Change::ActivateUser {
                username: user.username.clone(),
                id: user_id.clone(),
            });
        }
        // Credentials of the user itself: the file never gives any.
        for credential in current
            .credentials
            .iter()
            .filter(|c| text(c, "consumerId") == user_id)
        {
            push_extra_credential(
                &mut removals,
                credential,
                &user.username,
                extra,
                "not in the file",
            );
        }
        let apps: Vec<&Doc> = current
            .apps
            .iter()
            .filter(|a| text(a, "userId") == user_id)
            .collect();
        for app in &user.apps {
            let Some(existing_app) = apps.iter().find(|a| text(a, "name") == app.name) else {
                push_new_app(&mut changes, &user.username, app, "new");
                continue;
            };
            let label = format!("{}/{}", user.username, app.name);
            let app_id = text(existing_app, "id").to_string();
            if !active(existing_app) {
                changes.push(Change::ActivateApp {
                    label: label.clone(),
                    id: app_id.clone(),
                });
            }
            let stored_scopes = scope_list(existing_app.get("scopes"));
            if !same_set(&stored_scopes, &app.scopes) {
                changes.push(Change::UpdateAppScopes {
                    label: label.clone(),
                    id: app_id.clone(),
                    from: stored_scopes,
                    to: app.scopes.clone(),
                });
            }
            let owned: Vec<&Doc> = current
                .credentials
                .iter()
                .filter(|c| text(c, "consumerId") == app_id)
                .collect();
            let mut kept: Option<&Doc> = None;
            if let Some(spec) = &app.credential {
                let candidate = owned.iter().copied().find(|c| {
                    text(c, "type") == spec.kind
                        && spec.key_id.as_deref().is_none_or(|k| text(c, "id") == k)
                });
                let given_secret = spec.key_secret.as_deref().or(spec.password.as_deref());
                let secret_ok = match (candidate, given_secret) {
                    (Some(c), Some(secret)) => secret_matches(&spec.kind, text(c, "id"), secret)?,
                    _ => true,
                };
                match candidate {
                    Some(c) if secret_ok => {
                        kept = Some(c);
                        if !active(c) {
                            changes.push(Change::CredentialStatus {
                                kind: spec.kind.clone(),
                                id: text(c, "id").into(),
                                label: label.clone(),
                                active: true,
                            });
                        }
                        let stored = scope_list(c.get("scopes"));
                        if !same_set(&stored, &app.scopes) {
                            changes.push(Change::SetCredentialScopes {
                                kind: spec.kind.clone(),
                                id: text(c, "id").into(),
                                label: label.clone(),
                                from: stored,
                                to: app.scopes.clone(),
                            });
                        }
                    }
                    Some(c) => {
                        changes.push(Change::RemoveCredential {
                            kind: spec.kind.clone(),
                            id: text(c, "id").into(),
                            label: label.clone(),
                            reason: "secret changed".into(),
                        });
                        removed_credentials.push((spec.kind.clone(), text(c, "id").into()));
                        kept = Some(c);
                        changes.push(new_credential(&user.username, app, spec, "secret changed"));
                    }
                    None => {
                        // A key id the file gives may belong to another consumer now: it moves.
                        if let Some(key_id) = &spec.key_id {
                            if let Some(other) = current
                                .credentials
                                .iter()
                                .find(|c| text(c, "type") == spec.kind && text(c, "id") == key_id)
                            {
                                changes.push(Change::RemoveCredential {
                                    kind: spec.kind.clone(),
                                    id: key_id.clone(),
                                    label: owner_label(current, text(other, "consumerId")),
                                    reason: format!("its keyId moves to {label}"),
                                });
                                removed_credentials.push((spec.kind.clone(), key_id.clone()));
                            }
                        }
                        // basic-auth and oauth2: one per consumer, so an old one goes first.
                        if !(spec.kind == "key-auth" || spec.kind == "jwt") {
                            if let Some(old) = owned.iter().find(|c| text(c, "type") == spec.kind) {
                                changes.push(Change::RemoveCredential {
                                    kind: spec.kind.clone(),
                                    id: text(old, "id").into(),
                                    label: label.clone(),
                                    reason: "replaced".into(),
                                });
                                removed_credentials
                                    .push((spec.kind.clone(), text(old, "id").into()));
                            }
                        }
                        changes.push(new_credential(&user.username, app, spec, "new"));
                    }
                }
            }
            for credential in owned {
                let key = (
                    text(credential, "type").to_string(),
                    text(credential, "id").to_string(),
                );
                if kept.is_some_and(|k| std::ptr::eq(k, credential))
                    || removed_credentials.contains(&key)
                {
                    continue;
                }
                push_extra_credential(&mut removals, credential, &label, extra, "not in the file");
            }
        }
        for app in apps {
            if !user.apps.iter().any(|a| a.name == text(app, "name")) {
                let label = format!("{}/{}", user.username, text(app, "name"));
                if extra == Extra::Deactivate && !active(app) {
                    continue;
                }
                removals.push(Change::ExtraApp {
                    label,
                    id: text(app, "id").into(),
                    how: extra,
                });
            }
        }
    }
    for user in &current.users {
        let username = text(user, "username");
        if !file.users.iter().any(|u| u.username == username) {
            if extra == Extra::Deactivate && !active(user) {
                continue;
            }
            removals.push(Change::ExtraUser {
                username: username.into(),
                id: text(user, "id").into(),
                how: extra,
            });
        }
    }
    // Credentials whose consumer is gone (none should exist; clean them up too).
    for credential in &current.credentials {
        let consumer = text(credential, "consumerId");
        let known = current.users.iter().any(|u| text(u, "id") == consumer)
            || current.apps.iter().any(|a| text(a, "id") == consumer);
        if !known {
            push_extra_credential(
                &mut removals,
                credential,
                "(no consumer)",
                Extra::Remove,
                "its consumer is gone",
            );
        }
    }
    changes.extend(removals);
    if extra == Extra::Remove {
        for scope in &current.scopes {
            if !file.scopes.contains(scope) {
                changes.push(Change::RemoveScope(scope.clone()));
            }
        }
    }
    Ok(changes)
}

fn owner_label(current: &Current, consumer: &str) -> String {
    if let Some(app) = current.apps.iter().find(|a| text(a, "id") == consumer) {
        let user = current
            .users
            .iter()
            .find(|u| text(u, "id") == text(app, "userId"))
            .map_or("?", |u| text(u, "username"));
        return format!("{user}/{}", text(app, "name"));
    }
    current
        .users
        .iter()
        .find(|u| text(u, "id") == consumer)
        .map_or_else(|| consumer.to_string(), |u| text(u, "username").to_string())
}

fn push_extra_credential(
    out: &mut Vec<Change>,
    credential: &Doc,
    label: &str,
    extra: Extra,
    reason: &str,
) {
    let kind = text(credential, "type").to_string();
    let id = text(credential, "id").to_string();
    match extra {
        Extra::Remove => out.push(Change::RemoveCredential {
            kind,
            id,
            label: label.into(),
            reason: reason.into(),
        }),
        Extra::Deactivate if active(credential) => out.push(Change::CredentialStatus {
            kind,
            id,
            label: label.into(),
            active: false,
        }),
        Extra::Deactivate => {}
    }
}

fn new_credential(
    username: &str,
    app: &consumers_file::AppSpec,
    spec: &CredentialSpec,
    reason: &str,
) -> Change {
    Change::CreateCredential {
        username: username.into(),
        app: app.name.clone(),
        spec: spec.clone(),
        scopes: app.scopes.clone(),
        reason: reason.into(),
    }
}

fn push_new_app(
    changes: &mut Vec<Change>,
    username: &str,
    app: &consumers_file::AppSpec,
    reason: &str,
) {
    changes.push(Change::CreateApp {
        username: username.into(),
        name: app.name.clone(),
        scopes: app.scopes.clone(),
    });
    if let Some(spec) = &app.credential {
        changes.push(new_credential(username, app, spec, reason));
    }
}

/// Percent-encodes one path segment.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads everything the store holds.
pub fn read_current(target: &Target) -> anyhow::Result<Current> {
    let scopes = scope_list(
        target
            .expect(Method::GET, "/scopes", None)?
            .body
            .get("scopes"),
    );
    let users = all_pages(target, "users")?;
    let apps = all_pages(target, "apps")?;
    let credentials = match target.expect(Method::GET, "/credentials", None)?.body {
        Value::Object(mut o) => match o.remove("credentials") {
            Some(Value::Array(items)) => items
                .into_iter()
                .filter_map(|v| match v {
                    Value::Object(d) => Some(d),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    Ok(Current {
        scopes,
        users,
        apps,
        credentials,
    })
}

/// Every item of a paged list (`{<name>: [...], nextKey}`).
pub fn all_pages(target: &Target, name: &str) -> anyhow::Result<Vec<Doc>> {
    let mut out = Vec::new();
    let mut start = 0u64;
    loop {
        let reply = target.expect(
            Method::GET,
            &format!("/{name}?start={start}&count=1000"),
            None,
        )?;
        if let Some(Value::Array(items)) = reply.body.get(name) {
            out.extend(items.iter().filter_map(|v| v.as_object().cloned()));
        }
        match reply.body.get("nextKey").and_then(Value::as_u64) {
            Some(next) if next > start => start = next,
            _ => return Ok(out),
        }
    }
}

/// Applies `changes` in order, printing each; returns what a run created that must be shown
/// once (generated passwords).
pub fn apply(target: &Target, current: &Current, changes: &[Change]) -> anyhow::Result<()> {
    let mut user_ids: HashMap<String, String> = current
        .users
        .iter()
        .map(|u| (text(u, "username").to_string(), text(u, "id").to_string()))
        .collect();
    let mut app_ids: HashMap<(String, String), String> = HashMap::new();
    for app in &current.apps {
        if let Some((username, _)) = user_ids
            .iter()
            .find(|(_, id)| id.as_str() == text(app, "userId"))
        {
            app_ids.insert(
                (username.clone(), text(app, "name").to_string()),
                text(app, "id").to_string(),
            );
        }
    }
    for change in changes {
        println!("{change}");
        match change {
            Change::CreateScope(s) => {
                target.expect(Method::PUT, &format!("/scopes/{}", segment(s)), None)?;
            }
            Change::CreateUser { username } => {
                let reply = target.expect(
                    Method::POST,
                    "/users",
                    Some(json!({ "username": username })),
                )?;
                user_ids.insert(username.clone(), text_of(&reply.body, "id")?);
            }
            Change::ActivateUser { id, .. } => {
                status(target, &format!("/users/{}", segment(id)), true)?;
            }
            Change::CreateApp {
                username,
                name,
                scopes,
            } => {
                let user = user_ids
                    .get(username)
                    .cloned()
                    .unwrap_or_else(|| username.clone());
                let mut body = json!({ "userId": user, "name": name });
                if !scopes.is_empty() {
                    body["scopes"] = Value::String(scopes.join(","));
                }
                let reply = target.expect(Method::POST, "/apps", Some(body))?;
                app_ids.insert(
                    (username.clone(), name.clone()),
                    text_of(&reply.body, "id")?,
                );
            }
            Change::UpdateAppScopes { id, to, .. } => {
                target.expect(
                    Method::PUT,
                    &format!("/apps/{}", segment(id)),
                    Some(json!({ "scopes": to.join(",") })),
                )?;
            }
            Change::ActivateApp { id, .. } => {
                status(target, &format!("/apps/{}", segment(id)), true)?;
            }
            Change::CreateCredential {
                username,
                app,
                spec,
                scopes,
                ..
            } => {
                let consumer = app_ids
                    .get(&(username.clone(), app.clone()))
                    .cloned()
                    .with_context(|| format!("app {username}/{app} was not created"))?;
                let mut credential = Map::new();
                credential.insert("scopes".into(), json!(scopes));
                if let Some(k) = &spec.key_id {
                    credential.insert("keyId".into(), json!(k));
                }
                if let Some(s) = &spec.key_secret {
                    credential.insert("keySecret".into(), json!(s));
                }
                let field = if spec.kind == "oauth2" {
                    "secret"
                } else {
                    "password"
                };
                match &spec.password {
                    Some(p) if p.starts_with("$2") && p.len() == 60 => {
                        credential.insert("passwordHash".into(), json!(p));
                    }
                    Some(p) => {
                        credential.insert(field.into(), json!(p));
                    }
                    None => {}
                }
                let reply = target.expect(
                    Method::POST,
                    "/credentials",
                    Some(json!({ "consumerId": consumer, "type": spec.kind, "credential": credential })),
                )?;
                let keyed = spec.kind == "key-auth" || spec.kind == "jwt";
                if keyed && (spec.key_id.is_none() || spec.key_secret.is_none()) {
                    println!(
                        "  generated keyId {} keySecret {} (shown once)",
                        text_of(&reply.body, "keyId").unwrap_or_default(),
                        text_of(&reply.body, "keySecret").unwrap_or_default()
                    );
                } else if !keyed && spec.password.is_none() {
                    println!(
                        "  generated {field} {} (shown once)",
                        text_of(&reply.body, field).unwrap_or_default()
                    );
                }
            }
            Change::SetCredentialScopes { kind, id, to, .. } => {
                target.expect(
                    Method::PUT,
                    &format!("/credentials/{}/{}/scopes", segment(kind), segment(id)),
                    Some(json!({ "scopes": to })),
                )?;
            }
            Change::CredentialStatus {
                kind, id, active, ..
            } => {
                status(
                    target,
                    &format!("/credentials/{}/{}", segment(kind), segment(id)),
                    *active,
                )?;
            }
            Change::RemoveCredential { kind, id, .. } => {
                target.expect(
                    Method::DELETE,
                    &format!("/credentials/{}/{}", segment(kind), segment(id)),
                    None,
                )?;
            }
            Change::ExtraApp { id, how, .. } => match how {
                Extra::Remove => {
                    target.expect(Method::DELETE, &format!("/apps/{}", segment(id)), None)?;
                }
                Extra::Deactivate => status(target, &format!("/apps/{}", segment(id)), false)?,
            },
            Change::ExtraUser { id, how, .. } => match how {
                Extra::Remove => {
                    target.expect(Method::DELETE, &format!("/users/{}", segment(id)), None)?;
                }
                Extra::Deactivate => status(target, &format!("/users/{}", segment(id)), false)?,
            },
            Change::RemoveScope(s) => {
                target.expect(Method::DELETE, &format!("/scopes/{}", segment(s)), None)?;
            }
        }
    }
    Ok(())
}

fn text_of(body: &Value, key: &str) -> anyhow::Result<String> {
    body.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("the admin API's answer has no {key}"))
}

fn status(target: &Target, path: &str, active: bool) -> anyhow::Result<()> {
    target.expect(
        Method::PUT,
        &format!("{path}/status"),
        Some(json!({ "status": active })),
    )?;
    Ok(())
}

/// The running gateway's admin API, or the stopped gateway's store file.
pub fn target_for(project: &Path, admin: &AdminArgs) -> anyhow::Result<Target> {
    let settings = admin_client::project_admin(project)?;
    let url = admin
        .admin_url
        .clone()
        .or_else(|| {
            std::env::var(admin_client::ADMIN_URL_ENV)
                .ok()
                .filter(|u| !u.is_empty())
        })
        .unwrap_or_else(|| settings.url.clone());
    let token = admin
        .admin_token
        .clone()
        .or_else(|| {
            std::env::var(admin_client::ADMIN_TOKEN_ENV)
                .ok()
                .filter(|t| !t.is_empty())
        })
        .or(settings.token.clone());
    let remote = Target::remote(&url, token)?;
    if !admin.offline && admin_client::is_running(&remote) {
        eprintln!("micro-gw: the gateway is running: through its admin API at {url}");
        return Ok(remote);
    }
    if admin.offline && admin_client::is_running(&remote) {
        bail!("a gateway is running at {url}: its store file is in use; leave out --offline to go through its admin API");
    }
    let store = settings.offline_store(project)?;
    eprintln!(
        "micro-gw: no gateway answers at {url}: working on the store file {}",
        store.display()
    );
    Target::local(store, settings.bcrypt_cost)
}

/// `micro-gw consumers populate`.
pub fn populate(
    project: &Path,
    file: &Path,
    extra: Extra,
    dry_run: bool,
    admin: &AdminArgs,
) -> anyhow::Result<()> {
    let wanted = consumers_file::read(file)?;
    for warning in &wanted.warnings {
        eprintln!("micro-gw: warning: {warning}");
    }
    let target = target_for(project, admin)?;
    let current = read_current(&target)?;
    let mut verify = |kind: &str, id: &str, secret: &str| -> anyhow::Result<bool> {
        let reply = target.expect(
            Method::POST,
            &format!("/credentials/{}/{}/verify", segment(kind), segment(id)),
            Some(json!({ "secret": secret })),
        )?;
        Ok(reply.body.get("matches") == Some(&Value::Bool(true)))
    };
    let changes = plan(&wanted, &current, extra, &mut verify)?;
    if dry_run {
        for change in &changes {
            println!("{change}");
        }
    } else {
        apply(&target, &current, &changes)?;
    }
    println!("{}", summary(&changes, dry_run));
    Ok(())
}

fn summary(changes: &[Change], dry_run: bool) -> String {
    if changes.is_empty() {
        return "populate: the store already equals the file (no change)".into();
    }
    let count = |class: &str| changes.iter().filter(|c| c.class() == class).count();
    format!(
        "populate{}: {} created, {} updated, {} deactivated, {} removed",
        if dry_run {
            " (dry run, nothing changed)"
        } else {
            ""
        },
        count("created"),
        count("updated"),
        count("deactivated"),
        count("removed")
    )
}

/// `micro-gw consumers clean`: every user (with its apps and credentials), any credential
/// left, every scope.
pub fn clean(project: &Path, admin: &AdminArgs) -> anyhow::Result<()> {
    let target = target_for(project, admin)?;
    let current = read_current(&target)?;
    for user in &current.users {
        println!("remove user {}", text(user, "username"));
        target.expect(
            Method::DELETE,
            &format!("/users/{}", segment(text(user, "id"))),
            None,
        )?;
    }
    // Apps of users removed above went with them; anything left is removed on its own.
    let left = read_current(&target)?;
    for app in &left.apps {
        println!("remove app {}", text(app, "name"));
        target.expect(
            Method::DELETE,
            &format!("/apps/{}", segment(text(app, "id"))),
            None,
        )?;
    }
    for credential in &read_current(&target)?.credentials {
        println!(
            "remove credential {} {}",
            text(credential, "type"),
            text(credential, "id")
        );
        target.expect(
            Method::DELETE,
            &format!(
                "/credentials/{}/{}",
                segment(text(credential, "type")),
                segment(text(credential, "id"))
            ),
            None,
        )?;
    }
    for scope in &current.scopes {
        println!("remove scope {scope}");
        target.expect(Method::DELETE, &format!("/scopes/{}", segment(scope)), None)?;
    }
    let after = read_current(&target)?;
    if !(after.users.is_empty()
        && after.apps.is_empty()
        && after.credentials.is_empty()
        && after.scopes.is_empty())
    {
        bail!("clean: the store is not empty after removing everything (changed meanwhile?)");
    }
    println!(
        "clean: removed {} user(s), {} application(s), {} credential(s), {} scope(s)",
        current.users.len(),
        current.apps.len(),
        current.credentials.len(),
        current.scopes.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests;
