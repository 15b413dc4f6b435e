//! API Manager 4.x: `GET {publisher}/apis/export?…&gatewayEnvironment=<base64(label)>` answers
//! with the APIs last deployed to that gateway environment, as a zip of zips: `deployments.json`
//! names one inner zip per API, and each inner zip is an apictl project with `<dir>/api.json`
//! and `<dir>/Definitions/swagger.json`.

use std::io::{Cursor, Read};

use base64::Engine;
use serde_json::Value;

use super::client::{parse_json, required_str, ApimClient, MAX_ANSWER_BYTES};
use super::{excerpt, ApimApi, ApimError, Selection};

/// At most this many entries in one zip (an export holds a few files per API).
const MAX_ENTRIES: usize = 10_000;
/// At most this many bytes unpacked from one export, all entries of all inner zips together.
pub const MAX_UNPACKED_BYTES: usize = 128 << 20;

/// What the export held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Exported {
    /// The APIs, in `deployments.json` order.
    pub apis: Vec<ApimApi>,
    /// API Products (and other non-API projects) found and skipped, by name.
    pub skipped: Vec<String>,
}

/// The export URL. The label is Base64 encoded, as the API Manager expects; the query is then
/// percent-encoded, so a `+` or `/` in the Base64 text reaches the server unchanged.
pub fn export_url(publisher: &url::Url, selection: &Selection) -> url::Url {
    let mut url = publisher.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(["apis", "export"]);
    }
    {
        let mut query = url.query_pairs_mut();
        if let Some((name, version)) = &selection.name_version {
            query
                .append_pair("name", name)
                .append_pair("version", version);
        }
        let label = selection.label.as_deref().unwrap_or_default();
        query.append_pair(
            "gatewayEnvironment",
            &base64::engine::general_purpose::STANDARD.encode(label),
        );
    }
    url
}

/// Fetches and unpacks the export for `selection` (`label` is required in 4.x).
pub async fn fetch(
    client: &ApimClient,
    token: &str,
    selection: &Selection,
) -> Result<Exported, ApimError> {
    let label = selection.label.clone().unwrap_or_default();
    let url = export_url(&client.endpoints.publisher, selection);
    let call = format!("gateway export (GET {url})");
    let (status, body, content_type) = client.get(&call, url, token).await?;
    match status {
        200 => {}
        401 | 403 => return Err(ApimError::Unauthorized { call, status }),
        404 => return Err(nothing(&label, selection)),
        _ => {
            return Err(ApimError::Status {
                call,
                status,
                body: excerpt(&body),
            })
        }
    }
    let is_zip = content_type.as_deref().is_some_and(|t| {
        t.starts_with("application/zip") || t.starts_with("application/octet-stream")
    }) || body.starts_with(b"PK");
    if !is_zip {
        return Err(ApimError::Malformed {
            call,
            problem: format!(
                "expected a zip (application/zip), got {}{}",
                content_type.as_deref().unwrap_or("no content type"),
                excerpt(&body)
            ),
        });
    }
    let exported = parse_export(&call, &body)?;
    let mut exported = Exported {
        apis: exported
            .apis
            .into_iter()
            .filter(|api| match &selection.name_version {
                Some((name, version)) => api.name == *name && api.version == *version,
                None => true,
            })
            .collect(),
        skipped: exported.skipped,
    };
    if exported.apis.is_empty() {
        let mut err = nothing(&label, selection).to_string();
        if !exported.skipped.is_empty() {
            err.push_str(&format!(
                " (skipped, not APIs: {})",
                exported.skipped.join(", ")
            ));
        }
        return Err(ApimError::NothingMatched(err));
    }
    dedupe(&mut exported.apis);
    Ok(exported)
}

/// Keeps the first API of each name and version, wherever the repeats are.
fn dedupe(apis: &mut Vec<ApimApi>) {
    let mut seen = std::collections::HashSet::new();
    apis.retain(|api| seen.insert((api.name.clone(), api.version.clone())));
}

