"""Who may score whom, on each panel: the jury (评委), peers (同行互评) and leaders (领导点评).

Pure rules, no query: judging applies them to queues and sheets, results to the sheets that
count (awards.components)."""

from __future__ import annotations


def is_conflict(judge_unit_id: int | None, nomination_unit_id: int, declared: bool) -> bool:
    """A judge never scores a nominee of their own unit, nor one they declared a conflict with."""
    return declared or (judge_unit_id is not None and judge_unit_id == nomination_unit_id)


def is_self(
    judge_unit_id: int | None, judge_name: str | None, nomination_unit_id: int, name: str
) -> bool:
    """The judge is the nominee, as far as one can tell: same unit and the same name."""
    return (
        judge_unit_id is not None
        and judge_unit_id == nomination_unit_id
        and (judge_name or "").strip() == name.strip()
    )


def panel_conflict(
    panel: str,
    judge_unit_id: int | None,
    judge_name: str | None,
    nomination_unit_id: int,
    nomination_name: str,
    declared: bool,
) -> bool:
    """Whether a panel member may not score a nominee: a declared conflict, or themselves, on
    every panel; the own-unit rule (``is_conflict``) on the jury and the leaders only, since a
    nominee's own colleagues are exactly who 同行互评 asks."""
    if declared or is_self(judge_unit_id, judge_name, nomination_unit_id, nomination_name):
        return True
    return panel != "peer" and is_conflict(judge_unit_id, nomination_unit_id, False)
