"""The scan's working copy of a campaign: votes sorted by time as parallel columns, names
interned as small integers, per-nominee time lists, page views with prefix sums, and the
campaign's daily rhythm. Built once per scan (one pass over the rows) and shared by every rule."""

from __future__ import annotations

import ipaddress
import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import cached_property
from itertools import accumulate
from operator import attrgetter
from statistics import median

from .model import VoteRow

HOUR = 3600.0
DAY = 86400.0


def address_prefix(ip: str) -> str:
    """The network a voter's address belongs to: IPv4 /24, IPv6 /64 (mapped IPv4 as IPv4)."""
    head, dot, _ = ip.rpartition(".")
    if dot and ":" not in ip and head.count(".") == 2:
        return f"{head}.0/24"
    try:
        address = ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        return ip  # not an address: group it by its own text
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_prefix(str(address.ipv4_mapped))
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(ipaddress.IPv4Network((int(address) >> 8 << 8, 24)))


class _Interner:
    __slots__ = ("index", "names")

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []

    def column(self, values: Sequence[str]) -> list[int]:
        """Codes for ``values`` (first seen, first coded); one C-speed pass for the names."""
        index, names = self.index, self.names
        for value in dict.fromkeys(values):
            if value not in index:
                index[value] = len(names)
                names.append(value)
        return [index[v] for v in values]


