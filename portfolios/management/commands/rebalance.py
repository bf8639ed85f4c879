"""rebalance: plan a portfolio's trades and print the needs table and the trades.

Without --dry-run the plan is stored as the portfolio's run for the trading date (frozen; asking
again prints the stored run). Nothing is sent to a broker by this command.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portfolios.models import Portfolio
from portfolios.services.rebalancing import (
    PlannedRun,
    RebalanceError,
    RunExecuting,
    rebalance_run_create,
    rebalance_run_plan,
)
from portfolios.services.run_export import run_as_dict

EXIT_BAD_INPUT = 2


def _usd(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite amount")
    return value


class Command(BaseCommand):
    help = "Plan the trades that bring a portfolio back to its targets (prints needs and trades)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--portfolio", type=int, required=True, help="Portfolio id.")
        parser.add_argument("--strategy", help="Planning strategy for this run (default: the portfolio's).")
        parser.add_argument("--date", type=date.fromisoformat, help="Trading date (default: last completed session).")
        parser.add_argument("--force", action="store_true", help="Plan even when no trigger fired (manual request).")
        parser.add_argument(
            "--cash-flow", type=_usd, default=Decimal(0), help="Deposit (> 0) or withdrawal (< 0) in USD to plan for."
        )
        parser.add_argument("--dry-run", action="store_true", help="Print the plan without storing a run.")
        parser.add_argument("--json", action="store_true", help="Print the plan as one JSON object.")

    def handle(self, *args: object, **options) -> None:
        portfolio = Portfolio.objects.filter(pk=options["portfolio"]).first()
        if portfolio is None:
            raise CommandError(f"portfolio {options['portfolio']} does not exist", returncode=EXIT_BAD_INPUT)
        service = rebalance_run_plan if options["dry_run"] else rebalance_run_create
        try:
            planned = service(
                portfolio=portfolio,
                as_of=options["date"],
                strategy=options["strategy"],
                manual=options["force"],
                cash_flow_usd=options["cash_flow"],
            )
        except (RebalanceError, RunExecuting, ValueError) as error:
            raise CommandError(" ".join(str(error).split()), returncode=EXIT_BAD_INPUT) from None
        if options["json"]:
            self.stdout.write(json.dumps(run_as_dict(planned.run, planned.trades, stored=planned.stored)))
            return
        self._print(portfolio, planned)

    def _print(self, portfolio: Portfolio, planned: PlannedRun) -> None:
        run, out = planned.run, self.stdout.write
        where = "stored as run " + str(run.pk) if planned.stored else "dry run, not stored"
        if planned.existing:
            where = f"already planned as run {run.pk}; showing the stored plan"
        out(f"{portfolio.name} (id {portfolio.pk}) on {run.trading_date}: {where}")
        out(f"Trigger: {run.trigger}")
        out(f"Strategy: {run.strategy or run.requested_strategy}   targets: {run.targets_source or '-'}")
        if run.status == run.Status.FAILED:
            out(f"Failed: {run.error}")
            return
        out("")
        out(f"  {'symbol':<8}{'weight':>9}{'target':>9}{'dev pp':>9}{'band pp':>9}{'urgency':>9}  {'outside':<8}action")
        for need in run.needs:
            out(
                f"  {need['symbol']:<8}{need['current_weight']:>9.2%}{need['target_weight']:>9.2%}"
                f"{need['deviation'] * 100:>+9.2f}{need['band'] * 100:>9.2f}{need['urgency']:>9.2f}  "
                f"{'yes' if need['outside'] else 'no':<8}{need['action']}"
            )
        out("")
        if not planned.trades:
            out("Trades: none")
        else:
            out("Trades (sells first):")
            out(f"  {'side':<5}{'symbol':<8}{'quantity':>16}{'price':>12}{'notional':>14}{'cost':>10}  reason")
            for trade in planned.trades:
                out(
                    f"  {trade.side:<5}{trade.instrument.symbol:<8}{trade.quantity.normalize():>16f}"
                    f"{trade.estimated_price:>12.2f}{trade.notional_usd:>14,.2f}{trade.estimated_cost_usd:>10.2f}  "
                    f"{trade.reason}"
                )
        out("")
        out(
            f"Value ${run.value_before_usd:,.2f} -> ${run.value_after_usd:,.2f}   cash ${run.cash_before_usd:,.2f}"
            f"{f' {run.cash_flow_usd:+,.2f} flow' if run.cash_flow_usd else ''} -> ${run.cash_after_usd:,.2f}"
        )
        out(
            f"Drift {run.drift_before:.2%} -> {run.drift_after:.2%}   turnover {run.turnover:.2%}   "
            f"estimated cost ${run.total_cost_usd:,.2f}"
        )
        if run.deposit_needed_usd is not None:
            out(f"Smallest deposit that puts every holding inside its band without selling (estimate): "
                f"${run.deposit_needed_usd:,.2f}")  # fmt: skip
            if run.deposit_outweighs_portfolio:
                out(run.deposit_outweighs_portfolio)
        elif run.status != run.Status.FAILED:
            out("No deposit puts every holding inside its band without selling (a do-not-trade holding stays outside)")
        for note in run.notes:
            out(f"Note: {note}")
