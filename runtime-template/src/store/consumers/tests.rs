use super::*;
use crate::store::backend::{Kind, Write};
use crate::store::sqlite::SqliteBackend;
use serde_json::json;

/// A temporary directory for a test's consumer store, removed when dropped.
fn fixture() -> tempfile::TempDir {
    crate::temp_dir("consumers")
}

fn open(f: &tempfile::TempDir) -> Consumers {
    let backend = SqliteBackend::open(&f.path().join("consumers.db")).unwrap();
    Consumers::open(Box::new(backend), 4).unwrap()
}

fn doc(v: Value) -> Doc {
    v.as_object().unwrap().clone()
}

#[test]
fn users_apps_and_key_auth_credentials_survive_a_restart() {
    let f = fixture();
    let store = open(&f);
    let user = store
        .create_user(doc(
            json!({"username": "ann", "firstname": "Ann", "extra": 1}),
        ))
        .unwrap();
    assert_eq!(user["isActive"], json!(true));
    assert_eq!(user["extra"], json!(1));
    assert!(user["createdAt"]
        .as_str()
        .unwrap()
        .ends_with("(Coordinated Universal Time)"));
    assert_eq!(
        store.create_user(doc(json!({"username": "ann"}))),
        Err(ConsumerError::Conflict("username already exists".into()))
    );
    let app = store
        .create_app(doc(
            json!({"name": "viewer", "userId": "ann", "scopes": ["wms"]}),
        ))
        .unwrap();
    assert_eq!(app["userId"], user["id"]);
    store.create_scopes(&["wms".into()]).unwrap();
    let key = store
        .create_credential(
            "viewer",
            CredentialType::KeyAuth,
            doc(json!({"scopes": ["wms"]})),
        )
        .unwrap();
    let key_id = key["keyId"].as_str().unwrap().to_string();
    let secret = key["keySecret"].as_str().unwrap().to_string();
    // The secret is shown once; the stored document keeps only its digest, never shown.
    let shown = store.credential(CredentialType::KeyAuth, &key_id).unwrap();
    assert!(shown.get("keySecret").is_none() && shown.get("keySecretHmac").is_none());
    drop(store);

    let store = open(&f);
    assert_eq!(store.user("ann").unwrap()["id"], user["id"]);
    assert_eq!(store.app("viewer").unwrap()["id"], app["id"]);
    let wms = vec!["wms".to_string()];
    match store.key_auth(&key_id, &secret, &wms) {
        KeyAuthOutcome::Accepted(c) => {
            assert_eq!(&*c.id, app["id"].as_str().unwrap());
            assert_eq!(c.user["type"], json!("application"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.key_auth(&key_id, "wrong", &wms),
        KeyAuthOutcome::Unauthorized
    ));
    assert!(matches!(
        store.key_auth(&key_id, &secret, &["wfs".to_string()]),
        KeyAuthOutcome::Forbidden
    ));
    // Deactivating the credential, then the owner, refuses the key.
    assert_eq!(
        store
            .set_credential_status(CredentialType::KeyAuth, &key_id, false)
            .unwrap(),
        "Deactivated"
    );
    assert!(matches!(
        store.key_auth(&key_id, &secret, &[]),
        KeyAuthOutcome::Unauthorized
    ));
    store
        .set_credential_status(CredentialType::KeyAuth, &key_id, true)
        .unwrap();
    assert_eq!(
        store.set_app_status("viewer", false).unwrap(),
        "Deactivated"
    );
    assert_eq!(store.set_app_status("viewer", false).unwrap(), "Inactive");
    assert!(matches!(
        store.key_auth(&key_id, &secret, &[]),
        KeyAuthOutcome::Unauthorized
    ));
    // Deactivating the user deactivated its app; a generated basic-auth password is shown once.
    store.set_app_status("viewer", true).unwrap();
    assert_eq!(store.set_user_status("ann", false).unwrap(), "Deactivated");
    assert_eq!(store.app("viewer").unwrap()["isActive"], json!(false));
    let basic = store
        .create_credential("ann", CredentialType::BasicAuth, Doc::new())
        .unwrap();
    assert_eq!(basic["password"].as_str().unwrap().len(), 36);
    // Deleting the user removes its apps and their credentials.
    store.delete_user("ann").unwrap();
    assert_eq!(store.counts().credentials, 0);
    assert_eq!(store.counts().apps, 0);
    drop(store);
    assert_eq!(
        open(&f).counts(),
        Counts {
            scopes: 1,
            ..Counts::default()
        }
    );
}

#[test]
fn basic_auth_credentials_are_bcrypt_and_one_per_consumer() {
    let f = fixture();
    let store = open(&f);
    store.create_user(doc(json!({"username": "bob"}))).unwrap();
    let made = store
        .create_credential(
            "bob",
            CredentialType::BasicAuth,
            doc(json!({"password": "pw"})),
        )
        .unwrap();
    // A given password is not shown again; a second active one is refused.
    assert!(made.get("password").is_none());
    assert_eq!(
        store.create_credential("bob", CredentialType::BasicAuth, Doc::new()),
        Err(ConsumerError::Invalid(
            "Credential already exists and is active".into()
        ))
    );
    let found = store.basic_credential("bob").unwrap();
    assert!(bcrypt::verify("pw", &found.hash).unwrap());
    assert_eq!(found.consumer.user["username"], json!("bob"));
    // Found by id too; an unknown consumer or a missing scope is 422.
    assert!(store.basic_credential(&found.consumer.id).is_some());
    assert!(matches!(
        store.create_credential("nobody", CredentialType::KeyAuth, Doc::new()),
        Err(ConsumerError::Unprocessable(m)) if m == "No consumer found with id: nobody"
    ));
    assert!(matches!(
        store.create_credential("bob", CredentialType::KeyAuth, doc(json!({"scopes": ["x"]}))),
        Err(ConsumerError::Invalid(m)) if m == "One or more scopes don't exist"
    ));
}

#[test]
fn scopes_are_created_once_and_leave_credentials_when_deleted() {
    let f = fixture();
    let store = open(&f);
    store.create_scopes(&["a".into(), "b".into()]).unwrap();
    assert!(matches!(
        store.create_scopes(&["a".into()]),
        Err(ConsumerError::Conflict(_))
    ));
    store.create_user(doc(json!({"username": "c"}))).unwrap();
    let key = store
        .create_credential(
            "c",
            CredentialType::KeyAuth,
            doc(json!({"scopes": ["a", "b"]})),
        )
        .unwrap();
    let id = key["keyId"].as_str().unwrap();
    store.delete_scope("a").unwrap();
    assert_eq!(
        store.credential(CredentialType::KeyAuth, id).unwrap()["scopes"],
        json!(["b"])
    );
    store
        .change_credential_scopes(CredentialType::KeyAuth, id, ScopeChange::Add("b".into()))
        .unwrap();
    store
        .change_credential_scopes(CredentialType::KeyAuth, id, ScopeChange::Remove("b".into()))
        .unwrap();
    assert_eq!(
        store.credential(CredentialType::KeyAuth, id).unwrap()["scopes"],
        json!([])
    );
    assert_eq!(store.scopes(), vec!["b".to_string()]);
}

/// Issue 13's figure "restart time with 100,000 consumers": 100,000 users, each with a key-auth
/// credential, written in one batch, then the store opened again as a gateway does at start-up.
/// A measurement, not a check (run with `--ignored --nocapture`; see docs/benchmarks.md).
#[test]
#[ignore]
fn restart_with_100k_consumers() {
    let f = fixture();
    let path = f.path().join("consumers.db");
    let backend = SqliteBackend::open(&path).unwrap();
    let store = Consumers::open(Box::new(backend), 4).unwrap();
    drop(store);
    let backend = SqliteBackend::open(&path).unwrap();
    let mut batch = Vec::with_capacity(200_000);
    for i in 0..100_000 {
        let id = format!("00000000-0000-4000-8000-{i:012}");
        let user = json!({"username": format!("user{i}"), "id": id, "isActive": true,
            "createdAt": "Mon Nov 23 2026 16:56:02 GMT+0000 (Coordinated Universal Time)",
            "updatedAt": "Mon Nov 23 2026 16:56:02 GMT+0000 (Coordinated Universal Time)"});
        batch.push(Write::Put {
            kind: Kind::User,
            id: id.clone(),
            doc: user.to_string(),
        });
        let key = format!("key{i}");
        let credential = json!({"isActive": true, "keyId": key, "id": key, "type": "key-auth",
            "consumerId": id, "scopes": null, "keySecretHmac": "00".repeat(32)});
        batch.push(Write::Put {
            kind: Kind::Credential,
            id: format!("key-auth:{key}"),
            doc: credential.to_string(),
        });
    }
    let started = std::time::Instant::now();
    backend.apply(&batch).unwrap();
    let written = started.elapsed();
    drop(backend);
    let mut runs = Vec::new();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let store = Consumers::open(Box::new(SqliteBackend::open(&path).unwrap()), 4).unwrap();
        runs.push(started.elapsed());
        assert_eq!(store.counts().users, 100_000);
        assert_eq!(store.counts().credentials, 100_000);
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "100,000 users + 100,000 key-auth credentials: batch write {written:?}, open (load into memory) {runs:?}, file {size} bytes"
    );
}

/// jwt's `checkCredentialExistence` lookup answers from what each change stored: a credential
/// or consumer deactivated (or deleted) since is refused at once, and the user's id, never its
/// username, is the consumer.
#[test]
fn jwt_credentials_are_looked_up_by_key_id_with_their_consumer() {
    let f = fixture();
    let store = open(&f);
    let user = store
        .create_user(doc(json!({"username": "bob", "firstname": "Bob"})))
        .unwrap();
    let jwt = store
        .create_credential("bob", CredentialType::Jwt, Doc::new())
        .unwrap();
    let key_id = jwt["keyId"].as_str().unwrap().to_string();
    let consumer = store.jwt_consumer(&key_id).unwrap();
    assert_eq!(&*consumer.id, user["id"].as_str().unwrap());
    assert_eq!(consumer.user["type"], json!("user"));
    assert_eq!(consumer.user["username"], json!("bob"));
    // A key-auth credential is not a jwt one, nor the other way round.
    assert!(store.jwt_consumer("bob").is_none());
    assert!(matches!(
        store.key_auth(&key_id, "x", &[]),
        KeyAuthOutcome::Unauthorized
    ));
    store
        .set_credential_status(CredentialType::Jwt, &key_id, false)
        .unwrap();
    assert!(store.jwt_consumer(&key_id).is_none());
    store
        .set_credential_status(CredentialType::Jwt, &key_id, true)
        .unwrap();
    assert!(store.jwt_consumer(&key_id).is_some());
    store.set_user_status("bob", false).unwrap();
    assert!(store.jwt_consumer(&key_id).is_none());
    store.set_user_status("bob", true).unwrap();
    // The consumer's document changed: the view is the new one.
    store
        .update_user("bob", doc(json!({"firstname": "Robert"})))
        .unwrap();
    assert_eq!(
        store.jwt_consumer(&key_id).unwrap().user["firstname"],
        json!("Robert")
    );
    store.delete_user("bob").unwrap();
    assert!(store.jwt_consumer(&key_id).is_none());
}

/// A key-auth credential stored before (HMAC-SHA256 by RustCrypto's `hmac`) still verifies:
/// the digest is the standard HMAC-SHA256 whatever computes it (the expected value from
/// Python's `hmac.new(bytes(range(32)), b"benchsecret", hashlib.sha256)`).
#[test]
fn stored_key_auth_digests_are_standard_hmac_sha256() {
    let f = fixture();
    let path = f.path().join("consumers.db");
    let backend = SqliteBackend::open(&path).unwrap();
    let key: String = (0u8..32).map(|b| format!("{b:02x}")).collect();
    let id = "00000000-0000-4000-8000-000000000001";
    let hmac = "774323c572b2ba28aeafe537a4185edcfc64f0c929d48963b551b4cfce8c6774";
    let writes = [
        (Kind::Meta, "credential-key".to_string(), json!(key)),
        (
            Kind::User,
            id.to_string(),
            json!({"username": "old", "id": id, "isActive": true}),
        ),
        (
            Kind::Credential,
            "key-auth:oldkey".to_string(),
            json!({"isActive": true, "keyId": "oldkey", "id": "oldkey", "type": "key-auth",
                "consumerId": id, "keySecretHmac": hmac}),
        ),
    ];
    let batch: Vec<Write> = writes
        .into_iter()
        .map(|(kind, id, doc)| Write::Put {
            kind,
            id,
            doc: doc.to_string(),
        })
        .collect();
    backend.apply(&batch).unwrap();
    drop(backend);
    let store = open(&f);
    assert!(matches!(
        store.key_auth("oldkey", "benchsecret", &[]),
        KeyAuthOutcome::Accepted(c) if &*c.id == id
    ));
    assert!(matches!(
        store.key_auth("oldkey", "benchsecreT", &[]),
        KeyAuthOutcome::Unauthorized
    ));
}
