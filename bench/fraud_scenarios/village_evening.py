"""Organic: a nominee's home village votes in one evening. The village doctor's page goes round
the village and family groups after dinner; households vote together (one to four phones on the
family's broadband, plus phones on 4G), from many addresses of one county's telecom range,
older Android phones common, nearly all for the village's own nominee."""

from __future__ import annotations

from bench.fraud_scenarios.base import (
    Attempt,
    Context,
    Person,
    identity_key,
    mobile_address,
    session,
    wechat_agent,
)

NAME = "village_evening"
ATTACK = False


def generate(ctx: Context) -> list[Attempt]:
    rng = ctx.rng
    home = ctx.targets(1)[0]  # a small-town nominee, not one of the well-known
    county = f"{rng.choice(('115.192', '180.111', '222.209', '125.70'))[:-1]}"
    if ctx.realtime:
        start, end = ctx.span * 0.45, ctx.span - 0.5
    else:
        day = min(2, ctx.days - 1)
        start, end = ctx.at(day, 19.0), ctx.at(day, 22.5)
    out: list[Attempt] = []
    k = 0
    while k < ctx.n(100):
        line = f"{county}{rng.randrange(10)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        for _ in range(rng.choice((1, 2, 2, 3, 4))):
            k += 1
            family = "android" if rng.random() < 0.7 else "ios"
            agent = wechat_agent(rng, rng.choice(("WIFI", "WIFI", "4G")), family)
            person = Person(NAME, False, identity_key(rng, "vil"), f"ph-{NAME}-{k}", agent)
            address = line if "WIFI" in agent else mobile_address(rng)
            picks = [home]
            if rng.random() < 0.1:  # and someone they know from the news
                picks += [n for n in ctx.favourites(2) if n != home][:1]
            t = rng.uniform(start, start + (end - start) * 0.8)
            out += session(ctx, person, t, address, picks, view_p=0.8, end=end)
    return out
