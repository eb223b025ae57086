//! One partition's log on disk in Apache Kafka's own format: segments, indexes, checkpoints,
//! recovery and retention. It knows nothing of networks or Kafka error codes.
//!
//! The log itself lands with the partition-log issue; the crate exists now so the workspace has
//! the shape `DESIGN.md` describes and dependencies point one way from the first commit.
