//! API Manager 3.x: search the publisher REST API (v1.x) for published APIs by name and version
//! or by microgateway label, then fetch each one's definition from `/apis/{id}/swagger`.

use serde_json::Value;

use super::client::{parse_json, required_str, ApimClient};
use super::{excerpt, ApimApi, ApimError, Selection};

/// One entry of the publisher's API list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedApi {
    /// The API Manager's id (a UUID).
    pub id: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
}

/// Encodes a query value as Java's `URLEncoder` does (space as `+`), which API Manager decodes.
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The search URL for `selection` (`{publisher}/apis?query=…`).
pub fn search_url(publisher: &url::Url, selection: &Selection) -> Result<url::Url, ApimError> {
    let query = match (&selection.label, &selection.name_version) {
        (Some(label), _) => format!(
            "query=label:{}%20status:PUBLISHED&expand=false&limit=500",
            encode(label)
        ),
        (None, Some((name, version))) => format!(
            "query=name:{}%20version:{}%20status:PUBLISHED&expand=false",
            encode(name),
            encode(version)
        ),
        (None, None) => {
            return Err(ApimError::NothingMatched(
                "nothing to search for: give -l <label> or -a <name> -v <version>".into(),
            ))
        }
    };
    let text = format!("{}/apis?{query}", publisher.as_str().trim_end_matches('/'));
    url::Url::parse(&text).map_err(|e| ApimError::Transport {
        call: "building the publisher search URL".into(),
        detail: e.to_string(),
    })
}

/// Reads an APIListDTO (`{"count":N,"list":[{id,name,version,…}]}`) and keeps the entries that
/// match exactly: the server's search matches substrings, and only published APIs count.
pub fn parse_list(
    call: &str,
    body: &[u8],
    selection: &Selection,
) -> Result<Vec<ListedApi>, ApimError> {
    let json = parse_json(call, body)?;
    let malformed = |problem: String| ApimError::Malformed {
        call: call.to_string(),
        problem,
    };
    let list = match json.get("list") {
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(malformed(format!(
                "`list` should be an array, not {}",
                kind(other)
            )))
        }
        None => return Err(malformed("`list` is missing".into())),
    };
    let mut apis = Vec::new();
    for (index, entry) in list.iter().enumerate() {
        let at = format!("{call} list[{index}]");
        let listed = ListedApi {
            id: required_str(&at, entry, "id")?,
            name: required_str(&at, entry, "name")?,
            version: required_str(&at, entry, "version")?,
        };
        let published = entry
            .get("lifeCycleStatus")
            .and_then(Value::as_str)
            .is_none_or(|s| s.eq_ignore_ascii_case("PUBLISHED"));
        let wanted = match &selection.name_version {
            Some((name, version)) if selection.label.is_none() => {
                listed.name == *name && listed.version == *version
            }
            _ => true,
        };
        if published && wanted && !apis.iter().any(|a: &ListedApi| a.id == listed.id) {
            apis.push(listed);
        }
    }
    Ok(apis)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What a 3.x import fetched.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The APIs.
    pub apis: Vec<ApimApi>,
    /// Things the user should know (e.g. a search answer cut short), one sentence each.
    pub warnings: Vec<String>,
}

/// A warning when the search answer says it matched more APIs (`count`, `pagination.total`)
/// than its `list` holds: the search asks for at most 500, and the rest are not imported.
pub fn truncation_warning(body: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let received = json.get("list")?.as_array()?.len() as u64;
    let total = [
        json.get("count").and_then(Value::as_u64),
        json.pointer("/pagination/total").and_then(Value::as_u64),
    ]
    .into_iter()
    .flatten()
    .max()?;
    (total > received).then(|| {
        format!(
            "the API Manager matched {total} APIs but answered with {received} (the search asks for at most 500); only those {received} are imported: use labels that select fewer APIs"
        )
    })
}

