"""The daily run's sync in batches: the same holdings, cash, sync records and asset answers as
one portfolio at a time, an account's error its own, and as many queries for six portfolios as
for two."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from brokers.base import OrderRequest, Side
from brokers.models import PaperAccount, PaperOrder
from brokers.services.accounts import broker_for
from brokers.services.paper import paper_account_reset
from portfolios.models import BrokerAsset, Holding, HoldingsSync, Portfolio
from portfolios.services.sync import SyncError, sync_from_broker, syncs_from_brokers

from .execution_factories import NEW_YORK, paper_portfolio
from .factories import close

pytestmark = pytest.mark.django_db
AFTER_CLOSE = datetime(2025, 6, 30, 16, 30, tzinfo=NEW_YORK)


def positions(holdings: dict[str, str]) -> dict[str, tuple[Decimal, Decimal]]:
    return {symbol: (Decimal(quantity), close(symbol)) for symbol, quantity in holdings.items()}


def in_sync(name: str) -> Portfolio:
    return paper_portfolio(holdings_usd={"SPY": 6000, "BND": 4000}, cash_usd=Decimal(500), username=name)


def bought_more_and_a_new_symbol(name: str) -> Portfolio:
    portfolio = in_sync(name)
    reset = positions({"SPY": "20", "BND": "40", "QQQ": "3.5"})
    paper_account_reset(account=portfolio.broker_account, cash_usd=Decimal("12.34"), positions=reset)
    return portfolio


def sold_a_holding(name: str) -> Portfolio:
    portfolio = in_sync(name)
    paper_account_reset(account=portfolio.broker_account, cash_usd=Decimal(4500), positions=positions({"SPY": "10"}))
    return portfolio


def with_an_order_waiting_for_the_open(name: str) -> Portfolio:
    portfolio = in_sync(name)
    with broker_for(portfolio.broker_account) as broker:  # after the close: queued, cash held back
        broker.submit_order(OrderRequest(client_order_id=f"{name}-1", symbol="BND", side=Side.BUY, quantity=Decimal(2)))
    return portfolio


def without_its_paper_account(name: str) -> Portfolio:
    portfolio = in_sync(name)
    PaperAccount.objects.filter(account=portfolio.broker_account).delete()
    return portfolio


CASES = (in_sync, bought_more_and_a_new_symbol, sold_a_holding, with_an_order_waiting_for_the_open)


def state(portfolio: Portfolio) -> dict:
    portfolio.refresh_from_db()
    sync = HoldingsSync.objects.filter(portfolio=portfolio).order_by("-id").first()
    return {
        "cash": portfolio.cash_usd,
        "holdings": dict(Holding.objects.filter(portfolio=portfolio).values_list("instrument__symbol", "quantity")),
        "universe": sorted(portfolio.instruments.values_list("symbol", flat=True)),
        "sync": (sync.changes, sync.cash_before_usd, sync.cash_after_usd),
        "answers": sorted(
            BrokerAsset.objects.filter(broker_account=portfolio.broker_account).values_list(
                "instrument__symbol", "tradable", "fractionable"
            )
        ),
    }


def test_a_batch_syncs_exactly_as_one_portfolio_at_a_time(prices, clock):
    clock.now = AFTER_CLOSE
    alone = [case(f"one{n}") for n, case in enumerate(CASES)]
    together = [case(f"batch{n}") for n, case in enumerate(CASES)]
    for portfolio in alone:
        sync_from_broker(portfolio=Portfolio.objects.select_related("broker_account").get(pk=portfolio.pk))
    batch = Portfolio.objects.select_related("broker_account").filter(pk__in=[p.pk for p in together])
    syncs = syncs_from_brokers(list(batch.order_by("pk")))
    assert all(isinstance(sync, HoldingsSync) for sync in syncs.values())
    for case, one, other in zip(CASES, alone, together, strict=True):
        assert state(one) == state(other), case.__name__
    moved = state(together[1])
    assert moved["holdings"] == {"SPY": Decimal(20), "BND": Decimal(40), "QQQ": Decimal("3.5")}
    assert moved["cash"] == Decimal("12.34") and "QQQ" in moved["universe"]
    assert state(together[2])["holdings"] == {"SPY": Decimal(10)}
    assert PaperOrder.objects.filter(state="new").count() == 2  # still waiting for the open, both


def test_an_account_that_cannot_be_read_fails_its_own_portfolio_alone(prices, clock):
    clock.now = AFTER_CLOSE
    good, broken = in_sync("good"), without_its_paper_account("broken")
    with pytest.raises(SyncError) as alone:
        sync_from_broker(portfolio=broken)
    syncs = syncs_from_brokers([good, broken])
    assert isinstance(syncs[good.pk], HoldingsSync)
    assert isinstance(syncs[broken.pk], SyncError) and str(syncs[broken.pk]) == str(alone.value)
    assert "has no paper account" in str(alone.value)
    assert not HoldingsSync.objects.filter(portfolio=broken).exists()


@pytest.mark.parametrize("case", [in_sync, sold_a_holding], ids=["nothing changed", "holdings and cash changed"])
def test_syncing_six_portfolios_takes_as_many_queries_as_two(prices, clock, case):
    clock.now = AFTER_CLOSE
    counts = []
    for size in (2, 6):
        batch = [case(f"q{size}-{n}") for n in range(size)]
        syncs_from_brokers(batch)  # the brokers' answers about assets, asked once a week
        for portfolio in batch:
            paper_account_reset(
                account=portfolio.broker_account, cash_usd=Decimal(4400), positions=positions({"SPY": "9"})
            )
        with CaptureQueriesContext(connection) as queries:
            syncs = syncs_from_brokers(batch)
        counts.append(len(queries))
        assert {state(portfolio)["holdings"]["SPY"] for portfolio in batch} == {Decimal(9)}
        assert all(sync.cash_after_usd == Decimal(4400) for sync in syncs.values())
    assert counts[0] == counts[1], counts


@pytest.mark.django_db(transaction=True)
def test_a_portfolio_another_request_holds_is_left_busy_and_the_rest_of_the_batch_is_synced(
    prices, clock, held_elsewhere
):
    clock.now = AFTER_CLOSE
    free, held = sold_a_holding("free"), sold_a_holding("held")
    held_elsewhere(held)
    syncs = syncs_from_brokers([free, held])
    assert state(free)["holdings"] == {"SPY": Decimal(10)}
    assert isinstance(syncs[held.pk], SyncError) and "another request is changing portfolio" in str(syncs[held.pk])
    assert Holding.objects.filter(portfolio=held).count() == 2 and not HoldingsSync.objects.filter(portfolio=held)
