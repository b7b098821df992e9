"""ContactOut people enrichment (`POST /v1/people/enrich`)."""

from __future__ import annotations

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

CONTACTOUT_BASE_URL = "https://api.contactout.com"
ENRICH_PATH = "/v1/people/enrich"
SEARCH_PATH = "/v1/people/search"
# Without `include` ContactOut returns only the profile (and charges no contact credits).
CONTACT_FIELDS = ["work_email", "personal_email", "phone"]


@dataclass(frozen=True)
class ContactInfo:
    """What ContactOut knows about one person."""

    work_emails: tuple[str, ...]
    personal_emails: tuple[str, ...]
    phones: tuple[str, ...]
    full_name: str | None
    headline: str | None
    location: str | None
    industry: str | None
    linkedin_url: str | None
    company_name: str | None
    company_domain: str | None
    work_email_status: tuple[tuple[str, str], ...] = ()


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise TypeError(f"expected a list of strings, got {type(value).__name__}")
    return tuple(str(v) for v in value if v)


def parse_contact(response: httpx.Response) -> ContactInfo | None:
    body = json_body(response)
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    profile = body.get("profile")
    # `{"status_code": 200, "profile": []}` is ContactOut's "found nothing" (no credits spent):
    # not_found, not a provider failure.
    if profile is None or profile == [] or profile == {}:
        return None
    if not isinstance(profile, dict):
        raise TypeError("profile is not an object")
    company = profile.get("company") or {}
    if not isinstance(company, dict):
        company = {"name": str(company)}
    status = profile.get("work_email_status") or {}

    def text(source: dict[str, Any], *keys: str) -> str | None:
        # `source.get(a) or source.get(b)`, checked to be text.
        value = None
        for key in keys:
            if value := source.get(key):
                break
        return optional_str(value, keys[0])

    return ContactInfo(
        work_emails=_strings(profile.get("work_email")),
        personal_emails=_strings(profile.get("personal_email")),
        phones=_strings(profile.get("phone")),
        full_name=text(profile, "full_name", "fullName"),
        headline=text(profile, "headline"),
        location=text(profile, "location"),
        industry=text(profile, "industry"),
        linkedin_url=text(profile, "url", "linkedin_url"),
        company_name=text(company, "name"),
        company_domain=text(company, "domain", "email_domain"),
        work_email_status=tuple(
            sorted((str(k), str(v)) for k, v in status.items()) if isinstance(status, dict) else ()
        ),
    )


class ContactOutResource(ProviderResource, EnrichmentProvider):
    """ContactOut: work email, personal email and phone of a prospect, by email and/or LinkedIn
    URL. 404 (no profile) is a normal empty result and costs no credits. The key comes from
    `CONTACTOUT_API_KEY`; calls share one rate limit and circuit breaker across all runs."""

    PROVIDER: ClassVar[str] = "contactout"
    SOURCE: ClassVar[str] = "contactout"
    ASSET_KEY: ClassVar[str] = "contact_enrichment"
    DATA_COLUMN: ClassVar[str] = "contact_data"
    KIND: ClassVar[str] = "contactout"
    DESCRIPTION: ClassVar[str] = (
        "ContactOut work/personal emails and phones for each prospect of the batch -> "
        "`prospects.contact_data`. Skipped for prospects with neither email nor LinkedIn URL."
    )
    KEY_ENV: ClassVar[str] = "CONTACTOUT_API_KEY"
    LIVE_URLS: ClassVar[tuple[str, ...]] = (CONTACTOUT_BASE_URL,)
    EMULATOR_PREFIXES: ClassVar[tuple[str, ...]] = ("/contactout",)
    EMULATOR: ClassVar[str] = "phronesis_dagster.emulator.contactout:ContactOutProvider"
    # Published (api.contactout.com "Rate limits"): 1,200 requests/min on every endpoint, the
    # search endpoint 60/min.
    DEFAULT_RPS: ClassVar[int] = 20
    # ContactOut: the plan's monthly credits.
    MONTHLY_QUOTA: ClassVar[int] = 10_000
    DEFAULT_LIMITS: ClassVar[dict[str, RateLimit]] = {
        "*": RateLimit(1200, 60),
        "search": RateLimit(60, 60),
    }
    ENDPOINT_GROUPS: ClassVar[dict[str, str]] = {SEARCH_PATH: "search"}

    api_key: str = Field(description="ContactOut API token (env CONTACTOUT_API_KEY).")
    base_url: str = Field(default=CONTACTOUT_BASE_URL)

    def validate_config(self) -> None:
        self._require_secret(self.api_key, self.KEY_ENV)

    def refusal(self, response: httpx.Response, method: str, endpoint: str) -> ProviderError | None:
        """ContactOut's own status codes (api.contactout.com, "Response codes"): 400 = bad
        credentials or invalid headers, 401 = bad request, 403 = out of credits or no API
        access; 429 = rate limit, with `retry-after` (generic handling). Credentials and
        credits stop every call: the breaker is held open and the error says why."""
        status = response.status_code
        if status == 400:
            return self.held_refusal(
                response, method, endpoint, "bad credentials or invalid headers (ContactOut's 400)"
            )
        if status == 401:
            return self.request_refusal(
                response, method, endpoint, "bad request (ContactOut's 401)"
            )
        if status == 403:
            return self.held_refusal(
                response,
                method,
                endpoint,
                "out of credits or no API access (ContactOut's 403)",
            )
        return None

    def default_headers(self) -> dict[str, str]:
        return {"token": self.api_key, "Accept": "application/json"}

    def secrets(self) -> list[str]:
        return [self.api_key]

    @classmethod
    def skip_reason(cls, prospect: ProspectInput) -> str | None:
        if not (prospect.email or prospect.linkedin_url):
            return "no email or LinkedIn URL to look up"
        return None

    def enrich(self, prospect: ProspectInput) -> ProviderAnswer:
        """Contact details of one prospect, by email and/or LinkedIn URL."""
        return ProviderAnswer.of(
            self.enrich_person(
                email=prospect.email,
                linkedin_url=prospect.linkedin_url,
                full_name=prospect.name,
                company=prospect.company,
            )
        )

    def enrich_person(
        self,
        *,
        email: str | None = None,
        linkedin_url: str | None = None,
        full_name: str | None = None,
        company: str | None = None,
    ) -> ContactInfo | None:
        """Contact details of one person; None when ContactOut has no profile."""
        if not email and not linkedin_url:
            raise ValueError("ContactOut enrichment needs an email or a LinkedIn URL")
        body: dict[str, Any] = {"include": CONTACT_FIELDS}
        if email:
            body["email"] = email
        if linkedin_url:
            body["linkedin_url"] = linkedin_url
        if full_name:
            body["full_name"] = full_name
        if company:
            body["company"] = [company]
        return self._call(
            endpoint=ENRICH_PATH, method="POST", url=ENRICH_PATH, json=body, parse=parse_contact
        )
