"""Plan a portfolio's rebalance: snapshot -> prices -> targets -> plan -> stored run.

`rebalance_run_plan` computes a plan without writing it (the CLI's --dry-run, the preview);
`rebalance_run_create` writes it as a frozen `RebalanceRun` with its `PlannedTrade` rows in one
transaction. One active run per portfolio and trading date. Asking again:

- with the same inputs (`plan_inputs.plan_fingerprint`) answers the stored run;
- after the inputs changed, plans afresh while the stored run has sent nothing: the new run
  supersedes it (kept, linked to its successor); a run being executed is never changed
  (`RunExecuting`), and an executed one is answered as it is;
- a failed planning is replaced, and a stopped run (a pre-trade check, the kill switch) is
  superseded by a new plan from the current holdings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.utils import timezone

from brokers.models import Order
from brokers.states import IN_FLIGHT
from marketdata import calendar
from optimization.core.errors import OptimizationError
from optimization.core.rebalancing.planner import plan_rebalance
from optimization.core.rebalancing.results import Plan
from optimization.services import (
    manual_targets_parse,
    plan_covariance,
    plan_inputs_build,
    price_decimal,
    quantity_decimal,
    ratio_decimal,
    rebalance_policy_for,
    usd_decimal,
)
from portfolios.models import PlannedTrade, Portfolio, RebalanceRun
from portfolios.services.fractionability import ShareRule, not_known_note, share_rules_for, whole_shares_rows
from portfolios.services.plan_inputs import plan_fingerprint
from portfolios.services.plan_reads import PlanInputsRead, PlanReads, inputs_read, plan_reads
from portfolios.services.report_data import run_risk_build

logger = logging.getLogger(__name__)
#: The strategy of a deposit or withdrawal when the request names none.
CASH_FLOW_STRATEGY = "cash_flow"
#: Stored runs that asking again plans afresh: a failed planning (replaced) and a stopped run (superseded).
REPLANNED_STATUSES = (RebalanceRun.Status.FAILED, RebalanceRun.Status.EXECUTION_FAILED)
#: Stored runs that a planning with changed inputs supersedes, as long as their execution has not begun.
REVISABLE_STATUSES = (RebalanceRun.Status.PLANNED, RebalanceRun.Status.NO_ACTION)


class RebalanceError(Exception):
    """The portfolio cannot be planned today; the message says why and what to do."""


class RunExecuting(Exception):
    """The date's run is being executed, or has traded: its plan no longer changes."""

    def __init__(self, run: RebalanceRun):
        self.run = run
        state = "has traded" if run.status == RebalanceRun.Status.EXECUTED else "is being executed"
        super().__init__(
            f"run {run.pk} of {run.trading_date} {state}: a plan that has started trading does not change; plan "
            "again on the next trading date"
        )


class InputsChanged(Exception):
    """A plan was to be stored from a preview, but what it is made from changed since."""

    def __init__(self):
        super().__init__(
            "the portfolio changed since the preview (holdings, cash, targets or settings): nothing was stored; "
            "preview again"
        )


class MissingPrices(RebalanceError):
    """A held or targeted symbol has no price on the as-of date (a zero price is never assumed)."""


@dataclass(frozen=True)
class Snapshot:
    """Holdings (symbol -> shares), cost bases, cash and prices on ``price_date``, as Decimals.

    ``fractionable``: whether fractions of each symbol trade (the broker account's answer, else
    the instrument's setting; False when neither says). ``whole_shares``: the symbols the plan
    trades in whole shares, each with why (`whole_shares_rows`).
    """

    quantities: dict[str, Decimal]
    cost_basis_usd: dict[str, Decimal | None]
    cash_usd: Decimal
    prices: dict[str, Decimal]
    price_date: date
    fractionable: dict[str, bool]
    whole_shares: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "price_date": self.price_date.isoformat(),
            "cash_usd": str(self.cash_usd),
            "holdings": {
                symbol: {
                    "quantity": str(quantity),
                    "cost_basis_usd": None
                    if self.cost_basis_usd.get(symbol) is None
                    else str(self.cost_basis_usd[symbol]),
                }
                for symbol, quantity in self.quantities.items()
            },
            "prices": {symbol: str(price) for symbol, price in self.prices.items()},
            "fractionable": self.fractionable,
            "whole_shares": self.whole_shares,
        }


