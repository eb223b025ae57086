//! Kafka's `PartitionChangeBuilder`: from a partition's registration and a target ISR, elect a
//! leader and build the `PartitionChangeRecord` that gets there — or nothing, when nothing
//! changes. Every path that moves leadership or changes an ISR goes through it (fencing,
//! unfencing, controlled shutdown, AlterPartition, ElectLeaders).
//!
//! The rules, as Kafka's (without ELR and reassignment, which rafka does not have):
//! - the ISR is never set empty: a target ISR that would be empty leaves the ISR as it is (the
//!   last member stays, and the partition goes leaderless if that member may not lead);
//! - a clean election keeps the current leader when it is still in the target ISR and
//!   acceptable, else takes the first replica (in replica order) that is; preferred election
//!   tries the first replica first;
//! - an unclean election (only with `unclean.leader.election.enable`) may take any acceptable
//!   replica when none in the ISR is; the ISR becomes that one replica and the leader
//!   `Recovering`;
//! - a leader change sets the record's leader (−1 for none), which bumps the leader epoch when
//!   applied; an ISR shrink alone does not (metadata versions since 3.6).

use crate::image::{LeaderRecoveryState, PartitionRegistration, NO_LEADER, NO_LEADER_CHANGE};
use rafka_protocol::messages::PartitionChangeRecord;
use rafka_protocol::Uuid;

/// Which leaders an election may pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// The preferred (first) replica if it can lead, else keep or pick any clean leader.
    Preferred,
    /// Any replica in the ISR.
    Online,
    /// Any replica in the ISR, else any acceptable replica at all (may lose data).
    Unclean,
}

/// Builds one partition's change; see the module docs.
pub struct PartitionChangeBuilder<'a> {
    partition: &'a PartitionRegistration,
    topic_id: Uuid,
    partition_id: i32,
    is_acceptable_leader: &'a dyn Fn(i32) -> bool,
    election: Election,
    target_isr: Vec<i32>,
    target_leader_recovery_state: LeaderRecoveryState,
}

impl<'a> PartitionChangeBuilder<'a> {
    pub fn new(
        partition: &'a PartitionRegistration,
        topic_id: Uuid,
        partition_id: i32,
        is_acceptable_leader: &'a dyn Fn(i32) -> bool,
    ) -> Self {
        PartitionChangeBuilder {
            partition,
            topic_id,
            partition_id,
            is_acceptable_leader,
            election: Election::Online,
            target_isr: partition.isr.clone(),
            target_leader_recovery_state: partition.leader_recovery_state,
        }
    }

    pub fn set_election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    pub fn set_target_isr(mut self, isr: Vec<i32>) -> Self {
        self.target_isr = isr;
        self
    }

    pub fn set_target_leader_recovery_state(mut self, state: LeaderRecoveryState) -> Self {
        self.target_leader_recovery_state = state;
        self
    }

    fn is_valid_new_leader(&self, replica: i32) -> bool {
        self.target_isr.contains(&replica) && (self.is_acceptable_leader)(replica)
    }

    /// The elected leader and whether the election was unclean.
    fn elect(&self) -> (i32, bool) {
        let replicas = &self.partition.replicas;
        if self.election == Election::Preferred {
            if let Some(&first) = replicas.first() {
                if self.is_valid_new_leader(first) {
                    return (first, false);
                }
            }
        }
        if self.is_valid_new_leader(self.partition.leader) {
            return (self.partition.leader, false);
        }
        if let Some(&r) = replicas.iter().find(|r| self.is_valid_new_leader(**r)) {
            return (r, false);
        }
        if self.election == Election::Unclean {
            if let Some(&r) = replicas.iter().find(|r| (self.is_acceptable_leader)(**r)) {
                return (r, true);
            }
        }
        (NO_LEADER, false)
    }

