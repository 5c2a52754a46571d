"""Bulk writes the ORM makes slow: many rows' fields in one statement."""

from collections.abc import Sequence

from django.db import connections, router, transaction


def update_rows(model, rows: Sequence, fields: list[str], *, only_status: str | None = None) -> None:
    """Write `fields` of each row, as QuerySet.bulk_update does, but ten to twenty times faster.

    bulk_update builds one CASE WHEN per field and row, and for a thousand rows building that
    SQL takes longer than running it. On PostgreSQL this is one UPDATE joined to the values as
    arrays (unnest); elsewhere one UPDATE per row, sent together (executemany). With
    `only_status`, rows that have moved on to another status meanwhile are left as they are.
    """
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor == "postgresql":
        sql, params = update_rows_statement(connection, model, rows, fields, only_status=only_status)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    values = [[c.get_db_prep_value(getattr(row, c.attname), connection) for c in columns] for row in rows]
    status = quote(model._meta.get_field("status").column) if only_status is not None else ""
    table, pk = quote(model._meta.db_table), model._meta.pk
    sql = f"UPDATE {table} SET {', '.join(f'{quote(c.column)} = %s' for c in columns)} WHERE {quote(pk.column)} = %s"  # noqa: S608
    extra = []
    if status:
        sql += f" AND {status} = %s"
        extra = [only_status]
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.executemany(sql, [[*value, row.pk, *extra] for value, row in zip(values, rows, strict=True)])


def update_rows_statement(
    connection, model, rows: Sequence, fields: list[str], *, only_status: str | None = None
) -> tuple[str, list]:
    """update_rows' one UPDATE on PostgreSQL, as SQL and parameters (to run on its own or in a WITH)."""
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), model._meta.pk
    columns = [model._meta.get_field(name) for name in fields]
    values = [[c.get_db_prep_value(getattr(row, c.attname), connection) for c in columns] for row in rows]
    # Only names and types from the model's own metadata go into the SQL; values are parameters.
    names = [quote(f"v{i}") for i in range(len(columns))]
    assignments = ", ".join(f"{quote(c.column)} = u.{n}" for c, n in zip(columns, names, strict=True))
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in [pk, *columns])
    pk_type = pk.db_type(connection)
    # "= ANY" lets the planner find the rows by primary key instead of hashing the whole table.
    sql = (
        f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS u(pk, {', '.join(names)}) "  # noqa: S608
        f"WHERE {table}.{quote(pk.column)} = u.pk AND {table}.{quote(pk.column)} = ANY(%s::{pk_type}[])"
    )
    ids = [row.pk for row in rows]
    params = [ids, *([row[i] for row in values] for i in range(len(columns))), ids]
    if only_status is not None:
        sql += f" AND {table}.{quote(model._meta.get_field('status').column)} = %s"
        params.append(only_status)
    return sql, params
