"""Two-factor authentication: set-up, codes, recovery codes, and the rule for real money.

A user has two-factor authentication when they have a confirmed authenticator-app device (TOTP). A
code is six digits from that app, or one of their recovery codes (each works once). A session is
verified once it entered a code (django-otp's `OTPMiddleware` then answers `user.is_verified()`).
"""

from __future__ import annotations

import logging
import math
import re
from base64 import b32encode
from binascii import unhexlify
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django_otp import verify_token
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

logger = logging.getLogger(__name__)

RECOVERY_CODE_COUNT = 10
DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"
# Codes a clock may be off by, in 30-second steps, either way.
TOTP_TOLERANCE_STEPS = 1
NEEDS_TWO_FACTOR = (
    "real money needs two-factor authentication: turn it on under Security (an authenticator app), then try again"
)
NOT_VERIFIED = (
    "this session has not entered a two-factor code: enter one (or log in again) to act on real money; "
    "an API token cannot carry one, so use the web page"
)


@dataclass(frozen=True)
class CodeCheck:
    """The outcome of a code: the device that accepted it (None when refused) and, when refused, why."""

    device: Device | None
    error: str = ""

    @property
    def used_recovery_code(self) -> bool:
        return isinstance(self.device, StaticDevice)


def totp_device_for(user) -> TOTPDevice | None:
    """The user's confirmed authenticator-app device, if any."""
    if not user.is_authenticated:
        return None
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def two_factor_enabled(user) -> bool:
    return user.is_authenticated and TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def session_is_verified(user) -> bool:
    """Whether this request's user entered a code in this session. A user loaded by an API token has
    no session, and so is never verified."""
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified and is_verified())


def real_money_refusal(user) -> str:
    """Why ``user`` may not act on real money in this request ('' when they may)."""
    if not two_factor_enabled(user):
        return NEEDS_TWO_FACTOR
    if not session_is_verified(user):
        return NOT_VERIFIED
    return ""


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


# --- set-up ---------------------------------------------------------------------------------------


def new_secret() -> str:
    """A new TOTP secret (hex, as django-otp stores it): 20 random bytes."""
    return random_hex(20)


def secret_base32(secret_hex: str) -> str:
    """The secret as authenticator apps take it when typed in."""
    return b32encode(unhexlify(secret_hex)).decode()


def provisioning_uri(*, user, secret_hex: str) -> str:
    """The otpauth:// URI a QR code carries (django-otp's, for a device not stored yet)."""
    return TOTPDevice(user=user, key=secret_hex).config_url


def two_factor_enable(*, user, secret_hex: str, code: str) -> tuple[TOTPDevice, list[str]] | None:
    """Store the authenticator app whose current ``code`` proves it holds ``secret_hex``, with fresh
    recovery codes: the device and the codes (to be shown once); None, storing nothing, when the code
    does not match."""
    totp = TOTP(unhexlify(secret_hex))
    if not _is_totp_code(code) or not totp.verify(int(_normalized(code)), tolerance=TOTP_TOLERANCE_STEPS):
        return None
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        # The code just used is spent: the device starts after its time step.
        device = TOTPDevice.objects.create(
            user=user, name=DEVICE_NAME, key=secret_hex, confirmed=True, last_t=totp.t(), drift=totp.drift
        )
        codes = _new_recovery_codes(user)
    _tell(user, "Two-factor authentication is on", "Two-factor authentication was turned on for your account.")
    logger.warning("two-factor authentication turned on", extra={"user_id": user.pk})
    return device, codes


def two_factor_disable(*, user) -> None:
    """Remove the user's authenticator app and recovery codes."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
    _tell(user, "Two-factor authentication is off", "Two-factor authentication was turned off for your account.")
    logger.warning("two-factor authentication turned off", extra={"user_id": user.pk})


def recovery_codes_regenerate(*, user) -> list[str]:
    """New recovery codes (returned, to be shown once); the old ones stop working."""
    with transaction.atomic():
        codes = _new_recovery_codes(user)
    _tell(
        user,
        "New recovery codes",
        "New two-factor recovery codes were made for your account; the old ones no longer work.",
    )
    logger.warning("two-factor recovery codes replaced", extra={"user_id": user.pk})
    return codes


def _new_recovery_codes(user) -> list[str]:
    # The device stays (a session verified by one of its codes stays verified); its codes are replaced.
    device = StaticDevice.objects.filter(user=user).first()
    if device is None:
        device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


# --- codes ----------------------------------------------------------------------------------------


def code_check(*, user, code: str) -> CodeCheck:
    """Check a six-digit code from the user's app, or one of their recovery codes (spent when it works).

    Each device refuses codes for a growing delay after wrong ones (django-otp's throttling), and a
    TOTP code works once: the next one must come from a later time step.
    """
    normalized = _normalized(code)
    if _is_totp_code(code):
        devices = TOTPDevice.objects.filter(user=user, confirmed=True)
    else:
        devices = StaticDevice.objects.filter(user=user, confirmed=True)
    device = devices.first()
    if device is None or not two_factor_enabled(user):
        return CodeCheck(None, "the code is not correct")
    allowed, details = device.verify_is_allowed()
    if not allowed:
        locked_until = (details or {}).get("locked_until") or timezone.now()
        seconds = max(1, math.ceil((locked_until - timezone.now()).total_seconds()))
        return CodeCheck(None, f"too many wrong codes: wait {seconds} seconds, then enter a new code")
    verified = verify_token(user, device.persistent_id, normalized)
    if verified is None:
        logger.warning("two-factor code refused", extra={"user_id": user.pk})
        return CodeCheck(None, "the code is not correct")
    return CodeCheck(verified)


def _normalized(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "").lower()


def _is_totp_code(code: str) -> bool:
    return bool(re.fullmatch(r"\d{6}", _normalized(code)))


def _tell(user, subject: str, body: str) -> None:
    """A notice to the user's own address, so a change they did not make does not go unseen. Sent
    after the change is stored (a slow mail server never holds a transaction open)."""
    if not user.email:
        return
    body += "\n\nIf this was not you, change your password and tell your administrator."
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email], fail_silently=False)
    except Exception:  # the change is made; a mail outage is logged, never shown as a failure of it
        logger.exception("could not e-mail the user", extra={"user_id": user.pk})
