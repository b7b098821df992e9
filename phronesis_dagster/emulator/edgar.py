"""SEC EDGAR (https://www.sec.gov under `/sec/www`, https://data.sec.gov under `/sec/data`).

Serves the real vendored files (company_tickers.json, Apple's and its insider Katherine Adams's
submissions JSON, her real Form 4) plus seeded synthetic issuers, reporting owners and Form 4
documents in the same schema. Behaviour and the source each follows (PROVIDERS.md section 3):

- undeclared User-Agent -> 403 HTML "Your Request Originates from an Undeclared Automated Tool"
  (page text quoted in Gunratan/edgar#4 and pancak3lullz/SECurityTr8Ker#2);
- unknown CIK -> 404 NoSuchKey XML; missing Archives object -> 403 AccessDenied XML (recorded
  real bodies, edgartools cassettes: fixtures/sec/edgartools_cassette__error_and_header_samples);
- over the rate limit -> 403 HTML "Request Rate Threshold Exceeded", no Retry-After, and the
  IP stays blocked for 10 minutes, restarted by every request made while blocked (SEC
  "Accessing EDGAR Data": "limited for a brief period", "10 minutes"; the status reported by
  users as 403, older reports 429 - manusimidt/py-xbrl#144, stored SEC block page text). The
  fault switches `scenario: "rate_block"` or `storm_429_rate` send a request over the limit at
  once; `block_seconds` (default 600) shortens the block for tests;
- reporting owners have their own submissions JSON (`entityType: "other"`, empty tickers), and
  older filings sit in `CIK##########-submissions-001.json` pages holding only the parallel
  arrays (recorded page: fixtures/sec/..._CIK0001009672-submissions-001.json). SEC keeps at
  least a year or 1,000 filings in `filings.recent`; the emulator pages after
  `OWNER_RECENT_LIMIT` filings so that clients exercise the pages at demo scale.
"""

from __future__ import annotations

import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from functools import lru_cache
from html import escape
from typing import Any

from phronesis_dagster.emulator import data
from phronesis_dagster.emulator.base import JSON_TYPE, Provider, Request, Response
from phronesis_dagster.resources.edgar import EdgarResource

XML_TYPE = "application/xml"
HTML_TYPE = "text/html"
CONTACT_RE = re.compile(r"[^\s@]+@[^\s@]+\.[A-Za-z]{2,}")
SUBMISSIONS_RE = re.compile(r"^/submissions/CIK(\d{10})\.json$")
PAGE_RE = re.compile(r"^/submissions/CIK(\d{10})-submissions-(\d{3})\.json$")
OWNER_RECENT_LIMIT = 25
OWNER_PAGE_SIZE = 100
BLOCK_SECONDS = 600.0
ARCHIVE_RE = re.compile(r"^/Archives/edgar/data/(\d+)/(\d{18})/(.+)$")
XSL_RE = re.compile(r"^xslF345X\d\d/")

UNDECLARED_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<title>SEC.gov | Your Request Originates from an Undeclared Automated Tool</title>
</head>
<body>
<h1>Your Request Originates from an Undeclared Automated Tool</h1>
<p>To allow for equitable access to all users, SEC reserves the right to limit requests
originating from undeclared automated tools. Your request has been identified as part of a
network of automated tools outside of the acceptable policy and will be managed until action is
taken to declare your traffic.</p>
<p>Please declare your traffic by updating your user agent to include company specific
information.</p>
<p>For best practices on efficiently downloading information from SEC.gov, including the latest
EDGAR filings, visit <a href="https://www.sec.gov/developer">sec.gov/developer</a>.</p>
</body>
</html>
"""
RATE_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<title>SEC.gov | Request Rate Threshold Exceeded</title>
</head>
<body>
<h1>Request Rate Threshold Exceeded</h1>
<p>Your request rate has exceeded the SEC's fair access threshold of 10 requests per second.
Your access will be limited for a short period; please reduce your request rate.</p>
<p>For best practices on efficiently downloading information from SEC.gov, visit
<a href="https://www.sec.gov/developer">sec.gov/developer</a>.</p>
</body>
</html>
"""
OK_HEADERS = {
    "Cache-Control": "max-age=0, no-cache, no-store",
    "Access-Control-Allow-Origin": "*",
    "Vary": "Accept-Encoding",
}


