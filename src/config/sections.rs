//! Which top-level tables of the one shared file a load reads: each binary validates (and
//! so can be stopped by) only the sections it serves, so a broken `[cdn]` never keeps
//! edgewise-dns from starting or reloading, and the reverse. `check --all` reads them all.

/// The top-level tables a load validates; the others are skipped unread, their mistakes
/// included (the binary that serves them reports those).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sections {
    /// edgewise-dns: `[dns]`, `[[health_checks]]`, `[[regions]]`, `[[edge_groups]]`, `[geo]`.
    Dns,
    /// edgewise-cdn: `[cdn]`, `[stream]`, `[analytics]`, `[geo]`.
    Cdn,
    /// The whole file (`check --all`, and tools that are no one binary).
    All,
}

impl Sections {
    /// Whether the top-level table `name` is read. A name no binary knows (a typo such as
    /// `[dsn]`) is read by every scope, so each binary reports it: it may have been meant
    /// for any of them.
    pub fn covers(self, name: &str) -> bool {
        let dns = ["dns", "health_checks", "regions", "edge_groups", "geo"];
        let cdn = ["cdn", "stream", "analytics", "geo"];
        let known = dns.contains(&name) || cdn.contains(&name);
        match self {
            Sections::All => true,
            _ if !known => true,
            Sections::Dns => dns.contains(&name),
            Sections::Cdn => cdn.contains(&name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Sections;

    #[test]
    fn each_binary_reads_its_own_tables_and_unknown_ones() {
        let dns: (_, &[&str], &[&str]) = (
            Sections::Dns,
            &[
                "dns",
                "health_checks",
                "regions",
                "edge_groups",
                "geo",
                "dsn",
            ],
            &["cdn", "stream"],
        );
        let cdn: (_, &[&str], &[&str]) = (
            Sections::Cdn,
            &["cdn", "stream", "geo", "dsn"],
            &["dns", "health_checks", "regions", "edge_groups"],
        );
        for (scope, read, skipped) in [dns, cdn] {
            for name in read {
                assert!(scope.covers(name), "{scope:?} reads [{name}]");
            }
            for name in skipped {
                assert!(!scope.covers(name), "{scope:?} skips [{name}]");
            }
        }
        assert!(
            ["dns", "cdn", "stream", "health_checks"]
                .iter()
                .all(|n| Sections::All.covers(n))
        );
    }
}
