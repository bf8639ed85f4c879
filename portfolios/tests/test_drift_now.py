"""The drift the dashboard and /metrics show is that of the holdings now, against the latest targets:
an executed run, a sync or an edit of the holdings changes it at once."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from portfolios.models import RebalanceRun
from portfolios.services.execution import execute_run
from portfolios.services.holdings import holdings_replace

from .execution_factories import paper_portfolio, planned_run, shares_worth

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_waits(settings):
    settings.EXECUTION_WAIT_SECONDS = 0.2
    settings.EXECUTION_POLL_SECONDS = 0.01


def dashboard_drift_pct(client, portfolio) -> Decimal:
    page = client.get(reverse("dashboard")).content.decode()
    card = page[page.index(f'id="portfolio-{portfolio.pk}"') :]
    return Decimal(re.search(r"<dt>Drift</dt>\s*<dd><span[^>]*>([-0-9.]+)%</span>", card).group(1))


def metrics_drift(client, portfolio) -> float:
    text = client.get("/metrics").content.decode()
    found = re.search(rf'portfolio_rebalancer_portfolio_drift{{portfolio_id="{portfolio.pk}"}} ([0-9.e+-]+)', text)
    return float(found.group(1))


def test_after_an_executed_run_and_a_holdings_edit_the_drift_is_that_of_the_holdings_now(client, prices, clock):
    # 80% SPY / 20% BND against 60/40 targets: drift 20% until the plan trades.
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    client.force_login(portfolio.owner)
    run = planned_run(portfolio)
    assert run.drift_before == pytest.approx(Decimal("0.2"), abs=Decimal("1e-6"))
    assert dashboard_drift_pct(client, portfolio) == Decimal("20.00")
    assert metrics_drift(client, portfolio) == pytest.approx(0.2, abs=1e-6)

    execute_run(run=run, submit=True)
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.EXECUTED

    # The trades left it on target: the page and the metric say so, not the run's 20% before trading.
    assert dashboard_drift_pct(client, portfolio) == Decimal("0.00")
    assert metrics_drift(client, portfolio) == pytest.approx(0.0, abs=1e-4)

    # The owner edits the holdings: 50/50 against 60/40 is a 10% drift, at once.
    holdings_replace(
        portfolio=portfolio,
        rows=[
            {"symbol": "SPY", "quantity": shares_worth(Decimal(5000), "SPY")},
            {"symbol": "BND", "quantity": shares_worth(Decimal(5000), "BND")},
        ],
        cash_usd=Decimal(0),
    )
    assert dashboard_drift_pct(client, portfolio) == Decimal("10.00")
    assert metrics_drift(client, portfolio) == pytest.approx(0.1, abs=1e-6)
