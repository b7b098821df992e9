"""Claude summaries through the official SDK against the emulator: structured output
validated by pydantic, the SDK's own retries, usage and breaker around the call."""

from __future__ import annotations

import time

import pytest

from phronesis_dagster.resources.claude import ClaudeResource, ProspectSummary, build_prompt
from phronesis_dagster.resources.errors import (
    CircuitOpenError,
    MalformedResponseError,
    ProviderAnswerError,
    ProviderAuthError,
    ProviderUnavailableError,
)
from phronesis_dagster.resources.exa import Mention, WebMentions
from tests.resources.conftest import heal_after_first_failure, usage_row

SECRET = "sk-ant-test-secret-77"
PROSPECT = {"name": "Warren Buffett", "title": "CEO", "company": "Acme"}
SOURCES = {
    "web": WebMentions(
        query="Warren Buffett Acme",
        mentions=(
            Mention(
                title="Buffett pledges $43 million",
                url="https://example.com/a",
                published_date="2025-03-30",
                highlights=("Warren Buffett pledged $43.0 million to the City Opera.",),
            ),
        ),
        wealth_signals=(),
        cost_usd=0.005,
    ),
    "contact": None,  # a source that failed is simply left out
}


def make(emu, db, **overrides) -> ClaudeResource:
    settings = {"api_key": SECRET, "base_url": emu.base_urls()["anthropic"], "app_db": db}
    settings.update({"max_retries": 2, "timeout_seconds": 5.0, **overrides})
    return ClaudeResource(**settings)


def requests_seen(emu) -> int:
    return emu.stats()["requests"].get("anthropic", 0)


def test_summary_is_validated_structured_output_with_cost(emu, rdb):
    res = make(emu, rdb, input_price_per_mtok=3.0, output_price_per_mtok=15.0)
    summary = res.summarize_prospect(prospect=PROSPECT, sources=SOURCES)
    assert isinstance(summary, ProspectSummary)
    assert summary.summary and isinstance(summary.key_facts, list)
    assert isinstance(summary.wealth_signals, list) and isinstance(summary.talking_points, list)
    row = usage_row(rdb, "claude")
    assert (row["success_count"], row["failure_count"]) == (1, 0)
    assert float(row["cost_usd"]) > 0
    assert requests_seen(emu) == 1


def test_prompt_carries_the_sources_that_succeeded():
    prompt = build_prompt(PROSPECT, SOURCES)
    assert "City Opera" in prompt and '"contact"' not in prompt


def test_json_that_does_not_fit_the_schema_is_rejected(emu, rdb):
    emu.configure(faults={"anthropic": {"malformed_rate": 1.0}})
    res = make(emu, rdb)
    with pytest.raises(MalformedResponseError, match="ProspectSummary"):
        res.summarize_prospect(prospect=PROSPECT, sources=SOURCES)
    row = usage_row(rdb, "claude")
    assert (row["success_count"], row["failure_count"]) == (0, 1)
    assert res.breaker.snapshot().window_failures == 1


def test_401_is_not_retried_and_hides_the_key(emu, rdb):
    emu.configure(faults={"anthropic": {"unauthorized": True}})
    res = make(emu, rdb)
    with pytest.raises(ProviderAuthError) as info:
        res.summarize_prospect(prospect=PROSPECT, sources=SOURCES)
    assert info.value.http_status == 401 and SECRET not in str(info.value)
    assert requests_seen(emu) == 1
    assert usage_row(rdb, "claude")["success_count"] == 0


def test_sdk_retries_429_honouring_retry_after(emu, rdb):
    emu.configure(faults={"anthropic": {"storm_429_rate": 1.0, "retry_after_seconds": 1}})
    res = make(emu, rdb)
    seen = heal_after_first_failure(res.sdk._client, emu, "anthropic", storm_429_rate=0.0)
    started = time.monotonic()
    assert res.summarize_prospect(prospect=PROSPECT, sources=SOURCES).summary
    assert time.monotonic() - started >= 1.0
    assert seen == [429, 200]  # the SDK's own retry, nothing stacked on top
    row = usage_row(rdb, "claude")
    assert (row["success_count"], row["rate_limited_count"]) == (1, 1)


def test_sdk_retries_5xx_then_succeeds(emu, rdb):
    emu.configure(faults={"anthropic": {"error_rate": 1.0}})
    res = make(emu, rdb)
    seen = heal_after_first_failure(res.sdk._client, emu, "anthropic", error_rate=0.0)
    assert res.summarize_prospect(prospect=PROSPECT, sources=SOURCES).summary
    assert seen[0] in (500, 529) and seen[1:] == [200]
    row = usage_row(rdb, "claude")
    assert (row["success_count"], row["failure_count"]) == (1, 1)


