"""Accounts: login, logout, password change, sign-up only when allowed; every page needs a login
except the login page, sign-up and the health endpoints."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="correct horse battery")


def test_pages_need_a_login_but_the_login_page_and_health_do_not(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.get(reverse("login")).status_code == 200
    assert client.get(reverse("health")).status_code == 200


def test_login_logout_and_password_change(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "correct horse battery"})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    wrong = client.post(
        reverse("password_change"),
        {"old_password": "nope", "new_password1": "a new long secret 42", "new_password2": "a new long secret 42"},
    )
    assert wrong.status_code == 200 and "Your old password was entered incorrectly" in wrong.content.decode()
    done = client.post(
        reverse("password_change"),
        {
            "old_password": "correct horse battery",
            "new_password1": "a new long secret 42",
            "new_password2": "a new long secret 42",
        },
    )
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a new long secret 42")
    assert client.get(reverse("logout")).status_code == 405  # logging out is a POST
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302


def test_sign_up_only_when_allowed(client, settings):
    data = {"username": "bob", "password1": "a long enough secret 7", "password2": "a long enough secret 7"}
    settings.ALLOW_SIGNUP = False
    assert client.get(reverse("signup")).status_code == 404
    assert client.post(reverse("signup"), data).status_code == 404
    assert not get_user_model().objects.filter(username="bob").exists()
    settings.ALLOW_SIGNUP = True
    assert "Sign up" in client.get(reverse("login")).content.decode()
    response = client.post(reverse("signup"), data)
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert get_user_model().objects.filter(username="bob").exists()
    assert client.get(reverse("dashboard")).status_code == 200  # logged in


def test_forms_carry_csrf_protection(client, alice):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("login"), {"username": "alice", "password": "correct horse battery"})
    assert response.status_code == 403
