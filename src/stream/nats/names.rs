//! JetStream names for Kinesis streams. Kinesis allows `A-Z a-z 0-9 _ . -`; JetStream names
//! and subject tokens cannot hold `.`, so `.` and the escape `_` itself are written as
//! `_2E` and `_5F`: two Kinesis names never share a JetStream name.

fn escaped(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '.' => out.push_str("_2E"),
            '_' => out.push_str("_5F"),
            c => out.push(c),
        }
    }
    out
}

/// The JetStream stream holding shard `shard` of Kinesis stream `name`.
pub(super) fn stream_name(name: &str, shard: usize) -> String {
    format!("EW_{}_{shard}", escaped(name))
}

/// The subject its records are published on.
pub(super) fn subject(name: &str, shard: usize) -> String {
    format!("edgewise.{}.{shard}", escaped(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_collide_and_hold_no_dots() {
        let names = ["a.b", "a_b", "a_2Eb", "a-b", "cdn-logs"];
        let mapped: Vec<String> = names.iter().map(|n| stream_name(n, 0)).collect();
        for (i, m) in mapped.iter().enumerate() {
            assert!(!m.contains('.'), "{m}");
            assert!(!mapped[..i].contains(m), "{m} twice");
        }
        assert_eq!(subject("cdn.logs", 3), "edgewise.cdn_2Elogs.3");
    }
}
