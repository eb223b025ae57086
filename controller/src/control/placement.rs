//! Replica placement for new partitions: Kafka's `StripedReplicaPlacer`, over the active
//! (unfenced, not shutting down) brokers only.
//!
//! Racks are striped: the first replica (the preferred leader) of successive partitions walks
//! the racks round-robin, and the brokers inside each rack in turn; the other replicas of a
//! partition take one broker from each rack before any rack gives a second — so with racks
//! present a partition spans as many racks as it can. Brokers without a rack form one rack of
//! their own. After as many partitions as brokers the follower orders are shuffled, so the same
//! replica sets do not repeat. Randomness comes from a seeded generator: the same seed and
//! calls give the same placement.
//!
//! Kafka also places on fenced brokers (as non-first replicas); rafka does not: the brief and
//! issue 4 say replicas go to unfenced brokers, and a replication factor beyond them is refused.

use std::collections::BTreeMap;

/// A broker that may take replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsableBroker {
    pub id: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("invalid replication factor {0}: the replication factor must be positive")]
    NonPositive(i32),
    #[error("all brokers are currently fenced or in controlled shutdown")]
    NoBrokers,
    #[error("the target replication factor of {replication_factor} cannot be reached because only {available} broker(s) are unfenced")]
    TooFewBrokers {
        replication_factor: i32,
        available: usize,
    },
}

/// splitmix64: small, fast, and good enough to spread replicas.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// The brokers of one rack, each handed out at most once per epoch (one epoch per partition).
/// Leaders and followers rotate on separate cursors, so every broker of a rack leads in turn
/// (Kafka's single cursor advances on every use, which can hand one broker all of a rack's
/// leaderships when the rack alternates between leading and following).
#[derive(Debug, Default)]
struct BrokerList {
    lead_order: Vec<i32>,
    lead_cursor: usize,
    follow_order: Vec<i32>,
    follow_cursor: usize,
    epoch: usize,
    used: Vec<i32>,
}

impl BrokerList {
    fn start(&mut self, epoch: usize) {
        if self.epoch != epoch {
            self.epoch = epoch;
            self.used.clear();
        }
    }

    /// The partition's leader, if this rack gives it (always the first pick of an epoch).
    fn next_leader(&mut self, epoch: usize) -> Option<i32> {
        self.start(epoch);
        if self.lead_order.is_empty() || !self.used.is_empty() {
            return None;
        }
        let b = self.lead_order[self.lead_cursor % self.lead_order.len()];
        self.lead_cursor += 1;
        self.used.push(b);
        Some(b)
    }

    fn next_follower(&mut self, epoch: usize) -> Option<i32> {
        self.start(epoch);
        for _ in 0..self.follow_order.len() {
            let b = self.follow_order[self.follow_cursor % self.follow_order.len()];
            self.follow_cursor += 1;
            if !self.used.contains(&b) {
                self.used.push(b);
                return Some(b);
            }
        }
        None
    }
}

struct RackList {
    racks: BTreeMap<Option<String>, BrokerList>,
    /// Racks in name order (no rack first): the leader's rack rotates over these.
    names: Vec<Option<String>>,
    lead_offset: usize,
    /// The order followers are drawn from racks in; shuffled every `num_brokers` partitions so
    /// the same replica sets do not repeat.
    follow_names: Vec<Option<String>>,
    follow_offset: usize,
    num_brokers: usize,
    /// One per partition placed; never reset, so a rack's list always sees a new one.
    epoch: usize,
}

