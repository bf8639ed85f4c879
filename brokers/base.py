"""The one interface every broker adapter implements, the project's own broker dataclasses, and
`BrokerError`.

Adapters (paper, alpaca, ib) translate between a broker's API and these types; nothing outside
`brokers/adapters/` sees an SDK object. Money and quantities are `Decimal` (USD, shares);
timestamps are timezone-aware.

Failures are `BrokerError` with one of two flags that tell the caller what to do:

- ``permanent``: the broker answered and refused (insufficient buying power, unknown symbol,
  fractional quantity on a non-fractionable asset). Retrying the same request is pointless.
- ``unknown``: the request may or may not have taken effect (timeout, HTTP 5xx, a duplicate
  client order id, a dropped connection). For an order the caller must look it up by its client
  order id before doing anything else; it never resubmits under a new id.

Neither flag: the request changed nothing (a read failed transiently, or the broker refused a
write before looking at it, e.g. HTTP 429 on every attempt); it may be retried.

Exactly once does not rely on a broker refusing a repeated client order id: an order whose
submission may have reached the broker is sent again only after the broker reported it absent
twice, through `Broker.get_order` and then, `Broker.settlement_delay_s` later, through the
independent listing `Broker.orders_since`. Brokers that do refuse a repeated id get it from
`Broker.reserve_submission_id` (the client order id itself, or IB's order id).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

logger = logging.getLogger(__name__)

# Client order ids are at most this long (Alpaca's limit; IB's orderRef takes more).
CLIENT_ORDER_ID_MAX_LENGTH = 48


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"


class OrderState(StrEnum):
    """An order's state as the project tracks it (brokers' own statuses map onto these).

    ``planned``: written, not sent. ``submitting``: a submit request is (or was) in flight.
    ``unknown``: the submit's outcome is not known; resolved by a lookup. ``new``: accepted,
    resting. The last four are terminal.
    """

    PLANNED = "planned"
    SUBMITTING = "submitting"
    UNKNOWN = "unknown"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED})
#: States the broker reports (what `BrokerOrder.state` may hold).
BROKER_STATES = frozenset(
    {
        OrderState.NEW,
        OrderState.PARTIALLY_FILLED,
        OrderState.FILLED,
        OrderState.CANCELED,
        OrderState.REJECTED,
        OrderState.EXPIRED,
    }
)


class BrokerError(Exception):
    """A broker call failed; see the module docstring for ``permanent`` and ``unknown``."""

    def __init__(self, message: str, *, permanent: bool = False, unknown: bool = False, status_code: int | None = None):
        if permanent and unknown:
            raise ValueError("a broker error is permanent or unknown, not both")
        super().__init__(message)
        self.permanent = permanent
        self.unknown = unknown
        self.status_code = status_code


@dataclass(frozen=True)
class AccountInfo:
    """Cash, buying power and equity (cash + positions at market), USD."""

    cash_usd: Decimal
    buying_power_usd: Decimal
    equity_usd: Decimal
    currency: str = "USD"
    trading_blocked: bool = False


@dataclass(frozen=True)
class Position:
    """A position at the broker: shares (> 0; no shorts are ever opened) and prices in USD."""

    symbol: str
    quantity: Decimal
    avg_entry_price_usd: Decimal | None = None
    market_value_usd: Decimal | None = None


@dataclass(frozen=True)
class Clock:
    """The broker's view of the market: open now, and the next open and close."""

    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


@dataclass(frozen=True)
class Asset:
    """What the broker says about a symbol."""

    symbol: str
    tradable: bool
    fractionable: bool


@dataclass(frozen=True)
class AccountRead:
    """One account as a sync reads it: its positions and cash, and the broker's answers about the
    symbols it was asked about (empty when that lookup failed: the answers stored before stand)."""

    positions: list[Position]
    account: AccountInfo
    assets: Mapping[str, Asset | BrokerError]


#: Which symbols to ask an account's broker about, given its positions (`Broker.accounts_read`).
AssetsAsked = Callable[[int, list[Position]], Collection[str]]


