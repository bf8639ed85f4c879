"""`rows_update`: many rows, each with its own values, stored in one statement on either database."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from brokers.models import Order
from portfolios.tests.execution_factories import order_row, paper_portfolio, planned_run
from rebalancer_site.db import rows_as, rows_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders(prices, clock):
    run = planned_run(paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}))
    return [order_row(run, f"db-{n}", "SPY", "sell", str(n)) for n in range(1, 6)]


def stored(orders: list[Order]) -> list[tuple]:
    fields = ("client_order_id", "state", "filled_quantity", "filled_avg_price_usd", "broker_status", "reject_reason")
    return list(Order.objects.filter(pk__in=[o.pk for o in orders]).order_by("pk").values_list(*fields))


def test_each_row_gets_its_own_values_in_one_statement(orders, clock):
    untouched = stored(orders[3:])
    clock.now += timedelta(minutes=5)
    changed = orders[:3]
    for n, order in enumerate(changed, start=1):
        order.state = "filled" if n != 2 else "rejected"
        order.filled_quantity = Decimal(n) if n != 2 else Decimal(0)
        order.filled_avg_price_usd = Decimal("101.123456") * n if n != 2 else None
        order.broker_status = "filled" if n != 2 else ""
        order.reject_reason = "" if n != 2 else "insufficient qty (it's a quote: ' test)"
    fields = ["state", "filled_quantity", "filled_avg_price_usd", "broker_status", "reject_reason", "updated_at"]
    with CaptureQueriesContext(connection) as queries:
        assert rows_update(changed, fields) == 3
    assert len(queries.captured_queries) == 1
    assert stored(changed) == [
        ("db-1", "filled", Decimal("1.000000000"), Decimal("101.123456"), "filled", ""),
        ("db-2", "rejected", Decimal("0E-9"), None, "", "insufficient qty (it's a quote: ' test)"),
        ("db-3", "filled", Decimal("3.000000000"), Decimal("303.370368"), "filled", ""),
    ]
    assert stored(orders[3:]) == untouched
    # auto_now: set as `save` sets it, in memory and in the row; the others keep theirs.
    assert {o.updated_at for o in Order.objects.filter(pk__in=[o.pk for o in changed])} == {clock.now}
    assert all(o.updated_at == clock.now for o in changed)
    assert all(o.updated_at < clock.now for o in Order.objects.filter(pk__in=[o.pk for o in orders[3:]]))


def test_rows_beyond_one_statement_are_sent_in_several(orders, monkeypatch):
    monkeypatch.setattr(connection.features, "max_query_params", 4)  # two rows of (key, state)
    for order in orders:
        order.state = "canceled"
    with CaptureQueriesContext(connection) as queries:
        assert rows_update(orders, ["state"]) == 5
    assert len(queries.captured_queries) == 3
    assert {state for _, state, *_ in stored(orders)} == {"canceled"}


def test_nothing_to_store_sends_nothing(orders):
    with CaptureQueriesContext(connection) as queries:
        assert rows_update([], ["state"]) == 0
    assert queries.captured_queries == []


@pytest.mark.parametrize(
    "fields, message",
    [([], "must be concrete non-key fields"), (["id"], "must be concrete non-key fields"), (["nope"], "nope")],
)
def test_fields_that_cannot_be_stored_are_refused(orders, fields, message):
    with pytest.raises(Exception, match=message):
        rows_update(orders, fields)


def test_unsaved_or_mixed_rows_are_refused(orders):
    with pytest.raises(ValueError, match="saved already"):
        rows_update([Order(state="filled")], ["state"])
    with pytest.raises(ValueError, match="given twice"):
        rows_update([orders[0], Order.objects.get(pk=orders[0].pk)], ["state"])
    run = orders[0].run
    with pytest.raises(ValueError, match="one model"):
        rows_update([orders[0], run], ["updated_at"])
    assert {state for _, state, *_ in stored(orders)} == {"planned"}


def test_rows_as_builds_instances_equal_to_those_the_orm_reads(orders):
    # Decimals, dates and JSON come back as the ORM returns them (SQLite hands back numbers and texts).
    fields = Order._meta.concrete_fields
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {quote(Order._meta.db_table)} ORDER BY {quote('id')}")
        rows = cursor.fetchall()
    built = rows_as(Order, rows, connection)
    loaded = list(Order.objects.order_by("pk"))
    assert [[getattr(o, f.attname) for f in fields] for o in built] == [
        [getattr(o, f.attname) for f in fields] for o in loaded
    ]
    assert all(not o._state.adding and o._state.db == connection.alias for o in built)
    assert isinstance(built[0].quantity, Decimal) and built[0].created_at.tzinfo is not None
    with pytest.raises(ValueError, match=r"rows_as: brokers\.Order has"):
        rows_as(Order, [rows[0][:-1]], connection)
