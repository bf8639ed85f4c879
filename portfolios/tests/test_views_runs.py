"""Approve and execute a proposed run on the paper broker: the confirmation page (a dry run) changes
nothing, only a POST executes, a live account needs the password again and two-factor authentication
(a code unless the session entered one), another user gets a 404."""

from __future__ import annotations

import html
from datetime import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from brokers.models import BrokerAccount, Order, PaperAccount, PaperOrder, PaperPosition
from brokers.services.controls import kill_switch_set
from portfolios.models import RebalanceRun
from portfolios.services.execution import execute_run
from portfolios.services.execution_queue import executions_dispatch
from portfolios.services.pipeline import execute_planned_run
from portfolios.services.rebalancing import rebalance_run_create
from rebalancer_site.tests.factories import totp_code, two_factor_device, verify_session, wrong_totp_code

from .execution_factories import NEW_YORK, paper_portfolio, planned_run
from .factories import AS_OF, make_user

pytestmark = pytest.mark.django_db
Status = RebalanceRun.Status
PASSWORD = "pw-not-used-123"  # factories.make_user's
# The morning after AS_OF, before the open: the plan's closes are the last session's, the market is closed.
BEFORE_THE_OPEN = datetime(2025, 7, 1, 8, 0, tzinfo=NEW_YORK)


@pytest.fixture(autouse=True)
def _fast_waits(settings):
    settings.EXECUTION_WAIT_SECONDS = 0.2
    settings.EXECUTION_POLL_SECONDS = 0.01


@pytest.fixture
def run(client, prices, clock):
    """A proposed plan of an 80/20 portfolio against 60/40 targets: sell SPY, buy BND."""
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, mode="propose")
    client.force_login(portfolio.owner)
    return planned_run(portfolio)


