//! ApiVersions: the versions we serve, as PROTOCOL.md's "advertise" column says.
//!
//! The response always uses response header v0 (the frame layer does that), and never carries
//! the optional tagged fields (supported/finalized features, ZK migration): Debian's kcat
//! (librdkafka 2.0.2) cannot parse a v3 response that has them.

use rafka_protocol::messages::{
    api_versions_response::ApiVersion, ApiVersionsResponse, RequestKind,
};
use rafka_protocol::{ApiKey, VersionRange};

/// The range announced for `key`: what we implement, widened down to 0 where old clients need
/// it to turn features on (Produce: librdkafka < 2.11.1 stops compressing otherwise; a version
/// we do not implement is answered UNSUPPORTED_VERSION if ever really sent, as Kafka 4 does).
pub fn advertised_versions(key: ApiKey) -> Option<VersionRange> {
    // Only what this broker answers: not the private or controller-listener APIs, not the ones
    // whose handlers have not landed (groups, idempotent producers).
    if !super::handles(key) {
        return None;
    }
    // Produce's schema declares 0–11 so that v0–v2 can be answered UNSUPPORTED_VERSION in their
    // own format (`produce::unsupported_version`); v3–11 are served.
    RequestKind::versions(key)
}

/// The ApiVersions body (any version encodes from it).
pub fn api_versions_response(error_code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code,
        api_keys: ApiKey::ALL
            .iter()
            .filter_map(|&k| {
                advertised_versions(k).map(|r| ApiVersion {
                    api_key: k.key(),
                    min_version: r.min,
                    max_version: r.max,
                    ..Default::default()
                })
            })
            .collect(),
        ..Default::default()
    }
}
