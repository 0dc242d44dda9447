//! The key that seals shard iterators and NextTokens, kept in the cluster: an iterator one
//! edgewise-cdn hands out must open on every other in front of the same cluster. Whoever asks
//! first stores one; an append that expects the subject empty lets only that one in.

use async_nats::jetstream::context::{Publish, PublishErrorKind};
use async_nats::jetstream::{self, stream};

use super::NatsError;

/// Apart from the `EW_` streams of Kinesis shards and their `edgewise.` subjects.
const STREAM: &str = "EDGEWISE_SECRETS";
const SUBJECT: &str = "edgewise-secrets.iterator-key";
pub const KEY_LEN: usize = 32;

/// The cluster's iterator key, stored first if it has none.
pub(super) async fn iterator_key(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<[u8; KEY_LEN], NatsError> {
    let fail = |detail: String| super::stream_error(STREAM, detail, replicas);
    let secrets = js
        .get_or_create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec![SUBJECT.into()],
            storage: stream::StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| fail(e.to_string()))?;
    let candidate: [u8; KEY_LEN] = rand::random();
    let first = Publish::build()
        .payload(candidate.to_vec().into())
        .expected_last_subject_sequence(0);
    let stored = js
        .send_publish(SUBJECT, first)
        .await
        .map_err(|e| fail(e.to_string()))?
        .await;
    match stored {
        Ok(_) => {}
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    let key = secrets
        .get_last_raw_message_by_subject(SUBJECT)
        .await
        .map_err(|e| fail(e.to_string()))?;
    <[u8; KEY_LEN]>::try_from(key.payload.as_ref()).map_err(|_| {
        fail(format!(
            "{SUBJECT} holds {} bytes, not {KEY_LEN}",
            key.payload.len()
        ))
    })
}
