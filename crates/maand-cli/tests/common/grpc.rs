//! A minimal gRPC client for the etcd end-to-end tests: unary calls over one plaintext HTTP/2
//! connection (prior knowledge, as etcdctl talks to an `http://` endpoint), with just enough
//! protobuf to build etcd's Put/Range/Status requests and read their answers.
//!
//! Why not etcd's JSON gateway: Debian's etcd 3.4 is built without it (`/v3/*` answers 404), and
//! one `etcdctl` process per request costs ~15 ms of CPU, too much for a client loop on 2 cores.
//!
//! Answers' headers are decoded (HPACK, one decoder per connection, as the dynamic table spans
//! the connection) so an error carries its gRPC status code and message, which is what a client
//! needs to decide on a retry (etcd answers `Unavailable: leader changed` to a read in flight while
//! leadership moves; its own client retries such reads).
//!
//! Limits, fine for tests: no TLS, requests are small (no outgoing flow control), one call at a
//! time.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// gRPC's status code for "try again" (etcd: leader changed, no leader, stopping).
pub const UNAVAILABLE: u32 = 14;

/// Why a call has no answer: the gRPC status the server sent (`code`, `message`), or a transport
/// failure (`code` None; the connection is then unusable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub code: Option<u32>,
    pub message: String,
}

impl CallError {
    pub fn transport(message: impl Into<String>) -> CallError {
        CallError { code: None, message: message.into() }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "grpc status {code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// One HTTP/2 connection to a gRPC server; broken for good after a transport error (connect
/// again).
pub struct GrpcConn {
    stream: TcpStream,
    authority: String,
    next_stream_id: u32,
    headers: hpack::Decoder<'static>,
}

impl GrpcConn {
    pub fn connect(addr: &str, timeout: Duration) -> Result<GrpcConn, String> {
        let sock: SocketAddr = addr.parse().map_err(|e| format!("bad address {addr}: {e}"))?;
        let mut stream = TcpStream::connect_timeout(&sock, timeout).map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        stream.write_all(&hello).map_err(|e| format!("send preface: {e}"))?;
        Ok(GrpcConn { stream, authority: addr.to_string(), next_stream_id: 1, headers: hpack::Decoder::new() })
    }

    /// Calls `path` (`/package.Service/Method`) with an encoded request message; the encoded
    /// response message, or why there is none. Bounded by `timeout` (also sent as grpc-timeout).
    pub fn unary(&mut self, path: &str, message: &[u8], timeout: Duration) -> Result<Vec<u8>, CallError> {
        let id = self.next_stream_id;
        self.next_stream_id += 2;
        let millis = timeout.as_millis().max(1).to_string();
        let mut block = Vec::new();
        for (name, value) in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", self.authority.as_str()),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", &format!("{millis}m")),
        ] {
            block.push(0); // literal header field without indexing, new name
            hpack_string(&mut block, name.as_bytes());
            hpack_string(&mut block, value.as_bytes());
        }
        let mut body = vec![0u8];
        body.extend((message.len() as u32).to_be_bytes());
        body.extend(message);
        let mut out = frame(HEADERS, END_HEADERS, id, &block);
        out.extend(frame(DATA, END_STREAM, id, &body));
        let io = |what: &str, e: std::io::Error| CallError::transport(format!("{what}: {e}"));
        self.stream.set_write_timeout(Some(timeout)).map_err(|e| io("socket", e))?;
        self.stream.set_read_timeout(Some(timeout)).map_err(|e| io("socket", e))?;
        self.stream.write_all(&out).map_err(|e| io("send", e))?;

        let mut data = Vec::new();
        let mut status: Option<(u32, String)> = None;
        loop {
            let (kind, flags, stream_id, payload) = self.read_frame().map_err(|e| io("receive", e))?;
            match kind {
                DATA => {
                    if !payload.is_empty() {
                        // Give the connection's receive window back so later calls are not starved.
                        let increment = (payload.len() as u32).to_be_bytes();
                        self.stream.write_all(&frame(8, 0, 0, &increment)).map_err(|e| io("send", e))?;
                    }
                    if stream_id == id {
                        data.extend(&payload);
                    }
                }
                HEADERS => {
                    // Every header block goes through the decoder: its table spans the connection.
                    let fields = self
                        .headers
                        .decode(&payload)
                        .map_err(|e| CallError::transport(format!("undecodable headers: {e:?}")))?;
                    if stream_id == id {
                        status = status.or_else(|| grpc_status(&fields));
                    }
                }
                RST_STREAM if stream_id == id => return Err(CallError::transport("stream reset by the server")),
                SETTINGS if flags & ACK == 0 => {
                    self.stream.write_all(&frame(SETTINGS, ACK, 0, &[])).map_err(|e| io("send", e))?
                }
                PING if flags & ACK == 0 => {
                    self.stream.write_all(&frame(PING, ACK, 0, &payload)).map_err(|e| io("send", e))?
                }
                GOAWAY => return Err(CallError::transport("connection closed by the server (GOAWAY)")),
                _ => {}
            }
            if stream_id == id && (kind == DATA || kind == HEADERS) && flags & END_STREAM != 0 {
                return match status {
                    Some((0, _)) | None => grpc_message(&data).map_err(CallError::transport),
                    Some((code, message)) => Err(CallError { code: Some(code), message }),
                };
            }
        }
    }

