//! A distribution's `parent` (CloudFront's regional edge cache / Origin Shield): another
//! edgewise-cdn that the edge fetches from instead of the origins, so one cache fills from
//! the origin for many edges.

use std::path::{Path, PathBuf};

use http::Uri;
use toml::Spanned;

use super::diag::{ConfigError, SourceMap};

/// A parent's URL, as the error messages show one.
const EXAMPLE: &str = "https://regional.home.example:8443";

/// Where a distribution's misses go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentTier {
    /// `scheme://authority/` of the parent's listener.
    pub base: Uri,
    /// Extra trust roots (PEM) for the parent's certificate, beside the Mozilla roots: a
    /// homelab parent's own CA or self-signed certificate.
    pub ca: Option<PathBuf>,
}

/// `parent` and `parent_ca` of distribution `key`; paths are relative to the config's
/// folder `base`.
pub(super) fn validate(
    parent: &Spanned<String>,
    ca: Option<&Spanned<String>>,
    key: &str,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<ParentTier> {
    let bad = |why: &str| {
        map.error(
            parent.span(),
            format!("{key}.parent"),
            format!("{:?} {why}", parent.get_ref()),
        )
    };
    let (base_uri, uri) = match super::cdn::http_url(parent.get_ref(), EXAMPLE) {
        Ok(split) => split,
        Err(why) => {
            errors.push(bad(&why));
            return None;
        }
    };
    if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
        errors.push(bad("is the parent's address alone: no path or query"));
        return None;
    }
    let https = uri.scheme_str() == Some("https");
    let ca = match ca {
        Some(ca) if !https => {
            errors.push(map.error(
                ca.span(),
                format!("{key}.parent_ca"),
                "is for an https:// parent",
            ));
            None
        }
        Some(ca) => {
            let path = base.join(ca.get_ref());
            if !path.is_file() {
                errors.push(map.error(
                    ca.span(),
                    format!("{key}.parent_ca"),
                    format!("{} is not a readable file", path.display()),
                ));
            }
            Some(path)
        }
        None => None,
    };
    Some(ParentTier { base: base_uri, ca })
}
