//! The group configuration table (Kafka's `GroupConfig`, KIP-848's dynamic group configs). It
//! lives in the controller crate (`rafka_controller::control::config::group_defs`), whose
//! AlterConfigs checks use it; the broker's DescribeConfigs and group coordinator read it
//! through this re-export.

pub use rafka_controller::control::config::group_defs::{
    group_config, group_int, GroupConfigBounds, GroupKey, CONSUMER_HEARTBEAT_INTERVAL_MS,
    CONSUMER_SESSION_TIMEOUT_MS, GROUP_CONFIGS,
};