@dataclass
class PlannedRun:
    """A run and its trades; unsaved rows for a dry run, stored ones otherwise."""

    run: RebalanceRun
    trades: list[PlannedTrade]
    plan: Plan | None = None
    stored: bool = False
    existing: bool = False  # True when an earlier stored run was returned instead of a new plan
    superseded: RebalanceRun | None = None  # the stored run this new plan superseded


@dataclass
class _Timer:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 6)


def default_as_of() -> date:
    """The last completed NYSE session: the date whose closes a plan trades on."""
    return calendar.last_completed_session(timezone.now())


def rebalance_run_plan(
    *,
    portfolio: Portfolio,
    as_of: date | None = None,
    strategy: str | None = None,
    manual: bool = False,
    cash_flow_usd: Decimal = Decimal(0),
) -> PlannedRun:
    """Plan without storing: unsaved run and trade rows (targets are computed and stored as usual).
    Every reason the portfolio cannot be planned is a `RebalanceError` naming it."""
    as_of = _trading_date(as_of)
    reads = plan_reads([portfolio], inputs_read([portfolio], as_of=as_of))
    return plan_from_reads(portfolio, reads, strategy=strategy, manual=manual, cash_flow_usd=cash_flow_usd)


def plan_from_reads(
    portfolio: Portfolio,
    reads: PlanReads,
    *,
    strategy: str | None = None,
    manual: bool = False,
    cash_flow_usd: Decimal = Decimal(0),
) -> PlannedRun:
    """`rebalance_run_plan` from what was read for it (and maybe other portfolios): no query but
    a risk-aware plan's covariance and a manual plan's risk figures."""
    try:
        return _plan(portfolio, reads, strategy, manual, cash_flow_usd)
    except (OptimizationError, ValueError) as error:  # no instruments, infeasible targets, a bad setting
        raise RebalanceError(str(error)) from error


