//! How one access-log record becomes one line: the `text` form (the `tracing` line gateways
//! have always printed) or a JSON object. Runs on the writer thread, never on the request path.
//! Both are written by hand into the batch buffer (no `fmt` machinery, no serializer): this
//! thread's cost is most of the access log's CPU. What lines share is rendered once: each
//! route's JSON `route` member at start-up, the last upstream's JSON member, and the date and
//! time to the second.

use std::io::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::Method;

use super::{AccessRecord, RouteTable};

/// The route templates of a model (`/petstore/v1/pet/{petId}`, an Express Gateway `paths`
/// entry or `pathRegex`), looked up by [`super::RouteRef`] when a line is written.
pub type RouteTemplates = RouteTable<String>;

/// Renders records as lines, keeping what successive lines share: the routes' JSON members,
/// the last upstream's and the date and time to the second (written once per second, not once
/// per line).
#[derive(Debug)]
pub struct LineWriter {
    /// Per route, its JSON members.
    routes: RouteTable<RouteMembers>,
    /// The upstream of the last JSON line that had one, and its `,"upstream":"<URL, escaped>"`
    /// (an endpoint's URL is one shared string: most lines name the one before's).
    upstream: Option<(Arc<str>, Piece)>,
    clock: SecondClock,
    wall: WallClock,
}

/// Bytes rendered once and copied into many lines: inline up to [`PIECE`] bytes (copied with
/// their padding, one copy of a fixed size, then cut), else on the heap.
#[derive(Debug)]
enum Piece {
    Inline { len: u8, bytes: [u8; PIECE] },
    Heap(Box<[u8]>),
}

/// No bytes.
static EMPTY_PIECE: Piece = Piece::Inline {
    len: 0,
    bytes: [0; PIECE],
};

/// The longest [`Piece`] kept inline: a route's method and template, an upstream's URL.
const PIECE: usize = 64;

impl Piece {
    fn new(text: &[u8]) -> Self {
        let mut bytes = [0u8; PIECE];
        match (bytes.get_mut(..text.len()), u8::try_from(text.len())) {
            (Some(head), Ok(len)) => {
                head.copy_from_slice(text);
                Self::Inline { len, bytes }
            }
            _ => Self::Heap(text.into()),
        }
    }

    /// Appends the piece to `out`.
    fn push_to(&self, out: &mut Vec<u8>) {
        match self {
            Self::Inline { len, bytes } => push_cut(out, bytes, usize::from(*len)),
            Self::Heap(bytes) => out.extend_from_slice(bytes),
        }
    }

    /// The piece's bytes.
    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Self::Heap(bytes) => bytes,
        }
    }
}

/// A route's JSON members, rendered at start-up.
#[derive(Debug)]
struct RouteMembers {
    /// `,"route":"<template, escaped>"`.
    route: Piece,
    /// The route's one method (a WSO2 resource's) and the end of the client's member, the
    /// method's and the route's joined: `","method":"GET","route":"<template>"`.
    joined: Option<(Method, Piece)>,
}

impl LineWriter {
    /// A writer naming routes from `templates`.
    pub fn new(templates: RouteTemplates) -> Self {
        Self {
            routes: templates.map(|template| RouteMembers {
                route: Piece::new(&json_member(b",\"route\":", template)),
                joined: None,
            }),
            upstream: None,
            clock: SecondClock::default(),
            wall: WallClock::now(),
        }
    }

    /// Joins each route's method (where `methods` gives it one) with its route member, so a
    /// JSON line of that route and method writes both at once.
    pub fn with_methods(mut self, methods: &RouteTable<Option<Method>>) -> Self {
        let tables = [
            (&mut self.routes.wso2, &methods.wso2),
            (&mut self.routes.express, &methods.express),
        ];
        for (members, methods) in tables {
            for (members, methods) in members.iter_mut().zip(methods) {
                for (member, method) in members.iter_mut().zip(methods) {
                    member.joined = method.as_ref().map(|method| {
                        let mut joined = b"\",\"method\":".to_vec();
                        push_json_str(&mut joined, method.as_str());
                        joined.extend_from_slice(member.route.as_bytes());
                        (method.clone(), Piece::new(&joined))
                    });
                }
            }
        }
        self
    }

    /// Reads the clocks again: the records rendered next get their wall-clock times from
    /// this moment (the writer calls it once per round, not per line).
    pub fn set_clock(&mut self, wall: WallClock) {
        self.wall = wall;
    }

    /// Appends `record` as one JSON line to `out`: an object whose fields come in a fixed order
    /// (reference: docs/logging.md), absent ones omitted. Strings are escaped as RFC 8259 asks
    /// (`"`, `\` and every control character below U+0020; the rest stays UTF-8), the
    /// durations are milliseconds with at most three decimals, written as the shortest JSON
    /// number of the same value (`0.61`, `12.0`).
    pub fn json(&mut self, out: &mut Vec<u8>, record: &AccessRecord) {
        self.clock
            .write_json_head(out, self.wall.since_epoch(record.finished));
        push_ip(out, record.client);
        let route = record.route.and_then(|r| self.routes.get(r));
        match route.and_then(|r| r.joined.as_ref()) {
            Some((method, joined)) if *method == record.method => joined.push_to(out),
            _ => {
                match json_method(&record.method) {
                    Some(method) => out.extend_from_slice(method),
                    None => {
                        out.extend_from_slice(b"\",\"method\":");
                        push_json_str(out, record.method.as_str());
                    }
                }
                if let Some(route) = route {
                    route.route.push_to(out);
                }
            }
        }
        out.extend_from_slice(b",\"path\":\"");
        let path = record.path.as_bytes();
        match record.path.padded() {
            // A short target is copied with its padding, a copy of a fixed size, then cut.
            Some(padded) if is_plain(path) => push_cut(out, padded, path.len()),
            _ => push_json_content(out, path),
        }
        // The path's closing quote, the status and the `complete` member in one piece.
        push_status_members(out, record.status.as_u16(), record.complete);
        push_u64(out, record.bytes_out);
        out.extend_from_slice(b",\"total_ms\":");
        push_json_millis(out, micros(record.total()));
        if let Some(upstream) = &record.upstream {
            self.upstream_member(upstream).push_to(out);
        }
        if let Some(latency) = record.upstream_latency {
            out.extend_from_slice(b",\"upstream_ms\":");
            push_json_millis(out, micros(latency));
        }
        if let Some(consumer) = &record.consumer {
            out.extend_from_slice(b",\"consumer\":");
            push_json_str(out, consumer);
        }
        if let Some(trace) = &record.trace {
            push_trace_member(out, trace.trace_id.0);
        }
        if let Some(side) = record.error_side() {
            out.extend_from_slice(b",\"error\":\"");
            out.extend_from_slice(side.name().as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b"}\n");
    }

    /// `,"upstream":"<URL>"` for `upstream`: the last one's, rendered again only when the
    /// upstream is another string (compared by address first, then by text).
    fn upstream_member(&mut self, upstream: &Arc<str>) -> &Piece {
        let same = self
            .upstream
            .as_ref()
            .is_some_and(|(last, _)| Arc::ptr_eq(last, upstream) || **last == **upstream);
        if !same {
            let member = Piece::new(&json_member(b",\"upstream\":", upstream));
            self.upstream = Some((upstream.clone(), member));
        }
        match &self.upstream {
            Some((_, member)) => member,
            None => &EMPTY_PIECE,
        }
    }

    /// Appends `record` as the text line of earlier releases (the `tracing` fmt line on target
    /// `access`, field for field; docs/getting-started.md "Access log"), with the request's W3C
    /// trace id added at the end (`trace=`). Byte for byte the line `tracing` wrote: the
    /// milliseconds as Rust's `{:.2}` prints the three-decimal value, the consumer as
    /// `str::escape_debug`.
    pub fn text(&mut self, out: &mut Vec<u8>, record: &AccessRecord) {
        self.clock.write(
            out,
            self.wall.since_epoch(record.finished),
            Fraction::Micros,
        );
        out.extend_from_slice(b"Z  INFO access: ");
        push_ip(out, record.client);
        out.push(b' ');
        out.extend_from_slice(record.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(record.path.as_bytes());
        out.push(b' ');
        push_u64(out, u64::from(record.status.as_u16()));
        out.extend_from_slice(if record.complete {
            b" complete bytes_out="
        } else {
            b" aborted bytes_out="
        });
        push_u64(out, record.bytes_out);
        out.extend_from_slice(b" upstream=");
        out.extend_from_slice(record.upstream.as_deref().unwrap_or("-").as_bytes());
        out.extend_from_slice(b" upstream_ms=");
        push_text_millis(out, record.upstream_latency.map_or(0, micros));
        out.extend_from_slice(b" total_ms=");
        push_text_millis(out, micros(record.total()));
        out.extend_from_slice(b" consumer=");
        match record.consumer.as_deref() {
            Some(consumer) => {
                let _ = write!(out, "{}", consumer.escape_debug());
            }
            None => out.push(b'-'),
        }
        out.extend_from_slice(b" trace=");
        match &record.trace {
            Some(trace) => out.extend_from_slice(&trace_hex(trace.trace_id.0)),
            None => out.push(b'-'),
        }
        out.push(b'\n');
    }
}

/// A duration in whole microseconds, rounded half up (in integers: the `f64` rounding of
/// earlier releases gave the same values but for the rare exact half microsecond, which it
/// could round down).
#[inline]
fn micros(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from((d.subsec_nanos() + 500) / 1000))
}

/// `micros` as milliseconds in the shortest JSON number: `1234.567`, `0.61`, `12.0` (what
/// `serde_json` wrote for the `f64` of the same value). Made in a word (below 10 s) or on the
/// stack, appended in one copy of a fixed size, then cut to its length.
// Inlined into the line writers: a call costs about as much as the work.
#[inline(always)]
fn push_json_millis(out: &mut Vec<u8>, micros: u64) {
    let millis = micros / 1000;
    let fraction = (micros % 1000) as u32;
    let [tens, units] = DIGIT_PAIRS_2[(fraction % 100) as usize];
    // The point and three decimals; trailing zeros go, but one digit always stays (`12.0`).
    let decimals = [b'.', b'0' + (fraction / 100 % 10) as u8, tens, units];
    let keep = if units != b'0' {
        4
    } else if tens != b'0' {
        3
    } else {
        2
    };
    if millis < 10_000 {
        let (digits, len) = small_decimal(millis as u32);
        let text = u64::from(digits) | (u64::from(u32::from_le_bytes(decimals)) << (8 * len));
        push_cut(out, &text.to_le_bytes(), len + keep);
        return;
    }
    let (mut text, len) = decimal(millis);
    if let Some(at) = text.get_mut(len..len + 4) {
        at.copy_from_slice(&decimals);
    }
    push_cut(out, &text, len + keep);
}

/// `micros` as milliseconds with two decimals, as `format!("{:.2}", micros as f64 / 1000.0)`
/// prints them. Only a value ending in 5 µs is a tie at two decimals, where the binary `f64`
/// decides which way it rounds; that rare case goes through `f64` formatting itself.
fn push_text_millis(out: &mut Vec<u8>, micros: u64) {
    if micros % 10 == 5 {
        let _ = write!(out, "{:.2}", micros as f64 / 1000.0);
        return;
    }
    let hundredths = (micros + 5) / 10;
    push_u64(out, hundredths / 100);
    out.push(b'.');
    push_padded(out, hundredths % 100, 2);
}

/// Two decimal digits of each number below 100, `00` to `99`.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// [`DIGIT_PAIRS`] by number.
const DIGIT_PAIRS_2: [[u8; 2]; 100] = digit_pairs();

const fn digit_pairs() -> [[u8; 2]; 100] {
    let mut table = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        table[i] = [DIGIT_PAIRS[2 * i], DIGIT_PAIRS[2 * i + 1]];
        i += 1;
    }
    table
}

