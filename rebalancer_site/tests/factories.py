"""Two-factor authentication for tests: a confirmed authenticator app, its codes, a verified session."""

from __future__ import annotations

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

RECOVERY_CODES = ["recovery0001", "recovery0002", "recovery0003"]


def two_factor_device(user) -> TOTPDevice:
    """A confirmed authenticator app for ``user``, with the recovery codes `RECOVERY_CODES`."""
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    static = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    StaticToken.objects.bulk_create(StaticToken(device=static, token=code) for code in RECOVERY_CODES)
    return device


def totp_code(device_or_secret: TOTPDevice | bytes, *, steps_ahead: int = 0) -> str:
    """The code the app shows now (``steps_ahead`` 30-second steps later: a code not used yet, since
    each code works once and the server accepts one step of clock drift)."""
    key = device_or_secret.bin_key if isinstance(device_or_secret, TOTPDevice) else device_or_secret
    return f"{TOTP(key, drift=steps_ahead).token():06d}"


def wrong_totp_code(device: TOTPDevice) -> str:
    """Six digits the server refuses now: none of the codes of the steps it accepts."""
    accepted = {totp_code(device, steps_ahead=steps) for steps in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in accepted)


def verify_session(client, device: TOTPDevice) -> None:
    """Mark ``client``'s session as having entered a code of ``device`` (as a login with a code does)."""
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
