//! Request collapsing: concurrent misses for one key make one origin request; the others
//! wait for its outcome (pingora's cache lock, in miniature). While a storable body is
//! arriving, followers may read it as it grows ([`Outcome::Streaming`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderName, StatusCode};
use tokio::sync::watch;
use tokio::time::Instant;

use super::growing::Growing;
use super::key::{self, CacheKey};

/// What the one fetch produced, for those who waited.
#[derive(Clone)]
pub enum Outcome {
    /// Stored: look it up again (Vary may select another variant for you).
    Stored,
    /// Not storable (or failed): each waiter asks the origin itself.
    NotShared,
    /// Storable, and its body is arriving: read along, or wait on for `Stored`/`NotShared`
    /// (which always follows).
    Streaming(Arc<Streaming>),
}

/// A storable response whose body is still arriving from the origin.
pub struct Streaming {
    pub status: StatusCode,
    /// The headers as they will be stored (Age and hop-by-hop headers removed).
    pub headers: HeaderMap,
    /// The `Age` the origin reported.
    pub initial_age: Duration,
    /// When the origin's head arrived, on tokio's clock.
    pub received_at: Instant,
    /// The request headers the response varies by; empty when every request of the key
    /// selects it.
    pub vary: Vec<HeaderName>,
    /// Where the object will be stored.
    pub object_key: CacheKey,
    pub body: Arc<Growing>,
}

impl Streaming {
    /// Whether a request that joined the fetch for `key` with `headers` selects this
    /// response (Vary): else it must fetch its own variant.
    pub fn selects(&self, key: &CacheKey, headers: &HeaderMap) -> bool {
        self.vary.is_empty() || key::secondary(key, &self.vary, headers) == self.object_key
    }

    /// Its age now, as a stored object's would be.
    pub fn age(&self, now: Instant) -> Duration {
        self.initial_age + now.saturating_duration_since(self.received_at)
    }
}

/// Fetches in progress, by key.
#[derive(Default)]
pub struct InFlight {
    fetches: Mutex<HashMap<CacheKey, watch::Receiver<Option<Outcome>>>>,
}

/// Either lead the fetch, or wait for the leader.
pub enum Role {
    Leader(Leader),
    Follower(watch::Receiver<Option<Outcome>>),
}

/// The one fetching. Dropping it without `finish` tells followers to fetch themselves.
pub struct Leader {
    key: CacheKey,
    sender: watch::Sender<Option<Outcome>>,
    table: Arc<InFlight>,
}

