"""Every trigger, the cooldown, and the decision's label."""

from __future__ import annotations

from datetime import date

import pytest

from optimization.core.rebalancing import TriggerPolicy, evaluate_triggers

from .factories import make_context, make_inputs, make_policy

# Weights 66/17/10/7 % against 60/20/10/10 %: A and D outside their 5/25 bands, drift 6 %.
DRIFTED = {"A": (66, 100, 0.6), "B": (17, 100, 0.2), "C": (10, 100, 0.1), "D": (7, 100, 0.1)}
ON_TARGET = {"A": (60, 100, 0.6), "B": (40, 100, 0.4)}
DAY = date(2026, 11, 20)  # a Friday


def decide(holdings, triggers: TriggerPolicy, *, as_of=DAY, last=None, manual=False, **inputs):
    context = make_context(make_inputs(holdings, **inputs), make_policy(triggers=triggers))
    return evaluate_triggers(context, as_of=as_of, last_rebalance=last, manual=manual)


def test_band_names_the_most_urgent_holding_and_counts_the_rest():
    # A: 6 pp / 5 pp = 1.2; D: 3 pp / 2.5 pp = 1.2 as well, A comes first. Make D more urgent.
    holdings = {**DRIFTED, "B": (18, 100, 0.2), "D": (6, 100, 0.1)}
    decision = decide(holdings, TriggerPolicy())
    assert decision.rebalance and decision.fired == ("band",)
    assert decision.reasons == ("D 4.0 pp under target (band 2.5 pp) and 1 more",)
    assert decision.label == "D 4.0 pp under target (band 2.5 pp) and 1 more"


def test_band_with_one_holding_outside_has_no_count():
    holdings = {"A": (64, 100, 0.6), "B": (30, 100, 0.3), "C": (6, 100, 0.1)}
    assert decide(holdings, TriggerPolicy()).reasons == ("C 4.0 pp under target (band 2.5 pp)",)


def test_band_trigger_off():
    assert not decide(DRIFTED, TriggerPolicy(band_trigger=False)).rebalance


def test_nothing_fires():
    decision = decide(ON_TARGET, TriggerPolicy(drift_threshold=0.03, cash_trigger_weight=0.05))
    assert decision.rebalance is False and decision.fired == () and decision.blocked_by is None
    assert decision.label == "no action needed"


def test_drift_at_or_above_the_threshold():
    decision = decide(DRIFTED, TriggerPolicy(band_trigger=False, drift_threshold=0.06))
    assert decision.fired == ("drift",)
    assert decision.reasons == ("portfolio drift 6.0% at or above 6.0%",)
    assert not decide(DRIFTED, TriggerPolicy(band_trigger=False, drift_threshold=0.061)).rebalance


@pytest.mark.parametrize(
    ("calendar", "last", "fires"),
    [
        ("daily", date(2026, 11, 20), False),
        ("daily", date(2026, 11, 19), True),
        ("weekly", date(2026, 11, 16), False),  # Monday of the same ISO week
        ("weekly", date(2026, 11, 15), True),  # the Sunday before
        ("monthly", date(2026, 11, 1), False),
        ("monthly", date(2026, 10, 31), True),
        ("quarterly", date(2026, 10, 1), False),
        ("quarterly", date(2026, 9, 30), True),
        ("annually", date(2026, 1, 1), False),
        ("annually", date(2025, 12, 31), True),
    ],
)
def test_calendar_periods(calendar, last, fires):
    decision = decide(ON_TARGET, TriggerPolicy(calendar=calendar), last=last)
    assert decision.rebalance is fires
    if fires:
        assert decision.fired == ("calendar",)
        assert decision.reasons[0].startswith(f"{calendar} calendar: new ")
        assert decision.reasons[0].endswith(f"since the last rebalance on {last.isoformat()}")


def test_weekly_calendar_across_a_year_boundary_uses_iso_weeks():
    # 2026-12-31 (Thursday) and 2027-01-01 (Friday) are in the same ISO week 53 of 2026.
    same_week = decide(ON_TARGET, TriggerPolicy(calendar="weekly"), as_of=date(2027, 1, 1), last=date(2026, 12, 31))
    assert not same_week.rebalance


