//! Integration tests for the authoritative DNS server: one binary, one module per area.

mod cdn_admin;
mod cdn_cache;
mod cdn_cache_key;
mod cdn_compress;
mod cdn_harness;
mod cdn_limits;
mod cdn_origins;
mod cdn_process;
mod cdn_routing;
mod cdn_test_origin;
mod cdn_tls;
mod config_binary;
mod config_check;
mod dns_answers;
mod dns_process;
mod dns_protocol;
mod dns_records;
mod dns_referrals;
mod dns_routing;
mod dns_transport;
mod e2e_dig;
mod fixture;
mod harness;
mod health_checks;
mod mmdb;
mod wire;