def broker_state(run: RebalanceRun) -> tuple:
    """Everything an execution would change: the run, its orders, the paper account."""
    run.refresh_from_db()
    paper = PaperAccount.objects.get(account=run.portfolio.broker_account)
    positions = dict(PaperPosition.objects.filter(paper_account=paper).values_list("symbol", "quantity"))
    return (
        run.status,
        run.execution_step,
        Order.objects.count(),
        PaperOrder.objects.count(),
        paper.cash_usd,
        positions,
    )


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(reverse("run_approve", args=[1]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_confirmation_lists_the_orders_and_the_checks_and_changes_nothing(client, run):
    before = broker_state(run)

    response = client.get(reverse("run_approve", args=[run.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "sell" in page and "SPY" in page and "buy" in page and "BND" in page
    assert "Pre-trade checks" in page and "price_freshness" in page and "market_open" in page
    assert "dry run: nothing sent" in page
    assert "Your password" not in page  # a paper account: no password asked
    assert broker_state(run) == before
    assert before[:4] == (Status.PLANNED, "", 0, 0)


def test_get_never_executes_whatever_it_is_sent(client, run):
    before = broker_state(run)
    client.get(reverse("run_approve", args=[run.pk]), {"confirm": "1", "submit": "1", "password": PASSWORD})
    client.head(reverse("run_approve", args=[run.pk]))
    assert broker_state(run) == before


def test_post_executes_and_the_paper_broker_fills_the_orders(client, run):
    response = client.post(reverse("run_approve", args=[run.pk]))

    assert response.status_code == 302 and response["Location"] == reverse("run_report", args=[run.pk])
    assert "Executed: 2 orders sent; their fills are below." in client.get(response["Location"]).content.decode()
    run.refresh_from_db()
    assert run.status == Status.EXECUTED
    orders = list(run.orders.order_by("id"))
    assert [(o.side, o.symbol, o.state) for o in orders] == [("sell", "SPY", "filled"), ("buy", "BND", "filled")]
    assert PaperOrder.objects.filter(state="filled").count() == 2
    # The portfolio was synced from the broker after the fills.
    holdings = {h.instrument.symbol: h.quantity for h in run.portfolio.holdings.select_related("instrument")}
    positions = dict(
        PaperPosition.objects.filter(paper_account__account=run.portfolio.broker_account).values_list(
            "symbol", "quantity"
        )
    )
    assert holdings == positions
    # Approving again: nothing to approve, nothing sent twice.
    again = client.post(reverse("run_approve", args=[run.pk]))
    assert again.status_code == 400 and "nothing to approve" in again.content.decode()
    assert PaperOrder.objects.count() == 2


def test_an_approval_while_the_market_is_closed_is_queued_for_the_open(client, run, clock):
    # Tuesday 1 July 2025, 8:00 in New York: the market opens at 9:30; EXECUTE_AFTER_OPEN_MINUTES is 5.
    clock.now = BEFORE_THE_OPEN
    page = client.get(reverse("run_approve", args=[run.pk])).content.decode()
    assert "would stop at market_open" in page
    assert "orders are sent at Tuesday 1 July 9:35 ET, after the next open" in page
    assert "Approve: send 2 orders at Tuesday 1 July 9:35 ET" in page
    response = client.post(reverse("run_approve", args=[run.pk]), follow=True)
    assert f"Approved. The market is closed: run {run.pk} is queued and executes at Tuesday 1 July 9:35 ET" in (
        response.content.decode()
    )
    run.refresh_from_db()
    assert run.status == Status.PLANNED and run.approved_at is not None and not Order.objects.exists()
    assert run.execute_after == datetime(2025, 7, 1, 9, 35, tzinfo=NEW_YORK)

    # At 9:35 the execute-due schedule queues it; the stored approval lets the proposed plan through.
    clock.now = datetime(2025, 7, 1, 9, 35, tzinfo=NEW_YORK)
    assert executions_dispatch(now=clock.now, enqueue=lambda ids: [execute_planned_run(i) for i in ids]) == [run.pk]
    run.refresh_from_db()
    assert run.status == Status.EXECUTED and PaperOrder.objects.count() == 2


def test_an_approval_its_dry_run_says_would_fail_is_refused_with_the_reason(client, run, clock, settings):
    settings.MAX_ORDER_NOTIONAL_USD = 100
    page = client.get(reverse("run_approve", args=[run.pk])).content.decode()
    assert "Cannot approve now: the pre-trade check max_order_notional fails" in page
    assert 'disabled aria-describedby="approve-refused"' in page
    response = client.post(reverse("run_approve", args=[run.pk]))
    assert response.status_code == 400
    run.refresh_from_db()
    assert run.status == Status.PLANNED and run.approved_at is None and not Order.objects.exists()


@pytest.fixture
def unverified_live_run(run, settings):
    """The same plan on an account marked live (opted in, real money allowed on the server)."""
    settings.ALLOW_LIVE_TRADING = True
    BrokerAccount.objects.filter(pk=run.portfolio.broker_account_id).update(is_live=True, live_opt_in_at=timezone.now())
    return run


@pytest.fixture
def live_run(unverified_live_run, client):
    """The live plan, for an owner with two-factor authentication whose session entered a code."""
    verify_session(client, two_factor_device(unverified_live_run.portfolio.owner))
    return unverified_live_run


@pytest.mark.parametrize("password", ["", "not-my-password"])
def test_a_live_account_without_the_password_is_refused(client, live_run, password):
    before = broker_state(live_run)
    page = client.get(reverse("run_approve", args=[live_run.pk])).content.decode()
    assert "Your password" in page and "live: real money" in page

    response = client.post(reverse("run_approve", args=[live_run.pk]), {"password": password})

    assert response.status_code == 400
    errors = " ".join(response.context["form"].errors["password"])
    assert ("enter your password" in errors) if not password else ("not correct" in errors)
    assert broker_state(live_run) == before


def test_a_live_account_with_the_password_executes(client, live_run):
    response = client.post(reverse("run_approve", args=[live_run.pk]), {"password": PASSWORD})
    assert response.status_code == 302
    live_run.refresh_from_db()
    assert live_run.status == Status.EXECUTED and PaperOrder.objects.filter(state="filled").count() == 2


def test_a_live_run_is_not_approved_without_two_factor_authentication(client, unverified_live_run):
    run = unverified_live_run
    before = broker_state(run)
    page = client.get(reverse("run_approve", args=[run.pk])).content.decode()
    assert "approving its runs needs two-factor authentication" in page and "Approve and send" not in page

    response = client.post(reverse("run_approve", args=[run.pk]), {"password": PASSWORD})

    assert response.status_code == 400
    assert "real money needs two-factor authentication" in " ".join(response.context["form"].non_field_errors())
    assert broker_state(run) == before


def test_a_live_run_in_a_session_without_a_code_is_approved_only_with_one(client, unverified_live_run, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # each refusal below is about its own input, not the wait after it
    run = unverified_live_run
    device = two_factor_device(run.portfolio.owner)
    before = broker_state(run)
    assert "Authentication code" in client.get(reverse("run_approve", args=[run.pk])).content.decode()

    for data, field, text in [
        ({"password": PASSWORD}, "code", "enter the code"),
        ({"password": PASSWORD, "code": wrong_totp_code(device)}, "code", "not correct"),
        ({"password": "not-my-password", "code": totp_code(device)}, "password", "not correct"),
    ]:
        refused = client.post(reverse("run_approve", args=[run.pk]), data)
        assert refused.status_code == 400 and text in " ".join(refused.context["form"].errors[field])
        assert broker_state(run) == before

    response = client.post(reverse("run_approve", args=[run.pk]), {"password": PASSWORD, "code": totp_code(device)})
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == Status.EXECUTED and PaperOrder.objects.filter(state="filled").count() == 2


def test_another_users_run_is_a_404_and_is_not_executed(client, run):
    before = broker_state(run)
    client.force_login(make_user("mallory"))
    assert client.get(reverse("run_approve", args=[run.pk])).status_code == 404
    assert client.post(reverse("run_approve", args=[run.pk])).status_code == 404
    assert broker_state(run) == before


def test_a_run_that_is_not_proposed_cannot_be_approved(client, prices, clock):
    portfolio = paper_portfolio(holdings_usd={"SPY": 6000, "BND": 4000}, mode="propose")
    client.force_login(portfolio.owner)
    run = RebalanceRun.objects.create(
        portfolio=portfolio, trading_date=AS_OF, status=Status.NO_ACTION, trigger="inside every band"
    )
    page = client.get(reverse("run_approve", args=[run.pk]))
    assert page.status_code == 200 and "Cannot approve: this run is no action needed" in page.content.decode()
    assert client.post(reverse("run_approve", args=[run.pk])).status_code == 400
    assert not Order.objects.exists() and not PaperOrder.objects.exists()


def test_a_stopped_run_planned_again_shows_which_run_superseded_it(client, prices, clock):
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    stopped = planned_run(portfolio)
    kill_switch_set(user=portfolio.owner, active=True)
    execute_run(run=stopped, submit=True)
    kill_switch_set(user=portfolio.owner, active=False)
    again = rebalance_run_create(portfolio=portfolio, as_of=AS_OF, manual=True).run
    client.force_login(portfolio.owner)
    history = client.get(f"/portfolios/{portfolio.pk}/").content.decode()
    assert f'superseded by <a href="/runs/{again.pk}/">run {again.pk}</a>' in history
    report = client.get(f"/runs/{stopped.pk}/").content.decode()
    assert f"run {again.pk}</a>: planned again from what the portfolio then held" in report


def test_the_report_shows_the_smallest_deposit_that_puts_every_holding_inside_its_band(client, prices, clock):
    # 80/20 against 60/40 +/- 5 pp: SPY is back inside at 8,000 / 0.65 = 12,307.69 of value.
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, band_mode="absolute")
    run = planned_run(portfolio)
    client.force_login(portfolio.owner)
    report = client.get(f"/runs/{run.pk}/").content.decode()
    assert "Deposit to stay inside the bands" in report
    assert f"${run.deposit_needed_usd:,.2f}" in report and "(estimate:" in report
    assert abs(run.deposit_needed_usd - (run.value_before_usd * 8 / 10 / 65 * 100 - run.value_before_usd)) < 5


def test_a_deposit_larger_than_the_portfolio_says_selling_is_the_practical_way(client, prices, clock):
    # SPY at 90% against 10% +/- 5 pp: only a total of 9,000 / 0.15 (six times the portfolio)
    # dilutes it back inside; BND is the holding below its band, not the one to sell.
    portfolio = paper_portfolio(
        holdings_usd={"SPY": 9000, "BND": 1000}, targets={"SPY": "0.1", "BND": "0.9"}, band_mode="absolute"
    )
    run = planned_run(portfolio)
    client.force_login(portfolio.owner)
    report = html.unescape(client.get(f"/runs/{run.pk}/").content.decode())
    assert run.deposit_needed_usd > run.value_before_usd and "SPY is so far above" in run.deposit_outweighs_portfolio
    assert "More than the portfolio is worth: SPY is so far above its band that only selling it" in report
    # A deposit smaller than the portfolio says nothing of the kind.
    modest = planned_run(paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, band_mode="absolute", username="bo"))
    assert modest.deposit_outweighs_portfolio == ""


def test_a_report_says_when_no_deposit_can_keep_every_holding_inside_its_band(client, prices, clock):
    portfolio = paper_portfolio(holdings_usd={"SPY": 9000, "BND": 1000}, do_not_trade=["BND"])
    run = planned_run(portfolio)
    client.force_login(portfolio.owner)
    assert run.deposit_needed_usd is None
    assert (
        "no deposit can: a do-not-trade holding stays below its band" in client.get(f"/runs/{run.pk}/").content.decode()
    )
