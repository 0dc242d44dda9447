//! A body that grows while it is read: one writer (the fill reading the origin) appends
//! chunks, any number of readers (the leader's viewer, collapsed followers) read them by
//! offset, each at its own pace. Readers never block the writer or each other: they copy
//! nothing, they clone `Bytes` under a short lock and wait on a `Notify` for more.
//!
//! Memory: the chunks are the object being filled (bounded by `max_object_size` by the
//! fill); when the body completes they are joined into the one `Bytes` the cache stores (a
//! mapped file when large), so late readers and the stored object share it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::Notify;

use super::mapped::BodyFiles;
use crate::cdn::body::{Body, BodyError};

/// A body being received.
pub struct Growing {
    state: Mutex<State>,
    grown: Notify,
    /// The length the origin declared, if it did: readers report their exact size and end.
    expected: Option<u64>,
    /// The length once complete (`OPEN` until then), readable without the lock.
    completed: AtomicU64,
}

const OPEN: u64 = u64::MAX;

struct State {
    chunks: Vec<Bytes>,
    /// Offset of each chunk in the body.
    starts: Vec<u64>,
    len: u64,
    end: End,
}

enum End {
    /// More may come.
    Open,
    /// Every byte is here.
    Complete,
    /// The origin failed: readers get this error instead of the rest.
    Failed(String),
    /// No longer buffered beyond what is here: the one reader that reaches the end takes
    /// the rest of the origin's body and reads it directly.
    HandedOff(Option<Body>),
}

/// What a reader at some offset gets next.
enum Next {
    Data(Bytes),
    End,
    Failed(String),
    Rest(Body),
}

