"""Holdings and cash: the row editor and the CSV upload go through holdings_replace (errors name the row
or line and the field; nothing is saved on error); the sync from the broker; another user's is a 404."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from brokers.services.accounts import broker_account_create
from brokers.services.paper import paper_account_reset
from marketdata.models import Instrument
from portfolios.models import HoldingsSync

from .factories import make_portfolio, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client, prices):
    user = make_user("alice")
    client.force_login(user)
    return user


@pytest.fixture
def portfolio(owner):
    return make_portfolio(owner, holdings={"SPY": 10, "BND": 20}, cash_usd=Decimal(100))


def held(portfolio) -> dict[str, Decimal]:
    return {h.instrument.symbol: h.quantity for h in portfolio.holdings.select_related("instrument")}


def rows_data(rows: list[tuple[str, str, str]], *, cash: str = "100", delete: tuple[int, ...] = ()) -> dict:
    data = {
        "holdings-TOTAL_FORMS": str(len(rows)),
        "holdings-INITIAL_FORMS": "0",
        "holdings-MIN_NUM_FORMS": "0",
        "holdings-MAX_NUM_FORMS": "1000",
        "cash_usd": cash,
    }
    for i, (symbol, quantity, cost) in enumerate(rows):
        data |= {
            f"holdings-{i}-symbol": symbol,
            f"holdings-{i}-quantity": quantity,
            f"holdings-{i}-cost_basis_usd": cost,
        }
        if i in delete:
            data[f"holdings-{i}-DELETE"] = "on"
    return data


def reviewed(response) -> dict[str, str]:
    """The confirmation a sync review page sends: the fingerprints of what it showed."""
    return dict(response.context["confirm"].initial)


def row_errors(response, index: int, field: str) -> str:
    return " ".join(response.context["formset"].forms[index].errors.get(field, []))


def upload(client, portfolio, text: str, **extra):
    file = SimpleUploadedFile("holdings.csv", text.encode(), content_type="text/csv")
    return client.post(reverse("portfolio_holdings_upload", args=[portfolio.pk]), {"file": file, **extra})


# -- access --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["portfolio_holdings", "portfolio_holdings_upload"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, name):
    response = client.get(reverse(name, args=[1]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_another_users_holdings_are_a_404_and_nothing_changes(client, owner):
    theirs = make_portfolio(make_user("bob"), name="Bob's", holdings={"SPY": 5}, cash_usd=Decimal(7))
    assert client.get(reverse("portfolio_holdings", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("portfolio_holdings_upload", args=[theirs.pk])).status_code == 404
    response = client.post(reverse("portfolio_holdings", args=[theirs.pk]), rows_data([("BND", "1", "")], cash="0"))
    assert response.status_code == 404
    assert upload(client, theirs, "symbol,quantity\nBND,1\n").status_code == 404
    assert client.post(reverse("portfolio_sync", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert held(theirs) == {"SPY": Decimal(5)} and theirs.cash_usd == Decimal(7)


# -- the row editor ------------------------------------------------------------------------------------


def test_the_editor_shows_the_holdings_and_saves_a_new_set(client, portfolio):
    page = client.get(reverse("portfolio_holdings", args=[portfolio.pk]))
    assert page.status_code == 200
    assert page.context["formset"].initial == [
        {"symbol": "BND", "quantity": "20", "cost_basis_usd": ""},
        {"symbol": "SPY", "quantity": "10", "cost_basis_usd": ""},
    ]
    data = rows_data([("BND", "20", ""), ("spy", "12.5", "5000"), ("QQQ", "3", ""), ("", "", "")], cash="250.25")
    data |= {"holdings-3-symbol": "", "holdings-0-DELETE": "on"}
    response = client.post(reverse("portfolio_holdings", args=[portfolio.pk]), data)
    assert response.status_code == 302 and response["Location"] == reverse("portfolio_detail", args=[portfolio.pk])
    portfolio.refresh_from_db()
    assert held(portfolio) == {"SPY": Decimal("12.5"), "QQQ": Decimal(3)}
    assert portfolio.cash_usd == Decimal("250.25")


@pytest.mark.parametrize(
    ("rows", "cash", "row", "field", "text"),
    [
        ([("SPY", "-5", ""), ("BND", "1", "")], "100", 0, "quantity", "row 1 (SPY): quantity must not be negative"),
        (
            [("SPY", "1", ""), ("BND", "abc", "")],
            "100",
            1,
            "quantity",
            "row 2 (BND): quantity must be a plain decimal number like 12.5, got 'abc'",
        ),
        ([("SPY", "1", "-3")], "100", 0, "cost_basis_usd", "row 1 (SPY): cost_basis_usd must not be negative"),
        ([("SPY", "1", ""), ("ZZZZ", "2", "")], "100", 1, "symbol", "row 2 (ZZZZ): unknown symbol"),
        ([("SPY", "1", ""), ("spy", "2", "")], "100", 1, "symbol", "row 2 (SPY): duplicate holding for SPY"),
        ([("", "4", "")], "100", 0, "symbol", "row 1 (no symbol): symbol is required"),
        ([("SPY", "1.0000000001", "")], "100", 0, "quantity", "more than 9 decimal places"),
    ],
)
def test_a_bad_row_is_named_next_to_its_field_and_nothing_is_saved(client, portfolio, rows, cash, row, field, text):
    response = client.post(reverse("portfolio_holdings", args=[portfolio.pk]), rows_data(rows, cash=cash))
    assert response.status_code == 400
    assert text in row_errors(response, row, field)
    assert f'id="id_holdings-{row}-{field}_error"' in response.content.decode()
    portfolio.refresh_from_db()
    assert held(portfolio) == {"SPY": Decimal(10), "BND": Decimal(20)} and portfolio.cash_usd == Decimal(100)


def test_negative_cash_is_rejected_next_to_the_cash_field(client, portfolio):
    response = client.post(reverse("portfolio_holdings", args=[portfolio.pk]), rows_data([("SPY", "1", "")], cash="-1"))
    assert response.status_code == 400
    assert "cash_usd must not be negative" in " ".join(response.context["cash_form"].errors["cash_usd"])
    assert 'id="id_cash_usd_error"' in response.content.decode()
    portfolio.refresh_from_db()
    assert held(portfolio) == {"SPY": Decimal(10), "BND": Decimal(20)} and portfolio.cash_usd == Decimal(100)


# -- the CSV upload ------------------------------------------------------------------------------------


def test_the_upload_page_documents_the_format(client, portfolio):
    page = client.get(reverse("portfolio_holdings_upload", args=[portfolio.pk])).content.decode()
    assert "symbol,quantity,cost_basis_usd" in page and "the header is line 1" in page


def test_a_valid_file_replaces_the_holdings(client, portfolio):
    response = upload(client, portfolio, "\ufeffSymbol,Quantity,Cost_Basis_USD\r\nspy,40,18000\r\n\r\nQQQ,0.5,\r\n")
    assert response.status_code == 302
    portfolio.refresh_from_db()
    assert held(portfolio) == {"SPY": Decimal(40), "QQQ": Decimal("0.5")}
    assert portfolio.holdings.get(instrument__symbol="SPY").cost_basis_usd == Decimal(18000)
    assert portfolio.cash_usd == Decimal(100)  # no cash given: kept


def test_the_upload_may_set_the_cash(client, portfolio):
    assert upload(client, portfolio, "symbol,quantity\nBND,3\n", cash_usd="42.5").status_code == 302
    portfolio.refresh_from_db()
    assert held(portfolio) == {"BND": Decimal(3)} and portfolio.cash_usd == Decimal("42.5")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("symbol,quantity\nSPY,5\nBND,-2\n", "line 3 (BND): quantity must not be negative, got -2"),
        ("symbol,quantity\nSPY,5\n\nZZZZ,1\n", "unknown symbol ZZZZ on line 4 (ZZZZ)"),
        ("symbol,quantity\nSPY,5\nSPY,6\n", "line 3 (SPY): duplicate holding for SPY"),
        ("symbol,quantity,cost_basis_usd\nSPY,5,abc\n", "line 2 (SPY): cost_basis_usd must be a plain decimal number"),
        ("symbol,quantity\nSPY,5,1\n", "line 2: expected 2 values (symbol,quantity), got 3"),
        ("ticker,shares\nSPY,5\n", "line 1: the header must be symbol,quantity or symbol,quantity,cost_basis_usd"),
        ("symbol,quantity\n", "the file lists no holdings"),
        ("", "The submitted file is empty."),
    ],
)
def test_a_bad_file_names_the_line_and_keeps_the_holdings(client, portfolio, text, message):
    response = upload(client, portfolio, text)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors["file"])
    assert 'id="id_file_error"' in response.content.decode()
    portfolio.refresh_from_db()
    assert held(portfolio) == {"SPY": Decimal(10), "BND": Decimal(20)} and portfolio.cash_usd == Decimal(100)


def test_a_semicolon_separated_file_with_thousands_separators_is_read(client, portfolio):
    text = "symbol;quantity;cost_basis_usd\nSPY;1,200;18,250.5\nBND;3.5;\n"
    assert upload(client, portfolio, text).status_code == 302
    assert held(portfolio) == {"SPY": Decimal(1200), "BND": Decimal("3.5")}
    assert portfolio.holdings.get(instrument__symbol="SPY").cost_basis_usd == Decimal("18250.5")
    quoted = 'symbol,quantity,cost_basis_usd\nSPY,"2,000",\n'
    assert upload(client, portfolio, quoted).status_code == 302 and held(portfolio) == {"SPY": Decimal(2000)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("symbol;quantity\nSPY;1,5\n", "line 2 (SPY): quantity must be a plain decimal number"),  # a decimal comma
        ("symbol;quantity\nSPY;12,34\n", "line 2 (SPY): quantity must be a plain decimal number"),
    ],
)
def test_a_decimal_comma_is_refused_not_guessed(client, portfolio, text, message):
    response = upload(client, portfolio, text)
    assert response.status_code == 400 and message in " ".join(response.context["form"].errors["file"])
    assert_unchanged(portfolio)


def test_every_error_is_named_in_line_order_duplicates_included(client, portfolio):
    """The first SPY line is refused, and the second SPY is still named a duplicate of it."""
    text = "symbol,quantity\nZZZZ,1\nSPY,abc\nBND,-1\nSPY,2\n"
    errors = upload(client, portfolio, text).context["form"].errors["file"]
    assert [error.split(" ", 2)[:2] for error in errors] == [
        ["unknown", "symbol"],
        ["line", "3"],
        ["line", "4"],
        ["line", "5"],
    ]
    assert "unknown symbol ZZZZ on line 2 (ZZZZ)" in errors[0]
    assert errors[3] == "line 5 (SPY): duplicate holding for SPY (first on line 3)"
    assert_unchanged(portfolio)


def test_a_file_that_is_not_utf8_is_refused(client, portfolio):
    file = SimpleUploadedFile("holdings.csv", "symbol,quantity\nSPY,5\u00e9\n".encode("latin-1"))
    response = client.post(reverse("portfolio_holdings_upload", args=[portfolio.pk]), {"file": file})
    assert response.status_code == 400 and "not UTF-8" in " ".join(response.context["form"].errors["file"])
    assert held(portfolio) == {"SPY": Decimal(10), "BND": Decimal(20)}


# -- sync from the broker ------------------------------------------------------------------------------


def test_sync_from_the_broker_shows_what_changed(client, owner, clock):
    account = broker_account_create(owner=owner, kind="paper", label="Sandbox")
    paper_account_reset(
        account=account,
        cash_usd=Decimal(500),
        positions={"SPY": (Decimal(12), Decimal(500)), "QQQ": (Decimal(1), Decimal(400))},
    )
    portfolio = make_portfolio(owner, holdings={"SPY": 10, "BND": 20}, cash_usd=Decimal(100), broker_account=account)
    review = client.get(reverse("portfolio_sync", args=[portfolio.pk]))
    assert review.status_code == 200 and not HoldingsSync.objects.exists()

    response = client.post(reverse("portfolio_sync", args=[portfolio.pk]), reviewed(review), follow=True)

    page = response.content.decode()
    assert "Synced from Sandbox: BND 20 → 0; QQQ 0 → 1; SPY 10 → 12; cash $100.00 → $500.00" in page
    portfolio.refresh_from_db()
    assert held(portfolio) == {"SPY": Decimal(12), "QQQ": Decimal(1)} and portfolio.cash_usd == Decimal(500)


def test_sync_without_a_broker_account_changes_nothing(client, portfolio):
    response = client.get(reverse("portfolio_sync", args=[portfolio.pk]), follow=True)
    assert "Sync failed, nothing changed: this portfolio has no broker account" in response.content.decode()
    assert held(portfolio) == {"SPY": Decimal(10), "BND": Decimal(20)}


def test_bad_cash_and_bad_rows_are_all_named_at_once(client, portfolio):
    data = rows_data([("SPY", "-1", ""), ("BND", "5", "")], cash="-3")
    response = client.post(reverse("portfolio_holdings", args=[portfolio.pk]), data)
    assert response.status_code == 400
    assert "row 1 (SPY): quantity must not be negative" in row_errors(response, 0, "quantity")
    assert "must not be negative" in " ".join(response.context["cash_form"].errors["cash_usd"])
    portfolio.refresh_from_db()
    assert held(portfolio) == {"SPY": Decimal(10), "BND": Decimal(20)} and portfolio.cash_usd == Decimal(100)


def test_bad_cash_with_good_rows_saves_nothing(client, portfolio):
    Instrument.objects.create(symbol="VTI")
    response = client.post(reverse("portfolio_holdings", args=[portfolio.pk]), rows_data([("VTI", "5", "")], cash="x"))
    assert response.status_code == 400
    portfolio.refresh_from_db()
    assert held(portfolio) == {"SPY": Decimal(10), "BND": Decimal(20)}
    assert "VTI" not in portfolio.instruments.values_list("symbol", flat=True)


# -- input no page may store ---------------------------------------------------------------------------

LONGER_THAN_A_CSV_FIELD = "1" * 131_073
#: Numbers that Python reads but a person does not mean, or that no column can hold.
BAD_NUMBERS = [
    ("1e309", "plain decimal number"),
    ("1" * 30, "too large"),
    ("1_000", "plain decimal number"),
    ("\uff11\uff12", "plain decimal number"),  # full-width digits
    ("\u0661\u0662", "plain decimal number"),  # Arabic-Indic digits
    ("NaN", "plain decimal number"),
    ("-Infinity", "plain decimal number"),
    ("1\x00", "control characters"),
    (LONGER_THAN_A_CSV_FIELD, "at most 40 characters"),
]
BAD_SYMBOLS = [
    ("\u00df", "ticker symbol"),  # "ß".upper() is "SS"
    ("SP\x00Y", "control characters"),
    ("SPY\x1b", "control characters"),
    ("\uff33\uff30\uff39", "ticker symbol"),  # full-width SPY
    ("S" * 131_073, "at most 20 characters"),
]
UNCHANGED = {"SPY": Decimal(10), "BND": Decimal(20)}


def assert_unchanged(portfolio) -> None:
    portfolio.refresh_from_db()
    assert held(portfolio) == UNCHANGED and portfolio.cash_usd == Decimal(100)


@pytest.mark.parametrize(
    ("field", "value", "text"),
    [
        *[("quantity", value, text) for value, text in BAD_NUMBERS],
        *[("cost_basis_usd", value, text) for value, text in BAD_NUMBERS],
        *[("symbol", value, text) for value, text in BAD_SYMBOLS],
    ],
)
def test_a_bad_value_in_a_row_is_named_next_to_its_field_and_nothing_is_saved(client, portfolio, field, value, text):
    row = {"symbol": "QQQ", "quantity": "3", "cost_basis_usd": ""} | {field: value}
    data = rows_data([("SPY", "1", ""), (row["symbol"], row["quantity"], row["cost_basis_usd"])])
    response = client.post(reverse("portfolio_holdings", args=[portfolio.pk]), data)
    assert response.status_code == 400
    assert text in row_errors(response, 1, field)
    assert f'id="id_holdings-1-{field}_error"' in response.content.decode()
    assert_unchanged(portfolio)


@pytest.mark.parametrize(("value", "text"), [*BAD_NUMBERS, ("1" * 17, "too large")])
def test_bad_cash_in_the_editor_is_named_next_to_the_cash_field(client, portfolio, value, text):
    data = rows_data([("SPY", "1", "")], cash=value)
    response = client.post(reverse("portfolio_holdings", args=[portfolio.pk]), data)
    assert response.status_code == 400
    assert text in " ".join(response.context["cash_form"].errors["cash_usd"])
    assert_unchanged(portfolio)


def test_the_largest_numbers_are_saved_and_read_back(client, portfolio):
    # One digit below each column's capacity (SQLite reads a value at the limit back rounded past it).
    data = rows_data([("SPY", "100000000000000", "1000000000000000")], cash="1000000000000000")
    response = client.post(reverse("portfolio_holdings", args=[portfolio.pk]), data)
    assert response.status_code == 302
    portfolio.refresh_from_db()
    assert held(portfolio) == {"SPY": Decimal("100000000000000")}
    assert portfolio.cash_usd == Decimal("1000000000000000")
    assert client.get(reverse("portfolio_holdings", args=[portfolio.pk])).status_code == 200
    over = rows_data([("SPY", "100000000000000.1", "")], cash="1000000000000000.0001")
    response = client.post(reverse("portfolio_holdings", args=[portfolio.pk]), over)
    assert response.status_code == 400
    assert "must be at most 100000000000000" in row_errors(response, 0, "quantity")
    assert "must be at most 1000000000000000" in " ".join(response.context["cash_form"].errors["cash_usd"])


@pytest.mark.parametrize(
    ("management", "text"),
    [
        ({"holdings-TOTAL_FORMS": "-1"}, "the form was changed"),
        ({"holdings-TOTAL_FORMS": "0"}, "the form was changed"),  # two rows sent, none counted
        ({"holdings-TOTAL_FORMS": "1"}, "the form was changed"),  # the second row would be dropped
        ({"holdings-INITIAL_FORMS": "-5"}, "the form was changed"),
        ({"holdings-INITIAL_FORMS": "3"}, "the form was changed"),
        ({"holdings-TOTAL_FORMS": "1e3"}, "the form was changed"),
        ({"holdings-TOTAL_FORMS": "\uff12"}, "the form was changed"),
        ({"holdings-TOTAL_FORMS": False}, "the form was changed"),
    ],
)
def test_a_tampered_row_count_is_refused_and_nothing_changes(client, portfolio, management, text):
    data = rows_data([("SPY", "10", ""), ("BND", "20", "")], cash="100")
    for name, value in management.items():
        if value is False:
            data.pop(name)
        else:
            data[name] = value
    response = client.post(reverse("portfolio_holdings", args=[portfolio.pk]), data)
    assert response.status_code == 400
    assert text in response.content.decode()
    assert_unchanged(portfolio)


def test_removing_every_row_on_purpose_still_works(client, portfolio):
    data = rows_data([("SPY", "10", ""), ("BND", "20", "")], cash="100", delete=(0, 1))
    assert client.post(reverse("portfolio_holdings", args=[portfolio.pk]), data).status_code == 302
    assert held(portfolio) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("symbol,quantity\nSPY,1e309\n", "line 2 (SPY): quantity must be a plain decimal number"),
        (f"symbol,quantity\nSPY,{'9' * 30}\n", "line 2 (SPY): quantity is too large"),
        ("symbol,quantity,cost_basis_usd\nSPY,1,1e309\n", "line 2 (SPY): cost_basis_usd must be a plain decimal"),
        (f"symbol,quantity,cost_basis_usd\nSPY,1,{'9' * 30}\n", "line 2 (SPY): cost_basis_usd is too large"),
        ("symbol,quantity\nSPY,1_000\n", "line 2 (SPY): quantity must be a plain decimal number"),
        ("symbol,quantity\nSPY,\uff11\uff12\n", "line 2 (SPY): quantity must be a plain decimal number"),
        ("symbol,quantity\nSPY,\u0661\u0662\n", "line 2 (SPY): quantity must be a plain decimal number"),
        ("symbol,quantity\n\u00df,1\n", "line 2 (not a symbol): symbol must be a ticker symbol"),
        ("symbol,quantity\nSP\x00Y,1\n", "line 2 (not a symbol): symbol must be a ticker symbol"),
        ("symbol,quantity\nSPY,1\x00\n", "line 2 (SPY): quantity must be a plain decimal number"),
        (f"symbol,quantity\nSPY,{LONGER_THAN_A_CSV_FIELD}\n", "line 2: a value is longer than"),
        (f'symbol,quantity\nSPY,1\nBND,2\n"{"x" * 200_000}', "line 4: a value is longer than"),
        ("symbol,quantity\x00\nSPY,1\n", "line 1: the header must be"),
    ],
)
def test_a_bad_value_in_a_file_names_its_line_and_keeps_the_holdings(client, portfolio, text, message):
    response = upload(client, portfolio, text)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors["file"])
    assert 'id="id_file_error"' in response.content.decode()
    assert_unchanged(portfolio)


@pytest.mark.parametrize(("value", "text"), BAD_NUMBERS)
def test_bad_cash_with_a_file_is_named_next_to_the_cash_field(client, portfolio, value, text):
    response = upload(client, portfolio, "symbol,quantity\nBND,3\n", cash_usd=value)
    assert response.status_code == 400
    assert text in " ".join(response.context["form"].errors["cash_usd"])
    assert_unchanged(portfolio)


# -- another writer holding the portfolio ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_busy_portfolio_answers_the_editor_with_409_and_keeps_the_rows(client, portfolio, held_elsewhere):
    held_elsewhere(portfolio)
    data = rows_data([("SPY", "11", ""), ("QQQ", "3", "")], cash="50")
    response = client.post(reverse("portfolio_holdings", args=[portfolio.pk]), data)
    assert response.status_code == 409
    page = response.content.decode()
    assert "Another change to this portfolio was being saved at the same moment" in page
    assert 'value="QQQ"' in page  # the rows typed are shown again, ready to resend
    assert_unchanged(portfolio)


@pytest.mark.django_db(transaction=True)
def test_a_busy_portfolio_answers_the_upload_with_409(client, portfolio, held_elsewhere):
    held_elsewhere(portfolio)
    response = upload(client, portfolio, "symbol,quantity\nBND,3\n", cash_usd="5")
    assert response.status_code == 409
    assert "Another change to this portfolio was being saved at the same moment" in response.content.decode()
    assert_unchanged(portfolio)


@pytest.mark.django_db(transaction=True)
def test_a_busy_portfolio_answers_the_sync_with_a_message(client, owner, held_elsewhere):
    account = broker_account_create(owner=owner, kind="paper", label="Sandbox")
    paper_account_reset(account=account, cash_usd=Decimal(500), positions={"SPY": (Decimal(12), Decimal(500))})
    portfolio = make_portfolio(owner, holdings={"SPY": 10, "BND": 20}, cash_usd=Decimal(100), broker_account=account)
    review = client.get(reverse("portfolio_sync", args=[portfolio.pk]))
    held_elsewhere(portfolio)
    response = client.post(reverse("portfolio_sync", args=[portfolio.pk]), reviewed(review), follow=True)
    assert response.status_code == 200
    assert "Sync failed, nothing changed" in response.content.decode()
    assert_unchanged(portfolio)
