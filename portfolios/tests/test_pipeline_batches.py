"""The daily run in batches: the same runs, trades and orders as one portfolio at a time, one
portfolio's failure its own, and a batch's planning in as many queries for eight portfolios as
for two."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from brokers.models import Order
from marketdata.models import Instrument
from portfolios.models import AuditEntry, PlannedTrade, RebalanceRun
from portfolios.services import pipeline
from portfolios.services.holdings import holdings_replace
from portfolios.services.rebalancing import RebalanceError, rebalance_runs_create

from .execution_factories import NEW_YORK, paper_portfolio
from .factories import AS_OF, make_portfolio, make_user

pytestmark = pytest.mark.django_db
AFTER_CLOSE = datetime(2025, 6, 30, 16, 30, tzinfo=NEW_YORK)
NEXT_OPEN = datetime(2025, 7, 1, 9, 35, tzinfo=NEW_YORK)
# What differs between two stored copies of the same plan: identities (the inputs' fingerprint
# names the broker account), times, and time measured.
NOT_COMPARED = {
    *("id", "portfolio", "inputs_fingerprint", "created_at", "updated_at", "timings", "report_ready_at"),
    "execute_after",
}
NOT_COMPARED_ORDER = {
    *("id", "account", "run", "planned_trade", "client_order_id", "submission_id", "broker_order_id", "created_at"),
    "updated_at",
}


@pytest.fixture(autouse=True)
def _offline(settings):
    settings.PRICE_PROVIDERS = ["sample"]
    settings.DRIFT_ALERT_THRESHOLD = 0.5
    settings.EXECUTION_WAIT_SECONDS = 0.2
    settings.EXECUTION_POLL_SECONDS = 0.01


# (holdings in USD, cash, settings): optimizer targets of two ages, manual targets, three strategies.
CASES = {
    "drifted": ({"SPY": 8000, "BND": 2000}, Decimal(0), {}),
    "cash to invest": ({"SPY": 3000}, Decimal(4000), {"targets": {"SPY": "0.5", "QQQ": "0.2", "BND": "0.3"}}),
    "in band": ({"SPY": 6000, "BND": 4000}, Decimal(0), {}),
    "full": (
        {"QQQ": 5000, "VXUS": 1000},
        Decimal(500),
        {"rebalancing_strategy": "full", "targets": {"QQQ": "0.5", "VXUS": "0.5"}},
    ),
    "optimizer young": ({"SPY": 5000, "QQQ": 1000}, Decimal(1000), {"targets": None, "age": 30}),
    "optimizer old": (
        {"SPY": 5000, "BND": 1000},
        Decimal(0),
        {"targets": None, "age": 70, "rebalancing_strategy": "minimize_trades"},
    ),
}


def build(prefix: str) -> dict[str, int]:
    """One paper portfolio per case, owned by ``prefix``'s users; portfolio ids by case."""
    ids = {}
    for number, (case, (holdings, cash, options)) in enumerate(CASES.items()):
        options = dict(options)
        targets = options.pop("targets", {"SPY": "0.6", "BND": "0.4"})
        portfolio = paper_portfolio(
            holdings_usd=holdings,
            cash_usd=cash,
            targets=targets or {"SPY": "0.6", "BND": "0.4"},
            username=f"{prefix}{number}",
            **options,
        )
        if targets is None:  # the optimizer's targets over the four symbols
            portfolio.manual_targets = None
            portfolio.save()
            portfolio.instruments.set(Instrument.objects.filter(symbol__in=["SPY", "QQQ", "VXUS", "BND"]))
        ids[case] = portfolio.pk
    return ids


