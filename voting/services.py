"""Voting's face: what other domains, the routes and the pages call; each concern has its module.

voting/identity.py     voter identity (device, WeChat through voting/wechat.py), voter tokens
voting/state.py        what the vote script knows about a campaign, published after each commit
voting/cast.py         the vote itself, one Redis round trip (the hot path), and the voter's quota
voting/vote_route.py   the lean view of POST …/votes (its OpenAPI operation written beside it)
voting/marks.py        acknowledged sequence marks (lost votes stay a visible gap)
voting/rewinds.py      the floor kept in the database; a vote Redis that came back behind is seen,
                       lifted, rebuilt (quotas, idempotency answers) and reported
voting/blocks.py       voters the committee blocked (block_routes.py, block_schemas.py: the API)
voting/exports.py      the vote browser's CSV and workbook writers (run as awards export jobs)
voting/counts.py       counts and rankings
voting/ledger.py       the ledger stream, its drain into the hash chain, and the chain's check
voting/reconciliation.py   counters rebuilt from the ledger; lost votes named
voting/challenges.py   captchas and the passes they earn
voting/fraud.py        tallies, fraud scans and flags, committee decisions, the vote browser
voting/holds.py        held votes per nominee, and why a vote has its status (in Chinese)
voting/jobs.py         the job bodies: drain (``drain_campaign`` commits each batch), scans, …
"""

from __future__ import annotations

from voting.cast import cast_vote, my_quota
from voting.challenges import answer_challenge, has_valid_pass, new_challenge
from voting.counts import counts_hidden, counts_seconds, ranking, vote_counts
from voting.fraud import browse_votes, flag_counts, latest_scan, list_flags
from voting.holds import describe_vote_reason, held_votes
from voting.identity import current_voter, device_voter, voter_for, voter_token
from voting.jobs import drain_campaign
from voting.keys import CampaignKeys
from voting.ledger import ledger_health, open_items, verify_chain
from voting.reconciliation import reconcile
from voting.state import sync_campaign

__all__ = [
    "CampaignKeys",
    "answer_challenge",
    "browse_votes",
    "cast_vote",
    "counts_hidden",
    "counts_seconds",
    "current_voter",
    "describe_vote_reason",
    "device_voter",
    "drain_campaign",
    "flag_counts",
    "has_valid_pass",
    "held_votes",
    "latest_scan",
    "ledger_health",
    "list_flags",
    "my_quota",
    "new_challenge",
    "open_items",
    "ranking",
    "reconcile",
    "sync_campaign",
    "verify_chain",
    "vote_counts",
    "voter_for",
    "voter_token",
]
