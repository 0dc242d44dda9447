//! CloudFront-style real-time logs. Each sampled response becomes one tab-separated line
//! (the configured fields in order) once its body has gone to hyper; the line goes to a
//! bounded queue with `try_send`, so logging never waits: a full queue drops the line and
//! counts it. [`run_writer`] drains the queue in batches into a stream.
//!
//! Measures: time-to-first-byte ends when the pipeline hands hyper the response head;
//! time-taken when hyper has taken the body's last frame (or at the head for HEAD and empty
//! bodies). sc-bytes is the body bytes handed to hyper plus the head as HTTP/1.1 text would
//! be (status line, our headers, blank line): hyper's own Date and framing headers and
//! HTTP/2's header compression are not reflected. cs-bytes is the request line and headers
//! as HTTP/1.1 text plus the declared Content-Length.
//!
//! Not logged: what hyper answers by itself (malformed requests, header read timeouts) and
//! requests whose viewer left before a response head existed.

mod record;

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use ipnet::IpNet;
use tokio::sync::mpsc;
use tracing::warn;

use self::record::{End, Ending, Labels, Record, ResponseFacts};
pub use self::record::{RequestFacts, ResultType, Seen, TlsNames, Verdict};
use crate::cdn::body::{Body, BodyError};
use crate::config::CdnConfig;
use crate::config::cdn::Distribution;
use crate::config::logs::LogFormat;
use crate::config::realtime_logs::{LogField, RealtimeLogsConfig};
use crate::geo::Code;
use crate::logs::access::AccessLog;

/// Kinesis's PutRecords limit: a sensible batch for [`run_writer`].
pub const PUT_RECORDS_MAX: usize = 500;
/// A failing sink is reported at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Real-time logs off (the logger serves only the access log): nothing sampled.
const REALTIME_OFF: RealtimeLogsConfig = RealtimeLogsConfig {
    stream: String::new(),
    sampling_percent: 0,
    fields: Vec::new(),
    queue: 1,
};
/// An access log line's usual size, all fields.
const ACCESS_LINE_CAPACITY: usize = 640;

/// The request path's end of the log: sampling, capture, and the queue. Cloning shares it.
#[derive(Clone)]
pub struct RealtimeLogger {
    shared: Arc<Shared>,
}

struct Shared {
    fields: Box<[LogField]>,
    sampling_percent: u8,
    wants_country: bool,
    labels: Box<[Labels]>,
    /// A line's usual size, so its buffer rarely grows.
    capacity: usize,
    queue: mpsc::Sender<BytesMut>,
    counters: Arc<Counters>,
    id_prefix: u64,
    next_id: AtomicU64,
    /// `[cdn] access_log`: the same records, every field; None when off.
    access: Option<AccessLog>,
}

/// Each distribution's id and behavior patterns, by position, for the lines' labels.
fn labels(distributions: &[Distribution]) -> Vec<Labels> {
    distributions
        .iter()
        .map(|d| Labels {
            id: d.id.as_str().into(),
            patterns: d
                .behaviors
                .iter()
                .map(|b| b.pattern.as_str().into())
                .collect(),
        })
        .collect()
}

/// The writer's end of the queue; see [`run_writer`].
pub struct RealtimeLogReceiver {
    lines: mpsc::Receiver<BytesMut>,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    failed: AtomicU64,
}

impl RealtimeLogger {
    /// A logger for `config` and the queue's receiving end, which a writer must drain.
    pub fn new(
        config: &RealtimeLogsConfig,
        distributions: &[Distribution],
    ) -> (RealtimeLogger, RealtimeLogReceiver) {
        RealtimeLogger::with_labels(config, labels(distributions), None)
    }

    /// The logger of `config`'s `[cdn.realtime_logs]` and `access_log` (its writer spawned)
    /// when either is on, and the real-time queue's receiving end when that one is. Must be
    /// called inside a tokio runtime.
    pub fn for_cdn(config: &CdnConfig) -> (Option<RealtimeLogger>, Option<RealtimeLogReceiver>) {
        let access = config.access_log.as_ref().map(AccessLog::start);
        let labels = labels(&config.distributions);
        match (&config.realtime_logs, access) {
            (Some(logs), access) => {
                let (logger, receiver) = RealtimeLogger::with_labels(logs, labels, access);
                (Some(logger), Some(receiver))
            }
            (None, Some(access)) => {
                let (logger, _) = RealtimeLogger::with_labels(&REALTIME_OFF, labels, Some(access));
                (Some(logger), None)
            }
            (None, None) => (None, None),
        }
    }

