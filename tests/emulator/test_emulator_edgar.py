"""SEC EDGAR emulation: UA policy, real fixtures, synthetic issuers, S3-style errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest

from phronesis_dagster.emulator import edgar_insiders
from phronesis_dagster.emulator.data import SEC_DIR

UA = {"User-Agent": "Phronesis Test ops@phronesis.example"}
APPLE_FORM4 = "/Archives/edgar/data/320193/000032019322000061/wf-form4_165187623819106.xml"


@pytest.fixture
def sec(emulator):
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
