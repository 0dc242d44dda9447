//! Keeping every ACME certificate current: each slot is ordered when it has none, and again
//! once less than `renew_before` is left; a failed order is retried with a doubling delay
//! while the certificate in force keeps serving.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::AcmeCerts;
use super::certs::{Slot, SlotStatus};
use super::dns01::Dns01Publisher;
use super::order::{self, Issuer};
use super::store::{self, Store};
use crate::config::acme::AcmeConfig;

/// The first retry of a failed order or registration; doubled each time after.
const FIRST_RETRY: Duration = Duration::from_secs(15);
/// Let's Encrypt allows 5 failed validations per name an hour: never retry faster than
/// that once failures repeat.
const MAX_RETRY: Duration = Duration::from_secs(3600);
/// A sleep is cut to this and the due time computed again, so a clock step or a suspend
/// does not delay a renewal by months.
const RECHECK: Duration = Duration::from_secs(3600);

/// Runs the renewals of `certs` until `shutdown`.
pub async fn run(
    config: AcmeConfig,
    store: Store,
    certs: Arc<AcmeCerts>,
    shutdown: CancellationToken,
) {
    let mut retry = FIRST_RETRY;
    let account = loop {
        match order::account(&config, &store).await {
            Ok(account) => break account,
            Err(e) => {
                warn!("ACME account: {e}; trying again in {retry:?}");
                for slot in certs.slots() {
                    slot.update_status(|s| failed(s, &e, retry));
                }
                if sleep_or_stop(retry, &shutdown).await {
                    return;
                }
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    };
    let issuer = Arc::new(Issuer {
        account,
        challenge: config.challenge,
        certs: certs.clone(),
        dns: config.dns.as_ref().map(Dns01Publisher::new),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for slot in certs.slots() {
        tasks.spawn(keep_current(
            issuer.clone(),
            slot.clone(),
            store.clone(),
            config.renew_before,
            shutdown.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

async fn keep_current(
    issuer: Arc<Issuer>,
    slot: Arc<Slot>,
    store: Store,
    renew_before: Duration,
    shutdown: CancellationToken,
) {
    let mut retry = FIRST_RETRY;
    let mut retry_at: Option<SystemTime> = None;
    loop {
        let now = SystemTime::now();
        let at = retry_at.unwrap_or_else(|| due(&slot.status(), renew_before));
        slot.update_status(|s| s.next_attempt = Some(at));
        if let Ok(wait) = at.duration_since(now) {
            if sleep_or_stop(wait.min(RECHECK), &shutdown).await {
                return;
            }
            if at > SystemTime::now() {
                continue;
            }
        }
        info!(names = ?slot.names, "ordering a certificate");
        let outcome = tokio::select! {
            outcome = issuer.issue(&slot.names) => outcome,
            () = shutdown.cancelled() => return,
        };
        let installed = outcome.and_then(|issued| {
            let stored = store::certified(issued.chain.as_bytes(), issued.key.as_bytes())
                .map_err(|e| format!("the CA's certificate is unusable: {e}"))?;
            // Served even if it cannot be kept: the next start orders again.
            if let Err(e) = store.save_cert(&slot.names, &issued.chain, &issued.key) {
                warn!(names = ?slot.names, "keeping the new certificate: {e}");
            }
            Ok(stored)
        });
        match installed {
            Ok(stored) => {
                // The status first: whoever is served the new certificate sees it counted.
                slot.update_status(|s| {
                    s.not_before = Some(stored.not_before);
                    s.not_after = Some(stored.not_after);
                    s.issued += 1;
                    s.last_error = None;
                });
                slot.install(stored.key);
                info!(names = ?slot.names, not_after = stored.not_after, "certificate issued and in force");
                retry = FIRST_RETRY;
                retry_at = None;
            }
            Err(e) => {
                warn!(names = ?slot.names, "ACME order failed: {e}; trying again in {retry:?}");
                slot.update_status(|s| failed(s, &e, retry));
                retry_at = Some(SystemTime::now() + retry);
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

fn failed(status: &mut SlotStatus, error: &str, retry: Duration) {
    status.failures += 1;
    status.last_error = Some(error.to_string());
    status.next_attempt = Some(SystemTime::now() + retry);
}

/// When the slot's certificate should be renewed: at once while a stand-in serves, else
/// `renew_before` ahead of expiry but never in the first third of its life (a
/// `renew_before` longer than the CA's certificates would otherwise renew without end).
fn due(status: &SlotStatus, renew_before: Duration) -> SystemTime {
    let (Some(not_before), Some(not_after)) = (status.not_before, status.not_after) else {
        return SystemTime::now();
    };
    let renew_at = not_after.saturating_sub(renew_before.as_secs() as i64);
    let floor = not_before + (not_after - not_before) / 3;
    let at = renew_at.max(floor).max(0) as u64;
    UNIX_EPOCH + Duration::from_secs(at)
}

/// Sleeps `wait`; true when `shutdown` came first.
async fn sleep_or_stop(wait: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(wait) => false,
        () = shutdown.cancelled() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn status(not_before: i64, not_after: i64) -> SlotStatus {
        SlotStatus {
            not_before: Some(not_before),
            not_after: Some(not_after),
            ..SlotStatus::default()
        }
    }

    fn unix(at: SystemTime) -> i64 {
        at.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
    }

    #[test]
    fn renewal_is_due_renew_before_expiry_but_not_in_the_first_third() {
        let start = 1_800_000_000;
        let ninety_days = status(start, start + 90 * DAY);
        let thirty = Duration::from_secs(30 * 86_400);
        assert_eq!(unix(due(&ninety_days, thirty)), start + 60 * DAY);
        let too_long = Duration::from_secs(100 * 86_400);
        assert_eq!(unix(due(&ninety_days, too_long)), start + 30 * DAY);
        let stand_in = SlotStatus::default();
        assert!(due(&stand_in, thirty) <= SystemTime::now());
    }
}
