//! `write_back = true`: after a group of updates is journaled, the zone as served is
//! written back into its master file, so the file a person edits holds what the updates
//! made of it. The config check allows it only for a zone whose data all come from that one
//! file (no inline records, routed sets or SOA, no `$INCLUDE`), so the file written holds
//! nothing the file did not have, plus the updates.
//!
//! The file is RFC 1035 master-file text that edgewise-dns's own parser and BIND's
//! `named-checkzone` both read back to the same records: `$ORIGIN`, the SOA first, then
//! every RRset in name order, one record per line with its own TTL and class, owner names
//! relative to the origin. Names are written byte for byte (`\DDD` for anything but letters,
//! digits, `-`, `_` and `/`), character-strings quoted with `\"`, `\\` and `\DDD` escapes.
//! Types with a readable form written here (A, AAAA, CNAME, NS, PTR, MX, SRV, SOA, NAPTR,
//! TXT, SPF, CAA, HINFO, DS, SSHFP, TLSA) get it; every other type (SVCB and HTTPS among
//! them) the RFC 3597 generic form (`\# <length> <hex>`), which both parsers read for any
//! type. The comments and layout
//! of the file as written by hand are not kept.
//!
//! The file is replaced atomically: a temporary file beside it, fsynced, renamed over it,
//! and the directory fsynced; a crash leaves the old file or the new one. The journal
//! already holds the changes, and replaying them onto a file that has them changes nothing.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use crate::config::dns::RrsetData;
use crate::dns::journal::{replace_file, sync_parent};
use crate::dns::rdata::record_type_name;

/// RR type 99 (RFC 7208): hickory has no variant, it is `RData::Unknown` with TXT's wire form.
const SPF: RecordType = RecordType::Unknown(99);
/// RDATA whose fields together are longer than this is laid out over several lines in
/// parentheses, one field a line (the zone-file parser takes lines of up to 64 KiB).
const ONE_LINE: usize = 400;
/// A single field longer than this (a huge CAA value, say) would not fit a line: such RDATA
/// is written in the generic form, whose hex is cut into short fields.
const MAX_FIELD: usize = 16 * 1024;
/// Hex digits per field of the generic form and of DS digests.
const HEX_FIELD: usize = 64;

/// Writes `rrsets`, the whole zone at `origin` with its SOA, to the master file at `path`,
/// atomically (see the module doc). A symbolic link at `path` is followed: the file it
/// names is replaced, and keeps its permissions.
///
/// # Errors
/// The file or its directory could not be written, renamed or synced; the message names
/// the file, and the old file is then still in place (or, if only the final sync of the
/// directory failed, already the new one).
pub(super) fn write_zone_file(path: &Path, origin: &Name, rrsets: &[RrsetData]) -> io::Result<()> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let context = |what: &str| {
        let target: PathBuf = target.clone();
        let what = what.to_owned();
        move |e: io::Error| io::Error::new(e.kind(), format!("{}: {what}: {e}", target.display()))
    };
    let permissions = fs::metadata(&target).ok().map(|m| m.permissions());
    let file = replace_file(&target, zone_text(origin, rrsets).as_bytes())
        .map_err(context("write and rename a new file over it"))?;
    if let Some(permissions) = permissions {
        file.set_permissions(permissions)
            .map_err(context("give it the old file's permissions"))?;
    }
    sync_parent(&target).map_err(context("sync its directory"))
}

