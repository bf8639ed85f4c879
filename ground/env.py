"""Typed readers for environment variables that fail loudly.

Every reader takes the variable name, a default and what it accepts, and
raises `ConfigError` with one line naming the variable, the value and what is
accepted. `settings.py` is the only caller; tests call the readers directly
with a mapping instead of `os.environ`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from email.utils import parseaddr
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import environ

SYMBOL_RE = re.compile(r"^\^?[A-Z0-9][A-Z0-9.\-=]{0,19}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_RE = re.compile(rf"^(?:{_HOST_LABEL}\.)*{_HOST_LABEL}$")
_ADDRESS_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
# E-mail URL schemes: (Django backend, STARTTLS, implicit TLS, default port).
EMAIL_SCHEMES = {
    "smtp": (SMTP_BACKEND, False, False, 25),
    "smtp+tls": (SMTP_BACKEND, True, False, 587),
    "smtps": (SMTP_BACKEND, True, False, 587),  # STARTTLS, as django-environ reads it too
    "smtp+ssl": (SMTP_BACKEND, False, True, 465),
    "consolemail": ("django.core.mail.backends.console.EmailBackend", False, False, 0),
    "dummymail": ("django.core.mail.backends.dummy.EmailBackend", False, False, 0),
    "memorymail": ("django.core.mail.backends.locmem.EmailBackend", False, False, 0),
}


class ConfigError(Exception):
    """A configuration value is invalid; the message is one printable line."""


@dataclass(frozen=True)
class EmailServer:
    """Django's mail settings as one value: where and how e-mail is sent."""

    backend: str
    host: str = ""
    port: int = 0
    user: str = ""
    password: str = ""
    use_tls: bool = False
    use_ssl: bool = False


