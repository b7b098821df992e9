"""Apollo emulation: people match, api_search, deprecated search, auth, rate limit headers."""

from __future__ import annotations

import httpx

from phronesis_dagster.emulator import data

MATCH = "/api/v1/people/match"


def _linkedin(miss: bool) -> str:
    for i in range(1000):
        url = f"https://www.linkedin.com/in/jane-doe-{i}"
        if data.is_no_match(0, "apollo", data.person_key(linkedin_url=url)) == miss:
            return url
    raise AssertionError("no url found")


def test_people_match_shape_and_usage_headers(emulator):
    url = emulator.base_urls()["apollo"] + MATCH
    body = {"linkedin_url": _linkedin(False), "reveal_personal_emails": True}
    r = httpx.post(url, headers={"x-api-key": "k"}, json=body)
    assert r.status_code == 200
    payload = r.json()
    person = payload["person"]
    assert payload["request_id"]
    assert person["first_name"] == "Jane" and person["last_name"] == "Doe"
    assert person["email_status"] == "verified" and "@" in person["email"]
    assert person["personal_emails"] and person["organization"]["primary_domain"]
    assert person["employment_history"][0]["current"] is True
    assert int(r.headers["x-minute-usage"]) >= 1
    assert "x-minute-requests-left" in r.headers and "x-24-hour-usage" in r.headers


def test_people_match_no_match_is_null_person(emulator):
    url = emulator.base_urls()["apollo"] + MATCH
    r = httpx.post(url, headers={"x-api-key": "k"}, json={"linkedin_url": _linkedin(True)})
    assert r.status_code == 200
    assert r.json()["person"] is None and "request_id" in r.json()


def test_api_search_returns_obfuscated_people(emulator):
    url = emulator.base_urls()["apollo"] + "/api/v1/mixed_people/api_search"
    body = {
        "person_titles": ["VP Sales"],
        "q_organization_domains_list": ["acme.com"],
        "per_page": 5,
    }
    payload = httpx.post(url, headers={"x-api-key": "k"}, json=body).json()
    assert isinstance(payload["total_entries"], int)
    for person in payload["people"]:
        assert "last_name_obfuscated" in person and "***" in person["last_name_obfuscated"]
        assert "email" not in person and "last_name" not in person


def test_deprecated_search_is_refused(emulator):
    url = emulator.base_urls()["apollo"] + "/api/v1/mixed_people/search"
    r = httpx.post(url, headers={"x-api-key": "k"}, json={})
    assert r.status_code == 422
    assert "api_search" in r.json()["error"]


def test_invalid_key_is_plain_text_without_usage_headers(emulator):
    url = emulator.base_urls()["apollo"] + MATCH
    r = httpx.post(url, headers={"x-api-key": "invalid"}, json={"email": "a@b.com"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith("Invalid API key. See https://docs.apollo.io/reference/authentication")
    assert "x-minute-usage" not in r.headers


def test_429_has_message_and_retry_after(emulator):
    emulator.configure(rate_limit_per_second={"apollo": 1})
    url = emulator.base_urls()["apollo"] + MATCH
    with httpx.Client() as client:
        responses = [
            client.post(url, headers={"x-api-key": "k"}, json={"email": "a@b.com"})
            for _ in range(3)
        ]
    limited = [r for r in responses if r.status_code == 429]
    assert limited
    assert "maximum number of api calls" in limited[0].json()["message"]
    assert int(limited[0].headers["retry-after"]) >= 1
