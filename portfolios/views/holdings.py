"""Holdings and cash: the editor, the CSV upload and the sync from the broker."""

from __future__ import annotations

import re
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from portfolios.forms import CashForm, HoldingFormSet, HoldingsUploadForm
from portfolios.selectors import portfolio_get_for_user
from portfolios.services.holdings import holdings_replace, holdings_rows_check
from portfolios.services.holdings_csv import MAX_BYTES, holdings_replace_from_csv
from portfolios.services.portfolio_lock import BUSY_MESSAGE, PortfolioBusy
from portfolios.services.sync import SyncError, sync_from_broker

_ROW_ERROR = re.compile(r"^row (\d+) \(([^)]*)\): (.*)$", re.DOTALL)
_UNKNOWN = re.compile(r"^unknown symbol (.+?): ", re.DOTALL)


@require_http_methods(["GET", "POST"])
def holdings_edit(request: HttpRequest, pk: int) -> HttpResponse:
    portfolio = portfolio_get_for_user(user=request.user, portfolio_id=pk)
    initial = [
        {"symbol": h.instrument.symbol, "quantity": _plain(h.quantity), "cost_basis_usd": _plain(h.cost_basis_usd)}
        for h in portfolio.holdings.select_related("instrument")
    ]
    if request.method == "GET":
        formset = HoldingFormSet(initial=initial, prefix="holdings")
        cash_form = CashForm(initial={"cash_usd": _plain(portfolio.cash_usd)})
        return _holdings_page(request, portfolio, formset, cash_form)
    formset = HoldingFormSet(request.POST, initial=initial, prefix="holdings")
    cash_form = CashForm(request.POST)
    page_errors: list[str] = []
    if formset.is_valid():
        kept = [f for f in formset.forms if not f.cleaned_data.get("DELETE") and not f.is_blank()]
        rows = [{k: f.cleaned_data[k] for k in ("symbol", "quantity", "cost_basis_usd")} for f in kept]
        try:
            if cash_form.is_valid():
                holdings_replace(portfolio=portfolio, rows=rows, cash_usd=cash_form.cleaned_data["cash_usd"])
            else:
                holdings_rows_check(rows)  # so the rows' errors show beside the cash error
        except ValidationError as error:
            page_errors = _place_errors(error, kept, formset, cash_form)
        except PortfolioBusy:
            return _holdings_page(request, portfolio, formset, cash_form, page_errors=[BUSY_MESSAGE], status=409)
        else:
            if cash_form.is_valid():
                messages.success(request, f"Holdings saved: {len(rows)} holding(s), cash ${portfolio.cash_usd:,.2f}.")
                return redirect("portfolio_detail", pk=portfolio.pk)
    return _holdings_page(request, portfolio, formset, cash_form, page_errors=page_errors, status=400)


def _holdings_page(request, portfolio, formset, cash_form, *, page_errors=(), status=200) -> HttpResponse:
    return render(
        request,
        "portfolios/holdings_form.html",
        {
            "portfolio": portfolio,
            "formset": formset,
            "cash_form": cash_form,
            "page_errors": page_errors,
            "upload_form": HoldingsUploadForm(),
            "max_kb": MAX_BYTES // 1000,
        },
        status=status,
    )


def _place_errors(error: ValidationError, kept, formset, cash_form) -> list[str]:
    """Put each `holdings_replace` message next to its row's field, numbered as the page shows the rows.

    Returns the messages that belong to no row.
    """
    if not hasattr(error, "error_dict"):
        return list(error.messages)
    position = {id(form): index for index, form in enumerate(formset.forms, start=1)}
    leftover: list[str] = []
    for name, errors in error.error_dict.items():
        for message in (m for e in errors for m in e.messages):
            if name == "cash_usd":
                cash_form.add_error("cash_usd", message)
                continue
            match = _ROW_ERROR.match(message)
            if match:
                form = kept[int(match.group(1)) - 1]
                problem = match.group(3)
                field = next((f for f in ("quantity", "cost_basis_usd") if problem.startswith(f)), "symbol")
                form.add_error(field, f"row {position[id(form)]} ({match.group(2)}): {problem}")
                continue
            unknown = _UNKNOWN.match(message)
            if unknown:
                symbols = {s.strip() for s in unknown.group(1).split(",")}
                for form in kept:
                    symbol = form.cleaned_data["symbol"].strip().upper()
                    if symbol in symbols:
                        form.add_error(
                            "symbol",
                            f"row {position[id(form)]} ({symbol}): unknown symbol: add the instrument "
                            "(fetch its prices) first",
                        )
                continue
            leftover.append(message)
    return leftover


@require_http_methods(["GET", "POST"])
def holdings_upload(request: HttpRequest, pk: int) -> HttpResponse:
    portfolio = portfolio_get_for_user(user=request.user, portfolio_id=pk)
    form = HoldingsUploadForm(request.POST, request.FILES) if request.method == "POST" else HoldingsUploadForm()
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            form.add_error("file", f"the file is larger than {MAX_BYTES // 1000} kB")
        else:
            try:
                holdings = holdings_replace_from_csv(
                    portfolio=portfolio, data=upload.read(), cash_usd=form.cleaned_data["cash_usd"]
                )
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    for message in errors:
                        form.add_error(field if field in form.fields else None, message)
            except PortfolioBusy:
                form.add_error(None, BUSY_MESSAGE)
                return _upload_page(request, portfolio, form, status=409)
            else:
                messages.success(request, f"Holdings replaced from {upload.name}: {len(holdings)} holding(s).")
                return redirect("portfolio_detail", pk=portfolio.pk)
    return _upload_page(request, portfolio, form, status=400 if form.is_bound and form.errors else 200)


def _upload_page(request, portfolio, form, *, status: int) -> HttpResponse:
    return render(
        request,
        "portfolios/holdings_upload.html",
        {"portfolio": portfolio, "form": form, "max_kb": MAX_BYTES // 1000},
        status=status,
    )


@require_POST
def portfolio_sync(request: HttpRequest, pk: int) -> HttpResponse:
    portfolio = portfolio_get_for_user(user=request.user, portfolio_id=pk)
    try:
        sync = sync_from_broker(portfolio=portfolio)
    except (SyncError, ValidationError) as error:
        text = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        messages.error(request, f"Sync failed, nothing changed: {text}")
        return redirect("portfolio_detail", pk=portfolio.pk)
    changes = [f"{c['symbol']} {_plain(c['before'])} → {_plain(c['after'])}" for c in sync.changes]
    if sync.cash_before_usd != sync.cash_after_usd:
        changes.append(f"cash ${sync.cash_before_usd:,.2f} → ${sync.cash_after_usd:,.2f}")
    label = sync.broker_account.label
    messages.success(
        request,
        f"Synced from {label}: " + ("; ".join(changes) if changes else "no change, the portfolio already matched"),
    )
    return redirect("portfolio_detail", pk=portfolio.pk)


def _plain(value) -> str:
    """A decimal (or its text) without trailing zeros or exponent: 40.000000000 -> 40."""
    if value is None or value == "":
        return ""
    number = Decimal(str(value)).normalize()
    return f"{number:f}"
