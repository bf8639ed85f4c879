"""A `BrokerError` as a sentence the account's owner understands.

Adapters' messages are written for the log: they may carry an SDK's exception text
(``HTTPSConnectionPool(host=...)``, ``[Errno 111]``). Pages show `broker_error_text` instead and
the callers log the raw message (adapters keep secrets out of it).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

from brokers.base import BrokerError
from brokers.models import BrokerAccount
from brokers.services.accounts import live_trading_blockers

#: Text that is an exception's repr or a library's internals, never a sentence for a person.
_RAW = re.compile(r"Traceback|Errno|ConnectionPool|Max retries|object at 0x|\b\w+(?:Error|Exception)\(")
#: The broker's own message in an adapter's "... (HTTP 403: insufficient buying power)".
_BROKER_MESSAGE = re.compile(r"\(HTTP \d{3}: (.*)\)")
#: How far down a chain of causes to look (chains are a handful of links deep).
_CHAIN_LIMIT = 20


def broker_error_text(error: BrokerError, *, account: BrokerAccount) -> str:
    """One or two sentences saying what went wrong with ``account``'s broker and what to do.

    ``account`` may be unsaved (a connection test of an account not created yet): only its kind
    and live gates are read. Classified by the HTTP status the broker answered, else by the
    network failure under the error (refused, timed out, unknown host), else the adapter's own
    message when it is a readable sentence.
    """
    broker = account.get_kind_display()
    status = error.status_code
    text = str(error)
    if status is not None:
        if status == 401 or (status == 403 and "credentials" in text.lower()):
            environment = "live" if account.is_live and not live_trading_blockers(account) else "paper"
            return (
                f"{broker} refused these keys (HTTP {status}): check the API key ID and the secret key, "
                f"and that they are {environment} keys."
            )
        if status == 429:
            return f"{broker} is limiting requests (HTTP 429, too many requests): wait a minute and try again."
        if status >= 500:
            return f"{broker} had a problem on its side (HTTP {status}): try again in a few minutes."
        found = _BROKER_MESSAGE.search(text)
        message = found.group(1).strip() if found else ""
        detail = f": {_sentence(message)}" if message and not _RAW.search(message) else "."
        return f"{broker} refused the request (HTTP {status}){detail}"
    # A permanent error is the broker's answer: only the others may have failed on the way there.
    unreachable = None if error.permanent else _network_failure(error)
    if unreachable is not None:
        reason, address = unreachable
        where = f"{broker} at {address}" if address else broker
        return f"Could not reach {where}: {reason}"
    if not _RAW.search(text):
        return _sentence(text)
    return f"{broker} gave no usable answer: try again in a few minutes."


def _network_failure(error: BrokerError) -> tuple[str, str] | None:
    """(what happened, host[:port] when known) for an error caused by the network, else None."""
    chain = list(_causes(error))
    address = ""
    for cause in chain:
        url = getattr(getattr(cause, "request", None), "url", None)
        if isinstance(url, str) and url:
            address = urlsplit(url).netloc
            break
    for cause in chain:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused. Check the address and that the service is running, then try again.", address
        if isinstance(cause, socket.gaierror):
            return "the host name was not found. Check the address.", address
        if isinstance(cause, TimeoutError):
            return "it did not answer in time (timed out). Try again in a few minutes.", address
    if any(isinstance(cause, OSError) for cause in chain[1:]):
        return "the network connection failed. Try again in a few minutes.", address
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from or while handling (adapters often hide
    them with ``from None``: the context stays available)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending and len(seen) < _CHAIN_LIMIT:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__]


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else f"{text}."
