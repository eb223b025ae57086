//! `GET /api/topics` (a page of topics: partitions, replication factor, under-replicated and
//! offline marks, size on this node, retention) and `GET /api/topics/{topic}` (a page of its
//! partitions: leader, replicas, ISR, offsets and size where this node hosts a replica; and the
//! topic's configs from the DescribeConfigs handler).
//!
//! Sizes and offsets are this node's replicas' (it knows no other node's logs); a partition
//! this node does not host shows its placement only.

use super::api::{blocking, ok, page, ApiError, Params};
use super::state::{Console, ConsoleState};
use crate::apis::describe_configs;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use rafka_controller::image::{ConfigResource, MetadataImage, PartitionRegistration};
use rafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use rafka_protocol::messages::DescribeConfigsRequest;
use rafka_security::authorizer::{AclOperation, ResourceType};
use rafka_storage::log_manager::lock_log;
use rafka_storage::TopicPartition;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// ConfigResource's type for a topic in DescribeConfigs.
const TOPIC_RESOURCE: i8 = 2;

pub async fn list(
    State(console): ConsoleState,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let params = Params::new(raw, &["offset", "limit", "q", "internal"])?;
    let (offset, limit) = page(&params)?;
    let filter = params.str("q").unwrap_or("").to_owned();
    if filter.len() > 249 {
        return Err(ApiError::bad_request(
            "q is longer than a topic name can be",
        ));
    }
    let internal = match params.str("internal") {
        None | Some("true") => true,
        Some("false") => false,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "internal={v:?}: true or false"
            )))
        }
    };
    blocking(move || list_page(&console, &filter, internal, offset, limit)).await
}

fn list_page(
    console: &Console,
    filter: &str,
    internal: bool,
    offset: usize,
    limit: usize,
) -> Result<Response, ApiError> {
    let apis = console.apis()?;
    let image = apis.image();
    let ctx = console.context();
    let authz = apis.authorizer_for(&ctx, &image);
    // Names are already sorted (the image keeps them in a map); only the page is measured.
    let names: Vec<&String> = image
        .topic_names()
        .keys()
        .filter(|n| filter.is_empty() || n.contains(filter))
        .filter(|n| internal || !n.starts_with("__"))
        .filter(|n| authz.allows(AclOperation::Describe, ResourceType::Topic, n))
        .collect();
    let total = names.len();
    let topics: Vec<Value> = names
        .iter()
        .skip(offset)
        .take(limit)
        .filter_map(|name| image.topic_by_name(name))
        .map(|t| {
            let mut under_replicated = 0;
            let mut offline = 0;
            let (mut size, mut messages, mut local) = (0u64, 0i64, 0usize);
            for (index, p) in &t.partitions {
                if p.isr.len() < p.replicas.len() {
                    under_replicated += 1;
                }
                if !p.has_leader() {
                    offline += 1;
                }
                if let Some(hosted) = apis.replica_manager.partition_by_id(&t.id, *index) {
                    let log = lock_log(&hosted.log);
                    size += log.size();
                    messages += (log.high_watermark() - log.log_start_offset()).max(0);
                    local += 1;
                }
            }
            let config = log_config(apis, &image, &t.name);
            json!({
                "name": t.name,
                "id": t.id.to_string(),
                "internal": t.name.starts_with("__"),
                "partitions": t.partitions.len(),
                "replication_factor": t.partitions.values().next().map_or(0, |p| p.replicas.len()),
                "under_replicated_partitions": under_replicated,
                "offline_partitions": offline,
                "local_partitions": local,
                "size_bytes": size,
                "messages": messages,
                "retention_ms": config.retention_ms,
                "retention_bytes": config.retention_bytes,
                "cleanup_policy": cleanup_policy(&config),
            })
        })
        .collect();
    Ok(ok(json!({
        "total": total,
        "offset": offset,
        "limit": limit,
        "topics": topics,
    })))
}

