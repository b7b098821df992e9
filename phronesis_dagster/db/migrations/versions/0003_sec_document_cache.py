"""SEC EDGAR caches: filed documents (`sec_document_cache`) and the reporting owners seen at each
issuer (`sec_reporting_owners`).

A document filed with the SEC never changes, so once fetched it is kept for every later run: a
weekly re-enrichment reads a person's Form 4s from here instead of from SEC. The owner table maps
an issuer's insiders (as named in the filings) to their own CIKs, so a person is found without
scanning the issuer's filings again. Public SEC data, shared by every tenant: no tenant_id, no
row-level security.

Revision ID: 0003_sec_document_cache
Revises: 0003_breaker_hold (merged from provider-refusals; the lead linearises the chain)
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_sec_document_cache"
down_revision = "0003_breaker_hold"
branch_labels = None
depends_on = None


def _now() -> sa.TextClause:
    return sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "sec_document_cache",
        sa.Column("accession_number", sa.String(25), nullable=False),
        sa.Column("document", sa.String(255), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("accession_number", "document"),
    )
    op.create_table(
        "sec_reporting_owners",
        sa.Column("issuer_cik", sa.String(10), nullable=False),
        sa.Column("owner_cik", sa.String(10), nullable=False),
        sa.Column("owner_name", sa.String(200), nullable=False),
        sa.Column("last_filing_date", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("issuer_cik", "owner_cik"),
    )


def downgrade() -> None:
    op.drop_table("sec_reporting_owners")
    op.drop_table("sec_document_cache")
