"""A fake Alpaca HTTP API on 127.0.0.1 that the real alpaca-py clients can talk to.

Point a client at it with `url_override=server.url`. It speaks the wire format
alpaca-py parses (JSON bodies, `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY`
headers, `{"message": ...}` error bodies, decimals as JSON strings, RFC 3339
timestamps) so tests exercise the SDK's own request building, retries,
pagination and error handling. Credentials: "fake-key-id" / "fake-secret-key".

Market data: `GET /v2/stocks/bars`.

    with FakeAlpacaServer() as server:
        server.set_bars("SPY", [daily_bar(date(2024, 1, 2), 470.0)])
        server.fail_next(1, 500)      # the next request (any path) answers HTTP 500
        server.delay_s = 1.0          # every request waits 1 s before answering
        server.on_request = callback  # called with each request as it arrives (server thread)
        ... server.requests ...       # RecordedRequest log, oldest first

Trading: `GET /v2/account`, `GET /v2/positions`, `GET /v2/clock`,
`GET /v2/assets/{symbol}`, `POST /v2/orders`, `GET /v2/orders`,
`GET /v2/orders:by_client_order_id`, `GET /v2/orders/{id}`,
`DELETE /v2/orders/{id}`. The account is a cash account with real state:
fills move cash and positions at the fill price, in exact `Decimal`
arithmetic (no rounding to cents). Amounts passed to the methods below are
`Decimal`, `str` or `int` (never float), in USD and shares.

State::

    server.cash = "10000"                     # default 100000, like a fresh paper account
    server.add_asset("VTI", "250.10", fractionable=False, tradable=True)
    server.set_price("VTI", "251")            # fill and market price (adds a fractionable asset if new)
    server.set_position("VTI", "10", avg_entry_price="200")   # qty "0" removes; negative = a short
    server.set_clock(is_open=False, next_open=..., next_close=...)   # default: open
    server.trading_blocked = True             # orders answer 403

Fills. By default (`server.auto_fill = True`) a market order, or a limit
order whose limit is marketable, fills completely at submit while the clock
is open (status "filled"); otherwise it rests ("new" while open, "accepted"
while closed). Scripts override that, one `Step` at submit and then one per
single-order GET (`/v2/orders/{id}` or `:by_client_order_id`, i.e. per poll;
listing `/v2/orders` never advances a script)::

    server.script_next_order(Step.hold(), Step.fill("2"), Step.fill(), symbol="VTI")
        # the next VTI order: rests at submit, 2 shares on the 1st poll, the rest on the 2nd
    server.script_order("my-client-id", Step.hold(), Step.cancel())   # by client order id
    server.fill_after_polls = 2               # unscripted orders rest, fill on their 2nd poll (clock open)
    server.auto_fill = False                  # every unscripted order rests until the test acts:
    server.fill_order("my-client-id", qty=None, price=None)           # fill the rest at the price
    server.apply("my-client-id", Step.expire())                       # any step, now
    server.fill_open_orders(symbol=None)      # "the market opens": fill resting marketable orders
    server.end_of_day()                       # clock closed, open DAY orders expire

Steps: `Step.hold()` (no change), `Step.fill(qty=None, price=None)` (None:
the remainder, at the symbol's price), `Step.cancel()`, `Step.expire()`,
`Step.reject()`, `Step.status("done_for_day")` (sets only the status word;
money does not move). Steps on a finished order change nothing.

Validation like Alpaca's: a second POST with a known client_order_id answers
422 "client_order_id must be unique" and creates nothing (unless
`server.accept_repeated_client_order_ids = True`: then it creates another
order, like a broker with no such check); buys beyond buying
power (cash minus open buys) 403 "insufficient buying power"; sells beyond
the position less open sells 403 "insufficient qty available for order";
fractional qty or notional on a non-fractionable asset 422, fractional or
notional orders that are not market DAY 422; unknown symbol 422 (404 on
`/v2/assets/{symbol}`); qty with more than 9 decimals, notional under $1,
sub-penny limit prices 422; cancelling a finished order 422.

Faults (each matches by HTTP method and a regex the path must fully match;
`None` matches any; they are consumed in the order they were added)::

    server.accept_then_fail(504)              # the next POST /v2/orders creates the order, answers 504
    server.rate_limit_next(5, method="POST", path="/v2/orders")   # 429 storm, nothing processed
    server.hang_next(1, 2.0, method="POST", path="/v2/orders", effect="before")
        # effect "before": processed, answer held 2 s; "after": held 2 s, then processed;
        # "never": held 2 s, then 504, never processed
    server.inject(Fault(...))                 # the general form
    server.clear_faults()                     # drop faults and fail_next answers not yet used
    server.lookup_misses = 3                  # each new order answers 404 to its first 3 lookups by
                                              # client order id (Alpaca's lookups may lag); listing
                                              # GET /v2/orders?status=all shows it at once

Inspect::

    server.orders_created                     # orders actually created (the no-duplicates check)
    server.orders / server.order("my-client-id")   # FakeOrder snapshots, submission order
    server.cash / server.positions() / server.position("VTI") / server.price("VTI")
    server.requests / server.requests_to("/v2/orders")              # RecordedRequest log
    server.settle()                           # wait until no request is being answered (hangs included)
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo

import pytest

NEW_YORK = ZoneInfo("America/New_York")
ADJUSTMENTS = ("raw", "split", "dividend", "all")
FEEDS = ("iex", "sip", "delayed_sip", "otc", "boats", "overnight")
#: Alpaca's own default and maximum page sizes for market-data endpoints.
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000

#: A fresh Alpaca paper account's cash, USD.
DEFAULT_CASH = Decimal("100000")
#: Alpaca's error codes, as they appear in error bodies.
CODE_INVALID = 40010001
CODE_FORBIDDEN = 40310000
CODE_NOT_FOUND = 40410000
CODE_NOT_CANCELABLE = 42210000
CODE_RATE_LIMITED = 42910000
#: Alpaca's order list: default and maximum `limit`.
ORDERS_DEFAULT_LIMIT = 50
ORDERS_MAX_LIMIT = 500
CLIENT_ORDER_ID_MAX_LENGTH = 48
#: Statuses after which an order never changes again (Alpaca's "closed" orders).
CLOSED_STATUSES = frozenset({"filled", "canceled", "expired", "rejected", "replaced"})
#: Quantities carry at most 9 decimal places at Alpaca.
QTY_QUANTUM = Decimal("0.000000001")
MIN_NOTIONAL = Decimal(1)
GATEWAY_TIMEOUT_BODY = b"<html><body><h1>504 Gateway Time-out</h1></body></html>"

Amount = Decimal | str | int


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it; `query` keeps the last value of each parameter."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class FakeResponse:
    """What a route handler answers: an HTTP status and a JSON-serialisable body (bytes: sent as is)."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


