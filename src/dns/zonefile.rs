//! TEMPORARY STUB (replaced by the real module)
use hickory_proto::rr::{Name, RData, RecordType};
use std::path::{Path, PathBuf};
pub struct ZoneFileRecord { pub name: Name, pub ttl: u32, pub rtype: RecordType, pub rdata: RData, pub file: PathBuf, pub line: usize }
#[derive(Debug, Clone, PartialEq)] pub struct ZoneFileError { pub file: PathBuf, pub line: usize, pub message: String }
pub fn load_zone_file(path: &Path, origin: &Name, _default_ttl: Option<u32>) -> Result<Vec<ZoneFileRecord>, Vec<ZoneFileError>> {
    let text = std::fs::read_to_string(path).map_err(|e| vec![ZoneFileError { file: path.into(), line: 0, message: e.to_string() }])?;
    let (_, sets) = hickory_proto::serialize::txt::Parser::new(text, Some(path.into()), Some(origin.clone())).parse().map_err(|e| vec![ZoneFileError { file: path.into(), line: 0, message: e.to_string() }])?;
    Ok(sets.into_values().flat_map(|s| s.records_without_rrsigs().map(|r| ZoneFileRecord { name: r.name.clone(), ttl: r.ttl, rtype: r.record_type(), rdata: r.data.clone(), file: path.into(), line: 0 }).collect::<Vec<_>>()).collect())
}