class Env:
    """Reads typed values from a mapping (the process environment by default)."""

    def __init__(self, source: Mapping[str, str] | None = None, secrets: frozenset[str] = frozenset()):
        self.source = os.environ if source is None else source
        # Variables whose values must never be echoed in an error message.
        self.secrets = secrets

    def _raw(self, name: str) -> str | None:
        value = self.source.get(name)
        return None if value is None else value.strip()

    def _fail(self, name: str, value: str, accepted: str) -> ConfigError:
        shown = "(hidden)" if name in self.secrets else repr(value)
        return ConfigError(f"{name}={shown} is invalid: expected {accepted}")

    def is_set(self, name: str) -> bool:
        """Whether the variable has a non-blank value."""
        return bool(self._raw(name))

    def str(self, name: str, default: str, *, choices: tuple[str, ...] | None = None) -> str:
        value = self._raw(name)
        if value is None or value == "":
            value = default
        if choices is not None:
            lowered = value.lower()
            if lowered not in choices:
                raise self._fail(name, value, "one of " + ", ".join(choices))
            return lowered
        return value

    def bool(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise self._fail(name, value, "true or false")

    def int(self, name: str, default: int, *, min_value: int | None = None, max_value: int | None = None) -> int:
        value = self._raw(name)
        if value is None or value == "":
            return default
        accepted = _range_text("a whole number", min_value, max_value)
        try:
            number = int(value)
        except ValueError:
            raise self._fail(name, value, accepted) from None
        if (min_value is not None and number < min_value) or (max_value is not None and number > max_value):
            raise self._fail(name, value, accepted)
        return number

    def float(self, name: str, default: float, *, min_value: float, max_value: float) -> float:
        value = self._raw(name)
        if value is None or value == "":
            return default
        accepted = _range_text("a number", min_value, max_value)
        try:
            number = float(value)
        except ValueError:
            raise self._fail(name, value, accepted) from None
        # NaN fails both comparisons, so it is rejected here too.
        if not (min_value <= number <= max_value):
            raise self._fail(name, value, accepted)
        return number

    def list(self, name: str, default: str) -> list[str]:
        value = self._raw(name)
        if value is None:
            value = default
        return [item.strip() for item in value.split(",") if item.strip()]

    def symbols(self, name: str, default: str) -> list[str]:
        symbols = [item.upper() for item in self.list(name, default)]
        for symbol in symbols:
            if not SYMBOL_RE.match(symbol):
                raise self._fail(name, self._raw(name) or default, "comma-separated ticker symbols like SPY,BND")
        if not symbols:
            raise self._fail(name, self._raw(name) or "", "at least one ticker symbol, e.g. SPY,BND")
        return list(dict.fromkeys(symbols))

    def clock_time(self, name: str, default: str) -> time:
        value = self.str(name, default)
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value)
        if not match:
            raise self._fail(name, value, "a time of day as HH:MM, e.g. 16:30")
        return time(int(match.group(1)), int(match.group(2)))

    def timezone(self, name: str, default: str) -> str:
        value = self.str(name, default)
        # ZoneInfo accepts some file paths too; the IANA list is the contract.
        if value not in available_timezones():
            raise self._fail(name, value, "an IANA time zone name such as America/New_York")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise self._fail(name, value, "an IANA time zone name such as America/New_York") from None
        return value

    def url(self, name: str, default: str) -> str:
        value = self.str(name, default)
        if not re.match(r"^https?://[^\s/]+", value):
            raise self._fail(name, value, "an http:// or https:// URL")
        return value.rstrip("/")

    def host(self, name: str, default: str) -> str:
        value = self.str(name, default)
        if not _HOST_RE.match(value):
            raise self._fail(name, value, "a host name or IPv4 address, e.g. smtp.example.com")
        return value

    def email_address(self, name: str, default: str) -> str:
        """An address, optionally with a display name: `alerts@example.com` or `Rebalancer <alerts@example.com>`."""
        value = self.str(name, default)
        display_name, address = parseaddr(value)
        if not _ADDRESS_RE.match(address) or ("<" not in value and display_name):
            raise self._fail(
                name, value, "an e-mail address, e.g. alerts@example.com or Rebalancer <alerts@example.com>"
            )
        return value

    def email_url(self, name: str) -> EmailServer | None:
        """The mail server an e-mail URL names, or None when unset; errors never echo the URL (it may
        carry a password)."""
        value = self._raw(name)
        if not value:
            return None
        invalid = ConfigError(
            f"{name} is invalid: expected smtp://[USER:PASSWORD@]HOST[:PORT], smtp+tls://... (STARTTLS, port 587 by "
            "default), smtp+ssl://... (TLS, port 465 by default), consolemail://, dummymail:// or memorymail:// "
            "(percent-encode @ : / in the user name and password)"
        )
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            raise invalid from None
        scheme = parts.scheme.lower()
        if scheme not in EMAIL_SCHEMES or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise invalid
        backend, use_tls, use_ssl, default_port = EMAIL_SCHEMES[scheme]
        if backend != SMTP_BACKEND:
            if parts.netloc:
                raise invalid
            return EmailServer(backend=backend)
        if not _HOST_RE.match(parts.hostname or "") or port == 0:
            raise invalid
        return EmailServer(
            backend=backend,
            host=parts.hostname,
            port=port or default_port,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            use_tls=use_tls,
            use_ssl=use_ssl,
        )

    def database(self, name: str, default: str) -> dict:
        value = self.str(name, default)
        try:
            config = environ.Env.db_url_config(value)
        except Exception:  # django-environ raises several types for bad URLs
            config = {}
        engine = config.get("ENGINE", "")
        if engine not in ("django.db.backends.sqlite3", "django.db.backends.postgresql"):
            # Never echo a URL that may carry a password.
            raise ConfigError(
                f"{name} is invalid: expected sqlite:///PATH or postgres://USER[:PASSWORD]@HOST:PORT/NAME"
            )
        return config


def _range_text(kind: str, min_value: object, max_value: object) -> str:
    if min_value is not None and max_value is not None:
        return f"{kind} from {min_value} to {max_value}"
    if min_value is not None:
        return f"{kind} >= {min_value}"
    if max_value is not None:
        return f"{kind} <= {max_value}"
    return kind
