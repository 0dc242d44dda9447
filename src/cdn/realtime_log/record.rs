//! One record: the request's facts, what the edge decided, the response head and how the
//! body ended; and its line, the configured fields tab-separated in order, "-" for an absent
//! value, viewer-supplied text percent-encoded the way CloudFront's logs do it.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use ipnet::IpNet;
use rustls::{CipherSuite, ProtocolVersion};

use crate::cdn::proxy::respond::{self, CacheResult};
use crate::cdn::viewer;
use crate::config::realtime_logs::LogField;
use crate::geo::Code;

/// `x-edge-location`: edgewise is one location.
const EDGE_LOCATION: &[u8] = b"edgewise";
const HEX: &[u8; 16] = b"0123456789ABCDEF";
static X_FORWARDED_FOR: header::HeaderName = header::HeaderName::from_static("x-forwarded-for");

/// A TLS connection's protocol and cipher suite as the log names them; `Copy`, taken once
/// per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsNames {
    /// `TLSv1.2` or `TLSv1.3`.
    pub protocol: &'static str,
    /// OpenSSL's name, as CloudFront logs it (`TLS_AES_128_GCM_SHA256`,
    /// `ECDHE-RSA-AES128-GCM-SHA256`); rustls's IANA-style name for a suite without one.
    pub cipher: &'static str,
}

impl TlsNames {
    pub fn of(connection: &rustls::ServerConnection) -> TlsNames {
        TlsNames {
            protocol: match connection.protocol_version() {
                Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
                Some(other) => other.as_str().unwrap_or("-"),
                None => "-",
            },
            cipher: connection
                .negotiated_cipher_suite()
                .map_or("-", |suite| openssl_name(suite.suite())),
        }
    }
}

fn openssl_name(suite: CipherSuite) -> &'static str {
    match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            "ECDHE-ECDSA-CHACHA20-POLY1305"
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        other => other.as_str().unwrap_or("-"),
    }
}

/// Why the edge answered a request by itself before the cache; picks the result types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Request headers over the limit (431).
    HeadersTooLarge,
    /// No Host, no distribution for the host, or no behavior for the path.
    Unroutable,
    /// HTTP to HTTPS (301): CloudFront's `Redirect` result.
    Redirect,
    /// The behavior does not allow the method.
    Method,
    /// HTTPS only, or a missing or bad signature.
    Denied,
    /// The distribution's geo restriction.
    Geo,
}

/// What the pipeline learned on the way that the response does not say; `Edge::answer`
/// fills it in whether or not the request is logged (a few stores, no allocation).
#[derive(Debug, Default)]
pub struct Seen {
    /// Distribution and behavior indices, once routed.
    pub route: Option<(usize, usize)>,
    /// The viewer's country once the gate has located them (`Some(None)`: nowhere known).
    pub country: Option<Option<Code>>,
    pub verdict: Option<Verdict>,
}

/// CloudFront's result types; LimitExceeded and CapacityExceeded never happen here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultType {
    Hit,
    RefreshHit,
    Miss,
    Error,
    Redirect,
}

impl ResultType {
    fn as_str(self) -> &'static str {
        match self {
            ResultType::Hit => "Hit",
            ResultType::RefreshHit => "RefreshHit",
            ResultType::Miss => "Miss",
            ResultType::Error => "Error",
            ResultType::Redirect => "Redirect",
        }
    }
}

/// The result type and detailed result type of a response head.
fn classify(
    status: StatusCode,
    cache: CacheResult,
    verdict: Option<Verdict>,
) -> (ResultType, &'static str) {
    if let Some(verdict) = verdict {
        return match verdict {
            Verdict::Redirect => (ResultType::Redirect, "Redirect"),
            Verdict::HeadersTooLarge => (ResultType::Error, "InvalidRequestHeader"),
            Verdict::Unroutable => (ResultType::Error, "InvalidRequest"),
            Verdict::Method => (ResultType::Error, "InvalidRequestMethod"),
            Verdict::Denied => (ResultType::Error, "Error"),
            Verdict::Geo => (ResultType::Error, "ClientGeoBlocked"),
        };
    }
    let result = match cache {
        _ if status.as_u16() >= 400 => ResultType::Error,
        CacheResult::Hit => ResultType::Hit,
        CacheResult::RefreshHit => ResultType::RefreshHit,
        // CloudFront logs a regional edge cache's hit as the edge's miss; the detailed type
        // names the tier.
        CacheResult::Miss | CacheResult::ParentHit => ResultType::Miss,
        CacheResult::Error => ResultType::Error,
        CacheResult::Redirect => ResultType::Redirect,
    };
    // The edge answers 504 when the origin timed out and 502 for the other origin failures.
    let detail = match (cache, status.as_u16()) {
        (CacheResult::Error, 504) => "OriginCommError",
        (CacheResult::Error, 502) => "OriginError",
        (CacheResult::ParentHit, _) if result == ResultType::Miss => "ParentHit",
        _ => result.as_str(),
    };
    (result, detail)
}

