//! How one access-log record becomes one line: the `text` form (the `tracing` line gateways
//! have always printed) or a JSON object. Runs on the writer thread, never on the request path.

use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::{AccessRecord, ErrorSide, RouteRef};
use crate::model::GatewayModel;

/// The route templates of a model, looked up by [`RouteRef`] when a line is written.
#[derive(Debug, Default)]
pub struct RouteTemplates {
    /// Per API, per resource: base path and path template (`/petstore/v1/pet/{petId}`).
    wso2: Vec<Vec<String>>,
    /// Per Express Gateway configuration, per route: the `paths` entry or `pathRegex`.
    express: Vec<Vec<String>>,
}

impl RouteTemplates {
    /// Every template of `model`.
    pub fn new(model: &GatewayModel) -> Self {
        let wso2 = model
            .apis
            .iter()
            .map(|api| {
                api.resources
                    .iter()
                    .map(|r| crate::model::route_template(&api.base_path, &r.path))
                    .collect()
            })
            .collect();
        let express = model
            .express
            .iter()
            .map(|config| {
                config
                    .routes
                    .iter()
                    .map(|route| route.path.text().to_string())
                    .collect()
            })
            .collect();
        Self { wso2, express }
    }

    /// The template of `route`, if the model has it.
    pub fn get(&self, route: RouteRef) -> Option<&str> {
        let (table, outer, inner) = match route {
            RouteRef::Wso2 { api, resource } => (&self.wso2, api, resource),
            RouteRef::Express { config, route } => (&self.express, config, route),
        };
        table
            .get(outer as usize)
            .and_then(|routes| routes.get(inner as usize))
            .map(String::as_str)
    }
}

/// The JSON object of one request (field reference: docs/logging.md).
#[derive(Serialize)]
struct JsonLine<'a> {
    time: Rfc3339Millis,
    client: std::net::IpAddr,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'a str>,
    path: &'a str,
    status: u16,
    complete: bool,
    bytes_out: u64,
    total_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<TraceIdHex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorSide>,
}

/// Appends `record` as one JSON line to `out`.
pub fn json(out: &mut Vec<u8>, record: &AccessRecord, templates: &RouteTemplates) {
    let line = JsonLine {
        time: Rfc3339Millis(record.finished),
        client: record.client.ip(),
        method: record.method.as_str(),
        route: record.route.and_then(|r| templates.get(r)),
        path: &record.path,
        status: record.status.as_u16(),
        complete: record.complete,
        bytes_out: record.bytes_out,
        total_ms: millis(record.total),
        upstream: record.upstream.as_deref(),
        upstream_ms: record.upstream_latency.map(millis),
        consumer: record.consumer.as_deref(),
        trace_id: record.trace_id.map(TraceIdHex),
        error: record.error_side(),
    };
    // Writing to a Vec fails only on a serializer error, which these types do not have.
    if serde_json::to_writer(&mut *out, &line).is_ok() {
        out.push(b'\n');
    }
}

/// Appends `record` as the text line of earlier releases (the `tracing` fmt line on target
/// `access`, field for field; docs/getting-started.md "Access log"), with the request's W3C
/// trace id added at the end (`trace=`).
pub fn text(out: &mut Vec<u8>, record: &AccessRecord) {
    let _ = write!(out, "{}  INFO access: ", Rfc3339Micros(record.finished));
    let _ = writeln!(
        out,
        "{} {} {} {} {} bytes_out={} upstream={} upstream_ms={:.2} total_ms={:.2} consumer={} trace={}",
        record.client.ip(),
        record.method,
        record.path,
        record.status.as_u16(),
        if record.complete {
            "complete"
        } else {
            "aborted"
        },
        record.bytes_out,
        record.upstream.as_deref().unwrap_or("-"),
        record.upstream_latency.map_or(0.0, millis),
        millis(record.total),
        record
            .consumer
            .as_deref()
            .map_or_else(|| "-".to_string(), |c| c.escape_debug().to_string()),
        TraceField(record.trace_id),
    );
}

/// The text line's `trace=` field: the W3C trace id in 32 lower-case hex digits, or `-`.
struct TraceField(Option<[u8; 16]>);

impl std::fmt::Display for TraceField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(id) => id.iter().try_for_each(|byte| write!(f, "{byte:02x}")),
            None => f.write_str("-"),
        }
    }
}

fn millis(d: Duration) -> f64 {
    // Three decimals: microsecond resolution, short lines.
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// A trace id as 32 lower-case hex digits (W3C Trace Context).
struct TraceIdHex([u8; 16]);

impl Serialize for TraceIdHex {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 32];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xf)];
        }
        serializer.serialize_str(std::str::from_utf8(&hex).unwrap_or_default())
    }
}

/// UTC calendar fields of a time: (year, month, day, hour, minute, second, nanosecond).
/// The date from the store's `civil_from_days` (proleptic Gregorian).
fn civil(time: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    let (year, month, day) = crate::store::date::civil_from_days(days);
    (
        year,
        month,
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_nanos(),
    )
}

