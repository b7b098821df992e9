"""ContactOut (https://api.contactout.com): `POST /v1/people/enrich`.

Wire format per PROVIDERS.md section 1: header `token`, envelope
`{"status_code": 200, "profile": {...}}` with singular list keys, errors
`{"status_code": N, "message": ...}` (exact texts unverified).

Status codes as ContactOut's API docs list them (api.contactout.com, "Response codes"; the
issue quoting them): 400 = bad credentials or invalid headers, 401 = bad request, 403 = out of
credits or no API access, 404 = no profile, 429 = too many requests (check `retry-after`).
A search that finds nobody can also answer `{"status_code": 200, "profile": []}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from phronesis_dagster.emulator import data
from phronesis_dagster.emulator.base import Provider, Request, Response, api_key, key_is_valid
from phronesis_dagster.resources.contactout import ContactOutResource

SECONDARY_FIELDS = ("company", "company_domain", "education", "job_title", "location")
INCLUDE_VALUES = {"work_email", "personal_email", "phone"}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json(status, {"status_code": status, "message": message}, headers)


def _first(value: Any) -> str | None:
    """ContactOut takes company/company_domain as arrays; the first entry identifies."""
    if isinstance(value, list):
        return str(value[0]) if value else None
    return str(value) if value else None


class ContactOutProvider(Provider):
    """Emulated ContactOut people enrichment."""

    name = "contactout"
    # Where the client is pointed in emulator mode (the resource owns the fact).
    prefixes = ContactOutResource.EMULATOR_PREFIXES

    def request_key(self, req: Request) -> str | None:
        body = req.json_object() or {}
        name = body.get("full_name") or " ".join(
            p for p in (body.get("first_name"), body.get("last_name")) if p
        )
        return data.person_key(
            email=body.get("email"),
            linkedin_url=body.get("linkedin_url"),
            name=name or None,
            company=_first(body.get("company")) or _first(body.get("company_domain")),
            other=body.get("phone"),
        )

    def authenticate(self, req: Request) -> Response | None:
        if not key_is_valid(api_key(req, "token")):
            return self.unauthorized(req)
        return None

    scenarios = ("bad_credentials", "bad_request", "out_of_credits", "empty_profile")

    def rate_group(self, req: Request) -> str | None:
        # "our search endpoint has a specific limit of 60 requests per minute" (docs).
        return "search" if req.path == "/v1/people/search" else None

    def unauthorized(self, req: Request) -> Response:
        # ContactOut's docs: 400 = "bad credentials or invalid headers" (not 401).
        return _error(400, "Bad credentials: invalid or missing API token")

    def scenario_answer(self, req: Request, name: str, serve: Callable[[], Response]) -> Response:
        if name == "bad_credentials":
            return self.unauthorized(req)
        if name == "bad_request":
            # docs: 401 = bad request.
            return _error(401, "Bad request: the request could not be understood")
        if name == "out_of_credits":
            # docs: 403 = out of credits or no access to the API.
            return _error(403, "Forbidden: you have run out of credits or have no API access")
        if name == "empty_profile":
            # What a lookup that found nothing answers: 200 with an empty profile list.
            return Response.json(200, {"status_code": 200, "profile": []})
        return super().scenario_answer(req, name, serve)

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        return _error(
            429, "Too Many Requests: rate limit exceeded", {"Retry-After": str(retry_after)}
        )

    def server_error(self, req: Request, status: int) -> Response:
        texts = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
        return _error(status, texts.get(status, "Server Error"))

    def handle(self, req: Request) -> Response:
        if (req.method, req.path) != ("POST", "/v1/people/enrich"):
            return _error(404, f"Route {req.method} {req.path} not found")
        body = req.json_object()
        if body is None:
            return _error(401, "Bad request: invalid JSON body")  # docs: 401 = bad request
        include = body.get("include", [])
        if not isinstance(include, list) or not set(include) <= INCLUDE_VALUES:
            return _error(
                422, "The include field must be a list of work_email, personal_email, phone"
            )
        full_name = body.get("full_name") or " ".join(
            p for p in (body.get("first_name"), body.get("last_name")) if p
        )
        has_primary = any(body.get(k) for k in ("linkedin_url", "email", "phone"))
        has_secondary = any(body.get(k) for k in SECONDARY_FIELDS)
        if not has_primary and not (full_name and has_secondary):
            return _error(
                400,
                "Please provide linkedin_url, email or phone, or full_name together with at least "
                "one of company, company_domain, education, job_title or location",
            )
        linkedin_url = body.get("linkedin_url")
        if linkedin_url and "linkedin.com/in/" not in linkedin_url and "/pub/" not in linkedin_url:
            return _error(422, "The linkedin url format is invalid")

        key = self.request_key(req) or ""
        if data.is_no_match(self.seed, self.name, key):
            return _error(404, "Profile not found")
        first, _, last = full_name.partition(" ")
        person = data.make_person(
            self.seed,
            key,
            first_name=body.get("first_name") or first or None,
            last_name=body.get("last_name") or last or None,
            company=_first(body.get("company")),
            domain=_first(body.get("company_domain")),
            email=body.get("email"),
            linkedin_url=linkedin_url,
        )
        return Response.json(200, {"status_code": 200, "profile": _profile(person, include)})


def _profile(person: data.Person, include: list[str]) -> dict[str, Any]:
    """Profile data always; contact fields only for what `include` asked (they cost credits)."""
    profile: dict[str, Any] = {
        "url": person.linkedin_url,
        "linkedin_url": person.linkedin_url,
        "full_name": person.full_name,
        "headline": f"{person.title} at {person.company}",
        "location": person.location,
        "industry": person.industry,
        "company": {
            "name": person.company,
            "url": f"https://www.linkedin.com/company/{person.company.lower().replace(' ', '-')}",
            "domain": person.domain,
            "email_domain": person.domain,
            "industry": person.industry,
            "size": "201-500",
        },
        "experience": [
            {
                "title": person.title,
                "company_name": person.company,
                "start_date": "2019-01",
                "end_date": None,
                "is_current": True,
            }
        ],
        "education": [],
        "skills": ["Leadership", "Strategy"],
    }
    emails: list[str] = []
    if "work_email" in include:
        profile["work_email"] = [person.work_email]
        profile["work_email_status"] = {person.work_email: "Verified"}
        emails.append(person.work_email)
    if "personal_email" in include:
        profile["personal_email"] = [person.personal_email]
        emails.append(person.personal_email)
    if emails:
        profile["email"] = emails
    if "phone" in include:
        profile["phone"] = [person.phone]
    return profile
