//! The scrape: every series, encoded by prometheus-client's encoders (Prometheus text 0.0.4 or
//! OpenMetrics) from the recorded counters and from gauges read now from the parts that own the
//! state. Runs on a blocking thread (the `/metrics` route's): walking the hosted
//! partitions and the groups must never hold up a Kafka listener's task.

use super::state::{BrokerState, HttpState};
use crate::metrics::histogram::Histogram;
use crate::metrics::request::{PURGATORY_FETCH, PURGATORY_PRODUCE};
use crate::metrics::topic::TopicCounters;
use crate::metrics::{NodeMetrics, GROUP_REBALANCES, LOG_FLUSH};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A series' labels, in order.
type Labels = Vec<(&'static str, String)>;

/// The text of one scrape: OpenMetrics when `openmetrics`, else Prometheus text 0.0.4.
pub fn render(
    state: Arc<HttpState>,
    metrics: Arc<NodeMetrics>,
    runtime: tokio::runtime::Handle,
    openmetrics: bool,
) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape {
        state,
        metrics,
        runtime,
    }));
    let mut out = String::new();
    if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, &registry)?;
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    }
    Ok(out)
}

struct Scrape {
    state: Arc<HttpState>,
    metrics: Arc<NodeMetrics>,
    runtime: tokio::runtime::Handle,
}

impl fmt::Debug for Scrape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrape").finish_non_exhaustive()
    }
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// One counter family (`name` without `_total`; the encoder adds it).
fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels, u64)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in series {
        m.encode_family(&labels)?
            .encode_counter::<NoLabelSet, u64, u64>(&v, None)?;
    }
    Ok(())
}

/// One gauge family.
fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels, V)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in series {
        m.encode_family(&labels)?.encode_gauge(&v)?;
    }
    Ok(())
}

/// One histogram family.
fn histogram<'h>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels, &'h Histogram)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, h) in series {
        let (sum, count, buckets) = h.snapshot();
        m.encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
    }
    Ok(())
}

fn none() -> Labels {
    Vec::new()
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let enc = &mut enc;
        let m = &*self.metrics;
        if let Some(broker) = &self.state.broker {
            self.broker_topic_metrics(enc)?;
            self.request_metrics(enc)?;
            self.replica_manager(enc, broker)?;
            self.group_coordinator(enc, broker)?;
            counter(
                enc,
                "kafka_server_replicamanager_isrshrinks",
                "ISR shrinks of partitions this broker leads (IsrShrinksPerSec).",
                [(none(), load(&m.isr_shrinks))],
            )?;
            counter(
                enc,
                "kafka_server_replicamanager_isrexpands",
                "ISR expansions of partitions this broker leads (IsrExpandsPerSec).",
                [(none(), load(&m.isr_expands))],
            )?;
            gauge(
                enc,
                "kafka_server_delayedoperationpurgatory_purgatorysize",
                "Requests waiting in a purgatory: acks=all produces for the high watermark, \
                 fetches for min_bytes.",
                [
                    (
                        vec![("delayedOperation", "Produce".to_owned())],
                        PURGATORY_PRODUCE.load(Ordering::Relaxed),
                    ),
                    (
                        vec![("delayedOperation", "Fetch".to_owned())],
                        PURGATORY_FETCH.load(Ordering::Relaxed),
                    ),
                ],
            )?;
            gauge(
                enc,
                "kafka_server_socket_server_metrics_connection_count",
                "Open client connections per listener.",
                broker
                    .sockets
                    .quotas()
                    .per_listener()
                    .into_iter()
                    .map(|(l, n)| (vec![("listener", l)], n as i64)),
            )?;
            self.inter_node(enc, broker)?;
            histogram(
                enc,
                "kafka_log_logflushstats_logflushrateandtimems",
                "Time of each log flush (fsync of a log's segments), in milliseconds.",
                [(none(), &LOG_FLUSH)],
            )?;
            gauge(
                enc,
                "rafka_log_recovery_time_seconds",
                "How long opening and recovering the logs took at start.",
                [(none(), load(&m.log_recovery_us) as f64 / 1e6)],
            )?;
        }
        self.controller(enc)?;
        self.runtime(enc)?;
        Ok(())
    }
}

