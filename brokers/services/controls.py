"""The kill switch: halt order sending for everyone or for one user, and cancel what is open."""

from __future__ import annotations

import functools
import logging

from django.db import connection, transaction

from brokers.base import BrokerError
from brokers.models import BrokerAccount, KillSwitch, Order
from brokers.states import IN_FLIGHT

logger = logging.getLogger(__name__)


def trading_halt_reason(*, user_id: int | None) -> str | None:
    """Why orders may not be sent for ``user_id`` now (the global switch first), or None.

    Read from the database on every call: execution reads it right before each order batch
    (four times per execution), so the statement is written out once rather than built by the
    ORM on every call (which cost more than running it).
    """
    scopes = [KillSwitch.scope_for(None)] + ([KillSwitch.scope_for(user_id)] if user_id is not None else [])
    with connection.cursor() as cursor:
        cursor.execute(_halt_sql(len(scopes)), [*scopes, True])
        switch = cursor.fetchone()
    if switch is None:
        return None
    switch_user_id, reason = switch
    who = "for everyone" if switch_user_id is None else "for this user"
    return f"kill switch on {who}" + (f": {reason}" if reason else "")


@functools.cache
def _halt_sql(scopes: int) -> str:
    """The first switch on among ``scopes`` scopes (the global scope sorts first): its user and reason."""
    meta, quote = KillSwitch._meta, connection.ops.quote_name
    column = {name: quote(meta.get_field(name).column) for name in ("user", "reason", "scope", "active")}
    # Only names from the model and placeholders are put in the text; the values are parameters.
    return (
        f"SELECT {column['user']}, {column['reason']} FROM {quote(meta.db_table)}"  # noqa: S608
        f" WHERE {column['scope']} IN ({', '.join(['%s'] * scopes)}) AND {column['active']} = %s"
        f" ORDER BY {column['scope']} LIMIT 1"
    )


def kill_switch_set(*, user=None, active: bool, reason: str = "", changed_by=None) -> tuple[KillSwitch, list[str]]:
    """Turn the global switch (``user`` None) or a user's switch on or off.

    Turning it on also cancels the affected open orders: those never sent locally, those at a
    broker through it. Returns the switch and one line per order whose cancel failed (the switch
    is on regardless; such orders need a look at the broker).
    """
    scope = KillSwitch.scope_for(None if user is None else user.pk)
    with transaction.atomic():
        switch, _ = KillSwitch.objects.select_for_update().get_or_create(scope=scope, defaults={"user": user})
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
                    order_cancel(broker, order, reason=reason)
                    if not order.terminal:
                        problems.append(f"{order.client_order_id} at {account.label}: still {order.state}")
        except BrokerError as error:
            problems.extend(f"{o.client_order_id} at {account.label}: {error}" for o in account_orders)
    return problems
