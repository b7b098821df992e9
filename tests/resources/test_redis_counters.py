"""The pipeline's successful provider calls in the web app's Redis counters, through the real
clients (httpx, the anthropic SDK) against the emulator and a real `redis-server`.

Each test module starts a private `redis-server` (no persistence) and each test uses a random
logical database of it, flushed afterwards: the counters are keyed by today's date, which other
engineers' tests on the shared server at 6379 may use too.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import pytest
import redis
import sqlalchemy as sa

from phronesis_dagster.assets.quotas import api_quota_daily
from phronesis_dagster.resources import redis_counters
from phronesis_dagster.resources.apollo import ApolloResource
from phronesis_dagster.resources.claude import ClaudeResource
from phronesis_dagster.resources.contactout import ContactOutResource
from phronesis_dagster.resources.edgar import EdgarResource
from phronesis_dagster.resources.errors import (
    MalformedResponseError,
    ProviderAuthError,
    ProviderUnavailableError,
)
from phronesis_dagster.resources.exa import ExaResource
from phronesis_dagster.resources.redis_counters import (
    COUNTER_TTL_SECONDS,
    COUNTING_SINCE_KEY,
    PipelineCallCounter,
    WebAppRedis,
    close_pipeline_counters,
    counter_key,
    pipeline_counter,
)
from tests.resources.conftest import FAST

PROVIDERS = ("apollo", "contactout", "exa", "edgar", "claude")
SECRET = "sk-test-secret-4242"
# A provider call against the local emulator takes milliseconds; a client that waited for a
# dead Redis would take at least the writer's socket timeout, and forever for one that never
# answers. The bound is loose so a loaded machine never fails it.
CALL_BOUND_SECONDS = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis() -> tuple[subprocess.Popen, int]:
    """A private redis-server without persistence on a free port, answering PING."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)
    client.close()
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    proc, port = start_redis()
    try:
        yield port
    finally:
        stop(proc)


