"""ContactOut, Exa, Apollo and EDGAR clients against the provider emulator: happy path,
no match, 401, 429 with Retry-After, 5xx, timeouts, malformed bodies, the shared breaker and
usage counting."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from typing import Any

import dagster as dg
import httpx
import pytest

from phronesis_dagster.emulator import data as emu_data
from phronesis_dagster.resources.apollo import ApolloResource, PersonMatch, PersonSearchHit
from phronesis_dagster.resources.contactout import ContactInfo, ContactOutResource
from phronesis_dagster.resources.edgar import EdgarResource, Form4Filing, InsiderReport
from phronesis_dagster.resources.errors import (
    CircuitOpenError,
    MalformedResponseError,
    ProviderAuthError,
    ProviderConfigError,
    ProviderQuotaExhausted,
    ProviderRequestError,
    ProviderUnavailableError,
)
from phronesis_dagster.resources.exa import HIGHLIGHT_MAX_CHARACTERS, ExaResource, WebMentions
from phronesis_dagster.resources.rate_limit import SharedRateLimiter
from tests.resources import _workers
from tests.resources.conftest import (
    FAST,
    call_log,
    first_ask_answered_late,
    heal_after_first_failure,
    usage_row,
)

SECRET = "sk-test-secret-4242"
PROVIDERS = ["contactout", "exa", "apollo", "edgar"]
# resource provider name -> emulator provider name
EMU_NAME = {"contactout": "contactout", "exa": "exa", "apollo": "apollo", "edgar": "edgar"}


def make(provider: str, emu, db, **overrides: Any):
    urls = emu.base_urls()
    common: dict[str, Any] = {"app_db": db, "provider_mode": "emulator", **FAST, **overrides}
    if provider == "contactout":
        return ContactOutResource(api_key=SECRET, base_url=urls["contactout"], **common)
    if provider == "exa":
        return ExaResource(api_key=SECRET, base_url=urls["exa"], **common)
    if provider == "apollo":
        return ApolloResource(api_key=SECRET, base_url=urls["apollo"], **common)
    return EdgarResource(
        user_agent="phronesis tests tests@example.com",
        www_base_url=urls["edgar_www"],
        data_base_url=urls["edgar_data"],
        **common,
    )


# One HTTP request per call, so emulator request counts equal attempts.
ONE_CALL: dict[str, Callable[[Any], Any]] = {
    "contactout": lambda r: r.enrich_person(email="jane.doe@acme.com"),
    "exa": lambda r: r.search_mentions(name="Jane Doe", company="Acme"),
    "apollo": lambda r: r.match_person(email="jane.doe@acme.com"),
    "edgar": lambda r: r.cik_for_ticker("AAPL"),
}


def requests_seen(emu, provider: str) -> int:
    return emu.stats()["requests"].get(EMU_NAME[provider], 0)


def no_match_email(provider: str) -> str:
    for i in range(1000):
        email = f"nobody{i}@example.com"
        if emu_data.is_no_match(0, provider, "email:" + email):
            return email
    raise AssertionError("no no-match key found")


# ---- happy path and no match ------------------------------------------------------------------


def test_contactout_enrich_and_no_match(emu, rdb):
    res = make("contactout", emu, rdb)
    info = res.enrich_person(email="jane.doe@acme.com", full_name="Jane Doe", company="Acme")
    assert isinstance(info, ContactInfo)
    assert info.work_emails and info.personal_emails and info.phones  # `include` was sent
    assert res.enrich_person(email=no_match_email("contactout")) is None
    with pytest.raises(ValueError):
        res.enrich_person(full_name="Jane Doe")  # neither email nor LinkedIn: no call at all
    row = usage_row(rdb, "contactout")
    assert (row["success_count"], row["failure_count"]) == (2, 0)
    assert [r["outcome"] for r in call_log(rdb, "contactout")] == ["success", "not_found"]
    assert requests_seen(emu, "contactout") == 2


def test_exa_mentions_wealth_signals_and_cost(emu, rdb):
    res = make("exa", emu, rdb)
    found = res.search_mentions(name="Warren Buffett", company="Acme", num_results=10)
    assert isinstance(found, WebMentions) and found.query == "Warren Buffett Acme"
    assert found.mentions and all(m.url for m in found.mentions)
    assert found.wealth_signals and {s.url for s in found.wealth_signals} <= {
        m.url for m in found.mentions
    }
    assert found.cost_usd and found.cost_usd > 0
    assert float(usage_row(rdb, "exa")["cost_usd"]) == pytest.approx(found.cost_usd)


@pytest.mark.parametrize("provider", ["exa", "edgar"])
def test_slots_granted_too_late_are_counted_for_the_run_metadata(emu, rdb, monkeypatch, provider):
    """A slot whose ask took longer than the stale-grant bound is not used (another is taken);
    the run's metadata says how many (`run_counters`, EDGAR's beside its SEC figures)."""
    res = make(provider, emu, rdb)
    assert res.run_counters()["rate_limit_stale_grants"] == 0  # no call yet
    asks = first_ask_answered_late(monkeypatch)
    if provider == "exa":
        res.search_mentions(name="Warren Buffett", company="Acme", num_results=10)
    else:
        res.cik_for_ticker("AAPL")
    counters = res.run_counters()
    assert counters["rate_limit_stale_grants"] == 1
    assert len(asks) >= 2
    if provider == "edgar":
        assert counters["sec_requests"] >= 1


def test_apollo_match_search_and_no_match(emu, rdb):
    res = make("apollo", emu, rdb)
    person = res.match_person(name="Jane Doe", organization_name="Acme")
    assert isinstance(person, PersonMatch) and person.organization_name == "Acme"
    assert res.match_person(email=no_match_email("apollo")) is None  # 200 {"person": null}
    hits = res.search_people(titles=["CFO"], organization_domains=["acme.com"], per_page=5)
    assert hits and all(isinstance(h, PersonSearchHit) for h in hits) and len(hits) <= 5
    assert "POST /apollo/api/v1/mixed_people/api_search" in emu.stats()["responses"]["apollo"]
    assert usage_row(rdb, "apollo")["success_count"] == 3


def test_edgar_insider_report_capped_newest_first(emu, rdb):
    res = make("edgar", emu, rdb, max_transactions=5, max_filings=12)
    report = res.insider_transactions(ticker="aapl")
    assert isinstance(report, InsiderReport)
    assert report.cik == "0000320193" and report.company_name == "Apple Inc."
    assert report.filings_examined == 12 and report.filings_skipped == 0
    assert len(report.transactions) == 5 and report.capped and report.total_found > 5
    dates = [t.transaction_date for t in report.transactions]
    assert dates == sorted(dates, reverse=True)
    assert all(t.code and t.accession_number for t in report.transactions)


def test_edgar_filters_to_the_prospect(emu, rdb):
    res = make("edgar", emu, rdb, max_filings=12)
    everyone = res.insider_transactions(cik="320193")
    sec_name = everyone.transactions[0].owner_name  # "Last First M."
    last, first = sec_name.split()[:2]
    mine = res.insider_transactions(cik="320193", owner_name=f"{first} {last}")
    assert mine.transactions and all(t.owner_name == sec_name for t in mine.transactions)
    assert mine.total_found >= len(mine.transactions)
    assert res.insider_transactions(cik="320193", owner_name="Nobody Atall").transactions == ()


def test_edgar_unknown_ticker_and_cik_are_no_match(emu, rdb):
    res = make("edgar", emu, rdb)
    assert res.cik_for_ticker("NOPE-NOT-LISTED") is None
    assert res.insider_transactions(ticker="NOPE-NOT-LISTED") is None
    assert res.insider_transactions(cik="0000000001") is None  # submissions 404
    assert usage_row(rdb, "edgar")["failure_count"] == 0


def test_edgar_stays_within_secs_ten_per_second(emu, rdb):
    # The emulator answers 429 above 10 requests in any one-second window, like the SEC's block.
    emu.configure(rate_limit_per_second={"edgar": 10})
    res = make("edgar", emu, rdb, max_filings=25)
    started = time.monotonic()
    report = res.insider_transactions(ticker="AAPL")
    elapsed = time.monotonic() - started
    assert report.filings_examined == 25
    statuses = {code for route in emu.stats()["responses"]["edgar"].values() for code in route}
    assert statuses == {"200"}  # not one 429
    assert elapsed >= 2.0  # 27 requests at <= 10/s


# ---- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_401_is_a_clear_error_and_not_retried(emu, rdb, provider):
    emu.configure(faults={EMU_NAME[provider]: {"unauthorized": True}})
    res = make(provider, emu, rdb)
    with pytest.raises(ProviderAuthError) as info:
        ONE_CALL[provider](res)
    # ContactOut answers bad credentials with 400 (its docs), SEC with 403.
    assert info.value.http_status == {"edgar": 403, "contactout": 400}.get(provider, 401)
    assert info.value.provider == provider
    assert SECRET not in str(info.value)
    assert requests_seen(emu, provider) == 1
    row = usage_row(rdb, provider)
    assert (row["success_count"], row["failure_count"]) == (0, 1)


# Not EDGAR: SEC's over-the-limit answer is a 10-minute block, never retried
# (tests/resources/test_edgar_block.py).
@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p != "edgar"])
def test_429_honours_retry_after_then_succeeds(emu, rdb, provider):
    emu.configure(faults={EMU_NAME[provider]: {"storm_429_rate": 1.0, "retry_after_seconds": 1}})
    res = make(provider, emu, rdb)
    seen = heal_after_first_failure(res.http, emu, EMU_NAME[provider], storm_429_rate=0.0)
    started = time.monotonic()
    assert ONE_CALL[provider](res) is not None
    assert time.monotonic() - started >= 1.0  # waited the Retry-After, not the 10 ms backoff
    assert seen == [429, 200]
    row = usage_row(rdb, provider)
    assert (row["success_count"], row["rate_limited_count"], row["failure_count"]) == (1, 1, 0)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_5xx_then_success(emu, rdb, provider):
    emu.configure(faults={EMU_NAME[provider]: {"error_rate": 1.0}})
    res = make(provider, emu, rdb)
    seen = heal_after_first_failure(res.http, emu, EMU_NAME[provider], error_rate=0.0)
    assert ONE_CALL[provider](res) is not None
    assert seen[0] >= 500 and seen[1:] == [200]
    row = usage_row(rdb, provider)
    assert (row["success_count"], row["failure_count"]) == (1, 1)


@pytest.mark.parametrize("provider", ["exa", "edgar"])
def test_5xx_until_retries_run_out(emu, rdb, provider):
    emu.configure(faults={EMU_NAME[provider]: {"error_rate": 1.0}})
    res = make(provider, emu, rdb, max_retries=2)
    with pytest.raises(ProviderUnavailableError) as info:
        ONE_CALL[provider](res)
    assert "3 attempts" in str(info.value)
    assert requests_seen(emu, provider) == 3
    assert usage_row(rdb, provider)["success_count"] == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_timeout_is_retried_then_unavailable(emu, rdb, provider):
    emu.configure(faults={EMU_NAME[provider]: {"timeout_rate": 1.0, "timeout_seconds": 0.6}})
    res = make(provider, emu, rdb, timeout_seconds=0.15, max_retries=1)
    with pytest.raises(ProviderUnavailableError, match="timed out after 2 attempts"):
        ONE_CALL[provider](res)
    row = usage_row(rdb, provider)
    assert (row["success_count"], row["failure_count"]) == (0, 2)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_body(emu, rdb, provider):
    emu.configure(faults={EMU_NAME[provider]: {"malformed_rate": 1.0}})
    res = make(provider, emu, rdb)
    with pytest.raises(MalformedResponseError):
        ONE_CALL[provider](res)
    assert requests_seen(emu, provider) == 1  # a 200 with a broken body is not retried
    row = usage_row(rdb, provider)
    assert (row["success_count"], row["failure_count"]) == (0, 1)


def test_other_4xx_not_retried(emu, rdb):
    res = make("contactout", emu, rdb)
    with pytest.raises(ProviderRequestError) as info:
        res.enrich_person(linkedin_url="https://example.com/not-linkedin")
    assert info.value.http_status == 422 and requests_seen(emu, "contactout") == 1


# ---- circuit breaker through the client ---------------------------------------------------------


def test_breaker_opens_skips_then_probes_and_closes(emu, rdb):
    emu.configure(faults={"exa": {"error_rate": 1.0}})
    breaker = {"breaker_min_calls": 2, "breaker_reset_timeout_seconds": 0.5}
    res = make("exa", emu, rdb, max_retries=0, **breaker)
    for _ in range(2):
        with pytest.raises(ProviderUnavailableError):
            ONE_CALL["exa"](res)
    assert res.breaker.snapshot().state == "open"
    with pytest.raises(CircuitOpenError):
        ONE_CALL["exa"](res)
    assert requests_seen(emu, "exa") == 2  # skipped without touching the API
    assert call_log(rdb, "exa")[-1]["outcome"] == "circuit_open"
    # Another resource instance (another run) sees the same open circuit.
    with pytest.raises(CircuitOpenError):
        ONE_CALL["exa"](make("exa", emu, rdb, **breaker))

    time.sleep(0.6)
    with pytest.raises(ProviderUnavailableError):  # the probe fails: open again
        ONE_CALL["exa"](res)
    assert res.breaker.snapshot().state == "open"

    emu.configure(faults={"exa": {"error_rate": 0.0}})
    time.sleep(0.6)
    assert ONE_CALL["exa"](res) is not None  # the probe succeeds: closed
    assert res.breaker.snapshot().state == "closed"
    assert ONE_CALL["exa"](res) is not None


def test_auth_errors_do_not_trip_the_breaker(emu, rdb):
    emu.configure(faults={"apollo": {"unauthorized": True}})
    res = make("apollo", emu, rdb, breaker_min_calls=2)
    for _ in range(3):
        with pytest.raises(ProviderAuthError):
            ONE_CALL["apollo"](res)
    assert res.breaker.snapshot().state == "closed"


# ---- configuration ------------------------------------------------------------------------------


def setup_error(resource) -> BaseException:
    """The user exception Dagster reports when the resource's set-up fails."""
    with pytest.raises(dg.DagsterResourceFunctionError) as info:
        with dg.build_resources({"provider": resource}):
            pass
    return info.value.user_exception


