//! HTTP/1.1 for the runtime API, without I/O: a request parsed from the bytes a connection received
//! so far (request line, headers, a `Content-Length` or chunked body, keep-alive, `Expect:
//! 100-continue`), and a response written as bytes.

/// One complete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// As sent, upper-cased.
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The connection stays open after the response.
    pub keep_alive: bool,
}

impl Request {
    /// The first header called `name` (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What the bytes received so far hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse {
    /// More bytes are needed. `continue_wanted`: the headers are complete and ask for `100 Continue`.
    Incomplete { continue_wanted: bool },
    /// A request, taking the first `consumed` bytes. A body over the limit is left out (the request
    /// has an empty body and closes the connection).
    Complete { request: Request, consumed: usize },
    /// Not a request we serve: answer `status` and close.
    Invalid { status: u16 },
}

/// Parse the request at the start of `buf`.
pub fn parse(buf: &[u8], max_header_bytes: usize, max_body_bytes: usize) -> Parse {
    // Empty lines before a request line are ignored (RFC 9112 §2.2).
    let skipped = buf.iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
    let rest = &buf[skipped..];
    let Some(head_len) = head_length(rest) else {
        return if rest.len() > max_header_bytes { Parse::Invalid { status: 431 } } else { incomplete(false) };
    };
    if head_len > max_header_bytes {
        return Parse::Invalid { status: 431 };
    }
    let Some(head) = Head::parse(&rest[..head_len]) else { return Parse::Invalid { status: 400 } };
    let body_start = skipped + head_len;
    let continue_wanted = head.expects_continue();
    let body = match head.framing() {
        Err(()) => return Parse::Invalid { status: 400 },
        Ok(Framing::Length(n)) if n > max_body_bytes => Body::TooLarge,
        Ok(Framing::Length(n)) => match buf.get(body_start..body_start + n) {
            Some(bytes) => Body::Done(bytes.to_vec(), body_start + n),
            None => Body::Incomplete,
        },
        Ok(Framing::Chunked) => match dechunk(&buf[body_start..], max_body_bytes) {
            Body::Done(bytes, used) => Body::Done(bytes, body_start + used),
            other => other,
        },
    };
    match body {
        Body::Incomplete => incomplete(continue_wanted),
        Body::Invalid => Parse::Invalid { status: 400 },
        Body::TooLarge => Parse::Complete { request: head.into_request(Vec::new(), false), consumed: buf.len() },
        Body::Done(bytes, consumed) => {
            let keep_alive = head.keep_alive();
            Parse::Complete { request: head.into_request(bytes, keep_alive), consumed }
        }
    }
}

fn incomplete(continue_wanted: bool) -> Parse {
    Parse::Incomplete { continue_wanted }
}

/// Length of the request line and headers, blank line included, once it has arrived.
fn head_length(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|b| *b == b'\n').map(|i| from + i) {
        match (buf.get(i + 1), buf.get(i + 2)) {
            (Some(b'\n'), _) => return Some(i + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(i + 3),
            _ => from = i + 1,
        }
    }
    None
}

struct Head {
    method: String,
    target: String,
    http10: bool,
    headers: Vec<(String, String)>,
}

enum Framing {
    Length(usize),
    Chunked,
}

enum Body {
    Incomplete,
    Invalid,
    TooLarge,
    /// The body and the bytes it took.
    Done(Vec<u8>, usize),
}