impl Scrape {
    /// Kafka's selector metrics (`connection-creation-total`, `connection-close-total`,
    /// `connection-count`, `request-total`) of the broker's clients to other nodes, by client:
    /// `broker-to-controller` and `inter-broker` (replica fetchers included).
    fn inter_node(&self, enc: &mut DescriptorEncoder, broker: &BrokerState) -> fmt::Result {
        let by_client = |f: fn(&crate::inter_node_client::InterNodeStats) -> u64| {
            broker
                .inter_node
                .iter()
                .map(move |c| (vec![("client", c.name().to_owned())], f(c.stats())))
        };
        counter(
            enc,
            "rafka_inter_node_connection_creation",
            "Connections opened to other nodes of the cluster.",
            by_client(|s| load(&s.connection_creation_total)),
        )?;
        counter(
            enc,
            "rafka_inter_node_connection_creation_failed",
            "Connection attempts to other nodes that failed (refused, timed out, TLS or SASL).",
            by_client(|s| load(&s.connection_creation_failed_total)),
        )?;
        counter(
            enc,
            "rafka_inter_node_connection_close",
            "Connections to other nodes closed by this node (after an error, a timeout, a move).",
            by_client(|s| load(&s.connection_close_total)),
        )?;
        gauge(
            enc,
            "rafka_inter_node_connection_count",
            "Connections to other nodes open now.",
            by_client(|s| s.connection_count()).map(|(l, n)| (l, n as i64)),
        )?;
        counter(
            enc,
            "rafka_inter_node_request",
            "Requests to other nodes answered.",
            by_client(|s| load(&s.request_total)),
        )
    }

    fn broker_topic_metrics(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let stats = &self.metrics.topics;
        let topics = stats.topics();
        type Field = fn(&TopicCounters) -> &AtomicU64;
        let families: [(&str, &str, Field); 8] = [
            (
                "bytesin",
                "Bytes appended from producers (BytesInPerSec).",
                |c| &c.bytes_in,
            ),
            ("messagesin", "Records appended (MessagesInPerSec).", |c| {
                &c.messages_in
            }),
            (
                "bytesout",
                "Record bytes sent to consumers (BytesOutPerSec).",
                |c| &c.bytes_out,
            ),
            (
                "bytesrejected",
                "Bytes of produced records refused (BytesRejectedPerSec).",
                |c| &c.bytes_rejected,
            ),
            (
                "totalproducerequests",
                "Partition appends asked for (TotalProduceRequestsPerSec).",
                |c| &c.total_produce_requests,
            ),
            (
                "failedproducerequests",
                "Partition appends that failed (FailedProduceRequestsPerSec).",
                |c| &c.failed_produce_requests,
            ),
            (
                "totalfetchrequests",
                "Partition reads for fetches (TotalFetchRequestsPerSec).",
                |c| &c.total_fetch_requests,
            ),
            (
                "failedfetchrequests",
                "Partition reads for fetches that failed (FailedFetchRequestsPerSec).",
                |c| &c.failed_fetch_requests,
            ),
        ];
        for (name, help, field) in families {
            let series = std::iter::once((none(), load(field(stats.all())))).chain(
                topics
                    .iter()
                    .map(|(t, h)| (vec![("topic", t.clone())], load(field(&h.topic)))),
            );
            counter(
                enc,
                &format!("kafka_server_brokertopicmetrics_{name}"),
                help,
                series,
            )?;
        }
        counter(
            enc,
            "kafka_server_brokertopicmetrics_replicationbytesin",
            "Bytes a follower appended from its leaders (ReplicationBytesInPerSec).",
            [(none(), load(&stats.replication_bytes_in))],
        )?;
        counter(
            enc,
            "kafka_server_brokertopicmetrics_replicationbytesout",
            "Record bytes sent to followers (ReplicationBytesOutPerSec).",
            [(none(), load(&stats.replication_bytes_out))],
        )
    }

