"""Exa (https://api.exa.ai): `POST /search`.

Wire format per PROVIDERS.md section 2: `x-api-key` or `Authorization: Bearer`, errors
`{"requestId", "error", "tag"}`, and a 429 whose body is only `{"error": ...}`.

Refusals of the account or key (`scenarios`), as Exa's "Error Codes" page lists them
(exa.ai/docs/reference/error-codes, "API Error Tags"; mirrored in roboalchemist/llm-code-docs
`docs/llms-txt/exa/error-codes.md`): 402 NO_MORE_CREDITS = account credits exhausted, 402
API_KEY_BUDGET_EXCEEDED = the key's spending budget exceeded, 403 ACCESS_DENIED / FEATURE_DISABLED
= no access to the feature, 403 PROHIBITED_CONTENT (and ROBOTS_FILTER_FAILED,
CONTENT_FILTER_ERROR) = this request blocked. Statuses and tags are the page's; the `error`
texts are its descriptions (Exa's exact wording is unverified).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from phronesis_dagster.emulator import data
from phronesis_dagster.emulator.base import Provider, Request, Response, api_key, key_is_valid
from phronesis_dagster.resources.exa import ExaResource

RATE_LIMIT_MESSAGE = (
    "You've exceeded your Exa rate limit of 10 requests per second. If you want this "
    "increased, please email hello@exa.ai :)"
)
ERROR_TAGS = {500: "INTERNAL_ERROR", 502: "DEFAULT_ERROR", 503: "DEFAULT_ERROR"}
PRICE_PER_SEARCH = 0.005
PRICE_PER_PAGE = 0.001
# scenario -> (status, tag, message). Answered to every request while the scenario is on, as
# Exa does until credits are topped up or access is granted.
REFUSALS: dict[str, tuple[int, str, str]] = {
    "out_of_credits": (
        402,
        "NO_MORE_CREDITS",
        "Account credits are exhausted. Top up at https://dashboard.exa.ai",
    ),
    "key_budget_exceeded": (
        402,
        "API_KEY_BUDGET_EXCEEDED",
        "API key has exceeded its spending budget. Contact your team administrator",
    ),
    "access_denied": (
        403,
        "ACCESS_DENIED",
        "This feature requires a flag or permission your API key does not have",
    ),
    "prohibited_content": (
        403,
        "PROHIBITED_CONTENT",
        "Request blocked by content safety moderation",
    ),
}


def _error(status: int, message: str, tag: str) -> Response:
    return Response.json(
        status,
        {"requestId": data.hex_id(0, "exa-err", message, length=32), "error": message, "tag": tag},
    )


class ExaProvider(Provider):
    """Emulated Exa search with deterministic, sometimes wealth-signalling, mentions."""

    name = "exa"
    # Where the client is pointed in emulator mode (the resource owns the fact).
    prefixes = ExaResource.EMULATOR_PREFIXES

    def request_key(self, req: Request) -> str | None:
        body = req.json_object() or {}
        query = body.get("query")
        return str(query) if query is not None else None

    scenarios = tuple(REFUSALS)

    def scenario_answer(self, req: Request, name: str, serve: Callable[[], Response]) -> Response:
        if name in REFUSALS:
            status, tag, message = REFUSALS[name]
            return _error(status, message, tag)
        return super().scenario_answer(req, name, serve)

    def authenticate(self, req: Request) -> Response | None:
        if not key_is_valid(api_key(req, "x-api-key")):
            return self.unauthorized(req)
        return None

    def unauthorized(self, req: Request) -> Response:
        return _error(401, "Invalid API key", "INVALID_API_KEY")

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        return Response.json(429, {"error": RATE_LIMIT_MESSAGE}, {"Retry-After": str(retry_after)})

    def server_error(self, req: Request, status: int) -> Response:
        return _error(
            status, "An unexpected error occurred", ERROR_TAGS.get(status, "DEFAULT_ERROR")
        )

    def handle(self, req: Request) -> Response:
        if (req.method, req.path) != ("POST", "/search"):
            return _error(404, f"Cannot {req.method} {req.path}", "NOT_FOUND")
        body = req.json_object()
        if body is None:
            return _error(400, "Invalid request body", "INVALID_REQUEST_BODY")
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            return _error(400, "query: Required", "INVALID_REQUEST_BODY")
        num_results = body.get("numResults", 10)
        if not isinstance(num_results, int) or num_results < 1:
            return _error(400, "numResults must be a positive integer", "INVALID_NUM_RESULTS")
        if num_results > 100:
            return _error(400, "numResults cannot exceed 100", "NUM_RESULTS_EXCEEDED")

        results = data.exa_results(self.seed, query, num_results)
        want_text, want_highlights = _content_flags(body)
        text_max, highlight_max = _max_characters(body)
        for result in results:
            if not want_text:
                result.pop("text")
            elif text_max is not None:
                result["text"] = result["text"][:text_max]
            if not want_highlights:
                result.pop("highlights")
                result.pop("highlightScores")
            elif highlight_max is not None:
                result["highlights"], result["highlightScores"] = _cap_highlights(
                    result["highlights"], result["highlightScores"], highlight_max
                )
        pages = len(results) * (int(want_text) + int(want_highlights))
        contents = round(pages * PRICE_PER_PAGE, 6)
        search_type = body.get("type", "auto")
        payload = {
            "requestId": data.hex_id(self.seed, "exa-request", query, length=32),
            "resolvedSearchType": "neural" if search_type in ("auto", "neural") else search_type,
            "searchType": search_type,
            "results": results,
            "costDollars": {
                "total": round(PRICE_PER_SEARCH + contents, 6),
                "breakDown": [
                    {
                        "search": PRICE_PER_SEARCH,
                        "contents": contents,
                        "breakdown": {
                            "neuralSearch": PRICE_PER_SEARCH,
                            "deepSearch": 0,
                            "contentText": round(len(results) * PRICE_PER_PAGE * want_text, 6),
                            "contentHighlight": round(
                                len(results) * PRICE_PER_PAGE * want_highlights, 6
                            ),
                            "contentSummary": 0,
                        },
                    }
                ],
                "perRequestPrices": {
                    "neuralSearch_1_25_results": 0.005,
                    "neuralSearch_26_100_results": 0.025,
                    "neuralSearch_100_plus_results": 1,
                    "deepSearch_1_25_results": 0.015,
                    "deepSearch_26_100_results": 0.075,
                },
                "perPagePrices": {
                    "contentText": PRICE_PER_PAGE,
                    "contentHighlight": PRICE_PER_PAGE,
                    "contentSummary": PRICE_PER_PAGE,
                },
            },
        }
        return Response.json(200, payload)


def _max_characters(body: dict[str, Any]) -> tuple[int | None, int | None]:
    """`contents.text.maxCharacters` and `contents.highlights.maxCharacters`, as asked.

    Exa's current options (exa.ai/docs "Common Mistakes Reference": "numSentences for
    highlights -> use maxCharacters", "highlightsPerUrl -> remove it; it is deprecated")."""
    contents = body.get("contents")
    source = contents if isinstance(contents, dict) else body

    def cap(option: Any) -> int | None:
        value = option.get("maxCharacters") if isinstance(option, dict) else None
        return value if isinstance(value, int) and value > 0 else None

    return cap(source.get("text")), cap(source.get("highlights"))


def _cap_highlights(
    highlights: list[str], scores: list[float], limit: int
) -> tuple[list[str], list[float]]:
    """At most `limit` characters of highlights for one result (the last one cut)."""
    kept: list[str] = []
    used = 0
    for text in highlights:
        if used >= limit:
            break
        kept.append(text[: limit - used])
        used += len(kept[-1])
    return kept, scores[: len(kept)]


def _content_flags(body: dict[str, Any]) -> tuple[bool, bool]:
    """Which contents were asked for: `contents.text/highlights` or the top-level flags.

    Without any content flag the text is returned, as exa-py 2.x asks for text by default.
    """
    contents = body.get("contents")
    source = contents if isinstance(contents, dict) else body
    text = source.get("text")
    highlights = source.get("highlights")
    if text is None and highlights is None:
        return True, True
    return bool(text), bool(highlights)
