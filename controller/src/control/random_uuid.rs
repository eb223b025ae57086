//! New random ids, as Kafka's `Uuid.randomUuid`: for topics, ACL bindings and the cluster id.
//! The random bits come from the caller, so that tests and replays are deterministic.

use rafka_protocol::Uuid;

/// A new random UUID (version 4) from `bits`, never zero, never Kafka's reserved id 1 and never
/// one whose printed form starts with '-' (as Kafka's `Uuid.randomUuid`).
pub fn random_uuid(bits: &mut dyn FnMut() -> u128) -> Uuid {
    loop {
        let v = (bits() & !(0xF000u128 << 64) & !(0xC0u128 << 56))
            | (0x4000u128 << 64)
            | (0x80u128 << 56);
        let id = Uuid::from_u128(v);
        if v > 1 && !id.to_string().starts_with('-') {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_uuids_are_version_4() {
        let mut n = 0u128;
        let mut bits = || {
            n += 1;
            n.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
        };
        for _ in 0..100 {
            let id = random_uuid(&mut bits);
            assert_eq!(id.0[6] >> 4, 4);
            assert_eq!(id.0[8] >> 6, 2);
            assert!(!id.to_string().starts_with('-'));
        }
    }
}
