"""Attack: a phone farm (群控). One controller drives a rack of identical phones (one model, one
system image, so one agent string), each phone logging in to account after account; the
controller taps all phones at once, machine-regular (every few seconds, milliseconds apart),
open the page then vote for the nominee(s) paid for. Each phone has its own 4G card; the
phone's browser keeps its cookies across the accounts. In days mode it runs every afternoon."""

from __future__ import annotations

from bench.fraud_scenarios.base import (
    ANDROID,
    WECHAT,
    Attempt,
    Context,
    Person,
    android_agent,
    identity_key,
    mobile_address,
    session,
)

NAME = "phone_farm"
ATTACK = True


def generate(ctx: Context) -> list[Attempt]:
    rng = ctx.rng
    targets = ctx.targets(2)
    agent = android_agent(ANDROID[11], WECHAT[3], "4G", 5173)
    phones = max(2, ctx.n(12))
    per_phone = 10
    accounts = [
        [identity_key(rng, f"pf{p}") for _ in range(per_phone)] for p in range(phones)
    ]  # the same accounts every day
    step = 4.0  # one account per phone every four seconds: log in, open, vote, vote
    out: list[Attempt] = []
    for day in range(1 if ctx.realtime else ctx.days):
        start = ctx.span * 0.2 if ctx.realtime else ctx.at(day, 14.0)
        if ctx.realtime:
            step = min(4.0, ctx.span * 0.7 / per_phone)
        for p in range(phones):
            address = mobile_address(rng)
            for a, identity in enumerate(accounts[p]):
                person = Person(NAME, True, identity, f"farm-phone-{p}", agent)
                t = start + a * step + rng.uniform(0, 0.05)
                out += session(ctx, person, t, address, targets, view_p=1.0, gap=(1.0, 1.02))
    return out
