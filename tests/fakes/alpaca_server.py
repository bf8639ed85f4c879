"""A fake Alpaca HTTP API on 127.0.0.1 that the real alpaca-py clients can talk to.

Point a client at it with `url_override=server.url`. It speaks the wire format
alpaca-py parses (JSON bodies, `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY`
headers, `{"message": ...}` error bodies) so tests exercise the SDK's own
request building, pagination and error handling.

Implemented today: market data `GET /v2/stocks/bars`. More endpoints (the
trading API) are added by registering handlers with `add_route`.

    with FakeAlpacaServer() as server:
        server.set_bars("SPY", [daily_bar(date(2024, 1, 2), 470.0)])
        server.fail_next(1, 500)      # the next request answers HTTP 500
        server.delay_s = 1.0          # every request waits 1 s before answering
        ... server.requests ...       # RecordedRequest log, oldest first
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock_time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest

NEW_YORK = ZoneInfo("America/New_York")
ADJUSTMENTS = ("raw", "split", "dividend", "all")
FEEDS = ("iex", "sip", "delayed_sip", "otc", "boats", "overnight")
#: Alpaca's own default and maximum page sizes for market-data endpoints.
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


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
    """What a route handler answers: an HTTP status and a JSON-serialisable body."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


#: A route handler: the request and the path's regex match -> the response.
Handler = Callable[[RecordedRequest, re.Match[str]], FakeResponse]


def error(status: int, message: str) -> FakeResponse:
    """An error response in Alpaca's shape: `{"message": ...}`."""
    return FakeResponse(status, {"message": message})


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


class FakeAlpacaServer:
    """An in-memory Alpaca API on an ephemeral 127.0.0.1 port, served from a background thread.

    Attributes tests may set: `delay_s` (seconds each request waits before
    answering), `page_size` (server-side cap on bars per page, to force
    pagination), `permitted_feeds` (feeds the fake subscription covers; others
    answer 403 like Alpaca does for SIP without a subscription).
    """

    def __init__(
        self, *, api_key: str = "fake-key-id", secret_key: str = "fake-secret-key", page_size: int = MAX_LIMIT
    ):
        self.api_key = api_key
        self.secret_key = secret_key
        self.page_size = page_size
        self.delay_s = 0.0
        self.permitted_feeds: set[str] = set(FEEDS)
        self.requests: list[RecordedRequest] = []
        self._bars: dict[str, dict[str, list[dict[str, Any]]]] = {adjustment: {} for adjustment in ADJUSTMENTS}
        self._failures: deque[FakeResponse] = deque()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_route("GET", r"/v2/stocks/bars", self._stock_bars)

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
        """Stops serving; requests still sleeping in `delay_s` are released first."""
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

    # --- test controls ---------------------------------------------------------

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

    def add_route(self, method: str, pattern: str, handler: Handler) -> None:
        """Serves `method` requests whose path fully matches the regex `pattern` with `handler`."""
        self._routes.append((method.upper(), re.compile(pattern), handler))

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests for one path, oldest first."""
        with self._lock:
            return [request for request in self.requests if request.path == path]

    # --- dispatch --------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> FakeResponse:
        """Answers one request: delay, injected failure, authentication, then the route."""
        with self._lock:
            self.requests.append(request)
        if self.delay_s > 0:
            self._stopping.wait(self.delay_s)
        with self._lock:
            injected = self._failures.popleft() if self._failures else None
        if injected is not None:
            return injected
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


@pytest.fixture
def fake_alpaca_server() -> Iterator[FakeAlpacaServer]:
    """A started FakeAlpacaServer (credentials "fake-key-id" / "fake-secret-key"), stopped afterwards."""
    with FakeAlpacaServer() as server:
        yield server


# --- HTTP plumbing ---------------------------------------------------------------


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
            payload = b"" if response.body is None else json.dumps(response.body).encode()
            try:
                self.send_response(response.status)
                self.send_header("Content-Type", "application/json")
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
