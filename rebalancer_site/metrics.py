"""How the metrics are scraped: the project's instruments (`ground.metrics`), the portfolio
gauges read from the database at scrape time (`portfolios.metrics`), and django-prometheus's.

django-prometheus supplies ``django_http_*`` (its middlewares) and ``django_db_*``. The database
metrics come from an execute wrapper installed on every new connection (`install_database_metrics`,
called by the app config) that feeds django-prometheus's own ``django_db_*`` metric objects: its
database backends are not used, because their ``executemany`` calls ``len()`` on the parameters
and the SQLite price store passes a generator.

Processes. Without PROMETHEUS_MULTIPROC_DIR (development, tests, one process) every metric lives
in the process and /metrics shows that process. With it (gunicorn with several workers), each
process writes its values to files in that directory and /metrics sums them over every process
(`prometheus_client.multiprocess.MultiProcessCollector`); counters and histograms of processes
that exited are kept, so totals never go back. The project defines no Gauge objects (its gauges
are computed from the database at scrape time), so no gauge multiprocess mode is involved;
``gunicorn.conf.py`` calls ``mark_process_dead`` for each worker that exits, and django-q2 does
the same for its own workers. The variable must be in the environment (or `.env`) before
prometheus_client is imported: it picks the file-backed storage at import. Empty the directory
when every process sharing it restarts (docker/entrypoint.sh does; a new process that reuses an
old PID would otherwise continue that PID's files); gunicorn.conf.py also drops, at start, the
files of PIDs that no longer run.

Task-queue workers (``manage.py qcluster``) record the step, run and trade metrics in their own
processes. They reach Prometheus in one of two ways:

* Same host as the web server: give qcluster the same PROMETHEUS_MULTIPROC_DIR (same host, same
  PID namespace: one container, or the host itself). Its workers write files next to gunicorn's
  and the web /metrics includes them.
* Another host (a machine or container that runs only qcluster): set PROMETHEUS_MULTIPROC_DIR
  there too, and METRICS_PORT. The cluster's main process then serves that host's metrics at
  ``http://HOST:METRICS_PORT/`` (all interfaces, same METRICS_ALLOWED_IPS rule), without the
  database-backed gauges, which the web /metrics already reports. Do not set METRICS_PORT where
  the web server shares the directory: both endpoints would report the same series.

Access: /metrics (and the METRICS_PORT server) answer only clients whose address is in
METRICS_ALLOWED_IPS (`client_allowed`); an empty value lets everyone in.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from prometheus_client.core import Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector

from ground.metrics import metric_dropped

logger = logging.getLogger(__name__)

# Headers a reverse proxy adds: a request that carries one came through a proxy, so its
# REMOTE_ADDR is the proxy's, not the client's.
FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


# --- the registry of one scrape ---------------------------------------------------------------


class _ProcessMetrics:
    """This process's metrics (the default registry), for a registry built per scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def scrape_registry(*, include_database: bool = True) -> CollectorRegistry:
    """Every process's metrics in multiprocess mode (this process's otherwise), plus the
    database-backed gauges."""
    registry = CollectorRegistry()
    path = multiprocess_dir()
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ProcessMetrics())
    if include_database:
        from portfolios.metrics import DatabaseCollector

        registry.register(DatabaseCollector())
    return registry


# --- who may scrape ----------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def parse_networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    """Addresses or CIDR ranges; raises ValueError naming a bad item."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network") from None
    return tuple(networks)


def client_allowed(remote_addr: str | None, allowed: Sequence[str], *, forwarded: bool = False) -> bool:
    """Whether a client may read the metrics: ``allowed`` empty lets everyone in; otherwise the
    address must lie in one of the networks and the request must not have come through a proxy
    (``forwarded``), whose address would stand in for every client behind it."""
    if not allowed:
        return True
    if forwarded or not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in parse_networks(tuple(allowed)))


def request_forwarded(meta: dict[str, Any]) -> bool:
    return any(meta.get(header) for header in FORWARDED_HEADERS)


