"""The fallback chain: providers tried in order, with retries, backoff, rate limits and timeouts.

Each provider gets the symbols no earlier provider supplied. A symbol counts
as supplied only when its answer passes the same completeness checks for
every provider (`check_complete`); otherwise it falls through to the next
provider and the reason is recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import date

import pandas as pd
from django.conf import settings
from django.utils.module_loading import import_string

from marketdata.providers.base import PriceProvider, ProviderError, ProviderNotConfigured, conform_bars

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderFailure:
    provider: str
    symbol: str | None  # None when the whole call failed
    error: str

    def as_dict(self) -> dict[str, str | None]:
        return {"provider": self.provider, "symbol": self.symbol, "error": self.error}


@dataclass
class ChainResult:
    bars: dict[str, pd.DataFrame] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    synthetic: dict[str, bool] = field(default_factory=dict)
    failures: list[ProviderFailure] = field(default_factory=list)
    providers_tried: list[str] = field(default_factory=list)
    #: Symbols whose best answer stops before the expected session (stored, then reported stale).
    incomplete: list[str] = field(default_factory=list)

    def missing(self, symbols: Sequence[str]) -> list[str]:
        return [s for s in symbols if s not in self.bars]


class RateLimiter:
    """Spaces calls to one provider at least 60/rate seconds apart, across threads."""

    def __init__(self, per_minute: int, *, sleep: Callable[[float], None], clock: Callable[[], float]):
        self.interval_s = 60.0 / per_minute
        self._sleep, self._clock = sleep, clock
        self._next_at = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            delay = self._next_at - now
            self._next_at = max(now, self._next_at) + self.interval_s
        if delay > 0:
            self._sleep(delay)


# One limiter per provider name per process, so separate fetches share one budget.
_process_limiters: dict[str, RateLimiter] = {}
_limiters_lock = threading.Lock()


def build_provider(name: str, **overrides: object) -> PriceProvider:
    """Instantiates a registered provider with its configured options (plus overrides)."""
    registry = settings.PRICE_PROVIDER_REGISTRY
    if name not in registry:
        raise ValueError(f"unknown price provider {name!r}; expected one of {', '.join(registry)}")
    options = {**settings.PRICE_PROVIDER_OPTIONS.get(name, {}), **overrides}
    return import_string(registry[name])(**options)


def check_complete(frame: pd.DataFrame | None, expected_last: date | None) -> str | None:
    """Why an answer for one symbol cannot be used, or None when it can."""
    if frame is None:
        return "symbol missing from the answer"
    if frame.empty:
        return "no rows returned"
    if frame["adj_close"].isna().all():
        return "every price is missing (NaN)"
    if expected_last is not None:
        last = frame["adj_close"].last_valid_index()
        if last.date() < expected_last:
            return f"last bar is {last.date()}, expected {expected_last}"
    return None


class ProviderChain:
    """Fetches daily bars through providers in order, each symbol from the first that has it."""

    def __init__(
        self,
        providers: Sequence[PriceProvider],
        *,
        retries: int,
        backoff_s: float,
        timeout_s: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        limiters: dict[str, RateLimiter] | None = None,
    ):
        self.providers = list(providers)
        self._limiters = _process_limiters if limiters is None else limiters
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_settings(cls, names: Sequence[str] | None = None) -> ProviderChain:
        names = list(names or settings.PRICE_PROVIDERS)
        return cls(
            [build_provider(name) for name in names],
            retries=settings.PRICE_FETCH_RETRIES,
            backoff_s=settings.PRICE_FETCH_BACKOFF_SECONDS,
            timeout_s=settings.PRICE_FETCH_TIMEOUT_SECONDS,
        )

    def fetch(self, symbols: Sequence[str], start: date, end: date, expected_last: date | None) -> ChainResult:
        """Bars from start to end for each symbol; `expected_last` is the session each answer must reach."""
        result = ChainResult()
        partial: dict[str, tuple[PriceProvider, pd.DataFrame]] = {}
        for provider in self.providers:
            pending = result.missing(symbols)
            if not pending:
                break
            result.providers_tried.append(provider.name)
            size = max(1, provider.max_symbols_per_request)
            for i in range(0, len(pending), size):
                self._fetch_batch(provider, pending[i : i + size], start, end, expected_last, result, partial)
        # No provider reached the expected session: keep the first usable answer rather than nothing.
        for symbol, (provider, frame) in partial.items():
            if symbol not in result.bars:
                result.bars[symbol] = frame
                result.sources[symbol] = provider.name
                result.synthetic[symbol] = provider.synthetic
                result.incomplete.append(symbol)
        return result

    def _fetch_batch(
        self,
        provider: PriceProvider,
        batch: list[str],
        start: date,
        end: date,
        expected_last: date | None,
        result: ChainResult,
        partial: dict[str, tuple[PriceProvider, pd.DataFrame]],
    ) -> None:
        try:
            answer = self._call_with_retries(provider, batch, start, end)
        except ProviderError as exc:
            result.failures.append(ProviderFailure(provider.name, None, str(exc)))
            for symbol in batch:
                result.failures.append(ProviderFailure(provider.name, symbol, f"provider failed: {exc}"))
            return
        for symbol in batch:
            frame = answer.get(symbol)
            if frame is not None:
                frame = conform_bars(frame)
                frame = frame[(frame.index >= pd.Timestamp(start)) & (frame.index <= pd.Timestamp(end))]
            problem = check_complete(frame, expected_last)
            if problem:
                result.failures.append(ProviderFailure(provider.name, symbol, problem))
                if frame is not None and check_complete(frame, None) is None:
                    partial.setdefault(symbol, (provider, frame))
                continue
            result.bars[symbol] = frame
            result.sources[symbol] = provider.name
            result.synthetic[symbol] = provider.synthetic

    def _call_with_retries(
        self, provider: PriceProvider, batch: list[str], start: date, end: date
    ) -> dict[str, pd.DataFrame]:
        limiter = self._limiter_for(provider)
        attempt = 0
        while True:
            limiter.wait()
            try:
                return self._call_with_timeout(provider, batch, start, end)
            except ProviderNotConfigured:
                raise
            except ProviderError as exc:
                if not exc.transient or attempt >= self.retries:
                    raise
                delay = self.backoff_s * (2**attempt)
                logger.warning(
                    "price provider failed, retrying",
                    extra={"provider": provider.name, "attempt": attempt + 1, "delay_s": delay, "error": str(exc)},
                )
                self._sleep(delay)
                attempt += 1

    def _limiter_for(self, provider: PriceProvider) -> RateLimiter:
        with _limiters_lock:
            if provider.name not in self._limiters:
                per_minute = provider.rate_limit_per_minute or 60_000
                self._limiters[provider.name] = RateLimiter(per_minute, sleep=self._sleep, clock=self._clock)
            return self._limiters[provider.name]

    def _call_with_timeout(
        self, provider: PriceProvider, batch: list[str], start: date, end: date
    ) -> dict[str, pd.DataFrame]:
        # A worker thread lets a hung provider be abandoned; it cannot be killed, only left behind.
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"provider-{provider.name}")
        future = executor.submit(provider.fetch_daily_bars, batch, start, end)
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout:
            raise ProviderError(f"{provider.name} timed out after {self.timeout_s:g} s") from None
        except ProviderError:
            raise
        except Exception as exc:  # a provider bug or an SDK error it did not translate
            raise ProviderError(f"{provider.name} raised {type(exc).__name__}: {exc}") from exc
        finally:
            executor.shutdown(wait=False)
