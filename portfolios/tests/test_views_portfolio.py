"""Portfolio pages: the detail page, the settings form (every bad input of the engine rejected next to
its field, nothing saved), deletion, and "Rebalance now"; another user's portfolio is a 404."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.forms.models import model_to_dict
from django.urls import reverse

from brokers.services.accounts import broker_account_create
from marketdata.models import Instrument
from portfolios.forms import PortfolioForm
from portfolios.models import Portfolio, RebalanceRun
from portfolios.services.execution import execute_run

from .execution_factories import paper_portfolio, planned_run
from .factories import SYMBOLS, make_portfolio, make_user

pytestmark = pytest.mark.django_db


def form_data(portfolio: Portfolio | None = None, **changes) -> dict:
    """What the settings form posts for ``portfolio`` (or a new one with the defaults), with ``changes``."""
    owner = portfolio.owner if portfolio else make_user("form-defaults")
    form = PortfolioForm(instance=portfolio, user=owner)
    data = {}
    for name in form.fields:
        value = form[name].value()  # as the page renders it
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else str(value)
    data.setdefault("name", "Growth")
    data["symbols"] = data.get("symbols") or ", ".join(SYMBOLS)
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def field_errors(response, field: str) -> str:
    """The text of the errors rendered next to ``field``."""
    return " ".join(str(e) for e in response.context["form"].errors.get(field, []))


@pytest.fixture
def owner(client, prices):
    user = make_user("alice")
    client.force_login(user)
    return user


# -- access ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "name", "args"),
    [
        ("get", "portfolio_create", []),
        ("get", "portfolio_detail", [1]),
        ("get", "portfolio_edit", [1]),
        ("get", "portfolio_delete", [1]),
        ("post", "portfolio_delete", [1]),
        ("post", "portfolio_rebalance", [1]),
        ("post", "portfolio_sync", [1]),
    ],
)
def test_anonymous_visitors_are_sent_to_the_login_page(client, method, name, args):
    response = getattr(client, method)(reverse(name, args=args))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_another_users_portfolio_is_a_404_and_nothing_changes(client, owner):
    theirs = make_portfolio(make_user("bob"), name="Bob's", holdings={"SPY": 5})
    for name in ("portfolio_detail", "portfolio_edit", "portfolio_delete"):
        assert client.get(reverse(name, args=[theirs.pk])).status_code == 404
    assert client.post(reverse("portfolio_edit", args=[theirs.pk]), form_data(theirs, name="Mine")).status_code == 404
    assert client.post(reverse("portfolio_delete", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("portfolio_rebalance", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Bob's" and not RebalanceRun.objects.exists()


# -- detail --------------------------------------------------------------------------------------------


def test_the_detail_page_computes_weights_from_holdings_and_closes_without_a_run(client, owner, clock):
    portfolio = make_portfolio(
        owner, holdings={"SPY": 10, "BND": 10}, cash_usd=Decimal(100), manual_targets={"SPY": 0.5, "BND": 0.5}
    )
    response = client.get(reverse("portfolio_detail", args=[portfolio.pk]))
    assert response.status_code == 200
    detail = response.context["detail"]
    assert detail.source == "computed"
    rows = {row.symbol: row for row in detail.rows}
    assert rows["SPY"].quantity == Decimal(10) and rows["SPY"].price_usd > 0
    total = float(detail.valuation.value_usd)
    assert rows["SPY"].weight == pytest.approx(float(rows["SPY"].value_usd) / total)
    assert rows["SPY"].target == pytest.approx(0.5 * (1 - float(portfolio.cash_buffer_weight)))
    assert rows["SPY"].band is not None and rows["SPY"].urgency is not None
    page = response.content.decode()
    for chart in ("chart-weights", "chart-bands", "chart-prices"):
        assert f'data-figure="{chart}"' in page
    assert "Rebalance now" in page and "SYNTHETIC" in page


def test_the_detail_page_shows_the_latest_runs_needs_and_its_history(client, prices, clock):
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, mode="propose")
    run = planned_run(portfolio)
    client.force_login(portfolio.owner)
    response = client.get(reverse("portfolio_detail", args=[portfolio.pk]))
    detail = response.context["detail"]
    assert detail.source == "run"
    rows = {row.symbol: row for row in detail.rows}
    assert rows["SPY"].deviation == pytest.approx(0.2) and rows["SPY"].outside and rows["SPY"].action == "sell"
    page = response.content.decode()
    assert reverse("run_report", args=[run.pk]) in page
    assert reverse("run_approve", args=[run.pk]) in page  # a proposed plan with a broker account


# -- create and edit -----------------------------------------------------------------------------------


def test_a_portfolio_is_created_with_its_universe(client, owner):
    response = client.post(
        reverse("portfolio_create"),
        form_data(name="Growth", symbols="spy, bnd", age="35", manual_targets="SPY: 0.6, BND: 0.4"),
    )
    portfolio = Portfolio.objects.get(owner=owner, name="Growth")
    assert response.status_code == 302 and response["Location"] == reverse("portfolio_holdings", args=[portfolio.pk])
    assert sorted(portfolio.instruments.values_list("symbol", flat=True)) == ["BND", "SPY"]
    assert portfolio.age == 35 and portfolio.manual_targets == {"SPY": 0.6, "BND": 0.4}


def test_every_policy_field_of_the_model_is_on_the_form():
    skipped = {"id", "owner", "instruments", "cash_usd", "created_at", "updated_at"}
    model_fields = {f.name for f in Portfolio._meta.get_fields() if f.concrete and not f.auto_created} - skipped
    assert model_fields <= set(PortfolioForm._meta.fields)


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"min_weight": "0.5", "max_weight": "0.3"}, "min_weight", "above max_weight"),
        ({"band_abs": "0"}, "band_abs", "must be at least 0.0001"),
        ({"band_abs": "-0.01"}, "band_abs", "must be at least 0.0001"),
        ({"band_abs": "1.5"}, "band_abs", "must be at most 1"),
        ({"band_rel": "0"}, "band_rel", "must be at least 0.0001"),
        ({"age": "17"}, "age", "must be at least 18"),
        ({"age": "111"}, "age", "must be at most 110"),
        ({"retirement_age": "39"}, "retirement_age", "must be at least 40"),
        ({"glide_path_knots": "60: 0.5, 50: 0.6"}, "glide_path_knots", "strictly increasing"),
        ({"glide_path_knots": "40: 1.2, 60: 0.5"}, "glide_path_knots", "outside [0, 1]"),
        ({"glide_path_knots": "40 - 0.9"}, "glide_path_knots", "cannot read"),
        ({"manual_targets": "SPY: 0.6, BND: 0.3"}, "manual_targets", "sum to 0.9, not 1"),
        ({"manual_targets": "SPY: 0.6, ZZZZ: 0.4"}, "manual_targets", "unknown symbol ZZZZ"),
        ({"manual_targets": '{"SPY": 0.6,'}, "manual_targets", "not valid JSON"),
        ({"symbols": "SPY, NOPE"}, "symbols", "unknown symbol NOPE"),
        ({"rebalancing_strategy": "fastest"}, "rebalancing_strategy", "is not one of"),
        ({"strategy": "best"}, "strategy", "is not one of"),
        ({"spread_bps": "2000"}, "spread_bps", "must be at most 1000"),
        ({"min_trade_usd": "-5"}, "min_trade_usd", "must be at least 0"),
        ({"weight_overrides": '{"SPY": ["a", 0.5]}'}, "weight_overrides", "is not a number"),
        ({"max_turnover": "1.01"}, "max_turnover", "must be at most 1"),
        ({"risk_free_rate": "0.5"}, "risk_free_rate", "must be at most 0.25"),
        ({"band_mode": "widest"}, "band_mode", "widest is not one of the available choices"),
        ({"cash_flow_to": "edge"}, "cash_flow_to", "edge is not one of the available choices"),
    ],
)
def test_bad_settings_are_rejected_next_to_their_field_and_nothing_is_saved(client, owner, changes, field, text):
    portfolio = make_portfolio(owner, name="Core", holdings={"SPY": 5})
    before = model_to_dict(portfolio)

    response = client.post(reverse("portfolio_edit", args=[portfolio.pk]), form_data(portfolio, **changes))

    assert response.status_code == 400
    assert text in field_errors(response, field), response.context["form"].errors
    # The message is rendered next to its field.
    assert f'id="id_{field}_error"' in response.content.decode()
    portfolio.refresh_from_db()
    assert model_to_dict(portfolio) == before
    # Creating with the same input saves nothing either.
    created = client.post(reverse("portfolio_create"), form_data(name="Another", **changes))
    assert created.status_code == 400 and not Portfolio.objects.filter(name="Another").exists()


LONG = "x" * 131_073
#: Input Python reads but a person does not mean, or that no column can hold, per settings field.
BAD_SETTINGS = [
    ("risk_free_rate", "1e309", "plain decimal number"),
    ("risk_free_rate", "9" * 30, "too large"),
    ("risk_free_rate", "0_02", "plain decimal number"),
    ("risk_free_rate", "\uff10.\uff10\uff12", "plain decimal number"),  # full-width
    ("risk_free_rate", "\u0660.\u0660\u0662", "plain decimal number"),  # Arabic-Indic
    ("risk_free_rate", "NaN", "plain decimal number"),
    ("min_trade_usd", "1" * 30, "too large"),
    ("cash_trigger_usd", "1e5", "plain decimal number"),
    ("cash_trigger_usd", "1000000000000000.0001", "at most 1000000000000000"),
    ("commission_per_trade_usd", "1\x00", "plain decimal number"),
    ("lookback_days", "1_000", "whole number"),
    ("lookback_days", "\uff12\uff15\uff12", "whole number"),
    ("lookback_days", "252.0", "whole number"),
    ("lookback_days", "9" * 30, "too large"),
    ("age", "\u0664\u0660", "whole number"),
    ("name", "Core\x00", "control characters"),
    ("name", "Core\x1b[31m", "control characters"),
    ("name", LONG, "at most 100 characters"),
    ("strategy", "max_sharpe\x00", "control characters"),
    ("fallbacks", "min_volatility\x07", "control characters"),
    ("fallbacks", LONG, "at most 10000 characters"),
    ("group_limits", "bonds >= 20%\x00", "control characters"),
    ("symbols", "SPY, \u00df", "not a ticker symbol: \u00df"),  # "ß".upper() is "SS"
    ("symbols", "SPY, \uff33\uff30\uff39", "not a ticker symbol"),
    ("symbols", "SPY\x00", "control characters"),
    ("excluded_symbols", "\u00df", "not a ticker symbol"),
    ("do_not_trade", LONG, "at most 10000 characters"),
    ("manual_targets", "SPY: \uff10.5, BND: 0.5", "plain decimal number"),
    ("manual_targets", "SPY: 0.5, BND: 5e-1", "plain decimal number"),
    ("manual_targets", "\u00df: 1", "ticker symbol"),
    ("manual_targets", "SPY: 0.5, spy: 0.5", "SPY given twice"),
    ("manual_targets", '{"SPY": NaN}', "finite numbers"),
    ("manual_targets", '{"SPY": 1e309}', "finite numbers"),
    ("manual_targets", '{"SPY": 1' + "0" * 200 + "}", "more than 100 digits"),
    ("manual_targets", '{"SPY\\u0000": 1}', "control characters"),
    ("manual_targets", "[" * 5_000, "nested too deeply"),
    ("glide_path_knots", "40: 0.9, \uff16\uff15: 0.5", "the age must be a plain decimal number"),
    ("glide_path_knots", "[[40, NaN]]", "finite numbers"),
    ("weight_overrides", '{"SPY": [NaN, 0.5]}', "finite numbers"),
    ("weight_overrides", '{"SPY": [0, 1e999]}', "finite numbers"),
    ("weight_overrides", '{"SP\\u0000Y": [0, 1]}', "control characters"),
    ("weight_overrides", "[" * 5_000, "nested too deeply"),
    ("weight_overrides", "[" * 200_000, "at most 10000 characters"),
]


@pytest.mark.parametrize(("field", "value", "text"), BAD_SETTINGS)
def test_input_no_column_can_hold_is_refused_next_to_its_field(client, owner, field, value, text):
    portfolio = make_portfolio(owner, name="Core", holdings={"SPY": 5})
    before = model_to_dict(portfolio)

    response = client.post(reverse("portfolio_edit", args=[portfolio.pk]), form_data(portfolio, **{field: value}))

    assert response.status_code == 400
    assert text in field_errors(response, field), response.context["form"].errors
    assert f'id="id_{field}_error"' in response.content.decode()
    portfolio.refresh_from_db()
    assert model_to_dict(portfolio) == before


def test_a_settings_save_keeps_the_cash_and_holdings_written_since_the_page_was_read(client, owner):
    portfolio = make_portfolio(owner, name="Core", holdings={"SPY": 5}, cash_usd=Decimal(100))
    data = form_data(portfolio, name="Core renamed")
    # Another request changes the cash after the settings page was read and before it is sent.
    Portfolio.objects.filter(pk=portfolio.pk).update(cash_usd=Decimal(250))

    assert client.post(reverse("portfolio_edit", args=[portfolio.pk]), data).status_code == 302

    portfolio.refresh_from_db()
    assert portfolio.name == "Core renamed" and portfolio.cash_usd == Decimal(250)


@pytest.mark.django_db(transaction=True)
def test_a_busy_portfolio_answers_the_settings_page_with_409(client, owner, held_elsewhere):
    portfolio = make_portfolio(owner, name="Core", holdings={"SPY": 5})
    before = model_to_dict(portfolio)
    held_elsewhere(portfolio)

    response = client.post(reverse("portfolio_edit", args=[portfolio.pk]), form_data(portfolio, name="Renamed"))

    assert response.status_code == 409
    assert "Another change to this portfolio was being saved at the same moment" in response.content.decode()
    portfolio.refresh_from_db()
    assert model_to_dict(portfolio) == before


def test_a_valid_edit_saves_every_section(client, owner):
    portfolio = make_portfolio(owner, name="Core")
    data = form_data(
        portfolio,
        name="Core renamed",
        band_mode="absolute",
        band_abs="0.04",
        glide_path_knots="40: 0.9, 65: 0.5",
        group_limits="bonds >= 20%; technology <= 30%",
        do_not_trade="bnd",
        fallbacks="equal_weight",
        mode="auto",
        symbols="SPY, BND, QQQ",
    )
    response = client.post(reverse("portfolio_edit", args=[portfolio.pk]), data)
    assert response.status_code == 302
    portfolio.refresh_from_db()
    assert portfolio.name == "Core renamed" and portfolio.band_abs == Decimal("0.04")
    assert portfolio.glide_path_knots == [[40, 0.9], [65, 0.5]]
    assert portfolio.group_limits == ["bonds >= 20%", "technology <= 30%"]
    assert portfolio.do_not_trade == ["BND"] and portfolio.fallbacks == ["equal_weight"] and portfolio.mode == "auto"
    assert set(portfolio.instruments.values_list("symbol", flat=True)) == {"SPY", "BND", "QQQ"}


def test_the_hybrid_band_unheld_targets_and_cash_flow_edge_are_saved_and_shown_again(client, owner):
    portfolio = make_portfolio(owner, name="Core")
    edit = reverse("portfolio_edit", args=[portfolio.pk])
    data = form_data(portfolio, band_mode="hybrid", unheld_outside_band="on", cash_flow_to="band_edge")

    assert client.post(edit, data).status_code == 302

    portfolio.refresh_from_db()
    assert (portfolio.band_mode, portfolio.unheld_outside_band, portfolio.cash_flow_to) == ("hybrid", True, "band_edge")
    form = client.get(edit).context["form"]
    assert (form["band_mode"].value(), form["unheld_outside_band"].value(), form["cash_flow_to"].value()) == (
        "hybrid",
        True,
        "band_edge",
    )
    # Posting the page as shown changes nothing; unticking the box turns the option off.
    assert client.post(edit, form_data(portfolio)).status_code == 302
    portfolio.refresh_from_db()
    assert (portfolio.band_mode, portfolio.unheld_outside_band, portfolio.cash_flow_to) == ("hybrid", True, "band_edge")
    assert client.post(edit, form_data(portfolio, unheld_outside_band=False)).status_code == 302
    portfolio.refresh_from_db()
    assert portfolio.unheld_outside_band is False


def test_broker_account_choices_are_the_users_own(client, owner):
    mine = broker_account_create(owner=owner, kind="paper", label="My paper")
    theirs = broker_account_create(owner=make_user("bob"), kind="paper", label="Bob's paper")
    portfolio = make_portfolio(owner, name="Core")

    page = client.get(reverse("portfolio_edit", args=[portfolio.pk])).content.decode()
    assert "My paper" in page and "Bob" not in page

    response = client.post(
        reverse("portfolio_edit", args=[portfolio.pk]), form_data(portfolio, broker_account=str(theirs.pk))
    )
    assert response.status_code == 400 and "valid choice" in field_errors(response, "broker_account")
    portfolio.refresh_from_db()
    assert portfolio.broker_account is None

    response = client.post(
        reverse("portfolio_edit", args=[portfolio.pk]), form_data(portfolio, broker_account=str(mine.pk))
    )
    assert response.status_code == 302
    portfolio.refresh_from_db()
    assert portfolio.broker_account == mine


def test_one_broker_account_backs_one_portfolio(client, owner):
    account = broker_account_create(owner=owner, kind="paper", label="My paper")
    make_portfolio(owner, name="First", broker_account=account)
    response = client.post(reverse("portfolio_create"), form_data(name="Second", broker_account=str(account.pk)))
    assert response.status_code == 400 and "already backs the portfolio 'First'" in field_errors(
        response, "broker_account"
    )


def test_portfolio_names_are_unique_per_owner(client, owner):
    make_portfolio(owner, name="Core")
    response = client.post(reverse("portfolio_create"), form_data(name="core"))
    assert response.status_code == 400 and "already have a portfolio named" in field_errors(response, "name")
    assert Portfolio.objects.filter(owner=owner).count() == 1


# -- delete --------------------------------------------------------------------------------------------


def test_delete_asks_first_and_deletes_on_post(client, owner):
    portfolio = make_portfolio(owner, name="Core", holdings={"SPY": 3})
    page = client.get(reverse("portfolio_delete", args=[portfolio.pk]))
    assert page.status_code == 200 and Portfolio.objects.filter(pk=portfolio.pk).exists()
    response = client.post(reverse("portfolio_delete", args=[portfolio.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert not Portfolio.objects.filter(pk=portfolio.pk).exists()


def test_a_portfolio_with_orders_at_a_broker_is_kept(client, prices, clock, settings):
    settings.EXECUTION_WAIT_SECONDS, settings.EXECUTION_POLL_SECONDS = 0.2, 0.01
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    client.force_login(portfolio.owner)
    response = client.post(reverse("portfolio_delete", args=[portfolio.pk]), follow=True)
    assert Portfolio.objects.filter(pk=portfolio.pk).exists()
    assert "cannot be deleted" in response.content.decode()


# -- rebalance now -------------------------------------------------------------------------------------


def test_rebalance_now_plans_a_manual_run_and_shows_its_report(client, prices, clock):
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, mode="propose")
    client.force_login(portfolio.owner)
    assert client.get(reverse("portfolio_rebalance", args=[portfolio.pk])).status_code == 405
    assert not RebalanceRun.objects.exists()

    response = client.post(reverse("portfolio_rebalance", args=[portfolio.pk]))

    run = RebalanceRun.objects.get(portfolio=portfolio)
    assert response.status_code == 302 and response["Location"] == reverse("run_report", args=[run.pk])
    assert run.status == RebalanceRun.Status.PLANNED and "manual request" in run.trigger
    assert run.trades.count() == 2 and not run.orders.exists()  # nothing is sent before approval


def test_rebalance_now_that_cannot_plan_says_why(client, owner, clock):
    portfolio = make_portfolio(owner, name="Empty", manual_targets={"SPY": 1})
    response = client.post(reverse("portfolio_rebalance", args=[portfolio.pk]), follow=True)
    assert "Planning failed" in response.content.decode()
    assert RebalanceRun.objects.get(portfolio=portfolio).status == RebalanceRun.Status.FAILED


def test_a_universe_of_known_instruments_is_accepted(client, owner):
    Instrument.objects.create(symbol="NEWX")
    response = client.post(reverse("portfolio_create"), form_data(name="New", symbols="NEWX, SPY", max_weight="0.6"))
    assert response.status_code == 302
    assert set(Portfolio.objects.get(name="New").instruments.values_list("symbol", flat=True)) == {"NEWX", "SPY"}


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"symbols": "SPY, BND", "max_weight": "0.4"}, "max_weight", "2 assets at most 40% each add up to 80%"),
        ({"min_weight": "0.3"}, "min_weight", "4 assets at least 30% each add up to 120%"),
        ({"excluded_symbols": "SPY, QQQ, VXUS, BND"}, "excluded_symbols", "every asset is excluded"),
    ],
)
def test_bounds_no_weights_of_the_universe_can_meet_are_rejected(client, owner, changes, field, text):
    response = client.post(reverse("portfolio_create"), form_data(name="Infeasible", **changes))
    assert response.status_code == 400 and text in field_errors(response, field)
    assert not Portfolio.objects.filter(name="Infeasible").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("strategy", "os.system"), ("rebalancing_strategy", "shutil.rmtree"), ("glide_path_class", "subprocess.Popen")],
)
def test_only_staff_may_name_code_to_run_by_dotted_path(client, owner, field, value):
    portfolio = make_portfolio(owner, name="Core")
    response = client.post(reverse("portfolio_edit", args=[portfolio.pk]), form_data(portfolio, **{field: value}))
    assert response.status_code == 400 and "set by an administrator" in field_errors(response, field)
    portfolio.refresh_from_db()
    assert getattr(portfolio, field) != value


def test_a_plugin_an_administrator_set_is_kept_on_save(client, owner):
    portfolio = make_portfolio(owner, name="Core", strategy="plugins.allocations.house_view")
    response = client.post(reverse("portfolio_edit", args=[portfolio.pk]), form_data(portfolio, name="Core 2"))
    assert response.status_code == 302
    portfolio.refresh_from_db()
    assert portfolio.name == "Core 2" and portfolio.strategy == "plugins.allocations.house_view"


def test_holdings_show_quantities_to_four_decimals(client, owner):
    portfolio = make_portfolio(owner, holdings={"SPY": Decimal("12.345678912"), "BND": Decimal(1200)})
    page = client.get(reverse("portfolio_detail", args=[portfolio.pk])).content.decode()
    assert ">12.3457<" in page and "12.345678912" not in page
    assert ">1,200<" in page


def test_a_holding_without_a_close_is_flagged_and_the_rest_is_still_shown(client, owner, clock):
    """One symbol without a price must not blank every weight or hide the stored targets."""
    Instrument.objects.create(symbol="NOPX", name="No prices", asset_class="equity")
    portfolio = make_portfolio(
        owner,
        holdings={"SPY": Decimal(10), "NOPX": Decimal(5)},
        cash_usd=Decimal(1000),
        manual_targets={"SPY": "0.7", "NOPX": "0.3"},
    )
    response = client.get(reverse("portfolio_detail", args=[portfolio.pk]))
    page = response.content.decode()
    rows = {row.symbol: row for row in response.context["detail"].rows}
    assert rows["NOPX"].price_usd is None and rows["NOPX"].weight is None
    assert rows["SPY"].weight is not None and 0 < rows["SPY"].weight < 1
    assert (rows["SPY"].target, rows["NOPX"].target) == (0.7, 0.3)
    assert "70.00%" in page and "30.00%" in page
    note = "Weights are of the priced holdings and cash: no close for NOPX, whose value is unknown; targets manual."
    assert note in page
