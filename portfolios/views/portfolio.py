"""A portfolio's page, its settings form (create and edit) and its deletion."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from optimization.core.names import PLANNING_STRATEGY_NAMES, STRATEGY_NAMES
from portfolios.charts.pages import bands_chart, figure_data, price_history_chart, weights_chart
from portfolios.forms import PortfolioForm
from portfolios.selectors import portfolio_get_for_user
from portfolios.selectors.portfolio_page import portfolio_detail, price_history
from portfolios.services.execution import approval_blocked
from portfolios.services.paper_seed import paper_account_seed
from portfolios.services.portfolio_lock import BUSY_MESSAGE, PortfolioBusy


@require_safe
def portfolio_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    portfolio = portfolio_get_for_user(user=request.user, portfolio_id=pk)
    detail = portfolio_detail(portfolio=portfolio)
    charts = {}
    rows = [r for r in detail.rows if r.weight is not None]
    if rows:
        charts["weights"] = figure_data(
            weights_chart(
                [r.symbol for r in rows],
                [r.weight for r in rows],
                [r.target for r in rows],
                cash_weight=detail.cash_weight,
                cash_target=detail.cash_target,
            )
        )
    banded = [r for r in rows if r.band is not None]
    if banded:
        charts["bands"] = figure_data(
            bands_chart(
                [r.symbol for r in banded],
                [r.deviation for r in banded],
                [r.band for r in banded],
                [r.outside for r in banded],
            )
        )
    symbols = sorted({r.symbol for r in detail.rows} | set(detail.prices.closes))
    if symbols:
        closes = price_history(symbols=symbols, session=detail.prices.session)
        if not closes.empty:
            charts["prices"] = figure_data(price_history_chart(closes, synthetic=bool(detail.prices.synthetic)))
    context = {
        "portfolio": portfolio,
        "detail": detail,
        "charts": charts,
        "can_approve": bool(detail.latest_run and not approval_blocked(detail.latest_run)),
    }
    return render(request, "portfolios/portfolio_detail.html", context)


@require_http_methods(["GET", "POST"])
def portfolio_create(request: HttpRequest) -> HttpResponse:
    form = PortfolioForm(request.POST if request.method == "POST" else None, user=request.user)
    if request.method == "POST" and form.is_valid():
        portfolio = form.save()
        messages.success(request, f"Portfolio {portfolio.name!r} created. Now enter its holdings and cash.")
        return redirect("portfolio_holdings", pk=portfolio.pk)
    return _form_page(request, form, portfolio=None)


@require_http_methods(["GET", "POST"])
def portfolio_edit(request: HttpRequest, pk: int) -> HttpResponse:
    portfolio = portfolio_get_for_user(user=request.user, portfolio_id=pk)
    form = PortfolioForm(request.POST if request.method == "POST" else None, instance=portfolio, user=request.user)
    if request.method == "POST" and form.is_valid():
        seed = form.cleaned_data.get("seed_paper_account", False)
        try:
            # The settings (the paper account chosen) and the seed are saved together or not at all.
            with transaction.atomic():
                form.save()
                if seed:
                    paper = paper_account_seed(portfolio=portfolio)
        except PortfolioBusy:
            form.add_error(None, BUSY_MESSAGE)
            return _form_page(request, form, portfolio=portfolio, status=409)
        except ValidationError as error:
            form.add_error("seed_paper_account", error.messages)
            return _form_page(request, form, portfolio=portfolio)
        messages.success(request, "Settings saved. They apply from the next plan; stored runs keep theirs.")
        if seed:
            messages.success(
                request,
                f"{portfolio.broker_account.label} now holds this portfolio's {paper.positions.count()} holding(s) "
                f"and ${paper.cash_usd:,.2f} of cash.",
            )
        return redirect("portfolio_detail", pk=portfolio.pk)
    return _form_page(request, form, portfolio=portfolio)


def _form_page(request: HttpRequest, form: PortfolioForm, *, portfolio, status: int | None = None) -> HttpResponse:
    return render(
        request,
        "portfolios/portfolio_form.html",
        {
            "form": form,
            "portfolio": portfolio,
            "strategy_names": STRATEGY_NAMES,
            "planning_strategy_names": PLANNING_STRATEGY_NAMES,
        },
        status=status or (400 if form.is_bound and form.errors else 200),
    )


@require_http_methods(["GET", "POST"])
def portfolio_delete(request: HttpRequest, pk: int) -> HttpResponse:
    portfolio = portfolio_get_for_user(user=request.user, portfolio_id=pk)
    if request.method == "POST":
        name = portfolio.name
        try:
            with transaction.atomic():
                portfolio.delete()
        except ProtectedError:
            # Orders sent to a broker are the record of real trades: they are never deleted.
            messages.error(
                request,
                f"{name!r} has orders at a broker, which are kept as the record of its trades: it cannot be "
                'deleted. Untick "active" in its settings to take it out of the daily run.',
            )
            return redirect("portfolio_detail", pk=pk)
        messages.success(request, f"Portfolio {name!r} deleted.")
        return redirect("dashboard")
    return render(request, "portfolios/portfolio_confirm_delete.html", {"portfolio": portfolio})
