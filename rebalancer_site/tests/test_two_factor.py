"""Two-factor authentication: turning it on (secret, QR code, first code, recovery codes shown once),
the login's code step, recovery codes that work once, turning it off, new recovery codes, the
"enter a code" page, and the admin for staff who turned it on."""

from __future__ import annotations

import re
import time
from base64 import b32decode

import pytest
from django.core import mail
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from rebalancer_site.tests.factories import (
    RECOVERY_CODES,
    totp_code,
    two_factor_device,
    verify_session,
    wrong_totp_code,
)
from two_factor.views import PENDING_LOGIN

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", email="alice@example.com", password=PASSWORD)


@pytest.fixture
def device(alice):
    return two_factor_device(alice)


def log_in_with_password(client, username: str = "alice", password: str = PASSWORD, next_url: str = ""):
    url = reverse("login") + (f"?next={next_url}" if next_url else "")
    return client.post(url, {"username": username, "password": password})


def is_logged_in(client) -> bool:
    return client.get(reverse("dashboard")).status_code == 200


def setup_secret(page: str) -> bytes:
    """The secret the set-up page shows (base32, in groups of four) as bytes."""
    shown = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', page).group(1)
    return b32decode(shown.replace(" ", ""))


# --- turning it on ----------------------------------------------------------------------------------


def test_the_setup_page_shows_the_secret_and_an_inline_qr_code_and_stores_nothing_yet(client, alice):
    client.force_login(alice)
    page = client.get(reverse("two_factor_setup")).content.decode()
    assert "<svg" in page and "<img" not in page  # drawn by the server, no image from elsewhere
    assert len(setup_secret(page)) == 20
    assert setup_secret(client.get(reverse("two_factor_setup")).content.decode()) == setup_secret(page)  # reload
    assert not TOTPDevice.objects.exists()


def test_turning_it_on_needs_the_password_and_a_right_first_code(client, alice):
    client.force_login(alice)
    secret = setup_secret(client.get(reverse("two_factor_setup")).content.decode())
    url = reverse("two_factor_setup")

    wrong_password = client.post(url, {"password": "nope", "code": totp_code(secret)})
    assert wrong_password.status_code == 400 and "the password is not correct" in wrong_password.content.decode()
    wrong_code = client.post(url, {"password": PASSWORD, "code": "12345"})
    assert wrong_code.status_code == 400 and "the code does not match" in wrong_code.content.decode()
    assert not TOTPDevice.objects.exists()

    response = client.post(url, {"password": PASSWORD, "code": totp_code(secret)})
    assert response.status_code == 200
    page = response.content.decode()
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", page)
    assert len(codes) == 10 and "shown only now" in page
    assert sorted(StaticToken.objects.filter(device__user=alice).values_list("token", flat=True)) == sorted(codes)
    assert TOTPDevice.objects.get(user=alice).confirmed
    # This session entered the code; the Security page shows neither the secret nor the codes again.
    security = client.get(reverse("security")).content.decode()
    assert "This session entered one" in security and "Recovery codes left: <strong>10</strong>" in security
    assert codes[0] not in security and TOTPDevice.objects.get(user=alice).key not in security
    assert mail.outbox[-1].to == ["alice@example.com"] and mail.outbox[-1].subject == "Two-factor authentication is on"


def test_the_setup_code_cannot_be_used_again_to_log_in(client, alice):
    client.force_login(alice)
    secret = setup_secret(client.get(reverse("two_factor_setup")).content.decode())
    code = totp_code(secret)
    client.post(reverse("two_factor_setup"), {"password": PASSWORD, "code": code})
    client.post(reverse("logout"))
    log_in_with_password(client)
    response = client.post(reverse("login_code"), {"code": code})
    assert response.status_code == 400 and not is_logged_in(client)


# --- logging in -------------------------------------------------------------------------------------


def test_without_two_factor_the_password_logs_in(client, alice):
    response = log_in_with_password(client)
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert is_logged_in(client)


def test_with_two_factor_the_password_alone_does_not_log_in(client, device):
    response = log_in_with_password(client)
    assert response.status_code == 302 and response["Location"] == reverse("login_code")
    assert not is_logged_in(client)
    assert client.get(reverse("login_code")).status_code == 200


def test_a_valid_code_logs_in_with_a_verified_session_and_keeps_next(client, device, caplog):
    log_in_with_password(client, next_url=reverse("security"))
    code = totp_code(device)
    response = client.post(reverse("login_code"), {"code": code})
    assert response.status_code == 302 and response["Location"] == reverse("security")
    page = client.get(reverse("security")).content.decode()
    assert "This session entered one" in page
    assert code not in caplog.text and device.key not in caplog.text


def test_a_wrong_code_does_not_log_in(client, device):
    log_in_with_password(client)
    response = client.post(reverse("login_code"), {"code": wrong_totp_code(device)})
    assert response.status_code == 400 and "the code is not correct" in response.content.decode()
    assert not is_logged_in(client)


def test_after_a_wrong_code_the_device_waits_before_taking_another(client, device):
    log_in_with_password(client)
    client.post(reverse("login_code"), {"code": "not-a-code"})
    client.post(reverse("login_code"), {"code": wrong_totp_code(device)})
    response = client.post(reverse("login_code"), {"code": totp_code(device)})
    assert response.status_code == 400 and "too many wrong codes: wait" in response.content.decode()
    assert not is_logged_in(client)


