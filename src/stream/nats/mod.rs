//! The stream log kept by a NATS JetStream cluster (`[stream] backend = "nats"`): the
//! cluster replicates and orders the records; each edgewise-cdn in front of it keeps a
//! mirror in its local log, which every reader (GetRecords, deliveries, analytics, the
//! console) reads as it reads a local stream.
//!
//! Each Kinesis shard is a JetStream stream of its own (`EW_<name>_<shard>`, one subject,
//! file storage, `replicas` copies, the stream's retention as max age): JetStream numbers a
//! stream's messages 1, 2, 3..., so a shard's offsets are its sequence minus one, gapless
//! as the local log's are, and the same on every process. A put is acknowledged once
//! JetStream's publish ack says a quorum has it, and once this process's mirror holds it, so
//! a client reads what it just wrote from the same process.

mod mirror;
mod names;
mod publish;
mod resume;
mod secret;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::nats::{NatsAuth, NatsConfig};
use crate::stream::log::{Log, LogError, MAX_DATA_BYTES, MAX_KEY_BYTES, Stream};

pub use publish::Publisher;

/// How often a start that waits for its mirror to catch up says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What a message holds beyond the record's data: the key length (2 bytes) and the key.
const MAX_OVERHEAD: usize = 2 + MAX_KEY_BYTES;

/// A connection to the cluster.
pub struct Cluster {
    js: jetstream::Context,
    replicas: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to NATS at {servers}: {detail}")]
    Connect { servers: String, detail: String },
    #[error("JetStream stream {name}: {detail}")]
    Stream { name: String, detail: String },
}

impl Cluster {
    /// Connects (failing over among `servers`) and checks that JetStream answers.
    pub async fn connect(config: &NatsConfig) -> Result<Cluster, NatsError> {
        let servers = config.servers.join(", ");
        let fail = |detail: String| NatsError::Connect {
            servers: servers.clone(),
            detail,
        };
        // No retry of the first connection: a wrong password or certificate is reported
        // and the process exits, rather than waiting for ever without a word.
        let options = async_nats::ConnectOptions::new()
            .name("edgewise-cdn")
            .connection_timeout(Duration::from_secs(5));
        let options = connect_options(options, config).await.map_err(fail)?;
        let client = tokio::time::timeout(Duration::from_secs(10), async {
            let client = options.connect(config.servers.as_slice()).await?;
            // A round trip: the server's INFO is in by then.
            client.flush().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(client)
        })
        .await
        .map_err(|_| fail("no server answered within 10 s".into()))?
        .map_err(|e| fail(e.to_string()))?;
        let needed = MAX_DATA_BYTES + MAX_OVERHEAD;
        let max_payload = client.server_info().max_payload;
        if max_payload < needed {
            return Err(fail(format!(
                "the servers take messages of at most {max_payload} bytes, and a Kinesis \
                 record needs up to {needed}: set max_payload: 2MB in nats-server's config"
            )));
        }
        let js = jetstream::new(client);
        Ok(Cluster {
            js,
            replicas: config.replicas,
        })
    }

    /// The max age JetStream stream `name` is to keep: its own when the config's retention
    /// is still `configured` (see [`retention_note`]), else `configured`.
    async fn max_age(&self, name: &str, configured: Duration) -> Result<Duration, NatsError> {
        match self.js.get_stream(name).await {
            Ok(existing) => {
                let config = &existing.cached_info().config;
                let same = config.description.as_deref() == Some(&retention_note(configured));
                Ok(if same { config.max_age } else { configured })
            }
            Err(e) if not_found(&e) => Ok(configured),
            Err(e) => Err(stream_error(name, e.to_string(), self.replicas)),
        }
    }

    /// The key sealing shard iterators, the same for every process in front of the cluster.
    ///
    /// # Errors
    /// The cluster cannot store or give it.
    pub async fn iterator_key(&self) -> Result<[u8; secret::KEY_LEN], NatsError> {
        secret::iterator_key(&self.js, self.replicas).await
    }