/// `2026-12-01T10:39:15.123Z`: the JSON line's `time`.
struct Rfc3339Millis(SystemTime);

impl std::fmt::Display for Rfc3339Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, mo, d, h, mi, s, ns) = civil(self.0);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
            ns / 1_000_000
        )
    }
}

impl Serialize for Rfc3339Millis {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `2026-12-01T10:39:15.123456Z`: tracing-subscriber's fmt timestamp, for the text line.
struct Rfc3339Micros(SystemTime);

impl std::fmt::Display for Rfc3339Micros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, mo, d, h, mi, s, ns) = civil(self.0);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}Z",
            ns / 1_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, StatusCode};
    use std::sync::Arc;
    use std::time::Instant;

    fn record(path: &str) -> AccessRecord {
        let mut record = AccessRecord::new(
            "192.0.2.7:5555".parse().unwrap(),
            Method::GET,
            path.to_string(),
            StatusCode::OK,
            Instant::now(),
        );
        record.finished = UNIX_EPOCH + Duration::from_millis(1_764_585_555_123);
        record.total = Duration::from_micros(1_234_567);
        record.bytes_out = 612;
        record.complete = true;
        record
    }

    fn parse(out: &[u8]) -> serde_json::Value {
        assert_eq!(out.last(), Some(&b'\n'), "one line");
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        serde_json::from_slice(out).expect("valid JSON")
    }

    #[test]
    fn times_are_utc_rfc3339() {
        let at = UNIX_EPOCH + Duration::from_millis(1_764_585_555_123);
        assert_eq!(Rfc3339Millis(at).to_string(), "2025-12-01T10:39:15.123Z");
        assert_eq!(
            Rfc3339Micros(at + Duration::from_micros(4)).to_string(),
            "2025-12-01T10:39:15.123004Z"
        );
        // A leap day and the epoch.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(Rfc3339Millis(leap).to_string(), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            Rfc3339Millis(UNIX_EPOCH).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn json_lines_carry_every_field_and_omit_absent_ones() {
        let mut r = record("/petstore/v1/pet/42?x=1");
        let mut out = Vec::new();
        json(&mut out, &r, &RouteTemplates::default());
        let v = parse(&out);
        assert_eq!(v["time"], "2025-12-01T10:39:15.123Z");
        assert_eq!(v["client"], "192.0.2.7");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/petstore/v1/pet/42?x=1");
        assert_eq!(v["status"], 200);
        assert_eq!(v["complete"], true);
        assert_eq!(v["bytes_out"], 612);
        assert_eq!(v["total_ms"], 1234.567);
        for absent in [
            "route",
            "upstream",
            "upstream_ms",
            "consumer",
            "trace_id",
            "error",
        ] {
            assert!(v.get(absent).is_none(), "{absent}: {v}");
        }
        r.upstream = Some(Arc::from("http://127.0.0.1:8081"));
        r.upstream_latency = Some(Duration::from_micros(610));
        r.consumer = Some(Arc::from("app-1"));
        r.trace_id = Some([
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
            0x47, 0x36,
        ]);
        r.status = StatusCode::BAD_GATEWAY;
        out.clear();
        json(&mut out, &r, &RouteTemplates::default());
        let v = parse(&out);
        assert_eq!(v["upstream"], "http://127.0.0.1:8081");
        assert_eq!(v["upstream_ms"], 0.61);
        assert_eq!(v["consumer"], "app-1");
        assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(v["error"], "upstream");
    }

    #[test]
    fn every_character_is_escaped_so_a_line_stays_one_json_object() {
        // Control characters, quotes, backslashes, DEL, a lone surrogate's replacement (what
        // invalid UTF-8 becomes once lossily decoded) and non-ASCII text.
        let nasty: String = (0u8..0x20).map(char::from).collect::<String>()
            + "\"\\\u{7f}\u{fffd}é\u{2028}\u{2029}\u{1F600}";
        let mut r = record(&format!("/p/{nasty}"));
        r.consumer = Some(Arc::from(nasty.as_str()));
        let mut out = Vec::new();
        json(&mut out, &r, &RouteTemplates::default());
        let v = parse(&out);
        assert_eq!(v["path"].as_str().unwrap(), format!("/p/{nasty}"));
        assert_eq!(v["consumer"].as_str().unwrap(), nasty);
        assert!(
            !out[..out.len() - 1].iter().any(|b| *b < 0x20),
            "no raw control byte in the line"
        );
    }

    #[test]
    fn the_text_line_is_the_tracing_line_of_earlier_releases() {
        let mut r = record("/petstore/v1/pet/42");
        r.upstream = Some(Arc::from("http://127.0.0.1:8081"));
        r.upstream_latency = Some(Duration::from_micros(610));
        r.total = Duration::from_micros(830);
        let mut out = Vec::new();
        text(&mut out, &r);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2025-12-01T10:39:15.123000Z  INFO access: 192.0.2.7 GET /petstore/v1/pet/42 200 complete bytes_out=612 upstream=http://127.0.0.1:8081 upstream_ms=0.61 total_ms=0.83 consumer=- trace=-\n"
        );
    }
}
