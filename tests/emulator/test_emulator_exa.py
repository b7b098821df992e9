"""Exa emulation: search shape, zero-result queries, wealth texts, auth, 429 body and the
account refusals (402 out of credits, 403 no access)."""

from __future__ import annotations

import httpx

from phronesis_dagster.emulator import data

WEALTH_WORDS = (
    "sold shares worth",
    "board member of",
    "acquired",
    "net worth",
    "philanthropy",
    "real estate",
)


def _query(miss: bool) -> str:
    for i in range(1000):
        query = f"Jane Doe{i} Acme Corp"
        if data.is_no_match(0, "exa", query.lower()) == miss:
            return query
    raise AssertionError("no query found")


def test_search_shape(emulator):
    url = emulator.base_urls()["exa"] + "/search"
    body = {"query": _query(False), "numResults": 5, "contents": {"text": True, "highlights": True}}
    r = httpx.post(url, headers={"x-api-key": "k"}, json=body)
    assert r.status_code == 200
    payload = r.json()
    assert payload["requestId"]
    assert payload["costDollars"]["total"] > 0
    assert "breakDown" in payload["costDollars"]
    assert 1 <= len(payload["results"]) <= 5
    for result in payload["results"]:
        assert {
            "title",
            "url",
            "publishedDate",
            "author",
            "id",
            "text",
            "highlights",
            "highlightScores",
        } <= set(result)
        assert result["url"].startswith("https://")


def test_bearer_auth_is_accepted(emulator):
    url = emulator.base_urls()["exa"] + "/search"
    r = httpx.post(url, headers={"Authorization": "Bearer k"}, json={"query": _query(False)})
    assert r.status_code == 200


def test_some_queries_have_zero_results(emulator):
    url = emulator.base_urls()["exa"] + "/search"
    r = httpx.post(url, headers={"x-api-key": "k"}, json={"query": _query(True)})
    assert r.status_code == 200
    assert r.json()["results"] == []


def test_wealth_signals_appear_in_texts(emulator):
    emulator.configure(rate_limit_per_second={"exa": None})  # more than Exa's 10/s, at once
    url = emulator.base_urls()["exa"] + "/search"
    texts = []
    with httpx.Client() as client:
        for i in range(15):
            r = client.post(url, headers={"x-api-key": "k"}, json={"query": f"Sam Lee{i} CEO"})
            texts += [res["text"] for res in r.json()["results"]]
    joined = " ".join(texts)
    assert sum(word in joined for word in WEALTH_WORDS) >= 4
    assert "$" in joined


def test_invalid_key_and_bad_request(emulator):
    url = emulator.base_urls()["exa"] + "/search"
    r = httpx.post(url, headers={"x-api-key": "invalid"}, json={"query": "x"})
    assert r.status_code == 401
    assert r.json()["tag"] == "INVALID_API_KEY" and "requestId" in r.json()
    r = httpx.post(url, headers={"x-api-key": "k"}, json={"numResults": 3})
    assert r.status_code == 400 and r.json()["tag"] == "INVALID_REQUEST_BODY"


def test_rate_limit_body_is_only_error(emulator):
    emulator.configure(rate_limit_per_second={"exa": 1})
    url = emulator.base_urls()["exa"] + "/search"
    with httpx.Client() as client:
        responses = [
            client.post(url, headers={"x-api-key": "k"}, json={"query": "q"}) for _ in range(4)
        ]
    limited = [r for r in responses if r.status_code == 429]
    assert limited
    assert list(limited[0].json()) == ["error"]
    assert "exceeded your Exa rate limit" in limited[0].json()["error"]
    assert "retry-after" in limited[0].headers


def test_out_of_credits_is_a_402_with_exas_error_body_on_every_request(emulator):
    emulator.configure(faults={"exa": {"scenario": "out_of_credits"}})
    url = emulator.base_urls()["exa"] + "/search"
    with httpx.Client() as client:
        responses = [
            client.post(url, headers={"x-api-key": "k"}, json={"query": f"q{i}"}) for i in range(3)
        ]
    assert [r.status_code for r in responses] == [402] * 3  # persistent while the scenario is on
    body = responses[0].json()
    assert set(body) == {"requestId", "error", "tag"} and body["tag"] == "NO_MORE_CREDITS"
    assert "credits" in body["error"]

    emulator.configure(faults={"exa": {"scenario": ""}})  # topped up: answers again
    assert httpx.post(url, headers={"x-api-key": "k"}, json={"query": "q"}).status_code == 200


def test_key_and_access_refusals_carry_exas_tags(emulator):
    url = emulator.base_urls()["exa"] + "/search"
    expected = {
        "key_budget_exceeded": (402, "API_KEY_BUDGET_EXCEEDED"),
        "access_denied": (403, "ACCESS_DENIED"),
        "prohibited_content": (403, "PROHIBITED_CONTENT"),
    }
    for scenario, (status, tag) in expected.items():
        emulator.configure(faults={"exa": {"scenario": scenario}})
        r = httpx.post(url, headers={"x-api-key": "k"}, json={"query": "q"})
        assert (r.status_code, r.json()["tag"]) == (status, tag), scenario
        assert r.json()["requestId"] and r.json()["error"]