class Campaign:
    """Columns (index i = the i-th vote in time order) and shared baselines."""

    def __init__(
        self,
        votes: Sequence[VoteRow],
        views: Mapping[tuple[str, int], int] | None,
        tz_offset_hours: float,
    ) -> None:
        rows = [v for v in votes if v.status != "invalid"]
        rows.sort(key=attrgetter("at"))
        self.n = n = len(rows)
        self.tz = tz_offset_hours * HOUR
        self.ids: list[str] = [r.id for r in rows]
        self.at: list[float] = [float(r.at) for r in rows]
        self.voter: list[int] = [r.voter_id for r in rows]
        self.created: list[float | None] = [r.voter_created_at for r in rows]

        nominees, categories, ips, prefixes = _Interner(), _Interner(), _Interner(), _Interner()
        self.nom = nominees.column([r.nominee for r in rows])
        self.cat = categories.column([r.category for r in rows])
        self.ip = ips.column([r.ip for r in rows])
        self.nominees, self.categories, self.ips = nominees.names, categories.names, ips.names
        ip_prefix = prefixes.column([address_prefix(ip) for ip in self.ips])
        self.pfx = [ip_prefix[code] for code in self.ip]
        self.prefixes = prefixes.names
        self.ip_prefix = ip_prefix

        devices, uas = _Interner(), _Interner()
        self.dev = devices.column([r.device or "" for r in rows])
        self.ua = uas.column([r.user_agent or "" for r in rows])
        self.devices, self.uas = devices.names, uas.names
        self.no_device = devices.index.get("", -1)
        self.no_ua = uas.index.get("", -1)

        # per nominee: vote indices and times, in time order; its category (first seen)
        self.by_nominee: list[list[int]] = [[] for _ in self.nominees]
        for i, code in enumerate(self.nom):
            self.by_nominee[code].append(i)
        at = self.at
        self.nominee_times = [[at[i] for i in idx] for idx in self.by_nominee]
        self.nominee_category = [self.cat[idx[0]] for idx in self.by_nominee]
        self.t0 = at[0] if n else 0.0
        self.t1 = at[-1] if n else 0.0
        self.span = max(self.t1 - self.t0, 60.0)

        # page views per nominee: sorted minutes with prefix sums
        self.has_views = False
        self.view_from = self.view_to = 0.0
        self.view_minutes: list[list[int]] = [[] for _ in self.nominees]
        self.view_cum: list[list[int]] = [[0] for _ in self.nominees]
        if views:
            per: list[dict[int, int]] = [{} for _ in self.nominees]
            index = nominees.index
            for (number, minute), count in views.items():
                code = index.get(number)
                if code is not None and count:
                    bucket = per[code]
                    bucket[int(minute)] = bucket.get(int(minute), 0) + int(count)
            for code, bucket in enumerate(per):
                minutes = sorted(bucket)
                self.view_minutes[code] = minutes
                self.view_cum[code] = [0, *accumulate(bucket[m] for m in minutes)]
            counted = [m for m in self.view_minutes if m]
            self.has_views = bool(counted)
            if counted:
                # views are known from the first counted minute to the last (counting may have
                # started mid-campaign): outside that span they are missing, not zero
                self.view_from = min(m[0] for m in counted) * 60.0
                self.view_to = (max(m[-1] for m in counted) + 1) * 60.0

    @cached_property
    def day(self) -> list[int]:
        """Local day number of each vote."""
        tz = self.tz
        return [int((t + tz) // DAY) for t in self.at]

    @cached_property
    def hour(self) -> list[int]:
        """Local hour (0–23) of each vote."""
        tz = self.tz
        return [int(((t + tz) % DAY) // HOUR) for t in self.at]

    @cached_property
    def by_voter(self) -> dict[int, list[int]]:
        """Each voter's vote indices, in time order."""
        out: defaultdict[int, list[int]] = defaultdict(list)
        for i, v in enumerate(self.voter):
            out[v].append(i)
        return dict(out)

    # --- windows -------------------------------------------------------------------------------

    def nominee_votes_between(self, nominee: int, start: float, end: float) -> int:
        times = self.nominee_times[nominee]
        return bisect_right(times, end) - bisect_left(times, start)

    def views_between(self, nominee: int, start: float, end: float) -> int:
        """Page views in the minutes from ``start`` to ``end`` (both minutes included)."""
        minutes = self.view_minutes[nominee]
        lo = bisect_left(minutes, int(start // 60))
        hi = bisect_right(minutes, int(end // 60))
        cum = self.view_cum[nominee]
        return cum[hi] - cum[lo]

    def all_views_between(self, start: float, end: float) -> int:
        """Every nominee's page views in the minutes from ``start`` to ``end``."""
        return sum(self.views_between(m, start, end) for m in range(len(self.nominees)))

    def views_cover(self, start: float, end: float) -> bool:
        return self.has_views and self.view_from <= start and end <= self.view_to

    def local_hour(self, t: float) -> int:
        return int(((t + self.tz) % DAY) // HOUR)

    def local_day(self, t: float) -> int:
        return int((t + self.tz) // DAY)

    # --- baselines -----------------------------------------------------------------------------

    @cached_property
    def views_per_vote(self) -> list[float | None]:
        """Each nominee's usual page views per vote, robust to a minority of attacked hours:
        the pooled ratio over hours whose own ratio is not far below the median hour's."""
        if not self.has_views:
            return [None] * len(self.nominees)
        campaign_votes = campaign_views = 0
        out: list[float | None] = []
        hourly: list[tuple[dict[int, int], dict[int, int]]] = []
        for code, times in enumerate(self.nominee_times):
            votes: dict[int, int] = {}
            for t in times:
                h = int(t // HOUR)
                votes[h] = votes.get(h, 0) + 1
            views: dict[int, int] = {}
            cum = self.view_cum[code]
            for k, minute in enumerate(self.view_minutes[code]):
                h = minute // 60
                views[h] = views.get(h, 0) + cum[k + 1] - cum[k]
            hourly.append((votes, views))
            campaign_votes += len(times)
            campaign_views += cum[-1]
        fallback = campaign_views / campaign_votes if campaign_votes and campaign_views else None
        first, last = int(self.view_from // HOUR), int(self.view_to // HOUR) - 1
        for votes, views in hourly:
            hours = {h for h in set(votes) | set(views) if first <= h <= last}
            ratios = [views.get(h, 0) / votes[h] for h in hours if votes.get(h, 0) >= 1]
            total_votes = sum(votes.get(h, 0) for h in hours)
            total_views = sum(views.get(h, 0) for h in hours)
            if total_votes >= 20 and not total_views:
                out.append(None)  # votes but never a counted view: views unusable for it
                continue
            if len(ratios) < 6:
                out.append(total_views / total_votes if total_votes >= 20 else fallback)
                continue
            floor = median(ratios) / 3
            kept_votes = kept_views = 0
            for h in hours:
                v = votes.get(h, 0)
                w = views.get(h, 0)
                if v == 0 or w / v >= floor:
                    kept_votes += v
                    kept_views += w
            out.append(kept_views / kept_votes if kept_votes and kept_views else fallback)
        return out

    @cached_property
    def hour_profile(self) -> list[float]:
        """Share of a day's votes in each local hour: the median over days (whole days only)."""
        days: defaultdict[int, list[int]] = defaultdict(lambda: [0] * 24)
        for day, hour in zip(self.day, self.hour, strict=True):
            days[day][hour] += 1
        first, last = self.local_day(self.t0), self.local_day(self.t1)
        whole = [c for d, c in days.items() if first < d < last and sum(c) >= 24]
        if len(whole) < 2:
            whole = [c for c in days.values() if sum(c) >= 24] or [[1] * 24]
        shares = [[c[h] / sum(c) for c in whole] for h in range(24)]
        profile = [median(s) for s in shares]
        total = sum(profile)
        if total <= 0:
            return [1 / 24] * 24
        return [p / total for p in profile]

    @cached_property
    def days_known(self) -> int:
        return len(set(self.day))

    @cached_property
    def ua_voter_shares(self) -> tuple[dict[int, float], float, int]:
        """Each user agent's share of voters (a voter counted with its first agent)."""
        first: dict[int, int] = {}
        for voter, ua in zip(self.voter, self.ua, strict=True):
            if voter not in first:
                first[voter] = ua
        counts: dict[int, int] = {}
        for ua in first.values():
            counts[ua] = counts.get(ua, 0) + 1
        total = max(len(first), 1)
        return {ua: c / total for ua, c in counts.items()}, float(total), len(first)

    @cached_property
    def ua_expected_table(self) -> tuple[list[float], float]:
        shares = sorted(self.ua_voter_shares[0].values(), reverse=True)
        head = shares[:2000]
        return head, sum(shares[2000:])

    def expected_distinct_uas(self, k: int) -> float:
        """How many distinct agents k voters drawn from the campaign would show."""
        head, tail = self.ua_expected_table
        total = sum(1 - (1 - p) ** k for p in head)
        return total + min(tail * k, tail * len(self.uas))


def clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo if x < lo else hi if x > hi else x


def saturate(ratio: float) -> float:
    """0 at ratio 0, 0.5 at 1, → 1: how far past a threshold a figure is."""
    return 1 - 0.5**ratio if ratio > 0 else 0.0


def robust_cv(gaps: Sequence[float]) -> float:
    if len(gaps) < 3:
        return math.inf
    mid = median(gaps)
    if mid <= 0:
        return math.inf
    mad = median(abs(g - mid) for g in gaps)
    return 1.4826 * mad / mid
