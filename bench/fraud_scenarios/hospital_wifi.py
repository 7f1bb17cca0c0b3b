"""Organic: a hospital's staff on the hospital's Wi-Fi at lunch. A colleague's page is posted in
the department groups at noon; 40–120 staff vote within half an hour through the hospital's one
fixed broadband address, WeChat on Wi-Fi (one agent family), mostly for their colleague but not
only (a few add the nominees they know), nearly all opening the colleague's page from the link.
"""

from __future__ import annotations

from bench.fraud_scenarios.base import (
    Attempt,
    Context,
    Person,
    home_address,
    identity_key,
    session,
    wechat_agent,
)

NAME = "hospital_wifi"
ATTACK = False


def generate(ctx: Context) -> list[Attempt]:
    rng = ctx.rng
    colleague = ctx.favourites(1, noise=0.9)[0]
    # The hospital's one fixed line, from a Chinese carrier's broadband ranges like every other
    # organic address here. (It was any 218.x.x.x: the offline IP data places much of 218/8 in
    # Korea and Japan, which made the "hospital" a foreign address once geography was scored.)
    address = home_address(rng)
    if ctx.realtime:
        share, mean, end = ctx.span * 0.3, ctx.span * 0.12, ctx.span - 0.5
    else:
        day = min(1, ctx.days - 1)
        share, mean, end = ctx.at(day, 12.05), 600.0, ctx.at(day, 13.5)
    out: list[Attempt] = []
    for k in range(ctx.n(80)):
        person = Person(
            NAME, False, identity_key(rng, "hosp"), f"ph-{NAME}-{k}", wechat_agent(rng, "WIFI")
        )
        picks = [colleague]
        if rng.random() < 0.25:  # not only the colleague
            picks += [n for n in ctx.favourites(2) if n != colleague][: rng.choice((1, 2))]
        t = ctx.arrival(share, mean, end)
        out += session(ctx, person, t, address, picks, view_p=0.95, end=end)
    return out
