"""Password reset by e-mail: the login page links to it, the link arrives by mail and works once,
an unknown address learns nothing, and two-factor authentication still asks for its code."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from rebalancer_site.tests.factories import totp_code, two_factor_device

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a brand new secret 42"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", email="alice@example.com", password="correct horse battery")


def reset_link(message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/password/reset/[^\s]+/)", message.body).group(1)


def test_the_login_page_links_to_the_reset(client):
    page = client.get(reverse("login")).content.decode()
    assert f'href="{reverse("password_reset")}"' in page


def test_a_reset_link_arrives_by_mail_and_sets_a_new_password_once(client, alice):
    response = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"] and message.subject == "Reset your password on testserver"
    assert "alice" in message.body and "within an hour" in message.body

    form_page = client.get(reset_link(message), follow=True)
    assert "Choose a new password" in form_page.content.decode()
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)

    again = client.get(reset_link(message), follow=True).content.decode()
    assert "This link does not work" in again


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client, alice):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


def test_a_reset_password_still_needs_the_two_factor_code(client, alice):
    device = two_factor_device(alice)
    client.post(reverse("password_reset"), {"email": "alice@example.com"})
    form_page = client.get(reset_link(mail.outbox[0]), follow=True)
    client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert client.get(reverse("dashboard")).status_code == 302  # the reset does not log in

    response = client.post(reverse("login"), {"username": "alice", "password": NEW_PASSWORD})
    assert response["Location"] == reverse("login_code")
    assert client.post(reverse("login_code"), {"code": totp_code(device)}).status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200
