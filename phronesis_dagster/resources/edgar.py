"""SEC EDGAR insider transactions of a person: issuer -> the person's own CIK (reporting owner)
-> the person's Forms 3/4/5 at that issuer -> parsed transactions.

No API key, but the SEC requires a declared User-Agent with a contact email and at most 10
requests per second. Over that it answers 403 "Request Rate Threshold Exceeded" (older reports:
429), with no Retry-After, and blocks the IP for about 10 minutes, longer while requests go on
(SEC "Accessing EDGAR Data", https://www.sec.gov/os/accessing-edgar-data; PROVIDERS.md section 3).
So that answer is never retried: it holds the shared EDGAR breaker open for every process until
the block is over.

Filed documents never change: they are kept in the app database (`sec_document_cache`) and the
insiders seen at an issuer in `sec_reporting_owners`, so a re-enrichment reads SEC once per person
(their submissions JSON, for new filings) instead of once per filing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import dagster as dg
import httpx
import sqlalchemy as sa
from pydantic import Field, PrivateAttr

from phronesis_dagster.db.sql_files import load_sql
from phronesis_dagster.db.statements import compile_statement, execute, execute_many, fetch_all
from phronesis_dagster.resources.contract import (
    EnrichmentProvider,
    ProspectInput,
    ProviderAnswer,
)
from phronesis_dagster.resources.edgar_form4 import (
    OWNERSHIP_FORMS,
    InsiderTransaction,
    OwnershipDocument,
    owner_matches,
    parse_ownership_document,
)
from phronesis_dagster.resources.errors import (
    CircuitOpenError,
    MalformedResponseError,
    ProviderConfigError,
    ProviderError,
)
from phronesis_dagster.resources.http_client import ProviderResource, json_body

SEC_WWW_BASE_URL = "https://www.sec.gov"
SEC_DATA_BASE_URL = "https://data.sec.gov"
TICKERS_PATH = "/files/company_tickers.json"
SEC_REQUESTS_PER_SECOND = 10
# SEC: "limited for 10 minutes", extended while requests continue. A hold a little longer than
# the block keeps the first probe after it from landing on a block that is still on.
SEC_BLOCK_SECONDS = 660.0
RATE_BLOCK_TITLE = "Request Rate Threshold Exceeded"
FORM4_TYPES = ("4", "4/A")
# Concurrent filing downloads; the shared limiter still caps the request rate.
FETCH_WORKERS = 4
# Issuer filings read, newest first, to find a person's own CIK when it is not cached yet.
OWNER_SCAN_FILINGS = 120
_XSL_PREFIX = re.compile(r"^xslF345X\d\d/")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ARCHIVES_ENDPOINT = "/Archives/edgar/data/{cik}/{accession}/{document}"
_SUBMISSIONS_ENDPOINT = "/submissions/CIK##########.json"
_PAGE_ENDPOINT = "/submissions/CIK##########-submissions-NNN.json"
# The caches' statements, run like every per-call statement (`db/statements.py`: a pooled
# psycopg connection, one round trip each) instead of through the SQLAlchemy engine.
_DOCUMENT_SELECT = compile_statement(sa.text(load_sql("sec_document_cache_select")))
_DOCUMENT_INSERT = compile_statement(sa.text(load_sql("sec_document_cache_insert")))
_OWNERS_SELECT = compile_statement(sa.text(load_sql("sec_reporting_owners_select")))
_OWNERS_UPSERT = compile_statement(sa.text(load_sql("sec_reporting_owners_upsert")))


class SecRateLimitBlock(ProviderError):
    """SEC answered its "Request Rate Threshold Exceeded" page: this IP is blocked."""


class SecDocumentMissing(ProviderError):
    """403 AccessDenied (S3 XML) for an Archives path: no such document, SEC is fine."""


@dataclass(frozen=True)
class Form4Filing:
    """One ownership filing (Form 3/4/5 or amendment) of a submissions list."""

    accession_number: str
    filing_date: date | None
    raw_document: str  # the ownershipDocument XML file name (XSL folder stripped)
    form: str = "4"


@dataclass(frozen=True)
class ReportingOwnerMatch:
    """The SEC filer behind a prospect: their own CIK and SEC's spelling of their name."""

    owner_cik: str
    owner_name: str
    from_cache: bool