@pytest.fixture
def counted(redis_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """`REDIS_URL` at a random database of the private server; a client on it, flushed after."""
    db = random.randint(0, 15)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{redis_port}/{db}")
    client = redis.Redis(port=redis_port, db=db, decode_responses=True)
    client.flushdb()
    try:
        yield client
    finally:
        close_pipeline_counters()
        client.flushdb()
        client.close()


def flushed() -> None:
    """Wait (bounded) until the background sender has written what the calls queued."""
    counter = pipeline_counter()
    assert counter is not None
    assert counter.flush(timeout=5)


def today() -> date:
    return datetime.now(UTC).date()


def make(provider: str, emu, db, **overrides: Any):
    urls = emu.base_urls()
    common: dict[str, Any] = {"app_db": db, "provider_mode": "emulator", **FAST, **overrides}
    if provider == "contactout":
        return ContactOutResource(api_key=SECRET, base_url=urls["contactout"], **common)
    if provider == "exa":
        return ExaResource(api_key=SECRET, base_url=urls["exa"], **common)
    if provider == "apollo":
        return ApolloResource(api_key=SECRET, base_url=urls["apollo"], **common)
    if provider == "claude":
        return ClaudeResource(api_key=SECRET, base_url=urls["anthropic"], **common)
    return EdgarResource(
        user_agent="phronesis tests tests@example.com",
        www_base_url=urls["edgar_www"],
        data_base_url=urls["edgar_data"],
        **common,
    )


# One HTTP request per call (EDGAR's ticker lookup is one request; a whole insider report is
# many, each counted).
ONE_CALL = {
    "contactout": lambda r: r.enrich_person(email="jane.doe@acme.com"),
    "exa": lambda r: r.search_mentions(name="Jane Doe", company="Acme"),
    "apollo": lambda r: r.match_person(email="jane.doe@acme.com"),
    "edgar": lambda r: r.cik_for_ticker("AAPL"),
    "claude": lambda r: r.summarize_prospect(
        prospect={"name": "Jane Doe", "title": "CFO", "company": "Acme"},
        sources={"exa": {"mentions": [{"title": "Jane Doe sold Acme shares"}]}},
    ),
}
EMU_NAME = {p: ("anthropic" if p == "claude" else p) for p in PROVIDERS}


def test_each_successful_call_of_every_provider_increments_its_day_key(
    emu, app_db, counted: redis.Redis
) -> None:
    for provider in PROVIDERS:
        res = make(provider, emu, app_db)
        for _ in range(2 if provider == "exa" else 1):
            assert ONE_CALL[provider](res) is not None
    flushed()

    day = today().isoformat()
    expected = {f"api_usage:{p}:{day}": (2 if p == "exa" else 1) for p in PROVIDERS}
    keys = set(counted.keys("api_usage:*"))
    assert keys == set(expected)
    assert {k: int(counted.get(k)) for k in keys} == expected
    for key in keys:  # 90 days, refreshed by every increment as the web app does
        assert COUNTER_TTL_SECONDS - 60 <= counted.ttl(key) <= COUNTER_TTL_SECONDS
    assert counted.get(COUNTING_SINCE_KEY) == day


def test_a_no_match_is_a_successful_call_and_counts(emu, app_db, counted: redis.Redis) -> None:
    """A 404 / no-match answer counts as a success in `api_usage` too: both must agree, or the
    quota asset's subtraction would be off."""
    res = make("edgar", emu, app_db)
    assert res.insider_transactions(cik="0000000001") is None  # submissions 404
    flushed()
    assert counted.get(counter_key("edgar", today())) == "1"


@pytest.mark.parametrize(
    "fault",
    [
        {"error_rate": 1.0},  # 5xx until the retries run out
        {"storm_429_rate": 1.0, "retry_after_seconds": 0},  # rate-limited throughout
        {"unauthorized": True},  # 401
        {"malformed_rate": 1.0},  # a 200 whose body does not fit
    ],
    ids=["5xx", "429", "401", "malformed"],
)
@pytest.mark.parametrize("provider", ["apollo", "claude"])
def test_failed_and_rate_limited_calls_are_not_counted(
    emu, app_db, counted: redis.Redis, provider: str, fault: dict
) -> None:
    emu.configure(faults={EMU_NAME[provider]: fault})
    res = make(provider, emu, app_db, max_retries=1)
    with pytest.raises((ProviderUnavailableError, ProviderAuthError, MalformedResponseError)):
        ONE_CALL[provider](res)
    assert emu.stats()["requests"][EMU_NAME[provider]] >= 1  # the provider was really asked

    emu.configure(faults={EMU_NAME[provider]: {k: type(v)() for k, v in fault.items()}})
    assert ONE_CALL[provider](res) is not None  # then one success: exactly that one counts
    flushed()
    assert counted.get(counter_key(provider, today())) == "1"


def _blackhole() -> tuple[socket.socket, int]:
    """A socket that accepts connections (kernel backlog) and never answers a byte."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock, sock.getsockname()[1]


def _timed_calls(emu, app_db, n: int = 3) -> list[float]:
    res = make("exa", emu, app_db)
    claude = make("claude", emu, app_db)
    durations = []
    for _ in range(n):
        for r, call in ((res, ONE_CALL["exa"]), (claude, ONE_CALL["claude"])):
            started = time.monotonic()
            assert call(r) is not None
            durations.append(time.monotonic() - started)
    return durations


def test_calls_succeed_quickly_with_redis_killed_closed_or_blackholed(
    emu, app_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, port = start_redis()
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    try:
        assert max(_timed_calls(emu, app_db, n=1)) < CALL_BOUND_SECONDS
        flushed()
        assert redis.Redis(port=port).get(counter_key("exa", today())) == b"1"

        stop(proc)  # Redis dies under a live counter (its pooled connection goes dead)
        assert max(_timed_calls(emu, app_db)) < CALL_BOUND_SECONDS
        counter = pipeline_counter()
        assert counter is not None and counter.flush(timeout=5)
        assert counter.dropped >= 1 and counter.sent == 2

        close_pipeline_counters()  # a fresh process meeting a closed port
        assert max(_timed_calls(emu, app_db)) < CALL_BOUND_SECONDS

        hole, hole_port = _blackhole()
        try:
            monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{hole_port}/0")
            assert max(_timed_calls(emu, app_db)) < CALL_BOUND_SECONDS
            counter = pipeline_counter()
            assert counter is not None
            # The sender gives up on the silent server after its own timeout; exit stays bounded.
            started = time.monotonic()
            assert counter.flush(timeout=5)
            assert time.monotonic() - started < 5
            assert counter.dropped >= 1 and counter.sent == 0
        finally:
            hole.close()
    finally:
        close_pipeline_counters()
        if proc.poll() is None:
            stop(proc)


def test_after_an_outage_the_circuit_skips_redis_then_counts_again(redis_port: int) -> None:
    db = random.randint(0, 15)
    client = redis.Redis(port=redis_port, db=db)
    hole, hole_port = _blackhole()
    try:
        counter = PipelineCallCounter(
            f"redis://127.0.0.1:{hole_port}/0", timeout_seconds=0.2, backoff_seconds=0.5
        )
        counter.add("exa", date(2026, 1, 2))
        assert counter.flush(timeout=5) and counter.dropped == 1
        # Inside the back-off nothing is even tried: dropped at once, no timeout paid.
        started = time.monotonic()
        counter.add("exa", date(2026, 1, 2))
        assert counter.flush(timeout=5) and counter.dropped == 2
        assert time.monotonic() - started < 0.2
        counter.close()

        # Same writer logic against a live server after the back-off: counted again.
        live = PipelineCallCounter(
            f"redis://127.0.0.1:{redis_port}/{db}", timeout_seconds=0.2, backoff_seconds=0.5
        )
        live._skip_until = time.monotonic() + 0.3  # as if it had just failed
        live.add("exa", date(2026, 1, 2))
        assert live.flush(timeout=5) and live.dropped == 1
        time.sleep(0.35)
        for _ in range(3):
            live.add("exa", date(2026, 1, 2))
        assert live.flush(timeout=5) and live.sent == 3
        assert client.get(counter_key("exa", date(2026, 1, 2))) == b"3"
        live.close()
    finally:
        hole.close()
        client.flushdb()
        client.close()


def test_many_threads_lose_no_increment(redis_port: int) -> None:
    """The batch's provider threads all count at once; batches of one pipeline each add up."""
    db = random.randint(0, 15)
    client = redis.Redis(port=redis_port, db=db)
    counter = PipelineCallCounter(f"redis://127.0.0.1:{redis_port}/{db}")
    day = date(2026, 1, 3)
    try:
        threads = [
            threading.Thread(target=lambda: [counter.add("apollo", day) for _ in range(250)])
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert counter.flush(timeout=10)
        assert client.get(counter_key("apollo", day)) == b"2000"
        assert counter.sent == 2000 and counter.dropped == 0
    finally:
        counter.close()
        client.flushdb()
        client.close()


def test_no_redis_url_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "")
    assert pipeline_counter() is None
    redis_counters.count_provider_call("exa", today())  # a no-op, and never raises
    monkeypatch.setenv("REDIS_URL", "not a url")
    redis_counters.count_provider_call("exa", today())  # a warning, never an error


def test_quota_counts_pipeline_and_web_app_calls_once_each(
    emu, app_db, counted: redis.Redis
) -> None:
    """The pipeline's calls reach both its own log and Redis; the web app's only Redis. The quota
    dataset's total per provider is the Redis total, split by origin, with nothing twice."""
    exa = make("exa", emu, app_db)
    for _ in range(3):
        assert ONE_CALL["exa"](exa) is not None
    emu.configure(faults={"exa": {"error_rate": 1.0}})
    with pytest.raises(ProviderUnavailableError):
        ONE_CALL["exa"](make("exa", emu, app_db, max_retries=0))  # failed: in neither count
    flushed()
    key = counter_key("exa", today())
    for _ in range(4):  # the web app's own Apollo-page calls, counted the same way
        counted.incr(key)
    assert counted.get(key) == "7"

    dg.materialize(
        [api_quota_daily],
        partition_key=today().isoformat(),
        resources={"app_db": app_db, "web_app_redis": WebAppRedis()},  # $REDIS_URL
    )

    with app_db.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT origin, success_count, failure_count FROM api_quota_daily "
                "WHERE provider = 'exa' AND date = :d"
            ),
            {"d": today()},
        ).all()
        burn = conn.execute(
            sa.text("SELECT calls FROM api_quota_burn_daily WHERE provider = 'exa' AND date = :d"),
            {"d": today()},
        ).scalar_one()
    assert {r.origin: (r.success_count, r.failure_count) for r in rows} == {
        "pipeline": (3, 1),
        "web_app": (4, 0),
    }
    assert burn == 7  # the Redis total, not 3 + 7