/// What a record needs of the request, taken before the pipeline consumes it. Header values
/// and the URI are reference-counted clones: no header text is copied.
pub struct RequestFacts {
    pub(super) received: Instant,
    method: Method,
    uri: Uri,
    version: Version,
    /// Port 0: learned from a proxy's X-Forwarded-For.
    viewer: SocketAddr,
    tls: Option<TlsNames>,
    /// Request line and headers as HTTP/1.1 text, plus the declared Content-Length.
    request_bytes: u64,
    host_header: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    referer: Option<HeaderValue>,
    accept_encoding: Option<HeaderValue>,
    accept: Option<HeaderValue>,
    forwarded_for: Option<HeaderValue>,
    /// Which logs take the record: the real-time log, the access log.
    pub(super) sampled: (bool, bool),
}

impl RequestFacts {
    pub(super) fn capture<B>(
        request: &Request<B>,
        peer: SocketAddr,
        tls: Option<TlsNames>,
        trusted: &[IpNet],
    ) -> RequestFacts {
        let headers = request.headers();
        let target = request
            .uri()
            .path_and_query()
            .map_or(1, |pq| pq.as_str().len());
        // "METHOD target HTTP/1.1\r\n", each "name: value\r\n", then "\r\n".
        let head = request.method().as_str().len()
            + target
            + 12
            + headers
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len() + 4)
                .sum::<usize>()
            + 2;
        let body = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        RequestFacts {
            received: Instant::now(),
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
            viewer: viewer::address(peer, headers, trusted),
            tls,
            request_bytes: head as u64 + body,
            host_header: headers.get(header::HOST).cloned(),
            user_agent: headers.get(header::USER_AGENT).cloned(),
            referer: headers.get(header::REFERER).cloned(),
            accept_encoding: headers.get(header::ACCEPT_ENCODING).cloned(),
            accept: headers.get(header::ACCEPT).cloned(),
            forwarded_for: headers.get(&X_FORWARDED_FOR).cloned(),
            sampled: (true, false),
        }
    }

    /// Where the viewer is, trusted proxies considered.
    pub fn viewer(&self) -> SocketAddr {
        self.viewer
    }

    pub(super) fn is_head(&self) -> bool {
        self.method == Method::HEAD
    }

    /// Host header, or the HTTP/2 authority.
    fn host(&self) -> Option<&[u8]> {
        self.host_header
            .as_ref()
            .map(HeaderValue::as_bytes)
            .or_else(|| self.uri.authority().map(|a| a.as_str().as_bytes()))
    }
}

/// What a record needs of the response head, taken when the pipeline hands it over.
pub(super) struct ResponseFacts {
    status: StatusCode,
    result: ResultType,
    detail: &'static str,
    content_type: Option<HeaderValue>,
    content_length: Option<HeaderValue>,
    range: Option<(u64, u64)>,
    /// The head as HTTP/1.1 text would be (status line, headers, blank line).
    head_bytes: u64,
    first_byte: Instant,
    route: Option<(usize, usize)>,
    country: Option<Code>,
}

impl ResponseFacts {
    pub(super) fn of<B>(
        response: &Response<B>,
        seen: &Seen,
        country: Option<Code>,
    ) -> ResponseFacts {
        let status = response.status();
        let headers = response.headers();
        let (result, detail) = classify(status, respond::result_of(headers), seen.verdict);
        ResponseFacts {
            status,
            result,
            detail,
            content_type: headers.get(header::CONTENT_TYPE).cloned(),
            content_length: headers.get(header::CONTENT_LENGTH).cloned(),
            range: headers.get(header::CONTENT_RANGE).and_then(content_range),
            head_bytes: head_bytes(status, headers),
            first_byte: Instant::now(),
            route: seen.route,
            country,
        }
    }
}

