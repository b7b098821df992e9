"""Form 4 parsing against real SEC filings (edgartools fixtures, MIT)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from phronesis_dagster.resources.edgar import form4_filings, normalize_cik, raw_form4_document
from phronesis_dagster.resources.edgar_form4 import owner_matches, parse_form4

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "sec"
if not FIXTURES.exists():  # the package ships a copy for the emulator
    FIXTURES = (
        Path(__file__).resolve().parents[2] / "phronesis_dagster" / "emulator" / "data" / "sec"
    )


def _read(*names: str) -> str:
    for name in names:
        path = FIXTURES / name
        if path.exists():
            return path.read_text()
    pytest.skip(f"fixture {names[0]} not available")


def snow() -> str:
    return _read("edgartools__data_form4.snow.xml", "form4.snow.xml")


def water() -> str:
    return _read("edgartools__data_ownership_374WaterForm4.xml", "374WaterForm4.xml")


def apple_xml() -> str:
    return _read(
        "edgartools_cassette__0000320193-22-000061_form4_extracted.xml",
        "wf-form4_165187623819106.xml",
    )


def apple_txt() -> str:
    return _read("edgartools_cassette__0000320193-22-000061.txt", "0000320193-22-000061.txt")


def test_snowflake_cfo_exercise_and_sales():
    rows = parse_form4(snow())
    assert len(rows) == 7
    first = rows[0]
    assert (first.code, first.shares, first.price_per_share) == ("M", 200000.0, 8.88)
    assert first.acquired_disposed == "A" and first.shares_owned_after == 301097.0
    assert first.transaction_date == date(2022, 12, 13) and first.direct_indirect == "D"
    sale = rows[1]
    assert (sale.code, sale.shares, sale.price_per_share) == ("S", 73170.0, 150.841)
    assert sale.acquired_disposed == "D" and sale.shares_owned_after == 227927.0
    assert sale.value_usd == pytest.approx(73170 * 150.841)
    assert sale.owner_name == "Scarpelli Michael" and sale.owner_cik == "0001402349"
    # 0/1 booleans (schema X0306)
    assert sale.is_officer and not sale.is_director and not sale.is_ten_percent_owner
    assert sale.officer_title == "Chief Financial Officer"
    assert sale.issuer_ticker == "SNOW" and sale.issuer_name == "Snowflake Inc."
    derivative = [r for r in rows if r.is_derivative]
    assert len(derivative) == 1
    assert derivative[0].security_title == "Stock Option (Right to Buy)"
    assert derivative[0].code == "M" and derivative[0].shares_owned_after == 2219299.0
    # holdings are positions, not transactions
    assert all(r.transaction_date is not None for r in rows)


def test_true_false_booleans_and_zero_price():
    rows = parse_form4(water())
    assert [(r.code, r.is_derivative) for r in rows] == [("A", False), ("A", True)]
    grant = rows[0]
    assert grant.shares == 757756.0 and grant.price_per_share == 0.0
    assert grant.is_officer is True and grant.is_director is False
    assert grant.officer_title == "Chief Technology Officer"
    assert grant.owner_name == "Melkote Rajesh Ramaswamy"
    assert rows[1].price_per_share == 0.0  # derivative row keeps its own price


def test_apple_sales_from_xml_and_from_full_submission():
    rows = parse_form4(apple_xml())
    assert len(rows) == 7 and {r.code for r in rows} == {"S"}
    assert all(r.acquired_disposed == "D" and not r.is_derivative for r in rows)
    assert rows[0].shares == 9136.0 and rows[0].price_per_share == 159.94
    assert rows[0].shares_owned_after == 468198.0
    assert rows[0].owner_name == "Adams Katherine L."
    assert rows[0].officer_title == "SVP, GC and Secretary"
    # The .txt SGML submission embeds the same XML between <XML> tags.
    assert parse_form4(apple_txt()) == rows


def test_form3_has_no_transactions_and_form5_gift():
    assert parse_form4(_read("edgartools__data_ownership_form3.snow.xml")) == []
    (gift,) = parse_form4(_read("edgartools__data_ownership_form5.snow.xml"))
    assert gift.code == "G" and gift.acquired_disposed == "D" and gift.is_director


def test_footnote_only_value_and_missing_price_are_none():
    original = snow()
    # The sale's price keeps only its <footnoteId/>, as real filings do for weighted averages.
    footnote_only = original.replace("<value>150.841</value>", "", 1)
    assert footnote_only != original
    rows = parse_form4(footnote_only)
    assert rows[1].code == "S" and rows[1].price_per_share is None
    assert rows[1].shares == 73170.0 and rows[1].value_usd is None
    # A price element missing altogether.
    start = original.index("<transactionPricePerShare>")
    stop = original.index("</transactionPricePerShare>") + len("</transactionPricePerShare>")
    no_price = parse_form4(original[:start] + original[stop:])
    assert no_price[0].price_per_share is None and no_price[0].shares == 200000.0


@pytest.mark.parametrize("bad", ["", "<html>nope</html>", "<ownershipDocument><issuer>"])
def test_not_an_ownership_document(bad):
    with pytest.raises(ValueError):
        parse_form4(bad)


@pytest.mark.parametrize(
    ("sec_name", "prospect", "expected"),
    [
        ("Adams Katherine L.", "Katherine Adams", True),
        ("SCARPELLI MICHAEL", "Michael Scarpelli", True),
        ("Adams Katherine L.", "Katherine Smith", False),
        ("Cook Timothy D", "Tim Cook", False),
    ],
)
def test_owner_name_matching(sec_name, prospect, expected):
    assert owner_matches(sec_name, prospect) is expected


def test_submissions_to_raw_form4_documents():
    subs = json.loads(
        _read(
            "edgartools_cassette__data.sec.gov_submissions_CIK0000320193.json",
            "CIK0000320193.json",
        )
    )
    filings = form4_filings(subs)
    assert filings and all("xslF345" not in f.raw_document for f in filings)
    dates = [f.filing_date for f in filings]
    assert dates == sorted(dates, reverse=True)
    assert raw_form4_document("xslF345X05/wk-form4_1772148856.xml") == "wk-form4_1772148856.xml"
    assert normalize_cik(320193) == "0000320193" == normalize_cik("0000320193")