    fn request_metrics(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let requests = &self.metrics.requests;
        let label = |k: i16| {
            vec![(
                "request",
                rafka_protocol::ApiKey::from_key(k)
                    .map_or_else(|| k.to_string(), |a| a.name().to_owned()),
            )]
        };
        counter(
            enc,
            "kafka_network_requestmetrics_requests",
            "Requests answered, per API (RequestsPerSec).",
            requests.served().map(|(k, a)| (label(k), a.total.count())),
        )?;
        type Part = fn(&crate::metrics::request::ApiTimes) -> &Histogram;
        let parts: [(&str, &str, Part); 5] = [
            (
                "totaltimems",
                "A request's whole time, received to sent, in ms.",
                |a| &a.total,
            ),
            (
                "requestqueuetimems",
                "Time a read request waited for room in the request memory pool, in ms.",
                |a| &a.request_queue,
            ),
            (
                "localtimems",
                "Time the handler worked on a request, in ms.",
                |a| &a.local,
            ),
            (
                "remotetimems",
                "Time a request waited in a purgatory (acks=all, fetch min_bytes), in ms.",
                |a| &a.remote,
            ),
            (
                "responsesendtimems",
                "Time writing a response to the socket, in ms.",
                |a| &a.response_send,
            ),
        ];
        for (name, help, part) in parts {
            histogram(
                enc,
                &format!("kafka_network_requestmetrics_{name}"),
                help,
                requests.served().map(|(k, a)| (label(k), part(a))),
            )?;
        }
        Ok(())
    }

    fn replica_manager(&self, enc: &mut DescriptorEncoder, broker: &BrokerState) -> fmt::Result {
        let image = broker.apis.image();
        let rm = &broker.apis.replica_manager;
        let s = rm.partition_summary(&image, self.metrics.config.partition_level);
        let g = |enc: &mut DescriptorEncoder, name: &str, help: &str, v: usize| {
            gauge(enc, name, help, [(none(), v as i64)])
        };
        g(
            enc,
            "kafka_server_replicamanager_partitioncount",
            "Partitions hosted here.",
            s.partitions,
        )?;
        g(
            enc,
            "kafka_server_replicamanager_leadercount",
            "Partitions led here.",
            s.leaders,
        )?;
        g(
            enc,
            "kafka_server_replicamanager_underreplicatedpartitions",
            "Partitions led here whose ISR is smaller than their replica set.",
            s.under_replicated,
        )?;
        g(
            enc,
            "kafka_server_replicamanager_underminisrpartitioncount",
            "Partitions led here whose ISR is smaller than min.insync.replicas.",
            s.under_min_isr,
        )?;
        g(
            enc,
            "kafka_server_replicamanager_atminisrpartitioncount",
            "Partitions led here whose ISR is exactly min.insync.replicas.",
            s.at_min_isr,
        )?;
        g(
            enc,
            "kafka_server_replicamanager_offlinereplicacount",
            "Replicas this broker cannot host (their log could not be created or opened).",
            s.offline_replicas,
        )?;
        if let Some(logs) = &s.logs {
            let part = |l: &crate::replica_manager::metrics::LogStats| {
                vec![
                    ("topic", l.topic.clone()),
                    ("partition", l.partition.to_string()),
                ]
            };
            gauge(
                enc,
                "kafka_log_log_size",
                "A partition's log size in bytes.",
                logs.iter().map(|l| (part(l), l.size as i64)),
            )?;
            gauge(
                enc,
                "kafka_log_log_numlogsegments",
                "A partition's segments.",
                logs.iter().map(|l| (part(l), l.segments as i64)),
            )?;
            gauge(
                enc,
                "kafka_log_log_logstartoffset",
                "A partition's log start offset.",
                logs.iter().map(|l| (part(l), l.log_start_offset)),
            )?;
            gauge(
                enc,
                "kafka_log_log_logendoffset",
                "A partition's log end offset.",
                logs.iter().map(|l| (part(l), l.log_end_offset)),
            )?;
        }
        Ok(())
    }

