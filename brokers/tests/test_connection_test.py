"""The "Test connection" button of the broker account form and detail page: the broker's account is
read with the typed (or stored) credentials through the real adapter, against the fake Alpaca on
127.0.0.1 (or a closed port there), the outcome is a sentence a person reads, and nothing is saved."""

from __future__ import annotations

import socket
from decimal import Decimal

import pytest
from django.urls import reverse

from brokers.crypto import decrypt_credentials
from brokers.models import BrokerAccount, PaperAccount
from brokers.services.accounts import broker_account_create
from brokers.services.paper import paper_account_reset
from portfolios.tests.execution_factories import use_fake_alpaca
from tests.fakes.alpaca_server import FakeAlpacaServer

pytestmark = pytest.mark.django_db
KEY, SECRET = "fake-key-id", "fake-secret-key"
RAW_TEXT = ("ConnectionPool", "Traceback", "Errno", "Error(", "Max retries")


@pytest.fixture
def server(settings):
    with FakeAlpacaServer() as fake:
        fake.cash = "12345"
        use_fake_alpaca(settings, fake)
        yield fake


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_test(client, data: dict):
    return client.post(reverse("broker_account_new_connection_test"), data)


def page_of(response) -> str:
    page = response.content.decode()
    assert not any(raw in page for raw in RAW_TEXT), page
    return page


# -- a new account: the typed credentials -----------------------------------------------------------


def test_keys_alpaca_accepts_connect_and_nothing_is_saved(client, owner, server):
    response = post_test(client, {"kind": "alpaca", "label": "", "api_key": KEY, "secret_key": SECRET})

    assert response.status_code == 200
    page = page_of(response)
    assert (
        "Connected to Alpaca, paper trading: trading allowed, cash $12,345.00, buying power $12,345.00, "
        "equity $12,345.00." in page
    )
    assert "Nothing was saved." in page
    assert len(server.requests_to("/v2/account")) == 1
    assert not BrokerAccount.objects.exists()
    # The typed keys stay in the form, ready to be saved; a test asks for no label and no password.
    assert f'value="{KEY}"' in page and f'value="{SECRET}"' in page
    assert response.context["form"].errors == {}


def test_keys_alpaca_refuses_are_named_as_refused_keys(client, owner, server):
    response = post_test(client, {"kind": "alpaca", "api_key": KEY, "secret_key": "not-the-secret-key"})

    assert response.status_code == 200
    page = page_of(response)
    assert (
        "Alpaca refused these keys (HTTP 401): check the API key ID and the secret key, and that they are "
        "paper keys." in page
    )
    assert "not connected" in page and not BrokerAccount.objects.exists()


def test_an_unreachable_alpaca_is_named_with_its_address(client, owner, server, settings):
    port = closed_port()
    settings.BROKER_OPTIONS = {**settings.BROKER_OPTIONS, "alpaca": {"paper_url": f"http://127.0.0.1:{port}"}}

    response = post_test(client, {"kind": "alpaca", "api_key": KEY, "secret_key": SECRET})

    assert response.status_code == 200
    page = page_of(response)
    assert f"Could not reach Alpaca at 127.0.0.1:{port}: connection refused." in page
    assert server.requests == []


def test_an_alpaca_that_does_not_answer_in_time_is_named(client, owner, server):
    server.delay_s = 2.0  # the adapter waits 0.5 s (use_fake_alpaca)

    page = page_of(post_test(client, {"kind": "alpaca", "api_key": KEY, "secret_key": SECRET}))

    assert f"Could not reach Alpaca at 127.0.0.1:{server.url.rsplit(':', 1)[1]}: it did not answer in time" in page


@pytest.mark.parametrize(
    ("fault", "text"),
    [
        ("rate_limit", "Alpaca is limiting requests (HTTP 429, too many requests): wait a minute and try again."),
        ("server_error", "Alpaca had a problem on its side (HTTP 500): try again in a few minutes."),
    ],
)
def test_a_busy_or_failing_alpaca_is_named(client, owner, server, fault, text):
    if fault == "rate_limit":
        server.rate_limit_next(10, method="GET", path="/v2/account")
    else:
        server.fail_next(10, 500)

    page = page_of(post_test(client, {"kind": "alpaca", "api_key": KEY, "secret_key": SECRET}))

    assert text in page


def test_an_unreachable_interactive_brokers_gateway_is_named(client, owner):
    response = post_test(client, {"kind": "ib", "host": "127.0.0.1", "port": str(closed_port()), "client_id": "7"})

    assert response.status_code == 200
    page = page_of(response)
    assert "Could not reach Interactive Brokers" in page and "connection refused" in page
    assert not BrokerAccount.objects.exists()


