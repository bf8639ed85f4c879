"""Numbers as people read them: one set of template filters (prices, quantities, percent, USD) for
every page and the report."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.urls import reverse

from portfolios.templatetags.numbers import (
    absolute,
    percent,
    percent_text,
    pp,
    price_text,
    quantity_text,
    ratio,
    share_price,
    shares,
    usd,
)

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


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.12345, "12.35%"),
        (Decimal("0.0425"), "4.25%"),
        (1, "100.00%"),
        (-0.0000001, "0.00%"),
        (-0.0, "0.00%"),
        (-0.05, "-5.00%"),
        (12345.678, "1234567.80%"),
        (None, "—"),
        (float("nan"), "—"),
        ("n/a", "—"),
    ],
)
def test_percent_shows_a_fraction_as_percent_to_two_decimals(value, shown):
    assert percent(value) == shown


def test_percent_takes_its_decimals_as_an_argument():
    assert percent(Decimal("0.61725"), 1) == "61.7%"
    assert percent(-0.0001, 1) == "0.0%"
    assert Template("{% load numbers %}{{ value|percent:1 }}").render(Context({"value": 0.25})) == "25.0%"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0123, "1.23 pp"),
        (-0.0123, "-1.23 pp"),
        (-0.00000001, "0.00 pp"),
        (Decimal("2.5"), "250.00 pp"),
        (None, "—"),
    ],
)
def test_pp_shows_a_difference_of_fractions_in_percentage_points(value, shown):
    assert pp(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(1.2345, "1.23"), (-0.001, "0.00"), (-2.5, "-2.50"), (3, "3.00"), (123456.789, "123456.79"), (None, "—")],
)
def test_ratio_shows_a_figure_without_unit_to_two_decimals(value, shown):
    assert ratio(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1234.5"), "$1,234.50"),
        (Decimal("1234567890.125"), "$1,234,567,890.12"),
        (2.5, "$2.50"),
        (Decimal("-2000.25"), "$-2,000.25"),
        (Decimal("-0.001"), "$0.00"),
        (Decimal("-0"), "$0.00"),
        (None, "—"),
        ("n/a", "n/a"),
    ],
)
def test_usd_shows_cents_with_thousands_separators(value, shown):
    assert usd(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("16.484048886"), "16.484"),
        (Decimal("1234567.000000000"), "1,234,567"),
        (Decimal("-0.00001"), "0"),
        (Decimal("-3.5"), "-3.5"),
        (None, "—"),
    ],
)
def test_shares_show_quantities_with_a_dash_when_missing(value, shown):
    assert shares(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("210.385827"), "$210.39"),
        (Decimal("1234567.891"), "$1,234,567.89"),
        (Decimal("0.123456"), "$0.1235"),
        (Decimal("-0.00001"), "$0.00"),
        (None, "—"),
    ],
)
def test_share_prices_show_the_dollar_sign_and_a_dash_when_missing(value, shown):
    assert share_price(value) == shown


@pytest.mark.parametrize(("value", "shown"), [(Decimal("-2000.25"), Decimal("2000.25")), (3, 3), (None, None)])
def test_absolute_is_the_size_of_a_number_and_leaves_anything_else(value, shown):
    assert absolute(value) == shown


def test_the_filters_render_in_a_template_with_a_dash_for_missing_values():
    template = Template(
        "{% load numbers %}{{ w|percent }} {{ d|pp }} {{ r|ratio }} {{ m|usd }} {{ q|shares }} {{ p|share_price }} "
        "{{ none|percent }} {{ none|usd }} {{ f|absolute|usd }} {{ share|percent_label }}"
    )
    context = {
        "w": 0.25,
        "d": -0.0001,
        "r": 0.5,
        "m": Decimal("1000000"),
        "q": Decimal("2.50000"),
        "p": Decimal("99.999"),
        "none": None,
        "f": Decimal("-5"),
        "share": Decimal("0.8865"),
    }
    shown = "25.00% -0.01 pp 0.50 $1,000,000.00 2.5 $100.00 — — $5.00 88.7%"
    assert template.render(Context(context)) == shown
