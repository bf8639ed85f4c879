"""Settings: typed env readers, one-line start-up errors, logging formats and secret redaction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest

from rebalancer_site.env import ConfigError, Env

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs manage.py in a fresh interpreter with a clean, explicit environment."""
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    base.update({"DJANGO_SETTINGS_MODULE": "rebalancer_site.settings", "PYTHONDONTWRITEBYTECODE": "1"})
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


class TestEnvReaders:
    def test_defaults_when_unset(self):
        env = Env({})
        assert env.float("MAX_WEIGHT", 0.4, min_value=0, max_value=1) == 0.4
        assert env.int("BACKFILL_DAYS", 252, min_value=1) == 252
        assert env.symbols("TICKERS", "SPY,QQQ,VTI,VXUS,BND") == ["SPY", "QQQ", "VTI", "VXUS", "BND"]
        assert env.clock_time("EXECUTION_TIME", "16:30") == time(16, 30)
        assert env.timezone("TIMEZONE", "America/New_York") == "America/New_York"
        assert env.bool("DEBUG", False) is False

    @pytest.mark.parametrize(
        ("name", "value", "call", "message"),
        [
            (
                "MAX_WEIGHT",
                "abc",
                lambda e: e.float("MAX_WEIGHT", 0.4, min_value=0, max_value=1),
                "a number from 0 to 1",
            ),
            (
                "MAX_WEIGHT",
                "nan",
                lambda e: e.float("MAX_WEIGHT", 0.4, min_value=0, max_value=1),
                "a number from 0 to 1",
            ),
            ("IB_PORT", "70000", lambda e: e.int("IB_PORT", 7497, min_value=1, max_value=65535), "from 1 to 65535"),
            (
                "STORAGE_TYPE",
                "mongo",
                lambda e: e.str("STORAGE_TYPE", "database", choices=("database", "parquet")),
                "one of database, parquet",
            ),
            ("TIMEZONE", "Mars/Olympus", lambda e: e.timezone("TIMEZONE", "UTC"), "IANA time zone"),
            ("EXECUTION_TIME", "25:00", lambda e: e.clock_time("EXECUTION_TIME", "16:30"), "HH:MM"),
            ("DEBUG", "maybe", lambda e: e.bool("DEBUG", False), "true or false"),
            ("TICKERS", "SPY,b@d", lambda e: e.symbols("TICKERS", "SPY"), "ticker symbols"),
            ("ALPACA_BASE_URL", "ftp://x", lambda e: e.url("ALPACA_BASE_URL", "https://a"), "http"),
        ],
    )
    def test_bad_values_name_variable_value_and_accepted(self, name, value, call, message):
        with pytest.raises(ConfigError) as info:
            call(Env({name: value}))
        text = str(info.value)
        assert text.startswith(f"{name}={value!r} is invalid: expected")
        assert message in text
        assert "\n" not in text

    def test_secret_values_are_never_echoed(self):
        env = Env({"ALPACA_SECRET_KEY": "sk-very-secret"}, secrets=frozenset({"ALPACA_SECRET_KEY"}))
        with pytest.raises(ConfigError) as info:
            env.str("ALPACA_SECRET_KEY", "", choices=("a",))
        assert "sk-very-secret" not in str(info.value)
        assert "(hidden)" in str(info.value)

    def test_database_url_error_hides_password(self):
        with pytest.raises(ConfigError) as info:
            Env({"DATABASE_URL": "mysql://u:hunter2@db/x"}).database("DATABASE_URL", "sqlite:///x")
        assert "hunter2" not in str(info.value)
        assert str(info.value).startswith("DATABASE_URL is invalid")

    def test_postgres_url_parses(self):
        config = Env({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/app"}).database("DATABASE_URL", "")
        assert config["ENGINE"] == "django.db.backends.postgresql"
        assert (config["HOST"], config["PORT"], config["NAME"]) == ("127.0.0.1", 5432, "app")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"MAX_WEIGHT": "abc"},
            "configuration error: MAX_WEIGHT='abc' is invalid: expected a number from 0.001 to 1.0",
        ),
        (
            {"MIN_WEIGHT": "0.5", "MAX_WEIGHT": "0.4"},
            "configuration error: MIN_WEIGHT='0.5' is invalid: expected at most MAX_WEIGHT='0.4'",
        ),
        (
            {"STORAGE_TYPE": "mongo"},
            "configuration error: STORAGE_TYPE='mongo' is invalid: expected one of database, sqlite, parquet",
        ),
        (
            {"TIMEZONE": "Mars/Olympus"},
            "configuration error: TIMEZONE='Mars/Olympus' is invalid: "
            "expected an IANA time zone name such as America/New_York",
        ),
        (
            {
                "BROKER_TYPE": "alpaca",
                "VALIDATE_REQUIRED_CONFIG": "true",
                "SECRET_KEY": "x" * 40,
                "FIELD_ENCRYPTION_KEYS": "YXl4U2FtcGxlS2V5MzJCeXRlc0xvbmdGb3JGZXJuZXQ=",
                "DEBUG": "true",
            },
            "configuration error: ALPACA_API_KEY is not set: required when BROKER_TYPE=alpaca or PRICE_PROVIDERS "
            "names alpaca",
        ),
        (
            {"VALIDATE_REQUIRED_CONFIG": "true", "SECRET_KEY": "x" * 40, "DEBUG": "true"},
            "configuration error: FIELD_ENCRYPTION_KEYS is not set: required when VALIDATE_REQUIRED_CONFIG=true",
        ),
        (
            {"FIELD_ENCRYPTION_KEYS": "not-a-fernet-key"},
            "configuration error: FIELD_ENCRYPTION_KEYS=(hidden) is invalid: key 1 is not a Fernet key (32 url-safe "
            'base64-encoded bytes; make one with python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())")',
        ),
    ],
)
def test_bad_value_stops_startup_with_one_line(env, expected):
    result = run_manage("check", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [expected]


def test_seed_storage_type_sqlite_means_database_and_start_up_succeeds():
    result = run_manage(
        "shell", "-c", "from django.conf import settings; print(settings.STORAGE_TYPE)", env={"STORAGE_TYPE": "sqlite"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "database"


LOG_SNIPPET = (
    "import logging; logging.getLogger('rebalancer.test').warning('order placed', extra={'symbol': 'SPY'}); "
    "logging.getLogger('rebalancer.test').warning('key is %s', 'AKSECRETKEY123456')"
)


def test_logs_are_json_lines_by_default_with_secrets_redacted():
    result = run_manage("shell", "-c", LOG_SNIPPET, env={"ALPACA_API_KEY": "AKSECRETKEY123456"})
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.strip().splitlines()]
    assert lines[0]["level"] == "WARNING"
    assert lines[0]["message"] == "order placed"
    assert lines[0]["symbol"] == "SPY"
    assert lines[1]["message"] == "key is [redacted]"
    assert "AKSECRETKEY123456" not in result.stderr


def test_text_logs_to_file_at_configured_level(tmp_path):
    log_file = tmp_path / "logs" / "app.log"
    result = run_manage(
        "shell",
        "-c",
        "import logging; log = logging.getLogger('rebalancer.test'); log.info('hidden'); log.error('shown')",
        env={"LOG_FORMAT": "text", "LOG_FILE_PATH": str(log_file), "LOG_LEVEL": "ERROR"},
    )
    assert result.returncode == 0, result.stderr
    content = log_file.read_text()
    assert "ERROR rebalancer.test: shown" in content
    assert "hidden" not in content
    assert not content.lstrip().startswith("{")
