//! What every request handler returns: the records to commit and the response to send once
//! they are committed (Kafka's `ControllerResult`), and the cap on the records one request may
//! generate.

use rafka_protocol::messages::MetadataRecord;

/// The most records one request may generate (Kafka's `MAX_RECORDS_PER_USER_OP`); a topic
/// that would pass it fails with POLICY_VIOLATION.
pub const MAX_RECORDS_PER_USER_OP: usize = 10_000;

/// Records to commit, and the response to send once they are committed (Kafka's
/// `ControllerResult`).
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerResult<T> {
    pub records: Vec<MetadataRecord>,
    pub response: T,
}

impl<T> ControllerResult<T> {
    pub fn new(records: Vec<MetadataRecord>, response: T) -> Self {
        ControllerResult { records, response }
    }

    /// A response that needs no records (a failure, or nothing to change).
    pub fn without_records(response: T) -> Self {
        ControllerResult {
            records: Vec::new(),
            response,
        }
    }
}
