"""The one settings module, driven by environment variables and an optional `.env`.

Every variable is read through a typed reader in `ground.env`; a bad
value raises `ConfigError`, which `manage.py`, `wsgi.py` and `asgi.py` turn
into one line on stderr and a non-zero exit. `.env.example` lists and explains
every variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ

from ground.env import ConfigError, Env

BASE_DIR = Path(__file__).resolve().parent.parent

# A `.env` next to manage.py fills variables the process environment lacks.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_VARIABLES = frozenset(
    {
        "SECRET_KEY",
        "ALPACA_API_KEY",
        "ALPACA_SECRET_KEY",
        "DATABASE_URL",
        "FIELD_ENCRYPTION_KEYS",
        "REDIS_URL",
        "EMAIL_URL",
        "EMAIL_HOST_PASSWORD",
    }
)
env = Env(secrets=SECRET_VARIABLES)

# --- Django core -------------------------------------------------------------

DEBUG = env.bool("DEBUG", False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
VALIDATE_REQUIRED_CONFIG = env.bool("VALIDATE_REQUIRED_CONFIG", False)
if VALIDATE_REQUIRED_CONFIG:
    # Production fails closed: debug pages show settings and tracebacks to every visitor, and a site
    # that answers any Host builds password-reset links to whatever host a request names.
    if DEBUG:
        raise ConfigError(
            f"DEBUG={os.environ.get('DEBUG', '')!r} is invalid: expected false when VALIDATE_REQUIRED_CONFIG=true "
            "(debug pages show settings and tracebacks to every visitor)"
        )
    if "*" in ALLOWED_HOSTS:
        raise ConfigError(
            f"ALLOWED_HOSTS={os.environ.get('ALLOWED_HOSTS', '')!r} is invalid: expected the site's own host names "
            "when VALIDATE_REQUIRED_CONFIG=true, not * (e.g. rebalancer.example.com)"
        )


def _local_secret_key() -> str:
    """A key generated once per checkout, so a fresh clone starts without setup."""
    path = BASE_DIR / ".local" / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", "")
if not SECRET_KEY:
    if VALIDATE_REQUIRED_CONFIG:
        raise ConfigError("SECRET_KEY is not set: required when VALIDATE_REQUIRED_CONFIG=true")
    SECRET_KEY = _local_secret_key()
elif len(SECRET_KEY) < 32:
    raise ConfigError("SECRET_KEY=(hidden) is invalid: expected at least 32 characters")


def _local_field_encryption_key() -> str:
    """A Fernet key generated once per checkout (like the secret key), for first runs and the demo."""
    from cryptography.fernet import Fernet

    path = BASE_DIR / ".local" / "field_encryption_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)
    return path.read_text().strip()


# Keys that encrypt broker credentials at rest, newest first: the first encrypts, all decrypt.
# Rotation: put a new key first, run `manage.py rotate_credentials`, then drop the old one.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", "")
if not FIELD_ENCRYPTION_KEYS:
    if VALIDATE_REQUIRED_CONFIG:
        raise ConfigError("FIELD_ENCRYPTION_KEYS is not set: required when VALIDATE_REQUIRED_CONFIG=true")
    FIELD_ENCRYPTION_KEYS = [_local_field_encryption_key()]
for _position, _key in enumerate(FIELD_ENCRYPTION_KEYS, start=1):
    try:
        from cryptography.fernet import Fernet

        Fernet(_key)
    except ValueError:
        raise ConfigError(
            f"FIELD_ENCRYPTION_KEYS=(hidden) is invalid: key {_position} is not a Fernet key (32 url-safe "
            'base64-encoded bytes; make one with python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())")'
        ) from None

INSTALLED_APPS = [
    # Django's admin on a site that asks staff with two-factor authentication for a verified session.
    "two_factor.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Two-factor authentication: authenticator apps (TOTP) and single-use recovery codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_q",
    "django_prometheus",
    "rebalancer_site",
    "marketdata",
    "optimization",
    "portfolios",
    "brokers",
]

MIDDLEWARE = [
    # First and last: request counts and latencies for /metrics (django_http_*).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves collected static files in production (gunicorn does not).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): this session entered a two-factor code (at login or since).
    "django_otp.middleware.OTPMiddleware",
    # Every page needs a login except those marked @login_not_required (login, sign-up, health).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "rebalancer_site.urls"
WSGI_APPLICATION = "rebalancer_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "rebalancer_site.context.site",
            ],
        },
    },
]

DATABASES = {"default": env.database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers wait for each other instead of failing at once (django-q2 shares the file).
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", 60, min_value=0)
    # PostgreSQL's JIT compiles a query when the planner expects millions of rows; the key-range
    # joins of the price store are misestimated that way and then spend 150 ms compiling a 60 ms query.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIMEZONE = env.timezone("TIMEZONE", "America/New_York")
TIME_ZONE = TIMEZONE
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # plotly.min.js from the installed plotly package, as static/vendor/plotly.min.js: one shared,
    # cacheable copy served by the app (no CDN: the reports work offline).
    "rebalancer_site.staticfiles.PlotlyFinder",
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# A password-reset link works for an hour (and once: it is void after the password changes).
PASSWORD_RESET_TIMEOUT = 60 * 60
# Two-factor authentication (two_factor): the name authenticator apps show, and
# the admin never shows a device's secret or recovery codes once they exist.
OTP_TOTP_ISSUER = "Portfolio rebalancer"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Self sign-up; otherwise staff create users in the admin.
ALLOW_SIGNUP = env.bool("ALLOW_SIGNUP", False)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed but not hashed: pages render even where collectstatic has not run (tests).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE = not DEBUG and env.bool("SECURE_COOKIES", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
# HTTPS: redirect plain HTTP and send HSTS. Off by default so a fresh container answers on
# http://localhost; turn both on wherever the site is reachable over HTTPS.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 0, min_value=0)
# HSTS for every subdomain too, and the browsers' preload list: only once every subdomain serves HTTPS.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", False)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
if env.bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

# --- E-mail: alerts to portfolio owners, password-reset links -------------------------------

# Either EMAIL_URL (one value, e.g. smtp+tls://USER:PASSWORD@HOST:587) or the EMAIL_* set below.
# With neither: SMTP on localhost:25, or printed to the console when DEBUG=true.
EMAIL_HOST = env.host("EMAIL_HOST", "localhost")
EMAIL_PORT = env.int("EMAIL_PORT", 25, min_value=1, max_value=65535)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", False)  # STARTTLS, usually port 587
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", False)  # TLS from the first byte, usually port 465
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
_email_server = env.email_url("EMAIL_URL")
_email_variables = [
    name
    for name in ("EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS", "EMAIL_USE_SSL")
    if env.is_set(name)
]
if _email_server is not None:
    if _email_variables:
        raise ConfigError(f"EMAIL_URL is invalid: expected either EMAIL_URL or {', '.join(_email_variables)}, not both")
    EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT = _email_server.backend, _email_server.host, _email_server.port
    EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = _email_server.user, _email_server.password
    EMAIL_USE_TLS, EMAIL_USE_SSL = _email_server.use_tls, _email_server.use_ssl
elif DEBUG and not _email_variables:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ConfigError(
        f"EMAIL_USE_SSL={os.environ.get('EMAIL_USE_SSL', '')!r} is invalid: expected false when EMAIL_USE_TLS is "
        "true (STARTTLS or TLS, not both)"
    )
# A mail server that does not answer must not hold up the daily run: give up after this long.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", 10, min_value=1, max_value=600)
# The sender of every message (alerts, password resets).
DEFAULT_FROM_EMAIL = env.email_address("DEFAULT_FROM_EMAIL", "rebalancer@localhost")

# --- Market data (the seed's variables) ---------------------------------------

TICKERS = env.symbols("TICKERS", "SPY,QQQ,VTI,VXUS,BND")
# `sqlite` is the seed's name for "the database": whichever DATABASE_URL names.
_storage = env.str("STORAGE_TYPE", "database", choices=("database", "sqlite", "parquet"))
STORAGE_TYPE = "database" if _storage == "sqlite" else _storage
STORAGE_PATH = (BASE_DIR / env.str("STORAGE_PATH", "data")).resolve()
BACKFILL_DAYS = env.int("BACKFILL_DAYS", 252, min_value=1, max_value=20_000)

PRICE_STORES = {
    "database": "marketdata.stores.database.DatabasePriceStore",
    "parquet": "marketdata.stores.parquet.ParquetPriceStore",
}
# Registry of price providers: name -> dotted path of a PriceProvider subclass.
PRICE_PROVIDER_REGISTRY = {
    "yfinance": "marketdata.providers.yahoo.YFinanceProvider",
    "alpaca": "marketdata.providers.alpaca.AlpacaProvider",
    "csv": "marketdata.providers.csv_files.CsvProvider",
    "sample": "marketdata.providers.sample.SampleProvider",
}
# The fallback chain: providers tried in this order for the symbols still missing.
PRICE_PROVIDERS = env.list("PRICE_PROVIDERS", "yfinance")
for _name in PRICE_PROVIDERS:
    if _name not in PRICE_PROVIDER_REGISTRY:
        raise ConfigError(
            f"PRICE_PROVIDERS={','.join(PRICE_PROVIDERS)!r} is invalid: expected names from "
            + ", ".join(PRICE_PROVIDER_REGISTRY)
        )
PRICE_FETCH_RETRIES = env.int("PRICE_FETCH_RETRIES", 3, min_value=0, max_value=10)
PRICE_FETCH_BACKOFF_SECONDS = env.float("PRICE_FETCH_BACKOFF_SECONDS", 2.0, min_value=0.0, max_value=300.0)
PRICE_FETCH_TIMEOUT_SECONDS = env.float("PRICE_FETCH_TIMEOUT_SECONDS", 60.0, min_value=1.0, max_value=3600.0)
# Options handed to each provider's constructor; rate limits are calls per minute.
PRICE_PROVIDER_OPTIONS = {
    "yfinance": {"rate_limit_per_minute": env.int("YFINANCE_RATE_LIMIT_PER_MINUTE", 30, min_value=1)},
    "alpaca": {
        "rate_limit_per_minute": env.int("ALPACA_DATA_RATE_LIMIT_PER_MINUTE", 180, min_value=1),
        "data_url": env.url("ALPACA_DATA_URL", "https://data.alpaca.markets"),
        "feed": env.str("ALPACA_DATA_FEED", "iex", choices=("iex", "sip")),
    },
    "csv": {"path": env.str("PRICE_CSV_PATH", "")},
    "sample": {},
}
SUSPICIOUS_MOVE_PCT = env.float("SUSPICIOUS_MOVE_PCT", 50.0, min_value=1.0, max_value=1000.0)

# --- Portfolio defaults (the seed's variables; each portfolio may override) ----

USER_AGE = env.int("USER_AGE", 35, min_value=18, max_value=110)
RISK_FREE_RATE = env.float("RISK_FREE_RATE", 0.02, min_value=-0.05, max_value=0.25)
LOOKBACK_DAYS = env.int("LOOKBACK_DAYS", 252, min_value=30, max_value=10_000)
MIN_WEIGHT = env.float("MIN_WEIGHT", 0.0, min_value=0.0, max_value=1.0)
# No per-asset cap by default: a cap is a choice (a 2-fund portfolio cannot put 40% in each, and
# a 3-fund one would be held at 40/40/20 whatever the glide path asks).
MAX_WEIGHT = env.float("MAX_WEIGHT", 1.0, min_value=0.001, max_value=1.0)
if MIN_WEIGHT > MAX_WEIGHT:
    raise ConfigError(
        f"MIN_WEIGHT={os.environ.get('MIN_WEIGHT', MIN_WEIGHT)!r} is invalid: expected at most "
        f"MAX_WEIGHT={os.environ.get('MAX_WEIGHT', MAX_WEIGHT)!r}"
    )
SAFE_PORTFOLIO_BONDS = env.float("SAFE_PORTFOLIO_BONDS", 0.8, min_value=0.0, max_value=1.0)
RETIREMENT_AGE = env.int("RETIREMENT_AGE", 65, min_value=40, max_value=100)
# Allocation strategy by name (see optimization.core.strategies.STRATEGIES) or dotted path of a
# plug-in function, and the strategies tried in turn when it fails.
OPTIMIZATION_STRATEGY = env.str("OPTIMIZATION_STRATEGY", "max_sharpe")
OPTIMIZATION_FALLBACKS = env.list("OPTIMIZATION_FALLBACKS", "min_volatility,equal_weight")
EXPECTED_RETURNS_METHOD = env.str("EXPECTED_RETURNS_METHOD", "compounded", choices=("mean", "compounded", "ema"))
COVARIANCE_METHOD = env.str("COVARIANCE_METHOD", "sample", choices=("sample", "ledoit_wolf", "exp"))
# Fewer daily returns than this for any asset in the lookback stops its optimization.
MIN_OBSERVATIONS = env.int("MIN_OBSERVATIONS", 20, min_value=2, max_value=10_000)
# Dotted path of a class with get_allocation_blend(age) -> (aggressive, safe); empty = built-in.
GLIDE_PATH_CLASS = env.str("GLIDE_PATH_CLASS", "")
# Group floors and caps separated by ';', e.g. "technology <= 30%; bonds >= 20%".
GROUP_LIMITS = [part.strip() for part in env.str("GROUP_LIMITS", "").split(";") if part.strip()]


def _check_optimizer_defaults() -> None:
    """Bad strategy names or group limits fail at start-up, not at 16:30 on a trading day."""
    from optimization.core.constraints import parse_group_limit
    from optimization.core.errors import ConfigurationError
    from optimization.core.names import PLANNING_STRATEGY_NAMES, STRATEGY_NAMES

    for variable, names in (
        ("OPTIMIZATION_STRATEGY", [OPTIMIZATION_STRATEGY]),
        ("OPTIMIZATION_FALLBACKS", OPTIMIZATION_FALLBACKS),
    ):
        for name in names:
            if name not in STRATEGY_NAMES and "." not in name:
                raise ConfigError(
                    f"{variable}={name!r} is invalid: expected one of {', '.join(STRATEGY_NAMES)} or a dotted path"
                )
    if REBALANCING_STRATEGY not in PLANNING_STRATEGY_NAMES and "." not in REBALANCING_STRATEGY:
        raise ConfigError(
            f"REBALANCING_STRATEGY={REBALANCING_STRATEGY!r} is invalid: expected one of "
            f"{', '.join(PLANNING_STRATEGY_NAMES)} or a dotted path"
        )
    for text in GROUP_LIMITS:
        try:
            parse_group_limit(text)
        except ConfigurationError as error:
            raise ConfigError(f"GROUP_LIMITS is invalid: {error}") from None


# --- Rebalancing defaults (each portfolio may override) -----------------------------

# The seed's drift threshold: the absolute band width (0.05 = 5 percentage points).
REBALANCE_THRESHOLD = env.float("REBALANCE_THRESHOLD", 0.05, min_value=0.0001, max_value=1.0)
BAND_MODE = env.str("BAND_MODE", "five_twenty_five", choices=("absolute", "relative", "five_twenty_five", "hybrid"))
BAND_RELATIVE = env.float("BAND_RELATIVE", 0.25, min_value=0.0001, max_value=1.0)
# Portfolio drift, sum |w - t| / 2, that triggers a rebalance; empty = off.
DRIFT_THRESHOLD = env.float("DRIFT_THRESHOLD", None, min_value=0.0001, max_value=1.0)
REBALANCE_CALENDAR = env.str(
    "REBALANCE_CALENDAR", "", choices=("", "daily", "weekly", "monthly", "quarterly", "annually")
)
COOLDOWN_DAYS = env.int("COOLDOWN_DAYS", 0, min_value=0, max_value=3660)
CASH_TRIGGER_WEIGHT = env.float("CASH_TRIGGER_WEIGHT", None, min_value=0.0001, max_value=1.0)
CASH_TRIGGER_USD = env.float("CASH_TRIGGER_USD", None, min_value=0.0, max_value=1e12)
REBALANCING_STRATEGY = env.str("REBALANCING_STRATEGY", "threshold")
COMMISSION_PER_TRADE_USD = env.float("COMMISSION_PER_TRADE_USD", 0.0, min_value=0.0, max_value=1000.0)
SPREAD_BPS = env.float("SPREAD_BPS", 5.0, min_value=0.0, max_value=1000.0)
IMPACT_BPS = env.float("IMPACT_BPS", 0.0, min_value=0.0, max_value=1000.0)
MIN_TRADE_USD = env.float("MIN_TRADE_USD", 10.0, min_value=0.0, max_value=1e9)
FRACTIONAL_SHARES = env.bool("FRACTIONAL_SHARES", True)
CASH_BUFFER_WEIGHT = env.float("CASH_BUFFER_WEIGHT", 0.0025, min_value=0.0, max_value=0.99)
MAX_TURNOVER = env.float("MAX_TURNOVER", None, min_value=0.0001, max_value=1.0)
# propose: plans wait for the owner's approval; auto: the daily run executes them.
PORTFOLIO_MODE = env.str("PORTFOLIO_MODE", "propose", choices=("propose", "auto"))
ORDER_TYPE = env.str("ORDER_TYPE", "market", choices=("market", "limit"))
_check_optimizer_defaults()
EXECUTION_TIME = env.clock_time("EXECUTION_TIME", "16:30")
# The nightly market-data refresh (TIMEZONE), and how long after the next open the daily run's
# plans of `auto` portfolios are executed when the market was closed when they were planned.
DATA_REFRESH_TIME = env.clock_time("DATA_REFRESH_TIME", "02:00")
EXECUTE_AFTER_OPEN_MINUTES = env.int("EXECUTE_AFTER_OPEN_MINUTES", 5, min_value=0, max_value=360)
# The daily run plans this many portfolios per task: their reads and writes are set-wise.
PIPELINE_BATCH_SIZE = env.int("PIPELINE_BATCH_SIZE", 500, min_value=1, max_value=5000)
# Due executions are queued this many runs per task (the queue's own work is paid once per task).
EXECUTION_BATCH_RUNS = env.int("EXECUTION_BATCH_RUNS", 20, min_value=1, max_value=1000)
# A queued run is due again after this long, should the task that took it have died unexecuted.
EXECUTION_REDISPATCH_MINUTES = env.int("EXECUTION_REDISPATCH_MINUTES", 30, min_value=5, max_value=1440)
# The owner is e-mailed when a portfolio's drift reaches this (sum |w - t| / 2).
DRIFT_ALERT_THRESHOLD = env.float("DRIFT_ALERT_THRESHOLD", 0.10, min_value=0.0001, max_value=1.0)
# Drift alerts are e-mailed as one digest per owner, once none of theirs came in for this long.
DRIFT_DIGEST_QUIET_MINUTES = env.int("DRIFT_DIGEST_QUIET_MINUTES", 10, min_value=0, max_value=1440)
# false: `setup_schedules` removes the daily-run schedule (a Kubernetes CronJob runs the day instead).
SCHEDULE_DAILY_RUN = env.bool("SCHEDULE_DAILY_RUN", True)

# --- Task queue (django-q2, the ORM broker on the default database) ----------
# A job that touches money must never run twice: one attempt, a task timeout below the redelivery
# delay (a task still running is never handed to a second worker), failures acknowledged, missed
# schedule slots not replayed. Clusters on several machines share the queue through the database
# (same Q_CLUSTER_NAME and SECRET_KEY).
Q_TASK_TIMEOUT_SECONDS = env.int("Q_TASK_TIMEOUT_SECONDS", 1800, min_value=60, max_value=86_400)
Q_KEEP_SUCCESSFUL_TASKS = env.int("Q_KEEP_SUCCESSFUL_TASKS", 10_000, min_value=0, max_value=10_000_000)
Q_CLUSTER = {
    "name": env.str("Q_CLUSTER_NAME", "rebalancer"),
    "orm": "default",
    "workers": env.int("Q_WORKERS", 2, min_value=1, max_value=64),
    "timeout": Q_TASK_TIMEOUT_SECONDS,
    "retry": Q_TASK_TIMEOUT_SECONDS + 600,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "time_zone": TIMEZONE,
    "poll": 1,
    # Successful tasks are kept without django-q2's own pruning: it locks and loads every saved
    # success on each save (quadratic over a 10,000-task day, and it ran on the workers' cores).
    # The `prune-task-history` schedule trims them to Q_KEEP_SUCCESSFUL_TASKS once a night instead.
    "save_limit": 0,
    # A worker process is replaced once its peak memory passes 768 MiB (memory of long days is
    # returned), or after 5,000 tasks; a new worker pays its imports and warm-up again, so not sooner.
    "recycle": 5_000,
    "max_rss": 768 * 1024,  # KiB
    "label": "Task queue",
}

# --- Brokers -------------------------------------------------------------------

BROKER_TYPE = env.str("BROKER_TYPE", "paper", choices=("paper", "alpaca", "ib"))
ALPACA_API_KEY = env.str("ALPACA_API_KEY", "")
ALPACA_SECRET_KEY = env.str("ALPACA_SECRET_KEY", "")
ALPACA_BASE_URL = env.url("ALPACA_BASE_URL", "https://paper-api.alpaca.markets")
IB_HOST = env.str("IB_HOST", "127.0.0.1")
IB_PORT = env.int("IB_PORT", 7497, min_value=1, max_value=65535)
IB_CLIENT_ID = env.int("IB_CLIENT_ID", 1, min_value=0, max_value=2**31 - 1)
# Real-money trading needs this, the account's live flag and the owner's opt-in (password re-entered).
ALLOW_LIVE_TRADING = env.bool("ALLOW_LIVE_TRADING", False)
ALPACA_LIVE_BASE_URL = env.url("ALPACA_LIVE_BASE_URL", "https://api.alpaca.markets")
# Every broker request gives up after this long (the Alpaca SDK sets no timeout of its own).
BROKER_TIMEOUT_SECONDS = env.float("BROKER_TIMEOUT_SECONDS", 10.0, min_value=0.1, max_value=300.0)
# The paper broker outside market hours: queue orders for the next session, or reject them.
PAPER_OUTSIDE_HOURS = env.str("PAPER_OUTSIDE_HOURS", "queue", choices=("queue", "reject"))

# Broker adapters by kind: dotted paths of `brokers.base.Broker` subclasses, imported lazily.
BROKER_ADAPTERS = {
    "paper": "brokers.adapters.paper.PaperBroker",
    "alpaca": "brokers.adapters.alpaca.AlpacaBroker",
    "ib": "brokers.adapters.ib.IBBroker",
}
# Options handed to each adapter (`AccountConfig.options`).
BROKER_OPTIONS = {
    "paper": {"outside_hours": PAPER_OUTSIDE_HOURS},
    "alpaca": {
        "paper_url": ALPACA_BASE_URL,
        "live_url": ALPACA_LIVE_BASE_URL,
        "timeout_s": BROKER_TIMEOUT_SECONDS,
        # The SDK's own retries on HTTP 429/504 (safe: every order carries a client order id).
        "retry_attempts": env.int("ALPACA_RETRY_ATTEMPTS", 3, min_value=0, max_value=10),
        "retry_wait_s": env.float("ALPACA_RETRY_WAIT_SECONDS", 3.0, min_value=0.0, max_value=60.0),
        # Two "no such order" answers this far apart confirm an order never arrived (then it is resent).
        "settlement_delay_s": env.float("ALPACA_SETTLEMENT_SECONDS", 2.0, min_value=0.0, max_value=60.0),
    },
    "ib": {
        "timeout_s": BROKER_TIMEOUT_SECONDS,
        # Two "no such order" answers this far apart confirm an order never reached TWS.
        "settlement_delay_s": env.float("IB_SETTLEMENT_SECONDS", 2.0, min_value=0.0, max_value=60.0),
    },
}

# Pre-trade controls, checked before any order of a run is sent.
MAX_ORDER_NOTIONAL_USD = env.float("MAX_ORDER_NOTIONAL_USD", 1_000_000.0, min_value=1.0, max_value=1e12)
MAX_RUN_TURNOVER = env.float("MAX_RUN_TURNOVER", 1.0, min_value=0.0001, max_value=1.0)
# Limit orders are priced this far through the last close (buys above, sells below).
PRICE_COLLAR_BPS = env.float("PRICE_COLLAR_BPS", 50.0, min_value=0.0, max_value=2000.0)
# How long execution waits for orders to finish before leaving the run to be resumed.
EXECUTION_WAIT_SECONDS = env.float("EXECUTION_WAIT_SECONDS", 120.0, min_value=0.0, max_value=3600.0)
EXECUTION_POLL_SECONDS = env.float("EXECUTION_POLL_SECONDS", 1.0, min_value=0.01, max_value=60.0)
# A run being executed is leased for this long (renewed at every step, write and broker call); a
# stalled or crashed executor's lease runs out and another may take the run over. It must outlast
# the longest broker call (timeout x retries): execution refuses to start otherwise.
EXECUTION_LEASE_SECONDS = env.int("EXECUTION_LEASE_SECONDS", 600, min_value=5, max_value=86_400)

if VALIDATE_REQUIRED_CONFIG:
    if "alpaca" in (BROKER_TYPE, *PRICE_PROVIDERS) and not (ALPACA_API_KEY and ALPACA_SECRET_KEY):
        raise ConfigError("ALPACA_API_KEY is not set: required when BROKER_TYPE=alpaca or PRICE_PROVIDERS names alpaca")
    if not DEBUG and ALLOWED_HOSTS == ["localhost", "127.0.0.1", "[::1]"]:
        raise ConfigError("ALLOWED_HOSTS is not set: required when VALIDATE_REQUIRED_CONFIG=true and DEBUG=false")

# --- Cache (throttling, shared state across processes) ----------------------------

# Redis when REDIS_URL is set (production: every web and worker process shares it); otherwise a
# per-process memory cache, enough for one machine.
REDIS_URL = env.str("REDIS_URL", "")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ConfigError("REDIS_URL=(hidden) is invalid: expected a redis://, rediss:// or unix:// URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "rebalancer"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "rebalancer"}
    )
}

# --- REST API (api/): /api/v1/, its OpenAPI schema and throttling -----------------------

INSTALLED_APPS += [
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    # Swagger UI's files as static files of an installed package: /api/docs/ works offline.
    "drf_spectacular_sidecar",
    "api",
]

# Request rates, e.g. "600/min" (s, min, hour, day): per user (token or session), per client IP address
# for anonymous callers, and per client IP address for every caller. Counted in the default cache (Redis
# when REDIS_URL is set, so every web process shares the counts); over the rate is HTTP 429 with Retry-After.
API_THROTTLE_RATES = {
    scope: env.str(variable, default)
    for scope, variable, default in (
        ("user", "API_THROTTLE_USER_RATE", "1200/min"),
        ("anon", "API_THROTTLE_ANON_RATE", "60/min"),
        ("ip", "API_THROTTLE_IP_RATE", "3000/min"),
    )
}
for _scope, _rate in API_THROTTLE_RATES.items():
    _count, _, _period = _rate.partition("/")
    if not (_count.isdigit() and int(_count) > 0 and _period in ("s", "sec", "min", "hour", "day")):
        raise ConfigError(
            f"API_THROTTLE_{_scope.upper()}_RATE={_rate!r} is invalid: expected requests/period, e.g. 600/min "
            "(period s, min, hour or day)"
        )
REST_FRAMEWORK = {
    # Tokens first: an anonymous request is answered 401 with WWW-Authenticate. The session serves
    # the browser (and Swagger UI), with DRF's CSRF check on unsafe methods.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": [
        "api.throttling.UserRateThrottle",
        "api.throttling.AnonRateThrottle",
        "api.throttling.IpRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": API_THROTTLE_RATES,
    # The client's address is REMOTE_ADDR unless this many reverse proxies append X-Forwarded-For
    # (0: the header is ignored, so a client cannot pick the address it is throttled as).
    "NUM_PROXIES": env.int("API_NUM_PROXIES", 0, min_value=0, max_value=10),
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    # Decimals travel as strings (exact); NaN and Infinity are refused by the JSON parser.
    "COERCE_DECIMAL_TO_STRING": True,
    "STRICT_JSON": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Portfolio rebalancer API",
    "DESCRIPTION": "Keep portfolios in sync and trigger rebalances. Authenticate with "
    "`Authorization: Bearer <token>` (create tokens at /accounts/tokens/).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # 3.1: JSON Schema proper, so a nullable object and a decimal sent as text or number are exact.
    "OAS_VERSION": "3.1.0",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "api.schema.strict_request_bodies"],
    # Swagger UI from the installed drf-spectacular-sidecar package: works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Deep links put a link inside each operation's toggle button, which keyboards and screen readers cannot reach.
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
}

# --- Operations: /health, /ready, /metrics (rebalancer_site.health, rebalancer_site.metrics) ---

# /ready fails when the task cluster's last heartbeat (the every-minute task
# rebalancer_site.tasks.heartbeat) is older than this.
READY_HEARTBEAT_MAX_AGE_MINUTES = env.int("READY_HEARTBEAT_MAX_AGE_MINUTES", 5, min_value=1, max_value=1440)
# /ready wants the close of the last session completed this long ago: the daily run fetches it after the close.
READY_PRICES_GRACE_MINUTES = env.int("READY_PRICES_GRACE_MINUTES", 120, min_value=0, max_value=2880)
# Clients that may read /metrics: addresses or CIDR networks; empty = everyone. Loopback and the
# private networks by default: a Prometheus on the host, in a container network or in a cluster
# scrapes from there. Requests relayed by a reverse proxy are refused whatever their address.
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", "127.0.0.1,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7")


def _check_metrics_allowed_ips() -> None:
    import ipaddress

    for network in METRICS_ALLOWED_IPS:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(
                f"METRICS_ALLOWED_IPS={os.environ.get('METRICS_ALLOWED_IPS', '')!r} is invalid: expected "
                "comma-separated IP addresses or CIDR networks, e.g. 127.0.0.1,10.0.0.0/8 (empty = everyone)"
            ) from None


_check_metrics_allowed_ips()
# Several processes (gunicorn workers, qcluster) sum their metrics through files in this directory;
# prometheus_client reads the variable itself, when imported. Empty = each process on its own.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", "")
if PROMETHEUS_MULTIPROC_DIR:
    if not os.path.isabs(PROMETHEUS_MULTIPROC_DIR):
        raise ConfigError(
            f"PROMETHEUS_MULTIPROC_DIR={PROMETHEUS_MULTIPROC_DIR!r} is invalid: expected an absolute path"
        )
    try:
        Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"PROMETHEUS_MULTIPROC_DIR={PROMETHEUS_MULTIPROC_DIR!r} is invalid: expected a writable directory "
            f"({exc.strerror})"
        ) from None
# A qcluster on a host without the web server serves that host's metrics on this port (0 = off).
METRICS_PORT = env.int("METRICS_PORT", 0, min_value=0, max_value=65535)
if METRICS_PORT and not PROMETHEUS_MULTIPROC_DIR:
    raise ConfigError(
        f"METRICS_PORT={METRICS_PORT!r} is invalid: expected PROMETHEUS_MULTIPROC_DIR to be set too "
        "(tasks run in qcluster's worker processes)"
    )
# Probes and scrapers speak plain HTTP inside the network: no redirect to HTTPS for them.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^metrics$"]

# --- Logging -------------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", "INFO", choices=("debug", "info", "warning", "error", "critical")).upper()
LOG_FORMAT = env.str("LOG_FORMAT", "json", choices=("json", "text"))
LOG_FILE_PATH = env.str("LOG_FILE_PATH", "")

_log_handlers = {
    "console": {
        "class": "logging.StreamHandler",
        "formatter": LOG_FORMAT,
        "filters": ["log_context", "redact_secrets"],
    }
}
if LOG_FILE_PATH:
    _log_file = (BASE_DIR / LOG_FILE_PATH).resolve()
    try:
        _log_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"LOG_FILE_PATH={LOG_FILE_PATH!r} is invalid: expected a writable path ({exc.strerror})"
        ) from None
    _log_handlers["file"] = {
        "class": "logging.handlers.WatchedFileHandler",
        "filename": str(_log_file),
        "formatter": LOG_FORMAT,
        "filters": ["log_context", "redact_secrets"],
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        # Bound log_context() fields on every record, secrets in them masked like redact_secrets does.
        "log_context": {
            "()": "ground.logcontext.LogContextFilter",
            "secrets": "cfg://filters.redact_secrets",
        },
        "redact_secrets": {
            "()": "rebalancer_site.logging.RedactSecretsFilter",
            "secrets": [
                SECRET_KEY,
                ALPACA_API_KEY,
                ALPACA_SECRET_KEY,
                DATABASES["default"].get("PASSWORD", ""),
                EMAIL_HOST_PASSWORD,
                *FIELD_ENCRYPTION_KEYS,
                REDIS_URL,
            ],
        },
    },
    "formatters": {
        "json": {"()": "rebalancer_site.logging.JsonFormatter"},
        "text": {
            "class": "ground.logcontext.ContextTextFormatter",  # appends the bound fields as key=value
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
    },
    "handlers": _log_handlers,
    "root": {"handlers": list(_log_handlers), "level": LOG_LEVEL},
    "loggers": {
        # Django's request logs at INFO are noise; keep warnings and errors.
        "django": {"level": "WARNING" if LOG_LEVEL in ("DEBUG", "INFO") else LOG_LEVEL, "propagate": True},
    },
}