/// `value` (below 10,000) in decimal: its digits in a word, the first in the lowest byte (as
/// `to_le_bytes` lays them out), and how many there are.
#[inline]
fn small_decimal(value: u32) -> (u32, usize) {
    let [a, b] = DIGIT_PAIRS_2[(value / 100 % 100) as usize];
    let [c, d] = DIGIT_PAIRS_2[(value % 100) as usize];
    let len = 1 + usize::from(value >= 10) + usize::from(value >= 100) + usize::from(value >= 1000);
    // The leading zeros (the low bytes) shifted out.
    (u32::from_le_bytes([a, b, c, d]) >> (8 * (4 - len)), len)
}

/// Room for the decimal digits of a `u64` (at most 20) and the point and three decimals of
/// [`push_json_millis`].
const DECIMAL: usize = 24;

/// `value` in decimal, made on the stack two digits at a time: the text (left-aligned) and
/// its length.
fn decimal(mut value: u64) -> ([u8; DECIMAL], usize) {
    let len = value.checked_ilog10().map_or(1, |log| log as usize + 1);
    let mut text = [b'0'; DECIMAL];
    let mut at = len;
    while at >= 2 {
        at -= 2;
        let pair = (value % 100) as usize * 2;
        value /= 100;
        if let (Some(to), Some(from)) = (text.get_mut(at..at + 2), DIGIT_PAIRS.get(pair..pair + 2))
        {
            to.copy_from_slice(from);
        }
    }
    if at == 1 {
        text[0] = b'0' + value as u8;
    }
    (text, len)
}

/// The first `len` bytes of `text`, appended as one copy of its whole fixed size and then cut
/// (a fixed-size copy is a few moves; a copy of a variable length is a call).
fn push_cut<const N: usize>(out: &mut Vec<u8>, text: &[u8; N], len: usize) {
    let end = out.len() + len.min(N);
    out.extend_from_slice(text);
    out.truncate(end);
}

/// `value` in decimal.
// Inlined into the line writers: a call costs about as much as the work.
#[inline(always)]
fn push_u64(out: &mut Vec<u8>, value: u64) {
    if value < 10_000 {
        let (digits, len) = small_decimal(value as u32);
        push_cut(out, &digits.to_le_bytes(), len);
    } else {
        let (text, len) = decimal(value);
        push_cut(out, &text, len);
    }
}

/// The path's closing quote, the status and the opening of `bytes_out`:
/// `","status":200,"complete":true,"bytes_out":` (or `…"complete":false…`), one piece with the
/// status's three digits put in.
#[inline]
fn push_status_members(out: &mut Vec<u8>, status: u16, complete: bool) {
    const COMPLETE: &[u8; 43] = b"\",\"status\":000,\"complete\":true,\"bytes_out\":";
    const ABORTED: &[u8; 44] = b"\",\"status\":000,\"complete\":false,\"bytes_out\":";
    // Where the digits go (after `","status":`); a status has three (`http` keeps it in
    // 100..=999).
    const AT: usize = 11;
    let digits = [
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ];
    if complete {
        let mut piece = *COMPLETE;
        piece[AT..AT + 3].copy_from_slice(&digits);
        out.extend_from_slice(&piece);
    } else {
        let mut piece = *ABORTED;
        piece[AT..AT + 3].copy_from_slice(&digits);
        out.extend_from_slice(&piece);
    }
}

/// `value` (below `10^width`, `width` at most 20) in exactly `width` decimal digits, zeros
/// first.
fn push_padded(out: &mut Vec<u8>, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let digits = digits.get_mut(..width).unwrap_or_default();
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out.extend_from_slice(digits);
}

/// Each octet's decimal digits followed by a dot, in a word (the first digit in the lowest
/// byte, zeros above the dot), and in the bits from 32 up how many bytes that is.
const OCTETS: [u64; 256] = octet_words();

const fn octet_words() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let n = i as u8;
        let (bytes, len) = if n >= 100 {
            ([b'0' + n / 100, b'0' + n / 10 % 10, b'0' + n % 10, b'.'], 4)
        } else if n >= 10 {
            ([b'0' + n / 10, b'0' + n % 10, b'.', 0], 3)
        } else {
            ([b'0' + n, b'.', 0, 0], 2)
        };
        table[i] = u32::from_le_bytes(bytes) as u64 | (len << 32);
        i += 1;
    }
    table
}

