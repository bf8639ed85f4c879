"""Broker account pages: list, detail (with the paper account's cash and positions), create, edit,
the connection test, and the live-trading opt-in and opt-out. Every account is fetched for its owner
(404 otherwise)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_otp import login as otp_login

from brokers.forms import BrokerAccountCreateForm, BrokerAccountEditForm, LiveOptInForm
from brokers.models import BrokerAccount, PaperAccount
from brokers.selectors import broker_account_get_for_user, broker_accounts_for_user, orders_for_user
from brokers.services.accounts import (
    broker_account_disable_live,
    broker_account_enable_live,
    live_trading_blockers,
    missing_credentials,
)
from two_factor.services import session_is_verified

RECENT_ORDERS = 20


@require_safe
def broker_account_list(request: HttpRequest) -> HttpResponse:
    accounts = broker_accounts_for_user(user=request.user).prefetch_related("portfolios").order_by("label")
    return render(request, "brokers/account_list.html", {"accounts": accounts})


@require_safe
def broker_account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    account = broker_account_get_for_user(user=request.user, account_id=pk)
    return _detail_page(request, account, _live_opt_in_form(request, account))


def _live_opt_in_form(request: HttpRequest, account: BrokerAccount, data=None) -> LiveOptInForm:
    return LiveOptInForm(data, user=request.user, verified=session_is_verified(request.user), required=account.is_live)


def _detail_page(request: HttpRequest, account: BrokerAccount, live_form: LiveOptInForm, status: int = 200):
    paper = None
    if account.kind == BrokerAccount.Kind.PAPER:
        paper = PaperAccount.objects.filter(account=account).prefetch_related("positions").first()
    return render(
        request,
        "brokers/account_detail.html",
        {
            "account": account,
            "credentials": account.credential_status(),
            "missing": missing_credentials(account),
            "blockers": live_trading_blockers(account),
            "allow_live_trading": settings.ALLOW_LIVE_TRADING,
            "server_max_order_usd": settings.MAX_ORDER_NOTIONAL_USD,
            "paper": paper,
            "portfolios": list(account.portfolios.order_by("name")),
            "orders": list(orders_for_user(user=request.user).filter(account=account).order_by("-id")[:RECENT_ORDERS]),
            "live_form": live_form,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def broker_account_create_view(request: HttpRequest) -> HttpResponse:
    form = BrokerAccountCreateForm(request.POST if request.method == "POST" else None, user=request.user)
    if request.method == "POST" and form.is_valid():
        account = form.save()
        if account is not None:
            messages.success(request, f"Broker account {account.label!r} created.")
            return redirect("broker_account_detail", pk=account.pk)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "brokers/account_form.html", {"form": form, "account": None}, status=status)


@require_http_methods(["GET", "POST"])
def broker_account_edit(request: HttpRequest, pk: int) -> HttpResponse:
    account = broker_account_get_for_user(user=request.user, account_id=pk)
    form = BrokerAccountEditForm(request.POST if request.method == "POST" else None, user=request.user, account=account)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        if saved is not None:
            messages.success(request, f"Broker account {saved.label!r} saved.")
            if account.live_opt_in_at and saved.live_opt_in_at is None:
                messages.warning(request, "The live opt-in was withdrawn: opt in again with your password.")
            return redirect("broker_account_detail", pk=account.pk)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "brokers/account_form.html", {"form": form, "account": account}, status=status)


@require_POST
def broker_account_connection_test(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Read the broker's account with the credentials typed in the account form (over the stored
    ones; ``pk`` None: a new account), saving nothing, and show the form again with the outcome.
    From the detail page (``from=detail``, no fields: the stored credentials) the outcome is a
    message on that page."""
    account = broker_account_get_for_user(user=request.user, account_id=pk) if pk is not None else None
    if account is None:
        form = BrokerAccountCreateForm(request.POST, user=request.user)
    else:
        form = BrokerAccountEditForm(request.POST, user=request.user, account=account)
    result = form.connection_test()
    if account is not None and request.POST.get("from") == "detail":
        if result is None:
            refused = "; ".join(
                f"{form.fields[name].label}: {' '.join(errors)}" if name in form.fields else " ".join(errors)
                for name, errors in form.errors.items()
            )
            messages.error(request, f"Connection not tested: {refused}")
        elif result.connected:
            messages.success(request, result.message)
        else:
            messages.error(request, result.message)
        return redirect("broker_account_detail", pk=account.pk)
    context = {"form": form, "account": account, "connection_test": result, "testing": True}
    return render(request, "brokers/account_form.html", context, status=400 if form.errors else 200)


@require_POST
def broker_account_live(request: HttpRequest, pk: int) -> HttpResponse:
    """Opt in to live trading (``action=enable``, with the password and two-factor authentication) or
    out (``action=disable``)."""
    account = broker_account_get_for_user(user=request.user, account_id=pk)
    if request.POST.get("action") == "disable":
        broker_account_disable_live(account=account)
        messages.success(request, f"Live trading switched off for {account.label!r}.")
        return redirect("broker_account_detail", pk=account.pk)
    form = _live_opt_in_form(request, account, request.POST)
    if form.is_valid():
        if form.check.device is not None:
            otp_login(request, form.check.device)
        try:
            broker_account_enable_live(account=account, user=request.user, password=form.cleaned_data["password"])
        except ValidationError as error:
            for name, errors in error.message_dict.items():
                for message in errors:
                    if name in form.fields:
                        form.add_error(name, message)
                    else:
                        messages.error(request, f"Not opted in: {message}")
        else:
            blockers = live_trading_blockers(account)
            note = f" Still blocked: {'; '.join(blockers)}." if blockers else ""
            messages.success(request, f"You opted in to live trading for {account.label!r}.{note}")
            return redirect("broker_account_detail", pk=account.pk)
    return _detail_page(request, account, form, status=400)
