"""Organic: the launch. The bureau's official account posts the campaign and the link is shared
into WeChat groups (hospital departments, alumni, family groups); thousands of brand-new voters
arrive in the first minutes, for every nominee, in proportion to popularity with noise (each
group leans towards someone its members know). Phones on carrier NAT and home Wi-Fi, WeChat's
in-app browser, cookies kept; most open the nominee's page from the shared link, many look and
do not vote. In days mode the launch is the first morning and some voters come back later days.
"""

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

NAME = "launch"
ATTACK = False


def generate(ctx: Context) -> list[Attempt]:
    rng = ctx.rng
    groups = [ctx.favourites(1, noise=0.6)[0] for _ in range(max(4, ctx.n(40)))]
    if ctx.realtime:
        first, mean = ctx.span * 0.02, ctx.span * 0.3
    else:
        first, mean = ctx.at(0, 9.0), 2400.0
    shares = sorted(ctx.arrival(first, mean / 2) for _ in groups)
    out: list[Attempt] = []
    for k in range(ctx.n(600)):
        group = rng.randrange(len(groups))
        person = Person(NAME, False, identity_key(rng, "wx"), f"ph-{NAME}-{k}", wechat_agent(rng))
        address = any_organic_address(rng)
        t = ctx.arrival(shares[group], mean / 3)
        picks = ctx.favourites(rng.choice((1, 1, 2, 3)))
        if rng.random() < 0.6 and groups[group] not in picks:
            picks = [groups[group], *picks[:-1]] if len(picks) > 1 else [groups[group]]
        out += session(ctx, person, t, address, picks, view_p=0.9)
        for _ in range(rng.choice((0, 1, 1, 2))):
            seen = ctx.favourites(1, noise=0.8)[0]
            out.append(browse(ctx, person, t + rng.uniform(-60, 120), address, seen))
        if ctx.realtime:
            continue
        for day in range(1, ctx.days):  # some come back on later days
            if rng.random() < 0.35:
                again = address if rng.random() < 0.6 else any_organic_address(rng)
                out += session(
                    ctx, person, ctx.at(day, ctx.rhythm_hour()), again, picks, view_p=0.5
                )
    return out
