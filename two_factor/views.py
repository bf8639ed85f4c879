"""Pages of two-factor authentication: the login's second step, the Security page (turn it on or
off, new recovery codes) and "enter a code" for a session that has not entered one yet."""

from __future__ import annotations

import time

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_otp import login as otp_login

from two_factor.forms import CodeForm, EnableForm, PasswordAndCodeForm
from two_factor.services import (
    RECOVERY_CODE_COUNT,
    new_secret,
    provisioning_uri,
    recovery_codes_left,
    recovery_codes_regenerate,
    secret_base32,
    session_is_verified,
    two_factor_disable,
    two_factor_enable,
    two_factor_enabled,
)

# The session keys of a login waiting for its code, and of a set-up waiting for its first code.
PENDING_LOGIN = "two_factor_pending_login"
SETUP_SECRET = "two_factor_setup_secret"  # noqa: S105 (a session key's name, not a secret)
# How long the code step of a login may follow its password step.
PENDING_LOGIN_SECONDS = 5 * 60


class LoginView(auth_views.LoginView):
    """Django's login; a user with two-factor authentication is logged in only after a code
    (`login_code`)."""

    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        if not two_factor_enabled(user):
            return super().form_valid(form)
        # Only the user's id waits in the (server-side) session: nothing is logged in yet.
        self.request.session[PENDING_LOGIN] = {
            "user_id": user.pk,
            "backend": user.backend,
            "next": self.get_success_url(),
            "started": time.time(),
        }
        return redirect("login_code")


def _pending_login(request: HttpRequest):
    """The user whose password was right a moment ago in this session, and the login's details."""
    pending = request.session.get(PENDING_LOGIN)
    if not pending or time.time() - pending["started"] > PENDING_LOGIN_SECONDS:
        return None, None
    user = get_user_model().objects.filter(pk=pending["user_id"], is_active=True).first()
    return user, pending


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def login_code(request: HttpRequest) -> HttpResponse:
    """The login's second step: a code from the authenticator app, or a recovery code."""
    user, pending = _pending_login(request)
    if user is None:
        if request.session.pop(PENDING_LOGIN, None):
            messages.info(request, "The login took too long: enter your password again.")
        return redirect("login")
    form = CodeForm(request.POST if request.method == "POST" else None, user=user)
    if request.method == "POST" and form.is_valid():
        del request.session[PENDING_LOGIN]
        login(request, user, backend=pending["backend"])
        otp_login(request, form.check.device)
        _warn_if_recovery_code(request, form)
        return redirect(pending["next"])
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "registration/login_code.html", {"form": form}, status=status)


@require_safe
def security(request: HttpRequest) -> HttpResponse:
    """The Security page: whether two-factor authentication is on, and what can be done about it."""
    return _security_page(request)


def _security_page(request, *, disable_form=None, codes_form=None, status: int = 200) -> HttpResponse:
    enabled = two_factor_enabled(request.user)
    return render(
        request,
        "registration/security.html",
        {
            "enabled": enabled,
            "verified": session_is_verified(request.user),
            "codes_left": recovery_codes_left(request.user) if enabled else 0,
            "disable_form": disable_form or PasswordAndCodeForm(user=request.user, prefix="disable"),
            "codes_form": codes_form or PasswordAndCodeForm(user=request.user, prefix="codes"),
        },
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Turn it on: the secret (as text and a QR code), confirmed by the password and a first code."""
    if two_factor_enabled(request.user):
        messages.info(request, "Two-factor authentication is already on.")
        return redirect("security")
    # The secret waits in the session (not in a device row) until a code proves the app has it;
    # reloading the page keeps it, so an app that scanned it stays right.
    secret = request.session.get(SETUP_SECRET) or new_secret()
    request.session[SETUP_SECRET] = secret
    form = EnableForm(request.POST if request.method == "POST" else None, user=request.user)
    if request.method == "POST" and form.is_valid():
        enabled = two_factor_enable(user=request.user, secret_hex=secret, code=form.cleaned_data["code"])
        if enabled is not None:
            device, codes = enabled
            del request.session[SETUP_SECRET]
            otp_login(request, device)
            return _recovery_codes_page(request, codes, first=True)
        form.add_error("code", "the code does not match: check that the phone's clock is right, then enter a new code")
    uri = provisioning_uri(user=request.user, secret_hex=secret)
    context = {
        "form": form,
        "secret": " ".join(secret_base32(secret)[i : i + 4] for i in range(0, 32, 4)),
        "qr_svg": _qr_svg(uri),
        "issuer": settings.OTP_TOTP_ISSUER,
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "registration/two_factor_setup.html", context, status=status)


@require_POST
def two_factor_turn_off(request: HttpRequest) -> HttpResponse:
    form = PasswordAndCodeForm(request.POST, user=request.user, prefix="disable")
    if not two_factor_enabled(request.user):
        return redirect("security")
    if not form.is_valid():
        return _security_page(request, disable_form=form, status=400)
    two_factor_disable(user=request.user)
    messages.success(request, "Two-factor authentication is off.")
    return redirect("security")


@never_cache
@require_POST
def recovery_codes_new(request: HttpRequest) -> HttpResponse:
    form = PasswordAndCodeForm(request.POST, user=request.user, prefix="codes")
    if not two_factor_enabled(request.user):
        return redirect("security")
    if not form.is_valid():
        return _security_page(request, codes_form=form, status=400)
    otp_login(request, form.check.device)
    return _recovery_codes_page(request, recovery_codes_regenerate(user=request.user), first=False)


@never_cache
@require_http_methods(["GET", "POST"])
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """Enter a code in a session that has not entered one (the admin sends staff here)."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = settings.LOGIN_REDIRECT_URL
    if not two_factor_enabled(request.user) or session_is_verified(request.user):
        return redirect(next_url)
    form = CodeForm(request.POST if request.method == "POST" else None, user=request.user)
    if request.method == "POST" and form.is_valid():
        otp_login(request, form.check.device)
        _warn_if_recovery_code(request, form)
        return redirect(next_url)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "registration/two_factor_verify.html", {"form": form, "next": next_url}, status=status)


def _recovery_codes_page(request: HttpRequest, codes: list[str], *, first: bool) -> HttpResponse:
    """The codes, shown this once (they are never shown again)."""
    return render(
        request, "registration/recovery_codes.html", {"codes": codes, "first": first, "count": RECOVERY_CODE_COUNT}
    )


def _warn_if_recovery_code(request: HttpRequest, form: CodeForm) -> None:
    if form.check.used_recovery_code:
        left = recovery_codes_left(request.user)
        messages.warning(
            request,
            f"You used a recovery code; {left} left. Make new ones under Security if your authenticator app is lost.",
        )


def _qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as inline SVG, drawn here: the secret never leaves the server."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathFillImage, box_size=8)
    return mark_safe(image.to_string(encoding="unicode"))  # noqa: S308 (SVG drawn by qrcode from our own URI)
