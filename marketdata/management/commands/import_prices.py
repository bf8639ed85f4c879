"""import_prices: CSV price files (the csv provider's shapes) into the configured price store."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ground.env import SYMBOL_RE
from marketdata.management.commands._progress import ProgressBars, print_summary
from marketdata.services import NothingFetched, prices_import


class Command(BaseCommand):
    help = (
        "Import daily prices from a CSV file or a directory of them: per-ticker Yahoo files "
        "(Date,Open,High,Low,Close,Adj Close,Volume or Date,Close), AlphaVantage daily adjusted files, "
        "wide tables (date,T1,T2,...) and long exports (symbol,date,...). Existing bars are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="A .csv / .csv.gz file or a directory of them.")
        parser.add_argument("--symbol", help="Symbol of a single per-ticker file whose name does not give it.")

    def handle(self, *args: object, **options: object) -> None:
        path = Path(str(options["path"]))
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        symbol = str(options["symbol"]).upper() if options["symbol"] else None
        if symbol and not SYMBOL_RE.match(symbol):
            raise CommandError(f"--symbol={options['symbol']!r} is invalid: expected a ticker symbol like SPY")
        progress = ProgressBars(int(options["verbosity"]))
        try:
            log = prices_import(path=path, symbol=symbol, progress=progress)
        except NothingFetched as exc:
            progress.close()
            print_summary(self, exc.log)
            raise CommandError(f"nothing imported from {path}") from None
        progress.close()
        print_summary(self, log)
