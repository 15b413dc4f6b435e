//! The request path's middle: a route's pipeline of steps, run in a request phase (in order,
//! until a step answers) and a response phase (the steps that ran, in reverse), then handed to
//! the log phase (DESIGN.md, "The request path: pipelines").
//!
//! Every [`crate::model::PolicySpec`] becomes a [`ReadyPolicy`] when the gateway starts, by
//! its own factory; a factory error names the pipeline and the step. Dispatch is a `match` on
//! the closed enum: no boxed future per step.

pub mod condition;
pub mod context;
pub mod express_body;
pub mod step;

use std::sync::Arc;

use http::request::Parts;
use http::Response;

use crate::config::ForwardingConfig;
use crate::gateway::RequestLimits;
use crate::model::{Dialect, GatewayModel, Pipeline, PolicySpec};
use crate::proxy::body::{ClientBody, GatewayBody};
use crate::proxy::upstream::Upstream;
use crate::proxy::UpstreamClient;
use condition::ReadyCondition;
pub use context::{Context, Matched};
use step::{Decided, ReadyPolicy};

use crate::telemetry::metrics::{AuthOutcome, AuthScheme, Metrics, StepTelemetry};

/// What steps share across requests: upstreams, the client, validators, limits.
pub struct Services {
    /// Every endpoint of the model, by index.
    pub upstreams: Vec<Upstream>,
    /// The upstream client.
    pub client: UpstreamClient,
    /// Credential validation (WSO2 `authenticate`, `/apikey`).
    pub auth: crate::auth::Authenticator,
    /// Per-request limits.
    pub limits: RequestLimits,
    /// Trusted proxies for `X-Forwarded-*`.
    pub forwarding: ForwardingConfig,
    /// Strip credentials before forwarding (`security.remove_credential_header`).
    pub remove_credential_header: bool,
    /// Express Gateway consumers (key-auth, basic-auth), when the project has EG
    /// configurations.
    pub consumers: Option<Arc<crate::store::Consumers>>,
    /// The `eg` counter of `metrics` steps (served on the admin listener).
    pub metrics: Arc<crate::policies::metrics::EgCounter>,
    /// Rate-limit counters (in memory, or in Redis shared by replicas).
    pub counters: Arc<crate::counters::Counters>,
    /// The Prometheus series (`[metrics]`); `None` when metrics are off.
    pub telemetry: Option<Arc<crate::telemetry::metrics::Metrics>>,
    /// W3C trace context (`[tracing]`): each request's trace, sent upstream by the proxy step.
    pub tracing: crate::telemetry::trace_context::Propagation,
}

/// A step that cannot be made ready.
#[derive(Debug, thiserror::Error)]
#[error("pipeline '{pipeline}' ({source_file}), step {step} ({policy}): {reason}")]
pub struct PipelineError {
    /// The pipeline's name.
    pub pipeline: String,
    /// Its source file.
    pub source_file: String,
    /// 1-based step number.
    pub step: usize,
    /// The policy's name.
    pub policy: String,
    /// Why.
    pub reason: String,
}

/// Most steps in one pipeline (the response phase keeps a bit per step).
pub const MAX_STEPS: usize = 128;

/// A pipeline ready to run.
pub struct ReadyPipeline {
    /// The name, for logs.
    pub name: String,
    /// Whose conventions its own answers follow.
    pub dialect: Dialect,
    steps: Vec<ReadyStep>,
    /// Some step acts in the response phase (skip the phase entirely when none does).
    has_response_phase: bool,
    /// Every step leaves an upstream answer's fields to be passed on as received
    /// ([`ReadyPolicy::keeps_answer_fields`]).
    keeps_answer_fields: bool,
}

struct ReadyStep {
    condition: Option<ReadyCondition>,
    /// The condition needs the parsed request body (`json-schema`).
    condition_reads_body: bool,
    policy: ReadyPolicy,
    /// What the step's decision counts in (authentication, rate limits).
    telemetry: StepTelemetry,
}

