//! Conversions between openraft's types and their wire form in our schema
//! (`protocol/schema/raft.schema`): votes, log ids, memberships, log entries. The log store
//! writes entries in the same wire form, so there is one encoding of an entry.
//!
//! Each message of the schema declares its own nested structs, so the conversions are stamped
//! out per message module by small macros.
//!
//! Converting back from the wire is where a peer's numbers are first checked: a term must lie in
//! Kafka's leader-epoch range (`0..=i32::MAX`, because the log store keeps it as a batch's
//! partitionLeaderEpoch), a log index is `-1` (none) or non-negative, a node id is `-1` (none)
//! or non-negative. A value that passes can be persisted and loaded again; one that does not
//! never reaches openraft.

use crate::raft_types::{Entry, LogId, Membership, MetadataCommand, NodeId, Vote};
use openraft::{BasicNode, CommittedLeaderId, EntryPayload};
use rafka_protocol::messages::{
    raft_append_entries_request as aer, raft_append_entries_response as aes,
    raft_install_snapshot_request as isr, raft_install_snapshot_response as iss,
    raft_pre_vote_request as pvr, raft_vote_request as vr, raft_vote_response as vs,
};
use std::collections::{BTreeMap, BTreeSet};

/// Why wire data did not convert back.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("raft entry: {0}")]
    Entry(String),
    #[error("raft membership: {0}")]
    Membership(String),
    #[error("negative node id {0}")]
    NodeId(i64),
    #[error("term {0} outside the leader epoch range 0..={max}", max = i32::MAX)]
    Term(i64),
    #[error("log index {0} is negative")]
    Index(i64),
}

/// A term from the wire: Kafka's leader epochs are int32, and the metadata log stores each
/// entry's term as its batch's partitionLeaderEpoch.
pub fn term_from_wire(term: i64) -> Result<u64, ConvertError> {
    if (0..=i64::from(i32::MAX)).contains(&term) {
        Ok(term as u64)
    } else {
        Err(ConvertError::Term(term))
    }
}

/// A vote's wire form (one per schema message).
pub trait VoteWire: Sized {
    fn from_vote(v: &Vote) -> Self;
    fn to_vote(&self) -> Result<Vote, ConvertError>;
}

/// An optional log id's wire form (index -1 is none).
pub trait LogIdWire: Sized {
    fn from_log_id(l: Option<&LogId>) -> Self;
    fn to_log_id(&self) -> Result<Option<LogId>, ConvertError>;
}

/// A membership's wire form.
pub trait MembershipWire: Sized {
    fn from_membership(m: &Membership) -> Self;
    fn to_membership(&self) -> Result<Membership, ConvertError>;
}

fn node(id: i64) -> Result<NodeId, ConvertError> {
    u64::try_from(id).map_err(|_| ConvertError::NodeId(id))
}

macro_rules! vote_conv {
    ($m:ident) => {
        impl VoteWire for $m::RaftVote {
            fn from_vote(v: &Vote) -> Self {
                $m::RaftVote {
                    term: v.leader_id.term as i64,
                    node_id: v.leader_id.voted_for.map_or(-1, |n| n as i64),
                    committed: v.committed,
                    ..Default::default()
                }
            }
            fn to_vote(&self) -> Result<Vote, ConvertError> {
                let voted_for = if self.node_id == -1 {
                    None
                } else {
                    Some(node(self.node_id)?)
                };
                Ok(Vote {
                    leader_id: openraft::LeaderId {
                        term: term_from_wire(self.term)?,
                        voted_for,
                    },
                    committed: self.committed,
                })
            }
        }
    };
}
vote_conv!(vr);
vote_conv!(vs);
vote_conv!(aer);
vote_conv!(aes);
vote_conv!(isr);
vote_conv!(iss);
vote_conv!(pvr);

