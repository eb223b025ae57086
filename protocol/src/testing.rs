//! Random values for property tests and benches (feature `testing`): a small deterministic
//! generator the generated `random` functions draw from, seeded by proptest.

use crate::primitives::Uuid;
use bytes::Bytes;

/// xorshift64*: deterministic per seed, good enough to explore message shapes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    pub fn float(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 20) as f64 - 1000.0
    }

    pub fn uuid(&mut self) -> Uuid {
        Uuid::from_u128((u128::from(self.next_u64()) << 64) | u128::from(self.next_u64()))
    }

    pub fn string(&mut self) -> String {
        const CHARS: &[char] = &['a', 'b', 'z', '-', '_', '.', '0', '9', 'é', '→', '🦀'];
        let n = self.below(8) as usize;
        (0..n)
            .map(|_| CHARS[self.below(CHARS.len() as u64) as usize])
            .collect()
    }

    pub fn bytes(&mut self) -> Bytes {
        let n = self.below(24) as usize;
        (0..n)
            .map(|_| self.next_u64() as u8)
            .collect::<Vec<u8>>()
            .into()
    }
}
