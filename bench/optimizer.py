"""Optimizer benchmarks: our engine next to PyPortfolioOpt 1.6, and targets for 10,000 portfolios.

Targets: one max-Sharpe solve including estimation (CAGR mean + sample covariance, long-only,
rf 2 %) >= 3x faster than PyPortfolioOpt's `EfficientFrontier.max_sharpe` (median of repeated
calls, ours warm) at N=20 and N=500, with |Sharpe ours - Sharpe PyPortfolioOpt| < 1e-6 wherever
PyPortfolioOpt's answer is feasible (both Sharpes on PyPortfolioOpt's mu and S); ours must
succeed on every call. `optimize_many` for 10,000 portfolios drawn from 50 distinct settings
over one 50-symbol universe (29 ETFs + 21 S&P stocks) < 10 s on 2 cores, from a cold problem cache.

Data: ../shared/data (PyPortfolioOpt's 20-stock test file, the 504-stock S&P table, the ETF
table). Every price window is handed over as one float64 block, the layout the price stores'
`price_frame` returns.

Run: `make bench` (or .venv/bin/python bench/optimizer.py [--repeat 10] [--portfolios 10000]
[--blas-threads 1]); about a minute or two.
It prints the figures and a summary with pass/fail per target; the exit code is 0 either way.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from timing import timed

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
STOCKS_20 = DATA / "pyportfolioopt" / "pyportfolioopt__tests_resources__stock_prices.csv"
SP500 = DATA / "pooksoft_sp500_alphavantage" / "pooksoft_sp500_adjusted_close_wide_2014-01-02_2021-04-21.derived.csv"
CONSTITUENTS = DATA / "pooksoft_sp500_alphavantage" / "pooksoft__data__constituents.csv"
ETFS = (
    DATA
    / "portopt_katrinajames_etfs_2016-2021"
    / "portopt_katrinajames_etfs_adj_close_wide_2016-04-28_2021-04-27.derived.csv"
)

RISK_FREE_RATE = 0.02
SPEEDUP_TARGET = 3.0
SHARPE_TOLERANCE = 1e-6
FEASIBILITY_TOLERANCE = 1e-7  # the same tolerance our engine accepts a solver answer with
MANY_TARGET_S = 10.0

BOND_ETFS = ("BND", "AGG", "TLT", "IEF", "SHY", "BIL", "LQD", "TIP", "HYG", "MUB", "BNDX")
ETF_CLASSES = {**dict.fromkeys(BOND_ETFS, "bond"), "GLD": "commodity", "DBC": "commodity", "VNQ": "real_estate"}
# The ETF table holds 29 ETFs (and the ^GSPC index, left out): 21 large caps across the sectors make 50.
UNIVERSE_STOCKS = (
    *("AAPL", "MSFT", "NVDA", "V", "AMZN", "HD", "GOOGL", "DIS", "JPM", "JNJ"),
    *("UNH", "PFE", "MRK", "XOM", "CVX", "PG", "KO", "WMT", "CAT", "NEE", "APD"),
)
STRATEGY_CHOICES = ("max_sharpe", "min_volatility", "risk_parity", "max_quadratic_utility")
MAX_WEIGHTS = (0.2, 0.25, 0.3, 0.4, 0.5)
MIN_WEIGHTS = (0.0, 0.005, 0.01)
GROUP_CAPS = (
    None,
    "bonds <= 60%",
    "bonds <= 40%",
    "equities <= 80%",
    "commodities <= 10%",
    "real estate <= 10%",
    "Information Technology <= 25%",
)
RISK_FREE_RATES = (0.0, 0.01, 0.02, 0.03)
RISK_AVERSIONS = (1.0, 2.0, 5.0, 10.0)


def read_prices(path: Path) -> pd.DataFrame:
    """A wide CSV as one float64 block (read_csv in pandas 3 gives one block per column)."""
    frame = pd.read_csv(path, index_col=0, parse_dates=True).sort_index()
    return as_price_frame(frame)


def as_price_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(frame.to_numpy(dtype=float), index=frame.index, columns=[str(c) for c in frame.columns])


def complete_window(prices: pd.DataFrame, rows: int | None, limit: int | None = None) -> pd.DataFrame:
    """The last `rows` rows (all complete rows if None), columns complete over them, the first `limit`."""
    window = prices.dropna() if rows is None else prices.iloc[-rows:]
    window = window.loc[:, window.notna().all()]
    return as_price_frame(window.iloc[:, :limit] if limit else window)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(line.format(*headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))
    print()


def sharpe(weights: np.ndarray, mu: np.ndarray, cov: np.ndarray, rf: float) -> float:
    return float((weights @ mu - rf) / np.sqrt(weights @ cov @ weights))


# -- 1. one max-Sharpe solve, ours vs PyPortfolioOpt ---------------------------------------------


def pypfopt_max_sharpe(window: pd.DataFrame):
    """PyPortfolioOpt 1.6 as documented: CAGR mean, sample covariance, default solver, bounds (0, 1).

    Returns (raw weights or None, "status (solver)", error text or "").
    """
    from pypfopt import EfficientFrontier, expected_returns, risk_models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mu = expected_returns.mean_historical_return(window)
        cov = risk_models.sample_cov(window)
        frontier = EfficientFrontier(mu, cov)
        try:
            frontier.max_sharpe(risk_free_rate=RISK_FREE_RATE)
        except Exception as error:
            return None, _status(frontier._opt), f"{type(error).__name__}: {' '.join(map(str, error.args))}"
    return np.asarray(frontier.weights, dtype=float), _status(frontier._opt), ""


def _status(problem) -> str:
    if problem is None:
        return "-"
    solver = problem.solver_stats.solver_name if problem.solver_stats is not None else "?"
    return f"{problem.status} ({solver})"


def max_sharpe_cases(stocks_20: pd.DataFrame, sp500: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [
        ("20 stocks, last 253 rows", complete_window(stocks_20, 253)),
        ("20 stocks, all complete rows", complete_window(stocks_20, None)),
        ("S&P, last 253 rows (T < N)", complete_window(sp500, 253, 500)),
        ("S&P, last 505 rows", complete_window(sp500, 505, 500)),
        ("S&P, last 1000 rows", complete_window(sp500, 1000, 500)),
    ]


def bench_max_sharpe(cases, repeat: int) -> list[tuple[str, str, str, bool | None]]:
    from pypfopt import expected_returns, risk_models

    from optimization.core import problems
    from optimization.core.constraints import compile_constraints
    from optimization.core.engine import OptimizerSettings, optimize
    from optimization.core.errors import OptimizationError
    from optimization.core.estimators import EstimatorSettings, estimate
    from optimization.core.strategies import StrategyInputs, max_sharpe

    settings = OptimizerSettings(strategy="max_sharpe", fallbacks=(), estimators=EstimatorSettings(lookback_days=None))
    timing_rows, quality_rows, summary, footnotes = [], [], [], []
    for label, window in cases:
        size, days = window.shape[1], window.shape[0]
        ours_failures: list[str] = []

        def ours(window=window, failures=ours_failures):
            try:
                return optimize(window, None, settings)
            except OptimizationError as error:
                failures.append(str(error))
                return None

        def ours_solve(window=window):
            # Like for like with PyPortfolioOpt: estimation + the max-Sharpe solve, without the
            # metrics (VaR, drawdown, ...) and the input hash that optimize() adds.
            estimates = estimate(window, settings.estimators)
            compiled = compile_constraints(estimates.symbols, {}, settings.constraints)
            return max_sharpe(StrategyInputs(estimates, compiled, settings.params))

        problems.clear_cache()
        cold_s, _ = timed(ours)
        warm_full_s, result = timed(ours, repeat)
        warm_s, _ = timed(ours_solve, repeat)
        outcomes: list[tuple] = []

        def theirs_call(window=window, outcomes=outcomes):
            outcomes.append(pypfopt_max_sharpe(window))

        theirs_s, _ = timed(theirs_call, repeat)
        theirs, status, theirs_error = outcomes[-1]
        theirs_failed = sum(outcome[0] is None for outcome in outcomes)
        if theirs_failed not in (0, repeat):
            footnotes.append(f"{label}: PyPortfolioOpt failed {theirs_failed} of {repeat} calls; the last is shown")

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mu = expected_returns.mean_historical_return(window).to_numpy()
            cov = risk_models.sample_cov(window).to_numpy()
        ours_ok = not ours_failures and result is not None
        sharpe_ours = sharpe(result.weights, mu, cov, RISK_FREE_RATE) if ours_ok else float("nan")
        if theirs is None:
            theirs_text, feasible, diff = "failed (below)", False, float("nan")
            footnotes.append(f"{label}: PyPortfolioOpt failed: {theirs_error}")
            min_w = sum_err = "-"
        else:
            sum_gap = abs(theirs.sum() - 1)
            feasible = theirs.min() >= -FEASIBILITY_TOLERANCE and theirs.max() <= 1 + FEASIBILITY_TOLERANCE
            feasible = feasible and sum_gap <= FEASIBILITY_TOLERANCE
            diff = abs(sharpe_ours - sharpe(theirs, mu, cov, RISK_FREE_RATE))
            theirs_text = f"{sharpe(theirs, mu, cov, RISK_FREE_RATE):.9f}"
            min_w, sum_err = f"{theirs.min():.2e}", f"{sum_gap:.1e}"
        speedup, speedup_cold = theirs_s / warm_s, theirs_s / cold_s
        timing_rows.append(
            [
                label,
                str(size),
                str(days),
                f"{cold_s * 1000:.1f} ms",
                f"{warm_s * 1000:.1f} ms",
                f"{warm_full_s * 1000:.1f} ms",
                f"{theirs_s * 1000:.1f} ms",
                f"{speedup:.1f}x",
                f"{theirs_s / warm_full_s:.1f}x",
                f"{speedup_cold:.1f}x",
            ]
        )
        quality_rows.append(
            [
                label,
                f"{sharpe_ours:.9f}" if ours_ok else "failed (below)",
                theirs_text,
                f"{diff:.1e}" if theirs is not None else "n/a",
                status,
                min_w,
                sum_err,
                "yes" if feasible else "no",
            ]
        )
        if not ours_ok:
            footnotes.append(f"{label}: ours failed {len(ours_failures)} calls: {ours_failures[0]}")
        name = f"max-Sharpe N={size} T={days}"
        fast = speedup >= SPEEDUP_TARGET
        summary.append((f"{name}: PyPortfolioOpt / ours warm", f"{speedup:.1f}x", f">= {SPEEDUP_TARGET:g}x", fast))
        summary.append(
            (f"{name}: ours succeeded", f"{repeat + 1 - len(ours_failures)}/{repeat + 1} calls", "every call", ours_ok)
        )
        if feasible:
            agrees = diff < SHARPE_TOLERANCE
            summary.append((f"{name}: |Sharpe diff|", f"{diff:.1e}", f"< {SHARPE_TOLERANCE:g}", agrees))
        else:
            why = "failed" if theirs is None else f"infeasible ({status})"
            summary.append((f"{name}: |Sharpe diff|", f"PyPortfolioOpt {why}", f"< {SHARPE_TOLERANCE:g}", None))

    print(f"1. One max-Sharpe solve including estimation (median of {repeat} calls; cold = first call after")
    print("   problems.clear_cache(), includes the cvxpy compilation; PyPortfolioOpt rebuilds every call;")
    print(
        "   'ours warm' = estimation + solve, like PyPortfolioOpt; 'optimize() warm' adds metrics and the input hash)\n"
    )
    print_table(
        [
            "case",
            "N",
            "T",
            "ours cold",
            "ours warm",
            "optimize() warm",
            "PyPortfolioOpt",
            "ratio warm",
            "ratio optimize()",
            "ratio cold",
        ],
        timing_rows,
    )
    print("   Sharpe of both answers on PyPortfolioOpt's mu and S; PyPortfolioOpt's raw weights\n")
    print_table(
        ["case", "Sharpe ours", "Sharpe PyPortfolioOpt", "|diff|", "PPO status", "PPO min w", "PPO |sum-1|", "PPO ok"],
        quality_rows,
    )
    for note in footnotes:
        print(f"   {note}")
    print()
    return summary


# -- 2. 10,000 portfolios from 50 distinct settings ----------------------------------------------


def portfolio_universe(sp500: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The 30 ETFs plus 20 S&P stocks on their common dates, with asset classes and sectors."""
    from optimization.core.constraints import AssetInfo

    etfs = read_prices(ETFS).drop(columns=["^GSPC"], errors="ignore")
    prices = etfs.join(sp500[list(UNIVERSE_STOCKS)], how="inner").dropna()
    sectors = pd.read_csv(CONSTITUENTS, index_col="Symbol")["Sector"].to_dict()
    assets = {symbol: AssetInfo(asset_class=ETF_CLASSES.get(symbol, "equity")) for symbol in etfs.columns}
    assets.update({symbol: AssetInfo(asset_class="equity", sector=sectors[symbol]) for symbol in UNIVERSE_STOCKS})
    return as_price_frame(prices), assets


