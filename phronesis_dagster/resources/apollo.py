"""Apollo.io: people enrichment (`people/match`) and look-alike search (`mixed_people/api_search`).

`mixed_people/search` is deprecated for API-key callers; `api_search` is its replacement (free,
obfuscated results without emails or phones).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
from pydantic import Field

from phronesis_dagster.resources.contract import (
    EnrichmentProvider,
    ProspectInput,
    ProviderAnswer,
)
from phronesis_dagster.resources.http_client import (
    ProviderResource,
    RateLimit,
    json_body,
    optional_object,
    optional_str,
)

APOLLO_BASE_URL = "https://api.apollo.io"
MATCH_PATH = "/api/v1/people/match"
SEARCH_PATH = "/api/v1/mixed_people/api_search"
MAX_PER_PAGE = 100
# What Apollo answers for an email the team has not unlocked (credits not spent on it), with
# `email_status: "unavailable"`: a placeholder, not an address. Not in Apollo's docs; many
# independent Apollo clients filter exactly this string (find_string "email_not_unlocked@
# domain.com" in public code: JS, Python and Apps Script clients agree).
LOCKED_EMAIL = "email_not_unlocked@domain.com"
# Apollo's quota windows (docs.apollo.io/reference/rate-limits): each answer says what is left.
_WINDOWS = (
    ("x-24-hour-requests-left", timedelta(days=1), "daily"),
    ("x-hourly-requests-left", timedelta(hours=1), "hourly"),
)


@dataclass(frozen=True)
class Employment:
    organization_name: str | None
    title: str | None
    start_date: str | None
    end_date: str | None
    current: bool


@dataclass(frozen=True)
class PersonMatch:
    """One enriched Apollo person."""

    apollo_id: str | None
    name: str | None
    first_name: str | None
    last_name: str | None
    title: str | None
    headline: str | None
    seniority: str | None
    email: str | None
    email_status: str | None
    personal_emails: tuple[str, ...]
    phones: tuple[str, ...]
    linkedin_url: str | None
    city: str | None
    state: str | None
    country: str | None
    organization_name: str | None
    organization_domain: str | None
    organization_employees: int | None
    organization_industry: str | None
    employment_history: tuple[Employment, ...]


@dataclass(frozen=True)
class PersonSearchHit:
    """One (obfuscated) look-alike from the people search."""

    apollo_id: str
    first_name: str | None
    last_name_obfuscated: str | None
    title: str | None
    organization_name: str | None
    has_email: bool
    has_direct_phone: bool


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not value:
        return []
    if not isinstance(value, list):
        raise TypeError(f"{what} is not a list")
    return value


def _count(value: Any) -> int | None:
    """A head count Apollo may send as a number, a string ("1,600", "1600") or null; anything
    else is unknown (None), never a failed match."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        digits = value.replace(",", "").replace("_", "").strip()
        return int(digits) if digits.isdigit() else None
    return None


def _looks_like_email(value: str) -> bool:
    local, at, domain = value.partition("@")
    return bool(local and at and "." in domain)


def parse_match(response: httpx.Response) -> PersonMatch | None:
    body = _object(json_body(response), "body")
    if "person" not in body:
        raise KeyError("person")
    person = body["person"]
    if person is None:
        return None
    person = _object(person, "person")
    org = optional_object(person.get("organization"), "organization")
    contact = optional_object(person.get("contact"), "contact")

    def text(source: dict[str, Any], key: str) -> str | None:
        return optional_str(source.get(key), key)

    phones = [
        optional_str(p.get("sanitized_number") or p.get("raw_number"), "phone")
        for p in _list(contact.get("phone_numbers"), "phone_numbers")
        if isinstance(p, dict)
    ]
    history = tuple(
        Employment(
            organization_name=text(e, "organization_name"),
            title=text(e, "title"),
            start_date=text(e, "start_date"),
            end_date=text(e, "end_date"),
            current=bool(e.get("current")),
        )
        for e in _list(person.get("employment_history"), "employment_history")
        if isinstance(e, dict)
    )
    employees = _count(org.get("estimated_num_employees"))
    email = text(person, "email")
    email_status = text(person, "email_status")
    if email and (email.lower() == LOCKED_EMAIL or not _looks_like_email(email)):
        # A placeholder for "not unlocked": never stored as an address.
        email = None
    return PersonMatch(
        apollo_id=text(person, "id"),
        name=text(person, "name"),
        first_name=text(person, "first_name"),
        last_name=text(person, "last_name"),
        title=text(person, "title"),
        headline=text(person, "headline"),
        seniority=text(person, "seniority"),
        email=email,
        email_status=email_status,
        personal_emails=tuple(
            e
            for e in (
                optional_str(v, "personal_emails")
                for v in _list(person.get("personal_emails"), "personal_emails")
            )
            if e
        ),
        phones=tuple(p for p in phones if p),
        linkedin_url=text(person, "linkedin_url"),
        city=text(person, "city"),
        state=text(person, "state"),
        country=text(person, "country"),
        organization_name=text(org, "name"),
        organization_domain=text(org, "primary_domain"),
        organization_employees=employees,
        organization_industry=text(org, "industry"),
        employment_history=history,
    )