def test_missing_key_fails_at_resource_setup(emu, rdb):
    res = ContactOutResource(api_key="", base_url=emu.base_urls()["contactout"], app_db=rdb)
    error = setup_error(res)
    assert isinstance(error, ProviderConfigError) and "CONTACTOUT_API_KEY" in str(error)
    assert requests_seen(emu, "contactout") == 0


def test_sec_user_agent_must_declare_an_email(emu, rdb):
    error = setup_error(EdgarResource(user_agent="python-httpx", app_db=rdb))
    assert isinstance(error, ProviderConfigError) and "SEC_USER_AGENT" in str(error)
    ok = EdgarResource(user_agent="Acme Ops ops@acme.com", app_db=rdb)
    with dg.build_resources({"edgar": ok}) as built:
        assert built.edgar.user_agent == "Acme Ops ops@acme.com"


def test_unset_env_var_is_a_setup_error(rdb, monkeypatch):
    monkeypatch.delenv("EXA_API_KEY", raising=False)
    res = ExaResource(api_key=dg.EnvVar("EXA_API_KEY"), app_db=rdb)
    with pytest.raises(Exception, match="EXA_API_KEY"):
        with dg.build_resources({"exa": res}):
            pass


def test_edgar_missing_filing_document_is_skipped_not_fatal(emu, rdb):
    res = make("edgar", emu, rdb)
    missing = Form4Filing("0000320193-22-999999", None, "no-such-form4.xml")
    assert res._safe_fetch("0000320193", missing) is None  # S3-style 403 AccessDenied


