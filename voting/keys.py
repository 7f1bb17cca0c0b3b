"""The Redis keys of a campaign's vote path, and the millisecond times the vote script speaks."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from flask import current_app


def ms(value: datetime) -> int:
    """Milliseconds since the epoch, as the vote script and the ledger stream count time."""
    return int(value.timestamp() * 1000)


@dataclass(frozen=True)
class CampaignKeys:
    """Every key of one campaign shares the hash tag ``{c:<slug>}``."""

    base: str

    @classmethod
    def of(cls, slug: str) -> CampaignKeys:
        return _keys_of(current_app.config["REDIS_PREFIX"], slug)

    def __getattr__(self, name: str) -> str:
        return self.base + name

    def quota(self, day: str, voter: int | str) -> str:
        return f"{self.base}q:{day}:{voter}"

    def idem(self, voter: int | str, key: str) -> str:
        return f"{self.base}idem:{voter}:{key}"

    def ip_minute(self, ip: str, minute: int) -> str:
        return f"{self.base}ip:{ip}:{minute}"

    def voter_minute(self, voter: int | str, minute: int) -> str:
        return f"{self.base}vm:{voter}:{minute}"

    def rank(self, category: str) -> str:
        """The sorted set earlier versions kept per category next to the counters: only the
        publication that deletes it names it now (voting.state.write_state)."""
        return f"{self.base}rank:{category}"

    @functools.cached_property
    def vote_fixed(self) -> tuple[str, ...]:
        """The vote script's keys that are the same for every vote of the campaign, in the
        script's order around the per-voter ones (voting/lua/vote.lua)."""
        return (self.meta, self.nominees, self.frozen, self.counts, self.pending, self.ledger,
                self.seq, self.pace, self.blocked, self.rewinds, self.rebuild)  # fmt: skip


@functools.lru_cache(maxsize=4096)
def _keys_of(prefix: str, slug: str) -> CampaignKeys:
    """Key names are built once per process and campaign (the vote path asks on every vote)."""
    return CampaignKeys(f"{prefix}:{{c:{slug}}}:")
