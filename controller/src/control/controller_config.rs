//! The controller's settings (Kafka's `QuorumControllerConfig` and the keys it reads).

use super::config::group_defs::GroupConfigBounds;
use std::time::Duration;

/// The controller's settings, from `server.properties` (Kafka's keys and defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerConfig {
    /// `cluster.id`, if configured; else the image's (written by the first active controller).
    pub cluster_id: Option<String>,
    /// `num.partitions`: partitions of a topic created without a count.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `delete.topic.enable`: false refuses every DeleteTopics.
    pub delete_topic_enable: bool,
    /// `unclean.leader.election.enable`, the static default under topic and dynamic configs.
    pub unclean_leader_election_enable: bool,
    /// `broker.session.timeout.ms`.
    pub session_timeout: Duration,
    /// The name of the controller listener (the first of `controller.listener.names`), as
    /// DescribeQuorum v2 names the voters' endpoints.
    pub controller_listener_name: String,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval: Duration,
    /// The bounds group configs must stay within (`group.consumer.min/max.*`).
    pub group_config_bounds: GroupConfigBounds,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            cluster_id: None,
            num_partitions: 1,
            default_replication_factor: 1,
            delete_topic_enable: true,
            unclean_leader_election_enable: false,
            session_timeout: Duration::from_millis(1500),
            controller_listener_name: "CONTROLLER".to_owned(),
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval: Duration::from_secs(300),
            group_config_bounds: Default::default(),
        }
    }
}
