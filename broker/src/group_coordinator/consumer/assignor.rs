//! The server-side assignors of consumer groups (KIP-848): `uniform` and `range`, under Kafka's
//! names (`group.consumer.assignors`: the short names or
//! `org.apache.kafka.coordinator.group.assignor.UniformAssignor` / `RangeAssignor`).
//!
//! An assignor maps every subscribed partition to exactly one member that subscribes to its
//! topic. Input: each member's subscribed topic ids and its current target assignment; the
//! topics' partition counts. It is pure (no clock, no I/O) and deterministic.
//!
//! - **uniform** (Kafka's `UniformAssignor`): balanced — member counts differ by at most one
//!   whenever subscriptions allow it — and sticky: a partition stays with its current owner
//!   unless balance needs it elsewhere. Kafka reaches the same goals with its optimized and
//!   general builders; the partitions that move may differ from Kafka's choice.
//! - **range** (Kafka's `RangeAssignor`): per topic, the subscribed members in member-id
//!   order get contiguous ranges, the first `partitions % members` one partition more. Kafka's
//!   range assignor also keeps a member's range sticky across member changes; this one
//!   recomputes the ranges (the result is balanced per topic either way).

use rafka_protocol::Uuid;
use std::collections::{BTreeMap, BTreeSet};

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// What an assignor knows of one member.
#[derive(Debug, Clone, Copy)]
pub struct MemberSpec<'a> {
    /// The topic ids it subscribes to (existing topics only).
    pub subscribed: &'a BTreeSet<Uuid>,
    /// Its current target assignment.
    pub current: &'a Assignment,
}

/// A server-side assignor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    Uniform,
    Range,
}

impl Assignor {
    /// The assignor named `name`: a short name (`uniform`, `range`) or Kafka's class name.
    pub fn from_name(name: &str) -> Option<Assignor> {
        match name.trim() {
            "uniform" | "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => {
                Some(Assignor::Uniform)
            }
            "range" | "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => {
                Some(Assignor::Range)
            }
            _ => None,
        }
    }

    /// The name clients use in `ServerAssignor` and tools show.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Uniform => "uniform",
            Assignor::Range => "range",
        }
    }

    /// The target assignment of every member (members without partitions map to empty).
    pub fn assign(
        self,
        members: &BTreeMap<String, MemberSpec<'_>>,
        topics: &BTreeMap<Uuid, i32>,
    ) -> BTreeMap<String, Assignment> {
        match self {
            Assignor::Uniform => uniform(members, topics),
            Assignor::Range => range(members, topics),
        }
    }
}

