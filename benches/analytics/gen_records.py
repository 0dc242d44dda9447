#!/usr/bin/env python3
"""Generate CDN real-time log records for the analytics benchmark.

Deterministic (seeded): the same N and seed give the same bytes with the same Python, so
edgewise and DuckDB can be fed identical records on any machine.

    python3 benches/analytics/gen_records.py                    # 1,000,000 records
    python3 benches/analytics/gen_records.py -n 100000 --seed 7 --out /tmp/logs

writes OUT.jsonl (one JSON object per line) and OUT.tsv (the same records as CloudFront
real-time log lines: tab-separated, `-` for no value, in FIELDS order), OUT defaulting to
target/bench-analytics/logs.

Shape: event time advances 10,000 records per second from 2024-01-01T00:00:00Z (so
1,000,000 records span 100 s); 3 distributions with a host each (60/30/10 % of requests);
~5,000 paths drawn Zipf-like (s = 1.1); a few weighted countries, 1 % unknown (null / `-`);
status mostly 200 with some 304/404/500/503; bytes and time_taken log-normal (long tail),
cache misses slower than hits.
"""

import argparse
import itertools
import json
import math
import os
import random
import sys
import time

FIELDS = [
    "timestamp",
    "c_ip",
    "c_country",
    "cs_method",
    "cs_host",
    "cs_uri_stem",
    "sc_status",
    "sc_bytes",
    "time_taken",
    "x_edge_result_type",
    "distribution_id",
]

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
RECORDS_PER_SECOND = 10_000
PATHS = 5_000
ZIPF_S = 1.1
CLIENTS = 20_000
# Weights and the share of records with no country (a client the geo database lacks).
COUNTRIES = {"US": 35, "DE": 12, "GB": 10, "FR": 8, "JP": 8, "IN": 8, "BR": 7, "CA": 6, "AU": 6}
UNKNOWN_COUNTRY = 0.01
METHODS = {"GET": 90, "HEAD": 5, "POST": 4, "PUT": 1}
DISTRIBUTIONS = {
    "E2QWRUHAPOMQZL": ("www.example.com", 60),
    "E1PDAO2HSN1Y6C": ("static.example.com", 30),
    "E3MBCZ6V4KXJ0D": ("api.example.com", 10),
}
STATUSES = {200: 85, 304: 7, 404: 5, 500: 2, 503: 1}
CACHE_RESULTS = {"Hit": 75, "Miss": 20, "RefreshHit": 5}
# log-normal (mu, sigma) of time_taken in seconds, by result type: misses go to the origin.
TIME_TAKEN = {"Hit": (math.log(0.004), 0.8), "RefreshHit": (math.log(0.03), 0.9),
              "Miss": (math.log(0.08), 1.1), "Error": (math.log(0.05), 1.3)}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--out", default="target/bench-analytics/logs",
                        help="path prefix: writes OUT.jsonl and OUT.tsv")
    args = parser.parse_args()
    if args.records < 1:
        parser.error("--records must be at least 1")
    return args


def paths():
    """~5,000 plausible paths, the most requested first (rank 1 is the front page)."""
    kinds = [
        lambda i: f"/assets/img/{i:05d}.jpg",
        lambda i: f"/articles/{i}",
        lambda i: f"/static/js/chunk-{i:04x}.js",
        lambda i: f"/api/v1/items/{i}",
        lambda i: f"/video/{i}/segment-{i % 97:03d}.ts",
    ]
    return ["/", "/index.html", "/favicon.ico"] + [
        kinds[i % len(kinds)](i) for i in range(PATHS - 3)
    ]


def cumulative(weights):
    return list(itertools.accumulate(weights))


def client_ips(rng):
    return [
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        for _ in range(CLIENTS)
    ]


def records(rng, n):
    """Yields each record as a dict in FIELDS order (None where a value is missing)."""
    all_paths = paths()
    path_weights = cumulative(1 / rank**ZIPF_S for rank in range(1, len(all_paths) + 1))
    ips = client_ips(rng)
    countries = list(COUNTRIES)
    country_weights = cumulative(COUNTRIES.values())
    methods = list(METHODS)
    method_weights = cumulative(METHODS.values())
    distributions = list(DISTRIBUTIONS)
    distribution_weights = cumulative(w for _, w in DISTRIBUTIONS.values())
    statuses = list(STATUSES)
    status_weights = cumulative(STATUSES.values())
    results = list(CACHE_RESULTS)
    result_weights = cumulative(CACHE_RESULTS.values())
    for i in range(n):
        ms = START_MS + i * 1000 // RECORDS_PER_SECOND
        distribution = rng.choices(distributions, cum_weights=distribution_weights)[0]
        status = rng.choices(statuses, cum_weights=status_weights)[0]
        result = "Error" if status >= 400 else rng.choices(results, cum_weights=result_weights)[0]
        mu, sigma = TIME_TAKEN[result]
        if status == 304:
            size = rng.randint(150, 400)
        elif status >= 400:
            size = rng.randint(200, 1_500)
        else:
            size = int(rng.lognormvariate(math.log(20_000), 1.2)) + 200
        country = None
        if rng.random() >= UNKNOWN_COUNTRY:
            country = rng.choices(countries, cum_weights=country_weights)[0]
        yield {
            "timestamp": ms / 1000,
            "c_ip": ips[rng.randrange(CLIENTS)],
            "c_country": country,
            "cs_method": rng.choices(methods, cum_weights=method_weights)[0],
            "cs_host": DISTRIBUTIONS[distribution][0],
            "cs_uri_stem": rng.choices(all_paths, cum_weights=path_weights)[0],
            "sc_status": status,
            "sc_bytes": size,
            "time_taken": round(rng.lognormvariate(mu, sigma), 3),
            "x_edge_result_type": result,
            "distribution_id": distribution,
        }


def tsv_line(record):
    """A real-time log line: epoch seconds with millis, `-` for no value."""
    fields = []
    for name in FIELDS:
        value = record[name]
        if value is None or value == "":
            fields.append("-")
        elif name in ("timestamp", "time_taken"):
            fields.append(f"{value:.3f}")
        else:
            fields.append(str(value))
    return "\t".join(fields)


def main():
    args = parse_args()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    with open(f"{args.out}.jsonl", "w", encoding="utf-8") as jsonl, \
            open(f"{args.out}.tsv", "w", encoding="utf-8") as tsv:
        for record in records(rng, args.records):
            jsonl.write(json.dumps(record, separators=(",", ":")))
            jsonl.write("\n")
            tsv.write(tsv_line(record))
            tsv.write("\n")
    seconds = args.records / RECORDS_PER_SECOND
    print(
        f"wrote {args.records} records ({seconds:g} s of event time) to {args.out}.jsonl and "
        f"{args.out}.tsv in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
