"""One executor per run: a lease on the run row, claimed by an atomic conditional UPDATE, and a
fence: what an executor stores and sends, it stores and sends only while it holds the lease.

Two processes (two clusters, a schedule and a manual request) may try to execute the same run;
the database lets exactly one UPDATE match, on SQLite and PostgreSQL alike. When an executor
dies or stalls, its lease runs out and another may take the run over. The owner names its host
and process, so an executor on the same host takes over at once from a process that no longer
exists (a worker killed and restarted) instead of waiting for the lease.

`RunLease` is the run's `brokers.fencing.Fence`. Each step (`lease_store`) and each order write
(`RunLease.atomic`) is conditional on ``lease_owner = me AND lease_until > now`` and renews the
lease; each broker call renews it first (`brokers.fencing.FencedBroker`). An executor paused
past its lease finds the fence gone at its next write or call and stops with nothing stored. The
lease outlasts the longest broker call (`lease_check`), so no call of a previous holder is still
under way when a new one takes over.
"""

from __future__ import annotations

import math
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from brokers.fencing import LeaseLost
from portfolios.models import FrozenError, RebalanceRun


class ExecutionBusy(Exception):
    """Another process holds the run's lease."""


class LeaseTooShort(Exception):
    """EXECUTION_LEASE_SECONDS does not outlast the broker's longest call."""


def lease_check(*, max_call_s: float, settlement_delay_s: float) -> None:
    """Refuse to execute when the lease could run out between two of its renewals: during a broker
    call, or a wait (a poll, a settlement delay) and the call after it. Another executor could then
    take the run over while this one's call is still on its way. Twice that span, for margin."""
    lease_s = settings.EXECUTION_LEASE_SECONDS
    wait_s = max(settlement_delay_s, settings.EXECUTION_POLL_SECONDS)
    needed = 2 * (max_call_s + wait_s)
    if lease_s < needed:
        raise LeaseTooShort(
            f"EXECUTION_LEASE_SECONDS={lease_s} is too short: a broker call may take {max_call_s:g} s (its "
            f"timeout and retries) after a wait of up to {wait_s:g} s; set it to at least {math.ceil(needed)}"
        )


def new_owner() -> str:
    """``host:pid:random``: unique, and says which process holds the lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _dead_on_this_host(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but not been reaped yet (Linux): a worker killed with its
    cluster is adopted by the system's first process, which may take its time to reap it, and
    until then the process id still answers."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def lease_claim(run: RebalanceRun, owner: str) -> None:
    """Claim (or renew) the lease of ``run`` for ``owner``; `ExecutionBusy` when someone else holds it."""
    now = timezone.now()
    until = now + timedelta(seconds=settings.EXECUTION_LEASE_SECONDS)
    # Never a superseded run: a planning with changed inputs and this claim race on the row.
    claimed = (
        RebalanceRun.objects.active()
        .filter(pk=run.pk)
        .filter(Q(lease_owner="") | Q(lease_owner=owner) | Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_owner=owner, lease_until=until)
    )
    if not claimed:
        holder, held_until, superseded_at, successor = (
            RebalanceRun.objects.filter(pk=run.pk)
            .values_list("lease_owner", "lease_until", "superseded_at", "superseded_by")
            .first()
        )
        if superseded_at is not None:
            raise ExecutionBusy(f"run {run.pk} was superseded by run {successor}; it is never executed")
        if _dead_on_this_host(holder):
            # Compare-and-set on the dead owner: of two claimants, one wins.
            claimed = (
                RebalanceRun.objects.active()
                .filter(pk=run.pk, lease_owner=holder)
                .update(lease_owner=owner, lease_until=until)
            )
    if not claimed:
        raise ExecutionBusy(
            f"run {run.pk} is being executed by another process (lease until {held_until:%Y-%m-%d %H:%M:%S %Z})"
        )
    run.lease_owner, run.lease_until = owner, until


def lease_store(run: RebalanceRun, *, release: bool = False, **fields: object) -> None:
    """Write ``fields`` on ``run`` and renew its lease in one UPDATE, only while ``run``'s lease
    (claimed by `lease_claim`) is still held and unexpired; `LeaseLost` otherwise, nothing stored.
    ``release``: the last step: the same UPDATE releases the lease instead."""
    if not fields.keys() <= RebalanceRun.MUTABLE_FIELDS:  # an UPDATE skips the model's own check
        raise FrozenError(f"run {run.pk} is frozen: only {sorted(RebalanceRun.MUTABLE_FIELDS)} may change")
    now = timezone.now()
    renewed = now + timedelta(seconds=settings.EXECUTION_LEASE_SECONDS)
    owner, until = ("", None) if release else (run.lease_owner, renewed)
    stored = (
        _held(run, now).exclude(lease_owner="").update(lease_owner=owner, lease_until=until, updated_at=now, **fields)
    )
    if not stored:
        raise LeaseLost(f"run {run.pk}: the execution lease was lost; nothing stored")
    run.lease_owner, run.lease_until, run.updated_at = owner, until, now
    for name, value in fields.items():
        setattr(run, name, value)


def _held(run: RebalanceRun, now) -> QuerySet[RebalanceRun]:
    return RebalanceRun.objects.filter(pk=run.pk, lease_owner=run.lease_owner, lease_until__gt=now)


class RunLease:
    """The fence of ``run``'s execution, for the holder of its lease (see the module docstring)."""

    def __init__(self, run: RebalanceRun):
        self.run = run

    def renew(self) -> None:
        now = timezone.now()
        until = now + timedelta(seconds=settings.EXECUTION_LEASE_SECONDS)
        if not self.run.lease_owner or not _held(self.run, now).update(lease_until=until):
            raise LeaseLost(f"run {self.run.pk}: the execution lease was lost; nothing stored or sent")
        self.run.lease_until = until

    @contextmanager
    def atomic(self) -> Iterator[None]:
        # The renewal is the transaction's first statement: it locks the run row, so a takeover
        # (an UPDATE of the same row) waits for this transaction and then finds a fresh lease.
        with transaction.atomic():
            self.renew()
            yield


def lease_release(run: RebalanceRun, owner: str) -> None:
    """Release the lease if ``owner`` still holds it (nothing to do when a last step released it)."""
    if run.lease_owner == "":
        return
    RebalanceRun.objects.filter(pk=run.pk, lease_owner=owner).update(lease_owner="", lease_until=None)
    run.lease_owner, run.lease_until = "", None
