//! `rafka groups`: list; describe with members, assignments and lag per partition and in
//! total; reset offsets (to earliest, latest, an offset, a datetime, by duration, shift-by;
//! `--dry-run` prints the plan, `--execute` commits it, refused while the group has members);
//! delete offsets; delete groups — as `kafka-consumer-groups`.

use super::output::{Format, Table};
use super::shared::{now_ms, Connection, ToolResult};
use anyhow::{bail, Context};
use clap::{ArgGroup, Args, Subcommand};
use rafka_client::consumer_protocol::decode_assignment;
use rafka_client::offsets::{Tp, EARLIEST, LATEST};
use rafka_client::{Client, ClientError};
use rafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use rafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use rafka_protocol::messages::describe_groups_response::DescribedGroup;
use rafka_protocol::messages::list_groups_request::ListGroupsRequest;
use rafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Args)]
pub struct GroupsArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub action: GroupsAction,
}

#[derive(Debug, Subcommand)]
pub enum GroupsAction {
    /// Every group on every broker, with its state.
    List,
    /// A group's state, members, assignments and lag.
    Describe {
        #[arg(long, short = 'g')]
        group: String,
    },
    /// Move a group's committed offsets (the group must have no members).
    #[command(group(ArgGroup::new("to").required(true).args([
        "to_earliest", "to_latest", "to_offset", "to_datetime", "by_duration", "shift_by"])))]
    #[command(group(ArgGroup::new("scope").required(true).args(["topic", "all_topics"])))]
    #[command(group(ArgGroup::new("mode").args(["dry_run", "execute"])))]
    ResetOffsets {
        #[arg(long, short = 'g')]
        group: String,
        /// topic or topic:p1,p2; may repeat.
        #[arg(long, short = 't')]
        topic: Vec<String>,
        /// Every topic the group has offsets for.
        #[arg(long)]
        all_topics: bool,
        #[arg(long)]
        to_earliest: bool,
        #[arg(long)]
        to_latest: bool,
        #[arg(long, allow_hyphen_values = true)]
        to_offset: Option<i64>,
        /// YYYY-MM-DDTHH:mm:SS[.sss][Z|±hh:mm] (UTC when no zone).
        #[arg(long)]
        to_datetime: Option<String>,
        /// ISO-8601 duration back from now, e.g. PT10M, P1DT2H.
        #[arg(long)]
        by_duration: Option<String>,
        /// Move each offset by n (negative: back).
        #[arg(long, allow_hyphen_values = true)]
        shift_by: Option<i64>,
        /// Print the plan only (the default).
        #[arg(long)]
        dry_run: bool,
        /// Commit the plan.
        #[arg(long)]
        execute: bool,
    },
    /// Delete a group's offsets for a topic (or some of its partitions).
    DeleteOffsets {
        #[arg(long, short = 'g')]
        group: String,
        /// topic or topic:p1,p2; may repeat.
        #[arg(long, short = 't', required = true)]
        topic: Vec<String>,
    },
    /// Delete groups (each must have no members).
    Delete {
        #[arg(long, short = 'g', required = true)]
        group: Vec<String>,
    },
}

pub async fn run(args: GroupsArgs) -> ToolResult {
    let format = args.conn.output;
    let mut client = args.conn.connect().await?;
    match args.action {
        GroupsAction::List => list(&mut client, format).await,
        GroupsAction::Describe { group } => describe(&mut client, &group, format).await,
        GroupsAction::ResetOffsets {
            group,
            topic,
            all_topics,
            to_earliest,
            to_latest,
            to_offset,
            to_datetime,
            by_duration,
            shift_by,
            dry_run: _,
            execute,
        } => {
            let spec = if to_earliest {
                ResetSpec::Earliest
            } else if to_latest {
                ResetSpec::Latest
            } else if let Some(o) = to_offset {
                ResetSpec::Offset(o)
            } else if let Some(d) = to_datetime {
                ResetSpec::Timestamp(parse_datetime(&d)?)
            } else if let Some(d) = by_duration {
                ResetSpec::Timestamp(now_ms() - parse_duration(&d)?)
            } else if let Some(n) = shift_by {
                ResetSpec::Shift(n)
            } else {
                bail!("give one of --to-earliest, --to-latest, --to-offset, --to-datetime, --by-duration, --shift-by");
            };
            reset(
                &mut client,
                &group,
                &topic,
                all_topics,
                spec,
                execute,
                format,
            )
            .await
        }
        GroupsAction::DeleteOffsets { group, topic } => {
            delete_offsets(&mut client, &group, &topic, format).await
        }
        GroupsAction::Delete { group } => delete(&mut client, &group, format).await,
    }
}

