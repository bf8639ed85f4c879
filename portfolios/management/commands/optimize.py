"""optimize: target weights for a portfolio, a list of tickers, or a CSV of prices.

    python manage.py optimize --tickers SPY,QQQ,BND
    python manage.py optimize --prices-csv prices.csv --max-weight 1 --json
    python manage.py optimize --portfolio 3 --strategy min_volatility

Exit code 2 with a one-line reason on bad input or infeasible constraints.
"""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import pandas as pd
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from optimization.core.constraints import AssetInfo
from optimization.core.engine import OptimizationResult, optimize
from optimization.core.errors import OptimizationError
from optimization.core.estimators import COV_METHODS, RETURN_METHODS
from optimization.services import (
    asset_info,
    optimizer_settings_from_defaults,
    portfolio_optimize,
    price_window,
)
from portfolios.models import Portfolio

EXIT_BAD_INPUT = 2


def _fraction_or_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


class Command(BaseCommand):
    help = "Compute target weights with the configured strategy, constraints and glide path."

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--portfolio", type=int, help="Portfolio id: its universe and policy (targets are stored).")
        source.add_argument("--tickers", help="Comma-separated symbols; prices from the store.")
        source.add_argument("--prices-csv", type=Path, help="Wide CSV: date,T1,T2,... adjusted closes.")
        parser.add_argument("--strategy", help="Strategy name or dotted path (default OPTIMIZATION_STRATEGY).")
        parser.add_argument("--fallbacks", help="Comma-separated fallback strategies, or 'none'.")
        parser.add_argument("--returns", choices=RETURN_METHODS, help="Expected-return estimator.")
        parser.add_argument("--cov", choices=COV_METHODS, help="Covariance estimator.")
        parser.add_argument("--risk-free-rate", type=_fraction_or_number, help="Annual, as a fraction (0.02).")
        parser.add_argument("--min-weight", type=_fraction_or_number)
        parser.add_argument("--max-weight", type=_fraction_or_number)
        parser.add_argument(
            "--lookback-days", type=int, help="Trading days of returns (default LOOKBACK_DAYS; all rows for a CSV)."
        )
        parser.add_argument("--target-volatility", type=_fraction_or_number, help="For efficient_risk.")
        parser.add_argument("--target-return", type=_fraction_or_number, help="For efficient_return.")
        parser.add_argument("--risk-aversion", type=_fraction_or_number, help="For max_quadratic_utility.")
        parser.add_argument("--age", type=_fraction_or_number, help="Blend with the age-based glide path.")
        parser.add_argument(
            "--group-limit", action="append", default=None, help="e.g. 'technology <= 30%%' (repeatable)."
        )
        parser.add_argument("--exclude", help="Comma-separated symbols never to hold.")
        parser.add_argument("--as-of", type=date.fromisoformat, help="Last price date for --portfolio/--tickers.")
        parser.add_argument("--json", action="store_true", help="Print exactly one JSON object.")

    def handle(self, *args: object, **options) -> None:
        try:
            result = self._run(options)
        except (OptimizationError, ValueError) as error:
            raise CommandError(_one_line(str(error)), returncode=EXIT_BAD_INPUT) from None
        if options["json"]:
            payload = result.to_dict()
            shape = {key: payload[key] for key in ("strategy", "weights", "performance", "fallbacks")}
            self.stdout.write(json.dumps(shape, allow_nan=False))
        else:
            self._print_table(result)

    # -- inputs -------------------------------------------------------------------------------

    def _overrides(self, options: dict) -> dict:
        fallbacks = options["fallbacks"]
        if fallbacks is not None:
            fallbacks = (
                ()
                if fallbacks.strip().lower() == "none"
                else tuple(name.strip() for name in fallbacks.split(",") if name.strip())
            )
        exclude = options["exclude"]
        return {
            "strategy": options["strategy"],
            "fallbacks": fallbacks,
            "returns_method": options["returns"],
            "cov_method": options["cov"],
            "risk_free_rate": options["risk_free_rate"],
            "min_weight": options["min_weight"],
            "max_weight": options["max_weight"],
            "target_volatility": options["target_volatility"],
            "target_return": options["target_return"],
            "risk_aversion": options["risk_aversion"],
            "age": options["age"],
            "group_limits": tuple(options["group_limit"]) if options["group_limit"] is not None else None,
            "excluded": frozenset(s.strip().upper() for s in exclude.split(",") if s.strip()) if exclude else None,
        }

    def _run(self, options: dict) -> OptimizationResult:
        overrides = self._overrides(options)
        if options["lookback_days"] is not None and options["lookback_days"] < 2:
            raise ValueError(f"--lookback-days: must be at least 2, got {options['lookback_days']}")
        if options["portfolio"] is not None:
            return self._run_portfolio(options, overrides)
        if options["tickers"] is not None:
            symbols = [s.strip().upper() for s in options["tickers"].split(",") if s.strip()]
            if not symbols:
                raise ValueError("--tickers: give at least one symbol, e.g. SPY,BND")
            lookback = options["lookback_days"]
            settings = optimizer_settings_from_defaults(
                **overrides, **({"lookback_days": lookback} if lookback is not None else {})
            )
            prices = price_window(symbols, as_of=options["as_of"], lookback_days=settings.estimators.lookback_days)
            return optimize(prices, asset_info(symbols), settings)
        prices = read_wide_csv(options["prices_csv"])
        settings = optimizer_settings_from_defaults(**overrides, lookback_days=options["lookback_days"])
        return optimize(prices, _assets_for_csv(list(prices.columns)), settings)

    def _run_portfolio(self, options: dict, overrides: dict) -> OptimizationResult:
        portfolio = Portfolio.objects.filter(pk=options["portfolio"]).first()
        if portfolio is None:
            raise ValueError(f"--portfolio: no portfolio with id {options['portfolio']}")
        if options["lookback_days"] is not None:
            overrides["lookback_days"] = options["lookback_days"]
        result, allocation = portfolio_optimize(portfolio=portfolio, as_of=options["as_of"], **overrides)
        if not options["json"]:
            self.stdout.write(
                f"Stored as the targets of portfolio {portfolio.pk} ({portfolio.name}) for {allocation.as_of}"
            )
        return result

    # -- output -------------------------------------------------------------------------------

    def _print_table(self, result: OptimizationResult) -> None:
        performance = result.performance
        self.stdout.write(
            f"Strategy: {result.strategy}"
            + (f" (requested {result.requested_strategy})" if result.strategy != result.requested_strategy else "")
        )
        for step in result.fallbacks:
            self.stdout.write(f"  fallback: {step.strategy} failed: {step.reason}")
        if result.equity_share is not None:
            self.stdout.write(f"Glide path equity share: {result.equity_share:.1%}")
        for note in result.notes:
            self.stdout.write(f"  note: {note}")
        for warning in result.warnings:
            self.stdout.write(f"  warning: {warning.message}")
        as_of = result.as_of.date() if hasattr(result.as_of, "date") else result.as_of
        self.stdout.write(f"Prices up to {as_of}, {result.metrics.observations} daily returns\n")
        self.stdout.write(f"  {'symbol':<10}{'weight':>10}")
        weights = sorted(result.weights_dict().items(), key=lambda item: -item[1])
        for symbol, weight in weights:
            if weight >= 0.00005:
                self.stdout.write(f"  {symbol:<10}{weight:>10.2%}")
        dust = [symbol for symbol, weight in weights if weight < 0.00005]
        if dust:
            self.stdout.write(f"  below 0.01%: {', '.join(sorted(dust))}")
        self.stdout.write("")
        self.stdout.write(f"  expected return {performance['expected_return']:>8.2%}   (annual)")
        self.stdout.write(f"  volatility      {performance['volatility']:>8.2%}   (annual)")
        self.stdout.write(f"  Sharpe ratio    {performance['sharpe']:>8.3f}   (risk-free {result.risk_free_rate:.2%})")
        m = result.metrics
        self.stdout.write(f"  VaR 95% 1-day   {m.var_95_1d:>8.2%}   CVaR {m.cvar_95_1d:.2%}")
        self.stdout.write(f"  max drawdown    {m.max_drawdown:>8.2%}   effective assets {m.effective_assets:.1f}")


