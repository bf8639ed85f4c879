"""Broker failures as sentences: `broker_error_text` on the errors the real adapters raise, and a
sync from the portfolio page against an unreachable Alpaca, whose page shows the sentence while
the adapter's own message (an SDK's exception text) goes to the log only."""

from __future__ import annotations

import logging
import socket
from datetime import datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from brokers.base import BrokerError
from brokers.error_text import broker_error_text
from brokers.models import BrokerAccount
from brokers.services.accounts import broker_account_create, broker_for
from portfolios.models import RebalanceRun
from portfolios.services import pipeline
from portfolios.tests.execution_factories import NEW_YORK, use_fake_alpaca
from portfolios.tests.factories import AS_OF, make_portfolio
from tests.fakes.alpaca_server import FakeAlpacaServer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("prices")]
KEY, SECRET = "fake-key-id", "fake-secret-key"
RAW_TEXT = ("ConnectionPool", "Traceback", "Errno", "Error(", "Max retries")
AFTER_CLOSE = datetime(2025, 6, 30, 16, 30, tzinfo=NEW_YORK)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def alpaca(owner):
    return broker_account_create(
        owner=owner, kind="alpaca", label="Alpaca paper", credentials={"api_key": KEY, "secret_key": SECRET}
    )


@pytest.fixture
def unreachable(settings) -> int:
    """Alpaca's paper URL points at a closed port on 127.0.0.1; the port."""
    port = closed_port()
    alpaca_options = {"paper_url": f"http://127.0.0.1:{port}", "timeout_s": 0.5, "retry_attempts": 0}
    settings.BROKER_OPTIONS = {**settings.BROKER_OPTIONS, "alpaca": alpaca_options}
    return port


def read_error(account: BrokerAccount) -> BrokerError:
    with pytest.raises(BrokerError) as caught, broker_for(account) as broker:
        broker.account()
    return caught.value


def test_an_unreachable_host_is_named_with_its_address(alpaca, unreachable):
    error = read_error(alpaca)
    assert "ConnectionPool" in str(error)  # what the adapter says, for the log

    assert broker_error_text(error, account=alpaca) == (
        f"Could not reach Alpaca at 127.0.0.1:{unreachable}: connection refused. Check the address and that the "
        "service is running, then try again."
    )


def test_refused_keys_rate_limits_server_errors_and_refusals_read_as_sentences(alpaca, settings):
    with FakeAlpacaServer(secret_key="another-secret") as server:
        use_fake_alpaca(settings, server)
        refused = broker_error_text(read_error(alpaca), account=alpaca)
        server.secret_key = SECRET
        server.rate_limit_next(10)
        limited = broker_error_text(read_error(alpaca), account=alpaca)
        server.clear_faults()
        server.fail_next(1, 503)
        failing = broker_error_text(read_error(alpaca), account=alpaca)
        server.fail_next(1, 404, {"code": 40410000, "message": "account not found"})
        not_found = broker_error_text(read_error(alpaca), account=alpaca)

    assert refused == (
        "Alpaca refused these keys (HTTP 401): check the API key ID and the secret key, and that they are paper keys."
    )
    assert limited == "Alpaca is limiting requests (HTTP 429, too many requests): wait a minute and try again."
    assert failing == "Alpaca had a problem on its side (HTTP 503): try again in a few minutes."
    assert not_found == "Alpaca refused the request (HTTP 404): account not found."


def test_the_adapters_own_sentences_pass_and_exception_text_never_does(alpaca):
    missing = BrokerError("Alpaca account 5: missing credentials: secret_key; enter the account's Alpaca API key")
    assert broker_error_text(missing, account=alpaca) == f"{missing}."

    raw = BrokerError("IB 127.0.0.1:4002: read positions failed: KeyError('DU123')")
    assert broker_error_text(raw, account=alpaca) == "Alpaca gave no usable answer: try again in a few minutes."

    refused_raw = BrokerError("x (HTTP 400: <Response object at 0x7f>)", permanent=True, status_code=400)
    assert broker_error_text(refused_raw, account=alpaca) == "Alpaca refused the request (HTTP 400)."


def test_a_sync_against_an_unreachable_alpaca_shows_a_sentence_and_logs_the_detail(client, alpaca, unreachable, caplog):
    portfolio = make_portfolio(alpaca.owner, holdings={"SPY": 10}, cash_usd=Decimal(100), broker_account=alpaca)

    with caplog.at_level(logging.WARNING):
        response = client.post(reverse("portfolio_sync", args=[portfolio.pk]), follow=True)

    page = response.content.decode()
    assert response.status_code == 200
    assert (
        f"cannot read positions from Alpaca paper: Could not reach Alpaca at 127.0.0.1:{unreachable}: "
        "connection refused." in page
    )
    assert not any(raw in page for raw in RAW_TEXT)
    logged = [str(getattr(record, "error", "")) for record in caplog.records]
    assert any("ConnectionPool" in text for text in logged)
    assert not any(SECRET in text or SECRET in record.getMessage() for text, record in zip(logged, caplog.records))


def test_the_daily_run_records_the_sentence_for_an_unreachable_broker(alpaca, unreachable, clock):
    clock.now = AFTER_CLOSE
    portfolio = make_portfolio(alpaca.owner, holdings={"SPY": 10}, cash_usd=Decimal(100), broker_account=alpaca)

    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.FAILED

    run = RebalanceRun.objects.get(portfolio=portfolio)
    assert run.error.startswith(
        f"cannot read positions from Alpaca paper: Could not reach Alpaca at 127.0.0.1:{unreachable}"
    )
    assert not any(raw in run.error for raw in RAW_TEXT)


def test_a_sync_whose_stored_credentials_cannot_be_read_says_what_to_do(client, alpaca, clock):
    BrokerAccount.objects.filter(pk=alpaca.pk).update(credentials_encrypted="not-a-token-of-this-server")
    portfolio = make_portfolio(alpaca.owner, holdings={"SPY": 10}, cash_usd=Decimal(100), broker_account=alpaca)

    response = client.post(reverse("portfolio_sync", args=[portfolio.pk]), follow=True)

    page = response.content.decode()
    assert response.status_code == 200
    assert "the stored credentials of Alpaca paper cannot be read on this server" in page
    assert "enter them again on the broker account" in page
    clock.now = AFTER_CLOSE
    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.FAILED
    assert "cannot be read on this server" in RebalanceRun.objects.get(portfolio=portfolio).error
