"""Prices and quantities as people read them: one pair of template filters for every page."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from portfolios.services.report import percent_text
from portfolios.templatetags.numbers import price_text, quantity_text

from .factories import make_portfolio, make_user


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("16.484048886"), "16.484"),
        (Decimal("38.025375160"), "38.0254"),
        (Decimal("1200.000000000"), "1,200"),
        (Decimal("0.000040000"), "0"),
        (Decimal("-0.00001"), "0"),
        (2.5, "2.5"),
        (None, ""),
        ("n/a", "n/a"),
    ],
)
def test_quantities_show_at_most_four_decimals_without_trailing_zeros(value, shown):
    assert quantity_text(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("210.385827"), "210.39"),
        (Decimal("1234.5"), "1,234.50"),
        (Decimal("0.123456"), "0.1235"),
        (Decimal("0.5"), "0.50"),
        (Decimal("0.999999"), "1.00"),
        (None, ""),
    ],
)
def test_prices_show_cents_and_up_to_four_decimals_under_a_dollar(value, shown):
    assert price_text(value) == shown


@pytest.mark.django_db
def test_the_portfolio_page_shows_rounded_quantities_and_prices(client, prices, clock):
    owner = make_user()
    portfolio = make_portfolio(owner, holdings={"SPY": Decimal("16.484048886")}, cash_usd=Decimal(0))
    client.force_login(owner)
    page = client.get(reverse("portfolio_detail", args=[portfolio.pk])).content.decode()
    assert '<td class="num">16.484</td>' in page and "16.484048886" not in page
    assert "16.4840<" not in page


@pytest.mark.parametrize(("value", "shown"), [(-0.0001, "0.00%"), (-0.005, "-0.01%"), (1.2345, "1.23%"), (None, "—")])
def test_report_percentages_never_read_minus_zero(value, shown):
    assert percent_text(value) == shown
