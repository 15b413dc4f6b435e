//! WSO2 throttling tiers (`policies.yaml`, WSO2 API Microgateway 3.x `throttle_filter.bal`):
//! the API or resource tier of `x-wso2-throttling-tier`, the subscription tier of the
//! credential (`subscribedAPIs[].subscriptionTier`, or `Unauthenticated` for unsecured
//! resources) and its application tier (`application.tier`), each counted with the
//! [`crate::counters`] under WSO2's keys. Over quota: 429 with 900800 (API), 900802 (resource),
//! 900804 (subscription) or 900803 (application), unless the tier says `stopOnQuotaReach: false`.

#[cfg(feature = "server")]
pub mod step;

use serde::{Deserialize, Serialize};

/// The tier name WSO2 treats as "no limit" wherever a tier is named.
pub const UNLIMITED: &str = "Unlimited";

/// The subscription tier unsecured resources count against.
pub const UNAUTHENTICATED: &str = "Unauthenticated";

/// One policy of `policies.yaml`: `count` requests per `unitTime` `timeUnit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// The policy's name.
    pub name: String,
    /// Requests admitted per window.
    pub count: u64,
    /// The window in milliseconds (`unitTime` × `timeUnit`).
    pub window_ms: u64,
    /// Refuse over the quota (`false`: count, let the request pass).
    pub stop_on_quota_reach: bool,
}

/// Where the tier of `x-wso2-throttling-tier` was set: it decides the key and the fault code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TierLevel {
    /// On the API: one counter for all its resources, 900800.
    Api,
    /// On the operation: one counter per resource, 900802.
    Resource,
}

/// The `throttle` step of a WSO2 resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSpec {
    /// The API or resource tier, with its level and counter key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<(TierLevel, Tier)>,
    /// WSO2's API-level key: `<context>:<version>` (the base path and the API version).
    pub api_key: String,
    /// WSO2's resource-level key: `<context>/<version><path template>:<method>`.
    pub resource_key: String,
    /// The API's name and version, to find the credential's subscription (`subscribedAPIs`).
    pub api_name: String,
    /// The API's version.
    pub api_version: String,
    /// `applicationPolicies`, looked up by the credential's `application.tier`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<Tier>,
    /// `subscriptionPolicies`, looked up by the credential's `subscriptionTier`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<Tier>,
    /// The resource is unsecured: it counts against `Unauthenticated` per client address.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsecured: bool,
}

/// `timeUnit` in milliseconds: `sec`, `min`, `hour`, `day`, `week` (7 days), `month` (30 days),
/// `year` (365 days). WSO2 3.x refuses `sec`; it is accepted here as an extension.
pub fn time_unit_ms(unit: &str) -> Option<u64> {
    Some(match unit {
        "sec" | "second" | "seconds" => 1_000,
        "min" | "minute" | "minutes" => 60_000,
        "hour" | "hours" => 3_600_000,
        "day" | "days" => 86_400_000,
        "week" | "weeks" => 7 * 86_400_000,
        "month" | "months" => 30 * 86_400_000,
        "year" | "years" => 365 * 86_400_000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_units_are_wso2_lengths() {
        assert_eq!(time_unit_ms("min"), Some(60_000));
        assert_eq!(time_unit_ms("week"), Some(604_800_000));
        assert_eq!(time_unit_ms("month"), Some(2_592_000_000));
        assert_eq!(time_unit_ms("year"), Some(31_536_000_000));
        assert_eq!(time_unit_ms("sec"), Some(1_000));
        assert_eq!(time_unit_ms("fortnight"), None);
    }

    #[test]
    fn spec_round_trips() {
        let spec = ThrottleSpec {
            tier: Some((
                TierLevel::Api,
                Tier {
                    name: "3PerMin".into(),
                    count: 3,
                    window_ms: 60_000,
                    stop_on_quota_reach: true,
                },
            )),
            api_key: "/a:1".into(),
            resource_key: "/a/1/x:GET".into(),
            api_name: "A".into(),
            api_version: "1".into(),
            applications: vec![],
            subscriptions: vec![],
            unsecured: true,
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<ThrottleSpec>(&json).unwrap(), spec);
    }
}
