//! The ready `throttle` step: the request phase counts the resource (or API), subscription and
//! application tiers in WSO2's order and refuses with the first one over quota; the response
//! phase adds the IETF `RateLimit` / `RateLimit-Policy` headers of the tightest tier.

use std::collections::HashMap;

use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::Response;

use super::{ThrottleSpec, Tier, TierLevel, UNAUTHENTICATED, UNLIMITED};
use crate::counters::{Algorithm, Counters, Decision, Limit, Source};
use crate::fault::{self, Fault};
use crate::pipeline::context::Context;
use crate::pipeline::step::Flow;
use crate::pipeline::Services;
use crate::proxy::body::GatewayBody;

/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers-08 and later).
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// `RateLimit-Policy`.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Key prefix: WSO2 counters never share a key with a `rate-limit` step's.
const PREFIX: &str = "wso2-throttle";

/// A tier ready to count.
#[derive(Debug, Clone)]
struct ReadyTier {
    name: String,
    limit: Limit,
    stop: bool,
    /// `count: 0`: nothing is admitted.
    zero: bool,
    /// `RateLimit-Policy`, made once.
    policy: HeaderValue,
}

impl ReadyTier {
    fn new(tier: &Tier) -> Result<Self, String> {
        if tier.window_ms == 0 {
            return Err(format!(
                "tier {}: the window must be at least 1 ms",
                tier.name
            ));
        }
        let policy = format!(
            "{};q={};w={}",
            quoted(&tier.name),
            tier.count,
            tier.window_ms.div_ceil(1000)
        );
        Ok(Self {
            name: tier.name.clone(),
            limit: Limit {
                // WSO2 counts in fixed windows; `count: 0` admits nothing there, but 0 means
                // "no limit" to the counters, so it is refused below.
                max: tier.count.max(1),
                window_ms: tier.window_ms,
                algorithm: Algorithm::FixedWindow,
            },
            stop: tier.stop_on_quota_reach,
            zero: tier.count == 0,
            policy: HeaderValue::from_str(&policy).map_err(|_| {
                format!("tier {:?}: the name cannot be sent in a header", tier.name)
            })?,
        })
    }
}

