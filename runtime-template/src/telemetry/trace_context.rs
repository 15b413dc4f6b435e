//! W3C Trace Context, level 1 (<https://www.w3.org/TR/trace-context/>): the gateway takes part
//! in a caller's trace, or starts one, and tells the upstream about it.
//!
//! Every request gets a [`TraceContext`] when it arrives ([`Propagation::start`]):
//!
//! - A valid `traceparent` from the client gives the trace id and the caller's span id (the
//!   parent) and its sampled flag, which the gateway keeps as it is.
//! - No `traceparent`, or one that is malformed (hostile input: wrong length, upper-case or
//!   non-hex digits, all-zero ids, version `ff`, several headers), starts a new trace: a random
//!   trace id, sampled with probability `[tracing] sample_ratio`. It is never an error.
//! - Either way the gateway is one hop: it has a span id of its own, and a proxied request
//!   carries `traceparent: 00-<trace id>-<gateway span id>-<flags>` (`proxy::fields`).
//!   The client's `tracestate` goes on as it came when it is well-formed and the trace is the
//!   client's; otherwise it is dropped (spec §3.3: no `tracestate` without a valid
//!   `traceparent`; a header that cannot be parsed may be discarded).
//!
//! Future versions of `traceparent` (above `00`, below `ff`) are read as the spec says: the
//! first 55 characters in version 00's layout, then either the end or a `-`, and only the
//! sampled flag is taken from their flags. What the gateway sends is always version `00`.
//!
//! Ids come from a per-thread generator seeded from the operating system's randomness (one
//! `getrandom` call per worker thread, through `uuid`): a few instructions per id, no lock.

use std::cell::Cell;
use std::fmt;

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// `traceparent`: version, trace id, parent span id, flags.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate`: vendors' own key-value pairs, in the trace's order.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Length of a version-00 `traceparent` value: `00-` + 32 + `-` + 16 + `-` + 2.
pub const TRACEPARENT_LEN: usize = 55;
/// Most list members a `tracestate` may have (spec §3.3.1.1).
pub const MAX_TRACESTATE_MEMBERS: usize = 32;
/// Longest `tracestate` (all its headers together) forwarded; longer ones are dropped. The
/// spec asks vendors to propagate at least 512 characters (§3.3.1.5).
pub const MAX_TRACESTATE_BYTES: usize = 512;

/// A 16-byte trace id, never all zeros. Shown as 32 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub u128);

/// An 8-byte span id, never all zeros. Shown as 16 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(pub u64);

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 32];
        buf[..16].copy_from_slice(&hex_lower((self.0 >> 64) as u64));
        buf[16..].copy_from_slice(&hex_lower(self.0 as u64));
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buf = hex_lower(self.0);
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

/// What a valid `traceparent` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    /// The trace.
    pub trace_id: TraceId,
    /// The caller's span.
    pub parent_id: SpanId,
    /// The caller recorded (or may record) this trace: flag bit 0.
    pub sampled: bool,
}

/// One request's place in a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace: the client's, or a new one.
    pub trace_id: TraceId,
    /// The client's span, when it sent a valid `traceparent`; `None` when the gateway started
    /// the trace (its span is then the root).
    pub parent_id: Option<SpanId>,
    /// The gateway's own span for this request: the parent id the upstream sees.
    pub span_id: SpanId,
    /// Whether the trace is recorded: the caller's flag, or the sampling decision for a trace
    /// the gateway started.
    pub sampled: bool,
}

/// The `[tracing]` settings, resolved once at start-up.
#[derive(Debug, Clone, Copy)]
pub struct Propagation {
    /// Whether the gateway takes part in trace context at all (`propagate`).
    enabled: bool,
    /// A new trace is sampled when the low 64 bits of its id are below this
    /// (`sample_ratio` x 2^64); `u64::MAX` with `always`.
    threshold: u64,
    /// `sample_ratio` is 1: every new trace is sampled.
    always: bool,
}

