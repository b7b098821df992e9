"""Rows as a Dagster table (`TableMetadataValue`), the one way our assets and checks put a table
in their metadata: the UI renders it as a sortable table with typed columns, where a hand-built
markdown table is only text and a JSON blob a tree to unfold."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import dagster as dg

from phronesis_dagster.resources.claude import scrub_contact_details

# Dagster's table column types.
STRING, INT, FLOAT, BOOL = "string", "int", "float", "bool"
ROW_COUNT = "dagster/row_count"


def _cell(value: Any) -> str | int | float | bool | None:
    # TableRecord takes only scalars: dates and ids as text, NUMERIC (Decimal) as float.
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def table_metadata(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[tuple[str, str]],
    descriptions: Mapping[str, str] | None = None,
    *,
    free_text: Collection[str] = (),
) -> dg.TableMetadataValue:
    """`rows` as a Dagster table of `columns` (`(name, type)` pairs, in display order).

    `free_text` names the columns whose text comes from people or providers (prospect names,
    error messages): email addresses, phone numbers and profile links are removed from them,
    so no contact data reaches the run history. Ids, dates and numbers are left as they are.
    """
    descriptions = descriptions or {}
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(name, type_, description=descriptions.get(name))
            for name, type_ in columns
        ]
    )

    def cell(name: str, value: Any) -> str | int | float | bool | None:
        value = _cell(value)
        if name in free_text and isinstance(value, str):
            return scrub_contact_details(value)
        return value

    records = [
        dg.TableRecord({name: cell(name, row.get(name)) for name, _ in columns}) for row in rows
    ]
    return dg.MetadataValue.table(records=records, schema=schema)
