"""demo_setup: what `make demo` runs on a fresh database, twice in a row."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from brokers.models import BrokerAccount, PaperOrder
from optimization.models import OptimizationResult, TargetAllocation
from portfolios.models import Portfolio, RebalanceRun

pytestmark = pytest.mark.django_db


def run() -> str:
    out = io.StringIO()
    call_command("demo_setup", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_demo_setup_creates_two_investors_and_plans_idempotently(settings, tmp_path) -> None:
    settings.TICKERS = ["SPY", "QQQ", "BND"]
    settings.STORAGE_PATH = tmp_path
    first = run()
    assert "Demo login created: administrator 'demo'" in first
    assert "Demo login created: user 'demo-retiree'" in first
    # Kept for the banner `make serve` prints last, readable by the owner only.
    logins = (tmp_path / "demo-logins.txt").read_text().splitlines()
    assert [line.split(" / ")[0] for line in logins] == ["demo", "demo-retiree"]
    assert logins[0].endswith("(administrator)") and f"password '{logins[0].split(' / ')[1].split(' ')[0]}'" in first
    assert (tmp_path / "demo-logins.txt").stat().st_mode & 0o777 == 0o600
    young = Portfolio.objects.get(owner__username="demo", name="Demo portfolio")
    retiree = Portfolio.objects.get(owner__username="demo-retiree", name="Retirement portfolio")
    assert (young.age, retiree.age) == (30, 63)
    for portfolio in (young, retiree):
        assert sorted(portfolio.instruments.values_list("symbol", flat=True)) == ["BND", "QQQ", "SPY"]
        assert portfolio.holdings.count() == 3 and portfolio.cash_usd > 0
        assert portfolio.broker_account.kind == BrokerAccount.Kind.PAPER
        allocation = TargetAllocation.objects.get(portfolio=portfolio)
        assert sum(allocation.result.weights().values()) == Decimal(1)
        run_row = RebalanceRun.objects.get(portfolio=portfolio)
        assert run_row.status == RebalanceRun.Status.EXECUTED and run_row.trades.exists()
        assert f"Rebalancing plan for '{portfolio.name}'" in first
        # Executed on the paper account: every order filled, the portfolio holds what the broker holds.
        assert {o.state for o in run_row.orders.all()} == {"filled"}
        assert run_row.orders.count() == run_row.trades.count()
        paper = portfolio.broker_account.paper
        held = {h.instrument.symbol: h.quantity for h in portfolio.holdings.select_related("instrument")}
        assert held == {p.symbol: p.quantity for p in paper.positions.all()}
        portfolio.refresh_from_db()
        assert portfolio.cash_usd == paper.cash_usd
    # The glide path gives the older investor a smaller aggressive (equity) share.
    shares = {p.name: TargetAllocation.objects.get(portfolio=p).result.equity_share for p in (young, retiree)}
    assert shares["Retirement portfolio"] < shares["Demo portfolio"]
    assert "Trades (sells first):" in first and "synthetic prices" in first
    assert first.count("Positions after (synced from the broker):") == 2
    orders = PaperOrder.objects.count()

    second = run()
    assert "Demo login: user 'demo' exists" in second and "Demo login: user 'demo-retiree' exists" in second
    assert get_user_model().objects.count() == 2
    assert Portfolio.objects.count() == 2 and RebalanceRun.objects.count() == 2
    assert "already planned as run" in second
    assert second.count(": already executed") == 2 and PaperOrder.objects.count() == orders
    assert OptimizationResult.objects.count() == 2  # same inputs: the stored results are reused
    assert TargetAllocation.objects.get(portfolio=young).reused is True
