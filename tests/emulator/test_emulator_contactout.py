"""ContactOut emulation: envelope, include semantics, no-match, validation, auth, rate limit."""

from __future__ import annotations

import httpx

from phronesis_dagster.emulator import data

ENRICH = "/v1/people/enrich"
ALL_CONTACTS = ["work_email", "personal_email", "phone"]


def _matching_email(seed: int = 0, miss: bool = False) -> str:
    """An email the seed deterministically does (or does not) know."""
    for first in data.FIRST_NAMES:
        email = f"{first.lower()}.tester@acme.com"
        key = data.person_key(email=email)
        if data.is_no_match(seed, "contactout", key) == miss:
            return email
    raise AssertionError("no email found")


def test_enrich_by_email_returns_profile_with_requested_contacts(emulator):
    url = emulator.base_urls()["contactout"] + ENRICH
    email = _matching_email()
    r = httpx.post(url, headers={"token": "k"}, json={"email": email, "include": ALL_CONTACTS})
    assert r.status_code == 200
    body = r.json()
    assert body["status_code"] == 200
    profile = body["profile"]
    assert profile["work_email"] == [email]
    assert len(profile["personal_email"]) == 1 and "@" in profile["personal_email"][0]
    assert profile["phone"][0].startswith("+1")
    assert profile["full_name"].endswith(" Tester")
    assert "linkedin.com/in/" in profile["url"]


def test_enrich_without_include_returns_profile_only(emulator):
    url = emulator.base_urls()["contactout"] + ENRICH
    r = httpx.post(url, headers={"token": "k"}, json={"email": _matching_email()})
    profile = r.json()["profile"]
    assert "full_name" in profile
    for key in ("work_email", "personal_email", "phone", "email"):
        assert key not in profile


def test_enrich_by_name_and_company(emulator):
    url = emulator.base_urls()["contactout"] + ENRICH
    seen = set()
    for i in range(20):
        payload = {"full_name": f"Jane Roe{i}", "company": ["Acme"], "include": ["work_email"]}
        r = httpx.post(url, headers={"token": "k"}, json=payload)
        assert r.status_code in (200, 404)
        seen.add(r.status_code)
        if r.status_code == 200:
            assert r.json()["profile"]["full_name"] == f"Jane Roe{i}"
            assert r.json()["profile"]["work_email"][0].endswith("@acme.com")
    assert 200 in seen


def test_unknown_person_is_404(emulator):
    url = emulator.base_urls()["contactout"] + ENRICH
    r = httpx.post(url, headers={"token": "k"}, json={"email": _matching_email(miss=True)})
    assert r.status_code == 404
    assert r.json()["status_code"] == 404 and r.json()["message"]


def test_about_ten_percent_have_no_match():
    misses = sum(
        data.is_no_match(0, "contactout", data.person_key(email=f"p{i}@x.com")) for i in range(2000)
    )
    assert 120 < misses < 280


def test_invalid_input_is_rejected(emulator):
    url = emulator.base_urls()["contactout"] + ENRICH
    assert (
        httpx.post(url, headers={"token": "k"}, json={"full_name": "Only Name"}).status_code == 400
    )
    bad_url = {"linkedin_url": "https://example.com/jane"}
    assert httpx.post(url, headers={"token": "k"}, json=bad_url).status_code == 422
    bad_include = {"email": "a@b.com", "include": ["fax"]}
    assert httpx.post(url, headers={"token": "k"}, json=bad_include).status_code == 422


def test_bad_token_is_400_as_contactout_documents(emulator):
    # ContactOut's docs: 400 = bad credentials or invalid headers (401 = bad request).
    url = emulator.base_urls()["contactout"] + ENRICH
    for headers in ({"token": "invalid"}, {}):
        r = httpx.post(url, headers=headers, json={"email": "a@b.com"})
        assert r.status_code == 400
        assert r.json()["status_code"] == 400


def test_over_rate_limit_is_429_with_retry_after(emulator):
    emulator.configure(rate_limit_per_second={"contactout": 2})
    url = emulator.base_urls()["contactout"] + ENRICH
    with httpx.Client() as client:
        codes = [
            client.post(url, headers={"token": "k"}, json={"email": "a@b.com"}) for _ in range(6)
        ]
    limited = [r for r in codes if r.status_code == 429]
    assert limited, [r.status_code for r in codes]
    assert int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].json()["status_code"] == 429
