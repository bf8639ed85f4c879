"""`.env.example` documents every variable settings.py reads, and its values start the app."""

from __future__ import annotations

import re
from pathlib import Path

from rebalancer_site.tests.test_settings import run_manage

ROOT = Path(__file__).resolve().parents[2]


def test_every_variable_read_by_settings_is_documented():
    read = set(re.findall(r'env\.[a-z_]+\("([A-Z_]+)"', (ROOT / "rebalancer_site" / "settings.py").read_text()))
    documented = set(re.findall(r"^#? ?([A-Z_]+)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))
    assert read - documented == set()
    seed = {
        "TICKERS", "STORAGE_TYPE", "STORAGE_PATH", "BACKFILL_DAYS", "USER_AGE", "RISK_FREE_RATE", "LOOKBACK_DAYS",
        "MIN_WEIGHT", "MAX_WEIGHT", "SAFE_PORTFOLIO_BONDS", "BROKER_TYPE", "ALPACA_API_KEY", "ALPACA_SECRET_KEY",
        "ALPACA_BASE_URL", "IB_HOST", "IB_PORT", "IB_CLIENT_ID", "REBALANCE_THRESHOLD", "ORDER_TYPE",
        "EXECUTION_TIME", "TIMEZONE", "LOG_LEVEL", "LOG_FILE_PATH", "LOG_FORMAT", "VALIDATE_REQUIRED_CONFIG",
    }  # fmt: skip
    assert seed <= read


def test_the_example_file_as_env_starts_the_app(tmp_path):
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z_]+)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    result = run_manage("check", env=values)
    assert result.returncode == 0, result.stderr