fn log_config(
    apis: &crate::apis::KafkaApis,
    image: &MetadataImage,
    topic: &str,
) -> rafka_storage::LogConfig {
    let empty = BTreeMap::new();
    let overrides = image
        .configs()
        .get(&ConfigResource::topic(topic))
        .unwrap_or(&empty);
    apis.dynamic_config
        .current_config()
        .topic_log_config(overrides)
}

fn cleanup_policy(config: &rafka_storage::LogConfig) -> &'static str {
    match (config.cleanup_policy.delete, config.cleanup_policy.compact) {
        (true, true) => "compact,delete",
        (false, true) => "compact",
        (true, false) => "delete",
        (false, false) => "",
    }
}

pub async fn describe(
    State(console): ConsoleState,
    Path(topic): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let params = Params::new(raw, &["offset", "limit"])?;
    let (offset, limit) = page(&params)?;
    let apis = console.apis()?.clone();
    let ctx = console.context();
    // The configs as DescribeConfigs answers them (with its authorization and sources).
    let resp = describe_configs::handle(
        &apis,
        &ctx,
        4,
        DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: TOPIC_RESOURCE,
                resource_name: topic.clone(),
                configuration_keys: None,
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let result = resp.results.into_iter().next();
    if let Some(r) = &result {
        if r.error_code != 0 {
            let code = rafka_protocol::ErrorCode::from_code(r.error_code)
                .unwrap_or(rafka_protocol::ErrorCode::UnknownServerError);
            return Err(ApiError::kafka(code, r.error_message.as_deref()));
        }
    }
    let configs: Vec<Value> = result
        .map(|r| r.configs)
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            json!({
                "name": c.name,
                "value": if c.is_sensitive { None } else { c.value },
                "source": config_source(c.config_source),
                "read_only": c.read_only,
                "sensitive": c.is_sensitive,
            })
        })
        .collect();
    let console2 = console.clone();
    blocking(move || {
        let image = apis.image();
        let t = image
            .topic_by_name(&topic)
            .ok_or_else(|| ApiError::not_found(format!("unknown topic {topic:?}")))?;
        let partitions: Vec<Value> = t
            .partitions
            .iter()
            .skip(offset)
            .take(limit)
            .map(|(index, p)| partition_json(&console2, &t.name, &t.id, *index, p))
            .collect();
        Ok(ok(json!({
            "name": t.name,
            "id": t.id.to_string(),
            "internal": t.name.starts_with("__"),
            "partition_count": t.partitions.len(),
            "offset": offset,
            "limit": limit,
            "partitions": partitions,
            "configs": configs,
            "write_enabled": console2.config.write_enable,
        })))
    })
    .await
}

fn partition_json(
    console: &Console,
    topic: &str,
    topic_id: &rafka_protocol::Uuid,
    index: i32,
    p: &PartitionRegistration,
) -> Value {
    let mut out = json!({
        "partition": index,
        "leader": p.leader,
        "leader_epoch": p.leader_epoch,
        "replicas": p.replicas,
        "isr": p.isr,
        "under_replicated": p.isr.len() < p.replicas.len(),
        "offline": !p.has_leader(),
    });
    let hosted = console
        .apis()
        .ok()
        .and_then(|a| a.replica_manager.partition_by_id(topic_id, index));
    if let Some(hosted) = hosted {
        debug_assert_eq!(hosted.tp, TopicPartition::new(topic.to_owned(), index));
        let log = lock_log(&hosted.log);
        out["local"] = json!({
            "log_start_offset": log.log_start_offset(),
            "high_watermark": log.high_watermark(),
            "log_end_offset": log.log_end_offset(),
            "size_bytes": log.size(),
            "segments": log.number_of_segments(),
        });
    }
    out
}

/// DescribeConfigs' ConfigSource as Kafka's enum names it.
fn config_source(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        _ => "UNKNOWN",
    }
}
