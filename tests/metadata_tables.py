"""Reading a Dagster table out of materialization or check metadata in tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg


def table_rows(value: Any, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of `value` after checking it is a Dagster table of exactly `columns`, in order
    (not markdown or JSON that only looks like one)."""
    assert isinstance(value, dg.TableMetadataValue), f"not a Dagster table: {type(value)}"
    assert value.schema is not None
    assert [c.name for c in value.schema.columns] == list(columns)
    return [dict(r.data) for r in value.records]
