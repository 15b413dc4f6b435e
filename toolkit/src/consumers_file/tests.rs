use std::path::PathBuf;

use super::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/kargo")
        .join(name)
}

#[test]
fn reads_kargo_nested_js() {
    let file = read(&fixture("consumers.config.js")).unwrap();
    assert_eq!(file.scopes, ["mapcache", "mapserver", "k2"]);
    assert_eq!(file.users.len(), 2);
    let user = &file.users[0];
    assert_eq!(user.username, "cutomer1");
    assert!(user.at.ends_with("consumers.config.js:4"), "{}", user.at);
    let names: Vec<&str> = user.apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["qgis", "leafet", "kano"]);
    let qgis = &user.apps[0];
    assert_eq!(qgis.scopes, ["mapcache", "mapserver"]);
    let credential = qgis.credential.as_ref().unwrap();
    assert_eq!(credential.kind, "basic-auth");
    assert_eq!(credential.password.as_deref(), Some("<PASSWORD>"));
    assert_eq!(credential.key_id, None);
    let kano = user.apps[2].credential.as_ref().unwrap();
    assert_eq!(kano.kind, "jwt");
    assert_eq!(kano.key_id.as_deref(), Some("<KEY_ID>"));
    assert_eq!(kano.key_secret.as_deref(), Some("<APP_SECRET>"));
    assert_eq!(file.users[1].username, "customer2");
    assert!(file.warnings.is_empty(), "{:?}", file.warnings);
}

#[test]
fn reads_kargo_flat_json() {
    let file = read(&fixture("consumers.config.json")).unwrap();
    assert_eq!(file.scopes, ["mapproxy", "mapserver", "k2"]);
    let qgis = &file.users[0].apps[0];
    assert_eq!(qgis.name, "qgis");
    assert_eq!(qgis.scopes, ["mapproxy", "mapserver"]);
    let credential = qgis.credential.as_ref().unwrap();
    assert_eq!(credential.kind, "key-auth");
    assert_eq!(credential.key_id.as_deref(), Some("<KEY_ID>"));
    assert_eq!(credential.key_secret.as_deref(), Some("<KEY_SECRET>"));
    assert_eq!(
        file.users[1].apps[0].credential.as_ref().unwrap().kind,
        "jwt"
    );
    assert!(file.warnings.is_empty(), "{:?}", file.warnings);
}

#[test]
fn auth_key_is_read_as_key_auth_with_a_warning() {
    let text = r#"{"scopes": [], "users": {"u": {"a": {"type": "auth-key", "keyId": "k", "keySecret": "s"}}}}"#;
    let file = parse(text, "c.json").unwrap();
    let credential = file.users[0].apps[0].credential.as_ref().unwrap();
    assert_eq!(credential.kind, "key-auth");
    assert_eq!(file.warnings.len(), 1);
    assert!(
        file.warnings[0].starts_with("c.json:1: credential type \"auth-key\""),
        "{:?}",
        file.warnings
    );
}

#[test]
fn js_literals_comments_quotes_and_trailing_commas() {
    let text = "// consumers\n'use strict'\n";
    // A leading statement is not a literal: refused with its line.
    let err = parse(text, "c.js").unwrap_err().to_string();
    assert!(
        err.starts_with("c.js:2:") || err.starts_with("c.js:1:"),
        "{err}"
    );
    let text = "/* Kargo */\nmodule.exports = {\n  scopes: [\"a\", 'b',],\n  users: {\n    'u-1': { app: { scopes: ['a'], credential: { type: \"key-auth\", keyId: 'k\\'1', keySecret: 's', }, }, },\n  },\n};\n";
    let file = parse(text, "c.js").unwrap();
    assert_eq!(file.scopes, ["a", "b"]);
    assert_eq!(file.users[0].username, "u-1");
    assert_eq!(file.users[0].at, "c.js:5");
    let credential = file.users[0].apps[0].credential.as_ref().unwrap();
    assert_eq!(credential.key_id.as_deref(), Some("k'1"));
}

#[test]
fn javascript_is_never_run_errors_name_the_line() {
    let text = "module.exports = {\n  scopes: [],\n  users: {\n    u: { a: { credential: { type: 'jwt', keySecret: process.env.SECRET } } }\n  }\n}\n";
    let err = parse(text, "c.js").unwrap_err().to_string();
    assert!(err.starts_with("c.js:4: `process` is JavaScript"), "{err}");
    let text = "module.exports = {\n  scopes: ['a' + 'b'],\n}";
    let err = parse(text, "c.js").unwrap_err().to_string();
    assert!(err.starts_with("c.js:2: expected `,`"), "{err}");
    let text = "{\n  \"scopes\": [\"a\"],\n  \"users\": {\"u\": {\"a\": {\"type\": \"magic\"}}}\n}";
    let err = parse(text, "c.json").unwrap_err().to_string();
    assert!(
        err.starts_with("c.json:3: a: unknown credential type \"magic\""),
        "{err}"
    );
    let text = "{\n  \"scopes\": \"a\"\n}";
    let err = parse(text, "c.json").unwrap_err().to_string();
    assert_eq!(err, "c.json:2: scopes must be a list of names");
    let text =
        "{\n  \"users\": {\n    \"u\": {\"a\": {\"credential\": {\"password\": \"p\"}}}\n  }\n}";
    let err = parse(text, "c.json").unwrap_err().to_string();
    assert!(
        err.starts_with("c.json:3: a.credential has no type"),
        "{err}"
    );
    let err = parse("{\"scopes\": [\"a\"", "c.json")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("c.json:1: "), "{err}");
    let err = parse("{\n\"users\": {},\n\"users\": {}\n}", "c.json")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "c.json:3: the key \"users\" appears twice in this object"
    );
}
