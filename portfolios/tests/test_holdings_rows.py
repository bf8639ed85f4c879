"""Rows of the holdings editor: an "Add row" copy of the empty row for the page's script, an "Add
rows" answer from the server without it (keeping what was typed), a label on every input, and a
row count above the maximum refused with a page error."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from portfolios.forms import HoldingFormSet

from .factories import make_portfolio, make_user

pytestmark = pytest.mark.django_db
MAX_ROWS = HoldingFormSet.max_num


@pytest.fixture
def portfolio(client, prices):
    owner = make_user("alice")
    client.force_login(owner)
    return make_portfolio(owner, holdings={"SPY": 10, "BND": 20}, cash_usd=Decimal(100))


def editor(portfolio) -> str:
    return reverse("portfolio_holdings", args=[portfolio.pk])


def held(portfolio) -> dict[str, Decimal]:
    return {h.instrument.symbol: h.quantity for h in portfolio.holdings.select_related("instrument")}


def form_data(rows: list[tuple[str, str, str]], *, total: int | None = None, cash: str = "100", **extra) -> dict:
    data = {
        "holdings-TOTAL_FORMS": str(len(rows) if total is None else total),
        "holdings-INITIAL_FORMS": "2",
        "holdings-MIN_NUM_FORMS": "0",
        "holdings-MAX_NUM_FORMS": str(MAX_ROWS),
        "cash_usd": cash,
        **extra,
    }
    for i, (symbol, quantity, cost) in enumerate(rows):
        data |= {
            f"holdings-{i}-symbol": symbol,
            f"holdings-{i}-quantity": quantity,
            f"holdings-{i}-cost_basis_usd": cost,
        }
    return data


def labels(page: str) -> dict[str, str]:
    """{input id: its label's text} for every label of the page."""
    return dict(re.findall(r'<label[^>]*for="([^"]+)"[^>]*>([^<]*)</label>', page))


def inputs(page: str) -> list[str]:
    """The ids of the page's visible inputs (text and checkboxes)."""
    return re.findall(r'<input type="(?:text|checkbox)"[^>]*id="([^"]+)"', page)


def assert_unchanged(portfolio) -> None:
    portfolio.refresh_from_db()
    assert held(portfolio) == {"SPY": Decimal(10), "BND": Decimal(20)} and portfolio.cash_usd == Decimal(100)


def test_every_input_of_every_row_has_a_label_naming_its_row(client, portfolio):
    page = client.get(editor(portfolio)).content.decode()
    rows = page[page.index('<tbody id="holdings-rows">') : page.index("</tbody>")]
    found = labels(rows)
    assert sorted(inputs(rows)) == sorted(found)  # no input without a label
    assert found["id_holdings-0-symbol"] == "Symbol, row 1"
    assert found["id_holdings-1-quantity"] == "Quantity, row 2"
    assert found["id_holdings-3-cost_basis_usd"] == "Cost basis (USD), row 4"
    assert found["id_holdings-4-DELETE"] == "Remove row 5"
    assert len(found) == 5 * 4  # two holdings and three empty rows, four inputs each


def test_the_page_carries_the_empty_row_its_add_row_button_copies(client, portfolio):
    page = client.get(editor(portfolio)).content.decode()
    template = re.search(r'<template id="holdings-empty-row">(.*?)</template>', page, re.DOTALL).group(1)
    assert labels(template) == {
        "id_holdings-__prefix__-symbol": "Symbol, row __row__",
        "id_holdings-__prefix__-quantity": "Quantity, row __row__",
        "id_holdings-__prefix__-cost_basis_usd": "Cost basis (USD), row __row__",
        "id_holdings-__prefix__-DELETE": "Remove row __row__",
    }
    assert '<div class="actions" id="holdings-add-row"></div>' in page  # where the script puts "Add row"
    assert re.search(r'<button type="submit" name="add_rows"[^>]*>Add rows</button>', page)  # without the script
    assert 'src="/static/js/holdings_rows.js"' in page
    assert 'id="id_holdings-TOTAL_FORMS"' in page and f'name="holdings-MAX_NUM_FORMS" value="{MAX_ROWS}"' in page


def test_rows_the_script_added_are_saved_like_the_others(client, portfolio):
    # Five rows on the page, then two added by the script: TOTAL_FORMS counts seven.
    rows = [
        ("SPY", "10", ""),
        ("BND", "20", ""),
        ("", "", ""),
        ("", "", ""),
        ("", "", ""),
        ("QQQ", "3", ""),
        ("VXUS", "4", ""),
    ]
    response = client.post(editor(portfolio), form_data(rows))
    assert response.status_code == 302
    assert held(portfolio) == {"SPY": 10, "BND": 20, "QQQ": 3, "VXUS": 4}


def test_add_rows_without_the_script_keeps_what_was_typed_and_saves_nothing(client, portfolio):
    rows = [("SPY", "11", ""), ("BND", "20", "900"), ("QQQ", "abc", ""), ("", "", ""), ("", "", "")]
    data = form_data(rows, cash="250", add_rows="3", **{"holdings-1-DELETE": "on"})

    response = client.post(editor(portfolio), data)

    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="holdings-TOTAL_FORMS" value="8"' in page
    assert 'name="holdings-0-quantity" value="11"' in page
    assert 'name="holdings-1-cost_basis_usd" value="900"' in page
    assert re.search(r'<input type="checkbox" name="holdings-1-DELETE"[^>]*checked', page)
    assert 'name="holdings-2-quantity" value="abc"' in page  # kept as typed, checked when saved
    assert 'name="cash_usd" value="250"' in page
    assert labels(page)["id_holdings-7-symbol"] == "Symbol, row 8"
    assert "Nothing was saved" not in page
    assert_unchanged(portfolio)


@pytest.mark.parametrize("total", [MAX_ROWS + 1, 1400, 100_000])
@pytest.mark.parametrize("add_rows", [False, True])
def test_a_row_count_above_the_maximum_is_a_page_error_not_a_500(client, portfolio, total, add_rows):
    data = form_data([("SPY", "1", ""), ("BND", "2", "")], total=total)
    if add_rows:
        data["add_rows"] = "3"
    response = client.post(editor(portfolio), data)
    assert response.status_code == 400
    page = response.content.decode()
    assert f"the form sent more rows than the editor takes (at most {MAX_ROWS} holdings at once)" in page
    assert_unchanged(portfolio)


def test_rows_up_to_the_maximum_are_saved(client, portfolio):
    rows = [("SPY", "1", ""), ("BND", "2", "")] + [("", "", "")] * (MAX_ROWS - 2)
    response = client.post(editor(portfolio), form_data(rows, cash="5"))
    assert response.status_code == 302
    portfolio.refresh_from_db()
    assert held(portfolio) == {"SPY": 1, "BND": 2} and portfolio.cash_usd == Decimal(5)
