"""Settings: typed env readers, one-line start-up errors, logging formats and secret redaction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest

from ground.env import ConfigError, Env

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

    @pytest.mark.parametrize(
        "url", ["smtp://u:hunter2@mail.example.com:bad", "ftp://u:hunter2@mail.example.com", "smtp://u:hunter2@/x"]
    )
    def test_email_url_error_hides_the_url_and_its_password(self, url):
        with pytest.raises(ConfigError) as info:
            Env({"EMAIL_URL": url}).email_url("EMAIL_URL")
        assert "hunter2" not in str(info.value)
        assert str(info.value).startswith("EMAIL_URL is invalid: expected smtp://")

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
                "ALLOWED_HOSTS": "rebalancer.example.com",
            },
            "configuration error: ALPACA_API_KEY is not set: required when BROKER_TYPE=alpaca or PRICE_PROVIDERS "
            "names alpaca",
        ),
        (
            {"VALIDATE_REQUIRED_CONFIG": "true", "SECRET_KEY": "x" * 40, "ALLOWED_HOSTS": "rebalancer.example.com"},
            "configuration error: FIELD_ENCRYPTION_KEYS is not set: required when VALIDATE_REQUIRED_CONFIG=true",
        ),
        (
            {"FIELD_ENCRYPTION_KEYS": "not-a-fernet-key"},
            "configuration error: FIELD_ENCRYPTION_KEYS=(hidden) is invalid: key 1 is not a Fernet key (32 url-safe "
            'base64-encoded bytes; make one with python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())")',
        ),
        # Production fails closed: no debug pages, no site that answers every Host.
        (
            {"VALIDATE_REQUIRED_CONFIG": "true", "DEBUG": "true", "ALLOWED_HOSTS": "rebalancer.example.com"},
            "configuration error: DEBUG='true' is invalid: expected false when VALIDATE_REQUIRED_CONFIG=true (debug "
            "pages show settings and tracebacks to every visitor)",
        ),
        (
            {"VALIDATE_REQUIRED_CONFIG": "true", "ALLOWED_HOSTS": "rebalancer.example.com,*"},
            "configuration error: ALLOWED_HOSTS='rebalancer.example.com,*' is invalid: expected the site's own host "
            "names when VALIDATE_REQUIRED_CONFIG=true, not * (e.g. rebalancer.example.com)",
        ),
        # E-mail: one line naming the variable; a URL or password is never echoed.
        (
            {"EMAIL_URL": "smtp://alerts:hunter2-smtp@mail.example.com:notaport"},
            "configuration error: EMAIL_URL is invalid: expected smtp://[USER:PASSWORD@]HOST[:PORT], smtp+tls://... "
            "(STARTTLS, port 587 by default), smtp+ssl://... (TLS, port 465 by default), consolemail://, dummymail:// "
            "or memorymail:// (percent-encode @ : / in the user name and password)",
        ),
        (
            {"EMAIL_URL": "smtp+tls://alerts:hunter2-smtp@mail.example.com", "EMAIL_HOST": "other.example.com"},
            "configuration error: EMAIL_URL is invalid: expected either EMAIL_URL or EMAIL_HOST, not both",
        ),
        (
            {"EMAIL_PORT": "smtp"},
            "configuration error: EMAIL_PORT='smtp' is invalid: expected a whole number from 1 to 65535",
        ),
        (
            {"EMAIL_USE_TLS": "true", "EMAIL_USE_SSL": "true"},
            "configuration error: EMAIL_USE_SSL='true' is invalid: expected false when EMAIL_USE_TLS is true "
            "(STARTTLS or TLS, not both)",
        ),
        (
            {"EMAIL_HOST_PASSWORD": "hunter2-smtp", "EMAIL_TIMEOUT": "0"},
            "configuration error: EMAIL_TIMEOUT='0' is invalid: expected a whole number from 1 to 600",
        ),
        (
            {"DEFAULT_FROM_EMAIL": "alerts at example.com"},
            "configuration error: DEFAULT_FROM_EMAIL='alerts at example.com' is invalid: expected an e-mail address, "
            "e.g. alerts@example.com or Rebalancer <alerts@example.com>",
        ),
    ],
)
def test_bad_value_stops_startup_with_one_line(env, expected):
    result = run_manage("check", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [expected]


def test_debug_and_any_host_are_accepted_outside_production():
    result = run_manage("check", env={"DEBUG": "true", "ALLOWED_HOSTS": "*"})
    assert result.returncode == 0, result.stderr


MAIL_SETTINGS = (
    "from django.conf import settings as s; "
    "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, s.EMAIL_USE_TLS, s.EMAIL_USE_SSL, "
    "s.EMAIL_HOST_PASSWORD == 'p@ss/word', s.EMAIL_TIMEOUT, s.DEFAULT_FROM_EMAIL, sep='|')"
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"EMAIL_URL": "smtp+tls://alerts%40example.com:p%40ss%2Fword@smtp.example.com:2587"},
            "django.core.mail.backends.smtp.EmailBackend|smtp.example.com|2587|alerts@example.com|True|False|True|10|"
            "rebalancer@localhost",
        ),
        (
            {"EMAIL_URL": "smtp+ssl://alerts:p%40ss%2Fword@smtp.example.com", "DEFAULT_FROM_EMAIL": "Alerts <a@x.org>"},
            "django.core.mail.backends.smtp.EmailBackend|smtp.example.com|465|alerts|False|True|True|10|"
            "Alerts <a@x.org>",
        ),
        (
            {"EMAIL_URL": "consolemail://", "EMAIL_TIMEOUT": "30"},
            "django.core.mail.backends.console.EmailBackend||0||False|False|False|30|rebalancer@localhost",
        ),
        (
            {
                "EMAIL_HOST": "10.0.0.25",
                "EMAIL_PORT": "587",
                "EMAIL_HOST_USER": "alerts",
                "EMAIL_HOST_PASSWORD": "p@ss/word",
                "EMAIL_USE_TLS": "true",
            },
            "django.core.mail.backends.smtp.EmailBackend|10.0.0.25|587|alerts|True|False|True|10|rebalancer@localhost",
        ),
        # Nothing set: a local mail server, or the console for a developer (DEBUG).
        ({}, "django.core.mail.backends.smtp.EmailBackend|localhost|25||False|False|False|10|rebalancer@localhost"),
        (
            {"DEBUG": "true"},
            "django.core.mail.backends.console.EmailBackend|localhost|25||False|False|False|10|rebalancer@localhost",
        ),
    ],
)
def test_mail_settings_come_from_email_url_or_the_email_variables(env, expected):
    result = run_manage("shell", "-c", MAIL_SETTINGS, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


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


HSTS_SETTINGS = (
    "from django.conf import settings as s; "
    "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, sep='|')"
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "0|False|False"),
        (
            {
                "SECURE_HSTS_SECONDS": "31536000",
                "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
                "SECURE_HSTS_PRELOAD": "true",
            },
            "31536000|True|True",
        ),
    ],
)
def test_the_hsts_options_are_read_from_the_environment(env, expected):
    """docs/deployment.md documents them: they must reach Django's security middleware."""
    result = run_manage("shell", "-c", HSTS_SETTINGS, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected
