"""API tokens: stored as digests, shown once, several per user, revoked on the page, the admin and the CLI."""

from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from api.models import ApiToken
from api.services import api_token_create
from portfolios.tests.factories import make_portfolio, make_user

LIST = reverse("api:portfolio-list")


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_only_the_digest_is_stored(db):
    token, key = api_token_create(user=make_user(), name="laptop")
    assert token.key_digest == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    assert bearer(key).get(LIST).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer", "Bearer a b", "Token rb_wrong"])
def test_bad_tokens_are_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get(LIST).status_code == 401


def test_inactive_users_tokens_are_refused(db):
    user = make_user()
    _, key = api_token_create(user=user, name="x")
    user.is_active = False
    user.save()
    assert bearer(key).get(LIST).status_code == 401


def test_page_creates_shows_once_and_revokes(db):
    user = make_user()
    browser = Client()
    browser.force_login(user)
    page = reverse("api_tokens")
    response = browser.post(page, {"name": "spreadsheet"})
    assert response.status_code == 200
    key = response.context["new_key"]
    assert key.startswith("rb_") and key in response.content.decode()
    assert key not in browser.get(page).content.decode()  # shown once
    assert bearer(key).get(LIST).status_code == 200
    api_token_create(user=user, name="phone")  # several tokens per user
    assert ApiToken.objects.filter(user=user).count() == 2
    token = ApiToken.objects.get(name="spreadsheet")
    assert browser.post(reverse("api_token_revoke", args=[token.pk])).status_code == 302
    assert bearer(key).get(LIST).status_code == 401
    assert browser.post(page, {"name": "phone"}).status_code == 400  # names are unique per user


def test_page_cannot_revoke_another_users_token(db):
    other_token, key = api_token_create(user=make_user("bob"), name="x")
    browser = Client()
    browser.force_login(make_user("alice"))
    assert browser.post(reverse("api_token_revoke", args=[other_token.pk])).status_code == 404
    assert bearer(key).get(LIST).status_code == 200


def test_page_needs_a_login(db):
    assert Client().get(reverse("api_tokens")).status_code == 302


def test_admin_creates_a_token_and_shows_the_key_once(db):
    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    browser = Client()
    browser.force_login(admin)
    response = browser.post(reverse("admin:api_apitoken_add"), {"user": admin.pk, "name": "from admin"}, follow=True)
    assert response.status_code == 200
    message = next(str(m) for m in response.context["messages"] if "rb_" in str(m))
    key = message.split(" is ")[1].split(" ")[0]
    assert bearer(key).get(LIST).status_code == 200
    assert ApiToken.objects.get(name="from admin").key_digest == hashlib.sha256(key.encode()).hexdigest()


def test_create_api_token_command(db):
    make_user("alice")
    out = StringIO()
    call_command("create_api_token", "alice", "--name", "cli", stdout=out)
    assert bearer(out.getvalue().strip()).get(LIST).status_code == 200


def test_session_auth_needs_csrf(db):
    user = make_user()
    portfolio = make_portfolio(user)
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)
    url = reverse("api:portfolio-cash", kwargs={"pk": portfolio.pk})
    assert browser.get(url).status_code == 200
    assert browser.put(url, {"cash_usd": "5"}, format="json").status_code == 403


@pytest.mark.parametrize("name", ["laptop\x00", "laptop\x1b[2J", "x" * 131_073])
def test_page_refuses_a_name_no_column_should_hold(db, name):
    browser = Client()
    browser.force_login(make_user())
    response = browser.post(reverse("api_tokens"), {"name": name})
    assert response.status_code == 400 and response.context["form"].errors["name"]
    assert not ApiToken.objects.exists()
