"""/metrics: the project's metrics with their values, django-prometheus's, the client allowlist,
summing over processes (multiprocess mode), the gunicorn hooks and the qcluster's own endpoint."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ground import metrics as instruments
from portfolios import metrics as portfolio_gauges
from portfolios.models import RebalanceRun
from portfolios.tests.factories import close, make_portfolio, make_user
from rebalancer_site import metrics
from rebalancer_site.tests.test_settings import run_manage

ROOT = Path(__file__).resolve().parents[2]
PROJECT_METRICS = [
    "portfolio_rebalancer_execution_time_seconds",
    "portfolio_rebalancer_runs_total",
    "portfolio_rebalancer_success_rate",
    "portfolio_rebalancer_portfolio_drift",
    "portfolio_rebalancer_trades_executed_total",
]


def scrape(client, **extra) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return parse(response.content.decode())


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def run(portfolio, trading_date: date, status: str, drift: str | None) -> RebalanceRun:
    return RebalanceRun.objects.create(
        portfolio=portfolio,
        trading_date=trading_date,
        status=status,
        trigger="drift above threshold",
        drift_before=None if drift is None else Decimal(drift),
    )


@pytest.mark.django_db
def test_metrics_show_the_project_metrics_with_their_values(client, prices, clock):
    before = scrape(client)
    instruments.observe_step("plan", 0.25)
    instruments.observe_step("plan", 1.75)
    instruments.run_finished(success=True)
    instruments.run_finished(success=False)
    instruments.trades_executed(side="buy", broker="paper", count=2)
    instruments.trades_executed(side="SELL", broker="alpaca")
    owner = make_user()
    # Core holds $3,000 of SPY and $1,000 of BND against 50/50 targets: drift 25%, whatever its runs said.
    spy, bnd = (Decimal(usd) / close(symbol) for symbol, usd in (("SPY", 3000), ("BND", 1000)))
    core = make_portfolio(
        owner,
        name="Core",
        symbols=["SPY", "BND"],
        holdings={"SPY": spy.quantize(Decimal("1e-9")), "BND": bnd.quantize(Decimal("1e-9"))},
        manual_targets={"SPY": "0.5", "BND": "0.5"},
        cash_buffer_weight=Decimal(0),
    )
    other = make_portfolio(owner, name="Other", symbols=[])
    run(core, date(2025, 6, 27), RebalanceRun.Status.EXECUTED, "0.0400")
    run(core, date(2025, 6, 30), RebalanceRun.Status.PLANNED, "0.0731")
    run(other, date(2025, 6, 30), RebalanceRun.Status.FAILED, None)

    response = client.get("/metrics")
    text = response.content.decode()
    after = parse(text)
    for name in PROJECT_METRICS:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    step = {"step": "plan"}
    assert value(after, "portfolio_rebalancer_execution_time_seconds_count", **step) - value(
        before, "portfolio_rebalancer_execution_time_seconds_count", **step
    ) == pytest.approx(2)
    assert value(after, "portfolio_rebalancer_execution_time_seconds_sum", **step) - value(
        before, "portfolio_rebalancer_execution_time_seconds_sum", **step
    ) == pytest.approx(2.0)
    assert value(after, "portfolio_rebalancer_execution_time_seconds_bucket", step="plan", le="0.25") - value(
        before, "portfolio_rebalancer_execution_time_seconds_bucket", step="plan", le="0.25"
    ) == pytest.approx(1)
    for outcome in ("success", "failure"):
        delta = value(after, "portfolio_rebalancer_runs_total", outcome=outcome) - value(
            before, "portfolio_rebalancer_runs_total", outcome=outcome
        )
        assert delta == 1, outcome
    assert value(after, "portfolio_rebalancer_trades_executed_total", side="buy", broker="paper") - value(
        before, "portfolio_rebalancer_trades_executed_total", side="buy", broker="paper"
    ) == pytest.approx(2)
    assert value(after, "portfolio_rebalancer_trades_executed_total", side="sell", broker="alpaca") - value(
        before, "portfolio_rebalancer_trades_executed_total", side="sell", broker="alpaca"
    ) == pytest.approx(1)
    # From the database: 3 runs in the last 24 h, 1 failed; the drift of each portfolio's holdings
    # now (Other has no targets, so no drift).
    assert value(after, "portfolio_rebalancer_success_rate") == pytest.approx(2 / 3)
    assert value(after, "portfolio_rebalancer_portfolio_drift", portfolio_id=str(core.pk)) == pytest.approx(0.25)
    assert ("portfolio_rebalancer_portfolio_drift", frozenset({("portfolio_id", str(other.pk))})) not in after
    assert value(after, "portfolio_rebalancer_database_metrics_up") == 1
    # django-prometheus: requests (its middlewares) and database queries.
    assert value(after, "django_http_requests_total_by_method_total", method="GET") >= 1
    assert value(after, "django_db_execute_total", alias="default", vendor=_vendor()) > value(
        before, "django_db_execute_total", alias="default", vendor=_vendor()
    )
    assert "no-store" in response["Cache-Control"]


def _vendor() -> str:
    from django.db import connection

    return connection.vendor


@pytest.mark.django_db
def test_success_rate_is_absent_without_runs_and_inactive_portfolios_have_no_drift(client):
    owner = make_user()
    paused = make_portfolio(owner, name="Paused", symbols=[], active=False)
    RebalanceRun.objects.create(
        portfolio=paused, trading_date=date(2025, 6, 30), status="executed", trigger="t", drift_before=Decimal("0.1")
    )
    RebalanceRun.objects.filter(portfolio=paused).update(created_at=datetime(2020, 1, 1, tzinfo=UTC))
    samples = scrape(client)
    assert not any(name == "portfolio_rebalancer_success_rate" for name, _ in samples)
    assert not any(name == "portfolio_rebalancer_portfolio_drift" for name, _ in samples)
    assert value(samples, "portfolio_rebalancer_database_metrics_up") == 1


@pytest.mark.django_db
def test_a_failing_database_read_keeps_the_rest_of_the_scrape(client, monkeypatch):
    def broken():
        raise RuntimeError("database gone")

    monkeypatch.setattr(portfolio_gauges, "_drifts_now", broken)
    samples = scrape(client)
    assert value(samples, "portfolio_rebalancer_database_metrics_up") == 0
    assert ("portfolio_rebalancer_runs_total", frozenset({("outcome", "success")})) in samples


def test_the_api_never_raises_and_drops_bad_values(caplog):
    before = instruments.STEP_SECONDS.labels("odd")._sum.get()
    with caplog.at_level(logging.WARNING, logger="ground.metrics"):
        instruments.observe_step("odd", -1)
        instruments.observe_step("odd", float("nan"))
        instruments.trades_executed(side="buy", broker="paper", count=-2)
    assert instruments.STEP_SECONDS.labels("odd")._sum.get() == before
    assert [record.metric_call for record in caplog.records] == ["observe_step", "observe_step", "trades_executed"]
    other = instruments.TRADES.labels("other", "ib")._value.get()
    instruments.trades_executed(side="short", broker="IB")
    assert instruments.TRADES.labels("other", "ib")._value.get() == other + 1


@pytest.mark.django_db
def test_metrics_refuse_clients_outside_the_allowed_networks(client, settings):
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1", "::1", "10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.5").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200
    # Through a reverse proxy on the same host: the proxy's address says nothing about the client.
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 403
    assert client.post("/metrics").status_code == 405
    settings.METRICS_ALLOWED_IPS = []
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.5").status_code == 200


def test_a_bad_allowed_network_stops_start_up_with_one_line():
    result = run_manage("check", env={"METRICS_ALLOWED_IPS": "127.0.0.1,10.0.0.0/33"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: METRICS_ALLOWED_IPS='127.0.0.1,10.0.0.0/33' is invalid: expected comma-separated "
        "IP addresses or CIDR networks, e.g. 127.0.0.1,10.0.0.0/8 (empty = everyone)"
    ]


WRITER = (
    "import ground.metrics as m; "
    "m.run_finished(success=True); m.trades_executed(side='sell', broker='alpaca', count=3); "
    "m.observe_step('fetch', 1.5)"
)


@pytest.mark.django_db
def test_multiprocess_mode_sums_the_processes(client, tmp_path, monkeypatch):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER], cwd=ROOT, env=env) for _ in range(2)]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0]
    assert len(list(tmp_path.glob("counter_*.db"))) == 2

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = scrape(client)
    assert value(samples, "portfolio_rebalancer_runs_total", outcome="success") == 2
    assert value(samples, "portfolio_rebalancer_runs_total", outcome="failure") == 0
    assert value(samples, "portfolio_rebalancer_trades_executed_total", side="sell", broker="alpaca") == 6
    assert value(samples, "portfolio_rebalancer_execution_time_seconds_count", step="fetch") == 2
    assert value(samples, "portfolio_rebalancer_execution_time_seconds_sum", step="fetch") == pytest.approx(3.0)
    # The database-backed gauges sit on the scrape's registry, next to the files' metrics.
    assert value(samples, "portfolio_rebalancer_database_metrics_up") == 1


def _gunicorn_conf():
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Log:
    def info(self, *args):
        pass

    warning = info


def test_gunicorn_conf_defaults_and_multiprocess_hooks(tmp_path, monkeypatch):
    monkeypatch.delenv("GUNICORN_BIND", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    conf = _gunicorn_conf()
    assert (conf.bind, conf.workers, conf.timeout, conf.accesslog) == ("0.0.0.0:8000", 5, 60, "-")

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid, live_pid = int(dead.stdout), os.getpid()
    for pid in (dead_pid, live_pid):
        for name in (f"counter_{pid}.db", f"gauge_livesum_{pid}.db"):
            (tmp_path / name).write_bytes(b"")
    conf.on_starting(type("Server", (), {"log": _Log()})())
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{live_pid}.db", f"gauge_livesum_{live_pid}.db"]
    conf.child_exit(None, type("Worker", (), {"pid": live_pid})())
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{live_pid}.db"]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_the_qcluster_endpoint_serves_this_hosts_metrics_to_allowed_clients():
    instruments.run_finished(success=True)
    server = metrics.serve_metrics_port(0, addr="127.0.0.1", allowed=("127.0.0.1",))
    try:
        status, text = _get(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200
    assert "portfolio_rebalancer_runs_total" in text
    # The database-backed gauges come from the web /metrics only.
    assert "portfolio_rebalancer_success_rate" not in text
    server = metrics.serve_metrics_port(0, addr="127.0.0.1", allowed=("10.0.0.0/8",))
    try:
        assert _get(f"http://127.0.0.1:{server.server_port}/metrics")[0] == 403
    finally:
        server.shutdown()
        server.server_close()


def test_the_qcluster_endpoint_starts_only_in_the_main_qcluster_process_with_a_port():
    assert metrics.qcluster_main_process(["manage.py", "qcluster"]) is True
    assert metrics.qcluster_main_process(["manage.py", "runserver"]) is False
    assert metrics.start_qcluster_endpoint(0, (), argv=["manage.py", "qcluster"]) is None
    assert metrics.start_qcluster_endpoint(9, (), argv=["manage.py", "migrate"]) is None


def test_metrics_port_needs_the_multiprocess_directory():
    result = run_manage("check", env={"METRICS_PORT": "9100"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: METRICS_PORT=9100 is invalid: expected PROMETHEUS_MULTIPROC_DIR to be set too "
        "(tasks run in qcluster's worker processes)"
    ]
