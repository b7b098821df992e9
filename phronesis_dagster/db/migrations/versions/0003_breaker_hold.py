"""provider_circuit_state.open_until: a breaker held open until a known time (a provider said
when it will take calls again: Apollo's hourly/daily quota window, SEC's 10-minute IP block).

Revision ID: 0003_breaker_hold
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_breaker_hold"
# Chained after today's head; re-pointed onto "0002" once the web-app schema lands.
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("provider_circuit_state") as batch:
        batch.add_column(sa.Column("open_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("provider_circuit_state") as batch:
        batch.drop_column("open_until")
