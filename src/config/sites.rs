//! Where each listen address is written, so that an address that cannot be bound at start is
//! reported at its key (file:line:col), as every other config problem is.

use std::net::SocketAddr;

use super::diag::{ConfigError, SourceMap};
use super::raw::RawConfig;

/// One listen address and the place in the config that names it.
#[derive(Debug)]
pub(super) struct ListenSite {
    pub addr: SocketAddr,
    /// The position and key path; its message is filled in when binding fails.
    pub site: ConfigError,
}

/// Every listen address of every section, in file order within each key.
pub(super) fn listen_sites(raw: &RawConfig, map: &SourceMap) -> Vec<ListenSite> {
    let dns = raw.dns.as_ref();
    let cdn = raw.cdn.as_ref();
    let stream = raw.stream.as_ref();
    let keys = [
        ("dns.listen", dns.map(|d| &d.listen)),
        ("dns.status_listen", dns.map(|d| &d.status_listen)),
        ("cdn.https_listen", cdn.map(|c| &c.https_listen)),
        ("cdn.http_listen", cdn.map(|c| &c.http_listen)),
        ("cdn.admin_listen", cdn.map(|c| &c.admin_listen)),
        ("stream.listen", stream.map(|s| &s.listen)),
        ("stream.https_listen", stream.map(|s| &s.https_listen)),
    ];
    let mut sites = Vec::new();
    for (key, list) in keys {
        for (i, text) in list.into_iter().flatten().enumerate() {
            if let Ok(addr) = text.get_ref().parse() {
                sites.push(ListenSite {
                    addr,
                    site: map.error(text.span(), format!("{key}[{i}]"), String::new()),
                });
            }
        }
    }
    sites
}