    fn group_coordinator(&self, enc: &mut DescriptorEncoder, broker: &BrokerState) -> fmt::Result {
        let groups = &broker.apis.groups;
        let listed = groups.membership().list_groups(&[]);
        let mut states: BTreeMap<&str, i64> = [
            ("PreparingRebalance", 0),
            ("CompletingRebalance", 0),
            ("Stable", 0),
            ("Empty", 0),
        ]
        .into_iter()
        .collect();
        let mut ids: Vec<String> = Vec::with_capacity(listed.len());
        for g in &listed {
            if let Some(n) = states.get_mut(g.group_state.as_str()) {
                *n += 1;
            }
            ids.push(g.group_id.clone());
        }
        // Groups that exist only through committed offsets are Empty, as Kafka lists them.
        for g in groups.groups_with_offsets() {
            if !ids.contains(&g) {
                *states.entry("Empty").or_default() += 1;
                ids.push(g);
            }
        }
        gauge(
            enc,
            "kafka_coordinator_group_groupmetadatamanager_numgroups",
            "Groups coordinated here.",
            [(none(), ids.len() as i64)],
        )?;
        for (state, n) in &states {
            gauge(
                enc,
                &format!(
                    "kafka_coordinator_group_groupmetadatamanager_numgroups{}",
                    state.to_lowercase()
                ),
                &format!("Groups coordinated here in state {state}."),
                [(none(), *n)],
            )?;
        }
        counter(
            enc,
            "kafka_server_group_coordinator_metrics_group_completed_rebalance",
            "Rebalances completed by the groups coordinated here (group-completed-rebalance-count).",
            [(none(), GROUP_REBALANCES.load(Ordering::Relaxed))],
        )?;
        counter(
            enc,
            "kafka_server_group_coordinator_metrics_offset_commit",
            "Offsets committed through this coordinator (offset-commit-count).",
            [(none(), load(&self.metrics.offset_commits))],
        )?;
        // Lag: the one place that computes it is `GroupCoordinator::lag`.
        ids.sort();
        let mut per_partition = Vec::new();
        let mut per_group = Vec::new();
        for group in &ids {
            let Ok(lags) = groups.lag(group) else {
                continue;
            };
            let mut total = 0i64;
            let mut known = false;
            for l in &lags {
                if let Some(lag) = l.lag() {
                    known = true;
                    total += lag;
                    per_partition.push((
                        vec![
                            ("group", group.clone()),
                            ("topic", l.topic.clone()),
                            ("partition", l.partition.to_string()),
                        ],
                        lag,
                    ));
                }
            }
            if known {
                per_group.push((vec![("group", group.clone())], total));
            }
        }
        gauge(
            enc,
            "rafka_consumergroup_lag",
            "Records between a group's committed offset and the partition's high watermark.",
            per_partition,
        )?;
        gauge(
            enc,
            "rafka_consumergroup_lag_sum",
            "A group's lag over the partitions it committed (where this broker knows the end).",
            per_group,
        )
    }

