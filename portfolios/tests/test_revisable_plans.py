"""Plans are revisable until they trade: changed inputs plan afresh and supersede the stored run;
the same inputs answer it; a run being executed never changes and is never superseded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.services.accounts import broker_account_create
from portfolios.models import PlannedTrade, RebalanceRun
from portfolios.services.execution import ExecutionBusy, execute_run
from portfolios.services.execution.lease import lease_claim, lease_release, new_owner
from portfolios.services.holdings import holdings_upsert
from portfolios.services.plan_inputs import plan_fingerprint
from portfolios.services.rebalancing import RunExecuting, plan_from_reads, rebalance_run_create, rebalance_run_plan

from .execution_factories import AS_OF, paper_portfolio

Status = RebalanceRun.Status
pytestmark = pytest.mark.django_db


@pytest.fixture
def portfolio(prices, clock):
    return paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, cash_usd=Decimal(500), mode="propose")


def plan(portfolio, **request):
    return rebalance_run_create(portfolio=portfolio, as_of=AS_OF, manual=True, **request)


def test_the_same_inputs_answer_the_stored_run(portfolio):
    first = plan(portfolio)
    again = plan(portfolio)
    assert again.existing and again.run.pk == first.run.pk
    assert first.run.inputs_fingerprint == plan_fingerprint(
        portfolio, as_of=AS_OF, strategy=None, cash_flow_usd=Decimal(0)
    )
    assert RebalanceRun.objects.count() == 1


def test_changed_holdings_plan_afresh_and_supersede_the_stored_run(portfolio):
    first = plan(portfolio)
    holdings_upsert(portfolio=portfolio, rows=[{"symbol": "BND", "quantity": Decimal(100)}])
    second = plan(portfolio)
    assert not second.existing and second.run.pk != first.run.pk

    old = RebalanceRun.objects.get(pk=first.run.pk)
    assert old.superseded_at is not None and old.superseded_by_id == second.run.pk
    assert RebalanceRun.objects.active().get(portfolio=portfolio).pk == second.run.pk
    assert second.run.snapshot["holdings"]["BND"]["quantity"] == "100.000000000"
    # The superseded plan keeps its trades; asking once more answers the new plan.
    assert PlannedTrade.objects.filter(run=old).count() == len(first.trades)
    assert plan(portfolio).run.pk == second.run.pk


@pytest.mark.parametrize(
    "change",
    [
        lambda p: setattr(p, "cash_usd", Decimal(5000)),
        lambda p: setattr(p, "manual_targets", {"SPY": "0.5", "BND": "0.5"}),
        lambda p: setattr(p, "band_abs", Decimal("0.02")),
        lambda p: setattr(p, "min_trade_usd", Decimal(50)),
    ],
    ids=["cash", "targets", "band", "minimum trade"],
)
def test_cash_targets_and_policy_settings_are_inputs(portfolio, change):
    first = plan(portfolio)
    change(portfolio)
    portfolio.save()
    assert plan(portfolio).run.pk != first.run.pk


def test_the_broker_account_and_the_request_are_inputs(portfolio):
    first = plan(portfolio)
    with_flow = plan(portfolio, cash_flow_usd=Decimal(1000))
    assert with_flow.run.pk != first.run.pk and with_flow.run.cash_flow_usd == Decimal(1000)
    full = plan(portfolio, cash_flow_usd=Decimal(1000), strategy="full")
    assert full.run.pk != with_flow.run.pk and full.run.strategy == "full"
    portfolio.broker_account = broker_account_create(owner=portfolio.owner, kind="paper", label="Another")
    portfolio.save()
    assert plan(portfolio, cash_flow_usd=Decimal(1000), strategy="full").run.pk != full.run.pk
    assert RebalanceRun.objects.active().count() == 1 and RebalanceRun.objects.count() == 4


def test_the_name_and_mode_are_not_inputs(portfolio):
    first = plan(portfolio)
    portfolio.name, portfolio.mode = "Renamed", "auto"
    portfolio.save()
    assert plan(portfolio).run.pk == first.run.pk


def test_a_preview_has_the_fingerprint_a_stored_plan_of_the_same_inputs_gets(portfolio):
    preview = rebalance_run_plan(portfolio=portfolio, as_of=AS_OF, manual=True)
    stored = plan(portfolio)
    assert preview.run.inputs_fingerprint == stored.run.inputs_fingerprint
    assert [(t.side, t.quantity) for t in preview.trades] == [(t.side, t.quantity) for t in stored.trades]


def test_a_run_being_executed_is_not_replanned(portfolio):
    run = plan(portfolio).run
    lease_claim(run, new_owner())  # an executor holds it
    holdings_upsert(portfolio=portfolio, rows=[{"symbol": "BND", "quantity": Decimal(100)}])
    with pytest.raises(RunExecuting, match=f"run {run.pk} of 2025-06-30 is being executed"):
        plan(portfolio)
    assert RebalanceRun.objects.get().pk == run.pk and RebalanceRun.objects.get().superseded_at is None


def test_an_executed_run_is_answered_as_it_is(portfolio):
    run = plan(portfolio).run
    executed = execute_run(run=run, submit=True, approved=True).run
    assert executed.status == Status.EXECUTED
    again = plan(portfolio)  # the fills changed the holdings: the run that traded still stands
    assert again.existing and again.run.pk == run.pk


def test_a_plan_made_while_an_execution_claimed_the_run_answers_that_run_executing(portfolio, monkeypatch):
    """The re-plan read the run before the executor claimed it, and stores after: the execution wins."""
    run = plan(portfolio).run
    holdings_upsert(portfolio=portfolio, rows=[{"symbol": "BND", "quantity": Decimal(100)}])
    planning = plan_from_reads

    def claimed_meanwhile(*args, **kwargs):
        lease_claim(RebalanceRun.objects.get(pk=run.pk), new_owner())
        return planning(*args, **kwargs)

    monkeypatch.setattr("portfolios.services.rebalancing.plan_from_reads", claimed_meanwhile)
    with pytest.raises(RunExecuting, match=f"run {run.pk} "):
        plan(portfolio)
    assert list(RebalanceRun.objects.values_list("pk", "superseded_at")) == [(run.pk, None)]


def test_a_superseded_run_is_never_executed(portfolio):
    old = plan(portfolio).run
    holdings_upsert(portfolio=portfolio, rows=[{"symbol": "BND", "quantity": Decimal(100)}])
    new = plan(portfolio).run
    with pytest.raises(ExecutionBusy, match=f"superseded by run {new.pk}"):
        lease_claim(old, new_owner())
    from portfolios.services.execution import ExecutionRefused

    with pytest.raises(ExecutionRefused, match="superseded"):
        execute_run(run=old, submit=True, approved=True)
    assert not old.orders.exists()


def test_an_expired_lease_of_a_run_whose_execution_never_began_does_not_block_a_revision(portfolio):
    run = plan(portfolio).run
    owner = new_owner()
    lease_claim(run, owner)
    RebalanceRun.objects.filter(pk=run.pk).update(lease_until="2000-01-01T00:00:00Z")
    holdings_upsert(portfolio=portfolio, rows=[{"symbol": "BND", "quantity": Decimal(100)}])
    assert plan(portfolio).run.pk != run.pk
    lease_release(run, owner)


def test_a_preview_saved_after_the_days_run_traded_is_refused_naming_that_run(portfolio):
    """The preview cannot become the date's plan: the run that traded stays, and the save says so."""
    run = plan(portfolio).run
    execute_run(run=run, submit=True, approved=True)
    preview = rebalance_run_plan(portfolio=portfolio, as_of=AS_OF, manual=True, cash_flow_usd=Decimal(1000))
    with pytest.raises(RunExecuting, match=f"run {run.pk} of 2025-06-30 has traded"):
        plan(portfolio, cash_flow_usd=Decimal(1000), expected_fingerprint=preview.run.inputs_fingerprint)
    assert RebalanceRun.objects.count() == 1
