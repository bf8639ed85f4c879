"""Preview a plan (a deposit, a withdrawal, another strategy) without storing anything, then save
exactly the previewed plan; a portfolio changed since the preview stores nothing and says so,
bad input is an error on its field, another user's portfolio is a 404."""

from __future__ import annotations

import html
import re
from datetime import datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.urls import reverse

from optimization.core.names import PLANNING_STRATEGY_NAMES
from portfolios.models import Holding, PlannedTrade, Portfolio, RebalanceRun

from .execution_factories import NEW_YORK, paper_portfolio, planned_run
from .factories import close, make_user

pytestmark = pytest.mark.django_db
Status = RebalanceRun.Status
HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')


@pytest.fixture
def drifted(client, prices, clock):
    """80% SPY / 20% BND against 60/40 targets: a plan sells SPY and buys BND."""
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, mode="propose")
    client.force_login(portfolio.owner)
    return portfolio


@pytest.fixture
def balanced(client, prices, clock):
    """Exactly on its 60/40 targets: only a cash flow makes trades."""
    portfolio = paper_portfolio(holdings_usd={"SPY": 6000, "BND": 4000}, mode="propose", rebalancing_strategy="full")
    client.force_login(portfolio.owner)
    return portfolio


def row_counts() -> dict[str, int]:
    """The number of rows of every model: what a page stored, anywhere."""
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def preview(client, portfolio, **params):
    return client.get(reverse("portfolio_preview", args=[portfolio.pk]), params)


def text(response) -> str:
    return html.unescape(response.content.decode())


def trade_rows(page: str) -> list[tuple[str, str, str]]:
    """(side, symbol, quantity) of every row of the preview's trades table, in order."""
    table = page.split('id="trades"', 1)[1].split("</table>", 1)[0]
    return re.findall(
        r'<span class="badge \w+">(buy|sell)</span></td><td>(\w+)</td>\s*<td class="num">([\d,.]+)</td>', table
    )


def save_fields(page: str) -> dict[str, str]:
    """The hidden fields of the "Save as plan" form, as the browser would send them."""
    form = page[page.index("/preview/save/") :].split("</form>", 1)[0]
    return {name: value for name, value in HIDDEN.findall(form) if name != "csrfmiddlewaretoken"}


def save(client, portfolio, fields: dict[str, str], **kwargs):
    return client.post(reverse("portfolio_preview_save", args=[portfolio.pk]), fields, **kwargs)


def stored_trades(run: RebalanceRun) -> list[tuple[str, str, Decimal]]:
    return [
        (t.side, t.instrument.symbol, t.quantity) for t in run.trades.select_related("instrument").order_by("sequence")
    ]


# -- the preview -----------------------------------------------------------------------------------


def test_the_preview_shows_the_plan_and_stores_nothing(client, drifted):
    before = row_counts()

    response = preview(client, drifted)

    assert response.status_code == 200
    page = text(response)
    assert "Plan preview: Core" in page and "nothing is stored or sent" in page
    assert "Trading date</th><td>2025-06-30" in page
    assert "Planning strategy</th><td>threshold</td>" in page  # the portfolio's, the default
    assert "manual request" in page  # the trigger: every trigger overridden, as "Rebalance now"
    # Drift before -> after, in percent; the needs (outside the band: SPY sells, BND buys).
    assert re.search(r'id="preview-drift-before">20\.\d\d%</span> → <span id="preview-drift-after">\d\.\d\d%', page)
    needs = page.split('id="preview-needs"', 1)[1].split("</table>", 1)[0]
    assert "<td>SPY</td>" in needs and "80.00%" in needs and "60.00%" in needs and "20.00 pp" in needs
    assert "±5.00 pp" in needs and "outside" in needs
    assert [(side, symbol) for side, symbol, _ in trade_rows(page)] == [("sell", "SPY"), ("buy", "BND")]
    assert not any(re.search(r"\.\d*0$", quantity) for _, _, quantity in trade_rows(page))  # no trailing zeros
    assert "SPY 20.0 pp over target (band 5.0 pp)" in page  # a trade's reason
    assert 'Estimated costs</th><td class="num">$0.00' in page and 'Value</th><td class="num">$10,000.00' in page
    assert "Cash flow</th><td>none" in page and "Save as plan" in page
    assert row_counts() == before


def test_a_deposit_previews_only_buys(client, balanced):
    before = row_counts()

    page = text(preview(client, balanced, cash_flow_usd="5000"))

    trades = trade_rows(page)
    assert trades and {side for side, _, _ in trades} == {"buy"}
    assert "deposit of $5,000.00" in page
    assert row_counts() == before


