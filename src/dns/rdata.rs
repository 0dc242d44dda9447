//! Presentation-format RDATA (RFC 1035 §5.1, RFC 3597) as written in zone files and the TOML
//! config.
//!
//! hickory-proto's text parsing is only reachable through its zone-file `Parser`, and that
//! parser gets several things wrong for an authoritative server: `\DDD` escapes (decimal per
//! RFC 1035) come out as garbage inside quoted strings and as octal inside names, names are
//! lower-cased and IDNA-checked (so `Mail.Example.com` loses its case and labels such as
//! `dis_allowed` are refused), `@` is refused inside RDATA, relative SVCB targets stay
//! relative, and surplus fields are silently dropped. So tokens, escapes, domain names,
//! character-strings and field counts are handled here, types made only of those are built
//! directly, and the remaining types hickory knows (SVCB, HTTPS, SSHFP, TLSA, CERT, ...) go
//! through its `Parser` as a synthesized one-record zone whose tokens are re-quoted so that
//! nothing in the input can add records or directives.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::rr::rdata::{
    ANAME, CNAME, HINFO, HTTPS, MX, NAPTR, NS, NULL, PTR, SOA, SRV, TXT,
};
use hickory_proto::rr::{Label, Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, Restrict};
use hickory_proto::serialize::txt::{Parser, parse_ttl};

/// SPF (RFC 7208 §3.1) is long deprecated, so hickory has no variant for it.
const SPF_CODE: u16 = 99;
/// SOA timers are signed 32-bit on the wire (RFC 1035 §3.3.13 via RFC 2181 §8).
const MAX_TIMER: u32 = 2_147_483_647;
const MAX_RDATA_LEN: usize = 65_535;
const MAX_CHARACTER_STRING: usize = 255;
/// Error messages echo the user's value; a 2 KB DKIM key would drown the message.
const MAX_SHOWN_CHARS: usize = 80;

/// Why a record type or RDATA could not be parsed. The messages describe the value itself so
/// callers can prefix them with where the value came from (`dns.zones[0].records[3]: ...`).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum RdataError {
    /// The type mnemonic is not known (`TYPEnn` is always accepted).
    #[error("unknown record type \"{0}\"")]
    UnknownType(String),
    /// Query and meta types (ANY, OPT, AXFR, TYPE0, 128-255, ...) never hold zone data.
    #[error("record type \"{0}\" is a query or meta type and cannot be used for records")]
    MetaType(String),
    /// A-record data is not an IPv4 address.
    #[error("\"{0}\" is not an IPv4 address")]
    NotIpv4(String),
    /// AAAA record data is not an IPv6 address.
    #[error("\"{0}\" is not an IPv6 address")]
    NotIpv6(String),
    /// The data has the wrong number of fields.
    #[error("\"{text}\" is not valid {rtype} data (expected \"{expected}\")")]
    Format {
        /// Presentation name of the type.
        rtype: String,
        /// The offending data, shortened to one line.
        text: String,
        /// The field layout the type needs.
        expected: String,
    },
    /// A domain name is malformed.
    #[error("\"{name}\" is not a valid domain name: {reason}")]
    InvalidName {
        /// The name as written, shortened to one line.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other problem with one field or with the data as a whole.
    #[error("invalid {rtype} data \"{text}\": {reason}")]
    Invalid {
        /// Presentation name of the type.
        rtype: String,
        /// The offending data, shortened to one line.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The type has no presentation format that can be parsed here.
    #[error("{0} data can only be written in the generic form \"\\# <length> <hex>\" (RFC 3597)")]
    GenericOnly(String),
}

/// Parses a record type mnemonic as written in a zone file or the TOML config: "A", "aaaa",
/// "SPF" (→ `RecordType::Unknown(99)`), "TYPE65534" (RFC 3597) ...
///
/// `TYPEnn` with the number of a type hickory knows gives that type (`TYPE1` is `A`). Query
/// and meta types such as ANY or OPT are refused because they cannot hold data.
pub fn parse_record_type(text: &str) -> Result<RecordType, RdataError> {
    let trimmed = text.trim();
    let upper = trimmed.to_ascii_uppercase();
    let unknown = || RdataError::UnknownType(shown(trimmed));
    let rtype = if upper == "SPF" {
        RecordType::Unknown(SPF_CODE)
    } else if let Some(digits) = upper.strip_prefix("TYPE") {
        let code = decimal(digits).and_then(|n| u16::try_from(n).ok());
        RecordType::from(code.ok_or_else(unknown)?)
    } else {
        RecordType::from_str(&upper).map_err(|_| unknown())?
    };
    if is_meta(rtype) {
        return Err(RdataError::MetaType(shown(trimmed)));
    }
    Ok(rtype)
}

/// Presentation name of a type: the mnemonic for known types, "SPF" for 99 and `TYPEnn`
/// (RFC 3597) for every other number.
pub fn record_type_name(rtype: RecordType) -> String {
    match rtype {
        RecordType::Unknown(SPF_CODE) => "SPF".to_owned(),
        RecordType::Unknown(code) => format!("TYPE{code}"),
        RecordType::ZERO => "TYPE0".to_owned(),
        known => known.to_string(),
    }
}

/// Parses one record's RDATA (everything after the type, possibly spanning what were several
/// lines, already joined; may contain quoted strings with escapes) for `rtype`, relative names
/// completed with `origin`.
///
/// Parentheses and line breaks act as plain separators; an unquoted, unescaped `;` is an
/// error because comments must already be stripped. The RFC 3597 form `\# <len> <hex>` works
/// for every type. SPF yields `RData::Unknown` of type 99 holding TXT wire data.
pub fn parse_rdata(rtype: RecordType, text: &str, origin: &Name) -> Result<RData, RdataError> {
    let ctx = Ctx {
        rtype,
        text,
        origin,
    };
    if is_meta(rtype) {
        return Err(RdataError::MetaType(ctx.type_name()));
    }
    let tokens = tokenize(text).map_err(|reason| ctx.invalid(reason))?;
    let rdata = match tokens.split_first() {
        Some((first, rest)) if first.raw == "\\#" => parse_generic(&ctx, rest)?,
        _ => parse_presentation(&ctx, &tokens)?,
    };
    let wire = rdata
        .to_bytes()
        .map_err(|e| ctx.invalid(format!("the data cannot be encoded: {e}")))?;
    if wire.len() > MAX_RDATA_LEN {
        return Err(ctx.invalid(format!(
            "the data is {} bytes long; a record holds at most {MAX_RDATA_LEN}",
            wire.len()
        )));
    }
    Ok(rdata)
}

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
struct Token<'a> {
    raw: &'a str,
    bytes: Vec<u8>,
    quoted: bool,
}