_EXIT_SCRIPT = """
import multiprocessing, os, sys
from datetime import date
from phronesis_dagster.resources.redis_counters import count_provider_call

def child():
    for _ in range(5):
        count_provider_call("edgar", date(2026, 1, 4))

if __name__ == "__main__":
    for _ in range(3):
        count_provider_call("edgar", date(2026, 1, 4))
    if sys.argv[1] == "fork":  # a step worker started by multiprocessing: ends in os._exit
        p = multiprocessing.get_context("fork").Process(target=child)
        p.start()
        p.join()
"""


@pytest.mark.parametrize("how", ["exit", "fork"])
def test_what_is_queued_at_process_exit_reaches_redis(
    counted: redis.Redis, how: str, tmp_path
) -> None:
    script = tmp_path / "count_and_exit.py"
    script.write_text(_EXIT_SCRIPT)
    subprocess.run([sys.executable, str(script), how], check=True, env=dict(os.environ), timeout=60)
    expected = 3 + (5 if how == "fork" else 0)
    assert counted.get(counter_key("edgar", date(2026, 1, 4))) == str(expected)


def test_process_exit_with_a_silent_redis_stays_bounded(tmp_path) -> None:
    hole, port = _blackhole()
    try:
        script = tmp_path / "count_and_exit.py"
        script.write_text(_EXIT_SCRIPT)
        env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        started = time.monotonic()
        subprocess.run([sys.executable, str(script), "fork"], check=True, env=env, timeout=60)
        # Interpreter start-up and imports plus at most two bounded flushes (parent, child).
        assert time.monotonic() - started < 30
    finally:
        hole.close()
