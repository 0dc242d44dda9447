//! A key's timing metadata as BIND keeps it beside the key: `; Publish: 20261204120000 (Fri
//! Dec  4 12:00:00 2026)` comments in the `.key` file and `Publish: 20261204120000` lines in
//! the `.private` file, so `dnssec-settime -p all` and the other tools read what the schedule
//! decided. Each time is optional: key folders made before the schedule have none.

use std::time::{Duration, UNIX_EPOCH};

/// When a key was made, and when it is published, signs, stops signing and is withdrawn
/// (Unix seconds, UTC). An absent time means "always" for Publish and Activate, and "never"
/// for Inactive and Delete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyTimes {
    pub created: Option<u64>,
    pub publish: Option<u64>,
    pub activate: Option<u64>,
    pub inactive: Option<u64>,
    pub delete: Option<u64>,
}

/// The names BIND gives the times, in the order it writes them.
const NAMES: [&str; 5] = ["Created", "Publish", "Activate", "Inactive", "Delete"];

impl KeyTimes {
    /// A key made `now` and in use from then on: published and signing at once.
    pub fn from_now(now: u64) -> KeyTimes {
        KeyTimes {
            created: Some(now),
            publish: Some(now),
            activate: Some(now),
            ..KeyTimes::default()
        }
    }

