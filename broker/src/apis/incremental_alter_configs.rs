//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on topic and broker configs.
//! Checked on this broker first ([`config_admin::preprocess`]), the rest forwarded to the active
//! controller, which commits the `ConfigRecord`s (nothing with `validate_only`); the answer is
//! reassembled in request order and sent once this broker's image shows the accepted changes,
//! so the live logs already run with them and a DescribeConfigs here sees them.

use super::config_admin::{self, Change, Op, Resource};
use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use rafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestKind, ResponseKind,
};

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let image = apis.image();
    let resources: Vec<Resource<'_>> = req
        .resources
        .iter()
        .map(|r| Resource {
            resource_type: r.resource_type,
            name: &r.resource_name,
            changes: r
                .configs
                .iter()
                .map(|c| Change {
                    name: &c.name,
                    op: Op::from_code(c.config_operation),
                    value: c.value.as_deref(),
                })
                .collect(),
            legacy: false,
        })
        .collect();
    // Refused resources never reach the controller.
    let refused = config_admin::refusals(apis, ctx, &image, &resources);
    let forward = IncrementalAlterConfigsRequest {
        resources: req
            .resources
            .iter()
            .zip(&refused)
            .filter(|(_, refusal)| refusal.is_none())
            .map(|(r, _)| r.clone())
            .collect(),
        validate_only: req.validate_only,
        ..Default::default()
    };
    let answers = if forward.resources.is_empty() {
        config_admin::Answers::new()
    } else {
        match apis
            .controller
            .send(
                version,
                RequestKind::IncrementalAlterConfigs(forward.clone()),
            )
            .await
        {
            Some(ResponseKind::IncrementalAlterConfigs(resp)) => resp
                .responses
                .into_iter()
                .map(|r| {
                    (
                        (r.resource_type, r.resource_name),
                        (r.error_code, r.error_message),
                    )
                })
                .collect(),
            _ => config_admin::no_answer(
                forward
                    .resources
                    .iter()
                    .map(|r| (r.resource_type, r.resource_name.as_str())),
            ),
        }
    };
    let outcomes =
        config_admin::settle(apis, &resources, refused, &answers, req.validate_only).await;
    let responses = resources
        .iter()
        .zip(outcomes)
        .map(
            |(r, (error_code, error_message))| AlterConfigsResourceResponse {
                error_code,
                error_message,
                resource_type: r.resource_type,
                resource_name: r.name.to_owned(),
                ..Default::default()
            },
        )
        .collect();
    IncrementalAlterConfigsResponse {
        responses,
        ..Default::default()
    }
}