fn tokenize(text: &str) -> Result<Vec<Token<'_>>, String> {
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
fn decode_escape(text: &str, at: usize) -> Result<(Vec<u8>, usize), String> {
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

struct Ctx<'a> {
    rtype: RecordType,
    text: &'a str,
    origin: &'a Name,
}

impl Ctx<'_> {
    fn type_name(&self) -> String {
        record_type_name(self.rtype)
    }

    fn invalid(&self, reason: impl Into<String>) -> RdataError {
        RdataError::Invalid {
            rtype: self.type_name(),
            text: shown(self.text),
            reason: shown_full(&reason.into()),
        }
    }

    fn format_error(&self, expected: &str) -> RdataError {
        RdataError::Format {
            rtype: self.type_name(),
            text: shown(self.text),
            expected: expected.to_owned(),
        }
    }

    /// Exactly `N` fields.
    fn fields<'t, 'a, const N: usize>(
        &self,
        tokens: &'t [Token<'a>],
        expected: &str,
    ) -> Result<&'t [Token<'a>; N], RdataError> {
        tokens.try_into().map_err(|_| self.format_error(expected))
    }

    /// At least `N` fields; the rest are returned separately.
    fn leading<'t, 'a, const N: usize>(
        &self,
        tokens: &'t [Token<'a>],
        expected: &str,
    ) -> Result<(&'t [Token<'a>; N], &'t [Token<'a>]), RdataError> {
        tokens
            .split_first_chunk()
            .ok_or_else(|| self.format_error(expected))
    }

    fn uint<T: TryFrom<u64>>(&self, token: &Token, field: &str, max: u64) -> Result<T, RdataError> {
        decimal(token.raw)
            .filter(|&n| n <= max)
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| {
                self.invalid(format!(
                    "{field} \"{}\" is not a number from 0 to {max}",
                    shown(token.raw)
                ))
            })
    }

    /// A time value such as `3600`, `1h` or `1w2d`, within what the signed wire field holds.
    fn timer<T: TryFrom<u32>>(&self, token: &Token, field: &str) -> Result<T, RdataError> {
        parse_ttl(token.raw)
            .ok()
            .filter(|&n| n <= MAX_TIMER)
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| {
                self.invalid(format!(
                    "{field} \"{}\" is not a time from 0 to {MAX_TIMER} seconds (like 3600 or 1h)",
                    shown(token.raw)
                ))
            })
    }

    fn name(&self, token: &Token, field: &str) -> Result<Name, RdataError> {
        parse_domain_name(token.raw, self.origin).map_err(|e| self.invalid(format!("{field} {e}")))
    }

    fn string<'t>(&self, token: &'t Token, field: &str) -> Result<&'t [u8], RdataError> {
        if token.bytes.len() > MAX_CHARACTER_STRING {
            return Err(self.invalid(format!(
                "{field} is {} bytes long, but a string holds at most {MAX_CHARACTER_STRING} \
                 (split it into several quoted strings)",
                token.bytes.len()
            )));
        }
        Ok(&token.bytes)
    }

    fn hex(&self, tokens: &[Token], field: &str) -> Result<Vec<u8>, RdataError> {
        let digits: String = tokens.iter().map(|t| t.raw).collect();
        decode_hex(&digits)
            .filter(|_| tokens.iter().all(|t| !t.quoted))
            .ok_or_else(|| {
                self.invalid(format!("{field} \"{}\" is not hexadecimal", shown(&digits)))
            })
    }
}

