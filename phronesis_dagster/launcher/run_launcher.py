"""`WarmRunLauncher`: runs forked from a warm worker instead of a fresh `dagster api
execute_run` process (issue 11: a run's set-up before its first provider call, at most 1.5 s).

The instance names it (`run_launcher: module: phronesis_dagster.launcher, class:
WarmRunLauncher`); the daemon calls `launch_run` from its dequeue threads, so everything that
touches the worker is under one lock. A run of the code location the worker preloaded is sent
to the worker (warm_worker.py), which forks a child executing it; the child's pid is put on the
run (`phronesis/run_worker`), which is how `terminate` and run monitoring find it. Any other
run, or any failure to reach the worker, is launched as Dagster's DefaultRunLauncher does it,
through the code server: a run is never lost to the warm path.

Single host only (pids are local): the Helm chart keeps the K8sRunLauncher.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import Field
from dagster._core.launcher.base import (
    CheckRunHealthResult,
    LaunchRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._serdes import ConfigurableClass, ConfigurableClassData

from phronesis_dagster.launcher import code_snapshot
from phronesis_dagster.launcher.client import ReplyLost, WarmWorker, WorkerKey, WorkerUnavailable
from phronesis_dagster.launcher.warm_worker import DEFAULT_PRELOAD
from phronesis_dagster.processes import process_alive, process_start_ticks

logger = logging.getLogger(__name__)

RUN_WORKER_TAG = "phronesis/run_worker"
DEFAULT_WATCH_PACKAGES = ("phronesis_dagster",)
# A worker's start is its preload: about 3 s of CPU on a quiet core, several times that on a
# busy 2-core laptop.
DEFAULT_START_TIMEOUT_SECONDS = 120.0


class WarmRunLauncher(RunLauncher, ConfigurableClass):
    """Launches each run as a fork of a long-lived worker that has Dagster, the code location
    and the anthropic SDK imported; falls back to the code server (DefaultRunLauncher)."""

    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        preload_modules: Sequence[str] = DEFAULT_PRELOAD,
        watch_packages: Sequence[str] = DEFAULT_WATCH_PACKAGES,
        start_timeout_seconds: float = DEFAULT_START_TIMEOUT_SECONDS,
        worker_log: str | None = None,
        worker_env: Mapping[str, str] | None = None,
    ) -> None:
        self._inst_data = inst_data
        self.preload_modules = tuple(preload_modules)
        self.watch_packages = tuple(watch_packages)
        self.start_timeout_seconds = start_timeout_seconds
        self.worker_log = worker_log
        self._worker_env = dict(worker_env) if worker_env is not None else None
        self._lock = threading.Lock()
        self._worker: WarmWorker | None = None
        self._roots: list[Path] | None = None
        self._default = DefaultRunLauncher()
        super().__init__()

    # --- ConfigurableClass --------------------------------------------------------------------

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "preload_modules": Field(
                [str],
                is_required=False,
                default_value=list(DEFAULT_PRELOAD),
                description="Modules the worker imports once; runs of a code location whose "
                "module is listed here are forked from it.",
            ),
            "watch_packages": Field(
                [str],
                is_required=False,
                default_value=list(DEFAULT_WATCH_PACKAGES),
                description="Packages whose source files, when changed, replace the worker.",
            ),
            "start_timeout_seconds": Field(
                float, is_required=False, default_value=DEFAULT_START_TIMEOUT_SECONDS
            ),
            "worker_log": Field(
                str,
                is_required=False,
                description="A file the worker's and its runs' output is appended to (default: "
                "the output of the process that launches runs, as with the code server).",
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> WarmRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    def register_instance(self, instance: dg.DagsterInstance) -> None:
        super().register_instance(instance)
        self._default.register_instance(instance)

    # --- launching ----------------------------------------------------------------------------

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        key = self._warm_key(run)
        if key is not None:
            try:
                pid, worker_pid = self._fork_warm(run, key)
            except ReplyLost as exc:
                # The worker may have forked the run before it died; Dagster's run worker
                # ignores a second start of a run that already started, so launching again
                # risks a duplicate it catches, not a lost run.
                reason = str(exc)
            except Exception as exc:  # noqa: BLE001 - any failure here falls back
                reason = f"{type(exc).__name__}: {exc}"
            else:
                # Outside the try: the run is executing now, whatever happens to these writes.
                self._record_warm(run, pid, worker_pid)
                return
            logger.warning(
                "warm run launch of %s failed (%s); using the code server", run.run_id, reason
            )
            self._instance.report_engine_event(
                f"Warm run worker unavailable ({reason}); launching through the code server.",
                run,
                cls=self.__class__,
            )
        self._default.launch_run(context)

    def _warm_key(self, run: dg.DagsterRun) -> WorkerKey | None:
        """The worker that can execute `run`, or None when only the code server can: a run of a
        module code pointer the worker preloads."""
        origin = run.job_code_origin
        if origin is None:
            return None
        pointer = origin.repository_origin.code_pointer
        module = getattr(pointer, "module", None)
        if module not in self.preload_modules:
            return None
        working_directory = getattr(pointer, "working_directory", None) or os.getcwd()
        return WorkerKey(
            executable=origin.executable_path or sys.executable,
            working_directory=working_directory,
            preload=self.preload_modules,
        )

    def _fork_warm(self, run: dg.DagsterRun, key: WorkerKey) -> tuple[int, int]:
        """Have the worker fork a child executing `run`; returns (child pid, worker pid)."""
        from dagster._grpc.types import ExecuteRunArgs
        from dagster._serdes import serialize_value

        args = serialize_value(
            ExecuteRunArgs(
                job_origin=run.job_code_origin,
                run_id=run.run_id,
                instance_ref=self._instance.get_ref(),
            )
        )
        with self._lock:
            worker = self._current_worker(key)
            try:
                pid = worker.execute_run(args)
            except (WorkerUnavailable, ReplyLost):
                # The next launch starts a fresh worker rather than asking this one again.
                self._stop_worker()
                raise
            return pid, worker.pid

    def _record_warm(self, run: dg.DagsterRun, pid: int, worker_pid: int) -> None:
        info = {"host": socket.gethostname(), "pid": pid, "start": process_start_ticks(pid)}
        self._instance.add_run_tags(run.run_id, {RUN_WORKER_TAG: json.dumps(info)})
        self._instance.report_engine_event(
            f"Run forked by the warm run worker (pid {worker_pid}) as pid {pid}.",
            run,
            cls=self.__class__,
        )

    def _current_worker(self, key: WorkerKey) -> WarmWorker:
        """The running worker for `key` with today's code; starts or replaces it. Under the lock."""
        if self._roots is None:
            self._roots = code_snapshot.package_roots(self.watch_packages)
        snapshot = code_snapshot.snapshot(self._roots)
        worker = self._worker
        if worker is not None:
            if worker.snapshot != snapshot:
                logger.info("code changed: replacing warm run worker %s", worker.pid)
                self._stop_worker()
            elif worker.key != key:
                logger.info(
                    "another interpreter or folder: replacing warm run worker %s", worker.pid
                )
                self._stop_worker()
            elif not worker.alive():
                logger.warning("warm run worker %s died; starting another", worker.pid)
                self._stop_worker()
        if self._worker is None:
            self._worker = WarmWorker.start(
                key,
                snapshot,
                timeout=self.start_timeout_seconds,
                env=self._worker_env,
                log_path=self.worker_log,
            )
            logger.info("warm run worker %s ready", self._worker.pid)
        return self._worker

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()

    @property
    def worker_pid(self) -> int | None:
        """The current warm worker's pid (None before the first warm launch)."""
        worker = self._worker
        return worker.pid if worker is not None and worker.alive() else None

    def dispose(self) -> None:
        with self._lock:
            self._stop_worker()
        self._default.dispose()

    # --- terminating and watching -------------------------------------------------------------

    @staticmethod
    def _worker_info(run: dg.DagsterRun) -> dict | None:
        raw = run.tags.get(RUN_WORKER_TAG)
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def terminate(self, run_id: str) -> bool:
        """SIGTERM to the run's process, which Dagster's run worker turns into an interrupt (the
        run ends CANCELED), as the code server's cancel request does for its run processes."""
        run = self._instance.get_run_by_id(run_id)
        if not run or run.is_finished:
            return False
        info = self._worker_info(run)
        if info is None:
            return self._default.terminate(run_id)
        self._instance.report_run_canceling(run)
        pid = int(info["pid"])
        if info.get("host") != socket.gethostname() or not process_alive(pid, info.get("start")):
            self._instance.report_engine_event(
                f"Run process {pid} is not running on this host; nothing to terminate.",
                run,
                cls=self.__class__,
            )
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        info = self._worker_info(run)
        if info is None:
            # Launched through the code server, which fails the run if its process dies.
            return CheckRunHealthResult(
                WorkerStatus.RUNNING, "launched through the code server, which watches it"
            )
        pid = int(info["pid"])
        if info.get("host") != socket.gethostname():
            return CheckRunHealthResult(
                WorkerStatus.UNKNOWN, f"run process {pid} runs on host {info.get('host')}"
            )
        if process_alive(pid, info.get("start")):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"run process {pid} is gone", run_worker_id=str(pid)
        )
