//! TEMPORARY STUB (replaced by the real module)
use hickory_proto::rr::{Name, RData, RecordType};
use std::str::FromStr;
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum RdataError { #[error("{0}")] Bad(String) }
pub fn parse_record_type(text: &str) -> Result<RecordType, RdataError> {
    if text.eq_ignore_ascii_case("SPF") { return Ok(RecordType::Unknown(99)); }
    RecordType::from_str(&text.to_ascii_uppercase()).map_err(|_| RdataError::Bad(format!("unknown record type {text:?}")))
}
pub fn parse_rdata(rtype: RecordType, text: &str, origin: &Name) -> Result<RData, RdataError> {
    let zone = format!("$ORIGIN {origin}\n@ 0 IN {rtype} {text}\n");
    let (_, sets) = hickory_proto::serialize::txt::Parser::new(zone, None, Some(origin.clone())).parse().map_err(|e| RdataError::Bad(format!("invalid {rtype} data {text:?}: {e}")))?;
    sets.into_values().next().and_then(|s| s.records_without_rrsigs().next().map(|r| r.data.clone())).ok_or_else(|| RdataError::Bad("empty".into()))
}
pub fn record_type_name(rtype: RecordType) -> String { rtype.to_string() }