def test_missing_or_malformed_keys_are_named_next_to_their_field_and_nothing_is_sent(client, owner, server):
    missing = post_test(client, {"kind": "alpaca", "api_key": KEY})
    assert missing.status_code == 400
    assert missing.context["form"].errors == {"secret_key": ["needed to test the connection"]}
    assert "Connection not tested" in missing.content.decode()

    malformed = post_test(client, {"kind": "alpaca", "api_key": "short", "secret_key": SECRET})
    assert malformed.status_code == 400
    assert "expected 8 to 200" in " ".join(malformed.context["form"].errors["api_key"])
    assert server.requests == []


def test_a_new_paper_account_has_nothing_to_connect_to(client, owner):
    response = post_test(client, {"kind": "paper", "label": "Sandbox", "paper_cash_usd": "5000"})

    assert response.status_code == 200
    assert "Paper (built-in simulator) runs inside this server: there is nothing to connect to." in page_of(response)
    assert not BrokerAccount.objects.exists()


# -- an existing account: typed credentials over the stored ones ---------------------------------------


@pytest.fixture
def alpaca(owner):
    return broker_account_create(
        owner=owner, kind="alpaca", label="Alpaca", credentials={"api_key": KEY, "secret_key": SECRET}
    )


def test_the_edit_page_tests_the_stored_keys_without_showing_them(client, alpaca, server):
    response = client.post(reverse("broker_account_connection_test", args=[alpaca.pk]), {"label": "Alpaca"})

    assert response.status_code == 200
    page = page_of(response)
    assert "Connected to Alpaca, paper trading" in page
    assert KEY not in page and SECRET not in page


def test_a_typed_secret_is_tested_over_the_stored_key_and_nothing_changes(client, alpaca, server):
    before = BrokerAccount.objects.values().get(pk=alpaca.pk)

    response = client.post(
        reverse("broker_account_connection_test", args=[alpaca.pk]),
        {"label": "Renamed", "secret_key": "a-wrong-secret-123"},
    )

    page = page_of(response)
    assert "Alpaca refused these keys (HTTP 401)" in page
    # The secret just typed stays in its input; the stored key is never rendered.
    assert 'value="a-wrong-secret-123"' in page and KEY not in page and SECRET not in page
    headers = {name.lower(): value for name, value in server.requests_to("/v2/account")[0].headers.items()}
    assert headers["apca-api-key-id"] == KEY
    assert BrokerAccount.objects.values().get(pk=alpaca.pk) == before
    alpaca.refresh_from_db()
    assert decrypt_credentials(alpaca.credentials_encrypted) == {"api_key": KEY, "secret_key": SECRET}


def test_the_detail_page_button_tests_the_stored_keys(client, alpaca, server):
    page = client.get(reverse("broker_account_detail", args=[alpaca.pk])).content.decode()
    assert "Test connection</button>" in page

    response = client.post(reverse("broker_account_connection_test", args=[alpaca.pk]), {"from": "detail"}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("broker_account_detail", args=[alpaca.pk])
    assert "Connected to Alpaca, paper trading: trading allowed, cash $12,345.00" in page_of(response)


def test_the_detail_page_names_what_is_missing_for_a_test(client, owner, server):
    account = broker_account_create(owner=owner, kind="alpaca", label="No keys yet")

    response = client.post(
        reverse("broker_account_connection_test", args=[account.pk]), {"from": "detail"}, follow=True
    )

    page = page_of(response)
    assert "Connection not tested: API key ID (Alpaca): needed to test the connection" in page
    assert server.requests == []


def test_a_paper_account_reports_its_simulated_cash_and_keeps_it(client, owner):
    account = broker_account_create(owner=owner, kind="paper", label="Sandbox")
    paper_account_reset(account=account, cash_usd=Decimal("1234.5"), positions={})

    response = client.post(
        reverse("broker_account_connection_test", args=[account.pk]), {"from": "detail"}, follow=True
    )

    assert "Connected to Paper (built-in simulator), paper trading: trading allowed, cash $1,234.50" in page_of(
        response
    )
    assert PaperAccount.objects.get(account=account).cash_usd == Decimal("1234.5")


def test_a_test_is_taken_by_post_only(client, alpaca):
    assert client.get(reverse("broker_account_connection_test", args=[alpaca.pk])).status_code == 405
    assert client.get(reverse("broker_account_new_connection_test")).status_code == 405
