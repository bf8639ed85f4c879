"""The execute and sync_positions commands, as an operator runs them."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from brokers.models import PaperOrder, PaperPosition
from brokers.services.controls import kill_switch_set

from .execution_factories import paper_portfolio, planned_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_waits(settings):
    settings.EXECUTION_WAIT_SECONDS = 0.2
    settings.EXECUTION_POLL_SECONDS = 0.01


@pytest.fixture
def portfolio(prices, clock):
    return paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, mode="propose")


def execute(*args: str) -> str:
    out = io.StringIO()
    call_command("execute", *args, stdout=out)
    return out.getvalue()


def test_the_default_is_a_dry_run_that_lists_checks_and_orders(portfolio):
    run = planned_run(portfolio)
    out = execute("--run", str(run.pk))
    assert "dry run: nothing sent" in out and "ok   market_open" in out
    assert "Orders it would send" in out and "sell SPY" in out and "buy  BND" in out
    assert PaperOrder.objects.count() == 0


def test_submit_sends_prints_fills_and_positions(portfolio):
    run = planned_run(portfolio)
    out = execute("--portfolio", str(portfolio.pk), "--date", "2025-06-30", "--submit")
    assert f"Run {run.pk} (Core, 2025-06-30)" in out and ": executed" in out
    assert "filled" in out and "Positions after (synced from the broker):" in out
    assert PaperOrder.objects.count() == 2


def test_a_stopped_run_exits_3_with_the_reason(portfolio):
    run = planned_run(portfolio)
    kill_switch_set(active=True, reason="maintenance")
    with pytest.raises(
        CommandError, match="not executed: kill_switch: kill switch on for everyone: maintenance"
    ) as raised:
        execute("--run", str(run.pk), "--submit")
    assert raised.value.returncode == 3


def test_unknown_runs_and_missing_runs_exit_2(portfolio):
    with pytest.raises(CommandError, match="run 999 does not exist") as raised:
        execute("--run", "999")
    assert raised.value.returncode == 2
    with pytest.raises(CommandError, match="has no run for 2025-06-30: plan one with"):
        execute("--portfolio", str(portfolio.pk), "--date", "2025-06-30")


def test_sync_positions_lists_what_changed(portfolio):
    PaperPosition.objects.filter(symbol="SPY").update(quantity=Decimal(3))
    out = io.StringIO()
    call_command("sync_positions", "--portfolio", str(portfolio.pk), stdout=out)
    text = out.getvalue()
    assert "1 change(s)" in text and "SPY" in text and "-> 3" in text
    assert portfolio.holdings.get(instrument__symbol="SPY").quantity == Decimal(3)