/// `Content-Range: bytes first-last/length`; None for `bytes */length` (416).
fn content_range(value: &HeaderValue) -> Option<(u64, u64)> {
    let spec = value.to_str().ok()?.trim().strip_prefix("bytes ")?;
    let (range, _) = spec.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?))
}

fn head_bytes(status: StatusCode, headers: &HeaderMap) -> u64 {
    // "HTTP/1.1 200 OK\r\n"
    let line = 15 + status.canonical_reason().map_or(0, str::len);
    let fields: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (line + fields + 2) as u64
}

/// How a response body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// Its last byte went to hyper (or it had none).
    Complete,
    /// The origin's stream failed midway.
    OriginFailed,
    /// hyper dropped it unfinished: the viewer went away.
    ViewerGone,
}

/// The facts known only at the end, and the request id.
pub(super) struct End {
    pub(super) ending: Ending,
    pub(super) body_bytes: u64,
    pub(super) at: Instant,
    pub(super) timestamp: SystemTime,
    /// Process-random prefix and sequence number.
    pub(super) id: (u64, u64),
}

/// Names a record's distribution and behavior by index.
pub(super) struct Labels {
    pub(super) id: Box<str>,
    pub(super) patterns: Box<[Box<str>]>,
}

/// A finished request's facts.
pub(super) struct Record {
    pub(super) request: RequestFacts,
    pub(super) response: ResponseFacts,
}

impl Record {
    /// Appends the line: `fields` tab-separated, then "\n".
    pub(super) fn write(
        &self,
        out: &mut BytesMut,
        fields: &[LogField],
        labels: &[Labels],
        end: &End,
    ) {
        for (i, &field) in fields.iter().enumerate() {
            if i > 0 {
                out.put_u8(b'\t');
            }
            self.field(out, field, labels, end);
        }
        out.put_u8(b'\n');
    }

