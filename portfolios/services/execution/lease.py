"""One executor per run: a lease on the run row, claimed by an atomic conditional UPDATE.

Two processes (two clusters, a schedule and a manual request) may try to execute the same run;
the database lets exactly one UPDATE match, on SQLite and PostgreSQL alike. The lease is renewed
with every step stored (`lease_store`: only the lease's holder stores a step); when an executor
dies its lease runs out and another may resume the run. The owner names its host and process,
so an executor on the same host takes over at once from a process that no longer exists (a
worker killed and restarted) instead of waiting for the lease.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from portfolios.models import FrozenError, RebalanceRun


class ExecutionBusy(Exception):
    """Another process holds the run's lease."""


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
    claimed = (
        RebalanceRun.objects.filter(pk=run.pk)
        .filter(Q(lease_owner="") | Q(lease_owner=owner) | Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_owner=owner, lease_until=until)
    )
    if not claimed:
        holder, held_until = RebalanceRun.objects.filter(pk=run.pk).values_list("lease_owner", "lease_until").first()
        if _dead_on_this_host(holder):
            # Compare-and-set on the dead owner: of two claimants, one wins.
            claimed = RebalanceRun.objects.filter(pk=run.pk, lease_owner=holder).update(
                lease_owner=owner, lease_until=until
            )
    if not claimed:
        raise ExecutionBusy(
            f"run {run.pk} is being executed by another process (lease until {held_until:%Y-%m-%d %H:%M:%S %Z})"
        )
    run.lease_owner, run.lease_until = owner, until


def lease_store(run: RebalanceRun, *, release: bool = False, **fields: object) -> None:
    """Write ``fields`` on ``run`` and renew its lease in one UPDATE, only while the lease is still
    ``run``'s (claimed by `lease_claim`); `ExecutionBusy` when it has been lost meanwhile.
    ``release``: the last step: the same UPDATE releases the lease instead."""
    if not fields.keys() <= RebalanceRun.MUTABLE_FIELDS:  # an UPDATE skips the model's own check
        raise FrozenError(f"run {run.pk} is frozen: only {sorted(RebalanceRun.MUTABLE_FIELDS)} may change")
    now = timezone.now()
    renewed = now + timedelta(seconds=settings.EXECUTION_LEASE_SECONDS)
    owner, until = ("", None) if release else (run.lease_owner, renewed)
    stored = (
        RebalanceRun.objects.filter(pk=run.pk, lease_owner=run.lease_owner)
        .exclude(lease_owner="")
        .update(lease_owner=owner, lease_until=until, updated_at=now, **fields)
    )
    if not stored:
        raise ExecutionBusy(f"run {run.pk}: the execution lease was lost to another process; nothing stored")
    run.lease_owner, run.lease_until, run.updated_at = owner, until, now
    for name, value in fields.items():
        setattr(run, name, value)


def lease_release(run: RebalanceRun, owner: str) -> None:
    """Release the lease if ``owner`` still holds it (nothing to do when a last step released it)."""
    if run.lease_owner == "":
        return
    RebalanceRun.objects.filter(pk=run.pk, lease_owner=owner).update(lease_owner="", lease_until=None)
    run.lease_owner, run.lease_until = "", None
