"""The enrichment story on the web app's own database, as in production: `schema.sql` applied
first and its rows already there (some prospects with the old plain-string source records, one
whose record column holds the JSON string "reset"), then `phronesis migrate`, then the web app
inserts `enrichment_requests` rows with its UUIDs; the sensor batches them and the batch runs
through the provider emulator. The prospect row shows a spinner's worth of `pending` per source
while the run goes, and ends with the web app's source keys, `ai_summary` text, and the legacy
records of the prospects nobody asked about left as they were."""

from __future__ import annotations

import random
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster import cli
from phronesis_dagster.db.sql_files import SQL_DIR
from phronesis_dagster.demo_data import insert_demo_prospects
from phronesis_dagster.enrichment.constants import ALL_SOURCES, FINAL_STATUSES
from phronesis_dagster.enrichment.requests import SensorSettings
from phronesis_dagster.enrichment.status import lenient_source_status, read_source_status
from phronesis_dagster.local_runner import run_pending_enrichment
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.sensors.enrichment import (
    build_enrichment_request_sensor,
    enrichment_run_canceled_sensor,
    enrichment_run_failure_sensor,
)
from tests.enrichment.harness import enrichment_defs

SHARED_SCHEMA = Path(__file__).resolve().parents[2] / ".." / "shared" / "webapp" / "schema.sql"
# The web app's schema; the packaged copy (byte-identical, tests/db checks it) where ../shared
# is not checked out beside the repository.
SCHEMA = SHARED_SCHEMA if SHARED_SCHEMA.exists() else SQL_DIR / "webapp_schema.sql"
# The `emulator` fixture runs seed 0; public prospects are its Form 4 insiders only then.
EMULATOR_SEED = 0


def psql_file(url: str, path: Path) -> None:
    parts = sa.make_url(url)
    subprocess.run(
        [
            "psql",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            parts.host or "127.0.0.1",
            "-p",
            str(parts.port or 5432),
            "-U",
            parts.username or "postgres",
            "-d",
            parts.database,
            "-f",
            str(path),
        ],
        check=True,
        capture_output=True,
    )


def web_app_rows(engine: sa.Engine) -> dict[str, Any]:
    """What the web app's own tables hold before we adopt the database (its columns only)."""
    with engine.begin() as conn:
        tenant = conn.execute(
            sa.text("INSERT INTO tenants (name) VALUES ('Harbor Wealth') RETURNING id")
        ).scalar_one()
        user = conn.execute(
            sa.text(
                "INSERT INTO users (tenant_id, email, full_name) "
                "VALUES (:t, 'rep@harbor.example', 'Rae Rep') RETURNING id"
            ),
            {"t": tenant},
        ).scalar_one()

        def prospect(name: str, company: str, email: str | None, record: str) -> uuid.UUID:
            return conn.execute(
                sa.text(
                    "INSERT INTO prospects (tenant_id, name, title, company, email, "
                    "enrichment_status, enrichment_source_status) "
                    "VALUES (:t, :n, 'Partner', :c, :e, 'complete', CAST(:r AS jsonb)) "
                    "RETURNING id"
                ),
                {"t": tenant, "n": name, "c": company, "e": email, "r": record},
            ).scalar_one()

        return {
            "tenant": tenant,
            "user": user,
            # Enriched by the old system: plain-string records; we re-enrich it.
            "legacy_asked": prospect(
                "Lena Old",
                "Old Harbor Partners",
                "lena@oldharbor.example",
                '{"contactout": "complete", "exa": "failed", "claude": "complete"}',
            ),
            # Nobody asks about this one: its legacy records must stay exactly as they are.
            "legacy_left": prospect(
                "Otto Stay",
                "Stay Capital",
                None,
                '{"contactout": "skipped", "exa": "complete", "sec": "pending"}',
            ),
            # A web-app bug left a scalar in the column: fails alone, before any call.
            "reset": prospect("Remy Reset", "Reset Ltd", "remy@reset.example", '"reset"'),
        }


def web_app_requests(engine, tenant, user, prospect_ids) -> uuid.UUID:
    """The web app's bulk "Enrich": a job row and one request row per prospect, with its UUIDs."""
    with engine.begin() as conn:
        job = conn.execute(
            sa.text(
                "INSERT INTO enrichment_jobs (tenant_id, requested_by, total) "
                "VALUES (:t, :u, :n) RETURNING id"
            ),
            {"t": tenant, "u": user, "n": len(prospect_ids)},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO enrichment_requests (tenant_id, prospect_id, requested_by, job_id) "
                "VALUES (:t, :p, :u, :j)"
            ),
            [{"t": tenant, "p": p, "u": user, "j": job} for p in prospect_ids],
        )
    return job


def prospects(engine: sa.Engine) -> dict[uuid.UUID, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, name, enrichment_status, enrichment_source_status, ai_summary, "
                "ai_summary_structured, is_public_company, last_enriched_at FROM prospects"
            )
        )
        return {r.id: r for r in rows}