/// The master-file text of the zone at `origin`.
fn zone_text(origin: &Name, rrsets: &[RrsetData]) -> String {
    let origin_text = absolute(origin);
    let mut out = format!(
        "; {origin_text} as edgewise-dns serves it, with its dynamic updates: written back \
         after each (write_back = true)\n$ORIGIN {origin_text}\n"
    );
    let mut sets: Vec<&RrsetData> = rrsets.iter().collect();
    sets.sort_by(|a, b| {
        (a.rtype != RecordType::SOA, &a.name, u16::from(a.rtype)).cmp(&(
            b.rtype != RecordType::SOA,
            &b.name,
            u16::from(b.rtype),
        ))
    });
    for set in sets {
        let owner = relative(&set.name, origin);
        let rtype = record_type_name(set.rtype);
        for rdata in &set.rdatas {
            let _ = write!(out, "{owner}\t{}\tIN\t{rtype}\t", set.ttl);
            push_fields(&mut out, &rdata_fields(set.rtype, rdata));
            out.push('\n');
        }
    }
    out
}

/// `fields` on the line, or in parentheses one a line when they are long.
fn push_fields(out: &mut String, fields: &[String]) {
    let length: usize = fields.iter().map(|f| f.len() + 1).sum();
    if length <= ONE_LINE {
        out.push_str(&fields.join(" "));
        return;
    }
    out.push('(');
    for field in fields {
        out.push_str("\n\t\t");
        out.push_str(field);
    }
    out.push_str(" )");
}

/// The presentation fields of `rdata`, of type `rtype`.
fn rdata_fields(rtype: RecordType, rdata: &RData) -> Vec<String> {
    let fields = readable_fields(rtype, rdata);
    match fields {
        Some(fields) if fields.iter().all(|f| f.len() <= MAX_FIELD) => fields,
        _ => generic_fields(rdata),
    }
}

/// The readable form of the types that have one here; `None` for the others.
fn readable_fields(rtype: RecordType, rdata: &RData) -> Option<Vec<String>> {
    Some(match rdata {
        RData::A(a) => vec![a.0.to_string()],
        RData::AAAA(aaaa) => vec![aaaa.0.to_string()],
        RData::CNAME(name) => vec![absolute(&name.0)],
        RData::NS(name) => vec![absolute(&name.0)],
        RData::PTR(name) => vec![absolute(&name.0)],
        RData::MX(mx) => vec![mx.preference.to_string(), absolute(&mx.exchange)],
        RData::SRV(srv) => vec![
            srv.priority.to_string(),
            srv.weight.to_string(),
            srv.port.to_string(),
            absolute(&srv.target),
        ],
        RData::SOA(soa) => vec![
            absolute(&soa.mname),
            absolute(&soa.rname),
            soa.serial.to_string(),
            soa.refresh.to_string(),
            soa.retry.to_string(),
            soa.expire.to_string(),
            soa.minimum.to_string(),
        ],
        RData::NAPTR(naptr) => vec![
            naptr.order.to_string(),
            naptr.preference.to_string(),
            quoted(&naptr.flags),
            quoted(&naptr.services),
            quoted(&naptr.regexp),
            absolute(&naptr.replacement),
        ],
        RData::TXT(txt) => txt.txt_data.iter().map(|s| quoted(s)).collect(),
        RData::HINFO(hinfo) => vec![quoted(&hinfo.cpu), quoted(&hinfo.os)],
        RData::CAA(caa) => vec![caa.flags().to_string(), caa.tag.clone(), quoted(&caa.value)],
        RData::Unknown { code, rdata } if *code == SPF => character_strings(&rdata.anything)?
            .into_iter()
            .map(quoted)
            .collect(),
        _ if matches!(rtype, RecordType::DS | RecordType::CDS) => ds_fields(&wire(rdata)?)?,
        _ if rtype == RecordType::SSHFP => numbers_then_hex(&wire(rdata)?, 2, HEX_FIELD)?,
        // hickory, which parses TLSA for the project, takes its data as one field.
        _ if matches!(rtype, RecordType::TLSA | RecordType::SMIMEA) => {
            numbers_then_hex(&wire(rdata)?, 3, usize::MAX)?
        }
        _ => return None,
    })
}

