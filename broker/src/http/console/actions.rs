//! The console's write actions, each through the Kafka API handler that does the same for a
//! client (its validation, its authorization of the console's principal, its forwarding to the
//! controller): `POST /api/topics` (CreateTopics), `POST /api/topics/{topic}/configs`
//! (IncrementalAlterConfigs), `POST /api/groups/{group}/offsets` (OffsetCommit with generation
//! -1 and no member, as `kafka-consumer-groups.sh --reset-offsets` commits; the coordinator
//! refuses it while the group has members). Only with `http.console.write.enable=true`, and
//! only from the console's own origin ([`check_write`]).

use super::api::{ok, ApiError};
use super::state::{Console, ConsoleState};
use crate::apis::{create_topics, incremental_alter_configs, offset_commit};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::{header, StatusCode};
use axum::response::Response;
use rafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use rafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use rafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use rafka_protocol::messages::{
    CreateTopicsRequest, IncrementalAlterConfigsRequest, OffsetCommitRequest,
};
use rafka_protocol::ErrorCode;
use rafka_storage::log_manager::lock_log;
use rafka_storage::TopicPartition;
use serde_json::{json, Map, Value};

/// IncrementalAlterConfigs' operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
/// ConfigResource's type for a topic.
const TOPIC_RESOURCE: i8 = 2;

fn body_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!("the body is not JSON: {e}"))),
    }
}

fn kafka_result(code: i16, message: Option<String>) -> Result<(), ApiError> {
    if code == 0 {
        return Ok(());
    }
    let code = ErrorCode::from_code(code).unwrap_or(ErrorCode::UnknownServerError);
    Err(ApiError::kafka(code, message.as_deref()))
}

fn string_map(v: Option<&Value>, what: &str) -> Result<Vec<(String, Option<String>)>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), Some(s.clone()))),
                Value::Number(n) => Ok((k.clone(), Some(n.to_string()))),
                Value::Bool(b) => Ok((k.clone(), Some(b.to_string()))),
                Value::Null => Ok((k.clone(), None)),
                _ => Err(ApiError::bad_request(format!(
                    "{what}.{k} must be a string"
                ))),
            })
            .collect(),
        Some(_) => Err(ApiError::bad_request(format!("{what} must be an object"))),
    }
}

/// `{"name": "t", "partitions": 3, "replication_factor": 1, "configs": {"k": "v"}}`;
/// partitions and replication factor default to the broker's (-1, as CreateTopics v4+ allows).
pub async fn create_topic(
    State(console): ConsoleState,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_write(&console, &headers)?;
    let o = body_object(&body)?;
    let name = o
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("name (a string) is required"))?
        .to_owned();
    let int = |k: &str, max: i64| -> Result<i64, ApiError> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(-1),
            Some(v) => v
                .as_i64()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| ApiError::bad_request(format!("{k} must be an integer 1..={max}"))),
        }
    };
    let partitions = int("partitions", i64::from(i32::MAX))? as i32;
    let replication_factor = int("replication_factor", i64::from(i16::MAX))? as i16;
    let configs = string_map(o.get("configs"), "configs")?
        .into_iter()
        .map(|(name, value)| CreatableTopicConfig {
            name,
            value,
            ..Default::default()
        })
        .collect();
    let apis = console.apis()?;
    let resp = create_topics::handle(
        apis,
        &console.context(),
        7,
        CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.clone(),
                num_partitions: partitions,
                replication_factor,
                configs,
                ..Default::default()
            }],
            timeout_ms: 30_000,
            ..Default::default()
        },
    )
    .await;
    let r = resp
        .topics
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::bad_request("CreateTopics answered nothing"))?;
    kafka_result(r.error_code, r.error_message)?;
    Ok(ok(json!({
        "created": name,
        "topic_id": r.topic_id.to_string(),
        "partitions": r.num_partitions,
        "replication_factor": r.replication_factor,
    })))
}

/// `{"set": {"retention.ms": "60000"}, "delete": ["cleanup.policy"]}`.
pub async fn alter_configs(
    State(console): ConsoleState,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_write(&console, &headers)?;
    let o = body_object(&body)?;
    let mut configs: Vec<AlterableConfig> = string_map(o.get("set"), "set")?
        .into_iter()
        .map(|(name, value)| AlterableConfig {
            name,
            config_operation: if value.is_some() { OP_SET } else { OP_DELETE },
            value,
            ..Default::default()
        })
        .collect();
    match o.get("delete") {
        None | Some(Value::Null) => {}
        Some(Value::Array(keys)) => {
            for k in keys {
                let name = k
                    .as_str()
                    .ok_or_else(|| ApiError::bad_request("delete must list strings"))?;
                configs.push(AlterableConfig {
                    name: name.to_owned(),
                    config_operation: OP_DELETE,
                    value: None,
                    ..Default::default()
                });
            }
        }
        Some(_) => return Err(ApiError::bad_request("delete must be an array")),
    }
    if configs.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to change: give set and/or delete",
        ));
    }
    let apis = console.apis()?;
    let resp = incremental_alter_configs::handle(
        apis,
        &console.context(),
        1,
        IncrementalAlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: TOPIC_RESOURCE,
                resource_name: topic.clone(),
                configs,
                ..Default::default()
            }],
            ..Default::default()
        },
    )
    .await;
    let r = resp
        .responses
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::bad_request("IncrementalAlterConfigs answered nothing"))?;
    kafka_result(r.error_code, r.error_message)?;
    Ok(ok(json!({ "altered": topic })))
}

