"""WarmRunLauncher against a real instance (Dagster's storage in a PostgreSQL database of the
test's own) and a real code server: runs forked from the warm worker complete, terminate cancels
one, a dead run process is reported, a worker that cannot start falls back to the code server,
and a code change replaces the worker.

The code location is a small package written into the test's folder (`warmjobs`), so a test can
change its code; its one job writes its version and pids to a file, then sleeps as configured."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.launcher.base import WorkerStatus
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.workspace.load_target import ModuleTarget

from phronesis_dagster.launcher import RUN_WORKER_TAG, WarmRunLauncher
from phronesis_dagster.processes import process_alive
from tests.conftest import fresh_database

pytestmark = pytest.mark.postgres

PACKAGE = "warmjobs"
JOB = "record_job"
CODE = """\
import os
import time

import dagster as dg

VERSION = "{version}"


@dg.op(config_schema={{"out": str, "sleep": float}})
def record(context):
    with open(context.op_config["out"] + ".tmp", "w") as f:
        f.write(f"{{VERSION}} {{os.getpid()}} {{os.getppid()}}")
    os.replace(context.op_config["out"] + ".tmp", context.op_config["out"])
    time.sleep(context.op_config["sleep"])


@dg.job(executor_def=dg.in_process_executor)
def record_job():
    record()


defs = dg.Definitions(jobs=[record_job])
"""
RUN_TIMEOUT = 90


def write_code(folder: Path, version: str) -> None:
    package = folder / PACKAGE
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text(CODE.format(version=version))


@pytest.fixture
def dagster_db_url() -> Iterator[str]:
    """An empty PostgreSQL database for Dagster's storage, dropped afterwards."""
    with fresh_database("t_warm") as url:
        yield (
            sa.make_url(url)
            .set(drivername="postgresql+psycopg2")
            .render_as_string(hide_password=False)
        )