    fn by_name(&self) -> [(&'static str, Option<u64>); 5] {
        let times = [
            self.created,
            self.publish,
            self.activate,
            self.inactive,
            self.delete,
        ];
        let mut named = [("", None); 5];
        for (slot, (name, time)) in named.iter_mut().zip(NAMES.into_iter().zip(times)) {
            *slot = (name, time);
        }
        named
    }

    fn set(&mut self, name: &str, time: u64) {
        let slot = match name {
            "Created" => &mut self.created,
            "Publish" => &mut self.publish,
            "Activate" => &mut self.activate,
            "Inactive" => &mut self.inactive,
            _ => &mut self.delete,
        };
        *slot = Some(time);
    }

    /// Whether the key is in the DNSKEY RRset at `now`.
    pub fn is_published(&self, now: u64) -> bool {
        self.publish.is_none_or(|t| t <= now) && self.delete.is_none_or(|t| now < t)
    }

    /// Whether the key signs at `now` (a key signs only while published).
    pub fn is_active(&self, now: u64) -> bool {
        self.is_published(now)
            && self.activate.is_none_or(|t| t <= now)
            && self.inactive.is_none_or(|t| now < t)
    }

    /// Reads the times of a `.key` file's comments; lines that are not time comments are
    /// left to the caller.
    ///
    /// # Errors
    /// A time comment whose value is not `YYYYMMDDHHMMSS`: the line and what it says.
    pub fn from_key_file(text: &str) -> Result<KeyTimes, String> {
        let mut times = KeyTimes::default();
        for (n, line) in text.lines().enumerate() {
            let Some(comment) = line.trim_start().strip_prefix(';') else {
                continue;
            };
            let comment = comment.trim_start();
            for name in NAMES {
                let Some(value) = comment.strip_prefix(name).and_then(|r| r.strip_prefix(':'))
                else {
                    continue;
                };
                let stamp = value.split_whitespace().next().unwrap_or_default();
                let time = parse_stamp(stamp).ok_or_else(|| {
                    format!(
                        "line {}: {name}: {stamp:?} is not a time (YYYYMMDDHHMMSS, UTC)",
                        n + 1
                    )
                })?;
                times.set(name, time);
            }
        }
        Ok(times)
    }

    /// The `.key` file's comment lines, as BIND writes them: `; Publish: <stamp> (<date>)`.
    pub fn key_comments(&self) -> String {
        let mut out = String::new();
        for (name, time) in self.by_name() {
            if let Some(time) = time {
                out.push_str(&format!("; {name}: {} ({})\n", stamp(time), readable(time)));
            }
        }
        out
    }

    /// `private` (a `.private` file's text) with its time lines replaced by these times.
    pub fn into_private(&self, private: &str) -> String {
        let mut out: String = (private.lines())
            .filter(|line| !NAMES.iter().any(|name| is_field(line, name)))
            .map(|line| format!("{line}\n"))
            .collect();
        for (name, time) in self.by_name() {
            if let Some(time) = time {
                out.push_str(&format!("{name}: {}\n", stamp(time)));
            }
        }
        out
    }
}

/// Whether `line` is the `.private` field `name` (`Publish: ...`).
fn is_field(line: &str, name: &str) -> bool {
    line.strip_prefix(name).is_some_and(|r| r.starts_with(':'))
}

/// `YYYYMMDDHHMMSS`, UTC: BIND's key timestamps.
pub fn stamp(time: u64) -> String {
    let secs = i64::try_from(time).unwrap_or(i64::MAX);
    crate::stream::api::sigv4::format_basic(secs).replace(['T', 'Z'], "")
}

/// Unix seconds of a `YYYYMMDDHHMMSS` stamp; None unless it is exactly that and a real time.
pub fn parse_stamp(text: &str) -> Option<u64> {
    if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let basic = format!("{}T{}Z", text.get(..8)?, text.get(8..)?);
    u64::try_from(crate::stream::api::sigv4::parse_basic(&basic)?).ok()
}

/// `Fri Dec  4 12:00:00 2026`: the C library's `asctime`, which BIND's comments use.
fn readable(time: u64) -> String {
    let http = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(time));
    // "Fri, 04 Dec 2026 12:00:00 GMT"
    let words: Vec<&str> = http.split_whitespace().collect();
    match words.as_slice() {
        [weekday, day, month, year, clock, _] => format!(
            "{} {month} {:>2} {clock} {year}",
            weekday.trim_end_matches(','),
            day.trim_start_matches('0')
        ),
        _ => http,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-04 12:00:00 UTC.
    const NOON: u64 = 1_796_385_600;

    #[test]
    fn stamps_and_readable_dates_are_bind_s() {
        assert_eq!(stamp(NOON), "20261204120000");
        assert_eq!(parse_stamp("20261204120000"), Some(NOON));
        assert_eq!(readable(NOON), "Fri Dec  4 12:00:00 2026");
        for bad in [
            "2026120412000",
            "20261304120000",
            "2026120412000x",
            "20261231240000",
        ] {
            assert_eq!(parse_stamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_written_as_key_comments_read_back_the_same() {
        let times = KeyTimes {
            created: Some(NOON),
            publish: Some(NOON),
            activate: Some(NOON + 7200),
            inactive: Some(NOON + 90 * 86_400),
            delete: None,
        };
        let comments = times.key_comments();
        assert!(
            comments.starts_with(
                "; Created: 20261204120000 (Fri Dec  4 12:00:00 2026)\n; Publish: 20261204120000"
            ),
            "{comments}"
        );
        assert!(!comments.contains("Delete"), "{comments}");
        let file =
            format!("; This is a zone-signing key\n{comments}x. 3600 IN DNSKEY 256 3 13 AA==\n");
        assert_eq!(KeyTimes::from_key_file(&file), Ok(times));
    }

    #[test]
    fn a_key_file_without_times_has_none_and_a_broken_time_is_an_error() {
        let plain = "; a key\nexample.net. 3600 IN DNSKEY 257 3 13 AA==\n";
        assert_eq!(KeyTimes::from_key_file(plain), Ok(KeyTimes::default()));
        let broken = "; Publish: tomorrow\n";
        let error = KeyTimes::from_key_file(broken).unwrap_err();
        assert!(
            error.contains("line 1: Publish") && error.contains("tomorrow"),
            "{error}"
        );
    }

    #[test]
    fn private_files_get_their_time_lines_replaced_and_the_rest_kept() {
        let private = "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: AA==\nCreated: 20200101000000\nPublish: 20200101000000\n";
        let times = KeyTimes {
            inactive: Some(NOON),
            ..KeyTimes::from_now(NOON - 100)
        };
        let text = times.into_private(private);
        assert_eq!(
            text,
            "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: AA==\n\
             Created: 20261204115820\nPublish: 20261204115820\nActivate: 20261204115820\nInactive: 20261204120000\n"
        );
    }

    #[test]
    fn a_key_is_published_and_active_between_its_times() {
        let times = KeyTimes {
            created: Some(100),
            publish: Some(100),
            activate: Some(200),
            inactive: Some(300),
            delete: Some(400),
        };
        let at = |now| (times.is_published(now), times.is_active(now));
        assert_eq!(at(99), (false, false));
        assert_eq!(at(100), (true, false));
        assert_eq!(at(200), (true, true));
        assert_eq!(at(300), (true, false));
        assert_eq!(at(400), (false, false));
        assert!(KeyTimes::default().is_active(0), "no times: always");
    }
}
