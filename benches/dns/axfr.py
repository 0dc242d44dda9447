#!/usr/bin/env python3
"""Zone and client of the AXFR benchmark (benches/dns/axfr.sh).

    axfr.py zone ORIGIN RECORDS > FILE
        A master file of ORIGIN with RECORDS records (SOA and apex NS included), the same for
        a given count (fixed seed): A, AAAA, TXT, MX, CNAME and SRV under names one to four
        labels deep, as a mix of hosts, services and departments might look.

    axfr.py bench ROUNDS ORIGIN RECORDS NAME=PORT... [--tsig KEY:BASE64SECRET] > RESULTS
        For each server on 127.0.0.1:PORT a first transfer, then ROUNDS more of each,
        alternating servers (ABBA), all timed. One line per server:
            NAME records messages bytes signed_messages first_ms ms_round1 ms_round2 ...
        bytes: what came over TCP (messages and their 2-byte length prefixes). A transfer's
        time runs from sending the query to the last byte of the last message: the client
        only reads message headers meanwhile and stops at RECORDS answer records (the zone's
        records and the closing SOA), so its own cost stays small; then it checks each
        transfer whole (every record walked: SOA first and last, nothing else after).

Only 127.0.0.1 is ever contacted; every socket has a timeout.
"""

import base64
import hashlib
import hmac
import random
import socket
import struct
import sys
import time

TIMEOUT = 30.0  # seconds without progress before a transfer counts as failed
T_SOA, T_TSIG, T_AXFR = 6, 250, 252


# ---------------------------------------------------------------- zone


def zone(origin, count):
    """Yields the lines of a master file of `count` records."""
    rnd = random.Random(13)
    yield f"; AXFR benchmark zone, {count} records (benches/dns/axfr.py zone {origin} {count})"
    yield f"$ORIGIN {origin}."
    yield "$TTL 3600"
    yield "@ IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300"
    yield "@ IN NS ns1"
    yield "@ IN NS ns2"
    yield "ns1 IN A 192.0.2.53"
    yield "ns2 IN A 198.51.100.53"
    yield "@ IN MX 10 mail"
    yield "mail IN A 192.0.2.25"
    written = 7
    depts = ["eng", "sales", "ops", "hr", "lab", "corp", "dev", "qa"]
    sites = ["fra", "ams", "nyc", "sfo", "sin", "syd"]
    owners, i = ["mail"], 0
    while written < count:
        i += 1
        host, site, dept = f"h{i}", rnd.choice(sites), rnd.choice(depts)
        owner = rnd.choice((host, f"{host}.{dept}", f"{host}.{site}.{dept}", f"api.{host}.{site}.{dept}"))
        for line in host_records(rnd, owner, i, owners):
            if written >= count:
                break
            yield line
            written += 1


def host_records(rnd, owner, i, owners):
    """One name's records: mostly A, often AAAA and TXT, sometimes MX, SRV or a CNAME (to
    an earlier name of the zone, or out of it); `owners` collects the names with an A."""
    if rnd.random() < 0.12:
        target = rnd.choice(owners) if rnd.random() < 0.7 else "www.example.net."
        yield f"{owner} 300 IN CNAME {target}"
        return
    owners.append(owner)
    a = i % 65536
    yield f"{owner} IN A 10.{a >> 8}.{a & 255}.{rnd.randrange(1, 255)}"
    if rnd.random() < 0.5:
        yield f"{owner} IN AAAA 2001:db8:{i >> 16:x}:{i & 0xFFFF:x}::{rnd.randrange(1, 0xFFFF):x}"
    if rnd.random() < 0.25:
        token = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rnd.randrange(8, 48)))
        yield f'{owner} IN TXT "v=verify1 {token}"'
    if rnd.random() < 0.08:
        yield f"{owner} IN MX {rnd.choice((10, 20, 30))} mail"
    if rnd.random() < 0.08:
        port = rnd.choice((443, 5060, 5222, 8443))
        yield f"_svc._tcp.{owner} IN SRV {rnd.randrange(0, 20)} {rnd.randrange(0, 100)} {port} {owner}"


# ---------------------------------------------------------------- wire


def wire_name(name):
    labels = [l for l in name.rstrip(".").split(".") if l]
    return b"".join(bytes([len(l)]) + l.encode() for l in labels) + b"\0"


def query(origin, tsig):
    """The AXFR query for `origin`, signed (RFC 8945 §4.3) when `tsig` is (key, secret)."""
    qid = random.randrange(65536)
    header = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    msg = header + wire_name(origin) + struct.pack(">HH", T_AXFR, 1)
    if tsig is None:
        return msg
    key, secret = tsig
    kname, alg = wire_name(key.lower()), wire_name("hmac-sha256")
    now, fudge = int(time.time()), 300
    time_signed = struct.pack(">HI", now >> 32, now & 0xFFFFFFFF)
    variables = kname + struct.pack(">HI", 255, 0) + alg + time_signed + struct.pack(">HHH", fudge, 0, 0)
    mac = hmac.new(secret, msg + variables, hashlib.sha256).digest()
    rdata = alg + time_signed + struct.pack(">HH", fudge, len(mac)) + mac + struct.pack(">HHH", qid, 0, 0)
    rr = kname + struct.pack(">HHIH", T_TSIG, 255, 0, len(rdata)) + rdata
    return msg[:10] + struct.pack(">H", 1) + msg[12:] + rr


