"""Rows fetched from the app database as a Dagster table (`TableMetadataValue`): the UI renders
it as a sortable table with typed columns, where a hand-built markdown table is only text."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import dagster as dg

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
) -> dg.TableMetadataValue:
    """`rows` as a Dagster table of `columns` (`(name, type)` pairs, in display order)."""
    descriptions = descriptions or {}
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(name, type_, description=descriptions.get(name))
            for name, type_ in columns
        ]
    )
    records = [dg.TableRecord({name: _cell(row.get(name)) for name, _ in columns}) for row in rows]
    return dg.MetadataValue.table(records=records, schema=schema)