@pytest.fixture
def code_folder(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    write_code(folder, "v1")
    # The launcher finds the package to watch by name, as it finds phronesis_dagster.
    monkeypatch.syspath_prepend(str(folder))
    return folder


@contextmanager
def warm_instance(
    tmp_path: Path, db_url: str, preload: list[str] | None = None
) -> Iterator[dg.DagsterInstance]:
    launcher = {
        "module": "phronesis_dagster.launcher",
        "class": "WarmRunLauncher",
        "config": {"preload_modules": preload or [PACKAGE], "watch_packages": [PACKAGE]},
    }
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    with dg.instance_for_test(
        temp_dir=str(home),
        overrides={"storage": {"postgres": {"postgres_url": db_url}}, "run_launcher": launcher},
    ) as instance:
        yield instance


@contextmanager
def workspace(instance: dg.DagsterInstance, folder: Path):
    target = ModuleTarget(
        module_name=PACKAGE, attribute=None, working_directory=str(folder), location_name=PACKAGE
    )
    with create_test_daemon_workspace_context(target, instance) as context:
        yield context.create_request_context()


def launch(instance, request_context, out: Path, sleep: float = 0.0) -> dg.DagsterRun:
    """Create a run of the code server's job and launch it, as the daemon's dequeue does."""
    location = request_context.get_code_location(PACKAGE)
    remote_job = location.get_repository("__repository__").get_full_job(JOB)
    run = instance.create_run(
        job_name=JOB,
        run_id=None,
        run_config={"ops": {"record": {"config": {"out": str(out), "sleep": sleep}}}},
        resolved_op_selection=None,
        step_keys_to_execute=None,
        status=dg.DagsterRunStatus.NOT_STARTED,
        op_selection=None,
        root_run_id=None,
        parent_run_id=None,
        tags={},
        job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=None,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_selection=None,
        asset_check_selection=None,
        asset_graph=None,
    )
    return instance.launch_run(run.run_id, request_context)


def wait_for(predicate, timeout: float = RUN_TIMEOUT, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def finished(instance, run_id: str) -> dg.DagsterRun:
    return wait_for(
        lambda: (r := instance.get_run_by_id(run_id)) and r.is_finished and r,
        what=f"run {run_id} to finish",
    )


def worker_info(instance, run_id: str) -> dict:
    return json.loads(instance.get_run_by_id(run_id).tags[RUN_WORKER_TAG])


def messages(instance, run_id: str) -> list[str]:
    return [
        e.user_message or (e.dagster_event.message if e.dagster_event else "") or ""
        for e in instance.all_logs(run_id)
    ]


def test_runs_are_forked_from_one_warm_worker_even_from_four_threads(
    tmp_path, dagster_db_url, code_folder
):
    with (
        warm_instance(tmp_path, dagster_db_url) as instance,
        workspace(instance, code_folder) as request_context,
    ):
        outs = [tmp_path / f"out{i}" for i in range(4)]
        runs: list[dg.DagsterRun] = []
        threads = [
            threading.Thread(target=lambda o=o: runs.append(launch(instance, request_context, o)))
            for o in outs
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(runs) == 4
        launcher = instance.run_launcher
        assert isinstance(launcher, WarmRunLauncher)
        worker = launcher.worker_pid
        for run in runs:
            assert finished(instance, run.run_id).status == dg.DagsterRunStatus.SUCCESS
        forked = {worker_info(instance, run.run_id)["pid"] for run in runs}
        written = [out.read_text().split() for out in outs]
        assert {version for version, _, _ in written} == {"v1"}
        # Every run was executed by the process its tag names, a child of the one worker...
        assert {int(pid) for _, pid, _ in written} == forked
        assert {int(ppid) for _, _, ppid in written} == {worker}
        # ...which reaped it (no zombie left).
        for pid in forked:
            wait_for(lambda p=pid: not Path(f"/proc/{p}").exists(), 10, f"pid {pid} reaped")
        assert any("Started process for run" in m for m in messages(instance, runs[0].run_id))
    # Disposing the instance stopped the worker.
    assert not process_alive(worker, None)


def test_terminate_cancels_the_forked_run(tmp_path, dagster_db_url, code_folder):
    with (
        warm_instance(tmp_path, dagster_db_url) as instance,
        workspace(instance, code_folder) as request_context,
    ):
        out = tmp_path / "out"
        run = launch(instance, request_context, out, sleep=120)
        wait_for(out.exists, what="the run's op to start")
        pid = worker_info(instance, run.run_id)["pid"]
        assert (
            instance.run_launcher.check_run_worker_health(instance.get_run_by_id(run.run_id)).status
            == WorkerStatus.RUNNING
        )
        assert instance.run_launcher.terminate(run.run_id)
        assert finished(instance, run.run_id).status == dg.DagsterRunStatus.CANCELED
        wait_for(lambda: not process_alive(pid, None), 30, "the run process to exit")
        assert not instance.run_launcher.terminate(run.run_id)  # already finished


def test_a_killed_run_process_fails_its_run_and_health_says_so(
    tmp_path, dagster_db_url, code_folder
):
    with (
        warm_instance(tmp_path, dagster_db_url) as instance,
        workspace(instance, code_folder) as request_context,
    ):
        out = tmp_path / "out"
        run = launch(instance, request_context, out, sleep=120)
        wait_for(out.exists, what="the run's op to start")
        info = worker_info(instance, run.run_id)
        os.kill(info["pid"], signal.SIGKILL)
        wait_for(lambda: not process_alive(info["pid"], info["start"]), 10, "the kill")
        health = instance.run_launcher.check_run_worker_health(instance.get_run_by_id(run.run_id))
        assert health.status == WorkerStatus.FAILED, health
        # The worker saw its child die and failed the run at once, as the code server does.
        assert finished(instance, run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert any(
            "unexpectedly" in m or "signal" in m.lower() for m in messages(instance, run.run_id)
        )


def test_a_worker_that_cannot_start_falls_back_to_the_code_server(
    tmp_path, dagster_db_url, code_folder
):
    with (
        warm_instance(
            tmp_path, dagster_db_url, preload=[PACKAGE, "no_such_module_anywhere"]
        ) as instance,
        workspace(instance, code_folder) as request_context,
    ):
        out = tmp_path / "out"
        run = launch(instance, request_context, out)
        assert finished(instance, run.run_id).status == dg.DagsterRunStatus.SUCCESS
        assert out.read_text().startswith("v1")
        run = instance.get_run_by_id(run.run_id)
        assert RUN_WORKER_TAG not in run.tags
        assert any("Warm run worker unavailable" in m for m in messages(instance, run.run_id))
        # Launched by the code server, which watches it: monitoring must not fail it.
        health = instance.run_launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.RUNNING


def test_a_dead_worker_is_replaced_and_its_running_children_finish(
    tmp_path, dagster_db_url, code_folder
):
    with (
        warm_instance(tmp_path, dagster_db_url) as instance,
        workspace(instance, code_folder) as request_context,
    ):
        first = launch(instance, request_context, tmp_path / "out1", sleep=3)
        wait_for((tmp_path / "out1").exists, what="the first run's op")
        old = instance.run_launcher.worker_pid
        os.kill(old, signal.SIGKILL)
        second = launch(instance, request_context, tmp_path / "out2")
        assert finished(instance, second.run_id).status == dg.DagsterRunStatus.SUCCESS
        assert instance.run_launcher.worker_pid not in (None, old)
        assert int((tmp_path / "out2").read_text().split()[2]) == instance.run_launcher.worker_pid
        # The first run's process outlived its worker and finished its run.
        assert finished(instance, first.run_id).status == dg.DagsterRunStatus.SUCCESS


def test_a_code_change_replaces_the_worker(tmp_path, dagster_db_url, code_folder):
    with (
        warm_instance(tmp_path, dagster_db_url) as instance,
        workspace(instance, code_folder) as request_context,
    ):
        run = launch(instance, request_context, tmp_path / "out1")
        assert finished(instance, run.run_id).status == dg.DagsterRunStatus.SUCCESS
        old = instance.run_launcher.worker_pid
        write_code(code_folder, "version-2")
        run = launch(instance, request_context, tmp_path / "out2")
        assert finished(instance, run.run_id).status == dg.DagsterRunStatus.SUCCESS
        assert (tmp_path / "out2").read_text().split()[0] == "version-2"
        assert instance.run_launcher.worker_pid not in (None, old)
        wait_for(lambda: not process_alive(old, None), 15, "the old worker to exit")


def test_a_code_location_the_worker_does_not_preload_uses_the_code_server(
    tmp_path, dagster_db_url, code_folder
):
    """A code location the worker does not preload never reaches the worker."""
    with warm_instance(tmp_path, dagster_db_url, preload=["some_other_module"]) as instance:
        launcher = instance.run_launcher
        with workspace(instance, code_folder) as request_context:
            run = launch(instance, request_context, tmp_path / "out")
            assert finished(instance, run.run_id).status == dg.DagsterRunStatus.SUCCESS
        assert launcher.worker_pid is None
        assert RUN_WORKER_TAG not in instance.get_run_by_id(run.run_id).tags
