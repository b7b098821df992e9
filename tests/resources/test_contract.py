"""`as_json` gives a provider result as the JSON round trip of `dataclasses.asdict` gives it
(what the stored data always was), whatever the result holds."""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from datetime import date, datetime

import pytest

from phronesis_dagster.resources.contract import as_json
from phronesis_dagster.resources.edgar import InsiderReport
from phronesis_dagster.resources.edgar_form4 import InsiderTransaction
from phronesis_dagster.resources.exa import Mention, WealthSignal, WebMentions


class Code(enum.StrEnum):
    SALE = "S"


@dataclasses.dataclass(frozen=True)
class Odd:
    when: date
    at: datetime
    id: uuid.UUID
    code: Code
    keys: dict
    nested: tuple
    ratio: float


MENTIONS = WebMentions(
    query="Ada Lovelace Analytical",
    mentions=(Mention("Pledges $4 million", "https://x.test/1", None, ("a", "b")),),
    wealth_signals=(WealthSignal("philanthropy", "Pledges $4 million", "https://x.test/1"),),
    cost_usd=0.005,
)
ODD = Odd(
    when=date(2026, 12, 7),
    at=datetime(2026, 12, 7, 13, 0),
    id=uuid.UUID(int=7),
    code=Code.SALE,
    keys={1: "one", None: [MENTIONS.mentions[0]], 2.5: (1.5, float("inf"))},
    nested=({"k": date(2026, 1, 1)}, [Code.SALE]),
    ratio=0.1,
)


def _reference(value: object) -> object:
    return json.loads(json.dumps(dataclasses.asdict(value), default=str))


def _transaction() -> InsiderTransaction:
    fields = {}
    for f in dataclasses.fields(InsiderTransaction):
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        fields[f.name] = date(2026, 3, 1) if "date" in f.name else f.name
    return InsiderTransaction(**fields)


@pytest.mark.parametrize("value", [MENTIONS, ODD], ids=["exa", "odd-types"])
def test_as_json_is_the_round_trip_of_asdict(value):
    assert as_json(value) == _reference(value)


def test_as_json_of_an_edgar_report():
    report = InsiderReport(
        cik="0000320193",
        company_name="Apple Inc.",
        ticker="AAPL",
        owner_name="Tim Cook",
        transactions=(_transaction(), _transaction()),
        total_found=2,
        capped=False,
        filings_examined=2,
        filings_skipped=0,
    )
    assert as_json(report) == _reference(report)
