"""The drift of what portfolios hold now, against their latest targets.

Drift is that of the holdings now against the latest targets (`drifts_now`), never a stored run's
figure: a sync, an execution or an edit of the holdings changes it at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from django.db.models import OuterRef, Subquery

from marketdata.selectors import latest_closes
from optimization.core.errors import OptimizationError
from optimization.core.rebalancing.inputs import PlanContext
from optimization.core.rebalancing.needs import needs as core_needs
from optimization.models import TargetAllocation, TargetWeight
from optimization.services import manual_targets_parse, plan_inputs_build, price_decimal, rebalance_policy_for
from portfolios.models import Portfolio, RebalanceRun
from portfolios.selectors import latest_run_id_subquery, portfolio_quantities_by_id
from portfolios.selectors.valuation import last_session


@dataclass(frozen=True)
class DriftNow:
    """A portfolio's drift as it holds now: holdings at the latest closes plus cash, against its
    latest targets (`targets_latest`) and its cash buffer. ``drift`` (sum |w - t| / 2, the plans'
    measure) is None when it cannot be known, and ``unknown`` says why; ``needs`` are per holding,
    as a run stores them."""

    drift: Decimal | None
    needs: list[dict]
    cash_weight: float | None
    cash_target: float | None
    targets_note: str
    unknown: str = ""


class LatestTargets(NamedTuple):
    """A portfolio's latest known target weights, where they come from (a phrase for the page, ""
    when there are none), and the optimizer result they were made by (None: a run's manual targets)."""

    weights: dict[str, Decimal]
    source: str
    result_id: int | None = None


def targets_latest(
    *, portfolios: Sequence[Portfolio], runs: Mapping[int, RebalanceRun | None]
) -> dict[int, LatestTargets]:
    """The latest target weights known for each portfolio: those of its latest run (``runs``:
    {portfolio id: run or None}), else its manual targets, else the optimizer's last stored
    targets. Two queries read the optimizer's targets of all the portfolios that need them, none
    when no portfolio does."""
    found: dict[int, LatestTargets] = {}
    from_optimizer = []
    for portfolio in portfolios:
        run = runs.get(portfolio.pk)
        try:
            manual = manual_targets_parse(portfolio.manual_targets)
        except ValueError:  # no longer valid: a plan refuses them too
            manual = None
        if run is not None and run.targets:
            found[portfolio.pk] = LatestTargets(
                {s: Decimal(str(w)) for s, w in run.targets.items()},
                f"of the run of {run.trading_date}",
                run.optimization_result_id if run.targets_source == "optimizer" else None,
            )
        elif manual:
            found[portfolio.pk] = LatestTargets(manual, "manual")
        else:
            found[portfolio.pk] = LatestTargets({}, "")
            from_optimizer.append(portfolio.pk)
    if from_optimizer:
        latest = TargetAllocation.objects.filter(portfolio=OuterRef("pk")).order_by("-as_of")
        allocations = list(
            Portfolio.objects.filter(pk__in=from_optimizer)
            .annotate(
                target_result_id=Subquery(latest.values("result_id")[:1]),
                targets_as_of=Subquery(latest.values("as_of")[:1]),
            )
            .filter(target_result_id__isnull=False)
            .values_list("pk", "target_result_id", "targets_as_of")
        )
        weights: dict[int, dict[str, Decimal]] = defaultdict(dict)
        for result_id, symbol, weight in TargetWeight.objects.filter(
            result_id__in={result_id for _, result_id, _ in allocations}
        ).values_list("result_id", "instrument__symbol", "weight"):
            weights[result_id][symbol] = weight
        for portfolio_id, result_id, as_of in allocations:
            found[portfolio_id] = LatestTargets(weights[result_id], f"of the optimizer on {as_of}", result_id)
    return found


def drifts_now(
    *,
    portfolios: Sequence[Portfolio],
    quantities: Mapping[int, dict[str, Decimal]],
    targets: Mapping[int, LatestTargets],
    closes: Mapping[str, Decimal],
) -> dict[int, DriftNow]:
    """Each portfolio's `DriftNow` from its holdings (``quantities``: {portfolio id: {symbol:
    shares}}), its `targets_latest` and the latest closes (USD); no query."""
    found: dict[int, DriftNow] = {}
    for portfolio in portfolios:
        weights, note, _ = targets.get(portfolio.pk, LatestTargets({}, ""))
        if not weights:
            found[portfolio.pk] = DriftNow(
                None, [], None, None, note, "no targets yet: plan a run or set manual targets"
            )
            continue
        context, unknown = _plan_context_now(portfolio, quantities.get(portfolio.pk, {}), weights, closes)
        if context is None:
            found[portfolio.pk] = DriftNow(None, [], None, None, note, unknown)
            continue
        found[portfolio.pk] = DriftNow(
            Decimal(str(context.drift)), _need_rows(context), context.cash_weight, context.cash_target, note
        )
    return found


def portfolio_drifts_now(*, portfolios) -> dict[int, Decimal]:
    """The drift of what each of ``portfolios`` (a queryset) holds now, where it can be known:
    {portfolio id: drift}; a fixed number of queries whatever their count."""
    portfolios = list(portfolios.annotate(latest_run_id=latest_run_id_subquery()))
    quantities = portfolio_quantities_by_id(portfolio_ids=[p.pk for p in portfolios])
    latest_runs = {
        run.pk: run
        for run in RebalanceRun.objects.filter(pk__in=[p.latest_run_id for p in portfolios if p.latest_run_id]).only(
            "id", "portfolio_id", "trading_date", "targets", "targets_source", "optimization_result_id"
        )
    }
    runs = {p.pk: latest_runs.get(p.latest_run_id) for p in portfolios}
    targets = targets_latest(portfolios=portfolios, runs=runs)
    symbols = set().union(*quantities.values(), *(latest.weights for latest in targets.values()))
    found = latest_closes(symbols=sorted(symbols), on_or_before=last_session())
    closes = {symbol: price_decimal(price) for symbol, (_, price) in found.items()}
    drifts = drifts_now(portfolios=portfolios, quantities=quantities, targets=targets, closes=closes)
    return {pk: now.drift for pk, now in drifts.items() if now.drift is not None}


def _plan_context_now(
    portfolio: Portfolio, quantities: dict[str, Decimal], targets: dict[str, Decimal], closes: Mapping[str, Decimal]
) -> tuple[PlanContext | None, str]:
    """The planner's view of the holdings now (weights, bands, drift), or None and why not."""
    symbols = sorted(set(quantities) | set(targets))
    missing = [s for s in symbols if s not in closes]
    if missing:
        return None, f"no close for {', '.join(missing)}"
    try:
        inputs = plan_inputs_build(
            symbols=symbols,
            quantities=quantities,
            prices={s: closes[s] for s in symbols},
            targets=targets,
            cash_usd=portfolio.cash_usd,
            fractionable={},
        )
        return PlanContext(inputs, rebalance_policy_for(portfolio)), ""
    except (ValueError, OptimizationError) as error:
        return None, str(error)


def _need_rows(context: PlanContext) -> list[dict]:
    """The planner's needs of ``context``, as a run stores them."""
    return [
        {
            "symbol": n.symbol,
            "current_weight": n.current_weight,
            "target_weight": n.target_weight,
            "deviation": n.deviation,
            "band": n.band,
            "outside": n.outside,
            "urgency": n.urgency,
            "action": n.action,
        }
        for n in core_needs(context)
    ]
