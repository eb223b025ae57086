//! The consumer protocol embedded in classic groups of protocol type `consumer` (Kafka's
//! `ConsumerProtocol`): a member's JoinGroup metadata is a `ConsumerProtocolSubscription`, its
//! SyncGroup assignment a `ConsumerProtocolAssignment`, each an int16 version and then the
//! struct (declared in `protocol/schema/consumer_protocol.schema`).
//!
//! Reading follows Kafka's rules: a negative version is malformed; a version newer than ours
//! is read as ours and whatever follows is ignored (new versions only append fields). The broker
//! reads these bytes only where Kafka does: to convert a classic group to a consumer group and
//! back (KIP-848's online migration), for the classic members of a consumer group, and to know
//! a classic group's subscribed topics.

use bytes::{Bytes, BytesMut};
use rafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use rafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use rafka_protocol::Message;

/// The protocol type of Kafka's consumers.
pub const PROTOCOL_TYPE: &str = "consumer";

/// The newest version of both structs we know.
const HIGHEST_VERSION: i16 = 3;

/// Why embedded consumer protocol bytes are unusable (Kafka's `SchemaException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed consumer protocol {0}")]
pub struct Malformed(&'static str);

/// The version prefix of `b`, as Kafka's `deserializeVersion` reads it (for writing an
/// assignment at the version its member's subscription uses): the newest we know if newer.
pub fn version(b: &[u8]) -> Result<i16, Malformed> {
    let v = b
        .get(..2)
        .map(|v| i16::from_be_bytes([v[0], v[1]]))
        .ok_or(Malformed("version"))?;
    if v < 0 {
        return Err(Malformed("version"));
    }
    Ok(v.min(HIGHEST_VERSION))
}

fn read<M: Message>(b: &Bytes, what: &'static str) -> Result<(M, i16), Malformed> {
    let v = version(b)?;
    // Trailing bytes are a newer version's fields: ignored, as Kafka's reader ignores them.
    match M::decode_from(b, &b[2..], v) {
        Ok((_, m)) => Ok((m, v)),
        Err(_) => Err(Malformed(what)),
    }
}

/// A member's subscription as the classic protocol carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The version it was written at (capped at ours): its assignments are written at it too.
    pub version: i16,
    pub topics: Vec<String>,
    /// The partitions the member says it owns (version 1+; empty before).
    pub owned: Vec<(String, Vec<i32>)>,
    pub rack_id: Option<String>,
}

impl Subscription {
    /// Reads a `ConsumerProtocolSubscription`.
    pub fn parse(b: &Bytes) -> Result<Subscription, Malformed> {
        let (s, version): (ConsumerProtocolSubscription, _) = read(b, "subscription")?;
        Ok(Subscription {
            version,
            topics: s.topics,
            owned: s
                .owned_partitions
                .into_iter()
                .map(|t| (t.topic, t.partitions))
                .collect(),
            rack_id: s.rack_id.filter(|r| !r.is_empty()),
        })
    }
}

/// Reads a `ConsumerProtocolAssignment`: its partitions by topic name.
pub fn parse_assignment(b: &Bytes) -> Result<Vec<(String, Vec<i32>)>, Malformed> {
    let (a, _): (ConsumerProtocolAssignment, _) = read(b, "assignment")?;
    Ok(a.assigned_partitions
        .into_iter()
        .map(|t| (t.topic, t.partitions))
        .collect())
}

fn prefixed<M: Message>(m: &M, version: i16) -> Bytes {
    let mut out = BytesMut::with_capacity(2 + m.size_at(version));
    out.extend_from_slice(&version.to_be_bytes());
    // Our own value at a version we declare: encoding cannot fail.
    if let Err(e) = rafka_protocol::encode(m, &mut out, version) {
        tracing::error!(error = %e, "cannot encode a consumer protocol struct");
    }
    out.freeze()
}

/// A `ConsumerProtocolAssignment` of `partitions` (topic name, partitions) at `version`
/// (capped at ours), without user data.
pub fn assignment<'a>(
    partitions: impl IntoIterator<Item = (String, impl IntoIterator<Item = &'a i32>)>,
    version: i16,
) -> Bytes {
    let a = ConsumerProtocolAssignment {
        assigned_partitions: partitions
            .into_iter()
            .map(|(topic, p)| AssignedTopic {
                topic,
                partitions: p.into_iter().copied().collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    prefixed(&a, version.clamp(0, HIGHEST_VERSION))
}

/// A `ConsumerProtocolSubscription` v0 of `topics` (how DescribeGroups shows a member of a
/// consumer group that does not speak the classic protocol).
pub fn subscription(topics: &[String]) -> Bytes {
    let s = ConsumerProtocolSubscription {
        topics: topics.to_vec(),
        ..Default::default()
    };
    prefixed(&s, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// librdkafka's v3 subscription bytes (topics, null user data, owned partitions,
    /// generation, rack) and Kafka's reading rules: a newer version is read as ours with its
    /// tail ignored; negative versions, truncations and hostile counts are malformed.
    #[test]
    fn reads_subscriptions_as_kafka_does() {
        let s = ConsumerProtocolSubscription {
            topics: vec!["a".into(), "b".into()],
            owned_partitions: vec![
                rafka_protocol::messages::consumer_protocol_subscription::TopicPartition {
                    topic: "a".into(),
                    partitions: vec![0, 2],
                    ..Default::default()
                },
            ],
            generation_id: 4,
            rack_id: Some("r1".into()),
            ..Default::default()
        };
        let b = prefixed(&s, 3);
        let got = Subscription::parse(&b).expect("parse");
        assert_eq!(got.version, 3);
        assert_eq!(got.topics, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(got.owned, vec![("a".to_string(), vec![0, 2])]);
        assert_eq!(got.rack_id.as_deref(), Some("r1"));
        // Version 0: no owned partitions.
        let v0 = subscription(&["t".to_string()]);
        let got = Subscription::parse(&v0).expect("v0");
        assert_eq!((got.version, got.owned.len()), (0, 0));
        // A future version 7 with extra bytes: read as 3.
        let mut future = b.to_vec();
        future[..2].copy_from_slice(&7i16.to_be_bytes());
        future.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            Subscription::parse(&Bytes::from(future)).map(|s| s.version),
            Ok(3)
        );
        for bad in [
            &[][..],
            &[0][..],
            &[0xff, 0xff, 0, 0, 0, 0][..],
            &[0, 0, 0x7f, 0xff, 0xff, 0xff][..],
            &b[..b.len() - 3][..],
        ] {
            assert!(
                Subscription::parse(&Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn assignments_round_trip_at_the_members_version() {
        let parts = [0, 3];
        let b = assignment([("t".to_string(), parts.iter())], 1);
        assert_eq!(version(&b), Ok(1));
        assert_eq!(
            parse_assignment(&b),
            Ok(vec![("t".to_string(), vec![0, 3])])
        );
        assert_eq!(
            version(&assignment(Vec::<(String, Vec<&i32>)>::new(), 9)),
            Ok(3)
        );
        assert!(parse_assignment(&b.slice(..b.len() - 2)).is_err());
    }
}
