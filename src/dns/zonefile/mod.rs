//! RFC 1035 §5 master files.
//!
//! hickory's zone `Parser` refuses SPF and `TYPEnn`, stops at the first error and reports no
//! useful positions, so the file is tokenized here and each record's RDATA text is handed to
//! `super::rdata`. Every problem is collected with its file and line; a caller gets either
//! all records or all errors.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::txt::parse_ttl;

use super::rdata::{parse_domain_name, parse_rdata, parse_record_type};

const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Long enough for a 4096-bit DKIM key on one line; longer data can use parentheses.
const MAX_LINE_BYTES: usize = 64 * 1024;
const MAX_INCLUDE_DEPTH: usize = 16;
/// The error for an `$INCLUDE`d file that fails from its first entry on.
const NOT_A_ZONE_FILE: &str = "an $INCLUDE of a file that is not a zone file: its first entry is no record or \
     directive (its text is not repeated here)";
/// RFC 2181 §8: TTLs are unsigned but limited to 2^31 - 1.
const MAX_TTL: u32 = 2_147_483_647;
const UNCLOSED_QUOTE: &str =
    "a quoted string is missing its closing '\"' (strings cannot span lines)";
const NO_OWNER: &str = "the line starts with whitespace, but no earlier record gives an owner name";

/// One resource record read from a master file, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneFileRecord {
    /// Owner name, fully qualified.
    pub name: Name,
    /// TTL in seconds after applying the file's defaults.
    pub ttl: u32,
    /// Record type; SPF is `RecordType::Unknown(99)`.
    pub rtype: RecordType,
    /// Parsed record data.
    pub rdata: RData,
    /// File the record came from (an included file for records under `$INCLUDE`).
    pub file: PathBuf,
    /// Line (1-based) where the record starts.
    pub line: usize,
}

/// A problem in a master file. `line` is 1-based; 0 means the file as a whole (it could not
/// be read), and then `Display` leaves the line out.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneFileError {
    /// File the problem is in.
    pub file: PathBuf,
    /// Line of the problem, 0 for the whole file.
    pub line: usize,
    /// What is wrong, one line.
    pub message: String,
}

impl fmt::Display for ZoneFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for ZoneFileError {}

/// Loads a master file for zone `origin`. `default_ttl` is used when the file gives no $TTL and
/// a record has no TTL of its own.
/// Returns every error found (never stops at the first), or all records.
pub fn load_zone_file(
    path: &Path,
    origin: &Name,
    default_ttl: Option<u32>,
) -> Result<Vec<ZoneFileRecord>, Vec<ZoneFileError>> {
    let text = read_file(path).map_err(|message| {
        vec![ZoneFileError {
            file: path.to_path_buf(),
            line: 0,
            message,
        }]
    })?;
    parse_zone_text(&text, path, origin, default_ttl)
}

/// Same on text already in memory; `path` is used for messages and to resolve $INCLUDE.
pub fn parse_zone_text(
    text: &str,
    path: &Path,
    origin: &Name,
    default_ttl: Option<u32>,
) -> Result<Vec<ZoneFileRecord>, Vec<ZoneFileError>> {
    let mut zone = origin.clone();
    zone.set_fqdn(true);
    let mut loader = Loader {
        zone: zone.clone(),
        default_ttl,
        records: Vec::new(),
        errors: Vec::new(),
        stack: vec![include_key(path)],
    };
    let mut state = FileState {
        origin: zone,
        dollar_ttl: None,
        last_ttl: None,
        owner: Owner::Unset,
    };
    loader.parse(text, path, &mut state, false);
    if loader.errors.is_empty() {
        Ok(loader.records)
    } else {
        Err(loader.errors)
    }
}

/// A field as written: quotes and escapes are kept so RDATA reaches `parse_rdata` intact.
struct Field<'a> {
    text: &'a str,
    quoted: bool,
}

/// One record or directive, possibly joined from several lines by parentheses.
struct Entry<'a> {
    line: usize,
    /// The entry's first line starts with a blank: the owner is the previous record's.
    inherits_owner: bool,
    fields: Vec<Field<'a>>,
}

type LexResult<'a> = Result<Entry<'a>, (usize, String)>;

/// Splits a file into entries. Lexical errors carry the physical line they are on, and drop
/// the entry they occur in (once per entry, so one typo does not cascade).
#[derive(Default)]
struct Lexer<'a> {
    out: Vec<LexResult<'a>>,
    current: Option<Entry<'a>>,
    failed: bool,
    depth: usize,
    paren_line: usize,
}