/// DS and CDS (RFC 4034 §5.3): key tag, algorithm, digest type, digest in hex, from the
/// wire form (hickory decodes DS only with its DNSSEC features).
fn ds_fields(wire: &[u8]) -> Option<Vec<String>> {
    let [tag_high, tag_low, algorithm, digest_type, digest @ ..] = wire else {
        return None;
    };
    if digest.is_empty() {
        return None;
    }
    let mut fields = vec![
        u16::from_be_bytes([*tag_high, *tag_low]).to_string(),
        algorithm.to_string(),
        digest_type.to_string(),
    ];
    fields.extend(hex_fields(digest, HEX_FIELD));
    Some(fields)
}

/// SSHFP (RFC 4255 §3.2: algorithm, type, fingerprint) and TLSA (RFC 6698 §2.2: usage,
/// selector, matching type, data): `count` one-byte numbers, then the rest in hex, cut into
/// fields of `per_field` digits.
fn numbers_then_hex(wire: &[u8], count: usize, per_field: usize) -> Option<Vec<String>> {
    let (numbers, data) = wire.split_at_checked(count)?;
    if data.is_empty() {
        return None;
    }
    let mut fields: Vec<String> = numbers.iter().map(u8::to_string).collect();
    fields.extend(hex_fields(data, per_field));
    Some(fields)
}

/// RFC 3597 §5: `\# <length> <hex>`, for any type.
fn generic_fields(rdata: &RData) -> Vec<String> {
    let bytes = match rdata {
        RData::Unknown { rdata, .. } => rdata.anything.clone(),
        other => wire(other).unwrap_or_default(),
    };
    let mut fields = vec!["\\#".to_owned(), bytes.len().to_string()];
    fields.extend(hex_fields(&bytes, HEX_FIELD));
    fields
}

fn wire(rdata: &RData) -> Option<Vec<u8>> {
    rdata.to_bytes().ok()
}

/// `bytes` in upper-case hex, cut into fields of `per_field` digits.
fn hex_fields(bytes: &[u8], per_field: usize) -> Vec<String> {
    let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    hex.as_bytes()
        .chunks(per_field)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect()
}

/// The character-strings of TXT-like wire data (each a length byte and that many bytes);
/// `None` if the data do not split so.
fn character_strings(mut wire: &[u8]) -> Option<Vec<&[u8]>> {
    let mut strings = Vec::new();
    while let Some((&length, rest)) = wire.split_first() {
        let (string, after) = rest.split_at_checked(usize::from(length))?;
        strings.push(string);
        wire = after;
    }
    (!strings.is_empty()).then_some(strings)
}

/// A character-string in quotes: `"` and `\` escaped with `\`, bytes outside printable
/// ASCII as `\DDD` (decimal, RFC 1035 §5.1), so nothing in it can end the field or the line.
fn quoted(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &byte in bytes {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(byte));
            }
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\{byte:03}");
            }
        }
    }
    out.push('"');
    out
}

/// `name` relative to `origin` when it is inside it (`@` for the apex), else absolute.
fn relative(name: &Name, origin: &Name) -> String {
    if !origin.zone_of(name) {
        return absolute(name);
    }
    let own = name.iter().count() - origin.iter().count();
    if own == 0 {
        return "@".to_owned();
    }
    labels(name.iter().take(own))
}

/// `name` with its trailing dot; the root is `.`.
fn absolute(name: &Name) -> String {
    if name.is_root() {
        return ".".to_owned();
    }
    let mut text = labels(name.iter());
    text.push('.');
    text
}

/// Labels joined by dots, each byte as it is where a zone file allows it, else `\DDD`: the
/// name's case and any dot, space or other byte inside a label survive.
fn labels<'a>(labels: impl Iterator<Item = &'a [u8]>) -> String {
    let mut out = String::new();
    for (i, label) in labels.enumerate() {
        if i > 0 {
            out.push('.');
        }
        if label == b"*" {
            out.push('*');
            continue;
        }
        for &byte in label {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'/') {
                out.push(char::from(byte));
            } else {
                let _ = write!(out, "\\{byte:03}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
