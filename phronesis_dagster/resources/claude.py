"""Claude prospect summaries through the official `anthropic` SDK, as structured output.

`messages.parse(output_format=ProspectSummary)` sends the pydantic model as a JSON schema in
`output_config.format` and validates the answer; a body that does not fit the schema becomes a
`MalformedResponseError`. Retries are the SDK's own (`max_retries`, which honours
`retry-after`), not tenacity stacked on top; the shared rate limiter and per-attempt usage
counting hook into the SDK's HTTP client (an `httpx2.Client` - SDK 2.x refuses plain httpx).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import logging
import re
import ssl
import threading
from datetime import date, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field, PrivateAttr, ValidationError

from phronesis_dagster.resources.call_guard import CallGuard, ProviderCall
from phronesis_dagster.resources.contract import (
    EnrichmentProvider,
    ProspectInput,
    ProviderAnswer,
)
from phronesis_dagster.resources.errors import (
    MalformedResponseError,
    ProviderAnswerError,
    ProviderAuthError,
    ProviderError,
    ProviderRequestError,
    ProviderUnavailableError,
)
from phronesis_dagster.resources.http_client import (
    CONNECT_TIMEOUT_SECONDS,
    ProviderResource,
    RateLimit,
)
from phronesis_dagster.resources.transport import transport_for

if TYPE_CHECKING:
    import anthropic
    import httpx2

logger = logging.getLogger(__name__)

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
MESSAGES_PATH = "/v1/messages"
DEFAULT_MODEL = "claude-haiku-4-5"
CLAUDE_TIMEOUT_SECONDS = 120.0
MAX_OUTPUT_TOKENS = 2048
# Claude Haiku 4.5 list prices, USD per million tokens.
HAIKU_INPUT_PRICE_PER_MTOK = 1.0
HAIKU_OUTPUT_PRICE_PER_MTOK = 5.0
MAX_SOURCE_CHARS = 60_000

SYSTEM_PROMPT = (
    "You brief a sales representative on a prospect before a first conversation. Use only the "
    "facts in the sources; never invent numbers, employers or events. Wealth signals are "
    "concrete evidence of personal wealth or liquidity (insider sales, exits, funding, large "
    "gifts, board seats). Talking points are short, specific conversation openers."
)


class ProspectSummary(BaseModel):
    """The structured answer Claude must return."""

    model_config = {"extra": "forbid"}

    summary: str = Field(description="Three to five sentences on who the prospect is.")
    key_facts: list[str] = Field(description="Verifiable facts from the sources.")
    wealth_signals: list[str] = Field(description="Evidence of wealth or liquidity.")
    talking_points: list[str] = Field(description="Openers for the first conversation.")


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


# -- privacy: nothing that tells how to reach a person goes to the LLM ------------------------
#
# Two layers, both applied to every prompt in `build_prompt`:
# 1. An allow-list of field names, at any depth of the prospect and the sources: a field (and
#    everything under it) reaches Claude only if its name is listed. Emails, phones, LinkedIn
#    URLs, addresses, provider ids and any field a provider adds later are left out by default.
# 2. Every string that passes is scrubbed of email addresses, phone numbers and LinkedIn profile
#    links: free text (web highlights, headlines, titles) can quote them.
PROMPT_FIELDS: frozenset[str] = frozenset(
    {
        # the prospect row (what describes the person professionally)
        "name", "title", "company", "location", "is_public_company", "company_ticker",
        # Apollo people/match
        "first_name", "last_name", "headline", "seniority", "city", "state", "country",
        "organization_name", "organization_domain", "organization_employees",
        "organization_industry", "employment_history", "start_date", "end_date", "current",
        # ContactOut (its emails and phones are exactly what is left out)
        "full_name", "industry", "company_name", "company_domain",
        # Exa web mentions
        "mentions", "url", "published_date", "highlights", "wealth_signals", "kind", "text",
        # EDGAR Form 4 insider transactions
        "ticker", "transactions", "total_found", "capped", "transaction_date", "code",
        "shares", "price_per_share", "acquired_disposed", "shares_owned_after",
        "direct_indirect", "nature_of_ownership", "is_derivative", "security_title",
        "owner_name", "is_director", "is_officer", "officer_title", "is_ten_percent_owner",
        "issuer_name", "issuer_ticker", "other_owner_names", "filing_date",
    }
)  # fmt: skip
EMAIL_REDACTED = "[email removed]"
PHONE_REDACTED = "[phone removed]"
PROFILE_REDACTED = "[profile link removed]"
# name@host.tld, also URL-encoded (%40) and the "name [at] host [dot] tld" spellings.
_EMAIL = re.compile(
    r"[\w.%+-]+\s*(?:@|%40|[\[(]\s*at\s*[\])])\s*[\w-]+(?:\s*(?:\.|[\[(]\s*dot\s*[\])])\s*[\w-]+)+",
    re.IGNORECASE,
)
# A phone-shaped run: optional +CC / 00CC, optional (area), then 2-4 digit groups joined by at
# most one space, dot or dash; `_is_phone` then judges the digit count.
_PHONE_CANDIDATE = re.compile(
    r"(?<![\w+])(?:(?:\+|00)\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){1,4}"
    r"(?![\w])"
)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_YEAR_RANGE = re.compile(r"^(?:19|20)\d{2}(?:\s*[\s.-]\s*(?:19|20)\d{2})+$")
_LINKEDIN_PROFILE = re.compile(
    r"(?:https?://)?(?:[\w-]+\.)?linkedin\.com/(?:in|pub)/[^\s\"'<>)]*", re.IGNORECASE
)


def _is_phone(candidate: str) -> bool:
    text = candidate.strip()
    digits = sum(c.isdigit() for c in text)
    if not 7 <= digits <= 15 or _ISO_DATE.match(text) or _YEAR_RANGE.match(text):
        return False
    # A bare digit run is a phone only when long enough to be one with its area code; short
    # ones need a `+` or a separator, so amounts, years and ids are left alone.
    separated = any(c in text for c in " ().-")
    return text.startswith(("+", "00")) or digits >= 10 or separated


# What each pattern needs to match at all, looked for first (most strings of a prompt have
# none of them): an email `@`, `%40`, or the `(at)` / `[at]` spellings' bracket; "linkedin" in
# any case (the same case-insensitive match as the pattern's); seven digits with at most two
# other characters between any two of them (a phone is 7-15 digits, and inside a phone-shaped
# run digits are apart by at most a bracket and a separator, "+1 (415) 555-0134").
_EMAIL_SIGNS = ("@", "%40", "(", "[")
_LINKEDIN = re.compile("linkedin", re.IGNORECASE)
_SEVEN_DIGITS = re.compile(r"\d(?:\D{0,2}\d){6}")
# Scrubbed strings kept per process: a batch's prompts repeat names, companies, dates, titles.
SCRUB_CACHE_SIZE = 8192


def _phone_or_kept(match: re.Match[str]) -> str:
    return PHONE_REDACTED if _is_phone(match.group(0)) else match.group(0)


@functools.lru_cache(maxsize=SCRUB_CACHE_SIZE)
def scrub_contact_details(text: str) -> str:
    """`text` without email addresses, phone numbers or LinkedIn profile links. A pattern is
    run only on text that has what it needs to match."""
    if any(sign in text for sign in _EMAIL_SIGNS):
        text = _EMAIL.sub(EMAIL_REDACTED, text)
    if _LINKEDIN.search(text):
        text = _LINKEDIN_PROFILE.sub(PROFILE_REDACTED, text)
    if _SEVEN_DIGITS.search(text):
        text = _PHONE_CANDIDATE.sub(_phone_or_kept, text)
    return text


def _allowed(value: Any) -> Any:
    """`value` with only `PROMPT_FIELDS` kept at every depth, strings scrubbed; what is not
    JSON data yet (dataclasses, models, dates) is made JSON first (`_jsonable`)."""
    if isinstance(value, str):
        return scrub_contact_details(value)
    if isinstance(value, dict):
        return {
            k: kept
            for k, v in value.items()
            if k in PROMPT_FIELDS and (kept := _allowed(v)) not in (None, "", [], {})
        }
    if isinstance(value, list | tuple | set):
        return [kept for v in value if (kept := _allowed(v)) not in (None, "", [], {})]
    if isinstance(value, BaseModel | date) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    ):
        return _allowed(_jsonable(value))
    return value


def prompt_data(prospect: dict, sources: dict) -> dict[str, Any]:
    """What Claude may see of a prospect: allow-listed fields, contact details scrubbed."""
    usable = {
        scrub_contact_details(str(k)): _allowed(v) for k, v in sources.items() if v is not None
    }
    return {
        "prospect": _allowed(prospect),
        "sources": {k: v for k, v in usable.items() if v},
    }


def build_prompt(prospect: dict, sources: dict) -> str:
    """The user message: the prospect and every source that succeeded, as JSON, with no way to
    reach the person in it (see `PROMPT_FIELDS` and `scrub_contact_details`). Compact JSON:
    fewer tokens than indented, and the C encoder (an indent takes the pure-Python one)."""
    text = json.dumps(prompt_data(prospect, sources), separators=(",", ":"))
    if len(text) > MAX_SOURCE_CHARS:
        text = text[:MAX_SOURCE_CHARS] + "\n... (truncated)"
    return "Summarise this prospect for a sales rep.\n\n" + text


@functools.cache
def _output_schema() -> dict[str, Any]:
    """ProspectSummary as the JSON schema structured outputs take (the SDK's own transform,
    what `messages.parse(output_format=...)` sends)."""
    import anthropic

    return anthropic.transform_schema(ProspectSummary)


def summary_input(prospect: ProspectInput) -> dict[str, object]:
    """What the summary is told about the person: only what describes them professionally; no
    email or phone goes to the LLM."""
    return {
        "name": prospect.name,
        "title": prospect.title,
        "company": prospect.company,
        "location": prospect.location,
        "is_public_company": prospect.is_public_company,
        "company_ticker": prospect.company_ticker,
    }


def _import_sdk() -> tuple[ModuleType, ModuleType]:
    """`import anthropic` (and its httpx2) with the garbage collector paused. The SDK's import
    defines hundreds of pydantic models, and the collections it triggers walk them again and
    again: with the code location loaded and frozen, 1.34-1.65 s of CPU with the collector on,
    1.09-1.30 s paused (two runs each, 2026-12-03). Nothing made by an import is garbage."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        import anthropic
        import httpx2
    finally:
        if enabled:
            gc.enable()
    return anthropic, httpx2


