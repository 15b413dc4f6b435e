//! Where the request series are counted: one set of plain atomic cells per worker, written
//! only by the worker that serves the request, and summed only when `/metrics` is scraped.
//!
//! The request path of a thread-per-core worker therefore writes no cache line another core
//! writes (issue 16, target 5): a route's cells for worker `i` are one heap block of their
//! own, allocated by worker `i` on its first request of that route and aligned to 128 bytes;
//! the gateway-wide counters (client errors, authentication and rate-limit decisions) are one
//! [`PerCore`] slot per worker. A marked worker ([`worker::set_index`]: a thread-per-core
//! worker, or the one thread of the default runtime with one worker) is the only writer of
//! its own cells and adds with a relaxed load and store ([`worker::add_relaxed`]: no locking
//! instruction); every other thread (the work-stealing runtime's, which may outnumber the
//! slots) writes a second, shared set of cells with atomic additions, so a sum never loses a
//! count.
//!
//! The [`View`]s are what the registry encodes: each walks the cells of one family, adds the
//! workers' values of each label set, and writes the label sets that were used (a counter
//! above zero, a histogram with an observation), exactly as `prometheus-client`'s `Family`
//! writes the series it has made. The text is the crate's own encoder's: same names, labels,
//! label order, `_total`/`_seconds` suffixes and buckets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::{
    AuthOutcome, AuthScheme, UpstreamFailure, CLIENT_ERROR_STATUSES, LATENCY_BUCKETS, METHODS,
    STATUS_CLASSES,
};
use crate::server::worker::{self, PerCore};

/// [`LATENCY_BUCKETS`] in nanoseconds, compared with a duration's nanoseconds so that an
/// observation needs no floating-point work.
pub(super) const LATENCY_BUCKET_NANOS: [u64; LATENCY_BUCKETS.len()] = [
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// How many label sets `mgw_rate_limit_decisions_total` has per policy (admitted, refused).
const DECISIONS: usize = 2;

/// How many rate-limit policies there are ([`super::LimitPolicy`]).
const LIMIT_POLICIES: usize = 2;

/// One worker's share of one latency histogram: a count per bucket (the last one past the
/// largest bound, `+Inf`) and the sum of the observations in nanoseconds (exact, and enough for
/// 584 years of summed latency).
#[derive(Debug, Default)]
pub(super) struct Latency {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Latency {
    /// Counts one observation in the first bucket whose bound is at least `elapsed` (the
    /// `le` semantics of Prometheus and of `prometheus-client`'s histogram); `sole`: the
    /// calling thread is these cells' only writer ([`worker::add_relaxed`]).
    pub(super) fn observe(&self, elapsed: Duration, sole: bool) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKET_NANOS
            .iter()
            .position(|bound| nanos <= *bound)
            .unwrap_or(LATENCY_BUCKET_NANOS.len());
        if let Some(count) = self.buckets.get(bucket) {
            worker::add_relaxed(count, 1, sole);
        }
        worker::add_relaxed(&self.sum_nanos, nanos, sole);
    }
}

/// A histogram's totals over every worker, as the encoder wants them.
#[derive(Debug, Default)]
struct LatencyTotals {
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: u64,
}

impl LatencyTotals {
    fn add(&mut self, latency: &Latency) {
        for (total, count) in self.buckets.iter_mut().zip(&latency.buckets) {
            *total = total.wrapping_add(count.load(Ordering::Relaxed));
        }
        self.sum_nanos = self
            .sum_nanos
            .wrapping_add(latency.sum_nanos.load(Ordering::Relaxed));
    }

    fn count(&self) -> u64 {
        self.buckets.iter().fold(0, |sum, c| sum.wrapping_add(*c))
    }

    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets = [(f64::INFINITY, 0); LATENCY_BUCKETS.len() + 1];
        for ((slot, bound), count) in buckets
            .iter_mut()
            .zip(LATENCY_BUCKETS.iter().chain([f64::INFINITY].iter()))
            .zip(self.buckets)
        {
            *slot = (*bound, count);
        }
        encoder.encode_histogram::<NoLabelSet>(
            self.sum_nanos as f64 / 1e9,
            self.count(),
            &buckets,
            None,
        )
    }
}

/// One worker's counts of one series (one API and route template), on cache lines of its
/// own.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct RouteCounts {
    /// `mgw_requests_total`, by [`METHODS`] and [`STATUS_CLASSES`].
    pub(super) requests: [[AtomicU64; STATUS_CLASSES.len()]; METHODS.len()],
    /// `mgw_upstream_errors_total`, by [`UpstreamFailure::ALL`].
    pub(super) upstream_errors: [AtomicU64; UpstreamFailure::ALL.len()],
    /// `mgw_request_duration_seconds`.
    pub(super) duration: Latency,
    /// `mgw_upstream_duration_seconds`.
    pub(super) upstream_duration: Latency,
}