def parse_search(response: httpx.Response) -> list[PersonSearchHit]:
    body = _object(json_body(response), "body")
    people = body.get("people")
    if not isinstance(people, list):
        raise ValueError("expected a people list")
    hits = []
    for p in people:
        p = _object(p, "person")
        org = p.get("organization") or {}
        hits.append(
            PersonSearchHit(
                apollo_id=str(p["id"]),
                first_name=optional_str(p.get("first_name"), "first_name"),
                last_name_obfuscated=optional_str(
                    p.get("last_name_obfuscated") or p.get("last_name"), "last_name"
                ),
                title=optional_str(p.get("title"), "title"),
                organization_name=(
                    optional_str(org.get("name"), "organization.name")
                    if isinstance(org, dict)
                    else None
                ),
                has_email=bool(p.get("has_email")),
                has_direct_phone=str(p.get("has_direct_phone", "")).lower() in ("yes", "true"),
            )
        )
    return hits


class ApolloResource(ProviderResource, EnrichmentProvider):
    """Apollo.io: person match (title, seniority, company, employment history, emails) and
    look-alike people search by titles and company domains. A match that finds nobody is a
    normal empty result (and costs no credits). Key from `APOLLO_API_KEY`."""

    PROVIDER: ClassVar[str] = "apollo"
    SOURCE: ClassVar[str] = "apollo"
    ASSET_KEY: ClassVar[str] = "person_match"
    DATA_COLUMN: ClassVar[str] = "person_data"
    KIND: ClassVar[str] = "apollo"
    DESCRIPTION: ClassVar[str] = (
        "Apollo person match for each prospect of the batch (title, seniority, employment "
        "history, emails) -> `prospects.person_data`."
    )
    KEY_ENV: ClassVar[str] = "APOLLO_API_KEY"
    LIVE_URLS: ClassVar[tuple[str, ...]] = (APOLLO_BASE_URL,)
    EMULATOR_PREFIXES: ClassVar[tuple[str, ...]] = ("/apollo",)
    EMULATOR: ClassVar[str] = "phronesis_dagster.emulator.apollo:ApolloProvider"
    # Published (docs.apollo.io/reference/rate-limits), per team per endpoint, paid plans:
    # enrichment endpoints 1,000/min, search endpoints 200/min, others 200/min; hour and day
    # windows too, which only a 429 reveals (`quota_reset`).
    DEFAULT_RPS: ClassVar[int] = 16
    # Apollo: the plan's monthly enrichment credits.
    MONTHLY_QUOTA: ClassVar[int] = 10_000
    DEFAULT_LIMITS: ClassVar[dict[str, RateLimit]] = {
        "*": RateLimit(200, 60),
        "enrichment": RateLimit(1000, 60),
        "search": RateLimit(200, 60),
    }
    ENDPOINT_GROUPS: ClassVar[dict[str, str]] = {MATCH_PATH: "enrichment", SEARCH_PATH: "search"}

    api_key: str = Field(description="Apollo API key (env APOLLO_API_KEY).")
    base_url: str = Field(default=APOLLO_BASE_URL)
    reveal_personal_emails: bool = Field(
        default=True, description="Ask people/match for personal emails too."
    )

    def validate_config(self) -> None:
        self._require_secret(self.api_key, self.KEY_ENV)

    def default_headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key, "Accept": "application/json"}

    def secrets(self) -> list[str]:
        return [self.api_key]

    def quota_reset(self, response: httpx.Response, retry_after: float | None) -> datetime | None:
        """A 429 with no requests left in the hour or day window (or a wait past any retry)
        means the quota is spent: the breaker is held until `retry-after` (seconds until
        that window resets, per Apollo's docs), else a whole window."""
        generic = super().quota_reset(response, retry_after)
        for header, window, _name in _WINDOWS:
            left = (response.headers.get(header) or "").strip()
            if left == "0":
                wait = timedelta(seconds=retry_after) if retry_after else window
                return datetime.now(UTC) + wait
        message = response.text[:300].lower()
        if "per hour" in message or "per day" in message or "24 hour" in message:
            wait = timedelta(seconds=retry_after) if retry_after else timedelta(hours=1)
            return datetime.now(UTC) + wait
        return generic

    def enrich(self, prospect: ProspectInput) -> ProviderAnswer:
        """The person match of one prospect, by name, email, LinkedIn URL and company."""
        return ProviderAnswer.of(
            self.match_person(
                name=prospect.name,
                email=prospect.email,
                linkedin_url=prospect.linkedin_url,
                organization_name=prospect.company,
            )
        )

    def match_person(
        self,
        *,
        name: str | None = None,
        email: str | None = None,
        linkedin_url: str | None = None,
        organization_name: str | None = None,
    ) -> PersonMatch | None:
        """Enrich one person; None when Apollo has no match."""
        if not (email or linkedin_url or name):
            raise ValueError("Apollo match needs a name, an email or a LinkedIn URL")
        body: dict[str, Any] = {"reveal_personal_emails": self.reveal_personal_emails}
        for key, value in (
            ("name", name),
            ("email", email),
            ("linkedin_url", linkedin_url),
            ("organization_name", organization_name),
        ):
            if value:
                body[key] = value
        return self._call(
            endpoint=MATCH_PATH, method="POST", url=MATCH_PATH, json=body, parse=parse_match
        )

    def search_people(
        self,
        *,
        titles: list[str],
        organization_domains: list[str] | None = None,
        per_page: int = 25,
    ) -> list[PersonSearchHit]:
        """Look-alikes: people with these titles (optionally at these company domains)."""
        body: dict[str, Any] = {
            "person_titles": list(titles),
            "include_similar_titles": True,
            "page": 1,
            "per_page": max(1, min(per_page, MAX_PER_PAGE)),
        }
        if organization_domains:
            body["q_organization_domains_list"] = list(organization_domains)
        result = self._call(
            endpoint=SEARCH_PATH, method="POST", url=SEARCH_PATH, json=body, parse=parse_search
        )
        return result or []
