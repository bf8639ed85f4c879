"""Whether plans trade fractions of a symbol, and why not: the portfolio's setting, its broker
account's answer (recorded by a sync), the instrument's setting, or "not known" (whole shares,
said on the plan, its report and the portfolio page). One user's broker never decides another's."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from marketdata.models import Instrument
from portfolios.models import BrokerAsset
from portfolios.services.rebalancing import rebalance_run_create
from portfolios.services.sync import sync_from_broker
from tests.fakes.alpaca_server import FakeAlpacaServer
from tests.fakes.ib import FakeIBGateway

from .execution_factories import (
    alpaca_portfolio,
    ib_portfolio,
    paper_portfolio,
    planned_run,
    use_fake_alpaca,
    use_fake_ib,
)
from .factories import AS_OF, close, load_sample_prices, make_portfolio, make_user

pytestmark = pytest.mark.django_db

NOT_KNOWN = "not known whether it trades in fractions (set it in the admin's instrument settings)"


def whole(quantity: Decimal) -> bool:
    return quantity == quantity.to_integral_value()


def trades_of(run) -> dict[str, tuple[str, Decimal]]:
    return {t.instrument.symbol: (t.side, t.quantity) for t in run.trades.select_related("instrument")}


@pytest.fixture
def unknown_symbol(db) -> str:
    """ABCD: outside the reference table, with (synthetic) prices; nobody said whether it trades in fractions."""
    load_sample_prices(["SPY", "ABCD"])
    return "ABCD"


def spy_to_half_abcd(owner_name: str = "alice", **policy):
    """$10,000 of SPY against 50% SPY / 50% ABCD."""
    quantity = (Decimal(10_000) / close("SPY")).quantize(Decimal("0.000000001"))
    settings = {"manual_targets": {"SPY": "0.5", "ABCD": "0.5"}, "rebalancing_strategy": "full", **policy}
    return make_portfolio(make_user(owner_name), symbols=["SPY", "ABCD"], holdings={"SPY": quantity}, **settings)


def test_a_symbol_nobody_answered_for_is_planned_in_whole_shares_and_the_plan_says_so(client, unknown_symbol):
    assert Instrument.objects.get(symbol="ABCD").fractionable is None
    portfolio = spy_to_half_abcd()

    run = rebalance_run_create(portfolio=portfolio, as_of=AS_OF, manual=True).run

    trades = trades_of(run)
    assert trades["ABCD"][0] == "buy" and whole(trades["ABCD"][1])
    assert trades["SPY"][0] == "sell" and not whole(trades["SPY"][1])
    assert run.snapshot["fractionable"] == {"ABCD": False, "SPY": True}
    assert run.snapshot["whole_shares"] == [{"symbol": "ABCD", "reason": "not_known", "why": NOT_KNOWN}]
    assert f"ABCD planned in whole shares: {NOT_KNOWN}" in run.notes

    client.force_login(portfolio.owner)
    for page in (reverse("run_report", args=[run.pk]), reverse("portfolio_detail", args=[portfolio.pk])):
        text = client.get(page).content.decode().replace("&#x27;", "'")
        assert "Whole shares" in text and f"<strong>ABCD</strong>: {NOT_KNOWN}" in text, page
        assert "<strong>SPY</strong>" not in text, page


def test_the_instrument_setting_says_whole_shares(client, unknown_symbol):
    Instrument.objects.filter(symbol="ABCD").update(fractionable=False)
    portfolio = spy_to_half_abcd()

    run = rebalance_run_create(portfolio=portfolio, as_of=AS_OF, manual=True).run

    assert run.snapshot["whole_shares"] == [
        {"symbol": "ABCD", "reason": "instrument", "why": "its instrument setting is whole shares only"}
    ]
    assert not any("planned in whole shares" in note for note in run.notes)
    client.force_login(portfolio.owner)
    page = client.get(reverse("portfolio_detail", args=[portfolio.pk])).content.decode()
    assert "<strong>ABCD</strong>: its instrument setting is whole shares only" in page


def test_the_portfolio_setting_off_makes_every_holding_whole_shares(client, unknown_symbol):
    Instrument.objects.filter(symbol="ABCD").update(fractionable=True)
    portfolio = spy_to_half_abcd(fractional_shares=False)

    run = rebalance_run_create(portfolio=portfolio, as_of=AS_OF, manual=True).run

    assert all(whole(quantity) for _, quantity in trades_of(run).values())
    why = "this portfolio's fractional shares setting is off"
    assert run.snapshot["whole_shares"] == [
        {"symbol": "ABCD", "reason": "portfolio_setting", "why": why},
        {"symbol": "SPY", "reason": "portfolio_setting", "why": why},
    ]
    client.force_login(portfolio.owner)
    page = client.get(reverse("portfolio_detail", args=[portfolio.pk])).content.decode().replace("&#x27;", "'")
    assert f"<strong>ABCD</strong>, <strong>SPY</strong>: {why}" in page


def test_fractional_holdings_show_no_whole_shares_section(client, prices):
    portfolio = make_portfolio(make_user(), holdings={"SPY": 10, "BND": 10}, manual_targets={"SPY": 0.5, "BND": 0.5})
    client.force_login(portfolio.owner)
    page = client.get(reverse("portfolio_detail", args=[portfolio.pk])).content.decode()
    assert "Whole shares" not in page


def test_a_sync_records_the_paper_brokers_answers_for_its_account(client, prices, clock):
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    Instrument.objects.filter(symbol="BND").update(fractionable=False)  # the paper broker's instrument setting

    sync_from_broker(portfolio=portfolio)

    answers = {
        a.instrument.symbol: (a.tradable, a.fractionable, a.checked_at)
        for a in BrokerAsset.objects.filter(broker_account=portfolio.broker_account).select_related("instrument")
    }
    assert answers == {"SPY": (True, True, clock.now), "BND": (True, False, clock.now)}
    run = planned_run(portfolio)

    why = "the broker account Paper alice trades it in whole shares only (asked 2025-07-01)"
    assert run.snapshot["whole_shares"] == [{"symbol": "BND", "reason": "broker", "why": why}]
    assert whole(trades_of(run)["BND"][1]) and not whole(trades_of(run)["SPY"][1])
    client.force_login(portfolio.owner)
    assert f"<strong>BND</strong>: {why}" in client.get(reverse("run_report", args=[run.pk])).content.decode()


def test_a_broker_that_does_not_say_leaves_it_not_known(client, unknown_symbol, clock):
    portfolio = paper_portfolio(holdings_usd={"SPY": 5000, "ABCD": 4000}, targets={"SPY": "0.5", "ABCD": "0.5"})

    sync_from_broker(portfolio=portfolio)  # the paper broker answers from the instrument: not known

    assert BrokerAsset.objects.get(instrument__symbol="ABCD").fractionable is None
    run = planned_run(portfolio)
    why = (
        "not known whether it trades in fractions (sync from the broker, or set it in the admin's instrument settings)"
    )
    assert run.snapshot["whole_shares"] == [{"symbol": "ABCD", "reason": "not_known", "why": why}]
    assert whole(trades_of(run)["ABCD"][1])


@pytest.fixture
def alpaca(settings):
    with FakeAlpacaServer() as fake:
        use_fake_alpaca(settings, fake)
        yield fake


@pytest.fixture
def ib(settings):
    gateway = FakeIBGateway(cash="0", commission="0")
    use_fake_ib(settings, gateway)
    return gateway


def test_alpacas_fractionable_flag_decides_its_accounts_plans(prices, clock, alpaca):
    portfolio = alpaca_portfolio(alpaca)
    alpaca.add_asset("BND", str(close("BND")), fractionable=False)

    sync_from_broker(portfolio=portfolio)

    answers = {a.instrument.symbol: a.fractionable for a in BrokerAsset.objects.select_related("instrument")}
    assert answers == {"SPY": True, "BND": False}
    assert Instrument.objects.get(symbol="BND").fractionable is True  # the shared instrument is left alone
    run = planned_run(portfolio)
    assert [(row["symbol"], row["reason"]) for row in run.snapshot["whole_shares"]] == [("BND", "broker")]
    assert "Alpaca paper trades it in whole shares only" in run.snapshot["whole_shares"][0]["why"]
    trades = trades_of(run)
    assert trades["BND"][0] == "buy" and whole(trades["BND"][1]) and not whole(trades["SPY"][1])


def test_one_users_ib_account_does_not_make_another_users_alpaca_plan_whole_shares(prices, clock, alpaca, ib):
    ib_owned = ib_portfolio(ib, client_id=11)  # IB's API answers whole shares for every symbol
    ib_owned.fractional_shares = True
    ib_owned.save(update_fields=["fractional_shares"])
    alpaca_owned = alpaca_portfolio(alpaca, username="carol")

    sync_from_broker(portfolio=ib_owned)
    sync_from_broker(portfolio=alpaca_owned)

    ib_run, alpaca_run = planned_run(ib_owned), planned_run(alpaca_owned)
    assert {row["symbol"]: row["reason"] for row in ib_run.snapshot["whole_shares"]} == {
        "SPY": "broker",
        "BND": "broker",
    }
    assert all(whole(quantity) for _, quantity in trades_of(ib_run).values())
    assert alpaca_run.snapshot["whole_shares"] == [] and alpaca_run.snapshot["fractionable"] == {
        "BND": True,
        "SPY": True,
    }
    assert not any(whole(quantity) for _, quantity in trades_of(alpaca_run).values())
    assert set(Instrument.objects.filter(symbol__in=["SPY", "BND"]).values_list("fractionable", flat=True)) == {True}


def test_a_brokers_answers_are_asked_again_only_once_they_are_a_week_old(prices, clock, alpaca):
    portfolio = alpaca_portfolio(alpaca)
    sync_from_broker(portfolio=portfolio)
    asked = len(alpaca.requests_to("/v2/assets/SPY")) + len(alpaca.requests_to("/v2/assets/BND"))
    assert asked == 2
    alpaca.add_asset("BND", str(close("BND")), fractionable=False)
    clock.now += timedelta(days=6)
    sync_from_broker(portfolio=portfolio)
    assert len(alpaca.requests_to("/v2/assets/BND")) == 1  # the answer of six days ago stands
    clock.now += timedelta(days=2)
    sync_from_broker(portfolio=portfolio)
    assert len(alpaca.requests_to("/v2/assets/BND")) == 2
    assert BrokerAsset.objects.get(instrument__symbol="BND").fractionable is False
