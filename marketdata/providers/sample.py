"""Deterministic synthetic daily bars for any symbol: the offline provider for demos and tests.

Prices are invented (`synthetic = True`) but statistically plausible: each
symbol's daily log return is `drift - vol**2 / 2 + vol * z` (per day), where the
unit-variance shock `z` mixes a market factor shared by every symbol, a factor
shared by its asset class and an idiosyncratic part,

    z = a * market + b * class + c * own,   a**2 + b**2 + c**2 = 1,

so the series' annualised volatility is its target. The loadings set the
correlations: two symbols of one class correlate `a1*a2 + b1*b2`, of different
classes `a1*a2`.

Every series starts on `EPOCH` and runs over NYSE sessions; each random stream
is seeded by a stable hash (never Python's salted `hash()`), so a symbol's bar on
a given date is the same whatever range or other symbols a call asks for, and
incremental fetches agree with full ones.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from ground.env import SYMBOL_RE
from marketdata.calendar import calendar_last_session, sessions_index
from marketdata.providers.base import BAR_COLUMNS, PriceProvider, empty_bars
from marketdata.reference import is_known, lookup

#: First session of every synthetic series; earlier dates have no bars.
EPOCH = date(2000, 1, 3)
ANCHOR = date(2025, 1, 2)
_YEARS_EPOCH_TO_ANCHOR = (ANCHOR - EPOCH).days / 365.25
TRADING_DAYS_PER_YEAR = 252


@dataclass(frozen=True)
class Profile:
    """The statistical shape of one kind of instrument.

    `drift` is the expected annual arithmetic return (fraction: 0.08 is 8 % a
    year), `vol` the annualised volatility of daily log returns. `market` and
    `class_loading` are the loadings `a` and `b` above; `c` (`own`) follows.
    `drift_jitter`/`vol_jitter` spread the symbols of one profile uniformly by up
    to that much either side, so same-class symbols differ in expected return.
    """

    drift: float
    vol: float
    market: float
    class_loading: float
    drift_jitter: float = 0.0
    vol_jitter: float = 0.0

    @property
    def own(self) -> float:
        return math.sqrt(1.0 - self.market**2 - self.class_loading**2)


# Equity ETFs correlate 0.75**2 + 0.5**2 = 0.81 with each other; bonds 0.2**2 + 0.8**2
# = 0.68 with each other and 0.75 * 0.2 = 0.15 with equities, as in post-2000 US data.
PROFILES: dict[str, Profile] = {
    "equity": Profile(drift=0.085, vol=0.165, market=0.75, class_loading=0.5, drift_jitter=0.012, vol_jitter=0.012),
    "bond": Profile(drift=0.03, vol=0.05, market=0.2, class_loading=0.8, drift_jitter=0.008, vol_jitter=0.008),
    "real_estate": Profile(drift=0.06, vol=0.20, market=0.65, class_loading=0.45),
    "commodity": Profile(drift=0.04, vol=0.15, market=0.25, class_loading=0.6),
    "cash": Profile(drift=0.02, vol=0.005, market=0.0, class_loading=0.5),
    "other": Profile(drift=0.05, vol=0.15, market=0.5, class_loading=0.3),
}
# A symbol outside the reference table is most likely a single stock: more volatile
# than a fund and less tied to the market (about 0.55 with equity ETFs, 0.4 with each
# other). It loads on the equity class factor.
SINGLE_STOCK = Profile(drift=0.08, vol=0.25, market=0.55, class_loading=0.3, drift_jitter=0.02, vol_jitter=0.03)
SINGLE_STOCK_CLASS = "equity"

# Seed namespaces keep the market, class and symbol streams apart even if names collide.
_SEED_PREFIX = "sample-provider:"
# Variants of the shared factor seeds, picked among the first 300 so that in no 5- or
# 10-year window from 2000 to 2027 does a class's common part (market and class
# factor at its loadings) stray more than one standard error from its mean: a demo
# should not open on a synthetic lost decade. Any other values give an equally
# valid, different history.
_FACTOR_SEED_VARIANTS = {
    "market": 181,
    "equity": 33,
    "bond": 40,
    "real_estate": 178,
    "commodity": 292,
    "cash": 209,
}

# Open gaps and the high/low excursions beyond open/close, in units of the daily volatility.
_GAP_SCALE = 0.3
_RANGE_SCALE = 0.5
# Daily volume: log-normal noise plus a rise on big moves (E|z| is about 0.8), as in real markets.
_VOLUME_NOISE = 0.25
_VOLUME_SHOCK_SENSITIVITY = 0.4
# Per-session noise draws per symbol: open gap, high, low, volume.
_NOISE_DRAWS = 4


def _seed(text: str) -> int:
    """A stable 64-bit seed for `text` (same on every machine and run)."""
    return int.from_bytes(hashlib.blake2b((_SEED_PREFIX + text).encode(), digest_size=8).digest(), "big")


def _factor(name: str, sessions: int) -> np.ndarray:
    """The shared factor `name` ("market" or an asset class): one N(0, 1) draw per session since `EPOCH`.

    Shape (sessions,); a prefix of any longer draw, so shorter requests agree.
    """
    seed_text = f"factor:{name}:{_FACTOR_SEED_VARIANTS.get(name, 0)}"
    return np.random.default_rng(_seed(seed_text)).standard_normal(sessions)


def _profile_for(symbol: str) -> tuple[Profile, str]:
    """The profile of `symbol` and the asset-class factor it loads on."""
    if not is_known(symbol):
        return SINGLE_STOCK, SINGLE_STOCK_CLASS
    asset_class = lookup(symbol).asset_class
    return PROFILES[asset_class], asset_class


@dataclass(frozen=True)
class _Window:
    """Where the requested sessions lie among all sessions since `EPOCH`.

    `years` lists, per calendar year the window touches, (year, lo, hi, skip):
    that year's sessions are rows lo..hi-1 of the full series, of which the
    window uses those from row lo + skip on.
    """

    sessions: int
    first: int
    years: tuple[tuple[int, int, int, int], ...]

    @classmethod
    def of(cls, all_sessions: pd.DatetimeIndex, first: int) -> _Window:
        years = []
        for year in sorted(set(all_sessions[first:].year)):
            lo = int(all_sessions.searchsorted(pd.Timestamp(year, 1, 1)))
            hi = int(all_sessions.searchsorted(pd.Timestamp(year + 1, 1, 1)))
            years.append((year, lo, hi, max(first, lo) - lo))
        return cls(len(all_sessions), first, tuple(years))


@dataclass(frozen=True)
class _SymbolConstants:
    """One symbol's fixed parameters: annual drift and volatility, first close (USD), typical daily volume (shares)."""

    drift: float
    vol: float
    start_price: float
    base_volume: float


