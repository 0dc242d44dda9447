//! Sequence numbers: a shard and an offset packed into one integer that clients compare as a
//! big decimal number.

use std::fmt;
use std::str::FromStr;

/// `((shard + 1) << 64) | offset`: increasing within a shard, unique across a stream, and
/// never zero (the `+ 1`), which keeps every sequence number free of leading zeros.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SeqNo {
    pub shard: u32,
    pub offset: u64,
}

/// Kinesis documents sequence numbers as up to 128 digits; we accept one more of slack.
const MAX_DIGITS: usize = 129;

impl SeqNo {
    /// The integer clients see.
    pub fn value(self) -> u128 {
        ((u128::from(self.shard) + 1) << 64) | u128::from(self.offset)
    }

    /// The inverse of [`SeqNo::value`]; `None` for integers no shard could have produced.
    pub fn from_value(value: u128) -> Option<SeqNo> {
        let shard = u32::try_from((value >> 64).checked_sub(1)?).ok()?;
        Some(SeqNo {
            shard,
            offset: value as u64,
        })
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a sequence number of this log")]
pub struct ParseSeqNoError;

impl FromStr for SeqNo {
    type Err = ParseSeqNoError;

    /// Canonical decimal only: no sign, no leading zeros, at most 129 digits.
    fn from_str(s: &str) -> Result<SeqNo, ParseSeqNoError> {
        let canonical = !s.is_empty()
            && s.len() <= MAX_DIGITS
            && s.bytes().all(|b| b.is_ascii_digit())
            && !s.starts_with('0');
        if !canonical {
            return Err(ParseSeqNoError);
        }
        let value: u128 = s.parse().map_err(|_| ParseSeqNoError)?;
        SeqNo::from_value(value).ok_or(ParseSeqNoError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let first = SeqNo {
            shard: 0,
            offset: 0,
        };
        assert_eq!(first.to_string(), "18446744073709551616");
        for seq in [
            first,
            SeqNo {
                shard: 3,
                offset: 12345,
            },
            SeqNo {
                shard: u32::MAX,
                offset: u64::MAX,
            },
        ] {
            assert_eq!(seq.to_string().parse::<SeqNo>(), Ok(seq));
        }
    }

    #[test]
    fn order_matches_the_integer_order() {
        let a = SeqNo {
            shard: 0,
            offset: u64::MAX,
        };
        let b = SeqNo {
            shard: 1,
            offset: 0,
        };
        assert!(a < b && a.value() < b.value());
        let c = SeqNo {
            shard: 1,
            offset: 1,
        };
        assert!(b < c && b.value() < c.value());
    }

    #[test]
    fn rejects_malformed() {
        let too_long = "1".repeat(130);
        let beyond_u128 = "9".repeat(60);
        for bad in [
            "",
            "0",
            "018446744073709551616",
            "+18446744073709551616",
            "-1",
            "1844674407370955161a",
            " 18446744073709551616",
            "12345",                                   // shard part would be -1
            "340282366920938463463374607431768211455", // shard part 2^64-1 > u32::MAX + 1
            &too_long,
            &beyond_u128,
        ] {
            assert_eq!(bad.parse::<SeqNo>(), Err(ParseSeqNoError), "{bad:?}");
        }
    }
}