impl Propagation {
    /// From `[tracing]`: `propagate` switches it on, `sample_ratio` (0.0 to 1.0, already
    /// checked by the settings) is the share of new traces that are sampled.
    pub fn new(config: &crate::config::TracingConfig) -> Self {
        let ratio = config.sample_ratio.clamp(0.0, 1.0);
        Self {
            enabled: config.propagate,
            // `as` saturates: 1.0 x 2^64 becomes u64::MAX.
            threshold: (ratio * 18_446_744_073_709_551_616.0) as u64,
            always: ratio >= 1.0,
        }
    }

    /// Off: requests pass through with their trace headers untouched and no trace id.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            threshold: 0,
            always: false,
        }
    }

    /// [`Self::start_with`] for a request with these headers, the field looked up here: the
    /// tests' way in (the gateway finds `traceparent` in its one pass over the fields).
    #[cfg(test)]
    pub fn start(&self, headers: &HeaderMap) -> Option<TraceContext> {
        let mut values = headers.get_all(&TRACEPARENT).iter();
        let first = values.next();
        self.start_with(first, values.next().is_some())
    }

    /// The trace context of a request whose first `traceparent` field is `traceparent`
    /// (`several`: it has more than one, which cannot be told apart: a new trace), or `None`
    /// when propagation is off.
    pub fn start_with(
        &self,
        traceparent: Option<&HeaderValue>,
        several: bool,
    ) -> Option<TraceContext> {
        if !self.enabled {
            return None;
        }
        let span_id = SpanId(random_nonzero_u64());
        let parent = match traceparent {
            // Several `traceparent` headers cannot be told apart: a new trace.
            Some(value) if !several => parse_traceparent(value.as_bytes()),
            _ => None,
        };
        Some(match parent {
            Some(parent) => TraceContext {
                trace_id: parent.trace_id,
                parent_id: Some(parent.parent_id),
                span_id,
                sampled: parent.sampled,
            },
            None => {
                let high = u128::from(random_u64());
                let low = random_nonzero_u64();
                TraceContext {
                    trace_id: TraceId(high << 64 | u128::from(low)),
                    parent_id: None,
                    span_id,
                    sampled: self.always || low < self.threshold,
                }
            }
        })
    }
}

