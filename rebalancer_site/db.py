"""Database work the ORM does in more statements than it needs."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper


def rows_update(objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Store ``fields`` of every one of ``objs`` (rows of one model, each with its own values) in
    one UPDATE; the number of rows it matched.

    `Model.save` takes a statement per row and `QuerySet.bulk_update` a CASE per field and row,
    both far costlier per row than this join of the table with the new values (a ``VALUES``
    list, typed with the fields' own column types on PostgreSQL). An ``auto_now`` field among
    ``fields`` is set to now, as `save` sets it. Like `bulk_update` it sends no signals and
    skips model ``save`` overrides: use it for rows whose model's checks the caller made.
    """
    if not objs:
        return 0
    model = type(objs[0])
    if any(type(obj) is not model for obj in objs):
        raise ValueError("rows_update: every row must be of one model")
    meta = model._meta
    pk = meta.pk
    columns = [meta.get_field(name) for name in fields]
    if not columns or any(f.primary_key or not f.concrete or f.many_to_many for f in columns):
        raise ValueError(f"rows_update: {list(fields)} must be concrete non-key fields of {meta.label}")
    if any(obj.pk is None for obj in objs):
        raise ValueError("rows_update: every row must be saved already (have a primary key)")
    if len({obj.pk for obj in objs}) != len(objs):
        raise ValueError("rows_update: a row is given twice (which values would win is undefined)")
    connection = connections[router.db_for_write(model)]
    typed = connection.vendor == "postgresql"  # a VALUES column's type is its first row's: say it
    row = "(" + ", ".join(f"CAST(%s AS {f.cast_db_type(connection)})" if typed else "%s" for f in [pk, *columns]) + ")"
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    # Both databases name a VALUES list's columns column1, column2, ...: the key is column1.
    assignments = ", ".join(f"{quote(f.column)} = v.column{n}" for n, f in enumerate(columns, start=2))
    per_statement = (connection.features.max_query_params or 65_535) // (len(columns) + 1)
    matched = 0
    with connection.cursor() as cursor:
        for start in range(0, len(objs), per_statement):
            chunk = objs[start : start + per_statement]
            params: list[object] = []
            for obj in chunk:
                params.append(pk.get_db_prep_save(obj.pk, connection))
                params.extend(f.get_db_prep_save(f.pre_save(obj, False), connection) for f in columns)
            # Names come from the model (quoted), every value is a parameter.
            sql = (
                f"UPDATE {table} SET {assignments} FROM (VALUES {', '.join([row] * len(chunk))}) AS v "  # noqa: S608
                f"WHERE {table}.{quote(pk.column)} = v.column1"
            )
            cursor.execute(sql, params)
            matched += cursor.rowcount
    return matched


def rows_as(model: type[models.Model], rows: Sequence[Sequence], connection: BaseDatabaseWrapper) -> list:
    """Instances of ``model`` from rows of a hand-written statement that hold its concrete fields
    in their declared order, each value converted as the ORM converts it (SQLite returns decimals
    and dates as numbers and texts)."""
    fields = model._meta.concrete_fields
    converters = []
    for field in fields:
        column = field.get_col(model._meta.db_table)
        converters.append((column, connection.ops.get_db_converters(column) + column.get_db_converters(connection)))
    names = [f.attname for f in fields]
    instances = []
    for row in rows:
        if len(row) != len(fields):
            raise ValueError(f"rows_as: {model._meta.label} has {len(fields)} fields, the row {len(row)} values")
        values = []
        for value, (column, functions) in zip(row, converters, strict=True):
            for convert in functions:
                value = convert(value, column, connection)
            values.append(value)
        instances.append(model.from_db(connection.alias, names, values))
    return instances


class ValuesJSONField(models.JSONField):
    """Django's JSONField, except that rows holding it are bulk-inserted as a ``VALUES`` list.

    On PostgreSQL Django inserts a batch as one array per column (``UNNEST``) when every field
    allows it; a JSON value then goes through psycopg's text-array escaping, which costs more
    than it saves on small batches: 25 order events (an execution's side) took 4.7 ms of Python
    that way against 2.9 ms as ``VALUES``. A field with its own placeholder opts its model out.
    """

    def get_placeholder(self, value, compiler, connection) -> str:
        return "%s"
