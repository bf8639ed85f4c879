"""The portfolio gauges, read from the database at scrape time (so every process and machine
agrees; registered only on the registry built for a scrape, never per process):

    portfolio_rebalancer_success_rate          share of the runs created in the last 24 h that did not
                                               fail (status failed or execution_failed); no sample
                                               without runs.
    portfolio_rebalancer_portfolio_drift       per active portfolio (label portfolio_id): the drift of
                                               what it holds now, at the latest stored closes, against
                                               its latest targets (the dashboard's figure); no sample
                                               when it cannot be known (no targets, a close missing).
    portfolio_rebalancer_database_metrics_up   1 when the two above were read, 0 when the read failed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from ground.metrics import PREFIX
from portfolios.models import Portfolio, RebalanceRun
from portfolios.selectors.drift import portfolio_drifts_now

logger = logging.getLogger(__name__)


class DatabaseCollector:
    """Gauges computed from the database when scraped: correct whichever process answers."""

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        rate, drift, up = self._families()
        try:
            success_rate = _success_rate()
            drifts = _drifts_now()
        except Exception as exc:
            logger.warning("database metrics not read", extra={"error": type(exc).__name__})
            up.add_metric([], 0)
        else:
            if success_rate is not None:
                rate.add_metric([], success_rate)
            for portfolio_id, value in drifts:
                drift.add_metric([str(portfolio_id)], value)
            up.add_metric([], 1)
        yield rate
        yield drift
        yield up

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                f"{PREFIX}_success_rate",
                "Share of the rebalance runs created in the last 24 hours that did not fail "
                "(planning or execution); absent when there were none.",
            ),
            GaugeMetricFamily(
                f"{PREFIX}_portfolio_drift",
                "Portfolio drift, sum |weight - target| / 2, of what each active portfolio holds now "
                "(holdings at the latest stored closes plus cash, against its latest targets).",
                labels=["portfolio_id"],
            ),
            GaugeMetricFamily(
                f"{PREFIX}_database_metrics_up",
                "1 when the database-backed gauges were read at this scrape, 0 when reading them failed.",
            ),
        )


def _success_rate() -> float | None:
    failed = [RebalanceRun.Status.FAILED, RebalanceRun.Status.EXECUTION_FAILED]
    counts = RebalanceRun.objects.filter(created_at__gte=timezone.now() - timedelta(hours=24)).aggregate(
        total=Count("pk"), failed=Count("pk", filter=Q(status__in=failed))
    )
    if not counts["total"]:
        return None
    return 1 - counts["failed"] / counts["total"]


def _drifts_now() -> list[tuple[int, float]]:
    drifts = portfolio_drifts_now(portfolios=Portfolio.objects.filter(active=True))
    return [(pk, float(drift)) for pk, drift in sorted(drifts.items())]
