"""Tasks of the site app, run by django-q2 (`manage.py setup_schedules` declares their schedules)."""

from __future__ import annotations

import os
import socket

from django.utils import timezone

from rebalancer_site.models import ClusterHeartbeat


def cluster_name() -> str:
    """The name of this process's django-q2 cluster (Q_CLUSTER["name"], or Q_CLUSTER_NAME)."""
    from django_q.conf import Conf

    return Conf.CLUSTER_NAME


def heartbeat() -> None:
    """Records that this cluster is alive: one upsert of its `ClusterHeartbeat` row (one statement,
    so two clusters beating at the same moment cannot collide)."""
    beat = ClusterHeartbeat(
        cluster_name=cluster_name(), last_seen=timezone.now(), host=socket.gethostname()[:255], pid=os.getpid()
    )
    ClusterHeartbeat.objects.bulk_create(
        [beat], update_conflicts=True, unique_fields=["cluster_name"], update_fields=["last_seen", "host", "pid"]
    )


def prune_task_history() -> int:
    """Trims the successful tasks django-q2 saved to the newest Q_KEEP_SUCCESSFUL_TASKS (failed
    tasks are all kept: they are what an operator looks at); the number deleted. Two statements
    however long the history."""
    from django.conf import settings
    from django_q.models import Success

    keep = settings.Q_KEEP_SUCCESSFUL_TASKS
    newest = Success.objects.order_by("-stopped", "-pk").values_list("stopped", "pk")[keep : keep + 1]
    cutoff = newest.first()
    if cutoff is None:
        return 0
    stopped, pk = cutoff
    older = Success.objects.filter(stopped__lt=stopped) | Success.objects.filter(stopped=stopped, pk__lte=pk)
    deleted, _ = older.delete()
    return deleted
