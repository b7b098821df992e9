"""Form 4 parsing against real SEC filings (edgartools fixtures, MIT)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from phronesis_dagster.resources.edgar import (
    form4_filings,
    normalize_cik,
    ownership_filings,
    raw_form4_document,
)
from phronesis_dagster.resources.edgar_form4 import (
    owner_matches,
    parse_form4,
    parse_ownership_document,
)

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


# ---- what each row keeps, against values read by hand from the XML files ------------------

# Apple 0000320193-22-000061 (Katherine Adams), 7 x S on 2022-05-04: (shares, price, owned after)
APPLE_SALES = [
    (9136.0, 159.94, 468198.0),
    (5316.0, 160.82, 462882.0),
    (4006.0, 161.93, 458876.0),
    (900.0, 162.77, 457976.0),
    (1550.0, 163.94, 456426.0),
    (1800.0, 165.06, 454626.0),
    (2292.0, 165.95, 452334.0),
]
# The price ranges of footnotes F2..F8, one per sale.
APPLE_RANGES = [
    ("$159.42", "$160.41"),
    ("$160.43", "$161.42"),
    ("$161.44", "$162.41"),
    ("$162.44", "$163.22"),
    ("$163.46", "$164.37"),
    ("$164.55", "$165.51"),
    ("$165.56", "$166.38"),
]


def test_apple_sales_keep_prices_footnotes_and_the_10b5_1_plan():
    doc = parse_ownership_document(apple_xml())
    assert doc.form_type == "4" and doc.issuer_cik == "0000320193"
    assert doc.rule_10b5_1_checkbox is None  # X0306: filed before the checkbox existed
    rows = doc.transactions
    assert [(r.shares, r.price_per_share, r.shares_owned_after) for r in rows] == APPLE_SALES
    for row, (low, high) in zip(rows, APPLE_RANGES, strict=True):
        assert (row.code, row.code_label, row.acquired_disposed) == ("S", "Sale", "D")
        assert row.transaction_date == date(2022, 5, 4) and row.direct_indirect == "D"
        assert row.value_usd == pytest.approx(row.shares * row.price_per_share)
        # F1 on the security title: "made pursuant to a Rule 10b5-1 trading plan adopted by
        # the reporting person on August 16, 2021" -> a planned sale.
        assert row.rule_10b5_1 is True
        assert row.footnotes[0].startswith("This transaction was made pursuant to a Rule 10b5-1")
        assert row.price_is_weighted_average
        assert f"prices ranging from {low} to {high}" in row.price_footnote
        assert row.footnotes[1] == row.price_footnote and len(row.footnotes) == 2


def test_374water_checkbox_and_derivative_terms():
    doc = parse_ownership_document(water())
    assert doc.rule_10b5_1_checkbox is False  # <aff10b5One>false</aff10b5One>
    grant, option = doc.transactions
    assert grant.rule_10b5_1 is False and option.rule_10b5_1 is False
    assert (grant.code_label, grant.shares, grant.value_usd) == ("Grant", 757756.0, 0.0)
    assert grant.footnotes[0].startswith("Vesting commencement date is March 31, 2025.")
    assert option.is_derivative and option.security_title == "Stock options (right to buy)"
    assert option.exercise_price == 0.33 and option.expiration_date == date(2035, 4, 29)
    assert option.exercise_date is None  # only <footnoteId id="F1"/> stands there
    assert option.underlying_security_title == "Common Stock"
    assert option.underlying_shares == 757576.0 and option.shares == 757576.0
    assert grant.exercise_price is None and grant.underlying_shares is None


def test_snowflake_footnotes_per_row_and_no_plan_information():
    rows = parse_ownership_document(snow()).transactions
    assert [r.code for r in rows] == ["M", "S", "S", "S", "S", "S", "M"]
    sale = rows[1]
    assert sale.footnotes[0] == (
        "The sales reported in this Form 4 were effected for financial and tax planning purposes."
    )
    assert "ranging from $150.300 to $151.295, inclusive" in sale.price_footnote
    assert sale.price_is_weighted_average and len(sale.footnotes) == 2
    assert all(r.rule_10b5_1 is None for r in rows)  # no checkbox, no 10b5-1 footnote
    option = rows[-1]
    assert option.is_derivative and option.exercise_price == 8.88
    assert option.expiration_date == date(2029, 8, 26) and option.exercise_date is None
    assert option.underlying_shares == 200000.0 and option.code_label == "Option exercise"
    assert not rows[0].price_is_weighted_average and rows[0].price_footnote is None


def test_form5_gift_and_form3_owner():
    doc = parse_ownership_document(_read("edgartools__data_ownership_form5.snow.xml"))
    assert doc.form_type == "5" and [o.name for o in doc.owners] == ["McMahon John Dennis"]
    (gift,) = doc.transactions
    assert (gift.code_label, gift.shares, gift.shares_owned_after) == ("Gift", 61386.0, 54666.0)
    assert gift.form_type == "5" and gift.transaction_date == date(2021, 12, 23)
    assert gift.footnotes == (
        "Represents shares that the Reporting Person transferred for no consideration.",
        "Includes shares to be issued in connection with the vesting of one or more restricted "
        "stock units.",
    )
    form3 = parse_ownership_document(_read("edgartools__data_ownership_form3.snow.xml"))
    assert form3.form_type == "3" and form3.transactions == () and form3.owners


def test_a_footnote_saying_not_under_a_plan_is_not_a_plan():
    xml = apple_xml().replace(
        "This transaction was made pursuant to a Rule 10b5-1",
        "This transaction was not made pursuant to a Rule 10b5-1",
    )
    assert all(r.rule_10b5_1 is None for r in parse_ownership_document(xml).transactions)


def test_owner_submissions_and_pages_list_ownership_filings():
    owner = json.loads(
        _read(
            "edgartools_cassette__data.sec.gov_submissions_CIK0001462356.json",
            "CIK0001462356.json",
        )
    )
    filings = ownership_filings(owner["filings"]["recent"])
    # Forms 3/4/5 only (the 144s are not ownership filings); counted by hand: 261 of 268.
    assert len(filings) == 261 and {f.form for f in filings} == {"3", "4", "5"}
    assert filings[0].accession_number == "0001462356-25-000012"
    assert filings[0].raw_document == "wk-form4_1763163012.xml"
    page = json.loads(
        _read("edgartools_cassette__data.sec.gov_submissions_CIK0001009672-submissions-001.json")
    )
    page_filings = ownership_filings(page)  # a page: the parallel arrays only
    assert page_filings and {f.form for f in page_filings} <= {"4", "4/A"}
    assert "4/A" in {f.form for f in page_filings}