impl RackList {
    fn new(rng: &mut Rng, brokers: &[UsableBroker]) -> Self {
        let mut racks: BTreeMap<Option<String>, BrokerList> = BTreeMap::new();
        for b in brokers {
            racks
                .entry(b.rack.clone())
                .or_default()
                .lead_order
                .push(b.id);
        }
        for list in racks.values_mut() {
            list.lead_order.sort_unstable();
            list.lead_order.dedup();
            list.lead_cursor = rng.below(list.lead_order.len());
            list.follow_order = list.lead_order.clone();
            list.follow_cursor = rng.below(list.follow_order.len());
            list.epoch = usize::MAX;
        }
        let names: Vec<Option<String>> = racks.keys().cloned().collect();
        let num_brokers = racks.values().map(|l| l.lead_order.len()).sum();
        let lead_offset = rng.below(names.len());
        let follow_offset = rng.below(names.len());
        RackList {
            racks,
            follow_names: names.clone(),
            names,
            lead_offset,
            follow_offset,
            num_brokers,
            epoch: 0,
        }
    }

    fn list(&mut self, name: &Option<String>) -> &mut BrokerList {
        self.racks
            .get_mut(name)
            .expect("invariant: every rack name has a list")
    }

    fn place(&mut self, rng: &mut Rng, replication_factor: usize) -> Vec<i32> {
        if self.epoch > 0 && self.epoch.is_multiple_of(self.num_brokers) && self.num_brokers > 1 {
            rng.shuffle(&mut self.follow_names);
            for list in self.racks.values_mut() {
                rng.shuffle(&mut list.follow_order);
            }
        }
        let epoch = self.epoch;
        let n = self.names.len();
        let mut out = Vec::with_capacity(replication_factor);
        // The leader: from the rack whose turn it is (every rack has a broker at an epoch's start).
        let mut leader_rack = None;
        for step in 0..n {
            let name = self.names[(self.lead_offset + step) % n].clone();
            if let Some(b) = self.list(&name).next_leader(epoch) {
                out.push(b);
                leader_rack = Some(name);
                break;
            }
        }
        // Followers: one from each rack in turn, passing over the leader's rack once, so a
        // partition spans as many racks as it can.
        let mut skip = leader_rack;
        // Each pass over the racks yields a broker or exhausts a rack: bounded by n·(rf+1).
        let start = self.follow_offset;
        for i in start..start + n * (replication_factor + 1) {
            if out.len() >= replication_factor {
                break;
            }
            let name = self.follow_names[i % n].clone();
            if skip.as_ref() == Some(&name) {
                skip = None;
                continue;
            }
            if let Some(b) = self.list(&name).next_follower(epoch) {
                out.push(b);
            }
        }
        self.epoch += 1;
        self.lead_offset += 1;
        self.follow_offset += 1;
        out
    }
}

/// Kafka's `StripedReplicaPlacer`, seeded.
#[derive(Debug, Clone)]
pub struct StripedReplicaPlacer {
    rng: Rng,
}

impl StripedReplicaPlacer {
    pub fn new(seed: u64) -> Self {
        StripedReplicaPlacer { rng: Rng(seed) }
    }

