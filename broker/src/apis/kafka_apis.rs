//! `KafkaApis`: what every handler shares — the broker's parts a request may reach (the image
//! it acts on, the replica manager, the coordinators, the controller channel) and its
//! configuration. The handlers, one file per API, take it; `mod.rs` dispatches to them.

use crate::config::dynamic_broker_config::DynamicBrokerConfig;
use crate::config::KafkaConfig;
use crate::controller_channel::ControllerChannel;
use crate::group_coordinator::GroupCoordinator;
use crate::producer_id_manager::ProducerIdManager;
use crate::replica_manager::ReplicaManager;
use crate::transaction_coordinator::TransactionCoordinator;
use rafka_controller::image::MetadataImage;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What the handlers share.
pub struct KafkaApis {
    pub broker_id: i32,
    pub replica_manager: Arc<ReplicaManager>,
    pub metadata: watch::Receiver<Arc<MetadataImage>>,
    pub controller: Arc<ControllerChannel>,
    pub auto_create_topics: bool,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    /// The group coordinator: groups whose `__consumer_offsets` partition this broker leads.
    pub groups: Arc<GroupCoordinator>,
    /// Producer ids for idempotent producers.
    pub producer_ids: Arc<ProducerIdManager>,
    /// The transaction coordinator: transactional ids whose `__transaction_state` partition this
    /// broker leads.
    pub transactions: Arc<TransactionCoordinator>,
    /// KIP-890 part 1: asks a transactional id's coordinator before a produce opens a
    /// transaction in a partition this broker leads.
    pub txn_verifier: Arc<crate::add_partitions_to_txn_manager::AddPartitionsToTxnManager>,
    /// The static configuration (file and overrides): for what only changes with a restart.
    pub config: Arc<KafkaConfig>,
    /// The configuration in force, dynamic broker configs from the image installed
    /// (DescribeConfigs, AlterConfigs validation, topic defaults): read with
    /// [`DynamicBrokerConfig::current_config`].
    pub dynamic_config: Arc<DynamicBrokerConfig>,
    /// The authorizer `authorizer.class.name` turns on; `None`: everything is allowed.
    /// Every check goes through [`KafkaApis::authorize`] / [`KafkaApis::authorizer_for`].
    pub authorizer: Option<rafka_security::authorizer::StandardAuthorizer>,
    /// Leaders whose fetch connection failed lately (Metadata's hold, see `lost_leaders`).
    pub lost_leaders: Arc<crate::lost_leaders::LostLeaders>,
}

impl KafkaApis {
    /// The image this broker acts on now.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.borrow().clone()
    }

    /// Waits, at most `timeout`, until this broker's image satisfies `done` — so a client's next
    /// request to this broker sees what the controller just committed. Returns whether it did.
    pub async fn wait_for_image(
        &self,
        timeout: Duration,
        done: impl Fn(&MetadataImage) -> bool,
    ) -> bool {
        let mut rx = self.metadata.clone();
        tokio::time::timeout(timeout, async {
            loop {
                if done(&rx.borrow_and_update()) {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await
        .unwrap_or(false)
    }

    /// Whether `replica.selector.class` is Kafka's rack-aware selector (KIP-392), the one rafka
    /// implements; unset (Kafka's default) sends every consumer to the leader.
    pub fn replica_selector_is_rack_aware(&self) -> bool {
        self.config
            .get::<String>("replica.selector.class")
            .is_some_and(|c| {
                c.trim() == crate::replica_manager::read_replica::RACK_AWARE_REPLICA_SELECTOR
            })
    }
}