fn parse_presentation(ctx: &Ctx, tokens: &[Token]) -> Result<RData, RdataError> {
    use RecordType as T;
    let single = match tokens {
        [token] if !token.quoted => Some(token.raw),
        _ => None,
    };
    Ok(match ctx.rtype {
        T::A => RData::A(
            single
                .and_then(|s| Ipv4Addr::from_str(s).ok())
                .ok_or_else(|| RdataError::NotIpv4(shown(ctx.text)))?
                .into(),
        ),
        T::AAAA => RData::AAAA(
            single
                .and_then(|s| Ipv6Addr::from_str(s).ok())
                .ok_or_else(|| RdataError::NotIpv6(shown(ctx.text)))?
                .into(),
        ),
        T::CNAME | T::NS | T::PTR | T::ANAME | T::DNAME => {
            let [target] = ctx.fields(tokens, "<domain name>")?;
            // A lone name gets the name's own message, without an "invalid CNAME data" wrapper.
            let name = parse_domain_name(target.raw, ctx.origin)?;
            match ctx.rtype {
                T::CNAME => RData::CNAME(CNAME(name)),
                T::NS => RData::NS(NS(name)),
                T::PTR => RData::PTR(PTR(name)),
                T::ANAME => RData::ANAME(ANAME(name)),
                _ => from_wire(
                    ctx,
                    name.to_bytes().map_err(|e| ctx.invalid(e.to_string()))?,
                )?,
            }
        }
        T::MX => {
            let [preference, exchange] = ctx.fields(tokens, "<preference> <exchange>")?;
            RData::MX(MX::new(
                ctx.uint(preference, "preference", u16::MAX.into())?,
                ctx.name(exchange, "exchange")?,
            ))
        }
        T::SRV => {
            let [priority, weight, port, target] =
                ctx.fields(tokens, "<priority> <weight> <port> <target>")?;
            RData::SRV(SRV::new(
                ctx.uint(priority, "priority", u16::MAX.into())?,
                ctx.uint(weight, "weight", u16::MAX.into())?,
                ctx.uint(port, "port", u16::MAX.into())?,
                ctx.name(target, "target")?,
            ))
        }
        T::SOA => {
            let expected = "<mname> <rname> <serial> <refresh> <retry> <expire> <minimum>";
            let [mname, rname, serial, refresh, retry, expire, minimum] =
                ctx.fields(tokens, expected)?;
            RData::SOA(SOA::new(
                ctx.name(mname, "mname")?,
                ctx.name(rname, "rname")?,
                ctx.uint(serial, "serial", u32::MAX.into())?,
                ctx.timer(refresh, "refresh")?,
                ctx.timer(retry, "retry")?,
                ctx.timer(expire, "expire")?,
                ctx.timer(minimum, "minimum")?,
            ))
        }
        T::NAPTR => {
            let expected = "<order> <preference> <flags> <services> <regexp> <replacement>";
            let [order, preference, flags, services, regexp, replacement] =
                ctx.fields(tokens, expected)?;
            let flags = ctx.string(flags, "flags")?;
            if !flags.iter().all(u8::is_ascii_alphanumeric) {
                return Err(ctx.invalid("flags may only contain letters and digits"));
            }
            RData::NAPTR(NAPTR::new(
                ctx.uint(order, "order", u16::MAX.into())?,
                ctx.uint(preference, "preference", u16::MAX.into())?,
                flags.into(),
                ctx.string(services, "services")?.into(),
                ctx.string(regexp, "regexp")?.into(),
                ctx.name(replacement, "replacement")?,
            ))
        }
        T::TXT | T::Unknown(SPF_CODE) => {
            if tokens.is_empty() {
                return Err(ctx.format_error("<text> [<text> ...]"));
            }
            let strings = tokens
                .iter()
                .enumerate()
                .map(|(n, token)| ctx.string(token, &format!("string {}", n + 1)))
                .collect::<Result<Vec<_>, _>>()?;
            // hickory's encoder fails with a bare "maximum buffer size exceeded" otherwise.
            let size: usize = strings.iter().map(|s| s.len() + 1).sum();
            if size > MAX_RDATA_LEN {
                return Err(ctx.invalid(format!(
                    "the strings add up to {size} bytes; a record holds at most {MAX_RDATA_LEN}"
                )));
            }
            let txt = TXT::from_bytes(strings);
            if ctx.rtype == T::TXT {
                RData::TXT(txt)
            } else {
                from_wire(ctx, txt.to_bytes().map_err(|e| ctx.invalid(e.to_string()))?)?
            }
        }
        T::HINFO => {
            let [cpu, os] = ctx.fields(tokens, "<cpu> <os>")?;
            RData::HINFO(HINFO::from_bytes(
                ctx.string(cpu, "cpu")?.into(),
                ctx.string(os, "os")?.into(),
            ))
        }
        T::CAA => {
            let [flags, tag, value] = ctx.fields(tokens, "<flags> <tag> <value>")?;
            let flags: u8 = ctx.uint(flags, "flags", u8::MAX.into())?;
            let tag_len = u8::try_from(tag.bytes.len())
                .ok()
                .filter(|n| (1..=15).contains(n) && tag.bytes.iter().all(u8::is_ascii_alphanumeric))
                .ok_or_else(|| {
                    ctx.invalid(format!(
                        "tag \"{}\" must be 1 to 15 letters or digits",
                        shown(tag.raw)
                    ))
                })?;
            let mut wire = vec![flags, tag_len];
            wire.extend_from_slice(&tag.bytes);
            wire.extend_from_slice(&value.bytes);
            from_wire(ctx, wire)?
        }
        T::DS | T::CDS => {
            // hickory parses DS only with its DNSSEC features; the wire decoder always works.
            let expected = "<key tag> <algorithm> <digest type> <digest hex>";
            let ([key_tag, algorithm, digest_type], digest) = ctx.leading(tokens, expected)?;
            if digest.is_empty() {
                return Err(ctx.format_error(expected));
            }
            let mut wire = ctx
                .uint::<u16>(key_tag, "key tag", u16::MAX.into())?
                .to_be_bytes()
                .to_vec();
            wire.push(ctx.uint(algorithm, "algorithm", u8::MAX.into())?);
            wire.push(ctx.uint(digest_type, "digest type", u8::MAX.into())?);
            wire.extend(ctx.hex(digest, "digest")?);
            from_wire(ctx, wire)?
        }
        T::SSHFP => via_hickory(ctx, tokens, 3, "<algorithm> <type> <fingerprint hex>")?,
        T::TLSA | T::SMIMEA => via_hickory(
            ctx,
            tokens,
            4,
            "<usage> <selector> <matching type> <data hex>",
        )?,
        T::SVCB | T::HTTPS => {
            via_hickory(ctx, tokens, 2, "<priority> <target> [<key>=<value> ...]")?
        }
        T::CERT => via_hickory(ctx, tokens, 4, "<type> <key tag> <algorithm> <base64 data>")?,
        T::CSYNC => via_hickory(ctx, tokens, 2, "<serial> <flags> [<type> ...]")?,
        T::OPENPGPKEY => via_hickory(ctx, tokens, 1, "<base64 key>")?,
        _ => return Err(RdataError::GenericOnly(ctx.type_name())),
    })
}