#: A route handler: the request and the path's regex match -> the response.
Handler = Callable[[RecordedRequest, re.Match[str]], FakeResponse]


def error(status: int, message: str) -> FakeResponse:
    """An error response in Alpaca's shape: `{"message": ...}`."""
    return FakeResponse(status, {"message": message})


def alpaca_error(status: int, code: int, message: str, **extra: Any) -> FakeResponse:
    """An error response as Alpaca's trading API sends it: `{"code": ..., "message": ..., ...}`."""
    return FakeResponse(status, {"code": code, "message": message, **extra})


def daily_bar(
    session: date,
    close: float,
    *,
    open: float | None = None,
    high: float | None = None,
    low: float | None = None,
    volume: float = 1_000_000,
    stamp: str | None = None,
) -> dict[str, Any]:
    """One daily bar in Alpaca's JSON shape, stamped like Alpaca stamps daily bars.

    The default stamp is the session's midnight in New York, as UTC
    (`...T05:00:00Z` in winter, `...T04:00:00Z` in summer); pass `stamp`
    (an RFC 3339 string) to model another convention. Prices in USD, volume
    in shares; open/high/low default to the close.
    """
    if stamp is None:
        midnight = datetime.combine(session, clock_time.min, tzinfo=NEW_YORK).astimezone(UTC)
        stamp = midnight.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "t": stamp,
        "o": close if open is None else open,
        "h": close if high is None else high,
        "l": close if low is None else low,
        "c": close,
        "v": volume,
        "n": 1000,
        "vw": close,
    }


# --- trading model ---------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One scripted event in an order's life; build with the class methods, not directly."""

    action: str
    qty: Decimal | None = None
    price: Decimal | None = None
    word: str = ""

    @classmethod
    def hold(cls) -> Step:
        """Nothing happens (the order keeps resting)."""
        return cls("hold")

    @classmethod
    def fill(cls, qty: Amount | None = None, price: Amount | None = None) -> Step:
        """Fill `qty` more shares (None: all that remains) at `price` (None: the symbol's price), USD."""
        return cls(
            "fill",
            qty=None if qty is None else _amount(qty, "qty"),
            price=None if price is None else _amount(price, "price"),
        )

    @classmethod
    def cancel(cls) -> Step:
        return cls("cancel")

    @classmethod
    def expire(cls) -> Step:
        return cls("expire")

    @classmethod
    def reject(cls) -> Step:
        return cls("reject")

    @classmethod
    def status(cls, word: str) -> Step:
        """Set Alpaca's status word ("pending_new", "done_for_day", ...) without moving money."""
        return cls("status", word=word)


@dataclass
class Fault:
    """A scripted failure for the next `count` requests matching `method` and `path` (a regex, full match).

    `effect`: "never" (the request is not processed), "before" (processed, then
    the answer is held and/or replaced) or "after" (held, then processed). The
    answer is held `hang_s` seconds (a client timeout shorter than that gives
    up first), then is `status` with `body` (default: Alpaca-like), or, with
    `status=None` and a processed request, the real answer.
    """

    status: int | None = 504
    method: str | None = None
    path: str | None = None
    effect: str = "never"
    hang_s: float = 0.0
    body: Any = None
    count: int = 1

    def __post_init__(self) -> None:
        if self.effect not in ("never", "before", "after"):
            raise ValueError(f"effect: 'never', 'before' or 'after', got {self.effect!r}")
        if self.count < 1:
            raise ValueError(f"count: at least 1, got {self.count}")

    def matches(self, request: RecordedRequest) -> bool:
        if self.method is not None and self.method.upper() != request.method:
            return False
        return self.path is None or re.fullmatch(self.path, request.path) is not None

    def response(self) -> FakeResponse:
        status = 504 if self.status is None else self.status
        body = self.body
        if body is None:
            if status == 504:
                body = GATEWAY_TIMEOUT_BODY
            elif status == 429:
                body = {"code": CODE_RATE_LIMITED, "message": "rate limit exceeded"}
            else:
                body = {"message": HTTPStatus(status).phrase.lower() + "."}
        return FakeResponse(status, body)


@dataclass
class FakeAsset:
    """A symbol the fake broker knows; `price` (USD) is where orders fill and positions are marked."""

    symbol: str
    price: Decimal
    tradable: bool = True
    fractionable: bool = True
    status: str = "active"
    exchange: str = "ARCA"

    @property
    def id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-alpaca-asset:{self.symbol}"))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "class": "us_equity",
            "exchange": self.exchange,
            "symbol": self.symbol,
            "name": f"{self.symbol} (fake)",
            "status": self.status,
            "tradable": self.tradable,
            "marginable": True,
            "shortable": True,
            "easy_to_borrow": True,
            "fractionable": self.fractionable,
            "maintenance_margin_requirement": 30,
            "attributes": [],
        }


@dataclass
class FakePosition:
    """Shares held (negative: a short) and their average entry price, USD."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal


@dataclass
class FakeOrder:
    """An order at the fake broker. `filled_value` is the sum of fill qty x price, USD."""

    id: str
    client_order_id: str
    symbol: str
    asset_id: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    status: str
    created_at: datetime
    updated_at: datetime
    filled_qty: Decimal = Decimal(0)
    filled_value: Decimal = Decimal(0)
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    failed_at: datetime | None = None
    steps: deque[Step] = field(default_factory=deque)
    #: True when a script drives the order (then `fill_after_polls` leaves it alone).
    scripted: bool = False
    #: Single-order GETs answered for this order (polls).
    polls: int = 0
    #: Lookups by client order id still to answer 404 (see `FakeAlpacaServer.lookup_misses`).
    lookup_misses: int = 0

    @property
    def open(self) -> bool:
        return self.status not in CLOSED_STATUSES

    @property
    def filled_avg_price(self) -> Decimal | None:
        return self.filled_value / self.filled_qty if self.filled_qty else None

    def remaining_qty(self, price: Decimal) -> Decimal:
        """Shares still to fill; a notional order's remainder is valued at `price` (USD), 9 decimals down."""
        if self.qty is not None:
            return self.qty - self.filled_qty
        assert self.notional is not None
        return ((self.notional - self.filled_value) / price).quantize(QTY_QUANTUM, rounding=ROUND_DOWN)

    def to_json(self) -> dict[str, Any]:
        """The order in Alpaca's JSON shape."""
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": _rfc3339(self.created_at),
            "updated_at": _rfc3339(self.updated_at),
            "submitted_at": _rfc3339(self.created_at),
            "filled_at": _rfc3339(self.filled_at),
            "expired_at": _rfc3339(self.expired_at),
            "expires_at": None,
            "canceled_at": _rfc3339(self.canceled_at),
            "failed_at": _rfc3339(self.failed_at),
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": self.asset_id,
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": _text(self.notional),
            "qty": _text(self.qty),
            "filled_qty": _text(self.filled_qty),
            "filled_avg_price": _text(self.filled_avg_price),
            "order_class": "",
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "position_intent": "buy_to_open" if self.side == "buy" else "sell_to_close",
            "time_in_force": self.time_in_force,
            "limit_price": _text(self.limit_price),
            "stop_price": None,
            "status": self.status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
            "subtag": None,
            "source": None,
        }


