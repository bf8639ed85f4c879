"""rebalance_run_create: snapshot -> targets -> plan -> one frozen stored run per portfolio and day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from marketdata.models import Instrument
from optimization.models import TargetAllocation
from portfolios.models import FrozenError, PlannedTrade, RebalanceRun
from portfolios.selectors import last_rebalance_date
from portfolios.services.rebalancing import (
    MissingPrices,
    RebalanceError,
    rebalance_run_create,
    rebalance_run_plan,
)

from .factories import AS_OF, close, load_sample_prices, make_portfolio, make_user

pytestmark = pytest.mark.django_db

EXACT = {  # no costs, no buffer, no minimum: hand-computable plans
    "spread_bps": Decimal(0),
    "impact_bps": Decimal(0),
    "commission_per_trade_usd": Decimal(0),
    "cash_buffer_weight": Decimal(0),
    "min_trade_usd": Decimal(0),
    "band_mode": "absolute",
    "band_abs": Decimal("0.05"),
}


@pytest.fixture
def prices() -> None:
    load_sample_prices(["SPY", "QQQ", "VXUS", "BND"])


def sixty_forty(**policy):
    """80% SPY / 20% BND by value against 60/40 manual targets (unless ``policy`` says otherwise)."""
    nine = Decimal("0.000000001")
    holdings = {
        "SPY": (Decimal(8000) / close("SPY")).quantize(nine),
        "BND": (Decimal(2000) / close("BND")).quantize(nine),
    }
    settings = {**EXACT, "manual_targets": {"SPY": "0.6", "BND": "0.4"}, **policy}
    return make_portfolio(make_user(), symbols=["SPY", "BND"], holdings=holdings, cash_usd=Decimal(0), **settings)


def test_threshold_plan_is_stored_with_snapshot_targets_and_trades(prices) -> None:
    portfolio = sixty_forty(rebalancing_strategy="threshold")
    planned = rebalance_run_create(portfolio=portfolio, as_of=AS_OF)
    run = RebalanceRun.objects.get(pk=planned.run.pk)
    assert planned.stored and not planned.existing
    assert run.status == RebalanceRun.Status.PLANNED
    assert run.triggers_fired == ["band"]
    assert run.trigger == "BND 20.0 pp under target (band 5.0 pp) and 1 more"
    assert run.targets == {"BND": "0.4", "SPY": "0.6"} and run.targets_source == "manual"
    assert run.snapshot["prices"]["SPY"] == str(close("SPY"))
    assert run.snapshot["price_date"] == "2025-06-30"

    value = Decimal(run.value_before_usd)
    assert abs(value - Decimal(10_000)) < Decimal("0.01")
    trades = list(run.trades.select_related("instrument"))
    assert [(t.sequence, t.side, t.instrument.symbol) for t in trades] == [(1, "sell", "SPY"), (2, "buy", "BND")]
    assert abs(trades[0].quantity - Decimal("0.2") * value / close("SPY")) < Decimal("0.000001")
    assert abs(trades[1].quantity - Decimal("0.2") * value / close("BND")) < Decimal("0.000001")
    assert all(t.estimated_cost_usd == 0 for t in trades)
    assert run.drift_before == Decimal("0.2") and run.drift_after < Decimal("0.000001")
    assert abs(run.turnover - Decimal("0.2")) < Decimal("0.000001")
    assert run.cash_after_usd >= 0
    assert {n["symbol"]: (n["outside"], n["action"]) for n in run.needs} == {
        "BND": (True, "buy"),
        "SPY": (True, "sell"),
    }
    assert set(run.timings) >= {"snapshot", "targets", "prices", "plan", "store"}


def test_the_run_is_frozen_and_one_per_portfolio_and_day(prices) -> None:
    portfolio = sixty_forty()
    first = rebalance_run_create(portfolio=portfolio, as_of=AS_OF)
    again = rebalance_run_create(portfolio=portfolio, as_of=AS_OF)  # the same inputs: the stored plan
    assert again.existing and again.run.pk == first.run.pk
    assert RebalanceRun.objects.count() == 1 and PlannedTrade.objects.count() == 2

    run = RebalanceRun.objects.get()
    run.trigger = "edited"
    with pytest.raises(FrozenError):
        run.save()
    trade = PlannedTrade.objects.first()
    trade.quantity = Decimal(1)
    with pytest.raises(FrozenError):
        trade.save()
    run.refresh_from_db()
    run.status = RebalanceRun.Status.FAILED
    run.save(update_fields=["status", "updated_at"])  # execution progress may change


def test_dry_run_stores_no_run(prices) -> None:
    portfolio = sixty_forty()
    planned = rebalance_run_plan(portfolio=portfolio, as_of=AS_OF)
    assert not planned.stored and planned.run.pk is None
    assert [t.side for t in planned.trades] == ["sell", "buy"]
    assert RebalanceRun.objects.count() == 0


def test_inside_the_bands_nothing_is_traded(prices) -> None:
    portfolio = sixty_forty(manual_targets={"SPY": "0.78", "BND": "0.22"})
    planned = rebalance_run_create(portfolio=portfolio, as_of=AS_OF)
    assert planned.run.status == RebalanceRun.Status.NO_ACTION
    assert planned.run.trigger == "no action needed"
    assert planned.trades == [] and PlannedTrade.objects.count() == 0


def test_a_holding_without_a_price_on_the_date_stops_the_plan_and_names_it(prices) -> None:
    portfolio = sixty_forty()
    Instrument.objects.create(symbol="NOPX", name="No prices", asset_class="equity")
    portfolio.manual_targets = {"SPY": "0.5", "BND": "0.4", "NOPX": "0.1"}
    portfolio.save()
    with pytest.raises(MissingPrices, match=r"no price on 2025-06-30 for NOPX"):
        rebalance_run_create(portfolio=portfolio, as_of=AS_OF)
    failed = RebalanceRun.objects.get()
    assert failed.status == RebalanceRun.Status.FAILED and "NOPX" in failed.error
    assert PlannedTrade.objects.count() == 0

    portfolio.manual_targets = {"SPY": "0.6", "BND": "0.4"}
    portfolio.save()
    planned = rebalance_run_create(portfolio=portfolio, as_of=AS_OF)  # a failed day is planned afresh
    assert planned.run.status == RebalanceRun.Status.PLANNED
    assert RebalanceRun.objects.get().pk == planned.run.pk


def test_a_day_that_is_not_a_session_is_refused(prices) -> None:
    with pytest.raises(RebalanceError, match="as_of: 2025-06-29 is not an NYSE trading day"):
        rebalance_run_plan(portfolio=sixty_forty(), as_of=date(2025, 6, 29))


def test_optimizer_targets_are_used_and_recorded(prices) -> None:
    portfolio = make_portfolio(
        make_user(), holdings={"SPY": 50}, cash_usd=Decimal(5000), max_weight=Decimal("0.5"), **EXACT
    )
    planned = rebalance_run_create(portfolio=portfolio, as_of=AS_OF, strategy="full", manual=True)
    run = planned.run
    allocation = TargetAllocation.objects.get(portfolio=portfolio, as_of=AS_OF)
    assert run.optimization_result_id == allocation.result_id and run.targets_source == "optimizer"
    assert {s: Decimal(w) for s, w in run.targets.items()} == allocation.result.weights()
    assert run.triggers_fired == ["manual"] or "manual" in run.triggers_fired
    assert run.strategy == "full" and run.requested_strategy == "full"
    for symbol, weight in run.weights_after.items():
        assert abs(Decimal(str(weight)) - Decimal(run.targets[symbol])) < Decimal("0.0001")


def test_cooldown_uses_the_last_run_that_traded(prices) -> None:
    portfolio = sixty_forty(cooldown_days=5)
    rebalance_run_create(portfolio=portfolio, as_of=date(2025, 6, 26))
    assert last_rebalance_date(portfolio=portfolio, before=AS_OF) == date(2025, 6, 26)
    blocked = rebalance_run_create(portfolio=portfolio, as_of=AS_OF)
    assert blocked.run.status == RebalanceRun.Status.NO_ACTION
    assert blocked.run.trigger.startswith("cooldown")


def test_risk_aware_gets_the_covariance_of_the_holdings(prices) -> None:
    portfolio = sixty_forty(rebalancing_strategy="risk_aware", manual_targets={"SPY": "0.6", "BND": "0.4"})
    planned = rebalance_run_create(portfolio=portfolio, as_of=AS_OF)
    assert planned.run.strategy == "risk_aware"
    assert "covariance" in planned.run.timings
    assert [t.side for t in planned.trades] == ["sell", "buy"]
    assert planned.run.drift_after < planned.run.drift_before


def test_the_last_rebalance_is_the_last_run_with_trades(prices) -> None:
    portfolio = sixty_forty(cooldown_days=5)
    assert rebalance_run_create(portfolio=portfolio, as_of=date(2025, 6, 26)).trades
    # Later runs that traded nothing (planned without a trade row, or failed) do not count.
    RebalanceRun.objects.create(portfolio=portfolio, trading_date=date(2025, 6, 27), status=RebalanceRun.Status.PLANNED)
    RebalanceRun.objects.create(portfolio=portfolio, trading_date=date(2025, 6, 25), status=RebalanceRun.Status.FAILED)
    assert last_rebalance_date(portfolio=portfolio, before=AS_OF) == date(2025, 6, 26)
    assert last_rebalance_date(portfolio=portfolio, before=date(2025, 6, 26)) is None


def portfolio_worth(holdings_usd: dict[str, int], targets: dict[str, str], cash_usd: int = 0, **policy):
    """A portfolio (of a new user) holding ``holdings_usd`` at AS_OF closes and cash, against
    manual ``targets``."""
    nine = Decimal("0.000000001")
    holdings = {symbol: (Decimal(usd) / close(symbol)).quantize(nine) for symbol, usd in holdings_usd.items()}
    settings = {**EXACT, "manual_targets": targets, **policy}
    owner = make_user(f"owner{get_user_model().objects.count()}")
    symbols = sorted(set(holdings) | set(targets))
    return make_portfolio(owner, symbols=symbols, holdings=holdings, cash_usd=Decimal(cash_usd), **settings)


@pytest.mark.parametrize(
    ("band_mode", "bnd_band", "fired"), [("five_twenty_five", 0.025, ["band"]), ("hybrid", 0.05, [])]
)
def test_a_hybrid_band_is_the_wider_of_the_two_so_a_small_target_drifts_further(prices, band_mode, bnd_band, fired):
    # BND's 10% target: 5/25 gives it 2.5 pp (the narrower), hybrid 5 pp (the wider); it is 3.5 pp under.
    portfolio = portfolio_worth(
        {"SPY": 9350, "BND": 650}, {"SPY": "0.9", "BND": "0.1"}, band_mode=band_mode, rebalancing_strategy="full"
    )
    planned = rebalance_run_plan(portfolio=portfolio, as_of=AS_OF)
    bands = {need["symbol"]: need["band"] for need in planned.run.needs}
    assert bands["BND"] == pytest.approx(bnd_band) and planned.run.triggers_fired == fired
    assert [(t.side, t.instrument.symbol) for t in planned.trades] == (
        [("sell", "SPY"), ("buy", "BND")] if fired else []
    )
    assert planned.run.policy["bands"]["band_mode"] == band_mode


def test_an_unheld_target_counts_as_outside_its_band_only_when_asked(prices):
    # QQQ's 3% target is unheld: 3 pp under, inside its 5 pp band, unless unheld targets count as outside.
    targets = {"SPY": "0.97", "QQQ": "0.03"}
    inside = rebalance_run_plan(portfolio=portfolio_worth({"SPY": 9700}, targets, cash_usd=300), as_of=AS_OF)
    assert inside.run.status == RebalanceRun.Status.NO_ACTION and inside.trades == []

    portfolio = portfolio_worth({"SPY": 9700}, targets, cash_usd=300, unheld_outside_band=True)
    planned = rebalance_run_plan(portfolio=portfolio, as_of=AS_OF)
    assert planned.run.triggers_fired == ["band"] and planned.run.policy["bands"]["unheld_outside_band"] is True
    assert [(t.side, t.instrument.symbol) for t in planned.trades] == [("buy", "QQQ")]
    assert planned.trades[0].notional_usd == pytest.approx(Decimal(300), abs=Decimal("0.01"))


@pytest.mark.parametrize(("cash_flow_to", "bnd_buy_usd"), [("target", 2000), ("band_edge", 1500)])
def test_cash_flow_fills_an_underweight_holding_to_its_target_or_its_band_edge(prices, cash_flow_to, bnd_buy_usd):
    # $2,000 deposited into $6,000 SPY / $2,000 BND against 60/40 (5 pp bands): BND is 20% of the
    # $10,000; its target is $4,000, the lower edge of its band (35%) $3,500.
    portfolio = portfolio_worth(
        {"SPY": 6000, "BND": 2000},
        {"SPY": "0.6", "BND": "0.4"},
        rebalancing_strategy="cash_flow",
        cash_flow_to=cash_flow_to,
    )
    planned = rebalance_run_plan(portfolio=portfolio, as_of=AS_OF, manual=True, cash_flow_usd=Decimal(2000))
    assert planned.run.policy["trading"]["cash_flow_to"] == cash_flow_to
    assert [(t.side, t.instrument.symbol) for t in planned.trades] == [("buy", "BND")]
    assert planned.trades[0].notional_usd == pytest.approx(Decimal(bnd_buy_usd), abs=Decimal("0.01"))