/// Hands the fields to hickory's zone parser as `@ 0 IN <TYPE> <fields>` (the origin and an
/// explicit TTL are all it needs). Every field is re-encoded from its decoded value: plain
/// ones as they are, anything else as a quoted string with only `\"` and `\\` escapes, which
/// hickory reads back exactly, so no field can end the line or start a directive.
fn via_hickory(
    ctx: &Ctx,
    tokens: &[Token],
    min_fields: usize,
    expected: &str,
) -> Result<RData, RdataError> {
    if tokens.len() < min_fields {
        return Err(ctx.format_error(expected));
    }
    let mut parts = tokens
        .iter()
        .map(|t| requote(t).map_err(|reason| ctx.invalid(reason)))
        .collect::<Result<Vec<_>, _>>()?;
    // hickory reads the SVCB target without the origin, so parse it here and patch it in.
    let mut target = None;
    if let (RecordType::SVCB | RecordType::HTTPS, Some(token), Some(part)) =
        (ctx.rtype, tokens.get(1), parts.get_mut(1))
    {
        target = Some(ctx.name(token, "target")?);
        ".".clone_into(part);
    }
    // Fingerprints are often written in chunks; hickory's SSHFP takes a single field.
    if ctx.rtype == RecordType::SSHFP && parts.len() > 3 {
        let fingerprint = parts.split_off(2).concat();
        parts.push(fingerprint);
    }
    let zone = format!("@ 0 IN {} {}\n", ctx.rtype, parts.join(" "));
    let (_, sets) = Parser::new(zone, None, Some(ctx.origin.clone()))
        .parse()
        .map_err(|e| ctx.invalid(e.to_string().trim_start_matches("proto error: ")))?;
    let mut records = sets.into_values().flatten();
    let rdata = match (records.next(), records.next()) {
        (Some(record), None) if record.record_type() == ctx.rtype => record.data,
        _ => return Err(ctx.invalid("the data does not form exactly one record")),
    };
    Ok(match (rdata, target) {
        (RData::SVCB(mut svcb), Some(target)) => {
            svcb.target_name = target;
            RData::SVCB(svcb)
        }
        (RData::HTTPS(HTTPS(mut svcb)), Some(target)) => {
            svcb.target_name = target;
            RData::HTTPS(HTTPS(svcb))
        }
        (rdata, _) => rdata,
    })
}

fn requote(token: &Token) -> Result<String, String> {
    let text = std::str::from_utf8(&token.bytes)
        .map_err(|_| format!("\"{}\" is not UTF-8 text", shown(token.raw)))?;
    let plain = !text.is_empty()
        && !text.starts_with(['@', '$'])
        && !text.contains(|c: char| {
            c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\' | ';' | '(' | ')')
        });
    Ok(if plain {
        text.to_owned()
    } else {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    })
}

/// RFC 3597 §5: `\# <length> <hex>`, the hex possibly split into several fields.
fn parse_generic(ctx: &Ctx, tokens: &[Token]) -> Result<RData, RdataError> {
    let Some((length, hex)) = tokens.split_first() else {
        return Err(ctx.format_error("\\# <length> <hex data>"));
    };
    let length: u16 = ctx.uint(length, "length", u16::MAX.into())?;
    let bytes = ctx.hex(hex, "data")?;
    if bytes.len() != usize::from(length) {
        return Err(ctx.invalid(format!(
            "length {length} does not match the {} bytes of hex data",
            bytes.len()
        )));
    }
    from_wire(ctx, bytes)
}

/// Turns wire-format RDATA into the `RData` hickory would have decoded from a packet.
fn from_wire(ctx: &Ctx, bytes: Vec<u8>) -> Result<RData, RdataError> {
    match ctx.rtype {
        RecordType::Unknown(SPF_CODE) => match decode_wire(ctx, RecordType::TXT, &bytes)? {
            RData::TXT(txt) if !txt.txt_data.is_empty() => Ok(RData::Unknown {
                code: ctx.rtype,
                rdata: NULL::with(bytes),
            }),
            _ => Err(ctx.invalid("SPF data needs at least one string")),
        },
        // `NULL::with` debug-asserts on empty data; `\# 0` is valid for unknown types.
        RecordType::Unknown(_) if bytes.is_empty() => Ok(RData::Unknown {
            code: ctx.rtype,
            rdata: NULL::new(),
        }),
        RecordType::Unknown(_) => Ok(RData::Unknown {
            code: ctx.rtype,
            rdata: NULL::with(bytes),
        }),
        rtype => decode_wire(ctx, rtype, &bytes),
    }
}

fn decode_wire(ctx: &Ctx, rtype: RecordType, bytes: &[u8]) -> Result<RData, RdataError> {
    let length = u16::try_from(bytes.len())
        .map_err(|_| ctx.invalid("the data is longer than 65535 bytes"))?;
    let mut decoder = BinDecoder::new(bytes);
    RData::read(&mut decoder, rtype, Restrict::new(length))
        .ok()
        .filter(|_| decoder.is_empty())
        .ok_or_else(|| {
            ctx.invalid(format!(
                "the data is not valid {} wire format",
                record_type_name(rtype)
            ))
        })
}

fn decode_hex(digits: &str) -> Option<Vec<u8>> {
    let bytes = digits.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| {
            let &[high, low] = pair else { return None };
            let value = char::from(high).to_digit(16)? * 16 + char::from(low).to_digit(16)?;
            u8::try_from(value).ok()
        })
        .collect()
}

/// Strict decimal: digits only, so no sign or spaces slip through `str::parse`.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Query types, meta types and OPT carry no zone data (RFC 6895 §3.1).
fn is_meta(rtype: RecordType) -> bool {
    let code = u16::from(rtype);
    code == 0 || code == 41 || (128..=255).contains(&code)
}

