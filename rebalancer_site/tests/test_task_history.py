"""The task history is trimmed by our nightly task, not by django-q2 on every save."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django_q.models import Failure, Success, Task

from rebalancer_site.tasks import prune_task_history

pytestmark = pytest.mark.django_db


def _task(n: int, *, success: bool, stopped) -> None:
    Task.objects.create(
        id=f"{n:032x}", name=f"task-{n}", func="portfolios.tasks.daily_run", started=stopped, stopped=stopped,
        success=success,
    )  # fmt: skip


def test_prune_keeps_the_newest_successes_and_every_failure(settings):
    settings.Q_KEEP_SUCCESSFUL_TASKS = 3
    now = timezone.now()
    for n in range(6):
        _task(n, success=True, stopped=now - timedelta(minutes=10 - n))
    _task(50, success=True, stopped=now - timedelta(minutes=5))  # ties with task 5 on its stop time
    for n in (100, 101):
        _task(n, success=False, stopped=now - timedelta(days=30))

    assert prune_task_history() == 4
    kept = sorted(Success.objects.values_list("name", flat=True))
    assert kept == ["task-4", "task-5", "task-50"]
    assert Success.objects.count() == 3 and Failure.objects.count() == 2
    assert prune_task_history() == 0  # already trimmed


def test_prune_on_a_short_history_deletes_nothing(settings):
    settings.Q_KEEP_SUCCESSFUL_TASKS = 10
    _task(1, success=True, stopped=timezone.now())
    assert prune_task_history() == 0 and Success.objects.count() == 1


def test_django_q_does_not_prune_on_every_save():
    # save_limit 0: no per-save pruning (it locked and loaded every success row on each save).
    assert settings.Q_CLUSTER["save_limit"] == 0