fn nothing(label: &str, selection: &Selection) -> ApimError {
    let sentence =
        format!("No APIs found with the provided information for the given gateway label: {label}");
    ApimError::NothingMatched(match &selection.name_version {
        Some((name, version)) => {
            format!("{sentence} (no API named {name}, version {version} is deployed there)")
        }
        None => sentence,
    })
}

/// Unpacks an export: every deployment's inner zip, in `deployments.json` order, unpacking at
/// most [`MAX_UNPACKED_BYTES`] in all.
pub fn parse_export(call: &str, body: &[u8]) -> Result<Exported, ApimError> {
    parse_export_within(call, body, MAX_UNPACKED_BYTES)
}

/// [`parse_export`] with `limit` bytes to unpack at most; an inner zip named twice is read once.
fn parse_export_within(call: &str, body: &[u8], limit: usize) -> Result<Exported, ApimError> {
    let mut budget = limit;
    let malformed = |problem: String| ApimError::Malformed {
        call: call.to_string(),
        problem,
    };
    let mut outer = open_zip(body).map_err(|e| malformed(format!("not a readable zip ({e})")))?;
    let deployments_name = find_entry(&outer, |name| {
        name == "deployments.json" || name.ends_with("/deployments.json")
    })
    .ok_or_else(|| ApimError::Deployments {
        message: "Deployment file does not exist",
        call: call.to_string(),
        detail: "the export zip has no deployments.json".into(),
    })?;
    let deployments = read_entry(&mut outer, &deployments_name, &mut budget)
        .map_err(|e| malformed(format!("cannot read deployments.json ({e})")))?;
    let deployments_call = format!("{call} deployments.json");
    let json = parse_json(&deployments_call, &deployments)?;
    let list = json
        .pointer("/data/deployments")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("deployments.json has no data.deployments array".into()))?;
    if list.is_empty() {
        return Err(ApimError::Deployments {
            message: "No deployments found in the deployments file",
            call: call.to_string(),
            detail: "deployments.json lists none".into(),
        });
    }
    let mut exported = Exported::default();
    let mut read = std::collections::HashSet::new();
    for (index, deployment) in list.iter().enumerate() {
        let at = format!("{deployments_call} data.deployments[{index}]");
        let file = required_str(&at, deployment, "apiFile")?;
        let inner_name = find_entry(&outer, |name| {
            name == file || name.rsplit('/').next() == Some(file.as_str())
        })
        .ok_or_else(|| {
            malformed(format!(
                "deployments.json names {file}, which is not in the zip"
            ))
        })?;
        if !read.insert(inner_name.clone()) {
            continue;
        }
        let inner = read_entry(&mut outer, &inner_name, &mut budget)
            .map_err(|e| malformed(format!("cannot read {inner_name} ({e})")))?;
        match parse_project(&format!("{call} {inner_name}"), &inner, &mut budget)? {
            Project::Api(api) => exported.apis.push(api),
            Project::Other(name) => exported.skipped.push(name),
        }
    }
    Ok(exported)
}

enum Project {
    Api(ApimApi),
    Other(String),
}