    /// The same fields as one JSON object keyed by their CloudFront names, then "\n": `-`
    /// is null, numeric fields are numbers. The values need no JSON escaping: the line's
    /// escaping already encodes quotes, backslashes, control and non-ASCII bytes.
    pub(super) fn write_json(
        &self,
        out: &mut BytesMut,
        fields: &[LogField],
        labels: &[Labels],
        end: &End,
    ) {
        let mut value = BytesMut::with_capacity(64);
        out.put_u8(b'{');
        for (i, &field) in fields.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            let _ = write!(out, "\"{}\":", field.name());
            value.clear();
            self.field(&mut value, field, labels, end);
            let number = || {
                field.is_number()
                    && value.iter().all(|b| b.is_ascii_digit() || *b == b'.')
                    && std::str::from_utf8(&value).is_ok_and(|v| v.parse::<f64>().is_ok())
            };
            if value[..] == *b"-" {
                out.put_slice(b"null");
            } else if number() {
                out.put_slice(&value);
            } else {
                out.put_u8(b'"');
                out.put_slice(&value);
                out.put_u8(b'"');
            }
        }
        out.put_slice(b"}\n");
    }

    fn field(&self, out: &mut BytesMut, field: LogField, labels: &[Labels], end: &End) {
        let (req, resp) = (&self.request, &self.response);
        let result = match end.ending {
            Ending::Complete => resp.result,
            Ending::OriginFailed | Ending::ViewerGone => ResultType::Error,
        };
        let label = resp.route.and_then(|(d, b)| {
            let labels = labels.get(d)?;
            Some((&*labels.id, labels.patterns.get(b).map(|p| &**p)))
        });
        match field {
            LogField::Timestamp => {
                put_seconds(
                    out,
                    end.timestamp.duration_since(UNIX_EPOCH).unwrap_or_default(),
                );
            }
            LogField::ClientIp => put_display(out, req.viewer.ip().to_canonical()),
            LogField::ClientPort => match req.viewer.port() {
                0 => put_absent(out),
                port => put_display(out, port),
            },
            LogField::ClientIpVersion => {
                out.put_slice(if req.viewer.ip().to_canonical().is_ipv4() {
                    b"IPv4"
                } else {
                    b"IPv6"
                })
            }
            LogField::ClientCountry => {
                put_text(out, resp.country.as_ref().map(|c| c.as_str().as_bytes()))
            }
            LogField::TimeToFirstByte => {
                put_seconds(out, resp.first_byte.saturating_duration_since(req.received))
            }
            LogField::TimeTaken => put_seconds(out, end.at.saturating_duration_since(req.received)),
            LogField::Status => put_display(out, resp.status.as_u16()),
            LogField::ResponseBytes => put_display(out, resp.head_bytes + end.body_bytes),
            LogField::ContentType => put_header(out, resp.content_type.as_ref()),
            LogField::ContentLength => put_header(out, resp.content_length.as_ref()),
            LogField::RangeStart => match resp.range {
                Some((first, _)) => put_display(out, first),
                None => put_absent(out),
            },
            LogField::RangeEnd => match resp.range {
                Some((_, last)) => put_display(out, last),
                None => put_absent(out),
            },
            LogField::Method => put_text(out, Some(req.method.as_str().as_bytes())),
            LogField::Protocol => out.put_slice(if req.tls.is_some() { b"https" } else { b"http" }),
            LogField::ProtocolVersion => out.put_slice(match req.version {
                Version::HTTP_09 => b"HTTP/0.9",
                Version::HTTP_10 => b"HTTP/1.0",
                Version::HTTP_2 => b"HTTP/2.0",
                Version::HTTP_3 => b"HTTP/3.0",
                _ => b"HTTP/1.1",
            }),
            LogField::Host => put_host(out, req.host()),
            LogField::HostHeader => put_text(out, req.host()),
            LogField::UriStem => put_text(out, Some(req.uri.path().as_bytes())),
            LogField::UriQuery => put_text(out, req.uri.query().map(str::as_bytes)),
            LogField::RequestBytes => put_display(out, req.request_bytes),
            LogField::UserAgent => put_header(out, req.user_agent.as_ref()),
            LogField::Referer => put_header(out, req.referer.as_ref()),
            LogField::AcceptEncoding => put_header(out, req.accept_encoding.as_ref()),
            LogField::Accept => put_header(out, req.accept.as_ref()),
            LogField::ForwardedFor => put_header(out, req.forwarded_for.as_ref()),
            LogField::EdgeLocation => out.put_slice(EDGE_LOCATION),
            LogField::RequestId => put_request_id(out, end.id),
            LogField::ResultType => out.put_slice(result.as_str().as_bytes()),
            LogField::ResponseResultType => out.put_slice(resp.result.as_str().as_bytes()),
            LogField::DetailedResultType => out.put_slice(match end.ending {
                Ending::Complete => resp.detail.as_bytes(),
                Ending::OriginFailed => b"OriginReadError",
                Ending::ViewerGone => b"ClientCommError",
            }),
            LogField::SslProtocol => put_text(out, req.tls.map(|t| t.protocol.as_bytes())),
            LogField::SslCipher => put_text(out, req.tls.map(|t| t.cipher.as_bytes())),
            LogField::BehaviorPathPattern => {
                put_text(
                    out,
                    label.and_then(|(_, pattern)| pattern).map(str::as_bytes),
                );
            }
            LogField::DistributionId => put_text(out, label.map(|(id, _)| id.as_bytes())),
        }
    }
}

fn put_absent(out: &mut BytesMut) {
    out.put_u8(b'-');
}

fn put_display(out: &mut BytesMut, value: impl std::fmt::Display) {
    let _ = write!(out, "{value}");
}

/// Seconds with millisecond precision, as CloudFront writes times and durations.
fn put_seconds(out: &mut BytesMut, duration: Duration) {
    let _ = write!(
        out,
        "{}.{:03}",
        duration.as_secs(),
        duration.subsec_millis()
    );
}

fn put_header(out: &mut BytesMut, value: Option<&HeaderValue>) {
    put_text(out, value.map(HeaderValue::as_bytes));
}

/// Viewer-supplied text, escaped; "-" when absent or empty.
fn put_text(out: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        Some(value) if !value.is_empty() => put_escaped(out, value),
        _ => put_absent(out),
    }
}

/// The host the edge routes on: lower case, without port, brackets or trailing dots.
fn put_host(out: &mut BytesMut, raw: Option<&[u8]>) {
    let name = raw.map(|raw| {
        let name = match raw.strip_prefix(b"[") {
            Some(v6) => v6.split(|&b| b == b']').next().unwrap_or_default(),
            None => raw.split(|&b| b == b':').next().unwrap_or_default(),
        };
        let dots = name.iter().rev().take_while(|&&b| b == b'.').count();
        &name[..name.len() - dots]
    });
    match name {
        Some(name) if !name.is_empty() => {
            for &b in name {
                put_escaped(out, &[b.to_ascii_lowercase()]);
            }
        }
        _ => put_absent(out),
    }
}

