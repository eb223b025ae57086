//! `ProducerIdManager`: hands out producer ids for InitProducerId from blocks the active
//! controller allocates (AllocateProducerIds, Kafka's `RPCProducerIdManager`), so that no two
//! brokers ever give out the same id, across restarts and controller failovers too.

use crate::controller_channel::ControllerChannel;
use crate::lifecycle::BrokerLifecycleManager;
use rafka_protocol::messages::{AllocateProducerIdsRequest, RequestKind, ResponseKind};
use rafka_protocol::ErrorCode;
use std::sync::Arc;

pub struct ProducerIdManager {
    broker_id: i32,
    channel: Arc<ControllerChannel>,
    lifecycle: Arc<BrokerLifecycleManager>,
    /// The current block: the next id to give, and the end of the block (exclusive). Empty at
    /// start. An async lock: callers wait for a block without blocking a thread.
    block: tokio::sync::Mutex<(i64, i64)>,
}

impl ProducerIdManager {
    pub fn new(
        broker_id: i32,
        channel: Arc<ControllerChannel>,
        lifecycle: Arc<BrokerLifecycleManager>,
    ) -> ProducerIdManager {
        ProducerIdManager {
            broker_id,
            channel,
            lifecycle,
            block: tokio::sync::Mutex::new((0, 0)),
        }
    }

    /// The next producer id, asking the controller for a new block when this one is used up.
    /// Without one, COORDINATOR_LOAD_IN_PROGRESS, which clients retry (as Kafka answers while
    /// its next block is on the way).
    pub async fn generate_producer_id(&self) -> Result<i64, ErrorCode> {
        let mut block = self.block.lock().await;
        if block.0 >= block.1 {
            let request = AllocateProducerIdsRequest {
                broker_id: self.broker_id,
                broker_epoch: self.lifecycle.broker_epoch(),
                ..Default::default()
            };
            let response = self
                .channel
                .send(0, RequestKind::AllocateProducerIds(request))
                .await;
            match response {
                Some(ResponseKind::AllocateProducerIds(r))
                    if r.error_code == 0 && r.producer_id_len > 0 && r.producer_id_start >= 0 =>
                {
                    *block = (
                        r.producer_id_start,
                        r.producer_id_start + i64::from(r.producer_id_len),
                    );
                    tracing::info!(
                        start = r.producer_id_start,
                        len = r.producer_id_len,
                        "allocated a producer id block"
                    );
                }
                other => {
                    tracing::warn!(response = ?other, "no producer id block from the controller");
                    return Err(ErrorCode::CoordinatorLoadInProgress);
                }
            }
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }
}