    /// Creates (or brings up to date) the JetStream stream of each of `stream`'s shards,
    /// keeps or empties `stream`'s mirror ([`keep_or_empty`]), then starts mirroring into
    /// it; puts to the stream go to the cluster from then on. Before anything is served.
    pub async fn attach(
        self: &Arc<Self>,
        log: &Log,
        stream: Arc<Stream>,
        stop: &CancellationToken,
    ) -> Result<(), NatsError> {
        let upstream = self.ensure_streams(&stream).await?;
        let stream = keep_or_empty(log, stream, &upstream)?;
        let created_ms =
            u64::try_from(upstream[0].created.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let mut tips = Vec::new();
        let mut ends = Vec::new();
        for (shard, info) in upstream.iter().enumerate() {
            // With no records left (all past their max age, or purged) JetStream's last
            // sequence stays where it was and nothing will come to the mirror to reach it.
            ends.push(if info.state.messages > 0 {
                info.state.last_sequence
            } else {
                0
            });
            let (tip, watch) = watch::channel(stream.shards()[shard].next_offset());
            mirror::spawn(
                self.js.clone(),
                info.config.name.clone(),
                Arc::clone(&stream),
                shard,
                tip,
                stop.clone(),
            );
            tips.push(watch);
        }
        catch_up(stream.name(), &tips, &ends, stop).await?;
        mirror::follow_retention(
            self.js.clone(),
            names::stream_name(stream.name(), 0),
            Arc::clone(&stream),
            stop.clone(),
        );
        let publisher = Publisher::new(self.js.clone(), stream.name(), tips);
        stream.set_upstream(Arc::new(publisher), created_ms);
        Ok(())
    }

    /// The JetStream stream of each of `stream`'s shards, created or brought up to date.
    async fn ensure_streams(&self, stream: &Stream) -> Result<Vec<stream::Info>, NatsError> {
        let mut upstream = Vec::new();
        for shard in 0..stream.shards().len() {
            let name = names::stream_name(stream.name(), shard);
            let config = stream::Config {
                name: name.clone(),
                subjects: vec![names::subject(stream.name(), shard)],
                storage: stream::StorageType::File,
                num_replicas: self.replicas,
                max_age: self.max_age(&name, stream.retention()).await?,
                description: Some(retention_note(stream.retention())),
                max_message_size: i32::try_from(MAX_DATA_BYTES + MAX_OVERHEAD).unwrap_or(i32::MAX),
                discard: stream::DiscardPolicy::Old,
                allow_direct: true,
                ..Default::default()
            };
            let info = self
                .js
                .create_or_update_stream(config)
                .await
                .map_err(|e| stream_error(&name, e.to_string(), self.replicas))?;
            upstream.push(info);
        }
        Ok(upstream)
    }
}

/// `stream`, its mirror kept when [`resume::check`] allows and emptied otherwise, then
/// recorded as the mirror of `upstream` (its shards' JetStream streams) and given their
/// retention.
fn keep_or_empty(
    log: &Log,
    stream: Arc<Stream>,
    upstream: &[stream::Info],
) -> Result<Arc<Stream>, NatsError> {
    let local_error = |detail: String| NatsError::Stream {
        name: stream.name().to_owned(),
        detail,
    };
    let identities: Vec<String> = upstream.iter().map(resume::identity).collect();
    let local = match resume::check(&stream, &identities, upstream) {
        Ok(()) => {
            let tips: Vec<u64> = stream.shards().iter().map(|s| s.next_offset()).collect();
            if tips.iter().any(|&tip| tip > 0) {
                tracing::info!(stream = %stream.name(), "mirror kept, shard tips at {tips:?}; mirroring on from there");
            }
            Arc::clone(&stream)
        }
        Err(why) => {
            tracing::info!(stream = %stream.name(), "mirror emptied: {why}; mirroring it again from the cluster");
            log.reset_mirror(stream.name())
                .map_err(|e| local_error(format!("emptying the mirror: {e}")))?
        }
    };
    local
        .set_mirror_of(identities)
        .map_err(|e| local_error(format!("recording what the mirror holds: {e}")))?;
    mirror::adopt_retention(&local, upstream[0].config.max_age)
        .map_err(|e| local_error(format!("keeping the cluster's retention locally: {e}")))?;
    Ok(local)
}

/// Waits until each shard's mirror holds the records the cluster had at attach time (`ends`,
/// JetStream's last sequence = the offset after the last record), so nothing is served from
/// a partial mirror: a LATEST iterator would point too early, and a delivery would take its
/// checkpoint for records lost. Says how far it got every 10 s; returns early on `stop`.
async fn catch_up(
    name: &str,
    tips: &[watch::Receiver<u64>],
    ends: &[u64],
    stop: &CancellationToken,
) -> Result<(), NatsError> {
    for (shard, (tip, &end)) in tips.iter().zip(ends).enumerate() {
        let mut tip = tip.clone();
        loop {
            let waited = tokio::select! {
                waited = tokio::time::timeout(PROGRESS_EVERY, tip.wait_for(|t| *t >= end)) => {
                    waited.map(|held| held.is_ok())
                }
                () = stop.cancelled() => return Ok(()),
            };
            match waited {
                Ok(true) => break,
                Ok(false) => {
                    return Err(NatsError::Stream {
                        name: names::stream_name(name, shard),
                        detail: "its mirror stopped before catching up".into(),
                    });
                }
                Err(_) => tracing::info!(
                    stream = name,
                    shard,
                    "mirroring the cluster: {} of {end} records so far",
                    *tip.borrow()
                ),
            }
        }
    }
    Ok(())
}

/// Marks the retention the config gave a shard's JetStream stream. While the config says the
/// same, the stream's max age stands as the cluster has it (IncreaseStreamRetentionPeriod may
/// have changed it, through any process); once the config says otherwise, the config wins,
/// as it does on the local log.
fn retention_note(configured: Duration) -> String {
    format!("edgewise: configured retention {}s", configured.as_secs())
}

fn not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(
        e.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(j)
            if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// A failure to reach the cluster, as the log reports it.
fn unavailable(what: &str, e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(format!("{what}: {e}"))
}

/// A JetStream stream's failure, with what to do when the cluster has fewer JetStream
/// servers than `replicas`.
fn stream_error(name: &str, detail: String, replicas: usize) -> NatsError {
    let too_few = [
        "insufficient resources",
        "not supported in non-clustered mode",
    ];
    let detail = if replicas > 1 && too_few.iter().any(|t| detail.contains(t)) {
        format!(
            "{detail} (replicas = {replicas} needs as many JetStream servers in the cluster; \
             nats.replicas = 1 for a lone server)"
        )
    } else {
        detail
    };
    NatsError::Stream {
        name: name.to_owned(),
        detail,
    }
}

/// `options` with `config`'s way of authenticating and its TLS settings; a credentials
/// file is read here, so a missing or malformed one is named before any server is tried.
async fn connect_options(
    mut options: async_nats::ConnectOptions,
    config: &NatsConfig,
) -> Result<async_nats::ConnectOptions, String> {
    options = match &config.auth {
        NatsAuth::None => options,
        NatsAuth::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.clone())
        }
        NatsAuth::Creds(path) => options
            .credentials_file(path)
            .await
            .map_err(|e| format!("credentials file {}: {e}", path.display()))?,
        NatsAuth::Nkey(path) => {
            let seed = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("nkey file {}: {e}", path.display()))?;
            let seed = seed.trim();
            if !seed.starts_with("SU") {
                return Err(format!(
                    "nkey file {} does not hold a user NKey seed (SU...)",
                    path.display()
                ));
            }
            options.nkey(seed.to_owned())
        }
    };
    if let Some(tls) = &config.tls {
        options = options.require_tls(true);
        if let Some(ca) = &tls.ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &tls.client {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
    }
    Ok(options)
}