def _draw_symbol(symbol: str, profile: Profile, own: np.ndarray) -> _SymbolConstants:
    """Draws `symbol`'s constants, and fills `own` (contiguous, shape (sessions,)) with its idiosyncratic shocks.

    The shocks cover every session since `EPOCH`, since closes compound from there.
    """
    rng = np.random.default_rng(_seed(f"symbol:{symbol}"))
    # A fixed number of constants first, so the shocks start at the same point
    # of the stream whatever the number of sessions.
    u_drift, u_vol, u_price, u_volume = rng.random(4)
    rng.standard_normal(out=own)
    drift = profile.drift + profile.drift_jitter * (2.0 * u_drift - 1.0)
    vol = profile.vol + profile.vol_jitter * (2.0 * u_vol - 1.0)
    # A level drawn in [50, 300] is where the series is expected to be at `ANCHOR`, so the
    # demo's recent prices look like today's ETFs rather than 25 years of compounding.
    expected_growth = (drift - 0.5 * vol**2) * _YEARS_EPOCH_TO_ANCHOR
    return _SymbolConstants(
        drift=drift,
        vol=vol,
        start_price=(50.0 + 250.0 * u_price) * math.exp(-expected_growth),
        # 100 thousand to 30 million shares a day, log-uniformly.
        base_volume=10.0 ** (5.0 + 2.5 * u_volume),
    )


def _window_noise(symbol: str, window: _Window) -> np.ndarray:
    """N(0, 1) draws for the open gap, high, low and volume of each window session, shape (window, 4).

    Only the window needs them, so there is one stream per (symbol, year): each
    date's draw is fixed without drawing every year since `EPOCH`.
    """
    return np.vstack(
        [
            np.random.default_rng(_seed(f"noise:{symbol}:{year}")).standard_normal((hi - lo, _NOISE_DRAWS))[skip:]
            for year, lo, hi, skip in window.years
        ]
    )


class SampleProvider(PriceProvider):
    """Synthetic but deterministic daily bars for any valid symbol (see the module docstring).

    Options: only `rate_limit_per_minute` (nothing is fetched, so it never binds).
    Dates before `EPOCH` have no bars; the end is clamped to the trading
    calendar's last session. Symbols not matching `SYMBOL_RE` are left out.
    """

    name = "sample"
    synthetic = True

    def fetch_daily_bars(self, symbols: Sequence[str], start: date, end: date) -> dict[str, pd.DataFrame]:
        """{symbol: bars frame} of the sessions from `start` to `end` (inclusive), prices in USD.

        close == adj_close (nothing to adjust: no dividends or splits); volume in
        whole shares.
        """
        wanted = [symbol for symbol in dict.fromkeys(symbols) if SYMBOL_RE.match(symbol)]
        end = min(end, calendar_last_session())
        if not wanted or end < max(start, EPOCH):
            return {symbol: empty_bars() for symbol in wanted}
        all_sessions = sessions_index(EPOCH, end)
        first = int(all_sessions.searchsorted(pd.Timestamp(start)))
        if first == len(all_sessions):  # no session in the range, e.g. a weekend
            return {symbol: empty_bars() for symbol in wanted}
        # Plain dates: the calendar's custom business-day `freq` is not part of the bars shape.
        index = pd.DatetimeIndex(all_sessions[first:].to_numpy(), name="date")
        return _generate(wanted, _Window.of(all_sessions, first), index)


