"""What the public nominee listing needs from domains built on nominations, registered by them;
and what a result needs of the patients' answers (群众评议), which appraisal registers.

Voting and media build on nominations' models, so nominations cannot import them: voting
registers its counts and its view counter (voting.init_app), media its public URLs
(media.init_app). Until they do, the listing shows no counts and no media, and counts no views.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from campaigns.models import Campaign

# {number: {"votes": …, "rank": …}} for (number, category code) pairs.
CountsReader = Callable[[Campaign, list[tuple[str, str]]], dict[str, dict[str, int]]]
# {nomination id: {"photo_url": …, "video": …}} for nomination ids.
MediaReader = Callable[[list[int]], dict[int, dict[str, Any]]]
# {nomination id: (answers counted, of which satisfied)} for a campaign's nominees.
SatisfactionReader = Callable[[Campaign], dict[int, tuple[int, int]]]


def _counts_always_hidden(campaign: Campaign) -> bool:
    return True


def _no_counts(campaign: Campaign, nominees: list[tuple[str, str]]) -> dict[str, dict[str, int]]:
    return {}


def _no_view_counter(slug: str, number: str) -> None:
    return None


def _no_media(nomination_ids: list[int]) -> dict[int, dict[str, Any]]:
    return {}


def _no_satisfaction(campaign: Campaign) -> dict[int, tuple[int, int]]:
    return {}


@dataclass
class _Providers:
    counts_hidden: Callable[[Campaign], bool] = _counts_always_hidden
    vote_counts: CountsReader = _no_counts
    count_view: Callable[[str, str], None] = _no_view_counter
    public_media: MediaReader = _no_media
    satisfaction: SatisfactionReader = _no_satisfaction


_providers = _Providers()


def register_counts(
    *, counts_hidden: Callable[[Campaign], bool], vote_counts: CountsReader
) -> None:
    """Whether a campaign hides its counts now, and the live counts of some nominees."""
    _providers.counts_hidden = counts_hidden
    _providers.vote_counts = vote_counts


def register_view_counter(count_view: Callable[[str, str], None]) -> None:
    """Told of every public nominee page view during voting (slug, number)."""
    _providers.count_view = count_view


def register_media(public_media: MediaReader) -> None:
    """The public photo and video of nominations."""
    _providers.public_media = public_media


def register_satisfaction(satisfaction: SatisfactionReader) -> None:
    """The patients' answers naming each nominee (appraisal.init_app); awards reads them for a
    result's satisfaction component. Until registered, no nominee has answers."""
    _providers.satisfaction = satisfaction


def counts_hidden(campaign: Campaign) -> bool:
    return _providers.counts_hidden(campaign)


def vote_counts(campaign: Campaign, nominees: list[tuple[str, str]]) -> dict[str, dict[str, int]]:
    return _providers.vote_counts(campaign, nominees)


def count_view(slug: str, number: str) -> None:
    _providers.count_view(slug, number)


def public_media(nomination_ids: list[int]) -> dict[int, dict[str, Any]]:
    return _providers.public_media(nomination_ids)


def satisfaction_counts(campaign: Campaign) -> dict[int, tuple[int, int]]:
    return _providers.satisfaction(campaign)
