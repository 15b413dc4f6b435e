//! The `eg` counter and its text exposition. Written here rather than with a metrics crate
//! because the name must stay `eg` (OpenMetrics encoders such as prometheus-client's append
//! `_total` to counters, which Kargo's dashboards do not read).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// One series' labels: type, status_code, consumer, api_endpoint.
type Labels = (bool, u16, String, String);

/// The counter `eg`, shared by every `metrics` step of the gateway.
#[derive(Debug, Default)]
pub struct EgCounter {
    series: Mutex<BTreeMap<Labels, u64>>,
}

impl EgCounter {
    /// Counts one response.
    pub fn count(&self, status: u16, consumer: &str, api_endpoint: &str) {
        let success = (200..300).contains(&status);
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let key = (
            success,
            status,
            consumer.to_string(),
            api_endpoint.to_string(),
        );
        *series.entry(key).or_insert(0) += 1;
    }

    /// The Prometheus text format (version 0.0.4) of the counter, as prom-client 10 writes it.
    pub fn render(&self) -> String {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::from("# HELP eg express-gateway\n# TYPE eg counter\n");
        for ((success, status, consumer, endpoint), value) in series.iter() {
            let _ = writeln!(
                out,
                "eg{{type=\"{}\",status_code=\"{status}\",consumer=\"{}\",api_endpoint=\"{}\"}} {value}",
                if *success { "SUCCESS" } else { "FAILED" },
                escape(consumer),
                escape(endpoint)
            );
        }
        out
    }
}

/// A label value as the text format escapes it: `\`, `"` and line feeds.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_render_as_prom_client_writes_them() {
        let counter = EgCounter::default();
        counter.count(200, "anonymous", "wms");
        counter.count(200, "anonymous", "wms");
        counter.count(401, "u\"1", "wfs");
        assert_eq!(
            counter.render(),
            "# HELP eg express-gateway\n# TYPE eg counter\n\
             eg{type=\"FAILED\",status_code=\"401\",consumer=\"u\\\"1\",api_endpoint=\"wfs\"} 1\n\
             eg{type=\"SUCCESS\",status_code=\"200\",consumer=\"anonymous\",api_endpoint=\"wms\"} 2\n"
        );
    }
}
