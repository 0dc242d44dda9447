//! Route 53 routing policies: which of a group's record sets answers this client now.
//!
//! Every policy is a pure choice over (client, health flags, locations) and follows Route 53's
//! health rule: unhealthy sets are skipped, and when every candidate is unhealthy the choice is
//! made as if all were healthy (an answer, never an empty one because checks are down). Each
//! decision carries the EDNS Client Subnet scope it holds for (RFC 7871 §7.2.1).

mod cidr;
mod failover;
mod geolocation;
mod latency;
mod multivalue;
mod weighted;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::rr::RecordType;

use super::zone::Rrset;
use crate::config::dns::{CidrCollection, FailoverRole, GeoTarget, RoutingRule};
use crate::geo::{GeoDb, Located, Region};
use crate::health::HealthTable;

/// Route 53 returns at most this many records for a multivalue answer.
pub const MULTIVALUE_LIMIT: usize = 8;

/// The sets of one name and type, with their policy.
#[derive(Debug)]
pub struct RoutedGroup {
    pub rtype: RecordType,
    pub members: Vec<Member>,
}

/// One routed record set.
#[derive(Debug)]
pub struct Member {
    pub set_id: String,
    pub rrset: Arc<Rrset>,
    pub health_check: Option<usize>,
    pub rule: RoutingRule,
    /// Times this set was chosen for an answer (`edgewise_dns_routed_answers_total`), shared
    /// with the same set of the snapshots before and after.
    pub answered: Arc<AtomicU64>,
}

/// Who asks: the EDNS Client Subnet address when used, else the query's source address.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub addr: IpAddr,
    /// Bits of `addr` that are meaningful: the ECS source prefix, or the full length.
    pub prefix_len: u8,
}

/// What decisions read besides the group: live health and where things are.
#[derive(Clone, Copy)]
pub struct RoutingEnv<'a> {
    pub health: &'a HealthTable,
    pub geo: &'a GeoDb,
    pub regions: &'a [Region],
    pub collections: &'a [CidrCollection],
}

/// The sets chosen and the client-subnet scope the choice holds for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub chosen: Chosen,
    pub scope: u8,
}

/// Indices into the group's members, in answer order. Only multivalue allocates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chosen {
    /// No set matches: NODATA.
    None,
    One(usize),
    Many(Vec<usize>),
}

impl Chosen {
    pub fn first(&self) -> Option<usize> {
        match self {
            Chosen::None => None,
            Chosen::One(i) => Some(*i),
            Chosen::Many(list) => list.first().copied(),
        }
    }

    pub fn as_slice(&self) -> &[usize] {
        match self {
            Chosen::None => &[],
            Chosen::One(i) => std::slice::from_ref(i),
            Chosen::Many(list) => list,
        }
    }
}

// === impl RoutedGroup ===

impl RoutedGroup {
    /// Chooses the answer for `client`.
    pub fn decide(&self, client: &Client, env: &RoutingEnv) -> Decision {
        let health = Health {
            members: &self.members,
            table: env.health,
        };
        match self.members.first().map(|m| &m.rule) {
            Some(RoutingRule::Weighted(_)) => weighted::pick(&self.members, &health),
            Some(RoutingRule::Failover(_)) => failover::pick(&self.members, &health),
            Some(RoutingRule::Latency(_)) => latency::pick(&self.members, &health, client, env),
            Some(RoutingRule::Geo(_)) => geolocation::pick(&self.members, &health, client, env),
            Some(RoutingRule::Cidr { .. }) => cidr::pick(&self.members, &health, client, env),
            Some(RoutingRule::Multivalue) => multivalue::pick(&health),
            None => one(None, 0),
        }
    }

    /// Counts an answer made of the `chosen` sets.
    pub fn count(&self, chosen: &Chosen) {
        for &i in chosen.as_slice() {
            self.members[i].answered.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The sets a zone transfer carries for this group: see [`transfer_choice`].
    pub fn transfer_members(&self) -> Vec<&Member> {
        let rules: Vec<&RoutingRule> = self.members.iter().map(|m| &m.rule).collect();
        (transfer_choice(&rules).into_iter())
            .map(|i| &self.members[i])
            .collect()
    }

    /// Whether every decision picks exactly one set or none (all but multivalue), so the
    /// answer for each set can be encoded ahead of time.
    pub fn picks_one(&self) -> bool {
        !matches!(
            self.members.first().map(|m| &m.rule),
            Some(RoutingRule::Multivalue)
        )
    }
}

/// Which of a group's sets (given by their `rules`, in config order) a zone transfer
/// carries, fixed whatever health and clients say (a secondary has no policy to apply): the
/// failover primary, the geolocation or CIDR default (`*`) set, the heaviest weighted set
/// (the first of equals), the first latency set in config order, or every multivalue set.
/// Without a default, the first set in config order. The config check names the same sets
/// in its warning about transferable zones with routed sets.
pub fn transfer_choice(rules: &[&RoutingRule]) -> Vec<usize> {
    let first_where = |wanted: fn(&RoutingRule) -> bool| {
        (rules.iter().position(|rule| wanted(rule))).or((!rules.is_empty()).then_some(0))
    };
    let chosen = match rules.first() {
        Some(RoutingRule::Multivalue) => return (0..rules.len()).collect(),
        Some(RoutingRule::Weighted(_)) => {
            let weight = |rule: &RoutingRule| match rule {
                RoutingRule::Weighted(weight) => *weight,
                _ => 0,
            };
            (0..rules.len()).rev().max_by_key(|&i| weight(rules[i]))
        }
        Some(RoutingRule::Failover(_)) => {
            first_where(|rule| matches!(rule, RoutingRule::Failover(FailoverRole::Primary)))
        }
        Some(RoutingRule::Geo(_)) => {
            first_where(|rule| matches!(rule, RoutingRule::Geo(GeoTarget::Default)))
        }
        Some(RoutingRule::Cidr { .. }) => {
            first_where(|rule| matches!(rule, RoutingRule::Cidr { location: None, .. }))
        }
        Some(RoutingRule::Latency(_)) | None => first_where(|_| false),
    };
    chosen.into_iter().collect()
}

/// Health of a group's members, read from the lock-free table when asked.
struct Health<'a> {
    members: &'a [Member],
    table: &'a HealthTable,
}

impl Health<'_> {
    fn is_healthy(&self, index: usize) -> bool {
        self.members[index]
            .health_check
            .is_none_or(|c| self.table.is_healthy(c))
    }

    /// Route 53's rule: candidates are the healthy members, or all when none is healthy.
    fn candidates(&self) -> impl Iterator<Item = usize> + Clone + '_ {
        let count = self.members.len();
        let any_healthy = (0..count).any(|i| self.is_healthy(i));
        (0..count).filter(move |&i| !any_healthy || self.is_healthy(i))
    }
}

/// A decision for one member, or none.
fn one(index: Option<usize>, scope: u8) -> Decision {
    Decision {
        chosen: index.map_or(Chosen::None, Chosen::One),
        scope,
    }
}

/// Locates the client; the scope is the located network's prefix, or the client's own
/// prefix when nothing knows the address.
fn locate(client: &Client, env: &RoutingEnv) -> (Option<Located>, u8) {
    match env.geo.locate(client.addr) {
        Some(located) => {
            let scope = located.prefix_len;
            (Some(located), scope)
        }
        None => (None, client.prefix_len),
    }
}
