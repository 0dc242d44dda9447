//! Config diagnostics: every error names where it is (file:line:col) and which key it is about.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in the configuration or in a zone file it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in (the config file, or a zone file it references).
    pub file: PathBuf,
    /// 1-based line, 0 when the problem has no position (e.g. a missing file).
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub col: usize,
    /// Dotted key path such as `dns.zones[0].records[3].values[1]`; empty for zone-file lines.
    pub key_path: String,
    /// What is wrong, naming the offending value and what was expected.
    pub message: String,
}

/// Every error found while loading a configuration; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// Maps byte offsets in a TOML source to positions and key paths.
pub(crate) struct SourceMap<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

// === impl ConfigError ===

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.col > 0 {
                write!(f, ":{}", self.col)?;
            }
        }
        f.write_str(": ")?;
        if !self.key_path.is_empty() {
            write!(f, "{}: ", self.key_path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

// === impl ConfigErrors ===

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(
            f,
            "{count} error{} in the configuration:",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.0 {
            writeln!(f, "  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

// === impl SourceMap ===

impl SourceMap<'_> {
    /// An error at `span` of the config file.
    pub fn error(
        &self,
        span: Range<usize>,
        key_path: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, col) = self.position(span.start);
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            col,
            key_path: key_path.into(),
            message: message.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..self.text.floor_char_boundary(offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// The key path of the table that contains `offset`, from the `[table]` and `[[array]]`
    /// headers before it, e.g. `dns.zones[0].records[3]`. Used for errors that serde reports
    /// with a span but without a path.
    pub fn table_path_at(&self, offset: usize) -> String {
        let mut counts: Vec<(String, usize)> = Vec::new();
        let mut current = String::new();
        for line in self.text[..offset.min(self.text.len())].lines() {
            let line = line.trim();
            let (header, is_array) = if let Some(h) = line.strip_prefix("[[") {
                (h.split("]]").next().unwrap_or(""), true)
            } else if let Some(h) = line.strip_prefix('[') {
                (h.split(']').next().unwrap_or(""), false)
            } else {
                continue;
            };
            let header: String = header
                .split('.')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(".");
            if is_array {
                let nested = format!("{header}.");
                counts.retain(|(path, _)| !path.starts_with(&nested));
                match counts.iter_mut().find(|(path, _)| *path == header) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((header.clone(), 0)),
                }
            }
            current = indexed_path(&header, &counts);
        }
        current
    }
}

impl SourceMap<'_> {
    /// The key path of the value at `offset`: its table's path plus the key written just
    /// before it on the same line (`key = value`), when there is one.
    pub fn value_path_at(&self, offset: usize) -> String {
        let table = self.table_path_at(offset);
        match self.key_before(offset) {
            Some(key) if table.is_empty() => key,
            Some(key) => format!("{table}.{key}"),
            None => table,
        }
    }

    /// The key written just before the value at `offset` on its line (`key = value`).
    pub fn key_before(&self, offset: usize) -> Option<String> {
        let offset = self.text.floor_char_boundary(offset.min(self.text.len()));
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let before = self.text[line_start..offset].trim_end();
        let key = before.strip_suffix('=')?.trim_end();
        let start = key
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map_or(0, |i| i + 1);
        Some(key[start..].to_string()).filter(|k| !k.is_empty())
    }
}

/// Adds `[n]` after every prefix of `header` that is an array of tables.
fn indexed_path(header: &str, counts: &[(String, usize)]) -> String {
    let mut out = String::new();
    let mut prefix = String::new();
    for part in header.split('.') {
        if !prefix.is_empty() {
            prefix.push('.');
            out.push('.');
        }
        prefix.push_str(part);
        out.push_str(part);
        if let Some((_, n)) = counts.iter().find(|(path, _)| *path == prefix) {
            out.push_str(&format!("[{n}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_paths_count_arrays_of_tables_per_parent() {
        let text = "[dns]\n[[dns.zones]]\n[[dns.zones.records]]\n[[dns.zones.records]]\nx=1\n[[dns.zones]]\n[[dns.zones.records]]\ny=2\n";
        let map = SourceMap {
            file: Path::new("c.toml"),
            text,
        };
        assert_eq!(
            map.table_path_at(text.find("x=1").unwrap()),
            "dns.zones[0].records[1]"
        );
        assert_eq!(
            map.table_path_at(text.find("y=2").unwrap()),
            "dns.zones[1].records[0]"
        );
    }

    #[test]
    fn value_paths_name_the_key_before_the_value() {
        let text = "[dns]\nworkers = \"two\"\n[[dns.zones]]\nsoa = { serial = \"x\" }\n";
        let map = SourceMap {
            file: Path::new("c.toml"),
            text,
        };
        assert_eq!(
            map.value_path_at(text.find("\"two\"").unwrap()),
            "dns.workers"
        );
        assert_eq!(
            map.value_path_at(text.find("\"x\"").unwrap()),
            "dns.zones[0].serial"
        );
        assert_eq!(map.value_path_at(text.find("[[dns").unwrap()), "dns");
    }

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let map = SourceMap {
            file: Path::new("c.toml"),
            text: "a = 1\nbb = 2\n",
        };
        assert_eq!(map.position(0), (1, 1));
        assert_eq!(map.position(6 + 5), (2, 6));
        let error = map.error(6..7, "bb", "bad");
        assert_eq!(error.to_string(), "c.toml:2:1: bb: bad");
    }
}
