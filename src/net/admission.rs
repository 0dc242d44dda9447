//! Connection admission: who gets a TCP connection slot, so that no one client can deny
//! service to the rest.
//!
//! - **Per client**: at most `max_per_client` connections from one client; more are refused.
//!   A client is an IPv4 address, or an IPv6 /64: a single host is usually given a whole /64
//!   and can use any address in it, so counting per IPv6 address would let one machine
//!   multiply its share by 2^64. The price is that hosts sharing a /64 share one cap.
//! - **Globally**: at most `max_connections`. When full, the connection that has been idle the
//!   longest is evicted to make room (as NSD and Knot do), so idle connections cannot lock
//!   everyone out; only when every connection is busy with a query is the new one refused.
//!
//! Slots are taken and given back under a mutex, once per connection. Marking a connection
//! busy or idle around each query is one atomic operation, so the query path never locks.
//! What admission decided is counted ([`Admission::stats`]) for `/metrics`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// `ConnState::mark` while a query is being handled.
const BUSY: u64 = 0;
/// `ConnState::mark` once chosen for eviction; never changes after that.
const EVICTED: u64 = u64::MAX;

/// How many connections may be open, in total and per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_client: usize,
}

/// Hands out connection slots; cheap to clone, one per listener or shared by several.
#[derive(Debug, Clone)]
pub struct Admission {
    shared: Arc<Shared>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the client already has its maximum number of connections")]
    ClientLimit,
    #[error("every connection slot is busy with a query")]
    Full,
}

/// What admission has decided so far, and the connections open now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionStats {
    pub open: usize,
    pub admitted: u64,
    pub refused_client_limit: u64,
    pub refused_full: u64,
    /// Idle connections closed to make room.
    pub evicted: u64,
}

/// A connection's slot; given back when dropped.
#[derive(Debug)]
pub struct Ticket {
    shared: Arc<Shared>,
    id: u64,
    conn: Arc<ConnState>,
}

#[derive(Debug)]
struct Shared {
    limits: Limits,
    table: Mutex<Table>,
    /// Ticks handed out as connections go idle: a smaller tick has been idle longer.
    idle_clock: AtomicU64,
    /// Counted under the table's lock, read without it.
    admitted: AtomicU64,
    refused_client_limit: AtomicU64,
    refused_full: AtomicU64,
    evicted: AtomicU64,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    connections: HashMap<u64, (ClientKey, Arc<ConnState>)>,
    per_client: HashMap<ClientKey, usize>,
}

/// The unit the per-client cap counts: an IPv4 address or an IPv6 /64 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(u32),
    V6Prefix(u64),
}

/// What the connection is doing, shared between its task and the admission table.
#[derive(Debug)]
struct ConnState {
    /// [`BUSY`], [`EVICTED`], or the idle-clock tick at which the connection went idle.
    mark: AtomicU64,
    evicted: Notify,
}

// === impl Admission ===

impl Admission {
    pub fn new(limits: Limits) -> Admission {
        Admission {
            shared: Arc::new(Shared {
                limits,
                table: Mutex::new(Table::default()),
                idle_clock: AtomicU64::new(1),
                admitted: AtomicU64::new(0),
                refused_client_limit: AtomicU64::new(0),
                refused_full: AtomicU64::new(0),
                evicted: AtomicU64::new(0),
            }),
        }
    }

    /// A slot for a new connection from `peer`, idle until its first query; evicts the
    /// longest-idle connection when all slots are taken.
    ///
    /// # Errors
    /// The client is at its cap, or every slot is busy.
    pub fn admit(&self, peer: IpAddr) -> Result<Ticket, Refusal> {
        let key = ClientKey::of(peer);
        let mut table = self.shared.lock();
        let shared = &*self.shared;
        if table.per_client.get(&key).copied().unwrap_or(0) >= shared.limits.max_per_client {
            shared.refused_client_limit.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::ClientLimit);
        }
        if table.connections.len() >= shared.limits.max_connections {
            if !table.evict_longest_idle() {
                shared.refused_full.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::Full);
            }
            shared.evicted.fetch_add(1, Ordering::Relaxed);
        }
        shared.admitted.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(ConnState {
            mark: AtomicU64::new(self.shared.tick()),
            evicted: Notify::new(),
        });
        let id = table.next_id;
        table.next_id += 1;
        table.connections.insert(id, (key, conn.clone()));
        *table.per_client.entry(key).or_insert(0) += 1;
        Ok(Ticket {
            shared: self.shared.clone(),
            id,
            conn,
        })
    }

    /// Connections holding a slot now.
    pub fn open_connections(&self) -> usize {
        self.shared.lock().connections.len()
    }

    /// The counts so far and the connections open now.
    pub fn stats(&self) -> AdmissionStats {
        let load = |count: &AtomicU64| count.load(Ordering::Relaxed);
        AdmissionStats {
            open: self.open_connections(),
            admitted: load(&self.shared.admitted),
            refused_client_limit: load(&self.shared.refused_client_limit),
            refused_full: load(&self.shared.refused_full),
            evicted: load(&self.shared.evicted),
        }
    }
}

// === impl Shared ===