impl Growing {
    /// An empty body; `expected` is the length the origin declared, if any.
    pub fn new(expected: Option<u64>) -> Arc<Growing> {
        Arc::new(Growing {
            expected,
            completed: AtomicU64::new(OPEN),
            state: Mutex::new(State {
                chunks: Vec::new(),
                starts: Vec::new(),
                len: 0,
                end: End::Open,
            }),
            grown: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.state().len
    }

    /// Nothing received yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a chunk and wakes the readers waiting for it.
    pub fn push(&self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        {
            let mut state = self.state();
            if !matches!(state.end, End::Open) {
                return;
            }
            let start = state.len;
            state.len += chunk.len() as u64;
            state.starts.push(start);
            state.chunks.push(chunk);
        }
        self.grown.notify_waiters();
    }

    /// Marks the body complete and returns it whole, joined by `bodies` (into a file when
    /// large). The chunks are replaced by that one `Bytes`, so readers still going share the
    /// stored object's memory.
    pub fn complete(&self, bodies: &BodyFiles) -> Bytes {
        // Only the writer pushes, so the chunks cannot change while they are joined.
        let chunks = self.state().chunks.clone();
        let whole = bodies.join(&chunks);
        {
            let mut state = self.state();
            state.chunks = vec![whole.clone()];
            state.starts = vec![0];
            state.end = End::Complete;
            self.completed.store(state.len, Ordering::Release);
        }
        self.grown.notify_waiters();
        whole
    }

    /// Ends the body with an error: readers get it (and no more bytes), the chunks are freed.
    pub fn fail(&self, message: impl Into<String>) {
        {
            let mut state = self.state();
            state.chunks = Vec::new();
            state.starts = Vec::new();
            state.end = End::Failed(message.into());
        }
        self.grown.notify_waiters();
    }

    /// Stops buffering: the reader that reaches the end of what is here continues with
    /// `rest`, straight from the origin. For bodies that only one reader follows.
    pub fn hand_off(&self, rest: Body) {
        {
            let mut state = self.state();
            if !matches!(state.end, End::Open) {
                return;
            }
            state.end = End::HandedOff(Some(rest));
        }
        self.grown.notify_waiters();
    }

    /// A body reading this one from its first byte: what is here at once, the rest as it
    /// arrives.
    pub fn reader(self: &Arc<Self>) -> Body {
        BodyExt::boxed(Reader {
            growing: self.clone(),
            offset: 0,
            waiting: None,
            direct: None,
            done: false,
        })
    }

    /// What `next` would return without waiting, or None when it would wait.
    fn try_next(&self, offset: u64) -> Option<Next> {
        let mut state = self.state();
        if let End::Failed(message) = &state.end {
            return Some(Next::Failed(message.clone()));
        }
        if offset < state.len {
            let index = state.starts.partition_point(|&start| start <= offset) - 1;
            let within = usize::try_from(offset - state.starts[index]).unwrap_or(usize::MAX);
            return Some(Next::Data(state.chunks[index].slice(within..)));
        }
        match &mut state.end {
            End::Open => None,
            End::Complete => Some(Next::End),
            End::Failed(message) => Some(Next::Failed(message.clone())),
            End::HandedOff(rest) => Some(match rest.take() {
                Some(rest) => Next::Rest(rest),
                None => Next::Failed("the rest of the body went to another reader".into()),
            }),
        }
    }

    /// The bytes from `offset` on that are here (one chunk's worth), waiting for some when
    /// there are none yet.
    async fn next(self: Arc<Self>, offset: u64) -> Next {
        loop {
            let grown = self.grown.notified();
            tokio::pin!(grown);
            // Registered before looking, so a push between the look and the wait is not missed.
            grown.as_mut().enable();
            if let Some(next) = self.try_next(offset) {
                return next;
            }
            grown.await;
        }
    }
}

type Waiting = Pin<Box<dyn Future<Output = Next> + Send + Sync>>;

/// One reader of a [`Growing`] body, at its own offset.
struct Reader {
    growing: Arc<Growing>,
    offset: u64,
    /// Waiting for bytes (only allocated when the reader has caught up).
    waiting: Option<Waiting>,
    /// Past a hand-off: the origin's body itself.
    direct: Option<Body>,
    done: bool,
}

impl http_body::Body for Reader {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            if let Some(direct) = &mut this.direct {
                return Pin::new(direct).poll_frame(cx);
            }
            if this.done {
                return Poll::Ready(None);
            }
            let next = match &mut this.waiting {
                Some(waiting) => match waiting.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(next) => {
                        this.waiting = None;
                        next
                    }
                },
                None => match this.growing.try_next(this.offset) {
                    Some(next) => next,
                    None => {
                        this.waiting = Some(Box::pin(this.growing.clone().next(this.offset)));
                        continue;
                    }
                },
            };
            match next {
                Next::Data(bytes) => {
                    this.offset += bytes.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                Next::End => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Next::Failed(message) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(broken(message))));
                }
                Next::Rest(body) => this.direct = Some(body),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.direct {
            Some(direct) => direct.is_end_stream(),
            None => {
                self.done
                    || self.growing.expected == Some(self.offset)
                    || self.growing.completed.load(Ordering::Acquire) == self.offset
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        let completed = self.growing.completed.load(Ordering::Acquire);
        match self.growing.expected {
            _ if self.direct.is_some() => SizeHint::default(),
            Some(expected) => SizeHint::with_exact(expected.saturating_sub(self.offset)),
            None if completed != OPEN => {
                SizeHint::with_exact(completed.saturating_sub(self.offset))
            }
            None => SizeHint::default(),
        }
    }
}

fn broken(message: String) -> BodyError {
    Box::new(std::io::Error::other(message))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cdn::body;

    async fn read_all(body: Body) -> Result<Vec<u8>, String> {
        body.collect()
            .await
            .map(|collected| collected.to_bytes().to_vec())
            .map_err(|e| e.to_string())
    }

    async fn next_chunk(body: &mut Body) -> Option<Bytes> {
        tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("a frame in time")
            .map(|frame| frame.expect("no error").into_data().expect("data"))
    }

    #[tokio::test]
    async fn a_reader_catches_up_and_then_waits_for_more() {
        let growing = Growing::new(None);
        growing.push(Bytes::from_static(b"one "));
        growing.push(Bytes::from_static(b"two "));
        let mut reader = growing.reader();
        assert_eq!(next_chunk(&mut reader).await.unwrap(), "one ");
        assert_eq!(next_chunk(&mut reader).await.unwrap(), "two ");
        let waiting = tokio::spawn(async move {
            let chunk = next_chunk(&mut reader).await.unwrap();
            (chunk, reader)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "nothing new yet: the reader waits");
        growing.push(Bytes::from_static(b"three"));
        let (chunk, mut reader) = waiting.await.unwrap();
        assert_eq!(chunk, "three");
        let whole = growing.complete(&BodyFiles::in_memory());
        assert_eq!(whole, "one two three");
        assert!(
            next_chunk(&mut reader).await.is_none(),
            "complete: the body ends"
        );
    }

    #[tokio::test]
    async fn a_late_reader_gets_everything() {
        let growing = Growing::new(None);
        for chunk in ["a", "b", "c"] {
            growing.push(Bytes::from(chunk));
        }
        let early = growing.reader();
        assert_eq!(growing.complete(&BodyFiles::in_memory()), "abc");
        assert_eq!(growing.len(), 3);
        assert_eq!(read_all(growing.reader()).await.unwrap(), b"abc");
        assert_eq!(read_all(early).await.unwrap(), b"abc");
    }

    #[tokio::test]
    async fn a_reader_mid_chunk_after_completion_continues_where_it_was() {
        let growing = Growing::new(None);
        growing.push(Bytes::from_static(b"head"));
        growing.push(Bytes::from_static(b"tail"));
        let mut reader = growing.reader();
        assert_eq!(next_chunk(&mut reader).await.unwrap(), "head");
        growing.complete(&BodyFiles::in_memory());
        assert_eq!(read_all(reader).await.unwrap(), b"tail");
    }

    #[tokio::test]
    async fn an_error_reaches_every_reader() {
        let growing = Growing::new(None);
        growing.push(Bytes::from_static(b"partial"));
        let mut started = growing.reader();
        assert_eq!(next_chunk(&mut started).await.unwrap(), "partial");
        let waiting = tokio::spawn(read_all(started));
        let fresh = growing.reader();
        growing.fail("the origin reset the connection");
        let error = waiting.await.unwrap().unwrap_err();
        assert!(error.contains("reset"), "{error}");
        assert!(read_all(fresh).await.is_err());
        assert!(
            read_all(growing.reader()).await.is_err(),
            "later readers too"
        );
        assert_eq!(growing.state().chunks.len(), 0, "the buffer is freed");
    }

    #[tokio::test]
    async fn many_readers_each_get_the_whole_body() {
        let growing = Growing::new(None);
        let mut readers = tokio::task::JoinSet::new();
        for _ in 0..20 {
            readers.spawn(read_all(growing.reader()));
        }
        let mut expected = Vec::new();
        for i in 0..100u32 {
            let chunk = format!("{i},");
            expected.extend_from_slice(chunk.as_bytes());
            growing.push(Bytes::from(chunk));
            if i % 10 == 0 {
                tokio::task::yield_now().await;
            }
        }
        growing.complete(&BodyFiles::in_memory());
        let mut count = 0;
        while let Some(read) = readers.join_next().await {
            assert_eq!(read.unwrap().unwrap(), expected);
            count += 1;
        }
        assert_eq!(count, 20);
    }

    #[tokio::test]
    async fn a_handed_off_body_continues_from_the_origin_for_one_reader() {
        let growing = Growing::new(None);
        growing.push(Bytes::from_static(b"buffered,"));
        let reader = growing.reader();
        growing.hand_off(body::full("direct"));
        assert_eq!(read_all(reader).await.unwrap(), b"buffered,direct");
        assert!(
            read_all(growing.reader()).await.is_err(),
            "the rest went to the first reader"
        );
    }

    #[tokio::test]
    async fn a_declared_length_ends_the_body_at_its_last_byte() {
        use http_body::Body as _;
        let growing = Growing::new(Some(6));
        let mut reader = growing.reader();
        assert_eq!(reader.size_hint().exact(), Some(6));
        growing.push(Bytes::from_static(b"abc"));
        assert_eq!(next_chunk(&mut reader).await.unwrap(), "abc");
        assert!(!reader.is_end_stream());
        growing.push(Bytes::from_static(b"def"));
        assert_eq!(next_chunk(&mut reader).await.unwrap(), "def");
        assert!(
            reader.is_end_stream(),
            "every declared byte read: done, even before the fill completes"
        );
        let undeclared = Growing::new(None);
        let reader = undeclared.reader();
        assert_eq!(reader.size_hint().exact(), None);
        undeclared.push(Bytes::from_static(b"xy"));
        undeclared.complete(&BodyFiles::in_memory());
        assert_eq!(reader.size_hint().exact(), Some(2));
        assert_eq!(read_all(reader).await.unwrap(), b"xy");
    }
}
