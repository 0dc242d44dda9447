//! dns-01 (RFC 8555 §8.4) through an authoritative server that takes RFC 2136 updates
//! signed with TSIG (edgewise-dns, BIND, Knot): the TXT record `_acme-challenge.<name>` is
//! added, seen on the server, and deleted again by its value, so two orders (or a wildcard
//! and its base, which share the name) never remove each other's records.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::config::acme::Dns01;
use crate::dns::tsig::{self, TsigKey};

/// Longest one exchange with the server may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Short, so a record left behind by a crash is not served for long.
const RECORD_TTL: u32 = 60;
/// How long an added record may take to show in the server's answers.
const VISIBLE_WITHIN: Duration = Duration::from_secs(30);

/// Adds and removes challenge records on one server with one key.
pub struct Dns01Publisher {
    server: std::net::SocketAddr,
    key: Arc<TsigKey>,
}

impl Dns01Publisher {
    pub fn new(config: &Dns01) -> Dns01Publisher {
        Dns01Publisher {
            server: config.server,
            key: Arc::new(TsigKey::new(
                &config.key.name,
                config.key.algorithm,
                config.key.secret.bytes(),
            )),
        }
    }

    /// Publishes `value` at the challenge name of `identifier` (a wildcard's is its base's)
    /// and waits, bounded, until the server answers with it.
    ///
    /// # Errors
    /// The zone cannot be found, the update is refused, or the record does not show.
    pub async fn add(&self, identifier: &str, value: &str) -> Result<(), String> {
        let name = challenge_name(identifier)?;
        let zone = self.zone_of(&name).await?;
        self.update(&zone, record(&name, value, DNSClass::IN, RECORD_TTL))
            .await?;
        let deadline = tokio::time::Instant::now() + VISIBLE_WITHIN;
        loop {
            if self.txt_values(&name).await?.iter().any(|v| v == value) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "{name} TXT did not show on {} within {VISIBLE_WITHIN:?}",
                    self.server
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Deletes the record [`add`](Self::add) published (RFC 2136 §2.5.4: class NONE).
    ///
    /// # Errors
    /// The zone cannot be found or the update is refused.
    pub async fn remove(&self, identifier: &str, value: &str) -> Result<(), String> {
        let name = challenge_name(identifier)?;
        let zone = self.zone_of(&name).await?;
        self.update(&zone, record(&name, value, DNSClass::NONE, 0))
            .await
    }

    /// The zone holding `name`: the SOA owner in the server's answer to `name SOA` (the
    /// answer at an apex, the authority section below one).
    async fn zone_of(&self, name: &Name) -> Result<Name, String> {
        let reply = self.exchange(query(name, RecordType::SOA), false).await?;
        reply
            .answers
            .iter()
            .chain(&reply.authorities)
            .find(|r| r.record_type() == RecordType::SOA)
            .map(|r| r.name.clone())
            .ok_or_else(|| format!("{} is not authoritative for {name}", self.server))
    }

    async fn txt_values(&self, name: &Name) -> Result<Vec<String>, String> {
        let reply = self.exchange(query(name, RecordType::TXT), false).await?;
        Ok(reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    async fn update(&self, zone: &Name, change: Record) -> Result<(), String> {
        let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Update);
        message.add_query(Query::query(zone.clone(), RecordType::SOA));
        message.add_authority(change);
        let reply = self.exchange(message, true).await?;
        match reply.metadata.response_code {
            ResponseCode::NoError => Ok(()),
            code => Err(format!(
                "{} refused the update of zone {zone}: {code}",
                self.server
            )),
        }
    }

    /// Sends `message` over TCP (signed when `sign`) and reads the answer, checking its
    /// TSIG when the request had one.
    async fn exchange(&self, message: Message, sign: bool) -> Result<Message, String> {
        let server = self.server;
        let mut bytes = message
            .to_vec()
            .map_err(|e| format!("cannot encode a DNS message: {e}"))?;
        let mac = if sign {
            Some(
                tsig::sign_request(&self.key, &mut bytes, unix_now())
                    .map_err(|e| format!("cannot sign the update: {e}"))?,
            )
        } else {
            None
        };
        let talk = async {
            let mut stream = TcpStream::connect(server).await?;
            let len = u16::try_from(bytes.len()).map_err(std::io::Error::other)?;
            stream.write_all(&len.to_be_bytes()).await?;
            stream.write_all(&bytes).await?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await?;
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut reply).await?;
            Ok::<_, std::io::Error>(reply)
        };
        let reply = tokio::time::timeout(EXCHANGE_TIMEOUT, talk)
            .await
            .map_err(|_| format!("{server} did not answer within {EXCHANGE_TIMEOUT:?}"))?
            .map_err(|e| format!("talking to {server}: {e}"))?;
        if let Some(mac) = mac {
            tsig::verify_response(&self.key, mac, &reply, unix_now())
                .map_err(|e| format!("{server}'s answer to the update: {e}"))?;
        }
        let parsed =
            Message::from_vec(&reply).map_err(|e| format!("{server} sent a bad answer: {e}"))?;
        if parsed.metadata.id != message.metadata.id {
            return Err(format!("{server} answered another message"));
        }
        Ok(parsed)
    }
}

/// `_acme-challenge.` and the identifier without its wildcard label.
fn challenge_name(identifier: &str) -> Result<Name, String> {
    let base = identifier.strip_prefix("*.").unwrap_or(identifier);
    Name::from_ascii(format!("_acme-challenge.{base}."))
        .map_err(|e| format!("{identifier} gives no challenge name: {e}"))
}

fn query(name: &Name, rtype: RecordType) -> Message {
    let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    message.add_query(Query::query(name.clone(), rtype));
    message
}

fn record(name: &Name, value: &str, class: DNSClass, ttl: u32) -> Record {
    let mut record = Record::from_rdata(
        name.clone(),
        ttl,
        RData::TXT(TXT::new(vec![value.to_string()])),
    );
    record.dns_class = class;
    record
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_shares_its_base_name_challenge() {
        assert_eq!(
            challenge_name("*.home.test").unwrap(),
            challenge_name("home.test").unwrap()
        );
        assert_eq!(
            challenge_name("www.home.test").unwrap().to_string(),
            "_acme-challenge.www.home.test."
        );
    }
}
