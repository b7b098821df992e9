"""No contact details reach the LLM: the request body the official anthropic SDK actually sends,
as the emulator received it, for a prospect whose every source is full of emails and phones."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from phronesis_dagster.resources import claude
from phronesis_dagster.resources.apollo import ApolloResource
from phronesis_dagster.resources.claude import (
    EMAIL_REDACTED,
    PHONE_REDACTED,
    ClaudeResource,
    build_prompt,
    scrub_contact_details,
)
from phronesis_dagster.resources.contactout import ContactOutResource
from phronesis_dagster.resources.edgar import EdgarResource
from phronesis_dagster.resources.exa import Mention, WealthSignal, WebMentions
from tests.resources.conftest import FAST

SECRET = "sk-test-secret-4242"

# The prospect row as the web app stores it: contact handles next to the professional facts.
PROSPECT_ROW = {
    "id": "7f9e5f3c-3c1b-4f7e-9f55-0d7b8f6c1a11",
    "name": "Jane Doe",
    "title": "CFO (direct line +1 415-555-0134)",
    "company": "Acme",
    "email": "jane.doe@acme.com",
    "phone": "+1 (415) 555-0134",
    "linkedin_url": "https://www.linkedin.com/in/jane-doe-acme",
    "location": "San Francisco, CA",
    "is_public_company": True,
    "company_ticker": "AAPL",
    "notes": "met at the gala, personal cell 415.555.0199",
}
# Web mentions quoting contact details in their free text and links.
EXA = WebMentions(
    query="Jane Doe Acme",
    mentions=(
        Mention(
            title="Jane Doe pledges $43 million to the City Opera",
            url="https://news.example.com/2025/03/30/doe-pledge",
            published_date="2025-03-30",
            highlights=(
                "Jane Doe pledged $43.0 million to the City Opera on March 30.",
                "Press contact: jane.doe@acme.com, +44 20 7946 0958 or (415) 555-0177.",
                "Reach her at jane [at] doe-family [dot] org or 4155550166.",
            ),
        ),
        Mention(
            title="Contact Jane Doe",
            url="mailto:jdoe.private@gmail.com",
            published_date=None,
            highlights=("Profile: https://www.linkedin.com/in/janedoe-private",),
        ),
    ),
    wealth_signals=(
        WealthSignal(
            kind="philanthropy",
            text="pledged $43.0 million; call 415-555-0188 for details",
            url="https://news.example.com/2025/03/30/doe-pledge",
        ),
    ),
    cost_usd=0.005,
)


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@pytest.fixture
def real_sources(emu, app_db) -> dict[str, Any]:
    """Apollo, ContactOut and EDGAR answers from the real clients against the emulator (which
    returns emails and phones), plus the Exa mentions above."""
    urls = emu.base_urls()
    common = {"app_db": app_db, "provider_mode": "emulator", **FAST}
    apollo = ApolloResource(api_key=SECRET, base_url=urls["apollo"], **common).match_person(
        name="Jane Doe", email="jane.doe@acme.com", organization_name="Acme"
    )
    contact = ContactOutResource(
        api_key=SECRET, base_url=urls["contactout"], **common
    ).enrich_person(email="jane.doe@acme.com", full_name="Jane Doe", company="Acme")
    edgar = EdgarResource(
        user_agent="phronesis tests tests@example.com",
        www_base_url=urls["edgar_www"],
        data_base_url=urls["edgar_data"],
        **common,
    ).insider_transactions(ticker="AAPL")
    assert apollo is not None and contact is not None and edgar is not None
    # The premise: the sources really are full of contact details.
    assert apollo.email and contact.work_emails and contact.personal_emails and contact.phones
    return {"apollo": apollo, "contactout": contact, "exa": EXA, "edgar": edgar}


def contact_details(sources: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Every email and phone number the prospect row and the sources hold."""
    apollo, contact = sources["apollo"], sources["contactout"]
    emails = {
        PROSPECT_ROW["email"],
        apollo.email,
        *apollo.personal_emails,
        *contact.work_emails,
        *contact.personal_emails,
        "jdoe.private@gmail.com",
    }
    phones = {
        PROSPECT_ROW["phone"],
        "415.555.0199",
        "+44 20 7946 0958",
        "(415) 555-0177",
        "4155550166",
        "415-555-0188",
        *apollo.phones,
        *contact.phones,
    }
    return {e for e in emails if e}, {p for p in phones if p}


