"""The warm run worker: one long-lived process that has already imported Dagster, the code
location and the anthropic SDK, and forks a child per run.

`python -m phronesis_dagster.launcher.warm_worker --socket PATH [--preload MODULE ...]`, started
by `WarmRunLauncher` (run_launcher.py). A fresh `dagster api execute_run` process spends about
3 s of CPU before a run's first provider call, most of it imports (docs/architecture.md); a
forked child of this process starts with all of that done and executes the run exactly as that
command does (`_execute_run_command_body`, the function the command calls).

Single-threaded on purpose: `fork` copies only the calling thread, so a worker with threads
(or open database connections, or locks some thread holds) would hand its children half-made
state. The preload is checked for threads; the worker opens no connection at all: each child
builds its instance (and its pools) after the fork.

It reaps its children (SIGCHLD wakes the loop), so the CPU of every run it forked is counted in
its own `RUSAGE_CHILDREN` and, once it exits, in its parent's. A child that dies abnormally
(SIGKILL, OOM) while its run is unfinished gets its run failed at once, as Dagster's code server
does for the run processes it starts: by a short-lived forked reporter, so the worker itself
never holds a database connection. The worker exits when its parent (the launcher's process)
goes away or on SIGTERM, leaving running children to finish their runs.
"""

from __future__ import annotations

import argparse
import errno
import gc
import importlib
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass

from phronesis_dagster.launcher import protocol

# How often the loop wakes with nothing to do, to notice that its parent is gone.
IDLE_WAKE_SECONDS = 1.0
# The anthropic SDK is imported lazily by ClaudeResource (resources/claude.py); the worker
# imports it once for every run it forks.
DEFAULT_PRELOAD = ("phronesis_dagster.definitions", "anthropic", "httpx2")
# Modules a run imports only when it first needs them, each time in every forked child unless
# the worker has them: the instance's PostgreSQL storage (dagster_postgres, psycopg2), the HTTP
# transports' cores (httpx's and the SDK's httpx2, built at a resource's first client),
# universal_pathlib (Dagster's IO paths) and the SDK's tracing propagator. py-spy of
# bench/enrichment.py (800 prospects, warm runs): 18 % of the forked runs' GIL samples were these
# imports. Optional: a missing one is imported by the run as before.
LAZY_IMPORTS = (
    "dagster_postgres",
    "psycopg2",
    "httpcore",
    "httpcore2",
    "upath",
    "upath.implementations.local",
    "opentelemetry.propagate",
)


@dataclass
class Child:
    run_id: str
    instance_ref: object
    reporter: bool = False


def preload(modules: list[str]) -> None:
    """Import `modules` and everything a run's start does once per process: Dagster's CLI and
    execution machinery, the instance's storage classes, and each `Definitions` resolved to its
    repository (cached on the object, so a child finds it built)."""
    import dagster as dg
    from dagster._cli import api  # noqa: F401 - the run's entry point and its imports
    from dagster._core.execution import api as execution_api  # noqa: F401

    for name in LAZY_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    enabled = gc.isenabled()
    gc.disable()  # an import makes no garbage; collections would only walk its objects again
    try:
        for name in modules:
            module = importlib.import_module(name)
            for value in list(vars(module).values()):
                if isinstance(value, dg.Definitions):
                    repo = value.get_repository_def()
                    repo.get_all_jobs()
    finally:
        if enabled:
            gc.enable()
    gc.collect()
    # Everything alive now is shared with every child: keep the collector off its pages (a
    # collection would write to them and copy them into each child) and out of its work.
    gc.freeze()
    extra = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if extra:
        raise RuntimeError(f"preloading started threads {extra}; a forked child would lack them")


