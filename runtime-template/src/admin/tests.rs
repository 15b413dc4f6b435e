use http::Method;
use serde_json::json;

use super::routes::dispatch;
use super::Answer;
use crate::store::sqlite::SqliteBackend;
use crate::store::Consumers;
use http::StatusCode;
use serde_json::Value;

/// A consumer store in a temporary directory of its own (removed when the directory is dropped).
fn store() -> (Consumers, tempfile::TempDir) {
    let dir = crate::temp_dir("admin");
    let backend = SqliteBackend::open(&dir.path().join("c.db")).unwrap();
    (Consumers::open(Box::new(backend), 4).unwrap(), dir)
}

fn call(c: &Consumers, method: Method, path: &str, body: Value) -> Answer {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    dispatch(c, &method, path, query, body).expect("a route")
}

fn json_of(answer: Answer) -> (StatusCode, Value) {
    match answer {
        Answer::Json(status, value) => (status, value),
        other => panic!("{other:?}"),
    }
}

#[test]
fn users_apps_credentials_and_scopes_answer_as_express_gateway() {
    let (c, _dir) = store();
    let (status, user) = json_of(call(&c, Method::POST, "/users", json!({"username": "ann"})));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        call(&c, Method::POST, "/users", json!({"username": "ann"})),
        Answer::Text(StatusCode::CONFLICT, "username already exists".into())
    );
    assert_eq!(
        call(&c, Method::GET, "/users/nobody", json!({})),
        Answer::Text(StatusCode::NOT_FOUND, "User not found: nobody".into())
    );
    // Case-insensitive paths, a trailing slash, lookup by username or id.
    let (_, by_name) = json_of(call(&c, Method::GET, "/USERS/ann/", json!({})));
    assert_eq!(by_name["id"], user["id"]);
    let (_, page) = json_of(call(&c, Method::GET, "/users?start=0&count=10", json!({})));
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    assert_eq!(page["nextKey"], json!(0));
    // Status: only `true` activates.
    let (_, s) = json_of(call(
        &c,
        Method::PUT,
        "/users/ann/status",
        json!({"status": "true"}),
    ));
    assert_eq!(s, json!({"status": "Deactivated"}));
    let (_, s) = json_of(call(
        &c,
        Method::PUT,
        "/users/ann/status",
        json!({"status": true}),
    ));
    assert_eq!(s, json!({"status": "Activated"}));
    let (_, app) = json_of(call(
        &c,
        Method::POST,
        "/apps",
        json!({"name": "a1", "userId": "ann"}),
    ));
    assert_eq!(app["userId"], user["id"]);
    assert_eq!(
        call(
            &c,
            Method::POST,
            "/apps",
            json!({"name": "a1", "userId": "bob"})
        ),
        Answer::Text(
            StatusCode::CONFLICT,
            "The specified user does not exist".into()
        )
    );
    // Scopes: 201 empty, 409 on a duplicate, null when none.
    assert_eq!(
        call(&c, Method::POST, "/scopes", json!({"scopes": ["read"]})),
        Answer::Empty(StatusCode::CREATED)
    );
    assert_eq!(
        call(&c, Method::PUT, "/scopes/read", json!({})),
        Answer::Text(
            StatusCode::CONFLICT,
            "One or more scopes already exist.".into()
        )
    );
    let (_, scope) = json_of(call(&c, Method::GET, "/scopes/read", json!({})));
    assert_eq!(scope, json!({"scope": "read"}));
    // Credentials: EG's error order, then a key shown once.
    assert_eq!(
        call(
            &c,
            Method::POST,
            "/credentials",
            json!({"type": "key-auth"})
        ),
        Answer::Text(StatusCode::INTERNAL_SERVER_ERROR, "invalid username".into())
    );
    assert_eq!(
        call(
            &c,
            Method::POST,
            "/credentials",
            json!({"consumerId": "x", "type": "key-auth"})
        ),
        Answer::Text(
            StatusCode::UNPROCESSABLE_ENTITY,
            "No consumer found with id: x".into()
        )
    );
    assert_eq!(
        call(
            &c,
            Method::POST,
            "/credentials",
            json!({"consumerId": "a1", "type": "nope"})
        ),
        Answer::Text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Invalid credential type: nope".into()
        )
    );
    let (_, key) = json_of(call(
        &c,
        Method::POST,
        "/credentials",
        json!({"consumerId": "a1", "type": "key-auth", "credential": {"scopes": ["read"]}}),
    ));
    assert_eq!(key["consumerId"], app["id"]);
    assert!(key["keySecret"].as_str().is_some());
    let path = format!("/credentials/key-auth/{}", key["keyId"].as_str().unwrap());
    let (_, shown) = json_of(call(&c, Method::GET, &path, json!({})));
    assert_eq!(shown["scopes"], json!(["read"]));
    assert!(shown.get("keySecret").is_none());
    let (_, missing) = json_of(call(
        &c,
        Method::GET,
        "/credentials/key-auth/none",
        json!({}),
    ));
    assert_eq!(missing, Value::Null);
    let (status, unknown) = json_of(call(&c, Method::GET, "/credentials/nobody", json!({})));
    assert_eq!((status, unknown), (StatusCode::NOT_FOUND, json!({})));
    let (_, listed) = json_of(call(&c, Method::GET, "/credentials/a1", json!({})));
    assert_eq!(listed["credentials"].as_array().unwrap().len(), 1);
    assert_eq!(
        call(
            &c,
            Method::DELETE,
            &format!("{path}/scopes/read"),
            json!({})
        ),
        Answer::Empty(StatusCode::NO_CONTENT)
    );
    let (_, s) = json_of(call(
        &c,
        Method::PUT,
        &format!("{path}/status"),
        json!({"status": false}),
    ));
    assert_eq!(s, json!({"status": "Deactivated"}));
    // Deleting the user: 204, and its app is gone.
    assert_eq!(
        call(&c, Method::DELETE, "/users/ann", json!({})),
        Answer::Empty(StatusCode::NO_CONTENT)
    );
    assert_eq!(
        call(&c, Method::GET, "/apps/a1", json!({})),
        Answer::Text(StatusCode::NOT_FOUND, "Application not found: a1".into())
    );
    // Unknown routes are Express's 404.
    assert!(dispatch(&c, &Method::PATCH, "/users/x", "", json!({})).is_none());
    assert!(dispatch(&c, &Method::GET, "/users//x", "", json!({})).is_none());
}

