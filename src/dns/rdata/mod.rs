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
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, Restrict};
use hickory_proto::serialize::txt::{Parser, parse_ttl};

/// SPF (RFC 7208 §3.1) is long deprecated, so hickory has no variant for it.
mod text;

pub use text::parse_domain_name;
use text::{Token, tokenize};

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
mod tests;
