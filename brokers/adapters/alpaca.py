"""`AlpacaBroker`: the project's `Broker` interface over alpaca-py's `TradingClient` (0.44).

How it talks to Alpaca
----------------------
alpaca-py does the HTTP: authentication headers, URLs, retries of HTTP 429
(`retry_attempts` more times, `retry_wait_s` seconds apart: every request,
POST /v2/orders included) and `APIError` for any other 4xx/5xx. Around it:

- Only 429 is retried by the SDK (its default also retries 504): Alpaca's rate
  limit refuses a request before processing it, but a POST answered 504 may
  have been processed, and a retry would then depend on Alpaca refusing the
  repeated client order id. A 504 surfaces at once; its outcome is looked up.

- Timeouts: the SDK sets none (alpaca-py issue 415), so its requests session is
  replaced by one that gives every request `timeout_s` (for the connection and
  for each read). A timeout is never retried by the SDK: it surfaces at once.
- The client runs with `raw_data=True` and `brokers.adapters.alpaca_json`
  parses Alpaca's JSON: decimals arrive as JSON strings and become `Decimal(str)` exactly;
  the SDK's pydantic models would refuse a status word newer than the SDK.
- Orders are POSTed as a plain dict with decimals as strings (the SDK's order
  request models hold qty, notional and limit price as floats) and always with
  the request's `client_order_id`: Alpaca refuses a second order with it (422
  "client_order_id must be unique"), one more guard on top of the lookups.

Errors (`BrokerError`; secrets never appear in a message)
---------------------------------------------------------
========================================================  ==============================
What happened                                             Flags
========================================================  ==============================
submit or cancel: timeout, connection error, HTTP 5xx,    ``unknown``: look the order up
unreadable 2xx body, 422 "client_order_id must be         by client order id; never
unique", any error after an SDK retry that followed a     resubmit under a new id
non-429 answer (the first attempt may have created the
order)
submit answered HTTP 429 on every attempt (Alpaca's       neither: Alpaca did not take
rate limit refuses a request before processing it)        it; it may be sent again
read (GET): timeout, connection error, 5xx, 429,          neither: nothing changed, retry
unreadable body
401, or 403 about credentials                             ``permanent``, "credentials
                                                          rejected", no key or secret
other 4xx: 403 insufficient buying power / qty, 422       ``permanent``, with Alpaca's
validation (not fractionable, sub-penny...), 404 unknown  message
symbol or order; bad credentials or options; a short
position; fractional order that is not market DAY
(refused before sending)
========================================================  ==============================

`get_order` answers None for Alpaca's 404; `cancel_order` treats Alpaca's 422
("order is not cancelable": it finished meanwhile) and an order already in a
terminal state as done.

Order statuses
--------------
The broker's own word is kept in `BrokerOrder.broker_status`.

=============================================================  ========================================
Alpaca status                                                  OrderState
=============================================================  ========================================
filled                                                         FILLED
canceled                                                       CANCELED (filled_quantity may be > 0)
expired                                                        EXPIRED (filled_quantity may be > 0)
rejected                                                       REJECTED
new, accepted, pending_new, accepted_for_bidding,              NEW when nothing has filled,
pending_review, held, calculated, stopped, suspended,          PARTIALLY_FILLED when filled_qty > 0
partially_filled, done_for_day, pending_cancel,
pending_replace, replaced, any word this module does not know
=============================================================  ========================================

Only the four terminal words end an order. ``pending_cancel`` can still lose
to a fill; ``done_for_day`` and ``calculated`` come before a final status the
next day. ``replaced`` means someone replaced the order outside this app: the
remainder lives on under another order id, so the order is reported as still
working (never re-planned on top of) and ``broker_status`` tells a human why.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest

from brokers.adapters.alpaca_json import (
    TERMINAL_STATUSES,
    WORKING_STATUSES,
    BadResponse,
    decimal_places,
    describe_request,
    order_body,
    parse_account,
    parse_asset,
    parse_clock,
    parse_order,
    parse_orders,
    parse_positions,
)
from brokers.base import (
    AccountConfig,
    AccountInfo,
    Asset,
    Broker,
    BrokerError,
    BrokerOrder,
    Clock,
    OrderRequest,
    OrderType,
    Position,
    TimeInForce,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PAPER_URL = "https://paper-api.alpaca.markets"
DEFAULT_LIVE_URL = "https://api.alpaca.markets"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRY_ATTEMPTS = 3
DEFAULT_RETRY_WAIT_S = 3.0
#: Alpaca's lookups by client order id may lag an accepted order by a moment.
DEFAULT_SETTLEMENT_DELAY_S = 2.0
MAX_RETRY_ATTEMPTS = 10
#: The HTTP statuses the SDK retries: only answers that prove the request was not processed.
RETRIED_STATUSES = (429,)
#: Alpaca's maximum page of `GET /v2/orders`; a full page means there may be more.
ORDERS_PAGE_LIMIT = 500
#: Alpaca takes quantities and notionals with at most 9 decimal places.
MAX_DECIMAL_PLACES = 9

_AUTH_WORDS = ("unauthorized", "not authorized", "forbidden", "authentication", "api key", "credentials")


class _TimeoutSession(requests.Session):
    """A requests session that gives every request a timeout and remembers the statuses answered.

    alpaca-py calls `self._session.request(method, url, headers=..., json/params=...)`
    without a timeout, which can block forever on a stalled connection.
    `statuses` lets `submit_order` see whether the SDK retried after an answer
    other than 429 (one that may have been processed).
    """

    def __init__(self, timeout_s: float):
        super().__init__()
        self.timeout_s = timeout_s
        # Bounded: reads append too; a submit clears it first and sees at most MAX_RETRY_ATTEMPTS + 1.
        self.statuses: deque[int] = deque(maxlen=2 * (MAX_RETRY_ATTEMPTS + 1))

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = self.timeout_s
        response = super().request(method, url, *args, **kwargs)
        self.statuses.append(response.status_code)
        return response


@dataclass(frozen=True)
class _Options:
    """Connection settings from `AccountConfig.options`: seconds, counts and the chosen base URL."""

    base_url: str
    timeout_s: float
    retry_attempts: int
    retry_wait_s: float
    settlement_delay_s: float


class AlpacaBroker(Broker):
    """One Alpaca account (paper, or live when `AccountConfig.live`) through alpaca-py's TradingClient.

    Credentials: ``api_key`` and ``secret_key``. Options: ``paper_url`` and
    ``live_url`` (base URLs without /v2), ``timeout_s`` (seconds per HTTP
    request), ``retry_attempts`` and ``retry_wait_s`` (the SDK's retries of
    HTTP 429/504), ``settlement_delay_s`` (how long an accepted order may be
    missing from lookups). The constructor does no network I/O.
    """

    kind = "alpaca"

    def __init__(self, config: AccountConfig):
        super().__init__(config)
        self._secrets = _credentials(config)
        self.options = _options(config)
        self.settlement_delay_s = self.options.settlement_delay_s
        options = self.options
        self.max_call_s = (
            options.timeout_s * (options.retry_attempts + 1) + options.retry_wait_s * options.retry_attempts
        )
        self._session = _TimeoutSession(self.options.timeout_s)
        self._client = self._build_client()

    def _build_client(self) -> TradingClient:
        api_key, secret_key = self._secrets
        client = TradingClient(
            api_key, secret_key, paper=not self.config.live, raw_data=True, url_override=self.options.base_url
        )
        for attribute in ("_session", "_retry", "_retry_wait", "_retry_codes"):
            # Private attributes of alpaca.common.rest.RESTClient: fail loudly if an upgrade renames them
            # rather than silently losing the timeout or the retry settings.
            if not hasattr(client, attribute):
                raise BrokerError(
                    f"{self._who}: alpaca-py's client has no {attribute}; cannot enforce timeouts and retries",
                    permanent=True,
                )
        client._session.close()
        client._session = self._session
        # Set directly: the constructor's arguments treat 0 as "use the default of 3".
        client._retry = self.options.retry_attempts
        client._retry_wait = self.options.retry_wait_s
        client._retry_codes = list(RETRIED_STATUSES)
        return client

    @property
    def _who(self) -> str:
        return f"Alpaca ({'live' if self.config.live else 'paper'} account {self.config.account_id})"

    def close(self) -> None:
        self._session.close()

    # --- reads -----------------------------------------------------------------

    def account(self) -> AccountInfo:
        """Cash, buying power and equity in USD. Alpaca's buying power is the broker's own figure
        (a margin account's is a multiple of its equity); size cash-only buys on `cash_usd`."""
        return self._read("read the account", self._client.get_account, parse_account)

    def positions(self) -> list[Position]:
        """Long positions. A short position raises `BrokerError(permanent=True)` naming it: this app
        never opens shorts and cannot rebalance around one, so it is never dropped silently."""
        positions = self._read("list positions", self._client.get_all_positions, parse_positions)
        shorts = [p for p in positions if p.quantity < 0]
        if shorts:
            named = ", ".join(f"{p.symbol} ({p.quantity} shares)" for p in shorts)
            raise self._error(
                f"Alpaca reports short position(s): {named}; this app never sells short and cannot rebalance "
                "around a short: close it at Alpaca first",
                permanent=True,
            )
        return [p for p in positions if p.quantity > 0]

    def clock(self) -> Clock:
        return self._read("read the market clock", self._client.get_clock, parse_clock)

    def asset(self, symbol: str) -> Asset:
        """What Alpaca says about `symbol`; an unknown symbol (HTTP 404) is `BrokerError(permanent=True)`."""
        return self._read(
            f"look up asset {symbol}", lambda: self._client.get_asset(quote(symbol, safe="")), parse_asset
        )

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """The order with this client order id, or None when Alpaca answers 404 (it has none)."""
        action = f"look up order {client_order_id}"
        try:
            order = self._read(action, lambda: self._client.get_order_by_client_id(client_order_id), parse_order)
        except BrokerError as exc:
            if exc.status_code == 404:
                return None
            raise
        return self._noted(order)

    def orders_since(self, since: datetime) -> list[BrokerOrder]:
        """Every order submitted after ``since``, open and closed (`GET /v2/orders?status=all`),
        oldest first, page by page (a page ends where the next one starts; repeats are dropped)."""
        found: dict[str, BrokerOrder] = {}
        after = since
        while True:
            query = GetOrdersRequest(
                status=QueryOrderStatus.ALL, limit=ORDERS_PAGE_LIMIT, after=after, direction=Sort.ASC
            )
            page = self._read("list orders", lambda query=query: self._client.get_orders(query), parse_orders)
            fresh = [order for order in page if order.broker_order_id not in found]
            found.update((order.broker_order_id, self._noted(order)) for order in fresh)
            if len(page) < ORDERS_PAGE_LIMIT or not fresh or fresh[-1].submitted_at is None:
                return list(found.values())
            after = fresh[-1].submitted_at - timedelta(microseconds=1)

    def open_orders(self, symbols: Sequence[str] | None = None) -> list[BrokerOrder]:
        """Every open order (for `symbols`, if given; an empty sequence selects nothing), newest first.

        A full page of 500 raises `BrokerError(permanent=True)` rather than
        silently omitting the rest.
        """
        if symbols is not None and not symbols:
            return []
        query = GetOrdersRequest(
            status=QueryOrderStatus.OPEN, limit=ORDERS_PAGE_LIMIT, symbols=list(symbols) if symbols else None
        )
        orders = self._read("list open orders", lambda: self._client.get_orders(query), parse_orders)
        if len(orders) >= ORDERS_PAGE_LIMIT:
            raise self._error(
                f"Alpaca lists {len(orders)} open orders, a full page: more may exist; cancel stale orders first",
                permanent=True,
            )
        return [self._noted(order) for order in orders]

    # --- writes ----------------------------------------------------------------

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """POSTs one order with the request's client order id; see the module docstring for errors.

        Refused before sending (permanent): fractional or notional orders that
        are not market DAY, amounts with more than 9 decimal places.
        """
        action = f"submit order {request.client_order_id} ({describe_request(request)})"
        self._check_sendable(action, request)
        self._session.statuses.clear()
        try:
            raw = self._client.post("/orders", order_body(request))
        except Exception as exc:
            # Any failure of the POST (not only the expected ones) leaves its outcome to be looked up.
            raise self._failure(action, exc, write=True, answers=list(self._session.statuses)) from None
        try:
            order = parse_order(raw)
        except (BadResponse, TypeError) as exc:
            raise self._error(f"{action}: unreadable answer ({exc}); look the order up", unknown=True) from None
        if order.client_order_id != request.client_order_id:
            raise self._error(
                f"{action}: Alpaca answered with client order id {order.client_order_id}; look the order up",
                unknown=True,
            )
        return self._noted(order)

    def cancel_order(self, client_order_id: str) -> None:
        """Asks Alpaca to cancel; an order already finished (terminal) is not an error.

        The order's final state comes from `get_order`. No such order:
        `BrokerError(permanent=True)`.
        """
        order = self.get_order(client_order_id)
        if order is None:
            raise self._error(
                f"cancel order {client_order_id}: Alpaca has no such order", permanent=True, status_code=404
            )
        if order.state.terminal:
            return
        action = f"cancel order {client_order_id}"
        try:
            self._client.cancel_order_by_id(order.broker_order_id)
        except Exception as exc:
            error = self._failure(action, exc, write=True)
            if error.status_code == 422:
                # "order is not cancelable": it finished (or is finishing) meanwhile; get_order tells how.
                return
            raise error from None

    # --- helpers ---------------------------------------------------------------

    def _noted(self, order: BrokerOrder) -> BrokerOrder:
        """`order`, after logging a status word this module does not know (mapped as working)."""
        if order.broker_status not in TERMINAL_STATUSES and order.broker_status not in WORKING_STATUSES:
            logger.warning(
                "%s",
                self._redact(
                    f"{self._who}: order {order.client_order_id} has status {order.broker_status!r}, unknown to "
                    f"this adapter: treated as {order.state}"
                ),
            )
        return order

    def _check_sendable(self, action: str, request: OrderRequest) -> None:
        """Alpaca's rules for fractional and notional orders, checked before anything is sent."""
        if request.fractional and (request.order_type != OrderType.MARKET or request.time_in_force != TimeInForce.DAY):
            raise self._error(
                f"{action}: fractional and notional orders must be market DAY orders at Alpaca, "
                f"not {request.order_type} {request.time_in_force}",
                permanent=True,
            )
        for name, value in (("quantity", request.quantity), ("notional_usd", request.notional_usd)):
            if value is not None and decimal_places(value) > MAX_DECIMAL_PLACES:
                raise self._error(
                    f"{action}: {name} {value} has more than {MAX_DECIMAL_PLACES} decimal places", permanent=True
                )

    def _read(self, action: str, call: Callable[[], Any], parse: Callable[[Any], T]) -> T:
        """Runs a GET through the SDK and parses the JSON; failures are `BrokerError`s without
        ``unknown`` (a read changes nothing)."""
        try:
            raw = call()
        except Exception as exc:
            raise self._failure(action, exc, write=False) from None
        try:
            return parse(raw)
        except (BadResponse, TypeError) as exc:
            raise self._error(f"{action}: unreadable answer from Alpaca ({exc})") from None

    def _failure(self, action: str, exc: Exception, *, write: bool, answers: Sequence[int] = ()) -> BrokerError:
        """Maps an exception from the SDK or requests onto `BrokerError` (the module docstring's table).

        `answers`: the HTTP statuses a submit received, retries included.
        """
        if isinstance(exc, APIError):
            return self._api_failure(action, exc, write=write, answers=answers)
        if isinstance(exc, requests.Timeout):
            reason = f"no answer within {self.options.timeout_s:g} s"
        elif isinstance(exc, requests.RequestException):
            reason = f"no usable answer ({type(exc).__name__}: {exc})"
        elif isinstance(exc, ValueError) and not write:
            # alpaca-py validates some arguments (order ids are UUIDs) before sending anything.
            return self._error(f"{action}: alpaca-py refused the request ({exc})", permanent=True)
        else:
            reason = f"unexpected {type(exc).__name__}: {exc}"
        if write:
            logger.warning("%s", self._redact(f"{self._who}: {action}: outcome unknown: {reason}"))
            return self._error(f"{action}: {reason}; it may have taken effect: look the order up", unknown=True)
        return self._error(f"{action}: {reason}")

    def _api_failure(self, action: str, exc: APIError, *, write: bool, answers: Sequence[int]) -> BrokerError:
        """Classifies Alpaca's HTTP error answer (see the module docstring)."""
        status = exc.status_code
        message = _server_message(exc)
        lowered = message.lower()
        described = f"HTTP {status}: {message}"
        if status == 401 or (status == 403 and any(word in lowered for word in _AUTH_WORDS)):
            return self._error(
                f"{action}: credentials rejected ({described}); check the account's Alpaca API key and secret "
                "and that they belong to this account's paper or live environment",
                permanent=True,
                status_code=status,
            )
        if write and any(answer != 429 for answer in answers[:-1]):
            # The SDK retried after an answer (504) that may have been processed: whatever the retry
            # got (a duplicate, or insufficient buying power because the first order holds it) does
            # not tell whether the order exists.
            return self._unknown(action, f"{described}, after a retry", status)
        if write and status == 422 and "client_order_id" in lowered and "unique" in lowered:
            return self._unknown(action, f"{described}: Alpaca already has this client order id", status)
        if write and status == 429 and answers and all(answer == 429 for answer in answers):
            # Alpaca's rate limit refuses a request before processing it: nothing was placed.
            return self._error(
                f"{action}: rate limited (HTTP 429 on every attempt); Alpaca did not take it", status_code=429
            )
        if status is None or status == 429 or status >= 500:
            if write:
                return self._unknown(action, described, status)
            return self._error(f"{action}: {described}", status_code=status)
        return self._error(f"{action}: Alpaca refused ({described})", permanent=True, status_code=status)

    def _unknown(self, action: str, reason: str, status: int | None) -> BrokerError:
        logger.warning("%s", self._redact(f"{self._who}: {action}: outcome unknown: {reason}"))
        return self._error(
            f"{action}: {reason}; it may have taken effect: look the order up", unknown=True, status_code=status
        )

    def _error(
        self, message: str, *, permanent: bool = False, unknown: bool = False, status_code: int | None = None
    ) -> BrokerError:
        """A `BrokerError` naming this account, with the key and secret blanked out of the text."""
        return BrokerError(
            self._redact(f"{self._who}: {message}"), permanent=permanent, unknown=unknown, status_code=status_code
        )

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "[redacted]")
        return text