def stored(portfolio_id: int) -> dict:
    run = RebalanceRun.objects.active().get(portfolio_id=portfolio_id, trading_date=AS_OF)
    fields = {
        f.attname: getattr(run, f.attname) for f in RebalanceRun._meta.concrete_fields if f.name not in NOT_COMPARED
    }
    trades = [
        (t.sequence, t.instrument.symbol, t.side, t.quantity, t.estimated_price, t.notional_usd, t.reason)
        for t in PlannedTrade.objects.filter(run=run).select_related("instrument").order_by("sequence")
    ]
    orders = [
        {f.attname: getattr(o, f.attname) for f in Order._meta.concrete_fields if f.name not in NOT_COMPARED_ORDER}
        for o in Order.objects.filter(run=run).order_by("symbol", "side")
    ]
    return {"run": fields, "trades": trades, "orders": orders}


def test_a_batch_stores_the_same_runs_trades_and_orders_as_one_portfolio_at_a_time(prices, clock):
    clock.now = AFTER_CLOSE
    alone, together = build("one"), build("batch")
    outcomes = {case: pipeline.portfolio_day(portfolio_id=pk, trading_date=AS_OF) for case, pk in alone.items()}
    batch = pipeline.portfolios_day(portfolio_ids=list(together.values()), trading_date=AS_OF)
    assert {case: batch[pk] for case, pk in together.items()} == outcomes
    assert pipeline.Outcome.SCHEDULED in outcomes.values() and pipeline.Outcome.NO_ACTION in outcomes.values()
    clock.now = NEXT_OPEN
    for run in RebalanceRun.objects.filter(status=RebalanceRun.Status.PLANNED, execute_after__isnull=False):
        pipeline.execute_planned_run(run.pk)
    for case in CASES:
        one, other = stored(alone[case]), stored(together[case])
        assert one["run"].pop("superseded_by_id") is other["run"].pop("superseded_by_id") is None
        differing = {k: (one["run"][k], other["run"][k]) for k in one["run"] if one["run"][k] != other["run"][k]}
        assert differing == {}, case
        for mine, theirs in zip(one["orders"], other["orders"], strict=True):
            assert {k: (v, theirs[k]) for k, v in mine.items() if v != theirs[k]} == {}, case
        assert one == other, case
    assert Order.objects.filter(state="filled").count() >= 4


def test_one_portfolios_missing_price_fails_its_run_alone(prices, clock):
    clock.now = AFTER_CLOSE
    Instrument.objects.create(symbol="NOPRICE", name="No prices", asset_class="equity")
    owner = make_user("dave")
    good = [make_portfolio(owner, f"Good {n}", holdings={"SPY": 10}, manual_targets={"SPY": 1}) for n in range(2)]
    bad = make_portfolio(owner, "Bad", symbols=["SPY", "NOPRICE"], manual_targets={"SPY": 1})
    holdings_replace(portfolio=bad, rows=[{"symbol": "SPY", "quantity": 5}, {"symbol": "NOPRICE", "quantity": 3}])
    answers = rebalance_runs_create([*good, bad], as_of=AS_OF)
    assert isinstance(answers[bad.pk], RebalanceError) and "no price on 2025-06-30 for NOPRICE" in str(answers[bad.pk])
    failed = RebalanceRun.objects.get(portfolio=bad)
    assert failed.status == RebalanceRun.Status.FAILED and "NOPRICE" in failed.error
    assert all(RebalanceRun.objects.get(portfolio=p).status != RebalanceRun.Status.FAILED for p in good)
    # Asking again answers the stored plans and plans the failed one afresh (failing again, alone).
    again = rebalance_runs_create([*good, bad], as_of=AS_OF)
    assert all(again[p.pk].existing for p in good) and isinstance(again[bad.pk], RebalanceError)
    assert RebalanceRun.objects.filter(portfolio=bad).count() == 1


def small_portfolios(owner, count: int, name: str, **policy) -> list:
    """``count`` portfolios of ``owner`` holding a little SPY and BND, named ``name`` and a number."""
    return [make_portfolio(owner, f"{name} {n}", holdings={"SPY": 10 + n, "BND": 5}, **policy) for n in range(count)]