/// One inner zip: an API project (`api.json` + `Definitions/swagger.json`) or something else.
fn parse_project(call: &str, bytes: &[u8], budget: &mut usize) -> Result<Project, ApimError> {
    let malformed = |problem: String| ApimError::Malformed {
        call: call.to_string(),
        problem,
    };
    let mut zip = open_zip(bytes).map_err(|e| malformed(format!("not a readable zip ({e})")))?;
    let at_depth = |name: &str, file: &str| {
        let parts: Vec<&str> = name.split('/').collect();
        parts.len() == 2 && parts[1] == file
    };
    let Some(api_json) = find_entry(&zip, |n| at_depth(n, "api.json")) else {
        // API Products (api_product.json) and other project types: not APIs this gateway serves.
        let product = find_entry(&zip, |n| at_depth(n, "api_product.json"));
        let name = product
            .and_then(|p| read_entry(&mut zip, &p, budget).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| {
                let data = v.get("data")?;
                Some(format!(
                    "API Product {} {}",
                    data.get("name")?.as_str()?,
                    data.get("version").and_then(Value::as_str).unwrap_or("")
                ))
            })
            .unwrap_or_else(|| {
                format!("{} (no api.json)", call.rsplit(' ').next().unwrap_or(call))
            });
        return Ok(Project::Other(name.trim().to_string()));
    };
    let dir = api_json.split('/').next().unwrap_or_default().to_string();
    let meta = read_entry(&mut zip, &api_json, budget)
        .map_err(|e| malformed(format!("cannot read {api_json} ({e})")))?;
    let meta_call = format!("{call} {api_json}");
    let meta = parse_json(&meta_call, &meta)?;
    let data = meta
        .get("data")
        .ok_or_else(|| malformed(format!("{api_json} has no `data` object")))?;
    let name = required_str(&meta_call, data, "name")?;
    let version = required_str(&meta_call, data, "version")?;
    let definition_name = format!("{dir}/Definitions/swagger.json");
    if find_entry(&zip, |n| n == definition_name).is_none() {
        return Err(malformed(format!("{definition_name} is missing")));
    }
    let definition = read_entry(&mut zip, &definition_name, budget)
        .map_err(|e| malformed(format!("cannot read {definition_name} ({e})")))?;
    let definition = String::from_utf8(definition)
        .map_err(|_| malformed(format!("{definition_name} is not UTF-8 text")))?;
    Ok(Project::Api(ApimApi {
        name,
        version,
        definition,
    }))
}

fn open_zip(bytes: &[u8]) -> Result<zip::ZipArchive<Cursor<&[u8]>>, String> {
    let zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    if zip.len() > MAX_ENTRIES {
        return Err(format!("more than {MAX_ENTRIES} entries"));
    }
    Ok(zip)
}

fn find_entry(
    zip: &zip::ZipArchive<Cursor<&[u8]>>,
    wanted: impl Fn(&str) -> bool,
) -> Option<String> {
    zip.file_names()
        .filter_map(Result::ok)
        .filter(|n| !n.ends_with('/'))
        .find(|n| wanted(n))
        .map(|n| n.into_owned())
}

