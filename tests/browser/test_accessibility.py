"""Every page of the site through axe-core (WCAG 2.1 A and AA, and axe's best practices) in real
Chromium: no violation of impact "serious" or "critical" on any page, in the states a user sees
(empty and filled, a form with errors, two-factor authentication off and on).

Also what axe cannot see: each ``aria-describedby`` names an element that exists, a form with
errors moves the focus to its error summary, and the first Tab reaches the skip link.

axe-core comes with the axe-playwright-python package (requirements-dev.txt); the tests skip, saying
why, when it, playwright or Chromium is missing.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp.oath import totp

from brokers.models import PaperAccount
from brokers.services.accounts import broker_account_create
from brokers.services.paper import paper_account_reset
from marketdata.services import prices_fetch
from portfolios.tests.factories import make_portfolio
from two_factor.services import new_secret, two_factor_enable

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still
# synchronous and single-threaded, which is what Django's guard protects.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
axe_playwright = pytest.importorskip(
    "axe_playwright_python.sync_playwright", reason="axe-playwright-python is not installed (requirements-dev.txt)"
)

PASSWORD = "correct-horse-battery-9"
SYMBOLS = ["SPY", "VTI", "VXUS", "BND"]
BLOCKING_IMPACTS = {"serious", "critical"}

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", email="carol@example.com", password=PASSWORD)


@pytest.fixture
def portfolio(carol):
    """A propose-mode portfolio with holdings, on a paper account that trades at any hour."""
    prices_fetch(symbols=SYMBOLS, provider_names=["sample"])
    account = broker_account_create(owner=carol, kind="paper", label="Carol's paper account")
    paper_account_reset(
        account=account, cash_usd=Decimal(90_000), positions={}, session_mode=PaperAccount.SessionMode.ALWAYS_OPEN
    )
    return make_portfolio(
        carol,
        name="Retirement",
        symbols=SYMBOLS,
        holdings={"VTI": 10, "BND": 5},
        cash_usd=Decimal(90_000),
        manual_targets={"SPY": "0.4", "VTI": "0.2", "VXUS": "0.1", "BND": "0.3"},
        broker_account=account,
        mode="propose",
    )


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    opened = context.new_page()
    yield opened
    context.close()


class AxeAudit:
    """Runs axe on each page visited and keeps every blocking violation, named by page."""

    def __init__(self, page):
        self.page = page
        self.axe = axe_playwright.Axe()
        self.problems: list[str] = []
        self.pages: list[str] = []

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("load")
        self.pages.append(name)
        results = self.axe.run(self.page, options=None).response
        for violation in results["violations"]:
            if violation["impact"] not in BLOCKING_IMPACTS:
                continue
            for node in violation["nodes"]:
                related = [r["target"] for check in node["any"] + node["all"] for r in check["relatedNodes"]][:3]
                self.problems.append(
                    f"{name} ({self.page.url}): {violation['id']} [{violation['impact']}] at {node['target']}: "
                    f"{violation['help']}\n    {node.get('failureSummary', '').replace(chr(10), ' ')}"
                    + (f" (related: {related})" if related else "")
                )
        for missing in self.page.evaluate(DANGLING_REFERENCES):
            self.problems.append(f"{name} ({self.page.url}): a reference names no element: {missing}")

    def visit(self, name: str, url: str) -> None:
        response = self.page.goto(url)
        assert response.status < 400, f"{name}: {url} answered {response.status}"
        self.check(name)

    def assert_clean(self) -> None:
        assert not self.problems, f"{len(self.problems)} serious or critical accessibility violation(s):\n" + "\n".join(
            self.problems
        )


# Each id that a shown element's aria-describedby or aria-labelledby names, and that no element has.
DANGLING_REFERENCES = """() => [...document.querySelectorAll('[aria-describedby], [aria-labelledby]')]
    .filter(element => element.type !== 'hidden')
    .flatMap(element => ['aria-describedby', 'aria-labelledby'].flatMap(name =>
        (element.getAttribute(name) || '').split(/\\s+/).filter(id => id && !document.getElementById(id))
            .map(id => `${element.id || element.name || element.tagName} ${name}: #${id}`)))"""


def log_in(page, username: str = "carol") -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")


def test_every_page_has_no_serious_or_critical_accessibility_violation(page, settings, carol, portfolio):
    settings.ALLOW_SIGNUP = True
    expect = sync_api.expect
    audit = AxeAudit(page)

    # Before logging in: the login, sign-up and password reset pages.
    audit.visit("login", "/accounts/login/")
    audit.visit("signup", "/accounts/signup/")
    audit.visit("password reset", "/accounts/password/reset/")
    page.fill("input[name=email]", "carol@example.com")
    page.get_by_role("button").last.click()
    expect(page).to_have_url(re.compile(r"/accounts/password/reset/sent/$"))
    audit.check("password reset sent")
    uid = urlsafe_base64_encode(force_bytes(carol.pk))
    token = default_token_generator.make_token(carol)
    audit.visit("password reset confirm", f"/accounts/password/reset/{uid}/{token}/")
    audit.visit("password reset, a used link", f"/accounts/password/reset/{uid}/not-a-token/")
    audit.visit("password reset complete", "/accounts/password/reset/done/")
    page.goto("/api/docs/")
    page.locator(".swagger-ui .opblock-summary-control").first.click()
    expect(page.locator(".swagger-ui .opblock-body").first).to_be_visible()
    selects = page.locator(".swagger-ui .parameters-col_description select")
    expect(selects.first).to_have_attribute("aria-label", re.compile(r"\w"))  # named after its parameter
    audit.check("API docs (Swagger UI), an operation open")

    # Logged in: the dashboard and the portfolio's pages.
    log_in(page)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    audit.check("dashboard")
    audit.visit("portfolio detail", f"/portfolios/{portfolio.pk}/")
    audit.visit("portfolio settings", f"/portfolios/{portfolio.pk}/settings/")
    audit.visit("new portfolio", "/portfolios/new/")
    audit.visit("holdings editor", f"/portfolios/{portfolio.pk}/holdings/")
    audit.visit("holdings CSV upload", f"/portfolios/{portfolio.pk}/holdings/upload/")
    audit.visit("plan preview", f"/portfolios/{portfolio.pk}/preview/")
    audit.visit("plan preview with a deposit", f"/portfolios/{portfolio.pk}/preview/?cash_flow_usd=1000")
    audit.visit("delete portfolio", f"/portfolios/{portfolio.pk}/delete/")

    # A run: its report, then the approval page.
    page.goto(f"/portfolios/{portfolio.pk}/")
    page.get_by_role("button", name=re.compile("rebalance now", re.I)).click()
    expect(page.get_by_role("heading", name=re.compile("Rebalancing report"))).to_be_visible()
    expect(page.locator(".js-plotly-plot svg.main-svg").first).to_be_attached()
    audit.check("run report")
    page.get_by_role("link", name=re.compile("review and approve", re.I)).click()
    expect(page.get_by_role("heading", name=re.compile("Approve and execute"))).to_be_visible()
    audit.check("approve page")
    audit.visit("dashboard with a run", "/")
    audit.visit("portfolio detail with a run", f"/portfolios/{portfolio.pk}/")

    # Broker accounts.
    account = portfolio.broker_account
    audit.visit("broker accounts", "/brokers/")
    audit.visit("broker account", f"/brokers/{account.pk}/")
    audit.visit("new broker account", "/brokers/new/")
    audit.visit("edit broker account", f"/brokers/{account.pk}/edit/")

    # The account's own pages.
    audit.visit("API tokens", "/accounts/tokens/")
    page.fill("input[name=name]", "laptop")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-token-key")).to_be_visible()
    audit.check("API tokens with a new key")
    audit.visit("password change", "/accounts/password/")
    audit.visit("security, two-factor off", "/accounts/security/")
    audit.visit("two-factor setup", "/accounts/security/two-factor/")

    # Two-factor authentication on (turned on elsewhere: this session has not entered a code).
    secret = new_secret()
    two_factor_enable(user=carol, secret_hex=secret, code=f"{totp(bytes.fromhex(secret)):06d}")
    audit.visit("security, two-factor on", "/accounts/security/")
    audit.visit("two-factor verify", "/accounts/security/verify/?next=/accounts/security/")
    page.goto("/accounts/security/")
    page.fill("input[name=codes-password]", PASSWORD)
    page.fill("input[name=codes-code]", f"{totp(bytes.fromhex(secret), drift=1):06d}")
    page.get_by_role("button", name="Make new recovery codes").click()
    expect(page.locator("#recovery-codes code").first).to_be_visible()
    audit.check("new recovery codes")
    page.get_by_role("button", name=re.compile("Log out")).click()
    audit.check("logged out")
    log_in(page)
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    audit.check("login code")

    assert len(audit.pages) >= 30, audit.pages
    audit.assert_clean()


def test_a_form_with_errors_is_accessible_and_focuses_its_error_summary(page, portfolio):
    expect = sync_api.expect
    audit = AxeAudit(page)
    log_in(page)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    page.goto("/portfolios/new/")
    page.fill("input[name=name]", "")
    page.get_by_role("button", name="Create portfolio").click()

    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Nothing was saved")
    # The summary links to each field in error, and each field names its message.
    links = summary.get_by_role("link")
    assert links.count() >= 1
    for index in range(links.count()):
        field_id = links.nth(index).get_attribute("href").removeprefix("#")
        field = page.locator(f"[id='{field_id}']")
        expect(field).to_have_attribute("aria-invalid", "true")
        described = field.get_attribute("aria-describedby").split()
        assert f"{field_id}_error" in described
        expect(page.locator(f"[id='{field_id}_error']")).to_be_visible()
    links.first.click()
    expect(page.locator(f"[id='{links.first.get_attribute('href').removeprefix('#')}']")).to_be_focused()
    audit.check("new portfolio, with errors")

    page.goto(f"/portfolios/{portfolio.pk}/holdings/")
    page.fill("input[name=holdings-0-quantity]", "abc")
    page.fill("input[name=cash_usd]", "-1")
    page.get_by_role("button", name="Save holdings").click()
    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_count(2)
    audit.check("holdings editor, with errors")

    page.goto("/accounts/tokens/")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("[data-error-summary]")).to_be_focused()
    audit.check("API tokens, with errors")

    page.get_by_role("button", name=re.compile("Log out")).click()
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", "not the password")
    page.click("main button[type=submit]")
    expect(page.locator("[data-error-summary]")).to_be_focused()
    audit.check("login, with errors")
    audit.assert_clean()


def test_the_first_tab_reaches_a_skip_link_to_the_main_content(page):
    expect = sync_api.expect
    page.goto("/accounts/password/reset/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))
    page.keyboard.press("Tab")
    expect(page.locator("main input[name=email]")).to_be_focused()