def test_the_code_step_expires(client, device):
    log_in_with_password(client)
    session = client.session
    session[PENDING_LOGIN] = {**session[PENDING_LOGIN], "started": time.time() - 301}
    session.save()
    response = client.post(reverse("login_code"), {"code": totp_code(device)}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("login")
    assert "The login took too long" in response.content.decode() and not is_logged_in(client)


def test_the_code_step_without_a_password_goes_to_the_login(client, device):
    response = client.post(reverse("login_code"), {"code": totp_code(device)})
    assert response.status_code == 302 and response["Location"] == reverse("login") and not is_logged_in(client)


def test_a_recovery_code_logs_in_once(client, device):
    log_in_with_password(client)
    response = client.post(reverse("login_code"), {"code": RECOVERY_CODES[0].upper()}, follow=True)
    assert is_logged_in(client)
    assert "You used a recovery code; 2 left" in response.content.decode()
    client.post(reverse("logout"))

    log_in_with_password(client)
    reused = client.post(reverse("login_code"), {"code": RECOVERY_CODES[0]})
    assert reused.status_code == 400 and "the code is not correct" in reused.content.decode()
    assert not is_logged_in(client)


# --- turning it off, new recovery codes, entering a code later ----------------------------------------


def test_turning_it_off_needs_the_password_and_a_code(client, alice, device):
    client.force_login(alice)
    url = reverse("two_factor_disable")
    refused = client.post(url, {"disable-password": PASSWORD, "disable-code": wrong_totp_code(device)})
    assert refused.status_code == 400 and TOTPDevice.objects.filter(user=alice).exists()
    wrong_password = client.post(url, {"disable-password": "nope", "disable-code": totp_code(device)})
    assert wrong_password.status_code == 400 and "the password is not correct" in wrong_password.content.decode()

    response = client.post(url, {"disable-password": PASSWORD, "disable-code": RECOVERY_CODES[1]})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=alice).exists() and not StaticToken.objects.exists()
    assert mail.outbox[-1].subject == "Two-factor authentication is off"
    client.post(reverse("logout"))
    assert log_in_with_password(client)["Location"] == reverse("dashboard")


def test_new_recovery_codes_replace_the_old_ones(client, alice, device, settings):
    settings.OTP_STATIC_THROTTLE_FACTOR = 0  # no wait after the refused old code: not what this test is about
    client.force_login(alice)
    response = client.post(reverse("recovery_codes_new"), {"codes-password": PASSWORD, "codes-code": totp_code(device)})
    assert response.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.content.decode())
    assert len(codes) == 10 and not set(codes) & set(RECOVERY_CODES)
    client.post(reverse("logout"))

    log_in_with_password(client)
    assert client.post(reverse("login_code"), {"code": RECOVERY_CODES[2]}).status_code == 400
    assert client.post(reverse("login_code"), {"code": codes[0]}).status_code == 302
    assert is_logged_in(client)


def test_new_recovery_codes_need_a_code(client, alice, device):
    client.force_login(alice)
    response = client.post(reverse("recovery_codes_new"), {"codes-password": PASSWORD, "codes-code": ""})
    assert response.status_code == 400 and "enter the code from your authenticator app" in response.content.decode()
    assert sorted(StaticToken.objects.values_list("token", flat=True)) == RECOVERY_CODES


def test_a_session_without_a_code_can_enter_one(client, alice, device):
    client.force_login(alice)  # e.g. a session that started before two-factor authentication was turned on
    assert "has not entered a code yet" in client.get(reverse("security")).content.decode()
    url = reverse("two_factor_verify") + "?next=" + reverse("security")
    response = client.post(url, {"code": totp_code(device), "next": reverse("security")})
    assert response.status_code == 302 and response["Location"] == reverse("security")
    assert "This session entered one" in client.get(reverse("security")).content.decode()


def test_the_code_page_never_redirects_elsewhere(client, alice, device):
    client.force_login(alice)
    response = client.post(reverse("two_factor_verify"), {"code": totp_code(device), "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")


# --- the admin ------------------------------------------------------------------------------------------


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("root", password=PASSWORD, is_staff=True, is_superuser=True)


def test_the_admin_logs_in_through_the_sites_login(client, staff):
    response = client.get(reverse("admin:index"), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("login") + "?next=")
    assert client.post(reverse("admin:login"), {"username": "root", "password": PASSWORD}).status_code == 302
    assert not is_logged_in(client)  # the admin's own password-only form is not offered


def test_staff_without_two_factor_use_the_admin_with_the_password(client, staff):
    client.force_login(staff)
    assert client.get(reverse("admin:index")).status_code == 200


def test_staff_with_two_factor_need_a_verified_session_for_the_admin(client, staff):
    device = two_factor_device(staff)
    client.force_login(staff)
    response = client.get(reverse("admin:index"), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("two_factor_verify"))
    assert "Confirm it's you" in response.content.decode()
    verify_session(client, device)
    assert client.get(reverse("admin:index")).status_code == 200


def test_the_admin_refuses_other_users_without_a_redirect_loop(client, alice):
    client.force_login(alice)
    response = client.get(reverse("admin:index"), follow=True)
    assert response.status_code == 403


def test_the_admin_shows_no_secret_or_recovery_code(client, staff, alice, device):
    verify_session_device = two_factor_device(staff)
    client.force_login(staff)
    verify_session(client, verify_session_device)
    device_page = client.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk])).content.decode()
    assert device_page.count("alice") >= 1 and device.key not in device_page
    static = alice.staticdevice_set.get()
    codes_page = client.get(reverse("admin:otp_static_staticdevice_change", args=[static.pk])).content.decode()
    assert not any(code in codes_page for code in RECOVERY_CODES)
