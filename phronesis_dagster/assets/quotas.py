"""API quota burn per provider per UTC day: `api_quota_daily` (and its `api_quota_burn_daily`).

The web app's Redis counters `api_usage:{provider}:{YYYY-MM-DD}` count every successful call,
the web app's and the pipeline's (the provider resources add theirs). The pipeline's own calls are
in `api_usage` under origin "pipeline", so the web app's share (origin "web_app") is the Redis
total minus the pipeline's successes of that provider and day: no call is counted twice.
"""

import calendar
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from phronesis_dagster.assets.table_metadata import FLOAT, INT, ROW_COUNT, STRING, table_metadata
from phronesis_dagster.db.sql_files import load_sql
from phronesis_dagster.partitions import intraday_daily_partitions
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.redis_counters import RedisUnavailable, WebAppRedis
from phronesis_dagster.resources.registry import PROVIDER_NAMES, PROVIDERS

OPS_GROUP = "operations"
WEB_APP_ORIGIN = "web_app"
QUOTA_ENV_PREFIX = "PHRONESIS_QUOTA_"
# Monthly call allowances of the plans we run on (each provider's `MONTHLY_QUOTA`); override
# with PHRONESIS_QUOTA_<PROVIDER>=N or the asset's run config.
DEFAULT_MONTHLY_QUOTAS: dict[str, int] = {p.PROVIDER: p.MONTHLY_QUOTA for p in PROVIDERS}
BAR_WIDTH = 20

# Upstream tables written outside Dagster runs' assets (provider resources, the web app); named
# as deps so the UI shows where the quota figures come from.
API_USAGE_KEY = dg.AssetKey("api_usage")
API_CALL_LOG_KEY = dg.AssetKey("api_call_log")

# Tables written by the provider resources on every call, not by an asset: declared so the UI
# shows where api_quota_daily and enrichment_health_daily get their numbers.
api_usage = dg.AssetSpec(
    API_USAGE_KEY,
    description="Provider calls per (provider, UTC day, origin): successes, failures, 429s and "
    "cost in USD. Incremented atomically by every provider resource call (origin `pipeline`); "
    "api_quota_daily stores the web app's share of the Redis counters (Redis total minus the "
    "pipeline's successes) as origin `web_app`.",
    group_name="operations",
    kinds={"sql"},
)
api_call_log = dg.AssetSpec(
    API_CALL_LOG_KEY,
    description="One row per provider call attempt (outcome, HTTP status, latency, cost, run id), "
    "written by the provider resources; the source of latency percentiles.",
    group_name="operations",
    kinds={"sql"},
)


def day_params(day: date) -> dict:
    """Bind values for `:day`, `:start`, `:end` (the UTC day `[start, end)`)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return {"day": day, "start": start, "end": start + timedelta(days=1)}


@dataclass(frozen=True)
class WebAppShare:
    """The web app's own successful calls of one (provider, day), from the Redis total."""

    provider: str
    day: date
    redis_total: int
    pipeline_successes: int  # subtracted from the Redis total (0 before the pipeline counted)
    calls: int  # max(redis_total - pipeline_successes, 0)

    @property
    def shortfall(self) -> int:
        """Pipeline successes Redis is missing (> 0 only when the difference was clamped)."""
        return max(self.pipeline_successes - self.redis_total, 0)


def web_app_shares(
    redis_totals: Mapping[tuple[str, date], int],
    pipeline_successes: Mapping[tuple[str, date], int],
    counting_since: date | None,
) -> list[WebAppShare]:
    """The web app's share of each Redis total: total - the pipeline's successes, never < 0.

    Redis counts the pipeline's calls only from `counting_since` (the first day the pipeline
    incremented it); before that day, or when it never did, a Redis total is the web app's
    alone. A difference below 0 means Redis missed some of our calls (increments dropped during
    a Redis outage, counting that began mid-day, or calls made between this run's Redis read and
    its database read); the share is then 0 and the day's total is the pipeline's own count,
    which is exact for its calls. The nightly run of the finished day settles the last case.
    """
    shares = []
    for (provider, day), total in sorted(redis_totals.items()):
        ours = 0
        if counting_since is not None and day >= counting_since:
            ours = pipeline_successes.get((provider, day), 0)
        shares.append(WebAppShare(provider, day, total, ours, max(total - ours, 0)))
    return shares


