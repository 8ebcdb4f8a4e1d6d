//! A minimal gRPC client for the etcd end-to-end tests: unary calls over one plaintext HTTP/2
//! connection (prior knowledge, as etcdctl talks to an `http://` endpoint), with just enough
//! protobuf to build etcd's Put/Range/Status requests and read their answers.
//!
//! Why not etcd's JSON gateway: Debian's etcd 3.4 is built without it (`/v3/*` answers 404), and
//! one `etcdctl` process per request costs ~15 ms of CPU, too much for a client loop on 2 cores.
//!
//! Limits, fine for tests: no TLS, no header decoding (HPACK): a call succeeds when the server
//! sent a complete gRPC message before ending the stream (an error is a trailers-only answer,
//! reported as `grpc error`), requests are small (no outgoing flow control), one call at a time.
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

/// One HTTP/2 connection to a gRPC server; broken for good after an error (connect again).
pub struct GrpcConn {
    stream: TcpStream,
    authority: String,
    next_stream_id: u32,
}

impl GrpcConn {
    pub fn connect(addr: &str, timeout: Duration) -> Result<GrpcConn, String> {
        let sock: SocketAddr = addr.parse().map_err(|e| format!("bad address {addr}: {e}"))?;
        let mut stream = TcpStream::connect_timeout(&sock, timeout).map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        stream.write_all(&hello).map_err(|e| format!("send preface: {e}"))?;
        Ok(GrpcConn { stream, authority: addr.to_string(), next_stream_id: 1 })
    }

    /// Calls `path` (`/package.Service/Method`) with an encoded request message; the encoded
    /// response message, or why there is none. Bounded by `timeout` (also sent as grpc-timeout).
    pub fn unary(&mut self, path: &str, message: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
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
        self.stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        self.stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        self.stream.write_all(&out).map_err(|e| format!("send: {e}"))?;

        let mut data = Vec::new();
        loop {
            let (kind, flags, stream_id, payload) = self.read_frame()?;
            match kind {
                DATA => {
                    if !payload.is_empty() {
                        // Give the connection's receive window back so later calls are not starved.
                        let increment = (payload.len() as u32).to_be_bytes();
                        self.stream.write_all(&frame(8, 0, 0, &increment)).map_err(|e| format!("send: {e}"))?;
                    }
                    if stream_id == id {
                        data.extend(&payload);
                        if flags & END_STREAM != 0 {
                            return grpc_message(&data);
                        }
                    }
                }
                HEADERS if stream_id == id && flags & END_STREAM != 0 => return grpc_message(&data),
                RST_STREAM if stream_id == id => return Err("stream reset by the server".into()),
                SETTINGS if flags & ACK == 0 => {
                    self.stream.write_all(&frame(SETTINGS, ACK, 0, &[])).map_err(|e| format!("send: {e}"))?
                }
                PING if flags & ACK == 0 => {
                    self.stream.write_all(&frame(PING, ACK, 0, &payload)).map_err(|e| format!("send: {e}"))?
                }
                GOAWAY => return Err("connection closed by the server (GOAWAY)".into()),
                _ => {}
            }
        }
    }

    fn read_frame(&mut self) -> Result<(u8, u8, u32, Vec<u8>), String> {
        let mut head = [0u8; 9];
        self.stream.read_exact(&mut head).map_err(|e| format!("receive: {e}"))?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).map_err(|e| format!("receive: {e}"))?;
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

/// The one message of a unary answer (`flag, u32 length, bytes`), or the error a trailers-only
/// answer stands for.
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
