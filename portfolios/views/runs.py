"""Rebalance now, and approve and execute a proposed run."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from brokers.base import BrokerError
from portfolios.forms import ApproveForm
from portfolios.models import RebalanceRun
from portfolios.selectors import portfolio_get_for_user, run_get_for_user
from portfolios.services.execution import (
    ApprovalOutcome,
    ExecutionBusy,
    ExecutionRefused,
    approval_blocked,
    approval_outcome,
    approval_queue,
    execute_run,
    new_york_time_text,
)
from portfolios.services.rebalancing import RebalanceError, RunExecuting, rebalance_run_create
from two_factor.services import session_is_verified

Status = RebalanceRun.Status


@require_POST
def portfolio_rebalance(request: HttpRequest, pk: int) -> HttpResponse:
    """Plan today's run as a manual request (every trigger overridden) and show its report."""
    portfolio = portfolio_get_for_user(user=request.user, portfolio_id=pk)
    try:
        planned = rebalance_run_create(portfolio=portfolio, manual=True)
    except RebalanceError as error:
        messages.error(request, f"Planning failed, nothing to trade: {error}")
        return redirect("portfolio_detail", pk=portfolio.pk)
    except RunExecuting as error:
        messages.error(request, f"Not planned again: {error}.")
        return redirect("run_report", error.run.pk)
    run = planned.run
    if planned.existing:
        messages.info(request, stored_run_message(run))
        return redirect("run_report", run.pk)
    if planned.superseded is not None:
        messages.info(
            request, f"Planned again from what the portfolio holds now: run {planned.superseded.pk} is superseded."
        )
    if run.status == Status.PLANNED:
        messages.success(request, f"Planned {len(planned.trades)} trade(s). Nothing is sent until you approve.")
    else:
        messages.info(request, f"No trade needed: {run.trigger}")
    return redirect("run_report", run.pk)


def stored_run_message(run: RebalanceRun) -> str:
    """Why asking again answered the stored ``run`` instead of a new plan."""
    if run.status == Status.EXECUTED:
        return (
            f"Run {run.pk} already traded for {run.trading_date}: a plan that has traded never changes; the next "
            "plan is for the next trading date."
        )
    return f"Nothing this plan is made from has changed since run {run.pk} was planned: here it is."


@require_http_methods(["GET", "POST"])
def run_approve(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the orders the run would send and its pre-trade checks (a dry run: nothing is written).
    POST: send them (the owner's approval); a live account needs the password again and two-factor
    authentication (a code, unless this session entered one)."""
    run = run_get_for_user(user=request.user, run_id=pk)
    account = run.portfolio.broker_account
    blocked = approval_blocked(run)
    live = bool(account and account.is_live)
    form = ApproveForm(
        request.POST if request.method == "POST" else None,
        user=request.user,
        live=live,
        verified=session_is_verified(request.user),
    )
    dry_run, broker_error, outcome = None, "", ApprovalOutcome()
    if not blocked:
        try:
            dry_run = execute_run(run=run, submit=False, approved=True)
        except (ExecutionRefused, BrokerError) as error:
            broker_error = str(error)
        else:
            outcome = approval_outcome(run, dry_run)
    if request.method == "POST" and not blocked and not outcome.refused and form.is_valid():
        if form.check.device is not None:
            otp_login(request, form.check.device)
        if outcome.due is not None:
            if approval_queue(run, outcome.due):
                messages.success(
                    request,
                    f"Approved. The market is closed: run {run.pk} is queued and executes at "
                    f"{new_york_time_text(outcome.due)}, after the next open.",
                )
            else:
                messages.error(request, f"Not approved: run {run.pk} changed meanwhile; look at it again.")
            return redirect("run_report", run.pk)
        try:
            result = execute_run(run=run, submit=True, approved=True)
        except (ExecutionRefused, ExecutionBusy) as error:
            messages.error(request, f"Not executed: {error}")
            return redirect("run_report", run.pk)
        _report_outcome(request, result)
        return redirect("run_report", run.pk)
    return render(
        request,
        "portfolios/run_approve.html",
        {
            "run": run,
            "portfolio": run.portfolio,
            "account": account,
            "trades": list(run.trades.select_related("instrument")),
            "blocked": blocked,
            "dry_run": dry_run,
            "broker_error": broker_error,
            "checks_passed": bool(dry_run and all(c["ok"] for c in dry_run.checks)),
            "refused": outcome.refused,
            "due_text": new_york_time_text(outcome.due) if outcome.due else "",
            "form": form,
        },
        status=400 if request.method == "POST" else 200,
    )


def _report_outcome(request: HttpRequest, result) -> None:
    run = result.run
    if run.status == Status.EXECUTED:
        sent = len(result.orders)
        messages.success(request, f"Executed: {sent} order{pluralize(sent)} sent; their fills are below.")
    elif run.status == Status.EXECUTION_FAILED:
        messages.error(request, f"Execution stopped: {run.error or result.message}")
    elif result.waiting:
        messages.warning(request, f"Orders sent; {result.message}")
    else:
        messages.info(request, result.message or run.get_status_display())