def planned_twice(two: list, eight: list) -> tuple[list[int], dict]:
    """The queries planning ``two`` and then ``eight`` portfolios took, and the second's answers."""
    counts = []
    for batch in (two, eight):
        with CaptureQueriesContext(connection) as queries:
            answers = rebalance_runs_create(batch, as_of=AS_OF)
        counts.append(len(queries))
        assert all(not isinstance(answer, Exception) and answer.stored for answer in answers.values())
    return counts, answers


def test_planning_a_batch_takes_as_many_queries_for_eight_portfolios_as_for_two(prices, clock):
    clock.now = AFTER_CLOSE
    owner = make_user("erin")

    def portfolios(count: int, name: str):
        return [
            *small_portfolios(owner, count // 2, f"{name} young", cash_usd=Decimal(100), age=30),
            *small_portfolios(owner, count - count // 2, f"{name} old", cash_usd=Decimal(100), age=70),
        ]

    rebalance_runs_create(portfolios(2, "Warm"), as_of=AS_OF)  # the day's optimizer results, solved once
    counts, _ = planned_twice(portfolios(2, "Two"), portfolios(8, "Eight"))
    assert counts[0] == counts[1], counts
    assert timezone.now() == AFTER_CLOSE


@pytest.mark.parametrize(
    ("mode", "outcome"), [("propose", pipeline.Outcome.PLANNED), ("auto", pipeline.Outcome.SCHEDULED)]
)
def test_a_batchs_day_takes_as_many_queries_for_eight_portfolios_as_for_two(prices, clock, mode, outcome):
    # Sync, plan, store, the brokers' clocks (auto: due at the next open), finish and audit entries
    # of a batch after the close, set-wise.
    clock.now = AFTER_CLOSE

    def portfolios(count: int, name: str) -> list[int]:
        made = []
        for n in range(count):
            portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, username=f"{name}{n}", mode=mode)
            portfolio.manual_targets, portfolio.age = None, 30 + 40 * (n % 2)
            portfolio.save()
            made.append(portfolio.pk)
        return made

    pipeline.portfolios_day(portfolio_ids=portfolios(2, "warm"), trading_date=AS_OF)  # the day's optimizer results
    counts = []
    for ids in (portfolios(2, "two"), portfolios(8, "eight")):
        with CaptureQueriesContext(connection) as queries:
            outcomes = pipeline.portfolios_day(portfolio_ids=ids, trading_date=AS_OF)
        counts.append(len(queries))
        assert set(outcomes.values()) == {outcome}
        assert AuditEntry.objects.filter(portfolio_id__in=ids, event="rebalancing_started").count() == len(ids)
        assert not RebalanceRun.objects.filter(portfolio_id__in=ids, report_ready_at__isnull=True).exists()
        if mode == "auto":
            assert RebalanceRun.objects.filter(portfolio_id__in=ids, execute_after=NEXT_OPEN).count() == len(ids)
        else:
            assert AuditEntry.objects.filter(portfolio_id__in=ids, event="rebalancing_completed").count() == len(ids)
    assert counts[0] == counts[1], counts


def test_planning_manual_target_portfolios_reads_their_risk_window_once_per_batch(prices, clock):
    clock.now = AFTER_CLOSE
    owner = make_user("fay")
    targets = {"manual_targets": {"SPY": "0.6", "BND": "0.4"}}
    counts, answers = planned_twice(
        small_portfolios(owner, 2, "Two", **targets), small_portfolios(owner, 8, "Eight", **targets)
    )
    assert counts[0] == counts[1], counts
    assert all("error" not in answer.run.risk for answer in answers.values())
    # The same figures as the same portfolio planned alone (its own window read).
    (alone,) = rebalance_runs_create(small_portfolios(owner, 1, "Alone", **targets), as_of=AS_OF).values()
    first = answers[min(answers)]
    assert alone.run.risk == first.run.risk and "before" in alone.run.risk
