"""Broker account pages: write-only credentials ("set" / "not set", never a value), the password asked
again for credentials and the live flag, the live opt-in and opt-out, the paper account's cash and
positions, and another user's account as a 404."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from brokers.crypto import decrypt_credentials
from brokers.models import BrokerAccount, PaperAccount
from brokers.services.accounts import broker_account_create, broker_account_set_credentials
from brokers.services.paper import paper_account_reset
from portfolios.tests.factories import make_user
from rebalancer_site.tests.factories import totp_code, two_factor_device, verify_session

pytestmark = pytest.mark.django_db
PASSWORD = "pw-not-used-123"  # portfolios.tests.factories.make_user's
API_KEY, SECRET = "PKTESTKEY12345678", "s3cr3t-Value-Never-Shown-0123456789"


@pytest.fixture
def alpaca(owner):
    return broker_account_create(
        owner=owner, kind="alpaca", label="Alpaca", credentials={"api_key": API_KEY, "secret_key": SECRET}
    )


def stored(account: BrokerAccount) -> dict:
    account.refresh_from_db()
    return decrypt_credentials(account.credentials_encrypted)


# -- access --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("broker_account_list", []),
        ("broker_account_create", []),
        ("broker_account_detail", [1]),
        ("broker_account_edit", [1]),
    ],
)
def test_anonymous_visitors_are_sent_to_the_login_page(client, name, args):
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_anonymous_posts_change_nothing(client):
    account = broker_account_create(owner=make_user("bob"), kind="alpaca", label="Bob's")
    BrokerAccount.objects.filter(pk=account.pk).update(is_live=True)
    response = client.post(reverse("broker_account_live", args=[account.pk]), {"action": "enable", "password": "x"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    account.refresh_from_db()
    assert account.live_opt_in_at is None


def test_another_users_account_is_a_404_and_nothing_changes(client, owner):
    bob = make_user("bob")
    theirs = broker_account_create(
        owner=bob, kind="alpaca", label="Bob's", credentials={"api_key": API_KEY, "secret_key": SECRET}
    )
    BrokerAccount.objects.filter(pk=theirs.pk).update(is_live=True)
    assert client.get(reverse("broker_account_detail", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("broker_account_edit", args=[theirs.pk])).status_code == 404
    edit = {"label": "Mine now", "api_key": "OTHERKEY1234", "password": PASSWORD}
    assert client.post(reverse("broker_account_edit", args=[theirs.pk]), edit).status_code == 404
    live = {"action": "enable", "password": PASSWORD}
    assert client.post(reverse("broker_account_live", args=[theirs.pk]), live).status_code == 404
    theirs.refresh_from_db()
    assert theirs.label == "Bob's" and theirs.live_opt_in_at is None
    assert stored(theirs)["api_key"] == API_KEY
    page = client.get(reverse("broker_account_list")).content.decode()
    assert "Bob" not in page


# -- list, detail --------------------------------------------------------------------------------------


def test_the_list_shows_kind_label_live_flag_and_credential_states(client, owner, alpaca):
    broker_account_create(owner=owner, kind="paper", label="Sandbox")
    page = client.get(reverse("broker_account_list")).content.decode()
    assert "Alpaca" in page and "Sandbox" in page and "Paper (built-in simulator)" in page
    assert "api_key: set" in page and "none needed" in page
    assert API_KEY not in page and SECRET not in page


def test_a_paper_account_shows_its_simulated_cash_and_positions(client, owner):
    from portfolios.tests.factories import load_sample_prices

    load_sample_prices(["SPY"])
    account = broker_account_create(owner=owner, kind="paper", label="Sandbox")
    paper_account_reset(account=account, cash_usd=Decimal("1234.5"), positions={"SPY": (Decimal(7), Decimal(500))})
    page = client.get(reverse("broker_account_detail", args=[account.pk])).content.decode()
    assert "Simulated account" in page and "$1,234.50" in page
    assert "SPY" in page and ">7<" in page
    assert "paper: no real money" in page


def test_the_largest_order_names_the_servers_amount_when_the_account_sets_none(client, owner, settings):
    settings.MAX_ORDER_NOTIONAL_USD = 25_000
    account = broker_account_create(owner=owner, kind="paper", label="Sandbox")
    page = client.get(reverse("broker_account_detail", args=[account.pk])).content.decode()
    assert '$25,000.00 <span class="muted">(the server\'s limit)</span>' in page
    assert "MAX_ORDER_NOTIONAL_USD" not in page


def test_credentials_are_never_shown(client, owner, alpaca):
    for name in ("broker_account_detail", "broker_account_edit"):
        page = client.get(reverse(name, args=[alpaca.pk])).content.decode()
        assert API_KEY not in page and SECRET not in page
    edit_page = client.get(reverse("broker_account_edit", args=[alpaca.pk])).content.decode()
    assert 'type="password" name="api_key"' in edit_page and "Currently set" in edit_page


# -- create --------------------------------------------------------------------------------------------


def test_a_paper_account_is_created_with_its_starting_cash(client, owner):
    data = {"kind": "paper", "label": "Sandbox", "paper_cash_usd": "50000", "paper_session_mode": "exchange"}
    response = client.post(reverse("broker_account_create"), data)
    account = BrokerAccount.objects.get(owner=owner, label="Sandbox")
    assert response.status_code == 302 and response["Location"] == reverse("broker_account_detail", args=[account.pk])
    assert PaperAccount.objects.get(account=account).cash_usd == Decimal(50000)


def test_credentials_on_create_need_the_password(client, owner):
    data = {
        "kind": "alpaca",
        "label": "Alpaca",
        "api_key": API_KEY,
        "secret_key": SECRET,
        "paper_session_mode": "exchange",
    }
    response = client.post(reverse("broker_account_create"), data)
    assert response.status_code == 400
    assert "enter your password" in " ".join(response.context["form"].errors["password"])
    assert not BrokerAccount.objects.exists()

    response = client.post(reverse("broker_account_create"), {**data, "password": PASSWORD})
    assert response.status_code == 302
    account = BrokerAccount.objects.get(owner=owner)
    assert stored(account) == {"api_key": API_KEY, "secret_key": SECRET}


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"kind": "paper", "label": "P", "is_live": "on", "password": PASSWORD}, "is_live", "cannot trade real money"),
        ({"kind": "alpaca", "label": "A", "api_key": "short", "password": PASSWORD}, "api_key", "expected 8 to 200"),
        ({"kind": "ib", "label": "I", "port": "99999", "password": PASSWORD}, "port", "port from 1 to 65535"),
        ({"kind": "alpaca", "label": "A", "is_live": "on"}, "password", "enter your password"),
        ({"kind": "alpaca", "label": "A", "api_key": API_KEY, "password": "wrong"}, "password", "not correct"),
    ],
)
def test_bad_input_on_create_is_named_next_to_its_field(client, owner, data, field, text):
    response = client.post(reverse("broker_account_create"), {"paper_session_mode": "exchange", **data})
    assert response.status_code == 400
    assert text in " ".join(response.context["form"].errors[field])
    assert not BrokerAccount.objects.exists()


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"kind": "paper", "label": "Sand\x00box"}, "label", "control characters"),
        ({"kind": "paper", "label": "Sandbox\x1b[2J"}, "label", "control characters"),
        ({"kind": "paper", "label": "x" * 131_073}, "label", "at most 100 characters"),
        ({"kind": "paper", "label": "P", "paper_cash_usd": "1_000"}, "paper_cash_usd", "plain decimal number"),
        ({"kind": "paper", "label": "P", "paper_cash_usd": "\uff11\uff10"}, "paper_cash_usd", "plain decimal"),
        ({"kind": "paper", "label": "P", "paper_cash_usd": "\u0661\u0660"}, "paper_cash_usd", "plain decimal"),
        ({"kind": "paper", "label": "P", "paper_cash_usd": "1e309"}, "paper_cash_usd", "plain decimal number"),
        ({"kind": "paper", "label": "P", "paper_cash_usd": "9" * 30}, "paper_cash_usd", "too large"),
        ({"kind": "paper", "label": "P", "paper_cash_usd": "NaN"}, "paper_cash_usd", "plain decimal number"),
        ({"kind": "alpaca", "label": "A", "api_key": "PKTEST\x00KEY1", "password": PASSWORD}, "api_key", "control"),
    ],
)
def test_input_no_column_can_hold_is_named_next_to_its_field(client, owner, data, field, text):
    response = client.post(reverse("broker_account_create"), {"paper_session_mode": "exchange", **data})
    assert response.status_code == 400
    assert text in " ".join(response.context["form"].errors[field])
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not BrokerAccount.objects.exists()


@pytest.mark.parametrize("label", ["Alpaca\x00", "Alpaca\x07", "A" * 101])
def test_a_bad_label_on_edit_changes_nothing(client, owner, alpaca, label):
    response = client.post(reverse("broker_account_edit", args=[alpaca.pk]), {"label": label})
    assert response.status_code == 400 and response.context["form"].errors["label"]
    alpaca.refresh_from_db()
    assert alpaca.label == "Alpaca"


def test_labels_are_unique_per_owner(client, owner):
    broker_account_create(owner=owner, kind="paper", label="Sandbox")
    response = client.post(
        reverse("broker_account_create"), {"kind": "paper", "label": "sandbox", "paper_session_mode": "exchange"}
    )
    assert response.status_code == 400 and "already have a broker account" in str(response.context["form"].errors)


# -- edit ----------------------------------------------------------------------------------------------


def test_blank_credentials_keep_what_is_stored(client, owner, alpaca):
    response = client.post(reverse("broker_account_edit", args=[alpaca.pk]), {"label": "Alpaca main"})
    assert response.status_code == 302
    alpaca.refresh_from_db()
    assert alpaca.label == "Alpaca main" and stored(alpaca) == {"api_key": API_KEY, "secret_key": SECRET}


def test_changing_credentials_needs_the_password_and_withdraws_the_opt_in(client, owner, alpaca, settings):
    BrokerAccount.objects.filter(pk=alpaca.pk).update(is_live=True)
    verify_session(client, two_factor_device(owner))
    client.post(reverse("broker_account_live", args=[alpaca.pk]), {"action": "enable", "password": PASSWORD})
    alpaca.refresh_from_db()
    assert alpaca.live_opt_in_at is not None
    new_key = "PKNEWKEY987654321"

    refused = client.post(
        reverse("broker_account_edit", args=[alpaca.pk]), {"label": "Alpaca", "is_live": "on", "api_key": new_key}
    )
    assert refused.status_code == 400 and "enter your password" in str(refused.context["form"].errors["password"])
    assert stored(alpaca)["api_key"] == API_KEY

    response = client.post(
        reverse("broker_account_edit", args=[alpaca.pk]),
        {"label": "Alpaca", "is_live": "on", "api_key": new_key, "password": PASSWORD},
    )
    assert response.status_code == 302
    assert stored(alpaca) == {"api_key": new_key, "secret_key": SECRET}
    assert alpaca.live_opt_in_at is None


def test_changing_the_live_flag_needs_the_password(client, owner, alpaca):
    refused = client.post(reverse("broker_account_edit", args=[alpaca.pk]), {"label": "Alpaca", "is_live": "on"})
    assert refused.status_code == 400
    alpaca.refresh_from_db()
    assert not alpaca.is_live
    response = client.post(
        reverse("broker_account_edit", args=[alpaca.pk]), {"label": "Alpaca", "is_live": "on", "password": PASSWORD}
    )
    assert response.status_code == 302
    alpaca.refresh_from_db()
    assert alpaca.is_live and alpaca.live_opt_in_at is None


def test_a_paper_account_cannot_be_made_live(client, owner):
    account = broker_account_create(owner=owner, kind="paper", label="Sandbox")
    client.post(
        reverse("broker_account_edit", args=[account.pk]), {"label": "Sandbox", "is_live": "on", "password": PASSWORD}
    )
    account.refresh_from_db()
    assert not account.is_live


def test_a_bad_credential_on_edit_saves_nothing(client, owner, alpaca):
    response = client.post(
        reverse("broker_account_edit", args=[alpaca.pk]),
        {"label": "Renamed", "api_key": "bad key with spaces", "password": PASSWORD},
    )
    assert response.status_code == 400 and "expected 8 to 200" in str(response.context["form"].errors["api_key"])
    alpaca.refresh_from_db()
    assert alpaca.label == "Alpaca" and stored(alpaca)["api_key"] == API_KEY


# -- live opt-in ---------------------------------------------------------------------------------------


def test_the_live_opt_in_needs_the_right_password_and_can_be_withdrawn(client, owner, alpaca, settings):
    settings.ALLOW_LIVE_TRADING = True
    BrokerAccount.objects.filter(pk=alpaca.pk).update(is_live=True)
    verify_session(client, two_factor_device(owner))
    url = reverse("broker_account_live", args=[alpaca.pk])
    assert client.get(url).status_code == 405

    wrong = client.post(url, {"action": "enable", "password": "wrong"})
    assert wrong.status_code == 400 and "not correct" in str(wrong.context["live_form"].errors["password"])
    alpaca.refresh_from_db()
    assert alpaca.live_opt_in_at is None

    assert client.post(url, {"action": "enable", "password": PASSWORD}).status_code == 302
    alpaca.refresh_from_db()
    assert alpaca.live_opt_in_at is not None
    page = client.get(reverse("broker_account_detail", args=[alpaca.pk])).content.decode()
    assert "Opt out of live trading" in page

    assert client.post(url, {"action": "disable"}).status_code == 302
    alpaca.refresh_from_db()
    assert alpaca.live_opt_in_at is None


def test_the_live_opt_in_is_refused_without_two_factor_authentication(client, owner, alpaca, settings):
    settings.ALLOW_LIVE_TRADING = True
    BrokerAccount.objects.filter(pk=alpaca.pk).update(is_live=True)
    page = client.get(reverse("broker_account_detail", args=[alpaca.pk])).content.decode()
    assert "Opting in to real money needs two-factor authentication" in page
    assert "Opt in to live trading" not in page

    response = client.post(reverse("broker_account_live", args=[alpaca.pk]), {"action": "enable", "password": PASSWORD})

    assert response.status_code == 400
    assert "real money needs two-factor authentication" in " ".join(response.context["live_form"].non_field_errors())
    alpaca.refresh_from_db()
    assert alpaca.live_opt_in_at is None


def test_a_session_without_a_code_opts_in_with_the_password_and_a_code(client, owner, alpaca, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # each refusal below is about its own input, not the wait after it
    BrokerAccount.objects.filter(pk=alpaca.pk).update(is_live=True)
    device = two_factor_device(owner)
    url = reverse("broker_account_live", args=[alpaca.pk])
    assert "Authentication code" in client.get(reverse("broker_account_detail", args=[alpaca.pk])).content.decode()

    for data, field, text in [
        ({"password": PASSWORD}, "code", "enter the code"),
        ({"password": PASSWORD, "code": "12345x"}, "code", "the code is not correct"),
        # A wrong password does not spend the code.
        ({"password": "wrong", "code": totp_code(device)}, "password", "the password is not correct"),
    ]:
        refused = client.post(url, {"action": "enable", **data})
        assert refused.status_code == 400 and text in " ".join(refused.context["live_form"].errors[field])
        alpaca.refresh_from_db()
        assert alpaca.live_opt_in_at is None

    response = client.post(url, {"action": "enable", "password": PASSWORD, "code": totp_code(device)})
    assert response.status_code == 302
    alpaca.refresh_from_db()
    assert alpaca.live_opt_in_at is not None
    # The session entered a code: it is verified for what follows.
    assert "This session entered one" in client.get(reverse("security")).content.decode()


def test_a_paper_account_cannot_opt_in(client, owner):
    account = broker_account_create(owner=owner, kind="paper", label="Sandbox")
    response = client.post(
        reverse("broker_account_live", args=[account.pk]), {"action": "enable", "password": PASSWORD}
    )
    assert response.status_code == 400 and "mark the account as live first" in response.content.decode()
    account.refresh_from_db()
    assert account.live_opt_in_at is None


def test_credentials_set_by_the_service_show_as_set(client, owner):
    account = broker_account_create(owner=owner, kind="ib", label="IB")
    broker_account_set_credentials(account=account, credentials={"host": "10.0.0.5"})
    page = client.get(reverse("broker_account_detail", args=[account.pk])).content.decode()
    assert "10.0.0.5" not in page
    assert page.count('class="badge good">set<') == 1 and page.count('class="badge warn">not set<') == 2


# -- the create form's fields by kind --------------------------------------------------------------------


def test_each_field_of_the_create_form_names_its_kind_and_every_input_has_a_label(client, owner):
    page = client.get(reverse("broker_account_create")).content.decode()

    kinds = {
        "is_live": "alpaca ib",
        "paper_cash_usd": "paper",
        "paper_session_mode": "paper",
        "api_key": "alpaca",
        "secret_key": "alpaca",
        "host": "ib",
        "port": "ib",
        "client_id": "ib",
    }
    for name, kind in kinds.items():
        tag = re.search(rf'<(?:input|select)[^>]*name="{name}"[^>]*>', page).group(0)
        assert f'data-kinds="{kind}"' in tag, tag
    for name in ("kind", "label", "password"):
        assert "data-kinds" not in re.search(rf'<(?:input|select)[^>]*name="{name}"[^>]*>', page).group(0)
    # Without JavaScript every field is shown, its label naming its kind.
    for label in ("Starting cash (paper)", "Trading hours (paper)", "API key ID (Alpaca)", "Secret key (Alpaca)"):
        assert f"{label}</label>" in page
    assert "Port (Interactive Brokers)</label>" in page and "Live (real money; Alpaca and Interactive Brokers)" in page
    form = page.split('<form method="post" action="/brokers/new/"', 1)[1].split("</form>")[0]
    assert " hidden" not in form and "display: none" not in form
    ids = re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', page)
    assert ids and all(f'<label for="{input_id}">' in page for input_id in ids)
    assert 'src="/static/js/broker_account_form.js"' in page
    assert ">Test connection</button>" in page


def test_fields_of_a_kind_not_chosen_are_ignored(client, owner):
    typed_elsewhere = {
        "paper_cash_usd": "not a number",
        "paper_session_mode": "weekends",
        "host": "bad host!",
        "port": "x",
    }
    response = client.post(
        reverse("broker_account_create"),
        {"kind": "alpaca", "label": "Alpaca", "api_key": API_KEY, "secret_key": SECRET, "password": PASSWORD}
        | typed_elsewhere,
    )
    assert response.status_code == 302
    account = BrokerAccount.objects.get(label="Alpaca")
    assert stored(account) == {"api_key": API_KEY, "secret_key": SECRET}
    assert not PaperAccount.objects.filter(account=account).exists()

    # A paper account takes no credentials: typed ones are dropped, so no password is asked for.
    response = client.post(
        reverse("broker_account_create"),
        {"kind": "paper", "label": "Sandbox", "paper_cash_usd": "500", "api_key": API_KEY, "host": "10.0.0.5"},
    )
    assert response.status_code == 302
    sandbox = BrokerAccount.objects.get(label="Sandbox")
    assert sandbox.credentials_encrypted == "" and sandbox.credentials_set == []
    assert sandbox.paper.cash_usd == Decimal(500) and sandbox.paper.session_mode == "exchange"


# -- typed credentials survive a refused POST --------------------------------------------------------------


def input_value(page: str, name: str) -> str | None:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page).group(0)
    found = re.search(r'value="([^"]*)"', tag)
    return found.group(1) if found else None


def test_a_refused_create_keeps_the_typed_credentials_but_not_the_password(client, owner):
    data = {"kind": "alpaca", "label": "Alpaca", "api_key": API_KEY, "secret_key": SECRET, "password": "wrong"}
    page = client.post(reverse("broker_account_create"), data).content.decode()
    assert input_value(page, "api_key") == API_KEY and input_value(page, "secret_key") == SECRET
    assert input_value(page, "password") is None
    assert 'type="password" name="secret_key"' in page

    ib = {"kind": "ib", "label": "IB", "host": "10.0.0.5", "port": "99999", "client_id": "12", "password": PASSWORD}
    response = client.post(reverse("broker_account_create"), ib)
    assert response.status_code == 400 and "port from 1 to 65535" in str(response.context["form"].errors["port"])
    page = response.content.decode()
    assert (input_value(page, "host"), input_value(page, "port"), input_value(page, "client_id")) == (
        "10.0.0.5",
        "99999",
        "12",
    )
    assert not BrokerAccount.objects.exists()


def test_a_refused_edit_renders_what_was_typed_and_never_what_is_stored(client, owner, alpaca):
    new_secret = "typed-Secret-abcdef-123456"
    response = client.post(
        reverse("broker_account_edit", args=[alpaca.pk]),
        {"label": "Alpaca", "secret_key": new_secret, "password": "wrong"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert input_value(page, "secret_key") == new_secret
    assert input_value(page, "api_key") is None
    assert API_KEY not in page and SECRET not in page
    assert stored(alpaca) == {"api_key": API_KEY, "secret_key": SECRET}


# -- a paper account's settings after creation -------------------------------------------------------------


def test_a_paper_accounts_trading_hours_are_changed_on_the_edit_page(client, owner):
    account = broker_account_create(owner=owner, kind="paper", label="Sandbox", paper_cash_usd=Decimal(900))
    page = client.get(reverse("broker_account_edit", args=[account.pk])).content.decode()
    assert '<label for="id_paper_session_mode">Trading hours (paper)</label>' in page
    assert '<option value="exchange" selected>' in page

    response = client.post(
        reverse("broker_account_edit", args=[account.pk]), {"label": "Sandbox", "paper_session_mode": "always_open"}
    )

    assert response.status_code == 302
    paper = PaperAccount.objects.get(account=account)
    assert paper.session_mode == "always_open" and paper.cash_usd == Decimal(900)
    detail = client.get(reverse("broker_account_detail", args=[account.pk])).content.decode()
    assert "Always open (simulation)" in detail


def test_bad_trading_hours_are_named_and_nothing_is_saved(client, owner):
    account = broker_account_create(owner=owner, kind="paper", label="Sandbox")
    response = client.post(
        reverse("broker_account_edit", args=[account.pk]), {"label": "Renamed", "paper_session_mode": "weekends"}
    )
    assert response.status_code == 400
    assert "weekends is not one of the available choices" in str(response.context["form"].errors["paper_session_mode"])
    account.refresh_from_db()
    assert account.label == "Sandbox" and account.paper.session_mode == "exchange"


def test_an_alpaca_account_has_no_trading_hours_to_edit(client, owner, alpaca):
    page = client.get(reverse("broker_account_edit", args=[alpaca.pk])).content.decode()
    assert "paper_session_mode" not in page
    response = client.post(
        reverse("broker_account_edit", args=[alpaca.pk]), {"label": "Alpaca", "paper_session_mode": "always_open"}
    )
    assert response.status_code == 302 and not PaperAccount.objects.exists()


# -- the server's order limit in dollars ------------------------------------------------------------------


def test_the_admin_names_the_servers_order_limit_in_dollars(client, owner, alpaca, settings, django_user_model):
    settings.MAX_ORDER_NOTIONAL_USD = 25_000
    client.force_login(django_user_model.objects.create_superuser("admin", "admin@example.com", "a-long-password-1"))
    for url in (
        reverse("admin:brokers_brokeraccount_change", args=[alpaca.pk]),
        reverse("admin:brokers_brokeraccount_add"),
    ):
        page = client.get(url).content.decode()
        assert "limit, $25,000.00." in page
        assert "MAX_ORDER_NOTIONAL_USD" not in page