/// An sf-string: the name in quotes, `"` and `\` escaped, other bytes outside 0x20..0x7e dropped.
fn quoted(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The headers of the tightest tier counted for a request, for the response phase.
#[derive(Debug, Clone)]
pub struct ThrottleNote {
    ratelimit: HeaderValue,
    policy: HeaderValue,
}

/// A `throttle` step ready to run.
#[derive(Debug)]
pub struct ThrottleStep {
    tier: Option<(ReadyTier, String, &'static Fault)>,
    api_name: String,
    api_version: String,
    api_key: String,
    applications: HashMap<String, ReadyTier>,
    subscriptions: HashMap<String, ReadyTier>,
    unsecured: bool,
}

fn by_name(tiers: &[Tier]) -> Result<HashMap<String, ReadyTier>, String> {
    tiers
        .iter()
        .map(|t| Ok((t.name.clone(), ReadyTier::new(t)?)))
        .collect()
}

/// The outcome of counting one tier.
// Boxing the response would allocate on every refusal; the enum lives on the stack briefly.
#[allow(clippy::large_enum_variant)]
enum Counted {
    Pass,
    Refuse(Response<GatewayBody>),
}

impl ThrottleStep {
    /// Checks the spec.
    pub fn new(spec: &ThrottleSpec) -> Result<Self, String> {
        let tier = match &spec.tier {
            Some((level, tier)) => {
                let (key, fault) = match level {
                    TierLevel::Api => (spec.api_key.clone(), &fault::API_THROTTLED),
                    TierLevel::Resource => (spec.resource_key.clone(), &fault::RESOURCE_THROTTLED),
                };
                Some((ReadyTier::new(tier)?, format!("{PREFIX}:res:{key}"), fault))
            }
            None => None,
        };
        Ok(Self {
            tier,
            api_name: spec.api_name.clone(),
            api_version: spec.api_version.clone(),
            api_key: spec.api_key.clone(),
            applications: by_name(&spec.applications)?,
            subscriptions: by_name(&spec.subscriptions)?,
            unsecured: spec.unsecured,
        })
    }

    /// The request phase.
    pub async fn request(&self, services: &Services, context: &mut Context<'_>) -> Flow {
        let mut tightest: Option<(Decision, &ReadyTier)> = None;
        if let Some((tier, key, fault)) = &self.tier {
            if let Counted::Refuse(r) =
                count(&services.counters, tier, key, fault, &mut tightest).await
            {
                return Flow::Respond(r);
            }
        }
        // The subscription tier: the credential's for this API, `Unauthenticated` per client
        // address on unsecured resources (WSO2 uses the client IP as the application id there).
        let claims = context.grant.as_ref().and_then(|g| g.throttling.clone());
        // Made only when a subscription or application tier is counted (the key names it).
        let client = context.client.ip();
        let app_id = || match &claims {
            Some(c) => c.application_id.clone().unwrap_or_else(|| c.user.clone()),
            None => client.to_string(),
        };
        let user = claims.as_ref().map_or("anonymous", |c| c.user.as_str());
        let subscription: Option<&str> = if self.unsecured && context.grant.is_none() {
            Some(UNAUTHENTICATED)
        } else {
            claims.as_ref().and_then(|c| {
                c.subscriptions
                    .iter()
                    .find(|(api, _)| api.matches(&self.api_name, &self.api_version))
                    .map(|(_, tier)| tier.as_str())
            })
        };
        if let Some(name) = subscription.filter(|n| *n != UNLIMITED) {
            let Some(tier) = self.subscriptions.get(name) else {
                if name == UNAUTHENTICATED {
                    // No `Unauthenticated` policy in policies.yaml: nothing to count.
                    return self.finish(context, tightest);
                }
                tracing::warn!("throttling: subscription tier {name:?} is not in policies.yaml");
                return Flow::Respond(fault::POLICY_NOT_FOUND.response());
            };
            let key = format!("{PREFIX}:sub:{}:{}", app_id(), self.api_key);
            let fault = &fault::SUBSCRIPTION_THROTTLED;
            if let Counted::Refuse(r) =
                count(&services.counters, tier, &key, fault, &mut tightest).await
            {
                return Flow::Respond(r);
            }
        }
        let application = claims.as_ref().and_then(|c| c.application_tier.as_deref());
        if let Some(name) = application.filter(|n| *n != UNLIMITED) {
            let Some(tier) = self.applications.get(name) else {
                tracing::warn!("throttling: application tier {name:?} is not in policies.yaml");
                return Flow::Respond(fault::POLICY_NOT_FOUND.response());
            };
            let key = format!("{PREFIX}:app:{}:{user}", app_id());
            let fault = &fault::APPLICATION_THROTTLED;
            if let Counted::Refuse(r) =
                count(&services.counters, tier, &key, fault, &mut tightest).await
            {
                return Flow::Respond(r);
            }
        }
        self.finish(context, tightest)
    }

    fn finish(&self, context: &mut Context<'_>, tightest: Option<(Decision, &ReadyTier)>) -> Flow {
        context.throttle = tightest.map(|(d, tier)| ThrottleNote {
            ratelimit: ratelimit_value(tier, &d),
            policy: tier.policy.clone(),
        });
        Flow::Continue
    }

    /// The response phase: the headers of the tightest tier counted.
    pub fn response(context: &Context<'_>, response: &mut Response<GatewayBody>) {
        if let Some(note) = &context.throttle {
            let headers = response.headers_mut();
            headers.insert(RATELIMIT, note.ratelimit.clone());
            headers.insert(RATELIMIT_POLICY, note.policy.clone());
        }
    }
}

/// `RateLimit: "<tier>";r=<remaining>;t=<seconds to reset>`.
fn ratelimit_value(tier: &ReadyTier, d: &Decision) -> HeaderValue {
    let now_ms = crate::counters::now_us() / 1000;
    let reset_s = d.reset_ms.saturating_sub(now_ms).div_ceil(1000);
    let text = format!("{};r={};t={reset_s}", quoted(&tier.name), d.remaining);
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("r=0"))
}

async fn count<'t>(
    counters: &Counters,
    tier: &'t ReadyTier,
    key: &str,
    fault: &Fault,
    tightest: &mut Option<(Decision, &'t ReadyTier)>,
) -> Counted {
    let mut decision = counters.hit(key, &tier.limit).await;
    if decision.source == Source::Unavailable {
        let mut response: Response<GatewayBody> = fault::THROTTLING_UNAVAILABLE.response();
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(1u32));
        return Counted::Refuse(response);
    }
    if tier.zero {
        decision.allowed = false;
    }
    if !decision.allowed && tier.stop {
        let mut response: Response<GatewayBody> = fault.response();
        let headers = response.headers_mut();
        let retry = decision.retry_after_ms.div_ceil(1000).max(1);
        headers.insert(RETRY_AFTER, HeaderValue::from(retry));
        headers.insert(RATELIMIT, ratelimit_value(tier, &decision));
        headers.insert(RATELIMIT_POLICY, tier.policy.clone());
        return Counted::Refuse(response);
    }
    if tightest
        .as_ref()
        .is_none_or(|(d, _)| decision.remaining < d.remaining)
    {
        *tightest = Some((decision, tier));
    }
    Counted::Pass
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_as_structured_field_strings() {
        assert_eq!(quoted("3PerMin"), "\"3PerMin\"");
        assert_eq!(quoted("a\"b\\c\u{e9}"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn the_policy_header_names_quota_and_window() {
        let tier = ReadyTier::new(&Tier {
            name: "Gold".into(),
            count: 5000,
            window_ms: 60_000,
            stop_on_quota_reach: true,
        })
        .unwrap();
        assert_eq!(tier.policy, "\"Gold\";q=5000;w=60");
    }

    fn ready(count: u64, stop: bool) -> ReadyTier {
        ReadyTier::new(&Tier {
            name: "T".into(),
            count,
            window_ms: 60_000,
            stop_on_quota_reach: stop,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn over_quota_answers_the_fault_with_retry_after_and_ratelimit() {
        let counters = Counters::in_memory();
        let tier = ready(2, true);
        let mut tightest = None;
        for _ in 0..2 {
            let c = count(
                &counters,
                &tier,
                "k",
                &fault::RESOURCE_THROTTLED,
                &mut tightest,
            )
            .await;
            assert!(matches!(c, Counted::Pass));
        }
        assert_eq!(tightest.as_ref().map(|(d, _)| d.remaining), Some(0));
        let Counted::Refuse(r) = count(
            &counters,
            &tier,
            "k",
            &fault::RESOURCE_THROTTLED,
            &mut tightest,
        )
        .await
        else {
            panic!("the third request passed");
        };
        assert_eq!(r.status(), http::StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = r.headers()[RETRY_AFTER].to_str().unwrap().parse().unwrap();
        assert!((59..=60).contains(&retry), "{retry}");
        let rl = r.headers()[RATELIMIT].to_str().unwrap();
        assert!(rl.starts_with("\"T\";r=0;t="), "{rl}");
        assert_eq!(r.headers()[RATELIMIT_POLICY], "\"T\";q=2;w=60");
        // Another key has its own counter.
        let c = count(
            &counters,
            &tier,
            "other",
            &fault::RESOURCE_THROTTLED,
            &mut None,
        )
        .await;
        assert!(matches!(c, Counted::Pass));
    }

    #[tokio::test]
    async fn stop_on_quota_reach_false_counts_but_passes_and_zero_admits_nothing() {
        let counters = Counters::in_memory();
        let soft = ready(1, false);
        for _ in 0..3 {
            let c = count(
                &counters,
                &soft,
                "s",
                &fault::SUBSCRIPTION_THROTTLED,
                &mut None,
            )
            .await;
            assert!(matches!(c, Counted::Pass));
        }
        let zero = ready(0, true);
        let c = count(&counters, &zero, "z", &fault::API_THROTTLED, &mut None).await;
        assert!(matches!(c, Counted::Refuse(_)));
    }
}