/// An IP address as `Display` writes it (IPv4 by hand, each octet with its dot from a table:
/// the common case).
// Inlined into the line writers: a call costs about as much as the work.
#[inline(always)]
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // Two octets in a word (at most eight bytes with their dots), two words placed
            // one after the other, then appended at once without the last dot.
            let [a, b, c, d] = v4.octets().map(|octet| OCTETS[usize::from(octet)]);
            let pair = |first: u64, second: u64| {
                let len = (first >> 32) as usize;
                let word = (first & 0xffff_ffff) | ((second & 0xffff_ffff) << (8 * len));
                (word, len + (second >> 32) as usize)
            };
            let (head, head_len) = pair(a, b);
            let (tail, tail_len) = pair(c, d);
            let mut text = [0u8; 16];
            text[..8].copy_from_slice(&head.to_le_bytes());
            if let Some(at) = text.get_mut(head_len..head_len + 8) {
                at.copy_from_slice(&tail.to_le_bytes());
            }
            push_cut(out, &text, head_len + tail_len - 1);
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Each byte's two lower-case hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = hex_pairs();

const fn hex_pairs() -> [[u8; 2]; 256] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [DIGITS[i >> 4], DIGITS[i & 0xf]];
        i += 1;
    }
    table
}

/// A W3C trace id as 32 lower-case hex digits, a byte's two from a table. (Digits made
/// eight at a time with shifts and masks cost more: the compiler turns them into vector code
/// with byte shuffles.)
fn trace_hex(id: u128) -> [u8; 32] {
    let mut text = [0u8; 32];
    for (pair, byte) in text.chunks_exact_mut(2).zip(id.to_be_bytes()) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
    }
    text
}

/// `,"trace_id":"<32 hex digits>"`, one piece.
#[inline]
fn push_trace_member(out: &mut Vec<u8>, id: u128) {
    const OPENING: &[u8; 13] = b",\"trace_id\":\"";
    let mut piece = [b'"'; 13 + 32 + 1];
    piece[..13].copy_from_slice(OPENING);
    piece[13..13 + 32].copy_from_slice(&trace_hex(id));
    out.extend_from_slice(&piece);
}

/// The end of the client's member and the method's, for a common method
/// (`","method":"GET"`; `None`: an extension method, escaped per line).
fn json_method(method: &Method) -> Option<&'static [u8]> {
    Some(match *method {
        Method::GET => b"\",\"method\":\"GET\"",
        Method::POST => b"\",\"method\":\"POST\"",
        Method::PUT => b"\",\"method\":\"PUT\"",
        Method::DELETE => b"\",\"method\":\"DELETE\"",
        Method::HEAD => b"\",\"method\":\"HEAD\"",
        Method::OPTIONS => b"\",\"method\":\"OPTIONS\"",
        Method::PATCH => b"\",\"method\":\"PATCH\"",
        _ => return None,
    })
}

/// `name` (`,"route":`) followed by `value` as a JSON string: a member rendered once.
fn json_member(name: &[u8], value: &str) -> Vec<u8> {
    let mut member = name.to_vec();
    push_json_str(&mut member, value);
    member
}

/// `text` as a JSON string, quotes included (RFC 8259 §7): `"` and `\` escaped, the control
/// characters U+0000 to U+001F as `\b \t \n \f \r` or `\u00XX`, every other character as its
/// UTF-8 bytes (the escapes `serde_json` writes).
fn push_json_str(out: &mut Vec<u8>, text: &str) {
    push_json_bytes(out, text.as_bytes());
}

/// [`push_json_str`] of UTF-8 text given as its bytes (bytes of 0x80 and above are copied as
/// they are, so the output is UTF-8 when the input is).
fn push_json_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    push_json_content(out, bytes);
    out.push(b'"');
}

/// [`push_json_bytes`] without the quotes: the string's characters, escaped.
fn push_json_content(out: &mut Vec<u8>, bytes: &[u8]) {
    if is_plain(bytes) {
        out.extend_from_slice(bytes);
    } else {
        push_escaped(out, bytes);
    }
}

/// Whether no byte of `bytes` needs an escape (most strings): tested eight bytes at a time,
/// the last few too (the string's last eight, which overlap bytes already tested, when it has
/// eight; else the few padded with a byte that needs no escape). A rare false alarm (see
/// [`may_need_escape`]) only sends the string to [`push_escaped`].
fn is_plain(bytes: &[u8]) -> bool {
    let chunks = bytes.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        if may_need_escape(u64::from_le_bytes(chunk.try_into().unwrap_or_default())) {
            return false;
        }
    }
    let last = match bytes.len().checked_sub(8).and_then(|at| bytes.get(at..)) {
        Some(last) => last.try_into().unwrap_or_default(),
        None => {
            let mut last = [b'a'; 8];
            if let Some(head) = last.get_mut(..tail.len()) {
                head.copy_from_slice(tail);
            }
            last
        }
    };
    !may_need_escape(u64::from_le_bytes(last))
}

/// [`push_json_content`] a byte at a time, escaping those that need it.
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut plain = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(bytes.get(plain..i).unwrap_or_default());
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        plain = i + 1;
    }
    out.extend_from_slice(bytes.get(plain..).unwrap_or_default());
}

/// Whether any of the eight bytes of `word` may be a control character, `"` or `\\`: never
/// a miss; a rare false alarm only sends the string to the byte-by-byte loop. (The test for a
/// zero byte, `(x - 0x0101..) & !x & 0x8080..`, and for a byte below n, from Sean Eron
/// Anderson's "Bit Twiddling Hacks".)
fn may_need_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    (below_space
        | zero_byte(word ^ (ONES * u64::from(b'"')))
        | zero_byte(word ^ (ONES * u64::from(b'\\'))))
        != 0
}

/// The two clocks read at one moment: turns the monotonic end of a record ([`Instant`], the
/// request's one clock read) into the wall-clock time its line shows. Read again every round
/// of the writer, so a line's time is the wall clock's within a round (10 ms) of a step of the
/// system clock.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    instant: Instant,
    wall: SystemTime,
    /// `wall` as time since the Unix epoch (`None`: the system clock says a time before it).
    since_epoch: Option<Duration>,
}

