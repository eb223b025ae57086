//! [`MembershipConfig`]: the broker settings of classic groups, and the one Kafka does not
//! make configurable.

/// How long a new member's JoinGroup may wait before the member is dropped (Kafka's
/// `classicGroupNewMemberJoinTimeoutMs`, 5 minutes, not configurable there either): a client
/// that gave up on a long rebalance and retried would otherwise leave defunct members behind.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i32 = 5 * 60 * 1000;

/// The broker settings of classic groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipConfig {
    /// `group.min.session.timeout.ms` (6000).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (1800000).
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms` (3000).
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size` (`i32::MAX`).
    pub max_size: i32,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3000,
            max_size: i32::MAX,
        }
    }
}