def test_the_body_the_sdk_sends_carries_no_email_or_phone(emu, app_db, real_sources) -> None:
    emu.reset_stats()
    claude = ClaudeResource(
        api_key=SECRET, base_url=emu.base_urls()["anthropic"], app_db=app_db, max_retries=0
    )
    summary = claude.summarize_prospect(prospect=dict(PROSPECT_ROW), sources=real_sources)
    assert summary.summary

    sent = emu.received("anthropic")
    assert [route for route, _ in sent] == ["POST /anthropic/v1/messages"]
    raw = sent[0][1].decode()
    body = json.loads(raw)
    strings = _strings(body)
    emails, phones = contact_details(real_sources)

    for email in emails:
        assert email.lower() not in raw.lower(), email
    assert "@" not in raw and "%40" not in raw
    assert "[at]" not in raw and "doe-family" not in raw
    for phone in phones:  # in any formatting: compare digit runs of every string sent
        assert all(_digits(phone) not in _digits(s) for s in strings), phone
    assert "linkedin.com/in" not in raw

    # ... while what a sales rep needs still gets there.
    prompt = body["messages"][0]["content"]
    assert "Jane Doe" in prompt and "Acme" in prompt and "San Francisco" in prompt
    assert "pledged $43.0 million to the City Opera" in prompt
    assert real_sources["edgar"].transactions[0].owner_name in prompt
    assert EMAIL_REDACTED in prompt and PHONE_REDACTED in prompt


def test_only_allow_listed_fields_reach_the_prompt(real_sources) -> None:
    prompt = build_prompt(dict(PROSPECT_ROW), real_sources)
    data = json.loads(prompt.split("\n\n", 1)[1])
    assert set(data["prospect"]) == {
        "name",
        "title",
        "company",
        "location",
        "is_public_company",
        "company_ticker",
    }
    apollo = data["sources"]["apollo"]
    for field in ("email", "personal_emails", "phones", "linkedin_url", "email_status"):
        assert field not in apollo
    assert apollo["employment_history"]  # nested records keep their allowed fields
    contact = data["sources"]["contactout"]
    assert not {"work_emails", "personal_emails", "phones", "linkedin_url"} & set(contact)
    assert "query" not in data["sources"]["exa"]  # not needed, so not sent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe@acme.com now", f"mail {EMAIL_REDACTED} now"),
        ("jane (at) acme (dot) com", EMAIL_REDACTED),
        ("mailto:jane%40acme.com", f"mailto:{EMAIL_REDACTED}"),
        ("call +1 (415) 555-0134.", f"call {PHONE_REDACTED}."),
        ("0044 20 7946 0958 or 4155550134", f"{PHONE_REDACTED} or {PHONE_REDACTED}"),
        ("tel:+1-415-555-0134", f"tel:{PHONE_REDACTED}"),
        # not contact details: dates, year ranges, amounts, percentages stay as they are
        ("filed 2025-03-30, served 2015-2020 and 2019 2021", None),
        ("sold 1,250,000 shares at $43.10 ($53.9 million), a 10.5% stake", None),
        ("https://news.example.com/2025/03/30/story-123456", None),
    ],
)
def test_scrubbing_free_text(text: str, expected: str | None) -> None:
    assert scrub_contact_details(text) == (text if expected is None else expected)


def _scrub_every_pattern(text: str) -> str:
    """The scrubbing without its shortcuts: every pattern on every text."""
    text = claude._EMAIL.sub(EMAIL_REDACTED, text)
    text = claude._LINKEDIN_PROFILE.sub(claude.PROFILE_REDACTED, text)
    return claude._PHONE_CANDIDATE.sub(claude._phone_or_kept, text)


# Pieces that put together make contact details in every spelling the patterns know, and text
# that looks like them without being one.
PIECES = [
    "jane.doe", "@", "%40", " [at] ", "(at)", " [dot] ", "(dot)", ".", "acme", "com", "org",
    "+1", "+44", "00", " ", "-", ".", "(415)", "415", "555", "0134", "20", "7946", "0958",
    "4155550166", "2025-03-30", "1,250,000", "$43.10", "10.5%", "https://", "www.",
    "LinkedIn", "lİnkedin", "linkedin.com/in/", "LINKEDIN.COM/pub/", "jane-doe", "\n", "é", "x",
]  # fmt: skip


def test_the_shortcuts_scrub_exactly_what_every_pattern_does() -> None:
    import random

    rng = random.Random(7)
    texts = ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12))) for _ in range(20_000)]
    for text in texts:
        assert scrub_contact_details(text) == _scrub_every_pattern(text), text
