"""Scoring a replayed mix, per scenario and counted per vote.

A vote is *caught* when it was refused at the door (any refusal, the identity's or the vote's,
including 428 challenge_required: an unsolved captcha is a vote that did not land), held as
pending, or named by a flag a committee sees by default (``GET …/fraud/flags`` without a
filter; severities low, medium and high — anything else, such as a 观察 watch tier, is shown
apart and not counted). For organic scenarios the caught share is the false-positive rate, for
attacks the recall; overall precision is caught attack votes over all caught votes. Everything
is counted again with medium/high flags only (refusals and holds still count). Votes that met a
server or network error are reported and left out of the rates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from bench.fraud_scenarios import SCENARIOS
from bench.fraud_scenarios.base import Attempt

COUNTED = ("low", "medium", "high")
STRONG = ("medium", "high")


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def score(
    attempts: Sequence[Attempt],
    outcomes: Sequence[dict[str, Any] | None],
    flags: Iterable[dict[str, Any]],
    *,
    mode: str,
) -> dict[str, Any]:
    """``outcomes[i]`` belongs to ``attempts[i]``: ``{"vote_id", "status"}`` for a vote the
    server took, ``{"refused": code}``, ``{"error": text}``, or None for a page view only.
    ``flags``: dicts with ``rule``, ``severity`` and ``vote_ids`` (every vote the flag names)."""
    flags = list(flags)
    named = {v for f in flags if f["severity"] in COUNTED for v in f["vote_ids"]}
    labels: dict[str, list[str]] = {}  # vote id -> the flags naming it, as rule/severity
    for f in flags:
        for v in f["vote_ids"]:
            labels.setdefault(v, []).append(f"{f['rule']}/{f['severity']}")
    named_strong = {v for f in flags if f["severity"] in STRONG for v in f["vote_ids"]}
    rows: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(a.scenario for a in attempts if not a.view_only):
        rows[name] = {
            "kind": "attack" if SCENARIOS[name].ATTACK else "organic",
            "votes": 0,
            "errors": 0,
            "refused": 0,
            "held": 0,
            "flagged": 0,
            "flagged_mh": 0,
            "caught": 0,
            "caught_mh": 0,
            "refusals": Counter(),
            "by_flag": Counter(),
            "error_kinds": Counter(),
        }
    for attempt, outcome in zip(attempts, outcomes, strict=True):
        if attempt.view_only:
            continue
        row = rows[attempt.scenario]
        row["votes"] += 1
        if outcome is None or "error" in outcome:
            row["errors"] += 1
            row["error_kinds"][(outcome or {}).get("error", "no answer")] += 1
            continue
        if "refused" in outcome:
            row["refused"] += 1
            row["refusals"][outcome["refused"]] += 1
            row["caught"] += 1
            row["caught_mh"] += 1
            continue
        held = outcome.get("status") == "pending"
        row["by_flag"].update(set(labels.get(outcome["vote_id"], ())))
        row["held"] += held
        flagged = outcome["vote_id"] in named
        strong = outcome["vote_id"] in named_strong
        row["flagged"] += flagged
        row["flagged_mh"] += strong
        row["caught"] += held or flagged
        row["caught_mh"] += held or strong
    totals = Counter[str]()
    for row in rows.values():
        counted = row["votes"] - row["errors"]
        row["rate"] = _ratio(row["caught"], counted)
        row["rate_mh"] = _ratio(row["caught_mh"], counted)
        row["refusals"] = dict(row["refusals"])
        row["by_flag"] = dict(sorted(row["by_flag"].items()))
        row["error_kinds"] = dict(row["error_kinds"])
        attack = row["kind"] == "attack"
        totals["votes"] += row["votes"]
        totals["organic_votes"] += 0 if attack else row["votes"]
        totals["caught"] += row["caught"]
        totals["caught_mh"] += row["caught_mh"]
        totals["caught_attack"] += row["caught"] if attack else 0
        totals["caught_attack_mh"] += row["caught_mh"] if attack else 0
    return {
        "mode": mode,
        "scenarios": rows,
        "totals": dict(totals),
        "organic_share": _ratio(totals["organic_votes"], totals["votes"]),
        "precision": _ratio(totals["caught_attack"], totals["caught"]),
        "precision_mh": _ratio(totals["caught_attack_mh"], totals["caught_mh"]),
        "flags": dict(Counter(f"{f['rule']}/{f['severity']}" for f in flags)),
        "uncounted_flags": sum(1 for f in flags if f["severity"] not in COUNTED),
    }


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{value * 100:5.1f}%"


def table(report: dict[str, Any]) -> str:
    """The report as a fixed-width table (rate: FPR for organic scenarios, recall for attacks)."""
    head = (
        f"{'scenario':<17}{'kind':<8}{'votes':>6}{'err':>5}{'refused':>8}{'held':>6}"
        f"{'flagged':>8}{'rate':>8}{'flag m/h':>9}{'rate m/h':>9}"
    )
    lines = [head, "-" * len(head)]
    rows = sorted(report["scenarios"].items(), key=lambda kv: (kv[1]["kind"] != "organic", kv[0]))
    for name, row in rows:
        lines.append(
            f"{name:<17}{row['kind']:<8}{row['votes']:>6}{row['errors']:>5}{row['refused']:>8}"
            f"{row['held']:>6}{row['flagged']:>8}{_pct(row['rate']):>8}{row['flagged_mh']:>9}"
            f"{_pct(row['rate_mh']):>9}"
        )
    lines.append("-" * len(head))
    precision, strong = report["precision"], report["precision_mh"]
    lines.append(
        "overall precision: "
        + ("n/a" if precision is None else f"{precision:.3f}")
        + " (all counted flags), "
        + ("n/a" if strong is None else f"{strong:.3f}")
        + f" (medium/high only); organic share of the mix {report['organic_share']:.3f}"
    )
    refusals = {
        name: row["refusals"] for name, row in report["scenarios"].items() if row["refusals"]
    }
    if refusals:
        lines.append("refusals: " + "; ".join(f"{k} {v}" for k, v in refusals.items()))
    lines.append(f"flags: {dict(sorted(report['flags'].items()))}")
    lines.append("votes named, per scenario and flag (rule/severity):")
    for name, row in rows:
        if row["by_flag"]:
            lines.append(f"  {name:<17}" + ", ".join(f"{k} {v}" for k, v in row["by_flag"].items()))
    return "\n".join(lines)