@functools.cache
def _sdk_ssl_context() -> ssl.SSLContext:
    """The TLS context of the SDK's clients in this process, built once, as `httpx2` builds it
    for `verify=True` (loading the CA bundle is 20-40 ms of CPU per client otherwise)."""
    _, httpx2 = _import_sdk()
    return httpx2.create_ssl_context()


class ClaudeResource(ProviderResource, EnrichmentProvider):
    """Anthropic Claude: a prospect summary (summary, key facts, wealth signals, talking points)
    from whatever enrichment sources succeeded, validated against a pydantic schema (structured
    output). Cost = tokens x the configured prices, recorded in `api_usage`. Key from
    `ANTHROPIC_API_KEY`; retries are the SDK's own."""

    PROVIDER: ClassVar[str] = "claude"
    SOURCE: ClassVar[str] = "claude"
    ASSET_KEY: ClassVar[str] = "ai_summary"
    # The structured summary; its prose also goes to the web app's TEXT column `ai_summary`.
    DATA_COLUMN: ClassVar[str] = "ai_summary_structured"
    KIND: ClassVar[str] = "anthropic"
    DESCRIPTION: ClassVar[str] = (
        "A Claude summary (summary, key facts, wealth signals, talking points) of each prospect "
        "of the batch, made from the sources that returned data -> `prospects.ai_summary` (the "
        "prose the web app shows) and `prospects.ai_summary_structured` (key facts, talking "
        "points, sources). Started for a prospect as soon as its data sources are in; skipped "
        "when no source found anything; not repeated on a re-run unless new sources arrived."
    )
    KEY_ENV: ClassVar[str] = "ANTHROPIC_API_KEY"
    LIVE_URLS: ClassVar[tuple[str, ...]] = (ANTHROPIC_BASE_URL,)
    EMULATOR_PREFIXES: ClassVar[tuple[str, ...]] = ("/anthropic",)
    EMULATOR: ClassVar[str] = "phronesis_dagster.emulator.anthropic:AnthropicProvider"
    SUMMARIZES: ClassVar[bool] = True
    # Anthropic limits per account tier; 1,000 requests/min is a common tier (the recorded
    # `anthropic-ratelimit-requests-limit: 1000` header in fixtures/anthropic).
    DEFAULT_RPS: ClassVar[int] = 16
    # Claude: our monthly budget of summaries.
    MONTHLY_QUOTA: ClassVar[int] = 50_000
    DEFAULT_LIMITS: ClassVar[dict[str, RateLimit]] = {"*": RateLimit(1000, 60)}

    api_key: str = Field(description="Anthropic API key (env ANTHROPIC_API_KEY).")
    base_url: str = Field(default=ANTHROPIC_BASE_URL)
    model: str = Field(default=DEFAULT_MODEL)
    max_output_tokens: int = Field(default=MAX_OUTPUT_TOKENS)
    timeout_seconds: float = Field(default=CLAUDE_TIMEOUT_SECONDS)
    input_price_per_mtok: float = Field(default=HAIKU_INPUT_PRICE_PER_MTOK)
    output_price_per_mtok: float = Field(default=HAIKU_OUTPUT_PRICE_PER_MTOK)

    _sdk: anthropic.Anthropic | None = PrivateAttr(default=None)  # built at the first use
    # The first calls of a batch arrive on several threads at once: one of them builds the client.
    _sdk_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    # The thread building it ahead of the first summary (`warm_up`), joined by `close`.
    _warming: threading.Thread | None = PrivateAttr(default=None)

    def validate_config(self) -> None:
        self._require_secret(self.api_key, self.KEY_ENV)

    def secrets(self) -> list[str]:
        return [self.api_key]

    def close(self) -> None:
        if self._warming is not None:
            # Not left importing while the run process shuts down.
            self._warming.join()
            self._warming = None
        if self._sdk is not None:
            self._sdk.close()
            self._sdk = None
        super().close()

    def warm_up(self) -> None:
        """Build the SDK client on a background thread now. The summaries come after a
        prospect's data sources, so importing the SDK (1.1-1.6 s of CPU) overlaps those calls
        instead of delaying the batch's first summary by as much: for a single-prospect
        request, a second or more of its click-to-done."""
        with self._sdk_lock:
            if self._sdk is not None or self._warming is not None:
                return
            self._warming = threading.Thread(
                target=self._warm, name="claude-sdk-warm-up", daemon=True
            )
            self._warming.start()

    def _warm(self) -> None:
        try:
            self.sdk  # noqa: B018 - builds it
        except Exception as exc:  # noqa: BLE001 - the first summary builds it again and fails
            logger.warning("building the anthropic client ahead of the summaries failed: %s", exc)

    @property
    def sdk(self) -> anthropic.Anthropic:
        with self._sdk_lock:
            return self._sdk or self._build_sdk()

    def _build_sdk(self) -> anthropic.Anthropic:
        # Imported on first use: importing the SDK costs over a second of CPU, which every
        # process that loads the code location (code server, daemon, the nightly usage and
        # quota runs) would otherwise pay without ever calling Claude.
        anthropic, httpx2 = _import_sdk()

        http = httpx2.Client(
            timeout=httpx2.Timeout(self.timeout_seconds, connect=CONNECT_TIMEOUT_SECONDS),
            verify=_sdk_ssl_context(),
            transport=transport_for(httpx2, _sdk_ssl_context()),
            event_hooks={"request": [self._on_request], "response": [self._on_response]},
        )
        self._sdk = anthropic.Anthropic(
            api_key=self.api_key,
            base_url=self.base_url,
            max_retries=self.max_retries,
            timeout=self.timeout_seconds,
            http_client=http,
        )
        return self._sdk

    # The SDK's attempts (first try and retries) belong to the guarded call of this thread:
    # each takes a slot of the shared limit ...
    def _on_request(self, request: httpx2.Request) -> None:
        call = CallGuard.current()
        if call is None:  # the SDK used outside `summarize_prospect`: still within the limit
            self.rate_limiter.acquire()
        else:
            call.attempt()
            # The slot is taken when the request goes on the wire (see `ProviderCall.on_wire`).
            request.extensions["trace"] = call.on_wire

    # ... and a failed attempt is written at once (the SDK may sleep before retrying it); the
    # answer that succeeds is written with its cost once it is parsed.
    def _on_response(self, response: httpx2.Response) -> None:
        status = response.status_code
        call = CallGuard.current()
        if call is None:
            return
        call.received()
        if status >= 400:
            call.answered("rate_limited" if status == 429 else "failure", http_status=status)
            call.flush()

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.input_price_per_mtok + output_tokens * self.output_price_per_mtok
        ) / 1_000_000

    @classmethod
    def skip_reason(cls, prospect: ProspectInput) -> str | None:
        return None if prospect.found else "no source returned data to summarize"

    def enrich(self, prospect: ProspectInput) -> ProviderAnswer:
        """The summary of one prospect from `prospect.found` (the sources that returned data),
        with the list of those sources (a re-run redoes it only when more have data)."""
        summary = self.summarize_prospect(
            prospect=summary_input(prospect), sources=dict(prospect.found)
        )
        data = summary.model_dump(mode="json")
        return ProviderAnswer({**data, "sources": sorted(prospect.found)})

    def summarize_prospect(self, *, prospect: dict, sources: dict) -> ProspectSummary:
        """A validated `ProspectSummary` of the prospect from the given sources."""
        self._ensure_ready()
        prompt = build_prompt(prospect, sources)
        with self.guard.call(MESSAGES_PATH) as call:
            try:
                # `messages.create` with the schema `messages.parse` would send, parsed here: a
                # truncated or refused answer is named by its stop_reason before anyone tries
                # to read half a JSON document as a summary. The raw answer's JSON is read as it
                # is: the SDK's Message models (built, then read for four fields) were an eighth
                # of a summary's CPU.
                raw = self.sdk.messages.with_raw_response.create(
                    model=self.model,
                    max_tokens=self.max_output_tokens,
                    system=SYSTEM_PROMPT,
                    messages=[{"role": "user", "content": prompt}],
                    output_config={"format": {"type": "json_schema", "schema": _output_schema()}},
                )
                message = json.loads(raw.http_response.content)
                if not isinstance(message, dict):
                    raise ValueError(f"the answer is a JSON {type(message).__name__}")
            except Exception as exc:  # noqa: BLE001 - translated, then settled by the guard
                error = self._translate(exc)
                if error is exc:
                    raise
                raise error from None
            cost = self._message_cost(message)
            self._check_stop_reason(message, call, cost)
            content = message.get("content")
            text = "".join(
                block.get("text") or ""
                for block in (content if isinstance(content, list) else ())
                if isinstance(block, dict) and block.get("type") == "text"
            )
            try:
                parsed = ProspectSummary.model_validate_json(text) if text else None
            except ValidationError as exc:
                call.answered("failure", http_status=200)
                raise MalformedResponseError(
                    self.PROVIDER,
                    "structured output does not fit ProspectSummary: "
                    f"{self._scrub(str(exc))[:300]}",
                    http_status=200,
                ) from None
            if parsed is None:
                call.answered("failure", http_status=200)
                raise MalformedResponseError(
                    self.PROVIDER,
                    f"no structured output (stop_reason={message.get('stop_reason')})",
                )
            call.finish("success", http_status=200, cost_usd=cost)
        return parsed

    def _message_cost(self, message: dict[str, Any]) -> float | None:
        """What the answer (the Messages API's JSON) cost: its token counts x the configured
        prices, if it says."""
        usage = message.get("usage")
        try:
            return self.cost_usd(int(usage["input_tokens"]), int(usage["output_tokens"]))
        except (KeyError, TypeError, ValueError):
            return None

    def _check_stop_reason(
        self, message: dict[str, Any], call: ProviderCall, cost: float | None
    ) -> None:
        """Raise `ProviderAnswerError` for an answer that ended without a whole summary:
        `max_tokens` (the structured output is cut off), `refusal` (Claude declined) or
        `model_context_window_exceeded`. Anthropic answered and charged the tokens, so the call
        is counted as a failure with its cost, and the breaker is told the provider is fine."""
        reason = message.get("stop_reason")
        if not isinstance(reason, str):
            return
        explain = {
            "max_tokens": f"answer cut off at max_tokens ({self.max_output_tokens}): the "
            "structured summary is incomplete, nothing stored",
            "refusal": "Claude declined to summarise this prospect (stop_reason=refusal)",
            "model_context_window_exceeded": "the prompt filled the model's context window",
        }.get(reason)
        if explain is None:
            return
        error = ProviderAnswerError(self.PROVIDER, explain, http_status=200)
        call.finish("failure", http_status=200, cost_usd=cost, failed=False)
        raise error

    def _translate(self, exc: Exception) -> Exception:
        import anthropic  # loaded already when the SDK raised this

        if isinstance(exc, ProviderError):
            return exc
        # Our own errors raised inside the SDK's HTTP hooks come back wrapped.
        if isinstance(exc.__cause__, ProviderError):
            return exc.__cause__
        # A timeout or lost connection: the guard records the attempt that got no answer.
        if isinstance(exc, anthropic.APITimeoutError):
            return ProviderUnavailableError(
                self.PROVIDER, f"timed out after {self.max_retries + 1} attempts"
            )
        if isinstance(exc, anthropic.APIConnectionError):
            return ProviderUnavailableError(
                self.PROVIDER, f"connection failed after {self.max_retries + 1} attempts"
            )
        if isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            detail = self._scrub(str(exc))[:200]
            if status in (401, 403):
                return ProviderAuthError(
                    self.PROVIDER, f"HTTP {status} (not retried): {detail}", http_status=status
                )
            if status in (408, 409, 429) or status >= 500:
                return ProviderUnavailableError(
                    self.PROVIDER,
                    f"HTTP {status} after {self.max_retries + 1} attempts: {detail}",
                    http_status=status,
                )
            return ProviderRequestError(
                self.PROVIDER, f"HTTP {status}: {detail}", http_status=status
            )
        if isinstance(exc, ValueError | json.JSONDecodeError):
            return MalformedResponseError(self.PROVIDER, f"unparseable response: {exc}"[:300])
        return exc