def configured_quotas(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """Monthly quota per provider: the defaults overridden by `PHRONESIS_QUOTA_<PROVIDER>`."""
    environ = os.environ if environ is None else environ
    quotas = dict(DEFAULT_MONTHLY_QUOTAS)
    for name, raw in environ.items():
        if not name.startswith(QUOTA_ENV_PREFIX) or not raw.strip():
            continue
        provider = name[len(QUOTA_ENV_PREFIX) :].lower()
        try:
            quotas[provider] = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(
                f"{name}={raw!r} is not a whole number of calls per month, e.g. {name}=20000"
            ) from None
    return validate_quotas(quotas)


def validate_quotas(quotas: Mapping[str, int]) -> dict[str, int]:
    """Refuse a quota that is not a positive number of calls, naming the provider."""
    bad = {p: q for p, q in quotas.items() if q <= 0}
    if bad:
        raise ValueError(f"monthly quotas must be positive call counts; got {bad}")
    return dict(quotas)


class QuotaConfig(dg.Config):
    """Monthly quotas. Providers not listed use `PHRONESIS_QUOTA_<PROVIDER>` or the defaults."""

    monthly_quotas: dict[str, int] = Field(
        default={},
        description="Monthly call quota per provider, e.g. {'exa': 20000}; overrides "
        "PHRONESIS_QUOTA_<PROVIDER> and the built-in defaults.",
    )

    def quotas(self) -> dict[str, int]:
        return validate_quotas({**configured_quotas(), **self.monthly_quotas})


@dataclass(frozen=True)
class QuotaBurn:
    """One provider's quota position at the end of one UTC day."""

    provider: str
    day: date
    calls: int
    mtd_calls: int
    monthly_quota: int
    pct_burned: float
    projected_month_end_calls: float
    projected_pct: float
    days_until_exhausted: float | None


def compute_burn(provider: str, day: date, calls: int, mtd_calls: int, quota: int) -> QuotaBurn:
    """Month-to-date burn and the month-end projection at the month's pace so far.

    The pace is calls per elapsed day, counting `day` as a whole day (so the hourly refresh of
    today under-projects early in the day rather than extrapolating one busy hour).
    """
    days_elapsed = day.day
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    pace = mtd_calls / days_elapsed
    projected = pace * days_in_month
    remaining = quota - mtd_calls
    if remaining <= 0:
        days_left: float | None = 0.0
    elif pace == 0:
        days_left = None
    else:
        days_left = remaining / pace
    return QuotaBurn(
        provider=provider,
        day=day,
        calls=calls,
        mtd_calls=mtd_calls,
        monthly_quota=quota,
        pct_burned=100.0 * mtd_calls / quota,
        projected_month_end_calls=projected,
        projected_pct=100.0 * projected / quota,
        days_until_exhausted=days_left,
    )


def burn_bar(pct: float, width: int = BAR_WIDTH) -> str:
    """`██████░░░░ 60.0%`: a text bar, readable at a glance in a table cell of the Dagster UI."""
    filled = min(width, max(0, round(pct / 100 * width)))
    return f"{'█' * filled}{'░' * (width - filled)} {pct:.1f}%"


# -- the quota checks, declared on api_quota_daily and evaluated with it ----------------------
# Quota checks of `api_quota_daily`, evaluated with each materialization.
#
# - `quota_projected_month_end`: WARN when a provider's projected month-end use reaches 80% of its
#   monthly quota (time to slow down or buy more before it runs out).
# - `quota_month_to_date`: ERROR when a provider's month-to-date calls reach 100% of its quota
#   (calls are failing or being billed as overage now).

API_QUOTA_ASSET_KEY = dg.AssetKey("api_quota_daily")
PROJECTED_CHECK = "quota_projected_month_end"
MONTH_TO_DATE_CHECK = "quota_month_to_date"
PROJECTED_WARN_PCT = 80.0
MONTH_TO_DATE_FAIL_PCT = 100.0


def quota_check_specs() -> list[dg.AssetCheckSpec]:
    """The check specs declared on `api_quota_daily`."""
    return [
        dg.AssetCheckSpec(
            PROJECTED_CHECK,
            asset=API_QUOTA_ASSET_KEY,
            description=f"Warns when a provider's projected month-end use reaches "
            f"{PROJECTED_WARN_PCT:.0f}% of its monthly quota.",
        ),
        dg.AssetCheckSpec(
            MONTH_TO_DATE_CHECK,
            asset=API_QUOTA_ASSET_KEY,
            description=f"Fails when a provider's month-to-date calls reach "
            f"{MONTH_TO_DATE_FAIL_PCT:.0f}% of its monthly quota.",
        ),
    ]


_BURN_DESCRIPTIONS = {
    "burned": "month-to-date calls against the monthly quota",
    "projected_month_end_calls": "at the month's pace so far",
    "days_until_exhausted": "at that pace; empty when nothing was called this month",
}


def _burn_table(
    burns: Sequence[QuotaBurn], columns: Sequence[tuple[str, str]]
) -> dg.TableMetadataValue:
    """`columns` of each provider's burn, one row per provider."""
    rows = [
        {
            "provider": b.provider,
            "burned": burn_bar(b.pct_burned),
            "mtd_calls": b.mtd_calls,
            "monthly_quota": b.monthly_quota,
            "pct_burned": round(b.pct_burned, 2),
            "projected_month_end_calls": round(b.projected_month_end_calls),
            "projected_pct": round(b.projected_pct, 2),
            "days_until_exhausted": _round(b.days_until_exhausted),
        }
        for b in burns
    ]
    return table_metadata(rows, [("provider", STRING), *columns], _BURN_DESCRIPTIONS)


def projected_use_check(burns: Sequence[QuotaBurn]) -> dg.AssetCheckResult:
    """WARN when any provider's projected month-end use is at or above 80% of its quota."""
    over = sorted(
        (b for b in burns if b.projected_pct >= PROJECTED_WARN_PCT),
        key=lambda b: -b.projected_pct,
    )
    return dg.AssetCheckResult(
        check_name=PROJECTED_CHECK,
        asset_key=API_QUOTA_ASSET_KEY,
        passed=not over,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            "; ".join(
                f"{b.provider} projected at {b.projected_month_end_calls:,.0f} calls "
                f"({b.projected_pct:.0f}% of {b.monthly_quota:,})"
                for b in over
            )
            or f"every provider projected under {PROJECTED_WARN_PCT:.0f}% of its quota"
        ),
        metadata={
            "providers_over": ", ".join(b.provider for b in over) or "none",
            "projected_pct": _burn_table(
                burns,
                [
                    ("projected_pct", FLOAT),
                    ("projected_month_end_calls", INT),
                    ("monthly_quota", INT),
                ],
            ),
        },
    )


