"""Trade planner benchmarks: 10,000 portfolios with `threshold`, and every strategy per portfolio.

Targets: 10,000 portfolios x 50 holdings planned with `threshold` in < 5 s on one core (the
process pinned to one CPU, BLAS at one thread), every portfolio forced through the strategy
(manual request) and, separately, as scheduled (only where a trigger fires). Per strategy:
median and p99 of one `plan_rebalance` call (50 holdings, a few hundred portfolios, manual),
the first call reported apart (it builds the solver templates of the optimised strategies).

Portfolios are synthetic and seeded: 50 symbols, Dirichlet targets with some zeros, prices
$5..$2,000, holdings drifted from target by a lognormal factor (so most breach a band), 0-3 %
cash, some deposits and withdrawals, a tenth not fractionable, policies drawn from a few band
modes, buffers, minimum trades and costs. Building `PlanInputs` is timed apart from planning.

Run: `make bench` (or .venv/bin/python bench/planner.py [--portfolios 10000] [--per-strategy 300]).
It prints the figures and a summary with pass/fail; the exit code is 0 either way.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from timing import reference_ms, timed

ROOT = Path(__file__).resolve().parent.parent
HOLDINGS = 50
MANY_TARGET_S = 5.0
AS_OF = date(2026, 11, 20)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(line.format(*headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))
    print()


def pin_to_one_cpu() -> str:
    """Pin this process to one CPU where the OS allows it; say what happened."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this OS)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def random_policies(rng: np.random.Generator, count: int) -> list:
    from optimization.core.rebalancing import BandPolicy, CostModel, RebalancePolicy, TradingPolicy, TriggerPolicy

    policies = []
    for _ in range(count):
        policies.append(
            RebalancePolicy(
                bands=BandPolicy(band_mode=str(rng.choice(["absolute", "relative", "five_twenty_five"]))),
                triggers=TriggerPolicy(drift_threshold=float(rng.choice([0.02, 0.03, 0.05]))),
                costs=CostModel(
                    commission_per_trade_usd=float(rng.choice([0.0, 0.0, 1.0])),
                    spread_bps=float(rng.choice([2.0, 5.0, 10.0])),
                ),
                trading=TradingPolicy(
                    threshold_to=str(rng.choice(["target", "band_edge"])),
                    min_trade_usd=float(rng.choice([0.0, 10.0, 50.0])),
                    cash_buffer_weight=float(rng.choice([0.0, 0.0025, 0.01])),
                    fractional_shares=bool(rng.random() < 0.8),
                ),
            )
        )
    return policies


def random_portfolios(rng: np.random.Generator, count: int, *, with_cov: bool = False) -> list:
    """``count`` seeded `PlanInputs` of `HOLDINGS` symbols (see the module docstring)."""
    from optimization.core.rebalancing import PlanInputs

    symbols = tuple(f"S{i:02d}" for i in range(HOLDINGS))
    factors = rng.normal(size=(HOLDINGS, 3)) * 0.1
    cov = factors @ factors.T + np.diag(rng.uniform(0.01, 0.09, HOLDINGS))
    portfolios = []
    for _ in range(count):
        targets = rng.dirichlet(np.full(HOLDINGS, 0.7))
        targets[rng.random(HOLDINGS) < 0.1] = 0.0
        targets /= targets.sum()
        prices = np.exp(rng.uniform(np.log(5), np.log(2000), HOLDINGS))
        value = float(np.exp(rng.uniform(np.log(1e4), np.log(5e6))))
        held = targets * value * rng.lognormal(0.0, 0.3, HOLDINGS)
        held[rng.random(HOLDINGS) < 0.05] += value * 0.01  # a few positions the targets no longer want
        quantities = np.where(rng.random(HOLDINGS) < 0.5, np.floor(held / prices), held / prices)
        cash = value * rng.uniform(0, 0.03)
        flow = float(rng.choice([0.0, 0.0, 0.0, 0.02, -0.02])) * value
        portfolios.append(
            PlanInputs(
                symbols=symbols,
                quantities=quantities,
                prices=prices,
                targets=targets,
                cash_usd=cash,
                cash_flow_usd=flow,
                fractionable=rng.random(HOLDINGS) >= 0.1,
                cov=cov if with_cov else None,
            )
        )
    return portfolios


