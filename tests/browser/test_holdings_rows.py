"""The holdings editor's "Add row" in real Chromium: each click adds an empty, labelled row that the
server saves like the others; and the editor and the sync review pass axe's checks."""

from __future__ import annotations

import os
import re
from decimal import Decimal

import pytest

from brokers.services.accounts import broker_account_create
from brokers.services.paper import paper_account_reset
from marketdata.services import prices_fetch
from portfolios.tests.factories import make_portfolio

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still
# synchronous and single-threaded, which is what Django's guard protects.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
PASSWORD = "correct-horse-battery-9"
SYMBOLS = ["SPY", "VTI", "VXUS", "BND"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def portfolio(django_user_model):
    owner = django_user_model.objects.create_user("carol", password=PASSWORD)
    prices_fetch(symbols=SYMBOLS, provider_names=["sample"])
    account = broker_account_create(owner=owner, kind="paper", label="Carol's paper account")
    paper_account_reset(account=account, cash_usd=Decimal(700), positions={"VTI": (Decimal(12), Decimal(250))})
    return make_portfolio(
        owner, symbols=SYMBOLS, holdings={"VTI": 10, "BND": 5}, cash_usd=Decimal(100), broker_account=account
    )


@pytest.fixture
def page(browser, live_server, portfolio):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto("/accounts/login/")
    opened.fill("input[name=username]", "carol")
    opened.fill("input[name=password]", PASSWORD)
    opened.click("main button[type=submit]")
    sync_api.expect(opened.get_by_role("heading", name="Dashboard")).to_be_visible()
    yield opened
    context.close()
    assert not errors, f"JavaScript errors in the pages: {errors}"


def test_add_row_adds_labelled_rows_the_server_saves(page, portfolio):
    expect = sync_api.expect
    page.goto(f"/portfolios/{portfolio.pk}/holdings/")
    expect(page.get_by_role("button", name="Add rows")).to_have_count(0)  # the script's button replaces it
    add = page.get_by_role("button", name="Add row", exact=True)

    add.click()
    add.click()

    expect(page.locator("#id_holdings-TOTAL_FORMS")).to_have_value("7")
    expect(page.get_by_label("Symbol, row 7")).to_be_focused()
    expect(page.get_by_label("Remove row 7")).to_be_visible()
    page.get_by_label("Symbol, row 7").fill("SPY")
    page.get_by_label("Quantity, row 7").fill("3")
    expect(page.get_by_label("Symbol, row 1")).to_have_value("BND")  # the holdings come by symbol
    page.get_by_label("Remove row 1").check()
    page.get_by_role("button", name="Save holdings").click()

    expect(page.get_by_text("Holdings saved: 2 holding(s)")).to_be_visible()
    held = {h.instrument.symbol: h.quantity for h in portfolio.holdings.select_related("instrument")}
    assert held == {"VTI": Decimal(10), "SPY": Decimal(3)}


def test_the_editor_with_added_rows_and_the_sync_review_pass_axe(page, portfolio):
    axe_playwright = pytest.importorskip("axe_playwright_python.sync_playwright", reason="axe-playwright-python")
    axe = axe_playwright.Axe()
    page.goto(f"/portfolios/{portfolio.pk}/holdings/")
    page.get_by_role("button", name="Add row", exact=True).click()
    pages = {"holdings editor": axe.run(page).response}
    page.goto(f"/portfolios/{portfolio.pk}/")
    page.get_by_role("link", name=re.compile("Sync from broker")).click()
    sync_api.expect(page.get_by_role("heading", name=re.compile("Sync Retirement|Sync Core"))).to_be_visible()
    pages["sync review"] = axe.run(page).response
    problems = [
        f"{name}: {violation['id']} [{violation['impact']}] {violation['help']}"
        for name, results in pages.items()
        for violation in results["violations"]
        if violation["impact"] in {"serious", "critical"}
    ]
    assert not problems, problems

    page.get_by_role("button", name="Confirm: replace holdings and cash").click()
    sync_api.expect(page.get_by_text("Synced from Carol's paper account: BND 5 → 0; VTI 10 → 12")).to_be_visible()
