//! [`ElectionObserver`]: what the election task ([`crate::election`]) learns outside openraft's
//! metrics — the vote the log store is about to save, and the answers to this node's vote
//! requests that the network sees. The log store and the network feed it; the election task
//! reads it. It decides nothing itself.

use crate::raft_types::{NodeId, Vote};
use openraft::raft::{VoteRequest, VoteResponse};
use std::sync::{Arc, Mutex, MutexGuard};

/// What the election task learns from the log store and the network. Cheap to clone (shared).
///
/// Thread-safety: a std `Mutex`, held for a few field reads or writes, never across `.await`;
/// no other lock is taken while it is held.
#[derive(Debug, Clone, Default)]
pub(crate) struct ElectionObserver {
    inner: Arc<Mutex<Observed>>,
}

#[derive(Debug, Default)]
struct Observed {
    /// The vote the log store was last asked to save (set before the write).
    saving: Option<Vote>,
    /// The term of this node's latest vote requests, and what their answers showed.
    term: u64,
    split: bool,
    longer_log: bool,
}

impl ElectionObserver {
    fn lock(&self) -> MutexGuard<'_, Observed> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the log store before it writes `vote`.
    pub(crate) fn saving_vote(&self, vote: &Vote) {
        self.lock().saving = Some(*vote);
    }

    /// Called by the network with each answer to this node's vote requests.
    pub(crate) fn vote_answered(&self, req: &VoteRequest<NodeId>, resp: &VoteResponse<NodeId>) {
        let term = req.vote.leader_id().term;
        let mut o = self.lock();
        if term < o.term {
            return; // An answer to an older election.
        }
        if term > o.term {
            o.term = term;
            o.split = false;
            o.longer_log = false;
        }
        if resp.vote_granted {
            return;
        }
        if resp.last_log_id > req.last_log_id {
            o.longer_log = true;
        } else if resp.vote.leader_id().term == term
            && !resp.vote.is_committed()
            && resp.vote.leader_id().voted_for() != req.vote.leader_id().voted_for()
        {
            // It voted for another candidate of this term: neither can win this term.
            o.split = true;
        }
    }

    /// Whether a voter answering this node's vote requests in `term` showed a longer log.
    pub(crate) fn saw_longer_log(&self, term: u64) -> bool {
        let o = self.lock();
        o.term == term && o.longer_log
    }

    /// Whether `node_id`, candidate in `term`, lost to a split vote (counted for the widening
    /// retry delay): its election in `term` split the vote, no voter showed a longer log, and
    /// the vote being saved is still its own uncommitted vote for `term` (it has not granted a
    /// vote to anyone else, or heard from a leader, since).
    pub(crate) fn split_vote(&self, node_id: NodeId, term: u64) -> bool {
        let o = self.lock();
        o.term == term && o.split && !o.longer_log && o.saving == Some(Vote::new(term, node_id))
    }
}
