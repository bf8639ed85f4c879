"""Whether the policy allows a rebalance on a given day, and the sentence that says why.

Triggers, in the order they are reported: "band" (a holding outside its band), "drift"
(portfolio drift at or above the threshold), "calendar" (a new day / ISO week / month /
quarter / year since the last rebalance, or none yet), "cash" (cash above the buffer beyond
the policy's limits, or a withdrawal larger than the cash held), "manual" (a request).

The cooldown blocks every trigger except a manual request and a withdrawal that cash cannot
pay: both are the owner asking for it, and a plan that ignored the withdrawal would leave cash
negative.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from .arrays import any_true
from .inputs import PlanContext
from .needs import format_usd, holding_sentences
from .results import TriggerDecision

_PERIOD_NAMES = {
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "quarterly": "quarter",
    "annually": "year",
}


def calendar_period(day: date, calendar: str) -> tuple[int, ...]:
    """The period ``day`` falls in: (year, ISO week) for weekly, (year, quarter) for quarterly, ..."""
    if calendar == "daily":
        return (day.toordinal(),)
    if calendar == "weekly":
        iso = day.isocalendar()
        return (iso.year, iso.week)
    if calendar == "monthly":
        return (day.year, day.month)
    if calendar == "quarterly":
        return (day.year, (day.month - 1) // 3)
    return (day.year,)


def _band_reason(context: PlanContext) -> str | None:
    outside = context.outside
    if not any_true(outside):
        return None
    urgency = np.where(outside, np.abs(context.deviations) / context.bands, -np.inf)
    first = int(np.argmax(urgency))
    sentence = holding_sentences(context, [first])[0]
    more = int(np.count_nonzero(outside)) - 1
    return f"{sentence} and {more} more" if more else sentence


def _drift_reason(context: PlanContext) -> str | None:
    threshold = context.policy.triggers.drift_threshold
    if threshold is None or context.drift < threshold - 1e-12:
        return None
    return f"portfolio drift {context.drift:.1%} at or above {threshold:.1%}"


def _calendar_reason(context: PlanContext, as_of: date, last_rebalance: date | None) -> str | None:
    calendar = context.policy.triggers.calendar
    if calendar is None:
        return None
    if last_rebalance is None:
        return f"{calendar} calendar: no rebalance yet"
    if calendar_period(as_of, calendar) <= calendar_period(last_rebalance, calendar):
        return None
    return (
        f"{calendar} calendar: new {_PERIOD_NAMES[calendar]} since the last rebalance on {last_rebalance.isoformat()}"
    )


def _cash_reason(context: PlanContext) -> str | None:
    triggers = context.policy.triggers
    excess = context.available_cash_usd - context.cash_target * context.total_usd
    limits = []
    if triggers.cash_trigger_weight is not None and excess > triggers.cash_trigger_weight * context.total_usd:
        limits.append(f"over {triggers.cash_trigger_weight:.1%} of value")
    if triggers.cash_trigger_usd is not None and excess > triggers.cash_trigger_usd:
        limits.append(f"over {format_usd(triggers.cash_trigger_usd)}")
    if not limits:
        return None
    return f"cash {format_usd(excess)} above the buffer ({', '.join(limits)})"


def _withdrawal_reason(context: PlanContext) -> str | None:
    if context.available_cash_usd >= 0:
        return None
    flow = context.inputs.cash_flow_usd
    return f"the {format_usd(flow)} withdrawal needs {format_usd(-context.available_cash_usd)} more than the cash held"


def evaluate_triggers(
    context: PlanContext, *, as_of: date, last_rebalance: date | None, manual: bool
) -> TriggerDecision:
    """Which triggers fire on ``as_of`` (see the module docstring) and whether to rebalance.

    Within ``cooldown_days`` calendar days of ``last_rebalance`` nothing fires (``rebalance``
    False, ``blocked_by`` says until when), unless ``manual`` or a withdrawal exceeds the cash.
    """
    withdrawal = _withdrawal_reason(context)
    cooldown = context.policy.triggers.cooldown_days
    if last_rebalance is not None and not manual and withdrawal is None:
        elapsed = (as_of - last_rebalance).days
        if elapsed < cooldown:
            return TriggerDecision(
                rebalance=False,
                blocked_by=f"cooldown: last rebalance on {last_rebalance.isoformat()}, {elapsed} of {cooldown} days",
            )
    found: list[tuple[str, str]] = []
    if context.policy.triggers.band_trigger and (reason := _band_reason(context)):
        found.append(("band", reason))
    if reason := _drift_reason(context):
        found.append(("drift", reason))
    if reason := _calendar_reason(context, as_of, last_rebalance):
        found.append(("calendar", reason))
    if reason := withdrawal or _cash_reason(context):
        found.append(("cash", reason))
    if manual:
        found.append(("manual", "manual request"))
    if not found:
        return TriggerDecision(rebalance=False)
    return TriggerDecision(
        rebalance=True,
        fired=tuple(name for name, _ in found),
        reasons=tuple(reason for _, reason in found),
    )
