//! [`GroupState`]: a classic group's state (Kafka's `ClassicGroupState`).

/// Kafka's `ClassicGroupState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (there may be members pending after MEMBER_ID_REQUIRED).
    Empty,
    /// Waiting for the members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assigned; members heartbeat.
    Stable,
}

impl GroupState {
    /// Kafka's name of the state, as ListGroups and DescribeGroups print it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }

    /// Kafka's `validPreviousStates` of PreparingRebalance: a rebalance can start from here.
    pub(super) fn can_rebalance(self) -> bool {
        matches!(
            self,
            GroupState::Empty | GroupState::CompletingRebalance | GroupState::Stable
        )
    }
}
