//! The fields the proxy itself sets on an upstream request: `Host`, `X-Forwarded-For`,
//! `X-Forwarded-Proto`, `X-Forwarded-Host`, and the trace context's `traceparent` and
//! `tracestate`. They are decided once per request ([`ProxyFields`]) and written as the
//! upstream head is written ([`super::h1::encode_head`]), not inserted into the request's
//! header map: an insertion hashes the name, probes, may grow the map, and needs its value as
//! a [`HeaderValue`] (an allocation for a value made per request, such as the client's
//! address or the `traceparent`), about 1,400 instructions a proxied request for these five
//! (`scripts/bench --instructions`, docs/benchmarks.md "eleventh pass"). hyper's client, which
//! sends a map, gets them inserted ([`ProxyFields::apply`]).
//!
//! Each field says what the upstream gets ([`Field`]). What is written is what a sequence of
//! `HeaderMap::insert` (a set field) and `HeaderMap::remove` (a dropped one) would leave, but
//! for the order of unrelated fields: a set field takes the place of the head's first field of
//! that name (the others are left out), or, when the head has none, comes after the head's
//! fields (in the order `X-Forwarded-For`, `-Proto`, `-Host`, `traceparent`, `tracestate`, then
//! a `Host` the head has none of); a dropped field leaves the others where they are (a removal
//! from the map moves its last field into the hole).

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::headers::{format_ip, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO};
use crate::telemetry::trace_context::{tracestate_is_valid, TraceContext, TRACEPARENT, TRACESTATE};

/// The `Host` field of an upstream request head, decided as the head's fields are written (no
/// lookup in the map).
#[derive(Debug, Clone, Copy)]
pub enum HostField<'a> {
    /// The map's `Host` fields as they are, none when it has none.
    AsIs,
    /// The map's `Host` fields as they are; when it has none, this value after the fields
    /// (where hyper's client puts a `Host` inserted into the map).
    Default(&'a HeaderValue),
    /// This value in the place of the map's first `Host` field (any other left out), as an
    /// insertion into the map would put it; when it has none, after the fields.
    Replace(&'a HeaderValue),
}

/// What the upstream gets for one of the proxy's fields.
#[derive(Debug, Clone)]
pub enum Field<'a> {
    /// The request's own fields of that name, as they are (none when it has none).
    Keep,
    /// None of that name.
    Drop,
    /// The client's address, as `Display` writes it (`X-Forwarded-For`).
    Client(IpAddr),
    /// A fixed text (`X-Forwarded-Proto`'s scheme).
    Static(&'static str),
    /// The trace's `traceparent`: version 00, this trace, the gateway's span, the flag.
    Trace(&'a TraceContext),
    /// This value.
    Value(HeaderValue),
}

/// The fields [`ProxyFields`] sets, in the order they come after the head's own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// `X-Forwarded-For`.
    XForwardedFor = 0,
    /// `X-Forwarded-Proto`.
    XForwardedProto = 1,
    /// `X-Forwarded-Host`.
    XForwardedHost = 2,
    /// `traceparent`.
    Traceparent = 3,
    /// `tracestate`.
    Tracestate = 4,
}

const SLOTS: [Slot; 5] = [
    Slot::XForwardedFor,
    Slot::XForwardedProto,
    Slot::XForwardedHost,
    Slot::Traceparent,
    Slot::Tracestate,
];

impl Slot {
    /// The slot of a field name, if it has one: one comparison of the name's text by length
    /// and bytes (the head writer asks it of every field of a request).
    pub fn of(name: &HeaderName) -> Option<Slot> {
        match name.as_str() {
            "x-forwarded-for" => Some(Slot::XForwardedFor),
            "x-forwarded-proto" => Some(Slot::XForwardedProto),
            "x-forwarded-host" => Some(Slot::XForwardedHost),
            "traceparent" => Some(Slot::Traceparent),
            "tracestate" => Some(Slot::Tracestate),
            _ => None,
        }
    }

    /// The field's name.
    pub fn name(self) -> HeaderName {
        match self {
            Slot::XForwardedFor => X_FORWARDED_FOR,
            Slot::XForwardedProto => X_FORWARDED_PROTO,
            Slot::XForwardedHost => X_FORWARDED_HOST,
            Slot::Traceparent => TRACEPARENT,
            Slot::Tracestate => TRACESTATE,
        }
    }

    /// The start of the field's line: its name as written on the wire (lower case, as `http`
    /// spells it) and `": "`.
    fn line_start(self) -> &'static [u8] {
        match self {
            Slot::XForwardedFor => b"x-forwarded-for: ",
            Slot::XForwardedProto => b"x-forwarded-proto: ",
            Slot::XForwardedHost => b"x-forwarded-host: ",
            Slot::Traceparent => b"traceparent: ",
            Slot::Tracestate => b"tracestate: ",
        }
    }
}