@dataclass(frozen=True)
class OrderRequest:
    """One order to send. Exactly one of ``quantity`` (shares) and ``notional_usd`` is set.

    ``limit_price_usd`` is required for limit orders (the price collar) and forbidden for market
    orders. ``client_order_id`` is the order's name: at most 48 characters, unique for the
    account's life.
    """

    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal | None = None
    notional_usd: Decimal | None = None
    order_type: OrderType = OrderType.MARKET
    limit_price_usd: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    #: The id the broker refuses to take twice, reserved (`Broker.reserve_submission_id`) and stored
    #: before the first send; every resend of this order carries the same one.
    submission_id: str = ""

    def __post_init__(self) -> None:
        if not self.client_order_id or len(self.client_order_id) > CLIENT_ORDER_ID_MAX_LENGTH:
            raise ValueError(
                f"client_order_id: 1 to {CLIENT_ORDER_ID_MAX_LENGTH} characters, got {self.client_order_id!r}"
            )
        if (self.quantity is None) == (self.notional_usd is None):
            raise ValueError("quantity/notional_usd: exactly one must be set")
        amount = self.quantity if self.quantity is not None else self.notional_usd
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
            raise ValueError(f"quantity/notional_usd: a positive Decimal, got {amount!r}")
        if self.order_type == OrderType.LIMIT:
            price = self.limit_price_usd
            if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
                raise ValueError(f"limit_price_usd: a positive Decimal for a limit order, got {price!r}")
        elif self.limit_price_usd is not None:
            raise ValueError("limit_price_usd: only for limit orders")

    @property
    def fractional(self) -> bool:
        """True for notional orders and quantities that are not whole shares."""
        return self.notional_usd is not None or self.quantity != self.quantity.to_integral_value()


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the broker reports it, mapped onto the project's states."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    side: Side
    state: OrderState
    quantity: Decimal | None
    notional_usd: Decimal | None
    filled_quantity: Decimal = Decimal(0)
    filled_avg_price_usd: Decimal | None = None
    submitted_at: datetime | None = None
    updated_at: datetime | None = None
    reject_reason: str = ""
    #: The broker's own status word ("pending_new", "done_for_day", ...), for the event log.
    broker_status: str = ""
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class AccountConfig:
    """What an adapter is built from: the account, its decrypted credentials and options.

    ``credentials``: Alpaca ``api_key`` / ``secret_key``; IB ``host`` / ``port`` / ``client_id``
    (the paper broker needs none). ``options``: the adapter's settings (`BROKER_OPTIONS[kind]`)
    merged with per-use ones (the paper broker's commission and slippage). ``live`` is True only
    when every live-trading gate passed; otherwise adapters talk to paper endpoints.
    """

    account_id: int
    kind: str
    live: bool = False
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    options: Mapping[str, object] = field(default_factory=dict)