impl WallClock {
    /// Both clocks, now.
    pub fn now() -> Self {
        Self::at_instant(Instant::now(), SystemTime::now())
    }

    /// `wall` is the wall-clock time at `instant`.
    pub fn at_instant(instant: Instant, wall: SystemTime) -> Self {
        Self {
            instant,
            wall,
            since_epoch: wall.duration_since(UNIX_EPOCH).ok(),
        }
    }

    /// The wall-clock time at `instant` (before or after the clocks were read).
    pub fn at(&self, instant: Instant) -> SystemTime {
        match instant.checked_duration_since(self.instant) {
            Some(after) => self.wall + after,
            None => self
                .wall
                .checked_sub(self.instant.duration_since(instant))
                .unwrap_or(UNIX_EPOCH),
        }
    }

    /// [`WallClock::at`] as time since the Unix epoch (zero for a time before it): one
    /// subtraction of `Instant`s, the rest in integers. A record ended before the clocks were
    /// read (they are read when the writer's round begins), so that case comes first.
    #[inline(always)]
    pub fn since_epoch(&self, instant: Instant) -> Duration {
        let Some(wall) = self.since_epoch else {
            return self
                .at(instant)
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
        };
        match self.instant.checked_duration_since(instant) {
            Some(before) => wall.checked_sub(before).unwrap_or_default(),
            None => wall.saturating_add(instant.duration_since(self.instant)),
        }
    }
}

/// The digits after the seconds: milliseconds (the JSON `time`) or microseconds (the text
/// line's, tracing-subscriber's fmt timestamp).
#[derive(Debug, Clone, Copy)]
enum Fraction {
    Millis,
    Micros,
}

/// The JSON line's opening up to the client's address, `{"time":"`, the date and time, `Z` and
/// `","client":"`: rendered once per second with `000` for the milliseconds, then copied whole
/// per line with the milliseconds' three digits put in.
const JSON_OPENING: usize = JSON_MILLIS + 3 + JSON_AFTER_TIME.len();

/// Where the milliseconds' digits sit in [`JSON_OPENING`] bytes (after `{"time":"`, the 19
/// bytes of `2026-12-01T10:39:15` and the dot).
const JSON_MILLIS: usize = 9 + 19 + 1;

/// What follows the time in the JSON line's opening.
const JSON_AFTER_TIME: &[u8] = b"Z\",\"client\":\"";

/// RFC 3339 UTC times (`2026-12-01T10:39:15.123Z`), the calendar part worked out once per
/// second: the writer thread writes many lines of the same second.
#[derive(Debug, Default)]
struct SecondClock {
    /// The second (since the Unix epoch) `text` shows; `None` before the first line.
    second: Option<u64>,
    /// `2026-12-01T10:39:15`.
    text: String,
    /// The JSON line's opening for this second (`None` for a year past 9999, whose date is
    /// longer: such a line is written piece by piece).
    json: Option<[u8; JSON_OPENING]>,
}

impl SecondClock {
    /// Works out the calendar part of `second`, unless it is the one already shown.
    #[inline]
    fn set_second(&mut self, second: u64) {
        if self.second != Some(second) {
            self.render_second(second);
        }
    }

    /// Works out the calendar part of `second`, a new second.
    #[inline(never)]
    fn render_second(&mut self, second: u64) {
        let (y, mo, d, h, mi, s) = civil(second);
        self.text.clear();
        let _ = std::fmt::Write::write_fmt(
            &mut self.text,
            format_args!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}"),
        );
        self.second = Some(second);
        let mut json = Vec::with_capacity(JSON_OPENING);
        json.extend_from_slice(b"{\"time\":\"");
        json.extend_from_slice(self.text.as_bytes());
        json.extend_from_slice(b".000");
        json.extend_from_slice(JSON_AFTER_TIME);
        self.json = json.try_into().ok();
    }

    /// Appends the time `since` the Unix epoch with the fraction's digits (the `Z` that follows
    /// is the caller's, written with what comes next).
    fn write(&mut self, out: &mut Vec<u8>, since: Duration, fraction: Fraction) {
        self.set_second(since.as_secs());
        out.extend_from_slice(self.text.as_bytes());
        out.push(b'.');
        let nanos = u64::from(since.subsec_nanos());
        match fraction {
            Fraction::Millis => push_padded(out, nanos / 1_000_000, 3),
            Fraction::Micros => push_padded(out, nanos / 1_000, 6),
        }
    }

    /// Appends the JSON line's opening for the time `since` the Unix epoch:
    /// `{"time":"2026-12-01T10:39:15.123Z","client":"` (one copy of a fixed size per line).
    fn write_json_head(&mut self, out: &mut Vec<u8>, since: Duration) {
        self.set_second(since.as_secs());
        match self.json {
            Some(mut opening) => {
                let millis = since.subsec_millis();
                opening[JSON_MILLIS] = b'0' + (millis / 100) as u8;
                opening[JSON_MILLIS + 1] = b'0' + (millis / 10 % 10) as u8;
                opening[JSON_MILLIS + 2] = b'0' + (millis % 10) as u8;
                out.extend_from_slice(&opening);
            }
            None => {
                out.extend_from_slice(b"{\"time\":\"");
                self.write(out, since, Fraction::Millis);
                out.extend_from_slice(JSON_AFTER_TIME);
            }
        }
    }
}

