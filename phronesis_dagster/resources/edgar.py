"""SEC EDGAR insider transactions: ticker -> CIK -> Form 4 filings -> parsed transactions.

No API key, but the SEC requires a declared User-Agent with a contact email and at most 10
requests per second (over that, the IP is blocked for 10 minutes), so the shared limiter
defaults to 10/s for every run together.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, ClassVar

import httpx
from pydantic import Field, PrivateAttr

from phronesis_dagster.resources.edgar_form4 import InsiderTransaction, owner_matches, parse_form4
from phronesis_dagster.resources.errors import (
    MalformedResponseError,
    ProviderAuthError,
    ProviderConfigError,
)
from phronesis_dagster.resources.http_client import ProviderResource, json_body

SEC_WWW_BASE_URL = "https://www.sec.gov"
SEC_DATA_BASE_URL = "https://data.sec.gov"
TICKERS_PATH = "/files/company_tickers.json"
SEC_REQUESTS_PER_SECOND = 10
FORM4_TYPES = ("4", "4/A")
# Concurrent filing downloads; the shared limiter still caps the request rate.
FETCH_WORKERS = 4
_XSL_PREFIX = re.compile(r"^xslF345X\d\d/")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Form4Filing:
    accession_number: str
    filing_date: date | None
    raw_document: str  # the ownershipDocument XML file name (XSL folder stripped)


@dataclass(frozen=True)
class InsiderReport:
    """Insider transactions at one issuer, newest first."""

    cik: str
    company_name: str | None
    ticker: str | None
    owner_name: str | None  # the filter applied, if any
    transactions: tuple[InsiderTransaction, ...]
    total_found: int  # matching transactions in the examined filings, before the cap
    capped: bool  # True when transactions were cut to max_transactions
    filings_examined: int
    filings_skipped: int  # missing or unparseable filing documents


def raw_form4_document(primary_document: str) -> str:
    """`xslF345X05/wk-form4_1.xml` (rendered HTML) -> `wk-form4_1.xml` (the raw XML)."""
    return _XSL_PREFIX.sub("", primary_document)


def form4_filings(submissions: dict[str, Any]) -> list[Form4Filing]:
    """Form 4 filings of a submissions JSON, newest first."""
    recent = submissions["filings"]["recent"]
    forms = recent["form"]
    accessions = recent["accessionNumber"]
    dates = recent["filingDate"]
    docs = recent["primaryDocument"]
    if not (len(forms) == len(accessions) == len(dates) == len(docs)):
        raise ValueError("filings.recent arrays have different lengths")
    filings = []
    for form, accession, filed, doc in zip(forms, accessions, dates, docs, strict=True):
        if form in FORM4_TYPES and doc:
            if not isinstance(accession, str) or not isinstance(doc, str):
                raise TypeError("accessionNumber and primaryDocument must be strings")
            filings.append(
                Form4Filing(
                    accession_number=accession,
                    filing_date=date.fromisoformat(filed) if filed else None,
                    raw_document=raw_form4_document(doc),
                )
            )
    filings.sort(key=lambda f: (f.filing_date or date.min, f.accession_number), reverse=True)
    return filings


def normalize_cik(cik: str | int) -> str:
    digits = str(cik).strip().lstrip("0") or "0"
    if not digits.isdigit():
        raise ValueError(f"not a CIK: {cik!r}")
    return digits.zfill(10)


def _parse_tickers(response: httpx.Response) -> dict[str, tuple[str, str]]:
    body = json_body(response)
    if not isinstance(body, dict):
        raise ValueError("expected an object")
    return {
        str(row["ticker"]).upper(): (normalize_cik(row["cik_str"]), str(row.get("title") or ""))
        for row in body.values()
    }


class EdgarResource(ProviderResource):
    """SEC EDGAR: a public company's Form 4 insider transactions (date, code P/S/A/M/F/G...,
    shares, price, acquired/disposed, shares owned after, direct/indirect, derivative or not,
    and the owner's relationship), filtered to the prospect when an owner name is given, newest
    first, capped at `max_transactions`. Needs `SEC_USER_AGENT` ("Company contact@email");
    limited to 10 requests/s across all runs, as the SEC asks."""

    PROVIDER: ClassVar[str] = "edgar"
    DEFAULT_RPS: ClassVar[int] = SEC_REQUESTS_PER_SECOND

    user_agent: str = Field(
        description="Declared User-Agent with a contact email (env SEC_USER_AGENT), e.g. "
        "'Acme Sales Ops ops@acme.com'."
    )
    www_base_url: str = Field(default=SEC_WWW_BASE_URL, description="www.sec.gov host.")
    data_base_url: str = Field(default=SEC_DATA_BASE_URL, description="data.sec.gov host.")
    max_transactions: int = Field(default=30, description="Cap on transactions returned.")
    max_filings: int = Field(default=40, description="Most recent Form 4 filings examined.")

    # Per resource instance, i.e. per run: a batch often holds several insiders of one company,
    # and filings never change once filed, so each document is fetched once per run. Concurrent
    # askers of the same document wait for the one fetch in flight instead of repeating it.
    _memo: dict[str, Future] = PrivateAttr(default_factory=dict)
    _memo_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def configured_urls(self) -> list[str]:
        return [self.www_base_url, self.data_base_url]

    def validate_config(self) -> None:
        if not self.user_agent or not _EMAIL.search(self.user_agent):
            raise ProviderConfigError(
                self.PROVIDER,
                "SEC_USER_AGENT must declare who is calling, with a contact email "
                "(e.g. 'Acme Sales Ops ops@acme.com'); the SEC blocks undeclared tools with 403",
            )

    def default_headers(self) -> dict[str, str]:
        return {"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"}

    def _www(self, path: str) -> str:
        return self.www_base_url.rstrip("/") + path

    def _data(self, path: str) -> str:
        return self.data_base_url.rstrip("/") + path

    def cik_for_ticker(self, ticker: str) -> str | None:
        """The zero-padded 10-digit CIK of `ticker`, or None when the SEC does not list it."""
        entry = self._ticker_entry(ticker)
        return entry[0] if entry else None

    def _once(self, key: str, fetch: Callable[[], Any]) -> Any:
        """`fetch()` once per run for `key`; a failed fetch is not remembered."""
        with self._memo_lock:
            future = self._memo.get(key)
            owner = future is None
            if owner:
                future = self._memo[key] = Future()
        if owner:
            try:
                future.set_result(fetch())
            except BaseException as exc:
                with self._memo_lock:
                    self._memo.pop(key, None)
                future.set_exception(exc)
        return future.result()

    def _ticker_entry(self, ticker: str) -> tuple[str, str] | None:
        tickers = self._once(
            TICKERS_PATH,
            lambda: (
                self._call(
                    endpoint=TICKERS_PATH,
                    method="GET",
                    url=self._www(TICKERS_PATH),
                    parse=_parse_tickers,
                )
                or {}
            ),
        )
        return tickers.get(ticker.strip().upper())

    def submissions(self, cik: str) -> dict[str, Any] | None:
        """The submissions JSON of a CIK; None when the SEC has no such entity."""
        path = f"/submissions/CIK{normalize_cik(cik)}.json"

        def parse(response: httpx.Response) -> dict[str, Any]:
            body = json_body(response)
            if not isinstance(body, dict):
                raise ValueError("expected an object")
            form4_filings(body)  # validates the parallel arrays
            name, tickers = body.get("name"), body.get("tickers")
            if name is not None and not isinstance(name, str):
                raise TypeError("name is not a string")
            if tickers is not None and not (
                isinstance(tickers, list) and all(isinstance(t, str) for t in tickers)
            ):
                raise TypeError("tickers is not a list of strings")
            return body

        return self._once(
            path,
            lambda: self._call(
                endpoint="/submissions/CIK##########.json",
                method="GET",
                url=self._data(path),
                parse=parse,
            ),
        )

    def _filing_transactions(self, cik: str, filing: Form4Filing) -> list[InsiderTransaction]:
        path = (
            f"/Archives/edgar/data/{int(cik)}/{filing.accession_number.replace('-', '')}/"
            f"{filing.raw_document}"
        )
        rows = self._once(
            path,
            lambda: self._call(
                endpoint="/Archives/edgar/data/{cik}/{accession}/form4.xml",
                method="GET",
                url=self._www(path),
                parse=lambda r: parse_form4(r.text),
            ),
        )
        if rows is None:
            raise LookupError(path)
        return [
            replace(t, accession_number=filing.accession_number, filing_date=filing.filing_date)
            for t in rows
        ]

    def insider_transactions(
        self,
        *,
        ticker: str | None = None,
        cik: str | None = None,
        owner_name: str | None = None,
    ) -> InsiderReport | None:
        """Form 4 transactions at the issuer (by `cik`, else `ticker`), only the reporting
        owner `owner_name` when given; None when the ticker or CIK is unknown to the SEC."""
        if not cik and not ticker:
            raise ValueError("EDGAR needs a ticker or a CIK")
        company_name = None
        if not cik:
            entry = self._ticker_entry(ticker or "")
            if entry is None:
                return None
            cik, company_name = entry
        cik = normalize_cik(cik)
        subs = self.submissions(cik)
        if subs is None:
            return None
        filings = form4_filings(subs)[: self.max_filings]
        found: list[InsiderTransaction] = []
        skipped = 0
        # Filings are fetched in parallel, the shared limiter keeps the whole at <= 10/s.
        with ThreadPoolExecutor(max_workers=FETCH_WORKERS) as pool:
            results = list(pool.map(lambda f: self._safe_fetch(cik, f), filings))
        for rows in results:
            if rows is None:
                skipped += 1
                continue
            for t in rows:
                names = (t.owner_name, *t.other_owner_names)
                if owner_name and not any(owner_matches(n, owner_name) for n in names):
                    continue
                found.append(t)
        found.sort(
            key=lambda t: (t.transaction_date or date.min, t.filing_date or date.min),
            reverse=True,
        )
        return InsiderReport(
            cik=cik,
            company_name=subs.get("name") or company_name,
            ticker=(subs.get("tickers") or [ticker])[0]
            if (subs.get("tickers") or ticker)
            else None,
            owner_name=owner_name,
            transactions=tuple(found[: self.max_transactions]),
            total_found=len(found),
            capped=len(found) > self.max_transactions,
            filings_examined=len(filings),
            filings_skipped=skipped,
        )

    def _safe_fetch(self, cik: str, filing: Form4Filing) -> list[InsiderTransaction] | None:
        # One missing or garbled filing must not sink the report; outages still raise.
        try:
            return self._filing_transactions(cik, filing)
        except (LookupError, MalformedResponseError) as exc:
            self.log.warning("edgar: skipped filing %s: %s", filing.accession_number, exc)
            return None
        except ProviderAuthError as exc:
            # Archives sit on S3: a missing document answers 403 AccessDenied (XML), unlike the
            # HTML block page an undeclared User-Agent gets, which must still fail the call.
            if "AccessDenied" not in str(exc):
                raise
            self.log.warning("edgar: filing %s not found (403)", filing.accession_number)
            return None
