"""Set-based writes the ORM makes expensive.

``QuerySet.bulk_update`` builds a ``CASE WHEN`` per object and field; for a batch of a hundred rows
and a handful of fields that cost more CPU than everything else in the inbox's fast path. On
PostgreSQL ``bulk_update_rows`` sends one ``UPDATE ... FROM (VALUES ...)`` instead; elsewhere (the
embedded SQLite default) it falls back to ``bulk_update``.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def bulk_update_rows(model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Write ``fields`` of every object in ``objs`` (matched by primary key). Returns rows updated."""
    if not objs:
        return 0
    if connection.vendor != "postgresql":
        return model.objects.bulk_update(objs, fields)
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    pk = meta.pk
    qn = connection.ops.quote_name
    params: list = []
    rows = []
    for obj in objs:
        params.append(pk.get_db_prep_value(obj.pk, connection))
        params.extend(column.get_db_prep_save(getattr(obj, column.attname), connection) for column in columns)
        rows.append("(" + ", ".join(["%s"] * (len(columns) + 1)) + ")")
    names = ", ".join(qn(c.column) for c in [pk, *columns])
    assignments = ", ".join(f"{qn(c.column)} = v.{qn(c.column)}::{c.db_type(connection)}" for c in columns)
    # Identifiers come from the model's metadata (quoted), values only through parameters.
    sql = (
        f"UPDATE {qn(meta.db_table)} AS t SET {assignments} "
        f"FROM (VALUES {', '.join(rows)}) AS v({names}) "
        f"WHERE t.{qn(pk.column)} = v.{qn(pk.column)}::{pk.db_type(connection)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
