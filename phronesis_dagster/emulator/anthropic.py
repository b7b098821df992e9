"""Anthropic Messages API (https://api.anthropic.com): `POST /v1/messages`.

Wire format per PROVIDERS.md section 4 and the recorded tidyllm responses. Structured output
is answered the way the API does it:

- `output_config.format` = `{"type": "json_schema", "schema": ...}` (what `anthropic` 2.12's
  `messages.parse(output_format=Model)` sends) or the legacy top-level `output_format`:
  one `text` block whose text is a JSON document fitting the schema;
- `tools` + `tool_choice` `{"type": "tool", "name": ...}` (or `any`): one `tool_use` block
  whose `input` fits the tool's `input_schema`, `stop_reason: "tool_use"`;
- otherwise plain text.

The JSON is generated from the schema plus facts found in the prompt (names, emails, amounts,
sentences), deterministically per (seed, request).
"""

from __future__ import annotations

import json
import math
import random
import re
import string
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from phronesis_dagster.emulator import data
from phronesis_dagster.emulator.base import Provider, Request, Response, api_key, key_is_valid
from phronesis_dagster.resources.claude import ClaudeResource

# `anthropic-version` values are dates.
ANTHROPIC_VERSION_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}")

REQUESTS_PER_MINUTE = 4000
TOKENS_PER_MINUTE = 400_000
BASE62 = string.digits + string.ascii_letters
ERROR_MESSAGES = {
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def _b62(seed_bytes: bytes, length: int) -> str:
    number = int.from_bytes(seed_bytes, "big")
    chars = []
    for _ in range(length):
        number, rem = divmod(number, 62)
        chars.append(BASE62[rem])
    return "".join(chars)


def _request_id() -> str:
    return "req_011C" + _b62(random.randbytes(16), 20)


def _error(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    rid = _request_id()
    payload = {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": rid,
    }
    return Response.json(status, payload, {"request-id": rid, **(headers or {})})


class AnthropicProvider(Provider):
    """Emulated Claude Messages API with schema-driven structured output."""

    name = "anthropic"
    # Where the client is pointed in emulator mode (the resource owns the fact).
    prefixes = ClaudeResource.EMULATOR_PREFIXES
    server_error_statuses = (500, 529)

    def request_key(self, req: Request) -> str | None:
        body = req.json_object()
        if body is None:
            return None
        return prompt_text(body)[-200:]

    scenarios = ("max_tokens", "refusal")

    def authenticate(self, req: Request) -> Response | None:
        # The installed SDK (anthropic 2.15, `_client.py` `_api_key_auth`) sends
        # `Authorization: Bearer <key>`; 0.x sent `X-Api-Key`. Both are accepted, as the API does.
        if not key_is_valid(api_key(req, "x-api-key")):
            return self.unauthorized(req)
        return None

    def unauthorized(self, req: Request) -> Response:
        return _error(401, "authentication_error", "invalid x-api-key")

    def scenario_answer(self, req: Request, name: str, serve: Callable[[], Response]) -> Response:
        response = serve()
        if response.status != 200:
            return response
        message = json.loads(response.body)
        if name == "max_tokens":
            # Output stopped at `max_tokens`: the structured JSON is cut off mid-document
            # (SDK `types/stop_reason.py`; structured-outputs docs warn of exactly this).
            for block in message["content"]:
                if block.get("type") == "text":
                    block["text"] = block["text"][: max(1, len(block["text"]) // 2)]
            message["stop_reason"] = "max_tokens"
            message["usage"]["output_tokens"] = req.json_object()["max_tokens"]
        else:
            # A refusal: `stop_reason: "refusal"` with whatever text came before it, not JSON
            # that fits the schema (SDK `types/stop_reason.py`: "refusal").
            message["content"] = [{"type": "text", "text": "I can't help with that."}]
            message["stop_reason"] = "refusal"
        return Response.json(200, message, response.headers)

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        reset = (datetime.now(UTC) + timedelta(seconds=retry_after)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return _error(
            429,
            "rate_limit_error",
            "Number of requests has exceeded your rate limit "
            "(https://docs.claude.com/en/api/rate-limits). Please reduce the prompt length or the "
            "maximum tokens requested, or try again later.",
            {
                "retry-after": str(retry_after),
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": reset,
            },
        )

    def server_error(self, req: Request, status: int) -> Response:
        error_type, message = ERROR_MESSAGES.get(status, ("api_error", "Internal server error"))
        return _error(status, error_type, message)

    def decorate(self, req: Request, response: Response) -> None:
        response.headers.setdefault("request-id", _request_id())
        if response.status == 200:
            reset = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            response.headers.update(
                {
                    "anthropic-organization-id": "00000000-0000-4000-8000-00000000e0e0",
                    "anthropic-ratelimit-requests-limit": str(REQUESTS_PER_MINUTE),
                    "anthropic-ratelimit-requests-remaining": str(REQUESTS_PER_MINUTE - 1),
                    "anthropic-ratelimit-requests-reset": reset,
                    "anthropic-ratelimit-tokens-limit": str(TOKENS_PER_MINUTE),
                    "anthropic-ratelimit-tokens-remaining": str(TOKENS_PER_MINUTE),
                    "anthropic-ratelimit-tokens-reset": reset,
                    "anthropic-ratelimit-input-tokens-limit": str(TOKENS_PER_MINUTE),
                    "anthropic-ratelimit-input-tokens-remaining": str(TOKENS_PER_MINUTE),
                    "anthropic-ratelimit-input-tokens-reset": reset,
                    "anthropic-ratelimit-output-tokens-limit": str(TOKENS_PER_MINUTE // 5),
                    "anthropic-ratelimit-output-tokens-remaining": str(TOKENS_PER_MINUTE // 5),
                    "anthropic-ratelimit-output-tokens-reset": reset,
                }
            )

    def malformed(self, req: Request, response: Response, rng: random.Random) -> Response:
        """Valid JSON that misfits the schema when one was asked for; else a cut body."""
        message = json.loads(response.body)
        block = message["content"][0]
        if block["type"] == "tool_use":
            block["input"] = _misfit(block["input"])
        elif _requested_schema(req.json_object() or {}) is not None:
            block["text"] = json.dumps(_misfit(json.loads(block["text"])))
        else:
            return super().malformed(req, response, rng)
        return Response.json(200, message, response.headers)

    def handle(self, req: Request) -> Response:
        if req.path != "/v1/messages":
            return _error(404, "not_found_error", f"Not found: {req.path}")
        if req.method != "POST":
            return _error(405, "invalid_request_error", f"Method {req.method} not allowed")
        version = req.header("anthropic-version")
        if not version:
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        if not ANTHROPIC_VERSION_FORMAT.fullmatch(version.strip()):
            # Versions are dates (2023-06-01; SDK 2.x sends 2026-10-21, `_constants.py`).
            return _error(
                400,
                "invalid_request_error",
                f"anthropic-version: {version!r} is not a valid version (expected YYYY-MM-DD)",
            )
        body = req.json_object()
        if body is None:
            return _error(400, "invalid_request_error", "Request body must be a JSON object")
        for field_name, kind in (("model", str), ("max_tokens", int), ("messages", list)):
            if not isinstance(body.get(field_name), kind):
                return _error(400, "invalid_request_error", f"{field_name}: Field required")
        if body.get("stream"):
            # Not emulated; say so loudly rather than answer a shape the client cannot read.
            return _error(400, "invalid_request_error", "stream: not supported by the emulator")
        if not body["messages"]:
            return _error(
                400, "invalid_request_error", "messages: at least one message is required"
            )

        prompt = prompt_text(body)
        key = json.dumps(body, sort_keys=True)
        rng = data.rng_for(self.seed, "anthropic", key)
        facts = Facts(prompt)
        tool = _forced_tool(body)
        schema = _requested_schema(body)
        if tool is not None:
            tool_input = SchemaFaker(tool.get("input_schema") or {}, facts, rng).generate()
            content: list[dict[str, Any]] = [
                {
                    "type": "tool_use",
                    "id": "toolu_01" + _b62(data.digest(self.seed, "toolu", key), 22),
                    "name": tool["name"],
                    "input": tool_input,
                }
            ]
            out_text = json.dumps(tool_input)
            stop_reason = "tool_use"
        elif schema is not None:
            out_text = json.dumps(SchemaFaker(schema, facts, rng).generate())
            content = [{"type": "text", "text": out_text}]
            stop_reason = "end_turn"
        else:
            out_text = facts.answer(rng)
            max_chars = body["max_tokens"] * 4
            stop_reason = "end_turn"
            if len(out_text) > max_chars:
                out_text, stop_reason = out_text[:max_chars], "max_tokens"
            content = [{"type": "text", "text": out_text}]
        message = {
            "id": "msg_01" + _b62(data.digest(self.seed, "msg", key), 22),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": max(1, len(prompt) // 4),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                "output_tokens": max(1, len(out_text) // 4),
                "service_tier": "standard",
            },
        }
        return Response.json(200, message)


def prompt_text(body: dict[str, Any]) -> str:
    """System prompt and every message's text, joined; what the 'model' reads."""
    parts: list[str] = []

    def add(content: Any) -> None:
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and isinstance(block.get("text"), str):
                    parts.append(block["text"])
                elif isinstance(block, dict) and "content" in block:
                    add(block["content"])

    add(body.get("system"))
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            add(message.get("content"))
    return "\n".join(parts)


def _requested_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    for container in (body.get("output_config"), body):
        if not isinstance(container, dict):
            continue
        fmt = container.get("format") if container is not body else body.get("output_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            schema = fmt.get("schema")
            return schema if isinstance(schema, dict) else {}
    return None


def _forced_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t]
    choice = body.get("tool_choice") or {}
    if not tools or not isinstance(choice, dict):
        return None
    if choice.get("type") == "tool":
        return next((t for t in tools if t["name"] == choice.get("name")), None)
    if choice.get("type") == "any":
        return tools[0]
    return None


def _misfit(value: Any) -> Any:
    """Valid JSON that breaks the schema: required keys dropped, or the wrong type."""
    if isinstance(value, dict) and value:
        broken = dict(value)
        broken.pop(next(iter(broken)))
        broken["unexpected_field"] = "emulator-malformed"
        return broken
    return ["emulator-malformed"]


# ---- facts from the prompt -----------------------------------------------------------------

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
URL_RE = re.compile(r"https?://[^\s\"'<>)]*[^\s\"'<>).,;:]")
MONEY_RE = re.compile(r"\$\s?(\d+(?:[.,]\d+)*)\s*(million|billion|thousand|[mbk])?\b", re.I)
NAME_RE = re.compile(r"\b([A-Z][a-z]+(?:\s+[A-Z]\.)?(?:\s+[A-Z][a-z]+)+)\b")
COMPANY_RE = re.compile(r"\bat ([A-Z][\w&.\-]*(?:\s+[A-Z][\w&.\-]*)*)")
TITLE_WORDS = (
    "Chief",
    "CEO",
    "CFO",
    "COO",
    "CTO",
    "President",
    "Director",
    "VP",
    "Founder",
    "Partner",
    "Head",
    "Manager",
    "Counsel",
    "Officer",
)
MONEY_WORDS = ("amount", "worth", "usd", "price", "dollars", "value")
STOP_WORDS = {"Hello", "Hi", "Dear", "The", "Extract", "Summarize", "Find", "Please", "Return"}
MULTIPLIERS = {"million": 1e6, "m": 1e6, "billion": 1e9, "b": 1e9, "thousand": 1e3, "k": 1e3}


class Facts:
    """What the emulated model 'understood' from the prompt.

    Prompts often embed the sources as JSON; its string values are read as prose so that
    answers quote the sources, not JSON syntax.
    """

    def __init__(self, prompt: str) -> None:
        self.prompt = prompt
        self._offset: int | None = None
        self.emails = EMAIL_RE.findall(prompt)
        self.urls = URL_RE.findall(prompt)
        self.amounts = [
            float(m.group(1).replace(",", "")) * MULTIPLIERS.get((m.group(2) or "").lower(), 1)
            for m in MONEY_RE.finditer(prompt)
        ]
        named: list[str] = []
        texts = [prompt]
        embedded = _embedded_json(prompt)
        if embedded is not None:
            texts = []
            _collect_strings(embedded, "", texts, named)
        self.names = [n for n in named if len(n.split()) >= 2]
        for found in NAME_RE.findall(prompt):
            words = found.split()
            while words and words[0] in STOP_WORDS:
                words = words[1:]
            if len(words) >= 2 and words[0] not in TITLE_WORDS:
                self.names.append(" ".join(words))
        self.companies = COMPANY_RE.findall(prompt)
        self.sentences = []
        for text in texts:
            for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
                sentence = sentence.strip()
                # Ids, URLs and dates are not prose; a sentence has a few words.
                if len(sentence.split()) >= 4:
                    self._add_sentence(sentence)
        self.wealth_sentences = [
            s for s in self.sentences if any(w in s.lower() for w in WEALTH_WORDS)
        ]

    def _add_sentence(self, sentence: str) -> None:
        # Titles repeat the start of their page text; keep only the longer of the two.
        for i, known in enumerate(self.sentences):
            if sentence in known:
                return
            if known in sentence:
                self.sentences[i] = sentence
                return
        self.sentences.append(sentence)

    def sentence(self, rng: random.Random, index: int = 0, *, wealth: bool = False) -> str:
        """A sentence from the prompt (distinct per index when possible)."""
        pool = (self.wealth_sentences if wealth else None) or self.sentences
        if not pool:
            return "No further details were provided in the input."
        if self._offset is None:
            # One offset per answer, so list items (index 0, 1, 2...) are distinct sentences.
            self._offset = rng.randrange(1 << 16)
        return pool[(self._offset + index) % len(pool)][:240]

    def answer(self, rng: random.Random) -> str:
        """A plain-text reply that cites the prompt."""
        subject = self.names[0] if self.names else "the subject"
        return f"Here is a summary regarding {subject}: {self.sentence(rng)}"


WEALTH_WORDS = (
    "shares",
    "worth",
    "million",
    "billion",
    "board",
    "acquired",
    "net worth",
    "philanthrop",
    "real estate",
    "foundation",
    "sold",
    "investor",
)


def _embedded_json(prompt: str) -> Any:
    start, end = prompt.find("{"), prompt.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        return json.loads(prompt[start : end + 1])
    except ValueError:
        return None


def _collect_strings(value: Any, key: str, texts: list[str], names: list[str]) -> None:
    if isinstance(value, dict):
        for sub_key, sub in value.items():
            _collect_strings(sub, str(sub_key).lower(), texts, names)
    elif isinstance(value, list):
        for item in value:
            _collect_strings(item, key, texts, names)
    elif isinstance(value, str) and value.strip():
        if key in ("name", "full_name", "fullname", "rpt_owner_name", "owner_name"):
            names.append(value.strip())
        texts.append(value.strip())


# ---- schema-driven generator ---------------------------------------------------------------

CONSTRAINT_RE = re.compile(r"\{([^{}]*)\}\s*$")
STRING_FORMATS = {
    "date": lambda rng: (
        (datetime(2026, 1, 1) - timedelta(days=rng.randint(0, 900))).date().isoformat()
    ),
    "date-time": lambda rng: (
        (datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=rng.randint(0, 20000)))
        .isoformat()
        .replace("+00:00", "Z")
    ),
    "time": lambda rng: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00",
    "duration": lambda rng: f"P{rng.randint(1, 30)}D",
    "hostname": lambda rng: "example.com",
    "ipv4": lambda rng: f"192.0.2.{rng.randint(1, 254)}",
    "ipv6": lambda rng: "2001:db8::1",
    "uuid": lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
}


def _constraints(schema: dict[str, Any]) -> dict[str, Any]:
    """Keywords in the schema plus those the SDK moved into the description ('{minimum: 0}')."""
    found: dict[str, Any] = {}
    description = schema.get("description")
    if isinstance(description, str):
        match = CONSTRAINT_RE.search(description)
        if match:
            for pair in match.group(1).split(", "):
                name, _, raw = pair.partition(": ")
                try:
                    found[name.strip()] = json.loads(raw)
                except ValueError:
                    found[name.strip()] = raw
    for name in (
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "multipleOf",
    ):
        if name in schema:
            found[name] = schema[name]
    return found


class SchemaFaker:
    """Builds a JSON value that fits a JSON schema, filling strings from prompt facts."""

    def __init__(self, schema: dict[str, Any], facts: Facts, rng: random.Random) -> None:
        self.root = schema
        self.facts = facts
        self.rng = rng

    def generate(self) -> Any:
        """The value for the root schema."""
        return self._value(self.root, "", 0)

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        while isinstance(ref, str) and ref.startswith("#/"):
            node: Any = self.root
            for part in ref[2:].split("/"):
                node = node[part]
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
            ref = node.get("$ref")
        return schema

    def _value(self, schema: Any, name: str, index: int) -> Any:
        if not isinstance(schema, dict):
            return None
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        for combinator in ("anyOf", "oneOf"):
            variants = schema.get(combinator)
            if isinstance(variants, list) and variants:
                non_null = [v for v in variants if self._resolve(v).get("type") != "null"]
                return self._value((non_null or variants)[0], name, index)
        if isinstance(schema.get("allOf"), list):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                merged.update(self._resolve(part))
            return self._value(merged, name, index)
        type_ = schema.get("type")
        if isinstance(type_, list):
            type_ = next((t for t in type_ if t != "null"), "null")
        if type_ is None:
            type_ = "object" if "properties" in schema else "string"
        return getattr(self, f"_{type_}", self._null)(schema, name, index)

    def _object(self, schema: dict[str, Any], name: str, index: int) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        if not properties and isinstance(schema.get("additionalProperties"), dict):
            return {"item": self._value(schema["additionalProperties"], "item", index)}
        return {key: self._value(sub, key, index) for key, sub in properties.items()}

    def _array(self, schema: dict[str, Any], name: str, index: int) -> list[Any]:
        limits = _constraints(schema)
        low = int(limits.get("minItems", 0))
        high = int(limits.get("maxItems", max(low, 4)))
        count = min(max(self.rng.randint(2, 4), low), high)
        items = schema.get("items") or {"type": "string"}
        return [self._value(items, name, i) for i in range(count)]

    def _string(self, schema: dict[str, Any], name: str, index: int) -> str:
        limits = _constraints(schema)
        value = self._string_for(schema.get("format"), name.lower(), index)
        max_len = limits.get("maxLength")
        if isinstance(max_len, int):
            value = value[:max_len]
        min_len = limits.get("minLength")
        if isinstance(min_len, int) and len(value) < min_len:
            value = value.ljust(min_len, ".")
        return value

    def _string_for(self, fmt: Any, name: str, index: int) -> str:
        facts, rng = self.facts, self.rng
        if fmt in STRING_FORMATS:
            return STRING_FORMATS[fmt](rng)
        if fmt == "email" or "email" in name:
            return (
                facts.emails[index % len(facts.emails)] if facts.emails else "contact@example.com"
            )
        if fmt == "uri" or "url" in name or "link" in name:
            return (
                facts.urls[index % len(facts.urls)] if facts.urls else "https://example.com/source"
            )
        if "company" in name or "organization" in name or "employer" in name:
            if facts.companies:
                return facts.companies[index % len(facts.companies)]
        if "name" in name and facts.names:
            return facts.names[index % len(facts.names)]
        if "title" in name or "role" in name:
            for word in TITLE_WORDS:
                match = re.search(rf"\b{word}\b[\w ,&]*", facts.prompt)
                if match:
                    return match.group(0).strip()[:80]
            return "Executive"
        if "date" in name:
            return STRING_FORMATS["date"](rng)
        if any(w in name for w in ("wealth", "signal", "liquidity", "asset")):
            return facts.sentence(rng, index, wealth=True)
        if "summary" in name:
            return " ".join(dict.fromkeys(facts.sentence(rng, index + i) for i in range(3)))
        return facts.sentence(rng, index)

    def _number(self, schema: dict[str, Any], name: str, index: int) -> float:
        lowered = name.lower()
        if any(w in lowered for w in MONEY_WORDS) and not _constraints(schema):
            # Money is unbounded: quote an amount from the prompt, else a plausible one.
            if self.facts.amounts:
                return self.facts.amounts[index % len(self.facts.amounts)]
            return float(self.rng.randint(1, 500) * 100_000)
        low, high = self._bounds(schema, name, integer=False)
        return round(low + (high - low) * self.rng.random(), 2) if high > low else low

    def _integer(self, schema: dict[str, Any], name: str, index: int) -> int:
        low, high = self._bounds(schema, name, integer=True)
        return self.rng.randint(int(low), int(high)) if high > low else int(low)

    def _bounds(self, schema: dict[str, Any], name: str, *, integer: bool) -> tuple[float, float]:
        limits = _constraints(schema)
        lowered = name.lower()
        if not integer and any(w in lowered for w in ("confidence", "probability", "score")):
            default_low, default_high = 0.0, 1.0
        elif "year" in lowered:
            default_low, default_high = 2015, 2026
        else:
            default_low, default_high = 0, 100
        low = float(limits.get("minimum", default_low))
        high = float(limits.get("maximum", max(default_high, low)))
        step = 1 if integer else 0.01
        if "exclusiveMinimum" in limits:
            low = float(limits["exclusiveMinimum"]) + step
        if "exclusiveMaximum" in limits:
            high = float(limits["exclusiveMaximum"]) - step
        if high < low:
            high = low
        if integer:
            return float(math.ceil(low)), float(math.floor(high))
        return low, high

    def _boolean(self, schema: dict[str, Any], name: str, index: int) -> bool:
        return self.rng.random() < 0.5

    def _null(self, schema: dict[str, Any], name: str, index: int) -> None:
        return None
