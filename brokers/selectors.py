"""Reads of broker accounts and orders, scoped to the requesting user."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from brokers.models import BrokerAccount, Order


def broker_accounts_for_user(*, user) -> QuerySet[BrokerAccount]:
    """The user's broker accounts (also the choices of a portfolio's broker account field)."""
    return BrokerAccount.objects.filter(owner=user)


def broker_account_get_for_user(*, user, account_id: int) -> BrokerAccount:
    """The user's broker account with that id, or `Http404` (also for another user's account)."""
    return get_object_or_404(broker_accounts_for_user(user=user), pk=account_id)


def orders_for_user(*, user) -> QuerySet[Order]:
    return Order.objects.filter(account__owner=user)