def _plan(
    portfolio: Portfolio, reads: PlanReads, strategy: str | None, manual: bool, cash_flow_usd: Decimal
) -> PlannedRun:
    timer = _Timer()
    as_of = reads.inputs.as_of
    fingerprint = _fingerprint(portfolio, reads.inputs, strategy, cash_flow_usd)  # of the request as made
    # A deposit or withdrawal with no strategy chosen buys the most underweight holdings, or sells
    # the most overweight first, whatever strategy the portfolio trades with day to day.
    strategy = strategy or (CASH_FLOW_STRATEGY if cash_flow_usd else None)
    policy = rebalance_policy_for(portfolio, strategy=strategy)
    with timer.step("snapshot"):
        held = reads.inputs.holdings[portfolio.pk]
        holdings = {h.instrument.symbol: h for h in held}
    with timer.step("targets"):
        targets, result, source, computed = _targets(portfolio, reads)
    symbols = sorted(set(targets) | set(holdings))
    with timer.step("prices"):
        instruments = {symbol: holding.instrument for symbol, holding in holdings.items()}
        instruments.update({symbol: reads.instruments[symbol] for symbol in symbols if symbol not in instruments})
        answers = reads.broker_answers.get(portfolio.broker_account_id, {})
        share_rules = share_rules_for(portfolio=portfolio, instruments=instruments, answers=answers)
        snapshot = _snapshot(portfolio, holdings, symbols, as_of, share_rules, reads.closes)
    cov = None
    if policy.trading.strategy == "risk_aware":
        with timer.step("covariance"):
            cov = plan_covariance(portfolio, symbols=symbols, as_of=as_of)
    with timer.step("plan"):
        inputs = plan_inputs_build(
            symbols=symbols,
            quantities=snapshot.quantities,
            prices=snapshot.prices,
            targets=targets,
            cash_usd=snapshot.cash_usd,
            fractionable=snapshot.fractionable,
            cash_flow_usd=cash_flow_usd,
            cov=cov,
        )
        plan = plan_rebalance(
            inputs,
            policy,
            as_of=as_of,
            last_rebalance=reads.last_rebalance.get(portfolio.pk),
            manual=manual,
        )
    with timer.step("risk"):
        # Stored with the plan for the report (which never re-reads prices or re-optimizes). The
        # correlations of an optimizer run come from its result; a manual one stores its own.
        risk = run_risk_build(
            portfolio=portfolio,
            plan=plan,
            as_of=as_of,
            prices=computed.prices if computed else None,
            settings=computed.settings if computed else None,
            with_correlation=result is None,
            read_window=reads.price_window,
        )
    notes = list(plan.notes)
    if unknown := not_known_note(share_rules):
        notes.append(unknown)
    run = RebalanceRun(
        portfolio=portfolio,
        trading_date=as_of,
        status=RebalanceRun.Status.PLANNED if plan.trades else RebalanceRun.Status.NO_ACTION,
        trigger=plan.trigger.label[:500],
        triggers_fired=list(plan.trigger.fired),
        requested_strategy=strategy or portfolio.rebalancing_strategy,
        strategy=plan.strategy,
        snapshot=snapshot.to_json(),
        optimization_result=result,
        targets={symbol: str(weight) for symbol, weight in sorted(targets.items())},
        targets_source=source,
        policy=_policy_json(policy),
        inputs_fingerprint=fingerprint,
        needs=[_need_json(need) for need in plan.needs],
        drift_before=ratio_decimal(plan.drift_before),
        drift_after=ratio_decimal(plan.drift_after),
        turnover=ratio_decimal(plan.turnover),
        total_cost_usd=usd_decimal(plan.total_cost_usd),
        value_before_usd=usd_decimal(plan.value_before_usd),
        value_after_usd=usd_decimal(plan.value_after_usd),
        cash_before_usd=usd_decimal(plan.cash_before_usd),
        cash_flow_usd=usd_decimal(plan.cash_flow_usd),
        cash_after_usd=usd_decimal(plan.cash_after_usd),
        deposit_needed_usd=usd_decimal(plan.deposit_needed_usd),
        weights_after={symbol: round(weight, 10) for symbol, weight in plan.weights_after.items()},
        notes=notes,
        risk=risk,
        timings=timer.seconds,
    )
    trades = [
        PlannedTrade(
            run=run,
            sequence=position,
            instrument=instruments[trade.symbol],
            side=trade.side,
            quantity=quantity_decimal(
                trade.quantity, at_most=snapshot.quantities.get(trade.symbol) if trade.side == "sell" else None
            ),
            estimated_price=price_decimal(trade.price),
            notional_usd=usd_decimal(trade.notional_usd),
            estimated_cost_usd=usd_decimal(trade.cost_usd),
            reason=trade.reason[:300],
        )
        for position, trade in enumerate(plan.trades, start=1)
    ]
    return PlannedRun(run=run, trades=[t for t in trades if t.quantity > 0], plan=plan)


def rebalance_run_create(
    *,
    portfolio: Portfolio,
    as_of: date | None = None,
    strategy: str | None = None,
    manual: bool = False,
    cash_flow_usd: Decimal = Decimal(0),
    expected_fingerprint: str | None = None,
) -> PlannedRun:
    """Plan and store the portfolio's run for ``as_of``, or return the run already stored for it
    when its inputs are the same (see the module docstring).

    A failure (missing price, infeasible targets, bad setting) is stored as a failed run with
    its message, then raised as `RebalanceError`; a later call plans that date afresh.
    `RunExecuting` when the inputs changed but the stored run is being executed.
    ``expected_fingerprint``: a preview's; `InputsChanged` (nothing stored) when the inputs differ.
    """
    answer = rebalance_runs_create(
        [portfolio],
        as_of=_trading_date(as_of),
        strategy=strategy,
        manual=manual,
        cash_flow_usd=cash_flow_usd,
        expected_fingerprint=expected_fingerprint,
    )[portfolio.pk]
    if isinstance(answer, Exception):
        raise answer
    return answer