def _one_line(message: str) -> str:
    return " ".join(message.split())


def read_wide_csv(path: Path) -> pd.DataFrame:
    """A wide price file: first column dates, one column per symbol; empty cells are missing prices."""
    if not path.is_file():
        raise ValueError(f"--prices-csv: {path} does not exist")
    try:
        frame = pd.read_csv(path, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"--prices-csv: {path} is not a readable CSV ({_one_line(str(error))})") from None
    if frame.shape[1] == 0 or len(frame) < 2:
        raise ValueError(f"--prices-csv: {path} needs a date column, at least one symbol column and two rows")
    try:
        frame.index = pd.to_datetime(frame.index, format="ISO8601")
    except (ValueError, TypeError):
        raise ValueError(f"--prices-csv: the first column of {path} must hold dates like 2024-01-31") from None
    if frame.index.has_duplicates:
        duplicate = frame.index[frame.index.duplicated()][0]
        raise ValueError(f"--prices-csv: date {duplicate:%Y-%m-%d} appears twice in {path}")
    for column in frame.columns:
        converted = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column].notna() & converted.isna()
        if bad.any():
            raise ValueError(
                f"--prices-csv: column {column} has a non-numeric value {frame[column][bad].iloc[0]!r} "
                f"on {frame.index[bad][0]:%Y-%m-%d}"
            )
        frame[column] = converted
    frame.columns = [str(column).strip().upper() for column in frame.columns]
    return frame.sort_index()


def _assets_for_csv(symbols: list[str]) -> dict[str, AssetInfo]:
    """Asset data for a CSV run: stored instruments when the database is there, else the reference table."""
    try:
        return asset_info(symbols)
    except DatabaseError:
        from marketdata.reference import lookup

        return {s: AssetInfo(asset_class=lookup(s).asset_class, sector=lookup(s).sector) for s in symbols}