/// The proxy's own fields of one upstream request (see the module's documentation).
#[derive(Debug, Clone)]
pub struct ProxyFields<'a> {
    /// The `Host` field, chosen per URL tried.
    pub host: HostField<'a>,
    slots: [Field<'a>; 5],
    /// Some slot is not [`Field::Keep`]: the writer looks at the head's names.
    active: bool,
}

impl Default for ProxyFields<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> ProxyFields<'a> {
    /// Nothing set: the head's fields as they are, its `Host` too.
    pub fn new() -> Self {
        Self {
            host: HostField::AsIs,
            slots: [
                Field::Keep,
                Field::Keep,
                Field::Keep,
                Field::Keep,
                Field::Keep,
            ],
            active: false,
        }
    }

    /// What the upstream gets for `slot`.
    pub fn get(&self, slot: Slot) -> &Field<'a> {
        // The array has one entry per slot.
        &self.slots[slot as usize]
    }

    /// Sets what the upstream gets for `slot`.
    pub fn set(&mut self, slot: Slot, field: Field<'a>) {
        self.active |= !matches!(field, Field::Keep);
        self.slots[slot as usize] = field;
    }

    /// `X-Forwarded-For`, `-Proto` and `-Host` for a request from `client` that reached a
    /// listener of scheme `proto`, whose `Host` is `host` (`headers` is the request's head).
    /// From a trusted proxy the client's `X-Forwarded-For` is appended to and its
    /// `-Proto`/`-Host` kept; from anyone else all three are replaced (`-Host` left out when
    /// the request has no host), so a client cannot make the upstream believe it is someone
    /// else. Only the trusted case reads the head.
    pub fn forwarded(
        &mut self,
        headers: &HeaderMap,
        client: IpAddr,
        trusted: bool,
        proto: &'static str,
        host: Option<HeaderValue>,
    ) {
        let mut forwarded_for = Field::Client(client);
        if trusted {
            let existing: Vec<&str> = headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect();
            if !existing.is_empty() {
                let mut buf = [0u8; 48];
                let client = std::str::from_utf8(format_ip(client, &mut buf)).unwrap_or_default();
                // Joined text of visible ASCII values and an address: always a value, but the
                // client's own address alone is the fallback, never a panic.
                if let Ok(value) =
                    HeaderValue::from_str(&format!("{}, {client}", existing.join(", ")))
                {
                    forwarded_for = Field::Value(value);
                }
            }
        }
        self.set(Slot::XForwardedFor, forwarded_for);
        // A TLS-terminating proxy in front knows the original scheme and host.
        if !(trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
            self.set(Slot::XForwardedProto, Field::Static(proto));
        }
        if !(trusted && headers.contains_key(&X_FORWARDED_HOST)) {
            self.set(Slot::XForwardedHost, host.map_or(Field::Drop, Field::Value));
        }
    }

    /// The trace headers of the upstream request: `traceparent` replaced by the gateway's,
    /// the client's `tracestate` kept only when the trace is the client's and the header is
    /// well-formed and within bounds ([`tracestate_is_valid`]).
    pub fn trace(&mut self, trace: &'a TraceContext, headers: &HeaderMap) {
        self.set(Slot::Traceparent, Field::Trace(trace));
        if trace.parent_id.is_none() || !tracestate_is_valid(headers) {
            self.set(Slot::Tracestate, Field::Drop);
        }
    }

    /// The fields inserted into (and removed from) `headers` in slot order, then `Host` as
    /// [`Self::host`] says, for a client that sends a map (hyper's). Applying them twice leaves
    /// what applying them once did.
    pub fn apply(&self, headers: &mut HeaderMap) {
        self.apply_slots(headers);
        match self.host {
            HostField::AsIs => {}
            HostField::Default(_) if headers.contains_key(header::HOST) => {}
            HostField::Default(host) | HostField::Replace(host) => {
                headers.insert(header::HOST, host.clone());
            }
        }
    }

    /// [`Self::apply`]'s slots.
    fn apply_slots(&self, headers: &mut HeaderMap) {
        if !self.active {
            return;
        }
        for (slot, field) in SLOTS.iter().zip(&self.slots) {
            let value = match field {
                Field::Keep => continue,
                Field::Drop => {
                    headers.remove(slot.name());
                    continue;
                }
                Field::Client(ip) => {
                    let mut buf = [0u8; 48];
                    HeaderValue::from_bytes(format_ip(*ip, &mut buf)).ok()
                }
                Field::Static(text) => Some(HeaderValue::from_static(text)),
                Field::Trace(trace) => Some(trace.traceparent()),
                Field::Value(value) => Some(value.clone()),
            };
            if let Some(value) = value {
                headers.insert(slot.name(), value);
            }
        }
    }

    /// Writes `headers` as `name: value\r\n` lines with the proxy's fields in their places
    /// (see the module's documentation), `Host` as [`Self::host`] says, into `dst`.
    pub fn write_fields(&self, dst: &mut Vec<u8>, headers: &HeaderMap) {
        let mut host_written = false;
        // Bit `slot`: that slot's field is written.
        let mut written = 0u8;
        for (name, value) in headers {
            let value = if name == header::HOST {
                let value = match self.host {
                    HostField::Replace(_) if host_written => continue,
                    HostField::Replace(replacement) => replacement,
                    HostField::AsIs | HostField::Default(_) => value,
                };
                host_written = true;
                value
            } else if let Some(slot) = self.active.then(|| Slot::of(name)).flatten() {
                let field = self.get(slot);
                match field {
                    Field::Keep => value,
                    Field::Drop => continue,
                    _ => {
                        let bit = 1 << slot as u8;
                        if written & bit == 0 {
                            written |= bit;
                            put_field(dst, slot, field);
                        }
                        continue;
                    }
                }
            } else {
                value
            };
            dst.extend_from_slice(name.as_str().as_bytes());
            dst.extend_from_slice(b": ");
            dst.extend_from_slice(value.as_bytes());
            dst.extend_from_slice(b"\r\n");
        }
        if self.active {
            for (slot, field) in SLOTS.iter().zip(&self.slots) {
                let set = !matches!(field, Field::Keep | Field::Drop);
                if set && written & (1 << *slot as u8) == 0 {
                    put_field(dst, *slot, field);
                }
            }
        }
        if let (HostField::Default(host) | HostField::Replace(host), false) =
            (self.host, host_written)
        {
            dst.extend_from_slice(b"host: ");
            dst.extend_from_slice(host.as_bytes());
            dst.extend_from_slice(b"\r\n");
        }
    }
}

