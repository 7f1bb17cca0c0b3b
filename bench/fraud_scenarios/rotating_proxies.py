"""Attack: a proxy pool. Every request leaves from another cloud address (阿里云, 腾讯云,
华为云 ranges), one agent string for all, fresh identities, no page opened, no cookies kept, a
few threads firing irregularly; each identity votes for the two nominees the customer paid for.
"""

from __future__ import annotations

from bench.fraud_scenarios.base import (
    Attempt,
    Context,
    Person,
    datacenter_address,
    identity_key,
    session,
)
from bench.fraud_scenarios.base import ios_agent as _agent

NAME = "rotating_proxies"
ATTACK = True


def generate(ctx: Context) -> list[Attempt]:
    rng = ctx.rng
    targets = ctx.targets(2)
    agent = _agent("17_5_1", ("8.0.49", "0x18003130", ""), "WIFI")
    count = ctx.n(70)
    if ctx.realtime:
        start, end = ctx.span * 0.15, ctx.span * 0.9
    else:
        day = min(1, ctx.days - 1)
        start, end = ctx.at(day, 20.0), ctx.at(day, 21.0)
    out: list[Attempt] = []
    t = start
    for k in range(count):
        person = Person(NAME, True, identity_key(rng, "p"), f"pool-{k}", agent, keep_cookies=False)
        for nominee in targets:  # a new exit address per request
            out += session(ctx, person, t, datacenter_address(rng), [nominee], view_p=0.0, end=end)
            t += rng.uniform(0.05, 0.5)
        t += rng.expovariate(1 / ((end - start) / count))
        if t >= end:
            t = start + rng.uniform(0, end - start)
    return out
