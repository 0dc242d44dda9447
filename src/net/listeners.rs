//! Listener sets that follow the config across reloads.
//!
//! A reload first binds every address the new config adds ([`ListenerSet::stage`]); one that
//! cannot be bound fails the reload as a whole, and the sockets bound so far are closed with
//! the staged set. Once the reload commits, the new listeners are handed to the server's
//! accept loops ([`ListenerSet::serve`]) and the removed ones are retired: they stop
//! accepting at once and close, while the connections they accepted finish as they would
//! have (drained, not cut). Addresses are compared as configured, so `127.0.0.1:0` kept in
//! a config keeps its listener and the port the kernel chose.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// An address that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: io::Error,
}

/// The listeners of one kind (say, the CDN's HTTPS ones), as the config in force lists them.
pub struct ListenerSet<L> {
    /// What the log and reload answers call these listeners ("https", "udp+tcp", ...).
    kind: &'static str,
    slots: Mutex<Vec<Slot>>,
    /// Cancelled at shutdown; every listener's retire token is its child.
    root: CancellationToken,
    handoff: mpsc::UnboundedSender<Handoff<L>>,
    /// Taken once by [`ListenerSet::serve`]; listeners bound before it runs wait here.
    incoming: Mutex<Option<mpsc::UnboundedReceiver<Handoff<L>>>>,
}

struct Slot {
    configured: SocketAddr,
    bound: SocketAddr,
    retire: CancellationToken,
}

/// A bound listener on its way to an accept loop.
struct Handoff<L> {
    listener: L,
    /// Cancelled when a reload removes the address, or at shutdown.
    retire: CancellationToken,
}

/// The new addresses of a reload, bound and not yet serving; dropped, they close again.
pub struct StagedListeners<L> {
    set: Arc<ListenerSet<L>>,
    /// The new config's addresses in order, with a socket for those not served yet.
    wanted: Vec<(SocketAddr, Option<(L, SocketAddr)>)>,
}

/// What a reload changed in a set, as `<kind> <bound address>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListenerChanges {
    pub added: Vec<String>,
    /// Not accepting any more; their open connections finish first.
    pub removed: Vec<String>,
}

impl ListenerChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// One line per change: `listener https 127.0.0.1:8443 added`.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        (self.added.iter().map(|l| format!("listener {l} added")))
            .chain(self.removed.iter().map(|l| format!("listener {l} removed")))
    }

    /// Adds `other`'s changes to these.
    pub fn extend(&mut self, other: ListenerChanges) {
        self.added.extend(other.added);
        self.removed.extend(other.removed);
    }
}

impl<L: Send + 'static> ListenerSet<L> {
    /// Binds every address of `addrs` with `bind`, which returns the listener and the
    /// address it got (the port filled in when the config said 0).
    ///
    /// # Errors
    /// The first address that cannot be bound; those bound before it are closed.
    pub fn bind(
        kind: &'static str,
        addrs: &[SocketAddr],
        bind: impl Fn(SocketAddr) -> io::Result<(L, SocketAddr)>,
    ) -> Result<Arc<ListenerSet<L>>, BindError> {
        let (handoff, incoming) = mpsc::unbounded_channel();
        let set = Arc::new(ListenerSet {
            kind,
            slots: Mutex::new(Vec::new()),
            root: CancellationToken::new(),
            handoff,
            incoming: Mutex::new(Some(incoming)),
        });
        set.stage(addrs, bind)?.commit();
        Ok(set)
    }

    /// The addresses listened on now, in config order.
    pub fn bound(&self) -> Vec<SocketAddr> {
        self.slots().iter().map(|slot| slot.bound).collect()
    }

    /// Binds the addresses of `addrs` not listened on yet; nothing in force changes.
    ///
    /// # Errors
    /// The first address that cannot be bound; the reload must fail as a whole.
    pub fn stage(
        self: &Arc<Self>,
        addrs: &[SocketAddr],
        bind: impl Fn(SocketAddr) -> io::Result<(L, SocketAddr)>,
    ) -> Result<StagedListeners<L>, BindError> {
        let serving: Vec<SocketAddr> = self.slots().iter().map(|s| s.configured).collect();
        let mut wanted = Vec::with_capacity(addrs.len());
        for &addr in addrs {
            let socket = if serving.contains(&addr) {
                None
            } else {
                Some(bind(addr).map_err(|source| BindError { addr, source })?)
            };
            wanted.push((addr, socket));
        }
        Ok(StagedListeners {
            set: self.clone(),
            wanted,
        })
    }

    /// Runs `serve` on every listener of the set, those bound now and those later reloads
    /// add, until `shutdown`; then retires them all and returns once every `serve` has.
    /// `serve` gets the listener and the token that retires it, and should stop accepting
    /// when that is cancelled (and finish its open connections as it sees fit).
    ///
    /// # Panics
    /// When called twice for one set.
    pub async fn serve<F>(
        &self,
        shutdown: CancellationToken,
        serve: impl Fn(L, CancellationToken) -> F,
    ) where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut incoming = self
            .incoming
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .expect("a listener set is served once");
        let mut running = JoinSet::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                handoff = incoming.recv() => match handoff {
                    Some(handoff) => {
                        running.spawn(serve(handoff.listener, handoff.retire));
                    }
                    None => break,
                },
            }
            while running.try_join_next().is_some() {}
        }
        self.root.cancel();
        while running.join_next().await.is_some() {}
    }
}