class Broker(ABC):
    """One broker account. Adapters are created per use by `brokers.registry.broker_for` and
    closed afterwards (``with broker_for(account) as broker: ...``); ``__init__`` takes an
    `AccountConfig` and must not block on the network."""

    #: Registry name ("paper", "alpaca", "ib").
    kind: str = ""

    def __init__(self, config: AccountConfig):
        self.config = config

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - most adapters hold nothing to release
        """Release connections; the adapter is not used afterwards."""

    @property
    def follows_exchange_hours(self) -> bool:
        """False only for a simulation that trades at any hour (the paper broker's "always open"
        mode): execution then skips cross-checking the broker's clock with the NYSE calendar."""
        return True

    @abstractmethod
    def account(self) -> AccountInfo: ...

    @abstractmethod
    def positions(self) -> list[Position]: ...

    def positions_and_account(self) -> tuple[list[Position], AccountInfo]:
        """Positions and account read together, as a sync needs them; an adapter that can read
        both in one go (one settled, locked read of the paper account) overrides it."""
        return self.positions(), self.account()

    @classmethod
    def accounts_read(
        cls, configs: Sequence[AccountConfig], *, asked: AssetsAsked
    ) -> dict[int, AccountRead | BrokerError]:
        """Each account's positions and cash, and its answers about the symbols ``asked`` names,
        by account id (the error an account got instead): one adapter after the other. An adapter
        that can read many accounts together (the paper broker) overrides it."""
        found: dict[int, AccountRead | BrokerError] = {}
        for config in configs:
            try:
                with cls(config) as broker:
                    found[config.account_id] = broker.account_read(asked)
            except BrokerError as error:
                found[config.account_id] = error
        return found

    @classmethod
    def clocks(cls, configs: Sequence[AccountConfig]) -> dict[int, Clock | BrokerError]:
        """Each account's `clock` by account id (the error it got instead): one adapter after the
        other. An adapter that can answer many together (the paper broker) overrides it."""
        found: dict[int, Clock | BrokerError] = {}
        for config in configs:
            try:
                with cls(config) as broker:
                    found[config.account_id] = broker.clock()
            except BrokerError as error:
                found[config.account_id] = error
        return found

    def account_read(self, asked: AssetsAsked) -> AccountRead:
        """This account as `accounts_read` reads it. A failed asset lookup answers no assets."""
        positions, info = self.positions_and_account()
        symbols = sorted(asked(self.config.account_id, positions))
        try:
            assets = self.assets(symbols) if symbols else {}
        except BrokerError as error:
            logger.warning(
                "broker assets could not be read; their last answers stand",
                extra={"broker_account_id": self.config.account_id, "error": str(error)},
            )
            assets = {}
        return AccountRead(positions=positions, account=info, assets=assets)

    @abstractmethod
    def clock(self) -> Clock: ...

    @abstractmethod
    def asset(self, symbol: str) -> Asset:
        """Raises `BrokerError(permanent=True)` for a symbol the broker does not know."""

    def assets(self, symbols: Sequence[str]) -> dict[str, Asset | BrokerError]:
        """`asset` for each symbol: the asset, or the error that symbol got. An adapter that can
        look them up together (the paper broker: one query) overrides it."""
        found: dict[str, Asset | BrokerError] = {}
        for symbol in symbols:
            try:
                found[symbol] = self.asset(symbol)
            except BrokerError as error:
                found[symbol] = error
        return found

    @abstractmethod
    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """Send one order. A resubmission of a client order id the broker already has returns
        (or raises ``unknown`` for) that order; it never creates a second one."""

    #: How many orders one `submit_orders` call takes. Alpaca and IB take one order per request, so
    #: every order's answer is stored before the next is sent; the paper broker takes a whole side
    #: of a run in one transaction.
    max_orders_per_call: int = 1

    def submit_orders(self, requests: Sequence[OrderRequest]) -> list[BrokerOrder | BrokerError]:
        """`submit_order` for each request: its order, or the error that request got."""
        answers: list[BrokerOrder | BrokerError] = []
        for request in requests:
            try:
                answers.append(self.submit_order(request))
            except BrokerError as error:
                answers.append(error)
        return answers

    @abstractmethod
    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """The order with this client order id, or None when the broker has none."""

    @abstractmethod
    def orders_since(self, since: datetime) -> list[BrokerOrder]:
        """Every order of the account submitted at or after ``since``, open and closed, and orders
        known only by their fills: a listing independent of `get_order`'s lookup, the second
        witness before an order is declared absent."""

    #: Seconds after which an order the broker accepted shows in its lookups and listings: two
    #: "absent" answers this far apart confirm an order never arrived.
    settlement_delay_s: float = 0.0

    #: The longest one call to the broker can take, retries included, in seconds; an execution's
    #: lease must outlast it, so that no call is still on its way when another executor takes over.
    max_call_s: float = 0.0

    def reserve_submission_id(self, request: OrderRequest) -> str:
        """The id this broker refuses to accept twice for ``request``, stored before the first send.

        Brokers that refuse a repeated client order id (Alpaca, the paper broker) use it; one that
        does not (IB: its orderRef is free text) reserves an id of its own."""
        return request.client_order_id

    @abstractmethod
    def open_orders(self, symbols: Sequence[str] | None = None) -> list[BrokerOrder]: ...

    @abstractmethod
    def cancel_order(self, client_order_id: str) -> None:
        """Ask the broker to cancel; the order's final state comes from `get_order`."""