/// CloudFront's log escaping: spaces, controls (tab and newline among them), DEL, non-ASCII
/// bytes, `"`, `\` and `%` itself become `%XX`, so a value never splits a line or a field
/// and decodes back unambiguously. Runs of plain bytes are copied whole.
fn put_escaped(out: &mut BytesMut, value: &[u8]) {
    let mut plain = 0;
    for (i, &b) in value.iter().enumerate() {
        if b <= b' ' || b >= 0x7f || matches!(b, b'%' | b'"' | b'\\') {
            out.extend_from_slice(&value[plain..i]);
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
            plain = i + 1;
        }
    }
    out.extend_from_slice(&value[plain..]);
}

/// 16 bytes (process-random prefix, sequence number) in URL-safe base64: 22 characters.
fn put_request_id(out: &mut BytesMut, (prefix, sequence): (u64, u64)) {
    let mut raw = [0; 16];
    raw[..8].copy_from_slice(&prefix.to_be_bytes());
    raw[8..].copy_from_slice(&sequence.to_be_bytes());
    let mut text = [0; 24];
    let len = URL_SAFE_NO_PAD.encode_slice(raw, &mut text).unwrap_or(0);
    out.put_slice(&text[..len]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::realtime_logs::LOG_FIELDS;

    fn labels() -> Vec<Labels> {
        vec![Labels {
            id: "site".into(),
            patterns: vec!["/api/*".into(), "*".into()].into_boxed_slice(),
        }]
    }

    fn end(ending: Ending) -> End {
        End {
            ending,
            body_bytes: 100,
            at: Instant::now(),
            timestamp: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            id: (1, 2),
        }
    }

    /// The record's line, with its request received 1.234 s before `end.at` and its head
    /// produced 5 ms after receipt.
    fn line(mut record: Record, fields: &[LogField], end: &End) -> String {
        record.request.received = end.at - Duration::from_millis(1234);
        record.response.first_byte = record.request.received + Duration::from_millis(5);
        let mut out = BytesMut::new();
        record.write(&mut out, fields, &labels(), end);
        String::from_utf8(out.to_vec()).unwrap()
    }

    fn response(status: u16, headers: &[(&str, &[u8])]) -> Response<()> {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        for (name, value) in headers {
            response.headers_mut().append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        response
    }

    fn full_record(user_agent: &[u8]) -> Record {
        let request = Request::builder()
            .uri("/img/cat.png?size=2")
            .header("host", "Site.Test.:8443")
            .header("user-agent", HeaderValue::from_bytes(user_agent).unwrap())
            .header("referer", "https://ref.test/")
            .header("accept-encoding", "gzip")
            .header("accept", "*/*")
            .header("x-forwarded-for", "203.0.113.9")
            .body(())
            .unwrap();
        let tls = TlsNames {
            protocol: "TLSv1.3",
            cipher: "TLS_AES_128_GCM_SHA256",
        };
        let request = RequestFacts::capture(
            &request,
            "198.51.100.7:5555".parse().unwrap(),
            Some(tls),
            &[],
        );
        let response = response(
            206,
            &[
                ("content-type", b"image/png"),
                ("content-length", b"100"),
                ("content-range", b"bytes 0-99/1000"),
                ("x-cache", b"Hit from edgewise"),
            ],
        );
        let seen = Seen {
            route: Some((0, 1)),
            country: None,
            verdict: None,
        };
        Record {
            request,
            response: ResponseFacts::of(&response, &seen, Code::new("DE")),
        }
    }

    #[test]
    fn every_field_is_written_in_the_configured_order() {
        let fields: Vec<LogField> = LOG_FIELDS.iter().map(|(f, _)| *f).collect();
        let got = line(full_record(b"curl/8.5.0"), &fields, &end(Ending::Complete));
        // Request: "GET /img/cat.png?size=2 HTTP/1.1\r\n" (34), headers 23+24+28+23+13+30,
        // blank line. Response: "HTTP/1.1 206 Partial Content\r\n" (30), headers
        // 25+21+32+28, blank line; plus 100 body bytes.
        let want = [
            "1700000000.123",
            "198.51.100.7",
            "5555",
            "IPv4",
            "DE",
            "0.005",
            "1.234",
            "206",
            "238",
            "image/png",
            "100",
            "0",
            "99",
            "GET",
            "https",
            "HTTP/1.1",
            "site.test",
            "Site.Test.:8443",
            "/img/cat.png",
            "size=2",
            "177",
            "curl/8.5.0",
            "https://ref.test/",
            "gzip",
            "*/*",
            "203.0.113.9",
            "edgewise",
            "AAAAAAAAAAEAAAAAAAAAAg",
            "Hit",
            "Hit",
            "Hit",
            "TLSv1.3",
            "TLS_AES_128_GCM_SHA256",
            "*",
            "site",
        ];
        assert_eq!(got, format!("{}\n", want.join("\t")));
    }

    #[test]
    fn absent_values_are_a_hyphen() {
        let request = Request::builder().uri("/").body(()).unwrap();
        let request = RequestFacts::capture(&request, "192.0.2.1:0".parse().unwrap(), None, &[]);
        let record = Record {
            request,
            response: ResponseFacts::of(&response(200, &[]), &Seen::default(), None),
        };
        let fields = [
            LogField::ClientPort,
            LogField::ClientCountry,
            LogField::ContentType,
            LogField::ContentLength,
            LogField::RangeStart,
            LogField::RangeEnd,
            LogField::Host,
            LogField::HostHeader,
            LogField::UriQuery,
            LogField::UserAgent,
            LogField::Referer,
            LogField::AcceptEncoding,
            LogField::Accept,
            LogField::ForwardedFor,
            LogField::SslProtocol,
            LogField::SslCipher,
            LogField::BehaviorPathPattern,
            LogField::DistributionId,
        ];
        let got = line(record, &fields, &end(Ending::Complete));
        assert_eq!(got, format!("{}\n", ["-"; 18].join("\t")));
        let request = Request::builder().uri("/?").body(()).unwrap();
        let request = RequestFacts::capture(&request, "192.0.2.1:1".parse().unwrap(), None, &[]);
        let record = Record {
            request,
            response: ResponseFacts::of(&response(200, &[]), &Seen::default(), None),
        };
        assert_eq!(
            line(
                record,
                &[LogField::UriQuery, LogField::Protocol],
                &end(Ending::Complete)
            ),
            "-\thttp\n",
            "an empty query is absent"
        );
    }

    #[test]
    fn hostile_text_is_escaped_and_stays_one_line_of_the_right_width() {
        let mut out = BytesMut::new();
        put_escaped(
            &mut out,
            b"Mozilla/5.0 (X11)\tEvil\nLine\r\x00%41 \"q\" \\ caf\xc3\xa9\x7f",
        );
        assert_eq!(
            &out[..],
            b"Mozilla/5.0%20(X11)%09Evil%0ALine%0D%00%2541%20%22q%22%20%5C%20caf%C3%A9%7F"
        );
        let fields = [LogField::UserAgent, LogField::Status, LogField::UriStem];
        let got = line(
            full_record(b"bad\tagent caf\xc3\xa9 100%"),
            &fields,
            &end(Ending::Complete),
        );
        assert_eq!(got, "bad%09agent%20caf%C3%A9%20100%25\t206\t/img/cat.png\n");
        assert_eq!(got.matches('\n').count(), 1);
        assert_eq!(got.trim_end().split('\t').count(), fields.len());
    }

    #[test]
    fn the_routed_host_is_lower_case_without_port_or_trailing_dot() {
        for (raw, want) in [
            (&b"Site.TEST.:80"[..], "site.test"),
            (b"[::1]:443", "::1"),
            (b"example.com", "example.com"),
            (b":80", "-"),
        ] {
            let mut out = BytesMut::new();
            put_host(&mut out, Some(raw));
            assert_eq!(&out[..], want.as_bytes(), "{raw:?}");
        }
    }

    #[test]
    fn result_types_follow_cloudfront() {
        let ok = StatusCode::OK;
        let cases = [
            ((ok, CacheResult::Hit, None), (ResultType::Hit, "Hit")),
            (
                (ok, CacheResult::RefreshHit, None),
                (ResultType::RefreshHit, "RefreshHit"),
            ),
            (
                (StatusCode::NOT_MODIFIED, CacheResult::Hit, None),
                (ResultType::Hit, "Hit"),
            ),
            ((ok, CacheResult::Miss, None), (ResultType::Miss, "Miss")),
            (
                (StatusCode::NOT_FOUND, CacheResult::Miss, None),
                (ResultType::Error, "Error"),
            ),
            (
                (StatusCode::BAD_GATEWAY, CacheResult::Error, None),
                (ResultType::Error, "OriginError"),
            ),
            (
                (StatusCode::GATEWAY_TIMEOUT, CacheResult::Error, None),
                (ResultType::Error, "OriginCommError"),
            ),
            (
                (
                    StatusCode::MOVED_PERMANENTLY,
                    CacheResult::Error,
                    Some(Verdict::Redirect),
                ),
                (ResultType::Redirect, "Redirect"),
            ),
            (
                (
                    StatusCode::FORBIDDEN,
                    CacheResult::Error,
                    Some(Verdict::Geo),
                ),
                (ResultType::Error, "ClientGeoBlocked"),
            ),
            (
                (ok, CacheResult::Hit, Some(Verdict::Geo)),
                (ResultType::Error, "ClientGeoBlocked"),
            ),
            (
                (
                    StatusCode::FORBIDDEN,
                    CacheResult::Error,
                    Some(Verdict::Method),
                ),
                (ResultType::Error, "InvalidRequestMethod"),
            ),
            (
                (
                    StatusCode::FORBIDDEN,
                    CacheResult::Error,
                    Some(Verdict::Denied),
                ),
                (ResultType::Error, "Error"),
            ),
            (
                (
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    CacheResult::Error,
                    Some(Verdict::HeadersTooLarge),
                ),
                (ResultType::Error, "InvalidRequestHeader"),
            ),
            (
                (
                    StatusCode::MISDIRECTED_REQUEST,
                    CacheResult::Error,
                    Some(Verdict::Unroutable),
                ),
                (ResultType::Error, "InvalidRequest"),
            ),
        ];
        for ((status, cache, verdict), want) in cases {
            assert_eq!(
                classify(status, cache, verdict),
                want,
                "{status} {cache:?} {verdict:?}"
            );
        }
    }

    #[test]
    fn an_unfinished_body_turns_the_result_into_an_error() {
        let fields = [
            LogField::ResultType,
            LogField::ResponseResultType,
            LogField::DetailedResultType,
        ];
        let gone = line(full_record(b"ua"), &fields, &end(Ending::ViewerGone));
        assert_eq!(gone, "Error\tHit\tClientCommError\n");
        let failed = line(full_record(b"ua"), &fields, &end(Ending::OriginFailed));
        assert_eq!(failed, "Error\tHit\tOriginReadError\n");
    }

    #[test]
    fn viewers_behind_trusted_proxies_have_no_port_and_ipv6_is_named() {
        let request = Request::builder()
            .uri("/")
            .header("x-forwarded-for", "2001:db8::7")
            .body(())
            .unwrap();
        let trusted = ["127.0.0.0/8".parse().unwrap()];
        let request =
            RequestFacts::capture(&request, "127.0.0.1:4000".parse().unwrap(), None, &trusted);
        let record = Record {
            request,
            response: ResponseFacts::of(&response(200, &[]), &Seen::default(), None),
        };
        let fields = [
            LogField::ClientIp,
            LogField::ClientPort,
            LogField::ClientIpVersion,
        ];
        assert_eq!(
            line(record, &fields, &end(Ending::Complete)),
            "2001:db8::7\t-\tIPv6\n"
        );
    }

    #[test]
    fn ranges_and_cipher_names() {
        let range = |v: &'static str| content_range(&HeaderValue::from_static(v));
        assert_eq!(range("bytes 0-99/1000"), Some((0, 99)));
        assert_eq!(range("bytes 500-999/*"), Some((500, 999)));
        assert_eq!(range("bytes */1000"), None);
        assert_eq!(
            openssl_name(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            "ECDHE-RSA-AES128-GCM-SHA256"
        );
        assert_eq!(
            openssl_name(CipherSuite::TLS13_AES_256_GCM_SHA384),
            "TLS_AES_256_GCM_SHA384"
        );
        assert_eq!(
            openssl_name(CipherSuite::TLS13_AES_128_CCM_SHA256),
            "TLS13_AES_128_CCM_SHA256",
            "no OpenSSL name here: the IANA-style one"
        );
    }
}
