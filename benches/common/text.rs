//! Text-like payloads for the benches that compress: words drawn at random (xorshift, `seed`)
//! from a small vocabulary, which compress 3-4x, as text does.

/// `len` bytes of words drawn from the vocabulary, the same bytes for the same `seed`.
pub fn text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "broker ",
        "partition ",
        "offset ",
        "leader ",
        "replica ",
        "segment ",
        "index ",
        "record ",
        "batch ",
        "fetch ",
        "produce ",
        "epoch ",
        "topic ",
        "consumer ",
        "group ",
        "commit ",
    ];
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % 16) as usize].as_bytes());
    }
    out.truncate(len);
    out
}