class _Refused(Exception):
    """Raised inside order handling to answer with `response` (a validation error)."""

    def __init__(self, response: FakeResponse):
        super().__init__(response.body)
        self.response = response


class FakeAlpacaServer:
    """An in-memory Alpaca API on an ephemeral 127.0.0.1 port, served from a background thread.

    Attributes tests may set: `delay_s` (seconds each request waits before
    answering), `page_size` (server-side cap on bars per page, to force
    pagination), `permitted_feeds` (feeds the fake subscription covers; others
    answer 403 like Alpaca does for SIP without a subscription), `auto_fill`,
    `fill_after_polls` and `trading_blocked` (see the module docstring).
    """

    def __init__(
        self, *, api_key: str = "fake-key-id", secret_key: str = "fake-secret-key", page_size: int = MAX_LIMIT
    ):
        self.api_key = api_key
        self.secret_key = secret_key
        self.page_size = page_size
        self.delay_s = 0.0
        #: Called with each request as it arrives (before `delay_s`), on the server's thread.
        self.on_request: Callable[[RecordedRequest], None] | None = None
        self.permitted_feeds: set[str] = set(FEEDS)
        self.requests: list[RecordedRequest] = []
        self._bars: dict[str, dict[str, list[dict[str, Any]]]] = {adjustment: {} for adjustment in ADJUSTMENTS}
        self._failures: deque[FakeResponse] = deque()
        self._faults: list[Fault] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self._idle = threading.Condition()
        self._init_trading()
        self.add_route("GET", r"/v2/stocks/bars", self._stock_bars)
        self.add_route("GET", r"/v2/account", self._get_account)
        self.add_route("GET", r"/v2/positions", self._get_positions)
        self.add_route("GET", r"/v2/clock", self._get_clock)
        self.add_route("GET", r"/v2/assets/(?P<symbol>[^/]+)", self._get_asset)
        self.add_route("POST", r"/v2/orders", self._post_order)
        self.add_route("GET", r"/v2/orders", self._list_orders)
        self.add_route("GET", r"/v2/orders:by_client_order_id", self._get_order_by_client_id)
        self.add_route("GET", r"/v2/orders/(?P<order_id>[^/:]+)", self._get_order)
        self.add_route("DELETE", r"/v2/orders/(?P<order_id>[^/:]+)", self._delete_order)

    def _init_trading(self) -> None:
        # One re-entrant lock guards all trading state: handlers run on the server's threads.
        self._state = threading.RLock()
        self._cash = DEFAULT_CASH
        self.trading_blocked = False
        self.auto_fill = True
        #: None: `auto_fill` decides at submit. N: unscripted orders rest at submit and fill completely
        #: on their Nth poll while the clock is open and they are marketable.
        self.fill_after_polls: int | None = None
        self.orders_created = 0
        #: True: a known client order id creates another order instead of 422 (a broker without the check).
        self.accept_repeated_client_order_ids = False
        #: Lookups by client order id each new order answers with 404 before it is found there.
        self.lookup_misses = 0
        self._account_id = str(uuid.uuid4())
        self._assets: dict[str, FakeAsset] = {}
        self._positions: dict[str, FakePosition] = {}
        self._orders: dict[str, FakeOrder] = {}  # by order id, in submission order
        self._order_ids: dict[str, str] = {}  # client order id -> order id
        self._scripts_by_client_id: dict[str, list[Step]] = {}
        self._next_scripts: list[tuple[str | None, list[Step]]] = []
        self._clock_open = True
        self._clock_timestamp: datetime | None = None
        self._next_open: datetime | None = None
        self._next_close: datetime | None = None

    # --- lifecycle -------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL for `url_override`, e.g. "http://127.0.0.1:53117" (no trailing slash)."""
        if self._httpd is None:
            raise RuntimeError("FakeAlpacaServer is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeAlpacaServer:
        """Binds an ephemeral port and serves in a daemon thread."""
        self._stopping.clear()
        self._httpd = _QuietServer(("127.0.0.1", 0), _make_handler_class(self))
        # A short poll interval keeps stop() (which waits for the next poll) from adding 0.5 s per test.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-alpaca", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving; requests still sleeping in `delay_s` or a hang are released first."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeAlpacaServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- test controls: market data and faults ---------------------------------

    def set_bars(
        self, symbol: str, rows: Iterable[Mapping[str, Any]], *, adjustments: Iterable[str] = ADJUSTMENTS
    ) -> None:
        """Replaces `symbol`'s daily bars (dicts shaped like `daily_bar`) for the given adjustments.

        Storing different rows under "raw" and "all" lets a test tell which
        adjustment a client asked for from the prices it gets back.
        """
        stored = sorted((dict(row) for row in rows), key=lambda row: _parse_time(row["t"]))
        with self._lock:
            for adjustment in adjustments:
                self._bars[adjustment][symbol] = stored

    def fail_next(self, count: int, status: int, body: Any = None) -> None:
        """Makes the next `count` requests answer `status` (body default: Alpaca's message for it)."""
        if body is None:
            body = {"message": HTTPStatus(status).phrase.lower() + "."}
        with self._lock:
            self._failures.extend(FakeResponse(status, body) for _ in range(count))

    def inject(self, fault: Fault) -> None:
        """Adds a scripted failure; faults are tried in the order they were added."""
        with self._lock:
            self._faults.append(fault)

    def accept_then_fail(
        self, status: int = 504, *, count: int = 1, method: str = "POST", path: str = "/v2/orders", body: Any = None
    ) -> None:
        """The next `count` matching requests take effect (an order is created), then answer `status`."""
        self.inject(Fault(status, method=method, path=path, effect="before", body=body, count=count))

    def rate_limit_next(self, count: int, *, method: str | None = None, path: str | None = None) -> None:
        """The next `count` matching requests answer 429 "rate limit exceeded" and change nothing."""
        self.inject(Fault(429, method=method, path=path, count=count))

    def hang_next(
        self,
        count: int,
        seconds: float,
        *,
        method: str | None = None,
        path: str | None = None,
        effect: str = "before",
        status: int | None = None,
    ) -> None:
        """The next `count` matching requests hold their answer `seconds` (see `Fault` for `effect`)."""
        self.inject(Fault(status, method=method, path=path, effect=effect, hang_s=seconds, count=count))

    def clear_faults(self) -> None:
        """Drops every fault and `fail_next` answer not used yet."""
        with self._lock:
            self._faults.clear()
            self._failures.clear()

    def add_route(self, method: str, pattern: str, handler: Handler) -> None:
        """Serves `method` requests whose path fully matches the regex `pattern` with `handler`."""
        self._routes.append((method.upper(), re.compile(pattern), handler))

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """The recorded requests for one path (and method, if given), oldest first."""
        with self._lock:
            return [r for r in self.requests if r.path == path and (method is None or r.method == method.upper())]

    def settle(self, timeout: float = 5.0) -> None:
        """Waits until no request is being answered (hung ones included); TimeoutError after `timeout` s."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout):
                raise TimeoutError(f"{self._in_flight} request(s) still in flight after {timeout} s")

    # --- test controls: trading state ------------------------------------------

    @property
    def cash(self) -> Decimal:
        """The account's cash, USD."""
        with self._state:
            return self._cash

    @cash.setter
    def cash(self, amount: Amount) -> None:
        with self._state:
            self._cash = _amount(amount, "cash")

    def add_asset(
        self,
        symbol: str,
        price: Amount,
        *,
        tradable: bool = True,
        fractionable: bool = True,
        status: str = "active",
        exchange: str = "ARCA",
    ) -> None:
        """Adds (or replaces) a symbol the broker knows, with its price in USD."""
        asset = FakeAsset(symbol, _amount(price, "price"), tradable, fractionable, status, exchange)
        with self._state:
            self._assets[symbol] = asset

    def set_price(self, symbol: str, price: Amount) -> None:
        """Sets the fill/market price, USD; an unknown symbol becomes a tradable, fractionable asset."""
        with self._state:
            if symbol in self._assets:
                self._assets[symbol].price = _amount(price, "price")
            else:
                self.add_asset(symbol, price)

    def price(self, symbol: str) -> Decimal:
        with self._state:
            return self._assets[symbol].price

    def set_position(self, symbol: str, qty: Amount, avg_entry_price: Amount | None = None) -> None:
        """Sets a position (shares; "0" removes it, negative is a short). The average entry price
        defaults to the symbol's price; an unknown symbol is added at `avg_entry_price`."""
        quantity = _amount(qty, "qty")
        with self._state:
            if symbol not in self._assets:
                if avg_entry_price is None:
                    raise ValueError(f"{symbol}: unknown asset; pass avg_entry_price or add_asset first")
                self.add_asset(symbol, avg_entry_price)
            if quantity == 0:
                self._positions.pop(symbol, None)
                return
            entry = self._assets[symbol].price if avg_entry_price is None else _amount(avg_entry_price, "price")
            self._positions[symbol] = FakePosition(symbol, quantity, entry)

    def positions(self) -> dict[str, Decimal]:
        """{symbol: shares} for every position."""
        with self._state:
            return {symbol: position.qty for symbol, position in self._positions.items()}

    def position(self, symbol: str) -> FakePosition | None:
        with self._state:
            position = self._positions.get(symbol)
            return None if position is None else copy.copy(position)

    def set_clock(
        self,
        is_open: bool,
        *,
        timestamp: datetime | None = None,
        next_open: datetime | None = None,
        next_close: datetime | None = None,
    ) -> None:
        """Sets the market clock (aware datetimes). Unset times follow the wall clock: the next
        close is 2 h away while open; the next open is 1 h away while closed."""
        with self._state:
            self._clock_open = is_open
            self._clock_timestamp = timestamp
            self._next_open = next_open
            self._next_close = next_close

    # --- test controls: orders -------------------------------------------------

    @property
    def orders(self) -> list[FakeOrder]:
        """Snapshots of every order, in submission order."""
        with self._state:
            return [copy.deepcopy(order) for order in self._orders.values()]

    def order(self, client_order_id: str) -> FakeOrder | None:
        """A snapshot of the order with this client order id, or None."""
        with self._state:
            order_id = self._order_ids.get(client_order_id)
            return None if order_id is None else copy.deepcopy(self._orders[order_id])

    def script_next_order(self, *steps: Step, symbol: str | None = None) -> None:
        """The next order submitted (for `symbol`, if given) follows `steps`: the first at submit,
        then one per single-order GET. Several calls queue up in order."""
        with self._state:
            self._next_scripts.append((symbol, list(steps)))

    def script_order(self, client_order_id: str, *steps: Step) -> None:
        """Scripts the order with this client order id: if it exists, its next polls run `steps`;
        otherwise they run from its submit on."""
        with self._state:
            order_id = self._order_ids.get(client_order_id)
            if order_id is None:
                self._scripts_by_client_id[client_order_id] = list(steps)
            else:
                self._orders[order_id].steps.extend(steps)

    def apply(self, client_order_id: str, *steps: Step) -> FakeOrder:
        """Runs `steps` on an existing order now; returns its snapshot."""
        with self._state:
            order = self._orders[self._order_ids[client_order_id]]
            for step in steps:
                self._apply_step(order, step)
            return copy.deepcopy(order)

    def fill_order(self, client_order_id: str, qty: Amount | None = None, price: Amount | None = None) -> FakeOrder:
        """Fills `qty` more shares (None: the rest) at `price` (None: the symbol's price)."""
        return self.apply(client_order_id, Step.fill(qty, price))

    def fill_open_orders(self, symbol: str | None = None) -> int:
        """Fills every resting market order and marketable limit order completely at the current
        price, like the market opening. Returns how many orders filled."""
        filled = 0
        with self._state:
            for order in self._orders.values():
                if order.open and (symbol is None or order.symbol == symbol) and self._marketable(order):
                    self._apply_step(order, Step.fill())
                    filled += 1
        return filled

    def end_of_day(self) -> int:
        """Closes the clock and expires every open DAY order; returns how many expired."""
        expired = 0
        with self._state:
            self._clock_open = False
            for order in self._orders.values():
                if order.open and order.time_in_force == "day":
                    self._apply_step(order, Step.expire())
                    expired += 1
        return expired

    # --- dispatch --------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> FakeResponse:
        """Answers one request: delay, injected failure or fault, authentication, then the route."""
        with self._lock:
            self.requests.append(request)
        if self.on_request is not None:
            self.on_request(request)
        with self._idle:
            self._in_flight += 1
        try:
            return self._answer(request)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _answer(self, request: RecordedRequest) -> FakeResponse:
        if self.delay_s > 0:
            self._stopping.wait(self.delay_s)
        with self._lock:
            injected = self._failures.popleft() if self._failures else None
            fault = self._take_fault(request) if injected is None else None
        if injected is not None:
            return injected
        if fault is None:
            return self._route(request)
        real: FakeResponse | None = None
        if fault.effect == "before":
            real = self._route(request)
        if fault.hang_s > 0:
            self._stopping.wait(fault.hang_s)
        if fault.effect == "after" and not self._stopping.is_set():
            real = self._route(request)
        return real if real is not None and fault.status is None else fault.response()

    def _take_fault(self, request: RecordedRequest) -> Fault | None:
        """The first fault matching `request`, consumed once (caller holds `_lock`)."""
        for fault in self._faults:
            if fault.matches(request):
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _route(self, request: RecordedRequest) -> FakeResponse:
        if not self._authorized(request):
            return error(401, "unauthorized.")
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                return handler(request, match)
        return error(404, "endpoint not found.")

    def _authorized(self, request: RecordedRequest) -> bool:
        headers = {name.lower(): value for name, value in request.headers.items()}
        return headers.get("apca-api-key-id") == self.api_key and headers.get("apca-api-secret-key") == self.secret_key

    # --- market data -----------------------------------------------------------

    def _stock_bars(self, request: RecordedRequest, _match: re.Match[str]) -> FakeResponse:
        """`GET /v2/stocks/bars`: multi-symbol bars, ordered by symbol then time, paginated."""
        query = request.query
        symbols = [s for s in query.get("symbols", "").split(",") if s]
        if not symbols:
            return error(400, "symbols is required.")
        if query.get("timeframe") != "1Day":
            return error(400, f"the fake serves timeframe=1Day only, got {query.get('timeframe')!r}.")
        adjustment = query.get("adjustment", "raw")
        if adjustment not in ADJUSTMENTS:
            return error(400, f"invalid adjustment: {adjustment}.")
        feed = query.get("feed", "sip")
        if feed not in FEEDS:
            return error(400, f"invalid feed: {feed}.")
        if feed not in self.permitted_feeds:
            return error(403, f"subscription does not permit querying recent {feed.upper()} data")
        try:
            start = _parse_time(query["start"]) if "start" in query else None
            end = _parse_time(query["end"]) if "end" in query else None
            offset = _decode_token(query.get("page_token", ""))
            limit = int(query.get("limit") or DEFAULT_LIMIT)
        except ValueError as exc:
            return error(400, f"invalid query: {exc}.")
        if not 1 <= limit <= MAX_LIMIT:
            return error(400, "invalid limit: exceeds max limit of 10000.")
        matching = self._matching_bars(sorted(set(symbols)), adjustment, start, end)
        page = matching[offset : offset + min(limit, self.page_size)]
        next_offset = offset + len(page)
        bars: dict[str, list[dict[str, Any]]] = {}
        for symbol, row in page:
            bars.setdefault(symbol, []).append(row)
        token = _encode_token(next_offset) if next_offset < len(matching) else None
        return FakeResponse(200, {"bars": bars, "next_page_token": token})

    def _matching_bars(
        self, symbols: list[str], adjustment: str, start: datetime | None, end: datetime | None
    ) -> list[tuple[str, dict[str, Any]]]:
        """(symbol, bar) pairs within [start, end], in the order pages are cut from."""
        with self._lock:
            stored = {symbol: list(self._bars[adjustment].get(symbol, [])) for symbol in symbols}
        return [
            (symbol, row)
            for symbol in symbols
            for row in stored[symbol]
            if (start is None or _parse_time(row["t"]) >= start) and (end is None or _parse_time(row["t"]) <= end)
        ]

    # --- trading: account, positions, clock, assets -----------------------------

    def _get_account(self, _request: RecordedRequest, _match: re.Match[str]) -> FakeResponse:
        """`GET /v2/account`: a cash account (multiplier 1); equity = cash + positions at price."""
        with self._state:
            long_value = sum(
                (p.qty * self._assets[p.symbol].price for p in self._positions.values() if p.qty > 0), Decimal(0)
            )
            short_value = sum(
                (p.qty * self._assets[p.symbol].price for p in self._positions.values() if p.qty < 0), Decimal(0)
            )
            equity = self._cash + long_value + short_value
            buying_power = _text(self._buying_power())
            body = {
                "id": self._account_id,
                "account_number": "PA0FAKE0000",
                "status": "ACTIVE",
                "crypto_status": "ACTIVE",
                "currency": "USD",
                "buying_power": buying_power,
                "regt_buying_power": buying_power,
                "daytrading_buying_power": "0",
                "non_marginable_buying_power": buying_power,
                "options_buying_power": buying_power,
                "cash": _text(self._cash),
                "accrued_fees": "0",
                "pending_transfer_in": "0",
                "portfolio_value": _text(equity),
                "pattern_day_trader": False,
                "trading_blocked": self.trading_blocked,
                "transfers_blocked": False,
                "account_blocked": False,
                "created_at": "2024-01-02T15:04:05.123456Z",
                "trade_suspended_by_user": False,
                "multiplier": "1",
                "shorting_enabled": False,
                "equity": _text(equity),
                "last_equity": _text(equity),
                "long_market_value": _text(long_value),
                "short_market_value": _text(short_value),
                "initial_margin": "0",
                "maintenance_margin": "0",
                "last_maintenance_margin": "0",
                "sma": "0",
                "daytrade_count": 0,
            }
        return FakeResponse(200, body)

    def _get_positions(self, _request: RecordedRequest, _match: re.Match[str]) -> FakeResponse:
        """`GET /v2/positions`: every position, marked at the symbol's price."""
        with self._state:
            body = [self._position_json(position) for position in self._positions.values()]
        return FakeResponse(200, body)

    def _position_json(self, position: FakePosition) -> dict[str, Any]:
        asset = self._assets[position.symbol]
        market_value = position.qty * asset.price
        cost_basis = position.qty * position.avg_entry_price
        unrealized = market_value - cost_basis
        available = position.qty - self._held_for_sells(position.symbol) if position.qty > 0 else position.qty
        return {
            "asset_id": asset.id,
            "symbol": position.symbol,
            "exchange": asset.exchange,
            "asset_class": "us_equity",
            "asset_marginable": True,
            "avg_entry_price": _text(position.avg_entry_price),
            "qty": _text(position.qty),
            "qty_available": _text(available),
            "side": "long" if position.qty > 0 else "short",
            "market_value": _text(market_value),
            "cost_basis": _text(cost_basis),
            "unrealized_pl": _text(unrealized),
            "unrealized_plpc": _text(unrealized / cost_basis) if cost_basis else "0",
            "unrealized_intraday_pl": "0",
            "unrealized_intraday_plpc": "0",
            "current_price": _text(asset.price),
            "lastday_price": _text(asset.price),
            "change_today": "0",
        }

    def _get_clock(self, _request: RecordedRequest, _match: re.Match[str]) -> FakeResponse:
        """`GET /v2/clock`, stamped in New York time with nanoseconds, as Alpaca does."""
        with self._state:
            now = self._clock_timestamp or datetime.now(UTC)
            is_open = self._clock_open
            next_open = self._next_open or now + (timedelta(days=1) if is_open else timedelta(hours=1))
            next_close = self._next_close or now + (timedelta(hours=2) if is_open else timedelta(hours=7, minutes=30))
        body = {
            "timestamp": _new_york_stamp(now),
            "is_open": is_open,
            "next_open": _new_york_stamp(next_open),
            "next_close": _new_york_stamp(next_close),
        }
        return FakeResponse(200, body)

    def _get_asset(self, _request: RecordedRequest, match: re.Match[str]) -> FakeResponse:
        """`GET /v2/assets/{symbol}`: 404 for a symbol the fake does not know."""
        symbol = unquote(match["symbol"])
        with self._state:
            asset = self._assets.get(symbol)
            if asset is None:
                return alpaca_error(404, CODE_NOT_FOUND, f"asset not found for {symbol}")
            return FakeResponse(200, asset.to_json())

    # --- trading: orders ---------------------------------------------------------

    def _post_order(self, request: RecordedRequest, _match: re.Match[str]) -> FakeResponse:
        """`POST /v2/orders`: validate like Alpaca, create, then run the script or the default fill."""
        try:
            body = request.json()
        except ValueError:
            return alpaca_error(400, CODE_INVALID, "request body format is invalid")
        if not isinstance(body, dict):
            return alpaca_error(400, CODE_INVALID, "request body format is invalid")
        with self._state:
            try:
                order = self._new_order(body)
            except _Refused as refused:
                return refused.response
            self._orders[order.id] = order
            self._order_ids.setdefault(order.client_order_id, order.id)  # a lookup finds the first one
            order.lookup_misses = self.lookup_misses
            self.orders_created += 1
            script = self._claim_script(order)
            if script is not None:
                order.scripted = True
                order.steps.extend(script)
                if order.steps:
                    self._apply_step(order, order.steps.popleft())
            elif self.auto_fill and not self.fill_after_polls and self._clock_open and self._marketable(order):
                self._apply_step(order, Step.fill())
            return FakeResponse(200, order.to_json())

    def _new_order(self, body: dict[str, Any]) -> FakeOrder:
        """A resting order from a POST body, or `_Refused` with Alpaca's answer (caller holds `_state`)."""
        client_order_id = body.get("client_order_id") or str(uuid.uuid4())
        if not isinstance(client_order_id, str) or len(client_order_id) > CLIENT_ORDER_ID_MAX_LENGTH:
            raise _Refused(alpaca_error(422, CODE_INVALID, "client_order_id must be no more than 48 characters"))
        if client_order_id in self._order_ids and not self.accept_repeated_client_order_ids:
            raise _Refused(alpaca_error(422, CODE_INVALID, "client_order_id must be unique"))
        symbol, side, order_type, tif = (body.get(key) for key in ("symbol", "side", "type", "time_in_force"))
        if not isinstance(symbol, str) or not symbol:
            raise _Refused(alpaca_error(422, CODE_INVALID, "symbol is required"))
        if side not in ("buy", "sell"):
            raise _Refused(alpaca_error(422, CODE_INVALID, f"invalid side: {side}"))
        if order_type not in ("market", "limit"):
            raise _Refused(alpaca_error(422, CODE_INVALID, f"the fake takes market and limit orders, got {order_type}"))
        if tif not in ("day", "gtc"):
            raise _Refused(alpaca_error(422, CODE_INVALID, f"the fake takes day and gtc orders, got {tif}"))
        qty, notional = _order_amount(body)
        limit_price = _limit_price(body, order_type)
        asset = self._assets.get(symbol)
        if asset is None or asset.status != "active":
            raise _Refused(alpaca_error(422, CODE_INVALID, f'could not find asset "{symbol}"'))
        if not asset.tradable:
            raise _Refused(alpaca_error(422, CODE_INVALID, f"asset {symbol} is not tradable"))
        fractional = notional is not None or qty != qty.to_integral_value()
        if fractional:
            _check_fractional(asset, order_type, tif, body)
        if self.trading_blocked:
            raise _Refused(alpaca_error(403, CODE_FORBIDDEN, "account is not allowed to trade"))
        now = datetime.now(UTC)
        order = FakeOrder(
            id=str(uuid.uuid4()),
            client_order_id=client_order_id,
            symbol=symbol,
            asset_id=asset.id,
            side=side,
            type=order_type,
            time_in_force=tif,
            qty=qty,
            notional=notional,
            limit_price=limit_price,
            status="new" if self._clock_open else "accepted",
            created_at=now,
            updated_at=now,
        )
        if side == "sell":
            self._check_sellable(order, asset)
        else:
            self._check_buying_power(order, asset)
        return order

    def _check_sellable(self, order: FakeOrder, asset: FakeAsset) -> None:
        """403 like Alpaca's when the position, less shares held by open sells, is too small (no shorts)."""
        requested = order.remaining_qty(asset.price)
        position = self._positions.get(order.symbol)
        existing = position.qty if position is not None and position.qty > 0 else Decimal(0)
        held = self._held_for_sells(order.symbol)
        available = existing - held
        if requested > available:
            raise _Refused(
                alpaca_error(
                    403,
                    CODE_FORBIDDEN,
                    f"insufficient qty available for order (requested: {requested}, available: {available})",
                    available=_text(available),
                    existing_qty=_text(existing),
                    held_for_orders=_text(held),
                    symbol=order.symbol,
                )
            )

    def _check_buying_power(self, order: FakeOrder, asset: FakeAsset) -> None:
        cost = self._reserved(order, asset)
        buying_power = self._buying_power()
        if cost > buying_power:
            raise _Refused(
                alpaca_error(
                    403,
                    CODE_FORBIDDEN,
                    "insufficient buying power",
                    buying_power=_text(buying_power),
                    cost_basis=_text(cost),
                )
            )

    def _reserved(self, order: FakeOrder, asset: FakeAsset) -> Decimal:
        """USD an open buy holds back from buying power: its unfilled part at the limit (or current) price."""
        if order.notional is not None:
            return order.notional - order.filled_value
        assert order.qty is not None
        return (order.qty - order.filled_qty) * (order.limit_price or asset.price)

    def _buying_power(self) -> Decimal:
        """Cash less what open buy orders hold back, never negative, USD."""
        held = sum(
            (self._reserved(o, self._assets[o.symbol]) for o in self._orders.values() if o.open and o.side == "buy"),
            Decimal(0),
        )
        return max(Decimal(0), self._cash - held)

    def _held_for_sells(self, symbol: str) -> Decimal:
        """Shares of `symbol` that open sell orders have yet to sell."""
        price = self._assets[symbol].price
        return sum(
            (
                o.remaining_qty(price)
                for o in self._orders.values()
                if o.open and o.side == "sell" and o.symbol == symbol
            ),
            Decimal(0),
        )

    def _claim_script(self, order: FakeOrder) -> list[Step] | None:
        """The script for a new order: by its client order id, else the next one queued for it."""
        if order.client_order_id in self._scripts_by_client_id:
            return self._scripts_by_client_id.pop(order.client_order_id)
        for index, (symbol, steps) in enumerate(self._next_scripts):
            if symbol is None or symbol == order.symbol:
                del self._next_scripts[index]
                return steps
        return None

    def _marketable(self, order: FakeOrder) -> bool:
        """Market orders always; limit orders when the price is at or through the limit."""
        if order.limit_price is None:
            return True
        price = self._assets[order.symbol].price
        return price <= order.limit_price if order.side == "buy" else price >= order.limit_price

    def _apply_step(self, order: FakeOrder, step: Step) -> None:
        """Runs one scripted event on an order (caller holds `_state`); finished orders do not change."""
        if not order.open or step.action == "hold":
            return
        now = datetime.now(UTC)
        if step.action == "fill":
            self._fill(order, step.qty, step.price)
        elif step.action == "cancel":
            order.status, order.canceled_at = "canceled", now
        elif step.action == "expire":
            order.status, order.expired_at = "expired", now
        elif step.action == "reject":
            order.status, order.failed_at = "rejected", now
        elif step.action == "status":
            order.status = step.word
        else:
            raise ValueError(f"unknown step {step.action!r}")
        order.updated_at = now

    def _fill(self, order: FakeOrder, qty: Decimal | None, price: Decimal | None) -> None:
        """Executes up to `qty` shares (None: the rest) at `price` (None: the symbol's price), moving
        cash and the position."""
        asset = self._assets[order.symbol]
        fill_price = asset.price if price is None else price
        remaining = order.remaining_qty(fill_price)
        shares = remaining if qty is None else min(qty, remaining)
        if shares <= 0:
            return
        value = shares * fill_price
        position = self._positions.get(order.symbol)
        if order.side == "buy":
            self._cash -= value
            if position is None:
                self._positions[order.symbol] = FakePosition(order.symbol, shares, fill_price)
            else:
                held = position.qty + shares
                if position.qty > 0:
                    position.avg_entry_price = (position.qty * position.avg_entry_price + value) / held
                position.qty = held
        else:
            self._cash += value
            if position is None:
                self._positions[order.symbol] = FakePosition(order.symbol, -shares, fill_price)
            else:
                position.qty -= shares
                if position.qty == 0:
                    del self._positions[order.symbol]
        order.filled_qty += shares
        order.filled_value += value
        if order.remaining_qty(fill_price) <= 0:
            order.status, order.filled_at = "filled", datetime.now(UTC)
        else:
            order.status = "partially_filled"

    def _list_orders(self, request: RecordedRequest, _match: re.Match[str]) -> FakeResponse:
        """`GET /v2/orders`: status open|closed|all (default open), symbols, side, direction, limit
        (default 50, at most 500), `after` and `until` (submitted strictly after / at or before, RFC
        3339). `nested` is ignored."""
        query = request.query
        status = query.get("status", "open")
        if status not in ("open", "closed", "all"):
            return alpaca_error(422, CODE_INVALID, f"invalid status: {status}")
        try:
            limit = int(query.get("limit") or ORDERS_DEFAULT_LIMIT)
        except ValueError:
            return alpaca_error(422, CODE_INVALID, "invalid limit")
        if not 1 <= limit <= ORDERS_MAX_LIMIT:
            return alpaca_error(422, CODE_INVALID, f"limit must be between 1 and {ORDERS_MAX_LIMIT}")
        symbols = {s for s in query.get("symbols", "").split(",") if s}
        side = query.get("side")
        try:
            after, until = (_query_time(query.get(name)) for name in ("after", "until"))
        except ValueError:
            return alpaca_error(422, CODE_INVALID, "invalid after or until timestamp")
        with self._state:
            selected = [
                order
                for order in self._orders.values()
                if (status == "all" or order.open == (status == "open"))
                and (not symbols or order.symbol in symbols)
                and (side is None or order.side == side)
                and (after is None or order.created_at > after)
                and (until is None or order.created_at <= until)
            ]
            if query.get("direction", "desc") == "desc":
                selected.reverse()
            return FakeResponse(200, [order.to_json() for order in selected[:limit]])

    def _get_order_by_client_id(self, request: RecordedRequest, _match: re.Match[str]) -> FakeResponse:
        """`GET /v2/orders:by_client_order_id?client_order_id=...`: one poll of the order."""
        client_order_id = request.query.get("client_order_id")
        if not client_order_id:
            return alpaca_error(422, CODE_INVALID, "client_order_id is required")
        with self._state:
            order_id = self._order_ids.get(client_order_id)
            order = self._orders[order_id] if order_id is not None else None
            if order is not None and order.lookup_misses > 0:
                order.lookup_misses -= 1  # not visible to this lookup yet
                order = None
            if order is None:
                return alpaca_error(404, CODE_NOT_FOUND, f"order not found for {client_order_id}")
            return self._poll(order)

    def _get_order(self, _request: RecordedRequest, match: re.Match[str]) -> FakeResponse:
        """`GET /v2/orders/{id}`: one poll of the order."""
        with self._state:
            order = self._orders.get(match["order_id"])
            if order is None:
                return alpaca_error(404, CODE_NOT_FOUND, f"order not found for {match['order_id']}")
            return self._poll(order)

    def _poll(self, order: FakeOrder) -> FakeResponse:
        """Advances the order's script by one step, then answers the order (caller holds `_state`)."""
        order.polls += 1
        if order.steps:
            self._apply_step(order, order.steps.popleft())
        elif (
            not order.scripted
            and self.fill_after_polls
            and order.polls >= self.fill_after_polls
            and self._clock_open
            and self._marketable(order)
        ):
            self._apply_step(order, Step.fill())
        return FakeResponse(200, order.to_json())

    def _delete_order(self, _request: RecordedRequest, match: re.Match[str]) -> FakeResponse:
        """`DELETE /v2/orders/{id}`: 204 and canceled at once; 422 for a finished order, like Alpaca."""
        with self._state:
            order = self._orders.get(match["order_id"])
            if order is None:
                return alpaca_error(404, CODE_NOT_FOUND, f"order not found for {match['order_id']}")
            if not order.open:
                return alpaca_error(422, CODE_NOT_CANCELABLE, f'order is already in "{order.status}" state')
            self._apply_step(order, Step.cancel())
        return FakeResponse(204)


@pytest.fixture
def fake_alpaca_server() -> Iterator[FakeAlpacaServer]:
    """A started FakeAlpacaServer (credentials "fake-key-id" / "fake-secret-key"), stopped afterwards."""
    with FakeAlpacaServer() as server:
        yield server


# --- order validation ----------------------------------------------------------


def _order_amount(body: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    """(qty, notional) from a POST body: exactly one, positive, at most 9 decimals; notional >= $1."""
    has_qty, has_notional = body.get("qty") is not None, body.get("notional") is not None
    if has_qty == has_notional:
        raise _Refused(alpaca_error(422, CODE_INVALID, "exactly one of qty or notional is required"))
    name = "qty" if has_qty else "notional"
    value = _wire_decimal(body[name], name)
    if value <= 0:
        raise _Refused(alpaca_error(422, CODE_INVALID, f"{name} must be > 0"))
    if value != value.quantize(QTY_QUANTUM, rounding=ROUND_DOWN):
        raise _Refused(alpaca_error(422, CODE_INVALID, f"{name} must have at most 9 decimal places"))
    if name == "notional" and value < MIN_NOTIONAL:
        raise _Refused(alpaca_error(422, CODE_INVALID, "notional must be >= 1"))
    return (value, None) if has_qty else (None, value)


def _limit_price(body: Mapping[str, Any], order_type: str) -> Decimal | None:
    """The limit price: required for limit orders, refused for market ones, no sub-penny increments
    (2 decimals at $1 and above, 4 below)."""
    raw = body.get("limit_price")
    if order_type == "market":
        if raw is not None:
            raise _Refused(alpaca_error(422, CODE_INVALID, "limit_price is only for limit orders"))
        return None
    if raw is None:
        raise _Refused(alpaca_error(422, CODE_INVALID, "limit_price is required for limit orders"))
    price = _wire_decimal(raw, "limit_price")
    places = Decimal("0.01") if price >= 1 else Decimal("0.0001")
    if price <= 0 or price != price.quantize(places):
        raise _Refused(alpaca_error(422, CODE_INVALID, "sub-penny increment does not fulfill minimum pricing criteria"))
    return price


def _check_fractional(asset: FakeAsset, order_type: str, tif: str, body: Mapping[str, Any]) -> None:
    """Fractional and notional orders: fractionable asset, market, DAY, regular hours."""
    if not asset.fractionable:
        raise _Refused(alpaca_error(422, CODE_INVALID, f"asset {asset.symbol} is not fractionable"))
    if order_type != "market":
        raise _Refused(alpaca_error(422, CODE_INVALID, "fractional orders must be market orders"))
    if tif != "day":
        raise _Refused(alpaca_error(422, CODE_INVALID, "fractional orders must be DAY orders"))
    if body.get("extended_hours"):
        raise _Refused(alpaca_error(422, CODE_INVALID, "fractional orders are not supported in extended hours"))


def _wire_decimal(value: Any, name: str) -> Decimal:
    """A decimal from the wire: Alpaca takes strings (and numbers); anything unparsable is 422."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Refused(alpaca_error(422, CODE_INVALID, f"invalid {name}"))
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise _Refused(alpaca_error(422, CODE_INVALID, f"invalid {name}")) from None
    if not result.is_finite():
        raise _Refused(alpaca_error(422, CODE_INVALID, f"invalid {name}"))
    return result


# --- formatting and HTTP plumbing ------------------------------------------------


def _amount(value: Amount, name: str) -> Decimal:
    """A test-supplied amount as an exact Decimal; floats are refused (they are not exact)."""
    if isinstance(value, float | bool) or not isinstance(value, Decimal | str | int):
        raise TypeError(f"{name}: pass a Decimal, str or int, got {value!r}")
    return Decimal(str(value))


def _text(value: Decimal | None) -> str | None:
    """A decimal as Alpaca's JSON string (plain notation, never an exponent)."""
    return None if value is None else format(value, "f")


def _query_time(text: str | None) -> datetime | None:
    """An RFC 3339 query parameter ("Z" or an offset; a date alone is midnight UTC); ValueError if bad."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _rfc3339(value: datetime | None) -> str | None:
    """UTC with microseconds and a Z, like Alpaca's order timestamps."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_york_stamp(value: datetime) -> str:
    """New York time with nanoseconds and an offset, like Alpaca's clock: 2024-01-02T09:30:00.000000000-05:00."""
    stamp = value.astimezone(NEW_YORK).isoformat(timespec="microseconds")
    return f"{stamp[:-6]}000{stamp[-6:]}"


def _parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp or a YYYY-MM-DD date (as UTC midnight), tz-aware."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _encode_token(offset: int) -> str:
    """An opaque page token, like Alpaca's base64 ones."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_token(token: str) -> int:
    if not token:
        return 0
    prefix, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
    if prefix != "offset" or not offset.isdigit():
        raise ValueError(f"page_token {token!r}")
    return int(offset)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is expected in timeout tests; nothing to report.
        pass


def _make_handler_class(server: FakeAlpacaServer) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to `server`'s state."""

    class _Handler(BaseHTTPRequestHandler):
        def _dispatch(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = RecordedRequest(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                headers=dict(self.headers.items()),
                body=self.rfile.read(length) if length else b"",
            )
            response = server.handle(request)
            if isinstance(response.body, bytes):
                payload, content_type = response.body, "text/html"
            else:
                payload = b"" if response.body is None else json.dumps(response.body).encode()
                content_type = "application/json"
            try:
                self.send_response(response.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                # The client gave up (timeout) before the answer was ready.
                pass

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return _Handler
