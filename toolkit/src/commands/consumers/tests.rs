use serde_json::json;

use super::*;
use crate::consumers_file::parse;

fn doc(value: Value) -> Doc {
    value.as_object().cloned().unwrap()
}

fn never(_: &str, _: &str, _: &str) -> anyhow::Result<bool> {
    Ok(true)
}

const FILE: &str = "module.exports = {\n  scopes: ['a', 'b'],\n  users: {\n    alice: {\n      web: { scopes: ['a'], credential: { type: 'key-auth', keyId: 'k1', keySecret: 's1' } },\n      cli: { scopes: ['a', 'b'], credential: { type: 'basic-auth', password: 'p' } },\n    },\n  },\n}\n";

#[test]
fn plan_creates_everything_on_an_empty_store() {
    let file = parse(FILE, "c.js").unwrap();
    let changes = plan(&file, &Current::default(), Extra::Remove, &mut never).unwrap();
    let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "create scope a",
            "create scope b",
            "create user alice",
            "create app alice/web (scopes a)",
            "create credential key-auth k1 for alice/web (new)",
            "create app alice/cli (scopes a,b)",
            "create credential basic-auth for alice/cli (new)",
        ]
    );
    assert_eq!(
        summary(&changes, false),
        "populate: 7 created, 0 updated, 0 deactivated, 0 removed"
    );
}

fn current() -> Current {
    Current {
        scopes: vec!["a".into(), "old".into()],
        users: vec![
            doc(json!({"id": "u1", "username": "alice", "isActive": false})),
            doc(json!({"id": "u2", "username": "bob", "isActive": true})),
        ],
        apps: vec![
            doc(
                json!({"id": "a1", "userId": "u1", "name": "web", "scopes": "a", "isActive": true}),
            ),
            doc(json!({"id": "a2", "userId": "u1", "name": "gone", "isActive": true})),
            doc(
                json!({"id": "a3", "userId": "u1", "name": "cli", "scopes": "b,a", "isActive": false}),
            ),
        ],
        credentials: vec![
            doc(
                json!({"id": "k1", "type": "key-auth", "consumerId": "a1", "isActive": false, "scopes": null}),
            ),
            doc(
                json!({"id": "k9", "type": "key-auth", "consumerId": "a1", "isActive": true, "scopes": ["a"]}),
            ),
            doc(
                json!({"id": "a3", "type": "basic-auth", "consumerId": "a3", "isActive": true, "scopes": ["a", "b"]}),
            ),
        ],
    }
}

#[test]
fn plan_updates_activates_and_removes() {
    let file = parse(FILE, "c.js").unwrap();
    let changes = plan(&file, &current(), Extra::Remove, &mut never).unwrap();
    let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "create scope b",
            "activate user alice",
            "activate credential key-auth k1 of alice/web",
            "update credential key-auth k1 of alice/web: scopes (none) -> a",
            "activate app alice/cli",
            "remove credential key-auth k9 of alice/web (not in the file)",
            "remove app alice/gone (not in the file)",
            "remove user bob (not in the file; its apps and credentials too)",
            "remove scope old (not in the file)",
        ]
    );
}

#[test]
fn plan_deactivates_with_extra_deactivate_and_replaces_changed_secrets() {
    let file = parse(FILE, "c.js").unwrap();
    let mut changed = |kind: &str, id: &str, secret: &str| -> anyhow::Result<bool> {
        Ok(!(kind == "basic-auth" && id == "a3" && secret == "p"))
    };
    let changes = plan(&file, &current(), Extra::Deactivate, &mut changed).unwrap();
    let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "create scope b",
            "activate user alice",
            "activate credential key-auth k1 of alice/web",
            "update credential key-auth k1 of alice/web: scopes (none) -> a",
            "activate app alice/cli",
            "remove credential basic-auth a3 of alice/cli (secret changed)",
            "create credential basic-auth for alice/cli (secret changed)",
            "deactivate credential key-auth k9 of alice/web",
            "deactivate app alice/gone (not in the file)",
            "deactivate user bob (not in the file)",
        ]
    );
    assert_eq!(
        summary(&changes, false),
        "populate: 2 created, 4 updated, 3 deactivated, 1 removed"
    );
}

