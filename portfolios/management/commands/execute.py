"""execute: send a stored run's orders to the portfolio's broker (or only check them: the default).

    python manage.py execute --run 12            # dry run: pre-trade checks and the orders it would send
    python manage.py execute --run 12 --submit   # send them; again to resume a run left waiting
    python manage.py execute --portfolio 3       # the portfolio's run for the last completed session

An operator running --submit approves the plan (portfolios in propose mode included).
"""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portfolios.models import RebalanceRun
from portfolios.services.execution import ExecutionBusy, ExecutionRefused, ExecutionResult, execute_run
from portfolios.services.rebalancing import default_as_of

EXIT_BAD_INPUT = 2
EXIT_NOT_EXECUTED = 3


class Command(BaseCommand):
    help = "Execute a stored rebalance run at its broker (dry run unless --submit)."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--run", type=int, help="Run id.")
        which.add_argument("--portfolio", type=int, help="Portfolio id: its run for --date.")
        parser.add_argument("--date", type=date.fromisoformat, help="Trading date (default: last completed session).")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--dry-run", action="store_true", help="Check and list the orders only (the default).")
        mode.add_argument("--submit", action="store_true", help="Send the orders.")

    def handle(self, *args: object, **options) -> None:
        run = self._run(options)
        try:
            result = execute_run(run=run, submit=options["submit"], approved=True)
        except (ExecutionRefused, ExecutionBusy) as error:
            raise CommandError(str(error), returncode=EXIT_NOT_EXECUTED) from None
        self._print(result)
        if result.run.status == RebalanceRun.Status.EXECUTION_FAILED:
            raise CommandError(f"run {result.run.pk} not executed: {result.run.error}", returncode=EXIT_NOT_EXECUTED)

    def _run(self, options) -> RebalanceRun:
        if options["run"] is not None:
            run = RebalanceRun.objects.filter(pk=options["run"]).first()
            if run is None:
                raise CommandError(f"run {options['run']} does not exist", returncode=EXIT_BAD_INPUT)
            return run
        day = options["date"] or default_as_of()
        run = RebalanceRun.objects.active().filter(portfolio_id=options["portfolio"], trading_date=day).first()
        if run is None:
            raise CommandError(
                f"portfolio {options['portfolio']} has no run for {day}: plan one with `rebalance --portfolio "
                f"{options['portfolio']}`",
                returncode=EXIT_BAD_INPUT,
            )
        return run

    def _print(self, result: ExecutionResult) -> None:
        run = result.run
        account = run.portfolio.broker_account
        self.stdout.write(f"Run {run.pk} ({run.portfolio.name}, {run.trading_date}) at {account}: {result.message}")
        for check in result.checks:
            self.stdout.write(f"  {'ok  ' if check['ok'] else 'FAIL'} {check['name']:<20} {check['detail']}")
        if result.would_send:
            self.stdout.write("Orders it would send (sells first; buys are re-sized to the cash after the sells):")
            for line in result.would_send:
                self.stdout.write(
                    f"  {line['side']:<4} {line['symbol']:<8} {line['quantity']:>20} @ ~{line['estimated_price']}"
                )
        if result.orders:
            self.stdout.write("Orders:")
            self.stdout.write(f"  {'side':<4} {'symbol':<8} {'quantity':>18} {'filled':>18} {'avg price':>12}  state")
            for order in result.orders:
                price = f"{order.filled_avg_price_usd:,.4f}" if order.filled_avg_price_usd else "-"
                self.stdout.write(
                    f"  {order.side:<4} {order.symbol:<8} {order.quantity.normalize():>18f} "
                    f"{order.filled_quantity.normalize():>18f} {price:>12}  {order.state}"
                    + (f" ({order.reject_reason})" if order.reject_reason else "")
                )
        if run.status == RebalanceRun.Status.EXECUTED:
            self.stdout.write("Positions after (synced from the broker):")
            for holding in run.portfolio.holdings.select_related("instrument"):
                self.stdout.write(f"  {holding.instrument.symbol:<8} {holding.quantity.normalize():>20f}")
            self.stdout.write(f"  cash     {run.portfolio.cash_usd:>20,.2f}")
            reconciliation = run.execution.get("reconciliation", {})
            for line in reconciliation.get("not_filled", []):
                self.stdout.write(f"  not filled: {line}")
            for diff in reconciliation.get("differences", []):
                self.stdout.write(
                    f"  differs from the plan: {diff['symbol']} planned {diff['planned']}, broker {diff['broker']}"
                )
