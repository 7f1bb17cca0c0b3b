"""Attack: paid humans (刷票群). An organiser posts a task in a QQ group; each worker, on their
own phone and network, votes for the same three nominees, using the whole 3-vote daily quota,
within half an hour of the post; rounds repeat every day. Human pauses, own agents, cookies kept,
some open the page first. In real time the rounds are compressed into minutes: each worker can
do one round a day, so each round is another cohort of workers."""

from __future__ import annotations

from bench.fraud_scenarios.base import (
    Attempt,
    Context,
    Person,
    any_organic_address,
    identity_key,
    session,
    wechat_agent,
)

NAME = "human_farm"
ATTACK = True


def generate(ctx: Context) -> list[Attempt]:
    rng = ctx.rng
    targets = ctx.targets(3)
    workers = [
        (
            Person(NAME, True, identity_key(rng, "hf"), f"ph-{NAME}-{k}", wechat_agent(rng)),
            any_organic_address(rng),
        )
        for k in range(ctx.n(30))
    ]
    out: list[Attempt] = []
    if ctx.realtime:
        rounds = 3
        for r in range(rounds):
            post = ctx.span * (0.1 + 0.28 * r)
            for person, address in workers[r::rounds]:
                t = ctx.arrival(post, ctx.span * 0.05)
                order = rng.sample(targets, 3)
                out += session(ctx, person, t, address, order, view_p=0.5, gap=(3, 15))
        return out
    for day in range(ctx.days):
        post = ctx.at(day, rng.uniform(19.5, 21.0))
        for person, address in workers:
            if rng.random() < 0.1:  # someone skips a day
                continue
            t = ctx.arrival(post, 600.0, post + 1800)
            where = address if rng.random() < 0.7 else any_organic_address(rng)
            out += session(ctx, person, t, where, rng.sample(targets, 3), view_p=0.5, gap=(3, 15))
    return out