def month_to_date_check(burns: Sequence[QuotaBurn]) -> dg.AssetCheckResult:
    """ERROR when any provider's month-to-date calls are at or above 100% of its quota."""
    over = sorted(
        (b for b in burns if b.pct_burned >= MONTH_TO_DATE_FAIL_PCT), key=lambda b: -b.pct_burned
    )
    return dg.AssetCheckResult(
        check_name=MONTH_TO_DATE_CHECK,
        asset_key=API_QUOTA_ASSET_KEY,
        passed=not over,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            "; ".join(
                f"{b.provider} used {b.mtd_calls:,} of {b.monthly_quota:,} calls this month"
                for b in over
            )
            or "every provider within its monthly quota"
        ),
        metadata={
            "providers_over": ", ".join(b.provider for b in over) or "none",
            "pct_burned": _burn_table(
                burns, [("pct_burned", FLOAT), ("mtd_calls", INT), ("monthly_quota", INT)]
            ),
        },
    )


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


_PROVIDER_COLUMNS = [
    ("provider", STRING),
    ("success", INT),
    ("failed", INT),
    ("rate_limited", INT),
    ("web_app", INT),
    ("cost_usd", FLOAT),
    ("p50_ms", FLOAT),
    ("p95_ms", FLOAT),
    ("mtd_calls", INT),
    ("quota", INT),
    ("pct_burned", FLOAT),
    ("projected_pct", FLOAT),
]
_PROVIDER_DESCRIPTIONS = {
    "web_app": "of the successes, made by the web app (Redis total - pipeline's)",
}


