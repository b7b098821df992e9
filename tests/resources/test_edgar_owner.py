"""EDGAR finds the person, not the issuer's newest filings: the real client resolves a prospect
to their own CIK through the emulator, reads their filings (pages included) for that issuer only,
and a second run reads filed documents from the app database instead of SEC."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from phronesis_dagster.db.models import SecDocumentCache, SecReportingOwner
from phronesis_dagster.emulator import edgar_insiders
from phronesis_dagster.emulator.data import owner_filings
from phronesis_dagster.resources.edgar import EdgarResource, ownership_filings
from tests.resources.conftest import FAST, usage_row

ADAMS = "Katherine Adams"
ADAMS_CIK = "0001462356"
APPLE_CIK = "0000320193"
# The real Form 4 0000320193-22-000061: 7 sales on 2022-05-04 under a Rule 10b5-1 plan.
REAL_SALES = [9136.0, 5316.0, 4006.0, 900.0, 1550.0, 1800.0, 2292.0]


def make(emu, db, **overrides: Any) -> EdgarResource:
    # The emulator enforces SEC's 10/s (and its 10-minute block); these tests are about what is
    # asked, not the rate: unlimited on both sides keeps them short.
    emu.configure(rate_limit_per_second={"edgar": None})
    urls = emu.base_urls()
    return EdgarResource(
        user_agent="phronesis tests tests@example.com",
        www_base_url=urls["edgar_www"],
        data_base_url=urls["edgar_data"],
        app_db=db,
        provider_mode="emulator",
        **{**FAST, "requests_per_second": 1000, **overrides},
    )


def sec_requests(emu) -> int:
    return emu.stats()["requests"].get("edgar", 0)


def two_board_director() -> tuple[str, list[dict[str, Any]]]:
    boards: dict[str, list[dict[str, Any]]] = {}
    for row in edgar_insiders(0):
        boards.setdefault(row["owner_cik"], []).append(row)
    return next((cik, rows) for cik, rows in boards.items() if len(rows) > 1)


def test_person_found_through_their_own_filings(emu, pg_rdb):
    res = make(emu, pg_rdb, max_transactions=30)
    report = res.insider_transactions(ticker="AAPL", owner_name=ADAMS)
    assert report is not None
    assert report.owner_cik == ADAMS_CIK and report.sec_owner_name == "Adams Katherine L."
    # Her 40 newest ownership filings: 39 at Apple, 1 older one the emulator does not serve.
    assert (report.filings_examined, report.filings_for_issuer) == (40, 39)
    assert report.filings_skipped == 1
    assert len(report.transactions) == 30 and report.total_found > 30 and report.capped
    assert report.label == f"last 30 transactions (of {report.total_found} found)"
    assert {t.owner_cik for t in report.transactions} == {ADAMS_CIK}
    assert {t.issuer_cik for t in report.transactions} == {APPLE_CIK}
    dates = [(t.transaction_date, t.filing_date) for t in report.transactions]
    assert dates == sorted(dates, reverse=True)
    assert usage_row(pg_rdb, "edgar")["failure_count"] == 0

    # The real filing is among them, row for row as the XML says.
    res_all = make(emu, pg_rdb, max_transactions=500)
    full = res_all.insider_transactions(cik=APPLE_CIK, owner_name=ADAMS)
    real = [t for t in full.transactions if t.accession_number == "0000320193-22-000061"]
    assert sorted(t.shares for t in real) == sorted(REAL_SALES)
    assert all(t.code_label == "Sale" and t.rule_10b5_1 is True for t in real)
    assert all(t.price_is_weighted_average for t in real)


def test_the_owner_cik_is_remembered(emu, pg_rdb):
    make(emu, pg_rdb).insider_transactions(ticker="AAPL", owner_name=ADAMS)
    with pg_rdb.connect() as conn:
        owners = conn.execute(
            sa.select(SecReportingOwner.owner_cik, SecReportingOwner.owner_name).where(
                SecReportingOwner.issuer_cik == APPLE_CIK
            )
        ).all()
    assert (ADAMS_CIK, "Adams Katherine L.") in owners
    # Every insider seen while looking for her is remembered too.
    assert len(owners) > 1
    again = make(emu, pg_rdb)
    emu.reset_stats()
    report = again.insider_transactions(cik=APPLE_CIK, owner_name=ADAMS)
    assert report.owner_from_cache
    paths = {route for route in emu.stats()["responses"]["edgar"]}
    assert not any("CIK0000320193" in route for route in paths)  # the issuer is not scanned


def test_second_run_reads_documents_from_the_app_database(emu, pg_rdb):
    first = make(emu, pg_rdb)
    report = first.insider_transactions(cik=APPLE_CIK, owner_name=ADAMS)
    first_requests = sec_requests(emu)
    stats = first.cache_stats()
    assert stats["sec_document_cache_hits"] == 0 and stats["sec_document_cache_misses"] > 39
    assert stats["sec_requests"] == first_requests
    with pg_rdb.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(SecDocumentCache)).scalar()
    assert stored == stats["sec_document_cache_misses"] - 1  # the one missing document

    emu.reset_stats()
    second = make(emu, pg_rdb)  # a new run: nothing in process memory
    again = second.insider_transactions(cik=APPLE_CIK, owner_name=ADAMS)
    assert again.transactions == report.transactions
    assert again.documents_from_cache == 39 and again.documents_fetched == 0
    stats = second.cache_stats()
    assert stats["sec_document_cache_hits"] == 39 and stats["sec_owner_cache_hits"] == 1
    # Her submissions (new filings would show there) and the one document SEC does not have.
    assert sec_requests(emu) == stats["sec_requests"] == 2
    assert first_requests > 20 * sec_requests(emu)


def test_director_on_two_boards_gets_only_the_asked_issuer(emu, pg_rdb):
    owner_cik, rows = two_board_director()
    res = make(emu, pg_rdb)
    for row in rows:
        report = res.insider_transactions(cik=row["cik"], owner_name=row["full_name"])
        assert report is not None and report.owner_cik == owner_cik
        assert report.filings_for_issuer == row["filings"] < report.filings_examined
        assert {t.issuer_cik for t in report.transactions} == {row["cik"]}


def test_owner_pages_are_followed(emu, pg_rdb):
    cik, (person, filings) = max(owner_filings(0).items(), key=lambda item: len(item[1][1]))
    assert person.owner_cik > 9_000_000 and len(filings) > 40
    res = make(emu, pg_rdb, max_filings=60)
    report = res.insider_transactions(
        cik=APPLE_CIK, owner_name=f"{person.first_name} {person.last_name}"
    )
    assert report.owner_cik == f"{cik:010d}" and report.filings_examined == 60
    routes = emu.stats()["responses"]["edgar"]
    assert f"GET /sec/data/submissions/CIK{cik:010d}-submissions-001.json" in routes


def test_a_person_who_never_filed_is_no_match(emu, pg_rdb):
    res = make(emu, pg_rdb, owner_scan_filings=16)
    nobody = res.insider_transactions(cik=APPLE_CIK, owner_name="Nobody Anyone")
    assert nobody.transactions == () and nobody.owner_cik is None
    assert nobody.label == "no transactions found" and nobody.company_name == "Apple Inc."
    assert res.insider_transactions(cik="0000000001", owner_name=ADAMS) is None  # unknown CIK
    assert usage_row(pg_rdb, "edgar")["failure_count"] == 0


@pytest.mark.parametrize("ticker_case", ["acme", "ACME"])
def test_every_synthetic_insider_is_found(emu, pg_rdb, ticker_case):
    res = make(emu, pg_rdb)
    for row in [r for r in edgar_insiders(0) if r["ticker"] == "ACME"]:
        report = res.insider_transactions(ticker=ticker_case, owner_name=row["full_name"])
        assert report is not None, row["full_name"]
        assert report.sec_owner_name == row["owner_name"]
        assert report.filings_for_issuer == row["filings"]


def test_a_document_name_with_control_characters_is_a_malformed_list():
    """httpx refuses such a URL before any request: the submissions list is the bad answer."""
    block = {
        "form": ["4"],
        "accessionNumber": ["0000320193-24-000001"],
        "filingDate": ["2024-01-02"],
        "primaryDocument": ["\x1f"],
    }
    with pytest.raises(ValueError, match="control characters"):
        ownership_filings(block)
