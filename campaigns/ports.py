"""Rules a campaign's settings must obey that other domains define, registered by them.

Voting owns the fraud detectors and their thresholds, and voting builds on campaigns, so
campaigns cannot import it: voting registers the check of a campaign's ``rules.fraud``
(voting.init_app). Until it does, no detector setting is known, and any is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import ValidationError

# Raises marshmallow.ValidationError for settings it does not know.
FraudSettingsCheck = Callable[[dict[str, Any]], None]


def _no_detectors(settings: dict[str, Any]) -> None:
    for rule in settings:
        raise ValidationError(f"未知的检测规则：{rule}")


_fraud_settings_check: FraudSettingsCheck = _no_detectors


def register_fraud_settings_check(check: FraudSettingsCheck) -> None:
    global _fraud_settings_check
    _fraud_settings_check = check


def check_fraud_settings(settings: dict[str, Any] | None) -> None:
    """Refuse detector thresholds for unknown rules, or unknown settings of a rule."""
    _fraud_settings_check(settings or {})
