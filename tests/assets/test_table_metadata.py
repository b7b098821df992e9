"""The one table helper: typed columns in order, cells the UI can show, contact details removed
from free-text columns only."""

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import dagster as dg

from phronesis_dagster.assets.table_metadata import FLOAT, INT, STRING, table_metadata

# A uuid whose digit runs look like a phone number to a scrubber.
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")
ROWS = [
    {
        "id": ID,
        "day": date(2026, 12, 3),
        "at": datetime(2026, 12, 3, 7, 30, tzinfo=UTC),
        "cost": Decimal("1.25"),
        "n": 3,
        "message": "bounced: write to dana@doe.example or call +1 415 555 0100",
        "unused": "left out",
    },
    {"id": None, "day": None, "at": None, "cost": None, "n": None, "message": None},
]
COLUMNS = [
    ("id", STRING),
    ("day", STRING),
    ("at", STRING),
    ("cost", FLOAT),
    ("n", INT),
    ("message", STRING),
]


def test_rows_become_typed_records_in_column_order():
    table = table_metadata(ROWS, COLUMNS, {"n": "how many"}, free_text=("message",))
    assert isinstance(table, dg.TableMetadataValue)
    assert [(c.name, c.type) for c in table.schema.columns] == COLUMNS
    assert table.schema.columns[4].description == "how many"
    first, second = (r.data for r in table.records)
    assert first == {
        "id": str(ID),
        "day": "2026-12-03",
        "at": "2026-12-03T07:30:00+00:00",
        "cost": 1.25,
        "n": 3,
        "message": "bounced: write to [email removed] or call [phone removed]",
    }
    assert second == dict.fromkeys(first)


def test_only_free_text_columns_are_scrubbed():
    # Ids, dates and numbers are never scrubbed (the uuid above would be mangled), so a column
    # is scrubbed only when the caller names it.
    table = table_metadata(ROWS[:1], COLUMNS)
    assert table.records[0].data["message"] == ROWS[0]["message"]
    assert table.records[0].data["id"] == str(ID)
