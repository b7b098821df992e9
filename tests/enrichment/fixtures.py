"""Shared test data for the enrichment tests: tenants and prospects inserted directly, so each
test says exactly which rows it starts from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.db.models import EnrichmentRequest, Prospect, Tenant
from phronesis_dagster.resources.app_db import AppDatabase


def add_tenant(engine: sa.Engine, name: str = "Acme Sales") -> int:
    with engine.begin() as conn:
        return conn.execute(sa.insert(Tenant).returning(Tenant.id), {"name": name}).scalar_one()


def add_prospect(engine: sa.Engine, tenant_id: int, **values: Any) -> int:
    row = {
        "tenant_id": tenant_id,
        "name": "Avery Stone",
        "company": "Northwind Capital",
        "email": "avery@northwind.example",
        "linkedin_url": None,
        "is_public_company": False,
    }
    row.update(values)
    with engine.begin() as conn:
        return conn.execute(sa.insert(Prospect).returning(Prospect.id), row).scalar_one()


def add_prospects(engine: sa.Engine, tenant_id: int, n: int, **values: Any) -> list[int]:
    return [
        add_prospect(engine, tenant_id, name=f"Person {i}", company=f"Company {i}", **values)
        for i in range(n)
    ]


def add_request(engine: sa.Engine, tenant_id: int, prospect_id: int, **values: Any) -> int:
    with engine.begin() as conn:
        return conn.execute(
            sa.insert(EnrichmentRequest).returning(EnrichmentRequest.id),
            {"tenant_id": tenant_id, "prospect_id": prospect_id, **values},
        ).scalar_one()


def requests_by_id(engine: sa.Engine) -> dict[int, Any]:
    with engine.connect() as conn:
        return {r.id: r for r in conn.execute(sa.select(EnrichmentRequest.__table__))}


def prospect(engine: sa.Engine, prospect_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(Prospect.__table__).where(Prospect.id == prospect_id)).one()


def set_enriched(engine: sa.Engine, prospect_id: int, at: datetime, status: str = "complete"):
    with engine.begin() as conn:
        conn.execute(
            sa.update(Prospect)
            .where(Prospect.id == prospect_id)
            .values(enrichment_status=status, last_enriched_at=at)
        )


def tick(sensor, instance, app_db: AppDatabase, cursor: str | None = None) -> dg.SensorResult:
    """One evaluation of a request sensor, as the daemon's tick would run it."""
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"app_db": app_db}
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result
