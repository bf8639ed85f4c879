"""demo_setup: what `make demo` runs on a fresh database, twice in a row."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from optimization.models import OptimizationResult, TargetAllocation
from portfolios.models import Portfolio

pytestmark = pytest.mark.django_db


def run() -> str:
    out = io.StringIO()
    call_command("demo_setup", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_demo_setup_loads_prices_and_computes_targets_idempotently(settings) -> None:
    settings.TICKERS = ["SPY", "QQQ", "BND"]
    first = run()
    assert "Demo login created: user 'demo'" in first
    portfolio = Portfolio.objects.get(owner__username="demo", name="Demo portfolio")
    assert sorted(portfolio.instruments.values_list("symbol", flat=True)) == ["BND", "QQQ", "SPY"]
    allocation = TargetAllocation.objects.get(portfolio=portfolio)
    assert sum(allocation.result.weights().values()) == Decimal(1)
    assert "Targets for 'Demo portfolio'" in first and "synthetic prices" in first

    second = run()
    assert "Demo login: user 'demo' exists" in second
    assert get_user_model().objects.count() == 1
    assert Portfolio.objects.count() == 1
    assert OptimizationResult.objects.count() == 1  # same inputs: the stored result is reused
    assert TargetAllocation.objects.get(portfolio=portfolio).reused is True