impl<'a> Lexer<'a> {
    fn run(text: &'a str) -> Vec<LexResult<'a>> {
        let mut lexer = Lexer::default();
        for (index, line) in text.split('\n').enumerate() {
            let number = index + 1;
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.len() > MAX_LINE_BYTES {
                lexer.error(
                    number,
                    format!(
                        "the line is {} bytes long, at most {MAX_LINE_BYTES} are allowed",
                        line.len()
                    ),
                );
            } else {
                lexer.line(line, number);
            }
            if lexer.depth == 0 {
                lexer.finish_entry();
            }
        }
        if lexer.depth > 0 {
            let line = lexer.paren_line;
            lexer.error(line, "'(' is never closed".to_owned());
        }
        lexer.out
    }

    fn line(&mut self, line: &'a str, number: usize) {
        let bytes = line.as_bytes();
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            match b {
                b' ' | b'\t' | b'\r' => i += 1,
                b';' => break,
                b'(' => {
                    self.start(line, number);
                    if self.depth == 0 {
                        self.paren_line = number;
                    }
                    self.depth += 1;
                    i += 1;
                }
                b')' => {
                    match self.depth.checked_sub(1) {
                        Some(depth) => self.depth = depth,
                        None => self.error(number, "')' without a matching '('".to_owned()),
                    }
                    i += 1;
                }
                _ => match field_end(bytes, i) {
                    Some(end) => {
                        self.start(line, number);
                        if let Some(entry) = self.current.as_mut() {
                            entry.fields.push(Field {
                                text: &line[i..end],
                                quoted: b == b'"',
                            });
                        }
                        i = end;
                    }
                    None => {
                        self.error(number, UNCLOSED_QUOTE.to_owned());
                        break;
                    }
                },
            }
        }
    }

    fn start(&mut self, line: &str, number: usize) {
        if self.current.is_none() {
            self.current = Some(Entry {
                line: number,
                inherits_owner: line.starts_with([' ', '\t']),
                fields: Vec::new(),
            });
        }
    }

    fn error(&mut self, line: usize, message: String) {
        if !self.failed {
            self.out.push(Err((line, message)));
        }
        self.failed = true;
    }

    fn finish_entry(&mut self) {
        if let Some(entry) = self.current.take()
            && !self.failed
        {
            self.out.push(Ok(entry));
        }
        self.failed = false;
    }
}

fn is_include(entry: &Entry) -> bool {
    entry
        .fields
        .first()
        .is_some_and(|f| !f.quoted && f.text.eq_ignore_ascii_case("$INCLUDE"))
}

/// End of the field starting at `start`, or `None` for an unterminated quote. Escaped bytes
/// never end a field; a quote inside a field opens a section that still belongs to it.
fn field_end(bytes: &[u8], start: usize) -> Option<usize> {
    let quoted = bytes.get(start) == Some(&b'"');
    let mut in_quotes = false;
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        match b {
            // Only ASCII bytes are delimiters, so skipping one byte of a multi-byte escaped
            // character is harmless: its other bytes are ordinary field bytes.
            b'\\' => i += 2,
            b'"' => {
                in_quotes = !in_quotes;
                i += 1;
                if quoted && !in_quotes {
                    return Some(i);
                }
            }
            b' ' | b'\t' | b'\r' | b'(' | b')' | b';' if !in_quotes => return Some(i),
            _ => i += 1,
        }
    }
    (!in_quotes).then_some(i.min(bytes.len()))
}

/// Per-file parsing state; an included file starts from a copy, so nothing it changes leaks
/// back into the including file (RFC 1035 §5.1 requires that for the origin).
struct FileState {
    origin: Name,
    dollar_ttl: Option<u32>,
    last_ttl: Option<u32>,
    owner: Owner,
}

enum Owner {
    Unset,
    /// The last owner was unparsable; already reported, so blank-owner lines are skipped.
    Invalid,
    Name(Name),
}

struct Loader {
    zone: Name,
    default_ttl: Option<u32>,
    records: Vec<ZoneFileRecord>,
    errors: Vec<ZoneFileError>,
    /// Files being read, outermost first, for depth limiting and cycle detection.
    stack: Vec<PathBuf>,
}