/// The series of one API and route template: its labels and each worker's counts.
#[derive(Debug)]
pub(super) struct RouteSeries {
    api: String,
    template: String,
    /// Laid out as a [`PerCore`]'s slots ([`worker::slot`]): the marked workers' own, then
    /// shared ones for other threads (twice the worker count, never 0). Each is made by its
    /// worker on first use, so a route no one calls costs two empty slots per worker.
    workers: Box<[OnceLock<Box<RouteCounts>>]>,
    /// The worker count the slots were made for.
    owned: usize,
}

impl RouteSeries {
    /// The series of `api` and `template`, with `workers` slots (at least one) for marked
    /// workers and as many shared ones.
    pub(super) fn new(api: String, template: String, workers: usize) -> Self {
        Self {
            api,
            template,
            workers: (0..2 * worker::owned_slots(workers))
                .map(|_| OnceLock::new())
                .collect(),
            owned: worker::owned_slots(workers),
        }
    }

    /// The calling worker's counts, made on its first call, and whether the calling thread
    /// is their only writer ([`worker::slot`]).
    pub(super) fn local(&self) -> Option<(&RouteCounts, bool)> {
        let (index, sole) = worker::slot(self.owned);
        let slot = self.workers.get(index)?;
        Some((&**slot.get_or_init(Box::default), sole))
    }

    /// The counts of every worker that has some.
    pub(super) fn each(&self) -> impl Iterator<Item = &RouteCounts> {
        self.workers
            .iter()
            .filter_map(|slot| slot.get().map(|b| &**b))
    }
}

/// One worker's gateway-wide counters.
#[derive(Debug, Default)]
pub(super) struct GatewayCounts {
    /// `mgw_client_errors_total`, by [`CLIENT_ERROR_STATUSES`].
    pub(super) client_errors: [AtomicU64; CLIENT_ERROR_STATUSES.len()],
    /// `mgw_auth_total`, by scheme and outcome.
    pub(super) auth: [[AtomicU64; AuthOutcome::ALL.len()]; AuthScheme::COUNT],
    /// `mgw_rate_limit_decisions_total`, by policy (rate-limit, throttle) and decision
    /// (admitted, refused).
    pub(super) limits: [[AtomicU64; DECISIONS]; LIMIT_POLICIES],
}

/// Every cell, shared by the [`super::Metrics`] that writes them and the [`View`]s that
/// read them.
#[derive(Debug)]
pub(super) struct Cells {
    /// One per distinct (API, template): routes that share both share a series, as the label
    /// sets they would write are the same.
    pub(super) routes: Box<[RouteSeries]>,
    /// The gateway-wide counters, one slot per marked worker and as many shared ones.
    pub(super) gateway: PerCore<GatewayCounts>,
}

/// One family's series as the registry encodes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    /// `mgw_requests_total{api, template, method, class}`.
    Requests,
    /// `mgw_request_duration_seconds{api, template}`.
    Duration,
    /// `mgw_upstream_duration_seconds{api, template}`.
    UpstreamDuration,
    /// `mgw_upstream_errors_total{api, template, kind}`.
    UpstreamErrors,
    /// `mgw_client_errors_total{status}`.
    ClientErrors,
    /// `mgw_auth_total{scheme, outcome}`.
    Auth,
    /// `mgw_rate_limit_decisions_total{policy, decision}`.
    Limits,
}

/// A registered family: the workers' cells of `family`, summed when encoded.
#[derive(Debug)]
pub(super) struct View {
    cells: Arc<Cells>,
    family: Family,
}

/// What receives a family's used series: their labels and values.
type Write<'a> = dyn FnMut(&[(&str, &str)], Value<'_>) -> Result<(), std::fmt::Error> + 'a;

/// What receives a route's label sets (after `api` and `template`) and counts.
type Count<'a> = dyn FnMut(&[(&str, &str)], u64) -> Result<(), std::fmt::Error> + 'a;

/// One series' value, summed over the workers.
enum Value<'a> {
    Counter(u64),
    Histogram(&'a LatencyTotals),
}

impl View {
    pub(super) fn new(cells: Arc<Cells>, family: Family) -> Self {
        Self { cells, family }
    }