fn range(
    members: &BTreeMap<String, MemberSpec<'_>>,
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    for (topic, &count) in topics {
        let subscribers: Vec<&String> = members
            .iter()
            .filter(|(_, s)| s.subscribed.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if subscribers.is_empty() || count <= 0 {
            continue;
        }
        let n = subscribers.len() as i32;
        let (each, extra) = (count / n, count % n);
        for (i, m) in subscribers.into_iter().enumerate() {
            let i = i as i32;
            let start = i * each + i.min(extra);
            let len = each + i32::from(i < extra);
            if len > 0 {
                if let Some(a) = out.get_mut(m) {
                    a.entry(*topic).or_default().extend(start..start + len);
                }
            }
        }
    }
    out
}

fn uniform(
    members: &BTreeMap<String, MemberSpec<'_>>,
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    let mut count: BTreeMap<String, usize> = members.keys().map(|m| (m.clone(), 0)).collect();
    // Every partition some member subscribes to.
    let mut unassigned: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    let mut total = 0usize;
    for (topic, &n) in topics {
        if members.values().any(|s| s.subscribed.contains(topic)) {
            for p in 0..n.max(0) {
                unassigned.insert((*topic, p));
                total += 1;
            }
        }
    }
    if members.is_empty() || total == 0 {
        return out;
    }
    // Sticky: keep current partitions, up to the largest fair share.
    let cap = total.div_ceil(members.len());
    for (m, spec) in members {
        for (topic, parts) in spec.current {
            if !spec.subscribed.contains(topic) {
                continue;
            }
            for p in parts {
                let c = count.get(m.as_str()).copied().unwrap_or(0);
                if c < cap && unassigned.remove(&(*topic, *p)) {
                    out.get_mut(m)
                        .map(|a| a.entry(*topic).or_default().insert(*p));
                    count.insert(m.clone(), c + 1);
                }
            }
        }
    }
    // The rest: each to the least loaded member that subscribes to its topic.
    for (topic, p) in unassigned {
        let target = members
            .iter()
            .filter(|(_, s)| s.subscribed.contains(&topic))
            .map(|(m, _)| m)
            .min_by_key(|m| (count.get(m.as_str()).copied().unwrap_or(0), *m));
        if let Some(m) = target {
            out.get_mut(m)
                .map(|a| a.entry(topic).or_default().insert(p));
            *count.entry(m.clone()).or_default() += 1;
        }
    }
    // Balance: move a partition from a member holding two more than some other member that
    // could take it. Each move lowers the sum of squared counts, so this ends; bounded anyway.
    for _ in 0..total.saturating_mul(2) {
        let mut moved = None;
        let mut donors: Vec<(&String, usize)> = members
            .keys()
            .map(|m| (m, count.get(m.as_str()).copied().unwrap_or(0)))
            .collect();
        donors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        'find: for (d, dc) in donors {
            let Some(held) = out.get(d) else { continue };
            for (topic, parts) in held {
                let receiver = members
                    .iter()
                    .filter(|(m, s)| *m != d && s.subscribed.contains(topic))
                    .map(|(m, _)| m)
                    .min_by_key(|m| (count.get(m.as_str()).copied().unwrap_or(0), *m));
                if let (Some(r), Some(p)) = (receiver, parts.iter().next_back()) {
                    if dc > count.get(r.as_str()).copied().unwrap_or(0) + 1 {
                        moved = Some((d.clone(), r.clone(), *topic, *p));
                        break 'find;
                    }
                }
            }
        }
        let Some((d, r, topic, p)) = moved else { break };
        if let Some(a) = out.get_mut(&d) {
            if let Some(ps) = a.get_mut(&topic) {
                ps.remove(&p);
                if ps.is_empty() {
                    a.remove(&topic);
                }
            }
        }
        out.get_mut(&r)
            .map(|a| a.entry(topic).or_default().insert(p));
        *count.entry(d).or_default() -= 1;
        *count.entry(r).or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u8) -> Uuid {
        Uuid([n; 16])
    }

    fn specs<'a>(
        subs: &'a [(String, BTreeSet<Uuid>, Assignment)],
    ) -> BTreeMap<String, MemberSpec<'a>> {
        subs.iter()
            .map(|(m, s, c)| {
                (
                    m.clone(),
                    MemberSpec {
                        subscribed: s,
                        current: c,
                    },
                )
            })
            .collect()
    }

    /// Every subscribed partition is assigned exactly once, only to a subscriber.
    fn check_complete(
        members: &BTreeMap<String, MemberSpec<'_>>,
        topics: &BTreeMap<Uuid, i32>,
        out: &BTreeMap<String, Assignment>,
    ) {
        let mut seen = BTreeSet::new();
        for (m, a) in out {
            for (topic, parts) in a {
                assert!(members[m].subscribed.contains(topic), "{m} not subscribed");
                for p in parts {
                    assert!(*p < topics[topic]);
                    assert!(seen.insert((*topic, *p)), "{p} assigned twice");
                }
            }
        }
        let want: usize = topics
            .iter()
            .filter(|(id, _)| members.values().any(|s| s.subscribed.contains(id)))
            .map(|(_, n)| *n as usize)
            .sum();
        assert_eq!(seen.len(), want);
    }

    fn counts(out: &BTreeMap<String, Assignment>) -> Vec<usize> {
        out.values()
            .map(|a| a.values().map(BTreeSet::len).sum())
            .collect()
    }

    #[test]
    fn names_are_kafkas() {
        assert_eq!(Assignor::from_name("uniform"), Some(Assignor::Uniform));
        assert_eq!(
            Assignor::from_name("org.apache.kafka.coordinator.group.assignor.RangeAssignor"),
            Some(Assignor::Range)
        );
        assert_eq!(Assignor::from_name("roundrobin"), None);
    }

    #[test]
    fn uniform_balances_and_sticks() {
        let topics: BTreeMap<Uuid, i32> = [(t(1), 7), (t(2), 5)].into();
        let all: BTreeSet<Uuid> = [t(1), t(2)].into();
        let mut subs: Vec<(String, BTreeSet<Uuid>, Assignment)> = (0..3)
            .map(|i| (format!("m{i}"), all.clone(), Assignment::new()))
            .collect();
        let out = Assignor::Uniform.assign(&specs(&subs), &topics);
        check_complete(&specs(&subs), &topics, &out);
        assert_eq!(counts(&out), vec![4, 4, 4]);
        // A fourth member: it gets 3, and every partition that moves goes to it.
        for s in subs.iter_mut() {
            s.2 = out[&s.0].clone();
        }
        subs.push(("m3".into(), all.clone(), Assignment::new()));
        let out2 = Assignor::Uniform.assign(&specs(&subs), &topics);
        check_complete(&specs(&subs), &topics, &out2);
        assert_eq!(counts(&out2), vec![3, 3, 3, 3]);
        for (m, a) in &out2 {
            if m != "m3" {
                for (topic, parts) in a {
                    assert!(parts.is_subset(&out[m][topic]), "{m} gained a partition");
                }
            }
        }
    }

    #[test]
    fn uniform_respects_heterogeneous_subscriptions() {
        let topics: BTreeMap<Uuid, i32> = [(t(1), 6), (t(2), 2)].into();
        let subs = vec![
            ("a".to_string(), [t(1)].into(), Assignment::new()),
            ("b".to_string(), [t(1), t(2)].into(), Assignment::new()),
            ("c".to_string(), [t(2)].into(), Assignment::new()),
        ];
        let out = Assignor::Uniform.assign(&specs(&subs), &topics);
        check_complete(&specs(&subs), &topics, &out);
        let c = counts(&out);
        assert!(
            c.iter().max().unwrap() - c.iter().min().unwrap() <= 2,
            "{c:?}"
        );
    }

    #[test]
    fn range_gives_contiguous_ranges() {
        let topics: BTreeMap<Uuid, i32> = [(t(1), 5)].into();
        let subs: Vec<_> = ["b", "a"]
            .iter()
            .map(|m| (m.to_string(), [t(1)].into(), Assignment::new()))
            .collect();
        let out = Assignor::Range.assign(&specs(&subs), &topics);
        check_complete(&specs(&subs), &topics, &out);
        assert_eq!(out["a"][&t(1)], [0, 1, 2].into());
        assert_eq!(out["b"][&t(1)], [3, 4].into());
    }

    #[test]
    fn nothing_to_assign() {
        let topics: BTreeMap<Uuid, i32> = [(t(1), 3)].into();
        let subs = vec![("a".to_string(), BTreeSet::new(), Assignment::new())];
        for a in [Assignor::Uniform, Assignor::Range] {
            let out = a.assign(&specs(&subs), &topics);
            assert_eq!(out["a"], Assignment::new());
        }
    }
}