impl TraceContext {
    /// The `traceparent` the upstream gets: version 00, this trace, the gateway's span as
    /// the parent, the sampled flag.
    pub fn traceparent(&self) -> HeaderValue {
        // Only hex digits and dashes: always a valid value.
        HeaderValue::from_bytes(&self.traceparent_bytes())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The text of [`Self::traceparent`] (55 bytes), for a head writer that needs no
    /// `HeaderValue` (`proxy::fields`).
    pub fn traceparent_bytes(&self) -> [u8; TRACEPARENT_LEN] {
        let mut buf = [0u8; TRACEPARENT_LEN];
        buf[..3].copy_from_slice(b"00-");
        buf[3..19].copy_from_slice(&hex_lower((self.trace_id.0 >> 64) as u64));
        buf[19..35].copy_from_slice(&hex_lower(self.trace_id.0 as u64));
        buf[35] = b'-';
        buf[36..52].copy_from_slice(&hex_lower(self.span_id.0));
        buf[52] = b'-';
        buf[53] = b'0';
        buf[54] = if self.sampled { b'1' } else { b'0' };
        buf
    }
}

/// Reads a `traceparent` value; `None` for anything the spec calls invalid.
pub fn parse_traceparent(value: &[u8]) -> Option<Parent> {
    let version = hex_u8(value.get(0..2)?)?;
    if version == 0xff {
        return None;
    }
    let fits = match version {
        0 => value.len() == TRACEPARENT_LEN,
        // A later version may append fields after a dash.
        _ => value.len() == TRACEPARENT_LEN || value.get(TRACEPARENT_LEN) == Some(&b'-'),
    };
    if !fits || value.get(2) != Some(&b'-') || value.get(35) != Some(&b'-') {
        return None;
    }
    if value.get(52) != Some(&b'-') {
        return None;
    }
    let trace_id = hex_u128(value.get(3..35)?)?;
    let parent_id = hex_u64(value.get(36..52)?)?;
    let flags = hex_u8(value.get(53..55)?)?;
    if trace_id == 0 || parent_id == 0 {
        return None;
    }
    Some(Parent {
        trace_id: TraceId(trace_id),
        parent_id: SpanId(parent_id),
        sampled: flags & 1 == 1,
    })
}

/// Whether the request's `tracestate` headers (all of them, as one list) may be forwarded:
/// at most [`MAX_TRACESTATE_MEMBERS`] members and [`MAX_TRACESTATE_BYTES`] bytes, each
/// member `key=value` with the spec's characters, no key twice. True when there is none.
pub fn tracestate_is_valid(headers: &HeaderMap) -> bool {
    let mut keys: [&[u8]; MAX_TRACESTATE_MEMBERS] = [&[]; MAX_TRACESTATE_MEMBERS];
    let mut count = 0;
    let mut bytes = 0;
    for value in headers.get_all(TRACESTATE) {
        let value = value.as_bytes();
        bytes += value.len() + 1;
        if bytes > MAX_TRACESTATE_BYTES + 1 {
            return false;
        }
        for member in value.split(|b| *b == b',') {
            let member = member.trim_ascii();
            // Empty members (`a=1,,b=2`) are allowed and ignored.
            if member.is_empty() {
                continue;
            }
            let Some(key) = valid_member(member) else {
                return false;
            };
            if count == MAX_TRACESTATE_MEMBERS
                || keys.get(..count).is_some_and(|k| k.contains(&key))
            {
                return false;
            }
            if let Some(slot) = keys.get_mut(count) {
                *slot = key;
            }
            count += 1;
        }
    }
    true
}

/// The key of a `key=value` list member when both follow spec §3.3.1.3 (keys: lower-case
/// letters, digits, `_ - * /`, one optional `@` between tenant and system; values: printable
/// ASCII but `,` and `=`, not ending in a space; each at most 256 characters).
fn valid_member(member: &[u8]) -> Option<&[u8]> {
    let at = member.iter().position(|b| *b == b'=')?;
    let key = member.get(..at)?;
    let value = member.get(at + 1..)?;
    let first_ok = key
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let key_ok = first_ok
        && key.len() <= 256
        && key.iter().filter(|b| **b == b'@').count() <= 1
        && key.last() != Some(&b'@')
        && key
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/@".contains(b));
    let value_ok = !value.is_empty()
        && value.len() <= 256
        && value.last() != Some(&b' ')
        && value
            .iter()
            .all(|b| (0x20..=0x7e).contains(b) && *b != b',' && *b != b'=');
    (key_ok && value_ok).then_some(key)
}

/// `value` as 16 lower-case hex digits, most significant first (`format!("{value:016x}")`),
/// computed on all digits at once: each nibble is spread into a byte of its own, then made a
/// digit by adding `'0'`, and `'a' - '0' - 10` more where it is 10 or above (about 40
/// instructions, where a table lookup per nibble costs about 100; every proxied request
/// writes three of them in its `traceparent`).
fn hex_lower(value: u64) -> [u8; 16] {
    const fn lanes(byte: u8) -> u128 {
        u128::from_ne_bytes([byte; 16])
    }
    let mut v = u128::from(value);
    // 32-bit halves into 64-bit lanes, then 16-bit quarters into 32-bit lanes, bytes into
    // 16-bit lanes: each byte of `value` in the low half of a 16-bit lane, in order.
    v = (v & 0xffff_ffff_0000_0000) << 32 | (v & 0xffff_ffff);
    v = (v & 0x0000_0000_ffff_0000_0000_0000_ffff_0000) << 16
        | (v & 0x0000_0000_0000_ffff_0000_0000_0000_ffff);
    v = (v & 0x0000_ff00_0000_ff00_0000_ff00_0000_ff00) << 8
        | (v & 0x0000_00ff_0000_00ff_0000_00ff_0000_00ff);
    // The high nibble into the lane's high byte (written first), the low one stays.
    v = (v & 0x00f0_00f0_00f0_00f0_00f0_00f0_00f0_00f0) << 4
        | (v & 0x000f_000f_000f_000f_000f_000f_000f_000f);
    // One byte per nibble (0 to 15): 1 in the bytes of 10 and above (no carry leaves a byte).
    let letters = ((v + lanes(6)) & lanes(0x10)) >> 4;
    (v + lanes(b'0') + letters * u128::from(b'a' - b'0' - 10)).to_be_bytes()
}

/// A lower-case hex digit (the spec's HEXDIGLC: upper case is invalid).
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn hex_u128(digits: &[u8]) -> Option<u128> {
    digits
        .iter()
        .try_fold(0u128, |acc, b| Some(acc << 4 | u128::from(hex_digit(*b)?)))
}

fn hex_u64(digits: &[u8]) -> Option<u64> {
    digits
        .iter()
        .try_fold(0u64, |acc, b| Some(acc << 4 | u64::from(hex_digit(*b)?)))
}

fn hex_u8(digits: &[u8]) -> Option<u8> {
    match digits {
        [high, low] => Some(hex_digit(*high)? << 4 | hex_digit(*low)?),
        _ => None,
    }
}

thread_local! {
    /// The state of this thread's id generator (wyrand), seeded from the OS on first use.
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    let mut half = [0u8; 8];
    half.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(half)
}

/// The next number of this thread's wyrand generator (W. Yi's 64-bit generator: an add and a
/// 128-bit multiply per number; statistically sound, not for secrets, which ids are not).
fn random_u64() -> u64 {
    RNG.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    })
}

