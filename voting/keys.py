"""The Redis keys of a campaign's vote path, and the millisecond times the vote script speaks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.extensions import redis_store


def ms(value: datetime) -> int:
    """Milliseconds since the epoch, as the vote script and the ledger stream count time."""
    return int(value.timestamp() * 1000)


@dataclass(frozen=True)
class CampaignKeys:
    """Every key of one campaign shares the hash tag ``{c:<slug>}``."""

    base: str

    @classmethod
    def of(cls, slug: str) -> CampaignKeys:
        return cls(redis_store.key("{c:" + slug + "}", ""))

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

    @property
    def rank_prefix(self) -> str:
        return self.base + "rank:"

    def rank(self, category: str) -> str:
        return self.rank_prefix + category