/// micro-gw's additions for `micro-gw consumers`: remove a credential, check a secret without
/// reading it, and import a bcrypt hash as it is.
#[test]
fn credential_removal_secret_check_and_hash_import() {
    let (c, _dir) = store();
    json_of(call(&c, Method::POST, "/users", json!({"username": "ann"})));
    let (status, _) = json_of(call(
        &c,
        Method::POST,
        "/credentials",
        json!({"consumerId": "ann", "type": "key-auth", "credential": {"keyId": "k", "keySecret": "s"}}),
    ));
    assert_eq!(status, StatusCode::OK);
    let verify = |secret: &str| {
        json_of(call(
            &c,
            Method::POST,
            "/credentials/key-auth/k/verify",
            json!({ "secret": secret }),
        ))
        .1
    };
    assert_eq!(verify("s"), json!({"matches": true}));
    assert_eq!(verify("t"), json!({"matches": false}));
    assert_eq!(
        call(&c, Method::DELETE, "/credentials/key-auth/k", json!({})),
        Answer::Empty(StatusCode::NO_CONTENT)
    );
    assert_eq!(
        call(&c, Method::DELETE, "/credentials/key-auth/k", json!({})),
        Answer::Text(StatusCode::NOT_FOUND, "Credential not found: k".into())
    );
    let hash = bcrypt::hash("pw", 4).unwrap();
    let (status, created) = json_of(call(
        &c,
        Method::POST,
        "/credentials",
        json!({"consumerId": "ann", "type": "basic-auth", "credential": {"passwordHash": hash}}),
    ));
    assert_eq!(status, StatusCode::OK);
    assert!(created.get("passwordHash").is_none() && created.get("password").is_none());
    let id = created["id"].as_str().unwrap().to_string();
    let basic = c.basic_credential("ann").unwrap();
    assert_eq!(&*basic.hash, hash.as_str());
    let path = format!("/credentials/basic-auth/{id}/verify");
    for (secret, matches) in [("pw", true), ("nope", false), (hash.as_str(), true)] {
        let (_, reply) = json_of(call(&c, Method::POST, &path, json!({ "secret": secret })));
        assert_eq!(reply, json!({ "matches": matches }), "{secret}");
    }
}