impl Loader {
    /// Parses `text`, the file at `path`. An `$INCLUDE`d file (`included`) whose very first
    /// entry fails is taken for something other than a zone file — say `/etc/shadow` — and
    /// gets one error that quotes none of it, since errors are printed and logged.
    fn parse(&mut self, text: &str, path: &Path, state: &mut FileState, included: bool) {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut entries_read = false;
        for entry in Lexer::run(text) {
            let (line, message, nested) = match entry {
                Ok(entry) => match self.entry(&entry, path, state) {
                    Ok(()) => {
                        entries_read = true;
                        continue;
                    }
                    // A nested $INCLUDE's own errors (depth, cycle, unreadable) quote no text.
                    Err(message) => (entry.line, message, is_include(&entry)),
                },
                Err((line, message)) => (line, message, false),
            };
            if included && !entries_read && !nested {
                self.errors.push(ZoneFileError {
                    file: path.to_path_buf(),
                    line,
                    message: NOT_A_ZONE_FILE.to_owned(),
                });
                return;
            }
            self.errors.push(ZoneFileError {
                file: path.to_path_buf(),
                line,
                message,
            });
        }
    }

    fn entry(&mut self, entry: &Entry, path: &Path, state: &mut FileState) -> Result<(), String> {
        match entry.fields.first() {
            None => Ok(()),
            // No TTL, class or type starts with '$', so this is unambiguous even when indented.
            Some(first) if !first.quoted && first.text.starts_with('$') => {
                self.directive(entry, path, state)
            }
            Some(_) => {
                if let Some(record) = self.record(entry, path, state)? {
                    self.records.push(record);
                }
                Ok(())
            }
        }
    }

    fn directive(
        &mut self,
        entry: &Entry,
        path: &Path,
        state: &mut FileState,
    ) -> Result<(), String> {
        let args: Vec<&str> = entry.fields.iter().skip(1).map(|f| f.text).collect();
        let name = entry.fields.first().map(|f| f.text).unwrap_or_default();
        match (name.to_ascii_uppercase().as_str(), args.as_slice()) {
            ("$ORIGIN", [origin]) => {
                state.origin =
                    parse_domain_name(origin, &state.origin).map_err(|e| e.to_string())?;
                Ok(())
            }
            ("$TTL", [ttl]) => {
                state.dollar_ttl = Some(parse_ttl_field(ttl)?);
                Ok(())
            }
            ("$INCLUDE", [file]) => self.include(file, None, path, state),
            ("$INCLUDE", [file, origin]) => self.include(file, Some(origin), path, state),
            ("$ORIGIN", _) => Err("$ORIGIN expects one domain name".to_owned()),
            ("$TTL", _) => Err("$TTL expects one TTL".to_owned()),
            ("$INCLUDE", _) => {
                Err("$INCLUDE expects a file name and an optional origin".to_owned())
            }
            _ => Err(format!(
                "unknown directive {name} (expected $ORIGIN, $TTL or $INCLUDE)"
            )),
        }
    }

