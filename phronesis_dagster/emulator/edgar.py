"""SEC EDGAR (https://www.sec.gov under `/sec/www`, https://data.sec.gov under `/sec/data`).

Serves the real vendored files (company_tickers.json, Apple's submissions JSON and its real
insider Form 4) plus seeded synthetic issuers and Form 4 documents in the same schema.
Behaviour per PROVIDERS.md section 3: undeclared User-Agent -> 403 HTML page, unknown CIK ->
404 NoSuchKey XML, missing archive object -> 403 AccessDenied XML. Over the rate limit the
emulator answers 429 + Retry-After with SEC's "Request Rate Threshold Exceeded" page (SEC's
real status for that page is unverified; users report 403).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from functools import lru_cache
from html import escape
from typing import Any

from phronesis_dagster.emulator import data
from phronesis_dagster.emulator.base import JSON_TYPE, Provider, Request, Response

XML_TYPE = "application/xml"
HTML_TYPE = "text/html"
CONTACT_RE = re.compile(r"[^\s@]+@[^\s@]+\.[A-Za-z]{2,}")
SUBMISSIONS_RE = re.compile(r"^/submissions/CIK(\d{10})\.json$")
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
    """Emulated SEC EDGAR: tickers, submissions and Archives documents."""

    name = "edgar"
    prefixes = ("/sec/www", "/sec/data")

    def request_key(self, req: Request) -> str | None:
        match = SUBMISSIONS_RE.match(req.path)
        if match:
            return match.group(1)
        match = ARCHIVE_RE.match(req.path)
        if match:
            return f"{int(match.group(1)):010d}/{match.group(2)}/{match.group(3)}"
        return req.path

    def authenticate(self, req: Request) -> Response | None:
        # SEC has no keys; a User-Agent declaring a contact email is the credential.
        if not CONTACT_RE.search(req.header("user-agent") or ""):
            return self.unauthorized(req)
        return None

    def unauthorized(self, req: Request) -> Response:
        return Response.text(403, UNDECLARED_PAGE, HTML_TYPE)

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        return Response.text(429, RATE_PAGE, HTML_TYPE, {"Retry-After": str(retry_after)})

    def server_error(self, req: Request, status: int) -> Response:
        codes = {500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable"}
        return _s3_error(status, codes.get(status, "InternalError"), "Please try again later")

    def decorate(self, req: Request, response: Response) -> None:
        if response.status == 200:
            for name, value in OK_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers["x-amzn-requestid"] = data.hex_id(0, "sec-req", req.path, length=32)

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
    rows: list[dict[str, Any]] = []
    for filing in company.filings:
        rows.append(
            {
                "accessionNumber": filing.accession,
                "filingDate": filing.filing_date.isoformat(),
                "reportDate": (filing.filing_date - timedelta(days=2)).isoformat(),
                "acceptanceDateTime": f"{filing.filing_date.isoformat()}T21:05:11.000Z",
                "act": "",
                "form": "4",
                "fileNumber": "",
                "filmNumber": "",
                "items": "",
                "core_type": "4",
                "size": 4000 + len(filing.raw_file) * 37,
                "isXBRL": 0,
                "isInlineXBRL": 0,
                "primaryDocument": f"xslF345X05/{filing.raw_file}",
                "primaryDocDescription": "FORM 4",
            }
        )
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
    rows = []
    for _ in range(rng.randint(1, 4)):
        code = rng.choice(TRANSACTION_CODES)
        shares = rng.randint(500, 90_000)
        disposed = code in ("S", "F", "G")
        price = (
            0 if code in ("A", "G", "M") else round(filing.base_price * rng.uniform(0.95, 1.05), 4)
        )
        held = max(0, held - shares) if disposed else held + shares
        ad_code = "D" if disposed else "A"
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
                <transactionPricePerShare>{_v(price)}</transactionPricePerShare>
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
    if rng.random() < 0.5:
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
    return f"""<?xml version="1.0"?>
<ownershipDocument>
    <schemaVersion>X0508</schemaVersion>
    <documentType>4</documentType>
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
    <aff10b5One>{str(rng.random() < 0.5).lower()}</aff10b5One>
    <nonDerivativeTable>
{rows_xml}
    </nonDerivativeTable>
{derivative}    <footnotes/>
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
