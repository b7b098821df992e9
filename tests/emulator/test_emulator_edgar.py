"""SEC EDGAR emulation: UA policy, real fixtures, synthetic issuers and owners, S3-style errors,
the fair-access block."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import httpx
import pytest

from phronesis_dagster.emulator import edgar_insiders
from phronesis_dagster.emulator.data import SEC_DIR, form4_index, owner_filings

UA = {"User-Agent": "Phronesis Test ops@phronesis.example"}
APPLE_FORM4 = "/Archives/edgar/data/320193/000032019322000061/wf-form4_165187623819106.xml"


@pytest.fixture
def sec(emulator):
    # These tests read many documents in a row; SEC's 10/s (and its block) have their own tests.
    emulator.configure(rate_limit_per_second={"edgar": None})
    urls = emulator.base_urls()
    with httpx.Client(headers=UA) as client:
        yield client, urls["edgar_www"], urls["edgar_data"]


def test_undeclared_user_agent_gets_403_page(emulator):
    url = emulator.base_urls()["edgar_www"] + "/files/company_tickers.json"
    for headers in ({"User-Agent": "python-httpx/0.28"}, {"User-Agent": "Mozilla/5.0"}):
        r = httpx.get(url, headers=headers)
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("text/html")
        assert "Undeclared Automated Tool" in r.text


def test_company_tickers_has_real_and_synthetic(sec):
    client, www, _ = sec
    tickers = client.get(www + "/files/company_tickers.json").json()
    by_ticker = {row["ticker"]: row for row in tickers.values()}
    assert by_ticker["AAPL"] == {"cik_str": 320193, "ticker": "AAPL", "title": "Apple Inc."}
    assert by_ticker["ACME"]["cik_str"] == 9000001
    assert len(tickers) > 9600


def test_apple_submissions_are_the_real_file(sec):
    client, _, data_url = sec
    r = client.get(data_url + "/submissions/CIK0000320193.json")
    assert r.status_code == 200
    assert r.content == (SEC_DIR / "CIK0000320193.json").read_bytes()
    assert r.headers["cache-control"] == "max-age=0, no-cache, no-store"


def test_real_apple_form4_raw_and_rendered(sec):
    client, www, _ = sec
    raw = client.get(www + APPLE_FORM4)
    assert raw.status_code == 200
    assert raw.content == (SEC_DIR / "wf-form4_165187623819106.xml").read_bytes()
    root = ET.fromstring(raw.content)
    assert root.findtext("reportingOwner/reportingOwnerId/rptOwnerName") == "Adams Katherine L."
    html = client.get(www + APPLE_FORM4.replace("wf-form4", "xslF345X03/wf-form4"))
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "Adams Katherine L." in html.text and "STATEMENT OF CHANGES" in html.text
    # The owner's CIK path and the full submission text work too, as on EDGAR.
    owner_path = "/Archives/edgar/data/1462356/000032019322000061/0000320193-22-000061.txt"
    assert client.get(www + owner_path).status_code == 200


def test_every_apple_form4_in_recent_list_resolves(sec):
    client, www, data_url = sec
    recent = client.get(data_url + "/submissions/CIK0000320193.json").json()["filings"]["recent"]
    picked = [i for i, form in enumerate(recent["form"]) if form == "4"][::60]
    assert len(picked) >= 5
    for i in picked:
        accession = recent["accessionNumber"][i].replace("-", "")
        raw_name = recent["primaryDocument"][i].split("/", 1)[1]
        r = client.get(f"{www}/Archives/edgar/data/320193/{accession}/{raw_name}")
        assert r.status_code == 200, recent["accessionNumber"][i]
        root = ET.fromstring(r.content)
        assert root.findtext("issuer/issuerTradingSymbol") == "AAPL"
        assert root.find("nonDerivativeTable/nonDerivativeTransaction") is not None


def test_synthetic_company_filings_match_insider_list(sec):
    client, www, data_url = sec
    insiders = [row for row in edgar_insiders(0) if row["ticker"] == "GLOBX"]
    cik = insiders[0]["cik"]
    subs = client.get(f"{data_url}/submissions/CIK{cik}.json").json()
    recent = subs["filings"]["recent"]
    assert len({len(values) for values in recent.values()}) == 1  # parallel arrays
    assert subs["tickers"] == ["GLOBX"]
    owners = set()
    for i, form in enumerate(recent["form"]):
        if form != "4":
            continue
        assert recent["primaryDocument"][i].startswith("xslF345X05/")
        accession = recent["accessionNumber"][i].replace("-", "")
        raw_name = recent["primaryDocument"][i].split("/", 1)[1]
        r = client.get(f"{www}/Archives/edgar/data/{int(cik)}/{accession}/{raw_name}")
        assert r.status_code == 200
        root = ET.fromstring(r.content)
        owners.add(root.findtext("reportingOwner/reportingOwnerId/rptOwnerName"))
        tx = root.find("nonDerivativeTable/nonDerivativeTransaction")
        assert tx.findtext("transactionCoding/transactionCode") in set("PSAMFG")
        assert float(tx.findtext("transactionAmounts/transactionShares/value")) > 0
        html = client.get(
            f"{www}/Archives/edgar/data/{int(cik)}/{accession}/{recent['primaryDocument'][i]}"
        )
        assert html.headers["content-type"].startswith("text/html")
    assert owners == {row["owner_name"] for row in insiders}


def test_unknown_cik_and_missing_archive(sec):
    client, www, data_url = sec
    r = client.get(data_url + "/submissions/CIK0000000001.json")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/xml"
    assert "<Code>NoSuchKey</Code>" in r.text
    r = client.get(www + "/Archives/edgar/data/320193/000032019399999999/nothing.xml")
    assert r.status_code == 403
    assert "<Code>AccessDenied</Code>" in r.text


def test_edgar_insiders_depend_on_seed_only():
    assert edgar_insiders(3) == edgar_insiders(3)
    assert edgar_insiders(3) != edgar_insiders(4)
    row = edgar_insiders(3)[1]
    assert set(row) >= {"ticker", "cik", "company", "owner_name", "officer_title"}


# ---- SEC's fair-access block -----------------------------------------------------------------


def _edgar(emulator):
    return next(p for _, p in emulator._routes if p.name == "edgar")


def test_over_the_limit_is_a_403_block_that_lasts_and_grows(emulator, sec):
    client, www, data_url = sec
    emulator.configure(faults={"edgar": {"storm_429_rate": 1.0, "block_seconds": 1.0}})
    r = client.get(www + "/files/company_tickers.json")
    assert r.status_code == 403 and "retry-after" not in r.headers
    assert r.headers["content-type"].startswith("text/html")
    assert "Request Rate Threshold Exceeded" in r.text
    emulator.configure(faults={"edgar": {"storm_429_rate": 0.0}})
    # Still blocked, on both hosts and whatever the User-Agent: the block is the IP's.
    for _ in range(3):
        time.sleep(0.4)  # each request while blocked restarts the 1 s block
        blocked = client.get(data_url + "/submissions/CIK0000320193.json")
        assert blocked.status_code == 403 and "Request Rate Threshold" in blocked.text
    assert httpx.get(www + "/files/company_tickers.json").status_code == 403
    assert 0.5 < _edgar(emulator).blocked_for() <= 1.0
    time.sleep(1.1)
    assert client.get(data_url + "/submissions/CIK0000320193.json").status_code == 200
    assert _edgar(emulator).blocks_started == 1


def test_emulator_rate_limit_starts_the_block(emulator, sec):
    client, www, _ = sec
    emulator.configure(rate_limit_per_second={"edgar": 3}, faults={"edgar": {"block_seconds": 60}})
    statuses = [client.get(www + "/files/company_tickers.json").status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [403, 403]
    time.sleep(1.0)  # a new one-second window, but the block goes on
    assert client.get(www + "/files/company_tickers.json").status_code == 403


def test_missing_document_is_access_denied_xml_not_the_block_page(sec):
    client, www, _ = sec
    r = client.get(www + "/Archives/edgar/data/320193/000032019322000061/nothing.xml")
    assert r.status_code == 403 and r.headers["content-type"] == "application/xml"
    assert "<Code>AccessDenied</Code>" in r.text and "Threshold" not in r.text


# ---- reporting owners ------------------------------------------------------------------------


def test_reporting_owner_submissions_with_pages(sec):
    client, www, data_url = sec
    by_owner = owner_filings(0)
    cik, (person, filings) = max(by_owner.items(), key=lambda item: len(item[1][1]))
    assert len(filings) > 40  # a busy Apple insider: recent + pages
    subs = client.get(f"{data_url}/submissions/CIK{cik:010d}.json").json()
    assert subs["entityType"] == "other" and subs["tickers"] == []
    assert subs["name"] == person.rpt_owner_name
    recent = subs["filings"]["recent"]
    assert len({len(v) for v in recent.values()}) == 1 and len(recent["form"]) == 25
    (page,) = subs["filings"]["files"]
    assert page["name"] == f"CIK{cik:010d}-submissions-001.json"
    body = client.get(f"{data_url}/submissions/{page['name']}").json()
    assert "filings" not in body and "name" not in body  # arrays only, like the real page
    assert len(body["accessionNumber"]) == page["filingCount"] == len(filings) - 25
    listed = recent["accessionNumber"] + body["accessionNumber"]
    assert listed == [f.accession for f in filings]  # newest first, nothing twice
    # Each listed document is served under the owner's own CIK too.
    doc = body["primaryDocument"][0].split("/", 1)[1]
    accession = body["accessionNumber"][0].replace("-", "")
    r = client.get(f"{www}/Archives/edgar/data/{cik}/{accession}/{doc}")
    assert r.status_code == 200
    assert ET.fromstring(r.content).findtext("reportingOwner/reportingOwnerId/rptOwnerCik") == (
        f"{cik:010d}"
    )
    missing = client.get(f"{data_url}/submissions/CIK{cik:010d}-submissions-002.json")
    assert missing.status_code == 404


def test_katherine_adams_is_the_real_owner_file_and_owns_her_apple_filings(sec):
    client, _, data_url = sec
    r = client.get(data_url + "/submissions/CIK0001462356.json")
    assert r.content == (SEC_DIR / "CIK0001462356.json").read_bytes()
    recent = r.json()["filings"]["recent"]
    index = form4_index(0)
    mine = [a for a in recent["accessionNumber"] if a.replace("-", "") in index]
    assert len(mine) == 39  # her filings that Apple's real recent list carries too
    assert {index[a.replace("-", "")].owner.owner_cik for a in mine} == {1462356}


def test_every_listed_insider_filed_and_some_sit_on_two_boards():
    rows = edgar_insiders(0)
    assert all(row["filings"] >= 1 for row in rows)
    boards: dict[str, set[str]] = {}
    for row in rows:
        boards.setdefault(row["owner_cik"], set()).add(row["ticker"])
    assert any(len(tickers) > 1 for tickers in boards.values())