#: What planning answers for a portfolio: its run (new or stored), or why it has none.
Answer = PlannedRun | RebalanceError | RunExecuting | InputsChanged


def rebalance_runs_create(
    portfolios: Sequence[Portfolio],
    *,
    as_of: date,
    strategy: str | None = None,
    manual: bool = False,
    cash_flow_usd: Decimal = Decimal(0),
    expected_fingerprint: str | None = None,
) -> dict[int, Answer]:
    """`rebalance_run_create` for each of ``portfolios`` (a trading date), by portfolio id: their
    inputs read set-wise, their new runs (planned or failed) stored in one transaction.

    One portfolio's failure is its own answer, never the others'. When the transaction meets a
    concurrent change (another process stored a run of the date, or began executing one this
    planning supersedes), each portfolio of the batch is planned and stored again on its own.
    """
    ids = [portfolio.pk for portfolio in portfolios]
    inputs = inputs_read(portfolios, as_of=as_of)
    stored_runs = RebalanceRun.objects.active().filter(portfolio_id__in=ids, trading_date=as_of)
    existing = {run.portfolio_id: run for run in stored_runs.prefetch_related(_TRADES)}
    answers: dict[int, Answer] = {}
    to_plan = []
    for portfolio in portfolios:
        try:
            stored = _stored_answer(
                portfolio, existing.get(portfolio.pk), inputs, strategy, cash_flow_usd, expected_fingerprint
            )
        except (RebalanceError, RunExecuting, InputsChanged) as error:
            answers[portfolio.pk] = error
            continue
        if stored is None:
            to_plan.append(portfolio)
        else:
            answers[portfolio.pk] = stored
    if not to_plan:
        return answers
    reads = plan_reads(to_plan, inputs)
    planned, failed = [], []
    for portfolio in to_plan:
        try:
            planned.append(
                plan_from_reads(portfolio, reads, strategy=strategy, manual=manual, cash_flow_usd=cash_flow_usd)
            )
        except RebalanceError as error:
            answers[portfolio.pk] = error
            prior = existing.get(portfolio.pk)
            if prior is None or prior.status == RebalanceRun.Status.FAILED:  # a stored plan stays as it is
                failed.append(_failed_run(portfolio, as_of, strategy or portfolio.rebalancing_strategy, str(error)))
    try:
        _runs_store(planned, failed, existing)
    except IntegrityError:
        if len(portfolios) > 1:
            for portfolio in to_plan:
                answers[portfolio.pk] = rebalance_runs_create(
                    [portfolio], as_of=as_of, strategy=strategy, manual=manual, cash_flow_usd=cash_flow_usd
                )[portfolio.pk]
            return answers
        if planned:
            answers[ids[0]] = _stored_meanwhile(planned[0].run.portfolio, as_of, existing.get(ids[0]))
        return answers
    for each in planned:
        portfolio_id = each.run.portfolio_id
        prior = existing.get(portfolio_id)
        each.stored = True
        each.superseded = prior if prior is not None and prior.status != RebalanceRun.Status.FAILED else None
        answers[portfolio_id] = each
        logger.info(
            "rebalance run stored",
            extra={"portfolio_id": portfolio_id, "run_id": each.run.pk, "trades": len(each.trades)},
        )
    return answers


_TRADES = Prefetch("trades", queryset=PlannedTrade.objects.select_related("instrument"))


def _fingerprint(portfolio: Portfolio, inputs: PlanInputsRead, strategy: str | None, cash_flow_usd: Decimal) -> str:
    return plan_fingerprint(
        portfolio,
        as_of=inputs.as_of,
        strategy=strategy,
        cash_flow_usd=cash_flow_usd,
        holdings=inputs.holdings[portfolio.pk],
        universe=inputs.universes[portfolio.pk],
    )


