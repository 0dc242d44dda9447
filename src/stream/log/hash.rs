//! Kinesis's split of the 128-bit hash key space among a stream's shards.

/// Inclusive `(start, end)` per shard: `start_i = i * floor(2^128 / n)`, each range ending
/// where the next starts, the last at `2^128 - 1`. Empty for `n == 0`.
pub fn hash_ranges(shards: u32) -> Vec<(u128, u128)> {
    let n = u128::from(shards);
    if n == 0 {
        return Vec::new();
    }
    if n == 1 {
        return vec![(0, u128::MAX)];
    }
    // floor(2^128 / n) without 2^128: one more than floor((2^128 - 1) / n) exactly when n
    // divides 2^128.
    let step = u128::MAX / n + u128::from(u128::MAX % n == n - 1);
    (0..n)
        .map(|i| {
            let start = i * step;
            let end = if i + 1 == n {
                u128::MAX
            } else {
                (i + 1) * step - 1
            };
            (start, end)
        })
        .collect()
}

/// The index of the range holding `hash` in sorted, gap-free `ranges`.
pub(super) fn range_for(ranges: &[(u128, u128)], hash: u128) -> usize {
    ranges
        .partition_point(|&(start, _)| start <= hash)
        .saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shard_covers_everything() {
        assert_eq!(hash_ranges(1), vec![(0, u128::MAX)]);
        assert!(hash_ranges(0).is_empty());
    }

    #[test]
    fn two_shards_split_at_half() {
        let half: u128 = "170141183460469231731687303715884105728".parse().unwrap();
        assert_eq!(hash_ranges(2), vec![(0, half - 1), (half, u128::MAX)]);
        let ranges = hash_ranges(2);
        assert_eq!(range_for(&ranges, 0), 0);
        assert_eq!(range_for(&ranges, half - 1), 0);
        assert_eq!(range_for(&ranges, half), 1);
        assert_eq!(range_for(&ranges, u128::MAX), 1);
    }

    #[test]
    fn three_shards_match_kinesis() {
        let third: u128 = "113427455640312821154458202477256070485".parse().unwrap();
        assert_eq!(
            hash_ranges(3),
            vec![
                (0, third - 1),
                (third, 2 * third - 1),
                (2 * third, u128::MAX)
            ]
        );
    }

    #[test]
    fn four_shards_are_quarters() {
        let quarter = 1u128 << 126;
        let ranges = hash_ranges(4);
        assert_eq!(ranges.len(), 4);
        for (i, &(start, end)) in ranges.iter().enumerate() {
            let i = i as u128;
            assert_eq!(start, i * quarter);
            assert_eq!(
                end,
                if i == 3 {
                    u128::MAX
                } else {
                    (i + 1) * quarter - 1
                }
            );
            assert_eq!(range_for(&ranges, start), i as usize);
            assert_eq!(range_for(&ranges, end), i as usize);
        }
    }

    #[test]
    fn ranges_are_contiguous_for_any_count() {
        for n in 1..=40 {
            let ranges = hash_ranges(n);
            assert_eq!(ranges.first().map(|r| r.0), Some(0));
            assert_eq!(ranges.last().map(|r| r.1), Some(u128::MAX));
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].1 + 1, pair[1].0);
            }
        }
    }
}