macro_rules! log_id_conv {
    ($m:ident) => {
        impl LogIdWire for $m::RaftLogId {
            fn from_log_id(l: Option<&LogId>) -> Self {
                match l {
                    None => $m::RaftLogId::default(),
                    Some(l) => $m::RaftLogId {
                        term: l.leader_id.term as i64,
                        // With single-term-leader a committed leader id is its term alone.
                        node_id: -1,
                        index: l.index as i64,
                        ..Default::default()
                    },
                }
            }
            fn to_log_id(&self) -> Result<Option<LogId>, ConvertError> {
                if self.index == -1 {
                    return Ok(None);
                }
                if self.index < 0 {
                    return Err(ConvertError::Index(self.index));
                }
                Ok(Some(LogId::new(
                    CommittedLeaderId::new(term_from_wire(self.term)?, 0),
                    self.index as u64,
                )))
            }
        }
    };
}
log_id_conv!(vr);
log_id_conv!(vs);
log_id_conv!(aer);
log_id_conv!(aes);
log_id_conv!(isr);
log_id_conv!(pvr);

macro_rules! membership_conv {
    ($m:ident) => {
        impl MembershipWire for $m::RaftMembership {
            fn from_membership(m: &Membership) -> Self {
                $m::RaftMembership {
                    configs: m
                        .get_joint_config()
                        .iter()
                        .map(|c| $m::RaftVoterSet {
                            voters: c.iter().map(|n| *n as i64).collect(),
                            ..Default::default()
                        })
                        .collect(),
                    nodes: m
                        .nodes()
                        .map(|(id, n)| $m::RaftNode {
                            node_id: *id as i64,
                            addr: n.addr.clone(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
            }
            fn to_membership(&self) -> Result<Membership, ConvertError> {
                let configs: Vec<BTreeSet<NodeId>> = self
                    .configs
                    .iter()
                    .map(|c| c.voters.iter().map(|v| node(*v)).collect::<Result<_, _>>())
                    .collect::<Result<_, _>>()?;
                let nodes: BTreeMap<NodeId, BasicNode> = self
                    .nodes
                    .iter()
                    .map(|n| {
                        Ok((
                            node(n.node_id)?,
                            BasicNode {
                                addr: n.addr.clone(),
                            },
                        ))
                    })
                    .collect::<Result<_, ConvertError>>()?;
                for c in &configs {
                    if let Some(missing) = c.iter().find(|v| !nodes.contains_key(v)) {
                        return Err(ConvertError::Membership(format!(
                            "voter {missing} has no node"
                        )));
                    }
                }
                Ok(Membership::new(configs, nodes))
            }
        }
    };
}
membership_conv!(aer);
membership_conv!(isr);

const PAYLOAD_BLANK: i8 = 0;
const PAYLOAD_NORMAL: i8 = 1;
const PAYLOAD_MEMBERSHIP: i8 = 2;

/// An entry's wire form (also how the log store keeps it).
pub fn entry_to_wire(e: &Entry) -> Result<aer::RaftEntry, ConvertError> {
    let mut out = aer::RaftEntry {
        log_id: aer::RaftLogId::from_log_id(Some(&e.log_id)),
        ..Default::default()
    };
    match &e.payload {
        EntryPayload::Blank => out.payload_type = PAYLOAD_BLANK,
        EntryPayload::Normal(cmd) => {
            out.payload_type = PAYLOAD_NORMAL;
            out.payload = cmd
                .to_bytes()
                .map_err(|err| ConvertError::Entry(err.to_string()))?;
        }
        EntryPayload::Membership(m) => {
            out.payload_type = PAYLOAD_MEMBERSHIP;
            out.membership = Some(aer::RaftMembership::from_membership(m));
        }
    }
    Ok(out)
}

pub fn entry_from_wire(w: &aer::RaftEntry) -> Result<Entry, ConvertError> {
    let log_id = w
        .log_id
        .to_log_id()?
        .ok_or_else(|| ConvertError::Entry("an entry without a log id".into()))?;
    let payload = match w.payload_type {
        PAYLOAD_BLANK => EntryPayload::Blank,
        PAYLOAD_NORMAL => EntryPayload::Normal(
            MetadataCommand::from_bytes(&w.payload).map_err(ConvertError::Entry)?,
        ),
        PAYLOAD_MEMBERSHIP => EntryPayload::Membership(
            w.membership
                .as_ref()
                .ok_or_else(|| ConvertError::Entry("membership entry without a membership".into()))?
                .to_membership()?,
        ),
        other => return Err(ConvertError::Entry(format!("unknown payload type {other}"))),
    };
    Ok(Entry { log_id, payload })
}

/// Encodes an entry for storage: its wire form (schema version 0).
pub fn entry_to_bytes(e: &Entry) -> Result<bytes::Bytes, ConvertError> {
    let w = entry_to_wire(e)?;
    let mut b = bytes::BytesMut::with_capacity(w.size_at(0));
    w.encode_into(&mut b, 0)
        .map_err(|err| ConvertError::Entry(err.to_string()))?;
    Ok(b.freeze())
}

/// Decodes a stored entry.
pub fn entry_from_bytes(b: &bytes::Bytes) -> Result<Entry, ConvertError> {
    match aer::RaftEntry::decode_from(b, b, 0) {
        Ok(([], w)) => entry_from_wire(&w),
        Ok((rest, _)) => Err(ConvertError::Entry(format!(
            "{} trailing bytes",
            rest.len()
        ))),
        Err(e) => Err(ConvertError::Entry(format!("{e:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafka_protocol::messages::{MetadataRecord, TopicRecord};

    fn log_id(term: u64, node: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, node), index)
    }

    #[test]
    fn entries_round_trip_through_bytes() {
        let membership = Membership::new(
            vec![BTreeSet::from([1, 2, 3])],
            BTreeMap::from([
                (
                    1,
                    BasicNode {
                        addr: "127.0.0.1:9093".into(),
                    },
                ),
                (
                    2,
                    BasicNode {
                        addr: "127.0.0.1:9094".into(),
                    },
                ),
                (
                    3,
                    BasicNode {
                        addr: "127.0.0.1:9095".into(),
                    },
                ),
                (
                    7,
                    BasicNode {
                        addr: "127.0.0.1:9096".into(),
                    },
                ),
            ]),
        );
        let cmd = MetadataCommand {
            records: vec![MetadataRecord::Topic(TopicRecord {
                name: "orders".into(),
                topic_id: rafka_protocol::Uuid::from_u128(42),
                ..Default::default()
            })],
        };
        for e in [
            Entry {
                log_id: log_id(1, 1, 0),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(2, 3, 5),
                payload: EntryPayload::Normal(cmd),
            },
            Entry {
                log_id: log_id(3, 2, 9),
                payload: EntryPayload::Membership(membership),
            },
        ] {
            let b = entry_to_bytes(&e).expect("encodes");
            let back = entry_from_bytes(&b).expect("decodes");
            assert_eq!(back.log_id, e.log_id);
            assert_eq!(format!("{:?}", back.payload), format!("{:?}", e.payload));
        }
    }

    #[test]
    fn terms_outside_the_leader_epoch_range_are_refused() {
        for term in [i64::MAX, i64::from(i32::MAX) + 1, -1, i64::MIN] {
            let v = vr::RaftVote {
                term,
                node_id: 1,
                ..Default::default()
            };
            assert!(
                matches!(v.to_vote(), Err(ConvertError::Term(t)) if t == term),
                "vote term {term}"
            );
            let l = aer::RaftLogId {
                term,
                index: 3,
                ..Default::default()
            };
            assert!(l.to_log_id().is_err(), "log id term {term}");
        }
        let top = vr::RaftVote {
            term: i64::from(i32::MAX),
            node_id: 1,
            ..Default::default()
        };
        assert_eq!(
            top.to_vote().expect("in range").leader_id.term,
            i32::MAX as u64
        );
        let neg = aer::RaftLogId {
            term: 1,
            index: -2,
            ..Default::default()
        };
        assert!(matches!(neg.to_log_id(), Err(ConvertError::Index(-2))));
        let bad_node = vr::RaftVote {
            term: 1,
            node_id: -5,
            ..Default::default()
        };
        assert!(matches!(bad_node.to_vote(), Err(ConvertError::NodeId(-5))));
    }

    #[test]
    fn votes_and_log_ids_round_trip() {
        let mut v = Vote::new(7, 3);
        v.commit();
        let w = vr::RaftVote::from_vote(&v);
        assert_eq!(w.to_vote().expect("vote"), v);
        let none = vr::RaftLogId::from_log_id(None);
        assert_eq!(none.to_log_id().expect("none"), None);
        let l = log_id(4, 2, 100);
        assert_eq!(
            vr::RaftLogId::from_log_id(Some(&l))
                .to_log_id()
                .expect("some"),
            Some(l)
        );
    }
}