    /// Replica lists for `num_partitions` new partitions, `replication_factor` distinct brokers
    /// each, the first (the preferred leader) spread evenly.
    pub fn place(
        &mut self,
        brokers: &[UsableBroker],
        num_partitions: usize,
        replication_factor: i32,
    ) -> Result<Vec<Vec<i32>>, PlacementError> {
        if replication_factor <= 0 {
            return Err(PlacementError::NonPositive(replication_factor));
        }
        let mut racks = RackList::new(&mut self.rng, brokers);
        if racks.num_brokers == 0 {
            return Err(PlacementError::NoBrokers);
        }
        let rf = replication_factor as usize;
        if rf > racks.num_brokers {
            return Err(PlacementError::TooFewBrokers {
                replication_factor,
                available: racks.num_brokers,
            });
        }
        Ok((0..num_partitions)
            .map(|_| racks.place(&mut self.rng, rf))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    fn brokers(spec: &[(i32, Option<&str>)]) -> Vec<UsableBroker> {
        spec.iter()
            .map(|(id, rack)| UsableBroker {
                id: *id,
                rack: rack.map(str::to_string),
            })
            .collect()
    }

    #[test]
    fn refuses_impossible_factors() {
        let three = brokers(&[(1, None), (2, None), (3, None)]);
        let cases: &[(&[UsableBroker], i32, PlacementError)] = &[
            (&three, 0, PlacementError::NonPositive(0)),
            (&three, -1, PlacementError::NonPositive(-1)),
            (
                &three,
                4,
                PlacementError::TooFewBrokers {
                    replication_factor: 4,
                    available: 3,
                },
            ),
            (&[], 1, PlacementError::NoBrokers),
        ];
        for (b, rf, want) in cases {
            assert_eq!(
                StripedReplicaPlacer::new(7).place(b, 3, *rf).as_ref(),
                Err(want),
                "rf {rf}"
            );
        }
    }

    #[test]
    fn every_partition_gets_distinct_brokers_and_leaders_spread() {
        // (brokers, partitions, rf, whether leaders spread evenly over brokers: they do when
        // every rack has as many brokers — leadership is striped over racks first)
        let cases: Vec<(Vec<UsableBroker>, usize, i32, bool)> = vec![
            (brokers(&[(1, None)]), 5, 1, true),
            (brokers(&[(1, None), (2, None), (3, None)]), 30, 3, true),
            (
                brokers(&[(1, None), (2, None), (3, None), (4, None), (5, None)]),
                50,
                2,
                true,
            ),
            (
                brokers(&[
                    (1, Some("a")),
                    (2, Some("a")),
                    (3, Some("b")),
                    (4, Some("b")),
                ]),
                40,
                3,
                true,
            ),
            (
                brokers(&[
                    (1, Some("a")),
                    (2, Some("a")),
                    (3, Some("b")),
                    (4, Some("b")),
                    (5, Some("c")),
                ]),
                60,
                3,
                false,
            ),
            (
                brokers(&[(1, Some("a")), (2, None), (3, Some("b"))]),
                9,
                3,
                true,
            ),
        ];
        for (b, n, rf, even) in cases {
            for seed in 0..20 {
                let placed = StripedReplicaPlacer::new(seed)
                    .place(&b, n, rf)
                    .expect("placement");
                assert_eq!(placed.len(), n);
                let mut leaders: HashMap<i32, usize> = HashMap::new();
                for replicas in &placed {
                    assert_eq!(replicas.len(), rf as usize);
                    let set: BTreeSet<_> = replicas.iter().collect();
                    assert_eq!(
                        set.len(),
                        replicas.len(),
                        "duplicate broker in {replicas:?}"
                    );
                    assert!(replicas.iter().all(|r| b.iter().any(|x| x.id == *r)));
                    *leaders.entry(replicas[0]).or_default() += 1;
                }
                // Each broker leads n / brokers partitions, give or take one.
                let (lo, hi) = (
                    leaders.values().min().copied(),
                    leaders.values().max().copied(),
                );
                assert!(
                    !even || hi.unwrap_or(0) - lo.unwrap_or(0) <= 1,
                    "uneven leaders {leaders:?}"
                );
                assert_eq!(leaders.len(), b.len().min(n));
            }
        }
    }

    #[test]
    fn racks_are_spread_when_present() {
        let b = brokers(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
            (5, Some("c")),
            (6, Some("c")),
        ]);
        let rack = |id: i32| b.iter().find(|x| x.id == id).and_then(|x| x.rack.clone());
        for seed in 0..20 {
            for replicas in StripedReplicaPlacer::new(seed)
                .place(&b, 30, 3)
                .expect("placement")
            {
                let racks: BTreeSet<_> = replicas.iter().map(|r| rack(*r)).collect();
                assert_eq!(racks.len(), 3, "{replicas:?} is not on three racks");
            }
        }
    }

    #[test]
    fn deterministic_given_the_seed() {
        let b = brokers(&[(1, None), (2, None), (3, None), (4, None)]);
        let a = StripedReplicaPlacer::new(42).place(&b, 20, 3);
        assert_eq!(a, StripedReplicaPlacer::new(42).place(&b, 20, 3));
        assert_ne!(a, StripedReplicaPlacer::new(43).place(&b, 20, 3));
    }
}
