//! `GET /api/groups` (the groups this broker coordinates: state, members, total lag) and
//! `GET /api/groups/{group}` (DescribeGroups' answer with each member's assignment, the lag of
//! each committed partition from [`GroupCoordinator::lag`](crate::group_coordinator::GroupCoordinator::lag),
//! and the sampled history of the group's total lag).

use super::api::{blocking, ok, page, ApiError, Params};
use super::state::{Console, ConsoleState};
use crate::apis::describe_groups;
use crate::group_coordinator::lag::total_lag;
use crate::group_coordinator::membership::parse_assignment;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use rafka_protocol::messages::DescribeGroupsRequest;
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// Kafka's limit on a group id is the string's; ours for a path segment is this.
const MAX_GROUP_ID: usize = 1024;

/// The groups this broker coordinates, with their state (Empty for one that has only committed
/// offsets, as DescribeGroups says).
pub fn coordinated_groups(
    console: &Console,
) -> Result<BTreeMap<String, (String, String)>, ApiError> {
    let apis = console.apis()?;
    let mut groups: BTreeMap<String, (String, String)> = apis
        .groups
        .membership()
        .list_groups(&[])
        .into_iter()
        .map(|g| (g.group_id, (g.group_state, g.protocol_type)))
        .collect();
    for g in apis.groups.groups_with_offsets() {
        groups
            .entry(g)
            .or_insert_with(|| ("Empty".to_owned(), String::new()));
    }
    Ok(groups)
}

/// A group's total lag over the partitions whose end this broker knows.
pub fn group_lag(console: &Console, group: &str) -> Option<i64> {
    total_lag(&console.apis().ok()?.groups.lag(group).ok()?)
}

pub async fn list(
    State(console): ConsoleState,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let params = Params::new(raw, &["offset", "limit"])?;
    let (offset, limit) = page(&params)?;
    blocking(move || {
        let apis = console.apis()?;
        let image = apis.image();
        let ctx = console.context();
        let authz = apis.authorizer_for(&ctx, &image);
        let groups: Vec<(String, (String, String))> = coordinated_groups(&console)?
            .into_iter()
            .filter(|(g, _)| authz.allows(AclOperation::Describe, ResourceType::Group, g))
            .collect();
        let total = groups.len();
        let page: Vec<Value> = groups
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(group, (state, protocol_type))| {
                let members = apis
                    .groups
                    .membership()
                    .describe_group(&group)
                    .members
                    .len();
                json!({
                    "group": group,
                    "state": state,
                    "protocol_type": protocol_type,
                    "members": members,
                    "lag": group_lag(&console, &group),
                })
            })
            .collect();
        Ok(ok(
            json!({"total": total, "offset": offset, "limit": limit, "groups": page}),
        ))
    })
    .await
}

pub async fn describe(
    State(console): ConsoleState,
    Path(group): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    Params::new(raw, &[])?;
    if group.is_empty() || group.len() > MAX_GROUP_ID {
        return Err(ApiError::bad_request("a group id of 1 to 1024 bytes"));
    }
    let apis = console.apis()?.clone();
    let ctx = console.context();
    // DescribeGroups' answer, with its authorization and coordinator checks.
    let resp = describe_groups::handle(
        &apis,
        &ctx,
        DescribeGroupsRequest {
            groups: vec![group.clone()],
            ..Default::default()
        },
    );
    let Some(d) = resp.groups.into_iter().next() else {
        return Err(ApiError::not_found(format!("unknown group {group:?}")));
    };
    if d.error_code != 0 {
        let code = ErrorCode::from_code(d.error_code).unwrap_or(ErrorCode::UnknownServerError);
        return Err(ApiError::kafka(code, None));
    }
    if d.group_state == "Dead" {
        return Err(ApiError::not_found(format!("unknown group {group:?}")));
    }
    let members: Vec<Value> = d
        .members
        .iter()
        .map(|m| {
            let assignment = if d.protocol_type == "consumer" {
                parse_assignment(&m.member_assignment).map(|a| {
                    a.into_iter()
                        .map(
                            |(topic, partitions)| json!({"topic": topic, "partitions": partitions}),
                        )
                        .collect::<Vec<_>>()
                })
            } else {
                None
            };
            json!({
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "assignment": assignment,
            })
        })
        .collect();
    let lag = match apis.groups.lag(&group) {
        Ok(l) => l,
        Err(code) => return Err(ApiError::kafka(code, None)),
    };
    let partitions: Vec<Value> = lag
        .iter()
        .map(|p| {
            json!({
                "topic": p.topic,
                "partition": p.partition,
                "committed_offset": p.committed,
                "end_offset": p.end_offset,
                "lag": p.lag(),
            })
        })
        .collect();
    let total = total_lag(&lag);
    Ok(ok(json!({
        "group": group,
        "state": d.group_state,
        "protocol_type": d.protocol_type,
        "protocol": d.protocol_data,
        "members": members,
        "partitions": partitions,
        "lag": total,
        "lag_history": console.history.lag_history(&group),
        "write_enabled": console.config.write_enable,
    })))
}
