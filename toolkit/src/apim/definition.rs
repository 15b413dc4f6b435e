//! Turns a definition from the API Manager into the file `build` reads: under
//! `gen/api_definitions/`, named by WSO2's API id (`api_` + SHA-256 of `name:version`) followed
//! by `swagger.json` (Swagger 2.0) or `openAPI.yaml` (OpenAPI 3), as WSO2's toolkit names them.

use serde_json::Value;

use super::{ApimApi, ApimError};
use crate::loader::openapi::api_id;

/// A definition ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// `api_<sha256>` as the loader computes it from the title and version written here.
    pub id: String,
    /// The file name inside `gen/api_definitions/`.
    pub file_name: String,
    /// The content.
    pub text: String,
}

/// Reads the definition, keeps every `x-wso2-*` extension, and sets `info.title` and
/// `info.version` to the API's name and version, so the id `build` computes is the one the
/// file is named by (WSO2's toolkit sets the title the same way).
pub fn prepare(api: &ApimApi) -> Result<Prepared, ApimError> {
    let call = format!("definition of {} {}", api.name, api.version);
    let malformed = |problem: String| ApimError::Malformed {
        call: call.clone(),
        problem,
    };
    let mut value: Value = match serde_json::from_str(&api.definition) {
        Ok(value) => value,
        Err(json_err) => serde_yaml::from_str(&api.definition)
            .map_err(|_| malformed(format!("neither JSON nor YAML ({json_err})")))?,
    };
    let Some(root) = value.as_object_mut() else {
        return Err(malformed(
            "not an OpenAPI or Swagger document (not a mapping)".into(),
        ));
    };
    let swagger2 = match (root.get("swagger"), root.get("openapi")) {
        (Some(Value::String(v)), _) if v == "2.0" => true,
        (_, Some(Value::String(v))) if v.starts_with("3.") => false,
        _ => return Err(malformed(
            "not an OpenAPI 3.x or Swagger 2.0 document (no `openapi: 3.x` or `swagger: \"2.0\"`)"
                .into(),
        )),
    };
    let info = root
        .entry("info")
        .or_insert_with(|| Value::Object(Default::default()));
    let Some(info) = info.as_object_mut() else {
        return Err(malformed("`info` is not a mapping".into()));
    };
    info.insert("title".into(), Value::String(api.name.clone()));
    info.insert("version".into(), Value::String(api.version.clone()));
    let id = api_id(&api.name, &api.version);
    let (file_name, text) = if swagger2 {
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| malformed(format!("cannot write it back as JSON ({e})")))?;
        (format!("{id}swagger.json"), text + "\n")
    } else {
        let text = serde_yaml::to_string(&value)
            .map_err(|e| malformed(format!("cannot write it back as YAML ({e})")))?;
        (format!("{id}openAPI.yaml"), text)
    };
    Ok(Prepared {
        id,
        file_name,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::{self, SourceFile};

    fn api(definition: &str) -> ApimApi {
        ApimApi {
            name: "PizzaShackAPI".into(),
            version: "1.0.0".into(),
            definition: definition.into(),
        }
    }

    #[test]
    fn oas3_keeps_extensions_and_loads_under_the_same_id() {
        let prepared = prepare(&api(
            r#"{"openapi":"3.0.1","info":{"title":"pizza","version":"1.0.0"},
                "x-wso2-basePath":"/pizzashack/1.0.0",
                "x-wso2-production-endpoints":{"urls":["https://localhost:9443/am/sample/pizzashack/v1/api/"],"type":"http"},
                "x-wso2-auth-header":"Authorization",
                "x-wso2-transports":["http","https"],
                "paths":{"/menu":{"get":{"x-auth-type":"Application & Application User","x-throttling-tier":"Unlimited"}}}}"#,
        ))
        .unwrap();
        assert_eq!(prepared.id, api_id("PizzaShackAPI", "1.0.0"));
        assert!(prepared.id.starts_with("api_") && prepared.id.len() == 4 + 64);
        assert!(prepared.file_name.ends_with("openAPI.yaml"));
        assert!(prepared.text.contains("x-wso2-basePath: /pizzashack/1.0.0"));
        let loaded = loader::load(
            "p",
            &[SourceFile {
                name: prepared.file_name.clone(),
                text: prepared.text.clone(),
            }],
        )
        .unwrap();
        assert_eq!(loaded.model.apis[0].id, prepared.id);
        assert_eq!(loaded.model.apis[0].name, "PizzaShackAPI");
    }

    #[test]
    fn swagger2_stays_json_and_other_documents_are_refused() {
        let prepared = prepare(&api(
            "swagger: '2.0'\ninfo: {title: x, version: '2'}\npaths: {}\n",
        ))
        .unwrap();
        assert!(prepared.file_name.ends_with("swagger.json"));
        assert!(prepared.text.contains("\"title\": \"PizzaShackAPI\""));
        assert_eq!(prepared.file_name, format!("{}swagger.json", prepared.id));
        for bad in [
            "[1, 2]",
            "<html>",
            "{\"openapi\": \"2.5\"}",
            "{\"swagger\":\"2.0\",\"info\":3}",
        ] {
            let err = prepare(&api(bad)).unwrap_err().to_string();
            assert!(
                err.starts_with("definition of PizzaShackAPI 1.0.0"),
                "{err}"
            );
        }
    }
}