    fn with_labels(
        config: &RealtimeLogsConfig,
        labels: Vec<Labels>,
        access: Option<AccessLog>,
    ) -> (RealtimeLogger, RealtimeLogReceiver) {
        let (queue, lines) = mpsc::channel(config.queue.max(1));
        let counters = Arc::new(Counters::default());
        let logger = RealtimeLogger::sharing(config, labels, queue, counters.clone(), access);
        (logger, RealtimeLogReceiver { lines, counters })
    }

    fn sharing(
        config: &RealtimeLogsConfig,
        labels: Vec<Labels>,
        queue: mpsc::Sender<BytesMut>,
        counters: Arc<Counters>,
        access: Option<AccessLog>,
    ) -> RealtimeLogger {
        let shared = Shared {
            capacity: config.fields.iter().map(|&f| typical_width(f) + 1).sum(),
            fields: config.fields.clone().into_boxed_slice(),
            sampling_percent: config.sampling_percent,
            wants_country: config.fields.contains(&LogField::ClientCountry) || access.is_some(),
            labels: labels.into_boxed_slice(),
            queue,
            counters,
            id_prefix: rand::random(),
            next_id: AtomicU64::new(0),
            access,
        };
        RealtimeLogger {
            shared: Arc::new(shared),
        }
    }

    /// After a reload: the same queue, writer and counters (and access log), with `config`'s
    /// fields and sampling (none when `None`) and the new distributions' labels.
    pub fn reconfigured(
        &self,
        config: Option<&RealtimeLogsConfig>,
        distributions: &[Distribution],
    ) -> RealtimeLogger {
        RealtimeLogger::sharing(
            config.unwrap_or(&REALTIME_OFF),
            labels(distributions),
            self.shared.queue.clone(),
            self.shared.counters.clone(),
            self.shared.access.clone(),
        )
    }

    /// The access log's written and dropped lines, when it is on.
    pub fn access_log_stats(&self) -> Option<Arc<crate::logs::LogStats>> {
        self.shared.access.as_ref().map(AccessLog::stats)
    }

