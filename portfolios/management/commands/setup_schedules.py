"""setup_schedules: write the recurring jobs (portfolios.schedules) into django-q2, idempotently."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from portfolios.schedules import schedules_setup


class Command(BaseCommand):
    help = "Declare the daily run, the nightly data refresh, the resume sweep and the heartbeat (idempotent)."

    def handle(self, *args: object, **options) -> None:
        from django_q.models import Schedule

        for name, state in schedules_setup():
            if state == "removed":
                self.stdout.write(f"  {name:<20} removed")
                continue
            row = Schedule.objects.get(name=name)
            when = timezone.localtime(row.next_run).isoformat(timespec="minutes") if row.next_run else "-"
            self.stdout.write(f"  {name:<20} {state:<9} {row.cron or f'every {row.minutes} min':<16} next {when}")
