//! The lexical layer of presentation format: fields (quoted or not, with `\X`/`\DDD`
//! escapes) and domain names.

use hickory_proto::rr::{Label, Name};

use super::{RdataError, shown};

/// Parses a domain name as written in a zone file: `@` is `origin`, a name without a trailing
/// dot is relative to `origin`, `\X` and `\DDD` (decimal) escapes put any byte into a label,
/// and labels with non-ASCII characters are IDNA (punycode) encoded. Case is preserved.
///
/// Unescaped characters other than letters, digits, `-`, `_`, `/` (RFC 2317) and a `*` label
/// are refused, because they are nearly always a typo (a URL, a comma, an e-mail address).
pub fn parse_domain_name(text: &str, origin: &Name) -> Result<Name, RdataError> {
    let fail = |reason: String| RdataError::InvalidName {
        name: shown(text),
        reason,
    };
    match text {
        "@" => return Ok(origin.clone()),
        "." => return Ok(Name::root()),
        "" => return Err(fail("it is empty".to_owned())),
        _ => {}
    }
    let bytes = text.as_bytes();
    let mut labels = Vec::new();
    let mut label = LabelBuf::default();
    let mut absolute = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        absolute = false;
        match b {
            b'\\' => {
                let (decoded, used) = decode_escape(text, i).map_err(fail)?;
                label.bytes.extend(decoded);
                i += used;
                continue;
            }
            b'.' => {
                labels.push(label.finish().map_err(fail)?);
                label = LabelBuf::default();
                absolute = true;
            }
            b'*' => {
                label.star = true;
                label.bytes.push(b);
            }
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/') => {
                label.bytes.push(b)
            }
            b if !b.is_ascii() => {
                label.unicode = true;
                label.bytes.push(b);
            }
            b => {
                return Err(fail(format!(
                    "character {:?} is not allowed (write it as \\{b:03} if it is meant)",
                    char::from(b)
                )));
            }
        }
        i += 1;
    }
    if !absolute {
        labels.push(label.finish().map_err(fail)?);
        for origin_label in origin.iter() {
            labels.push(Label::from_raw_bytes(origin_label).map_err(|e| fail(e.to_string()))?);
        }
    }
    // Wire length: one length byte per label plus the root label.
    let wire_len: usize = labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1;
    if wire_len > 255 {
        return Err(fail(format!(
            "it is {wire_len} bytes long, at most 255 are allowed"
        )));
    }
    Name::from_labels(labels).map_err(|e| fail(e.to_string()))
}

#[derive(Default)]
struct LabelBuf {
    bytes: Vec<u8>,
    /// An unescaped `*` was seen; only a label of its own is a wildcard.
    star: bool,
    /// Unescaped non-ASCII was seen, so the label is meant as an IDN.
    unicode: bool,
}

impl LabelBuf {
    fn finish(self) -> Result<Label, String> {
        if self.bytes.is_empty() {
            return Err("it has an empty label (a leading dot or two dots in a row)".to_owned());
        }
        if self.star && self.bytes != b"*" {
            return Err("'*' is only allowed as a whole label".to_owned());
        }
        if self.bytes.len() > 63 {
            return Err(format!(
                "a label is {} bytes long, at most 63 are allowed",
                self.bytes.len()
            ));
        }
        if self.unicode {
            let text = std::str::from_utf8(&self.bytes)
                .map_err(|_| "a label mixes escaped bytes with non-ASCII text".to_owned())?;
            return Label::from_utf8(text)
                .map_err(|_| format!("\"{text}\" is not a valid internationalized label"));
        }
        Label::from_raw_bytes(&self.bytes).map_err(|e| e.to_string())
    }
}

/// One whitespace-separated field. `raw` keeps quotes and escapes as written (names and hex
/// are read from it); `bytes` is the decoded value (character-strings are read from it).
pub(super) struct Token<'a> {
    pub(super) raw: &'a str,
    pub(super) bytes: Vec<u8>,
    pub(super) quoted: bool,
}

pub(super) fn tokenize(text: &str) -> Result<Vec<Token<'_>>, String> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.checked_sub(1).ok_or("')' without a matching '('")?;
                i += 1;
            }
            b';' => return Err("';' starts a comment; quote or escape it (\\;) to use it".into()),
            _ => {
                let token = read_token(text, i)?;
                i += token.raw.len();
                tokens.push(token);
            }
        }
    }
    if depth > 0 {
        return Err("'(' without a matching ')'".into());
    }
    Ok(tokens)
}

/// Reads the token starting at `start`. A quote inside a token opens a quoted section that
/// still belongs to it, so SVCB's `alpn="h2,h3"` stays one field.
fn read_token(text: &str, start: usize) -> Result<Token<'_>, String> {
    let bytes = text.as_bytes();
    let quoted = bytes.get(start) == Some(&b'"');
    let mut decoded = Vec::new();
    let mut in_quotes = false;
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => {
                let (escaped, used) = decode_escape(text, i)?;
                decoded.extend(escaped);
                i += used;
                continue;
            }
            b'"' => {
                in_quotes = !in_quotes;
                i += 1;
                if quoted && !in_quotes {
                    break;
                }
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b';' if !in_quotes => break,
            _ => decoded.push(b),
        }
        i += 1;
    }
    if in_quotes {
        return Err("a quoted string is missing its closing '\"'".into());
    }
    Ok(Token {
        raw: &text[start..i],
        bytes: decoded,
        quoted,
    })
}

/// Decodes the escape whose backslash is at byte `at`; returns its bytes and source length.
pub(super) fn decode_escape(text: &str, at: usize) -> Result<(Vec<u8>, usize), String> {
    let rest = text.get(at + 1..).unwrap_or_default();
    match rest.chars().next() {
        None => Err("a backslash at the end has nothing to escape".into()),
        Some(c) if c.is_ascii_digit() => {
            let digits = rest
                .get(..3)
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                .ok_or("a \\DDD escape needs exactly three digits")?;
            let value = digits.parse::<u16>().map_err(|e| e.to_string())?;
            let byte = u8::try_from(value)
                .map_err(|_| format!("escape \\{digits} is larger than \\255"))?;
            Ok((vec![byte], 4))
        }
        Some(c) => Ok((c.to_string().into_bytes(), 1 + c.len_utf8())),
    }
}