def distinct_settings(rng: np.random.Generator, count: int) -> list:
    """`count` settings with distinct fingerprints: glide path on (ages 25..75), varied everything."""
    from optimization.core.constraints import Constraints, parse_group_limit
    from optimization.core.engine import GlidePathSettings, OptimizerSettings
    from optimization.core.strategies import StrategyParams

    found: dict[str, OptimizerSettings] = {}
    while len(found) < count:
        strategy = STRATEGY_CHOICES[rng.integers(len(STRATEGY_CHOICES))]
        cap = GROUP_CAPS[rng.integers(len(GROUP_CAPS))]
        aversion = float(RISK_AVERSIONS[rng.integers(len(RISK_AVERSIONS))])
        aversion = aversion if strategy == "max_quadratic_utility" else 1.0
        settings = OptimizerSettings(
            strategy=strategy,
            params=StrategyParams(
                risk_free_rate=float(RISK_FREE_RATES[rng.integers(len(RISK_FREE_RATES))]), risk_aversion=aversion
            ),
            constraints=Constraints(
                min_weight=float(MIN_WEIGHTS[rng.integers(len(MIN_WEIGHTS))]),
                max_weight=float(MAX_WEIGHTS[rng.integers(len(MAX_WEIGHTS))]),
                groups=(parse_group_limit(cap),) if cap else (),
            ),
            glide=GlidePathSettings(age=float(rng.integers(25, 76))),
        )
        found.setdefault(settings.fingerprint(), settings)
    return list(found.values())


