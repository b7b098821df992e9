"""Anthropic emulation through the real `anthropic` SDK: structured output, tools, errors."""

from __future__ import annotations

import anthropic
import httpx
import pydantic
import pytest

MODEL = "claude-haiku-4-5"
PROMPT = (
    "Profile: Jane Doe is Chief Financial Officer at Acme Robotics. She sold shares worth "
    "$4.2 million in March. Contact: jane.doe@acme-robotics.com. She is a board member of "
    "the City Opera."
)


class WealthSignal(pydantic.BaseModel):
    kind: str
    evidence: str
    amount_usd: float | None = None
    confidence: float = pydantic.Field(ge=0, le=1)


class ProspectSummary(pydantic.BaseModel):
    full_name: str
    email: str
    title: str
    tier: int = pydantic.Field(ge=1, le=3)
    likely_wealthy: bool
    signals: list[WealthSignal]


def _client(emulator, **kwargs) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="k", base_url=emulator.base_urls()["anthropic"], **kwargs)


def test_parse_round_trip_fits_model_and_uses_prompt_facts(emulator):
    message = _client(emulator).messages.parse(
        model=MODEL,
        max_tokens=1024,
        messages=[{"role": "user", "content": PROMPT}],
        output_format=ProspectSummary,
    )
    parsed = message.parsed_output
    assert isinstance(parsed, ProspectSummary)
    assert parsed.full_name == "Jane Doe"
    assert parsed.email == "jane.doe@acme-robotics.com"
    assert "Chief Financial Officer" in parsed.title
    assert 2 <= len(parsed.signals) <= 4
    assert any(s.amount_usd == 4_200_000 for s in parsed.signals)
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    assert message.content[0].type == "text"


def test_structured_output_is_deterministic(emulator):
    kwargs = dict(
        model=MODEL,
        max_tokens=512,
        messages=[{"role": "user", "content": PROMPT}],
        output_format=ProspectSummary,
    )
    client = _client(emulator)
    first = client.messages.parse(**kwargs).parsed_output
    assert client.messages.parse(**kwargs).parsed_output == first


def test_raw_output_config_and_legacy_output_format(emulator):
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "level": {"enum": ["high", "low"]}},
        "required": ["ok", "level"],
        "additionalProperties": False,
    }
    url = emulator.base_urls()["anthropic"] + "/v1/messages"
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    base = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    for extra in (
        {"output_config": {"format": {"type": "json_schema", "schema": schema}}},
        {"output_format": {"type": "json_schema", "schema": schema}},
    ):
        r = httpx.post(url, headers=headers, json={**base, **extra})
        assert r.status_code == 200
        assert r.headers["request-id"].startswith("req_")
        assert "anthropic-ratelimit-requests-limit" in r.headers
        text = r.json()["content"][0]["text"]
        assert pydantic.TypeAdapter(dict).validate_json(text)["level"] == "high"


def test_forced_tool_use(emulator):
    message = _client(emulator).messages.create(
        model=MODEL,
        max_tokens=512,
        messages=[{"role": "user", "content": PROMPT}],
        tools=[
            {
                "name": "record_prospect",
                "description": "Record it",
                "input_schema": ProspectSummary.model_json_schema(),
            }
        ],
        tool_choice={"type": "tool", "name": "record_prospect"},
    )
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "record_prospect"
    assert block.id.startswith("toolu_")
    ProspectSummary.model_validate(block.input)


def test_plain_text(emulator):
    message = _client(emulator).messages.create(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": PROMPT}]
    )
    assert message.content[0].type == "text" and "Jane Doe" in message.content[0].text
    assert message.role == "assistant" and message.model == MODEL


def test_malformed_fault_breaks_schema_but_not_json(emulator):
    emulator.configure(faults={"anthropic": {"malformed_rate": 1.0}})
    with pytest.raises(pydantic.ValidationError):
        _client(emulator).messages.parse(
            model=MODEL,
            max_tokens=512,
            messages=[{"role": "user", "content": PROMPT}],
            output_format=ProspectSummary,
        )


def test_sdk_errors(emulator):
    bad = anthropic.Anthropic(api_key="invalid", base_url=emulator.base_urls()["anthropic"])
    with pytest.raises(anthropic.AuthenticationError) as auth:
        bad.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert auth.value.body["error"]["type"] == "authentication_error"
    assert auth.value.request_id.startswith("req_")

    client = _client(emulator, max_retries=0)
    emulator.configure(faults={"anthropic": {"storm_429_rate": 1.0, "retry_after_seconds": 7}})
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.body["error"]["type"] == "rate_limit_error"

    emulator.configure(faults={"anthropic": {"storm_429_rate": 0.0, "error_rate": 1.0}})
    with pytest.raises(anthropic.InternalServerError) as server:
        client.messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert server.value.status_code in (500, 529)


def test_sdk_retries_through_transient_529(emulator):
    # The SDK retries 5xx; with half the answers failing, a 4-retry client gets through.
    emulator.configure(faults={"anthropic": {"error_rate": 0.5}})
    client = _client(emulator, max_retries=6)
    message = client.messages.create(
        model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    assert message.type == "message"


def test_missing_version_header_is_400(emulator):
    url = emulator.base_urls()["anthropic"] + "/v1/messages"
    body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    r = httpx.post(url, headers={"x-api-key": "k"}, json=body)
    assert r.status_code == 400
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"
