"""Exa web search (`POST /search`): mentions of a prospect and wealth signals in them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from pydantic import Field

from phronesis_dagster.resources.contract import (
    EnrichmentProvider,
    ProspectInput,
    ProviderAnswer,
)
from phronesis_dagster.resources.errors import ProviderError
from phronesis_dagster.resources.http_client import (
    ProviderResource,
    RateLimit,
    json_body,
    optional_str,
)

EXA_BASE_URL = "https://api.exa.ai"
SEARCH_PATH = "/search"
# Characters of highlights per result. Exa's current contents option is
# `highlights: {maxCharacters, query}`; `numSentences` and `highlightsPerUrl` are deprecated
# (exa.ai/docs "Common Mistakes Reference"; changelog "highlights restored", 2025-11-26).
HIGHLIGHT_MAX_CHARACTERS = 600

# Exa's refusals by status, then tag (exa.ai/docs/reference/error-codes, "API Error Tags"; its
# errors are `{"requestId", "error", "tag"}`, and the page says to branch on the status first
# and read an unknown tag as detail). 402 = no credits to spend: every call is refused until
# someone tops up (NO_MORE_CREDITS) or raises the key's budget (API_KEY_BUDGET_EXCEEDED).
CREDIT_REFUSALS = {
    "NO_MORE_CREDITS": "out of credits (Exa's 402 NO_MORE_CREDITS: the account's credits are "
    "exhausted; top up at dashboard.exa.ai)",
    "API_KEY_BUDGET_EXCEEDED": "out of credits for this API key (Exa's 402 "
    "API_KEY_BUDGET_EXCEEDED: its spending budget is exceeded; the team admin raises it)",
}
# 403 with these tags: the key has no access to the endpoint or feature, so every call alike
# is refused.
NO_ACCESS_TAGS = frozenset({"ACCESS_DENIED", "FEATURE_DISABLED"})
# 403 with these tags: this request's content was blocked (robots.txt, moderation); other
# requests go through, so the breaker is not held.
CONTENT_BLOCK_TAGS = frozenset(
    {"ROBOTS_FILTER_FAILED", "PROHIBITED_CONTENT", "CONTENT_FILTER_ERROR"}
)

# (kind, pattern) - a mention whose title or highlight matches is a wealth signal. Ordered:
# the first matching kind per text wins.
WEALTH_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        (
            "liquidity_event",
            r"\b(acquired|acquisition|ipo|went public|sold (?:his|her|their) "
            r"(?:company|stake)|exit|merger)\b",
        ),
        ("funding", r"\b(raised|funding round|series [a-f]\b|seed round|venture)"),
        ("insider_sale", r"\b(sold|sells|selling) [\d,.]+ (?:million )?shares\b"),
        ("philanthropy", r"\b(donat\w+|philanthrop\w+|foundation|endow\w+|pledge\w*)\b"),
        ("real_estate", r"\b(mansion|estate|penthouse|property|real estate)\b"),
        ("board_seat", r"\b(board of directors|joins? (?:the )?board|board member)\b"),
        (
            "investment",
            r"\b(angel investor|invest(?:ed|s|ment) in|limited partner|family office)\b",
        ),
        ("compensation", r"\b(compensation|pay package|salary|stock awards?)\b"),
        ("net_worth", r"\b(net worth|billionaire|millionaire|forbes)\b"),
    )
)


@dataclass(frozen=True)
class Mention:
    title: str | None
    url: str
    published_date: str | None
    highlights: tuple[str, ...]


@dataclass(frozen=True)
class WealthSignal:
    kind: str
    text: str
    url: str


@dataclass(frozen=True)
class WebMentions:
    query: str
    mentions: tuple[Mention, ...]
    wealth_signals: tuple[WealthSignal, ...]
    cost_usd: float | None
    request_id: str | None = None


def wealth_signals(mentions: tuple[Mention, ...]) -> tuple[WealthSignal, ...]:
    """At most one signal per (kind, url), taken from the title or a highlight."""
    found: dict[tuple[str, str], WealthSignal] = {}
    for mention in mentions:
        for text in (mention.title or "", *mention.highlights):
            for kind, pattern in WEALTH_PATTERNS:
                if pattern.search(text) and (kind, mention.url) not in found:
                    found[(kind, mention.url)] = WealthSignal(kind, text.strip(), mention.url)
                    break
    return tuple(found.values())


def error_tag(response: httpx.Response) -> str | None:
    """The `tag` of an Exa error body, or None (not JSON, no tag: Exa's 429 has none)."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return None
    tag = body.get("tag") if isinstance(body, dict) else None
    return tag if isinstance(tag, str) else None


def parse_search(query: str) -> Any:
    def parse(response: httpx.Response) -> WebMentions:
        body = json_body(response)
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise ValueError("expected an object with a results list")
        mentions = []
        for item in body["results"]:
            if not isinstance(item, dict) or not item.get("url"):
                raise ValueError("result without url")
            highlights = item.get("highlights") or []
            if not isinstance(highlights, list):
                raise TypeError("highlights is not a list")
            mentions.append(
                Mention(
                    title=optional_str(item.get("title"), "title"),
                    url=str(item["url"]),
                    published_date=optional_str(item.get("publishedDate"), "publishedDate"),
                    highlights=tuple(str(h) for h in highlights),
                )
            )
        cost = body.get("costDollars") or {}
        total = cost.get("total") if isinstance(cost, dict) else None
        as_tuple = tuple(mentions)
        return WebMentions(
            query=query,
            mentions=as_tuple,
            wealth_signals=wealth_signals(as_tuple),
            cost_usd=float(total) if total is not None else None,
            request_id=optional_str(body.get("requestId"), "requestId"),
        )

    return parse


class ExaResource(ProviderResource, EnrichmentProvider):
    """Exa: web mentions of a prospect ("{name} {company}") with highlights, and the wealth
    signals found in them (liquidity events, funding, philanthropy, board seats ...). The cost
    Exa reports per request (`costDollars.total`) is recorded in `api_usage`. Key from
    `EXA_API_KEY`."""

    PROVIDER: ClassVar[str] = "exa"
    SOURCE: ClassVar[str] = "exa"
    ASSET_KEY: ClassVar[str] = "web_enrichment"
    DATA_COLUMN: ClassVar[str] = "web_data"
    KIND: ClassVar[str] = "exa"
    DESCRIPTION: ClassVar[str] = (
        "Exa web mentions and wealth signals for each prospect of the batch -> "
        "`prospects.web_data`."
    )
    KEY_ENV: ClassVar[str] = "EXA_API_KEY"
    LIVE_URLS: ClassVar[tuple[str, ...]] = (EXA_BASE_URL,)
    EMULATOR_PREFIXES: ClassVar[tuple[str, ...]] = ("/exa",)
    EMULATOR: ClassVar[str] = "phronesis_dagster.emulator.exa:ExaProvider"
    # Published: /search 10 requests/s (docs.exa.ai rate-limits page; its 429 body says so).
    DEFAULT_RPS: ClassVar[int] = 10
    # Exa: the plan's monthly searches.
    MONTHLY_QUOTA: ClassVar[int] = 20_000
    DEFAULT_LIMITS: ClassVar[dict[str, RateLimit]] = {"*": RateLimit(10)}

    api_key: str = Field(description="Exa API key (env EXA_API_KEY).")
    base_url: str = Field(default=EXA_BASE_URL)

    def validate_config(self) -> None:
        self._require_secret(self.api_key, self.KEY_ENV)

    def refusal(self, response: httpx.Response, method: str, endpoint: str) -> ProviderError | None:
        """Exa's 402 (out of credits, any tag) and 403 without access stop every call: not
        retried, the breaker held open and the error says why; a 403 for blocked content is
        this request's error only. Other statuses (401, 429, 5xx) take the generic path."""
        status = response.status_code
        if status not in (402, 403):
            return None
        tag = error_tag(response)
        if status == 402:
            why = CREDIT_REFUSALS.get(
                tag or "", f"out of credits (Exa's 402 {tag or 'Payment Required'})"
            )
            return self.held_refusal(response, method, endpoint, why)
        if tag in NO_ACCESS_TAGS:
            why = f"no access: the API key may not use {endpoint} (Exa's 403 {tag})"
            return self.held_refusal(response, method, endpoint, why)
        if tag in CONTENT_BLOCK_TAGS:
            why = f"this request was blocked by Exa's content rules (403 {tag})"
            return self.request_refusal(response, method, endpoint, why)
        return None

    def default_headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key, "Accept": "application/json"}

    def secrets(self) -> list[str]:
        return [self.api_key]

    def enrich(self, prospect: ProspectInput) -> ProviderAnswer:
        """Web mentions of one prospect ("{name} {company}"); none found is `not_found`."""
        found = self.search_mentions(name=prospect.name or "", company=prospect.company or "")
        return ProviderAnswer.of(found if found.mentions else None)

    def search_mentions(self, *, name: str, company: str, num_results: int = 10) -> WebMentions:
        """Web mentions of `name` at `company`, newest information Exa has."""
        query = f"{name} {company}".strip()
        body = {
            "query": query,
            "type": "auto",
            "numResults": max(1, min(num_results, 100)),
            "contents": {"highlights": {"maxCharacters": HIGHLIGHT_MAX_CHARACTERS, "query": query}},
        }
        result = self._call(
            endpoint=SEARCH_PATH,
            method="POST",
            url=SEARCH_PATH,
            json=body,
            parse=parse_search(query),
            cost=lambda r: r.cost_usd,
        )
        return result or WebMentions(query=query, mentions=(), wealth_signals=(), cost_usd=0.0)
