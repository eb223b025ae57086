//! `rafka configs`: describe (with each value's source) and alter incrementally (set, delete,
//! append, subtract) the configuration of topics and brokers — as `kafka-configs`.

use super::output::Table;
use super::shared::{Connection, ToolResult};
use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use rafka_client::{Client, ClientError};
use rafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use rafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use serde_json::json;

#[derive(Debug, Args)]
pub struct ConfigsArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub action: ConfigsAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EntityType {
    Topics,
    Brokers,
    /// A group's dynamic configs (KIP-848).
    Groups,
}

impl EntityType {
    /// Kafka's ConfigResource type.
    fn resource_type(self) -> i8 {
        match self {
            EntityType::Topics => 2,
            EntityType::Brokers => 4,
            EntityType::Groups => 32,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigsAction {
    /// The configuration of a topic, broker or group with the source of each value.
    Describe {
        #[arg(long, value_enum)]
        entity_type: EntityType,
        /// Topic name, broker id or group id.
        #[arg(long)]
        entity_name: String,
        /// Every key with its value, not only the overrides.
        #[arg(long)]
        all: bool,
    },
    /// Change a topic's, broker's or group's configuration.
    Alter {
        #[arg(long, value_enum)]
        entity_type: EntityType,
        #[arg(long)]
        entity_name: String,
        /// k=v[,k2=v2]: set (a list value in brackets: k=[a,b]).
        #[arg(long)]
        add_config: Vec<String>,
        /// k[,k2]: back to the default.
        #[arg(long)]
        delete_config: Vec<String>,
        /// k=v: add v to the list k.
        #[arg(long)]
        append_config: Vec<String>,
        /// k=v: remove v from the list k.
        #[arg(long)]
        subtract_config: Vec<String>,
    },
}

/// Kafka's `ConfigSource` names.
pub fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// Splits `a=1,b=[x,y]` at the commas outside brackets.
fn split_entries(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for ch in s.chars() {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur);
    out.into_iter()
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect()
}

fn parse_set(s: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .with_context(|| format!("expected key=value, got {s:?}"))?;
    let v = v.trim();
    let v = v
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(v);
    Ok((k.trim().to_owned(), v.to_owned()))
}

async fn target(
    client: &mut Client,
    entity: EntityType,
    name: &str,
) -> anyhow::Result<Option<i32>> {
    // A broker's own configuration is answered by that broker, as Kafka's admin client sends it.
    Ok(match entity {
        EntityType::Brokers if !name.is_empty() => {
            let id: i32 = name
                .parse()
                .with_context(|| format!("broker id {name:?} is not a number"))?;
            if !client.brokers().contains_key(&id) {
                bail!("broker {id} is not in the cluster");
            }
            Some(id)
        }
        _ => None,
    })
}

pub async fn run(args: ConfigsArgs) -> ToolResult {
    let format = args.conn.output;
    let mut client = args.conn.connect().await?;
    match args.action {
        ConfigsAction::Describe {
            entity_type,
            entity_name,
            all,
        } => {
            let node = target(&mut client, entity_type, &entity_name).await?;
            let request = DescribeConfigsRequest {
                resources: vec![DescribeConfigsResource {
                    resource_type: entity_type.resource_type(),
                    resource_name: entity_name.clone(),
                    configuration_keys: None,
                    ..Default::default()
                }],
                include_synonyms: true,
                ..Default::default()
            };
            let resp = client
                .retry("DescribeConfigs", async |c: &mut Client| match node {
                    Some(id) => c.send_to(id, request.clone()).await,
                    None => c.any().await?.send(request.clone()).await,
                })
                .await?;
            let mut table = Table::new(&["NAME", "VALUE", "SOURCE", "SENSITIVE", "READ-ONLY"]);
            for r in resp.results {
                ClientError::check(
                    format!("{entity_type:?} {entity_name}").to_lowercase(),
                    r.error_code,
                    r.error_message.as_deref(),
                )?;
                let mut configs = r.configs;
                configs.sort_by(|a, b| a.name.cmp(&b.name));
                for c in configs {
                    let dynamic = matches!(c.config_source, 1 | 2 | 3 | 8);
                    if !all && !dynamic {
                        continue;
                    }
                    let value = if c.is_sensitive {
                        json!(null)
                    } else {
                        json!(c.value)
                    };
                    table.push(vec![
                        json!(c.name),
                        value,
                        json!(source_name(c.config_source)),
                        json!(c.is_sensitive),
                        json!(c.read_only),
                    ]);
                }
            }
            table.print(format);
        }
        ConfigsAction::Alter {
            entity_type,
            entity_name,
            add_config,
            delete_config,
            append_config,
            subtract_config,
        } => {
            let mut configs = Vec::new();
            for (op, list) in [
                (0i8, &add_config),
                (2, &append_config),
                (3, &subtract_config),
            ] {
                for entry in list.iter().flat_map(|s| split_entries(s)) {
                    let (name, value) = parse_set(&entry)?;
                    configs.push(AlterableConfig {
                        name,
                        config_operation: op,
                        value: Some(value),
                        ..Default::default()
                    });
                }
            }
            for name in delete_config.iter().flat_map(|s| split_entries(s)) {
                configs.push(AlterableConfig {
                    name,
                    config_operation: 1,
                    value: None,
                    ..Default::default()
                });
            }
            if configs.is_empty() {
                bail!("nothing to alter: give --add-config, --delete-config, --append-config or --subtract-config");
            }
            let node = target(&mut client, entity_type, &entity_name).await?;
            let request = IncrementalAlterConfigsRequest {
                resources: vec![AlterConfigsResource {
                    resource_type: entity_type.resource_type(),
                    resource_name: entity_name.clone(),
                    configs,
                    ..Default::default()
                }],
                validate_only: false,
                ..Default::default()
            };
            let resp = client
                .retry(
                    "IncrementalAlterConfigs",
                    async |c: &mut Client| match node {
                        Some(id) => c.send_to(id, request.clone()).await,
                        None => c.any().await?.send(request.clone()).await,
                    },
                )
                .await?;
            for r in resp.responses {
                ClientError::check(
                    format!(
                        "{} {}",
                        if r.resource_type == 4 {
                            "broker"
                        } else {
                            "topic"
                        },
                        r.resource_name
                    ),
                    r.error_code,
                    r.error_message.as_deref(),
                )?;
            }
            println!(
                "Completed updating config for {} {entity_name}.",
                if entity_type == EntityType::Topics {
                    "topic"
                } else {
                    "broker"
                }
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_split_outside_brackets() {
        assert_eq!(
            split_entries("a=1, b=[x,y],c=2"),
            vec!["a=1".to_owned(), "b=[x,y]".into(), "c=2".into()]
        );
        assert_eq!(
            parse_set("b=[x,y]").expect("kv"),
            ("b".into(), "x,y".into())
        );
    }
}
