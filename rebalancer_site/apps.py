"""The site app: operations models (the cluster heartbeat), metrics wiring at start-up."""

from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings


class RebalancerSiteConfig(AppConfig):
    name = "rebalancer_site"
    verbose_name = "Operations"

    def ready(self) -> None:
        from rebalancer_site import metrics

        metrics.install_database_metrics()
        # Only in the main process of `manage.py qcluster`, only when METRICS_PORT is set.
        metrics.start_qcluster_endpoint(
            getattr(settings, "METRICS_PORT", 0), getattr(settings, "METRICS_ALLOWED_IPS", ())
        )
