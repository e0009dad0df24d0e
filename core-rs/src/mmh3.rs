//! `MurmurHash3` (Austin Appleby's public-domain algorithm), seed 0 as Feast uses it.
//!
//! - `x86_32`: Redis hash field names, `mmh3_32("<view>:<feature>")` as 4 bytes little-endian.
//! - `x64_128`: `compute_entity_id` of the non-Redis stores (`mmh3.hash_bytes`: h1 then h2, each
//!   little-endian).

const C1_32: u32 = 0xcc9e_2d51;
const C2_32: u32 = 0x1b87_3593;

fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// `MurmurHash3` x86 32-bit.
pub fn x86_32(data: &[u8], seed: u32) -> u32 {
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(C1_32).rotate_left(15).wrapping_mul(C2_32);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k: u32 = 0;
        for (i, &b) in tail.iter().enumerate() {
            k |= u32::from(b) << (8 * i);
        }
        k = k.wrapping_mul(C1_32).rotate_left(15).wrapping_mul(C2_32);
        h ^= k;
    }
    fmix32(h ^ data.len() as u32)
}

/// `MurmurHash3` x64 128-bit, returned as the 16 bytes `mmh3.hash_bytes` gives.
pub fn x64_128(data: &[u8], seed: u32) -> [u8; 16] {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let mut h1 = u64::from(seed);
    let mut h2 = u64::from(seed);
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let mut k1 = u64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
        let mut k2 = u64::from_le_bytes(block[8..].try_into().expect("8 bytes"));
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    let mut k1: u64 = 0;
    let mut k2: u64 = 0;
    for (i, &b) in tail.iter().enumerate() {
        if i < 8 {
            k1 |= u64::from(b) << (8 * i);
        } else {
            k2 |= u64::from(b) << (8 * (i - 8));
        }
    }
    if tail.len() > 8 {
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
    }
    if !tail.is_empty() {
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&h1.to_le_bytes());
    out[8..].copy_from_slice(&h2.to_le_bytes());
    out
}

/// The Redis hash field of a feature in Feast's layout: `mmh3_32("<view>:<feature>")`, 4 bytes LE.
pub fn feature_field_name(view: &str, feature: &str) -> [u8; 4] {
    let mut key = Vec::with_capacity(view.len() + 1 + feature.len());
    key.extend_from_slice(view.as_bytes());
    key.push(b':');
    key.extend_from_slice(feature.as_bytes());
    x86_32(&key, 0).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use super::*;

    #[test]
    fn x86_32_known_values() {
        // Published reference values of MurmurHash3_x86_32.
        assert_eq!(x86_32(b"", 0), 0);
        assert_eq!(x86_32(b"", 1), 0x514e_28b7);
        assert_eq!(x86_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(
            x86_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    /// Field names Feast wrote (docs/feast-compatibility.md §1.7).
    #[test]
    fn field_names_from_the_reference() {
        assert_eq!(
            feature_field_name("driver_stats", "conv_rate"),
            [0xfa, 0x73, 0x10, 0x14]
        );
        assert_eq!(
            feature_field_name("driver_stats", "trips"),
            [0x42, 0x6a, 0xa4, 0x34]
        );
    }

    #[test]
    fn x64_128_of_the_zero_key() {
        // tests/golden/entity_keys.json, "zero join keys": the v3 key is `00000000`.
        let expect = "bc764cd8ddf7a0cff126f51c16239658";
        let got = x64_128(&[0, 0, 0, 0], 0)
            .iter()
            .fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
        assert_eq!(got, expect);
    }
}
