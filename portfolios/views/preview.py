"""Preview the plan a portfolio would get now (nothing stored, nothing sent), and save that plan.

The preview plans as "Rebalance now" does (a manual request: every trigger overridden), with an
optional deposit or withdrawal and another planning strategy, and shows the result without
writing a run. Saving stores the plan only if what it is made from is still what was previewed
(its inputs fingerprint and trading date): otherwise nothing is stored and the owner reviews the
new preview.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from ground.form_fields import PlainDecimalField
from optimization.core.names import PLANNING_STRATEGY_NAMES
from portfolios.models import Portfolio, RebalanceRun
from portfolios.selectors import portfolio_get_for_user
from portfolios.services.rebalancing import (
    InputsChanged,
    RebalanceError,
    RunExecuting,
    default_as_of,
    rebalance_run_create,
    rebalance_run_plan,
)
from portfolios.services.report.build import run_report_build
from portfolios.views.runs import stored_run_message

Status = RebalanceRun.Status
CASH_FLOW_HELP = (
    "Optional. A deposit to invest is positive, a withdrawal to raise is negative, in dollars: add $5,000 is "
    "5000, withdraw $2,000 is -2000. Leave empty for neither."
)


# -- forms -----------------------------------------------------------------------------------------


class PlanPreviewForm(forms.Form):
    """What a preview is asked for: a signed cash flow and a planning strategy (default the portfolio's)."""

    cash_flow_usd = PlainDecimalField(
        label="Cash flow (USD)",
        required=False,
        max_digits=18,
        decimal_places=2,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0", "size": 14}),
        help_text=CASH_FLOW_HELP,
    )
    strategy = forms.ChoiceField(label="Planning strategy", required=False)

    def __init__(self, data=None, *, portfolio: Portfolio):
        self.portfolio = portfolio
        own = portfolio.rebalancing_strategy
        if data is not None and not data.get("strategy"):
            data = data.copy()
            data["strategy"] = own  # none chosen: the portfolio's, shown selected
        super().__init__(data, initial={"strategy": own})
        names = list(PLANNING_STRATEGY_NAMES)
        if own and own not in names:
            names.append(own)  # a plug-in an administrator set on this portfolio
        self.fields["strategy"].choices = [
            (name, f"{name} (this portfolio's)" if name == own else name) for name in names
        ]

    def plan_request(self) -> tuple[Decimal, str]:
        """(cash flow, strategy) of a valid form."""
        cash_flow = self.cleaned_data.get("cash_flow_usd")
        return (cash_flow if cash_flow is not None else Decimal(0)), self.cleaned_data["strategy"]


class PlanSaveForm(PlanPreviewForm):
    """The previewed request, with what the preview was made from."""

    inputs_fingerprint = forms.RegexField(
        r"^[0-9a-f]{64}$",
        label="Inputs fingerprint",
        error_messages={
            "required": "missing: preview the plan first",
            "invalid": "must be the preview's fingerprint (64 lowercase hexadecimal characters)",
        },
    )
    trading_date = forms.DateField(label="Trading date", required=False, input_formats=["%Y-%m-%d"])


def _query(cash_flow: Decimal, strategy: str) -> str:
    """The preview page's query string for this request."""
    return urlencode({"cash_flow_usd": format(cash_flow, "f") if cash_flow else "", "strategy": strategy})


# -- views -----------------------------------------------------------------------------------------


@require_safe
def portfolio_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The plan the portfolio would get now, for a cash flow and a strategy: nothing is stored or sent."""
    portfolio = portfolio_get_for_user(user=request.user, portfolio_id=pk)
    form = PlanPreviewForm(request.GET, portfolio=portfolio)
    context = {"portfolio": portfolio, "form": form, "preview": None, "error": ""}
    if form.is_valid():
        cash_flow, strategy = form.plan_request()
        try:
            planned = rebalance_run_plan(portfolio=portfolio, strategy=strategy, manual=True, cash_flow_usd=cash_flow)
        except RebalanceError as error:
            context["error"] = str(error)
        else:
            context.update(
                preview=run_report_build(run=planned.run, trades=planned.trades),
                cash_flow_usd=format(cash_flow, "f") if cash_flow else "",
                strategy=strategy,
            )
    return render(request, "portfolios/plan_preview.html", context)


@require_POST
def portfolio_preview_save(request: HttpRequest, pk: int) -> HttpResponse:
    """Store the previewed plan as the day's run, if the portfolio is still as it was previewed."""
    portfolio = portfolio_get_for_user(user=request.user, portfolio_id=pk)
    form = PlanSaveForm(request.POST, portfolio=portfolio)
    if not form.is_valid():
        problems = "; ".join(
            f"{form.fields[name].label if name in form.fields else 'request'}: {' '.join(errors)}"
            for name, errors in form.errors.items()
        )
        messages.error(request, f"Nothing was saved, the preview's request was refused ({problems}). Preview again.")
        return redirect("portfolio_detail", pk=portfolio.pk)
    cash_flow, strategy = form.plan_request()
    preview_url = f"{reverse('portfolio_preview', args=[portfolio.pk])}?{_query(cash_flow, strategy)}"
    previewed_date = form.cleaned_data.get("trading_date")
    if previewed_date is not None and previewed_date != default_as_of():
        messages.error(
            request,
            f"Nothing was saved: the preview was for trading date {previewed_date}, and plans are now made for "
            f"{default_as_of()}. Review the new preview below before saving it.",
        )
        return redirect(preview_url)
    try:
        planned = rebalance_run_create(
            portfolio=portfolio,
            manual=True,
            strategy=strategy,
            cash_flow_usd=cash_flow,
            expected_fingerprint=form.cleaned_data["inputs_fingerprint"],
        )
    except InputsChanged:
        messages.error(
            request,
            "Nothing was saved: the portfolio changed since the preview (holdings, cash, targets or settings). "
            "Review the new preview below before saving it.",
        )
        return redirect(preview_url)
    except RunExecuting as error:
        messages.error(request, f"Not saved: {error}.")
        return redirect("run_report", error.run.pk)
    except RebalanceError as error:
        messages.error(request, f"Planning failed, nothing to trade: {error}")
        return redirect("portfolio_detail", pk=portfolio.pk)
    run = planned.run
    if planned.existing:
        messages.info(request, stored_run_message(run))
        return redirect("run_report", run.pk)
    message = f"Saved the previewed plan as run {run.pk}"
    if planned.superseded is not None:
        message += f"; run {planned.superseded.pk} is superseded"
    if run.status == Status.PLANNED:
        message += f": {len(planned.trades)} trade(s). Nothing is sent until you approve."
    else:
        message += f": no trade needed ({run.trigger})."
    messages.success(request, message)
    return redirect("run_report", run.pk)