def _s3_error(status: int, code: str, message: str, key: str | None = None) -> Response:
    request_id = data.hex_id(0, "sec", code, key, length=16).upper()
    key_xml = f"<Key>{escape(key)}</Key>" if key else ""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{key_xml}"
        f"<RequestId>{request_id}</RequestId><HostId>{request_id}=</HostId></Error>"
    )
    return Response.text(status, body, XML_TYPE)


class EdgarProvider(Provider):
    """Emulated SEC EDGAR: tickers, issuer and owner submissions, Archives documents, and the
    fair-access block."""

    name = "edgar"
    # Where the client is pointed in emulator mode (the resource owns the fact).
    prefixes = EdgarResource.EMULATOR_PREFIXES
    # `faults={"edgar": {"scenario": "rate_block"}}`: the next request goes over the limit.
    scenarios = ("rate_block",)

    def __init__(self, config_getter: Any) -> None:
        super().__init__(config_getter)
        # The block is SEC's own state about the caller's IP: one emulator is one SEC, so it
        # lives here, shared by every client process that talks to this emulator.
        self._block_lock = threading.Lock()
        self._blocked_until = 0.0
        self.blocks_started = 0

    def request_key(self, req: Request) -> str | None:
        match = SUBMISSIONS_RE.match(req.path)
        if match:
            return match.group(1)
        match = ARCHIVE_RE.match(req.path)
        if match:
            return f"{int(match.group(1)):010d}/{match.group(2)}/{match.group(3)}"
        return req.path

    # -- the fair-access block ---------------------------------------------------------------

    def _block_seconds(self) -> float:
        return float(getattr(self.config.fault(self.name), "block_seconds", BLOCK_SECONDS))

    def start_block(self) -> None:
        """Block "this IP" for `block_seconds` from now (SEC: 10 minutes)."""
        with self._block_lock:
            if self._blocked_until <= time.monotonic():
                self.blocks_started += 1
            self._blocked_until = time.monotonic() + self._block_seconds()

    def clear_block(self) -> None:
        """End the block now (tests, demo)."""
        with self._block_lock:
            self._blocked_until = 0.0

    def blocked_for(self) -> float:
        """Seconds the block has left (0 when not blocked)."""
        with self._block_lock:
            return max(0.0, self._blocked_until - time.monotonic())

    def _still_blocked(self) -> bool:
        # Requests during the block extend it: SEC keeps limiting an IP that keeps going.
        with self._block_lock:
            now = time.monotonic()
            if self._blocked_until <= now:
                return False
            self._blocked_until = now + self._block_seconds()
            return True

    def authenticate(self, req: Request) -> Response | None:
        # The block is per IP, whatever the User-Agent: checked first.
        if self._still_blocked():
            return Response.text(403, RATE_PAGE, HTML_TYPE)
        # SEC has no keys; a User-Agent declaring a contact email is the credential.
        if not CONTACT_RE.search(req.header("user-agent") or ""):
            return self.unauthorized(req)
        return None

    def unauthorized(self, req: Request) -> Response:
        return Response.text(403, UNDECLARED_PAGE, HTML_TYPE)

    def scenario_answer(self, req: Request, name: str, serve: Any) -> Response:
        if name == "rate_block":
            return self.rate_limited(req, 0)
        return super().scenario_answer(req, name, serve)

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        # No Retry-After: SEC's page does not send one; the block starts now.
        self.start_block()
        return Response.text(403, RATE_PAGE, HTML_TYPE)

    def server_error(self, req: Request, status: int) -> Response:
        codes = {500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable"}
        return _s3_error(status, codes.get(status, "InternalError"), "Please try again later")

    def decorate(self, req: Request, response: Response) -> None:
        if response.status == 200:
            for name, value in OK_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers["x-amzn-requestid"] = data.hex_id(0, "sec-req", req.path, length=32)

    # -- content -----------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        if req.method != "GET":
            return _s3_error(403, "AccessDenied", "Access Denied")
        host = "www" if req.prefix.endswith("www") else "data"
        if host == "www" and req.path == "/files/company_tickers.json":
            return Response(200, company_tickers_bytes(), JSON_TYPE)
        if host == "data":
            match = SUBMISSIONS_RE.match(req.path)
            if match:
                return self._submissions(int(match.group(1)), req.path)
            match = PAGE_RE.match(req.path)
            if match:
                return self._page(int(match.group(1)), int(match.group(2)), req.path)
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.", req.path[1:])
        match = ARCHIVE_RE.match(req.path)
        if match:
            return self._archive(int(match.group(1)), match.group(2), match.group(3))
        return _s3_error(403, "AccessDenied", "Access Denied")

    def _submissions(self, cik: int, path: str) -> Response:
        real = data.real_submissions(cik)
        if real is not None:
            return Response(200, _real_submissions_bytes(cik), JSON_TYPE)
        for company in data.synthetic_companies(self.seed):
            if company.cik == cik:
                return Response.json(200, synthetic_submissions(company))
        owner = data.owner_filings(self.seed).get(cik)
        if owner is not None:
            return Response.json(200, owner_submissions(*owner))
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.", path[1:])

    def _page(self, cik: int, number: int, path: str) -> Response:
        owner = data.owner_filings(self.seed).get(cik)
        if owner is not None and data.real_submissions(cik) is None:
            rows = _owner_pages(owner[1])
            if 1 <= number <= len(rows):
                return Response.json(200, _columns(rows[number - 1]))
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.", path[1:])

    def _archive(self, cik: int, accession_nodash: str, file: str) -> Response:
        filing = data.form4_index(self.seed).get(accession_nodash)
        if filing is None or cik not in (filing.issuer_cik, filing.owner.owner_cik):
            return _s3_error(403, "AccessDenied", "Access Denied")
        raw_name = XSL_RE.sub("", file)
        if filing.real_file and file == f"{filing.accession}.txt":
            text = data.real_form4_xml(f"{filing.accession}.txt")
            return Response.text(200, text, "text/plain")
        if raw_name != filing.raw_file:
            return _s3_error(403, "AccessDenied", "Access Denied")
        xml = form4_xml(self.seed, filing)
        if XSL_RE.match(file):
            return Response.text(200, render_form4_html(xml), HTML_TYPE)
        return Response.text(200, xml, "text/xml")


def _filing_row(filing: data.Form4Filing) -> dict[str, Any]:
    return {
        "accessionNumber": filing.accession,
        "filingDate": filing.filing_date.isoformat(),
        "reportDate": (filing.filing_date - timedelta(days=2)).isoformat(),
        "acceptanceDateTime": f"{filing.filing_date.isoformat()}T21:05:11.000Z",
        "act": "",
        "form": filing.form,
        "fileNumber": "",
        "filmNumber": "",
        "items": "",
        "core_type": filing.form,
        "size": 4000 + len(filing.raw_file) * 37,
        "isXBRL": 0,
        "isInlineXBRL": 0,
        "primaryDocument": f"xslF345X05/{filing.raw_file}",
        "primaryDocDescription": f"FORM {filing.form}",
    }


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    keys = [
        "accessionNumber", "filingDate", "reportDate", "acceptanceDateTime", "act", "form",
        "fileNumber", "filmNumber", "items", "core_type", "size", "isXBRL", "isInlineXBRL",
        "primaryDocument", "primaryDocDescription",
    ]  # fmt: skip
    return {key: [row[key] for row in rows] for key in keys}


def _owner_pages(filings: tuple[data.Form4Filing, ...]) -> list[list[dict[str, Any]]]:
    older = [_filing_row(f) for f in filings[OWNER_RECENT_LIMIT:]]
    return [older[i : i + OWNER_PAGE_SIZE] for i in range(0, len(older), OWNER_PAGE_SIZE)]


def owner_submissions(owner: data.Insider, filings: tuple[data.Form4Filing, ...]) -> dict[str, Any]:
    """A reporting owner's submissions JSON, in the shape of the real one of CIK 0001462356:
    `entityType: "other"`, no tickers, the newest filings in `filings.recent`, older ones in
    `filings.files` pages."""
    recent = [_filing_row(f) for f in filings[:OWNER_RECENT_LIMIT]]
    files = []
    for number, page in enumerate(_owner_pages(filings), start=1):
        files.append(
            {
                "name": f"CIK{owner.owner_cik:010d}-submissions-{number:03d}.json",
                "filingCount": len(page),
                "filingFrom": page[-1]["filingDate"],
                "filingTo": page[0]["filingDate"],
            }
        )
    address = {
        "street1": None, "street2": None, "city": None, "stateOrCountry": None, "zipCode": None,
        "stateOrCountryDescription": None, "isForeignLocation": None,
        "foreignStateTerritory": None, "country": None, "countryCode": None,
    }  # fmt: skip
    return {
        "cik": f"{owner.owner_cik:010d}",
        "entityType": "other",
        "sic": "",
        "sicDescription": "",
        "ownerOrg": "",
        "insiderTransactionForOwnerExists": 1,
        "insiderTransactionForIssuerExists": 0,
        "name": owner.rpt_owner_name,
        "tickers": [],
        "exchanges": [],
        "ein": None,
        "lei": None,
        "description": "",
        "website": "",
        "investorWebsite": "",
        "category": "",
        "fiscalYearEnd": None,
        "stateOfIncorporation": "",
        "stateOfIncorporationDescription": "",
        "addresses": {"mailing": address, "business": dict(address)},
        "phone": None,
        "flags": "",
        "formerNames": [],
        "filings": {"recent": _columns(recent), "files": files},
    }


@lru_cache(maxsize=1)
def company_tickers_bytes() -> bytes:
    """Real company_tickers.json with the synthetic issuers appended (same shape)."""
    tickers = dict(data.real_company_tickers())
    start = len(tickers)
    for i, (ticker, name) in enumerate(data.SYNTHETIC_COMPANIES):
        tickers[str(start + i)] = {
            "cik_str": data.SYNTHETIC_CIK_BASE + i + 1,
            "ticker": ticker,
            "title": name,
        }
    return json.dumps(tickers, separators=(",", ":")).encode("utf-8")


@lru_cache(maxsize=4)
def _real_submissions_bytes(cik: int) -> bytes:
    return (data.SEC_DIR / f"CIK{cik:010d}.json").read_bytes()


def synthetic_submissions(company: data.SyntheticCompany) -> dict[str, Any]:
    """A submissions JSON in the real shape: entity header + parallel `filings.recent` arrays."""
    rows: list[dict[str, Any]] = [_filing_row(f) for f in company.filings]
    # Non-insider filings too, so clients must filter on `form`.
    for n, (form, doc, desc, items) in enumerate(
        (("10-K", "annual.htm", "10-K", ""), ("8-K", "current.htm", "8-K", "2.02,9.01"))
    ):
        filed = date(2026, 2, 20) - timedelta(days=30 * n)
        rows.append(
            {
                "accessionNumber": f"{company.cik:010d}-26-{n + 1:06d}",
                "filingDate": filed.isoformat(),
                "reportDate": (filed - timedelta(days=20)).isoformat(),
                "acceptanceDateTime": f"{filed.isoformat()}T16:30:00.000Z",
                "act": "34",
                "form": form,
                "fileNumber": f"001-{company.cik % 100000:05d}",
                "filmNumber": f"26{company.cik % 1000000:06d}",
                "items": items,
                "core_type": form,
                "size": 250000,
                "isXBRL": 1,
                "isInlineXBRL": 1,
                "primaryDocument": f"{company.ticker.lower()}-{doc}",
                "primaryDocDescription": desc,
            }
        )
    rows.sort(key=lambda r: r["filingDate"], reverse=True)
    recent = {key: [row[key] for row in rows] for key in rows[0]}
    address = {
        "street1": f"{100 + company.cik % 900} MARKET STREET",
        "street2": None,
        "city": "WILMINGTON",
        "stateOrCountry": "DE",
        "zipCode": "19801",
        "stateOrCountryDescription": "DE",
        "isForeignLocation": 0,
        "foreignStateTerritory": None,
        "country": None,
        "countryCode": None,
    }
    return {
        "cik": f"{company.cik:010d}",
        "entityType": "operating",
        "sic": "7372",
        "sicDescription": "Services-Prepackaged Software",
        "ownerOrg": "06 Technology",
        "insiderTransactionForOwnerExists": 0,
        "insiderTransactionForIssuerExists": 1,
        "name": company.name,
        "tickers": [company.ticker],
        "exchanges": ["Nasdaq"],
        "ein": f"{company.cik % 1000000000:09d}",
        "lei": None,
        "description": "",
        "website": "",
        "investorWebsite": "",
        "category": "Large accelerated filer",
        "fiscalYearEnd": "1231",
        "stateOfIncorporation": "DE",
        "stateOfIncorporationDescription": "DE",
        "addresses": {"mailing": address, "business": dict(address)},
        "phone": "(302) 555-0100",
        "flags": "",
        "formerNames": [],
        "filings": {"recent": recent, "files": []},
    }


# ---- Form 4 documents ----------------------------------------------------------------------

TRANSACTION_CODES = ("S", "S", "P", "A", "M", "F", "G")


def _v(value: object) -> str:
    return f"<value>{escape(str(value))}</value>"


def form4_xml(seed: int, filing: data.Form4Filing) -> str:
    """The raw ownershipDocument: the vendored real file, or a seeded one in the same schema."""
    if filing.real_file:
        return data.real_form4_xml(filing.real_file)
    rng = data.rng_for(seed, "form4", filing.accession)
    owner = filing.owner
    period = filing.filing_date - timedelta(days=2)
    held = rng.randint(20_000, 2_000_000)
    plan = rng.random() < 0.5
    notes: list[str] = []
    rows = []
    for _ in range(0 if filing.form == "3" else rng.randint(1, 4)):
        code = rng.choice(TRANSACTION_CODES)
        shares = rng.randint(500, 90_000)
        disposed = code in ("S", "F", "G")
        price = (
            0 if code in ("A", "G", "M") else round(filing.base_price * rng.uniform(0.95, 1.05), 4)
        )
        held = max(0, held - shares) if disposed else held + shares
        ad_code = "D" if disposed else "A"
        price_note = ""
        if code in ("S", "P"):
            # Real filings give a weighted-average price of several trades, the range in a
            # footnote (e.g. the Apple filing 0000320193-22-000061).
            notes.append(
                f"This transaction was executed in multiple trades at prices ranging from "
                f"${price * 0.995:.2f} to ${price * 1.005:.2f}; the price reported above "
                f"reflects the weighted average {'sale' if code == 'S' else 'purchase'} price."
            )
            price_note = f'<footnoteId id="F{len(notes)}"/>'
        rows.append(
            f"""        <nonDerivativeTransaction>
            <securityTitle>{_v("Common Stock")}</securityTitle>
            <transactionDate>{_v(period.isoformat())}</transactionDate>
            <transactionCoding>
                <transactionFormType>4</transactionFormType>
                <transactionCode>{code}</transactionCode>
                <equitySwapInvolved>0</equitySwapInvolved>
            </transactionCoding>
            <transactionAmounts>
                <transactionShares>{_v(shares)}</transactionShares>
                <transactionPricePerShare>{_v(price)}{price_note}</transactionPricePerShare>
                <transactionAcquiredDisposedCode>{_v(ad_code)}</transactionAcquiredDisposedCode>
            </transactionAmounts>
            <postTransactionAmounts>
                <sharesOwnedFollowingTransaction>{_v(held)}</sharesOwnedFollowingTransaction>
            </postTransactionAmounts>
            <ownershipNature>
                <directOrIndirectOwnership>{_v("D")}</directOrIndirectOwnership>
            </ownershipNature>
        </nonDerivativeTransaction>"""
        )
    derivative = ""
    if filing.form != "3" and rng.random() < 0.5:
        options = rng.randint(5_000, 200_000)
        remaining = rng.randint(0, 400_000)
        strike = round(filing.base_price * rng.uniform(0.2, 0.7), 2)
        derivative = f"""    <derivativeTable>
        <derivativeTransaction>
            <securityTitle>{_v("Stock Option (Right to Buy)")}</securityTitle>
            <conversionOrExercisePrice>{_v(strike)}</conversionOrExercisePrice>
            <transactionDate>{_v(period.isoformat())}</transactionDate>
            <transactionCoding>
                <transactionFormType>4</transactionFormType>
                <transactionCode>M</transactionCode>
                <equitySwapInvolved>0</equitySwapInvolved>
            </transactionCoding>
            <transactionAmounts>
                <transactionShares>{_v(options)}</transactionShares>
                <transactionPricePerShare>{_v(0)}</transactionPricePerShare>
                <transactionAcquiredDisposedCode>{_v("D")}</transactionAcquiredDisposedCode>
            </transactionAmounts>
            <exerciseDate>{_v((period - timedelta(days=900)).isoformat())}</exerciseDate>
            <expirationDate>{_v((period + timedelta(days=2400)).isoformat())}</expirationDate>
            <underlyingSecurity>
                <underlyingSecurityTitle>{_v("Common Stock")}</underlyingSecurityTitle>
                <underlyingSecurityShares>{_v(float(options))}</underlyingSecurityShares>
            </underlyingSecurity>
            <postTransactionAmounts>
                <sharesOwnedFollowingTransaction>{_v(remaining)}</sharesOwnedFollowingTransaction>
            </postTransactionAmounts>
            <ownershipNature>
                <directOrIndirectOwnership>{_v("D")}</directOrIndirectOwnership>
            </ownershipNature>
        </derivativeTransaction>
    </derivativeTable>
"""
    title = (
        f"<officerTitle>{escape(owner.officer_title)}</officerTitle>" if owner.officer_title else ""
    )
    rows_xml = "\n".join(rows)
    if filing.form == "3":
        rows_xml = f"""        <nonDerivativeHolding>
            <securityTitle>{_v("Common Stock")}</securityTitle>
            <postTransactionAmounts>
                <sharesOwnedFollowingTransaction>{_v(held)}</sharesOwnedFollowingTransaction>
            </postTransactionAmounts>
            <ownershipNature>
                <directOrIndirectOwnership>{_v("D")}</directOrIndirectOwnership>
            </ownershipNature>
        </nonDerivativeHolding>"""
    footnotes_xml = "".join(
        f'\n        <footnote id="F{i}">{escape(text)}</footnote>'
        for i, text in enumerate(notes, start=1)
    )
    footnotes_xml = f"<footnotes>{footnotes_xml}\n    </footnotes>" if notes else "<footnotes/>"
    return f"""<?xml version="1.0"?>
<ownershipDocument>
    <schemaVersion>X0508</schemaVersion>
    <documentType>{filing.form}</documentType>
    <periodOfReport>{period.isoformat()}</periodOfReport>
    <notSubjectToSection16>0</notSubjectToSection16>
    <issuer>
        <issuerCik>{filing.issuer_cik:010d}</issuerCik>
        <issuerName>{escape(filing.issuer_name)}</issuerName>
        <issuerTradingSymbol>{filing.ticker}</issuerTradingSymbol>
    </issuer>
    <reportingOwner>
        <reportingOwnerId>
            <rptOwnerCik>{owner.owner_cik:010d}</rptOwnerCik>
            <rptOwnerName>{escape(owner.rpt_owner_name)}</rptOwnerName>
        </reportingOwnerId>
        <reportingOwnerAddress>
            <rptOwnerStreet1>C/O {escape(filing.issuer_name.upper())}</rptOwnerStreet1>
            <rptOwnerCity>WILMINGTON</rptOwnerCity>
            <rptOwnerState>DE</rptOwnerState>
            <rptOwnerZipCode>19801</rptOwnerZipCode>
        </reportingOwnerAddress>
        <reportingOwnerRelationship>
            <isDirector>{str(owner.is_director).lower()}</isDirector>
            <isOfficer>{str(owner.officer_title is not None).lower()}</isOfficer>
            <isTenPercentOwner>{str(owner.is_ten_percent_owner).lower()}</isTenPercentOwner>
            <isOther>false</isOther>
            {title}
        </reportingOwnerRelationship>
    </reportingOwner>
    <aff10b5One>{str(plan).lower()}</aff10b5One>
    <nonDerivativeTable>
{rows_xml}
    </nonDerivativeTable>
{derivative}    {footnotes_xml}
    <remarks/>
    <ownerSignature>
        <signatureName>/s/ {escape(owner.first_name)} {escape(owner.last_name)}</signatureName>
        <signatureDate>{filing.filing_date.isoformat()}</signatureDate>
    </ownerSignature>
</ownershipDocument>
"""


def _text(node: ET.Element | None, path: str) -> str:
    if node is None:
        return ""
    found = node.find(path)
    return (found.text or "").strip() if found is not None else ""


def render_form4_html(xml: str) -> str:
    """The human-readable page EDGAR serves at `xslF345X0N/<file>.xml` (simplified layout)."""
    root = ET.fromstring(xml.encode("utf-8"))
    issuer = root.find("issuer")
    owner = root.find("reportingOwner")
    rel = owner.find("reportingOwnerRelationship") if owner is not None else None
    rows = []
    for tx in root.iter("nonDerivativeTransaction"):
        cells = [
            _text(tx, "securityTitle/value"),
            _text(tx, "transactionDate/value"),
            _text(tx, "transactionCoding/transactionCode"),
            _text(tx, "transactionAmounts/transactionShares/value"),
            _text(tx, "transactionAmounts/transactionAcquiredDisposedCode/value"),
            _text(tx, "transactionAmounts/transactionPricePerShare/value"),
            _text(tx, "postTransactionAmounts/sharesOwnedFollowingTransaction/value"),
            _text(tx, "ownershipNature/directOrIndirectOwnership/value"),
        ]
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    relationship = _text(rel, "officerTitle") or (
        "Director" if _text(rel, "isDirector") in ("1", "true") else ""
    )
    symbol = _text(issuer, "issuerTradingSymbol")
    return f"""<!DOCTYPE html>
<html>
<head><title>SEC FORM 4</title></head>
<body>
<table><tr><td><b>SEC Form 4</b></td></tr>
<tr><td>FORM 4 UNITED STATES SECURITIES AND EXCHANGE COMMISSION</td></tr>
<tr><td>STATEMENT OF CHANGES IN BENEFICIAL OWNERSHIP</td></tr></table>
<table>
<tr><td>1. Name and Address of Reporting Person</td>
<td>{escape(_text(owner, "reportingOwnerId/rptOwnerName"))}</td></tr>
<tr><td>2. Issuer Name and Ticker or Trading Symbol</td>
<td>{escape(_text(issuer, "issuerName"))} [ {escape(symbol)} ]</td></tr>
<tr><td>3. Date of Earliest Transaction</td><td>{escape(_text(root, "periodOfReport"))}</td></tr>
<tr><td>5. Relationship of Reporting Person(s) to Issuer</td><td>{escape(relationship)}</td></tr>
</table>
<table border="1">
<tr><th>1. Title of Security</th><th>2. Transaction Date</th><th>3. Code</th><th>4. Amount</th>
<th>(A) or (D)</th><th>Price</th><th>5. Amount Owned Following Reported Transaction(s)</th>
<th>6. Ownership Form</th></tr>
{"".join(rows)}
</table>
</body>
</html>
"""