def bench_many(count: int, seed: int) -> list:
    from optimization.core.rebalancing import plan_rebalance

    rng = np.random.default_rng(seed)
    policies = random_policies(rng, 20)
    build_s, portfolios = timed(lambda: random_portfolios(rng, count))
    chosen = [policies[i] for i in rng.integers(len(policies), size=count)]
    pairs = list(zip(portfolios, chosen, strict=True))
    # Warm-up: imports, the registry, numpy's first calls.
    for inputs, policy in pairs[:50]:
        plan_rebalance(inputs, policy, as_of=AS_OF, manual=True, strategy="threshold")

    # Plans are counted as they come and dropped, as the pipeline stores and drops them: holding
    # 10,000 plans (half a million named tuples) would time the garbage collector, not the planner.
    forced_s, trades = timed(
        lambda: sum(len(plan_rebalance(i, p, as_of=AS_OF, manual=True, strategy="threshold").trades) for i, p in pairs)
    )
    scheduled_s, fired = timed(
        lambda: sum(plan_rebalance(i, p, as_of=AS_OF, strategy="threshold").trigger.rebalance for i, p in pairs)
    )
    print(f"1. {count:,} portfolios x {HOLDINGS} holdings, strategy threshold (seed {seed})\n")
    rows = [
        ["build PlanInputs (validation)", f"{build_s:.2f} s", f"{build_s / count * 1e6:.0f} us each (not counted)"],
        [
            "plan_rebalance, manual (all run threshold)",
            f"{forced_s:.2f} s",
            f"{forced_s / count * 1e6:.0f} us each; {trades:,} trades, {trades / count:.1f} per portfolio",
        ],
        [
            "plan_rebalance, as scheduled",
            f"{scheduled_s:.2f} s",
            f"{scheduled_s / count * 1e6:.0f} us each; triggers fired for {fired:,}",
        ],
    ]
    print_table(["what", "time", "note"], rows)
    return [
        (f"threshold, {count:,} portfolios, manual", f"{forced_s:.2f} s", f"< {MANY_TARGET_S:g} s", forced_s < 5),
        (f"threshold, {count:,} portfolios, scheduled", f"{scheduled_s:.2f} s", f"< {MANY_TARGET_S:g} s", None),
    ]


def optimized_available() -> str | None:
    """None if the optimised strategies import, else why not."""
    try:
        import optimization.core.rebalancing.optimized  # noqa: F401
    except ImportError as error:
        return str(error)
    return None


def bench_strategies(count: int, seed: int) -> list:
    from optimization.core.errors import OptimizationError
    from optimization.core.rebalancing import PLANNING_STRATEGIES, plan_rebalance, resolve_planner

    rng = np.random.default_rng(seed + 1)
    policies = random_policies(rng, 20)
    portfolios = random_portfolios(rng, count, with_cov=True)
    chosen = [policies[i] for i in rng.integers(len(policies), size=count)]
    missing = optimized_available()
    rows, summary, skipped = [], [], []
    for name in PLANNING_STRATEGIES:
        try:
            resolve_planner(name)
        except OptimizationError as error:
            why = missing or str(error)
            skipped.append(f"   {name}: skipped ({why})")
            continue
        times, failures = [], []
        for inputs, policy in zip(portfolios, chosen, strict=True):
            start = time.perf_counter()
            try:
                plan_rebalance(inputs, policy, as_of=AS_OF, manual=True, strategy=name)
            except OptimizationError as error:
                failures.append(str(error))
            times.append(time.perf_counter() - start)
        first, rest = times[0], np.array(times[1:])
        median, p99 = float(np.median(rest)), float(np.quantile(rest, 0.99))
        rows.append(
            [
                name,
                f"{first * 1000:.1f} ms",
                f"{median * 1000:.2f} ms",
                f"{p99 * 1000:.2f} ms",
                f"{rest.max() * 1000:.1f} ms",
                f"{len(failures)}",
            ]
        )
        summary.append((f"{name}: median / p99 per portfolio", f"{median * 1000:.2f} / {p99 * 1000:.2f} ms", "-", None))
        if failures:
            skipped.append(f"   {name}: {len(failures)} of {count} raised, e.g. {failures[0]}")
    print(f"2. One plan per call, {count} portfolios x {HOLDINGS} holdings, manual (seed {seed + 1})\n")
    print_table(["strategy", "first call", "median", "p99", "max", "errors"], rows)
    for line in skipped:
        print(line)
    if skipped:
        print()
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolios", type=int, default=10_000, help="portfolios planned with threshold")
    parser.add_argument("--per-strategy", type=int, default=300, help="portfolios timed per strategy")
    parser.add_argument("--seed", type=int, default=20261120)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from threadpoolctl import threadpool_limits

    pinned = pin_to_one_cpu()
    with threadpool_limits(1):
        print(
            f"numpy {np.__version__}; {pinned}, BLAS 1 thread; load average {os.getloadavg()[0]:.2f} at start; "
            f"reference workload {reference_ms():.0f} ms (machine speed: lower is faster)\n"
        )
        summary = bench_many(args.portfolios, args.seed)
        summary += bench_strategies(args.per_strategy, args.seed)
    print(
        f"load average {os.getloadavg()[0]:.2f} at the end (other processes share the CPUs); "
        f"reference workload {reference_ms():.0f} ms\n"
    )

    print("Summary\n")
    verdict = {True: "PASS", False: "FAIL", None: "n/a"}
    print_table(["figure", "value", "target", "result"], [[*row[:3], verdict[row[3]]] for row in summary])
    return 0


if __name__ == "__main__":
    sys.exit(main())
