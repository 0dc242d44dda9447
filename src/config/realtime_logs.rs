//! `[cdn.realtime_logs]`: which stream gets a record per CDN request, how many requests are
//! sampled, and which CloudFront real-time log fields each record carries, in order.

use toml::Spanned;

use super::diag::{ConfigError, SourceMap};
use super::raw::RawRealtimeLogs;

/// Records waiting for the log writer; beyond this they are dropped and counted.
const DEFAULT_QUEUE: usize = 65_536;

/// Validated `[cdn.realtime_logs]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealtimeLogsConfig {
    /// A `[[stream.streams]]` name.
    pub stream: String,
    /// 1–100, as CloudFront's SamplingRate.
    pub sampling_percent: u8,
    /// Tab-separated in this order, one line per request.
    pub fields: Vec<LogField>,
    /// Records buffered between the request path and the writer.
    pub queue: usize,
}

/// CloudFront's real-time log fields that edgewise fills in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogField {
    Timestamp,
    ClientIp,
    ClientPort,
    ClientIpVersion,
    ClientCountry,
    TimeToFirstByte,
    TimeTaken,
    Status,
    ResponseBytes,
    ContentType,
    ContentLength,
    RangeStart,
    RangeEnd,
    Method,
    Protocol,
    ProtocolVersion,
    Host,
    HostHeader,
    UriStem,
    UriQuery,
    RequestBytes,
    UserAgent,
    Referer,
    AcceptEncoding,
    Accept,
    ForwardedFor,
    EdgeLocation,
    RequestId,
    ResultType,
    ResponseResultType,
    DetailedResultType,
    SslProtocol,
    SslCipher,
    BehaviorPathPattern,
    DistributionId,
}

/// Each field with its CloudFront name.
pub const LOG_FIELDS: [(LogField, &str); 35] = [
    (LogField::Timestamp, "timestamp"),
    (LogField::ClientIp, "c-ip"),
    (LogField::ClientPort, "c-port"),
    (LogField::ClientIpVersion, "c-ip-version"),
    (LogField::ClientCountry, "c-country"),
    (LogField::TimeToFirstByte, "time-to-first-byte"),
    (LogField::TimeTaken, "time-taken"),
    (LogField::Status, "sc-status"),
    (LogField::ResponseBytes, "sc-bytes"),
    (LogField::ContentType, "sc-content-type"),
    (LogField::ContentLength, "sc-content-len"),
    (LogField::RangeStart, "sc-range-start"),
    (LogField::RangeEnd, "sc-range-end"),
    (LogField::Method, "cs-method"),
    (LogField::Protocol, "cs-protocol"),
    (LogField::ProtocolVersion, "cs-protocol-version"),
    (LogField::Host, "cs-host"),
    (LogField::HostHeader, "x-host-header"),
    (LogField::UriStem, "cs-uri-stem"),
    (LogField::UriQuery, "cs-uri-query"),
    (LogField::RequestBytes, "cs-bytes"),
    (LogField::UserAgent, "cs-user-agent"),
    (LogField::Referer, "cs-referer"),
    (LogField::AcceptEncoding, "cs-accept-encoding"),
    (LogField::Accept, "cs-accept"),
    (LogField::ForwardedFor, "x-forwarded-for"),
    (LogField::EdgeLocation, "x-edge-location"),
    (LogField::RequestId, "x-edge-request-id"),
    (LogField::ResultType, "x-edge-result-type"),
    (LogField::ResponseResultType, "x-edge-response-result-type"),
    (LogField::DetailedResultType, "x-edge-detailed-result-type"),
    (LogField::SslProtocol, "ssl-protocol"),
    (LogField::SslCipher, "ssl-cipher"),
    (LogField::BehaviorPathPattern, "cache-behavior-path-pattern"),
    (LogField::DistributionId, "primary-distribution-id"),
];

/// Used when `fields` is not given: what the issue of a request needs to be understood.
pub const DEFAULT_LOG_FIELDS: [LogField; 15] = [
    LogField::Timestamp,
    LogField::ClientIp,
    LogField::ClientCountry,
    LogField::Method,
    LogField::Host,
    LogField::UriStem,
    LogField::Status,
    LogField::ResponseBytes,
    LogField::TimeTaken,
    LogField::ResultType,
    LogField::UserAgent,
    LogField::SslProtocol,
    LogField::ProtocolVersion,
    LogField::DistributionId,
    LogField::RequestId,
];

impl LogField {
    /// The CloudFront field name.
    pub fn name(self) -> &'static str {
        LOG_FIELDS
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("", |(_, n)| n)
    }

    /// Whether the field's value is a number (written unquoted in JSON lines).
    pub fn is_number(self) -> bool {
        matches!(
            self,
            LogField::Timestamp
                | LogField::ClientPort
                | LogField::TimeToFirstByte
                | LogField::TimeTaken
                | LogField::Status
                | LogField::ResponseBytes
                | LogField::ContentLength
                | LogField::RangeStart
                | LogField::RangeEnd
                | LogField::RequestBytes
        )
    }

    fn parse(name: &str) -> Option<LogField> {
        LOG_FIELDS.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }
}

/// Checks `[cdn.realtime_logs]`; whether its stream exists is checked with `[stream]`.
pub(super) fn validate(
    raw: &Spanned<RawRealtimeLogs>,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> RealtimeLogsConfig {
    let r = raw.get_ref();
    let sampling_percent = match &r.sampling_percent {
        Some(p) if (1..=100).contains(p.get_ref()) => *p.get_ref() as u8,
        Some(p) => {
            errors.push(map.error(
                p.span(),
                "cdn.realtime_logs.sampling_percent",
                format!("{} is out of range (1 to 100)", p.get_ref()),
            ));
            100
        }
        None => 100,
    };
    let fields = match &r.fields {
        None => DEFAULT_LOG_FIELDS.to_vec(),
        Some(list) => {
            if list.get_ref().is_empty() {
                errors.push(map.error(
                    list.span(),
                    "cdn.realtime_logs.fields",
                    "must name at least one field",
                ));
            }
            let mut fields = Vec::new();
            for (i, name) in list.get_ref().iter().enumerate() {
                match LogField::parse(name.get_ref()) {
                    Some(f) => fields.push(f),
                    None => errors.push(map.error(
                        name.span(),
                        format!("cdn.realtime_logs.fields[{i}]"),
                        format!(
                            "{:?} is not a supported field; supported: {}",
                            name.get_ref(),
                            LOG_FIELDS.map(|(_, n)| n).join(", ")
                        ),
                    )),
                }
            }
            fields
        }
    };
    let queue = match &r.queue {
        Some(q) if (1..=10_000_000).contains(q.get_ref()) => *q.get_ref() as usize,
        Some(q) => {
            errors.push(map.error(
                q.span(),
                "cdn.realtime_logs.queue",
                format!("{} is out of range (1 to 10000000)", q.get_ref()),
            ));
            DEFAULT_QUEUE
        }
        None => DEFAULT_QUEUE,
    };
    RealtimeLogsConfig {
        stream: r.stream.get_ref().clone(),
        sampling_percent,
        fields,
        queue,
    }
}
