"""The dashboard: every portfolio of the user at a glance, with what needs attention."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from portfolios.charts.pages import sparkline_data
from portfolios.selectors.dashboard import dashboard_for_user


@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    data = dashboard_for_user(user=request.user)
    # A sparkline needs two points: stored runs' values by trading date, then today's value.
    cards = [
        (
            card,
            sparkline_data(card.history) if len(card.history) > 1 else None,
            f"spark-{card.portfolio.pk}",
        )
        for card in data.cards
    ]
    return render(request, "portfolios/dashboard.html", {"dashboard": data, "cards": cards})
