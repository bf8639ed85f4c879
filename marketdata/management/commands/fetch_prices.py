"""fetch_prices: incremental daily bars from the provider chain into the price store."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ground.env import SYMBOL_RE
from marketdata.management.commands._progress import ProgressBars, parse_date, print_summary
from marketdata.services import NothingFetched, prices_fetch


class Command(BaseCommand):
    help = (
        "Fetch daily price bars for TICKERS (or --tickers) through the provider chain into the price store. "
        "Incremental: only sessions after each symbol's last stored bar, or BACKFILL_DAYS sessions when it has none."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tickers", help="Comma-separated symbols (default: TICKERS).")
        parser.add_argument(
            "--provider",
            help=f"Comma-separated providers to try in order (default: PRICE_PROVIDERS). "
            f"Known: {', '.join(settings.PRICE_PROVIDER_REGISTRY)}.",
        )
        parser.add_argument("--backfill-days", type=int, help="Sessions to fetch for a symbol with no bars.")
        parser.add_argument("--start", help="First date (YYYY-MM-DD); fetches this range even if stored.")
        parser.add_argument("--end", help="Last date (YYYY-MM-DD, default: the last completed session).")

    def handle(self, *args: object, **options: object) -> None:
        symbols = None
        if options["tickers"]:
            symbols = [s.strip().upper() for s in str(options["tickers"]).split(",") if s.strip()]
            bad = [s for s in symbols if not SYMBOL_RE.match(s)]
            if bad or not symbols:
                raise CommandError(f"--tickers={options['tickers']!r} is invalid: expected symbols like SPY,BND")
        providers = None
        if options["provider"]:
            providers = [p.strip() for p in str(options["provider"]).split(",") if p.strip()]
            unknown = [p for p in providers if p not in settings.PRICE_PROVIDER_REGISTRY]
            if unknown or not providers:
                raise CommandError(
                    f"--provider={options['provider']!r} is invalid: expected names from "
                    + ", ".join(settings.PRICE_PROVIDER_REGISTRY)
                )
        backfill = options["backfill_days"]
        if backfill is not None and backfill < 1:
            raise CommandError(f"--backfill-days={backfill} is invalid: expected a whole number >= 1")
        start = parse_date(str(options["start"]), "--start") if options["start"] else None
        end = parse_date(str(options["end"]), "--end") if options["end"] else None
        if start and end and start > end:
            raise CommandError(f"--start={start} is after --end={end}")

        progress = ProgressBars(int(options["verbosity"]))
        try:
            log = prices_fetch(
                symbols=symbols,
                provider_names=providers,
                start=start,
                end=end,
                backfill_days=backfill,
                progress=progress,
            )
        except NothingFetched as exc:
            progress.close()
            print_summary(self, exc.log)
            raise CommandError(str(exc)) from None
        progress.close()
        print_summary(self, log)
