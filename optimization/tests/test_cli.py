"""python manage.py optimize: the seed's optimizer entry point."""

from __future__ import annotations

import io
import json
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from marketdata.models import Instrument
from marketdata.services import prices_fetch
from optimization.models import TargetAllocation
from portfolios.models import Portfolio
from rebalancer_site.tests.test_settings import run_manage

pytestmark = pytest.mark.django_db  # a CSV run still reads asset classes from stored instruments

PYPFOPT_TESTS = "pyportfolioopt/pyportfolioopt__tests_resources__stock_prices.csv"
AS_OF = date(2025, 6, 30)


def optimize(*args: str) -> str:
    out = io.StringIO()
    call_command("optimize", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def csv_prices(tmp_path: Path) -> Path:
    """A wide CSV of three synthetic assets with distinct drifts (seeded)."""
    rng = np.random.default_rng(7)
    days = pd.bdate_range("2023-01-02", periods=300)
    drifts, vols = np.array([0.0008, 0.0004, 0.0001]), np.array([0.015, 0.010, 0.004])
    noise = rng.standard_normal((len(days), 3))
    noise = (noise - noise.mean(axis=0)) / noise.std(axis=0)  # realised means and vols are exactly as set
    returns = drifts + vols * noise
    prices = 100 * np.cumprod(1 + returns, axis=0)
    path = tmp_path / "prices.csv"
    pd.DataFrame(prices, index=days.rename("date"), columns=["AAA", "BBB", "CCC"]).to_csv(path)
    return path


def test_json_output_is_exactly_one_object_with_the_seed_shape(csv_prices: Path) -> None:
    payload = json.loads(optimize("--prices-csv", str(csv_prices), "--max-weight", "1", "--json"))
    assert set(payload) == {"strategy", "weights", "performance", "fallbacks"}
    assert payload["strategy"] == "max_sharpe"
    assert set(payload["weights"]) == {"AAA", "BBB", "CCC"}
    assert abs(sum(payload["weights"].values()) - 1) < 1e-12
    assert set(payload["performance"]) == {"expected_return", "volatility", "sharpe"}
    assert payload["fallbacks"] == []


def test_table_output_lists_weights_and_performance(csv_prices: Path) -> None:
    text = optimize("--prices-csv", str(csv_prices), "--strategy", "min_volatility", "--max-weight", "0.6")
    assert "Strategy: min_volatility" in text
    assert "CCC" in text and "60.00%" in text  # the calmest asset hits its cap
    assert "Sharpe ratio" in text and "VaR 95% 1-day" in text


def test_fallback_is_reported(csv_prices: Path) -> None:
    payload = json.loads(
        optimize("--prices-csv", str(csv_prices), "--risk-free-rate", "0.9", "--max-weight", "1", "--json")
    )
    assert payload["strategy"] == "min_volatility"
    assert payload["fallbacks"][0]["strategy"] == "max_sharpe"
    assert payload["fallbacks"][0]["error"] == "NoAssetBeatsRiskFree"
    assert "risk-free rate 90.00%" in payload["fallbacks"][0]["reason"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--min-weight", "0.4", "--max-weight", "1"],
            "MIN_WEIGHT: 3 assets at least 40% each add up to 120%; lower it to at most 33.33%",
        ),
        (["--max-weight", "0.3"], "MAX_WEIGHT: 3 assets at most 30% each add up to 90%; raise it to at least 33.34%"),
        (["--strategy", "efficient_risk"], "target_volatility: the efficient_risk strategy needs a target volatility"),
        (["--strategy", "bogus"], "strategy: 'bogus' is not one of"),
        (["--lookback-days", "1"], "--lookback-days: must be at least 2"),
        (["--group-limit", "tech 30"], "group limit 'tech 30': expected NAME <= PERCENT"),
    ],
)
def test_bad_input_is_command_error_with_exit_code_2(csv_prices: Path, args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as caught:
        optimize("--prices-csv", str(csv_prices), "--fallbacks", "none", *args)
    assert caught.value.returncode == 2
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("date,AAA\n2024-01-02,1\n2024-01-02,2\n2024-01-03,3\n", "date 2024-01-02 appears twice"),
        ("date,AAA\n2024-01-02,1\n2024-01-03,abc\n", "column AAA has a non-numeric value 'abc' on 2024-01-03"),
        ("date,AAA\nyesterday,1\ntoday,2\n", "must hold dates like 2024-01-31"),
        ("", "is not a readable CSV"),
    ],
)
def test_bad_csv_is_explained(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        optimize("--prices-csv", str(path))


def test_exit_code_and_single_line_in_a_real_process(csv_prices: Path) -> None:
    done = run_manage("optimize", "--prices-csv", str(csv_prices), "--min-weight", "0.5", "--max-weight", "1")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().count("\n") == 0
    assert (
        "MIN_WEIGHT: 3 assets at least 50% each add up to 150%; lower it to at most 33.33% or remove assets"
        in done.stderr
    )


@pytest.mark.realdata
def test_json_reproduces_pyportfolioopt_on_its_test_file(shared_data: Path) -> None:
    pypfopt = pytest.importorskip("pypfopt")
    path = shared_data / PYPFOPT_TESTS
    payload = json.loads(optimize("--prices-csv", str(path), "--max-weight", "1", "--min-weight", "0", "--json"))
    prices = pd.read_csv(path, index_col=0, parse_dates=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mu = pypfopt.expected_returns.mean_historical_return(prices)
        cov = pypfopt.risk_models.sample_cov(prices)
        frontier = pypfopt.EfficientFrontier(mu, cov)
        frontier.max_sharpe(risk_free_rate=0.02)
        expected, volatility, sharpe = frontier.portfolio_performance(risk_free_rate=0.02)
    ours = payload["performance"]
    assert abs(ours["expected_return"] - expected) < 1e-6
    assert abs(ours["volatility"] - volatility) < 1e-6
    assert abs(ours["sharpe"] - sharpe) < 1e-6
    theirs = frontier.clean_weights(cutoff=0, rounding=None)
    assert max(abs(payload["weights"][symbol] - weight) for symbol, weight in theirs.items()) < 1e-4


def test_tickers_read_prices_from_the_store() -> None:
    prices_fetch(symbols=["SPY", "BND", "GLD"], provider_names=["sample"], start=date(2024, 1, 2), end=AS_OF)
    payload = json.loads(
        optimize("--tickers", "spy,bnd,gld", "--as-of", AS_OF.isoformat(), "--strategy", "risk_parity", "--json")
    )
    assert payload["strategy"] == "risk_parity"
    assert set(payload["weights"]) == {"SPY", "BND", "GLD"}


def test_tickers_without_prices_name_them() -> None:
    with pytest.raises(CommandError, match=r"no stored prices .* for ZZZ"):
        optimize("--tickers", "ZZZ", "--as-of", AS_OF.isoformat())


def test_portfolio_targets_are_stored_and_cli_options_override_its_policy() -> None:
    symbols = ["SPY", "QQQ", "BND", "AGG"]
    prices_fetch(symbols=symbols, provider_names=["sample"], start=date(2024, 1, 2), end=AS_OF)
    owner = get_user_model().objects.create_user("bob", password="pw-not-used-123")
    portfolio = Portfolio.objects.create(owner=owner, name="Main", age=50, strategy="max_sharpe")
    portfolio.instruments.set(Instrument.objects.filter(symbol__in=symbols))
    text = optimize("--portfolio", str(portfolio.pk), "--as-of", AS_OF.isoformat(), "--strategy", "min_volatility")
    assert "Stored as the targets of portfolio" in text
    allocation = TargetAllocation.objects.get(portfolio=portfolio)
    assert allocation.result.requested_strategy == "min_volatility"
    assert allocation.result.equity_share is not None
    with pytest.raises(CommandError, match="no portfolio with id 999"):
        optimize("--portfolio", "999")
