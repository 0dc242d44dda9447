//! Request collapsing: concurrent misses for one key make one origin request; the others
//! wait for its outcome (pingora's cache lock, in miniature).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::key::CacheKey;

/// What the one fetch produced, for those who waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored: look it up again (Vary may select another variant for you).
    Stored,
    /// Not storable (or failed): each waiter asks the origin itself.
    NotShared,
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
            if current.is_none() {
                *current = Some(Outcome::NotShared);
                true
            } else {
                false
            }
        });
    }
}

/// Waits for the leader's outcome; a vanished leader counts as `NotShared`.
pub async fn wait(mut receiver: watch::Receiver<Option<Outcome>>) -> Outcome {
    loop {
        if let Some(outcome) = *receiver.borrow_and_update() {
            return outcome;
        }
        if receiver.changed().await.is_err() {
            return (*receiver.borrow()).unwrap_or(Outcome::NotShared);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn key(path: &str) -> CacheKey {
        CacheKey {
            distribution: 0,
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
        let waiter = tokio::spawn(wait(receiver));
        leader.finish(Outcome::Stored);
        assert_eq!(waiter.await.unwrap(), Outcome::Stored);
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
        assert_eq!(wait(receiver).await, Outcome::NotShared);
    }
}
