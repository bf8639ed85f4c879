"""import_config: the seed's config.json becomes a portfolio, all or nothing."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from portfolios.models import Holding, Portfolio

from .factories import make_user

pytestmark = pytest.mark.django_db

EXAMPLE = Path(settings.BASE_DIR) / "docs" / "examples" / "config.json"
SEED_CONFIG = {
    "data": {"tickers": ["SPY", "QQQ", "VTI", "VXUS", "BND"], "storage_type": "parquet", "backfill_days": 252},
    "optimization": {"user_age": 35, "risk_free_rate": 0.02, "min_weight": 0.05, "max_weight": 0.35},
    "executor": {"rebalance_threshold": 0.05, "order_type": "market"},
}


def import_config(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("import_config", str(path), *args, stdout=out)
    return out.getvalue()


def write(tmp_path: Path, config) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config) if not isinstance(config, str) else config)
    return path


def test_the_seeds_format_creates_a_portfolio(tmp_path) -> None:
    owner = make_user("alice")
    text = import_config(write(tmp_path, SEED_CONFIG), "--user", "alice", "--name", "From seed")
    portfolio = Portfolio.objects.get(owner=owner, name="From seed")
    assert f"Created portfolio 'From seed' (id {portfolio.pk}) for alice: BND, QQQ, SPY, VTI, VXUS" in text
    assert (portfolio.age, portfolio.risk_free_rate) == (35, Decimal("0.02"))
    assert (portfolio.min_weight, portfolio.max_weight) == (Decimal("0.05"), Decimal("0.35"))
    assert (portfolio.band_abs, portfolio.order_type) == (Decimal("0.05"), "market")
    assert "Skipped data.storage_type: a deployment setting, not imported (set STORAGE_TYPE)" in text
    assert "Skipped data.backfill_days" in text


def test_the_documented_example_with_holdings_and_rebalancing(tmp_path) -> None:
    make_user("bob")
    import_config(EXAMPLE, "--user", "bob")
    portfolio = Portfolio.objects.get(name="Imported 60/40")
    assert portfolio.cash_usd == Decimal(2500)
    assert {h.instrument.symbol: h.quantity for h in portfolio.holdings.select_related("instrument")} == {
        "SPY": Decimal(40),
        "BND": Decimal("120.5"),
    }
    assert (portfolio.rebalancing_strategy, portfolio.min_trade_usd, portfolio.cooldown_days) == (
        "minimize_trades",
        Decimal(50),
        5,
    )


def test_the_hybrid_band_unheld_targets_and_cash_flow_edge_are_imported(tmp_path) -> None:
    make_user("alice")
    options = {"band_mode": "hybrid", "unheld_outside_band": True, "cash_flow_to": "band_edge"}
    import_config(write(tmp_path, {**SEED_CONFIG, "rebalancing": options}), "--user", "alice")
    portfolio = Portfolio.objects.get()
    assert (portfolio.band_mode, portfolio.unheld_outside_band, portfolio.cash_flow_to) == ("hybrid", True, "band_edge")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({**SEED_CONFIG, "rebalancing": {"band_mode": "widest"}}, "band_mode: Value 'widest' is not a valid choice"),
        ({**SEED_CONFIG, "rebalancing": {"cash_flow_to": "edge"}}, "cash_flow_to: Value 'edge' is not a valid choice"),
        ({**SEED_CONFIG, "rebalancing": {"unheld_outside_band": "maybe"}}, "unheld_outside_band:"),
        ({"optimization": {"user_agee": 35}}, "optimization.user_agee: unknown setting"),
        ({"extras": {}}, "extras: unknown section"),
        ({"optimization": {"user_age": 12}}, "age: Ensure this value is greater than or equal to 18"),
        ({"optimization": {"min_weight": 0.5, "max_weight": 0.3}}, "min_weight"),
        ({"executor": {"rebalance_threshold": 0}}, "band_abs"),
        ({"data": {"tickers": "SPY"}}, "data.tickers: expected a list of ticker symbols"),
        ({**SEED_CONFIG, "portfolio": {"holdings": {"SPY": -3}}}, "quantity must not be negative"),
        ({**SEED_CONFIG, "optimization": {"manual_targets": {"SPY": 0.7, "BND": 0.2}}}, "weights sum to 0.9"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_files_save_nothing_and_name_the_key(tmp_path, config, message) -> None:
    make_user("alice")
    with pytest.raises(CommandError) as caught:
        import_config(write(tmp_path, config), "--user", "alice")
    assert message in str(caught.value)
    assert caught.value.returncode == 2
    assert Portfolio.objects.count() == 0 and Holding.objects.count() == 0


def test_unknown_user_and_duplicate_name(tmp_path) -> None:
    path = write(tmp_path, SEED_CONFIG)
    with pytest.raises(CommandError, match="--user: no user named 'nobody'"):
        import_config(path, "--user", "nobody")
    make_user("alice")
    import_config(path, "--user", "alice")
    with pytest.raises(CommandError, match="already has a portfolio named 'Imported portfolio'"):
        import_config(path, "--user", "alice")
    assert Portfolio.objects.count() == 1
