//! `policies.yaml` (WSO2 API Microgateway 3.x): the throttling tiers that
//! `x-wso2-throttling-tier` / `x-throttling-tier` and the credentials' claims name, checked at
//! build time and compiled into each WSO2 resource's `throttle` step.

use mgw_runtime::policies::throttling::{time_unit_ms, Tier};
use serde_json::Value;

use super::diagnostics::Diagnostics;
use super::document::Document;
use super::SourceFile;

/// The three lists of `policies.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    /// `resourcePolicies`: what `x-wso2-throttling-tier` names.
    pub resource: Vec<Tier>,
    /// `applicationPolicies`: what a token's `application.tier` names.
    pub application: Vec<Tier>,
    /// `subscriptionPolicies`: what `subscribedAPIs[].subscriptionTier` names, and
    /// `Unauthenticated` for unsecured resources.
    pub subscription: Vec<Tier>,
}

impl Policies {
    /// Whether any tier is defined.
    pub fn is_empty(&self) -> bool {
        self.resource.is_empty() && self.application.is_empty() && self.subscription.is_empty()
    }
}

/// The lists of `policies.yaml`, in file order.
const LISTS: [&str; 3] = [
    "resourcePolicies",
    "applicationPolicies",
    "subscriptionPolicies",
];

/// The error for a `policies.yaml` whose top level is not a mapping.
const NOT_A_MAPPING: &str =
    "policies.yaml must be a mapping of resourcePolicies, applicationPolicies and subscriptionPolicies";

/// Reads `policies.yaml`; every problem is an error naming the file, the line and the policy.
pub fn parse(file: &SourceFile, diags: &mut Diagnostics) -> Policies {
    let name = file.name.as_str();
    // An empty file, or one of comments only, declares no tiers (YAML reads it as null).
    let blank = file.text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---" || line == "..."
    });
    if blank {
        return Policies::default();
    }
    let doc = match Document::parse_mapping(name, &file.text, NOT_A_MAPPING) {
        Ok(doc) => doc,
        Err(err) => {
            diags.parse_error(
                name,
                err.line,
                err.column,
                format!("{}; fix the syntax", err.message),
            );
            return Policies::default();
        }
    };
    let mut policies = Policies::default();
    match doc.get("") {
        Some(Value::Object(top)) => {
            for key in top.keys().filter(|k| !LISTS.contains(&k.as_str())) {
                diags.warn(
                    name,
                    doc.line(&format!("/{key}")),
                    format!(
                        "`{key}` is not a list of policies.yaml ({}); it is ignored",
                        LISTS.join(", ")
                    ),
                );
            }
        }
        Some(Value::Null) | None => return policies,
        Some(_) => {
            diags.error(name, Some(1), NOT_A_MAPPING);
            return policies;
        }
    }
    for list in LISTS {
        let pointer = format!("/{list}");
        let items = match doc.get(&pointer) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) => items,
            Some(_) => {
                diags.error(
                    name,
                    doc.line(&pointer),
                    format!("`{list}` must be a list of `- <name>: {{count, unitTime, timeUnit}}`"),
                );
                continue;
            }
        };
        let mut tiers: Vec<Tier> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_pointer = format!("{pointer}/{i}");
            let line = doc.line(&item_pointer);
            let Some((tier_name, body)) = item
                .as_object()
                .filter(|m| m.len() == 1)
                .and_then(|m| m.iter().next())
            else {
                diags.error(name, line, format!("{list}[{i}] must be a single-key mapping `- <name>: {{count, unitTime, timeUnit}}`"));
                continue;
            };
            let line = doc
                .line(&format!(
                    "{item_pointer}/{}",
                    super::document::escape_segment(tier_name)
                ))
                .or(line);
            match tier(tier_name, body) {
                Ok(t) => {
                    if tiers.iter().any(|other| other.name == t.name) {
                        diags.error(
                            name,
                            line,
                            format!("{list}: policy {tier_name:?} is defined twice"),
                        );
                    } else {
                        tiers.push(t);
                    }
                }
                Err(reason) => diags.error(
                    name,
                    line,
                    format!("{list}: policy {tier_name:?}: {reason}"),
                ),
            }
        }
        match list {
            "resourcePolicies" => policies.resource = tiers,
            "applicationPolicies" => policies.application = tiers,
            _ => policies.subscription = tiers,
        }
    }
    policies
}

