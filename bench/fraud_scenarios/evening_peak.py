"""Organic: the evening peak. After dinner people who follow the campaign vote for their
favourites, day after day: every nominee by popularity, phones on home Wi-Fi or 4G, varied
agents, many looking around without voting. In real time the peak fills the whole span."""

from __future__ import annotations

from bench.fraud_scenarios.base import (
    Attempt,
    Context,
    Person,
    any_organic_address,
    browse,
    identity_key,
    session,
    wechat_agent,
)

NAME = "evening_peak"
ATTACK = False


def generate(ctx: Context) -> list[Attempt]:
    rng = ctx.rng
    out: list[Attempt] = []
    for k in range(ctx.n(200)):
        person = Person(NAME, False, identity_key(rng, "eve"), f"ph-{NAME}-{k}", wechat_agent(rng))
        home = any_organic_address(rng)
        picks = ctx.favourites(rng.choice((1, 2, 2, 3)))
        keen = rng.uniform(0.3, 0.9)
        for day in range(ctx.days):
            if day and rng.random() > keen:
                continue
            if ctx.realtime:
                t = rng.triangular(0, ctx.span - 20, ctx.span * 0.6)
            else:
                t = ctx.at(day, rng.triangular(18.5, 23.0, 20.5))
            address = home if rng.random() < 0.75 else any_organic_address(rng)
            out += session(ctx, person, t, address, picks, view_p=0.7)
            for _ in range(rng.choice((0, 1, 2))):
                seen = ctx.favourites(1, noise=0.8)[0]
                out.append(browse(ctx, person, t + rng.uniform(-120, 120), address, seen))
    return out
