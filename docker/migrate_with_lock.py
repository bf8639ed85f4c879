"""Apply migrations and declare the django-q2 schedules, one process at a time per database.

    python docker/migrate_with_lock.py        (the entrypoint's `web` and `migrate` roles)

Django's `migrate` takes no lock of its own: two web replicas starting together both see a
migration as unapplied, both run it, and the second fails half-way ("relation already exists")
or, for a data migration, repeats it. On PostgreSQL this holds a session-level advisory lock
around `migrate` and `setup_schedules`, so the others wait and then find nothing left to do; the
lock is released when the process ends, however it ends. SQLite needs none: it is one machine's
file, and its writers already queue behind one another.

Exit status: 0 done, 1 a migration or the schedules failed, 2 a configuration error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Run as a script from docker/: the project root must be importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Any fixed 64-bit number, distinct from the other advisory locks the project takes
# (portfolios.services.locks keys on portfolio ids in the high 32 bits).
MIGRATION_LOCK_KEY = 0x7EBA_0000_0000_0001


def main() -> None:
    import django
    from django.core.management import call_command
    from django.db import connection

    from rebalancer_site.startup import run_or_exit_on_config_error

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebalancer_site.settings")
    run_or_exit_on_config_error(django.setup)

    locked = connection.vendor == "postgresql"
    if locked:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
            if not cursor.fetchone()[0]:
                print("Another process is applying migrations: waiting for it.", flush=True)
                cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
    try:
        call_command("migrate", interactive=False)
        call_command("setup_schedules")
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_KEY])


if __name__ == "__main__":
    main()