impl Head {
    fn parse(head: &[u8]) -> Option<Head> {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let mut request_line = lines.next()?.split(' ');
        let (method, target, version) = (request_line.next()?, request_line.next()?, request_line.next()?);
        if request_line.next().is_some() || method.is_empty() || target.is_empty() {
            return None;
        }
        let http10 = match version {
            "HTTP/1.1" => false,
            "HTTP/1.0" => true,
            _ => return None,
        };
        let mut headers = Vec::new();
        for line in lines.take_while(|l| !l.is_empty()) {
            // Folded header lines (obsolete) and lines without a colon are refused.
            let (name, value) = line.split_once(':')?;
            if name.is_empty() || name.starts_with([' ', '\t']) || name.ends_with([' ', '\t']) {
                return None;
            }
            headers.push((name.to_string(), value.trim().to_string()));
        }
        Some(Head { method: method.to_ascii_uppercase(), target: target.to_string(), http10, headers })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn connection_has(&self, token: &str) -> bool {
        self.header("Connection").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    fn keep_alive(&self) -> bool {
        if self.http10 {
            self.connection_has("keep-alive")
        } else {
            !self.connection_has("close")
        }
    }

    fn expects_continue(&self) -> bool {
        !self.http10 && self.header("Expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }

    fn framing(&self) -> Result<Framing, ()> {
        if let Some(te) = self.header("Transfer-Encoding") {
            let last = te.rsplit(',').next().unwrap_or_default().trim();
            return if last.eq_ignore_ascii_case("chunked") { Ok(Framing::Chunked) } else { Err(()) };
        }
        match self.header("Content-Length") {
            None => Ok(Framing::Length(0)),
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Framing::Length(v.parse().unwrap_or(usize::MAX)))
            }
            Some(_) => Err(()),
        }
    }

    fn into_request(self, body: Vec<u8>, keep_alive: bool) -> Request {
        Request { method: self.method, target: self.target, headers: self.headers, body, keep_alive }
    }
}

/// Decode a chunked body at the start of `buf`.
fn dechunk(buf: &[u8], max_body_bytes: usize) -> Body {
    let line_at = |from: usize| -> Option<(&[u8], usize)> {
        let end = from + buf.get(from..)?.iter().position(|b| *b == b'\n')?;
        let line = &buf[from..end];
        Some((line.strip_suffix(b"\r").unwrap_or(line), end + 1))
    };
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some((line, next)) = line_at(pos) else { return Body::Incomplete };
        let size_text = String::from_utf8_lossy(line);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else { return Body::Invalid };
        pos = next;
        if size == 0 {
            // Trailer lines up to an empty one.
            loop {
                let Some((line, next)) = line_at(pos) else { return Body::Incomplete };
                pos = next;
                if line.is_empty() {
                    return Body::Done(body, pos);
                }
            }
        }
        if size > max_body_bytes.saturating_sub(body.len()) {
            return Body::TooLarge;
        }
        let Some(data) = buf.get(pos..pos + size) else { return Body::Incomplete };
        body.extend_from_slice(data);
        pos += size;
        match (buf.get(pos), buf.get(pos + 1)) {
            (Some(b'\n'), _) => pos += 1,
            (Some(b'\r'), Some(b'\n')) => pos += 2,
            (None, _) | (Some(b'\r'), None) => return Body::Incomplete,
            _ => return Body::Invalid,
        }
    }
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A response: status line, `Content-Type`, `Content-Length`, `Connection: close` when the
/// connection ends after it, and the body (left out for `HEAD`).
pub fn response(status: u16, content_type: &str, body: &[u8], head_request: bool, close: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{}\r\n",
        reason(status),
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes();
    if !head_request {
        out.extend_from_slice(body);
    }
    out
}

/// A plain-text response of its own reason phrase, closing the connection.
pub fn refusal(status: u16) -> Vec<u8> {
    response(status, "text/plain; charset=utf-8", format!("{}\n", reason(status)).as_bytes(), false, true)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS: usize = 1024;
    const BODY: usize = 64;

    fn complete(buf: &[u8]) -> (Request, usize) {
        match parse(buf, HEADERS, BODY) {
            Parse::Complete { request, consumed } => (request, consumed),
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn a_request_with_a_length_body_and_headers_in_any_case() {
        let raw = b"put /kv?x=1 HTTP/1.1\r\nHost: a\r\nx-allocation-id:  a1 \r\nContent-Length: 4\r\n\r\nbodyGET";
        let (r, used) = complete(raw);
        assert_eq!((r.method.as_str(), r.target.as_str()), ("PUT", "/kv?x=1"));
        assert_eq!(r.header("X-ALLOCATION-ID"), Some("a1"));
        assert_eq!(r.body, b"body");
        assert!(r.keep_alive);
        assert_eq!(&raw[used..], b"GET", "the next request's bytes are left");
    }

    #[test]
    fn partial_requests_wait_for_more() {
        let raw = b"GET /kv HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody";
        for end in 0..raw.len() {
            assert_eq!(parse(&raw[..end], HEADERS, BODY), Parse::Incomplete { continue_wanted: false }, "{end}");
        }
        assert_eq!(complete(raw).1, raw.len());
        let expect = b"PUT /kv HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(parse(expect, HEADERS, BODY), Parse::Incomplete { continue_wanted: true });
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        let ka = |raw: &[u8]| complete(raw).0.keep_alive;
        assert!(ka(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        assert!(ka(b"\r\n\nGET / HTTP/1.1\n\n"), "bare newlines and leading blank lines");
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let raw =
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\n2\r\nef\r\n0\r\nT: 1\r\n\r\nX";
        let (r, used) = complete(raw);
        assert_eq!(r.body, b"abcdef");
        assert_eq!(&raw[used..], b"X");
        for end in 0..used {
            assert!(matches!(parse(&raw[..end], HEADERS, BODY), Parse::Incomplete { .. }), "{end}");
        }
        let bad = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(parse(bad, HEADERS, BODY), Parse::Invalid { status: 400 });
    }

    #[test]
    fn oversized_bodies_arrive_empty_and_close_the_connection() {
        let raw = format!("PUT /kv HTTP/1.1\r\nContent-Length: {}\r\n\r\n", BODY + 1);
        let (r, used) = complete(raw.as_bytes());
        assert!(r.body.is_empty() && !r.keep_alive);
        assert_eq!(used, raw.len());
        let chunked = format!("PUT /kv HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n", BODY + 1);
        assert!(complete(chunked.as_bytes()).0.body.is_empty());
    }

    #[test]
    fn malformed_and_oversized_heads_are_refused() {
        for raw in [
            &b"GET /\r\n\r\n"[..],
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            assert_eq!(parse(raw, HEADERS, BODY), Parse::Invalid { status: 400 }, "{:?}", String::from_utf8_lossy(raw));
        }
        let long = vec![b'a'; HEADERS + 1];
        assert_eq!(parse(&long, HEADERS, BODY), Parse::Invalid { status: 431 });
    }

    #[test]
    fn responses_carry_length_and_close() {
        let r = String::from_utf8(response(404, "text/plain", b"Not found\n", false, true)).unwrap();
        assert_eq!(
            r,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\nNot found\n"
        );
        let head = response(200, "application/json", b"{}", true, false);
        assert!(String::from_utf8(head).unwrap().ends_with("Content-Length: 2\r\n\r\n"));
    }
}