def test_a_withdrawal_previews_sells(client, balanced):
    before = row_counts()

    page = text(preview(client, balanced, cash_flow_usd="-2000", strategy="full"))

    trades = trade_rows(page)
    assert trades and {side for side, _, _ in trades} == {"sell"}
    assert "withdrawal of $2,000.00" in page
    assert row_counts() == before


def test_a_deposit_or_withdrawal_with_the_everyday_threshold_strategy_trades_the_cash_flow(client, prices, clock):
    # Inside its bands, so the portfolio's own strategy (threshold) would trade nothing: a cash
    # flow with no strategy chosen buys the most underweight holding, or sells the most overweight.
    portfolio = paper_portfolio(
        holdings_usd={"SPY": 6150, "BND": 3850}, mode="propose", rebalancing_strategy="threshold"
    )
    client.force_login(portfolio.owner)
    before = row_counts()

    deposit = text(preview(client, portfolio, cash_flow_usd="5000"))
    withdrawal = text(preview(client, portfolio, cash_flow_usd="-2000"))

    assert [(side, symbol) for side, symbol, _ in trade_rows(deposit)][:1] == [("buy", "BND")]
    assert {side for side, _, _ in trade_rows(deposit)} == {"buy"} and "deposit of $5,000.00" in deposit
    sold = {
        symbol: float(quantity.replace(",", "")) * float(close(symbol))
        for _, symbol, quantity in trade_rows(withdrawal)
    }
    assert {side for side, _, _ in trade_rows(withdrawal)} == {"sell"} and sold["SPY"] > sold["BND"]
    assert "withdrawal of $2,000.00" in withdrawal
    assert row_counts() == before


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"cash_flow_usd": "5,000"}, "cash_flow_usd", "must be a plain decimal number"),
        ({"cash_flow_usd": "1e9"}, "cash_flow_usd", "must be a plain decimal number"),
        ({"cash_flow_usd": "12.345"}, "cash_flow_usd", "more than 2 decimal places"),
        ({"strategy": "no_such_strategy"}, "strategy", "not one of the available choices"),
    ],
)
def test_bad_input_is_an_error_on_its_field_and_plans_nothing(client, drifted, params, field, message):
    before = row_counts()

    response = preview(client, drifted, **params)

    assert response.status_code == 200
    page = text(response)
    error = re.search(rf'<p class="error" id="id_{field}_error" role="alert">([^<]*)</p>', page)
    assert error and message in error.group(1)
    widget = re.search(rf'<(?:input|select)[^>]*id="id_{field}"[^>]*>', page).group(0)
    assert f"id_{field}_error" in re.search(r'aria-describedby="([^"]*)"', widget).group(1)
    assert 'aria-invalid="true"' in widget
    assert "Save as plan" not in page and 'id="trades"' not in page
    assert row_counts() == before


def test_a_planning_failure_shows_its_message(client, balanced):
    before = row_counts()

    response = preview(client, balanced, cash_flow_usd="-50000")

    assert response.status_code == 200
    page = text(response)
    assert "Planning failed, nothing to trade:" in page and "Save as plan" not in page
    assert row_counts() == before


def test_another_users_portfolio_is_a_404_for_the_preview_and_the_save(client, drifted):
    fields = save_fields(text(preview(client, drifted)))
    client.force_login(make_user("mallory"))
    before = row_counts()

    assert preview(client, drifted).status_code == 404
    assert save(client, drifted, fields).status_code == 404
    assert row_counts() == before


# -- saving the previewed plan ---------------------------------------------------------------------


def test_save_stores_exactly_the_previewed_plan(client, balanced):
    response = preview(client, balanced, cash_flow_usd="5000")
    page = text(response)
    previewed = response.context["preview"]
    fields = save_fields(page)
    assert fields["cash_flow_usd"] == "5000" and fields["strategy"] == "full"
    assert fields["inputs_fingerprint"] == previewed.run.inputs_fingerprint

    response = save(client, balanced, fields, follow=True)

    run = RebalanceRun.objects.get()
    assert response.redirect_chain == [(reverse("run_report", args=[run.pk]), 302)]
    assert f"Saved the previewed plan as run {run.pk}" in text(response)
    assert run.status == Status.PLANNED and run.inputs_fingerprint == fields["inputs_fingerprint"]
    assert run.cash_flow_usd == Decimal(5000) and run.requested_strategy == "full"
    assert stored_trades(run) == [(t.side, t.symbol, t.quantity) for t in previewed.trades]
    assert [(side, symbol) for side, symbol, _ in trade_rows(page)] == [(s, sym) for s, sym, _ in stored_trades(run)]
    assert PlannedTrade.objects.count() == len(previewed.trades)

    # Saving the same preview again: nothing changed, the stored run is the previewed plan.
    again = save(client, balanced, fields, follow=True)
    assert again.redirect_chain == [(reverse("run_report", args=[run.pk]), 302)]
    assert "Nothing this plan is made from has changed" in text(again)
    assert RebalanceRun.objects.count() == 1


