"""Whole-share plans against their targets: how often a plan leaves drift higher than before it traded.

For random portfolios of instruments that trade only whole shares, planned with the default
policy (threshold strategy, 5/25 bands, $10 minimum trade, 5 bps spread, 0.25% cash buffer) and
each strategy forced (a manual request), per account size ($1k-$20k, $20k-$200k, $200k-$10M):
among plans with trades, the share whose drift after trading is above drift before, and the
median and worst rise in percentage points. Drift is sum |w - t| / 2 with cash included, after
the plan's estimated costs. Target: 0% everywhere.

The last columns, the median drift before and after over the plans with trades, show how much
of the way to the targets the plans still go.

Portfolios are seeded: 2-15 holdings, Dirichlet targets (some 0), prices $5-$2,000 (log-uniform),
holdings drifted from target by a lognormal factor and rounded to whole shares (some unheld),
0-2% cash, a random covariance for risk_aware. Every instrument is whole-share only.

Run: .venv/bin/python bench/planner_drift.py [--portfolios 300] [--seed 7]
The code measured is the `optimization` package first on PYTHONPATH, else this checkout's; to
measure another checkout: PYTHONPATH=/path/to/checkout .venv/bin/python bench/planner_drift.py
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 11, 20)
SIZE_BANDS = (("$1k-$20k", 1e3, 2e4), ("$20k-$200k", 2e4, 2e5), ("$200k-$10M", 2e5, 1e7))
STRATEGIES = ("full", "threshold", "cash_flow", "minimize_trades", "minimize_costs", "risk_aware")
# Rises below this (drift as a fraction; 1e-10 = a millionth of a basis point) are float noise.
NOISE = 1e-10


def random_portfolio(rng: np.random.Generator, low_usd: float, high_usd: float):
    """One `PlanInputs` worth about ``low_usd`` to ``high_usd``, every instrument whole-share."""
    from optimization.core.rebalancing import PlanInputs

    size = int(rng.integers(2, 16))
    targets = rng.dirichlet(np.full(size, 0.8))
    targets[rng.random(size) < 0.08] = 0.0
    if targets.sum() == 0:
        targets[0] = 1.0
    targets /= targets.sum()
    prices = np.round(np.exp(rng.uniform(np.log(5), np.log(2000), size)), 2)
    value = float(np.exp(rng.uniform(np.log(low_usd), np.log(high_usd))))
    held = targets * value * rng.lognormal(0.0, 0.35, size)
    held[rng.random(size) < 0.1] = 0.0
    quantities = np.round(held / prices)
    factors = rng.normal(size=(size, 3)) * 0.1
    return PlanInputs(
        symbols=tuple(f"S{i:02d}" for i in range(size)),
        quantities=quantities,
        prices=prices,
        targets=targets,
        cash_usd=value * rng.uniform(0, 0.02) + (0.0 if quantities.any() else value),
        fractionable=np.zeros(size, dtype=bool),
        cov=factors @ factors.T + np.diag(rng.uniform(0.01, 0.09, size)),
    )


def measure(count: int, seed: int) -> list[list[str]]:
    from optimization.core.rebalancing import RebalancePolicy, plan_rebalance

    policy = RebalancePolicy()
    rng = np.random.default_rng(seed)
    rows = []
    for label, low, high in SIZE_BANDS:
        portfolios = [random_portfolio(rng, low, high) for _ in range(count)]
        for strategy in STRATEGIES:
            rises, befores, afters, traded, failed = [], [], [], 0, 0
            for inputs in portfolios:
                try:
                    plan = plan_rebalance(inputs, policy, as_of=AS_OF, manual=True, strategy=strategy)
                except Exception:  # a failure is counted, the benchmark goes on
                    failed += 1
                    continue
                if not plan.trades:
                    continue
                traded += 1
                befores.append(plan.drift_before)
                afters.append(plan.drift_after)
                rise = plan.drift_after - plan.drift_before
                if rise > NOISE:
                    rises.append(rise)
            medians = [f"{np.median(d):.2%}" if d else "-" for d in (befores, afters)]
            rows.append([label, strategy, f"{traded}", *_figures(rises, traded), *medians, f"{failed}"])
        print(f"   {label} done", file=sys.stderr, flush=True)
    return rows


def _figures(rises: list[float], traded: int) -> list[str]:
    if not traded:
        return ["-", "-", "-"]
    share = f"{len(rises) / traded:.1%}"
    if not rises:
        return [share, "-", "-"]
    return [share, f"+{np.median(rises) * 100:.3g} pp", f"+{max(rises) * 100:.3g} pp"]


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(line.format(*headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolios", type=int, default=300, help="random portfolios per account size")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sys.path.append(str(ROOT))  # after PYTHONPATH, so that another checkout can be measured
    import optimization

    print(f"code: {Path(optimization.__file__).resolve().parent.parent}")
    print(f"{args.portfolios} whole-share portfolios per account size, default policy, every strategy forced\n")
    start = time.perf_counter()
    rows = measure(args.portfolios, args.seed)
    headers = ["account", "strategy", "with trades", "drift rose", "median", "worst"]
    headers += ["drift before", "after", "failed"]
    print_table(headers, rows)
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