    fn read_frame(&mut self) -> std::io::Result<(u8, u8, u32, Vec<u8>)> {
        let mut head = [0u8; 9];
        self.stream.read_exact(&mut head)?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload)?;
        Ok((head[3], head[4], stream_id, payload))
    }
}

fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend(stream_id.to_be_bytes());
    f.extend(payload);
    f
}

/// An HPACK string literal without Huffman coding (7-bit prefix length).
fn hpack_string(out: &mut Vec<u8>, s: &[u8]) {
    let mut n = s.len();
    if n < 127 {
        out.push(n as u8);
    } else {
        out.push(127);
        n -= 127;
        while n >= 128 {
            out.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        out.push(n as u8);
    }
    out.extend(s);
}

/// The `grpc-status` and (percent-decoded) `grpc-message` of a header block, when it has them.
fn grpc_status(fields: &[(Vec<u8>, Vec<u8>)]) -> Option<(u32, String)> {
    let value = |name: &[u8]| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice());
    let code = std::str::from_utf8(value(b"grpc-status")?).ok()?.parse().ok()?;
    Some((code, percent_decode(value(b"grpc-message").unwrap_or_default())))
}

fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (raw[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The one message of a unary answer (`flag, u32 length, bytes`).
fn grpc_message(data: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < 5 {
        return Err("grpc error (no response message)".into());
    }
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    data.get(5..5 + len).map(<[u8]>::to_vec).ok_or_else(|| "truncated response message".into())
}

// ---- protobuf, just enough ------------------------------------------------------------------------

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (bytes, string, embedded message).
pub fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, bytes.len() as u64);
    out.extend(bytes);
}

/// A decoded field value: a varint or a length-delimited byte string (fixed-width ones skipped).
pub enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The fields of a message, in order (fields with fixed-width encodings are skipped).
pub fn fields(mut msg: &[u8]) -> Result<Vec<(u32, Value<'_>)>, String> {
    let mut out = Vec::new();
    while !msg.is_empty() {
        let key = take_varint(&mut msg)?;
        let field = (key >> 3) as u32;
        match key & 7 {
            0 => out.push((field, Value::Varint(take_varint(&mut msg)?))),
            1 => msg = msg.get(8..).ok_or("truncated fixed64")?,
            2 => {
                let len = take_varint(&mut msg)? as usize;
                let bytes = msg.get(..len).ok_or("truncated field")?;
                out.push((field, Value::Bytes(bytes)));
                msg = &msg[len..];
            }
            5 => msg = msg.get(4..).ok_or("truncated fixed32")?,
            other => return Err(format!("unsupported wire type {other}")),
        }
    }
    Ok(out)
}

fn take_varint(msg: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = msg.split_first().ok_or("truncated varint")?;
        *msg = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

/// The first varint field `field` of a message.
pub fn varint_field(msg: &[u8], field: u32) -> Option<u64> {
    fields(msg).ok()?.into_iter().find_map(|(f, v)| match v {
        Value::Varint(n) if f == field => Some(n),
        _ => None,
    })
}

/// Every length-delimited field `field` of a message.
pub fn bytes_fields(msg: &[u8], field: u32) -> Vec<&[u8]> {
    fields(msg)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(f, v)| match v {
            Value::Bytes(b) if f == field => Some(b),
            _ => None,
        })
        .collect()
}
