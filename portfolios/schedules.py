"""The recurring jobs, declared in code and written idempotently by `manage.py setup_schedules`.

Cron expressions are read in TIMEZONE (django-q2's ``time_zone``), so 16:30 stays 16:30 local on
both sides of a daylight-saving change. Holidays and early closes are the daily task's business
(`portfolios.services.pipeline.daily_run`): on a holiday it does nothing; it always plans on the
closes of a session that has ended.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone


@dataclass(frozen=True)
class Declared:
    name: str
    func: str
    cron: str | None = None
    minutes: int | None = None
    keep_result: bool = True


def declared_schedules() -> list[Declared]:
    run_at, refresh_at = settings.EXECUTION_TIME, settings.DATA_REFRESH_TIME
    daily = (
        [Declared("daily-run", "portfolios.tasks.daily_run", cron=f"{run_at.minute} {run_at.hour} * * 1-5")]
        if settings.SCHEDULE_DAILY_RUN
        else []
    )
    return [
        *daily,
        Declared("data-refresh", "portfolios.tasks.data_refresh", cron=f"{refresh_at.minute} {refresh_at.hour} * * *"),
        Declared("resume-interrupted", "portfolios.tasks.resume_interrupted", minutes=5),
        # Every five minutes, kept out of the task history: owners whose drift alerts have gone quiet.
        Declared("drift-digest", "portfolios.tasks.drift_digest", minutes=5, keep_result=False),
        # Once a minute, kept out of the task history: the due executions (the next open's, retries).
        Declared("execute-due", "portfolios.tasks.execute_due", minutes=1, keep_result=False),
        Declared(
            "prune-task-history",
            "rebalancer_site.tasks.prune_task_history",
            cron=f"{refresh_at.minute} {(refresh_at.hour + 1) % 24} * * *",
        ),
        # Once a minute: kept out of the task history, which it would otherwise fill.
        Declared("cluster-heartbeat", "rebalancer_site.tasks.heartbeat", minutes=1, keep_result=False),
    ]


#: Declared names that may be switched off by a setting: removed when no longer declared.
RETIRABLE = ("daily-run",)


def schedules_setup() -> list[tuple[str, str]]:
    """Create, update or remove every declared schedule by name; (name, "created" | "updated" |
    "unchanged" | "removed").

    Names are not unique in django-q2: duplicates left by hand are removed, so the table always
    holds one row per declared name.
    """
    from croniter import croniter
    from django_q.models import Schedule
    from django_q.utils import localtime

    report = []
    declared = declared_schedules()
    with transaction.atomic():
        retired = Schedule.objects.filter(name__in=RETIRABLE).exclude(name__in=[d.name for d in declared])
        for name in sorted(set(retired.values_list("name", flat=True))):
            report.append((name, "removed"))
        retired.delete()
        for item in declared:
            rows = list(Schedule.objects.select_for_update().filter(name=item.name).order_by("pk"))
            for extra in rows[1:]:
                extra.delete()
            row = rows[0] if rows else Schedule(name=item.name)
            wanted = {
                "func": item.func,
                "schedule_type": Schedule.CRON if item.cron else Schedule.MINUTES,
                "cron": item.cron,
                "minutes": item.minutes,
                "repeats": -1,
                "kwargs": None if item.keep_result else "{'q_options': {'save': False}}",
            }
            changed = any(getattr(row, key) != value for key, value in wanted.items())
            if row.pk is not None and not changed:
                report.append((item.name, "unchanged"))
                continue
            for key, value in wanted.items():
                setattr(row, key, value)
            if item.cron:
                row.next_run = croniter(item.cron, localtime()).get_next(type(timezone.now()))
            else:
                row.next_run = timezone.now()
            state = "created" if row.pk is None else "updated"
            row.save()
            report.append((item.name, state))
    return report
