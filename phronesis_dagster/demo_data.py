"""Deterministic demo data: tenants, users, activity and prospects, in the web app's schema.

Used by the demo (`phronesis demo`), the tests and the benchmarks; `phronesis seed` exposes it on
the command line. The same seed always yields the same rows (UUIDs included, drawn from the
seeded generator), so figures are comparable across runs. Like a real web-app database, a few
prospects carry `enrichment_source_status` written before the structured shape: plain strings
per source, and one whose whole value is the JSON string "reset".
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from phronesis_dagster.db.models import ACTION_TYPES, Prospect, Tenant, User
from phronesis_dagster.emulator.config import EmulatorConfig

# Relative frequency of each action in a sales team's day: mostly looking at profiles and searching.
# The seed `phronesis demo` and `make dev` start the emulator with.
DEFAULT_EMULATOR_SEED = EmulatorConfig().seed

ACTION_WEIGHTS: dict[str, int] = {
    "login": 8,
    "search_executed": 22,
    "profile_viewed": 30,
    "profile_enriched": 6,
    "add_to_list": 9,
    "remove_from_list": 2,
    "status_updated": 7,
    "note_added": 6,
    "csv_exported": 2,
    "persona_created": 1,
    "lookalike_search": 7,
}
assert set(ACTION_WEIGHTS) == set(ACTION_TYPES)
# Lists each tenant's users add prospects to (metadata.list_id of add_to_list / remove_from_list).
LISTS_PER_TENANT = 8
# enrichment_source_status as the web app's old writers left it: plain strings per source
# (read as {"status": value}), and one value that is not a record at all.
LEGACY_SOURCE_STATUSES: tuple[dict | str, ...] = (
    {"contactout": "complete", "exa": "complete", "sec": "skipped", "claude": "complete"},
    {"contactout": "failed", "exa": "complete", "sec": "skipped", "claude": "complete"},
    {"contactout": "complete", "exa": "circuit_open", "claude": "pending"},
    "reset",
)

_COMPANY_WORDS = [
    "Northwind",
    "Blue Harbor",
    "Crestline",
    "Summit",
    "Ironwood",
    "Lumen",
    "Keystone",
    "Meridian",
    "Pioneer",
    "Silverline",
    "Tidewater",
    "Vantage",
    "Aspen",
    "Granite",
]
_COMPANY_SUFFIX = ["Capital", "Partners", "Logistics", "Health", "Labs", "Systems", "Holdings"]
_FIRST = [
    "Avery",
    "Jordan",
    "Morgan",
    "Riley",
    "Casey",
    "Taylor",
    "Quinn",
    "Harper",
    "Rowan",
    "Elena",
    "Marcus",
    "Priya",
    "Daniel",
    "Sofia",
    "Kenji",
    "Amara",
    "Lucas",
    "Nadia",
]
_LAST = [
    "Whitfield",
    "Okafor",
    "Lindqvist",
    "Moreno",
    "Castellano",
    "Nakamura",
    "Brennan",
    "Duval",
    "Hargrove",
    "Petrov",
    "Ashworth",
    "Delacroix",
    "Sato",
    "Fairbanks",
]
_TITLES = [
    "CEO",
    "CFO",
    "VP Sales",
    "Managing Director",
    "Founder",
    "Head of Growth",
    "Chief Operating Officer",
    "Partner",
    "Director of Finance",
]
_CITIES = [
    "New York, NY",
    "San Francisco, CA",
    "Austin, TX",
    "Chicago, IL",
    "Boston, MA",
    "Miami, FL",
    "Seattle, WA",
    "Denver, CO",
]
_USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0 Safari/537.36",
]


@dataclass(frozen=True)
class DemoDataSpec:
    """How much demo data to make. `end` is the last UTC day that gets activity (inclusive)."""

    seed: int = 42
    tenants: int = 3
    users_per_tenant: int = 5
    events: int = 5_000
    days: int = 7
    end: date = field(default_factory=lambda: datetime.now(UTC).date() - timedelta(days=1))
    prospects_per_tenant: int = 20
    public_company_share: float = 0.3


@dataclass(frozen=True)
class DemoDataSummary:
    tenant_ids: list[uuid.UUID]
    user_ids: list[uuid.UUID]
    prospect_ids: list[uuid.UUID]
    # The prospects seeded with LEGACY_SOURCE_STATUSES, in that order.
    legacy_prospect_ids: list[uuid.UUID]
    events: int
    first_day: date
    last_day: date


def seed_demo_data(engine: sa.Engine, spec: DemoDataSpec = DemoDataSpec()) -> DemoDataSummary:
    """Insert tenants, users, prospects and activity for `spec` into a migrated app database."""
    rng = random.Random(spec.seed)
    tenant_users: list[tuple[uuid.UUID, uuid.UUID]] = []
    prospect_ids: list[uuid.UUID] = []
    legacy_ids: list[uuid.UUID] = []
    with engine.begin() as conn:
        tenant_ids = [
            _insert_tenant(conn, f"{rng.choice(_COMPANY_WORDS)} Sales {i + 1}", seeded_uuid(rng))
            for i in range(spec.tenants)
        ]
        for tenant_id in tenant_ids:
            for u in range(spec.users_per_tenant):
                first, last = rng.choice(_FIRST), rng.choice(_LAST)
                user_id = conn.execute(
                    sa.insert(User).returning(User.id),
                    {
                        "id": seeded_uuid(rng),
                        "tenant_id": tenant_id,
                        "full_name": f"{first} {last}",
                        "email": f"{first}.{last}.{u}@tenant{len(tenant_users)}.example".lower(),
                        "role": "admin" if u == 0 else "member",
                    },
                ).scalar_one()
                tenant_users.append((tenant_id, user_id))
            prospect_ids += insert_demo_prospects(
                conn,
                tenant_id=tenant_id,
                count=spec.prospects_per_tenant,
                rng=rng,
                public_company_share=spec.public_company_share,
            )
        if prospect_ids:
            legacy_ids = mark_legacy_source_statuses(
                conn, prospect_ids[: len(LEGACY_SOURCE_STATUSES)]
            )
    first_day = spec.end - timedelta(days=spec.days - 1)
    start = datetime.combine(first_day, time.min, tzinfo=UTC)
    end = datetime.combine(spec.end + timedelta(days=1), time.min, tzinfo=UTC)
    events = insert_activity(
        engine, tenant_users=tenant_users, events=spec.events, start=start, end=end, seed=spec.seed
    )
    return DemoDataSummary(
        tenant_ids=tenant_ids,
        user_ids=[u for _, u in tenant_users],
        prospect_ids=prospect_ids,
        legacy_prospect_ids=legacy_ids,
        events=events,
        first_day=first_day,
        last_day=spec.end,
    )


def seeded_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID drawn from `rng`, so a seed always yields the same ids."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _insert_tenant(conn: sa.Connection, name: str, tenant_id: uuid.UUID) -> uuid.UUID:
    return conn.execute(
        sa.insert(Tenant).returning(Tenant.id), {"id": tenant_id, "name": name}
    ).scalar_one()


def mark_legacy_source_statuses(
    conn: sa.Connection, prospect_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """Give `prospect_ids` the LEGACY_SOURCE_STATUSES, in order, as the web app's old writers
    left them (enriched once, dated by `last_enriched_at`)."""
    table = Prospect.__table__
    done: list[uuid.UUID] = []
    for prospect_id, value in zip(prospect_ids, LEGACY_SOURCE_STATUSES, strict=False):
        conn.execute(
            sa.update(table)
            .where(table.c.id == prospect_id)
            .values(
                enrichment_source_status=value,
                enrichment_status="complete" if isinstance(value, dict) else "failed",
                last_enriched_at=sa.func.now() - sa.text("interval '2 days'"),
            )
        )
        done.append(prospect_id)
    return done


def insert_demo_prospects(
    conn: sa.Connection,
    *,
    tenant_id: uuid.UUID,
    count: int,
    rng: random.Random,
    public_company_share: float = 0.3,
    emulator_seed: int = DEFAULT_EMULATOR_SEED,
) -> list[uuid.UUID]:
    """Insert `count` prospects. A share of them are insiders of the public companies of an
    emulator running with `emulator_seed` (same names as the reporting owners in its Form 4
    filings), so EDGAR finds their trades."""
    insiders: list[dict] = []
    if public_company_share > 0:
        from phronesis_dagster.emulator.data import edgar_insiders

        insiders = edgar_insiders(emulator_seed)
    rows = []
    for i in range(count):
        if insiders and rng.random() < public_company_share:
            insider = insiders[rng.randrange(len(insiders))]
            # A CRM holds "First Last"; EDGAR files the same person as "Last First M.".
            name, company = insider["full_name"], insider["company"]
            title = insider.get("officer_title") or "Director"
            public = {
                "is_public_company": True,
                "company_ticker": insider["ticker"],
                "company_cik": str(insider["cik"]).zfill(10),
            }
        else:
            name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
            company = f"{rng.choice(_COMPANY_WORDS)} {rng.choice(_COMPANY_SUFFIX)}"
            title = rng.choice(_TITLES)
            public = {"is_public_company": False, "company_ticker": None, "company_cik": None}
        slug = name.lower().replace(" ", "-").replace(".", "")
        domain = company.lower().replace(" ", "").replace(",", "").replace(".", "")[:20]
        contact_roll = rng.random()
        rows.append(
            {
                "id": seeded_uuid(rng),
                "tenant_id": tenant_id,
                "name": name,
                "title": title,
                "company": company,
                # Some prospects come with only a LinkedIn URL, a few with neither contact handle.
                "email": f"{slug}@{domain}.com" if contact_roll < 0.7 else None,
                "linkedin_url": f"https://www.linkedin.com/in/{slug}-{str(tenant_id)[:8]}-{i}"
                if contact_roll > 0.1
                else None,
                "phone": None,
                "location": rng.choice(_CITIES),
                **public,
            }
        )
    return list(conn.execute(sa.insert(Prospect).returning(Prospect.id), rows).scalars())


def activity_rows(
    *,
    tenant_users: Sequence[tuple[uuid.UUID, uuid.UUID]],
    events: int,
    start: datetime,
    end: datetime,
    seed: int,
) -> Iterator[tuple]:
    """Yield `events` activity rows spread over [start, end).

    List actions carry `metadata.list_id`, one of LISTS_PER_TENANT lists of the user's tenant, so
    the rollup's `lists_created` has lists to find (a list is created by its first add).
    """
    rng = random.Random(seed * 7919 + events)
    actions, weights = list(ACTION_WEIGHTS), list(ACTION_WEIGHTS.values())
    lists: dict[uuid.UUID, list[str]] = {}
    for tenant_id, _ in tenant_users:
        if tenant_id not in lists:
            lists[tenant_id] = [str(seeded_uuid(rng)) for _ in range(LISTS_PER_TENANT)]
    span = (end - start).total_seconds()
    batch = 10_000
    for offset in range(0, events, batch):
        n = min(batch, events - offset)
        chosen = rng.choices(actions, weights=weights, k=n)
        for action in chosen:
            tenant_id, user_id = tenant_users[rng.randrange(len(tenant_users))]
            created_at = start + timedelta(seconds=rng.random() * span)
            metadata: dict = {"source": "web"}
            if action in ("add_to_list", "remove_from_list"):
                metadata["list_id"] = rng.choice(lists[tenant_id])
            yield (
                tenant_id,
                user_id,
                action,
                "prospect",
                seeded_uuid(rng),
                json.dumps(metadata),
                f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                _USER_AGENTS[user_id.int % len(_USER_AGENTS)],
                created_at,
            )


_ACTIVITY_COLUMNS = (
    "tenant_id",
    "user_id",
    "action_type",
    "target_type",
    "target_id",
    "metadata",
    "ip_address",
    "user_agent",
    "created_at",
)


def insert_activity(
    engine: sa.Engine,
    *,
    tenant_users: Sequence[tuple[uuid.UUID, uuid.UUID]],
    events: int,
    start: datetime,
    end: datetime,
    seed: int = 42,
) -> int:
    """Bulk-insert generated activity with COPY (ids from the table's gen_random_uuid()).

    Months without a partition of their own land in the DEFAULT partition (migration 0002);
    `activity_log_partitions` moves them.
    """
    rows = activity_rows(tenant_users=tenant_users, events=events, start=start, end=end, seed=seed)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            copy_sql = f"COPY activity_log ({', '.join(_ACTIVITY_COLUMNS)}) FROM STDIN"
            with cur.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()
    return events