/// Reads one entry, refusing to inflate past [`MAX_ANSWER_BYTES`] or past what is left of the
/// export's `budget` (zip bombs), and takes what it read from the budget.
fn read_entry(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    budget: &mut usize,
) -> Result<Vec<u8>, String> {
    let entry = zip.by_name(name).map_err(|e| e.to_string())?;
    let cap = MAX_ANSWER_BYTES.min(*budget);
    let mut bytes = Vec::new();
    entry
        .take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() > *budget {
        return Err(format!(
            "the export unpacks to more than {} MiB in all",
            MAX_UNPACKED_BYTES >> 20
        ));
    }
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(format!("larger than {} MiB", MAX_ANSWER_BYTES >> 20));
    }
    *budget -= bytes.len();
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in files {
            writer.start_file(*name, options).unwrap();
            writer.write_all(content).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn api_zip(dir: &str, name: &str, version: &str) -> Vec<u8> {
        zip_of(&[
            (
                &format!("{dir}/api.json"),
                format!(r#"{{"type":"api","data":{{"name":"{name}","version":"{version}"}}}}"#)
                    .as_bytes(),
            ),
            (
                &format!("{dir}/Definitions/swagger.json"),
                format!(
                    r#"{{"openapi":"3.0.1","info":{{"title":"{name}","version":"{version}"}}}}"#
                )
                .as_bytes(),
            ),
        ])
    }

    #[test]
    fn urls_encode_the_label_in_base64() {
        let publisher = url::Url::parse("https://apim:9443/api/am/publisher/v4").unwrap();
        let selection = Selection {
            label: Some("Default>".into()),
            name_version: Some(("Pet Store".into(), "1".into())),
        };
        assert_eq!(
            export_url(&publisher, &selection).as_str(),
            "https://apim:9443/api/am/publisher/v4/apis/export?name=Pet+Store&version=1&gatewayEnvironment=RGVmYXVsdD4%3D"
        );
    }

    #[test]
    fn exports_are_unpacked_and_products_skipped() {
        let product = zip_of(&[(
            "Bundle-1/api_product.json",
            br#"{"type":"api_product","data":{"name":"Bundle","version":"1"}}"#,
        )]);
        let outer = zip_of(&[
            (
                "deployments.json",
                br#"{"type":"deployment_environments","data":{"deployments":[
                    {"apiFile":"Pets-1.zip","environments":["Default"]},
                    {"apiFile":"Bundle-1.zip"},
                    {"apiFile":"Shop-2.zip"}]}}"#,
            ),
            ("Pets-1.zip", &api_zip("Pets-1", "Pets", "1")),
            ("Bundle-1.zip", &product),
            ("Shop-2.zip", &api_zip("Shop-2", "Shop", "2")),
        ]);
        let exported = parse_export("export", &outer).unwrap();
        let names: Vec<_> = exported.apis.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["Pets", "Shop"]);
        assert_eq!(exported.skipped, ["API Product Bundle 1"]);
        assert!(exported.apis[0].definition.contains("openapi"));
    }

    #[test]
    fn repeats_are_dropped_even_when_not_adjacent() {
        let api = |name: &str, version: &str, definition: &str| ApimApi {
            name: name.into(),
            version: version.into(),
            definition: definition.into(),
        };
        let mut apis = vec![
            api("A", "1", "first"),
            api("B", "1", "b"),
            api("A", "1", "second"),
            api("A", "2", "a2"),
            api("B", "1", "b again"),
        ];
        dedupe(&mut apis);
        let kept: Vec<_> = apis.iter().map(|a| a.definition.as_str()).collect();
        assert_eq!(kept, ["first", "b", "a2"]);
    }

    #[test]
    fn the_whole_export_has_one_size_limit_and_repeats_are_read_once() {
        let pets = api_zip("Pets-1", "Pets", "1");
        let deployments: &[u8] = br#"{"data":{"deployments":[
                    {"apiFile":"Pets-1.zip"},{"apiFile":"Pets-1.zip"},{"apiFile":"Pets-1.zip"}]}}"#;
        let outer = zip_of(&[("deployments.json", deployments), ("Pets-1.zip", &pets)]);
        // Enough for deployments.json and one copy of the API (its zip and what it holds).
        let one = deployments.len() + pets.len() + 200;
        assert!(one < deployments.len() + 2 * pets.len());
        let exported = parse_export_within("export", &outer, one).unwrap();
        assert_eq!(exported.apis.len(), 1, "the repeated apiFile is read once");
        let err = parse_export_within("export", &outer, 100)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 128 MiB in all"), "{err}");
        // The limit counts the inner zips' entries too.
        let err = parse_export_within("export", &outer, deployments.len() + pets.len() + 20)
            .unwrap_err()
            .to_string();
        assert!(err.contains("in all"), "{err}");
    }

    #[test]
    fn broken_exports_say_what_is_wrong() {
        let err = parse_export("export", b"not a zip")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a readable zip"), "{err}");
        let no_deployments = zip_of(&[("x.zip", b"x")]);
        let err = parse_export("export", &no_deployments)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Deployment file does not exist (export: ")
                && err.contains("no deployments.json"),
            "{err}"
        );
        let empty = zip_of(&[("deployments.json", br#"{"data":{"deployments":[]}}"#)]);
        let err = parse_export("export", &empty).unwrap_err().to_string();
        assert!(
            err.starts_with("No deployments found in the deployments file"),
            "{err}"
        );
        let dangling = zip_of(&[(
            "deployments.json",
            br#"{"data":{"deployments":[{"apiFile":"gone.zip"}]}}"#,
        )]);
        let err = parse_export("export", &dangling).unwrap_err().to_string();
        assert!(err.contains("gone.zip"), "{err}");
        let no_definition = zip_of(&[
            (
                "deployments.json",
                br#"{"data":{"deployments":[{"apiFile":"a.zip"}]}}"#,
            ),
            (
                "a.zip",
                &zip_of(&[("a/api.json", br#"{"data":{"name":"A","version":"1"}}"#)]),
            ),
        ]);
        let err = parse_export("export", &no_definition)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a/Definitions/swagger.json is missing"),
            "{err}"
        );
    }
}