# --- configuration ----------------------------------------------------------------


def _credentials(config: AccountConfig) -> tuple[str, str]:
    """(api_key, secret_key); `BrokerError(permanent=True)` names whichever is missing (never a value)."""
    credentials = config.credentials or {}
    values = {name: credentials.get(name) for name in ("api_key", "secret_key")}
    missing = [name for name, value in values.items() if not isinstance(value, str) or not value.strip()]
    if missing:
        raise BrokerError(
            f"Alpaca account {config.account_id}: missing credentials: {', '.join(missing)}; "
            "enter the account's Alpaca API key and secret",
            permanent=True,
        )
    return str(values["api_key"]), str(values["secret_key"])


def _options(config: AccountConfig) -> _Options:
    """Validated options; `config.live` picks ``live_url``, else ``paper_url``."""
    options = config.options or {}
    where = f"Alpaca account {config.account_id}: option"
    paper_url = _url_option(options, "paper_url", DEFAULT_PAPER_URL, where)
    live_url = _url_option(options, "live_url", DEFAULT_LIVE_URL, where)
    if not config.live and paper_url in (live_url, DEFAULT_LIVE_URL):
        # A paper account must never reach the real-money endpoint through a configuration slip.
        raise BrokerError(
            f"{where} paper_url is the live trading URL; a paper account needs a paper URL", permanent=True
        )
    timeout_s = _number_option(options, "timeout_s", DEFAULT_TIMEOUT_S, where)
    retry_attempts = _number_option(options, "retry_attempts", DEFAULT_RETRY_ATTEMPTS, where)
    retry_wait_s = _number_option(options, "retry_wait_s", DEFAULT_RETRY_WAIT_S, where)
    settlement_delay_s = _number_option(options, "settlement_delay_s", DEFAULT_SETTLEMENT_DELAY_S, where)
    if timeout_s <= 0:
        raise BrokerError(f"{where} timeout_s must be > 0 seconds, got {timeout_s:g}", permanent=True)
    if not 0 <= retry_attempts <= MAX_RETRY_ATTEMPTS or retry_attempts != int(retry_attempts):
        raise BrokerError(
            f"{where} retry_attempts must be a whole number from 0 to {MAX_RETRY_ATTEMPTS}, got {retry_attempts:g}",
            permanent=True,
        )
    for name, value in (("retry_wait_s", retry_wait_s), ("settlement_delay_s", settlement_delay_s)):
        if value < 0:
            raise BrokerError(f"{where} {name} must be >= 0 seconds, got {value:g}", permanent=True)
    return _Options(
        base_url=live_url if config.live else paper_url,
        timeout_s=timeout_s,
        retry_attempts=int(retry_attempts),
        retry_wait_s=retry_wait_s,
        settlement_delay_s=settlement_delay_s,
    )


def _url_option(options: Mapping[str, object], name: str, default: str, where: str) -> str:
    value = options.get(name) or default
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise BrokerError(f"{where} {name} must be an http(s) URL", permanent=True)
    return value.rstrip("/")


def _number_option(options: Mapping[str, object], name: str, default: float, where: str) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise BrokerError(f"{where} {name} must be a number, got {type(value).__name__}", permanent=True)
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise BrokerError(f"{where} {name} must be a finite number, got {value!r}", permanent=True)
    return number


def _server_message(exc: APIError) -> str:
    """The `message` of Alpaca's JSON error body, else the body text, shortened (not yet redacted)."""
    text = str(exc)
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        text = body["message"]
    return " ".join(text.split())[:200] or "no message"
