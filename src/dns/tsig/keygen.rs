//! `edgewise-dns tsig-keygen`: a fresh secret, printed in the config forms of edgewise-dns
//! and of the secondaries users pair it with, so each side is set up by copy and paste.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hickory_proto::rr::Name;

use super::key::Algorithm;

/// A generated key: its name, algorithm and base64 secret.
pub struct GeneratedKey {
    /// As given on the command line, without a trailing dot (how the config forms write it).
    pub name: String,
    pub algorithm: Algorithm,
    pub secret_base64: String,
}

/// A key of `algorithm` named `name`, its secret as long as the algorithm's output (what
/// RFC 8945 §6 and BIND's tsig-keygen use), from the thread's CSPRNG.
pub fn generate_key(name: &Name, algorithm: Algorithm) -> GeneratedKey {
    let mut secret = [0u8; 64];
    let secret = &mut secret[..algorithm.output_len()];
    rand::Rng::fill_bytes(&mut rand::rng(), secret);
    GeneratedKey {
        name: name.to_ascii().trim_end_matches('.').to_string(),
        algorithm,
        secret_base64: STANDARD.encode(secret),
    }
}

impl fmt::Display for GeneratedKey {
    /// The four forms, each under a `#` heading line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, algorithm, secret) = (&self.name, self.algorithm, &self.secret_base64);
        writeln!(f, "# edgewise-dns (edgewise.toml)")?;
        writeln!(f, "[[dns.tsig_keys]]")?;
        writeln!(f, "name = \"{name}\"")?;
        writeln!(f, "algorithm = \"{algorithm}\"")?;
        writeln!(f, "secret = \"{secret}\"")?;
        writeln!(f)?;
        writeln!(
            f,
            "# BIND (named.conf; also a key file for dig -k and nsupdate -k)"
        )?;
        writeln!(f, "key \"{name}\" {{")?;
        writeln!(f, "\talgorithm {algorithm};")?;
        writeln!(f, "\tsecret \"{secret}\";")?;
        writeln!(f, "}};")?;
        writeln!(f)?;
        writeln!(f, "# Knot DNS (knot.conf)")?;
        writeln!(f, "key:")?;
        writeln!(f, "  - id: {name}")?;
        writeln!(f, "    algorithm: {algorithm}")?;
        writeln!(f, "    secret: {secret}")?;
        writeln!(f)?;
        writeln!(f, "# NSD (nsd.conf)")?;
        writeln!(f, "key:")?;
        writeln!(f, "\tname: \"{name}\"")?;
        writeln!(f, "\talgorithm: {algorithm}")?;
        writeln!(f, "\tsecret: \"{secret}\"")
    }
}