impl InFlight {
    /// Joins the fetch for `key`, leading it if nobody is.
    pub fn join(self: &Arc<Self>, key: &CacheKey) -> Role {
        let mut fetches = self
            .fetches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(receiver) = fetches.get(key) {
            return Role::Follower(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        fetches.insert(key.clone(), receiver);
        Role::Leader(Leader {
            key: key.clone(),
            sender,
            table: self.clone(),
        })
    }

    fn forget(&self, key: &CacheKey) {
        self.fetches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }
}

impl Leader {
    /// Tells followers (those waiting and those still to come) that the body is arriving.
    /// The fetch stays in flight until `finish` or drop.
    pub fn publish(&self, streaming: Arc<Streaming>) {
        self.sender
            .send_replace(Some(Outcome::Streaming(streaming)));
    }

    /// Publishes the outcome to every follower.
    pub fn finish(self, outcome: Outcome) {
        self.table.forget(&self.key);
        let _ = self.sender.send(Some(outcome));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.table.forget(&self.key);
        self.sender.send_if_modified(|current| {
            if matches!(current, None | Some(Outcome::Streaming(_))) {
                *current = Some(Outcome::NotShared);
                true
            } else {
                false
            }
        });
    }
}

/// Waits for the leader's outcome; a vanished leader counts as `NotShared`. A `Streaming`
/// outcome is returned when `accept` takes it, else the final one is awaited.
pub async fn wait(
    mut receiver: watch::Receiver<Option<Outcome>>,
    accept: impl Fn(&Streaming) -> bool,
) -> Outcome {
    loop {
        match &*receiver.borrow_and_update() {
            Some(Outcome::Streaming(streaming)) if !accept(streaming) => {}
            Some(outcome) => return outcome.clone(),
            None => {}
        }
        if receiver.changed().await.is_err() {
            return match &*receiver.borrow() {
                Some(Outcome::Stored) => Outcome::Stored,
                _ => Outcome::NotShared,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn key(path: &str) -> CacheKey {
        CacheKey {
            distribution: Arc::from("d"),
            path: Arc::from(path),
            variant: Arc::from("GET?"),
        }
    }

    #[tokio::test]
    async fn followers_learn_what_the_leader_stored() {
        let table = Arc::new(InFlight::default());
        let Role::Leader(leader) = table.join(&key("/a")) else {
            panic!("the first asker leads")
        };
        let Role::Follower(receiver) = table.join(&key("/a")) else {
            panic!("the second asker follows")
        };
        assert!(
            matches!(table.join(&key("/b")), Role::Leader(_)),
            "other keys are independent"
        );
        let waiter = tokio::spawn(wait(receiver, |_| true));
        leader.finish(Outcome::Stored);
        assert!(matches!(waiter.await.unwrap(), Outcome::Stored));
        assert!(
            matches!(table.join(&key("/a")), Role::Leader(_)),
            "a finished fetch is forgotten"
        );
    }

    #[tokio::test]
    async fn a_vanished_leader_releases_its_followers() {
        let table = Arc::new(InFlight::default());
        let Role::Leader(leader) = table.join(&key("/a")) else {
            panic!("the first asker leads")
        };
        let Role::Follower(receiver) = table.join(&key("/a")) else {
            panic!("the second asker follows")
        };
        drop(leader);
        assert!(matches!(wait(receiver, |_| true).await, Outcome::NotShared));
    }

    fn streaming(object_key: CacheKey, vary: &[&str]) -> Arc<Streaming> {
        Arc::new(Streaming {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            initial_age: Duration::ZERO,
            received_at: Instant::now(),
            vary: vary
                .iter()
                .map(|n| HeaderName::from_bytes(n.as_bytes()).unwrap())
                .collect(),
            object_key,
            body: Growing::new(None),
        })
    }

    #[tokio::test]
    async fn followers_read_along_or_wait_for_the_end() {
        let table = Arc::new(InFlight::default());
        let Role::Leader(leader) = table.join(&key("/a")) else {
            panic!("the first asker leads")
        };
        let Role::Follower(early) = table.join(&key("/a")) else {
            panic!("the second asker follows")
        };
        let reader = tokio::spawn(wait(early, |_| true));
        leader.publish(streaming(key("/a"), &[]));
        assert!(matches!(reader.await.unwrap(), Outcome::Streaming(_)));
        let Role::Follower(late) = table.join(&key("/a")) else {
            panic!("a streaming fetch is still in flight")
        };
        assert!(matches!(wait(late, |_| true).await, Outcome::Streaming(_)));
        let Role::Follower(picky) = table.join(&key("/a")) else {
            panic!("still in flight")
        };
        let picky = tokio::spawn(wait(picky, |_| false));
        tokio::task::yield_now().await;
        assert!(!picky.is_finished(), "a refused stream is not an outcome");
        leader.finish(Outcome::Stored);
        assert!(matches!(picky.await.unwrap(), Outcome::Stored));
    }

    #[tokio::test]
    async fn a_leader_vanishing_mid_stream_releases_waiting_followers() {
        let table = Arc::new(InFlight::default());
        let Role::Leader(leader) = table.join(&key("/a")) else {
            panic!("the first asker leads")
        };
        let Role::Follower(receiver) = table.join(&key("/a")) else {
            panic!("the second asker follows")
        };
        leader.publish(streaming(key("/a"), &[]));
        drop(leader);
        assert!(matches!(
            wait(receiver, |_| false).await,
            Outcome::NotShared
        ));
    }

    #[test]
    fn a_stream_serves_only_the_variant_it_is() {
        let primary = key("/v");
        let mut leader = HeaderMap::new();
        leader.insert("accept-language", "en".parse().unwrap());
        let names = [HeaderName::from_static("accept-language")];
        let stream = streaming(
            key::secondary(&primary, &names, &leader),
            &["accept-language"],
        );
        assert!(stream.selects(&primary, &leader));
        let mut other = HeaderMap::new();
        other.insert("accept-language", "fr".parse().unwrap());
        assert!(!stream.selects(&primary, &other));
        assert!(!stream.selects(&primary, &HeaderMap::new()));
        assert!(streaming(primary.clone(), &[]).selects(&primary, &other));
    }
}
