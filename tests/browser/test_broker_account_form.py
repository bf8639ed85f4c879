"""The broker account form in real Chromium: only the chosen kind's fields are shown (and sent), every
field shows without JavaScript, and a refused form keeps the credentials that were typed."""

from __future__ import annotations

import os

import pytest
from django.conf import settings

from brokers.models import BrokerAccount
from portfolios.tests.factories import make_user

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls stay synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")

PAPER_FIELDS = ("paper_cash_usd", "paper_session_mode")
ALPACA_FIELDS = ("api_key", "secret_key")
IB_FIELDS = ("host", "port", "client_id")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def logged_in(browser, live_server, client):
    """A function opening a browser context logged in as alice (JavaScript on or off)."""
    client.force_login(make_user("alice"))
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    contexts = []

    def open_page(*, javascript: bool = True):
        context = browser.new_context(base_url=live_server.url, java_script_enabled=javascript)
        context.set_default_timeout(20_000)
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.errors = errors
        return page

    yield open_page
    for context in contexts:
        context.close()


def shown(page, names) -> list[bool]:
    return [page.locator(f"[name={name}]").is_visible() for name in names]


def test_only_the_chosen_kinds_fields_are_shown_and_sent(logged_in):
    page = logged_in()
    page.goto("/brokers/new/")
    expect = sync_api.expect

    expect(page.locator("select[name=kind]")).to_have_value("paper")
    assert shown(page, PAPER_FIELDS) == [True, True]
    assert shown(page, (*ALPACA_FIELDS, *IB_FIELDS, "is_live")) == [False] * 6

    page.fill("input[name=paper_cash_usd]", "-5")  # typed, then another kind chosen
    page.select_option("select[name=kind]", "alpaca")
    assert shown(page, ALPACA_FIELDS) == [True, True] and shown(page, ("is_live",)) == [True]
    assert shown(page, (*PAPER_FIELDS, *IB_FIELDS)) == [False] * 5
    expect(page.get_by_label("API key ID (Alpaca)")).to_be_visible()

    page.select_option("select[name=kind]", "ib")
    assert shown(page, IB_FIELDS) == [True] * 3 and shown(page, (*PAPER_FIELDS, *ALPACA_FIELDS)) == [False] * 4

    # A refused form keeps the typed credentials and the chosen kind, with only its fields shown.
    page.select_option("select[name=kind]", "alpaca")
    page.fill("input[name=label]", "Alpaca")
    page.fill("input[name=api_key]", "PKTESTKEY12345678")
    page.fill("input[name=secret_key]", "typed-secret-0123456789")
    page.fill("input[name=password]", "not my password")
    page.get_by_role("button", name="Add the account").click()
    expect(page.get_by_text("the password is not correct").first).to_be_visible()
    expect(page.locator("input[name=api_key]")).to_have_value("PKTESTKEY12345678")
    expect(page.locator("input[name=secret_key]")).to_have_value("typed-secret-0123456789")
    expect(page.locator("input[name=password]")).to_have_value("")
    assert shown(page, ALPACA_FIELDS) == [True, True] and shown(page, PAPER_FIELDS) == [False, False]
    # The paper cash typed before was never sent: no error names it.
    assert "Starting cash" not in (page.locator(".error-summary").text_content() or "")
    assert not BrokerAccount.objects.exists()
    assert page.errors == []


def test_without_javascript_every_field_is_shown_with_its_kind(logged_in):
    page = logged_in(javascript=False)
    page.goto("/brokers/new/")

    assert shown(page, (*PAPER_FIELDS, *ALPACA_FIELDS, *IB_FIELDS, "is_live")) == [True] * 8
    for label in ("Starting cash (paper)", "Secret key (Alpaca)", "Client id (Interactive Brokers)"):
        sync_api.expect(page.get_by_label(label)).to_be_visible()
