"""`phronesis demo` reads like a report: one line per step, no Dagster DEBUG/INFO lines on the
terminal (they stay in the runs' event logs), and the URL to open at the end. Run as a user runs
it (a subprocess: the definitions bind the emulator's address at import), on a database named by
PHRONESIS_DATABASE_URL, which the demo must use as it is and never drop."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.db.engine import engine_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGSTER_LOG_LINE = re.compile(r" - dagster[\w.-]* - (DEBUG|INFO) - ")
STEPS = (
    "1. app database",
    "2. usage rollup",
    "3. enrichment (emulator)",
    "4. quotas and operations",
)


def test_demo_prints_a_short_report_and_the_url(postgres_url: str, tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_API_KEY") and k not in ("PHRONESIS_PROVIDER_MODE", "DAGSTER_HOME")
    }
    env |= {
        "PHRONESIS_DATABASE_URL": postgres_url,
        "PHRONESIS_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "phronesis_dagster.cli", "demo", "--days", "2"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    lines = out.splitlines()

    terminal = lines + result.stderr.splitlines()
    assert not [line for line in terminal if DAGSTER_LOG_LINE.search(line)]
    # Each step once, in order, each with its summary and time on the same line.
    step_lines = [next(line for line in lines if line.startswith(step)) for step in STEPS]
    positions = [lines.index(line) for line in step_lines]
    assert positions == sorted(positions)
    assert all(re.search(r"\(\d+\.\ds\)$", line) for line in step_lines)
    assert "2 day(s): ok" in step_lines[1]
    assert lines[-1].strip() == "make dev     then open http://127.0.0.1:3000"
    # The whole report fits on a screen.
    assert len(lines) <= 20, out

    # The database given by the user was used, not dropped and recreated, and the runs' logs are
    # in the local instance.
    with engine_for(postgres_url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM tenants")).scalar_one() > 0
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        runs = instance.get_run_records()
        assert runs and all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        debug_events = instance.all_logs(runs[0].dagster_run.run_id)
        assert any(e.level == 10 for e in debug_events)  # DEBUG lines kept in the run's log
