"""PostgreSQL: parameters bound by the server, repeated statements prepared, and bulk writes kept
under the 65,535 parameters a server-bound statement may carry."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from portfolios.models import AuditEntry
from rebalancer_site.tests.test_settings import run_manage


def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): server-side binding is PostgreSQL's")


def database_settings(**env: str) -> dict:
    shown = run_manage(
        "shell",
        "-c",
        "import json; from django.conf import settings; print(json.dumps(settings.DATABASES['default'], default=str))",
        env={"DATABASE_URL": "postgres://app@db.internal:5432/rebalancer", **env},
    )
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout.strip().splitlines()[-1])


def test_postgresql_binds_on_the_server_and_prepares_repeated_statements():
    config = database_settings()
    assert config["ENGINE"] == "rebalancer_site.postgresql"
    assert config["OPTIONS"]["server_side_binding"] is True
    assert config["OPTIONS"]["prepare_threshold"] == 5


def test_prepared_statements_can_be_turned_off_for_a_transaction_pooler():
    config = database_settings(DB_PREPARED_STATEMENTS="false")
    assert config["OPTIONS"]["server_side_binding"] is True
    assert "prepare_threshold" not in config["OPTIONS"]


def test_sqlite_is_left_as_it_is():
    config = database_settings(DATABASE_URL="sqlite:///x.sqlite3")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert "server_side_binding" not in config["OPTIONS"]


@pytest.mark.django_db
def test_a_statement_run_five_times_is_prepared_once():
    postgres_only()
    for _ in range(6):
        list(AuditEntry.objects.filter(event="prepared-test").values_list("pk", flat=True))
    table = '"portfolios_auditentry"'
    query = f'SELECT {table}."id" AS "pk" FROM {table} WHERE {table}."event" = $1'
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert sum(statement.startswith(query) for statement in prepared) == 1, prepared


@pytest.mark.django_db
def test_bulk_writes_beyond_one_statements_parameters_are_split():
    postgres_only()
    assert connection.features.max_query_params == 65_535
    rows = 25_000  # an UPDATE of one field: three parameters a row, 75,000 in all
    AuditEntry.objects.bulk_create(AuditEntry(event="bulk", message=f"row {n}") for n in range(rows))
    entries = list(AuditEntry.objects.filter(event="bulk"))
    for entry in entries:
        entry.message = entry.message.replace("row", "updated")
    assert AuditEntry.objects.bulk_update(entries, ["message"]) == rows
    assert AuditEntry.objects.filter(event="bulk", message__startswith="updated ").count() == rows
    assert set(AuditEntry.objects.filter(event="bulk").values_list("message", flat=True)) == {
        f"updated {n}" for n in range(rows)
    }
