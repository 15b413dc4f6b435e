//! The admin API's route table (Express Gateway 1.16 `lib/rest/routes/{users,apps,credentials,
//! scopes}.js`): paths are matched case-insensitively with one optional trailing slash, and
//! parameters are percent-decoded, as Express routes them.

use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::Answer;
use crate::expression::form_decode;
use crate::store::consumers::ScopeChange;
use crate::store::{ConsumerError, Consumers, CredentialType};

/// Answers `method path?query` with `body` (a JSON value; an empty object when none was
/// sent), or `None` when no route matches (Express's 404).
pub fn dispatch(
    consumers: &Consumers,
    method: &Method,
    path: &str,
    query: &str,
    body: Value,
) -> Option<Answer> {
    let trimmed = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let segments: Vec<String> = trimmed
        .split('/')
        .skip(1)
        .map(|s| form_decode(&s.replace('+', "%2B")).into_owned())
        .collect();
    if segments.iter().any(String::is_empty) {
        return None;
    }
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let fixed: Vec<&str> = lower.iter().map(String::as_str).collect();
    let seg = |i: usize| segments.get(i).map(String::as_str).unwrap_or_default();
    let result = match (method, fixed.as_slice()) {
        // ---- users ----
        (&Method::GET, ["users"]) => {
            let (start, count) = paging(query);
            Ok(page("users", consumers.users(), start, count))
        }
        (&Method::POST, ["users"]) => object(body)
            .and_then(|b| consumers.create_user(b))
            .map(|doc| Answer::Json(StatusCode::OK, Value::Object(doc))),
        (&Method::GET, ["users", _]) => consumers
            .user(seg(1))
            .map(|doc| Answer::Json(StatusCode::OK, Value::Object(doc))),
        (&Method::PUT, ["users", _]) => object(body)
            .and_then(|mut b| {
                // EG drops `username` from an update: a username never changes.
                b.remove("username");
                consumers.update_user(seg(1), b)
            })
            .map(|doc| Answer::Json(StatusCode::OK, Value::Object(doc))),
        (&Method::DELETE, ["users", _]) => consumers
            .delete_user(seg(1))
            .map(|()| Answer::Empty(StatusCode::NO_CONTENT)),
        (&Method::PUT, ["users", _, "status"]) => consumers
            .set_user_status(seg(1), status(&body))
            .map(status_answer),
        // ---- applications ----
        (&Method::GET, ["apps"]) => {
            let (start, count) = paging(query);
            Ok(page("apps", consumers.apps(None), start, count))
        }
        (&Method::POST, ["apps"]) => object(body)
            .and_then(|b| consumers.create_app(b))
            .map(|doc| Answer::Json(StatusCode::OK, Value::Object(doc))),
        (&Method::GET, ["apps", _]) => consumers
            .app(seg(1))
            .map(|doc| Answer::Json(StatusCode::OK, Value::Object(doc))),
        (&Method::PUT, ["apps", _]) => object(body)
            .and_then(|b| consumers.update_app(seg(1), b))
            .map(|doc| Answer::Json(StatusCode::OK, Value::Object(doc))),
        (&Method::DELETE, ["apps", _]) => consumers
            .delete_app(seg(1))
            .map(|()| Answer::Empty(StatusCode::NO_CONTENT)),
        (&Method::PUT, ["apps", _, "status"]) => consumers
            .set_app_status(seg(1), status(&body))
            .map(status_answer),
        // ---- credentials ----
        (&Method::GET, ["credentials"]) => Ok(Answer::Json(
            StatusCode::OK,
            json!({ "credentials": consumers.credentials(None) }),
        )),
        (&Method::POST, ["credentials"]) => create_credential(consumers, body),
        (&Method::GET, ["credentials", _]) => Ok(match consumers.find_consumer(seg(1)) {
            Some(id) => Answer::Json(
                StatusCode::OK,
                json!({ "credentials": consumers.credentials(Some(&id)) }),
            ),
            // EG answers `res.json(new Error(…))`: an empty object.
            None => Answer::Json(StatusCode::NOT_FOUND, json!({})),
        }),
        (&Method::GET, ["credentials", _, _]) => Ok(Answer::Json(
            StatusCode::OK,
            CredentialType::parse(seg(1))
                .and_then(|kind| consumers.credential(kind, seg(2)).ok())
                .map_or(Value::Null, Value::Object),
        )),
        (&Method::PUT, ["credentials", _, _, "status"]) => credential_type(seg(1))
            .and_then(|kind| consumers.set_credential_status(kind, seg(2), status(&body)))
            .map(status_answer),
        (&Method::PUT, ["credentials", _, _, "scopes"]) => {
            let scopes = match body.get("scopes") {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            credential_type(seg(1))
                .and_then(|kind| {
                    consumers.change_credential_scopes(kind, seg(2), ScopeChange::Set(scopes))
                })
                .map(|()| Answer::Empty(StatusCode::NO_CONTENT))
        }
        (&Method::PUT, ["credentials", _, _, "scopes", _]) => credential_type(seg(1))
            .and_then(|kind| {
                consumers.change_credential_scopes(kind, seg(2), ScopeChange::Add(seg(4).into()))
            })
            .map(|()| Answer::Empty(StatusCode::NO_CONTENT)),
        (&Method::DELETE, ["credentials", _, _, "scopes", _]) => credential_type(seg(1))
            .and_then(|kind| {
                consumers.change_credential_scopes(kind, seg(2), ScopeChange::Remove(seg(4).into()))
            })
            .map(|()| Answer::Empty(StatusCode::NO_CONTENT)),
        // micro-gw extensions (EG has no route to remove a credential, nor to check a secret
        // without reading it back): `micro-gw consumers populate|clean` use them.
        (&Method::DELETE, ["credentials", _, _]) => credential_type(seg(1))
            .and_then(|kind| consumers.delete_credential(kind, seg(2)))
            .map(|()| Answer::Empty(StatusCode::NO_CONTENT)),
        (&Method::POST, ["credentials", _, _, "verify"]) => {
            let secret = body.get("secret").and_then(Value::as_str).unwrap_or("");
            credential_type(seg(1))
                .and_then(|kind| consumers.secret_matches(kind, seg(2), secret))
                .map(|matches| Answer::Json(StatusCode::OK, json!({ "matches": matches })))
        }
        // ---- scopes ----
        (&Method::GET, ["scopes"]) => {
            let scopes = consumers.scopes();
            Ok(Answer::Json(
                StatusCode::OK,
                if scopes.is_empty() {
                    json!({ "scopes": null })
                } else {
                    json!({ "scopes": scopes })
                },
            ))
        }
        (&Method::POST, ["scopes"]) => match body.get("scopes") {
            Some(Value::Array(items)) => {
                let names: Vec<String> = items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                consumers
                    .create_scopes(&names)
                    .map(|()| Answer::Empty(StatusCode::CREATED))
            }
            _ => Err(ConsumerError::Invalid("scopes must be a list".into())),
        },
        (&Method::GET, ["scopes", _]) => consumers
            .scope(seg(1))
            .map(|scope| Answer::Json(StatusCode::OK, json!({ "scope": scope }))),
        (&Method::PUT, ["scopes", _]) => consumers
            .create_scopes(&[seg(1).to_string()])
            .map(|()| Answer::Empty(StatusCode::CREATED)),
        (&Method::DELETE, ["scopes", _]) => consumers
            .delete_scope(seg(1))
            .map(|()| Answer::Empty(StatusCode::NO_CONTENT)),
        _ => return None,
    };
    Some(result.unwrap_or_else(Answer::from))
}

/// `POST /credentials` `{consumerId, type, credential}`, checked in EG's order.
fn create_credential(consumers: &Consumers, body: Value) -> Result<Answer, ConsumerError> {
    let consumer = match body.get("consumerId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(ConsumerError::Invalid("invalid username".into())),
    };
    if consumers.find_consumer(&consumer).is_none() {
        return Err(ConsumerError::Unprocessable(format!(
            "No consumer found with id: {consumer}"
        )));
    }
    let kind = match body.get("type") {
        Some(Value::String(t)) if !t.is_empty() => CredentialType::parse(t)
            .ok_or_else(|| ConsumerError::Invalid(format!("Invalid credential type: {t}")))?,
        _ => return Err(ConsumerError::Invalid("Invalid credentials".into())),
    };
    let fields = match body.get("credential") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(fields)) => fields.clone(),
        Some(_) => {
            return Err(ConsumerError::Invalid(
                "credential must be an object".into(),
            ))
        }
    };
    // micro-gw extension: `passwordHash`, a bcrypt hash kept as it is (an EG export, a Kargo
    // consumers file holding hashes), for basic-auth and oauth2.
    if let Some(hash) = fields.get("passwordHash").and_then(Value::as_str) {
        let scopes = match fields.get("scopes") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        return consumers
            .import_hashed_credential(&consumer, kind, hash, scopes)
            .map(|doc| Answer::Json(StatusCode::OK, Value::Object(doc)));
    }
    consumers
        .create_credential(&consumer, kind, fields)
        .map(|doc| Answer::Json(StatusCode::OK, Value::Object(doc)))
}

