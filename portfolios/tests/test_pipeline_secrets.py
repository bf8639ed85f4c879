"""A whole day with broker credentials and every secret set: not one of them reaches the logs."""

from __future__ import annotations

import io
import json
import logging

import pytest

from brokers.models import Order
from portfolios.models import RebalanceRun
from portfolios.services import pipeline
from tests.fakes.alpaca_server import FakeAlpacaServer

from .execution_factories import alpaca_portfolio, use_fake_alpaca
from .factories import AS_OF

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(settings):
    with FakeAlpacaServer() as fake:
        use_fake_alpaca(settings, fake)
        yield fake


@pytest.fixture
def portfolio(prices, clock, server):
    return alpaca_portfolio(server)


def test_a_full_run_logs_no_secret(portfolio, server, settings):
    settings.PRICE_PROVIDERS = ["sample"]
    settings.DRIFT_ALERT_THRESHOLD = 0.01  # an alert e-mail too
    # The configured console handler itself (its JSON formatter and filters), into a buffer.
    console = next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler))
    buffer = io.StringIO()
    previous = console.setStream(buffer)
    logging.getLogger().setLevel(logging.DEBUG)
    portfolio.owner.email = "alice@example.com"
    portfolio.owner.save()
    server.accept_then_fail(504)  # an error path through the adapter's logging as well
    try:
        result = pipeline.daily_run(
            trading_date=AS_OF, dispatch=lambda ids, day: pipeline.portfolios_day(portfolio_ids=ids, trading_date=day)
        )
    finally:
        logging.getLogger().setLevel(settings.LOG_LEVEL)
        console.setStream(previous)
    assert result.portfolio_ids == [portfolio.pk]
    run = RebalanceRun.objects.get(portfolio=portfolio)
    assert run.status == RebalanceRun.Status.EXECUTED and Order.objects.filter(run=run).count() == 2
    logs = buffer.getvalue()
    executed = next(json.loads(line) for line in logs.splitlines() if '"run executed"' in line)
    assert executed["run_id"] == run.pk and executed["portfolio_id"] == portfolio.pk
    assert executed["user_id"] == portfolio.owner_id
    sent = [json.loads(line) for line in logs.splitlines() if '"order sent"' in line]
    assert {entry["client_order_id"] for entry in sent} <= set(run.orders.values_list("client_order_id", flat=True))
    assert sent and all(entry["run_id"] == run.pk for entry in sent)
    secrets = ["fake-key-id", "fake-secret-key", settings.SECRET_KEY, *settings.FIELD_ENCRYPTION_KEYS]
    for secret in secrets:
        assert secret not in logs, f"a secret appears in the logs: {secret[:4]}..."