@dataclass(frozen=True)
class InsiderReport:
    """Insider transactions at one issuer, newest first, capped (the UI shows "last N")."""

    cik: str
    company_name: str | None
    ticker: str | None
    owner_name: str | None  # the prospect's name asked for, if any
    transactions: tuple[InsiderTransaction, ...]
    total_found: int  # matching transactions in the examined filings, before the cap
    capped: bool  # True when transactions were cut to max_transactions
    filings_examined: int
    filings_skipped: int  # missing or unparseable filing documents
    owner_cik: str | None = None  # the reporting owner's own CIK (owner path)
    sec_owner_name: str | None = None  # SEC's spelling, "Last First M."
    filings_for_issuer: int = 0  # examined filings that were about this issuer
    label: str = ""  # "last 30 transactions (of 42 found)"
    documents_from_cache: int = 0
    documents_fetched: int = 0
    owner_from_cache: bool = False


def raw_form4_document(primary_document: str) -> str:
    """`xslF345X05/wk-form4_1.xml` (rendered HTML) -> `wk-form4_1.xml` (the raw XML)."""
    return _XSL_PREFIX.sub("", primary_document)


def _columns(block: dict[str, Any]) -> list[Form4Filing]:
    """Ownership filings of one `filings.recent` block or `filings.files` page (same arrays)."""
    forms = block["form"]
    accessions = block["accessionNumber"]
    dates = block["filingDate"]
    docs = block["primaryDocument"]
    if not (len(forms) == len(accessions) == len(dates) == len(docs)):
        raise ValueError("filings arrays have different lengths")
    filings = []
    for form, accession, filed, doc in zip(forms, accessions, dates, docs, strict=True):
        if form in OWNERSHIP_FORMS and doc:
            if not isinstance(accession, str) or not isinstance(doc, str):
                raise TypeError("accessionNumber and primaryDocument must be strings")
            if _has_control_characters(accession + doc):
                # They make the document's URL: httpx refuses it (InvalidURL) before any request.
                raise ValueError("accessionNumber or primaryDocument has control characters")
            filings.append(
                Form4Filing(
                    accession_number=accession,
                    filing_date=date.fromisoformat(filed) if filed else None,
                    raw_document=raw_form4_document(doc),
                    form=form,
                )
            )
    return filings


def _has_control_characters(text: str) -> bool:
    return any(c.isascii() and not c.isprintable() for c in text)


def _newest_first(filings: Iterable[Form4Filing]) -> list[Form4Filing]:
    return sorted(
        filings, key=lambda f: (f.filing_date or date.min, f.accession_number), reverse=True
    )


def ownership_filings(block: dict[str, Any]) -> list[Form4Filing]:
    """Forms 3/4/5 (and amendments) of a `filings.recent` block or a page, newest first."""
    return _newest_first(_columns(block))


def form4_filings(submissions: dict[str, Any]) -> list[Form4Filing]:
    """Form 4 filings (and 4/A) of a submissions JSON's recent list, newest first."""
    recent = submissions["filings"]["recent"]
    return [f for f in ownership_filings(recent) if f.form in FORM4_TYPES]


def normalize_cik(cik: str | int) -> str:
    digits = str(cik).strip().lstrip("0") or "0"
    if not digits.isdigit():
        raise ValueError(f"not a CIK: {cik!r}")
    return digits.zfill(10)


def is_rate_block(response: httpx.Response) -> bool:
    """SEC's over-the-limit answer: the "Request Rate Threshold Exceeded" HTML page (403, or
    429 in older reports). Not the 403 for an undeclared User-Agent, nor an S3 AccessDenied."""
    if response.status_code == 429:
        return True
    if response.status_code != 403:
        return False
    response.read()
    return RATE_BLOCK_TITLE.lower() in response.text.lower()