fn credential_type(name: &str) -> Result<CredentialType, ConsumerError> {
    CredentialType::parse(name)
        .ok_or_else(|| ConsumerError::NotFound(format!("No credential found with id: {name}")))
}

fn object(body: Value) -> Result<Map<String, Value>, ConsumerError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ConsumerError::Invalid("data should be object".into())),
    }
}

/// `{status}`: only JSON `true` activates; anything else deactivates (EG's routes).
fn status(body: &Value) -> bool {
    body.get("status") == Some(&Value::Bool(true))
}

fn status_answer(status: &'static str) -> Answer {
    Answer::Json(StatusCode::OK, json!({ "status": status }))
}

/// `start` (offset, default 0) and `count` (default 100) of a list query.
fn paging(query: &str) -> (usize, usize) {
    let mut start = 0;
    let mut count = 100;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = form_decode(value);
        match key {
            "start" => start = value.trim().parse().unwrap_or(0),
            "count" => count = value.trim().parse().unwrap_or(100),
            _ => {}
        }
    }
    (start, count.max(1))
}

/// `{<name>: [...], nextKey}`: `nextKey` is where the next page starts, 0 after the last.
fn page(name: &str, all: Vec<Map<String, Value>>, start: usize, count: usize) -> Answer {
    let total = all.len();
    let items: Vec<Value> = all
        .into_iter()
        .skip(start)
        .take(count)
        .map(Value::Object)
        .collect();
    let next = start.saturating_add(count);
    let next_key = if next >= total { 0 } else { next };
    let mut out = Map::new();
    out.insert(name.to_string(), Value::Array(items));
    out.insert("nextKey".into(), json!(next_key));
    Answer::Json(StatusCode::OK, Value::Object(out))
}