def _stored_answer(
    portfolio: Portfolio,
    existing: RebalanceRun | None,
    inputs: PlanInputsRead,
    strategy: str | None,
    cash_flow_usd: Decimal,
    expected_fingerprint: str | None,
) -> PlannedRun | None:
    """The stored run that answers this request, or None when the portfolio is to be planned;
    raises why neither when a stored run stands in the way."""
    compared = existing is not None and existing.status not in (*REPLANNED_STATUSES, RebalanceRun.Status.EXECUTED)
    fingerprint = None
    if expected_fingerprint is not None or compared:
        fingerprint = _fingerprint(portfolio, inputs, strategy, cash_flow_usd)
    if expected_fingerprint is not None and expected_fingerprint != fingerprint:
        raise InputsChanged()
    if existing is not None and existing.status not in REPLANNED_STATUSES:
        if existing.inputs_fingerprint == fingerprint:
            return _stored(existing)
        if existing.status == RebalanceRun.Status.EXECUTED:
            if expected_fingerprint is not None:  # a previewed plan that can no longer be the date's
                raise RunExecuting(existing)
            return _stored(existing)
        if not plan_revisable(existing):
            raise RunExecuting(existing)
    if existing is not None and existing.status == RebalanceRun.Status.EXECUTION_FAILED:
        _check_settled(existing)
    return None


def _runs_store(planned: list[PlannedRun], failed: list[RebalanceRun], existing: dict[int, RebalanceRun]) -> None:
    """Store the new runs with their trades in one transaction: each replaces its portfolio's
    failed run, or supersedes its stored plan (`IntegrityError` when one changed meanwhile)."""
    started = time.perf_counter()
    runs = [each.run for each in planned] + failed
    priors = [existing[run.portfolio_id] for run in runs if run.portfolio_id in existing]
    replaced = [prior.pk for prior in priors if prior.status == RebalanceRun.Status.FAILED]
    superseded = [prior for prior in priors if prior.status != RebalanceRun.Status.FAILED]
    with transaction.atomic():
        if replaced:
            RebalanceRun.objects.active().filter(pk__in=replaced, status=RebalanceRun.Status.FAILED).delete()
        if superseded and _superseding(superseded) != len(superseded):
            raise IntegrityError("a stored run changed meanwhile")
        for run in runs:
            run.timings["store"] = 0.0
        RebalanceRun.objects.bulk_create(runs)
        PlannedTrade.objects.bulk_create([trade for each in planned for trade in each.trades])
        successors = {run.portfolio_id: run for run in runs}
        for prior in superseded:
            prior.superseded_by = successors[prior.portfolio_id]
        RebalanceRun.objects.bulk_update(superseded, ["superseded_by"])
        store = round((time.perf_counter() - started) / len(runs), 6) if runs else 0.0
        for run in runs:
            run.timings["store"] = store
        RebalanceRun.objects.bulk_update(runs, ["timings"])


def _stored_meanwhile(portfolio: Portfolio, as_of: date, existing: RebalanceRun | None) -> Answer:
    """The answer when another process stored the date's run a moment ago, or began executing the
    run this plan was to supersede: that one stands."""
    run = RebalanceRun.objects.active().prefetch_related(_TRADES).get(portfolio=portfolio, trading_date=as_of)
    if existing is not None and run.pk == existing.pk and existing.status in REVISABLE_STATUSES:
        return RunExecuting(run)
    return _stored(run)


def _failed_run(portfolio: Portfolio, as_of: date, strategy: str, message: str) -> RebalanceRun:
    logger.warning("rebalance planning failed", extra={"portfolio_id": portfolio.pk, "error": message})
    return RebalanceRun(
        portfolio=portfolio,
        trading_date=as_of,
        status=RebalanceRun.Status.FAILED,
        error=message,
        trigger="planning failed",
        requested_strategy=strategy,
    )


def _check_settled(run: RebalanceRun) -> None:
    """A stopped run is planned again only once none of its orders may still trade: the new plan
    starts from the holdings, which must include what those orders did."""
    open_states = [s.value for s in IN_FLIGHT]
    unsettled = [f"{o.side} {o.symbol} ({o.state})" for o in run.orders.filter(state__in=open_states)]
    if unsettled:
        raise RebalanceError(
            f"run {run.pk} stopped with orders that may still trade: {', '.join(unsettled)}; execute it again "
            "(it settles them and sends nothing new) or sync from the broker, then plan again"
        )


