"""The launcher's side of a warm worker: start it, wait until it listens, ask it to execute a
run, stop it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from phronesis_dagster.launcher import protocol

# Forking is a few milliseconds; the rest of the budget is a worker busy forking for others.
REQUEST_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0


class WorkerUnavailable(RuntimeError):
    """The worker could not be started or reached, or refused the request: nothing was forked
    for it, so the run can be launched another way."""


class ReplyLost(RuntimeError):
    """The request was sent but no reply came: the worker may have forked the run."""


@dataclass
class WorkerKey:
    """What a worker can execute: runs of code location modules it preloaded, with the Python
    and working directory the code location was loaded with."""

    executable: str
    working_directory: str
    preload: tuple[str, ...]


@dataclass
class WarmWorker:
    key: WorkerKey
    snapshot: str
    process: subprocess.Popen
    folder: Path
    started_at: float = field(default_factory=time.monotonic)

    @property
    def socket_path(self) -> str:
        return str(self.folder / "worker.sock")

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    @classmethod
    def start(
        cls,
        key: WorkerKey,
        snapshot: str,
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        log_path: str | None = None,
    ) -> WarmWorker:
        """Start `python -m phronesis_dagster.launcher.warm_worker` and wait until it answers a
        ping (it listens only once its preload is done); raises WorkerUnavailable otherwise."""
        # A short path of our own: a Unix socket path is limited to about 100 bytes.
        folder = Path(tempfile.mkdtemp(prefix="phronesis-warm-"))
        socket_path = str(folder / "worker.sock")
        command = [
            key.executable,
            "-m",
            "phronesis_dagster.launcher.warm_worker",
            "--socket",
            socket_path,
            "--parent-pid",
            str(os.getpid()),
        ]
        for module in key.preload:
            command += ["--preload", module]
        out = open(log_path, "ab") if log_path else None  # noqa: SIM115 - handed to the child
        try:
            # Same process group as the launcher's process: stopping that group (Ctrl-C on
            # `dagster dev`, a killed daemon) stops the worker and its runs, as it stops the
            # code server and the runs it started.
            process = subprocess.Popen(
                command,
                cwd=key.working_directory,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
            )
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise WorkerUnavailable(f"could not start the warm worker: {exc}") from exc
        finally:
            if out:
                out.close()
        worker = cls(key=key, snapshot=snapshot, process=process, folder=folder)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not worker.alive():
                worker.stop()
                raise WorkerUnavailable(
                    f"the warm worker exited with code {process.returncode} while starting"
                )
            if os.path.exists(socket_path):
                try:
                    if worker.ping():
                        return worker
                except (OSError, protocol.ProtocolError):
                    pass
            time.sleep(0.05)
        worker.stop()
        raise WorkerUnavailable(f"the warm worker did not listen within {timeout:.0f} s")

    def ping(self) -> bool:
        reply = protocol.request(self.socket_path, {"op": protocol.PING}, REQUEST_TIMEOUT_SECONDS)
        return bool(reply.get("ok")) and reply.get("pid") == self.pid

    def execute_run(self, serialized_args: str) -> int:
        """Ask for a child executing the run; returns its pid."""
        message = {"op": protocol.EXECUTE_RUN, "args": serialized_args}
        try:
            sock = protocol.connect(self.socket_path, REQUEST_TIMEOUT_SECONDS)
        except OSError as exc:
            raise WorkerUnavailable(f"the warm worker does not answer: {exc}") from exc
        with sock:
            try:
                protocol.send(sock, message)
            except OSError as exc:
                raise WorkerUnavailable(f"the warm worker took no request: {exc}") from exc
            try:
                reply = protocol.receive(sock)
            except (OSError, protocol.ProtocolError) as exc:
                raise ReplyLost(f"no reply from the warm worker: {exc}") from exc
        if not reply.get("ok"):
            raise WorkerUnavailable(f"the warm worker refused the run: {reply.get('error')}")
        return int(reply["pid"])

    def stop(self) -> None:
        """SIGTERM, then wait (and reap it); SIGKILL if it does not go. Runs it forked carry on."""
        try:
            if self.alive():
                self.process.terminate()
                try:
                    self.process.wait(STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(STOP_TIMEOUT_SECONDS)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