def test_requests_to_prospect_rows_on_the_web_apps_database(
    empty_postgres_url, emulator, tmp_path, monkeypatch
):
    url = empty_postgres_url
    monkeypatch.setenv("PHRONESIS_DATA_DIR", str(tmp_path))
    psql_file(url, SCHEMA)
    engine = sa.create_engine(url)
    web = web_app_rows(engine)
    assert cli.main(["migrate", "--database-url", url]) == 0
    app_db = AppDatabase(url=url)
    # More of the web app's prospects, some of them insiders of public companies the emulator
    # has Form 4 filings for (so EDGAR, source `sec`, finds trades).
    with app_db.begin() as conn:
        fresh = insert_demo_prospects(
            conn,
            tenant_id=web["tenant"],
            count=4,
            rng=random.Random(3),
            public_company_share=0.5,
            emulator_seed=EMULATOR_SEED,
        )
    asked = [web["legacy_asked"], web["reset"], *fresh]
    before_left = prospects(engine)[web["legacy_left"]]
    job = web_app_requests(engine, web["tenant"], web["user"], asked)

    # Slow providers, so the run can be watched while it goes.
    emulator.configure(latency_ms=250)
    defs = enrichment_defs(
        app_db,
        emulator.url,
        sensors=[
            build_enrichment_request_sensor(SensorSettings(batch_size=10)),
            enrichment_run_failure_sensor,
            enrichment_run_canceled_sensor,
        ],
    )
    seen_mid_run: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    with dg.instance_for_test() as instance:
        runner = threading.Thread(
            target=lambda: summary.setdefault("s", run_pending_enrichment(instance, defs))
        )
        runner.start()
        deadline = time.monotonic() + 120
        while runner.is_alive() and time.monotonic() < deadline:
            for p in prospects(engine).values():
                if p.enrichment_status != "in_progress" or p.id not in asked:
                    continue
                record = lenient_source_status(p.enrichment_source_status)
                states = {v["status"] for v in record.values()}
                if "pending" in states and states & {"complete", "not_found"}:
                    seen_mid_run.append(record)
            time.sleep(0.05)
        runner.join(120)
    assert not runner.is_alive()
    assert all(ok for _, _, ok in summary["s"].runs)

    # While the batch ran, a prospect showed pending for an unfinished source next to the final
    # record of a finished one; pending records carry their start time.
    assert seen_mid_run, "never saw a prospect with both pending and finished sources"
    pending = [v for r in seen_mid_run for v in r.values() if v["status"] == "pending"]
    assert all(v.get("at") for v in pending)

    rows = prospects(engine)
    for pid in [web["legacy_asked"], *fresh]:
        p = rows[pid]
        record = p.enrichment_source_status
        # The web app's keys, each a structured record: no `edgar` key, no legacy string left.
        assert set(record) == set(ALL_SOURCES) == {"apollo", "contactout", "exa", "sec", "claude"}
        assert all(
            isinstance(v, dict) and v["status"] in FINAL_STATUSES | {"failed"}
            for v in record.values()
        ), record
        assert all(v["at"] for v in record.values())
        assert p.enrichment_status == "complete" and p.last_enriched_at is not None
        assert (record["sec"]["status"] == "skipped") == (not p.is_public_company)
        # ai_summary is the prose the web app shows; the structure is in our column.
        assert isinstance(p.ai_summary, str) and p.ai_summary
        assert p.ai_summary == p.ai_summary_structured["summary"]
        assert {"key_facts", "talking_points", "sources"} <= set(p.ai_summary_structured)
    assert any(rows[p].enrichment_source_status["sec"]["status"] == "complete" for p in fresh)

    # The "reset" prospect failed alone with a reason; its column is as the web app left it.
    reset = rows[web["reset"]]
    assert reset.enrichment_status == "failed"
    assert reset.enrichment_source_status == "reset"
    # The legacy prospect nobody asked about: untouched, and still readable as {status: v}.
    left = rows[web["legacy_left"]]
    assert left.enrichment_source_status == before_left.enrichment_source_status
    assert read_source_status(left.enrichment_source_status)["sec"] == {"status": "pending"}

    with engine.connect() as conn:
        reqs = {
            r.prospect_id: r
            for r in conn.execute(
                sa.text("SELECT prospect_id, status, reason FROM enrichment_requests")
            )
        }
        job_row = conn.execute(
            sa.text(
                "SELECT status, total, processed, succeeded, failed FROM enrichment_jobs "
                "WHERE id = :j"
            ),
            {"j": job},
        ).one()
        providers = {r[0] for r in conn.execute(sa.text("SELECT DISTINCT provider FROM api_usage"))}
    assert reqs[web["reset"]].status == "failed"
    assert "holds a JSON string 'reset'" in reqs[web["reset"]].reason
    assert {reqs[p].status for p in asked if p != web["reset"]} == {"done"}
    assert tuple(job_row) == ("done", len(asked), len(asked), len(asked) - 1, 1)
    # The source is `sec`; the provider it bills and counts as stays `edgar`.
    assert "edgar" in providers and "sec" not in providers
    engine.dispose()
