"""The kill switch: halt order sending for everyone or for one user, and cancel what is open."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from brokers.base import BrokerError
from brokers.models import BrokerAccount, KillSwitch, Order
from brokers.states import IN_FLIGHT

logger = logging.getLogger(__name__)


def trading_halt_reason(*, user_id: int | None, since: datetime | None = None) -> str | None:
    """Why orders may not be sent for ``user_id`` now (the global switch first), or None.

    ``since``: an execution's start; a switch turned on after it halts that execution even when
    it is off again (the execution's open orders were canceled meanwhile).
    """
    scopes = [KillSwitch.scope_for(None)] + ([KillSwitch.scope_for(user_id)] if user_id is not None else [])
    halting = Q(active=True) | Q(activated_at__gt=since) if since is not None else Q(active=True)
    switch = KillSwitch.objects.filter(halting, scope__in=scopes).order_by("scope").first()  # "global" first
    if switch is None:
        return None
    who = "for everyone" if switch.user_id is None else "for this user"
    if not switch.active:
        return f"kill switch turned on {who} at {switch.activated_at.isoformat()} while this run was executing"
    return f"kill switch on {who}" + (f": {switch.reason}" if switch.reason else "")


def kill_switch_set(*, user=None, active: bool, reason: str = "", changed_by=None) -> tuple[KillSwitch, list[str]]:
    """Turn the global switch (``user`` None) or a user's switch on or off.

    Turning it on also cancels the affected open orders: those never sent locally, those at a
    broker through it. Returns the switch and one line per order whose cancel failed (the switch
    is on regardless; such orders need a look at the broker).
    """
    scope = KillSwitch.scope_for(None if user is None else user.pk)
    with transaction.atomic():
        switch, _ = KillSwitch.objects.select_for_update().get_or_create(scope=scope, defaults={"user": user})
        if active and not switch.active:
            switch.activated_at = timezone.now()
        switch.active = active
        switch.reason = reason[:300]
        switch.changed_by = changed_by
        switch.save()
    logger.warning(
        "kill switch changed",
        extra={"scope": scope, "active": active, "reason": reason, "by": getattr(changed_by, "pk", None)},
    )
    problems = open_orders_cancel(user=user, reason=f"kill switch: {reason or 'on'}") if active else []
    return switch, problems


def open_orders_cancel(*, user=None, reason: str) -> list[str]:
    """Cancel every open order (of ``user``, or of everyone); lines for the cancels that failed."""
    from brokers.services.accounts import broker_for
    from brokers.services.orders import order_cancel

    orders = Order.objects.filter(state__in=[s.value for s in IN_FLIGHT] + ["planned"]).select_related("account")
    if user is not None:
        orders = orders.filter(account__owner=user)
    problems: list[str] = []
    by_account: dict[int, list[Order]] = {}
    for order in orders:
        by_account.setdefault(order.account_id, []).append(order)
    for account_id, account_orders in by_account.items():
        account = BrokerAccount.objects.get(pk=account_id)
        try:
            with broker_for(account) as broker:
                for order in account_orders:
                    order_cancel(broker, order, reason=reason, leased=False)
                    if not order.terminal:
                        problems.append(f"{order.client_order_id} at {account.label}: still {order.state}")
        except BrokerError as error:
            problems.extend(f"{o.client_order_id} at {account.label}: {error}" for o in account_orders)
    return problems
