"""run_pipeline: the daily run, inline (no task queue), with a progress bar.

    python manage.py run_pipeline                         # today's session once closed, every active portfolio
    python manage.py run_pipeline --date 2025-06-30       # a given session
    python manage.py run_pipeline --portfolio 3           # one portfolio

The same work the schedule does: one fetch for the portfolios' symbols, then for each portfolio
sync -> targets -> plan -> execute (auto mode, triggers fired) -> report ready. Asking again
resumes: stored runs are not re-planned, executions in progress are resumed.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from marketdata import calendar
from portfolios.models import Portfolio, RebalanceRun
from portfolios.services import pipeline


class Command(BaseCommand):
    help = "Run the daily pipeline inline: fetch prices once, then each portfolio's day."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--date", type=date.fromisoformat, help="Trading date (default: today's session, once closed)."
        )
        parser.add_argument("--portfolio", type=int, help="Only this portfolio.")

    def handle(self, *args: object, **options) -> None:
        day = options["date"] or pipeline.daily_trading_date(timezone.now())
        if day is None:
            day = calendar.last_completed_session(timezone.now())
            self.stdout.write(f"Today's session has not closed (or there is none): running for {day}.")
        elif not calendar.is_session(day):
            raise CommandError(f"--date: {day} is not an NYSE trading day", returncode=2)
        ids = None  # every active portfolio
        if options["portfolio"] is not None:
            if not Portfolio.objects.filter(pk=options["portfolio"]).exists():
                raise CommandError(f"portfolio {options['portfolio']} does not exist", returncode=2)
            ids = [options["portfolio"]]
        batches: list[list[int]] = []
        result = pipeline.daily_run(trading_date=day, portfolio_ids=ids, dispatch=lambda each, _: batches.append(each))
        queued = [portfolio_id for batch in batches for portfolio_id in batch]
        if result.fetch_error:
            self.stderr.write(f"Fetch: {result.fetch_error} (portfolios without prices fail closed)")
        outcomes: Counter[str] = Counter()
        quiet = options["verbosity"] == 0
        with tqdm(total=len(queued), desc=f"portfolios {day}", unit="portfolio", file=sys.stderr, disable=quiet) as bar:
            for batch in batches:
                outcomes.update(pipeline.portfolios_day(portfolio_ids=batch, trading_date=day).values())
                bar.update(len(batch))
        self.stdout.write(
            f"Daily run of {day}: {len(queued)} portfolio(s) in {result.seconds.get('fetch', 0):.1f} s fetch"
        )
        for outcome, count in sorted(outcomes.items()):
            self.stdout.write(f"  {outcome:<20} {count}")
        runs = RebalanceRun.objects.active().filter(trading_date=day)
        # Named by id for one portfolio only: a statement carries at most 65,535 parameters.
        runs = runs.filter(portfolio_id__in=queued) if ids else runs.filter(portfolio__active=True)
        for run in runs.select_related("portfolio").order_by("portfolio_id"):
            detail = run.error or run.trigger
            self.stdout.write(
                f"  run {run.pk:<6} {run.portfolio.name[:30]:<30} {run.get_status_display():<18} {detail[:80]}"
            )