# --- database metrics (django-prometheus's metric objects, fed by an execute wrapper) -------------


def install_database_metrics() -> None:
    """Instruments every database connection opened from now on (idempotent)."""
    from django.db.backends.signals import connection_created

    connection_created.connect(_instrument_connection, dispatch_uid="rebalancer_site.metrics.database")


def _instrument_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    try:
        from django_prometheus.db import metrics as db_metrics

        db_metrics.connections_total.labels(connection.alias, connection.vendor).inc()
    except Exception as exc:
        metric_dropped("connections_total", exc)
    # First in the list: `execute_wrapper()` blocks pop the last entry on exit, and a connection
    # may be opened inside one.
    if _execute_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _execute_wrapper)


@functools.cache
def _query_metrics(alias: str, vendor: str) -> tuple[Any, Any, Any]:
    """The labelled metrics of one database (looked up once: every statement of the process
    counts here, and a label lookup takes a lock and builds a key each time)."""
    from django_prometheus.db import metrics as db_metrics

    return (
        db_metrics.execute_total.labels(alias, vendor),
        db_metrics.execute_many_total.labels(alias, vendor),
        db_metrics.query_duration_seconds.labels(alias, vendor),
    )


def _execute_wrapper(execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    connection = context["connection"]
    alias, vendor = connection.alias, connection.vendor
    executed = duration = None
    try:
        executed, executed_many, duration = _query_metrics(alias, vendor)
        count = len(params) if many and hasattr(params, "__len__") else 1
        executed.inc(count)
        if many:
            executed_many.inc(count)
    except Exception as exc:
        metric_dropped("execute_total", exc)
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    except Exception as exc:
        try:
            from django_prometheus.db import metrics as db_metrics

            db_metrics.errors_total.labels(alias, vendor, type(exc).__name__).inc()
        except Exception as metric_exc:
            metric_dropped("errors_total", metric_exc)
        raise
    finally:
        try:
            if duration is not None:
                duration.observe(time.perf_counter() - started)
        except Exception as exc:
            metric_dropped("query_duration_seconds", exc)


# --- the qcluster's own endpoint (METRICS_PORT) ---------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log for scrapes."""


def serve_metrics_port(port: int, *, addr: str = "0.0.0.0", allowed: Iterable[str] = ()) -> WSGIServer:  # noqa: S104 (scraped from other hosts)
    """Serves this host's metrics (without the database-backed gauges) on ``addr:port`` from a
    daemon thread; returns the server (``server_port`` is the port bound, ``shutdown()`` stops it)."""
    allowed = tuple(allowed)
    app = make_wsgi_app(scrape_registry(include_database=False))

    def guarded(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not client_allowed(environ.get("REMOTE_ADDR"), allowed, forwarded=request_forwarded(environ)):
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Forbidden\n"]
        return app(environ, start_response)

    family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    server_class = type("MetricsServer", (ThreadingWSGIServer,), {"address_family": family})
    server = make_server(addr, port, guarded, server_class, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server


def qcluster_main_process(argv: Sequence[str]) -> bool:
    """True in the main process of ``manage.py qcluster`` (not in its worker processes)."""
    import multiprocessing

    return len(argv) > 1 and argv[1] == "qcluster" and multiprocessing.parent_process() is None


def start_qcluster_endpoint(port: int, allowed: Iterable[str], argv: Sequence[str] | None = None) -> WSGIServer | None:
    """Starts the METRICS_PORT endpoint when this is a qcluster main process (else does nothing)."""
    if not port or not qcluster_main_process(sys.argv if argv is None else argv):
        return None
    try:
        server = serve_metrics_port(port, allowed=allowed)
    except OSError as exc:
        logger.error("metrics endpoint not started on port %s: %s", port, exc, extra={"port": port})
        return None
    logger.info("metrics endpoint serving on port %s", server.server_port, extra={"port": server.server_port})
    return server
