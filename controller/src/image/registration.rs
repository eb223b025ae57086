//! The registrations an image is made of: partitions (Kafka's `PartitionRegistration`, with
//! its `merge` of a `PartitionChangeRecord`), topics, brokers (`BrokerRegistration`) and config
//! resources (`ConfigResource`), with their conversions to and from records.

use super::image_error::ImageError;
use rafka_protocol::messages::{
    register_broker_record as rbr, PartitionChangeRecord, PartitionRecord, RegisterBrokerRecord,
};
use rafka_protocol::Uuid;
use std::collections::BTreeMap;

/// No leader (Kafka's `LeaderConstants.NO_LEADER`).
pub const NO_LEADER: i32 = -1;
/// In a `PartitionChangeRecord`: the leader does not change (`NO_LEADER_CHANGE`).
pub const NO_LEADER_CHANGE: i32 = -2;

/// A partition leader's recovery state (Kafka's `LeaderRecoveryState`): `Recovering` after an
/// unclean election until the leader tells the controller it has recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeaderRecoveryState {
    #[default]
    Recovered,
    Recovering,
}

impl LeaderRecoveryState {
    /// In a `PartitionChangeRecord`: the state does not change.
    pub const NO_CHANGE: i8 = -1;

    pub fn value(self) -> i8 {
        match self {
            LeaderRecoveryState::Recovered => 0,
            LeaderRecoveryState::Recovering => 1,
        }
    }

    pub fn from_value(v: i8) -> Option<Self> {
        match v {
            0 => Some(LeaderRecoveryState::Recovered),
            1 => Some(LeaderRecoveryState::Recovering),
            _ => None,
        }
    }
}

/// One partition's replicas and leadership (Kafka's `PartitionRegistration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRegistration {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    /// The leader's broker id, or [`NO_LEADER`].
    pub leader: i32,
    pub leader_recovery_state: LeaderRecoveryState,
    /// Bumped whenever the leader field is set (a new leader, or none).
    pub leader_epoch: i32,
    /// Bumped on every change.
    pub partition_epoch: i32,
}

impl PartitionRegistration {
    pub fn from_record(r: &PartitionRecord) -> Result<Self, ImageError> {
        let invalid = |reason: &str| ImageError::InvalidPartition {
            topic_id: r.topic_id,
            partition: r.partition_id,
            reason: reason.to_string(),
        };
        if r.partition_id < 0 {
            return Err(invalid("negative partition id"));
        }
        let leader_recovery_state = LeaderRecoveryState::from_value(r.leader_recovery_state)
            .ok_or_else(|| invalid("invalid leader recovery state"))?;
        Ok(PartitionRegistration {
            replicas: r.replicas.clone(),
            isr: r.isr.clone(),
            removing_replicas: r.removing_replicas.clone(),
            adding_replicas: r.adding_replicas.clone(),
            leader: r.leader,
            leader_recovery_state,
            leader_epoch: r.leader_epoch,
            partition_epoch: r.partition_epoch,
        })
    }

    pub fn to_record(&self, topic_id: Uuid, partition: i32) -> PartitionRecord {
        PartitionRecord {
            partition_id: partition,
            topic_id,
            replicas: self.replicas.clone(),
            isr: self.isr.clone(),
            removing_replicas: self.removing_replicas.clone(),
            adding_replicas: self.adding_replicas.clone(),
            leader: self.leader,
            leader_recovery_state: self.leader_recovery_state.value(),
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            ..Default::default()
        }
    }

    /// The registration after `change` (Kafka's `PartitionRegistration.merge`).
    pub fn merge(&self, change: &PartitionChangeRecord) -> Result<Self, ImageError> {
        let leader_recovery_state = match change.leader_recovery_state {
            LeaderRecoveryState::NO_CHANGE => self.leader_recovery_state,
            v => {
                LeaderRecoveryState::from_value(v).ok_or_else(|| ImageError::InvalidPartition {
                    topic_id: change.topic_id,
                    partition: change.partition_id,
                    reason: format!("invalid leader recovery state {v}"),
                })?
            }
        };
        let (leader, leader_epoch) = if change.leader == NO_LEADER_CHANGE {
            (self.leader, self.leader_epoch)
        } else {
            (change.leader, self.leader_epoch.wrapping_add(1))
        };
        let or =
            |new: &Option<Vec<i32>>, old: &Vec<i32>| new.clone().unwrap_or_else(|| old.clone());
        Ok(PartitionRegistration {
            replicas: or(&change.replicas, &self.replicas),
            isr: or(&change.isr, &self.isr),
            removing_replicas: or(&change.removing_replicas, &self.removing_replicas),
            adding_replicas: or(&change.adding_replicas, &self.adding_replicas),
            leader,
            leader_recovery_state,
            leader_epoch,
            partition_epoch: self.partition_epoch.wrapping_add(1),
        })
    }

