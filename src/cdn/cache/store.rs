//! Cached objects in moka, bounded by bytes, with Vary handled by secondary keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, StatusCode};
use moka::future::Cache;
use moka::notification::RemovalCause;
use tokio::time::Instant;

use super::freshness::Freshness;
use super::key::CacheKey;
use super::mapped::BodyFiles;

/// A stored response.
#[derive(Debug)]
pub struct CachedObject {
    pub status: StatusCode,
    /// End-to-end headers as received (hop-by-hop, Age and our own headers removed).
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it was stored (or last revalidated), on tokio's clock.
    pub stored_at: Instant,
    /// Wall-clock twin of `stored_at`, for logs and the admin API.
    pub stored_wall: SystemTime,
    /// The `Age` the origin (or an upstream cache) reported.
    pub initial_age: Duration,
    pub freshness: Freshness,
}

/// What a primary key holds: the object, or the header names its variants differ by.
#[derive(Debug, Clone)]
pub enum Entry {
    Object(Arc<CachedObject>),
    Vary(Arc<[HeaderName]>),
}

/// The object store.
#[derive(Clone)]
pub struct Store {
    cache: Cache<CacheKey, Entry>,
    /// Where large bodies are kept (files that plain-HTTP hits `sendfile`).
    bodies: Arc<BodyFiles>,
    /// Entries evicted to stay within the capacity.
    evictions: Arc<AtomicU64>,
}

// === impl CachedObject ===

impl CachedObject {
    /// Seconds since the origin produced it (RFC 9111 §4.2.3, simplified: no clock skew).
    pub fn age(&self, now: Instant) -> Duration {
        self.initial_age + now.saturating_duration_since(self.stored_at)
    }

    /// Fresh: younger than its freshness lifetime, and not marked for revalidation on every use.
    pub fn is_fresh(&self, now: Instant) -> bool {
        !self.freshness.revalidate_always
            && now.saturating_duration_since(self.stored_at) < self.freshness.ttl
    }

    /// How long past its lifetime it is (zero while fresh).
    pub fn staleness(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.stored_at)
            .saturating_sub(self.freshness.ttl)
    }

    /// Bytes it occupies, roughly: body plus headers.
    fn weight(&self) -> u32 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 32)
            .sum();
        u32::try_from(self.body.len() + headers + 256).unwrap_or(u32::MAX)
    }
}

// === impl Store ===

impl Store {
    /// A store holding at most `capacity` bytes, entries kept at most `max_lifetime`,
    /// large bodies in `bodies`.
    pub fn new(capacity: u64, max_lifetime: Duration, bodies: BodyFiles) -> Store {
        let evictions = Arc::new(AtomicU64::new(0));
        let evicted = evictions.clone();
        let cache = Cache::builder()
            .max_capacity(capacity)
            .weigher(|_key: &CacheKey, entry: &Entry| match entry {
                Entry::Object(object) => object.weight(),
                Entry::Vary(names) => 64 + names.len() as u32 * 32,
            })
            .time_to_live(max_lifetime)
            .support_invalidation_closures()
            .eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Size {
                    evicted.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        Store {
            cache,
            bodies: Arc::new(bodies),
            evictions,
        }
    }

    /// Where a body about to be stored should live: see [`BodyFiles::adopt`].
    pub fn bodies(&self) -> &BodyFiles {
        &self.bodies
    }

    pub async fn get(&self, key: &CacheKey) -> Option<Entry> {
        self.cache.get(key).await
    }

    pub async fn insert(&self, key: CacheKey, entry: Entry) {
        self.cache.insert(key, entry).await;
    }

    pub async fn remove(&self, key: &CacheKey) {
        self.cache.invalidate(key).await;
    }

    /// Drops every entry of `distribution` whose path matches `path` (exact, or a prefix when
    /// it ends in `*`). Returns how many entries were present at the time of the call.
    pub fn invalidate(&self, distribution: &str, path: &str) -> u64 {
        let (prefix, exact) = match path.strip_suffix('*') {
            Some(prefix) => (prefix.to_string(), false),
            None => (path.to_string(), true),
        };
        let distribution: Arc<str> = Arc::from(distribution);
        let matches = move |key: &CacheKey| {
            key.distribution == distribution
                && if exact {
                    *key.path == *prefix
                } else {
                    key.path.starts_with(&prefix)
                }
        };
        let count = self.cache.iter().filter(|(key, _)| matches(key)).count() as u64;
        // The predicate is registered with moka and applied lazily; it cannot fail here.
        let _ = self.cache.invalidate_entries_if(move |key, _| matches(key));
        count
    }

    /// Entries evicted so far to stay within the capacity.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Applies moka's pending bookkeeping, so that [`Self::usage`] counts what was just
    /// stored even when no traffic follows; for the console's summary, not the request path.
    pub async fn settle(&self) {
        self.cache.run_pending_tasks().await;
    }

    /// Objects and bytes held (approximate: moka updates them in the background).
    pub fn usage(&self) -> (u64, u64) {
        (self.cache.entry_count(), self.cache.weighted_size())
    }
}