    /// The record, or `None` when it would change nothing.
    pub fn build(self) -> Option<PartitionChangeRecord> {
        let mut record = PartitionChangeRecord {
            topic_id: self.topic_id,
            partition_id: self.partition_id,
            leader: NO_LEADER_CHANGE,
            leader_recovery_state: LeaderRecoveryState::NO_CHANGE,
            isr: None,
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            directories: None,
            eligible_leader_replicas: None,
            last_known_elr: None,
            ..Default::default()
        };
        let (leader, unclean) = self.elect();
        if leader != self.partition.leader {
            record.leader = leader;
            if unclean {
                // Forcibly the new leader alone: this may lose data.
                record.isr = Some(vec![leader]);
                if self.partition.leader_recovery_state != LeaderRecoveryState::Recovering {
                    record.leader_recovery_state = LeaderRecoveryState::Recovering.value();
                }
            }
        }
        if record.isr.is_none()
            && !self.target_isr.is_empty()
            && self.target_isr != self.partition.isr
        {
            record.isr = Some(self.target_isr.clone());
        }
        if record.leader_recovery_state == LeaderRecoveryState::NO_CHANGE
            && self.target_leader_recovery_state != self.partition.leader_recovery_state
        {
            record.leader_recovery_state = self.target_leader_recovery_state.value();
        }
        let no_op = record.leader == NO_LEADER_CHANGE
            && record.isr.is_none()
            && record.leader_recovery_state == LeaderRecoveryState::NO_CHANGE;
        (!no_op).then_some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionRegistration {
        PartitionRegistration {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            removing_replicas: vec![],
            adding_replicas: vec![],
            leader,
            leader_recovery_state: LeaderRecoveryState::Recovered,
            leader_epoch: 3,
            partition_epoch: 4,
        }
    }

    /// (case, replicas, isr, leader, acceptable brokers, election, target isr,
    ///  expected (leader, isr, recovery state) of the record, or None for no record)
    type Case = (
        &'static str,
        &'static [i32],
        &'static [i32],
        i32,
        &'static [i32],
        Election,
        Option<&'static [i32]>,
        Option<(i32, Option<&'static [i32]>, i8)>,
    );

    #[test]
    fn elections_and_isr_targets() {
        use Election::*;
        let cases: &[Case] = &[
            (
                "nothing to do",
                &[1, 2, 3],
                &[1, 2, 3],
                1,
                &[1, 2, 3],
                Online,
                None,
                None,
            ),
            (
                "leader fenced: next in replica order",
                &[1, 2, 3],
                &[1, 2, 3],
                1,
                &[2, 3],
                Online,
                Some(&[2, 3]),
                Some((2, Some(&[2, 3]), -1)),
            ),
            (
                "follower fenced: isr shrinks, leader stays",
                &[1, 2, 3],
                &[1, 2, 3],
                1,
                &[1, 3],
                Online,
                Some(&[1, 3]),
                Some((-2, Some(&[1, 3]), -1)),
            ),
            (
                "last isr member fenced: stays, leaderless",
                &[1, 2, 3],
                &[1],
                1,
                &[2, 3],
                Online,
                Some(&[]),
                Some((-1, None, -1)),
            ),
            (
                "leaderless, member returns",
                &[1, 2, 3],
                &[1],
                -1,
                &[1, 2, 3],
                Online,
                None,
                Some((1, None, -1)),
            ),
            (
                "leaderless, outsider returns: stays leaderless",
                &[1, 2, 3],
                &[1],
                -1,
                &[2, 3],
                Online,
                None,
                None,
            ),
            (
                "unclean: outsider leads alone",
                &[1, 2, 3],
                &[1],
                -1,
                &[3],
                Unclean,
                None,
                Some((3, Some(&[3]), 1)),
            ),
            (
                "unclean prefers the isr",
                &[1, 2, 3],
                &[1, 2],
                1,
                &[2, 3],
                Unclean,
                Some(&[2]),
                Some((2, Some(&[2]), -1)),
            ),
            (
                "preferred: first replica back",
                &[1, 2, 3],
                &[1, 2, 3],
                2,
                &[1, 2, 3],
                Preferred,
                None,
                Some((1, None, -1)),
            ),
            (
                "preferred not in isr: keep leader",
                &[1, 2, 3],
                &[2, 3],
                2,
                &[1, 2, 3],
                Preferred,
                None,
                None,
            ),
            (
                "preferred fenced: keep leader",
                &[1, 2, 3],
                &[1, 2, 3],
                2,
                &[2, 3],
                Preferred,
                None,
                None,
            ),
            (
                "preferred on a leaderless partition: any clean",
                &[1, 2, 3],
                &[1, 2],
                -1,
                &[2, 3],
                Preferred,
                None,
                Some((2, None, -1)),
            ),
            (
                "isr expansion",
                &[1, 2, 3],
                &[1],
                1,
                &[1, 2, 3],
                Online,
                Some(&[1, 2]),
                Some((-2, Some(&[1, 2]), -1)),
            ),
        ];
        for (name, replicas, isr, leader, ok, election, target, want) in cases {
            let p = part(replicas, isr, *leader);
            let acceptable = |b: i32| ok.contains(&b);
            let mut builder = PartitionChangeBuilder::new(&p, Uuid::from_u128(9), 0, &acceptable)
                .set_election(*election);
            if let Some(t) = target {
                builder = builder.set_target_isr(t.to_vec());
            }
            let got = builder
                .build()
                .map(|r| (r.leader, r.isr, r.leader_recovery_state));
            let want = want.map(|(l, i, s)| (l, i.map(<[i32]>::to_vec), s));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn recovered_state_alone_is_a_change() {
        let mut p = part(&[1], &[1], 1);
        p.leader_recovery_state = LeaderRecoveryState::Recovering;
        let ok = |_: i32| true;
        let r = PartitionChangeBuilder::new(&p, Uuid::ZERO, 0, &ok)
            .set_target_leader_recovery_state(LeaderRecoveryState::Recovered)
            .build()
            .expect("a record");
        assert_eq!(
            (r.leader, r.isr, r.leader_recovery_state),
            (NO_LEADER_CHANGE, None, 0)
        );
    }
}