    pub fn has_leader(&self) -> bool {
        self.leader != NO_LEADER
    }

    /// The first replica, the one preferred election picks.
    pub fn preferred_replica(&self) -> i32 {
        self.replicas.first().copied().unwrap_or(NO_LEADER)
    }

    pub fn has_preferred_leader(&self) -> bool {
        self.has_leader() && self.leader == self.preferred_replica()
    }
}

/// A topic: its name, id and partitions (Kafka's `TopicImage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, PartitionRegistration>,
}

/// A listener a broker advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: i16,
}

/// A feature range a broker supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportedFeature {
    pub name: String,
    pub min_version: i16,
    pub max_version: i16,
}

/// A broker's registration (Kafka's `BrokerRegistration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: i32,
    /// The broker epoch: the metadata offset of its registration record.
    pub epoch: i64,
    pub incarnation_id: Uuid,
    pub endpoints: Vec<Endpoint>,
    pub features: Vec<SupportedFeature>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
    pub is_migrating_zk_broker: bool,
    pub log_dirs: Vec<Uuid>,
}

impl BrokerRegistration {
    /// Unfenced and not shutting down: may lead partitions and join ISRs (Kafka's
    /// `ClusterControlManager.isActive`).
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }

    pub fn from_record(r: &RegisterBrokerRecord) -> Self {
        BrokerRegistration {
            id: r.broker_id,
            epoch: r.broker_epoch,
            incarnation_id: r.incarnation_id,
            endpoints: r
                .end_points
                .iter()
                .map(|e| Endpoint {
                    name: e.name.clone(),
                    host: e.host.clone(),
                    port: e.port,
                    security_protocol: e.security_protocol,
                })
                .collect(),
            features: r
                .features
                .iter()
                .map(|f| SupportedFeature {
                    name: f.name.clone(),
                    min_version: f.min_supported_version,
                    max_version: f.max_supported_version,
                })
                .collect(),
            rack: r.rack.clone(),
            fenced: r.fenced,
            in_controlled_shutdown: r.in_controlled_shutdown,
            is_migrating_zk_broker: r.is_migrating_zk_broker,
            log_dirs: r.log_dirs.clone(),
        }
    }

    pub fn to_record(&self) -> RegisterBrokerRecord {
        RegisterBrokerRecord {
            broker_id: self.id,
            is_migrating_zk_broker: self.is_migrating_zk_broker,
            incarnation_id: self.incarnation_id,
            broker_epoch: self.epoch,
            end_points: self
                .endpoints
                .iter()
                .map(|e| rbr::BrokerEndpoint {
                    name: e.name.clone(),
                    host: e.host.clone(),
                    port: e.port,
                    security_protocol: e.security_protocol,
                    ..Default::default()
                })
                .collect(),
            features: self
                .features
                .iter()
                .map(|f| rbr::BrokerFeature {
                    name: f.name.clone(),
                    min_supported_version: f.min_version,
                    max_supported_version: f.max_version,
                    ..Default::default()
                })
                .collect(),
            rack: self.rack.clone(),
            fenced: self.fenced,
            in_controlled_shutdown: self.in_controlled_shutdown,
            log_dirs: self.log_dirs.clone(),
            ..Default::default()
        }
    }
}

/// A config resource: Kafka's `ConfigResource` (type id and name; "" names the cluster
/// default for brokers).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigResource {
    pub resource_type: i8,
    pub name: String,
}

impl ConfigResource {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
    pub const BROKER_LOGGER: i8 = 8;
    /// A group's configs (KIP-848's dynamic group configs).
    pub const GROUP: i8 = 32;

    pub fn topic(name: &str) -> Self {
        ConfigResource {
            resource_type: Self::TOPIC,
            name: name.to_string(),
        }
    }

    pub fn broker(name: &str) -> Self {
        ConfigResource {
            resource_type: Self::BROKER,
            name: name.to_string(),
        }
    }

    pub fn group(name: &str) -> Self {
        ConfigResource {
            resource_type: Self::GROUP,
            name: name.to_string(),
        }
    }
}