def pypfopt_reference(prices: pd.DataFrame, assets: dict, settings_list: list) -> tuple[float, int]:
    """PyPortfolioOpt on each distinct settings without the glide path: max-Sharpe, else min-volatility.

    Same window (last 253 rows), bounds and group cap; estimation included. Returns (seconds, failures).
    """
    from pypfopt import EfficientFrontier, expected_returns, risk_models

    window = prices.iloc[-253:]
    failures = 0
    start = time.perf_counter()
    for settings in settings_list:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mu = expected_returns.mean_historical_return(window)
            cov = risk_models.sample_cov(window)
            limits = settings.constraints
            frontier = EfficientFrontier(mu, cov, weight_bounds=(limits.min_weight, limits.max_weight))
            for group in limits.groups:
                attribute = "asset_class" if group.field == "asset_class" else "sector"
                mapper = {symbol: getattr(assets[symbol], attribute) for symbol in window.columns}
                frontier.add_sector_constraints(mapper, {}, {group.value: group.max_weight})
            try:
                if settings.strategy == "max_sharpe":
                    frontier.max_sharpe(risk_free_rate=settings.params.risk_free_rate)
                else:
                    frontier.min_volatility()
            except Exception:
                failures += 1
    return time.perf_counter() - start, failures


def bench_many(sp500: pd.DataFrame, portfolios: int, naive_sample: int, seed: int) -> list:
    from optimization.core import problems
    from optimization.core.engine import OptimizationResult, optimize, optimize_many

    prices, assets = portfolio_universe(sp500)
    rng = np.random.default_rng(seed)
    distinct = distinct_settings(rng, 50)
    # Each portfolio carries its own (equal) settings object, as when read from the database.
    settings_list = [dataclasses.replace(distinct[i]) for i in rng.integers(len(distinct), size=portfolios)]
    used = len({settings.fingerprint() for settings in settings_list})

    problems.clear_cache()
    compiled_before = problems.compile_count
    many_s, results = timed(lambda: optimize_many(prices, assets, settings_list))
    compiles = problems.compile_count - compiled_before
    answered = sum(isinstance(result, OptimizationResult) for result in results)
    fell_back = len({id(r) for r in results if isinstance(r, OptimizationResult) and r.fallbacks})
    fingerprint_s, _ = timed(lambda: [settings.fingerprint() for settings in settings_list])

    problems.clear_cache()
    naive_s, _ = timed(lambda: [optimize(prices, assets, settings) for settings in settings_list[:naive_sample]])
    naive_total = naive_s * portfolios / naive_sample
    reference_s, reference_failures = pypfopt_reference(prices, assets, distinct)

    etf_count = sum(1 for symbol in prices.columns if symbol not in UNIVERSE_STOCKS)
    print(f"2. Targets for {portfolios:,} portfolios from {len(distinct)} distinct settings (seed {seed})")
    print(
        f"   universe: {prices.shape[1]} symbols ({etf_count} ETFs + {len(UNIVERSE_STOCKS)} S&P stocks), "
        f"{prices.shape[0]} common dates {prices.index[0].date()}..{prices.index[-1].date()}, lookback 252 days;"
    )
    print(
        "   settings: glide path ages 25..75, strategies "
        + "/".join(STRATEGY_CHOICES)
        + ", max_weight 0.2..0.5, min_weight 0..0.01, one group cap or none, rf 0..3 %\n"
    )
    rows = [
        ["optimize_many, cold cache", f"{many_s:.2f} s", f"{portfolios / many_s:,.0f} portfolios/s"],
        ["  distinct solves (settings)", str(used), f"{answered:,} answered, {fell_back} distinct used a fallback"],
        ["  compile_count delta", str(compiles), "cvxpy problems built"],
        [f"  of which {portfolios:,} x settings.fingerprint()", f"{fingerprint_s:.2f} s", "(measured separately)"],
        [
            f"naive loop of optimize, extrapolated from {naive_sample}",
            f"{naive_total:.1f} s",
            f"{naive_s:.2f} s for {naive_sample}; {naive_s / naive_sample * 1000:.0f} ms each",
        ],
        [
            f"PyPortfolioOpt, the {len(distinct)} distinct problems only",
            f"{reference_s:.2f} s",
            f"max-Sharpe/min-vol, no glide path, {reference_failures} failed; "
            f"{reference_s / len(distinct) * 1000:.0f} ms each",
        ],
    ]
    print_table(["what", "time", "note"], rows)
    fast = many_s < MANY_TARGET_S
    return [
        (f"optimize_many {portfolios:,} portfolios", f"{many_s:.2f} s", f"< {MANY_TARGET_S:g} s", fast),
        (f"optimize_many answered {portfolios:,}", f"{answered:,}", "all", answered == portfolios),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="calls per max-Sharpe figure (median reported)")
    parser.add_argument("--portfolios", type=int, default=10_000, help="portfolios for optimize_many")
    parser.add_argument("--naive", type=int, default=200, help="portfolios timed for the naive-loop extrapolation")
    parser.add_argument("--seed", type=int, default=20210421)
    parser.add_argument(
        "--blas-threads", type=int, default=None, help="cap BLAS threads (default: the libraries' own, as deployed)"
    )
    args = parser.parse_args()
    missing = [path for path in (STOCKS_20, SP500, CONSTITUENTS, ETFS) if not path.exists()]
    if missing:
        print(f"skipped: {missing[0]} not found (the benchmark needs ../shared/data)")
        return 0

    sys.path.insert(0, str(ROOT))
    import cvxpy
    import pypfopt
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS so that the line below reports it)
    from threadpoolctl import threadpool_info, threadpool_limits

    versions = f"cvxpy {cvxpy.__version__}, numpy {np.__version__}, pandas {pd.__version__}"
    print(f"PyPortfolioOpt {pypfopt.__version__}, {versions}")
    sp500 = read_prices(SP500)
    stocks_20 = read_prices(STOCKS_20)
    limit = threadpool_limits(args.blas_threads) if args.blas_threads else contextlib.nullcontext()
    with limit:
        pools = {f"{pool['internal_api']} {pool['num_threads']} threads" for pool in threadpool_info()}
        blas = ", ".join(sorted(pools))
        print(f"BLAS: {blas}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start\n")
        # Section 2 first: its cold run should follow the imports, not section 1's solves.
        summary = bench_many(sp500, args.portfolios, args.naive, args.seed)
        summary = bench_max_sharpe(max_sharpe_cases(stocks_20, sp500), args.repeat) + summary
    print(f"load average {os.getloadavg()[0]:.2f} at the end (other processes share the CPUs)\n")

    print("Summary\n")
    verdict = {True: "PASS", False: "FAIL", None: "n/a"}
    print_table(["figure", "value", "target", "result"], [[*row[:3], verdict[row[3]]] for row in summary])
    return 0


if __name__ == "__main__":
    sys.exit(main())
