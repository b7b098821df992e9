"""Run the app-database migrations (Alembic) from Python or the CLI (`phronesis migrate`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from phronesis_dagster.db.engine import default_database_url, normalize_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Alembic's bookkeeping table (see migrations/env.py).
VERSION_TABLE = "phronesis_alembic_version"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on a '%' in a URL-encoded password.
    cfg.set_main_option(
        "sqlalchemy.url", normalize_url(url or default_database_url()).replace("%", "%%")
    )
    return cfg


def head() -> str:
    """The newest revision. The migrations form one line: several heads are an error (two
    branches each added a migration after the same parent and the merge did not chain them)."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads {heads}; chain them in a line")
    return heads[0]


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the app database at `url` up to `revision` (default: the newest)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    """Take the app database at `url` down to `revision` (default: empty)."""
    command.downgrade(alembic_config(url), revision)


def current(url: str | None = None) -> str | None:
    """The revision the app database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    from phronesis_dagster.db.engine import engine_for

    with engine_for(url or default_database_url()).connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()
