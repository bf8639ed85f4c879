"""Structured log context: fields bound once, printed on every log line written inside.

    with log_context(run_id=run.pk, portfolio_id=portfolio.pk, user_id=portfolio.owner_id):
        ...
        with log_context(client_order_id=order.client_order_id):
            logger.info("order submitted")  # carries all four fields

`LogContextFilter`, installed on the logging handlers by ``settings.LOGGING``, copies the bound
fields onto every record that does not already carry them (a field passed with ``extra=`` wins),
so `rebalancer_site.logging.JsonFormatter` prints them as keys and `ContextTextFormatter` (the
``LOG_FORMAT=text`` formatter) appends them as ``key=value``.

Scope. The fields live in a `contextvars.ContextVar`: nested blocks add to (or override) the
outer fields and the outer set is restored on exit, also when the block raises. Each thread
starts with an empty context: a thread or pool started inside a block does not see its fields
unless the context is copied explicitly::

    ctx = contextvars.copy_context()
    threading.Thread(target=ctx.run, args=(work,)).start()
    executor.submit(contextvars.copy_context().run, work, arg)

(asyncio tasks copy the context by themselves.) Threads that live longer than a block, such as
the IB adapter's event-loop thread, log without the fields.

Secrets. The filter masks configured secret values in the bound values it copies (the same list
as `RedactSecretsFilter`, which only masks the message and the traceback), so a bound value that
contains a secret is printed as ``[redacted]`` in both formats.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

# Attributes every LogRecord has (plus the two the formatters add): never bindable.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# The record attribute naming the fields this filter bound (a leading underscore keeps
# JsonFormatter from printing it).
_KEYS_ATTR = "_log_context_keys"
_REDACTED = "[redacted]"

_fields: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "rebalancer_log_context", default=MappingProxyType({})
)


@contextmanager
def log_context(**fields: Any) -> Iterator[Mapping[str, Any]]:
    """Binds ``fields`` to every log record written inside the block (nested blocks add to them).

    Yields the fields in force inside the block. A field set to None is still bound (printed as
    null / None); names of standard LogRecord attributes (``name``, ``msg``, ...) are refused.
    """
    reserved = sorted(key for key in fields if key in _RESERVED or key.startswith("_"))
    if reserved:
        raise ValueError(f"log_context cannot bind {', '.join(reserved)}: reserved LogRecord attribute names")
    merged = MappingProxyType({**_fields.get(), **fields})
    token = _fields.set(merged)
    try:
        yield merged
    finally:
        _fields.reset(token)


def bound_fields() -> dict[str, Any]:
    """The fields bound in the current context (a copy)."""
    return dict(_fields.get())


class LogContextFilter(logging.Filter):
    """Adds the bound fields to each record that does not already have them; masks secrets in them.

    ``secrets``: the secret values (as given to `RedactSecretsFilter`), that filter itself, or its
    dictConfig entry (settings.LOGGING passes ``"cfg://filters.redact_secrets"``, which is one or
    the other depending on which filter dictConfig builds first); values shorter than 8
    characters are ignored, as there.
    """

    def __init__(self, secrets: Any = None):
        super().__init__()
        if isinstance(secrets, Mapping):  # the redact_secrets filter's configuration (dictConfig "cfg://")
            secrets = secrets.get("secrets")
        elif secrets is not None and not isinstance(secrets, list | tuple | set | frozenset):
            secrets = getattr(secrets, "secrets", None)  # a RedactSecretsFilter
        self.secrets = sorted({str(s) for s in (secrets or []) if s and len(str(s)) >= 8}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _fields.get()
        if not fields:
            return True
        for key, value in fields.items():
            if key not in record.__dict__:
                setattr(record, key, self._mask(value))
        setattr(record, _KEYS_ATTR, tuple(fields))
        return True

    def _mask(self, value: Any) -> Any:
        if not self.secrets or value is None or isinstance(value, bool | int | float):
            return value
        text = value if isinstance(value, str) else str(value)
        masked = text
        for secret in self.secrets:
            masked = masked.replace(secret, _REDACTED)
        if masked == text:
            return value
        return masked


class ContextTextFormatter(logging.Formatter):
    """The text format with the bound fields appended as ``key=value`` (values with spaces quoted)."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        keys = getattr(record, _KEYS_ATTR, ())
        if not keys:
            return line
        pairs = " ".join(f"{key}={_text_value(getattr(record, key, None))}" for key in keys)
        if "\n" in line:
            # Keep a traceback readable: the fields go on the first line, after the message.
            first, rest = line.split("\n", 1)
            return f"{first} {pairs}\n{rest}"
        return f"{line} {pairs}"


def _text_value(value: Any) -> str:
    text = "None" if value is None else str(value)
    if not text or any(c.isspace() for c in text) or '"' in text or "=" in text:
        return json.dumps(text)
    return text