def _generate(symbols: list[str], window: _Window, index: pd.DatetimeIndex) -> dict[str, pd.DataFrame]:
    """Bars of `symbols` over `index`, the window's sessions.

    The return paths are (sessions, symbols) matrices; the Python loops are
    over symbols only, to seed each one's streams independently of the others.
    """
    profiles = [_profile_for(symbol) for symbol in symbols]
    # Fortran order: each symbol's column is contiguous, so its generator fills it
    # in place and the per-symbol bar building below reads it without copying.
    own = np.empty((window.sessions, len(symbols)), order="F")
    constants = [
        _draw_symbol(symbol, profile, own[:, k])
        for k, (symbol, (profile, _)) in enumerate(zip(symbols, profiles, strict=True))
    ]
    drift = np.array([c.drift for c in constants])
    vol = np.array([c.vol for c in constants])

    shocks = _shocks(profiles, own)
    window_shocks = shocks[window.first :].copy(order="F")
    # Updated in place: the (sessions, symbols) matrices are the bulk of the memory.
    log_close = shocks
    log_close *= vol / math.sqrt(TRADING_DAYS_PER_YEAR)
    # Ito correction: the mean daily simple return is drift / 252, so `drift` is the arithmetic mean.
    log_close += (drift - 0.5 * vol**2) / TRADING_DAYS_PER_YEAR
    np.cumsum(log_close, axis=0, out=log_close)
    log_close += np.log([c.start_price for c in constants])

    columns = pd.Index(BAR_COLUMNS)
    return {
        symbol: _symbol_bars(
            log_close[:, k], window_shocks[:, k], _window_noise(symbol, window), constants[k], window, index, columns
        )
        for k, symbol in enumerate(symbols)
    }


def _shocks(profiles: list[tuple[Profile, str]], own: np.ndarray) -> np.ndarray:
    """Unit-variance daily shocks `a*market + b*class + c*own`, shape (sessions, symbols).

    `own` (sessions, symbols) holds each symbol's idiosyncratic draws and is overwritten.
    """
    sessions = own.shape[0]
    class_names = sorted({name for _, name in profiles})
    # factors (sessions, 1 + classes) @ loadings (1 + classes, symbols): one product for all symbols.
    factors = np.column_stack([_factor(name, sessions) for name in ("market", *class_names)])
    loadings = np.zeros((1 + len(class_names), len(profiles)))
    for k, (profile, class_name) in enumerate(profiles):
        loadings[0, k] = profile.market
        loadings[1 + class_names.index(class_name), k] = profile.class_loading
    own *= np.array([profile.own for profile, _ in profiles])
    own += factors @ loadings
    return own


def _symbol_bars(
    log_close: np.ndarray,
    shocks: np.ndarray,
    noise: np.ndarray,
    constants: _SymbolConstants,
    window: _Window,
    index: pd.DatetimeIndex,
    columns: pd.Index,
) -> pd.DataFrame:
    """One symbol's bars frame over the window.

    `log_close` (sessions,): log closes since `EPOCH`; `shocks` (window,): the
    unit-variance daily shocks; `noise` (window, 4): see `_window_noise`.
    Open and close lie within [low, high] and every price is positive by construction.
    """
    daily_vol = constants.vol / math.sqrt(TRADING_DAYS_PER_YEAR)
    # The close before each window session; the series' first session opens near its start price.
    log_previous = np.concatenate(([math.log(constants.start_price)], log_close[:-1]))[window.first :]
    bars = np.empty((len(BAR_COLUMNS), len(shocks)))
    open_, high, low, close, adj_close, volume = bars
    np.exp(log_close[window.first :], out=close)
    np.exp(log_previous + _GAP_SCALE * daily_vol * noise[:, 0], out=open_)
    np.maximum(open_, close, out=high)
    high *= np.exp(_RANGE_SCALE * daily_vol * np.abs(noise[:, 1]))
    np.minimum(open_, close, out=low)
    low *= np.exp(-_RANGE_SCALE * daily_vol * np.abs(noise[:, 2]))
    adj_close[:] = close
    volume[:] = np.round(
        constants.base_volume * np.exp(_VOLUME_NOISE * noise[:, 3] + _VOLUME_SHOCK_SENSITIVITY * (np.abs(shocks) - 0.8))
    )
    # bars.T is (window, 6) in pandas' own block layout, so the frame wraps it without a copy.
    return pd.DataFrame(bars.T, index=index, columns=columns, copy=False)