/// `{"topic": "t", "partitions": [0, 1] (default: every partition), "to": "earliest" | "latest"
/// | <offset>}`.
pub async fn reset_offsets(
    State(console): ConsoleState,
    Path(group): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_write(&console, &headers)?;
    let o = body_object(&body)?;
    let topic = o
        .get("topic")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("topic (a string) is required"))?
        .to_owned();
    let to = match o.get("to") {
        Some(Value::String(s)) if s == "earliest" => Target::Earliest,
        Some(Value::String(s)) if s == "latest" => Target::Latest,
        Some(v) => match v.as_i64().filter(|n| *n >= 0) {
            Some(n) => Target::Offset(n),
            None => {
                return Err(ApiError::bad_request(
                    "to: \"earliest\", \"latest\" or an offset",
                ))
            }
        },
        None => return Err(ApiError::bad_request("to is required")),
    };
    let apis = console.apis()?;
    let image = apis.image();
    let t = image
        .topic_by_name(&topic)
        .ok_or_else(|| ApiError::not_found(format!("unknown topic {topic:?}")))?;
    let partitions: Vec<i32> = match o.get("partitions") {
        None | Some(Value::Null) => t.partitions.keys().copied().collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|p| {
                p.as_i64()
                    .and_then(|p| i32::try_from(p).ok())
                    .filter(|p| t.partitions.contains_key(p))
                    .ok_or_else(|| ApiError::bad_request(format!("{topic} has no partition {p}")))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiError::bad_request("partitions must be an array")),
    };
    let mut committed = Vec::with_capacity(partitions.len());
    for p in partitions {
        // The partition's bounds on this node's replica (ListOffsets' earliest and latest).
        let tp = TopicPartition::new(topic.clone(), p);
        let hosted = apis.replica_manager.partition(&tp).ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::CONFLICT,
                format!(
                    "this node hosts no replica of {topic}-{p}: reset it on its leader's console"
                ),
            )
        })?;
        let (start, end) = {
            let log = lock_log(&hosted.log);
            (log.log_start_offset(), log.high_watermark())
        };
        let offset = match to {
            Target::Earliest => start,
            Target::Latest => end,
            // As kafka-consumer-groups.sh: an offset out of range is clamped to it.
            Target::Offset(n) => n.clamp(start, end),
        };
        committed.push(OffsetCommitRequestPartition {
            partition_index: p,
            committed_offset: offset,
            committed_metadata: Some(String::new()),
            ..Default::default()
        });
    }
    let offsets: Vec<Value> = committed
        .iter()
        .map(|c| json!({"partition": c.partition_index, "offset": c.committed_offset}))
        .collect();
    // An admin's commit (no member, epoch -1) at the newest version, as Kafka's tools send it.
    let resp = offset_commit::handle(
        apis,
        &console.context(),
        <OffsetCommitRequest as rafka_protocol::Message>::VERSIONS.max,
        OffsetCommitRequest {
            group_id: group.clone(),
            generation_id_or_member_epoch: -1,
            member_id: String::new(),
            topics: vec![OffsetCommitRequestTopic {
                name: topic.clone(),
                partitions: committed,
                ..Default::default()
            }],
            ..Default::default()
        },
    )
    .await;
    for t in &resp.topics {
        for p in &t.partitions {
            kafka_result(p.error_code, None)?;
        }
    }
    Ok(ok(
        json!({ "group": group, "topic": topic, "offsets": offsets }),
    ))
}

#[derive(Clone, Copy)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
}

/// Checks a write: enabled, and not forged (see the module doc).
pub fn check_write(console: &Console, headers: &HeaderMap) -> Result<(), ApiError> {
    if !console.config.write_enable {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the console is read-only: set http.console.write.enable=true to allow changes",
        ));
    }
    if headers.get("x-rafka-console").and_then(|v| v.to_str().ok()) != Some("1") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "a console write needs the header X-Rafka-Console: 1",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://").map(|(_, rest)| rest));
        if host.is_none() || origin_host != host {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "a console write must come from the console's own origin",
            ));
        }
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().map(str::trim) == Some("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a console write must have Content-Type: application/json",
        ));
    }
    Ok(())
}
