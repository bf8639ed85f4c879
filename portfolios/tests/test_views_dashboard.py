"""The dashboard: each portfolio's value, drift of its holdings now, last and next run, alerts; the
empty state; only the user's own portfolios; a number of queries that does not grow with the number
of portfolios."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from brokers.models import Order
from brokers.services.accounts import broker_account_create
from brokers.services.controls import kill_switch_set
from marketdata.models import Instrument
from optimization.models import OptimizationResult, TargetAllocation, TargetWeight
from portfolios.models import PlannedTrade, RebalanceRun
from portfolios.schedules import schedules_setup

from .execution_factories import NEW_YORK
from .factories import AS_OF, close, make_portfolio, make_user

pytestmark = pytest.mark.django_db
Status = RebalanceRun.Status
TARGETS = {"SPY": "0.6", "BND": "0.4"}


def stored_run(portfolio, *, day: date = AS_OF, status: str = Status.PLANNED, drift: str = "0.04", **fields):
    """A stored run as the planner writes it (targets, needs, drift, values) with one planned trade."""
    value = Decimal(fields.pop("value", "10000"))
    fields.setdefault("targets", TARGETS)
    run = RebalanceRun.objects.create(
        portfolio=portfolio,
        trading_date=day,
        status=status,
        trigger=fields.pop("trigger", "SPY 4.0 pp over target (band 5.0 pp)"),
        drift_before=Decimal(drift),
        value_before_usd=value,
        value_after_usd=value,
        cash_before_usd=Decimal(0),
        needs=[
            {
                "symbol": "SPY",
                "current_weight": 0.64,
                "target_weight": 0.6,
                "deviation": 0.04,
                "band": 0.05,
                "outside": False,
                "urgency": 0.8,
                "action": "hold",
            },
            {
                "symbol": "BND",
                "current_weight": 0.36,
                "target_weight": 0.4,
                "deviation": -0.04,
                "band": 0.05,
                "outside": False,
                "urgency": 0.8,
                "action": "hold",
            },
        ],
        **fields,
    )
    if status != Status.FAILED:
        PlannedTrade.objects.create(
            run=run,
            sequence=1,
            instrument=Instrument.objects.get(symbol="SPY"),
            side="sell",
            quantity=Decimal(1),
            estimated_price=Decimal(500),
            notional_usd=Decimal(500),
            estimated_cost_usd=Decimal(0),
            reason="SPY 4.0 pp over target",
        )
    return run


def holding_portfolio(owner, name: str = "Core", **policy):
    policy.setdefault("cash_buffer_weight", Decimal(0))
    return make_portfolio(owner, name=name, holdings={"SPY": 10, "BND": 20}, cash_usd=Decimal("250.50"), **policy)


def drift_of(holdings: dict[str, int], cash_usd: Decimal, targets: dict[str, str]) -> float:
    """sum |weight - target| / 2 over the holdings at the AS_OF closes and cash (no cash buffer)."""
    values = {symbol: float(quantity * close(symbol)) for symbol, quantity in holdings.items()}
    total = sum(values.values()) + float(cash_usd)
    gaps = [abs(values.get(s, 0.0) / total - float(targets.get(s, 0))) for s in set(values) | set(targets)]
    return (sum(gaps) + float(cash_usd) / total) / 2


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_new_user_sees_how_to_start(client, clock):
    client.force_login(make_user())
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Create your first portfolio" in page and reverse("portfolio_create") in page
    assert "add a broker account" in page and reverse("broker_account_create") in page


def test_the_owner_sees_value_cash_drift_last_and_next_run(client, prices, clock):
    owner = make_user()
    account = broker_account_create(owner=owner, kind="paper", label="Sandbox")
    portfolio = holding_portfolio(owner, broker_account=account, mode="auto")
    stored_run(portfolio, day=date(2025, 6, 27), status=Status.EXECUTED, value="9000")
    run = stored_run(portfolio)
    schedules_setup()
    client.force_login(owner)

    response = client.get(reverse("dashboard"))

    assert response.status_code == 200
    page = response.content.decode()
    value = (10 * close("SPY") + 20 * close("BND")).quantize(Decimal("0.01")) + Decimal("250.50")
    assert f"${value:,.2f}" in page
    assert "$250.50" in page
    # The drift of what is held now against the latest run's targets, not the 4% the run stored.
    drift = drift_of({"SPY": 10, "BND": 20}, Decimal("250.50"), TARGETS)
    assert f"{drift * 100:.2f}%" in page and "4.00%" not in page
    assert "the holdings now at the latest closes; targets of the run of 2025-06-30" in page
    assert "furthest: " in page
    assert "Planned" in page and "2025-06-30" in page and "1 trade" in page
    assert reverse("run_report", args=[run.pk]) in page
    assert reverse("run_approve", args=[run.pk]) in page
    assert "2025-07-01 16:30" in page  # the daily-run schedule's next run (after the test clock's 10:00)
    assert "Sandbox" in page and ">auto<" in page
    # Two stored values and today's: a sparkline, drawn with the one shared plotly.min.js.
    assert 'data-figure="spark-' in page and "vendor/plotly.min.js" in page
    # The sample provider's prices are labelled synthetic.
    assert "SYNTHETIC" in page


def test_without_a_schedule_the_next_run_says_not_scheduled(client, prices, clock):
    owner = make_user()
    holding_portfolio(owner)
    client.force_login(owner)
    page = client.get(reverse("dashboard")).content.decode()
    assert "not scheduled" in page


def test_another_users_portfolios_are_not_shown(client, prices, clock):
    holding_portfolio(make_user("bob"), name="Bob's secret plan")
    client.force_login(make_user("alice"))
    page = client.get(reverse("dashboard")).content.decode()
    assert "Bob&#x27;s secret plan" not in page and "Bob's secret plan" not in page
    assert "Create your first portfolio" in page


def test_alerts_failed_runs_unknown_orders_drift_and_the_kill_switch(client, prices, clock, settings):
    settings.DRIFT_ALERT_THRESHOLD = 0.10
    owner = make_user()
    account = broker_account_create(owner=owner, kind="paper", label="Sandbox")
    failing = holding_portfolio(owner, name="Failing")
    stored_run(failing, status=Status.FAILED, error="no price on 2025-06-30 for XYZ")
    drifting = holding_portfolio(owner, name="Drifting", broker_account=account)
    run = stored_run(drifting, drift="0.01", targets={"SPY": "0.2", "BND": "0.8"})
    Order.objects.create(
        account=account,
        run=run,
        client_order_id=f"{account.order_prefix}-{run.pk}-1",
        symbol="SPY",
        side="sell",
        quantity=Decimal(1),
        estimated_price_usd=Decimal(500),
        state="unknown",
    )
    kill_switch_set(user=owner, active=True, reason="broker incident")
    client.force_login(owner)

    page = client.get(reverse("dashboard")).content.decode()

    assert "Planning failed on 2025-06-30: no price on 2025-06-30 for XYZ" in page
    assert "1 order(s) with an unknown outcome (sell SPY)" in page
    drift = drift_of({"SPY": 10, "BND": 20}, Decimal("250.50"), {"SPY": "0.2", "BND": "0.8"})
    assert drift >= 0.10
    assert f"Drifting</a>: Drift {drift:.1%} is at or above the alert threshold 10.0%" in page
    assert "Trading is halted: kill switch on for this user: broker incident" in page


def test_stale_prices_are_an_alert(client, prices, clock):
    clock.now = datetime(2025, 7, 8, 10, 0, tzinfo=NEW_YORK)  # the last completed session is 2025-07-07
    owner = make_user()
    holding_portfolio(owner)
    client.force_login(owner)
    page = client.get(reverse("dashboard")).content.decode()
    assert "No close for the last completed session for BND, QQQ, SPY, VXUS" in page


def dashboard_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    return len(queries)


def test_the_number_of_queries_does_not_grow_with_the_portfolios(client, prices, clock, django_assert_num_queries):
    owner = make_user()
    schedules_setup()

    def add(number: int) -> None:
        account = broker_account_create(owner=owner, kind="paper", label=f"Paper {number}")
        portfolio = holding_portfolio(owner, name=f"Portfolio {number:02d}", broker_account=account)
        stored_run(portfolio, day=date(2025, 6, 27), status=Status.EXECUTED)
        stored_run(portfolio)

    add(1)
    client.force_login(owner)
    one = dashboard_queries(client)
    for number in range(2, 51):
        add(number)

    with django_assert_num_queries(one):
        response = client.get(reverse("dashboard"))

    # The session and its user, then 14 reads: portfolios, kill switch, holdings, universes, latest
    # runs, optimizer targets, run values, unknown orders, closes (2), synthetic marker (2), broker
    # accounts, schedule.
    assert one <= 16

    page = response.content.decode()
    assert page.count('data-figure="spark-') == 50 and "Portfolio 50" in page


def test_without_targets_the_drift_is_unknown_and_says_why(client, prices, clock):
    owner = make_user()
    holding_portfolio(owner)
    client.force_login(owner)
    page = client.get(reverse("dashboard")).content.decode()
    assert "unknown: no targets yet: plan a run or set manual targets" in page


def test_the_optimizers_latest_targets_are_used_without_a_run(client, prices, clock):
    owner = make_user()
    portfolio = holding_portfolio(owner)
    result = OptimizationResult.objects.create(
        as_of=AS_OF,
        input_hash="h" * 64,
        strategy="max_sharpe",
        requested_strategy="max_sharpe",
        expected_return=Decimal("0.05"),
        volatility=Decimal("0.1"),
    )
    for symbol, weight in TARGETS.items():
        TargetWeight.objects.create(result=result, instrument=Instrument.objects.get(symbol=symbol), weight=weight)
    TargetAllocation.objects.create(portfolio=portfolio, as_of=AS_OF, result=result)
    client.force_login(owner)
    page = client.get(reverse("dashboard")).content.decode()
    drift = drift_of({"SPY": 10, "BND": 20}, Decimal("250.50"), TARGETS)
    assert f"{drift * 100:.2f}%" in page and "targets of the optimizer on 2025-06-30" in page
