"""SEC's over-the-limit block (403 "Request Rate Threshold Exceeded", no Retry-After, ~10
minutes): the real client stops at the first refusal, holds the shared breaker open so that no
process calls SEC during the block, marks the source `circuit_open` with the reason, and resumes
by itself afterwards. The other 403s keep their meaning."""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import httpx
import pytest

from phronesis_dagster.assets.enrichment.calls import timed_outcome
from phronesis_dagster.emulator.edgar import RATE_PAGE, UNDECLARED_PAGE, _s3_error
from phronesis_dagster.enrichment.constants import CIRCUIT_OPEN
from phronesis_dagster.resources.contract import ProviderAnswer
from phronesis_dagster.resources.edgar import EdgarResource, is_missing_document, is_rate_block
from phronesis_dagster.resources.errors import CircuitOpenError, ProviderAuthError
from tests.resources import _edgar_workers
from tests.resources.conftest import FAST, usage_row

ACCESS_DENIED = _s3_error(403, "AccessDenied", "Access Denied").body.decode()


def make(emu, db, **overrides) -> EdgarResource:
    urls = emu.base_urls()
    return EdgarResource(
        user_agent="phronesis tests tests@example.com",
        www_base_url=urls["edgar_www"],
        data_base_url=urls["edgar_data"],
        app_db=db,
        provider_mode="emulator",
        **{**FAST, **overrides},
    )


def sec_requests(emu) -> int:
    return emu.stats()["requests"].get("edgar", 0)


@pytest.mark.parametrize(
    ("status", "body", "block", "missing"),
    [
        (403, RATE_PAGE, True, False),
        (429, RATE_PAGE, True, False),  # older reports of the same page
        (429, "", True, False),
        (403, UNDECLARED_PAGE, False, False),  # a User-Agent problem, not a block
        (403, ACCESS_DENIED, False, True),  # S3: no such document
        (404, "", False, False),
    ],
)
def test_which_refusal_is_which(status, body, block, missing):
    response = httpx.Response(status, text=body)
    assert is_rate_block(response) is block
    assert is_missing_document(response) is missing


def test_block_stops_every_process_then_resumes(emu, pg_rdb):
    ctx = get_context("spawn")
    urls = emu.base_urls()
    args = (pg_rdb.url, urls["edgar_www"], urls["edgar_data"])
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        # Both workers up before the timed part: a spawn imports Dagster, seconds on a busy box.
        assert all(f.result() for f in [pool.submit(_edgar_workers.warm_up) for _ in range(4)])
        emu.configure(faults={"edgar": {"storm_429_rate": 1.0, "block_seconds": 1.0}})
        res = make(emu, pg_rdb, block_hold_seconds=4.0)
        held_from = time.monotonic()
        outcome = timed_outcome(
            lambda: ProviderAnswer.of(
                res.insider_transactions(cik="320193", owner_name="Katherine Adams")
            )
        )
        # The source is circuit_open, and says why.
        assert outcome.status == CIRCUIT_OPEN
        assert "Request Rate Threshold Exceeded" in outcome.error
        assert "10 requests/s" in outcome.error and "paused until" in outcome.error
        assert sec_requests(emu) == 1  # not retried: a retry would extend the block
        assert usage_row(pg_rdb, "edgar")["rate_limited_count"] == 1
        emu.configure(faults={"edgar": {"storm_429_rate": 0.0}})  # SEC's block (1 s) goes on

        told = [pool.submit(_edgar_workers.edgar_call, *args) for _ in range(2)]
        answers = [f.result() for f in told]
        assert time.monotonic() - held_from < 4.0, "too slow to test the hold"
        for answer in answers:
            assert answer.startswith("circuit_open: ")
            assert "Request Rate Threshold Exceeded" in answer
        # The same process is held too.
        with pytest.raises(CircuitOpenError, match="Request Rate Threshold Exceeded"):
            res.cik_for_ticker("AAPL")
        assert sec_requests(emu) == 1  # nobody called SEC during the block

        # The hold is over (and SEC's block, untouched since, too): resumes by itself.
        time.sleep(max(0.0, held_from + 4.3 - time.monotonic()))
        assert pool.submit(_edgar_workers.edgar_call, *args).result() == "ok"
    assert res.breaker.snapshot().state == "closed"
    assert res.cik_for_ticker("AAPL") == "0000320193"


def test_undeclared_user_agent_is_still_an_auth_error(emu, pg_rdb):
    emu.configure(faults={"edgar": {"unauthorized": True}})
    res = make(emu, pg_rdb)
    with pytest.raises(ProviderAuthError) as info:
        res.cik_for_ticker("AAPL")
    assert info.value.http_status == 403
    assert res.breaker.snapshot().state == "closed"  # no block held for a config problem
