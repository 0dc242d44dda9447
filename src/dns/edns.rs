//! EDNS Client Subnet (RFC 7871): read strictly from the query, echoed with a scope.
//!
//! hickory parses the option leniently (surplus address bytes and bits past the source prefix
//! pass), but RFC 7871 §7.1.1 wants FORMERR for those, so the option is read here from the
//! raw OPT record of a message hickory has already accepted.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// EDNS option code of Client Subnet.
const ECS_CODE: u16 = 8;
const TYPE_OPT: u16 = 41;

/// The client subnet a query carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSubnet {
    pub addr: IpAddr,
    pub source_prefix: u8,
}

/// The option is present but malformed: the query gets FORMERR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedSubnet;

/// The Client Subnet option of `packet`, if any.
///
/// # Errors
/// The option is malformed or given twice.
pub fn client_subnet(packet: &[u8]) -> Result<Option<ClientSubnet>, MalformedSubnet> {
    let Some(options) = opt_rdata(packet) else {
        return Ok(None);
    };
    let mut found = None;
    let mut rest = options;
    while rest.len() >= 4 {
        let code = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let data = rest.get(4..4 + len).ok_or(MalformedSubnet)?;
        if code == ECS_CODE {
            if found.is_some() {
                return Err(MalformedSubnet);
            }
            found = Some(parse(data)?);
        }
        rest = &rest[4 + len..];
    }
    if !rest.is_empty() {
        return Err(MalformedSubnet);
    }
    Ok(found)
}

fn parse(data: &[u8]) -> Result<ClientSubnet, MalformedSubnet> {
    let [f0, f1, source_prefix, _scope, address @ ..] = data else {
        return Err(MalformedSubnet);
    };
    let family = u16::from_be_bytes([*f0, *f1]);
    let max_prefix = match family {
        1 => 32,
        2 => 128,
        _ => return Err(MalformedSubnet),
    };
    let source_prefix = *source_prefix;
    if source_prefix > max_prefix || address.len() != usize::from(source_prefix).div_ceil(8) {
        return Err(MalformedSubnet);
    }
    // Bits past the source prefix must be zero (RFC 7871 §6).
    if let Some(last) = address.last() {
        let used_bits = source_prefix % 8;
        if used_bits != 0 && last & (0xff >> used_bits) != 0 {
            return Err(MalformedSubnet);
        }
    }
    let addr = if family == 1 {
        let mut octets = [0u8; 4];
        octets[..address.len()].copy_from_slice(address);
        IpAddr::V4(Ipv4Addr::from(octets))
    } else {
        let mut octets = [0u8; 16];
        octets[..address.len()].copy_from_slice(address);
        IpAddr::V6(Ipv6Addr::from(octets))
    };
    Ok(ClientSubnet {
        addr,
        source_prefix,
    })
}

/// Appends the ECS option echoing `subnet` with `scope` (RFC 7871 §7.2.1).
pub fn write_option(out: &mut Vec<u8>, subnet: ClientSubnet, scope: u8) {
    let (family, octets): (u16, Vec<u8>) = match subnet.addr {
        IpAddr::V4(v4) => (1, v4.octets().to_vec()),
        IpAddr::V6(v6) => (2, v6.octets().to_vec()),
    };
    let address = &octets[..usize::from(subnet.source_prefix).div_ceil(8)];
    out.extend_from_slice(&ECS_CODE.to_be_bytes());
    out.extend_from_slice(&(4 + address.len() as u16).to_be_bytes());
    out.extend_from_slice(&family.to_be_bytes());
    out.push(subnet.source_prefix);
    out.push(scope);
    out.extend_from_slice(address);
}

/// Size of the option `write_option` appends.
pub fn option_len(subnet: ClientSubnet) -> usize {
    8 + usize::from(subnet.source_prefix).div_ceil(8)
}

/// The RDATA of the OPT record in the additional section, walking the sections by hand.
fn opt_rdata(packet: &[u8]) -> Option<&[u8]> {
    let count = |at: usize| {
        Some(usize::from(u16::from_be_bytes([
            *packet.get(at)?,
            *packet.get(at + 1)?,
        ])))
    };
    let questions = count(4)?;
    let before_additional = count(6)? + count(8)?;
    let records = before_additional + count(10)?;
    let mut pos = 12;
    for _ in 0..questions {
        pos = skip_name(packet, pos)? + 4;
    }
    for index in 0..records {
        let at = skip_name(packet, pos)?;
        let rtype = count(at)? as u16;
        let rdlength = count(at + 8)?;
        let rdata = packet.get(at + 10..at + 10 + rdlength)?;
        if rtype == TYPE_OPT && index >= before_additional {
            return Some(rdata);
        }
        pos = at + 10 + rdlength;
    }
    None
}

/// The offset just past the (possibly compressed) name at `pos`.
fn skip_name(packet: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *packet.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => pos += 1 + usize::from(len),
            0xc0 => return Some(pos + 2),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(bytes: &[u8]) -> Result<ClientSubnet, MalformedSubnet> {
        parse(bytes)
    }

    #[test]
    fn well_formed_subnets_parse() {
        assert_eq!(
            option(&[0, 1, 24, 0, 192, 0, 2]),
            Ok(ClientSubnet {
                addr: "192.0.2.0".parse().unwrap(),
                source_prefix: 24
            })
        );
        assert_eq!(
            option(&[0, 1, 0, 0]),
            Ok(ClientSubnet {
                addr: "0.0.0.0".parse().unwrap(),
                source_prefix: 0
            })
        );
        assert_eq!(
            option(&[0, 2, 56, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0]).map(|s| s.source_prefix),
            Ok(56)
        );
        assert_eq!(
            option(&[0, 1, 20, 0, 10, 1, 0xf0]).map(|s| s.addr),
            Ok("10.1.240.0".parse().unwrap())
        );
    }

    #[test]
    fn malformed_subnets_are_rejected() {
        let cases: [&[u8]; 7] = [
            &[0, 1, 24, 0, 192, 0],        // address shorter than the prefix
            &[0, 1, 24, 0, 192, 0, 2, 1],  // surplus address byte
            &[0, 1, 33, 0, 1, 2, 3, 4, 5], // prefix longer than IPv4
            &[0, 3, 8, 0, 1],              // unknown family
            &[0, 1, 20, 0, 10, 1, 0xff],   // bits set past the prefix
            &[0, 1],                       // truncated header
            &[],
        ];
        for case in cases {
            assert_eq!(option(case), Err(MalformedSubnet), "{case:?}");
        }
    }

    #[test]
    fn echo_round_trips() {
        let subnet = ClientSubnet {
            addr: "198.51.100.0".parse().unwrap(),
            source_prefix: 24,
        };
        let mut out = Vec::new();
        write_option(&mut out, subnet, 16);
        assert_eq!(out, [0, 8, 0, 7, 0, 1, 24, 16, 198, 51, 100]);
        assert_eq!(out.len(), option_len(subnet));
    }
}
