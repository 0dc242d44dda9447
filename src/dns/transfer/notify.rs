//! NOTIFY (RFC 1996): telling a zone's secondaries that its serial changed, so they ask for
//! the new version at once instead of at their next SOA refresh.
//!
//! Sent at start and after every reload or update that changes a zone's serial, over UDP
//! from an ephemeral port, to each `notify` target, signed when the target names a TSIG key
//! (and then only a reply signed with that key counts as its answer). A target that does not
//! answer is asked again after 1, 2, 4 and 8 s (five tries in all, §3.6 leaves the schedule
//! to us); a later change to the same zone does not wait for an earlier one's retries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{LowerName, RecordType};
use tokio::net::UdpSocket;
use tracing::{debug, info, warn};

use super::unix_now;
use crate::dns::snapshot::Snapshot;
use crate::dns::tsig::{self, ResponseError, TsigKey, TsigRcode};
use crate::dns::zone::Zone;

/// Tries per target.
const TRIES: u32 = 5;
/// Wait for the first answer; doubled after each try.
const FIRST_WAIT: Duration = Duration::from_secs(1);

/// Sends NOTIFY for every zone of `new` whose serial differs from `old`'s (all of them at
/// start, when there is no `old`) to its targets, in the background.
pub fn changed_zones(old: Option<&Snapshot>, new: &Snapshot) {
    for zone in new.catalog.zones() {
        if zone.transfer.notify.is_empty() {
            continue;
        }
        let before = old.and_then(|old| old.catalog.find(&LowerName::new(&zone.origin)));
        let unchanged = before
            .is_some_and(|before| before.origin == zone.origin && before.serial() == zone.serial());
        if unchanged {
            continue;
        }
        for target in &zone.transfer.notify {
            let addr = target.addr;
            // The config check makes sure a named key exists.
            let key = (target.key.as_ref()).and_then(|name| new.keyring.get(name).cloned());
            let message = notify_message(zone);
            let origin = zone.origin.clone();
            let serial = zone.serial();
            tokio::spawn(async move {
                match send(addr, &message, key).await {
                    Ok((tries, ResponseCode::NoError)) => {
                        info!("NOTIFY {origin} serial {serial} to {addr}: answered (try {tries})")
                    }
                    Ok((_, rcode)) => {
                        warn!("NOTIFY {origin} serial {serial} to {addr}: answered {rcode}")
                    }
                    Err(e) => warn!("NOTIFY {origin} serial {serial} to {addr}: {e}"),
                }
            });
        }
    }
}

/// The NOTIFY for `zone`: its SOA as the question and, as a hint, in the answer (§3.7).
fn notify_message(zone: &Zone) -> Message {
    let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Notify);
    message.metadata.authoritative = true;
    message.add_query(Query::query(zone.origin.clone(), RecordType::SOA));
    message.add_answer(zone.soa.records[0].clone());
    message
}

/// Sends `message` (signed with `key`, if any) to `target` until it answers (§3.6: a reply
/// with the same ID, opcode NOTIFY and QR set, and signed when we signed); the try it
/// answered, and its rcode.
async fn send(
    target: SocketAddr,
    message: &Message,
    key: Option<Arc<TsigKey>>,
) -> Result<(u32, ResponseCode), String> {
    let mut bytes = message
        .to_vec()
        .map_err(|e| format!("cannot encode: {e}"))?;
    let signed = match key {
        Some(key) => {
            let mac = tsig::sign_request(&key, &mut bytes, unix_now())
                .map_err(|e| format!("cannot sign: {e}"))?;
            Some((key, mac))
        }
        None => None,
    };
    let local = match target.ip() {
        IpAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        IpAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("cannot bind a socket: {e}"))?;
    socket
        .connect(target)
        .await
        .map_err(|e| format!("cannot reach: {e}"))?;
    let mut wait = FIRST_WAIT;
    let mut buf = vec![0u8; 4096];
    for attempt in 1..=TRIES {
        if let Err(e) = socket.send(&bytes).await {
            // Refused (nothing listens yet): wait as for a lost answer, then try again.
            debug!("NOTIFY to {target}: {e}");
        }
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Ok(len)) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            let reply = &buf[..len];
            if !answers(reply, message.metadata.id) {
                continue;
            }
            match &signed {
                None => return Ok((attempt, rcode(reply))),
                Some((key, mac)) => match tsig::verify_response(key, *mac, reply, unix_now()) {
                    Ok(()) => return Ok((attempt, rcode(reply))),
                    Err(ResponseError::Rejected(code)) => {
                        let error =
                            TsigRcode::from_code(code).map_or("an error", TsigRcode::as_str);
                        return Err(format!("the secondary rejected our TSIG with {error}"));
                    }
                    // Not signed by the secondary we share the key with: not its answer.
                    Err(e) => debug!("NOTIFY to {target}: a reply that does not verify: {e}"),
                },
            }
        }
        tokio::time::sleep_until(deadline).await;
        wait *= 2;
    }
    Err(format!("no answer after {TRIES} tries"))
}

/// The rcode of a reply [`answers`] accepted (the header's four bits: NOTIFY answers carry
/// no extended rcode).
fn rcode(reply: &[u8]) -> ResponseCode {
    ResponseCode::from(0, reply[3] & 0x0f)
}

/// Whether `reply` is the answer to our NOTIFY `id` (its rcode aside: a secondary that
/// refuses says so, and asking again would not change its mind).
fn answers(reply: &[u8], id: u16) -> bool {
    reply.len() >= 12
        && u16::from_be_bytes([reply[0], reply[1]]) == id
        && reply[2] & 0x80 != 0
        && (reply[2] >> 3) & 0x0f == u8::from(OpCode::Notify)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_notify_reply_with_our_id_answers() {
        let mut reply = [0u8; 12];
        reply[0..2].copy_from_slice(&7u16.to_be_bytes());
        reply[2] = 0x80 | (4 << 3);
        assert!(answers(&reply, 7));
        assert!(!answers(&reply, 8));
        reply[2] = 0x80;
        assert!(!answers(&reply, 7), "a QUERY response is not the answer");
        reply[2] = 4 << 3;
        assert!(!answers(&reply, 7), "a request is not an answer");
        assert!(!answers(&reply[..11], 7));
    }
}