/// Searches, then fetches every match's definition.
pub async fn fetch(
    client: &ApimClient,
    token: &str,
    selection: &Selection,
) -> Result<Fetched, ApimError> {
    let url = search_url(&client.endpoints.publisher, selection)?;
    let call = format!("API search (GET {url})");
    let (status, body, _) = client.get(&call, url, token).await?;
    check_status(&call, status, &body)?;
    let listed = parse_list(&call, &body, selection)?;
    let warnings: Vec<String> = truncation_warning(&body).into_iter().collect();
    if listed.is_empty() {
        return Err(ApimError::NothingMatched(
            match (&selection.label, &selection.name_version) {
                (Some(label), _) => format!("No APIs found for the given label: {label}"),
                (None, Some((name, version))) => {
                    format!("No Published APIs matched for name:{name}, version:{version}")
                }
                (None, None) => "nothing to search for".into(),
            },
        ));
    }
    let mut apis = Vec::with_capacity(listed.len());
    for api in listed {
        let mut url = client.endpoints.publisher.clone();
        url.path_segments_mut()
            .map_err(|()| ApimError::Transport {
                call: "building the definition URL".into(),
                detail: format!("{} cannot have a path", client.endpoints.publisher),
            })?
            .pop_if_empty()
            .extend(["apis", &api.id, "swagger"]);
        let call = format!("definition of {} {} (GET {url})", api.name, api.version);
        let (status, body, _) = client.get(&call, url, token).await?;
        check_status(&call, status, &body)?;
        let definition = String::from_utf8(body).map_err(|_| ApimError::Malformed {
            call: call.clone(),
            problem: "the definition is not UTF-8 text".into(),
        })?;
        apis.push(ApimApi {
            name: api.name,
            version: api.version,
            definition,
        });
    }
    Ok(Fetched { apis, warnings })
}

fn check_status(call: &str, status: u16, body: &[u8]) -> Result<(), ApimError> {
    match status {
        200 => Ok(()),
        401 | 403 => Err(ApimError::Unauthorized {
            call: call.to_string(),
            status,
        }),
        _ => Err(ApimError::Status {
            call: call.to_string(),
            status,
            body: excerpt(body),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_name(name: &str, version: &str) -> Selection {
        Selection {
            label: None,
            name_version: Some((name.into(), version.into())),
        }
    }

    #[test]
    fn search_urls_follow_the_contract() {
        let publisher = url::Url::parse("https://apim:9443/api/am/publisher/v1.2").unwrap();
        let url = search_url(&publisher, &by_name("Pet Store", "1.0.0")).unwrap();
        assert_eq!(
            url.as_str(),
            "https://apim:9443/api/am/publisher/v1.2/apis?query=name:Pet+Store%20version:1.0.0%20status:PUBLISHED&expand=false"
        );
        let label = Selection {
            label: Some("edge&1".into()),
            name_version: None,
        };
        assert_eq!(
            search_url(&publisher, &label).unwrap().query(),
            Some("query=label:edge%261%20status:PUBLISHED&expand=false&limit=500")
        );
    }

    #[test]
    fn lists_are_filtered_to_exact_published_matches() {
        let body = br#"{"count":4,"list":[
            {"id":"1","name":"PetStore","version":"1.0.0","lifeCycleStatus":"PUBLISHED"},
            {"id":"2","name":"PetStoreV2","version":"1.0.0","lifeCycleStatus":"PUBLISHED"},
            {"id":"3","name":"PetStore","version":"1.0.0-beta"},
            {"id":"4","name":"PetStore","version":"1.0.0","lifeCycleStatus":"CREATED"}],
            "pagination":{}}"#;
        let apis = parse_list("search", body, &by_name("PetStore", "1.0.0")).unwrap();
        assert_eq!(apis.len(), 1);
        assert_eq!(apis[0].id, "1");
    }

    #[test]
    fn a_truncated_search_answer_is_noticed() {
        let full = br#"{"count":2,"list":[{"id":"1"},{"id":"2"}],"pagination":{"offset":0,"limit":500,"total":2}}"#;
        assert_eq!(truncation_warning(full), None);
        let cut = br#"{"count":2,"list":[{"id":"1"},{"id":"2"}],"pagination":{"offset":0,"limit":2,"total":612}}"#;
        let warning = truncation_warning(cut).unwrap();
        assert!(
            warning.contains("matched 612 APIs but answered with 2"),
            "{warning}"
        );
        let counted = br#"{"count":700,"list":[{"id":"1"}]}"#;
        assert!(truncation_warning(counted).is_some());
        assert_eq!(truncation_warning(br#"{"list":[]}"#), None);
    }

    #[test]
    fn malformed_lists_say_what_is_wrong() {
        let sel = by_name("a", "1");
        let err = parse_list("API search (GET x)", br#"{"count":1}"#, &sel)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("API search (GET x)") && err.contains("`list` is missing"),
            "{err}"
        );
        let err = parse_list("s", br#"{"list":{}}"#, &sel)
            .unwrap_err()
            .to_string();
        assert!(err.contains("should be an array, not an object"), "{err}");
        let err = parse_list("s", br#"{"list":[{"id":"1","name":"a"}]}"#, &sel)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("list[0]") && err.contains("`version`"),
            "{err}"
        );
    }
}
