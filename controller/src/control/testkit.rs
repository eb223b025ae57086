//! Test fixtures: an image built from records, an active controller over it, and a clock.
//! Every result a test generates is applied back, as the Raft glue would after committing it.

use super::controller_config::ControllerConfig;
use super::controller_result::ControllerResult;
use super::invariants::{check_image, check_transition};
use super::ActiveController;
use crate::image::{MetadataImage, PartitionRegistration};
use rafka_protocol::messages::{
    create_topics_request::CreatableTopic, register_broker_record::BrokerEndpoint,
    BrokerHeartbeatRequest, BrokerHeartbeatResponse, ClusterIdRecord, ConfigRecord,
    CreateTopicsRequest, MetadataRecord, RegisterBrokerRecord,
};
use rafka_protocol::Uuid;
use std::time::{Duration, Instant};

pub const CLUSTER: &str = "test-cluster-id";

/// Broker `id` is registered at epoch `100 + id` with incarnation `1000 + id`.
pub fn registration(id: i32, rack: Option<&str>) -> MetadataRecord {
    MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: id,
        broker_epoch: 100 + i64::from(id),
        incarnation_id: Uuid::from_u128(1000 + id as u128),
        end_points: vec![BrokerEndpoint {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 9092,
            ..Default::default()
        }],
        rack: rack.map(str::to_string),
        fenced: false,
        ..Default::default()
    })
}

pub fn config_record(
    resource_type: i8,
    name: &str,
    key: &str,
    value: Option<&str>,
) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type,
        resource_name: name.into(),
        name: key.into(),
        value: value.map(str::to_string),
        ..Default::default()
    })
}

/// A source of random bits for topic ids (deterministic).
pub fn id_source(counter: &mut u128) -> impl FnMut() -> u128 + '_ {
    move || {
        *counter += 1;
        counter.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
    }
}

pub struct Kit {
    pub image: MetadataImage,
    pub controller: ActiveController,
    pub config: ControllerConfig,
    pub now: Instant,
    ids: u128,
    /// Check the invariants after every applied batch.
    pub checked: bool,
}

impl Kit {
    /// Unfenced brokers with the given racks, at offset 200 (past their registrations).
    pub fn with_brokers(brokers: &[(i32, Option<&str>)]) -> Kit {
        let mut image = MetadataImage::new();
        let mut records = vec![MetadataRecord::ClusterId(ClusterIdRecord {
            cluster_id: CLUSTER.into(),
            ..Default::default()
        })];
        records.extend(brokers.iter().map(|(id, rack)| registration(*id, *rack)));
        image.apply_batch_at(200, &records).expect("fixture");
        let config = ControllerConfig {
            cluster_id: None,
            ..ControllerConfig::default()
        };
        let now = Instant::now();
        let controller = ActiveController::new(config.clone(), &image, now, 7);
        Kit {
            image,
            controller,
            config,
            now,
            ids: 0,
            checked: true,
        }
    }

    pub fn three_brokers() -> Kit {
        Kit::with_brokers(&[(1, None), (2, None), (3, None)])
    }

    /// Commits and applies `records` as the next batch, checking the invariants across it.
    pub fn apply(&mut self, records: &[MetadataRecord]) {
        let old = self.checked.then(|| self.image.clone());
        let offset = self.image.offset() + 1;
        self.image
            .apply_batch_at(offset, records)
            .expect("generated records apply");
        if let Some(old) = old {
            check_image(&self.image);
            check_transition(&old, &self.image, records);
        }
    }

    /// Applies a result's records and returns its response.
    pub fn commit<T>(&mut self, result: ControllerResult<T>) -> T {
        self.apply(&result.records);
        result.response
    }

    /// Runs `create_topics`, applies it, and returns the response.
    pub fn create_topics(
        &mut self,
        req: &CreateTopicsRequest,
    ) -> rafka_protocol::messages::CreateTopicsResponse {
        let result = self
            .controller
            .create_topics(&self.image, req, &mut id_source(&mut self.ids));
        self.commit(result)
    }

    pub fn create_topic(&mut self, name: &str, partitions: i32, rf: i16) -> Uuid {
        let req = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor: rf,
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = self.create_topics(&req);
        assert_eq!(
            response.topics[0].error_code, 0,
            "create {name}: {:?}",
            response.topics[0].error_message
        );
        response.topics[0].topic_id
    }

    /// A topic with explicit replica lists (ISR = replicas, leader = first).
    pub fn create_topic_on(&mut self, name: &str, assignment: &[&[i32]]) -> Uuid {
        use rafka_protocol::messages::create_topics_request::CreatableReplicaAssignment;
        let req = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: -1,
                replication_factor: -1,
                assignments: assignment
                    .iter()
                    .enumerate()
                    .map(|(i, b)| CreatableReplicaAssignment {
                        partition_index: i as i32,
                        broker_ids: b.to_vec(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = self.create_topics(&req);
        assert_eq!(
            response.topics[0].error_code, 0,
            "create {name}: {:?}",
            response.topics[0].error_message
        );
        response.topics[0].topic_id
    }

    pub fn topic_id(&self, name: &str) -> Uuid {
        self.image.topic_by_name(name).expect("topic exists").id
    }

    pub fn partition(&self, name: &str, p: i32) -> PartitionRegistration {
        self.image
            .topic_by_name(name)
            .and_then(|t| t.partitions.get(&p))
            .cloned()
            .expect("partition exists")
    }

    pub fn epoch(&self, broker: i32) -> i64 {
        self.image.broker(broker).map_or(-1, |b| b.epoch)
    }

    /// A heartbeat from `broker` (caught up, no wishes unless `edit` adds some), applied.
    pub fn heartbeat(
        &mut self,
        broker: i32,
        edit: impl FnOnce(&mut BrokerHeartbeatRequest),
    ) -> BrokerHeartbeatResponse {
        let mut req = BrokerHeartbeatRequest {
            broker_id: broker,
            broker_epoch: self.epoch(broker),
            current_metadata_offset: self.image.offset(),
            ..Default::default()
        };
        edit(&mut req);
        let next = self.image.offset() + 1;
        let result = self
            .controller
            .broker_heartbeat(&self.image, &req, next, self.now);
        self.commit(result)
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Runs the session check at the current time; returns the brokers fenced.
    pub fn fence_expired(&mut self) -> Vec<i32> {
        let result = self.controller.fence_expired(&self.image, self.now);
        self.commit(result)
    }
}
