"""Emulator plumbing: faults, stats, runtime config, determinism, concurrency, CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from phronesis_dagster.emulator import EmulatorConfig, EmulatorServer

CONTACTOUT = "/v1/people/enrich"
UA = {"User-Agent": "Phronesis Test ops@phronesis.example"}


def _exa(client: httpx.Client, emulator: EmulatorServer, query: str = "Jane Doe") -> httpx.Response:
    return client.post(
        emulator.base_urls()["exa"] + "/search", headers={"x-api-key": "k"}, json={"query": query}
    )


def test_base_urls(emulator):
    urls = emulator.base_urls()
    assert set(urls) == {"contactout", "exa", "edgar_www", "edgar_data", "apollo", "anthropic"}
    assert urls["edgar_data"] == emulator.url + "/sec/data"


def test_error_rate_is_roughly_as_configured(emulator):
    emulator.configure(faults={"exa": {"error_rate": 0.3}}, rate_limit_per_second={"exa": None})
    with httpx.Client() as client:
        codes = [_exa(client, emulator, f"q{i}").status_code for i in range(300)]
    errors = [c for c in codes if c >= 500]
    assert 60 <= len(errors) <= 120
    assert set(errors) <= {500, 502, 503}
    assert set(codes) - set(errors) == {200}


def test_error_body_is_provider_format(emulator):
    emulator.configure(faults={"exa": {"error_rate": 1.0}, "contactout": {"error_rate": 1.0}})
    with httpx.Client() as client:
        r = _exa(client, emulator)
        assert {"requestId", "error", "tag"} <= set(r.json())
        r = client.post(
            emulator.base_urls()["contactout"] + CONTACTOUT,
            headers={"token": "k"},
            json={"email": "a@b.com"},
        )
        assert r.json()["status_code"] == r.status_code >= 500


def test_timeout_fault_outlasts_client_timeout(emulator):
    emulator.configure(faults={"exa": {"timeout_rate": 1.0, "timeout_seconds": 1.0}})
    with httpx.Client(timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
        _exa(client, emulator)


def test_malformed_fault_truncates_body(emulator):
    emulator.configure(faults={"exa": {"malformed_rate": 1.0}})
    with httpx.Client() as client:
        r = _exa(client, emulator)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_unauthorized_and_storm_faults(emulator):
    emulator.configure(faults={"exa": {"unauthorized": True}, "apollo": {"storm_429_rate": 1.0}})
    with httpx.Client() as client:
        assert _exa(client, emulator).status_code == 401
        r = client.post(
            emulator.base_urls()["apollo"] + "/api/v1/people/match",
            headers={"x-api-key": "k"},
            json={"email": "a@b.com"},
        )
        assert r.status_code == 429 and r.headers["retry-after"] == "1"


def test_stats_count_requests_and_keys(emulator):
    urls = emulator.base_urls()
    with httpx.Client() as client:
        client.post(
            urls["contactout"] + CONTACTOUT,
            headers={"token": "k"},
            json={"email": "Jane.Doe@Acme.com"},
        )
        client.post(urls["contactout"] + CONTACTOUT, headers={"token": "invalid"}, json={})
        client.get(urls["edgar_data"] + "/submissions/CIK0000320193.json", headers=UA)
        stats = client.get(emulator.url + "/_emulator/stats").json()
    assert stats["total"] == 3
    assert stats["requests"] == {"contactout": 2, "edgar": 1}
    assert (
        stats["responses"]["contactout"]["POST /contactout/v1/people/enrich"]["400"] == 1
    )  # ContactOut: bad credentials
    assert stats["responses"]["edgar"]["GET /sec/data/submissions/CIK0000320193.json"] == {"200": 1}
    assert "email:jane.doe@acme.com" in stats["keys"]["contactout"]
    assert stats["keys"]["edgar"] == ["0000320193"]
    assert httpx.post(emulator.url + "/_emulator/reset").status_code == 200
    assert emulator.stats()["total"] == 0


def test_runtime_config_endpoint(emulator):
    url = emulator.url + "/_emulator/config"
    r = httpx.post(
        url,
        json={
            "latency_ms": 1,
            "rate_limit_per_second": {"exa": 5},
            "faults": {"anthropic": {"error_rate": 0.25}},
        },
    )
    assert r.status_code == 200
    config = httpx.get(url).json()
    assert config["latency_ms"] == 1
    assert config["rate_limit_per_second"]["exa"] == 5
    assert config["faults"]["anthropic"]["error_rate"] == 0.25
    assert httpx.post(url, json={"faults": {"exa": {"bogus": 1}}}).status_code == 400
    assert (
        httpx.post(url, json={"reset_faults": True}).json()["faults"]["anthropic"]["error_rate"]
        == 0
    )


def test_latency_is_added(emulator):
    emulator.configure(latency_ms=150)
    with httpx.Client() as client:
        started = time.perf_counter()
        _exa(client, emulator)
        assert time.perf_counter() - started >= 0.15


def test_same_seed_same_answers_regardless_of_order():
    queries = [f"Person {i} Corp" for i in range(8)]
    bodies = []
    for order in (queries, list(reversed(queries))):
        with EmulatorServer(EmulatorConfig(seed=42)) as server, httpx.Client() as client:
            answers = {}
            for q in order:
                r = _exa(client, server, q).json()
                r.pop("requestId")
                answers[q] = r
            r = client.post(
                server.base_urls()["apollo"] + "/api/v1/people/match",
                headers={"x-api-key": "k"},
                json={"email": "sam.lee@beta.io"},
            )
            answers["apollo"] = r.json()
            bodies.append(answers)
    assert bodies[0] == bodies[1]
    with EmulatorServer(EmulatorConfig(seed=43)) as other, httpx.Client() as client:
        r = _exa(client, other, queries[0]).json()
        r.pop("requestId")
    assert r != bodies[0][queries[0]]


def test_handles_fifty_concurrent_clients(emulator):
    emulator.configure(rate_limit_per_second={"exa": None})  # the server's capacity, not Exa's
    url = emulator.base_urls()["exa"] + "/search"

    def worker(n: int) -> list[int]:
        with httpx.Client() as client:
            return [
                client.post(url, headers={"x-api-key": "k"}, json={"query": f"{n}-{i}"}).status_code
                for i in range(10)
            ]

    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = [c for batch in pool.map(worker, range(50)) for c in batch]
    assert codes.count(200) == 500
    assert emulator.stats()["requests"]["exa"] == 500


def test_cli_prints_base_urls():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "phronesis_dagster.emulator",
            "--port",
            str(port),
            "--seed",
            "3",
            "--rate-limit",
            "exa=100,edgar=10",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in first
        config = httpx.get(f"http://127.0.0.1:{port}/_emulator/config").json()
        assert config["seed"] == 3 and config["rate_limit_per_second"]["edgar"] == 10
    finally:
        proc.terminate()
        proc.wait(timeout=10)


VALID_REQUESTS = {
    "contactout": ("POST", "contactout", CONTACTOUT, {"token": "k"}, {"email": "a@b.com"}),
    "exa": ("POST", "exa", "/search", {"x-api-key": "k"}, {"query": "q"}),
    "edgar": ("GET", "edgar_data", "/submissions/CIK0000320193.json", UA, None),
    "apollo": ("POST", "apollo", "/api/v1/people/match", {"x-api-key": "k"}, {"email": "a@b.com"}),
    "anthropic": (
        "POST",
        "anthropic",
        "/v1/messages",
        {"x-api-key": "k", "anthropic-version": "2023-06-01"},
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    ),
}


# Not EDGAR: SEC answers 403 "Request Rate Threshold Exceeded" without Retry-After and blocks
# the IP (tests/emulator/test_emulator_edgar.py).
@pytest.mark.parametrize("provider", sorted(set(VALID_REQUESTS) - {"edgar"}))
def test_every_provider_answers_429_with_retry_after_over_its_limit(emulator, provider):
    method, base, path, headers, body = VALID_REQUESTS[provider]
    emulator.configure(rate_limit_per_second={provider: 2})
    url = emulator.base_urls()[base] + path
    with httpx.Client() as client:
        codes = [client.request(method, url, headers=headers, json=body) for _ in range(5)]
    assert codes[0].status_code == 200
    limited = [r for r in codes if r.status_code == 429]
    assert limited, [r.status_code for r in codes]
    assert int(limited[0].headers["retry-after"]) >= 1


def test_published_limits_are_enforced_by_default(emulator):
    """Exa 10/s; Apollo's search endpoints have their own budget (200/min -> 3/s), apart from
    enrichment (1,000/min -> 16/s), as Apollo counts per endpoint."""
    urls = emulator.base_urls()
    with httpx.Client() as client:
        exa = [_exa(client, emulator, f"q{i}").status_code for i in range(25)]
        apollo = urls["apollo"] + "/api/v1"
        key = {"x-api-key": "k"}
        search = [
            client.post(apollo + "/mixed_people/api_search", headers=key, json={"page": 1})
            for _ in range(8)
        ]
        match = client.post(apollo + "/people/match", headers=key, json={"email": "a@b.com"})
    assert 10 <= exa.count(200) <= 20 and 429 in exa
    assert 3 <= [r.status_code for r in search].count(200) <= 6
    assert match.status_code == 200  # enrichment's budget is untouched by the searches
    assert emulator.config.rate_limit_per_second["apollo.search"] == 3


def test_scenarios_are_validated_per_provider(emulator):
    emulator.configure(faults={"exa": {"scenario": "rate_block"}})  # EDGAR's, not Exa's
    r = _exa(httpx.Client(), emulator, "q")
    assert r.status_code == 500 and "unknown scenario 'rate_block'" in r.json()["error"]