/// Makes every pipeline of `model` ready, in model order; `env` resolves `${VAR}` settings,
/// `client` makes the policies' outbound calls (introspection).
pub fn build_all(
    model: &GatewayModel,
    env: &dyn Fn(&str) -> Option<String>,
    client: &crate::auth::outbound::OutboundClient,
) -> Result<Vec<ReadyPipeline>, Vec<PipelineError>> {
    let mut ready = Vec::with_capacity(model.pipelines.len());
    let mut errors = Vec::new();
    for pipeline in &model.pipelines {
        match ReadyPipeline::new(pipeline, model, env, Some(client)) {
            Ok(p) => ready.push(p),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(ready)
    } else {
        Err(errors)
    }
}

impl ReadyPipeline {
    /// Makes one pipeline ready (`client`: see [`ReadyPolicy::new`]).
    pub fn new(
        pipeline: &Pipeline,
        model: &GatewayModel,
        env: &dyn Fn(&str) -> Option<String>,
        client: Option<&crate::auth::outbound::OutboundClient>,
    ) -> Result<Self, Vec<PipelineError>> {
        let error = |step: usize, policy: &str, reason: String| PipelineError {
            pipeline: pipeline.name.clone(),
            source_file: pipeline.source.clone(),
            step: step + 1,
            policy: policy.to_string(),
            reason,
        };
        let mut errors = Vec::new();
        if pipeline.steps.len() > MAX_STEPS {
            errors.push(error(
                MAX_STEPS,
                "-",
                format!("a pipeline may have at most {MAX_STEPS} steps"),
            ));
        }
        let mut steps = Vec::with_capacity(pipeline.steps.len());
        for (i, step) in pipeline.steps.iter().enumerate() {
            let condition = match step.condition.as_ref().map(ReadyCondition::new).transpose() {
                Ok(c) => c,
                Err(e) => {
                    errors.push(error(i, step.policy.name(), e.to_string()));
                    continue;
                }
            };
            match ReadyPolicy::new(&step.policy, pipeline.dialect, model, env, client) {
                Ok(policy) => steps.push(ReadyStep {
                    condition_reads_body: condition
                        .as_ref()
                        .is_some_and(ReadyCondition::reads_body),
                    condition,
                    policy,
                    telemetry: StepTelemetry::of(&step.policy),
                }),
                Err(reason) => errors.push(error(i, step.policy.name(), reason)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            name: pipeline.name.clone(),
            dialect: pipeline.dialect,
            has_response_phase: steps.iter().any(|s| s.policy.has_response_phase()),
            keeps_answer_fields: steps.iter().all(|s| s.policy.keeps_answer_fields()),
            steps,
        })
    }

    /// True when the first step is CORS, which answers preflights before anything else.
    pub fn answers_preflights(&self) -> bool {
        self.steps
            .first()
            .is_some_and(|s| matches!(s.policy, ReadyPolicy::Cors(_)) && s.condition.is_none())
    }

    /// A pipeline of one built-in step (health, API key service).
    pub fn builtin(name: &str, policy: &PolicySpec, model: &GatewayModel) -> Self {
        let policy = ReadyPolicy::new(policy, Dialect::Wso2, model, &|_| None, None)
            .unwrap_or_else(|_| ReadyPolicy::Health);
        Self {
            name: name.to_string(),
            dialect: Dialect::Wso2,
            has_response_phase: policy.has_response_phase(),
            keeps_answer_fields: policy.keeps_answer_fields(),
            steps: vec![ReadyStep {
                condition: None,
                condition_reads_body: false,
                policy,
                telemetry: StepTelemetry::None,
            }],
        }
    }

    /// Runs the request phase, then the response phase over the steps that ran, and leaves
    /// the response in `answer` (always `Some` when it returns). The request's head is lent,
    /// not given (a move would copy it into each future on the way); a proxy step spends it
    /// (`proxy::forward`) unless the response phase reads it, so the caller only drops it
    /// afterwards. The response is written to the caller's slot, not returned: a future's
    /// output is copied into its `Poll` and again into the caller (224 bytes each time), and
    /// the response phase works on it where it is.
    pub async fn run(
        &self,
        services: &Services,
        context: &mut Context<'_>,
        parts: &mut Parts,
        body: ClientBody,
        answer: &mut Option<Response<GatewayBody>>,
    ) {
        // A response phase may read or change the answer's fields: they go into its map.
        context.fields_as_received &= self.keeps_answer_fields;
        let mut body = Some(body);
        let mut ran: u128 = 0;
        *answer = None;
        for (i, step) in self.steps.iter().enumerate() {
            if let Some(condition) = &step.condition {
                if step.condition_reads_body && context.body_json.is_none() {
                    match express_body::read(services, self.dialect, context, parts, &mut body)
                        .await
                    {
                        Ok(json) => context.body_json = Some(json),
                        Err(response) => {
                            *answer = Some(response);
                            break;
                        }
                    }
                }
                if !condition.holds(parts, context) {
                    continue;
                }
            }
            ran |= 1u128 << (i % MAX_STEPS);
            let decided = step
                .policy
                .request(
                    services,
                    self.dialect,
                    context,
                    parts,
                    &mut body,
                    self.has_response_phase,
                    answer,
                )
                .await;
            if step.telemetry != StepTelemetry::None {
                if let Some(metrics) = &services.telemetry {
                    count_step(metrics, step.telemetry, decided, context);
                }
            }
            if decided == Decided::Answered {
                break;
            }
        }
        let response = answer.get_or_insert_with(|| self.fell_through(parts));
        if self.has_response_phase {
            for (i, step) in self.steps.iter().enumerate().rev() {
                if ran & (1u128 << (i % MAX_STEPS)) != 0 {
                    step.policy
                        .response(services, context, parts, response)
                        .await;
                }
            }
        }
    }

    /// No step answered. Express would pass the request on to its final handler: a 404
    /// `Cannot <METHOD> <path>`; a WSO2 pipeline always ends in a proxy, so this is ours.
    fn fell_through(&self, parts: &Parts) -> Response<GatewayBody> {
        match self.dialect {
            Dialect::ExpressGateway => crate::respond::express_not_found(
                parts.method.as_str(),
                parts.uri.path_and_query().map_or("/", |pq| pq.as_str()),
            ),
            Dialect::Wso2 => {
                tracing::error!(pipeline = %self.name, "no step answered the request");
                crate::fault::INTERNAL_ERROR.response()
            }
        }
    }
}

/// Counts an authentication or rate-limit step's decision: a step that answered refused the
/// request; one that let it go on admitted it (authenticated, or anonymous when it passed it
/// on without a credential).
fn count_step(
    metrics: &Metrics,
    telemetry: StepTelemetry,
    decided: Decided,
    context: &Context<'_>,
) {
    let went_on = decided == Decided::Continue;
    match telemetry {
        StepTelemetry::None => {}
        StepTelemetry::Limit(policy) => metrics.limit(policy, went_on),
        StepTelemetry::Auth { failure } => {
            if !went_on {
                metrics.auth(failure, AuthOutcome::Failure);
                return;
            }
            // A WSO2 step is counted under the credential it verified.
            let scheme = match context.grant.as_ref().map(|g| g.kind) {
                Some(crate::auth::cache::CredentialKind::Oauth2) => AuthScheme::Oauth2,
                Some(crate::auth::cache::CredentialKind::ApiKey) => AuthScheme::Apikey,
                Some(crate::auth::cache::CredentialKind::Basic) => AuthScheme::Basic,
                None => failure,
            };
            let outcome = if context.authenticated || context.grant.is_some() {
                AuthOutcome::Success
            } else {
                AuthOutcome::Anonymous
            };
            metrics.auth(scheme, outcome);
        }
    }
}
