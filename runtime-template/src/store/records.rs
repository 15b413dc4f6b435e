//! Express Gateway's consumer records: the credential types, the consumer kinds, ids, and the
//! fields a stored document keeps private (EG 1.16 `lib/config/models/*.json`,
//! `lib/services/credentials/credential.service.js`).

use serde_json::{Map, Value};

/// A credential type (`type` in the admin API, `EG-<type>:<id>` in EG's Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CredentialType {
    /// `key-auth`: `keyId:keySecret` API keys, many per consumer.
    KeyAuth,
    /// `basic-auth`: one password per consumer.
    BasicAuth,
    /// `jwt`: `keyId` matched against a token's `sub`, many per consumer.
    Jwt,
    /// `oauth2`: one client secret per consumer.
    Oauth2,
}

impl CredentialType {
    /// Every type.
    pub const ALL: [CredentialType; 4] = [
        CredentialType::KeyAuth,
        CredentialType::BasicAuth,
        CredentialType::Jwt,
        CredentialType::Oauth2,
    ];

    /// The type's name.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialType::KeyAuth => "key-auth",
            CredentialType::BasicAuth => "basic-auth",
            CredentialType::Jwt => "jwt",
            CredentialType::Oauth2 => "oauth2",
        }
    }

    /// The type named `name`.
    pub fn parse(name: &str) -> Option<CredentialType> {
        CredentialType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Key-auth and jwt credentials are many per consumer, identified by `keyId`; basic-auth
    /// and oauth2 are one per consumer, identified by the consumer's id.
    pub fn is_keyed(self) -> bool {
        matches!(self, CredentialType::KeyAuth | CredentialType::Jwt)
    }

    /// The field holding the secret that is hashed at rest and never shown again:
    /// `keySecret`, `password`, or `secret`.
    pub fn secret_field(self) -> &'static str {
        match self {
            CredentialType::KeyAuth | CredentialType::Jwt => "keySecret",
            CredentialType::BasicAuth => "password",
            CredentialType::Oauth2 => "secret",
        }
    }
}

/// What a consumer is (`req.user.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumerKind {
    /// A user.
    User,
    /// An application.
    Application,
}

impl ConsumerKind {
    /// `user` or `application`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerKind::User => "user",
            ConsumerKind::Application => "application",
        }
    }
}

/// Fields of a stored credential that are never shown: the secret's digest or hash.
pub const PRIVATE_FIELDS: [&str; 2] = ["keySecretHmac", "passwordHash"];

/// A document without its private fields, as the admin API shows it.
pub fn public(doc: &Map<String, Value>) -> Map<String, Value> {
    let mut out = doc.clone();
    for field in PRIVATE_FIELDS {
        out.remove(field);
    }
    out
}

/// A new uuid v4, as EG's users and applications get (`8-4-4-4-12` hex).
pub fn uuid_v4() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// A new uuid v4 in base 62 (the `uuid62` package EG uses for generated `keyId` and
/// `keySecret`): 22 characters or fewer, `[0-9A-Za-z]`.
pub fn uuid62() -> String {
    base62(uuid::Uuid::new_v4().as_u128())
}

/// `value` in base 62 (digits, upper-case, then lower-case letters), most significant first.
pub(crate) fn base62(mut value: u128) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    // 62^10 fits in a u64: one (slow) u128 division peels ten digits, which are then made
    // with u64 arithmetic (every request's `eg-request-id` is one of these).
    const CHUNK: u128 = 839_299_365_868_340_224;
    let mut out = [0u8; 22]; // u128::MAX has 22 digits
    let mut start = out.len();
    loop {
        let high = value / CHUNK;
        let mut low = (value % CHUNK) as u64;
        for _ in 0..10 {
            start -= 1;
            out[start] = DIGITS[(low % 62) as usize];
            low /= 62;
            if high == 0 && low == 0 {
                break;
            }
        }
        value = high;
        if value == 0 {
            break;
        }
    }
    String::from_utf8(out[start..].to_vec()).unwrap_or_default()
}

/// A string field of a document.
pub fn text<'a>(doc: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    doc.get(field).and_then(Value::as_str)
}

/// `isActive` of a document: EG stores it as a boolean (or `'true'`/`'false'` in Redis).
pub fn is_active(doc: &Map<String, Value>) -> bool {
    match doc.get("isActive") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s != "false",
        _ => true,
    }
}

/// `scopes` of a credential or application as a list: an array of strings, a JSON string of
/// one (EG's Redis form), or a comma-joined string (EG's `hmset` of an array).
pub fn scopes(doc: &Map<String, Value>) -> Vec<String> {
    match doc.get("scopes") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) if s.trim_start().starts_with('[') => {
            serde_json::from_str::<Vec<String>>(s).unwrap_or_default()
        }
        Some(Value::String(s)) if !s.is_empty() => s.split(',').map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_is_the_plain_positional_notation() {
        fn naive(mut value: u128) -> String {
            const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
            let mut out = Vec::new();
            loop {
                out.push(DIGITS[(value % 62) as usize]);
                value /= 62;
                if value == 0 {
                    break;
                }
            }
            out.reverse();
            String::from_utf8(out).unwrap()
        }
        let chunk = 62u128.pow(10);
        let mut values = vec![
            0,
            1,
            61,
            62,
            chunk - 1,
            chunk,
            chunk + 1,
            chunk * chunk,
            u128::MAX,
        ];
        values.extend(
            (0..200u32).map(|i| {
                (u128::from(i) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
            }),
        );
        for v in values {
            assert_eq!(base62(v), naive(v), "{v}");
        }
    }
    use serde_json::json;

    #[test]
    fn ids_have_their_forms() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        let key = uuid62();
        assert!(key.len() <= 22 && key.len() >= 16, "{key}");
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(uuid62(), uuid62());
    }

    #[test]
    fn scopes_read_every_stored_form() {
        let doc = |v: Value| json!({ "scopes": v }).as_object().unwrap().clone();
        assert_eq!(scopes(&doc(json!(["a", "b"]))), ["a", "b"]);
        assert_eq!(scopes(&doc(json!("[\"a\",\"b\"]"))), ["a", "b"]);
        assert_eq!(scopes(&doc(json!("a,b"))), ["a", "b"]);
        assert!(scopes(&doc(json!(null))).is_empty());
        assert!(is_active(&doc(json!(null))));
        let inactive = json!({"isActive": "false"}).as_object().unwrap().clone();
        assert!(!is_active(&inactive));
    }

    #[test]
    fn public_documents_hide_secrets() {
        let doc = json!({"keyId": "k", "keySecretHmac": "x", "passwordHash": "y"});
        let shown = public(doc.as_object().unwrap());
        assert_eq!(Value::Object(shown), json!({"keyId": "k"}));
    }
}
