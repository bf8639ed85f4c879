"""The admin: portfolios editable with holdings inline; runs read-only with their trades inline, a
superseded run naming the run planned again in its place."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from portfolios.models import Holding, RebalanceRun
from portfolios.services.holdings import holdings_upsert
from portfolios.services.rebalancing import rebalance_run_create

from .factories import AS_OF, load_sample_prices, make_portfolio, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "admin@example.com", "a-long-password-123")
    client.force_login(user)
    return client


@pytest.fixture
def portfolio():
    load_sample_prices(["SPY", "BND"])
    return make_portfolio(
        make_user(),
        symbols=["SPY", "BND"],
        holdings={"SPY": 30, "BND": 2},
        cash_usd=Decimal(100),
        manual_targets={"SPY": "0.6", "BND": "0.4"},
    )


def test_portfolio_page_shows_policy_sections_and_holdings_inline(staff_client, portfolio) -> None:
    page = staff_client.get(reverse("admin:portfolios_portfolio_change", args=[portfolio.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    for section in ("Profile and glide path", "Optimization", "Constraints", "Bands and triggers", "Execution"):
        assert section in html
    assert 'name="holdings-0-quantity"' in html and "30.000000000" in html


def _admin_post_data(page) -> dict:
    """The change form's current values as the browser would post them."""
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()  # already in its widget's text form
        if value is None:
            continue
        data[name] = [str(v) for v in value] if isinstance(value, list | tuple) else value
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management[name].value()
        for form in formset.formset.forms:
            for name in form.fields:
                value = form[name].value()
                if value is not None:
                    data[form.add_prefix(name)] = value.pk if hasattr(value, "pk") else value
    return data


def test_holdings_inline_rejects_a_negative_quantity(staff_client, portfolio) -> None:
    url = reverse("admin:portfolios_portfolio_change", args=[portfolio.pk])
    data = _admin_post_data(staff_client.get(url))
    quantity_key = next(k for k, v in data.items() if k.endswith("-quantity") and Decimal(str(v)) == 30)
    data[quantity_key] = "-5"
    data["cash_usd"] = "250"
    page = staff_client.post(url, data)
    assert page.status_code == 200  # the form comes back with its errors
    assert "Ensure this value is greater than or equal to 0" in page.content.decode()
    assert Holding.objects.get(portfolio=portfolio, instrument__symbol="SPY").quantity == Decimal(30)
    portfolio.refresh_from_db()
    assert portfolio.cash_usd == Decimal(100)  # nothing half-saved

    data[quantity_key] = "12.5"
    saved = staff_client.post(url, data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    assert Holding.objects.get(portfolio=portfolio, instrument__symbol="SPY").quantity == Decimal("12.5")
    portfolio.refresh_from_db()
    assert portfolio.cash_usd == Decimal(250)


def test_runs_are_read_only_with_trades_inline(staff_client, portfolio) -> None:
    planned = rebalance_run_create(portfolio=portfolio, as_of=AS_OF, manual=True)
    run = RebalanceRun.objects.get(pk=planned.run.pk)
    url = reverse("admin:portfolios_rebalancerun_change", args=[run.pk])
    page = staff_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert run.trades.first().reason in html
    assert 'name="trigger"' not in html  # read-only: rendered as text, not an input
    assert staff_client.post(url, {"trigger": "edited"}).status_code == 403
    assert staff_client.get(reverse("admin:portfolios_rebalancerun_add")).status_code == 403
    run.refresh_from_db()
    assert run.trigger != "edited"
    listing = staff_client.get(reverse("admin:portfolios_rebalancerun_changelist"))
    assert listing.status_code == 200 and portfolio.name in listing.content.decode()


def superseded_by_cells(listing: str) -> dict[int, str]:
    """{run id: its "Superseded by" cell} of the runs' change list."""
    rows = re.findall(r'<tr>.*?name="_selected_action" value="(\d+)".*?</tr>', listing, re.S)
    cells = re.findall(r'<td class="field-superseded_by_run[^"]*">(.*?)</td>', listing, re.S)
    assert len(rows) == len(cells)
    return dict(zip(map(int, rows), cells, strict=True))


def readonly_value(page: str, label: str) -> str:
    return re.search(rf'<label>{label}:</label>\s*<div class="readonly">(.*?)</div>', page, re.S).group(1)


def test_a_superseded_run_names_the_run_that_superseded_it(staff_client, portfolio) -> None:
    first = rebalance_run_create(portfolio=portfolio, as_of=AS_OF, manual=True).run
    holdings_upsert(portfolio=portfolio, rows=[{"symbol": "BND", "quantity": Decimal(100)}])
    again = rebalance_run_create(portfolio=portfolio, as_of=AS_OF, manual=True).run  # changed holdings: planned afresh
    assert RebalanceRun.objects.get(pk=first.pk).superseded_by_id == again.pk
    successor = f'<a href="{reverse("admin:portfolios_rebalancerun_change", args=[again.pk])}">run {again.pk}</a>'

    changelist = reverse("admin:portfolios_rebalancerun_changelist")
    listing = staff_client.get(changelist).content.decode()
    assert superseded_by_cells(listing) == {first.pk: successor, again.pk: "-"}
    # The "superseded at" filter: "Not empty" lists the superseded run only.
    superseded_only = staff_client.get(changelist, {"superseded_at__isempty": "0"}).content.decode()
    assert list(superseded_by_cells(superseded_only)) == [first.pk]

    page = staff_client.get(reverse("admin:portfolios_rebalancerun_change", args=[first.pk])).content.decode()
    assert readonly_value(page, "Superseded by") == successor
    assert readonly_value(page, "Superseded at") != "-"
    active = staff_client.get(reverse("admin:portfolios_rebalancerun_change", args=[again.pk])).content.decode()
    assert readonly_value(active, "Superseded by") == "-" and readonly_value(active, "Superseded at") == "-"
    # Sorting by the column (its header's link) lists the same runs.
    sorted_listing = staff_client.get(changelist, {"o": "4"}).content.decode()
    assert superseded_by_cells(sorted_listing) == {first.pk: successor, again.pk: "-"}
