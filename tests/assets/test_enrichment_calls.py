"""`run_calls` (assets/enrichment/calls.py): a batch's calls on one pool per provider, each
outcome stored and taken in by the pool thread that made it, the summary of a prospect started
as soon as its data sources are in."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections import Counter

import pytest

from phronesis_dagster.assets.enrichment.calls import run_calls
from phronesis_dagster.enrichment.progress import ProgressLogger
from phronesis_dagster.enrichment.store import SourceOutcome
from phronesis_dagster.resources.contract import ProspectInput, ProviderAnswer
from phronesis_dagster.resources.registry import DATA_PROVIDERS, SUMMARY_PROVIDER, Provider


class FakeEnricher:
    """A provider that answers at once with the prospect's id (an `Enricher`)."""

    provider_mode = "test"
    requests_per_second = None

    def __init__(self, source: str) -> None:
        self.source = source
        self.called: list[uuid.UUID] = []

    def enrich(self, prospect: ProspectInput) -> ProviderAnswer:
        self.called.append(prospect.id)
        return ProviderAnswer({"id": str(prospect.id), "sources_seen": sorted(prospect.found)})

    def rate_limits_in_effect(self) -> dict[str, str]:
        return {}

    def run_counters(self) -> dict[str, int]:
        return {}

    def warm_up(self) -> None:
        pass


def public_prospects(n: int) -> list[ProspectInput]:
    """Prospects every data source applies to (a public company's executive with an email)."""
    tenant = uuid.uuid4()
    return [
        ProspectInput(
            id=uuid.uuid4(),
            tenant_id=tenant,
            name=f"Avery Stone {i}",
            company="Acme Corp",
            title="CFO",
            email=f"avery{i}@acme.example",
            linkedin_url=f"https://www.linkedin.com/in/avery-{i}",
            is_public_company=True,
            company_ticker="ACME",
            company_cik="0000320193",
        )
        for i in range(n)
    ]


def batch(
    postgres_url: str, prospects: list[ProspectInput], follow_up_fn
) -> tuple[dict, dict[Provider, FakeEnricher], ProgressLogger]:
    clients = {p: FakeEnricher(p.SOURCE) for p in (*DATA_PROVIDERS, SUMMARY_PROVIDER)}
    progress = ProgressLogger(lambda line: None, label="test", total=len(prospects) * 4)
    out = run_calls(
        app_db_url=postgres_url,
        batch_key="b1",
        run_id="r1",
        work={p: prospects for p in DATA_PROVIDERS},
        clients=clients,
        widths={p: 4 for p in clients},
        progress=progress,
        follow_up=(SUMMARY_PROVIDER, follow_up_fn),
    )
    return out, clients, progress


@pytest.mark.postgres
def test_each_summary_starts_once_after_its_prospects_data_sources(postgres_url):
    """Outcomes arrive on 16 threads at once: each prospect's summary is called exactly once,
    with all four data sources in, and every outcome is in the result."""
    prospects = public_prospects(40)
    lock = threading.Lock()
    seen: Counter[uuid.UUID] = Counter()
    in_when_summarized: dict[uuid.UUID, int] = {}

    def summary_due(provider: Provider, prospect: ProspectInput, outcome: SourceOutcome):
        # Called under run_calls' lock: no other outcome is taken in meanwhile. The lock here
        # only checks that claim (a second holder would mean two at once).
        assert lock.acquire(blocking=False), "two outcomes taken in at once"
        try:
            seen[prospect.id] += 1
            if seen[prospect.id] < len(DATA_PROVIDERS):
                return []
            in_when_summarized[prospect.id] = seen[prospect.id]
            return [dataclasses.replace(prospect, found={"web": {"id": str(prospect.id)}})]
        finally:
            lock.release()

    out, clients, progress = batch(postgres_url, prospects, summary_due)

    assert Counter(clients[SUMMARY_PROVIDER].called) == Counter(p.id for p in prospects)
    assert set(in_when_summarized.values()) == {len(DATA_PROVIDERS)}
    assert out[(prospects[0].id, SUMMARY_PROVIDER.SOURCE)].data["sources_seen"] == ["web"]
    expected = {(p.id, s.SOURCE) for p in prospects for s in (*DATA_PROVIDERS, SUMMARY_PROVIDER)}
    assert set(out) == expected
    assert all(o.status in ("complete", "skipped") for o in out.values())
    assert progress.done == progress.total == len(prospects) * 5


@pytest.mark.postgres
@pytest.mark.timeout(60)
def test_an_error_taking_in_an_outcome_fails_the_batch_instead_of_hanging(postgres_url):
    """What goes wrong on a pool thread after a call (here the follow-up's bookkeeping) is the
    batch's error, raised by `run_calls`; the remaining calls are cancelled."""
    prospects = public_prospects(30)

    def broken(provider: Provider, prospect: ProspectInput, outcome: SourceOutcome):
        raise RuntimeError("bookkeeping broke")

    with pytest.raises(RuntimeError, match="bookkeeping broke"):
        batch(postgres_url, prospects, broken)
