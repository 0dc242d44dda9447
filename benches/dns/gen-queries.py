#!/usr/bin/env python3
"""Generate queries.txt (dnsperf format: "name TYPE" per line) for bench.example.zone.

Deterministic (fixed seed), so the committed queries.txt can be regenerated:

    python3 benches/dns/gen-queries.py > benches/dns/queries.txt

Mix (by weight, over N lines, default 10000):
    A on host1..host1000                     60 %   positive
    AAAA on hosts that have one (host4k)     12 %   positive
    apex MX / TXT / NS / SOA                  6 %   positive
    TXT on txt.                               2 %   positive
    CNAME names (www/api/smtp), A or CNAME    5 %   positive (CNAME, chased in-zone for A)
    wildcard  <random>.wild  A / TXT          3 %   positive (synthesised)
    below the delegation  x.sub  A            2 %   referral
    NXDOMAIN (nonexistent names)              5 %
    NODATA (existing name, absent type)       5 %
"""

import random
import sys

ORIGIN = "bench.example"
HOSTS = 1000


def host(i):
    return f"host{i}.{ORIGIN}"


def rand_label(rng, n=8):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def positive_a(rng):
    return host(rng.randint(1, HOSTS)), "A"


def positive_aaaa(rng):
    return host(4 * rng.randint(1, HOSTS // 4)), "AAAA"


def apex(rng):
    return ORIGIN, rng.choice(["MX", "MX", "TXT", "NS", "SOA", "A"])


def txt(rng):
    return f"txt.{ORIGIN}", "TXT"


def cname(rng):
    return f"{rng.choice(['www', 'api', 'smtp'])}.{ORIGIN}", rng.choice(["A", "CNAME"])


def wildcard(rng):
    return f"{rand_label(rng)}.wild.{ORIGIN}", rng.choice(["A", "A", "TXT"])


def referral(rng):
    return f"{rng.choice(['www', 'mail', rand_label(rng, 5)])}.sub.{ORIGIN}", "A"


def nxdomain(rng):
    k = rng.randrange(3)
    if k == 0:  # past the end of the host range
        return host(rng.randint(HOSTS + 1, 99999)), "A"
    if k == 1:
        return f"nx-{rand_label(rng)}.{ORIGIN}", rng.choice(["A", "AAAA"])
    return f"{rand_label(rng, 6)}.host{rng.randint(1, HOSTS)}.{ORIGIN}", "A"


def nodata(rng):
    k = rng.randrange(3)
    if k == 0:  # hosts that are not a multiple of 4 have no AAAA
        i = rng.randint(1, HOSTS)
        while i % 4 == 0:
            i = rng.randint(1, HOSTS)
        return host(i), "AAAA"
    if k == 1:
        return host(rng.randint(1, HOSTS)), rng.choice(["MX", "TXT"])
    return f"mail.{ORIGIN}", "TXT"


MIX = [
    (positive_a, 60),
    (positive_aaaa, 12),
    (apex, 6),
    (txt, 2),
    (cname, 5),
    (wildcard, 3),
    (referral, 2),
    (nxdomain, 5),
    (nodata, 5),
]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    rng = random.Random(20240101)
    gens = [g for g, _ in MIX]
    weights = [w for _, w in MIX]
    out = sys.stdout
    for g in rng.choices(gens, weights=weights, k=n):
        name, qtype = g(rng)
        out.write(f"{name} {qtype}\n")


if __name__ == "__main__":
    main()