#[test]
fn plan_refuses_inconsistent_files() {
    let text = "{\n\"scopes\": [\"a\"],\n\"users\": {\"u\": {\n\"x\": {\"type\": \"key-auth\", \"keyId\": \"k\", \"scopes\": [\"a\"]},\n\"y\": {\"type\": \"key-auth\", \"keyId\": \"k\"}\n}}}";
    let file = parse(text, "c.json").unwrap();
    let err = plan(&file, &Current::default(), Extra::Remove, &mut never)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "c.json:5: key-auth keyId \"k\" of u/y is already the keyId of u/x: key ids are unique"
    );
    let text = "{\"scopes\": [], \"users\": {\"u\": {\"x\": {\"scopes\": [\"nope\"]}}}}";
    let file = parse(text, "c.json").unwrap();
    let err = plan(&file, &Current::default(), Extra::Remove, &mut never)
        .unwrap_err()
        .to_string();
    assert!(err.contains("uses the scope \"nope\""), "{err}");
}

/// The whole sync on a store file, through the admin route table: populate, populate again
/// (nothing), a changed file, then clean.
#[test]
fn sync_on_a_store_file_converges() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::local(&dir.path().join("consumers.db"), 4).unwrap();
    let sync = |text: &str| -> Vec<Change> {
        let file = parse(text, "c.js").unwrap();
        let current = read_current(&target).unwrap();
        let mut verify = |kind: &str, id: &str, secret: &str| -> anyhow::Result<bool> {
            let reply = target.expect(
                Method::POST,
                &format!("/credentials/{kind}/{id}/verify"),
                Some(json!({ "secret": secret })),
            )?;
            Ok(reply.body["matches"] == json!(true))
        };
        let changes = plan(&file, &current, Extra::Remove, &mut verify).unwrap();
        apply(&target, &current, &changes).unwrap();
        changes
    };
    assert_eq!(sync(FILE).len(), 7);
    assert_eq!(sync(FILE), Vec::new(), "a second run changes nothing");
    let Target::Local { consumers, .. } = &target else {
        unreachable!()
    };
    assert!(matches!(
        consumers.key_auth("k1", "s1", &["a".to_string()]),
        mgw_runtime::store::KeyAuthOutcome::Accepted(_)
    ));
    let changed = FILE.replace("'s1'", "'s2'").replace(
        "scopes: ['a', 'b'], credential",
        "scopes: ['b'], credential",
    );
    let lines: Vec<String> = sync(&changed).iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "remove credential key-auth k1 of alice/web (secret changed)",
            "create credential key-auth k1 for alice/web (secret changed)",
            "update app alice/cli: scopes a,b -> b",
            "update credential basic-auth ID of alice/cli: scopes a,b -> b"
                .replace("ID", lines[3].split(' ').nth(3).unwrap())
                .as_str(),
        ]
    );
    let Target::Local { consumers, .. } = &target else {
        unreachable!()
    };
    assert!(matches!(
        consumers.key_auth("k1", "s2", &[]),
        mgw_runtime::store::KeyAuthOutcome::Accepted(_)
    ));
    // A bcrypt hash in the file is kept as a hash.
    let hash = bcrypt::hash("hashed-pw", 4).unwrap();
    let hashed = changed.replace("password: 'p'", &format!("password: '{hash}'"));
    let lines: Vec<String> = sync(&hashed).iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(sync(&hashed), Vec::new());
    let Target::Local { consumers, .. } = &target else {
        unreachable!()
    };
    let app = consumers.find_consumer("cli").unwrap();
    assert_eq!(
        consumers
            .basic_credential(&app)
            .map(|b| b.hash.to_string())
            .as_deref(),
        Some(hash.as_str())
    );
    // Clean removes everything.
    for user in &read_current(&target).unwrap().users {
        target
            .expect(
                Method::DELETE,
                &format!("/users/{}", text(user, "id")),
                None,
            )
            .unwrap();
    }
    let left = read_current(&target).unwrap();
    assert!(left.users.is_empty() && left.apps.is_empty() && left.credentials.is_empty());
}

/// Kargo's own files use one placeholder keyId for several apps: populate refuses them, naming
/// the line, instead of letting one app take another's key.
#[test]
fn kargo_fixture_placeholders_are_refused_with_their_line() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/kargo");
    let file = crate::consumers_file::read(&dir.join("consumers.config.js")).unwrap();
    let err = plan(&file, &Current::default(), Extra::Remove, &mut never)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("consumers.config.js:22: jwt keyId \"<KEY_ID>\" of cutomer1/kano is already the keyId of cutomer1/leafet: key ids are unique"),
        "{err}"
    );
}
