//! The `consumer` protocol's member metadata, as Kafka's `ConsumerProtocol` lays it out inside
//! JoinGroup and SyncGroup: a subscription (int16 version, topics, user data) and an assignment
//! (int16 version, topic → partitions, user data). Version 0 is written; every version is read,
//! as every version starts with the version-0 fields. Reading never allocates by a claimed count.

use std::collections::BTreeMap;

/// Partitions by topic.
pub type Assignment = BTreeMap<String, Vec<i32>>;

/// A version-0 ConsumerProtocolSubscription of `topics`.
pub fn encode_subscription(topics: &[String]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        put_string(&mut b, t);
    }
    b.extend_from_slice(&(-1i32).to_be_bytes()); // no user data
    b
}

/// A version-0 ConsumerProtocolAssignment.
pub fn encode_assignment(assignment: &Assignment) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(assignment.len() as i32).to_be_bytes());
    for (t, ps) in assignment {
        put_string(&mut b, t);
        b.extend_from_slice(&(ps.len() as i32).to_be_bytes());
        for p in ps {
            b.extend_from_slice(&p.to_be_bytes());
        }
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b
}

fn put_string(b: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    b.extend_from_slice(&(bytes.len() as i16).to_be_bytes());
    b.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Some(h)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = usize::try_from(self.i16()?).ok()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn count(&mut self, min_element: usize) -> Option<usize> {
        let n = usize::try_from(self.i32()?).ok()?;
        (n.saturating_mul(min_element) <= self.0.len()).then_some(n)
    }
}

/// The topics of a subscription; `None` if malformed.
pub fn decode_subscription_topics(b: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader(b);
    if r.i16()? < 0 {
        return None;
    }
    let n = r.count(2)?;
    (0..n).map(|_| r.string()).collect()
}

/// An assignment; `None` if malformed. Empty bytes (a member not yet assigned) are an empty
/// assignment.
pub fn decode_assignment(b: &[u8]) -> Option<Assignment> {
    if b.is_empty() {
        return Some(Assignment::new());
    }
    let mut r = Reader(b);
    if r.i16()? < 0 {
        return None;
    }
    let n = r.count(6)?;
    let mut out = Assignment::new();
    for _ in 0..n {
        let topic = r.string()?;
        let k = r.count(4)?;
        let ps: Option<Vec<i32>> = (0..k).map(|_| r.i32()).collect();
        out.entry(topic).or_default().extend(ps?);
    }
    Some(out)
}

/// Kafka's `RangeAssignor` for members (sorted by id) subscribed to topics with the given
/// partition counts: each topic's partitions split in contiguous ranges, the first members
/// taking one more when they do not divide evenly.
pub fn range_assign(
    members: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    for (topic, &count) in partitions {
        let subscribed: Vec<&String> = members
            .iter()
            .filter(|(_, ts)| ts.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if subscribed.is_empty() || count <= 0 {
            continue;
        }
        let n = subscribed.len() as i32;
        let (per, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in subscribed.iter().enumerate() {
            let take = per + i32::from((i as i32) < extra);
            let ps: Vec<i32> = (next..next + take).collect();
            next += take;
            if !ps.is_empty() {
                out.entry((*m).clone())
                    .or_default()
                    .insert(topic.clone(), ps);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let topics = vec!["a".to_owned(), "bb".to_owned()];
        assert_eq!(
            decode_subscription_topics(&encode_subscription(&topics)),
            Some(topics)
        );
        let mut a = Assignment::new();
        a.insert("t".into(), vec![0, 2]);
        assert_eq!(decode_assignment(&encode_assignment(&a)), Some(a));
        assert_eq!(decode_assignment(&[0, 0, 0x7f, 0xff, 0xff, 0xff]), None);
        assert_eq!(decode_subscription_topics(&[0, 0, 0, 0, 0, 1, 0, 9]), None);
    }

    #[test]
    fn range_assignor_matches_kafka() {
        let mut members = BTreeMap::new();
        members.insert("m1".to_owned(), vec!["t".to_owned()]);
        members.insert("m2".to_owned(), vec!["t".to_owned()]);
        let mut parts = BTreeMap::new();
        parts.insert("t".to_owned(), 3);
        let a = range_assign(&members, &parts);
        assert_eq!(a["m1"]["t"], vec![0, 1]);
        assert_eq!(a["m2"]["t"], vec![2]);
    }
}
