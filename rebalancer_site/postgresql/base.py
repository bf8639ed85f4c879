"""Django's PostgreSQL backend, with its statements' parameters bound by the server.

Settings turn on server-side binding (and prepared statements) for PostgreSQL: the parameters
travel apart from the statement's text, so Python does not quote them into it, and a statement
run a few times on a connection is parsed and planned once. The protocol then limits a statement
to 65,535 parameters, which Django's PostgreSQL backend does not know of (with parameters quoted
into the text there is no limit): this backend tells it, so bulk inserts, bulk updates and
deletes of many rows are split into statements under it, as on SQLite and Oracle.
"""

from __future__ import annotations

from itertools import chain

from django.db.backends.postgresql import base, features, operations
from django.db.models import CompositePrimaryKey

#: Parameters one statement may carry (the protocol's count is 16 bits).
MAX_QUERY_PARAMS = 65_535


class DatabaseFeatures(features.DatabaseFeatures):
    max_query_params = MAX_QUERY_PARAMS


class DatabaseOperations(operations.DatabaseOperations):
    def bulk_batch_size(self, fields, objs):
        columns = list(chain.from_iterable(f.fields if isinstance(f, CompositePrimaryKey) else [f] for f in fields))
        if not columns:
            return len(objs)
        return max(1, min(len(objs), MAX_QUERY_PARAMS // len(columns)))


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
    ops_class = DatabaseOperations
