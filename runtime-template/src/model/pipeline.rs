//! Pipelines: the ordered steps a routed request runs through (DESIGN.md, "The request path").
//!
//! Both families share this shape. The toolkit compiles a WSO2 resource into the fixed pipeline
//! `[cors?, authenticate?, proxy]` and an Express Gateway pipeline into exactly its declared
//! steps (`gateway.config.yml` `pipelines.<name>.policies`, one step per action).

use serde::{Deserialize, Serialize};

use super::condition::Condition;
use super::policy::PolicySpec;

/// Whose conventions a pipeline's own answers follow: rejection statuses and bodies, the 404 of
/// an unmatched request, which headers the proxy adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// WSO2 API Microgateway 3.x: JSON fault bodies with 9009xx/9008xx codes.
    Wso2,
    /// Express Gateway 1.x: plain-text `Unauthorized`/`Forbidden`, Express's HTML 404.
    ExpressGateway,
}

/// An ordered list of steps, run in the request phase in order and in the response phase in
/// reverse order of the steps that ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// The pipeline's name: the Express Gateway pipeline name, or `<api name>:<method> <path>`
    /// for a compiled WSO2 resource (for messages and logs).
    pub name: String,
    /// The file it was compiled from, relative to the project (for messages).
    pub source: String,
    /// Rejection conventions.
    pub dialect: Dialect,
    /// The steps, in declaration order.
    pub steps: Vec<Step>,
}

/// One policy action, run when its condition holds (always, without one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Express Gateway's `condition`; `None` runs the step unconditionally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// What the step does.
    pub policy: PolicySpec,
}

impl Step {
    /// A step that always runs.
    pub fn always(policy: PolicySpec) -> Self {
        Self {
            condition: None,
            policy,
        }
    }
}
