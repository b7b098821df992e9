"""provider_circuit_state.open_until: a breaker held open until a known time (a provider said
when it will take calls again: Apollo's hourly/daily quota window, SEC's 10-minute IP block).

Revision ID: 0003_breaker_hold
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_breaker_hold"
# After the web-app schema (0002).
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "provider_circuit_state", sa.Column("open_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("provider_circuit_state", "open_until")