    /// Calls `write` with each used series of the family: its labels and its value.
    fn walk(&self, write: &mut Write<'_>) -> Result<(), std::fmt::Error> {
        match self.family {
            Family::Requests => self.walk_routes(write, |route, counts| {
                let mut totals = [[0u64; STATUS_CLASSES.len()]; METHODS.len()];
                for worker in route.each() {
                    for (total, cells) in totals.iter_mut().zip(&worker.requests) {
                        sum_into(total, cells);
                    }
                }
                for (method, row) in METHODS.into_iter().zip(totals) {
                    for (class, value) in STATUS_CLASSES.into_iter().zip(row) {
                        counts(&[("method", method), ("class", class)], value)?;
                    }
                }
                Ok(())
            }),
            Family::UpstreamErrors => self.walk_routes(write, |route, counts| {
                let mut totals = [0u64; UpstreamFailure::ALL.len()];
                for worker in route.each() {
                    sum_into(&mut totals, &worker.upstream_errors);
                }
                for (kind, value) in UpstreamFailure::ALL.iter().zip(totals) {
                    counts(&[("kind", kind.label())], value)?;
                }
                Ok(())
            }),
            Family::Duration | Family::UpstreamDuration => {
                for route in self.cells.routes.iter() {
                    let mut totals = LatencyTotals::default();
                    for worker in route.each() {
                        totals.add(if self.family == Family::Duration {
                            &worker.duration
                        } else {
                            &worker.upstream_duration
                        });
                    }
                    if totals.count() > 0 {
                        let labels = [
                            ("api", route.api.as_str()),
                            ("template", route.template.as_str()),
                        ];
                        write(&labels, Value::Histogram(&totals))?;
                    }
                }
                Ok(())
            }
            Family::ClientErrors => {
                let mut totals = [0u64; CLIENT_ERROR_STATUSES.len()];
                for worker in self.cells.gateway.iter() {
                    sum_into(&mut totals, &worker.client_errors);
                }
                for (status, value) in CLIENT_ERROR_STATUSES.iter().zip(totals) {
                    if value > 0 {
                        let status = status.to_string();
                        write(&[("status", status.as_str())], Value::Counter(value))?;
                    }
                }
                Ok(())
            }
            Family::Auth => {
                let mut totals = [[0u64; AuthOutcome::ALL.len()]; AuthScheme::COUNT];
                for worker in self.cells.gateway.iter() {
                    for (total, cells) in totals.iter_mut().zip(&worker.auth) {
                        sum_into(total, cells);
                    }
                }
                for (scheme, row) in AuthScheme::ALL.iter().zip(totals) {
                    for (outcome, value) in AuthOutcome::ALL.iter().zip(row) {
                        if value > 0 {
                            let labels = [("scheme", scheme.label()), ("outcome", outcome.label())];
                            write(&labels, Value::Counter(value))?;
                        }
                    }
                }
                Ok(())
            }
            Family::Limits => {
                let mut totals = [[0u64; DECISIONS]; LIMIT_POLICIES];
                for worker in self.cells.gateway.iter() {
                    for (total, cells) in totals.iter_mut().zip(&worker.limits) {
                        sum_into(total, cells);
                    }
                }
                let policies = [super::LimitPolicy::RateLimit, super::LimitPolicy::Throttle];
                for (policy, row) in policies.iter().zip(totals) {
                    for (decision, value) in ["admitted", "refused"].into_iter().zip(row) {
                        if value > 0 {
                            let labels = [("policy", policy.label()), ("decision", decision)];
                            write(&labels, Value::Counter(value))?;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Walks a per-route counter family: `each(route, counts)` calls `counts(extra labels,
    /// value)` for each of the route's label sets; the used ones reach `write` after the
    /// route's `api` and `template`.
    fn walk_routes(
        &self,
        write: &mut Write<'_>,
        each: impl Fn(&RouteSeries, &mut Count<'_>) -> Result<(), std::fmt::Error>,
    ) -> Result<(), std::fmt::Error> {
        for route in self.cells.routes.iter() {
            each(route, &mut |extra, value| {
                if value == 0 {
                    return Ok(());
                }
                let mut labels = [("", ""); 4];
                labels[0] = ("api", route.api.as_str());
                labels[1] = ("template", route.template.as_str());
                let mut len = 2;
                for (slot, label) in labels.iter_mut().skip(2).zip(extra) {
                    *slot = *label;
                    len += 1;
                }
                write(labels.get(..len).unwrap_or(&labels), Value::Counter(value))
            })?;
        }
        Ok(())
    }
}

/// Adds each cell's value to its total.
fn sum_into<const N: usize>(totals: &mut [u64; N], cells: &[AtomicU64; N]) {
    for (total, cell) in totals.iter_mut().zip(cells) {
        *total = total.wrapping_add(cell.load(Ordering::Relaxed));
    }
}

impl EncodeMetric for View {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.walk(&mut |labels, value| {
            let mut series = encoder.encode_family(&labels)?;
            match value {
                Value::Counter(value) => series.encode_counter::<NoLabelSet, _, u64>(&value, None),
                Value::Histogram(totals) => totals.encode(series),
            }
        })
    }

    fn metric_type(&self) -> MetricType {
        match self.family {
            Family::Duration | Family::UpstreamDuration => MetricType::Histogram,
            _ => MetricType::Counter,
        }
    }

    /// No series used yet: the registry then writes not even the family's `# HELP` and
    /// `# TYPE` lines, as for an empty `Family`.
    fn is_empty(&self) -> bool {
        let mut used = false;
        let _ = self.walk(&mut |_, _| {
            used = true;
            // Stop at the first one.
            Err(std::fmt::Error)
        });
        !used
    }
}