async fn list(client: &mut Client, format: Format) -> ToolResult {
    let brokers: Vec<i32> = client.brokers().keys().copied().collect();
    let mut groups = BTreeMap::new();
    for b in brokers {
        let resp = client.send_to(b, ListGroupsRequest::default()).await?;
        ClientError::check(format!("broker {b}"), resp.error_code, None)?;
        for g in resp.groups {
            groups.insert(g.group_id.clone(), (g.group_state, g.protocol_type));
        }
    }
    let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE"]);
    for (g, (state, ptype)) in groups {
        let state = if state.is_empty() {
            Value::Null
        } else {
            json!(state)
        };
        table.push(vec![json!(g), state, json!(ptype)]);
    }
    table.print(format);
    Ok(())
}

async fn describe_group(client: &mut Client, group: &str) -> anyhow::Result<DescribedGroup> {
    let request = DescribeGroupsRequest {
        groups: vec![group.to_owned()],
        ..Default::default()
    };
    let resp = client
        .retry("DescribeGroups", async |c: &mut Client| {
            let coordinator = c.coordinator(group, 0).await?;
            let r = c.send_to(coordinator, request.clone()).await?;
            if let Some(g) = r.groups.first() {
                ClientError::check(format!("group {group}"), g.error_code, None)?;
            }
            Ok(r)
        })
        .await?;
    resp.groups
        .into_iter()
        .next()
        .with_context(|| format!("group {group}: empty DescribeGroups answer"))
}

async fn describe(client: &mut Client, group: &str, format: Format) -> ToolResult {
    let described = describe_group(client, group).await?;
    let committed = client.committed_offsets(group).await?;
    // Who owns each partition, from the members' assignments.
    let mut owner: BTreeMap<Tp, usize> = BTreeMap::new();
    let mut members = Vec::new();
    for (i, m) in described.members.iter().enumerate() {
        let assignment = if described.protocol_type == "consumer" {
            decode_assignment(&m.member_assignment).unwrap_or_default()
        } else {
            Default::default()
        };
        let mut parts = Vec::new();
        for (t, ps) in &assignment {
            for p in ps {
                owner.insert((t.clone(), *p), i);
                parts.push(format!("{t}-{p}"));
            }
        }
        members.push(json!({
            "member_id": m.member_id,
            "group_instance_id": m.group_instance_id,
            "client_id": m.client_id,
            "host": m.client_host,
            "assignment": parts,
        }));
    }
    let mut partitions: Vec<Tp> = committed.keys().cloned().collect();
    partitions.extend(owner.keys().cloned());
    partitions.sort();
    partitions.dedup();
    let ends = if partitions.is_empty() {
        BTreeMap::new()
    } else {
        client.list_offsets(&partitions, LATEST).await?
    };
    let mut table = Table::new(&[
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]);
    let mut total_lag = 0i64;
    for tp in &partitions {
        let current = committed.get(tp).copied();
        let end = ends.get(tp).copied();
        let lag = match (current, end) {
            (Some(c), Some(e)) if e >= 0 => Some((e - c).max(0)),
            _ => None,
        };
        total_lag += lag.unwrap_or(0);
        let m = owner.get(tp).map(|i| &described.members[*i]);
        table.push(vec![
            json!(group),
            json!(tp.0),
            json!(tp.1),
            json!(current),
            json!(end),
            json!(lag),
            json!(m.map(|m| &m.member_id)),
            json!(m.map(|m| &m.client_host)),
            json!(m.map(|m| &m.client_id)),
        ]);
    }
    match format {
        Format::Json => println!(
            "{}",
            json!({
                "group": group,
                "state": described.group_state,
                "protocol_type": described.protocol_type,
                "protocol": described.protocol_data,
                "members": members,
                "partitions": table.to_json(),
                "total_lag": total_lag,
            })
        ),
        Format::Table => {
            println!(
                "Group {group} is {} ({} member{}); total lag {total_lag}.\n",
                described.group_state,
                described.members.len(),
                if described.members.len() == 1 {
                    ""
                } else {
                    "s"
                }
            );
            print!("{}", table.render());
            if !described.members.is_empty() {
                let mut mt = Table::new(&[
                    "CONSUMER-ID",
                    "HOST",
                    "CLIENT-ID",
                    "#PARTITIONS",
                    "ASSIGNMENT",
                ]);
                for m in &members {
                    let parts = m["assignment"].as_array().map_or(0, Vec::len);
                    mt.push(vec![
                        m["member_id"].clone(),
                        m["host"].clone(),
                        m["client_id"].clone(),
                        json!(parts),
                        m["assignment"].clone(),
                    ]);
                }
                println!();
                print!("{}", mt.render());
            }
            println!("\nTOTAL-LAG {total_lag}");
        }
    }
    Ok(())
}

