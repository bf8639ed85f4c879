"""manage.py rebalance: the needs table and trades, or one JSON object; clear one-line errors."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portfolios.models import RebalanceRun

from .factories import AS_OF, close, load_sample_prices, make_portfolio, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def portfolio():
    load_sample_prices(["SPY", "BND"])
    return make_portfolio(
        make_user(),
        symbols=["SPY", "BND"],
        holdings={"SPY": (Decimal(9000) / close("SPY")).quantize(Decimal("0.001")), "BND": 0},
        cash_usd=Decimal(1000),
        manual_targets={"SPY": "0.5", "BND": "0.5"},
        cash_buffer_weight=Decimal(0),
        spread_bps=Decimal(0),
    )


def rebalance(*args: str) -> str:
    out = io.StringIO()
    call_command("rebalance", *args, stdout=out)
    return out.getvalue()


def test_prints_needs_and_trades_and_stores_the_run(portfolio) -> None:
    text = rebalance("--portfolio", str(portfolio.pk), "--date", AS_OF.isoformat())
    assert f"on {AS_OF}: stored as run" in text
    assert "SPY        90.00%   50.00%   +40.00" in text.replace("  90.0", "  90.0")
    assert "sell SPY" in text and "buy  BND" in text
    assert text.index("sell SPY") < text.index("buy  BND")
    assert "SPY 40.0 pp over target (band 5.0 pp)" in text
    assert "Drift 50.00% -> 0.00%" in text
    # SPY, 90% of about $10,000 against 50% +/- 5 pp, is back inside at a total of 9,000 / 0.55.
    assert "Smallest deposit that puts every holding inside its band without selling (estimate): $6,363." in text
    assert RebalanceRun.objects.filter(portfolio=portfolio, trading_date=AS_OF).count() == 1

    again = rebalance("--portfolio", str(portfolio.pk), "--date", AS_OF.isoformat())
    assert "already planned as run" in again


def test_dry_run_with_another_strategy_stores_nothing(portfolio) -> None:
    text = rebalance(
        "--portfolio", str(portfolio.pk), "--date", AS_OF.isoformat(), "--dry-run", "--strategy", "cash_flow"
    )
    assert "dry run, not stored" in text
    assert "Strategy: cash_flow" in text
    assert "sell SPY" not in text and "buy  BND" in text
    assert RebalanceRun.objects.count() == 0


def test_json_is_one_object_with_decimal_strings(portfolio) -> None:
    payload = json.loads(rebalance("--portfolio", str(portfolio.pk), "--date", AS_OF.isoformat(), "--json"))
    assert payload["status"] == "planned" and payload["stored"] is True
    assert [(t["side"], t["symbol"]) for t in payload["trades"]] == [("sell", "SPY"), ("buy", "BND")]
    assert isinstance(payload["trades"][0]["quantity"], str)
    assert Decimal(payload["cash_after_usd"]) >= 0
    assert {need["symbol"] for need in payload["needs"]} == {"SPY", "BND"}
    assert payload["targets"] == {"BND": "0.5", "SPY": "0.5"}


def test_a_deposit_larger_than_the_portfolio_says_selling_is_the_practical_way(portfolio) -> None:
    # SPY at 90% against 10% +/- 5 pp: only a total six times the portfolio dilutes it back inside.
    portfolio.manual_targets = {"SPY": "0.1", "BND": "0.9"}
    portfolio.band_mode = "absolute"
    portfolio.save()
    text = rebalance("--portfolio", str(portfolio.pk), "--date", AS_OF.isoformat(), "--dry-run")
    assert "Smallest deposit that puts every holding inside its band without selling (estimate): $50," in text
    assert "More than the portfolio is worth: SPY is so far above its band that only selling it" in text


def test_deposit_is_planned_with_cash_flow(portfolio) -> None:
    payload = json.loads(
        rebalance(
            "--portfolio",
            str(portfolio.pk),
            "--date",
            AS_OF.isoformat(),
            "--json",
            "--dry-run",
            "--strategy",
            "cash_flow",
            "--cash-flow",
            "8000",
        )
    )
    assert [t["side"] for t in payload["trades"]] == ["buy"]
    assert Decimal(payload["cash_flow_usd"]) == Decimal(8000)
    # 9,000 in SPY needs 18,000 of value for 50%: with the 8,000 deposit nothing more is needed.
    assert Decimal(payload["deposit_needed_usd"]) < Decimal(1)
    assert abs(Decimal(payload["trades"][0]["notional_usd"]) - Decimal(9000)) < Decimal(1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--portfolio", "999"], "portfolio 999 does not exist"),
        (["--date", "2025-06-29"], "as_of: 2025-06-29 is not an NYSE trading day"),
        (["--strategy", "nonsense"], "rebalancing_strategy: 'nonsense' is not one of"),
        (["--date", "2025-06-30", "--cash-flow", "-1000000"], "cash_flow_usd: the withdrawal exceeds"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(portfolio, args, message) -> None:
    if "--portfolio" not in args:
        args = ["--portfolio", str(portfolio.pk), *args]
    with pytest.raises(CommandError) as caught:
        rebalance(*args, "--dry-run")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.returncode == 2