def run_child(args_json: str, closing: list[socket.socket | int]) -> None:
    """In the forked child: execute the run as `dagster api execute_run` does, then exit."""
    code = 1
    try:
        for item in closing:
            item.close() if isinstance(item, socket.socket) else os.close(item)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from dagster._cli.api import _execute_run_command_body
        from dagster._cli.utils import get_instance_for_cli
        from dagster._grpc.types import ExecuteRunArgs
        from dagster._serdes import deserialize_value
        from dagster._utils.interrupts import capture_interrupts, setup_interrupt_handlers

        # An engine made before the fork would share its sockets with the worker's other
        # children (the preload makes none; this keeps it so).
        engine = sys.modules.get("phronesis_dagster.db.engine")
        if engine is not None:
            engine.engine_for.cache_clear()
        setup_interrupt_handlers()  # SIGTERM -> SIGINT, as the `dagster` command sets it up
        with capture_interrupts():
            args = deserialize_value(args_json, ExecuteRunArgs)
            with get_instance_for_cli(instance_ref=args.instance_ref) as instance:
                code = _execute_run_command_body(
                    args.run_id,
                    instance,
                    lambda _event: None,
                    set_exit_code_on_failure=args.set_exit_code_on_failure or False,
                )
    except BaseException:  # noqa: BLE001 - the child must reach os._exit whatever happens
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def report_crash(child: Child, status: int, closing: list[socket.socket | int]) -> None:
    """In a forked reporter: fail the child's run if it is still unfinished, with the message
    Dagster's code server writes for a run process that died."""
    code = 1
    try:
        for item in closing:
            item.close() if isinstance(item, socket.socket) else os.close(item)
        signal.set_wakeup_fd(-1)
        from dagster._core.instance import DagsterInstance
        from dagster._utils import get_run_crash_explanation

        exit_code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        with DagsterInstance.from_ref(child.instance_ref) as instance:
            run = instance.get_run_by_id(child.run_id)
            if run is not None and not run.is_finished:
                message = get_run_crash_explanation(
                    prefix=f"Run execution process for {run.run_id}", exit_code=exit_code
                )
                instance.report_engine_event(message, run)
                instance.report_run_failed(run)
        code = 0
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class Worker:
    def __init__(self, socket_path: str, parent_pid: int) -> None:
        self.socket_path = socket_path
        self.parent_pid = parent_pid
        self.children: dict[int, Child] = {}
        self.stopping = False
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)

    def listen(self) -> None:
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        self.server.bind(self.socket_path)
        self.server.listen(64)
        signal.set_wakeup_fd(self.wake_w)
        # A handler (not SIG_DFL) so that SIGCHLD writes to the wake-up pipe.
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def serve(self) -> None:
        while not self.stopping:
            if os.getppid() != self.parent_pid:
                break  # the launcher's process is gone: nobody will send requests
            try:
                ready, _, _ = select.select([self.server, self.wake_r], [], [], IDLE_WAKE_SECONDS)
            except InterruptedError:
                ready = []
            if self.wake_r in ready:
                try:
                    while os.read(self.wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
            self.reap()
            if self.server in ready and not self.stopping:
                self.accept()
        self.close()

    def accept(self) -> None:
        try:
            conn, _ = self.server.accept()
        except (BlockingIOError, InterruptedError):
            return
        with conn:
            conn.settimeout(10)
            try:
                message = protocol.receive(conn)
                reply = self.handle(message, conn)
                protocol.send(conn, reply)
            except (OSError, protocol.ProtocolError) as exc:
                print(f"warm worker: request failed: {exc}", file=sys.stderr, flush=True)

    def handle(self, message: dict, conn: socket.socket) -> dict:
        op = message.get("op")
        if op == protocol.PING:
            return {"ok": True, "pid": os.getpid()}
        if op != protocol.EXECUTE_RUN:
            return {"ok": False, "error": f"unknown op {op!r}"}
        from dagster._grpc.types import ExecuteRunArgs
        from dagster._serdes import deserialize_value

        try:
            args = deserialize_value(message["args"], ExecuteRunArgs)
        except Exception as exc:  # noqa: BLE001 - a bad request is answered, not fatal
            return {"ok": False, "error": f"bad ExecuteRunArgs: {exc}"}
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:  # out of memory or processes: the launcher falls back
            return {"ok": False, "error": f"fork failed: {exc}"}
        if pid == 0:
            run_child(message["args"], [self.server, conn, self.wake_r, self.wake_w])
        self.children[pid] = Child(run_id=args.run_id, instance_ref=args.instance_ref)
        return {"ok": True, "pid": pid}

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None or child.reporter:
                continue
            if os.WIFSIGNALED(status) or os.WEXITSTATUS(status) != 0:
                self.spawn_reporter(child, status)

    def spawn_reporter(self, child: Child, status: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            report_crash(child, status, [self.server, self.wake_r, self.wake_w])
        self.children[pid] = Child(child.run_id, child.instance_ref, reporter=True)

    def close(self) -> None:
        self.server.close()
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        # Running children keep running their runs (re-parented); reporters still finish. The
        # ones that exit while we wait are reaped here so their CPU is counted.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--socket", required=True, help="the Unix socket to listen on")
    parser.add_argument(
        "--preload", action="append", default=None, help="a module to import (repeatable)"
    )
    parser.add_argument(
        "--parent-pid", type=int, default=None, help="exit once this process is gone"
    )
    args = parser.parse_args(argv)
    # The code location's modules resolve from the working directory, as Dagster's
    # load_python_module puts it first on the path.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    worker = Worker(args.socket, args.parent_pid or os.getppid())
    started = time.process_time()
    preload(list(DEFAULT_PRELOAD if args.preload is None else args.preload))
    print(
        f"warm worker {os.getpid()}: preloaded in {time.process_time() - started:.2f} s of CPU, "
        f"listening on {args.socket}",
        file=sys.stderr,
        flush=True,
    )
    try:
        worker.listen()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return 1
        raise
    worker.serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