fn tier(name: &str, body: &Value) -> Result<Tier, String> {
    let body = body
        .as_object()
        .ok_or("must be a mapping of count, unitTime, timeUnit and stopOnQuotaReach")?;
    for key in body.keys() {
        if !["count", "unitTime", "timeUnit", "stopOnQuotaReach"].contains(&key.as_str()) {
            return Err(format!(
                "unknown key `{key}` (count, unitTime, timeUnit, stopOnQuotaReach)"
            ));
        }
    }
    let count = body
        .get("count")
        .and_then(Value::as_u64)
        .ok_or("`count` must be a whole number of requests ≥ 0")?;
    let unit_time = match body.get("unitTime") {
        None => 1,
        Some(v) => v
            .as_u64()
            .filter(|n| *n >= 1)
            .ok_or("`unitTime` must be a whole number ≥ 1")?,
    };
    let unit = body
        .get("timeUnit")
        .and_then(Value::as_str)
        .ok_or("`timeUnit` is required: sec, min, hour, day, week, month or year")?;
    let unit_ms = time_unit_ms(unit).ok_or_else(|| {
        format!("unsupported timeUnit {unit:?}: use sec, min, hour, day, week, month or year")
    })?;
    let stop_on_quota_reach = match body.get("stopOnQuotaReach") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`stopOnQuotaReach` must be true or false".into()),
    };
    Ok(Tier {
        name: name.to_string(),
        count,
        window_ms: unit_time
            .checked_mul(unit_ms)
            .ok_or("unitTime × timeUnit is too long")?,
        stop_on_quota_reach,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Policies, Diagnostics) {
        let mut diags = Diagnostics::default();
        let file = SourceFile {
            name: "policies.yaml".into(),
            text: text.into(),
        };
        (parse(&file, &mut diags), diags)
    }

    #[test]
    fn the_project_template_reads() {
        let (p, d) = read(include_str!("../../../templates/project/policies.yaml"));
        assert!(d.is_ok(), "{:?}", d.errors);
        assert_eq!(p.resource.len(), 3);
        assert_eq!(p.application.len(), 3);
        assert_eq!(p.subscription.len(), 5);
        let gold = &p.subscription[0];
        assert_eq!(
            (gold.name.as_str(), gold.count, gold.window_ms),
            ("Gold", 5000, 60_000)
        );
        assert!(gold.stop_on_quota_reach);
    }

    /// An empty or comment-only file declares no tiers (scripts/bench writes one); a list at
    /// the top is refused with the policies message, not the API definitions' one.
    #[test]
    fn blank_files_declare_nothing_and_a_list_is_refused() {
        for text in ["", "# no tiers\n", "---\n# none\n\n"] {
            let (p, d) = read(text);
            assert!(d.is_ok(), "{text:?}: {:?}", d.errors);
            assert!(p.resource.is_empty() && p.application.is_empty() && p.subscription.is_empty());
        }
        let (_, d) = read("- Gold\n");
        let errors: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
        assert!(
            errors.len() == 1 && errors[0].contains("policies.yaml must be a mapping"),
            "{errors:?}"
        );
    }

    #[test]
    fn units_and_stop_on_quota_reach() {
        let (p, d) = read("subscriptionPolicies:\n  - Free:\n      count: 3\n      unitTime: 2\n      timeUnit: hour\n      stopOnQuotaReach: false\nresourcePolicies:\n  - Fast: {count: 1, unitTime: 5, timeUnit: sec}\n");
        assert!(d.is_ok(), "{:?}", d.errors);
        assert_eq!(p.subscription[0].window_ms, 7_200_000);
        assert!(!p.subscription[0].stop_on_quota_reach);
        assert_eq!(p.resource[0].window_ms, 5_000);
    }

    #[test]
    fn bad_policies_name_the_file_line_and_policy() {
        let (_, d) = read("resourcePolicies:\n  - Bad:\n      count: 3\n      unitTime: 1\n      timeUnit: fortnight\n  - Twice: {count: 1, timeUnit: min}\n  - Twice: {count: 2, timeUnit: min}\n");
        let errors: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("policies.yaml:2:")
                && errors[0].contains("\"Bad\"")
                && errors[0].contains("fortnight"),
            "{errors:?}"
        );
        assert!(errors[1].contains("defined twice"), "{errors:?}");
    }
}