def _stored(run: RebalanceRun) -> PlannedRun:
    """A stored run as the answer (read with `_TRADES`)."""
    return PlannedRun(run=run, trades=list(run.trades.all()), stored=True, existing=True)


def plan_revisable(run: RebalanceRun) -> bool:
    """Whether ``run`` (as read) may be superseded by a plan from changed inputs: a plan whose
    execution has not begun (the stored row decides, in `_superseding`)."""
    free = run.lease_owner == "" or (run.lease_until is not None and run.lease_until < timezone.now())
    return run.status in REVISABLE_STATUSES and run.execution_step == "" and free


def _superseding(runs: Sequence[RebalanceRun]) -> int:
    """Mark ``runs`` superseded (before their successors are inserted, so the one-active-run
    constraint lets them in), except those whose stored row changed meanwhile: a stopped run an
    executor took up, or a plan whose execution began (a lease held, a step stored, an order
    written). The number marked."""
    now = timezone.now()
    stopped = Q(status=RebalanceRun.Status.EXECUTION_FAILED, lease_owner="")
    not_begun = (
        Q(status__in=REVISABLE_STATUSES, execution_step="")
        & (Q(lease_owner="") | Q(lease_until__lt=now))
        & ~Exists(Order.objects.filter(run=OuterRef("pk")))
    )
    return (
        RebalanceRun.objects.active()
        .filter(stopped | not_begun, pk__in=[run.pk for run in runs])
        .update(superseded_at=now)
    )


def _trading_date(as_of: date | None) -> date:
    if as_of is None:
        return default_as_of()
    if not calendar.is_session(as_of):
        raise RebalanceError(f"as_of: {as_of} is not an NYSE trading day")
    return as_of


def _targets(portfolio: Portfolio, reads: PlanReads):
    """(weights by symbol, OptimizationResult or None, source, TargetsComputed or None) on the date."""
    manual = manual_targets_parse(portfolio.manual_targets, known=reads.instruments)
    if manual is not None:
        return manual, None, "manual", None
    computed = reads.targets[portfolio.pk]
    if isinstance(computed, OptimizationError):
        raise computed
    allocation = computed.allocation
    return allocation.result.weights(), allocation.result, "optimizer", computed


def _snapshot(
    portfolio: Portfolio,
    holdings: dict,
    symbols: list[str],
    as_of: date,
    share_rules: dict[str, ShareRule],
    closes: dict[str, float],
) -> Snapshot:
    """Holdings, cash, each symbol's close on ``as_of`` and whether fractions of it trade."""
    prices = {symbol: price_decimal(closes[symbol]) for symbol in symbols if symbol in closes}
    missing = [symbol for symbol in symbols if symbol not in prices]
    if missing:
        raise MissingPrices(
            f"no price on {as_of} for {', '.join(missing)}: the plan needs every holding's close on its trading "
            "date (run fetch_prices, or plan an earlier date with --date)"
        )
    return Snapshot(
        quantities={symbol: h.quantity for symbol, h in holdings.items()},
        cost_basis_usd={symbol: h.cost_basis_usd for symbol, h in holdings.items()},
        cash_usd=portfolio.cash_usd,
        prices=prices,
        price_date=as_of,
        fractionable={symbol: bool(rule.fractionable) for symbol, rule in share_rules.items()},
        whole_shares=whole_shares_rows(share_rules),
    )


def _need_json(need) -> dict:
    return {
        "symbol": need.symbol,
        "current_weight": round(need.current_weight, 10),
        "target_weight": round(need.target_weight, 10),
        "deviation": round(need.deviation, 10),
        "band": round(need.band, 10),
        "outside": bool(need.outside),
        "urgency": round(need.urgency, 6),
        "action": need.action,
    }


def _policy_json(policy) -> dict:
    data = asdict(policy)
    data["trading"]["do_not_trade"] = sorted(policy.trading.do_not_trade)
    return data