def _provider_table(
    daily: Sequence[Mapping], burns: Mapping[str, QuotaBurn]
) -> dg.TableMetadataValue:
    rows = []
    for row in daily:
        burn = burns.get(row["provider"])
        rows.append(
            {
                "provider": row["provider"],
                "success": int(row["success_count"]),
                "failed": int(row["failure_count"]),
                "rate_limited": int(row["rate_limited_count"]),
                "web_app": int(row["web_app_count"]),
                "cost_usd": round(float(row["cost_usd"] or 0), 4),
                "p50_ms": _round(row["latency_p50_ms"]),
                "p95_ms": _round(row["latency_p95_ms"]),
                "mtd_calls": burn.mtd_calls if burn else None,
                "quota": burn.monthly_quota if burn else None,
                "pct_burned": _round(burn.pct_burned, 2) if burn else None,
                "projected_pct": _round(burn.projected_pct, 2) if burn else None,
            }
        )
    return table_metadata(rows, _PROVIDER_COLUMNS, _PROVIDER_DESCRIPTIONS)


def _shortfall_table(shares: Sequence[WebAppShare]) -> dg.TableMetadataValue:
    """The (provider, day)s whose Redis total is short of the pipeline's own successes."""
    return table_metadata(
        [
            {
                "provider": s.provider,
                "day": s.day,
                "redis_total": s.redis_total,
                "pipeline_successes": s.pipeline_successes,
                "shortfall": s.shortfall,
            }
            for s in shares
            if s.shortfall
        ],
        [
            ("provider", STRING),
            ("day", STRING),
            ("redis_total", INT),
            ("pipeline_successes", INT),
            ("shortfall", INT),
        ],
        {"shortfall": "pipeline successes Redis is missing; the web-app share is clamped at 0"},
    )


def _exec_many(conn: sa.Connection, sql_name: str, rows: list[dict]) -> None:
    if rows:
        conn.execute(sa.text(load_sql(sql_name)), rows)


