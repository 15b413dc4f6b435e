//! Hand-made HTTP/2 frames (h2c with prior knowledge), for the abuse patterns a real client
//! library refuses to produce: CONTINUATION floods, rapid resets.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// DATA frame type.
pub const HEADERS: u8 = 0x1;
/// RST_STREAM frame type.
pub const RST_STREAM: u8 = 0x3;
/// SETTINGS frame type.
pub const SETTINGS: u8 = 0x4;
/// GOAWAY frame type.
pub const GOAWAY: u8 = 0x7;
/// CONTINUATION frame type.
pub const CONTINUATION: u8 = 0x9;
/// END_STREAM flag.
pub const END_STREAM: u8 = 0x1;
/// END_HEADERS flag.
pub const END_HEADERS: u8 = 0x4;

/// Appends one frame.
pub fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
}

/// An HPACK block for `GET <path>` (no Huffman, no indexing): short strings only.
pub fn get_block(path: &str) -> Vec<u8> {
    assert!(path.len() < 127);
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    block.push(0x04); // :path, literal without indexing, indexed name
    block.push(path.len() as u8);
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 0x01, b'x']); // :authority x
    block
}

/// An HPACK literal header (new name, no indexing), name and value under 127 bytes.
pub fn literal(name: &str, value: &str) -> Vec<u8> {
    assert!(name.len() < 127 && value.len() < 127);
    let mut out = vec![0x00, name.len() as u8];
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
    out
}

/// What a client sends first: the preface and an empty SETTINGS frame.
pub fn hello() -> Vec<u8> {
    let mut hello = PREFACE.to_vec();
    frame(&mut hello, SETTINGS, 0, 0, &[]);
    hello
}

/// A connection with the preface and an empty SETTINGS frame already sent.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    stream
        .write_all(&hello())
        .await
        .expect("sending the preface");
    stream
}

/// A TLS connection (nothing sent yet) trusting the PEM certificate at `cert`, offering
/// `alpn`; returns the stream and the protocol the server chose.
pub async fn connect_tls(
    addr: SocketAddr,
    cert: &std::path::Path,
    alpn: &[&[u8]],
) -> (tokio_rustls::client::TlsStream<TcpStream>, Option<Vec<u8>>) {
    use rustls::pki_types::pem::PemObject;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls::pki_types::CertificateDer::pem_file_iter(cert).expect("reading the certificate")
    {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a usable certificate");
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = TcpStream::connect(addr).await.expect("connecting");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a server name");
    let tls = connector
        .connect(name, tcp)
        .await
        .expect("the TLS handshake");
    let chosen = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    (tls, chosen)
}

/// Frames read from the server: (type, flags, stream, payload).
pub type Frame = (u8, u8, u32, Vec<u8>);

/// Writes `bytes` (ignoring a write error: the server may have closed on us), then reads
/// frames until the server closes or `wait` passes. Returns the frames and whether it closed.
pub async fn send_and_collect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    wait: Duration,
) -> (Vec<Frame>, bool) {
    let (buf, closed) = send_and_read(stream, bytes, wait).await;
    (parse_frames(&buf), closed)
}

/// Writes `bytes` (ignoring a write error), then reads raw bytes until the server closes or
/// `wait` passes. Returns the bytes and whether it closed.
pub async fn send_and_read<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    wait: Duration,
) -> (Vec<u8>, bool) {
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let deadline = tokio::time::Instant::now() + wait;
    let mut closed = false;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    (buf, closed)
}

/// Splits `buf` into whole frames (a trailing partial frame is ignored).
pub fn parse_frames(buf: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut at = 0;
    while buf.len() >= at + 9 {
        let len = u32::from_be_bytes([0, buf[at], buf[at + 1], buf[at + 2]]) as usize;
        if buf.len() < at + 9 + len {
            break;
        }
        let stream_id =
            u32::from_be_bytes([buf[at + 5], buf[at + 6], buf[at + 7], buf[at + 8]]) & 0x7fff_ffff;
        frames.push((
            buf[at + 3],
            buf[at + 4],
            stream_id,
            buf[at + 9..at + 9 + len].to_vec(),
        ));
        at += 9 + len;
    }
    frames
}

/// The value of a setting in the server's SETTINGS frames, if present.
pub fn setting(frames: &[Frame], id: u16) -> Option<u32> {
    frames
        .iter()
        .filter(|(kind, flags, _, _)| *kind == SETTINGS && flags & 0x1 == 0)
        .flat_map(|(_, _, _, payload)| payload.chunks(6))
        .find(|entry| entry.len() == 6 && u16::from_be_bytes([entry[0], entry[1]]) == id)
        .map(|entry| u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]))
}

/// The error code of the server's GOAWAY, if it sent one.
pub fn goaway_code(frames: &[Frame]) -> Option<u32> {
    frames
        .iter()
        .find(|(kind, _, _, payload)| *kind == GOAWAY && payload.len() >= 8)
        .map(|(_, _, _, payload)| {
            u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]])
        })
}