def is_missing_document(response: httpx.Response) -> bool:
    """The S3-style 403 `<Error><Code>AccessDenied</Code>` SEC's Archives answer for a path
    that does not exist (recorded real body; PROVIDERS.md section 3)."""
    if response.status_code != 403:
        return False
    response.read()
    return "<Code>AccessDenied</Code>" in response.text


def _parse_tickers(response: httpx.Response) -> dict[str, tuple[str, str]]:
    body = json_body(response)
    if not isinstance(body, dict):
        raise ValueError("expected an object")
    return {
        str(row["ticker"]).upper(): (normalize_cik(row["cik_str"]), str(row.get("title") or ""))
        for row in body.values()
    }


def _parse_submissions(response: httpx.Response) -> dict[str, Any]:
    body = json_body(response)
    if not isinstance(body, dict):
        raise ValueError("expected an object")
    _columns(body["filings"]["recent"])  # validates the parallel arrays
    files = body["filings"].get("files") or []
    if not isinstance(files, list) or not all(
        isinstance(f, dict) and isinstance(f.get("name"), str) for f in files
    ):
        raise TypeError("filings.files is not a list of {name: ...}")
    name, tickers = body.get("name"), body.get("tickers")
    if name is not None and not isinstance(name, str):
        raise TypeError("name is not a string")
    if tickers is not None and not (
        isinstance(tickers, list) and all(isinstance(t, str) for t in tickers)
    ):
        raise TypeError("tickers is not a list of strings")
    return body


def _parse_page(response: httpx.Response) -> list[Form4Filing]:
    body = json_body(response)
    if not isinstance(body, dict):
        raise ValueError("expected an object")
    return _columns(body)


def _parsed_document(response: httpx.Response) -> tuple[str, OwnershipDocument]:
    return response.text, parse_ownership_document(response.text)


