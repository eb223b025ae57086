//! The metadata quorum over real TCP on 127.0.0.1, nodes in-process.

use rafka_controller::node::{ControllerNode, ControllerNodeConfig};
use rafka_protocol::messages::{
    create_topics_request, CreateTopicsRequest, RequestKind, ResponseKind,
};
use rafka_storage::DiskFs;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

struct Cluster {
    dirs: Vec<tempfile::TempDir>,
    voters: BTreeMap<u64, String>,
    nodes: BTreeMap<u64, ControllerNode>,
}

impl Cluster {
    async fn start(n: u64) -> Cluster {
        let mut listeners = BTreeMap::new();
        let mut voters = BTreeMap::new();
        for id in 1..=n {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            voters.insert(id, l.local_addr().expect("addr").to_string());
            listeners.insert(id, l);
        }
        let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().expect("tmp")).collect();
        let mut c = Cluster {
            dirs,
            voters,
            nodes: BTreeMap::new(),
        };
        for (id, l) in listeners {
            c.start_node(id, l).await;
        }
        c
    }

    async fn start_node(&mut self, id: u64, listener: TcpListener) {
        let cfg = ControllerNodeConfig::new(
            id,
            self.voters.clone(),
            self.dirs[(id - 1) as usize].path().to_path_buf(),
        );
        let node = ControllerNode::start(cfg, Arc::new(DiskFs), listener)
            .await
            .expect("start node");
        self.nodes.insert(id, node);
    }

    async fn restart(&mut self, id: u64) {
        let addr = self.voters[&id].clone();
        let l = loop {
            match TcpListener::bind(&addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.start_node(id, l).await;
    }

    async fn leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            for (id, n) in &self.nodes {
                let info = n.quorum_info();
                if info.leader == Some(*id) {
                    return *id;
                }
            }
            assert!(Instant::now() < deadline, "no leader within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn create(name: &str) -> RequestKind {
    RequestKind::CreateTopics(CreateTopicsRequest {
        topics: vec![create_topics_request::CreatableTopic {
            name: name.into(),
            num_partitions: 1,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_a_leader_and_replicate_writes() {
    let mut c = Cluster::start(3).await;
    let leader = c.leader(Duration::from_secs(10)).await;
    // No brokers are registered: a topic cannot be placed, but the answer comes back through
    // the committed path with a Kafka error code.
    let resp = c.nodes[&leader]
        .quorum_controller()
        .handle_request(7, create("orders"))
        .await;
    let Some(ResponseKind::CreateTopics(r)) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(r.topics.len(), 1);
    // The cluster id was written and reaches every node.
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.nodes.values().any(|n| n.image().cluster_id().is_none()) {
        assert!(
            Instant::now() < deadline,
            "cluster id did not reach every node"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ids: Vec<_> = c
        .nodes
        .values()
        .map(|n| n.image().cluster_id().map(str::to_owned))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    // Kill the leader: a new one is elected.
    let old = c.nodes.remove(&leader).expect("leader");
    old.shutdown().await;
    let t = Instant::now();
    let new_leader = c.leader(Duration::from_secs(10)).await;
    assert_ne!(new_leader, leader);
    println!("failover in {:?}", t.elapsed());
    c.restart(leader).await;
    let _ = c.leader(Duration::from_secs(10)).await;
}
