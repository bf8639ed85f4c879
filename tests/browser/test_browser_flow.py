"""The whole day of a user, in real Chromium: log in, open a paper broker account, create a
portfolio, enter holdings, rebalance, read the report (every chart drawn by plotly), approve the
plan and see the orders filled. And two-factor authentication: turn it on, log out, log in with the
password and a code from the authenticator app.

Screenshots of the dashboard and the report are written to tests/artifacts/ (git-ignored) on every
run. Chromium is Debian's (``apt-get install chromium``; ``.ci/run`` installs it); the tests skip,
saying why, when it or the playwright package is missing.
"""

from __future__ import annotations

import os
import re
from base64 import b32decode
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django_otp.oath import totp

from brokers.models import PaperOrder
from brokers.services.accounts import broker_account_create
from brokers.services.paper import paper_account_reset
from marketdata.services import prices_fetch
from portfolios.models import RebalanceRun
from portfolios.tests.execution_factories import NEW_YORK
from portfolios.tests.factories import make_portfolio, make_user

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still
# synchronous and single-threaded, which is what Django's guard protects.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PASSWORD = "correct-horse-battery-9"
SYMBOLS = ["SPY", "VTI", "VXUS", "BND"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def page(request, browser, live_server, django_user_model):
    django_user_model.objects.create_user("carol", password=PASSWORD)
    prices_fetch(symbols=SYMBOLS, provider_names=["sample"])
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        screenshot(opened, f"failed-{request.node.name}")
    context.close()
    assert not errors, f"JavaScript errors in the pages: {errors}"


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_user_rebalances_a_new_portfolio_and_approves_the_plan_on_the_paper_broker(page):
    expect = sync_api.expect

    # Every page asks for a login first.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_text("create your first portfolio", exact=False)).to_be_visible()

    # A paper account with $100,000 that trades at any hour (a simulation).
    page.goto("/brokers/new/")
    page.select_option("select[name=kind]", "paper")
    page.fill("input[name=label]", "My paper account")
    page.fill("input[name=paper_cash_usd]", "100000")
    page.select_option("select[name=paper_session_mode]", "always_open")
    page.get_by_role("button", name="Add the account").click()
    expect(page.get_by_text("My paper account").first).to_be_visible()

    # A portfolio with manual targets (so the plan is known in advance) on that account, propose mode.
    page.goto("/portfolios/new/")
    page.fill("input[name=name]", "Browser portfolio")
    page.fill("input[name=age]", "45")
    page.fill("[name=symbols]", ", ".join(SYMBOLS))
    page.fill("[name=manual_targets]", "SPY: 0.4, VTI: 0.2, VXUS: 0.1, BND: 0.3")
    account = page.locator("select[name=broker_account] option", has_text="My paper account").get_attribute("value")
    page.select_option("select[name=broker_account]", account)
    page.select_option("select[name=mode]", "propose")
    page.get_by_role("button", name="Create portfolio").click()
    expect(page.get_by_role("heading", name="Browser portfolio")).to_be_visible()

    # Creating it leads to its holdings: 10 VTI and $90,000 of cash, all below target (no sells).
    expect(page.get_by_role("heading", name=re.compile("Holdings of"))).to_be_visible()
    page.fill("input[name=holdings-0-symbol]", "VTI")
    page.fill("input[name=holdings-0-quantity]", "10")
    page.fill("input[name=cash_usd]", "90000")
    page.get_by_role("button", name="Save holdings").click()
    expect(page.get_by_role("heading", name="Browser portfolio")).to_be_visible()
    expect(page.locator("table").first).to_contain_text("VTI")

    # Rebalance now: the plan buys every target; its report opens.
    page.get_by_role("button", name=re.compile("rebalance now", re.I)).click()
    expect(page.get_by_role("heading", name=re.compile("Rebalancing report"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"Planned 4 trade"))).to_be_visible()
    charts = page.locator(".js-plotly-plot")
    expect(charts.first.locator("svg.main-svg").first).to_be_attached()
    count = charts.count()
    assert count >= 7, f"expected the report's charts, found {count}"
    for index in range(count):
        chart = charts.nth(index)
        # plotly draws each figure as SVG with at least one trace inside.
        assert chart.locator("svg.main-svg").count() >= 1, f"chart {index} was not drawn"
        drawn = chart.locator(".trace, .pielayer .slice, .heatmaplayer image, .hm")
        assert drawn.count() >= 1, f"chart {index} is empty"
    screenshot(page, "report")

    # Approve: a confirmation page lists the orders and the checks, the POST sends them.
    page.get_by_role("link", name=re.compile("review and approve", re.I)).click()
    expect(page.get_by_role("heading", name=re.compile("Approve and execute"))).to_be_visible()
    for symbol in SYMBOLS:
        expect(page.locator("table").first.get_by_text(symbol, exact=True)).to_be_visible()
    page.get_by_role("button", name=re.compile(r"Approve and send 4 orders")).click()
    expect(page.get_by_text(re.compile(r"Executed: 4 orders sent"))).to_be_visible()
    orders = page.locator("#execution h3:text-is('Orders') + table")
    for symbol in SYMBOLS:
        row = orders.locator("tr", has_text=symbol)
        expect(row).to_contain_text("filled")

    # The dashboard shows the portfolio, invested, with its executed run.
    page.goto("/")
    card = page.locator(".card", has_text="Browser portfolio")
    expect(card).to_contain_text("Executed")
    expect(card).to_contain_text("4 trades")
    screenshot(page, "dashboard")


def test_a_user_edits_holdings_previews_saves_the_plan_and_approves_it_on_a_weekend(running_clock, page):
    """The everyday loop: the holdings change, the preview shows the plan they get, saving stores
    exactly that plan, and approving it on a Saturday queues it for Monday's open."""
    expect = sync_api.expect
    running_clock.now = datetime(2025, 7, 5, 11, 0, tzinfo=NEW_YORK)  # Saturday; Friday 4 July is a holiday
    prices_fetch(symbols=SYMBOLS, provider_names=["sample"])  # up to Thursday's close
    carol = get_user_model().objects.get(username="carol")
    account = broker_account_create(owner=carol, kind="paper", label="Weekday paper")
    paper_account_reset(account=account, cash_usd=Decimal(100_000), positions={})
    portfolio = make_portfolio(
        carol,
        name="Weekend portfolio",
        symbols=SYMBOLS,
        manual_targets={"SPY": "0.4", "VTI": "0.2", "VXUS": "0.1", "BND": "0.3"},
        broker_account=account,
        mode="propose",
    )
    log_in(page)

    # The owner moved $100,000 into the account: the holdings editor says so.
    page.goto(f"/portfolios/{portfolio.pk}/holdings/")
    page.fill("input[name=cash_usd]", "100000")
    page.get_by_role("button", name="Save holdings").click()
    expect(page.get_by_role("heading", name="Weekend portfolio")).to_be_visible()

    # The preview: the plan these holdings get, nothing stored.
    page.locator("#preview-plan summary").click()
    page.locator("#preview-plan").get_by_role("button", name=re.compile("preview", re.I)).click()
    expect(page.get_by_role("heading", name=re.compile("Plan preview"))).to_be_visible()
    for symbol in SYMBOLS:
        expect(page.locator("main table", has_text="Reason").first.get_by_text(symbol, exact=True)).to_be_visible()
    assert not RebalanceRun.objects.filter(portfolio=portfolio).exists()

    # Save as plan: the run stored is the one previewed; its report opens.
    page.get_by_role("button", name="Save as plan").click()
    expect(page.get_by_role("heading", name=re.compile("Rebalancing report"))).to_be_visible()
    run = RebalanceRun.objects.get(portfolio=portfolio)
    assert run.trading_date == date(2025, 7, 3) and run.trades.count() == 4

    # Approve on Saturday: the page says when the orders go, and approving queues them for then.
    page.get_by_role("link", name=re.compile("review and approve", re.I)).click()
    expect(page.locator("#approve-queued")).to_contain_text("Monday 7 July 9:35 ET")
    page.get_by_role("button", name="Approve: send 4 orders at Monday 7 July 9:35 ET").click()
    expect(page.get_by_text(re.compile(r"queued and executes at Monday 7 July 9:35 ET"))).to_be_visible()
    run.refresh_from_db()
    assert run.approved_at is not None
    assert run.execute_after == datetime(2025, 7, 7, 9, 35, tzinfo=NEW_YORK)
    assert not PaperOrder.objects.exists()  # nothing sent before the open
    screenshot(page, "approved-on-a-weekend")


def log_in(page) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    sync_api.expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_another_users_portfolio_is_a_404_in_the_browser_too(page):
    other = make_portfolio(make_user("mallory"), symbols=SYMBOLS, holdings={"SPY": 3})
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    response = page.goto(f"/portfolios/{other.pk}/")
    assert response.status == 404
    assert "SPY" not in page.content()


def test_a_user_turns_on_two_factor_authentication_and_logs_in_with_a_code(page):
    expect = sync_api.expect
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # Security: turn it on with the key the page shows (what the app would scan from the QR code).
    page.get_by_role("link", name="Security").click()
    page.get_by_role("link", name="Turn on two-factor authentication").click()
    expect(page.get_by_role("img", name="QR code of the key").locator("svg")).to_be_visible()
    secret = b32decode(page.locator("#totp-secret").inner_text().replace(" ", ""))
    screenshot(page, "two-factor-setup")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=code]", f"{totp(secret):06d}")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Two-factor authentication is on")).to_be_visible()
    expect(page.locator("#recovery-codes code")).to_have_count(10)
    page.get_by_role("link", name="I saved them").click()
    expect(page.get_by_text("Recovery codes left: 10")).to_be_visible()

    # Log out, then in: the password, then a code (the next time step's: the set-up code is spent).
    page.get_by_role("button", name=re.compile("Log out")).click()
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.fill("input[name=code]", f"{totp(secret, drift=1):06d}")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
