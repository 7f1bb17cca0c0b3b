"""Attack: a script on rented servers in one /24. Each vote is a fresh identity made a moment
before from the same /24, one agent string for all (a copied WeChat agent), machine-regular
timing (every two seconds, a few milliseconds of jitter), no page opened, no cookies kept, one
nominee pushed. In days mode it runs one afternoon."""

from __future__ import annotations

from bench.fraud_scenarios.base import DATACENTER, Attempt, Context, Person, identity_key, session
from bench.fraud_scenarios.base import android_agent as _agent

NAME = "scripted_subnet"
ATTACK = True


def generate(ctx: Context) -> list[Attempt]:
    rng = ctx.rng
    target = ctx.targets(1)
    subnet = f"{rng.choice(DATACENTER)}.{rng.randrange(256)}"
    agent = _agent(("13", "PJD110", "TP1A.220905.001"), ("8.0.47", "", "0x28002F35"), "WIFI", 4242)
    count = ctx.n(120)
    if ctx.realtime:
        start = ctx.span * 0.25
        step = min(2.0, (ctx.span * 0.7) / count)
    else:
        start, step = ctx.at(min(1, ctx.days - 1), 14.2), 2.0
    out: list[Attempt] = []
    for k in range(count):
        person = Person(NAME, True, identity_key(rng, "s"), f"srv-{k}", agent, keep_cookies=False)
        t = start + k * step + rng.uniform(-0.005, 0.005)
        out += session(ctx, person, t, f"{subnet}.{rng.randrange(2, 254)}", target, view_p=0.0)
    return out
