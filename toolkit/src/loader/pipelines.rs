//! Compiles each WSO2 resource into the pipeline that serves it (DESIGN.md, "The request path"):
//! `[cors?, authenticate?, throttle?, validate?, proxy]`. Resources with equal pipelines share one entry of
//! [`GatewayModel::pipelines`].

use std::collections::HashMap;

use mgw_runtime::model::policy::Authenticate;
use mgw_runtime::model::{Api, Dialect, GatewayModel, Pipeline, PolicySpec, Resource, Step};
use mgw_runtime::policies::cors::CorsSpec;
use mgw_runtime::policies::proxy::{EndpointChoice, PathRewrite, ProxySpec};
use mgw_runtime::policies::throttling::ThrottleSpec;
use mgw_runtime::policies::validate::ValidateSpec;

/// The steps of one WSO2 resource, in the fixed order: CORS (answers preflights before any
/// credential is asked for), authentication, throttling, validation (a rejected request has
/// still counted), then the proxy to the production or sandbox endpoint by the key type of the
/// grant.
pub fn wso2_steps(
    resource: &Resource,
    cors: Option<&CorsSpec>,
    throttle: Option<&ThrottleSpec>,
    validate: Option<&ValidateSpec>,
) -> Vec<Step> {
    let mut steps = Vec::with_capacity(5);
    if let Some(cors) = cors {
        steps.push(Step::always(PolicySpec::Cors(cors.clone())));
    }
    if let Some(security) = &resource.security {
        steps.push(Step::always(PolicySpec::Authenticate(Authenticate {
            security: security.clone(),
        })));
    }
    if let Some(throttle) = throttle {
        steps.push(Step::always(PolicySpec::Throttle(throttle.clone())));
    }
    if let Some(validate) = validate {
        steps.push(Step::always(PolicySpec::Validate(validate.clone())));
    }
    steps.push(Step::always(PolicySpec::Proxy(ProxySpec {
        endpoint: EndpointChoice::ByKeyType {
            production: resource.production,
            sandbox: resource.sandbox,
        },
        path: PathRewrite::Remainder,
        change_origin: true,
        forwarded_headers: true,
        request_id_header: false,
        timeout_ms: None,
        headers: Vec::new(),
    })));
    steps
}

/// Gives every resource of `model.apis` its pipeline, appending new pipelines to
/// `model.pipelines` and reusing equal ones. `cors` is the CORS step of each API (same order
/// as `model.apis`), if it has one; `throttles` and `validations` the throttle and validate
/// steps of each of its resources.
pub fn compile_wso2(
    model: &mut GatewayModel,
    cors: &[Option<CorsSpec>],
    throttles: &[Vec<Option<ThrottleSpec>>],
    validations: &[Vec<Option<ValidateSpec>>],
) {
    let mut index: HashMap<String, usize> = HashMap::new();
    for (existing, pipeline) in model.pipelines.iter().enumerate() {
        index.insert(key(pipeline), existing);
    }
    let GatewayModel {
        apis, pipelines, ..
    } = model;
    for (api_index, api) in apis.iter_mut().enumerate() {
        let api_cors = cors.get(api_index).and_then(Option::as_ref);
        let Api {
            name,
            source,
            resources,
            ..
        } = api;
        let api_throttles = throttles.get(api_index);
        let api_validations = validations.get(api_index);
        for (resource_index, resource) in resources.iter_mut().enumerate() {
            let throttle = api_throttles
                .and_then(|t| t.get(resource_index))
                .and_then(Option::as_ref);
            let validate = api_validations
                .and_then(|v| v.get(resource_index))
                .and_then(Option::as_ref);
            let pipeline = Pipeline {
                name: format!("{name}: {} {}", resource.method, resource.path),
                source: source.clone(),
                dialect: Dialect::Wso2,
                steps: wso2_steps(resource, api_cors, throttle, validate),
            };
            let k = key(&pipeline);
            resource.pipeline = *index.entry(k).or_insert_with(|| {
                pipelines.push(pipeline);
                pipelines.len() - 1
            });
        }
    }
}

/// Pipelines are equal when their dialect and steps are (names and sources are for messages).
fn key(pipeline: &Pipeline) -> String {
    serde_json::to_string(&(&pipeline.dialect, &pipeline.steps)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mgw_runtime::model::{AuthScheme, Security, MODEL_FORMAT};

    fn resource(method: &str, security: Option<Security>) -> Resource {
        Resource {
            method: method.into(),
            path: "/x".into(),
            operation_id: None,
            production: Some(0),
            sandbox: None,
            security,
            pipeline: usize::MAX,
        }
    }

    #[test]
    fn resources_get_authenticate_then_proxy_and_share_equal_pipelines() {
        let secured = Security {
            schemes: vec![AuthScheme::Oauth2],
            optional: false,
            scopes: vec![],
            auth_header: "Authorization".into(),
        };
        let mut model = GatewayModel {
            format: MODEL_FORMAT,
            project: "p".into(),
            apis: vec![Api {
                id: "a".into(),
                name: "A".into(),
                version: "1".into(),
                base_path: "/a".into(),
                source: "a.yaml".into(),
                resources: vec![
                    resource("GET", Some(secured.clone())),
                    resource("POST", Some(secured)),
                    resource("PUT", None),
                ],
                allow_encoded_slash: false,
            }],
            endpoints: vec![],
            pipelines: vec![],
            express: vec![],
        };
        compile_wso2(&mut model, &[None], &[], &[]);
        let r = &model.apis[0].resources;
        assert_eq!((r[0].pipeline, r[1].pipeline, r[2].pipeline), (0, 0, 1));
        assert_eq!(model.pipelines.len(), 2);
        let names: Vec<&str> = model.pipelines[0]
            .steps
            .iter()
            .map(|s| s.policy.name())
            .collect();
        assert_eq!(names, ["authenticate", "proxy"]);
        assert_eq!(model.pipelines[1].steps.len(), 1);
        assert_eq!(model.pipelines[0].dialect, Dialect::Wso2);
    }
}