    fn controller(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let controller = &self.state.controller;
        let q = controller.quorum_info();
        let me = u64::try_from(self.state.node_id).ok();
        let active = self.state.is_controller && q.leader.is_some() && q.leader == me;
        gauge(
            enc,
            "kafka_controller_kafkacontroller_activecontrollercount",
            "1 on the active controller (the Raft leader), 0 elsewhere.",
            [(none(), i64::from(active))],
        )?;
        // As Kafka, the controller's view is reported by the active controller only.
        let (offline, partitions, topics, brokers, fenced) = if active {
            let image = controller.image();
            let offline = image
                .partitions()
                .filter(|(_, _, r)| r.leader == rafka_controller::image::NO_LEADER)
                .count();
            let partitions = image.partitions().count();
            let fenced = image.brokers().values().filter(|b| b.fenced).count();
            (
                offline,
                partitions,
                image.topics().len(),
                image.brokers().len() - fenced,
                fenced,
            )
        } else {
            (0, 0, 0, 0, 0)
        };
        let g = |enc: &mut DescriptorEncoder, name: &str, help: &str, v: usize| {
            gauge(enc, name, help, [(none(), v as i64)])
        };
        g(
            enc,
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            "Partitions without a leader (on the active controller; 0 elsewhere).",
            offline,
        )?;
        g(
            enc,
            "kafka_controller_kafkacontroller_globalpartitioncount",
            "Partitions in the cluster (on the active controller; 0 elsewhere).",
            partitions,
        )?;
        g(
            enc,
            "kafka_controller_kafkacontroller_globaltopiccount",
            "Topics in the cluster (on the active controller; 0 elsewhere).",
            topics,
        )?;
        g(
            enc,
            "kafka_controller_kafkacontroller_activebrokercount",
            "Registered, unfenced brokers (on the active controller; 0 elsewhere).",
            brokers,
        )?;
        g(
            enc,
            "kafka_controller_kafkacontroller_fencedbrokercount",
            "Registered, fenced brokers (on the active controller; 0 elsewhere).",
            fenced,
        )?;
        // The Raft quorum (Kafka's `kafka.server:type=raft-metrics`).
        gauge(
            enc,
            "kafka_server_raft_metrics_current_leader",
            "The quorum leader's node id (-1: none known).",
            [(none(), q.leader.map_or(-1, |l| l as i64))],
        )?;
        gauge(
            enc,
            "kafka_server_raft_metrics_current_epoch",
            "The Raft term.",
            [(none(), q.term as i64)],
        )?;
        gauge(
            enc,
            "kafka_server_raft_metrics_high_watermark",
            "The metadata log's commit index as applied on this node (-1: none).",
            [(none(), q.last_applied.map_or(-1, |i| i as i64))],
        )?;
        gauge(
            enc,
            "kafka_server_raft_metrics_log_end_offset",
            "The metadata log's last index on this node (-1: empty).",
            [(none(), q.last_log_index.map_or(-1, |i| i as i64))],
        )?;
        // Each voter's lag, as the leader sees it (DescribeQuorum's figures).
        let end = q.last_log_index.map_or(-1, |i| i as i64);
        gauge(
            enc,
            "rafka_raft_voter_lag",
            "On the quorum leader: entries each voter's log is behind the leader's.",
            q.replicas
                .iter()
                .filter(|(id, _)| q.voters.contains(id))
                .map(|(id, matched)| {
                    let matched = matched.map_or(-1, |m| m as i64);
                    (vec![("voter", id.to_string())], (end - matched).max(0))
                }),
        )
    }

    fn runtime(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let m = self.runtime.metrics();
        gauge(
            enc,
            "kafka_network_socketserver_networkprocessoravgidlepercent",
            "The share of the tokio workers' time spent idle since the previous scrape (0 to 1): \
             the workers run the connection tasks that do Kafka's network processors' work.",
            [(none(), self.metrics.runtime_idle_ratio(&self.runtime))],
        )?;
        gauge(
            enc,
            "rafka_tokio_workers",
            "Worker threads of the tokio runtime.",
            [(none(), m.num_workers() as i64)],
        )?;
        gauge(
            enc,
            "rafka_tokio_alive_tasks",
            "Tasks alive in the tokio runtime (about one per connection, plus the node's own).",
            [(none(), m.num_alive_tasks() as i64)],
        )?;
        gauge(
            enc,
            "rafka_tokio_global_queue_depth",
            "Tasks waiting in the runtime's global queue.",
            [(none(), m.global_queue_depth() as i64)],
        )
    }
}
