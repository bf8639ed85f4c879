"""Operations state kept in the database."""

from __future__ import annotations

from django.db import models


class ClusterHeartbeat(models.Model):
    """The last sign of life of a django-q2 cluster (one row per cluster name).

    Written every minute by the scheduled task `rebalancer_site.tasks.heartbeat`, so a recent row
    means the scheduler, the queue and a worker all work. Clusters on several machines that share
    one name share the row: it shows the last one that ran the task.
    """

    cluster_name = models.CharField(max_length=100, unique=True)
    last_seen = models.DateTimeField()
    host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["cluster_name"]

    def __str__(self) -> str:
        return f"{self.cluster_name} at {self.last_seen:%Y-%m-%d %H:%M:%S%z} ({self.host}:{self.pid})"
