//! DNSSEC (RFC 4033-4035): zones signed online by edgewise-dns itself, with keys it keeps.