/// Where `reset-offsets` moves each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetSpec {
    Earliest,
    Latest,
    Offset(i64),
    /// The first offset at or after this time (the log end when there is none).
    Timestamp(i64),
    Shift(i64),
}

/// `topic` or `topic:0,2` → (topic, partitions or all).
fn parse_topic_partitions(s: &str) -> anyhow::Result<(String, Option<Vec<i32>>)> {
    match s.split_once(':') {
        None => Ok((s.to_owned(), None)),
        Some((t, ps)) => {
            let ps = ps
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse::<i32>()
                        .with_context(|| format!("partition {p:?} in {s:?}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok((t.to_owned(), Some(ps)))
        }
    }
}

/// The partitions named by `--topic` arguments (all of a topic's when none are listed).
async fn resolve_partitions(client: &mut Client, topics: &[String]) -> anyhow::Result<Vec<Tp>> {
    let parsed: Vec<(String, Option<Vec<i32>>)> = topics
        .iter()
        .map(|t| parse_topic_partitions(t))
        .collect::<anyhow::Result<_>>()?;
    let names: Vec<String> = parsed.iter().map(|(t, _)| t.clone()).collect();
    let leaders = client.leaders(&names).await?;
    let mut out = Vec::new();
    for (t, ps) in parsed {
        let all: Vec<i32> = leaders
            .keys()
            .filter(|(n, _)| *n == t)
            .map(|(_, p)| *p)
            .collect();
        match ps {
            None => out.extend(all.into_iter().map(|p| (t.clone(), p))),
            Some(ps) => {
                for p in ps {
                    if !all.contains(&p) {
                        bail!("topic {t} has no partition {p}");
                    }
                    out.push((t.clone(), p));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Kafka's plan: each partition's new offset, clamped to [log start, log end].
pub fn plan(
    spec: ResetSpec,
    partitions: &[Tp],
    committed: &BTreeMap<Tp, i64>,
    earliest: &BTreeMap<Tp, i64>,
    latest: &BTreeMap<Tp, i64>,
    by_time: &BTreeMap<Tp, i64>,
) -> BTreeMap<Tp, i64> {
    let mut out = BTreeMap::new();
    for tp in partitions {
        let lo = earliest.get(tp).copied().unwrap_or(0);
        let hi = latest.get(tp).copied().unwrap_or(lo);
        let target = match spec {
            ResetSpec::Earliest => lo,
            ResetSpec::Latest => hi,
            ResetSpec::Offset(o) => o,
            ResetSpec::Timestamp(_) => match by_time.get(tp) {
                Some(&o) if o >= 0 => o,
                _ => hi,
            },
            // A partition without a committed offset shifts from the log end, as Kafka's
            // consumer would start there with auto.offset.reset=latest.
            ResetSpec::Shift(n) => committed.get(tp).copied().unwrap_or(hi).saturating_add(n),
        };
        out.insert(tp.clone(), target.clamp(lo, hi.max(lo)));
    }
    out
}

async fn reset(
    client: &mut Client,
    group: &str,
    topics: &[String],
    all_topics: bool,
    spec: ResetSpec,
    execute: bool,
    format: Format,
) -> ToolResult {
    let described = describe_group(client, group).await?;
    if !matches!(described.group_state.as_str(), "Empty" | "Dead") {
        bail!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
            described.group_state
        );
    }
    let committed = client.committed_offsets(group).await?;
    let partitions: Vec<Tp> = if all_topics {
        committed.keys().cloned().collect()
    } else {
        resolve_partitions(client, topics).await?
    };
    let (earliest, latest, by_time) = if partitions.is_empty() {
        Default::default()
    } else {
        let e = client.list_offsets(&partitions, EARLIEST).await?;
        let l = client.list_offsets(&partitions, LATEST).await?;
        let t = match spec {
            ResetSpec::Timestamp(ts) => client.list_offsets(&partitions, ts).await?,
            _ => BTreeMap::new(),
        };
        (e, l, t)
    };
    let new = plan(spec, &partitions, &committed, &earliest, &latest, &by_time);
    let mut table = Table::new(&[
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "NEW-OFFSET",
    ]);
    for (tp, o) in &new {
        table.push(vec![
            json!(group),
            json!(tp.0),
            json!(tp.1),
            json!(committed.get(tp)),
            json!(o),
        ]);
    }
    if execute && !new.is_empty() {
        client.commit_offsets(group, -1, "", &new).await?;
    }
    table.print(format);
    if format == Format::Table && !execute {
        println!("\n(dry run: nothing changed; --execute applies this plan)");
    }
    Ok(())
}

async fn delete_offsets(
    client: &mut Client,
    group: &str,
    topics: &[String],
    format: Format,
) -> ToolResult {
    let partitions = resolve_partitions(client, topics).await?;
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (t, p) in &partitions {
        by_topic.entry(t.clone()).or_default().push(*p);
    }
    let request = OffsetDeleteRequest {
        group_id: group.to_owned(),
        topics: by_topic
            .into_iter()
            .map(|(name, ps)| OffsetDeleteRequestTopic {
                name,
                partitions: ps
                    .into_iter()
                    .map(|p| OffsetDeleteRequestPartition {
                        partition_index: p,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let resp = client
        .retry("OffsetDelete", async |c: &mut Client| {
            let coordinator = c.coordinator(group, 0).await?;
            let r = c.send_to(coordinator, request.clone()).await?;
            ClientError::check(format!("group {group}"), r.error_code, None)?;
            Ok(r)
        })
        .await?;
    let mut table = Table::new(&["TOPIC", "PARTITION", "STATUS"]);
    let mut failed = 0;
    for t in resp.topics {
        for p in t.partitions {
            let status = match rafka_protocol::ErrorCode::from_code(p.error_code) {
                Some(rafka_protocol::ErrorCode::None) => "Successful".to_owned(),
                Some(e) => {
                    failed += 1;
                    format!("Error: {}", e.name())
                }
                None => {
                    failed += 1;
                    format!("Error: code {}", p.error_code)
                }
            };
            table.push(vec![json!(t.name), json!(p.partition_index), json!(status)]);
        }
    }
    table.print(format);
    if failed > 0 {
        bail!("{failed} partition(s) kept their offsets");
    }
    Ok(())
}

async fn delete(client: &mut Client, groups: &[String], format: Format) -> ToolResult {
    let mut table = Table::new(&["GROUP", "STATUS"]);
    let mut failed = 0;
    for g in groups {
        let request = DeleteGroupsRequest {
            groups_names: vec![g.clone()],
            ..Default::default()
        };
        let r = client
            .retry("DeleteGroups", async |c: &mut Client| {
                let coordinator = c.coordinator(g, 0).await?;
                let r = c.send_to(coordinator, request.clone()).await?;
                for res in &r.results {
                    let e = ClientError::check(format!("group {g}"), res.error_code, None);
                    if let Err(e) = e {
                        if e.is_retriable() {
                            return Err(e);
                        }
                    }
                }
                Ok(r)
            })
            .await?;
        for res in r.results {
            let status = match ClientError::check(format!("group {g}"), res.error_code, None) {
                Ok(()) => "Deleted".to_owned(),
                Err(e) => {
                    failed += 1;
                    format!("Error: {}", e.code().map_or("UNKNOWN", |c| c.name()))
                }
            };
            table.push(vec![json!(res.group_id), json!(status)]);
        }
    }
    table.print(format);
    if failed > 0 {
        bail!("{failed} group(s) not deleted");
    }
    Ok(())
}

/// `2024-01-31T10:00:00[.000][Z|+01:00]` → ms since the epoch (UTC when no zone is given).
pub fn parse_datetime(s: &str) -> anyhow::Result<i64> {
    use chrono::{DateTime, NaiveDateTime};
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d.timestamp_millis());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Ok(d.timestamp_millis());
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(d.and_utc().timestamp_millis());
        }
    }
    bail!("{s:?} is not a datetime like 2024-01-31T10:00:00.000 (optionally with Z or ±hh:mm)")
}

/// An ISO-8601 duration (`PnDTnHnMn.nS`, as Java's `Duration.parse`) → ms.
pub fn parse_duration(s: &str) -> anyhow::Result<i64> {
    let bad = || anyhow::anyhow!("{s:?} is not an ISO-8601 duration like PT10M or P1DT2H30M");
    let upper = s.trim().to_ascii_uppercase();
    let rest = upper.strip_prefix('P').ok_or_else(bad)?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut ms = 0f64;
    let mut any = false;
    if !days.is_empty() {
        let n = days.strip_suffix('D').ok_or_else(bad)?;
        ms += n.parse::<f64>().map_err(|_| bad())? * 86_400_000.0;
        any = true;
    }
    let mut num = String::new();
    for ch in time.chars() {
        let unit = match ch {
            'H' => 3_600_000.0,
            'M' => 60_000.0,
            'S' => 1_000.0,
            c if c.is_ascii_digit() || c == '.' || c == '-' => {
                num.push(c);
                continue;
            }
            _ => return Err(bad()),
        };
        ms += num.parse::<f64>().map_err(|_| bad())? * unit;
        num.clear();
        any = true;
    }
    if !any || !num.is_empty() {
        return Err(bad());
    }
    Ok(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_datetimes() {
        assert_eq!(parse_duration("PT10M").expect("d"), 600_000);
        assert_eq!(parse_duration("P1DT1H0.5S").expect("d"), 90_000_500);
        assert!(parse_duration("10M").is_err());
        assert!(parse_duration("P").is_err());
        assert_eq!(parse_datetime("1970-01-01T00:00:01.500").expect("t"), 1500);
        assert_eq!(parse_datetime("1970-01-01T01:00:00+01:00").expect("t"), 0);
        assert!(parse_datetime("yesterday").is_err());
    }

    #[test]
    fn plans_clamp_to_the_log() {
        let tp = ("t".to_owned(), 0);
        let parts = vec![tp.clone()];
        let m = |v: i64| BTreeMap::from([(tp.clone(), v)]);
        let (c, e, l) = (m(5), m(2), m(10));
        let none = BTreeMap::new();
        assert_eq!(plan(ResetSpec::Earliest, &parts, &c, &e, &l, &none)[&tp], 2);
        assert_eq!(plan(ResetSpec::Latest, &parts, &c, &e, &l, &none)[&tp], 10);
        assert_eq!(
            plan(ResetSpec::Offset(100), &parts, &c, &e, &l, &none)[&tp],
            10
        );
        assert_eq!(
            plan(ResetSpec::Shift(-4), &parts, &c, &e, &l, &none)[&tp],
            2
        );
        assert_eq!(plan(ResetSpec::Shift(2), &parts, &c, &e, &l, &none)[&tp], 7);
        assert_eq!(
            plan(ResetSpec::Timestamp(0), &parts, &c, &e, &l, &m(-1))[&tp],
            10
        );
        assert_eq!(
            plan(ResetSpec::Timestamp(0), &parts, &c, &e, &l, &m(4))[&tp],
            4
        );
    }
}