def test_saving_a_preview_supersedes_the_stored_plan_that_sent_nothing(client, drifted):
    first = planned_run(drifted)
    fields = save_fields(text(preview(client, drifted, cash_flow_usd="1000")))

    response = save(client, drifted, fields, follow=True)

    run = RebalanceRun.objects.exclude(pk=first.pk).get()
    assert f"Saved the previewed plan as run {run.pk}; run {first.pk} is superseded" in text(response)
    first.refresh_from_db()
    assert first.superseded_by_id == run.pk


@pytest.mark.parametrize("change", ["holding", "cash"])
def test_save_after_the_portfolio_changed_stores_nothing(client, drifted, change):
    fields = save_fields(text(preview(client, drifted, cash_flow_usd="-1000")))
    if change == "holding":
        Holding.objects.filter(portfolio=drifted, instrument__symbol="SPY").update(quantity=Decimal(3))
    else:
        Portfolio.objects.filter(pk=drifted.pk).update(cash_usd=Decimal(2500))
    before = row_counts()

    response = save(client, drifted, fields)

    assert row_counts() == before and not RebalanceRun.objects.exists()
    back = f"{reverse('portfolio_preview', args=[drifted.pk])}?cash_flow_usd=-1000&strategy=threshold"
    assert response.status_code == 302 and response["Location"] == back
    page = text(client.get(back))
    assert "the portfolio changed since the preview" in page and "Review the new preview" in page
    assert save_fields(page)["inputs_fingerprint"] != fields["inputs_fingerprint"]  # the new preview's


def test_save_after_new_closes_moved_the_trading_date_stores_nothing(client, drifted, clock):
    fields = save_fields(text(preview(client, drifted)))
    assert fields["trading_date"] == "2025-06-30"
    clock.now = datetime(2025, 7, 2, 10, 0, tzinfo=NEW_YORK)  # 2025-07-01 has closed since the preview

    response = save(client, drifted, fields, follow=True)

    assert not RebalanceRun.objects.exists()
    assert response.redirect_chain[0][0].startswith(reverse("portfolio_preview", args=[drifted.pk]))
    assert "the preview was for trading date 2025-06-30, and plans are now made for 2025-07-01" in text(response)


def test_save_while_the_days_run_is_being_executed_names_that_run(client, drifted):
    executing = planned_run(drifted)
    RebalanceRun.objects.filter(pk=executing.pk).update(status=Status.EXECUTING)
    fields = save_fields(text(preview(client, drifted, cash_flow_usd="1000")))

    response = save(client, drifted, fields, follow=True)

    assert response.redirect_chain == [(reverse("run_report", args=[executing.pk]), 302)]
    assert f"Not saved: run {executing.pk} of 2025-06-30 is being executed" in text(response)
    assert list(RebalanceRun.objects.values_list("pk", flat=True)) == [executing.pk]


@pytest.mark.parametrize("fingerprint", ["", "F" * 64, "0" * 63, "not-a-fingerprint"])
def test_save_without_a_previews_fingerprint_stores_nothing(client, drifted, fingerprint):
    fields = {**save_fields(text(preview(client, drifted))), "inputs_fingerprint": fingerprint}
    before = row_counts()

    response = save(client, drifted, fields, follow=True)

    assert response.redirect_chain == [(reverse("portfolio_detail", args=[drifted.pk]), 302)]
    assert "Nothing was saved" in text(response) and "Inputs fingerprint" in text(response)
    assert row_counts() == before


def test_save_takes_only_post(client, drifted):
    assert client.get(reverse("portfolio_preview_save", args=[drifted.pk])).status_code == 405
    assert not RebalanceRun.objects.exists()


# -- the portfolio page ----------------------------------------------------------------------------


def test_the_portfolio_page_has_the_preview_form(client, drifted):
    page = text(client.get(reverse("portfolio_detail", args=[drifted.pk])))

    form = page[page.index('id="preview-plan"') :].split("</form>", 1)[0]
    assert "Preview a plan" in form
    assert f'<form method="get" action="{reverse("portfolio_preview", args=[drifted.pk])}">' in form
    assert 'name="cash_flow_usd"' in form and "add $5,000 is 5000, withdraw $2,000 is -2000" in form
    options = re.findall(r'<option value="(\w+)"( selected)?>', form)
    assert [name for name, _ in options] == list(PLANNING_STRATEGY_NAMES)
    assert [name for name, selected in options if selected] == ["threshold"]  # the portfolio's strategy
