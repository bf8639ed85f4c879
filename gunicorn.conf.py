"""gunicorn settings, read by `gunicorn rebalancer_site.wsgi` from the working directory.

Environment (the process environment first, then `.env` next to this file):

    GUNICORN_BIND             address to listen on (default 0.0.0.0:$PORT, PORT default 8000)
    WEB_CONCURRENCY           worker processes (default 3)
    PROMETHEUS_MULTIPROC_DIR  when set, the workers' metrics are summed through files there
                              (see rebalancer_site/metrics.py); files of processes no longer
                              running are removed when gunicorn starts, and each worker that
                              exits is marked dead for the live gauges.

Command-line options override these (the Dockerfile's CMD passes the same values).
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if (_HERE / ".env").is_file():
    # The same `.env` settings.py reads: PROMETHEUS_MULTIPROC_DIR there must reach this process too.
    import environ

    environ.Env.read_env(_HERE / ".env", overwrite=False)


def _int_env(name: str, default: int, minimum: int = 1) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SystemExit(f"configuration error: {name}={value!r} is invalid: expected a whole number") from None
    if number < minimum:
        raise SystemExit(f"configuration error: {name}={value!r} is invalid: expected a whole number >= {minimum}")
    return number


bind = os.environ.get("GUNICORN_BIND", "").strip() or f"0.0.0.0:{_int_env('PORT', 8000)}"
workers = _int_env("WEB_CONCURRENCY", 3)
timeout = 60
accesslog = "-"  # stdout
errorlog = "-"  # stderr

# prometheus_client must not be imported here: it picks in-memory or file-backed values at import,
# and the workers import it themselves, after the fork.


def _multiproc_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


_METRICS_FILE = re.compile(r"_(\d+)\.db$")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def on_starting(server) -> None:
    """Creates the metrics directory and removes the files of processes that no longer run
    (a qcluster sharing the directory keeps its own)."""
    path = _multiproc_dir()
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    removed = 0
    for name in glob.glob(os.path.join(path, "*.db")):
        match = _METRICS_FILE.search(name)
        if match and not _running(int(match.group(1))):
            os.remove(name)
            removed += 1
    if removed:
        server.log.info("removed %d metrics files of processes no longer running from %s", removed, path)


def post_worker_init(worker) -> None:
    """Loads the trading calendar and the migrations once per worker: the first /ready is then fast."""
    try:
        from rebalancer_site.health import warm_up

        warm_up()
    except Exception as exc:  # a readiness nicety: never stop a worker for it
        worker.log.warning("readiness checks not warmed up: %s", exc)


def child_exit(server, worker) -> None:
    """A worker exited: its live gauges no longer count (counters and histograms stay summed)."""
    path = _multiproc_dir()
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, path)