/// A random id that is not zero (zero means "invalid" in trace context).
fn random_nonzero_u64() -> u64 {
    loop {
        let n = random_u64();
        if n != 0 {
            return n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TracingConfig;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn propagation(ratio: f64) -> Propagation {
        Propagation::new(&TracingConfig {
            propagate: true,
            sample_ratio: ratio,
            ..TracingConfig::default()
        })
    }

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append((*name).clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn reads_the_specs_example() {
        let parent = parse_traceparent(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(
            parent.trace_id.to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parent.parent_id.to_string(), "00f067aa0ba902b7");
        assert!(parent.sampled);
        let unsampled = EXAMPLE.replace("-01", "-00");
        assert!(!parse_traceparent(unsampled.as_bytes()).unwrap().sampled);
        // Flags other than `sampled` are ignored, not refused.
        let other_flags = EXAMPLE.replace("-01", "-fe");
        assert!(!parse_traceparent(other_flags.as_bytes()).unwrap().sampled);
    }

    #[test]
    fn refuses_what_the_spec_calls_invalid() {
        let cases = [
            "".to_string(),
            "00".to_string(),
            "00-".to_string(),
            EXAMPLE[..54].to_string(),
            format!("{EXAMPLE}0"),
            // Version 00 takes no extra fields.
            format!("{EXAMPLE}-extra"),
            EXAMPLE.to_uppercase(),
            EXAMPLE.replace("4bf9", "4BF9"),
            EXAMPLE.replace("4bf9", "4bg9"),
            EXAMPLE.replacen("00-", "ff-", 1),
            EXAMPLE.replacen("00-", "0x-", 1),
            EXAMPLE.replace("4bf92f3577b34da6a3ce929d0e0e4736", &"0".repeat(32)),
            EXAMPLE.replace("00f067aa0ba902b7", &"0".repeat(16)),
            EXAMPLE.replace("-01", "-0g"),
            EXAMPLE.replace('-', "_"),
            EXAMPLE.replacen("-00f0", "-+0f0", 1),
            format!(" {EXAMPLE}").get(..55).unwrap().to_string(),
            // A future version is still refused when its known part is wrong, or when what
            // follows is not a new field.
            EXAMPLE.replacen("00-", "cc-", 1).replace("-01", "-0"),
            format!("{}x", EXAMPLE.replacen("00-", "cc-", 1)),
            "x".repeat(10_000),
        ];
        for case in &cases {
            assert_eq!(parse_traceparent(case.as_bytes()), None, "{case:?}");
        }
    }

    #[test]
    fn reads_later_versions_by_the_version_00_layout() {
        let later = EXAMPLE.replacen("00-", "cc-", 1);
        assert!(parse_traceparent(later.as_bytes()).is_some());
        let with_field = format!("{later}-what-the-future-will-bring");
        let parent = parse_traceparent(with_field.as_bytes()).unwrap();
        assert_eq!(parent, parse_traceparent(EXAMPLE.as_bytes()).unwrap());
    }

    #[test]
    fn never_panics_on_any_prefix_or_byte_noise() {
        use rand::{Rng, SeedableRng};
        for end in 0..=EXAMPLE.len() + 1 {
            let _ = parse_traceparent(EXAMPLE.as_bytes().get(..end).unwrap_or(EXAMPLE.as_bytes()));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(15);
        for _ in 0..20_000 {
            let len = rng.gen_range(0..80);
            let mut bytes: Vec<u8> = EXAMPLE.bytes().chain(EXAMPLE.bytes()).take(len).collect();
            for _ in 0..rng.gen_range(0..4) {
                if !bytes.is_empty() {
                    let at = rng.gen_range(0..bytes.len());
                    bytes[at] = rng.gen();
                }
            }
            let _ = parse_traceparent(&bytes);
        }
    }

    #[test]
    fn a_valid_parent_is_continued_with_a_new_span_of_the_gateway() {
        let incoming = headers(&[(&TRACEPARENT, EXAMPLE)]);
        let context = propagation(0.0).start(&incoming).unwrap();
        assert_eq!(
            context.trace_id.to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.parent_id, Some(SpanId(0x00f0_67aa_0ba9_02b7)));
        assert_ne!(context.span_id, SpanId(0x00f0_67aa_0ba9_02b7));
        // The caller's decision wins over the ratio (which is for new traces only).
        assert!(context.sampled);
        let sent = context.traceparent();
        let sent = sent.to_str().unwrap();
        assert_eq!(sent.len(), 55);
        assert!(sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(sent.ends_with("-01"));
        assert_eq!(&sent[36..52], context.span_id.to_string());
        assert!(parse_traceparent(sent.as_bytes()).is_some());

        let unsampled = headers(&[(&TRACEPARENT, &EXAMPLE.replace("-01", "-00"))]);
        let context = propagation(1.0).start(&unsampled).unwrap();
        assert!(!context.sampled);
        assert!(context.traceparent().to_str().unwrap().ends_with("-00"));
    }

    #[test]
    fn a_missing_or_malformed_parent_starts_a_new_trace() {
        let p = propagation(1.0);
        for incoming in [
            HeaderMap::new(),
            headers(&[(&TRACEPARENT, "00-garbage")]),
            headers(&[(&TRACEPARENT, &EXAMPLE.to_uppercase())]),
            // Two headers cannot both be the parent.
            headers(&[(&TRACEPARENT, EXAMPLE), (&TRACEPARENT, EXAMPLE)]),
        ] {
            let context = p.start(&incoming).unwrap();
            assert_eq!(context.parent_id, None);
            assert_ne!(
                context.trace_id.0,
                0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736
            );
            assert_ne!(context.trace_id.0, 0);
            assert_ne!(context.span_id.0, 0);
            assert!(context.sampled);
            assert!(parse_traceparent(context.traceparent().as_bytes()).is_some());
        }
        // A caller that found the field itself says whether there were several.
        let example = HeaderValue::from_static(EXAMPLE);
        let several = p.start_with(Some(&example), true).unwrap();
        assert_eq!(several.parent_id, None);
        let one = p.start_with(Some(&example), false).unwrap();
        assert_eq!(one.parent_id, Some(SpanId(0x00f0_67aa_0ba9_02b7)));
        let a = p.start(&HeaderMap::new()).unwrap();
        let b = p.start(&HeaderMap::new()).unwrap();
        assert_ne!(a.trace_id, b.trace_id);
        assert_ne!(a.span_id, b.span_id);
    }

    #[test]
    fn the_ratio_decides_for_new_traces() {
        let none = propagation(0.0);
        assert!((0..1000).all(|_| !none.start(&HeaderMap::new()).unwrap().sampled));
        let half = propagation(0.5);
        let sampled = (0..4000)
            .filter(|_| half.start(&HeaderMap::new()).unwrap().sampled)
            .count();
        assert!((1700..2300).contains(&sampled), "{sampled}");
        assert_eq!(Propagation::disabled().start(&HeaderMap::new()), None);
        let off = Propagation::new(&TracingConfig {
            propagate: false,
            sample_ratio: 1.0,
            ..TracingConfig::default()
        });
        assert_eq!(off.start(&headers(&[(&TRACEPARENT, EXAMPLE)])), None);
    }

    #[test]
    fn tracestate_is_kept_only_for_the_clients_trace_and_when_well_formed() {
        let state = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
        let forward = |context: &TraceContext, headers: &mut HeaderMap| {
            let mut fields = crate::proxy::fields::ProxyFields::new();
            fields.trace(context, headers);
            fields.apply(headers);
        };
        let mut forwarded = headers(&[(&TRACEPARENT, EXAMPLE), (&TRACESTATE, state)]);
        let context = propagation(1.0).start(&forwarded).unwrap();
        forward(&context, &mut forwarded);
        assert_eq!(forwarded[&TRACESTATE], state);
        assert_eq!(forwarded[&TRACEPARENT], context.traceparent());

        let mut new_trace = headers(&[(&TRACEPARENT, "bad"), (&TRACESTATE, state)]);
        let context = propagation(1.0).start(&new_trace).unwrap();
        forward(&context, &mut new_trace);
        assert!(!new_trace.contains_key(&TRACESTATE));
        assert_eq!(new_trace.get_all(&TRACEPARENT).iter().count(), 1);

        let mut bad = headers(&[(&TRACEPARENT, EXAMPLE), (&TRACESTATE, "Upper=1")]);
        let context = propagation(1.0).start(&bad).unwrap();
        forward(&context, &mut bad);
        assert!(!bad.contains_key(&TRACESTATE));
    }

    #[test]
    fn hex_digits_are_what_format_writes() {
        let mut values = vec![0, 1, 9, 10, 15, 16, u64::MAX, 0x0123_4567_89ab_cdef];
        values.extend((0..64).map(|bit| 1u64 << bit));
        values.extend((0..64).map(|bit| !(1u64 << bit)));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x);
        }
        for value in values {
            assert_eq!(
                hex_lower(value),
                format!("{value:016x}").as_bytes(),
                "{value:#x}"
            );
        }
        let id = TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            SpanId(0x00f0_67aa_0ba9_02b7).to_string(),
            "00f067aa0ba902b7"
        );
    }

    #[test]
    fn tracestate_bounds_and_grammar() {
        let valid = |value: &[&str]| {
            let mut map = HeaderMap::new();
            for v in value {
                map.append(TRACESTATE, HeaderValue::from_str(v).unwrap());
            }
            tracestate_is_valid(&map)
        };
        assert!(valid(&[]));
        assert!(valid(&["a=1"]));
        assert!(valid(&["a=1, ,b=2 ", "tenant@system=x y"]));
        assert!(valid(&["0vendor/x_y-z*=v!~"]));
        let members: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        assert!(valid(&[&members.join(",")]));
        let too_many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert!(!valid(&[&too_many.join(",")]));
        // Split over two headers, the members still count together.
        assert!(!valid(&[
            &too_many[..20].join(","),
            &too_many[20..].join(",")
        ]));
        assert!(!valid(&[&format!("a={}", "x".repeat(600))]));
        assert!(!valid(&[&format!("a={}", "x".repeat(257))]));
        for bad in [
            "a", "=1", "a=", "A=1", "_a=1", "a@=1", "a@b@c=1", "a=1=2", "a=1,a=2", "a b=1",
        ] {
            assert!(!valid(&[bad]), "{bad:?}");
        }
    }
}
