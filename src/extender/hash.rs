//! Fast non-cryptographic hashing for the extender's memo keys and name index (node
//! names and request bodies come from kube-scheduler, and every hit is confirmed by
//! comparing the bytes, so a weak hash costs only a comparison).

/// A fast 64-bit hash of a byte string (FxHash-style, 8 bytes a step). Only a memo key:
/// hits are confirmed by comparing the bytes.
pub fn hash_bytes(b: &[u8]) -> u64 {
    const K: u64 = 0xf135_7aea_2e62_a9c5;
    let mut h = b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(last)).wrapping_mul(K);
    h ^ (h >> 32)
}

/// [`std::hash::Hasher`] over [`hash_bytes`]'s mixing, for the cache's name index
/// (node names are short; SipHash dominated resolving 5,000 of them).
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash_bytes(bytes) ^ self.0.rotate_left(7);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`FastHasher`]s.
pub type FastHash = std::hash::BuildHasherDefault<FastHasher>;
