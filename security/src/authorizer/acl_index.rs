//! [`AclIndex`]: every ACL of the cluster, by id and by resource pattern, so one authorization
//! decision looks at the ACLs that can apply to its resource and nothing else (Kafka's
//! `StandardAuthorizerData` with its sorted set of ACLs).
//!
//! A decision for `(type, name)` makes `len(name) + 2` map lookups: the LITERAL `name`, the
//! LITERAL `*`, and one PREFIXED lookup per prefix of `name` — never a scan of the ACLs.
//! Filters (DescribeAcls, DeleteAcls) scan; they are admin calls.
//!
//! Ids are the 128 bits of the ACL's metadata-record UUID (`AccessControlEntryRecord.Id`).

use super::acl_binding::{AccessControlEntry, AclBinding, ResourcePattern, WILDCARD_RESOURCE};
use super::acl_binding_filter::AclBindingFilter;
use super::pattern_type::PatternType;
use super::resource_type::ResourceType;
use std::collections::BTreeMap;

/// ACLs by id and by resource pattern. Cloning copies every ACL: a holder that changes it
/// rarely (the metadata image) keeps it behind an `Arc` and copies on write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclIndex {
    by_id: BTreeMap<u128, AclBinding>,
    /// (type, pattern type) → name → the entries on that pattern, by id.
    by_pattern:
        BTreeMap<(ResourceType, PatternType), BTreeMap<String, BTreeMap<u128, AccessControlEntry>>>,
}

impl AclIndex {
    pub fn new() -> AclIndex {
        AclIndex::default()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn get(&self, id: u128) -> Option<&AclBinding> {
        self.by_id.get(&id)
    }

    /// Every ACL, by id.
    pub fn iter(&self) -> impl Iterator<Item = (u128, &AclBinding)> {
        self.by_id.iter().map(|(id, b)| (*id, b))
    }

    /// Adds (or replaces) the ACL `id`; returns the binding it replaced.
    pub fn insert(&mut self, id: u128, binding: AclBinding) -> Option<AclBinding> {
        let old = self.remove(id);
        self.by_pattern
            .entry((binding.pattern.resource_type, binding.pattern.pattern_type))
            .or_default()
            .entry(binding.pattern.name.clone())
            .or_default()
            .insert(id, binding.entry.clone());
        self.by_id.insert(id, binding);
        old
    }

    /// Removes the ACL `id`; returns it.
    pub fn remove(&mut self, id: u128) -> Option<AclBinding> {
        let binding = self.by_id.remove(&id)?;
        let key = (binding.pattern.resource_type, binding.pattern.pattern_type);
        if let Some(names) = self.by_pattern.get_mut(&key) {
            if let Some(entries) = names.get_mut(&binding.pattern.name) {
                entries.remove(&id);
                if entries.is_empty() {
                    names.remove(&binding.pattern.name);
                }
            }
            if names.is_empty() {
                self.by_pattern.remove(&key);
            }
        }
        Some(binding)
    }

    /// The id of an ACL equal to `binding`, if one is stored.
    pub fn find(&self, binding: &AclBinding) -> Option<u128> {
        self.by_pattern
            .get(&(binding.pattern.resource_type, binding.pattern.pattern_type))?
            .get(&binding.pattern.name)?
            .iter()
            .find(|(_, e)| **e == binding.entry)
            .map(|(id, _)| *id)
    }

    /// The ACLs a filter selects, by id.
    pub fn matching<'a>(
        &'a self,
        filter: &'a AclBindingFilter,
    ) -> impl Iterator<Item = (u128, &'a AclBinding)> + 'a {
        self.iter().filter(move |(_, b)| filter.matches(b))
    }

    /// Every entry whose pattern applies to the resource `resource_type`/`name`: the literal
    /// name, the literal wildcard `*`, and each prefix of `name` that has PREFIXED ACLs.
    pub fn applicable<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AccessControlEntry> + 'a {
        let literal = self.by_pattern.get(&(resource_type, PatternType::Literal));
        let exact = literal.and_then(|m| m.get(name));
        let wildcard = if name == WILDCARD_RESOURCE {
            None
        } else {
            literal.and_then(|m| m.get(WILDCARD_RESOURCE))
        };
        let prefixed = self.by_pattern.get(&(resource_type, PatternType::Prefixed));
        let prefixes = prefixed.into_iter().flat_map(move |m| {
            name.char_indices()
                .map(|(i, c)| i + c.len_utf8())
                .filter_map(move |end| m.get(&name[..end]))
        });
        exact
            .into_iter()
            .chain(wildcard)
            .chain(prefixes)
            .flat_map(|entries| entries.values())
    }

    /// Every ACL on resources of `resource_type` with the pattern it is on (a scan of that
    /// type's ACLs: for decisions by resource type, not per resource).
    pub fn of_type(
        &self,
        resource_type: ResourceType,
    ) -> impl Iterator<Item = (PatternType, &str, &AccessControlEntry)> + '_ {
        [PatternType::Literal, PatternType::Prefixed]
            .into_iter()
            .filter_map(move |p| self.by_pattern.get(&(resource_type, p)).map(|m| (p, m)))
            .flat_map(|(p, names)| {
                names
                    .iter()
                    .flat_map(move |(n, entries)| entries.values().map(move |e| (p, n.as_str(), e)))
            })
    }

    /// The patterns stored (for tests and listings).
    pub fn patterns(&self) -> impl Iterator<Item = ResourcePattern> + '_ {
        self.by_pattern.iter().flat_map(|((t, p), names)| {
            names
                .keys()
                .map(move |n| ResourcePattern::new(*t, n.clone(), *p))
        })
    }
}