def test_calendar_fires_without_a_previous_rebalance():
    decision = decide(ON_TARGET, TriggerPolicy(calendar="quarterly"))
    assert decision.reasons == ("quarterly calendar: no rebalance yet",)


def test_cash_above_the_buffer_as_a_share_of_value():
    # 9,000 invested on target + 1,000 cash: 10% of value above a 0 buffer.
    holdings = {"A": (54, 100, 0.6), "B": (36, 100, 0.4)}
    assert (
        decide(holdings, TriggerPolicy(band_trigger=False, cash_trigger_weight=0.1), cash_usd=1000).rebalance is False
    )
    decision = decide(holdings, TriggerPolicy(band_trigger=False, cash_trigger_weight=0.05), cash_usd=1000)
    assert decision.fired == ("cash",)
    assert decision.reasons == ("cash $1,000 above the buffer (over 5.0% of value)",)


def test_cash_above_the_buffer_in_dollars_counts_the_deposit():
    holdings = {"A": (54, 100, 0.6), "B": (36, 100, 0.4)}
    decision = decide(
        holdings, TriggerPolicy(band_trigger=False, cash_trigger_usd=500), cash_usd=300, cash_flow_usd=400
    )
    assert decision.reasons == ("cash $700 above the buffer (over $500)",)
    assert not decide(
        holdings, TriggerPolicy(band_trigger=False, cash_trigger_usd=700), cash_usd=300, cash_flow_usd=400
    ).rebalance


def test_cash_trigger_measures_above_the_buffer():
    holdings = {"A": (54, 100, 0.6), "B": (36, 100, 0.4)}
    context = make_context(
        make_inputs(holdings, cash_usd=1000),
        make_policy(triggers=TriggerPolicy(band_trigger=False, cash_trigger_usd=500), cash_buffer_weight=0.06),
    )
    # 1,000 cash - 6% x 10,000 buffer = 400 above it: below the 500 limit.
    assert not evaluate_triggers(context, as_of=DAY, last_rebalance=None, manual=False).rebalance


def test_manual_always_fires():
    decision = decide(ON_TARGET, TriggerPolicy(), manual=True)
    assert decision.rebalance and decision.fired == ("manual",) and decision.label == "manual request"


def test_several_triggers_in_order():
    triggers = TriggerPolicy(drift_threshold=0.03, calendar="monthly")
    decision = decide(DRIFTED, triggers, last=date(2026, 10, 2), manual=True)
    assert decision.fired == ("band", "drift", "calendar", "manual")
    assert decision.label == "; ".join(decision.reasons)


def test_cooldown_blocks_every_trigger():
    triggers = TriggerPolicy(drift_threshold=0.03, calendar="daily", cooldown_days=5)
    decision = decide(DRIFTED, triggers, last=date(2026, 11, 18))
    assert decision.rebalance is False and decision.fired == ()
    assert decision.blocked_by == "cooldown: last rebalance on 2026-11-18, 2 of 5 days"
    assert decision.label == decision.blocked_by


def test_cooldown_ends_after_its_days():
    triggers = TriggerPolicy(cooldown_days=5)
    assert decide(DRIFTED, triggers, last=date(2026, 11, 15)).rebalance  # 5 days later
    assert not decide(DRIFTED, triggers, last=date(2026, 11, 16)).rebalance  # 4 days later
    assert decide(DRIFTED, triggers, last=None).rebalance  # no last rebalance, no cooldown


def test_manual_overrides_the_cooldown():
    decision = decide(DRIFTED, TriggerPolicy(cooldown_days=5), last=date(2026, 11, 19), manual=True)
    assert decision.rebalance and decision.fired == ("band", "manual") and decision.blocked_by is None


def test_a_withdrawal_beyond_cash_fires_even_in_the_cooldown():
    decision = decide(
        ON_TARGET, TriggerPolicy(cooldown_days=5), last=date(2026, 11, 19), cash_usd=100, cash_flow_usd=-400
    )
    assert decision.rebalance and decision.fired == ("cash",)
    assert decision.reasons == ("the $400 withdrawal needs $300 more than the cash held",)


def test_a_withdrawal_paid_from_cash_fires_nothing():
    assert not decide(ON_TARGET, TriggerPolicy(), cash_usd=500, cash_flow_usd=-400).rebalance