def test_5xx_until_retries_run_out(emu, rdb):
    emu.configure(faults={"anthropic": {"error_rate": 1.0}})
    res = make(emu, rdb, max_retries=1)
    with pytest.raises(ProviderUnavailableError, match="2 attempts"):
        res.summarize_prospect(prospect=PROSPECT, sources=SOURCES)
    assert requests_seen(emu) == 2


def test_timeout(emu, rdb):
    emu.configure(faults={"anthropic": {"timeout_rate": 1.0, "timeout_seconds": 0.6}})
    res = make(emu, rdb, timeout_seconds=0.15, max_retries=0)
    with pytest.raises(ProviderUnavailableError, match="timed out"):
        res.summarize_prospect(prospect=PROSPECT, sources=SOURCES)
    assert usage_row(rdb, "claude")["success_count"] == 0


def test_open_breaker_skips_the_call(emu, rdb):
    res = make(emu, rdb, breaker_min_calls=1)
    res.breaker.record_failure("HTTP 529 overloaded", probe=False)
    with pytest.raises(CircuitOpenError):
        res.summarize_prospect(prospect=PROSPECT, sources=SOURCES)
    assert requests_seen(emu) == 0


def test_loading_the_code_location_does_not_import_the_sdk():
    """The SDK costs about a second of CPU to import; the code server, the daemon and the
    nightly usage and quota runs load the code location without ever calling Claude."""
    import subprocess
    import sys
    from pathlib import Path

    probe = (
        "import sys, phronesis_dagster.definitions as d; "
        "assert d.defs.resources['claude'] is not None; "
        "print('anthropic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == "False"


def test_warm_up_builds_the_client_in_the_background_once(emu, rdb):
    """The batch starts the SDK's import when it starts (it overlaps the data sources' calls);
    the first summary then uses that client instead of building one, and `close` waits for a
    warm-up still running instead of leaving it importing at process exit."""
    res = make(emu, rdb)
    res.warm_up()
    res.warm_up()  # a second ask starts nothing new
    warming = res._warming
    assert warming is not None and warming.name == "claude-sdk-warm-up"
    warming.join(60)
    built = res.sdk
    res.summarize_prospect(prospect=PROSPECT, sources=SOURCES)
    assert res.sdk is built
    assert requests_seen(emu) == 1
    res.close()
    assert res._warming is None and res._sdk is None
    cold = make(emu, rdb)
    cold.warm_up()
    cold.close()  # joins the warm-up: nothing left running
    assert not warming.is_alive() and cold._warming is None


# ---- answers that end without a whole summary -------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "words"),
    [("max_tokens", "cut off at max_tokens"), ("refusal", "declined to summarise")],
)
def test_truncated_or_refused_answer_is_a_clear_failure_not_a_provider_outage(
    emu, rdb, scenario, words
):
    emu.configure(faults={"anthropic": {"scenario": scenario}})
    res = make(emu, rdb)
    with pytest.raises(ProviderAnswerError, match=words):
        res.summarize_prospect(prospect=PROSPECT, sources=SOURCES)
    assert requests_seen(emu) == 1  # an answer, not retried
    row = usage_row(rdb, "claude")
    assert (row["success_count"], row["failure_count"]) == (0, 1)
    snap = res.breaker.snapshot()
    assert (snap.state, snap.window_failures) == ("closed", 0)  # Anthropic itself is fine


def test_the_sdk_authenticates_as_it_does_today_and_the_emulator_checks_the_version(emu, rdb):
    import anthropic
    import httpx

    seen: list[dict[str, str]] = []
    res = make(emu, rdb)
    res.sdk._client.event_hooks["request"].append(lambda r: seen.append(dict(r.headers)))
    assert res.summarize_prospect(prospect=PROSPECT, sources=SOURCES).summary
    # anthropic 2.x sends the key as a bearer token and a date as anthropic-version.
    assert seen[-1]["authorization"] == f"Bearer {SECRET}"
    assert seen[-1]["anthropic-version"] == anthropic._constants.ANTHROPIC_API_VERSION
    url = emu.base_urls()["anthropic"] + "/v1/messages"
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    bad = httpx.post(url, json=body, headers={"x-api-key": "k", "anthropic-version": "latest"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["error"]["message"]