def test_inside_a_dagster_run_the_run_id_is_logged(emu, rdb):
    @dg.asset
    def contact(contactout: ContactOutResource) -> None:
        assert contactout.enrich_person(email="jane.doe@acme.com") is not None

    result = dg.materialize([contact], resources={"contactout": make("contactout", emu, rdb)})
    assert result.success
    assert [r["run_id"] for r in call_log(rdb, "contactout")] == [result.run_id]


def test_a_batch_of_threads_shares_one_http_client(emu, rdb, monkeypatch):
    """The first calls of a batch arrive on many threads at once; they must share one client
    (one connection pool, one CA bundle load), not build one each."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from phronesis_dagster.resources import http_client

    built = []
    guard = threading.Lock()

    class SlowToBuild(httpx.Client):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            time.sleep(0.05)  # widens the window in which other threads see no client yet
            with guard:
                built.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(http_client.httpx, "Client", SlowToBuild)
    exa = make("exa", emu, rdb)
    with ThreadPoolExecutor(12) as pool:
        found = list(
            pool.map(lambda i: exa.search_mentions(name=f"P {i}", company="Acme"), range(12))
        )
    assert all(f is not None for f in found)
    assert len(built) == 1
    exa.close()


def test_every_provider_client_shares_one_tls_context(emu, rdb):
    """Loading the CA bundle is 20-40 ms of CPU: one context per process, not per client."""
    clients = [make(p, emu, rdb).http for p in PROVIDERS]
    contexts = {id(c._transport.ssl_context) for c in clients}  # noqa: SLF001
    assert len(contexts) == 1


def test_a_cookie_an_answer_sets_is_kept(rdb):
    """Answers are read for cookies only when they set one: one that does is still kept, and
    sent back with the next request, as httpx does."""
    sent: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        headers = {"set-cookie": "session=abc; Path=/"} if len(sent) == 1 else {}
        return httpx.Response(200, json={"results": []}, headers=headers)

    exa = ExaResource(api_key=SECRET, base_url="https://exa.test", app_db=rdb, **FAST)
    client = exa.http
    client._transport = httpx.MockTransport(answer)
    for _ in range(3):
        exa.search_mentions(name="Jane Doe", company="Acme")
    assert sent == [None, "session=abc", "session=abc"]
    exa.close()


# ---- refusals as the providers really answer them (emulator scenarios) -------------------------


def other_process(fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn` in a fresh spawned process, as another Dagster run would."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def held_for(res) -> float:
    snap = res.breaker.snapshot()
    assert snap.state == "open" and snap.open_until is not None
    return (snap.open_until - datetime.now(UTC)).total_seconds()


@pytest.mark.parametrize(
    ("scenario", "reset_seconds"), [("hourly_quota_spent", 1800), ("daily_quota_spent", 36000)]
)
def test_apollo_spent_quota_window_holds_every_process_until_it_resets(
    emu, rdb, scenario, reset_seconds
):
    emu.configure(faults={"apollo": {"scenario": scenario}})
    res = make("apollo", emu, rdb)
    started = time.monotonic()
    with pytest.raises(ProviderQuotaExhausted, match="quota spent until") as info:
        ONE_CALL["apollo"](res)
    assert time.monotonic() - started < 5  # no thread sits out the window
    assert info.value.http_status == 429 and requests_seen(emu, "apollo") == 1  # not retried
    assert reset_seconds - 60 < held_for(res) <= reset_seconds  # until retry-after, not 30 s
    assert usage_row(rdb, "apollo")["rate_limited_count"] == 1
    # Even once Apollo would answer again, another process does not call it before the reset.
    emu.configure(faults={"apollo": {"scenario": ""}})
    outcome = other_process(_workers.provider_call, rdb.url, emu.url, "apollo")
    assert outcome.startswith("CircuitOpenError") and "quota spent" in outcome
    assert requests_seen(emu, "apollo") == 1


def test_a_429_asking_for_a_longer_wait_than_any_retry_is_not_retried(emu, rdb):
    emu.configure(faults={"exa": {"storm_429_rate": 1.0, "retry_after_seconds": 600}})
    res = make("exa", emu, rdb)
    with pytest.raises(ProviderQuotaExhausted):
        ONE_CALL["exa"](res)
    assert requests_seen(emu, "exa") == 1
    assert 500 < held_for(res) <= 600


def test_apollo_locked_email_placeholder_is_never_an_address(emu, rdb):
    emu.configure(faults={"apollo": {"scenario": "email_locked"}})
    match = make("apollo", emu, rdb).match_person(email="jane.doe@acme.com")
    assert match is not None and match.name
    assert match.email is None and match.email_status == "unavailable"


@pytest.mark.parametrize(
    ("scenario", "employees"), [("employees_as_string", int), ("employees_null", type(None))]
)
def test_apollo_head_count_as_text_or_null_never_fails_a_match(emu, rdb, scenario, employees):
    emu.configure(faults={"apollo": {"scenario": scenario}})
    res = make("apollo", emu, rdb)
    match = res.match_person(email="jane.doe@acme.com")
    assert match is not None and isinstance(match.organization_employees, employees)
    assert usage_row(rdb, "apollo")["success_count"] == 1


@pytest.mark.parametrize(
    ("scenario", "status", "words"),
    [("bad_credentials", 400, "bad credentials"), ("out_of_credits", 403, "out of credits")],
)
def test_contactout_credentials_and_credits_refusals_hold_the_breaker_and_say_why(
    emu, rdb, scenario, status, words
):
    emu.configure(faults={"contactout": {"scenario": scenario}})
    res = make("contactout", emu, rdb)
    with pytest.raises(ProviderAuthError, match=words) as info:
        ONE_CALL["contactout"](res)
    assert info.value.http_status == status and requests_seen(emu, "contactout") == 1
    assert 250 < held_for(res) <= 300
    assert words in res.breaker.snapshot().last_error
    outcome = other_process(_workers.provider_call, rdb.url, emu.url, "contactout")
    assert outcome.startswith("CircuitOpenError") and words in outcome
    assert requests_seen(emu, "contactout") == 1


@pytest.mark.parametrize(
    ("scenario", "status", "words"),
    [
        ("out_of_credits", 402, "out of credits"),
        ("key_budget_exceeded", 402, "out of credits for this API key"),
        ("access_denied", 403, "no access"),
    ],
)
def test_exa_credits_and_access_refusals_hold_the_breaker_for_every_process(
    emu, rdb, scenario, status, words
):
    emu.configure(faults={"exa": {"scenario": scenario}})
    res = make("exa", emu, rdb)
    with pytest.raises(ProviderAuthError, match=words) as info:
        ONE_CALL["exa"](res)
    # Not retried (FAST allows retries) and not counted as an outage: the breaker is held, not
    # tripped by failures.
    assert info.value.http_status == status and requests_seen(emu, "exa") == 1
    assert info.value.hold_until is not None and SECRET not in str(info.value)
    assert 250 < held_for(res) <= 300
    snap = res.breaker.snapshot()
    assert words in snap.last_error and snap.window_failures == 0
    assert call_log(rdb, "exa")[-1]["http_status"] == status
    # The same process skips its next call, with the reason.
    with pytest.raises(CircuitOpenError, match=words):
        ONE_CALL["exa"](res)
    # Another process (another run) is refused by the shared breaker without calling Exa, even
    # once Exa would answer again.
    emu.configure(faults={"exa": {"scenario": ""}})
    outcome = other_process(_workers.provider_call, rdb.url, emu.url, "exa")
    assert outcome.startswith("CircuitOpenError") and words in outcome
    assert requests_seen(emu, "exa") == 1


def test_exa_content_block_refuses_one_request_not_the_provider(emu, rdb):
    emu.configure(faults={"exa": {"scenario": "prohibited_content"}})
    res = make("exa", emu, rdb)
    with pytest.raises(ProviderRequestError, match="PROHIBITED_CONTENT") as info:
        ONE_CALL["exa"](res)
    assert info.value.http_status == 403 and info.value.hold_until is None
    assert requests_seen(emu, "exa") == 1
    snap = res.breaker.snapshot()
    assert (snap.state, snap.window_failures) == ("closed", 0)
    emu.configure(faults={"exa": {"scenario": ""}})
    assert ONE_CALL["exa"](res) is not None  # the next request goes through


def test_contactout_401_is_a_bad_request_not_a_key_problem(emu, rdb):
    emu.configure(faults={"contactout": {"scenario": "bad_request"}})
    res = make("contactout", emu, rdb)
    with pytest.raises(ProviderRequestError, match="bad request") as info:
        ONE_CALL["contactout"](res)
    assert info.value.http_status == 401 and requests_seen(emu, "contactout") == 1
    assert res.breaker.snapshot().state == "closed"


def test_contactout_empty_profile_list_is_not_found_not_a_failure(emu, rdb):
    emu.configure(faults={"contactout": {"scenario": "empty_profile"}})
    res = make("contactout", emu, rdb)
    assert ONE_CALL["contactout"](res) is None
    assert call_log(rdb, "contactout")[-1]["outcome"] == "not_found"
    snap = res.breaker.snapshot()
    assert (snap.state, snap.window_failures) == ("closed", 0)


@pytest.mark.parametrize("provider", ["contactout", "exa", "apollo"])
def test_redirects_are_followed_never_parsed(emu, rdb, provider):
    emu.configure(faults={provider: {"scenario": "redirect"}})
    res = make(provider, emu, rdb)
    assert ONE_CALL[provider](res) is not None  # the answer behind the 307
    assert requests_seen(emu, provider) == 2
    emu.configure(faults={provider: {"scenario": "redirect_loop"}})
    with pytest.raises(ProviderRequestError, match="more than 5 redirects"):
        ONE_CALL[provider](res)


def _count_slots(monkeypatch) -> list[str]:
    """Every rate-limit slot taken from now on (the limiter itself still runs)."""
    taken: list[str] = []
    acquire = SharedRateLimiter.acquire

    def counting(self: SharedRateLimiter) -> None:
        acquire(self)
        taken.append(self.provider)

    monkeypatch.setattr(SharedRateLimiter, "acquire", counting)
    return taken


@pytest.mark.parametrize("provider", ["contactout", "exa", "apollo"])
def test_every_request_on_the_wire_takes_a_slot_redirect_hops_too(emu, rdb, provider, monkeypatch):
    # The provider counts each hop of a redirect as a request: so does the shared limit.
    taken = _count_slots(monkeypatch)
    emu.configure(faults={provider: {"scenario": "redirect"}})
    res = make(provider, emu, rdb)
    assert ONE_CALL[provider](res) is not None
    assert requests_seen(emu, provider) == 2
    assert len(taken) == 2


def test_a_request_that_never_connects_takes_no_slot_but_is_logged(rdb, monkeypatch):
    # The slot is taken once the connection is ready (TCP/TLS set-up never sits between the
    # slot and the provider's count): a refused connection spends none of the shared budget,
    # and each attempt is still in the call log as a failure.
    taken = _count_slots(monkeypatch)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    res = ExaResource(
        api_key=SECRET,
        base_url=f"http://127.0.0.1:{port}",
        app_db=rdb,
        provider_mode="emulator",
        **{**FAST, "max_retries": 1},
    )
    with pytest.raises(ProviderUnavailableError, match="connection failed after 2 attempts"):
        ONE_CALL["exa"](res)
    assert taken == []
    assert [row["outcome"] for row in call_log(rdb, "exa")] == ["failure", "failure"]


def test_exa_asks_for_highlights_by_characters_and_gets_them(emu, rdb):
    res = make("exa", emu, rdb)
    sent: list[dict] = []
    res.http.event_hooks["request"].append(lambda r: sent.append(json.loads(r.read())))
    ONE_CALL["exa"](res)
    highlights = sent[-1]["contents"]["highlights"]
    assert highlights["maxCharacters"] == HIGHLIGHT_MAX_CHARACTERS
    assert not {"numSentences", "highlightsPerUrl"} & set(highlights)  # deprecated
    # The emulator gives what was asked: at most maxCharacters of highlights per result.
    url = emu.base_urls()["exa"] + "/search"
    for cap in (40, None):
        contents = {"highlights": {"maxCharacters": cap} if cap else True}
        body = {"query": "Warren Buffett Berkshire", "numResults": 5, "contents": contents}
        results = httpx.post(url, json=body, headers={"x-api-key": "k"}).json()["results"]
        assert results and all("text" not in r for r in results)
        longest = max(sum(map(len, r["highlights"])) for r in results)
        assert longest <= 40 if cap else longest > 40
