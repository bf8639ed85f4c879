"""The built-in paper broker: a simulated cash account persisted in the database.

It behaves like a real broker so that execution is exercised the same way in the demo, in tests
and in production (the model: Django's in-memory mail backend):

- Market orders fill at the latest stored close, plus slippage (``slippage_bps``: buys pay
  more, sells get less), and pay ``commission_per_trade_usd`` per fill. Limit orders fill only
  at or through their limit, else rest until their day ends.
- NYSE hours (``PaperAccount.session_mode`` "exchange"): outside a session an order waits for
  the next one (``outside_hours`` "queue", filled on the first call after the open) or is
  refused ("reject"). Day orders left unfilled expire after their session. "always_open"
  accounts trade at any time (a simulation, for the demo).
- It refuses what a real broker refuses, synchronously and without creating an order:
  insufficient buying power (cash minus open buys), selling more than held (no shorts),
  unknown symbol or no price, fractional or notional orders on a non-fractionable instrument
  or other than market day orders, and a client order id it already has ("client order id must
  be unique": ``unknown``, as at Alpaca, so the caller looks the order up).

Every public method settles queued and expired orders first, inside one transaction that
locks the paper account, so concurrent callers see a consistent account.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from brokers.base import (
    AccountConfig,
    AccountInfo,
    AccountRead,
    Asset,
    AssetsAsked,
    Broker,
    BrokerError,
    BrokerOrder,
    Clock,
    OrderRequest,
    OrderState,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from brokers.models import PaperAccount, PaperOrder, PaperPosition
from marketdata import calendar
from marketdata.models import Instrument
from marketdata.selectors import latest_closes

NANO = Decimal("0.000000001")
CENT = Decimal("0.0001")
OPEN_STATES = (OrderState.NEW.value, OrderState.PARTIALLY_FILLED.value)


class PaperBroker(Broker):
    """Options: ``commission_per_trade_usd``, ``slippage_bps`` (Decimal-compatible),
    ``outside_hours`` ("queue" | "reject"), ``now`` (a callable returning an aware datetime;
    tests use it to move the clock)."""

    kind = "paper"
    # A batch is one transaction of this database: any number of orders, settled together.
    max_orders_per_call = 10_000

    def __init__(self, config: AccountConfig):
        super().__init__(config)
        options = config.options
        self.commission_usd = Decimal(str(options.get("commission_per_trade_usd", 0)))
        self.slippage_bps = Decimal(str(options.get("slippage_bps", 0)))
        self.outside_hours = str(options.get("outside_hours", "queue"))
        if self.commission_usd < 0 or self.slippage_bps < 0 or self.outside_hours not in ("queue", "reject"):
            raise BrokerError(
                "paper broker options: commission and slippage must be >= 0, outside_hours queue or reject",
                permanent=True,
            )
        self._now: Callable[[], datetime] = options.get("now") or timezone.now  # type: ignore[assignment]
        # One adapter serves one execution: the account's settings and the stored closes (which
        # only the nightly fetch changes) are read once, not on every call.
        self._session_mode: str | None = None
        self._close_cache: dict[tuple[date, str], tuple[date, float] | None] = {}
        self._instruments: dict[str, Instrument | None] = {}
        # Orders of the batch being submitted, not inserted yet; positions its fills moved, not stored yet.
        self._pending: list[PaperOrder] = []
        self._moved: dict[str, PaperPosition] = {}

    # -- reads ---------------------------------------------------------------------------------

    def account(self) -> AccountInfo:
        with self._transaction():
            paper = self._settled(positions=True)
            return self._account_of(paper, paper.held)

    def positions(self) -> list[Position]:
        with self._transaction():
            return self._positions_of(self._settled(positions=True).held)

    def positions_and_account(self) -> tuple[list[Position], AccountInfo]:
        with self._transaction():
            paper = self._settled(positions=True)
            return self._positions_of(paper.held), self._account_of(paper, paper.held)

    @classmethod
    def accounts_read(
        cls, configs: Sequence[AccountConfig], *, asked: AssetsAsked
    ) -> dict[int, AccountRead | BrokerError]:
        """The accounts read together: their rows locked in one statement, then their open orders,
        positions, instruments and closes in one query each. An account with open orders is read
        on its own afterwards, since reading settles them (orders queued for the open fill)."""
        with contextlib.ExitStack() as adapters_open:
            adapters = {config.account_id: adapters_open.enter_context(cls(config)) for config in configs}
            found: dict[int, AccountRead | BrokerError] = dict(cls._settled_accounts_read(adapters, asked))
        # Open orders to settle, or no paper account (its error): one account at a time.
        rest = [config for config in configs if config.account_id not in found]
        return {**found, **super().accounts_read(rest, asked=asked)}

    @classmethod
    def _settled_accounts_read(cls, adapters: Mapping[int, PaperBroker], asked: AssetsAsked) -> dict[int, AccountRead]:
        """The accounts without open orders, read under their locks, set-wise."""
        found = {}
        with transaction.atomic():
            locked = PaperAccount.objects.select_for_update().filter(account_id__in=list(adapters)).order_by("pk")
            papers = {paper.account_id: paper for paper in locked}
            unsettled = PaperOrder.objects.filter(paper_account__in=list(papers.values()), state__in=OPEN_STATES)
            waiting = set(unsettled.values_list("paper_account_id", flat=True))
            settled = {account: paper for account, paper in papers.items() if paper.pk not in waiting}
            held: dict[int, list[PaperPosition]] = {paper.pk: [] for paper in settled.values()}
            for position in PaperPosition.objects.filter(paper_account__in=list(settled.values())).order_by("symbol"):
                held[position.paper_account_id].append(position)
            symbols = {
                account: sorted(asked(account, [Position(p.symbol, p.quantity) for p in held[paper.pk]]))
                for account, paper in settled.items()
            }
            wanted = {s for account in settled for s in symbols[account]}
            wanted |= {p.symbol for positions in held.values() for p in positions}
            cls._reads_share([adapters[account] for account in settled], wanted)
            for account, paper in settled.items():
                adapter, positions = adapters[account], held[paper.pk]
                paper.open_orders = []
                found[account] = AccountRead(
                    positions=adapter._positions_of(positions),
                    account=adapter._account_of(paper, positions),
                    assets=adapter.assets(symbols[account]) if symbols[account] else {},
                )
        return found

    @classmethod
    def clocks(cls, configs: Sequence[AccountConfig]) -> dict[int, Clock | BrokerError]:
        """The accounts' clocks, their trading hours read in one query."""
        modes = dict(
            PaperAccount.objects.filter(account_id__in=[c.account_id for c in configs]).values_list(
                "account_id", "session_mode"
            )
        )
        found: dict[int, Clock | BrokerError] = {}
        with contextlib.ExitStack() as adapters_open:
            for config in configs:
                adapter = adapters_open.enter_context(cls(config))
                adapter._session_mode = modes.get(config.account_id)
                try:
                    found[config.account_id] = adapter.clock()
                except BrokerError as error:
                    found[config.account_id] = error
        return found

    @staticmethod
    def _reads_share(adapters: Sequence[PaperBroker], symbols: set[str]) -> None:
        """Read ``symbols``' instruments and closes once for all ``adapters`` (one query each per
        trading day the adapters' clocks are on), into each one's caches."""
        if not adapters or not symbols:
            return
        instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=symbols)}
        days: dict[date, list[PaperBroker]] = {}
        for adapter in adapters:
            days.setdefault(adapter._today(adapter._now()), []).append(adapter)
        for today, group in days.items():
            closes = latest_closes(symbols=sorted(symbols), on_or_before=today)
            for adapter in group:
                adapter._close_cache.update({(today, symbol): closes.get(symbol) for symbol in symbols})
                adapter._instruments.update({symbol: instruments.get(symbol) for symbol in symbols})

    def _account_of(self, paper: PaperAccount, positions: list[PaperPosition]) -> AccountInfo:
        closes = self._closes([p.symbol for p in positions])
        value = sum(
            (
                p.quantity * Decimal(str(closes[p.symbol][1] if p.symbol in closes else p.avg_entry_price_usd))
                for p in positions
            ),
            Decimal(0),
        )
        buying_power = paper.cash_usd - self._reserved_cash(paper)
        return AccountInfo(
            cash_usd=paper.cash_usd,
            buying_power_usd=max(buying_power, Decimal(0)),
            equity_usd=(paper.cash_usd + value).quantize(CENT),
        )

    def _positions_of(self, rows: list[PaperPosition]) -> list[Position]:
        closes = self._closes([p.symbol for p in rows])
        return [
            Position(
                symbol=p.symbol,
                quantity=p.quantity,
                avg_entry_price_usd=p.avg_entry_price_usd,
                market_value_usd=(p.quantity * Decimal(str(closes[p.symbol][1]))).quantize(CENT)
                if p.symbol in closes
                else None,
            )
            for p in rows
        ]

    def clock(self) -> Clock:
        now = self._now()
        is_open, next_open, next_close = self._market(now)
        return Clock(timestamp=now, is_open=is_open, next_open=next_open, next_close=next_close)

    @property
    def follows_exchange_hours(self) -> bool:
        return self._mode() == PaperAccount.SessionMode.EXCHANGE

    def asset(self, symbol: str) -> Asset:
        found = self.assets([symbol])[symbol]
        if isinstance(found, BrokerError):
            raise found
        return found

    def assets(self, symbols: Sequence[str]) -> dict[str, Asset | BrokerError]:
        instruments = self._instruments_for(symbols)
        closes = self._closes(list(instruments))
        return {
            symbol: Asset(
                symbol=instrument.symbol, tradable=instrument.symbol in closes, fractionable=instrument.fractionable
            )
            if (instrument := instruments.get(symbol.upper())) is not None
            else BrokerError(f"asset {symbol} not found", permanent=True, status_code=404)
            for symbol in symbols
        }

    def _instruments_for(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        """Instrument rows by symbol, read once per adapter (like the closes: one adapter serves one
        execution, and what an instrument is does not change within it)."""
        wanted = {s.upper() for s in symbols}
        missing = wanted - self._instruments.keys()
        if missing:
            found = {i.symbol: i for i in Instrument.objects.filter(symbol__in=missing)}
            self._instruments.update({symbol: found.get(symbol) for symbol in missing})
        return {s: instrument for s in wanted if (instrument := self._instruments[s]) is not None}

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        with self._transaction():
            paper = self._settled()
            order = paper.orders.filter(client_order_id=client_order_id).first()
            return None if order is None else _as_broker_order(order)

    def orders_since(self, since: datetime) -> list[BrokerOrder]:
        with self._transaction():
            paper = self._settled()
            return [_as_broker_order(o) for o in paper.orders.filter(submitted_at__gte=since).order_by("id")]

    def open_orders(self, symbols: Sequence[str] | None = None) -> list[BrokerOrder]:
        with self._transaction():
            paper = self._settled()
            orders = paper.orders.filter(state__in=OPEN_STATES)
            if symbols:
                orders = orders.filter(symbol__in=[s.upper() for s in symbols])
            return [_as_broker_order(o) for o in orders]

    # -- writes --------------------------------------------------------------------------------

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        answer = self.submit_orders([request])[0]
        if isinstance(answer, BrokerError):
            raise answer
        return answer

    def submit_orders(self, requests: Sequence[OrderRequest]) -> list[BrokerOrder | BrokerError]:
        """Every request in one transaction holding the account's lock, each answered on its own
        as `submit_order` would: a refused request creates nothing and stops none of the others."""
        self._pending = []
        try:
            with self._transaction():
                ids = [r.client_order_id for r in requests]
                paper = self._settled(client_order_ids=ids, positions=True)
                taken = paper.taken  # ids it already has: a resend after a lost answer
                positions = {p.symbol: p for p in paper.held}
                cash_before = paper.cash_usd
                answers: list[PaperOrder | BrokerError] = []
                for request in requests:
                    try:
                        answers.append(self._submit(paper, request, taken, positions))
                    except BrokerError as error:
                        answers.append(error)
                self._insert_pending()
                self._store_positions()
                if paper.cash_usd != cash_before:
                    paper.save(update_fields=["cash_usd", "updated_at"])
                return [a if isinstance(a, BrokerError) else _as_broker_order(a) for a in answers]
        except IntegrityError as error:
            # Nothing of the batch was applied; the caller looks each order up before any resend.
            refused = BrokerError(f"the paper account refused the orders: {error}", unknown=True, status_code=422)
            return [refused for _ in requests]
        finally:
            # Never carried into a later call (a failed batch inserted and stored nothing).
            self._pending, self._moved = [], {}

    def _submit(
        self, paper: PaperAccount, request: OrderRequest, taken: set[str], positions: dict[str, PaperPosition]
    ) -> PaperOrder:
        """One request of a batch: the new order, inserted with the others at the batch's end."""
        if request.client_order_id in taken:
            # Like Alpaca: refuse, and let the caller look the order up (the first one stands).
            raise BrokerError("client order id must be unique", unknown=True, status_code=422)
        symbol = request.symbol.upper()
        self._check_request(request, symbol)
        now = self._now()
        is_open, next_open, _ = self._market(now)
        if not is_open and self.outside_hours == "reject":
            raise BrokerError(
                f"market is closed; next open {next_open.isoformat()} (this paper account rejects orders "
                "outside market hours)",
                permanent=True,
                status_code=403,
            )
        session = self._session_for(now, is_open, next_open)
        closes = self._closes([symbol])
        if symbol not in closes:
            raise BrokerError(
                f"no price for {symbol}: the paper broker fills at the latest stored close", permanent=True
            )
        self._check_funds(paper, request, symbol, Decimal(str(closes[symbol][1])), positions)
        order = PaperOrder(
            paper_account=paper,
            broker_order_id=str(uuid.uuid4()),
            client_order_id=request.client_order_id,
            symbol=symbol,
            side=request.side.value,
            quantity=request.quantity,
            notional_usd=request.notional_usd,
            order_type=request.order_type.value,
            limit_price_usd=request.limit_price_usd,
            time_in_force=request.time_in_force.value,
            state=OrderState.NEW.value,
            session_date=session,
            submitted_at=now,
        )
        if is_open:
            self._try_fill(paper, order, closes[symbol][1], positions, save=False)
        self._pending.append(order)
        if order.state in OPEN_STATES:
            paper.open_orders.append(order)
        taken.add(order.client_order_id)
        return order

    def _insert_pending(self) -> None:
        """Insert the batch's new orders (one INSERT; their timestamps are set by it)."""
        if self._pending:
            PaperOrder.objects.bulk_create(self._pending)
            self._pending = []

    def _store_positions(self) -> None:
        """Store the positions the fills moved: one DELETE, one UPDATE and one INSERT at most."""
        moved, self._moved = list(self._moved.values()), {}
        sold_out = [p for p in moved if p.quantity == 0 and p.pk is not None]
        if sold_out:
            PaperPosition.objects.filter(pk__in=[p.pk for p in sold_out]).delete()
            for position in sold_out:
                position.pk = None  # gone: were it bought again later, it is a new row
        kept = [p for p in moved if p.quantity != 0 and p.pk is not None]
        PaperPosition.objects.bulk_update(kept, ["quantity", "avg_entry_price_usd"])
        PaperPosition.objects.bulk_create([p for p in moved if p.quantity != 0 and p.pk is None])

    def cancel_order(self, client_order_id: str) -> None:
        with self._transaction():
            paper = self._settled()
            order = paper.orders.filter(client_order_id=client_order_id).first()
            if order is None:
                raise BrokerError(f"order {client_order_id} not found", permanent=True, status_code=404)
            if order.state in OPEN_STATES:
                order.state = OrderState.CANCELED.value
                order.save(update_fields=["state", "updated_at"])

    # -- simulation ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """A call's transaction: its own, or part of the caller's without a savepoint there (two
        statements more per call). An exception leaving a transaction block without a savepoint
        dooms the caller's whole transaction, so a refusal (`BrokerError`, always raised before
        anything is written) is raised once the block is left."""
        refused = None
        with transaction.atomic(savepoint=False):
            try:
                yield
            except BrokerError as error:
                refused = error
        if refused is not None:
            raise refused

    def _mode(self) -> str:
        if self._session_mode is None:
            mode = PaperAccount.objects.filter(account_id=self.config.account_id).values_list("session_mode", flat=True)
            self._session_mode = mode.first() or self._missing()
        return self._session_mode

    def _missing(self):
        raise BrokerError(
            f"broker account {self.config.account_id} has no paper account (create it with the paper kind)",
            permanent=True,
        )

    def _settled(self, *, client_order_ids: Sequence[str] = (), positions: bool = False) -> PaperAccount:
        """The locked paper account after filling due queued orders and expiring stale day orders;
        ``open_orders``: those still open; ``taken``: the ones of ``client_order_ids`` it has
        orders under; with ``positions``, ``held``: its positions, as they are after settling."""
        self._moved = {}  # what a call that failed moved was rolled back with it
        paper = PaperAccount.objects.select_for_update().filter(account_id=self.config.account_id).first()
        if paper is None:
            self._missing()
        self._session_mode = paper.session_mode
        open_orders = list(paper.orders.filter(state__in=OPEN_STATES).order_by("id"))
        if open_orders:
            self._settle(paper, open_orders)
        # What is still open holds back cash and shares; this call's open orders join it.
        paper.open_orders = [order for order in open_orders if order.state in OPEN_STATES]
        taken = paper.orders.filter(client_order_id__in=client_order_ids) if client_order_ids else None
        paper.taken = set() if taken is None else set(taken.values_list("client_order_id", flat=True))
        paper.held = list(paper.positions.order_by("symbol")) if positions else None
        return paper

    def _settle(self, paper: PaperAccount, open_orders: list[PaperOrder]) -> None:
        """Fill the due ``open_orders`` and expire the stale ones."""
        now = self._now()
        is_open, _, _ = self._market(now)
        today = self._today(now)
        positions: dict[str, PaperPosition] | None = None
        cash_before = paper.cash_usd
        for order in open_orders:
            if (
                order.time_in_force == TimeInForce.DAY
                and order.session_date < today
                and paper.session_mode == "exchange"
            ):
                order.state = OrderState.EXPIRED.value
                order.save(update_fields=["state", "updated_at"])
            elif is_open and order.session_date <= today:
                closes = self._closes([order.symbol])
                if order.symbol in closes:
                    if positions is None:
                        positions = {p.symbol: p for p in paper.positions.all()}
                    self._try_fill(paper, order, closes[order.symbol][1], positions)
        self._store_positions()
        if paper.cash_usd != cash_before:
            paper.save(update_fields=["cash_usd", "updated_at"])

    def _market(self, now: datetime) -> tuple[bool, datetime, datetime]:
        if self._mode() == PaperAccount.SessionMode.ALWAYS_OPEN:
            _, next_open, next_close = calendar.market_clock(now)
            return True, next_open, next_close
        return calendar.market_clock(now)

    def _today(self, now: datetime) -> date:
        return timezone.localtime(now, calendar.nyse().tz).date()

    def _session_for(self, now: datetime, is_open: bool, next_open: datetime) -> date:
        """The session an order placed at ``now`` trades in: today's when open, else the next."""
        if is_open:
            return self._today(now)
        return self._today(next_open)

    def _closes(self, symbols: Sequence[str]) -> dict[str, tuple[date, float]]:
        today = self._today(self._now())
        wanted = {s.upper() for s in symbols}
        missing = [s for s in wanted if (today, s) not in self._close_cache]
        if missing:
            found = latest_closes(symbols=missing, on_or_before=today)
            for symbol in missing:
                self._close_cache[(today, symbol)] = found.get(symbol)
        return {s: close for s in wanted if (close := self._close_cache[(today, s)]) is not None}

    def _check_request(self, request: OrderRequest, symbol: str) -> None:
        instrument = self._instruments_for([symbol]).get(symbol)
        if instrument is None:
            raise BrokerError(f"asset {symbol} not found", permanent=True, status_code=422)
        if request.fractional:
            if not instrument.fractionable:
                raise BrokerError(f"fractional orders are not supported for {symbol}", permanent=True, status_code=422)
            if request.order_type != OrderType.MARKET or request.time_in_force != TimeInForce.DAY:
                raise BrokerError(
                    "fractional and notional orders must be market orders with time in force day",
                    permanent=True,
                    status_code=422,
                )

    def _fill_price(self, side: str, close: float) -> Decimal:
        slip = self.slippage_bps / Decimal(10_000)
        factor = 1 + slip if side == Side.BUY else 1 - slip
        return (Decimal(str(close)) * factor).quantize(Decimal("0.000001"))

    def _reserved_cash(self, paper: PaperAccount) -> Decimal:
        """Cash held back for open buy orders (at their estimated cost), as a real broker does."""
        opens = [order for order in paper.open_orders if order.side == Side.BUY.value]
        closes = self._closes(list({o.symbol for o in opens}))
        reserved = Decimal(0)
        for order in opens:
            price = order.limit_price_usd or self._fill_price(order.side, closes.get(order.symbol, (None, 0.0))[1])
            remaining = (order.quantity - order.filled_quantity) * price if order.quantity else order.notional_usd
            reserved += (remaining or Decimal(0)) + self.commission_usd
        return reserved

    def _reserved_shares(self, paper: PaperAccount, symbol: str) -> Decimal:
        opens = [o for o in paper.open_orders if o.side == Side.SELL.value and o.symbol == symbol]
        return sum(((o.quantity or Decimal(0)) - o.filled_quantity for o in opens), Decimal(0))

    def _check_funds(
        self,
        paper: PaperAccount,
        request: OrderRequest,
        symbol: str,
        close: Decimal,
        positions: dict[str, PaperPosition],
    ) -> None:
        """Refuse what the account cannot pay for or deliver."""
        price = request.limit_price_usd or self._fill_price(request.side.value, float(close))
        if request.side == Side.BUY:
            cost = (request.notional_usd or request.quantity * price) + self.commission_usd
            available = paper.cash_usd - self._reserved_cash(paper)
            if cost > available:
                spare = max(available, Decimal(0)).quantize(CENT)
                raise BrokerError(
                    f"insufficient buying power: the order needs ${cost.quantize(CENT)}, ${spare} available",
                    permanent=True,
                    status_code=403,
                )
            return
        position = positions.get(symbol)
        held = (position.quantity if position else Decimal(0)) - self._reserved_shares(paper, symbol)
        wanted = (
            request.quantity
            if request.quantity is not None
            else (request.notional_usd / price).quantize(NANO, ROUND_DOWN)
        )
        if wanted > held:
            spare = max(held, Decimal(0)).normalize()
            raise BrokerError(
                f"insufficient qty available for order (requested: {wanted.normalize():f}, available: {spare:f})",
                permanent=True,
                status_code=403,
            )

    def _try_fill(
        self,
        paper: PaperAccount,
        order: PaperOrder,
        close: float,
        positions: dict[str, PaperPosition],
        *,
        save: bool = True,
    ) -> None:
        """Fill ``order`` completely at the close with slippage, if its limit allows and funds suffice.

        ``positions`` (by symbol, read once in the caller's locked transaction) is kept current in
        memory (a position sold out stays, at zero) and the caller stores it (`_store_positions`);
        so is the account's cash. ``save`` False: the order is new and its caller saves it (one
        INSERT instead of two writes).
        """
        price = self._fill_price(order.side, close)
        if order.order_type == OrderType.LIMIT and (
            (order.side == Side.BUY and price > order.limit_price_usd)
            or (order.side == Side.SELL and price < order.limit_price_usd)
        ):
            return
        quantity = (
            order.quantity if order.quantity is not None else (order.notional_usd / price).quantize(NANO, ROUND_DOWN)
        )
        notional = (quantity * price).quantize(CENT)
        position = positions.get(order.symbol)
        if order.side == Side.BUY:
            if notional + self.commission_usd > paper.cash_usd:
                self._reject(order, "insufficient buying power at the fill", save=save)
                return
            paper.cash_usd -= notional + self.commission_usd
            if position is None or position.quantity == 0:
                position = positions[order.symbol] = position or PaperPosition(paper_account=paper, symbol=order.symbol)
                position.quantity, position.avg_entry_price_usd = quantity, price
            else:
                total = position.quantity + quantity
                position.avg_entry_price_usd = (
                    (position.quantity * position.avg_entry_price_usd + quantity * price) / total
                ).quantize(Decimal("0.000001"))
                position.quantity = total
        else:
            if position is None or position.quantity < quantity:
                self._reject(order, "insufficient qty at the fill (no shorts)", save=save)
                return
            paper.cash_usd += notional - min(self.commission_usd, notional)
            position.quantity -= quantity
        self._moved[order.symbol] = position
        order.state = OrderState.FILLED.value
        order.filled_quantity = quantity
        order.filled_avg_price_usd = price
        order.commission_usd = self.commission_usd
        if save:
            order.save(
                update_fields=["state", "filled_quantity", "filled_avg_price_usd", "commission_usd", "updated_at"]
            )

    def _reject(self, order: PaperOrder, reason: str, *, save: bool = True) -> None:
        order.state = OrderState.REJECTED.value
        order.reject_reason = reason
        if save:
            order.save(update_fields=["state", "reject_reason", "updated_at"])


def _as_broker_order(order: PaperOrder) -> BrokerOrder:
    return BrokerOrder(
        client_order_id=order.client_order_id,
        broker_order_id=order.broker_order_id,
        symbol=order.symbol,
        side=Side(order.side),
        state=OrderState(order.state),
        quantity=order.quantity,
        notional_usd=order.notional_usd,
        filled_quantity=order.filled_quantity,
        filled_avg_price_usd=order.filled_avg_price_usd,
        submitted_at=order.submitted_at,
        updated_at=order.updated_at,
        reject_reason=order.reject_reason,
        broker_status=order.state,
    )