impl Shared {
    /// The table, even if a panicking thread left the mutex poisoned: every update to it is
    /// complete before anything that could panic.
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn tick(&self) -> u64 {
        self.idle_clock.fetch_add(1, Ordering::Relaxed)
    }
}

// === impl Table ===

impl Table {
    /// Evicts the connection idle the longest, freeing its slot at once (its task closes the
    /// socket when woken). False when every connection is busy.
    fn evict_longest_idle(&mut self) -> bool {
        // A connection may turn busy between the scan and the swap; then scan again. Each
        // retry means a query started, so this ends once the candidates run out.
        for _ in 0..self.connections.len() {
            let Some((&id, (_, conn), since)) = self
                .connections
                .iter()
                .filter_map(|(id, (key, conn))| {
                    let mark = conn.mark.load(Ordering::Acquire);
                    (mark != BUSY && mark != EVICTED).then_some((id, (key, conn), mark))
                })
                .min_by_key(|&(_, _, mark)| mark)
            else {
                return false;
            };
            if conn
                .mark
                .compare_exchange(since, EVICTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                conn.evicted.notify_one();
                self.release(id);
                return true;
            }
        }
        false
    }

    /// Gives back the slot of connection `id`, if it still holds one.
    fn release(&mut self, id: u64) {
        let Some((key, _)) = self.connections.remove(&id) else {
            return;
        };
        if let Some(count) = self.per_client.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                self.per_client.remove(&key);
            }
        }
    }
}

// === impl ClientKey ===

impl ClientKey {
    fn of(peer: IpAddr) -> ClientKey {
        match peer.to_canonical() {
            IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => ClientKey::V6Prefix((u128::from(v6) >> 64) as u64),
        }
    }
}

// === impl Ticket ===

impl Ticket {
    /// Marks the connection busy: a query has begun and the connection must not be evicted.
    /// False when it was evicted already; then the caller closes it.
    pub fn start_query(&self) -> bool {
        let mark = self.conn.mark.load(Ordering::Acquire);
        mark != EVICTED
            && self
                .conn
                .mark
                .compare_exchange(mark, BUSY, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Marks the connection idle again: the query is answered.
    pub fn finish_query(&self) {
        let tick = self.shared.tick();
        // Only a busy connection goes idle; an evicted one stays evicted.
        let _ = self
            .conn
            .mark
            .compare_exchange(BUSY, tick, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Completes once the connection has been evicted to make room for another.
    pub async fn evicted(&self) {
        self.conn.evicted.notified().await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.shared.lock().release(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_connections: usize, max_per_client: usize) -> Admission {
        Admission::new(Limits {
            max_connections,
            max_per_client,
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn a_client_at_its_cap_is_refused_while_others_are_admitted() {
        let admission = admission(10, 2);
        let held: Vec<_> = (0..2)
            .map(|_| admission.admit(ip("192.0.2.1")).expect("within the cap"))
            .collect();
        assert_eq!(
            admission.admit(ip("192.0.2.1")).err(),
            Some(Refusal::ClientLimit)
        );
        assert!(admission.admit(ip("192.0.2.2")).is_ok());
        drop(held);
        assert!(admission.admit(ip("192.0.2.1")).is_ok(), "slots come back");
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let admission = admission(10, 1);
        let _first = admission.admit(ip("2001:db8:1:2::1")).expect("first");
        assert_eq!(
            admission.admit(ip("2001:db8:1:2:ffff::9")).err(),
            Some(Refusal::ClientLimit),
            "same /64"
        );
        assert!(
            admission.admit(ip("2001:db8:1:3::1")).is_ok(),
            "another /64"
        );
    }

    #[tokio::test]
    async fn when_full_the_longest_idle_connection_is_evicted() {
        let admission = admission(3, 3);
        let oldest = admission.admit(ip("192.0.2.1")).expect("1");
        let busy = admission.admit(ip("192.0.2.2")).expect("2");
        let newer = admission.admit(ip("192.0.2.3")).expect("3");
        // The oldest goes busy, then idle again: now it is the most recently idle.
        assert!(oldest.start_query());
        oldest.finish_query();
        assert!(busy.start_query());
        let fresh = admission.admit(ip("192.0.2.4")).expect("room made");
        tokio::time::timeout(std::time::Duration::from_secs(1), newer.evicted())
            .await
            .expect("the longest idle one is told");
        assert!(
            !newer.start_query(),
            "an evicted connection cannot start a query"
        );
        assert!(oldest.start_query(), "the others are untouched");
        assert_eq!(admission.open_connections(), 3);
        drop(newer);
        assert_eq!(
            admission.open_connections(),
            3,
            "an evicted slot is freed only once"
        );
        // Everyone busy now: a newcomer is refused rather than cutting a query short.
        assert!(fresh.start_query());
        assert_eq!(admission.admit(ip("192.0.2.5")).err(), Some(Refusal::Full));
        let stats = admission.stats();
        assert_eq!(
            stats,
            AdmissionStats {
                open: 3,
                admitted: 4,
                refused_client_limit: 0,
                refused_full: 1,
                evicted: 1,
            }
        );
    }
}
