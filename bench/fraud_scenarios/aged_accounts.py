"""Attack: bought aged accounts. WeChat accounts the platform has known for months (they voted
in earlier campaigns) are bought and driven from one console: every round all of them vote for
the same two nominees within a minute of each other (lockstep), through residential proxies
(another home broadband address each round), their old agents, no page opened, no cookies kept.
Daily rounds in days mode; in real time, two rounds minutes apart, each half the accounts (the
quota allows one round a day)."""

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

NAME = "aged_accounts"
ATTACK = True


def generate(ctx: Context) -> list[Attempt]:
    rng = ctx.rng
    targets = ctx.targets(2)
    accounts = [
        Person(
            NAME,
            True,
            identity_key(rng, "aged"),
            f"emu-{k}",
            wechat_agent(rng),
            keep_cookies=False,
            account_age_days=rng.uniform(60, 700),
        )
        for k in range(ctx.n(60))
    ]
    out: list[Attempt] = []
    if ctx.realtime:
        for r in range(2):
            go = ctx.span * (0.35 + 0.35 * r)
            for person in accounts[r::2]:
                t = go + rng.uniform(0, min(60.0, ctx.span * 0.15))
                out += session(ctx, person, t, home_address(rng), targets, view_p=0.0, gap=(2, 6))
        return out
    for day in range(ctx.days):
        go = ctx.at(day, 21.0 + rng.uniform(0, 1))
        for person in accounts:
            t = go + rng.uniform(0, 60)
            out += session(ctx, person, t, home_address(rng), targets, view_p=0.0, gap=(2, 6))
    return out