@dg.asset(
    partitions_def=intraday_daily_partitions,
    deps=[API_USAGE_KEY, API_CALL_LOG_KEY],
    check_specs=quota_check_specs(),
    group_name=OPS_GROUP,
    kinds={"sql"},
    tags={"domain": "quotas"},
)
def api_quota_daily(
    context: dg.AssetExecutionContext,
    config: QuotaConfig,
    app_db: AppDatabase,
    web_app_redis: WebAppRedis,
) -> dg.MaterializeResult:
    """API calls and quota burn per provider per UTC day, for the admin dashboard.

    Writes two tables for the partition's day (delete-then-insert, so re-runs are idempotent):
    - `api_quota_daily`: one row per (provider, origin) with successful, failed and rate-limited
      (429) calls, cost in USD and p50/p95 latency (from `api_call_log`, pipeline calls only).
      Every provider gets a row, zeros when it had no calls.
    - `api_quota_burn_daily`: one row per provider with month-to-date calls against its monthly
      quota, percent burned, the month-end projection at the month's pace so far and the days
      until the quota runs out at that pace. Calls against the quota are successful calls.

    Origins: "pipeline" is the `api_usage` counters of the provider resources; "web_app" is the
    web app's own calls: its Redis counter `api_usage:{provider}:{YYYY-MM-DD}` (read when
    `REDIS_URL` is set) counts every successful call, the pipeline's too, so the web app's share
    is that total minus the pipeline's successes of the provider and day (0 if Redis holds fewer
    than the pipeline logged; metadata `redis_shortfall` then says by how much). A provider's
    total is the sum of its origins and no call is in both. Each run stores the month's web-app
    shares in `api_usage` under origin "web_app" (set, not add), so the history outlives the
    90-day Redis expiry. Redis being unreachable is a warning: the shares already stored are used.
    """
    started = time.monotonic()
    window = context.partition_time_window
    day = window.start.date()
    month_start = day.replace(day=1)
    quotas = config.quotas()
    providers = sorted(set(PROVIDER_NAMES) | set(quotas))

    redis_status = "not configured (REDIS_URL empty)"
    redis_totals: dict[tuple[str, date], int] = {}
    counting_since: date | None = None
    if web_app_redis.is_configured:
        month_days = [month_start + timedelta(days=i) for i in range(day.day)]
        try:
            counting_since = web_app_redis.pipeline_counting_since()
            redis_totals = web_app_redis.daily_counts(providers, month_days)
            redis_status = f"read {len(redis_totals)} counters"
        except RedisUnavailable as exc:
            redis_status = f"unreachable, used the web-app counts already stored ({exc})"
            context.log.warning(f"api_quota_daily {day}: {redis_status}")

    params = day_params(day)
    with app_db.begin() as conn:
        # The hourly refresh and a manual run of the same day would race on the unique key.
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext('api_quota_daily'), :d)"),
            {"d": day.toordinal()},
        )
        ours = {
            (row.provider, row.date): int(row.success_count)
            for row in conn.execute(
                sa.text(load_sql("quota_pipeline_successes")),
                {"day": day, "month_start": month_start},
            )
        }
        shares = web_app_shares(redis_totals, ours, counting_since)
        _exec_many(
            conn,
            "quota_upsert_web_app_usage",
            [{"provider": s.provider, "day": s.day, "success_count": s.calls} for s in shares],
        )
        conn.execute(sa.text(load_sql("quota_delete_day")), {"day": params["day"]})
        conn.execute(sa.text(load_sql("quota_daily_insert")), params)
        _exec_many(
            conn,
            "quota_zero_fill",
            [{"day": params["day"], "provider": p} for p in providers],
        )
        mtd = {
            row.provider: row
            for row in conn.execute(
                sa.text(load_sql("quota_mtd_calls")),
                {"day": params["day"], "month_start": month_start},
            )
        }
        burns = [
            compute_burn(
                p,
                day,
                int(mtd[p].calls) if p in mtd else 0,
                int(mtd[p].mtd_calls) if p in mtd else 0,
                quotas[p],
            )
            for p in providers
            if p in quotas
        ]
        conn.execute(sa.text(load_sql("quota_burn_delete_day")), {"day": params["day"]})
        _exec_many(
            conn,
            "quota_burn_insert",
            [
                {
                    "day": params["day"],
                    "provider": b.provider,
                    "calls": b.calls,
                    "mtd_calls": b.mtd_calls,
                    "monthly_quota": b.monthly_quota,
                    "pct_burned": b.pct_burned,
                    "projected_month_end_calls": b.projected_month_end_calls,
                    "projected_pct": b.projected_pct,
                    "days_until_exhausted": b.days_until_exhausted,
                }
                for b in burns
            ],
        )
        daily = (
            conn.execute(sa.text(load_sql("quota_daily_select")), {"day": params["day"]})
            .mappings()
            .all()
        )
        rows_written = conn.execute(
            sa.text("SELECT COUNT(*) FROM api_quota_daily WHERE date = :day"),
            {"day": params["day"]},
        ).scalar_one()

    short = [s for s in shares if s.shortfall]
    if short:
        context.log.warning(
            f"api_quota_daily {day}: Redis holds fewer calls than the pipeline logged for "
            + ", ".join(f"{s.provider} {s.day} (-{s.shortfall})" for s in short)
            + "; their web-app share is 0 and the pipeline's count stands"
        )
    by_provider = {b.provider: b for b in burns}
    metadata: dict[str, dg.RawMetadataValue] = {
        "day": day.isoformat(),
        ROW_COUNT: int(rows_written),
        "rows_written": int(rows_written),
        "providers": len(daily),
        "web_app_counters_upserted": len(shares),
        "web_app_redis": redis_status,
        "pipeline_counted_in_redis_since": (
            counting_since.isoformat() if counting_since else "never"
        ),
        "redis_shortfall": _shortfall_table(shares),
        "total_calls": sum(int(r["success_count"]) for r in daily),
        "total_cost_usd": round(sum(float(r["cost_usd"] or 0) for r in daily), 4),
        "seconds": round(time.monotonic() - started, 3),
        "providers_table": _provider_table(daily, by_provider),
        "quota_burn": _burn_table(
            burns,
            [
                ("burned", STRING),
                ("mtd_calls", INT),
                ("monthly_quota", INT),
                ("pct_burned", FLOAT),
                ("projected_month_end_calls", INT),
                ("projected_pct", FLOAT),
                ("days_until_exhausted", FLOAT),
            ],
        ),
    }
    for b in burns:
        metadata[f"{b.provider}_pct_burned"] = round(b.pct_burned, 2)
        metadata[f"{b.provider}_mtd_calls"] = b.mtd_calls
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[projected_use_check(burns), month_to_date_check(burns)],
    )
