"""Apollo.io (https://api.apollo.io): people match, people API search, deprecated search.

Wire format per PROVIDERS.md section 5: header `x-api-key`, 401 as `text/plain`, 429 JSON
`message` + `retry-after`, rate-limit usage headers only on authenticated answers. The body
of the deprecated `mixed_people/search` refusal is not documented; its text is ours.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from phronesis_dagster.emulator import data
from phronesis_dagster.emulator.base import Provider, Request, Response, api_key, key_is_valid
from phronesis_dagster.resources.apollo import ApolloResource

UNAUTHORIZED_TEXT = (
    "Invalid API key. See https://docs.apollo.io/reference/authentication for how to authenticate."
)
DEFAULT_MINUTE_LIMIT = 200
HOURLY_LIMIT = 6000
DAILY_LIMIT = 50000
# What Apollo puts where an email is not unlocked for the team (see resources/apollo.py for
# the sources: many independent clients filter exactly this placeholder).
LOCKED_EMAIL = "email_not_unlocked@domain.com"
# Seconds until a spent window resets, as `retry-after` says (docs.apollo.io/reference/
# rate-limits: "429 with retry-after (seconds until that window resets)").
HOUR_RESET_SECONDS = 1800
DAY_RESET_SECONDS = 36000


class _UsageCounter:
    """Per-endpoint fixed minute windows, reported in the `x-minute-*` headers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._minute: dict[str, tuple[int, int]] = {}
        self._total: dict[str, int] = {}

    def hit(self, endpoint: str) -> tuple[int, int]:
        window = int(time.time() // 60)
        with self._lock:
            start, count = self._minute.get(endpoint, (window, 0))
            if start != window:
                start, count = window, 0
            self._minute[endpoint] = (start, count + 1)
            self._total[endpoint] = self._total.get(endpoint, 0) + 1
            return count + 1, self._total[endpoint]


class ApolloProvider(Provider):
    """Emulated Apollo people enrichment and search."""

    name = "apollo"
    # Where the client is pointed in emulator mode (the resource owns the fact).
    prefixes = ApolloResource.EMULATOR_PREFIXES
    scenarios = (
        "hourly_quota_spent",
        "daily_quota_spent",
        "email_locked",
        "employees_as_string",
        "employees_null",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._usage = _UsageCounter()

    def request_key(self, req: Request) -> str | None:
        body = _params(req)
        if req.path.endswith("/people/match"):
            name = body.get("name") or " ".join(
                p for p in (body.get("first_name"), body.get("last_name")) if p
            )
            return data.person_key(
                email=body.get("email"),
                linkedin_url=body.get("linkedin_url"),
                name=name or None,
                company=body.get("organization_name") or body.get("domain"),
                other=body.get("id"),
            )
        if "mixed_people" in req.path:
            return "search:" + _search_key(body)
        return None

    def rate_group(self, req: Request) -> str | None:
        # Apollo counts limits per endpoint; enrichment and search endpoints have their own
        # published maxima (docs.apollo.io/reference/rate-limits).
        if req.path.endswith("/people/match") or req.path.endswith("/people/bulk_match"):
            return "enrichment"
        if "mixed_people" in req.path:
            return "search"
        return None

    def scenario_answer(self, req: Request, name: str, serve: Callable[[], Response]) -> Response:
        if name in ("hourly_quota_spent", "daily_quota_spent"):
            return self._quota_spent(req, hourly=name == "hourly_quota_spent")
        response = serve()
        if response.status != 200 or not req.path.endswith("/people/match"):
            return response
        payload = json.loads(response.body)
        person = payload.get("person")
        if person is None:
            return response
        if name == "email_locked":
            # A match whose email the team has not unlocked: the placeholder, status
            # "unavailable", and the same placeholder in contact_emails.
            person["email"] = LOCKED_EMAIL
            person["email_status"] = "unavailable"
            person.pop("personal_emails", None)
        else:
            # Apollo's organization fields are loosely typed: numbers, strings or null
            # (clients that parse them strictly fail on real answers).
            org = person.get("organization") or {}
            count = org.get("estimated_num_employees")
            org["estimated_num_employees"] = f"{count:,}" if name == "employees_as_string" else None
        return Response.json(200, payload, response.headers)

    def _quota_spent(self, req: Request, *, hourly: bool) -> Response:
        """Apollo's 429 when the hour or day window of the endpoint is used up: the JSON
        `message` naming the window and `retry-after` = seconds until it resets, with the
        usage headers saying 0 left (docs.apollo.io/reference/rate-limits; message text as
        in PROVIDERS.md section 5, "600 times per hour")."""
        endpoint = req.path.removeprefix("/")
        window, limit, reset = (
            ("hour", 600, HOUR_RESET_SECONDS) if hourly else ("day", 2000, DAY_RESET_SECONDS)
        )
        message = (
            f"The maximum number of api calls allowed for {endpoint} is {limit} times per "
            f"{window}. Please upgrade your plan from https://app.apollo.io/#/settings/plans/upgrade."
        )
        hour_left = "0" if hourly else "120"
        headers = {
            "retry-after": str(reset),
            "x-rate-limit-minute": str(self._minute_limit()),
            "x-rate-limit-hourly": "600" if hourly else str(HOURLY_LIMIT),
            "x-rate-limit-24-hour": "2000",
            "x-minute-usage": "1",
            "x-hourly-usage": "600" if hourly else "480",
            "x-24-hour-usage": "2000" if not hourly else "1200",
            "x-minute-requests-left": str(self._minute_limit() - 1),
            "x-hourly-requests-left": hour_left,
            "x-24-hour-requests-left": "0" if not hourly else "800",
        }
        return Response.json(429, {"message": message}, headers)

    def authenticate(self, req: Request) -> Response | None:
        if not key_is_valid(api_key(req, "x-api-key")):
            return self.unauthorized(req)
        return None

    def unauthorized(self, req: Request) -> Response:
        return Response.text(401, UNAUTHORIZED_TEXT, "text/plain; charset=utf-8")

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        endpoint = req.path.removeprefix("/")
        message = (
            f"The maximum number of api calls allowed for {endpoint} is "
            f"{self._minute_limit()} times per minute. Please upgrade your plan from "
            "https://app.apollo.io/#/settings/plans/upgrade."
        )
        return Response.json(429, {"message": message}, {"retry-after": str(retry_after)})

    def server_error(self, req: Request, status: int) -> Response:
        return Response.json(status, {"error": "Something went wrong. Please try again later."})

    def decorate(self, req: Request, response: Response) -> None:
        if response.status in (401, 403):
            return
        minute_usage, total = self._usage.hit(req.path)
        limit = self._minute_limit()
        counters = {
            "x-rate-limit-minute": str(limit),
            "x-rate-limit-hourly": str(HOURLY_LIMIT),
            "x-rate-limit-24-hour": str(DAILY_LIMIT),
            "x-minute-usage": str(minute_usage),
            "x-hourly-usage": str(total),
            "x-24-hour-usage": str(total),
            "x-minute-requests-left": str(max(0, limit - minute_usage)),
            "x-hourly-requests-left": str(max(0, HOURLY_LIMIT - total)),
            "x-24-hour-requests-left": str(max(0, DAILY_LIMIT - total)),
        }
        for header, value in counters.items():
            response.headers.setdefault(header, value)  # a scenario's own counters win

    def _minute_limit(self) -> int:
        per_second = self.config.rate_limit_per_second.get(self.name)
        return int(per_second * 60) if per_second else DEFAULT_MINUTE_LIMIT

    def handle(self, req: Request) -> Response:
        if req.method != "POST":
            return Response.json(404, {"error": "Not Found"})
        if req.path == "/api/v1/people/match":
            return self._match(req)
        if req.path == "/api/v1/mixed_people/api_search":
            return self._search(req)
        if req.path == "/api/v1/mixed_people/search":
            return Response.json(
                422,
                {
                    "error": "api/v1/mixed_people/search is deprecated for API callers. "
                    "Please use api/v1/mixed_people/api_search instead.",
                    "error_code": "DEPRECATED_ENDPOINT",
                },
            )
        return Response.json(404, {"error": "Not Found"})

    def _match(self, req: Request) -> Response:
        body = _params(req)
        if req.body and req.json_object() is None:
            return Response.json(422, {"error": "Invalid parameters"})
        key = self.request_key(req) or ""
        request_id = int.from_bytes(data.digest(self.seed, "apollo-req", key)[:7], "big")
        identifies = any(body.get(k) for k in ("email", "linkedin_url", "id", "hashed_email")) or (
            (body.get("name") or body.get("last_name"))
            and (body.get("organization_name") or body.get("domain"))
        )
        if not identifies or data.is_no_match(self.seed, self.name, key):
            return Response.json(200, {"person": None, "request_id": request_id})
        first = body.get("first_name")
        last = body.get("last_name")
        if body.get("name") and not (first and last):
            first, _, last = str(body["name"]).partition(" ")
        person = data.make_person(
            self.seed,
            key,
            first_name=first or None,
            last_name=last or None,
            company=body.get("organization_name"),
            domain=body.get("domain"),
            email=body.get("email"),
            linkedin_url=body.get("linkedin_url"),
        )
        payload: dict[str, Any] = {
            "person": _person(self.seed, key, person, bool(body.get("reveal_personal_emails"))),
            "request_id": request_id,
        }
        if body.get("reveal_phone_number") or body.get("run_waterfall_phone"):
            payload["waterfall"] = {
                "status": "accepted",
                "message": "Waterfall enrichment request accepted. Results will be sent to the "
                "provided webhook URL.",
            }
        return Response.json(200, payload)

    def _search(self, req: Request) -> Response:
        body = _params(req)
        page = int(body.get("page") or 1)
        per_page = min(int(body.get("per_page") or 25), 100)
        key = _search_key(body)
        rng = data.rng_for(self.seed, "apollo-search", key)
        total = 0 if data.is_no_match(self.seed, "apollo-search", key) else rng.randint(3, 400)
        start = (page - 1) * per_page
        people = []
        for i in range(start, min(total, start + per_page)):
            p = data.make_person(self.seed, f"apollo-search:{key}:{i}")
            people.append(
                {
                    "id": data.hex_id(self.seed, "apollo-person", key, i),
                    "first_name": p.first_name,
                    "last_name_obfuscated": p.last_name[:2] + "***" + p.last_name[-1],
                    "title": p.title,
                    "last_refreshed_at": "2026-02-14T09:12:44.000+00:00",
                    "has_email": True,
                    "has_city": True,
                    "has_state": True,
                    "has_country": True,
                    "has_direct_phone": "Yes" if i % 3 else "Maybe: please request direct dial",
                    "organization": {
                        "name": p.company,
                        "has_industry": True,
                        "has_phone": False,
                        "has_city": True,
                        "has_state": True,
                        "has_country": True,
                        "has_zip_code": False,
                        "has_revenue": i % 2 == 0,
                        "has_employee_count": True,
                    },
                }
            )
        return Response.json(200, {"total_entries": total, "people": people})


def _params(req: Request) -> dict[str, Any]:
    """Apollo documents query parameters; clients mostly send a JSON body. Accept both."""
    params: dict[str, Any] = {}
    for name, values in req.query.items():
        clean = name.removesuffix("[]")
        params[clean] = values if name.endswith("[]") else values[-1]
    params.update(req.json_object() or {})
    return params


def _search_key(body: dict[str, Any]) -> str:
    parts = []
    for name in sorted(body):
        if name in ("page", "per_page"):
            continue
        value = body[name]
        value = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{name}={value}")
    return "&".join(parts)


def _person(seed: int, key: str, p: data.Person, reveal_personal: bool) -> dict[str, Any]:
    org_id = data.hex_id(seed, "apollo-org", p.domain)
    person: dict[str, Any] = {
        "id": data.hex_id(seed, "apollo-person", key),
        "first_name": p.first_name,
        "last_name": p.last_name,
        "name": p.full_name,
        "linkedin_url": p.linkedin_url.replace("https://www.", "http://www."),
        "title": p.title,
        "email_status": "verified",
        "email": p.work_email,
        "photo_url": None,
        "twitter_url": None,
        "github_url": None,
        "facebook_url": None,
        "extrapolated_email_confidence": None,
        "headline": f"{p.title} at {p.company}",
        "seniority": p.seniority,
        "departments": ["c_suite"] if p.seniority in ("c_suite", "founder", "owner") else ["sales"],
        "functions": ["entrepreneurship"] if p.seniority == "founder" else ["business_development"],
        "city": p.city,
        "state": p.state,
        "country": p.country,
        "organization_id": org_id,
        "organization": {
            "id": org_id,
            "name": p.company,
            "website_url": f"http://www.{p.domain}",
            "primary_domain": p.domain,
            "estimated_num_employees": 50 + int(org_id[:4], 16) % 5000,
            "industry": p.industry.lower(),
        },
        "employment_history": [
            {
                "current": True,
                "organization_name": p.company,
                "title": p.title,
                "start_date": "2019-01-01",
                "end_date": None,
            }
        ],
        "contact": {
            "phone_numbers": [
                {
                    "raw_number": p.phone,
                    "sanitized_number": p.phone,
                    "type": None,
                    "position": 0,
                    "status": "valid_number",
                    "dnc_status": None,
                }
            ],
            "contact_emails": [
                {
                    "email": p.work_email,
                    "email_status": "verified",
                    "position": 0,
                    "free_domain": False,
                }
            ],
        },
        "revealed_for_current_team": True,
    }
    if reveal_personal:
        person["personal_emails"] = [p.personal_email]
    return person
