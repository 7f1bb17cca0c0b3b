"""The cost of the offline region lookup (core/geo.py): loading the data once per process, and
one lookup; what a vote of a campaign with 地区限制 pays before its script runs.

    .venv/bin/python -m bench.geo_lookup [--lookups 200000]

Addresses are drawn at random (seeded) from the public IPv4 space, so the lookups spread over the
whole data file as a campaign's crowd would, not over one cached record.
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
import time

from core import geo


def _addresses(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < count:
        ip = socket.inet_ntoa(struct.pack("!I", rng.getrandbits(32)))
        if geo._public_ipv4(ip) is not None:
            out.append(ip)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    started = time.perf_counter()
    geo.lookup("47.96.0.1")
    load_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    known = geo.known_regions()
    names_ms = (time.perf_counter() - started) * 1000

    addresses = _addresses(args.lookups, args.seed)
    lookup = geo.lookup
    for ip in addresses:  # warm: decode every record these addresses reach once
        lookup(ip)
    found = sum(1 for ip in addresses if lookup(ip) is not None)
    allowed = frozenset({"浙江省", "浙江省杭州市"})
    allowed_check = geo.region_allowed

    def per_call(body: object) -> float:
        """µs per address, the best of ``--rounds`` (the machine may be shared)."""
        best = float("inf")
        for _ in range(args.rounds):
            started = time.perf_counter()
            body()  # type: ignore[operator]
            best = min(best, time.perf_counter() - started)
        return best / len(addresses) * 1e6

    lookup_us = per_call(lambda: [lookup(ip) for ip in addresses])
    check_us = per_call(lambda: [allowed_check(lookup(ip), allowed) for ip in addresses])
    ipv6_us = per_call(lambda: [lookup("2408:8000::1") for _ in addresses])

    print(f"data load (first lookup, once per process): {load_ms:.1f} ms")
    print(f"region names for validation (once): {names_ms:.1f} ms, {len(known)} provinces")
    print(f"lookups: {len(addresses)}, placed: {found / len(addresses):.1%}")
    print(f"lookup: {lookup_us:.2f} µs per address (best of {args.rounds} rounds)")
    print(f"lookup + restriction check: {check_us:.2f} µs per vote")
    print(f"IPv6 (refused before the data): {ipv6_us:.2f} µs")


if __name__ == "__main__":
    main()
