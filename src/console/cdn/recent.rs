//! Top objects and viewers' countries for the CDN console, counted from the latest real-time
//! log records in this process's stream log when a summary is made (the request path does
//! nothing for them), and kept a moment so that several open consoles read the log once.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::config::realtime_logs::{LogField, RealtimeLogsConfig};
use crate::stream::log::{Log, LogError, Shard};

/// Records counted per summary, the latest across the stream's shards.
const RECORDS: usize = 2_000;
/// Bytes read per summary at most, across shards (a line is a few hundred bytes).
const MAX_BYTES: usize = 4 << 20;
/// Rows in each table.
const TOP: usize = 10;
/// How long a count is served again before the log is read anew.
const FRESH: Duration = Duration::from_secs(2);

/// The last count, shared by the summaries of one admin listener.
#[derive(Default)]
pub struct RecentRecords {
    last: Mutex<Option<(Instant, Value)>>,
}

impl RecentRecords {
    /// `{"state": "off"}` without `[cdn.realtime_logs]`; `{"state": "elsewhere", "stream"}`
    /// when its stream is not in `log`; else `{"state": "on", "stream", "records",
    /// "sampling_percent", "missing": [fields], "objects": [{site, path, requests}] | null,
    /// "countries": [{country, requests}] | null}` (null: the lines lack the field).
    pub fn summary(&self, config: Option<&RealtimeLogsConfig>, log: Option<&Log>) -> Value {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, value)) = &*last
            && at.elapsed() < FRESH
        {
            return value.clone();
        }
        let value = count(config, log);
        *last = Some((Instant::now(), value.clone()));
        value
    }
}

fn count(config: Option<&RealtimeLogsConfig>, log: Option<&Log>) -> Value {
    let Some(config) = config else {
        return json!({ "state": "off" });
    };
    let Some(stream) = log.and_then(|log| log.get(&config.stream)) else {
        return json!({ "state": "elsewhere", "stream": config.stream });
    };
    let position = |field: LogField| config.fields.iter().position(|&f| f == field);
    let layout = Layout {
        fields: config.fields.len(),
        path: position(LogField::UriStem),
        site: position(LogField::DistributionId).or_else(|| position(LogField::Host)),
        country: position(LogField::ClientCountry),
    };
    let mut tally = Tally::default();
    let shards = stream.shards();
    let per_shard = (RECORDS / shards.len().max(1)).max(1);
    let mut errors = Vec::new();
    let mut budget = MAX_BYTES;
    for shard in shards {
        let read = latest(shard, per_shard, &mut budget, |line| {
            tally.line(&layout, line)
        });
        if let Err(e) = read {
            errors.push(format!("{}: {e}", shard.id()));
        }
    }
    let missing: Vec<&str> = [
        (layout.path, LogField::UriStem),
        (layout.country, LogField::ClientCountry),
    ]
    .iter()
    .filter(|(at, _)| at.is_none())
    .map(|(_, field)| field.name())
    .collect();
    json!({
        "state": "on",
        "stream": config.stream,
        "sampling_percent": config.sampling_percent,
        "records": tally.records,
        "skipped": tally.skipped,
        "missing": missing,
        "errors": errors,
        "objects": layout.path.map(|_| top(tally.objects, |((site, path), n)| {
            json!({ "site": site, "path": path, "requests": n })
        })),
        "countries": layout.country.map(|_| top(tally.countries, |(country, n)| {
            json!({ "country": country, "requests": n })
        })),
    })
}

/// Hands `each` the lines of the latest `records` records of `shard`, reading no more than
/// `budget` bytes (less what it read).
fn latest(
    shard: &Shard,
    records: usize,
    budget: &mut usize,
    mut each: impl FnMut(&str),
) -> Result<(), LogError> {
    let tip = shard.next_offset();
    let mut from = tip.saturating_sub(records as u64).max(shard.first_offset());
    let mut left = records;
    while from < tip && left > 0 && *budget > 0 {
        let batch = shard.read(from, left, *budget)?;
        if batch.records.is_empty() {
            break;
        }
        for record in &batch.records {
            *budget = budget.saturating_sub(record.data.len());
            // The writer appends one line per record; anything else is not a log line.
            if let Ok(text) = std::str::from_utf8(&record.data) {
                each(text);
            }
        }
        left = left.saturating_sub(batch.records.len());
        from = batch.next;
    }
    Ok(())
}

/// Where the counted fields are in a line of the configured layout.
struct Layout {
    fields: usize,
    path: Option<usize>,
    /// The distribution id, else the host.
    site: Option<usize>,
    country: Option<usize>,
}

#[derive(Default)]
struct Tally {
    records: u64,
    /// Lines of another layout (written before a reload changed the fields).
    skipped: u64,
    objects: HashMap<(String, String), u64>,
    countries: HashMap<String, u64>,
}

impl Tally {
    fn line(&mut self, layout: &Layout, line: &str) {
        let values: Vec<&str> = line.trim_end_matches('\n').split('\t').collect();
        if values.len() != layout.fields {
            self.skipped += 1;
            return;
        }
        self.records += 1;
        if let Some(path) = layout.path {
            let site = layout.site.map_or("-", |at| values[at]);
            *(self.objects)
                .entry((site.to_string(), values[path].to_string()))
                .or_default() += 1;
        }
        if let Some(country) = layout.country {
            *self
                .countries
                .entry(values[country].to_string())
                .or_default() += 1;
        }
    }
}

/// The `TOP` most counted, most first (ties by key), as `row` makes them.
fn top<K: Ord>(counts: HashMap<K, u64>, row: impl Fn((K, u64)) -> Value) -> Value {
    let mut counts: Vec<(K, u64)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts.into_iter().take(TOP).map(row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_by_site_and_path_and_by_country_and_other_layouts_skipped() {
        let layout = Layout {
            fields: 4,
            path: Some(1),
            site: Some(3),
            country: Some(2),
        };
        let mut tally = Tally::default();
        for line in [
            "1.0\t/a\tDE\tsite\n",
            "1.1\t/a\tDE\tsite\n",
            "1.2\t/b\t-\tsite\n",
            "1.3\t/a\tFR\tother\n",
            "1.4\t/a\n",
        ] {
            tally.line(&layout, line);
        }
        assert_eq!((tally.records, tally.skipped), (4, 1));
        let objects = top(tally.objects, |((site, path), n)| json!([site, path, n]));
        assert_eq!(
            objects,
            json!([["site", "/a", 2], ["other", "/a", 1], ["site", "/b", 1]])
        );
        let countries = top(tally.countries, |(c, n)| json!([c, n]));
        assert_eq!(countries, json!([["DE", 2], ["-", 1], ["FR", 1]]));
    }

    #[test]
    fn without_real_time_logs_or_their_stream_the_summary_says_so() {
        assert_eq!(count(None, None), json!({ "state": "off" }));
        let config = RealtimeLogsConfig {
            stream: "cdn-logs".into(),
            sampling_percent: 100,
            fields: vec![LogField::UriStem],
            queue: 16,
        };
        assert_eq!(
            count(Some(&config), None),
            json!({ "state": "elsewhere", "stream": "cdn-logs" })
        );
    }
}