    fn include(
        &mut self,
        file: &str,
        origin: Option<&str>,
        path: &Path,
        state: &FileState,
    ) -> Result<(), String> {
        let file = file
            .strip_prefix('"')
            .and_then(|f| f.strip_suffix('"'))
            .unwrap_or(file);
        let target = match path.parent() {
            Some(folder) if Path::new(file).is_relative() => folder.join(file),
            _ => PathBuf::from(file),
        };
        let origin = match origin {
            Some(text) => parse_domain_name(text, &state.origin).map_err(|e| e.to_string())?,
            None => state.origin.clone(),
        };
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            return Err(format!(
                "$INCLUDE {} is nested more than {MAX_INCLUDE_DEPTH} levels deep",
                target.display()
            ));
        }
        let key = include_key(&target);
        if self.stack.contains(&key) {
            let chain: Vec<String> = self
                .stack
                .iter()
                .chain([&key])
                .map(|p| p.display().to_string())
                .collect();
            return Err(format!("$INCLUDE cycle: {}", chain.join(" -> ")));
        }
        let text = read_file(&target)?;
        self.stack.push(key);
        let mut included = FileState {
            origin,
            dollar_ttl: state.dollar_ttl,
            last_ttl: state.last_ttl,
            owner: Owner::Unset,
        };
        self.parse(&text, &target, &mut included, true);
        self.stack.pop();
        Ok(())
    }

    /// `[<owner>] [<TTL>] [<class>] <type> <RDATA>`, TTL and class in either order.
    fn record(
        &self,
        entry: &Entry,
        path: &Path,
        state: &mut FileState,
    ) -> Result<Option<ZoneFileRecord>, String> {
        let mut fields = entry.fields.iter();
        let name = if entry.inherits_owner {
            match &state.owner {
                Owner::Name(name) => name.clone(),
                Owner::Invalid => return Ok(None),
                Owner::Unset => {
                    return Err(NO_OWNER.to_owned());
                }
            }
        } else {
            let owner = fields.next().map(|f| f.text).unwrap_or_default();
            match parse_domain_name(owner, &state.origin) {
                Ok(name) => {
                    state.owner = Owner::Name(name.clone());
                    name
                }
                Err(e) => {
                    state.owner = Owner::Invalid;
                    return Err(format!("owner {e}"));
                }
            }
        };
        if !self.zone.zone_of(&name) {
            return Err(format!("name {name} is outside zone {}", self.zone));
        }

        let mut ttl = None;
        let mut class_seen = false;
        let rtype = loop {
            let Some(field) = fields.next() else {
                return Err("missing record type".to_owned());
            };
            if field.quoted {
                return Err(format!(
                    "expected a TTL, class or record type, found {}",
                    field.text
                ));
            }
            if field.text.starts_with(|c: char| c.is_ascii_digit()) {
                if ttl.is_some() {
                    return Err(format!(
                        "second TTL \"{}\" (a record has one TTL)",
                        field.text
                    ));
                }
                ttl = Some(parse_ttl_field(field.text)?);
                continue;
            }
            match class_of(field.text) {
                Some(true) if class_seen => return Err("the class is given twice".to_owned()),
                Some(true) => class_seen = true,
                Some(false) => {
                    return Err(format!("class {} is not supported, only IN", field.text));
                }
                None => break parse_record_type(field.text).map_err(|e| e.to_string())?,
            }
        };

        let rdata_text = fields.map(|f| f.text).collect::<Vec<_>>().join(" ");
        let rdata = parse_rdata(rtype, &rdata_text, &state.origin).map_err(|e| e.to_string())?;
        // RFC 1035 reuses the last stated TTL; RFC 2308's $TTL takes precedence over it.
        let ttl = ttl
            .or(state.dollar_ttl)
            .or(state.last_ttl)
            .or(self.default_ttl)
            .ok_or(
                "no TTL: give one on the record, set $TTL, or configure a default TTL for the zone",
            )?;
        state.last_ttl = Some(ttl);
        Ok(Some(ZoneFileRecord {
            name,
            ttl,
            rtype,
            rdata,
            file: path.to_path_buf(),
            line: entry.line,
        }))
    }
}

/// `Some(true)` for IN, `Some(false)` for another class, `None` if the text is no class.
fn class_of(text: &str) -> Option<bool> {
    let upper = text.to_ascii_uppercase();
    match upper.as_str() {
        "IN" | "CLASS1" => Some(true),
        "CH" | "CHAOS" | "HS" | "HESIOD" | "CS" | "NONE" => Some(false),
        _ => upper
            .strip_prefix("CLASS")
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .map(|_| false),
    }
}

fn parse_ttl_field(text: &str) -> Result<u32, String> {
    match parse_ttl(text) {
        Ok(ttl) if ttl <= MAX_TTL => Ok(ttl),
        Ok(_) => Err(format!(
            "TTL {text} is larger than the maximum {MAX_TTL} seconds"
        )),
        Err(_) if text.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
            "TTL {text} is larger than the maximum {MAX_TTL} seconds"
        )),
        Err(_) => Err(format!(
            "invalid TTL \"{text}\" (expected seconds or a duration like 1h30m)"
        )),
    }
}

/// Identity of a file for cycle detection; a file that does not exist yet keeps its path.
fn include_key(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn read_file(path: &Path) -> Result<String, String> {
    let cannot_read = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let mut bytes = Vec::new();
    File::open(path)
        .map_err(cannot_read)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "{} is larger than the 64 MiB allowed for a zone file",
            path.display()
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = e
            .as_bytes()
            .iter()
            .take(valid)
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        format!("{} is not UTF-8 text (line {line})", path.display())
    })
}

#[cfg(test)]
mod tests;
