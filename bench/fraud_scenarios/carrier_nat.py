"""Organic: many voters behind few mobile carrier NAT addresses. In a county town most phones
on one carrier's 4G/5G leave through a handful of carrier-grade NAT addresses, so dozens of
unrelated voters share one address within minutes: varied phones and WeChat builds, votes for
every nominee by popularity, cookies kept, most open the page first."""

from __future__ import annotations

from bench.fraud_scenarios.base import (
    Attempt,
    Context,
    Person,
    browse,
    identity_key,
    session,
    wechat_agent,
)

NAME = "carrier_nat"
ATTACK = False


def generate(ctx: Context) -> list[Attempt]:
    rng = ctx.rng
    prefix = rng.choice(("117.136", "223.104", "112.97"))
    third = rng.randrange(0, 64)
    nats = [f"{prefix}.{third + k % 2}.{rng.randrange(1, 255)}" for k in range(max(2, ctx.n(6)))]
    out: list[Attempt] = []
    for k in range(ctx.n(150)):
        agent = wechat_agent(rng, net=rng.choice(("4G", "5G")), family=None)
        person = Person(NAME, False, identity_key(rng, "nat"), f"ph-{NAME}-{k}", agent)
        picks = ctx.favourites(rng.choice((1, 1, 2, 3)))
        days = [0] if ctx.realtime else [d for d in range(ctx.days) if rng.random() < 0.6] or [0]
        for day in days:
            t = rng.uniform(0, ctx.span - 20) if ctx.realtime else ctx.at(day, ctx.rhythm_hour())
            address = rng.choice(nats)
            out += session(ctx, person, t, address, picks, view_p=0.85)
            if rng.random() < 0.5:
                seen = ctx.favourites(1, noise=0.8)[0]
                out.append(browse(ctx, person, t + rng.uniform(-30, 60), address, seen))
    return out