/// A user value for an error message: one line, shortened.
fn shown(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::new();
    for (n, c) in one_line.chars().enumerate() {
        if n == MAX_SHOWN_CHARS {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Like `shown` but without shortening, for reasons that embed an already shortened value.
fn shown_full(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::CAA;

    fn origin() -> Name {
        Name::from_ascii("example.com.").expect("valid origin")
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("valid test name")
    }

    fn parse(rtype: RecordType, text: &str) -> RData {
        parse_rdata(rtype, text, &origin()).unwrap_or_else(|e| panic!("{rtype} {text:?}: {e}"))
    }

    fn error(rtype: RecordType, text: &str) -> String {
        let err = parse_rdata(rtype, text, &origin())
            .expect_err(text)
            .to_string();
        assert!(!err.contains('\n'), "multi-line message: {err}");
        err
    }

    fn wire(rdata: &RData) -> Vec<u8> {
        rdata.to_bytes().expect("encodable")
    }

    #[test]
    fn record_types() {
        assert_eq!(parse_record_type("A"), Ok(RecordType::A));
        assert_eq!(parse_record_type("aaaa"), Ok(RecordType::AAAA));
        assert_eq!(parse_record_type(" Https "), Ok(RecordType::HTTPS));
        assert_eq!(parse_record_type("SPF"), Ok(RecordType::Unknown(99)));
        assert_eq!(parse_record_type("spf"), Ok(RecordType::Unknown(99)));
        assert_eq!(parse_record_type("TYPE99"), Ok(RecordType::Unknown(99)));
        assert_eq!(
            parse_record_type("TYPE65534"),
            Ok(RecordType::Unknown(65534))
        );
        assert_eq!(parse_record_type("type1"), Ok(RecordType::A));
        assert_eq!(parse_record_type("TYPE257"), Ok(RecordType::CAA));
        assert_eq!(
            parse_record_type("FOO").unwrap_err().to_string(),
            "unknown record type \"FOO\""
        );
        for bad in ["", "TYPE", "TYPE65536", "TYPE-1", "TYPE+1", "TYPEx"] {
            assert!(
                matches!(parse_record_type(bad), Err(RdataError::UnknownType(_))),
                "{bad}"
            );
        }
        for meta in [
            "ANY", "*", "AXFR", "TSIG", "TYPE0", "TYPE41", "TYPE255", "TYPE128",
        ] {
            assert!(
                matches!(parse_record_type(meta), Err(RdataError::MetaType(_))),
                "{meta}"
            );
        }
        for rtype in [
            RecordType::A,
            RecordType::SOA,
            RecordType::Unknown(99),
            RecordType::Unknown(65534),
        ] {
            assert_eq!(parse_record_type(&record_type_name(rtype)), Ok(rtype));
        }
        assert_eq!(record_type_name(RecordType::Unknown(99)), "SPF");
        assert_eq!(record_type_name(RecordType::Unknown(65534)), "TYPE65534");
        assert_eq!(record_type_name(RecordType::AAAA), "AAAA");
    }

    #[test]
    fn a_and_aaaa() {
        assert_eq!(
            parse(RecordType::A, "192.0.2.1"),
            RData::A(Ipv4Addr::new(192, 0, 2, 1).into())
        );
        assert_eq!(
            error(RecordType::A, "300.1.1.1"),
            "\"300.1.1.1\" is not an IPv4 address"
        );
        assert_eq!(
            error(RecordType::A, "1.2.3.4 5.6.7.8"),
            "\"1.2.3.4 5.6.7.8\" is not an IPv4 address"
        );
        assert_eq!(error(RecordType::A, ""), "\"\" is not an IPv4 address");
        let v6 = parse(RecordType::AAAA, "2001:db8::1");
        assert_eq!(v6.to_string(), "2001:db8::1");
        assert_eq!(
            error(RecordType::AAAA, "xyz"),
            "\"xyz\" is not an IPv6 address"
        );
        assert_eq!(
            error(RecordType::AAAA, "192.0.2.1"),
            "\"192.0.2.1\" is not an IPv6 address"
        );
    }

    #[test]
    fn names_complete_relative_keep_case_and_decode_escapes() {
        assert_eq!(
            parse(RecordType::CNAME, "www"),
            RData::CNAME(CNAME(name("www.example.com.")))
        );
        assert_eq!(parse(RecordType::CNAME, "@"), RData::CNAME(CNAME(origin())));
        let RData::CNAME(CNAME(target)) = parse(RecordType::CNAME, "Mail.Other.ORG.") else {
            panic!("not a CNAME");
        };
        assert!(target.eq_case(&name("Mail.Other.ORG.")));
        let labels = |rdata: RData| match rdata {
            RData::CNAME(CNAME(n)) => n.iter().map(<[u8]>::to_vec).collect::<Vec<_>>(),
            other => panic!("not a CNAME: {other:?}"),
        };
        assert_eq!(
            labels(parse(RecordType::CNAME, "a\\.b.test.")),
            vec![b"a.b".to_vec(), b"test".to_vec()]
        );
        assert_eq!(
            labels(parse(RecordType::CNAME, "a\\032b.test.")),
            vec![b"a b".to_vec(), b"test".to_vec()]
        );
        assert_eq!(
            labels(parse(RecordType::CNAME, "\\065x.")),
            vec![b"Ax".to_vec()]
        );
        assert_eq!(
            labels(parse(RecordType::CNAME, "dis_allowed.")),
            vec![b"dis_allowed".to_vec()]
        );
        assert_eq!(
            labels(parse(RecordType::CNAME, "1.0/25.2.0.192.in-addr.arpa."))[1],
            b"0/25".to_vec()
        );
        assert_eq!(
            labels(parse(RecordType::CNAME, "bücher.de."))[0],
            b"xn--bcher-kva".to_vec()
        );
        assert_eq!(
            parse(RecordType::NS, "ns1"),
            RData::NS(NS(name("ns1.example.com.")))
        );
        assert_eq!(
            parse(RecordType::PTR, "host.example.net."),
            RData::PTR(PTR(name("host.example.net.")))
        );

        let e = error(RecordType::CNAME, "http://x.com/");
        assert_eq!(
            e,
            "\"http://x.com/\" is not a valid domain name: character ':' is not allowed (write it as \\058 if it is meant)"
        );
        assert!(
            error(RecordType::CNAME, "a..b.").contains("empty label"),
            "empty label"
        );
        assert!(error(RecordType::NS, &format!("{}.", "x".repeat(64))).contains("at most 63"));
        assert!(error(RecordType::NS, &"abcdefghi.".repeat(26)).contains("at most 255"));
        assert!(error(RecordType::CNAME, "a*b.example.").contains("whole label"));
        assert!(error(RecordType::CNAME, "a\\256.").contains("larger than \\255"));
        assert!(error(RecordType::CNAME, "a\\25").contains("three digits"));
        assert_eq!(
            error(RecordType::CNAME, "a b"),
            "\"a b\" is not valid CNAME data (expected \"<domain name>\")"
        );
    }

    #[test]
    fn dname_is_served_with_its_own_type() {
        let rdata = parse(RecordType::DNAME, "other.net.");
        assert_eq!(rdata.record_type(), RecordType::DNAME);
        assert_eq!(wire(&rdata), b"\x05other\x03net\x00");
    }

    #[test]
    fn mx() {
        assert_eq!(
            parse(RecordType::MX, "10 mail"),
            RData::MX(MX::new(10, name("mail.example.com.")))
        );
        assert_eq!(
            parse(RecordType::MX, "0 @"),
            RData::MX(MX::new(0, origin()))
        );
        assert_eq!(parse(RecordType::MX, "0 .").to_string(), "0 .");
        assert_eq!(
            error(RecordType::MX, "10"),
            "\"10\" is not valid MX data (expected \"<preference> <exchange>\")"
        );
        assert_eq!(
            error(RecordType::MX, "10 mail extra"),
            "\"10 mail extra\" is not valid MX data (expected \"<preference> <exchange>\")"
        );
        assert_eq!(
            error(RecordType::MX, "70000 mail"),
            "invalid MX data \"70000 mail\": preference \"70000\" is not a number from 0 to 65535"
        );
        assert_eq!(
            error(RecordType::MX, "+1 mail"),
            "invalid MX data \"+1 mail\": preference \"+1\" is not a number from 0 to 65535"
        );
        assert_eq!(
            error(RecordType::MX, "10 mail@example.com"),
            "invalid MX data \"10 mail@example.com\": exchange \"mail@example.com\" is not a valid domain name: \
             character '@' is not allowed (write it as \\064 if it is meant)"
        );
    }

    #[test]
    fn soa_with_time_units() {
        let rdata = parse(
            RecordType::SOA,
            "ns1 hostmaster ( 2024010101 1h 15M 1w 1d )",
        );
        assert_eq!(
            rdata,
            RData::SOA(SOA::new(
                name("ns1.example.com."),
                name("hostmaster.example.com."),
                2_024_010_101,
                3600,
                900,
                604_800,
                86_400,
            ))
        );
        assert_eq!(
            rdata.to_string(),
            "ns1.example.com. hostmaster.example.com. 2024010101 3600 900 604800 86400"
        );
        assert!(
            error(RecordType::SOA, "ns1 hostmaster 1 2 3 4").contains("expected \"<mname> <rname>")
        );
        assert!(
            error(RecordType::SOA, "ns1 hostmaster 1 2 3 3000000000 5")
                .contains("expire \"3000000000\" is not a time")
        );
        assert!(error(RecordType::SOA, "ns1 hostmaster 1h 2 3 4 5").contains("serial \"1h\""));
    }

    #[test]
    fn srv() {
        assert_eq!(
            parse(RecordType::SRV, "10 60 5060 sip.example.net."),
            RData::SRV(SRV::new(10, 60, 5060, name("sip.example.net.")))
        );
        assert_eq!(parse(RecordType::SRV, "0 0 0 .").to_string(), "0 0 0 .");
        assert!(error(RecordType::SRV, "10 60 70000 sip").contains("port \"70000\""));
    }

    #[test]
    fn txt_strings_and_escapes() {
        let strings = |rdata: RData| match rdata {
            RData::TXT(txt) => txt.txt_data.iter().map(|s| s.to_vec()).collect::<Vec<_>>(),
            other => panic!("not TXT: {other:?}"),
        };
        assert_eq!(
            strings(parse(RecordType::TXT, "\"v=spf1 -all\"")),
            vec![b"v=spf1 -all".to_vec()]
        );
        assert_eq!(
            strings(parse(RecordType::TXT, "\"a\" \"b c\" d")),
            vec![b"a".to_vec(), b"b c".to_vec(), b"d".to_vec()]
        );
        assert_eq!(
            strings(parse(
                RecordType::TXT,
                r#""say \"hi\"" "back\\slash" "\065\066C" "" "semi;colon (paren)""#
            )),
            vec![
                b"say \"hi\"".to_vec(),
                b"back\\slash".to_vec(),
                b"ABC".to_vec(),
                Vec::new(),
                b"semi;colon (paren)".to_vec()
            ]
        );
        assert_eq!(
            strings(parse(RecordType::TXT, "\"\\255\\000\"")),
            vec![vec![255, 0]]
        );
        assert_eq!(
            strings(parse(RecordType::TXT, "( \"one\"\n  \"two\" )")),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
        assert_eq!(
            strings(parse(RecordType::TXT, "\"héllo\"")),
            vec!["héllo".as_bytes().to_vec()]
        );
        assert_eq!(wire(&parse(RecordType::TXT, "\"ab\" \"\"")), b"\x02ab\x00");

        assert_eq!(
            strings(parse(RecordType::TXT, &format!("\"{}\"", "x".repeat(255))))[0].len(),
            255
        );
        let long = error(RecordType::TXT, &format!("\"ok\" \"{}\"", "x".repeat(256)));
        assert!(
            long.contains("string 2 is 256 bytes long, but a string holds at most 255"),
            "{long}"
        );
        assert!(long.contains("..."), "long values are shortened: {long}");
        let huge = vec![format!("\"{}\"", "y".repeat(255)); 260].join(" ");
        let e = error(RecordType::TXT, &huge);
        assert!(e.contains("a record holds at most 65535"), "{e}");

        assert_eq!(
            error(RecordType::TXT, ""),
            "\"\" is not valid TXT data (expected \"<text> [<text> ...]\")"
        );
        assert!(error(RecordType::TXT, "\"open").contains("closing '\"'"));
        assert!(error(RecordType::TXT, "a ; comment").contains("';' starts a comment"));
        assert!(error(RecordType::TXT, "( a").contains("'(' without"));
        assert!(error(RecordType::TXT, "a )").contains("')' without"));
        assert!(error(RecordType::TXT, "\"a\\\"").contains("closing"));
    }

    #[test]
    fn spf_is_type_99_with_txt_data() {
        let rdata = parse(RecordType::Unknown(99), "\"v=spf1 \" \"-all\"");
        let RData::Unknown {
            code,
            rdata: ref null,
        } = rdata
        else {
            panic!("not Unknown: {rdata:?}");
        };
        assert_eq!(code, RecordType::Unknown(99));
        assert_eq!(null.anything, b"\x07v=spf1 \x04-all");
        assert_eq!(rdata.record_type(), RecordType::Unknown(99));
        assert_eq!(
            parse(RecordType::Unknown(99), "\\# 5 04 2d616c6c"),
            rdata_unknown(99, b"\x04-all")
        );
        assert!(error(RecordType::Unknown(99), "\\# 2 0501").contains("not valid TXT wire format"));
        assert!(error(RecordType::Unknown(99), "\\# 0").contains("at least one string"));
    }

    fn rdata_unknown(code: u16, bytes: &[u8]) -> RData {
        RData::Unknown {
            code: RecordType::Unknown(code),
            rdata: NULL::with(bytes.to_vec()),
        }
    }

    #[test]
    fn caa() {
        let RData::CAA(caa) = parse(
            RecordType::CAA,
            "0 issue \"letsencrypt.org; validationmethods=dns-01\"",
        ) else {
            panic!("not CAA");
        };
        assert_eq!((caa.flags(), caa.tag.as_str()), (0, "issue"));
        assert_eq!(caa.value, b"letsencrypt.org; validationmethods=dns-01");

        let critical = parse(RecordType::CAA, "128 tbs \"x\"");
        assert_eq!(wire(&critical), b"\x80\x03tbsx");
        let RData::CAA(ref caa) = critical else {
            panic!("not CAA")
        };
        assert!(caa.issuer_critical);
        assert_eq!(critical.to_string(), "128 tbs \"x\"");

        let RData::CAA(CAA { value, .. }) =
            parse(RecordType::CAA, "0 iodef \"mailto:security@example.com\"")
        else {
            panic!("not CAA");
        };
        assert_eq!(value, b"mailto:security@example.com");
        assert_eq!(
            wire(&parse(RecordType::CAA, "0 issue \";\"")),
            b"\x00\x05issue;"
        );
        assert!(
            error(RecordType::CAA, "0 bad-tag \"x\"")
                .contains("tag \"bad-tag\" must be 1 to 15 letters or digits")
        );
        assert!(error(RecordType::CAA, "256 issue \"x\"").contains("flags \"256\""));
        assert!(
            error(RecordType::CAA, "0 issue \"x\" extra")
                .contains("(expected \"<flags> <tag> <value>\")")
        );
    }

    #[test]
    fn naptr() {
        let rdata = parse(
            RecordType::NAPTR,
            r#"100 10 "S" "SIP+D2U" "!^.*$!sip:info@example.com!" _sip._udp"#,
        );
        assert_eq!(
            rdata,
            RData::NAPTR(NAPTR::new(
                100,
                10,
                b"S".to_vec().into(),
                b"SIP+D2U".to_vec().into(),
                b"!^.*$!sip:info@example.com!".to_vec().into(),
                name("_sip._udp.example.com."),
            ))
        );
        let RData::NAPTR(escaped) = parse(
            RecordType::NAPTR,
            r#"1 1 "u" "E2U+sip" "!^\\+(.*)$!\\1!" ."#,
        ) else {
            panic!("not NAPTR");
        };
        assert_eq!(&*escaped.regexp, b"!^\\+(.*)$!\\1!");
        assert!(
            error(RecordType::NAPTR, r#"1 1 "a-b" "x" "" ."#)
                .contains("flags may only contain letters and digits")
        );
        assert!(error(RecordType::NAPTR, r#"1 1 "a" "x" """#).contains("expected"));
    }

    #[test]
    fn hinfo() {
        assert_eq!(
            parse(RecordType::HINFO, "\"Generic PC\" Linux"),
            RData::HINFO(HINFO::new("Generic PC".into(), "Linux".into()))
        );
        assert!(error(RecordType::HINFO, "x86").contains("(expected \"<cpu> <os>\")"));
    }

    #[test]
    fn ds_and_cds() {
        let rdata = parse(
            RecordType::DS,
            "60485 5 1 ( 2BB183AF5F22588179A53B0A 98631FAD1A292118 )",
        );
        assert_eq!(rdata.record_type(), RecordType::DS);
        let mut expected = vec![0xec, 0x45, 5, 1];
        expected.extend(decode_hex("2BB183AF5F22588179A53B0A98631FAD1A292118").expect("hex"));
        assert_eq!(wire(&rdata), expected);
        assert_eq!(
            parse(RecordType::CDS, "0 0 0 00").record_type(),
            RecordType::CDS
        );
        assert!(error(RecordType::DS, "60485 5 1").contains("expected \"<key tag>"));
        assert!(
            error(RecordType::DS, "60485 5 1 xyz1").contains("digest \"xyz1\" is not hexadecimal")
        );
    }

    #[test]
    fn hickory_parsed_types() {
        let sshfp = parse(
            RecordType::SSHFP,
            "4 2 ( 123456789abcdef6 7890123456789abcdef67890 )",
        );
        assert!(matches!(sshfp, RData::SSHFP(_)));
        let mut expected = vec![4, 2];
        expected.extend(decode_hex("123456789abcdef67890123456789abcdef67890").expect("hex"));
        assert_eq!(wire(&sshfp), expected);

        let RData::TLSA(tlsa) = parse(RecordType::TLSA, "3 1 1 ABCD ef01") else {
            panic!("not TLSA")
        };
        assert_eq!(tlsa.cert_data, [0xab, 0xcd, 0xef, 0x01]);

        let RData::SVCB(svcb) = parse(RecordType::SVCB, "1 svc alpn=\"h2,h3\" port=8443") else {
            panic!("not SVCB")
        };
        assert_eq!(svcb.target_name, name("svc.example.com."));
        assert_eq!(svcb.svc_params.len(), 2);
        let RData::HTTPS(HTTPS(https)) = parse(RecordType::HTTPS, "1 . alpn=h2") else {
            panic!("not HTTPS")
        };
        assert_eq!(https.target_name, Name::root());
        let RData::HTTPS(HTTPS(alias)) = parse(RecordType::HTTPS, "0 @") else {
            panic!("not HTTPS")
        };
        assert_eq!(alias.target_name, origin());

        assert!(matches!(
            parse(RecordType::OPENPGPKEY, "YWJjZA=="),
            RData::OPENPGPKEY(_)
        ));
        assert!(matches!(
            parse(RecordType::CSYNC, "66 3 A NS AAAA"),
            RData::CSYNC(_)
        ));
        assert!(matches!(
            parse(RecordType::CERT, "1 0 0 YWJjZA=="),
            RData::CERT(_)
        ));

        assert!(
            error(RecordType::SSHFP, "1 1")
                .contains("expected \"<algorithm> <type> <fingerprint hex>\"")
        );
        assert!(
            error(RecordType::SVCB, "1 svc nonsense=1")
                .starts_with("invalid SVCB data \"1 svc nonsense=1\": ")
        );
    }

    #[test]
    fn nothing_can_be_injected_into_the_synthesized_zone() {
        for text in [
            "1 . alpn=\"h2\n@ 0 IN A 192.0.2.1\"",
            "1 . \"\\\"\n$INCLUDE /etc/passwd\"",
            "1 . \"@\" \"$ORIGIN\" \"x\\\\\"",
            "1 . key65000=\")\"",
        ] {
            match parse_rdata(RecordType::SVCB, text, &origin()) {
                Ok(rdata) => assert_eq!(rdata.record_type(), RecordType::SVCB, "{text}"),
                Err(e) => assert!(matches!(e, RdataError::Invalid { .. }), "{text}: {e}"),
            }
        }
        assert!(
            error(RecordType::SSHFP, "1 1 abcd\n@ 0 IN A 192.0.2.1").contains("invalid SSHFP data")
        );
        assert!(error(RecordType::TLSA, "3 1 1 ab ; x").contains("comment"));
    }

    #[test]
    fn generic_rfc3597_form() {
        assert_eq!(
            parse(RecordType::A, "\\# 4 0A000001"),
            RData::A(Ipv4Addr::new(10, 0, 0, 1).into())
        );
        let type1 = parse_record_type("TYPE1").expect("TYPE1");
        assert_eq!(
            parse(type1, "\\# 4 0a 00 00 01"),
            RData::A(Ipv4Addr::new(10, 0, 0, 1).into())
        );
        assert_eq!(
            parse(RecordType::MX, "\\# 6 000a 026d7800"),
            RData::MX(MX::new(10, name("mx.")))
        );
        assert_eq!(
            parse(RecordType::Unknown(65534), "\\# 3 010203"),
            rdata_unknown(65534, &[1, 2, 3])
        );
        let empty = parse(RecordType::Unknown(65534), "\\# 0");
        assert_eq!(wire(&empty), Vec::<u8>::new());
        assert_eq!(empty.record_type(), RecordType::Unknown(65534));
        assert_eq!(
            parse(RecordType::NULL, "\\# 2 abcd").record_type(),
            RecordType::NULL
        );

        assert!(
            error(RecordType::A, "\\# 3 0A000001").contains("length 3 does not match the 4 bytes")
        );
        assert!(error(RecordType::Unknown(65534), "\\# 2 0g0h").contains("not hexadecimal"));
        assert!(error(RecordType::Unknown(65534), "\\# 2 012").contains("not hexadecimal"));
        assert!(
            error(RecordType::Unknown(65534), "\\#")
                .contains("(expected \"\\# <length> <hex data>\")")
        );
        assert!(error(RecordType::A, "\\# 3 0A0000").contains("not valid A wire format"));
        assert!(error(RecordType::Unknown(65534), "\\# 70000 00").contains("length \"70000\""));
    }

    #[test]
    fn types_without_presentation_form() {
        assert_eq!(
            error(RecordType::Unknown(65534), "1 2 3"),
            "TYPE65534 data can only be written in the generic form \"\\# <length> <hex>\" (RFC 3597)"
        );
        assert!(matches!(
            parse_rdata(RecordType::DNSKEY, "257 3 8 AwEAAQ==", &origin()),
            Err(RdataError::GenericOnly(_))
        ));
        assert!(matches!(
            parse_rdata(RecordType::ANY, "\\# 0", &origin()),
            Err(RdataError::MetaType(_))
        ));
        assert!(matches!(
            parse_rdata(RecordType::OPT, "\\# 0", &origin()),
            Err(RdataError::MetaType(_))
        ));
    }

    #[test]
    fn messages_stay_on_one_line_and_short() {
        let e = error(RecordType::MX, "10\nmail\nextra");
        assert_eq!(
            e,
            "\"10 mail extra\" is not valid MX data (expected \"<preference> <exchange>\")"
        );
        let e = error(RecordType::A, &"1".repeat(500));
        assert!(e.len() < 120, "{e}");
    }
}