class EdgarResource(ProviderResource, EnrichmentProvider):
    """SEC EDGAR: a person's insider transactions (Forms 3/4/5) at a public company.

    Given the issuer (ticker or CIK) and the person's name, finds the person's own SEC CIK (from
    the `reportingOwner` of one of the issuer's filings, remembered in the app database), reads
    their submissions (following `filings.files` pages) and their filings for that issuer. Each
    transaction keeps date, code and meaning (Purchase, Sale, Grant...), shares, price, value,
    acquired/disposed, shares owned after, direct/indirect, the Rule 10b5-1 flag and footnotes;
    derivative rows keep exercise price, expiry and underlying shares. Newest first, capped at
    `max_transactions` with the total found. Filed documents are cached in the app database.
    Needs `SEC_USER_AGENT` ("Company contact@email"); 10 requests/s across all runs, and SEC's
    over-the-limit block pauses every EDGAR call of every process until it is over."""

    PROVIDER: ClassVar[str] = "edgar"
    SOURCE: ClassVar[str] = "sec"
    ASSET_KEY: ClassVar[str] = "insider_enrichment"
    DATA_COLUMN: ClassVar[str] = "insider_data"
    KIND: ClassVar[str] = "sec"
    DESCRIPTION: ClassVar[str] = (
        "SEC EDGAR Form 4 insider transactions of each public-company prospect of the batch "
        "-> `prospects.insider_data`. Skipped for private companies."
    )
    KEY_ENV: ClassVar[str] = "SEC_USER_AGENT"
    LIVE_URLS: ClassVar[tuple[str, ...]] = (SEC_WWW_BASE_URL, SEC_DATA_BASE_URL)
    EMULATOR_PREFIXES: ClassVar[tuple[str, ...]] = ("/sec/www", "/sec/data")
    EMULATOR: ClassVar[str] = "phronesis_dagster.emulator.edgar:EdgarProvider"
    EMULATOR_CREDENTIAL: ClassVar[str] = "phronesis-dagster emulator demo@example.com"
    FANOUT: ClassVar[int] = FETCH_WORKERS
    DEFAULT_RPS: ClassVar[int] = SEC_REQUESTS_PER_SECOND
    # SEC has no monthly quota (only 10 requests/s): this is our own budget.
    MONTHLY_QUOTA: ClassVar[int] = 300_000

    user_agent: str = Field(
        description="Declared User-Agent with a contact email (env SEC_USER_AGENT), e.g. "
        "'Acme Sales Ops ops@acme.com'."
    )
    www_base_url: str = Field(default=SEC_WWW_BASE_URL, description="www.sec.gov host.")
    data_base_url: str = Field(default=SEC_DATA_BASE_URL, description="data.sec.gov host.")
    max_transactions: int = Field(default=30, description="Cap on transactions returned.")
    max_filings: int = Field(
        default=40,
        description="Most recent ownership filings examined (of the person, or of "
        "the issuer when no person is asked for).",
    )
    owner_scan_filings: int = Field(
        default=OWNER_SCAN_FILINGS,
        description="Issuer filings read, newest first, to find a person's own CIK.",
    )
    block_hold_seconds: float = Field(
        default=SEC_BLOCK_SECONDS,
        description="How long SEC's over-the-limit block stops every EDGAR call (SEC: ~10 min).",
    )
    use_document_cache: bool = Field(
        default=True, description="Keep filed documents in the app database across runs."
    )

    # Per resource instance, i.e. per run: a batch often holds several insiders of one company,
    # so each document is looked up once per run. Concurrent askers of the same document wait
    # for the one fetch in flight instead of repeating it.
    _memo: dict[str, Future] = PrivateAttr(default_factory=dict)
    _memo_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _counts: dict[str, int] = PrivateAttr(default_factory=dict)
    _counts_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

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

    @property
    def http(self) -> httpx.Client:
        client = ProviderResource.http.fget(self)  # type: ignore[attr-defined]
        hooks = client.event_hooks
        if self._on_response not in hooks["response"]:
            with self._counts_lock:
                if self._on_response not in hooks["response"]:
                    hooks["request"].append(self._on_request)
                    hooks["response"].append(self._on_response)
        return client

    def _on_request(self, request: httpx.Request) -> None:
        self._bump("sec_requests")

    def _on_response(self, response: httpx.Response) -> None:
        # Before the base class reads the status: its 403 is "credentials rejected" and its 429
        # is retried, and each retry would extend SEC's block.
        if is_rate_block(response):
            raise SecRateLimitBlock(
                self.PROVIDER,
                f"SEC refused with HTTP {response.status_code} {RATE_BLOCK_TITLE!r} "
                "(over its 10 requests/s fair-access limit)",
                http_status=response.status_code,
            )
        if is_missing_document(response):
            raise SecDocumentMissing(
                self.PROVIDER, "403 AccessDenied: no such document", http_status=403
            )

    # -- counters (per run, for the run's metadata) ------------------------------------------

    def _bump(self, name: str, by: int = 1) -> None:
        with self._counts_lock:
            self._counts[name] = self._counts.get(name, 0) + by

    def run_counters(self) -> dict[str, int]:
        """The run metadata's SEC figures (`cache_stats()`) and the limiter's."""
        return {**super().run_counters(), **self.cache_stats()}

    def cache_stats(self) -> dict[str, int]:
        """This run's SEC traffic: `sec_requests` (HTTP requests sent), `sec_document_cache_hits`
        / `sec_document_cache_misses` (filed documents read from the app database / fetched),
        `sec_owner_cache_hits` (people whose CIK was already known)."""
        keys = (
            "sec_requests",
            "sec_document_cache_hits",
            "sec_document_cache_misses",
            "sec_owner_cache_hits",
        )
        with self._counts_lock:
            return {k: self._counts.get(k, 0) for k in keys}

    # -- plumbing ----------------------------------------------------------------------------

    def _www(self, path: str) -> str:
        return self.www_base_url.rstrip("/") + path

    def _data(self, path: str) -> str:
        return self.data_base_url.rstrip("/") + path

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

    def _get(self, endpoint: str, url: str, parse: Callable[[httpx.Response], Any]) -> Any:
        """One GET through the shared machinery; SEC's block becomes a held-open breaker."""
        try:
            return self._call(endpoint=endpoint, method="GET", url=url, parse=parse)
        except SecRateLimitBlock as exc:
            raise self._hold_for_block(endpoint, exc) from None

    def _hold_for_block(self, endpoint: str, exc: SecRateLimitBlock) -> CircuitOpenError:
        until = datetime.now(UTC) + timedelta(seconds=self.block_hold_seconds)
        reason = (
            f"SEC blocked this IP for exceeding its 10 requests/s fair-access limit (HTTP "
            f"{exc.http_status} {RATE_BLOCK_TITLE!r}); every EDGAR call paused until "
            f"{until:%Y-%m-%d %H:%M:%S} UTC"
        )
        try:
            self.breaker.hold_open(until, reason)
        except Exception as err:  # noqa: BLE001 - the refusal is still reported to the caller
            self.log.warning("edgar: could not hold the breaker open: %s", err)
        self.usage.record(self.PROVIDER, endpoint, "rate_limited", http_status=exc.http_status)
        self.log.warning("edgar: %s", reason)
        return CircuitOpenError(self.PROVIDER, reason)

    # -- issuers -----------------------------------------------------------------------------

    def cik_for_ticker(self, ticker: str) -> str | None:
        """The zero-padded 10-digit CIK of `ticker`, or None when the SEC does not list it."""
        entry = self._ticker_entry(ticker)
        return entry[0] if entry else None

    def _ticker_entry(self, ticker: str) -> tuple[str, str] | None:
        tickers = self._once(
            TICKERS_PATH,
            lambda: self._get(TICKERS_PATH, self._www(TICKERS_PATH), _parse_tickers) or {},
        )
        return tickers.get(ticker.strip().upper())

    def submissions(self, cik: str) -> dict[str, Any] | None:
        """The submissions JSON of a CIK (issuer or person); None when SEC has no such entity."""
        path = f"/submissions/CIK{normalize_cik(cik)}.json"
        return self._once(
            path, lambda: self._get(_SUBMISSIONS_ENDPOINT, self._data(path), _parse_submissions)
        )

    def _page(self, name: str) -> list[Form4Filing]:
        if not re.fullmatch(r"CIK\d{10}-submissions-\d{3}\.json", name):
            raise MalformedResponseError(self.PROVIDER, f"unexpected filings.files name {name!r}")
        path = f"/submissions/{name}"
        return self._once(
            path, lambda: self._get(_PAGE_ENDPOINT, self._data(path), _parse_page) or []
        )

    def filings_of(self, cik: str, *, limit: int) -> tuple[dict[str, Any], list[Form4Filing]]:
        """A CIK's submissions and up to `limit` of its ownership filings, newest first,
        reading older `filings.files` pages while the recent list has fewer than `limit`."""
        subs = self.submissions(cik)
        if subs is None:
            raise LookupError(cik)
        filings = ownership_filings(subs["filings"]["recent"])
        for page in subs["filings"].get("files") or []:
            if len(filings) >= limit:
                break
            filings.extend(f for f in self._page(page["name"]) if f not in filings)
        return subs, _newest_first(filings)[:limit]

    # -- documents ---------------------------------------------------------------------------

    def _cached_document(self, accession: str, document: str) -> str | None:
        if not self.use_document_cache:
            return None
        try:
            row = execute(
                self.app_db.database_url,
                _DOCUMENT_SELECT,
                {"accession_number": accession, "document": document},
            )
            return None if row is None else row[0]
        except Exception as exc:  # noqa: BLE001 - a cache outage must not stop enrichment
            self.log.warning("edgar: document cache unavailable (%s); asking SEC", exc)
            return None

    def _store_document(self, accession: str, document: str, content: str) -> None:
        if not self.use_document_cache:
            return
        try:
            execute(
                self.app_db.database_url,
                _DOCUMENT_INSERT,
                {
                    "accession_number": accession,
                    "document": document,
                    "content": content,
                    "content_type": "application/xml",
                    "size_bytes": len(content.encode("utf-8")),
                },
            )
        except Exception as exc:  # noqa: BLE001
            self.log.warning("edgar: document %s/%s not cached: %s", accession, document, exc)

    def ownership_document(
        self, cik: str, filing: Form4Filing
    ) -> tuple[OwnershipDocument, bool] | None:
        """The parsed ownershipDocument of a filing and whether it came from the app database;
        None when SEC has no such document (S3 answers 403 AccessDenied for a missing key)."""

        def load() -> tuple[OwnershipDocument, bool] | None:
            accession, document = filing.accession_number, filing.raw_document
            cached = self._cached_document(accession, document)
            if cached is not None:
                try:
                    parsed = parse_ownership_document(cached)
                except ValueError:
                    parsed = None  # a stored body we cannot read: fetch it again
                if parsed is not None:
                    self._bump("sec_document_cache_hits")
                    return parsed, True
            path = f"/Archives/edgar/data/{int(cik)}/{accession.replace('-', '')}/{document}"
            try:
                fetched = self._get(_ARCHIVES_ENDPOINT, self._www(path), _parsed_document)
            except SecDocumentMissing:
                # Archives sit on S3: a missing document answers 403 AccessDenied (XML), unlike
                # the HTML page an undeclared User-Agent gets, which still fails the call.
                self.usage.record(self.PROVIDER, _ARCHIVES_ENDPOINT, "not_found", http_status=403)
                fetched = None
            self._bump("sec_document_cache_misses")
            if fetched is None:
                return None
            text, parsed = fetched
            self._store_document(accession, document, text)
            return parsed, False

        return self._once(f"doc:{filing.accession_number}/{filing.raw_document}", load)

    def _safe_document(
        self, cik: str, filing: Form4Filing
    ) -> tuple[OwnershipDocument, bool] | None:
        # One missing or garbled filing must not sink the report; outages and blocks still raise.
        try:
            return self.ownership_document(cik, filing)
        except MalformedResponseError as exc:
            self.log.warning("edgar: skipped filing %s: %s", filing.accession_number, exc)
            return None

    def _safe_fetch(self, cik: str, filing: Form4Filing) -> list[InsiderTransaction] | None:
        """The transactions of one filing (stamped with accession and date), None if missing."""
        found = self._safe_document(cik, filing)
        if found is None:
            return None
        return _stamped(found[0], filing)

    def _documents(
        self, cik: str, filings: list[Form4Filing]
    ) -> list[tuple[Form4Filing, tuple[OwnershipDocument, bool] | None]]:
        if len(filings) < 2:  # nothing to overlap: no pool's threads to start and join
            return [(f, self._safe_document(cik, f)) for f in filings]
        # Filings are fetched in parallel, the shared limiter keeps the whole at <= 10/s.
        with ThreadPoolExecutor(max_workers=min(FETCH_WORKERS, len(filings))) as pool:
            docs = list(pool.map(lambda f: self._safe_document(cik, f), filings))
        return list(zip(filings, docs, strict=True))

    # -- reporting owners --------------------------------------------------------------------

    def _known_owners(self, issuer_cik: str) -> list[tuple[str, str]]:
        try:
            rows = fetch_all(self.app_db.database_url, _OWNERS_SELECT, {"issuer_cik": issuer_cik})
        except Exception as exc:  # noqa: BLE001
            self.log.warning("edgar: reporting-owner cache unavailable (%s)", exc)
            return []
        return [(str(owner_cik), str(owner_name)) for owner_cik, owner_name, _ in rows]

    def _remember_owners(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            execute_many(self.app_db.database_url, _OWNERS_UPSERT, rows)
        except Exception as exc:  # noqa: BLE001
            self.log.warning("edgar: reporting owners not cached: %s", exc)

    def resolve_owner(self, issuer_cik: str, name: str) -> ReportingOwnerMatch | None:
        """The person `name` as a reporting owner of the issuer: their own CIK, from the app
        database when a run saw them before, else from the `reportingOwner` entries of the
        issuer's ownership filings (newest first; every owner seen is remembered). None when
        no filing of the issuer names them."""
        issuer_cik = normalize_cik(issuer_cik)
        known = [
            (owner_cik, owner_name)
            for owner_cik, owner_name in self._known_owners(issuer_cik)
            if owner_matches(owner_name, name)
        ]
        if len(known) > 1:
            # Namesakes at one issuer: the name alone cannot tell them apart; the most
            # recently active one is taken.
            self.log.warning(
                "edgar: %d reporting owners of %s match one name", len(known), issuer_cik
            )
        if known:
            self._bump("sec_owner_cache_hits")
            return ReportingOwnerMatch(*known[0], from_cache=True)
        subs = self.submissions(issuer_cik)
        if subs is None:
            return None
        filings = ownership_filings(subs["filings"]["recent"])[: self.owner_scan_filings]
        step = FETCH_WORKERS * 2
        for start in range(0, len(filings), step):
            seen: dict[str, dict[str, Any]] = {}
            match: ReportingOwnerMatch | None = None
            for filing, found in self._documents(issuer_cik, filings[start : start + step]):
                if found is None:
                    continue
                for owner in found[0].owners:
                    if not owner.cik or not owner.name:
                        continue
                    owner_cik = normalize_cik(owner.cik)
                    row = seen.setdefault(
                        owner_cik,
                        {
                            "issuer_cik": issuer_cik,
                            "owner_cik": owner_cik,
                            "owner_name": owner.name,
                            "last_filing_date": filing.filing_date,
                        },
                    )
                    last = row["last_filing_date"]
                    if filing.filing_date and (last is None or filing.filing_date > last):
                        row.update(owner_name=owner.name, last_filing_date=filing.filing_date)
                    if match is None and owner_matches(owner.name, name):
                        match = ReportingOwnerMatch(owner_cik, owner.name, from_cache=False)
            self._remember_owners(list(seen.values()))
            if match is not None:
                return match
        return None

    # -- the report --------------------------------------------------------------------------

    @classmethod
    def skip_reason(cls, prospect: ProspectInput) -> str | None:
        if not prospect.is_public_company:
            return "private company: no SEC insider filings"
        if not (prospect.company_ticker or prospect.company_cik):
            return "public company without a ticker or CIK"
        return None

    @classmethod
    def connection_fields(cls, urls: tuple[str, ...], credential: str | dg.EnvVar) -> dict:
        return {"user_agent": credential, "www_base_url": urls[0], "data_base_url": urls[1]}

    def enrich(self, prospect: ProspectInput) -> ProviderAnswer:
        """The prospect's insider transactions at their company; none is `not_found`."""
        found = self.insider_transactions(
            ticker=prospect.company_ticker, cik=prospect.company_cik, owner_name=prospect.name
        )
        return ProviderAnswer.of(found if found is not None and found.transactions else None)

    def insider_transactions(
        self,
        *,
        ticker: str | None = None,
        cik: str | None = None,
        owner_name: str | None = None,
    ) -> InsiderReport | None:
        """The insider transactions of `owner_name` at the issuer (by `cik`, else `ticker`),
        found through the person's own filings; without `owner_name`, every insider's at the
        issuer. None when the issuer is unknown to SEC; a report without transactions when no
        filing of the issuer names the person."""
        if not cik and not ticker:
            raise ValueError("EDGAR needs a ticker or a CIK")
        company_name = None
        if not cik:
            entry = self._ticker_entry(ticker or "")
            if entry is None:
                return None
            cik, company_name = entry
        cik = normalize_cik(cik)
        if not owner_name:
            return self._issuer_report(cik, ticker, company_name)
        owner = self.resolve_owner(cik, owner_name)
        if owner is None:
            if self.submissions(cik) is None:
                return None  # SEC knows no such issuer
            # The issuer is real, but none of its filings names the person: nothing to show.
            return self._build_report(
                cik=cik,
                company_name=company_name or (self.submissions(cik) or {}).get("name"),
                ticker=ticker,
                owner_name=owner_name,
                found=[],
                filings_examined=0,
                filings_skipped=0,
                owner=None,
            )
        try:
            _, filings = self.filings_of(owner.owner_cik, limit=self.max_filings)
        except LookupError:
            return None
        found: list[InsiderTransaction] = []
        skipped = for_issuer = cached = fetched = 0
        issuer_name = issuer_ticker = None
        newest = None
        for filing, doc in self._documents(owner.owner_cik, filings):
            if doc is None:
                skipped += 1
                continue
            parsed, from_cache = doc
            cached += from_cache
            fetched += not from_cache
            if not parsed.issuer_cik or normalize_cik(parsed.issuer_cik) != cik:
                continue  # the same person's filings at another company
            for_issuer += 1
            issuer_name = issuer_name or parsed.issuer_name
            issuer_ticker = issuer_ticker or parsed.issuer_ticker
            newest = max(filter(None, (newest, filing.filing_date)), default=None)
            # A joint filing lists several owners; its rows are the person's when they are one.
            if any(_is_owner(o, owner, owner_name) for o in parsed.owners):
                found.extend(_stamped(parsed, filing))
        if newest:
            self._remember_owners(
                [
                    {
                        "issuer_cik": cik,
                        "owner_cik": owner.owner_cik,
                        "owner_name": owner.owner_name,
                        "last_filing_date": newest,
                    }
                ]
            )
        return self._build_report(
            cik=cik,
            company_name=issuer_name or company_name,
            ticker=issuer_ticker or ticker,
            owner_name=owner_name,
            found=found,
            filings_examined=len(filings),
            filings_skipped=skipped,
            owner=owner,
            filings_for_issuer=for_issuer,
            documents_from_cache=cached,
            documents_fetched=fetched,
        )

    def _issuer_report(
        self, cik: str, ticker: str | None, company_name: str | None
    ) -> InsiderReport | None:
        """Every insider's Form 4 transactions among the issuer's newest `max_filings`."""
        subs = self.submissions(cik)
        if subs is None:
            return None
        filings = form4_filings(subs)[: self.max_filings]
        found: list[InsiderTransaction] = []
        skipped = cached = fetched = 0
        for filing, doc in self._documents(cik, filings):
            if doc is None:
                skipped += 1
                continue
            cached += doc[1]
            fetched += not doc[1]
            found.extend(_stamped(doc[0], filing))
        tickers = subs.get("tickers") or ([ticker] if ticker else [])
        return self._build_report(
            cik=cik,
            company_name=subs.get("name") or company_name,
            ticker=tickers[0] if tickers else None,
            owner_name=None,
            found=found,
            filings_examined=len(filings),
            filings_skipped=skipped,
            owner=None,
            filings_for_issuer=len(filings) - skipped,
            documents_from_cache=cached,
            documents_fetched=fetched,
        )

    def _build_report(
        self,
        *,
        found: list[InsiderTransaction],
        owner: ReportingOwnerMatch | None,
        **fields: Any,
    ) -> InsiderReport:
        found.sort(
            key=lambda t: (t.transaction_date or date.min, t.filing_date or date.min),
            reverse=True,
        )
        shown = found[: self.max_transactions]
        label = f"last {len(shown)} transaction{'' if len(shown) == 1 else 's'}"
        if not shown:
            label = "no transactions found"
        if len(found) > len(shown):
            label += f" (of {len(found)} found)"
        return InsiderReport(
            transactions=tuple(shown),
            total_found=len(found),
            capped=len(found) > self.max_transactions,
            owner_cik=owner.owner_cik if owner else None,
            sec_owner_name=owner.owner_name if owner else None,
            owner_from_cache=bool(owner and owner.from_cache),
            label=label,
            **fields,
        )


def _is_owner(owner: Any, match: ReportingOwnerMatch, name: str) -> bool:
    if owner.cik and normalize_cik(owner.cik) == match.owner_cik:
        return True
    return owner_matches(owner.name, name)


def _stamped(document: OwnershipDocument, filing: Form4Filing) -> list[InsiderTransaction]:
    return [
        replace(t, accession_number=filing.accession_number, filing_date=filing.filing_date)
        for t in document.transactions
    ]
