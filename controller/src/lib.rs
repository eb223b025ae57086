//! The Raft metadata quorum: metadata records, the `MetadataImage`, the openraft glue and the
//! controller logic. Lands with the controller issue.
