"""Holdings and cash: the editor, the CSV upload and the sync from the broker."""

from __future__ import annotations

import re
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from portfolios.forms import CashForm, HoldingFormSet, HoldingsUploadForm, SyncConfirmForm
from portfolios.selectors import portfolio_get_for_user
from portfolios.services.holdings import holdings_replace, holdings_rows_check
from portfolios.services.holdings_csv import MAX_BYTES, holdings_replace_from_csv
from portfolios.services.paper_seed import paper_seed_refusal
from portfolios.services.portfolio_lock import BUSY_MESSAGE, PortfolioBusy
from portfolios.services.sync import SyncChanged, SyncError, SyncReview, sync_confirm, sync_review

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
    if "add_rows" in request.POST:
        return _with_more_rows(request, portfolio, formset)
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
                account = portfolio.broker_account
                if account is not None and not paper_seed_refusal(account=account, portfolio=portfolio):
                    messages.info(
                        request,
                        f"{account.label} is a paper account nothing has used yet: to start it with these holdings "
                        'and cash, tick "Seed this paper account" in the portfolio\'s settings.',
                    )
                return redirect("portfolio_detail", pk=portfolio.pk)
    return _holdings_page(request, portfolio, formset, cash_form, page_errors=page_errors, status=400)


def _with_more_rows(request, portfolio, formset) -> HttpResponse:
    """The editor again with every row as typed (nothing saved) and three more empty rows: "Add rows"
    for a browser without JavaScript. A row count the page could not have sent is refused."""
    cash_form = CashForm(initial={"cash_usd": request.POST.get("cash_usd", "")})
    if formset.non_form_errors():
        return _holdings_page(request, portfolio, formset, cash_form, status=400)
    typed = [
        {name: form[name].value() or "" for name in ("symbol", "quantity", "cost_basis_usd")}
        | {"DELETE": bool(form["DELETE"].value())}
        for form in formset.forms
    ]
    # The typed rows become the new page's rows; the formset adds its empty ones after them.
    return _holdings_page(request, portfolio, HoldingFormSet(initial=typed, prefix="holdings"), cash_form)


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


@require_http_methods(["GET", "POST"])
def portfolio_sync(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: what a sync from the broker would change. POST: apply the sync reviewed, only if
    neither the broker's answer nor the holdings changed since (else the new differences)."""
    portfolio = portfolio_get_for_user(user=request.user, portfolio_id=pk)
    form = SyncConfirmForm(request.POST if request.method == "POST" else None)
    try:
        if not form.is_valid():
            # A confirmation must name what was reviewed: anything else is shown the review first.
            review = sync_review(portfolio=portfolio)
            if form.is_bound:
                notice = "Nothing was changed: review the differences below, then confirm."
                return _sync_page(request, portfolio, review, notice=notice, status=400)
            return _sync_page(request, portfolio, review)
        sync = sync_confirm(
            portfolio=portfolio,
            broker_fingerprint=form.cleaned_data["broker_fingerprint"],
            holdings_fingerprint=form.cleaned_data["holdings_fingerprint"],
        )
    except SyncChanged as changed:
        notice = f"Nothing was changed: {changed}. Here are the differences now."
        return _sync_page(request, portfolio, changed.review, notice=notice, status=409)
    except (SyncError, ValidationError) as error:
        text = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        messages.error(request, f"Sync failed, nothing changed: {text}")
        return redirect("portfolio_detail", pk=portfolio.pk)
    label = portfolio.broker_account.label
    if sync is None:
        messages.info(request, f"Nothing to sync: the portfolio already matches {label}; nothing was changed.")
        return redirect("portfolio_detail", pk=portfolio.pk)
    changes = [f"{c['symbol']} {_plain(c['before'])} → {_plain(c['after'])}" for c in sync.changes]
    if sync.cash_before_usd != sync.cash_after_usd:
        changes.append(f"cash ${sync.cash_before_usd:,.2f} → ${sync.cash_after_usd:,.2f}")
    messages.success(request, f"Synced from {label}: " + "; ".join(changes))
    return redirect("portfolio_detail", pk=portfolio.pk)


def _sync_page(request, portfolio, review: SyncReview, *, notice: str = "", status: int = 200) -> HttpResponse:
    rows = [
        {"symbol": d.symbol, "held": _plain(d.held_qty), "broker": _plain(d.broker_qty), "change": d.change}
        for d in review.differences
    ]
    confirm = SyncConfirmForm(
        initial={"broker_fingerprint": review.broker_fingerprint, "holdings_fingerprint": review.holdings_fingerprint}
    )
    return render(
        request,
        "portfolios/sync_review.html",
        {"portfolio": portfolio, "review": review, "rows": rows, "confirm": confirm, "notice": notice},
        status=status,
    )


def _plain(value) -> str:
    """A decimal (or its text) without trailing zeros or exponent: 40.000000000 -> 40."""
    if value is None or value == "":
        return ""
    number = Decimal(str(value)).normalize()
    return f"{number:f}"