impl<L> ListenerSet<L> {
    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<L> StagedListeners<L> {
    /// The first address the set will listen on once committed.
    pub fn first_bound(&self) -> Option<SocketAddr> {
        let (configured, socket) = self.wanted.first()?;
        match socket {
            Some((_, bound)) => Some(*bound),
            None => (self.set.slots())
                .iter()
                .find(|slot| slot.configured == *configured)
                .map(|slot| slot.bound),
        }
    }

    /// Serves the new addresses and retires the ones the config no longer lists; what
    /// changed.
    pub fn commit(self) -> ListenerChanges {
        let set = &self.set;
        let mut changes = ListenerChanges::default();
        let mut slots = set.slots();
        let mut old = std::mem::take(&mut *slots);
        for (configured, socket) in self.wanted {
            match socket {
                Some((listener, bound)) => {
                    let retire = set.root.child_token();
                    info!("listening on {} {bound}", set.kind);
                    changes.added.push(format!("{} {bound}", set.kind));
                    // The receiver is gone only once the server has stopped; the socket
                    // then closes with the handoff.
                    let _ = set.handoff.send(Handoff {
                        listener,
                        retire: retire.clone(),
                    });
                    slots.push(Slot {
                        configured,
                        bound,
                        retire,
                    });
                }
                None => {
                    let at = old
                        .iter()
                        .position(|slot| slot.configured == configured)
                        .expect("staged against the slots in force");
                    slots.push(old.swap_remove(at));
                }
            }
        }
        for gone in old {
            info!(
                "no longer listening on {} {} (open connections finish first)",
                set.kind, gone.bound
            );
            changes.removed.push(format!("{} {}", set.kind, gone.bound));
            gone.retire.cancel();
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(addr: SocketAddr) -> io::Result<(std::net::TcpListener, SocketAddr)> {
        let listener = std::net::TcpListener::bind(addr)?;
        let bound = listener.local_addr()?;
        Ok((listener, bound))
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn a_kept_address_keeps_its_socket_a_new_one_is_bound_a_removed_one_retired() {
        let set = ListenerSet::bind("http", &addrs(&["127.0.0.1:0"]), bind).unwrap();
        let kept = set.bound()[0];
        let staged = set
            .stage(&addrs(&["127.0.0.2:0", "127.0.0.1:0"]), bind)
            .unwrap();
        assert_eq!(set.bound(), [kept], "nothing changes before the commit");
        let changes = staged.commit();
        let bound = set.bound();
        assert_eq!(bound[1], kept, "127.0.0.1:0 kept the port it got");
        assert_eq!(changes.added, [format!("http {}", bound[0])]);
        assert!(changes.removed.is_empty());

        let retire = set.slots()[1].retire.clone();
        let changes = set.stage(&addrs(&["127.0.0.2:0"]), bind).unwrap().commit();
        assert_eq!(changes.removed, [format!("http {kept}")]);
        assert!(changes.added.is_empty());
        assert!(
            retire.is_cancelled(),
            "the removed listener is told to stop"
        );
        assert_eq!(set.bound(), [bound[0]]);
    }

    #[test]
    fn an_address_that_cannot_be_bound_fails_the_stage_and_changes_nothing() {
        let set = ListenerSet::bind("http", &[], bind).unwrap();
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = held.local_addr().unwrap();
        let failed = set.stage(&[addrs(&["127.0.0.3:0"])[0], taken], bind);
        let error = failed.err().expect("the taken address fails");
        assert_eq!(error.addr, taken);
        assert!(set.bound().is_empty());
    }
}