    /// Records by outcome: queued, dropped (queue full or no writer), written, failed.
    pub fn counters(&self) -> [(&'static str, u64); 4] {
        let c = &self.shared.counters;
        [
            ("queued", &c.queued),
            ("dropped", &c.dropped),
            ("written", &c.written),
            ("failed", &c.failed),
        ]
        .map(|(name, count)| (name, count.load(Ordering::Relaxed)))
    }

    /// Whether records carry `c-country`, which requests refused before the gate must look up.
    pub fn wants_country(&self) -> bool {
        self.shared.wants_country
    }

    /// The request's facts when it is sampled, else None.
    pub fn capture<B>(
        &self,
        request: &Request<B>,
        peer: SocketAddr,
        tls: Option<TlsNames>,
        trusted: &[IpNet],
    ) -> Option<RequestFacts> {
        let realtime = sampled(self.shared.sampling_percent);
        let access = self.shared.access.as_ref().is_some_and(AccessLog::sampled);
        (realtime || access).then(|| {
            let mut facts = RequestFacts::capture(request, peer, tls, trusted);
            facts.sampled = (realtime, access);
            facts
        })
    }

    /// Takes the response head's facts; the line is queued when the body ends (at once for
    /// an empty body or HEAD, else from a wrapper around the body).
    pub fn attach(
        &self,
        response: Response<Body>,
        request: RequestFacts,
        seen: &Seen,
        country: Option<Code>,
    ) -> Response<Body> {
        let record = Record {
            response: ResponseFacts::of(&response, seen, country),
            request,
        };
        let (parts, body) = response.into_parts();
        if record.request.is_head() || body.is_end_stream() {
            self.shared.emit(&record, Ending::Complete, 0);
            return Response::from_parts(parts, body);
        }
        let logged = Logged {
            inner: body,
            record,
            shared: self.shared.clone(),
            sent: 0,
            emitted: false,
        };
        Response::from_parts(parts, logged.boxed())
    }
}

impl Shared {
    /// Formats the record and queues it without waiting.
    fn emit(&self, record: &Record, ending: Ending, body_bytes: u64) {
        let end = End {
            ending,
            body_bytes,
            at: Instant::now(),
            timestamp: SystemTime::now(),
            id: (self.id_prefix, self.next_id.fetch_add(1, Ordering::Relaxed)),
        };
        let (realtime, access) = record.request.sampled;
        if realtime {
            let mut line = BytesMut::with_capacity(self.capacity);
            record.write(&mut line, &self.fields, &self.labels, &end);
            let outcome = match self.queue.try_send(line) {
                Ok(()) => &self.counters.queued,
                Err(_) => &self.counters.dropped,
            };
            outcome.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(log) = self.access.as_ref().filter(|_| access) {
            let mut line = BytesMut::with_capacity(ACCESS_LINE_CAPACITY);
            let fields = AccessLog::fields();
            match log.format() {
                LogFormat::Text => record.write(&mut line, &fields, &self.labels, &end),
                LogFormat::Json => record.write_json(&mut line, &fields, &self.labels, &end),
            }
            log.push(line);
        }
    }
}

/// Bytes a field usually takes, for the line's initial capacity.
fn typical_width(field: LogField) -> usize {
    match field {
        LogField::UserAgent => 128,
        LogField::Referer | LogField::UriStem | LogField::UriQuery | LogField::Accept => 48,
        LogField::ClientIp | LogField::ForwardedFor | LogField::ContentType => 40,
        LogField::SslCipher | LogField::RequestId | LogField::DetailedResultType => 24,
        _ => 16,
    }
}

thread_local! {
    /// xorshift64 state per thread: sampling needs speed, not quality. 0 until seeded.
    static SAMPLER: Cell<u64> = const { Cell::new(0) };
}

/// Whether this request is logged; at 100 % no random number is drawn.
fn sampled(percent: u8) -> bool {
    if percent >= 100 {
        return true;
    }
    SAMPLER.with(|state| {
        let mut x = state.get();
        if x == 0 {
            x = rand::random::<u64>() | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        // The high 32 bits scaled onto 0..100.
        (((x >> 32) * 100) >> 32) < u64::from(percent)
    })
}

/// A response body that queues its record when the last frame has gone to hyper, or when
/// hyper drops it unfinished (the viewer went away).
struct Logged {
    inner: Body,
    record: Record,
    shared: Arc<Shared>,
    sent: u64,
    emitted: bool,
}

impl Logged {
    fn finish(&mut self, ending: Ending) {
        if !self.emitted {
            self.emitted = true;
            self.shared.emit(&self.record, ending, self.sent);
        }
    }
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(Ending::OriginFailed),
            Poll::Ready(None) => this.finish(Ending::Complete),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let ending = if self.inner.is_end_stream() {
            Ending::Complete
        } else {
            Ending::ViewerGone
        };
        self.finish(ending);
    }
}

/// Drains `receiver` into `sink`, up to `batch_max` lines a call (each line ends in "\n"),
/// until every [`RealtimeLogger`] is gone and the queue is empty. A failed batch is counted
/// and not retried: the queue behind it keeps moving.
pub async fn run_writer<F, Fut>(receiver: RealtimeLogReceiver, batch_max: usize, mut sink: F)
where
    F: FnMut(Vec<Bytes>) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let RealtimeLogReceiver {
        mut lines,
        counters,
    } = receiver;
    let batch_max = batch_max.max(1);
    let mut pending = Vec::with_capacity(batch_max);
    let mut last_warning: Option<Instant> = None;
    let mut unreported = 0u64;
    while lines.recv_many(&mut pending, batch_max).await > 0 {
        let batch: Vec<Bytes> = pending.drain(..).map(BytesMut::freeze).collect();
        let count = batch.len() as u64;
        match sink(batch).await {
            Ok(()) => {
                counters.written.fetch_add(count, Ordering::Relaxed);
            }
            Err(e) => {
                counters.failed.fetch_add(count, Ordering::Relaxed);
                unreported += 1;
                if last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    warn!("real-time log: {unreported} batch(es) not written; last: {e}");
                    last_warning = Some(Instant::now());
                    unreported = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures_util::stream;
    use http::Method;
    use http_body_util::StreamBody;

    use super::*;
    use crate::cdn::body;

    fn logger(sampling_percent: u8, queue: usize) -> (RealtimeLogger, RealtimeLogReceiver) {
        let config = RealtimeLogsConfig {
            stream: "logs".into(),
            sampling_percent,
            fields: vec![
                LogField::Method,
                LogField::Status,
                LogField::ResponseBytes,
                LogField::ResultType,
                LogField::DetailedResultType,
            ],
            queue,
        };
        RealtimeLogger::with_labels(&config, Vec::new(), None)
    }

    fn request(method: Method) -> Request<()> {
        Request::builder().method(method).uri("/").body(()).unwrap()
    }

    /// A 200 Hit with `body`, through `log`; None when the request is not sampled.
    fn logged(log: &RealtimeLogger, method: Method, body: Body) -> Option<Response<Body>> {
        let facts = log.capture(&request(method), "192.0.2.1:1".parse().unwrap(), None, &[])?;
        let mut response = Response::new(body);
        response.headers_mut().insert(
            crate::cdn::proxy::respond::X_CACHE.clone(),
            http::HeaderValue::from_static("Hit from edgewise"),
        );
        Some(log.attach(response, facts, &Seen::default(), None))
    }

    fn count(log: &RealtimeLogger, name: &str) -> u64 {
        log.counters()
            .into_iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
    }

    fn lines(receiver: &mut RealtimeLogReceiver) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(line) = receiver.lines.try_recv() {
            out.push(String::from_utf8(line.to_vec()).unwrap());
        }
        out
    }

    #[test]
    fn sampling_at_100_takes_every_request_and_at_10_about_a_tenth() {
        assert!((0..10_000).all(|_| sampled(100)));
        let taken = (0..100_000).filter(|_| sampled(10)).count();
        assert!(
            (8_000..12_000).contains(&taken),
            "{taken} of 100000 at 10 %"
        );
        let taken = (0..100_000).filter(|_| sampled(1)).count();
        assert!((500..1_500).contains(&taken), "{taken} of 100000 at 1 %");
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_so_does_a_missing_writer() {
        let (log, mut receiver) = logger(100, 2);
        for _ in 0..5 {
            logged(&log, Method::GET, body::empty()).unwrap();
        }
        assert_eq!(count(&log, "queued"), 2);
        assert_eq!(count(&log, "dropped"), 3);
        assert_eq!(lines(&mut receiver), ["GET\t200\t47\tHit\tHit\n"; 2]);
        drop(receiver);
        logged(&log, Method::GET, body::empty()).unwrap();
        assert_eq!(count(&log, "dropped"), 4);
    }

    #[tokio::test]
    async fn a_streamed_body_is_logged_once_its_last_byte_is_out() {
        let (log, mut receiver) = logger(100, 16);
        let chunks = stream::iter(["abc", "defg"].map(|c| Ok(Frame::data(Bytes::from(c)))));
        let response = logged(&log, Method::GET, StreamBody::new(chunks).boxed()).unwrap();
        assert!(
            lines(&mut receiver).is_empty(),
            "nothing before the body ends"
        );
        let collected = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(collected, "abcdefg");
        // 47 head bytes (status line, x-cache, blank line) and 7 body bytes.
        assert_eq!(lines(&mut receiver), ["GET\t200\t54\tHit\tHit\n"]);
    }

    #[tokio::test]
    async fn an_abandoned_or_failed_body_is_an_error() {
        let (log, mut receiver) = logger(100, 16);
        let chunks = stream::iter(["abc", "def"].map(|c| Ok(Frame::data(Bytes::from(c)))));
        let response = logged(&log, Method::GET, StreamBody::new(chunks).boxed()).unwrap();
        let mut body = response.into_body();
        body.frame().await.unwrap().unwrap();
        drop(body);
        assert_eq!(
            lines(&mut receiver),
            ["GET\t200\t50\tError\tClientCommError\n"]
        );
        let failing = stream::iter([
            Ok(Frame::data(Bytes::from("ab"))),
            Err(BodyError::from("origin reset")),
        ]);
        let response = logged(&log, Method::GET, StreamBody::new(failing).boxed()).unwrap();
        assert!(response.into_body().collect().await.is_err());
        assert_eq!(
            lines(&mut receiver),
            ["GET\t200\t49\tError\tOriginReadError\n"]
        );
    }

    #[test]
    fn head_and_empty_bodies_are_logged_at_once() {
        let (log, mut receiver) = logger(100, 16);
        let _response = logged(&log, Method::HEAD, body::full("unsent")).unwrap();
        assert_eq!(lines(&mut receiver), ["HEAD\t200\t47\tHit\tHit\n"]);
    }

    #[tokio::test]
    async fn the_writer_batches_counts_and_flushes_on_close() {
        let (log, receiver) = logger(100, 16);
        for _ in 0..7 {
            logged(&log, Method::GET, body::empty()).unwrap();
        }
        let counters = log.shared.counters.clone();
        drop(log);
        let batches = Mutex::new(Vec::new());
        run_writer(receiver, 3, |batch: Vec<Bytes>| {
            assert!(batch.iter().all(|line| line.ends_with(b"\n")));
            let mut seen = batches.lock().unwrap();
            seen.push(batch.len());
            let fail = seen.len() == 2;
            async move {
                if fail {
                    Err("stream unavailable".to_string())
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(*batches.lock().unwrap(), [3, 3, 1]);
        assert_eq!(counters.written.load(Ordering::Relaxed), 4);
        assert_eq!(counters.failed.load(Ordering::Relaxed), 3);
        assert_eq!(counters.queued.load(Ordering::Relaxed), 7);
    }
}