/// UTC calendar fields of a second since the Unix epoch: (year, month, day, hour, minute,
/// second). The date from the store's `civil_from_days` (proleptic Gregorian).
fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    let (year, month, day) = crate::store::date::civil_from_days(days);
    (year, month, day, rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::{RouteRef, RouteTable};
    use http::StatusCode;

    /// The wall-clock time the test records end at.
    const END: Duration = Duration::from_millis(1_764_585_555_123);

    /// A record that ended at [`END`] (with [`writer`]'s clock) after `1234.567` ms.
    fn record(path: &str) -> AccessRecord {
        let mut record = AccessRecord::new(
            "192.0.2.7".parse().unwrap(),
            Method::GET,
            path.into(),
            StatusCode::OK,
            Instant::now(),
        );
        set_total(&mut record, Duration::from_micros(1_234_567));
        record.bytes_out = 612;
        record.complete = true;
        record
    }

    /// The record's duration (its end moves).
    fn set_total(record: &mut AccessRecord, total: Duration) {
        record.finished = record.started + total;
    }

    /// A line writer whose clock says [`END`] at `record`'s end.
    fn writer(templates: RouteTemplates, record: &AccessRecord) -> LineWriter {
        let mut lines = LineWriter::new(templates);
        lines.set_clock(WallClock::at_instant(record.finished, UNIX_EPOCH + END));
        lines
    }

    fn trace() -> crate::telemetry::trace_context::TraceContext {
        use crate::telemetry::trace_context::{SpanId, TraceContext, TraceId};
        TraceContext {
            trace_id: TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            parent_id: None,
            span_id: SpanId(7),
            sampled: true,
        }
    }

    #[test]
    fn the_wall_clock_of_an_instant_before_or_after_the_reading() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + END;
        let clock = WallClock::at_instant(now, wall);
        let ms = Duration::from_millis(3);
        assert_eq!(clock.at(now), wall);
        assert_eq!(clock.at(now + ms), wall + ms);
        if let Some(before) = now.checked_sub(ms) {
            assert_eq!(clock.at(before), wall - ms);
        }
        // Before the epoch: no panic (the line then shows the epoch, as SecondClock does for
        // such a time).
        let early = WallClock::at_instant(now, UNIX_EPOCH);
        if let Some(before) = now.checked_sub(ms) {
            assert!(early.at(before) <= UNIX_EPOCH);
            assert_eq!(early.since_epoch(before), Duration::ZERO);
        }
        // The same times in integers: what `at` gives, as time since the epoch (zero before
        // it), for an instant before, at and after the reading, and a wall clock before the
        // epoch.
        let pre_epoch = WallClock::at_instant(now, UNIX_EPOCH - ms);
        let near_epoch = WallClock::at_instant(now, UNIX_EPOCH + ms);
        for clock in [clock, early, pre_epoch, near_epoch] {
            for offset in [
                0,
                1,
                999,
                1_000_000,
                2_999_999,
                3_000_000,
                3_000_001,
                5_000_000_000,
            ] {
                let offset = Duration::from_nanos(offset);
                let instants = [now.checked_sub(offset), Some(now + offset)];
                for instant in instants.into_iter().flatten() {
                    assert_eq!(
                        clock.since_epoch(instant),
                        clock
                            .at(instant)
                            .duration_since(UNIX_EPOCH)
                            .unwrap_or_default(),
                        "{clock:?} {offset:?}"
                    );
                }
            }
        }
    }

    fn parse(out: &[u8]) -> serde_json::Value {
        assert_eq!(out.last(), Some(&b'\n'), "one line");
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        serde_json::from_slice(out).expect("valid JSON")
    }

    fn time(at: SystemTime, fraction: Fraction) -> String {
        let mut out = Vec::new();
        let since = at.duration_since(UNIX_EPOCH).unwrap();
        SecondClock::default().write(&mut out, since, fraction);
        out.push(b'Z');
        String::from_utf8(out).unwrap()
    }

    fn json(out: &mut Vec<u8>, record: &AccessRecord, templates: RouteTemplates) {
        writer(templates, record).json(out, record);
    }

    #[test]
    fn times_are_utc_rfc3339() {
        let at = UNIX_EPOCH + Duration::from_millis(1_764_585_555_123);
        assert_eq!(time(at, Fraction::Millis), "2025-12-01T10:39:15.123Z");
        assert_eq!(
            time(at + Duration::from_micros(4), Fraction::Micros),
            "2025-12-01T10:39:15.123004Z"
        );
        // A leap day and the epoch.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(time(leap, Fraction::Millis), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            time(UNIX_EPOCH, Fraction::Millis),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn the_cached_second_follows_the_clock_across_seconds_and_days() {
        let mut clock = SecondClock::default();
        let mut out = Vec::new();
        let midnight = UNIX_EPOCH + Duration::from_secs(951_782_400);
        for at in [
            midnight - Duration::from_millis(1),
            midnight,
            midnight + Duration::from_millis(999),
            midnight + Duration::from_millis(1000),
            midnight - Duration::from_millis(2),
        ] {
            clock.write(
                &mut out,
                at.duration_since(UNIX_EPOCH).unwrap(),
                Fraction::Millis,
            );
            out.extend_from_slice(b"Z ");
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2000-02-28T23:59:59.999Z 2000-02-29T00:00:00.000Z 2000-02-29T00:00:00.999Z \
             2000-02-29T00:00:01.000Z 2000-02-28T23:59:59.998Z "
        );
    }

    #[test]
    fn the_json_opening_is_the_time_written_piece_by_piece() {
        let mut clock = SecondClock::default();
        let midnight = UNIX_EPOCH + Duration::from_secs(951_782_400);
        // Across a second and a day, every millisecond digit, and a year past 9999 (a longer
        // date, written piece by piece).
        let far = UNIX_EPOCH + Duration::from_secs(253_402_300_800) + Duration::from_millis(7);
        for at in [
            midnight - Duration::from_millis(1),
            midnight,
            midnight + Duration::from_millis(9),
            midnight + Duration::from_millis(90),
            midnight + Duration::from_millis(999),
            midnight + Duration::from_millis(1_000),
            far,
            midnight + Duration::from_millis(456),
        ] {
            let mut out = Vec::new();
            clock.write_json_head(&mut out, at.duration_since(UNIX_EPOCH).unwrap());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!(
                    "{{\"time\":\"{}\",\"client\":\"",
                    time(at, Fraction::Millis)
                ),
            );
        }
    }

    #[test]
    fn milliseconds_are_the_numbers_the_f64_forms_printed() {
        // Every value below 20 ms, then a spread of larger ones, against what the lines were
        // made of before: serde_json's f64 and `{:.2}`.
        let larger = (0..2000u64).map(|i| i * 7_919_993 + i % 10);
        for micros in (0..20_000u64).chain(larger) {
            let value = (micros as f64).round() / 1000.0;
            let mut out = Vec::new();
            push_json_millis(&mut out, micros);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&value).unwrap(),
                "{micros} µs"
            );
            let mut out = Vec::new();
            push_text_millis(&mut out, micros);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("{value:.2}"),
                "{micros} µs"
            );
        }
        // The durations are rounded to microseconds, half up.
        assert_eq!(micros(Duration::from_nanos(1_499)), 1);
        assert_eq!(micros(Duration::from_nanos(1_500)), 2);
        assert_eq!(micros(Duration::new(3, 999_999_500)), 4_000_000);
        assert_eq!(micros(Duration::MAX), u64::MAX);
        // What the f64 rounding gave, away from exact half microseconds.
        for nanos in (0..5_000_000u64).step_by(997).chain([u64::MAX / 2_000]) {
            let d = Duration::from_nanos(nanos);
            if nanos % 1000 != 500 {
                assert_eq!(
                    micros(d),
                    (d.as_secs_f64() * 1_000_000.0).round() as u64,
                    "{nanos} ns"
                );
            }
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        // Every ASCII byte alone and amid text, and characters beyond ASCII.
        let mut texts: Vec<String> = (0u8..0x80)
            .map(|b| char::from(b).to_string())
            .chain((0u8..0x80).map(|b| format!("ab{}cd", char::from(b))))
            .collect();
        texts.push("\u{7f}\u{fffd}é\u{2028}\u{2029}\u{1F600}\"\\".into());
        // Long enough for the eight-byte scan: the byte to escape at every position.
        for special in ["\"", "\\", "\n", "\u{1}", "\u{1f}"] {
            for at in 0..=24 {
                texts.push(format!("{}{special}é{}", "a".repeat(at), "b".repeat(16)));
                // In the last eight bytes, the string's length every remainder of eight.
                texts.push(format!("{}{special}", "a".repeat(at)));
                texts.push(format!("{}{special}b", "a".repeat(at)));
                texts.push(format!("{}{special}{}", "a".repeat(at), "b".repeat(6)));
            }
        }
        // Plain strings of every length up to 40 (the scan's words, the last word's overlap).
        texts.extend((0..=40).map(|len| "/p".repeat(len).chars().take(len).collect()));
        texts.push(String::new());
        for text in texts {
            let mut out = Vec::new();
            push_json_str(&mut out, &text);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&text).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn integers_are_written_as_display_writes_them() {
        let spread = (0..64).flat_map(|shift| [1u64 << shift, (1u64 << shift) - 1]);
        for value in (0..20_000u64)
            .chain(spread)
            .chain([u64::MAX, 10u64.pow(19)])
        {
            let mut out = Vec::new();
            push_u64(&mut out, value);
            assert_eq!(String::from_utf8(out).unwrap(), value.to_string());
        }
    }

    #[test]
    fn trace_ids_are_lower_case_hex() {
        let ids = [
            0,
            u128::MAX,
            0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            u128::from_be_bytes(std::array::from_fn(|i| (i * 17) as u8)),
        ];
        // Every nibble value at every position.
        let nibbles = (0..32u32).flat_map(|at| (0..16u128).map(move |n| n << (4 * at)));
        for id in ids.into_iter().chain(nibbles) {
            assert_eq!(
                String::from_utf8(trace_hex(id).to_vec()).unwrap(),
                format!("{id:032x}")
            );
            let mut out = Vec::new();
            push_trace_member(&mut out, id);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!(",\"trace_id\":\"{id:032x}\"")
            );
        }
    }

    #[test]
    fn the_status_piece_is_the_members_written_one_by_one() {
        for status in 100..=999u16 {
            for complete in [true, false] {
                let mut out = Vec::new();
                push_status_members(&mut out, status, complete);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    format!("\",\"status\":{status},\"complete\":{complete},\"bytes_out\":")
                );
            }
        }
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "192.0.2.7",
            "0.0.0.0",
            "255.255.255.255",
            "10.99.100.1",
            "9.10.199.200",
            "1.2.3.4",
            "100.10.1.0",
            "::1",
            "2001:db8::7",
            "::ffff:192.0.2.7",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            push_ip(&mut out, ip);
            assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
        }
    }

    #[test]
    fn json_lines_carry_every_field_and_omit_absent_ones() {
        let mut r = record("/petstore/v1/pet/42?x=1");
        let mut out = Vec::new();
        json(&mut out, &r, RouteTemplates::default());
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
        r.trace = Some(trace());
        r.status = StatusCode::BAD_GATEWAY;
        out.clear();
        json(&mut out, &r, RouteTemplates::default());
        let v = parse(&out);
        assert_eq!(v["upstream"], "http://127.0.0.1:8081");
        assert_eq!(v["upstream_ms"], 0.61);
        assert_eq!(v["consumer"], "app-1");
        assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(v["error"], "upstream");
    }

    #[test]
    fn pieces_inline_and_on_the_heap_append_their_bytes() {
        for len in [0, 1, 37, PIECE - 1, PIECE, PIECE + 1, 300] {
            let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let piece = Piece::new(&text);
            assert_eq!(matches!(piece, Piece::Inline { .. }), len <= PIECE);
            assert_eq!(piece.as_bytes(), &text[..]);
            let mut out = b"x".to_vec();
            piece.push_to(&mut out);
            assert_eq!(&out[1..], &text[..]);
        }
    }

    #[test]
    fn paths_short_and_long_plain_and_escaped() {
        let long = "/long".repeat(20);
        let paths = [
            "/",
            "/bench/bytes/1024",
            "/a\"b\\c",
            long.as_str(),
            &format!("{long}\"\n"),
            &"x".repeat(62),
            &"x".repeat(63),
            &format!("{}\u{1}", "x".repeat(61)),
        ];
        for path in paths {
            let r = record(path);
            let mut out = Vec::new();
            json(&mut out, &r, RouteTemplates::default());
            assert_eq!(parse(&out)["path"], path, "{path:?}");
        }
    }

    #[test]
    fn members_rendered_once_are_what_each_line_would_have_written() {
        let templates = RouteTemplates::from_parts(
            vec![vec!["/a/{id}".into(), "/b/\"q\"\\".into()]],
            vec![vec![format!("/eg/{}*", "long/".repeat(20))]],
        );
        // The WSO2 routes have one method each (their lines join it to the route's member when
        // the request's is that one), the Express Gateway route none.
        let methods = RouteTable::from_parts(
            vec![vec![Some(Method::GET), Some(Method::PUT)]],
            vec![vec![None]],
        );
        let mut lines = writer(templates, &record("/p")).with_methods(&methods);
        let first = Arc::<str>::from("http://127.0.0.1:8081");
        let upstreams = [
            Some(first.clone()),
            Some(first.clone()),
            Some(Arc::from("http://127.0.0.1:8081")),
            None,
            // Past a piece kept inline.
            Some(Arc::from(
                format!("http://backend/\"x\"/{}", "long".repeat(20)).as_str(),
            )),
            Some(first),
            None,
        ];
        let routes = [
            Some(RouteRef::Wso2 {
                api: 0,
                resource: 0,
            }),
            Some(RouteRef::Wso2 {
                api: 0,
                resource: 1,
            }),
            Some(RouteRef::Express {
                config: 0,
                route: 0,
            }),
            Some(RouteRef::Wso2 {
                api: 3,
                resource: 0,
            }),
            None,
            Some(RouteRef::Wso2 {
                api: 0,
                resource: 0,
            }),
            Some(RouteRef::Wso2 {
                api: 0,
                resource: 1,
            }),
        ];
        let methods = ["GET", "POST", "PATCH", "DELETE", "PURGE", "OPTIONS", "PUT"];
        let long_template = format!("/eg/{}*", "long/".repeat(20));
        let expected_routes = [
            Some("/a/{id}"),
            Some("/b/\"q\"\\"),
            Some(long_template.as_str()),
            None,
            None,
            Some("/a/{id}"),
            Some("/b/\"q\"\\"),
        ];
        let lines_made = upstreams
            .iter()
            .zip(routes)
            .zip(methods)
            .zip(expected_routes);
        for (i, (((upstream, route), method), expected_route)) in lines_made.enumerate() {
            let mut r = record("/p");
            r.method = Method::from_bytes(method.as_bytes()).unwrap();
            r.route = route;
            r.upstream = upstream.clone();
            let mut out = Vec::new();
            lines.json(&mut out, &r);
            let v = parse(&out);
            assert_eq!(v["method"], method, "{i}");
            assert_eq!(
                v.get("route").and_then(|r| r.as_str()),
                expected_route,
                "{i}"
            );
            assert_eq!(
                v.get("upstream").and_then(|u| u.as_str()),
                upstream.as_deref(),
                "{i}"
            );
        }
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
        json(&mut out, &r, RouteTemplates::default());
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
        set_total(&mut r, Duration::from_micros(830));
        let mut out = Vec::new();
        writer(RouteTemplates::default(), &r).text(&mut out, &r);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2025-12-01T10:39:15.123000Z  INFO access: 192.0.2.7 GET /petstore/v1/pet/42 200 complete bytes_out=612 upstream=http://127.0.0.1:8081 upstream_ms=0.61 total_ms=0.83 consumer=- trace=-\n"
        );
    }

    #[test]
    fn the_text_line_of_an_aborted_traced_ipv6_request() {
        let mut r = record("/p?q=1");
        r.client = "2001:db8::7".parse().unwrap();
        r.method = Method::POST;
        r.status = StatusCode::SERVICE_UNAVAILABLE;
        r.complete = false;
        r.bytes_out = 0;
        set_total(&mut r, Duration::from_micros(1_005));
        r.consumer = Some(Arc::from("app \"1\"\n"));
        r.trace = Some(trace());
        let mut out = Vec::new();
        writer(RouteTemplates::default(), &r).text(&mut out, &r);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2025-12-01T10:39:15.123000Z  INFO access: 2001:db8::7 POST /p?q=1 503 aborted bytes_out=0 upstream=- upstream_ms=0.00 total_ms=1.00 consumer=app \\\"1\\\"\\n trace=4bf92f3577b34da6a3ce929d0e0e4736\n"
        );
    }
}
