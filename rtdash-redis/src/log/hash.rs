//! The two hashes every node must compute alike: which partition a metric belongs to,
//! and which live node should own a partition (rendezvous hashing).
//!
//! Both are FNV-1a 64 (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`)
//! followed by MurmurHash3's 64-bit finalizer (`fmix64`: FNV-1a alone mixes poorly, its
//! low bits depend only on the bytes' low bits), fixed forever: changing them would move
//! metrics and partitions between nodes of different versions.

use std::collections::BTreeSet;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of the concatenation of `parts`.
pub(crate) fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h = FNV_OFFSET;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
    }
    h
}

/// The partition of `metric` among `partitions` (at least 1): `fmix64` of FNV-1a 64 of
/// its UTF-8 bytes, modulo `partitions`.
pub(crate) fn partition_of(metric: &str, partitions: u32) -> u32 {
    let n = u64::from(partitions.max(1));
    // The remainder is below `partitions`, so it fits.
    u32::try_from(fmix64(fnv1a64(&[metric.as_bytes()])) % n).unwrap_or(0)
}

/// The rendezvous weight of `node` for partition `p`: `fmix64` of FNV-1a 64 of the node id's bytes,
/// a `0xff` byte (which no node id contains: they are printable ASCII), and `p` as four
/// little-endian bytes.
pub(crate) fn weight(node: &str, p: u32) -> u64 {
    fmix64(fnv1a64(&[node.as_bytes(), &[0xff], &p.to_le_bytes()]))
}

/// MurmurHash3's 64-bit finalizer: FNV-1a's high bits mix its last bytes poorly (two
/// nodes split 1,024 partitions 667 / 357 on raw FNV weights); after this they split
/// evenly (about 500 each).
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The node that should own partition `p`: the one with the highest weight; on equal
/// weights, the smallest node id (byte order). `None` when `live` is empty.
pub(crate) fn owner_of(p: u32, live: &[String]) -> Option<&str> {
    live.iter()
        .map(String::as_str)
        .max_by(|a, b| weight(a, p).cmp(&weight(b, p)).then_with(|| b.cmp(a)))
}

/// The partitions, of `0..partitions`, that `node` should own when `live` are the live
/// nodes (`node` counts as live even when `live` lacks it).
pub(crate) fn desired(node: &str, partitions: u32, live: &[String]) -> BTreeSet<u32> {
    let mut all: Vec<String> = live.to_vec();
    if !all.iter().any(|n| n == node) {
        all.push(node.to_owned());
    }
    (0..partitions)
        .filter(|&p| owner_of(p, &all) == Some(node))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foobar"]), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a64(&[b"foo", b"", b"bar"]), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn partitions_are_fixed() {
        // These values must never change: other processes and versions compute the same.
        assert_eq!(partition_of("", 8), 6);
        assert_eq!(partition_of("a", 8), 3);
        assert_eq!(partition_of("foobar", 8), 3);
        assert_eq!(partition_of("foobar", 1000), 275); // 0x2c22194922d1672b % 1000
        assert_eq!(partition_of("anything", 1), 0);
        assert_eq!(partition_of("anything", 0), 0);
    }

    #[test]
    fn weights_are_fixed() {
        let mut bytes = b"node-a".to_vec();
        bytes.push(0xff);
        bytes.extend_from_slice(&7u32.to_le_bytes());
        assert_eq!(weight("node-a", 7), fmix64(fnv1a64(&[&bytes])));
        // Pinned: the assignment of every node of every version depends on it.
        assert_eq!(weight("a", 0), 0x94f7_b802_f094_3e25);
    }

    #[test]
    fn every_partition_has_one_owner_and_small_clusters_share() {
        let live: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let sets: Vec<_> = live.iter().map(|n| desired(n, 16, &live)).collect();
        for p in 0..16 {
            assert_eq!(sets.iter().filter(|s| s.contains(&p)).count(), 1, "{p}");
        }
        for (n, s) in live.iter().zip(&sets) {
            assert!(!s.is_empty(), "{n} owns nothing of 16: {sets:?}");
        }
        assert_eq!(owner_of(3, &[]), None);
        // A node that is not in the live set yet counts itself.
        assert_eq!(desired("a", 16, &[]).len(), 16);
    }

    fn nodes() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::btree_set("[a-z0-9-]{1,12}", 1..8)
            .prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        /// A node joining takes partitions only for itself, and a node leaving moves only
        /// its own: every other partition keeps its owner.
        #[test]
        fn membership_changes_move_only_the_partitions_concerned(
            live in nodes(), joiner in "[a-z0-9-]{1,12}", partitions in 1u32..200,
        ) {
            prop_assume!(!live.contains(&joiner));
            let mut grown = live.clone();
            grown.push(joiner.clone());
            for p in 0..partitions {
                let before = owner_of(p, &live);
                let after = owner_of(p, &grown);
                prop_assert!(after == before || after == Some(joiner.as_str()));
                // Removing the joiner again restores the owner: a leave is the inverse.
                prop_assert_eq!(owner_of(p, &live), before);
            }
        }

        /// The assignment does not depend on the order nodes are listed in, and each
        /// partition goes to exactly one node (the oracle: the highest weight).
        #[test]
        fn the_assignment_is_order_free_and_a_partition_has_one_owner(
            live in nodes(), partitions in 1u32..100,
        ) {
            let mut reversed = live.clone();
            reversed.reverse();
            for p in 0..partitions {
                prop_assert_eq!(owner_of(p, &live), owner_of(p, &reversed));
                let best = live.iter().map(|n| weight(n, p)).max();
                prop_assert_eq!(owner_of(p, &live).map(|n| weight(n, p)), best);
            }
            let mut seen = BTreeSet::new();
            for n in &live {
                for p in desired(n, partitions, &live) {
                    prop_assert!(seen.insert(p), "partition {} twice", p);
                }
            }
            prop_assert_eq!(seen.len(), usize::try_from(partitions).unwrap_or(0));
        }
    }
}
