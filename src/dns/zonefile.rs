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
    loader.parse(text, path, &mut state);
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
    fn parse(&mut self, text: &str, path: &Path, state: &mut FileState) {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for entry in Lexer::run(text) {
            let result = entry.and_then(|entry| {
                self.entry(&entry, path, state)
                    .map_err(|message| (entry.line, message))
            });
            if let Err((line, message)) = result {
                self.errors.push(ZoneFileError {
                    file: path.to_path_buf(),
                    line,
                    message,
                });
            }
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
        self.parse(&text, &target, &mut included);
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
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};
    use hickory_proto::serialize::binary::BinEncodable;
    use std::fs;
    use std::net::Ipv4Addr;

    const FILE: &str = "/zones/example.com.zone";

    fn zone() -> Name {
        Name::from_ascii("example.com.").expect("valid zone")
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("valid test name")
    }

    fn parse_with(text: &str, default_ttl: Option<u32>) -> Vec<ZoneFileRecord> {
        parse_zone_text(text, Path::new(FILE), &zone(), default_ttl)
            .unwrap_or_else(|errors| panic!("unexpected errors: {errors:#?}"))
    }

    fn parse(text: &str) -> Vec<ZoneFileRecord> {
        parse_with(text, None)
    }

    fn errors(text: &str) -> Vec<(usize, String)> {
        parse_zone_text(text, Path::new(FILE), &zone(), Some(300))
            .expect_err("the text should not parse")
            .into_iter()
            .map(|e| (e.line, e.message))
            .collect()
    }

    fn a(octets: [u8; 4]) -> RData {
        RData::A(A(Ipv4Addr::from(octets)))
    }

    #[test]
    fn zone_with_every_supported_type() {
        let text = r#"$ORIGIN example.com.
$TTL 1h
@   IN  SOA ns1 hostmaster ( ; the SOA spans lines
            2024060101 ; serial
            2h 30m     ; refresh, retry
            2w 1d )    ; expire, minimum
    IN  NS      ns1
    IN  NS      ns2.example.net.
ns1     A       192.0.2.53
www     AAAA    2001:db8::80
alias   CNAME   www
@       MX      10 mail
txt     TXT     "v=1; (quoted) \"semicolon\"" plain "\065"
spf     SPF     "v=spf1 -all"
_sip._udp SRV   10 60 5060 sip
@       CAA     0 issue "letsencrypt.org"
@       CAA     128 tbs "x"
naptr   NAPTR   100 10 "S" "SIP+D2U" "!^.*$!sip:info@example.com!" _sip._udp
ptr     PTR     host.example.net.
child   DS      60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
host    SSHFP   1 1 123456789abcdef67890123456789abcdef67890
_443._tcp TLSA  3 1 1 ( abcdef01
                        23456789 )
svc     SVCB    1 . alpn="h2,h3" port=8443
@       HTTPS   1 . alpn=h2
hinfo   HINFO   "x86_64" "Linux"
unknown TYPE65534 \# 3 010203
"#;
        let records = parse(text);
        let types: Vec<String> = records
            .iter()
            .map(|r| super::super::rdata::record_type_name(r.rtype))
            .collect();
        assert_eq!(
            types,
            [
                "SOA",
                "NS",
                "NS",
                "A",
                "AAAA",
                "CNAME",
                "MX",
                "TXT",
                "SPF",
                "SRV",
                "CAA",
                "CAA",
                "NAPTR",
                "PTR",
                "DS",
                "SSHFP",
                "TLSA",
                "SVCB",
                "HTTPS",
                "HINFO",
                "TYPE65534"
            ]
        );
        for record in &records {
            assert_eq!(
                record.rdata.record_type(),
                record.rtype,
                "line {}",
                record.line
            );
            assert_eq!(record.ttl, 3600);
            assert_eq!(record.file, Path::new(FILE));
        }
        let soa = &records[0];
        assert_eq!((soa.name.clone(), soa.line), (zone(), 3));
        assert_eq!(
            soa.rdata.to_string(),
            "ns1.example.com. hostmaster.example.com. 2024060101 7200 1800 1209600 86400"
        );
        assert_eq!((records[1].name.clone(), records[1].line), (zone(), 7));
        assert_eq!(
            records[5].rdata,
            RData::CNAME(CNAME(name("www.example.com.")))
        );
        assert_eq!(
            records[6].rdata,
            RData::MX(MX::new(10, name("mail.example.com.")))
        );
        assert_eq!(
            records[7].rdata,
            RData::TXT(TXT::from_bytes(vec![
                b"v=1; (quoted) \"semicolon\"",
                b"plain",
                b"A"
            ]))
        );
        assert_eq!(records[8].rtype, RecordType::Unknown(99));
        let RData::CAA(critical) = &records[11].rdata else {
            panic!("not CAA")
        };
        assert!(critical.issuer_critical);
        assert_eq!(records[16].line, 22);
        assert_eq!(records[20].rtype, RecordType::Unknown(65534));
        assert_eq!(records[20].rdata.to_bytes().expect("wire"), [1, 2, 3]);
    }

    #[test]
    fn owner_forms() {
        let records = parse(
            "$TTL 60\n\
             @ A 192.0.2.1\n\
             www A 192.0.2.2\n\
             \tA 192.0.2.3\n\
             abs.example.com. A 192.0.2.4\n\
             $ORIGIN sub.example.com.\n\
             rel A 192.0.2.5\n\
             @ A 192.0.2.6\n\
             $ORIGIN deeper\n\
             x A 192.0.2.7\n\
             a\\.b A 192.0.2.8\n\
             a\\032b A 192.0.2.9\n\
             *.wild A 192.0.2.10\n\
             WWW.Example.COM. A 192.0.2.11\n",
        );
        let names: Vec<String> = records.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(
            names[..7],
            [
                "example.com.",
                "www.example.com.",
                "www.example.com.",
                "abs.example.com.",
                "rel.sub.example.com.",
                "sub.example.com.",
                "x.deeper.sub.example.com.",
            ]
        );
        assert_eq!(records[7].name.iter().next(), Some(&b"a.b"[..]));
        assert_eq!(records[8].name.iter().next(), Some(&b"a b"[..]));
        assert!(records[9].name.is_wildcard());
        assert!(records[10].name.eq_case(&name("WWW.Example.COM.")));
        assert_eq!(records[2].rdata, a([192, 0, 2, 3]));
        assert_eq!(records[2].line, 4);
    }

    #[test]
    fn ttl_forms_and_defaults() {
        let records = parse_with(
            "a 1h30m IN A 192.0.2.1\n\
             b IN 2D A 192.0.2.1\n\
             c 1W A 192.0.2.1\n\
             d 30m A 192.0.2.1\n\
             e 10S IN A 192.0.2.1\n\
             f A 192.0.2.1\n\
             $TTL 0\n\
             g A 192.0.2.1\n\
             h 2147483647 A 192.0.2.1\n",
            Some(42),
        );
        let ttls: Vec<u32> = records.iter().map(|r| r.ttl).collect();
        assert_eq!(
            ttls,
            [5400, 172_800, 604_800, 1800, 10, 10, 0, 2_147_483_647]
        );

        // With neither an explicit TTL, $TTL nor a previous record, the default applies.
        assert_eq!(
            parse_with("a A 192.0.2.1\nb 5 A 192.0.2.1\nc A 192.0.2.1", Some(42))
                .iter()
                .map(|r| r.ttl)
                .collect::<Vec<_>>(),
            [42, 5, 5]
        );
        let missing =
            parse_zone_text("a A 192.0.2.1\n", Path::new(FILE), &zone(), None).expect_err("no TTL");
        assert_eq!(missing[0].line, 1);
        assert!(
            missing[0].message.starts_with("no TTL"),
            "{}",
            missing[0].message
        );
    }

    #[test]
    fn bad_ttls_and_classes() {
        assert_eq!(
            errors(
                "a 2147483648 A 192.0.2.1\nb 1x A 192.0.2.1\n$TTL 99999999999\n$TTL\nc 1 2 A 192.0.2.1"
            ),
            [
                (
                    1,
                    "TTL 2147483648 is larger than the maximum 2147483647 seconds".to_owned()
                ),
                (
                    2,
                    "invalid TTL \"1x\" (expected seconds or a duration like 1h30m)".to_owned()
                ),
                (
                    3,
                    "TTL 99999999999 is larger than the maximum 2147483647 seconds".to_owned()
                ),
                (4, "$TTL expects one TTL".to_owned()),
                (5, "second TTL \"2\" (a record has one TTL)".to_owned()),
            ]
        );
        assert_eq!(
            errors(
                "a CH A 192.0.2.1\nb 60 HS TXT x\nc CLASS3 A 192.0.2.1\nd IN in A 192.0.2.1\ne ANY A 192.0.2.1"
            ),
            [
                (1, "class CH is not supported, only IN".to_owned()),
                (2, "class HS is not supported, only IN".to_owned()),
                (3, "class CLASS3 is not supported, only IN".to_owned()),
                (4, "the class is given twice".to_owned()),
                (
                    5,
                    "record type \"ANY\" is a query or meta type and cannot be used for records"
                        .to_owned()
                ),
            ]
        );
        assert_eq!(
            parse_with("a CLASS1 A 192.0.2.1\nb in 60 a 192.0.2.1", Some(1))[1].ttl,
            60
        );
    }

    #[test]
    fn names_outside_the_zone() {
        assert_eq!(
            errors(
                "www.other.example. A 192.0.2.1\n  TXT x\n$ORIGIN com.\nexample A 192.0.2.1\nfoo A 192.0.2.1"
            ),
            [
                (
                    1,
                    "name www.other.example. is outside zone example.com.".to_owned()
                ),
                (
                    2,
                    "name www.other.example. is outside zone example.com.".to_owned()
                ),
                (5, "name foo.com. is outside zone example.com.".to_owned()),
            ]
        );
    }

    #[test]
    fn all_errors_are_reported_with_the_line_the_record_starts_on() {
        let text = "$TTL 300\n\
                    ok A 192.0.2.1\n\
                    bad1 A 300.1.1.1\n\
                    \n\
                    mx MX ( 10\n\
                    ; only a comment\n\
                    )\n\
                    txt TXT \"unterminated\n\
                    ok2 A 192.0.2.2\n\
                    foo BOGUS data\n\
                    $FOO bar\n\
                    caa CAA 0 bad-tag \"x\"\n";
        assert_eq!(
            errors(text),
            [
                (3, "\"300.1.1.1\" is not an IPv4 address".to_owned()),
                (5, "\"10\" is not valid MX data (expected \"<preference> <exchange>\")".to_owned()),
                (8, "a quoted string is missing its closing '\"' (strings cannot span lines)".to_owned()),
                (10, "unknown record type \"BOGUS\"".to_owned()),
                (11, "unknown directive $FOO (expected $ORIGIN, $TTL or $INCLUDE)".to_owned()),
                (12, "invalid CAA data \"0 bad-tag \"x\"\": tag \"bad-tag\" must be 1 to 15 letters or digits".to_owned()),
            ]
        );
        let err =
            &parse_zone_text("x A 1\n", Path::new(FILE), &zone(), Some(1)).expect_err("bad")[0];
        assert_eq!(
            err.to_string(),
            "/zones/example.com.zone:1: \"1\" is not an IPv4 address"
        );
    }

    #[test]
    fn parentheses_comments_and_quotes() {
        let records = parse_with(
            "txt TXT ( \"a;b\" ; comment with ( and \"\n  \"c(d\" ) ; trailing\n\
             t2 TXT \"x)\" (\"y\")\n\
             ( t3 A\n 192.0.2.1 )\n",
            Some(1),
        );
        assert_eq!(
            records[0].rdata,
            RData::TXT(TXT::from_bytes(vec![b"a;b", b"c(d"]))
        );
        assert_eq!(
            records[1].rdata,
            RData::TXT(TXT::from_bytes(vec![b"x)", b"y"]))
        );
        assert_eq!(
            (records[2].line, records[2].rdata.clone()),
            (4, a([192, 0, 2, 1]))
        );
        assert_eq!(
            errors("a TXT ( x\nb A 192.0.2.1\n"),
            [(1, "'(' is never closed".to_owned())]
        );
        assert_eq!(
            errors("a A 192.0.2.1 )\nb A 192.0.2.2"),
            [(1, "')' without a matching '('".to_owned())]
        );
    }

    #[test]
    fn crlf_and_bom() {
        let records = parse_with(
            "\u{feff}$ORIGIN example.com.\r\nwww A 192.0.2.1\r\n\tTXT \"x\"\r\n",
            Some(5),
        );
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].name, name("www.example.com."));
        assert_eq!(records[1].rdata, RData::TXT(TXT::from_bytes(vec![b"x"])));
    }

    #[test]
    fn blank_owner_needs_a_previous_owner() {
        assert_eq!(
            errors("  A 192.0.2.1\nbad..name A 192.0.2.1\n  A 192.0.2.2\n"),
            [
                (1, "the line starts with whitespace, but no earlier record gives an owner name".to_owned()),
                (
                    2,
                    "owner \"bad..name\" is not a valid domain name: it has an empty label (a leading dot or two dots in a row)"
                        .to_owned()
                ),
            ]
        );
    }

    #[test]
    fn include_with_origin_and_relative_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("inc")).expect("mkdir");
        fs::write(
            dir.path().join("inc/hosts.zone"),
            "$TTL 99\nhost A 192.0.2.10\n@ TXT \"apex of the include\"\n$ORIGIN elsewhere.example.com.\nz A 192.0.2.11\n",
        )
        .expect("write include");
        fs::write(
            dir.path().join("inc/bad.zone"),
            "ok A 192.0.2.1\nbroken A 1.2.3\n",
        )
        .expect("write include");
        let main = dir.path().join("example.com.zone");
        fs::write(
            &main,
            "$TTL 60\n$INCLUDE inc/hosts.zone lab\nafter A 192.0.2.20\n$INCLUDE \"inc/hosts.zone\"\n",
        )
        .expect("write zone");
        let records = load_zone_file(&main, &zone(), None).unwrap_or_else(|e| panic!("{e:#?}"));
        let summary: Vec<(String, u32, usize)> = records
            .iter()
            .map(|r| (r.name.to_string(), r.ttl, r.line))
            .collect();
        assert_eq!(
            summary,
            [
                ("host.lab.example.com.".to_owned(), 99, 2),
                ("lab.example.com.".to_owned(), 99, 3),
                ("z.elsewhere.example.com.".to_owned(), 99, 5),
                ("after.example.com.".to_owned(), 60, 3),
                ("host.example.com.".to_owned(), 99, 2),
                ("example.com.".to_owned(), 99, 3),
                ("z.elsewhere.example.com.".to_owned(), 99, 5),
            ]
        );
        assert_eq!(records[0].file, dir.path().join("inc/hosts.zone"));
        assert_eq!(records[3].file, main);

        fs::write(
            &main,
            "$TTL 60\n$INCLUDE inc/bad.zone\n$INCLUDE missing.zone\n",
        )
        .expect("write zone");
        let errors = load_zone_file(&main, &zone(), None).expect_err("errors");
        assert_eq!(errors.len(), 2);
        assert_eq!(
            (errors[0].file.clone(), errors[0].line),
            (dir.path().join("inc/bad.zone"), 2)
        );
        assert_eq!((errors[1].file.clone(), errors[1].line), (main.clone(), 3));
        assert!(
            errors[1].message.starts_with("cannot read "),
            "{}",
            errors[1].message
        );
        assert!(
            errors[1].message.contains("missing.zone"),
            "{}",
            errors[1].message
        );
    }

    #[test]
    fn include_cycles_and_depth_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(
            dir.path().join("a.zone"),
            "a A 192.0.2.1\n$INCLUDE b.zone\n",
        )
        .expect("write");
        fs::write(
            dir.path().join("b.zone"),
            "b A 192.0.2.2\n$INCLUDE a.zone\n",
        )
        .expect("write");
        let errors =
            load_zone_file(&dir.path().join("a.zone"), &zone(), Some(1)).expect_err("cycle");
        assert_eq!(errors.len(), 1);
        assert_eq!(
            (errors[0].file.clone(), errors[0].line),
            (dir.path().join("b.zone"), 2)
        );
        assert!(
            errors[0].message.starts_with("$INCLUDE cycle: "),
            "{}",
            errors[0].message
        );
        let a_zone = dir.path().join("a.zone").canonicalize().expect("path");
        assert!(
            errors[0]
                .message
                .ends_with(&format!("b.zone -> {}", a_zone.display())),
            "{}",
            errors[0].message
        );

        // f0 includes f1 ... includes fN: 16 nested includes are fine, 17 are not.
        let chain = |files: usize| {
            for n in 0..files {
                let next = if n + 1 < files {
                    format!("$INCLUDE f{}.zone\n", n + 1)
                } else {
                    String::new()
                };
                fs::write(
                    dir.path().join(format!("f{n}.zone")),
                    format!("f{n} A 192.0.2.1\n{next}"),
                )
                .expect("write");
            }
            load_zone_file(&dir.path().join("f0.zone"), &zone(), Some(1))
        };
        assert_eq!(
            chain(MAX_INCLUDE_DEPTH + 1).expect("16 levels").len(),
            MAX_INCLUDE_DEPTH + 1
        );
        let errors = chain(MAX_INCLUDE_DEPTH + 2).expect_err("17 levels");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .message
                .contains("nested more than 16 levels deep"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn unreadable_and_invalid_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.zone");
        let unreadable = load_zone_file(&missing, &zone(), None).expect_err("missing");
        assert_eq!(unreadable.len(), 1);
        assert_eq!(unreadable[0].line, 0);
        let message = &unreadable[0].message;
        assert!(
            message.contains(&missing.display().to_string()),
            "{message}"
        );
        assert!(message.contains("No such file or directory"), "{message}");
        assert_eq!(
            unreadable[0].to_string(),
            format!("{}: {message}", missing.display())
        );

        let latin1 = dir.path().join("latin1.zone");
        fs::write(&latin1, b"a A 192.0.2.1\nb TXT \"caf\xe9\"\n").expect("write");
        let not_utf8 = load_zone_file(&latin1, &zone(), Some(1)).expect_err("not utf-8");
        assert!(
            not_utf8[0].message.ends_with("is not UTF-8 text (line 2)"),
            "{}",
            not_utf8[0].message
        );

        let long = format!(
            "a A 192.0.2.1\nb TXT \"{}\"\nc A 192.0.2.1",
            "x".repeat(MAX_LINE_BYTES)
        );
        let expected = format!(
            "the line is {} bytes long, at most {MAX_LINE_BYTES} are allowed",
            MAX_LINE_BYTES + 8
        );
        assert_eq!(errors(&long), [(2, expected)]);
    }

    #[test]
    fn directive_arguments() {
        assert_eq!(
            errors("$ORIGIN\n$ORIGIN a b\n$INCLUDE\n$ORIGIN bad..name\n"),
            [
                (1, "$ORIGIN expects one domain name".to_owned()),
                (2, "$ORIGIN expects one domain name".to_owned()),
                (3, "$INCLUDE expects a file name and an optional origin".to_owned()),
                (
                    4,
                    "\"bad..name\" is not a valid domain name: it has an empty label (a leading dot or two dots in a row)"
                        .to_owned()
                ),
            ]
        );
        assert_eq!(
            errors("a 60 IN\nb \"A\" x"),
            [
                (1, "missing record type".to_owned()),
                (
                    2,
                    "expected a TTL, class or record type, found \"A\"".to_owned()
                ),
            ]
        );
    }
}