/// Writes `slot`'s line with `field`'s value; nothing for [`Field::Keep`] and [`Field::Drop`].
fn put_field(dst: &mut Vec<u8>, slot: Slot, field: &Field<'_>) {
    let mut buf = [0u8; 48];
    let trace;
    let value: &[u8] = match field {
        Field::Keep | Field::Drop => return,
        Field::Client(ip) => format_ip(*ip, &mut buf),
        Field::Static(text) => text.as_bytes(),
        Field::Trace(context) => {
            trace = context.traceparent_bytes();
            &trace
        }
        Field::Value(value) => value.as_bytes(),
    };
    let start = slot.line_start();
    dst.reserve(start.len() + value.len() + 2);
    dst.extend_from_slice(start);
    dst.extend_from_slice(value);
    dst.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::trace_context::{SpanId, TraceId};

    fn map(fields: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn written(fields: &ProxyFields<'_>, headers: &HeaderMap) -> String {
        let mut out = Vec::new();
        fields.write_fields(&mut out, headers);
        String::from_utf8(out).unwrap()
    }

    /// The lines of `headers` as `encode_head` writes a map that has nothing to amend.
    fn lines(headers: &HeaderMap) -> String {
        headers
            .iter()
            .map(|(n, v)| format!("{n}: {}\r\n", v.to_str().unwrap()))
            .collect()
    }

    const TRACE: TraceContext = TraceContext {
        trace_id: TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
        parent_id: Some(SpanId(0x00f0_67aa_0ba9_02b7)),
        span_id: SpanId(0x1234_5678_9abc_def0),
        sampled: true,
    };

    /// Every mix of the client's fields and of what the proxy sets: what the writer writes is
    /// what the map holds after [`ProxyFields::apply`], as a set of lines per name (the order of
    /// different names is the only thing allowed to differ) and in the same order for each name.
    #[test]
    fn written_fields_are_what_the_map_gets_from_apply() {
        let client_fields: [&[(&str, &str)]; 6] = [
            &[],
            &[("accept", "*/*")],
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("accept", "*/*"),
                ("x-forwarded-for", "7.7.7.7"),
            ],
            &[
                ("tracestate", "a=1"),
                ("x-forwarded-host", "evil"),
                ("traceparent", "00-bad"),
                ("x-forwarded-proto", "gopher"),
                ("host", "client.test"),
            ],
            &[("tracestate", "Bad=1"), ("tracestate", "b=2")],
            &[("x-forwarded-host", "a"), ("x-forwarded-host", "b")],
        ];
        let trace_new = TraceContext {
            parent_id: None,
            ..TRACE
        };
        let ips: [IpAddr; 3] = [
            "10.1.2.3".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
            "10.9.8.7".parse().unwrap(),
        ];
        // `Host` as each choice says, the address families beside them.
        let upstream = HeaderValue::from_static("upstream.test");
        let host_fields = [
            HostField::AsIs,
            HostField::Default(&upstream),
            HostField::Replace(&upstream),
        ];
        for client in client_fields {
            let headers = map(client);
            for trusted in [false, true] {
                for host in [None, Some(HeaderValue::from_static("gw.test:8080"))] {
                    for trace in [None, Some(&TRACE), Some(&trace_new)] {
                        for (ip, host_field) in ips.into_iter().zip(host_fields) {
                            let mut fields = ProxyFields::new();
                            fields.forwarded(&headers, ip, trusted, "https", host.clone());
                            if let Some(trace) = trace {
                                fields.trace(trace, &headers);
                            }
                            fields.host = host_field;
                            let mut applied = headers.clone();
                            fields.apply(&mut applied);
                            let mut twice = applied.clone();
                            fields.apply(&mut twice);
                            assert_eq!(twice, applied, "apply is idempotent");
                            let what = format!(
                                "{client:?} {trusted} {host:?} {trace:?} {ip} {host_field:?}"
                            );
                            assert_eq!(
                                by_name(&written(&fields, &headers)),
                                by_name(&lines(&applied)),
                                "{what}"
                            );
                            // A head already amended (a resend through hyper's map, then the
                            // lean client) is written the same.
                            assert_eq!(
                                by_name(&written(&fields, &applied)),
                                by_name(&lines(&applied)),
                                "{what}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// What the proxy step did before its fields were written with the head (bba6b3e's
    /// `add_forwarded`, `TraceContext::forward`, the insertion of `proxyOptions.headers` and of
    /// `Host`), as operations on the map: the reference the writer must match, value for value.
    fn by_map_operations(
        headers: &mut HeaderMap,
        client: IpAddr,
        trusted: bool,
        host: Option<HeaderValue>,
        trace: Option<&TraceContext>,
        configured: &[(HeaderName, HeaderValue)],
        host_field: HostField<'_>,
    ) {
        let existing: Vec<String> = if trusted {
            headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        };
        let value = if existing.is_empty() {
            client.to_string()
        } else {
            format!("{}, {client}", existing.join(", "))
        };
        headers.insert(X_FORWARDED_FOR, HeaderValue::from_str(&value).unwrap());
        if !(trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        }
        if !(trusted && headers.contains_key(&X_FORWARDED_HOST)) {
            match host {
                Some(host) => {
                    headers.insert(X_FORWARDED_HOST, host);
                }
                None => {
                    headers.remove(X_FORWARDED_HOST);
                }
            }
        }
        if let Some(trace) = trace {
            headers.insert(TRACEPARENT, trace.traceparent());
            if trace.parent_id.is_none() || !tracestate_is_valid(headers) {
                headers.remove(TRACESTATE);
            }
        }
        for (name, value) in configured {
            headers.insert(name.clone(), value.clone());
        }
        match host_field {
            HostField::AsIs => {}
            HostField::Default(value) if headers.contains_key(header::HOST) => {
                let _ = value;
            }
            HostField::Default(value) | HostField::Replace(value) => {
                headers.insert(header::HOST, value.clone());
            }
        }
    }

    /// The writer against the map operations it replaced (above), for every mix of client
    /// heads, trust, host, trace state, configured values of the proxy's own names (which win)
    /// and `Host` choices: the same values for each name, in the same order.
    #[test]
    fn written_fields_are_what_the_map_operations_made_before() {
        let client_fields: [&[(&str, &str)]; 5] = [
            &[("accept", "*/*")],
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-for", " "),
                ("x-forwarded-for", "7.7.7.7"),
                ("host", "client.test"),
            ],
            &[
                ("tracestate", "a=1"),
                ("tracestate", "b=2"),
                ("x-forwarded-host", "evil"),
                ("traceparent", "00-bad"),
                ("x-forwarded-proto", "gopher"),
            ],
            &[
                ("tracestate", "Bad=1"),
                ("host", "a.test"),
                ("host", "b.test"),
            ],
            &[("x-forwarded-proto", "a"), ("x-forwarded-proto", "b")],
        ];
        let configured_sets: [&[(&str, &str)]; 4] = [
            &[],
            &[("x-forwarded-for", "cfg"), ("x-other", "1")],
            &[("tracestate", "cfg=1"), ("traceparent", "cfg")],
            &[("x-forwarded-host", "cfg"), ("x-forwarded-proto", "cfg")],
        ];
        let trace_new = TraceContext {
            parent_id: None,
            ..TRACE
        };
        let upstream = HeaderValue::from_static("upstream.test");
        let client: IpAddr = "10.1.2.3".parse().unwrap();
        for fields_in in client_fields {
            for configured in configured_sets {
                let configured: Vec<(HeaderName, HeaderValue)> = configured
                    .iter()
                    .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
                    .collect();
                for trusted in [false, true] {
                    for host in [None, Some(HeaderValue::from_static("gw.test"))] {
                        for trace in [None, Some(&TRACE), Some(&trace_new)] {
                            for host_field in [
                                HostField::AsIs,
                                HostField::Default(&upstream),
                                HostField::Replace(&upstream),
                            ] {
                                let headers = map(fields_in);
                                // The step: configured names of other fields go into the map,
                                // the proxy's own into its fields.
                                let mut head = headers.clone();
                                let mut fields = ProxyFields::new();
                                fields.forwarded(&head, client, trusted, "https", host.clone());
                                if let Some(trace) = trace {
                                    fields.trace(trace, &head);
                                }
                                for (name, value) in &configured {
                                    match Slot::of(name) {
                                        Some(slot) => fields.set(slot, Field::Value(value.clone())),
                                        None => {
                                            head.insert(name.clone(), value.clone());
                                        }
                                    }
                                }
                                fields.host = host_field;
                                let mut reference = headers.clone();
                                by_map_operations(
                                    &mut reference,
                                    client,
                                    trusted,
                                    host.clone(),
                                    trace,
                                    &configured,
                                    host_field,
                                );
                                let what = format!(
                                    "{fields_in:?} {configured:?} {trusted} {host:?} {trace:?} {host_field:?}"
                                );
                                assert_eq!(
                                    by_name(&written(&fields, &head)),
                                    by_name(&lines(&reference)),
                                    "{what}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// The lines grouped by name, each name's values in order.
    fn by_name(text: &str) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut names = std::collections::BTreeMap::<String, Vec<String>>::new();
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(": ").unwrap();
            names.entry(name.into()).or_default().push(value.into());
        }
        names
    }

    #[test]
    fn set_fields_take_the_first_place_and_new_ones_come_after_the_head() {
        let headers = map(&[
            ("x-forwarded-proto", "gopher"),
            ("accept", "*/*"),
            ("x-forwarded-proto", "ftp"),
            ("tracestate", "a=1"),
            ("user-agent", "t"),
        ]);
        let mut fields = ProxyFields::new();
        fields.forwarded(&headers, "10.0.0.9".parse().unwrap(), false, "http", None);
        fields.trace(&TRACE, &headers);
        assert_eq!(
            written(&fields, &headers),
            "x-forwarded-proto: http\r\naccept: */*\r\ntracestate: a=1\r\nuser-agent: t\r\n\
             x-forwarded-for: 10.0.0.9\r\n\
             traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-123456789abcdef0-01\r\n"
        );
        // A trace the gateway started drops the client's `tracestate`, leaving the order.
        let started = TraceContext {
            parent_id: None,
            ..TRACE
        };
        let mut fields = ProxyFields::new();
        fields.trace(&started, &headers);
        assert_eq!(
            written(&fields, &headers),
            "x-forwarded-proto: gopher\r\nx-forwarded-proto: ftp\r\naccept: */*\r\n\
             user-agent: t\r\n\
             traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-123456789abcdef0-01\r\n"
        );
    }

    #[test]
    fn nothing_set_writes_the_head_as_it_is() {
        let headers = map(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("host", "a.test"),
            ("traceparent", "x"),
        ]);
        assert_eq!(written(&ProxyFields::new(), &headers), lines(&headers));
        let mut applied = headers.clone();
        ProxyFields::new().apply(&mut applied);
        assert_eq!(applied, headers);
    }

    #[test]
    fn untrusted_clients_cannot_spoof_forwarding_headers() {
        let headers = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil"),
        ]);
        let mut fields = ProxyFields::new();
        let host = Some(HeaderValue::from_static("real"));
        fields.forwarded(&headers, "127.0.0.1".parse().unwrap(), false, "http", host);
        assert_eq!(
            written(&fields, &headers),
            "x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: real\r\n"
        );
        // Without a host, the client's `X-Forwarded-Host` goes all the same.
        let mut fields = ProxyFields::new();
        fields.forwarded(&headers, "127.0.0.1".parse().unwrap(), false, "http", None);
        assert!(!written(&fields, &headers).contains("evil"));
    }

    #[test]
    fn trusted_proxies_are_appended_to_and_their_scheme_and_host_kept() {
        let headers = map(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-for", " 10.0.0.2 "),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "outer.test"),
        ]);
        let mut fields = ProxyFields::new();
        let host = Some(HeaderValue::from_static("inner.test"));
        fields.forwarded(&headers, "127.0.0.1".parse().unwrap(), true, "http", host);
        assert_eq!(
            written(&fields, &headers),
            "x-forwarded-for: 10.0.0.1, 10.0.0.2, 127.0.0.1\r\n\
             x-forwarded-proto: https\r\nx-forwarded-host: outer.test\r\n"
        );
        // A trusted proxy that sent none: the gateway's own.
        let mut fields = ProxyFields::new();
        let host = Some(HeaderValue::from_static("inner.test"));
        fields.forwarded(
            &HeaderMap::new(),
            "::1".parse().unwrap(),
            true,
            "http",
            host,
        );
        assert_eq!(
            written(&fields, &HeaderMap::new()),
            "x-forwarded-for: ::1\r\nx-forwarded-proto: http\r\nx-forwarded-host: inner.test\r\n"
        );
    }

    #[test]
    fn a_set_value_replaces_what_forwarded_chose() {
        let headers = map(&[("accept", "*/*")]);
        let mut fields = ProxyFields::new();
        fields.forwarded(&headers, "10.0.0.1".parse().unwrap(), false, "http", None);
        fields.set(
            Slot::XForwardedFor,
            Field::Value(HeaderValue::from_static("configured")),
        );
        assert_eq!(
            written(&fields, &headers),
            "accept: */*\r\nx-forwarded-for: configured\r\nx-forwarded-proto: http\r\n"
        );
    }

    #[test]
    fn slots_know_their_names() {
        for slot in SLOTS {
            assert_eq!(Slot::of(&slot.name()), Some(slot));
            assert_eq!(
                format!("{}: ", slot.name().as_str()).as_bytes(),
                slot.line_start()
            );
        }
        assert_eq!(Slot::of(&header::USER_AGENT), None);
        assert_eq!(Slot::of(&header::HOST), None);
    }
}