def skip_name(m, p):
    while True:
        n = m[p]
        if n & 0xC0 == 0xC0:
            return p + 2
        if n == 0:
            return p + 1
        p += n + 1


def records(m):
    """Types of the answer records of message `m`, and whether it ends in a TSIG record."""
    qd, an, ns, ar = struct.unpack_from(">HHHH", m, 4)
    p = 12
    for _ in range(qd):
        p = skip_name(m, p) + 4
    types, last = [], None
    for k in range(an + ns + ar):
        p = skip_name(m, p)
        rtype, _, _, rdlen = struct.unpack_from(">HHIH", m, p)
        p += 10 + rdlen
        if k < an:
            types.append(rtype)
        last = rtype
    if p != len(m):
        raise ValueError(f"message of {len(m)} bytes ends at {p}")
    return types, last == T_TSIG


def transfer(port, msg, expect):
    """One AXFR from 127.0.0.1:port, read until `expect` answer records have come (only
    the headers are read): (seconds, raw bytes)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    except OSError as e:
        raise ConnectionError(f"port {port}: {e}") from e
    with s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray(4 << 20)
        view, have, pos, seen, messages = memoryview(buf), 0, 0, 0, 0
        t0 = time.perf_counter()
        s.sendall(struct.pack(">H", len(msg)) + msg)
        while True:
            if have == len(buf):
                buf.extend(bytes(len(buf)))
                view = memoryview(buf)
            n = s.recv_into(view[have:])
            if n == 0:
                raise ConnectionError(f"port {port}: closed after {messages} messages, {seen} records")
            have += n
            while pos + 2 <= have:
                length = buf[pos] << 8 | buf[pos + 1]
                if pos + 2 + length > have:
                    break
                start = pos + 2
                pos = start + length
                messages += 1
                if buf[start + 3] & 0xF:
                    raise ConnectionError(f"port {port}: rcode {buf[start + 3] & 0xF}")
                seen += buf[start + 6] << 8 | buf[start + 7]
                if seen >= expect:
                    elapsed = time.perf_counter() - t0
                    if pos != have or seen != expect:
                        raise ConnectionError(f"port {port}: more than {expect} records")
                    return elapsed, bytes(buf[:have])


def check(raw, origin):
    """Walks a whole transfer: (records, messages, signed messages); SOA first and last."""
    pos, types, messages, signed = 0, [], 0, 0
    while pos < len(raw):
        length = raw[pos] << 8 | raw[pos + 1]
        t, is_signed = records(raw[pos + 2 : pos + 2 + length])
        types += t
        messages += 1
        signed += is_signed
        pos += 2 + length
    if types[0] != T_SOA or types[-1] != T_SOA or types.count(T_SOA) != 2:
        raise ValueError(f"{origin}: a transfer must start and end with the SOA, and hold no other")
    return len(types), messages, signed


def bench(rounds, origin, expect, servers, tsig):
    try:
        measure(rounds, origin, expect, servers, tsig)
    except (OSError, ValueError) as e:
        sys.exit(f"axfr.py: {e}")


def measure(rounds, origin, expect, servers, tsig):
    facts, times = {}, {name: [] for name, _ in servers}
    for r in range(rounds + 1):
        order = servers if r % 2 == 0 else servers[::-1]
        for name, port in order:
            elapsed, raw = transfer(port, query(origin, tsig), expect)
            seen = (*check(raw, origin), len(raw))
            if facts.setdefault(name, seen) != seen:
                raise ValueError(f"{name}: transfer {r + 1} differs from the first: {seen} vs {facts[name]}")
            times[name].append(elapsed * 1000)
    for name, _ in servers:
        count, messages, signed, size = facts[name]
        print(name, count, messages, size, signed, " ".join(f"{t:.2f}" for t in times[name]))


def main(argv):
    if len(argv) == 4 and argv[1] == "zone":
        for line in zone(argv[2], int(argv[3])):
            print(line)
        return 0
    if len(argv) >= 6 and argv[1] == "bench":
        rest, tsig = argv[5:], None
        if "--tsig" in rest:
            i = rest.index("--tsig")
            key, secret = rest[i + 1].split(":", 1)
            tsig = (key, base64.b64decode(secret))
            rest = rest[:i] + rest[i + 2 :]
        servers = [(s.split("=")[0], int(s.split("=")[1])) for s in rest]
        bench(int(argv[2]), argv[3], int(argv[4]), servers, tsig)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
