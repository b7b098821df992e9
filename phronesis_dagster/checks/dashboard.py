"""Asset checks of the dashboard datasets, evaluated with each materialization of the day.

`platform_pulse_daily` (ERROR when it fails; the card would show numbers another page contradicts):
- `platform_pulse_matches_usage_metrics`: the day's events per action type, total events, DAU
  and active tenants equal what `usage_metrics_daily` (the team-usage dashboard) has for the day.
  The pulse counts the raw `activity_log`, so this reconciles two independent computations; it
  also fails when `usage_metrics_daily` is missing or stale for the day.
- `platform_pulse_matches_request_log`: enrichments requested / completed / cached / failed /
  rejected equal the request log (`enrichment_requests`) added up another way.
- `platform_pulse_matches_call_log`: the pipeline's provider calls and the spend equal the
  pipeline's per-attempt `api_call_log`.

`funnel_daily`:
- `funnel_stages_never_grow`: in every row of the day each stage is at most the stage before.
- `funnel_platform_row_is_tenant_sum`: the day has one platform row and it is the sum of the
  day's tenant rows, stage by stage.

The checks only read the database; the assets (assets/dashboard.py) call them and return the
results with their `MaterializeResult`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.assets.table_metadata import BOOL, FLOAT, INT, STRING, table_metadata
from phronesis_dagster.db.sql_files import load_sql

PULSE_KEY = dg.AssetKey("platform_pulse_daily")
FUNNEL_KEY = dg.AssetKey("funnel_daily")

PULSE_USAGE_CHECK = "platform_pulse_matches_usage_metrics"
PULSE_REQUEST_LOG_CHECK = "platform_pulse_matches_request_log"
PULSE_CALL_LOG_CHECK = "platform_pulse_matches_call_log"
FUNNEL_STAGES_CHECK = "funnel_stages_never_grow"
FUNNEL_TOTAL_CHECK = "funnel_platform_row_is_tenant_sum"

# The pulse figures that usage_metrics_daily also has (same column names in both tables).
USAGE_FIGURES: tuple[str, ...] = (
    "active_tenants",
    "dau",
    "total_events",
    "total_logins",
    "searches_executed",
    "profiles_viewed",
    "profiles_enriched",
    "csv_exports",
    "adds_to_list",
    "removes_from_list",
    "statuses_updated",
    "notes_added",
    "personas_created",
    "lookalike_searches",
)
FUNNEL_STAGES: tuple[str, ...] = (
    "searched_users",
    "viewed_users",
    "enriched_users",
    "listed_users",
    "exported_users",
)
# Spend is NUMERIC(14, 6) on both sides; sums of the same per-call costs agree to the cent.
SPEND_TOLERANCE_USD = 0.005


def pulse_check_specs() -> list[dg.AssetCheckSpec]:
    """The checks declared on `platform_pulse_daily`."""
    return [
        dg.AssetCheckSpec(
            PULSE_USAGE_CHECK,
            asset=PULSE_KEY,
            description="The day's events per action type, total events, DAU and active "
            "tenants equal usage_metrics_daily's for the day.",
        ),
        dg.AssetCheckSpec(
            PULSE_REQUEST_LOG_CHECK,
            asset=PULSE_KEY,
            description="Enrichments requested, completed, cached, failed and rejected equal "
            "the request log (enrichment_requests) for the day.",
        ),
        dg.AssetCheckSpec(
            PULSE_CALL_LOG_CHECK,
            asset=PULSE_KEY,
            description="The pipeline's provider calls and the spend equal the pipeline's "
            "api_call_log for the day (the web app reports no cost).",
        ),
    ]


def funnel_check_specs() -> list[dg.AssetCheckSpec]:
    """The checks declared on `funnel_daily`."""
    return [
        dg.AssetCheckSpec(
            FUNNEL_STAGES_CHECK,
            asset=FUNNEL_KEY,
            description="Every stage counts at most as many users as the stage before it.",
        ),
        dg.AssetCheckSpec(
            FUNNEL_TOTAL_CHECK,
            asset=FUNNEL_KEY,
            description="The day has one platform row (tenant_id NULL), the sum of its tenant "
            "rows stage by stage.",
        ),
    ]


def _comparison(
    check_name: str,
    asset_key: dg.AssetKey,
    figures: Mapping[str, tuple[Any, Any]],
    other: str,
    *,
    same: Any = None,
) -> dg.AssetCheckResult:
    """Passes when every figure's two values agree; the metadata tables every figure."""
    same = same or (lambda a, b: a == b)
    mismatched = [name for name, (ours, theirs) in figures.items() if not same(ours, theirs)]
    rows = [
        {"figure": name, "dataset": ours, other: theirs, "agrees": name not in mismatched}
        for name, (ours, theirs) in figures.items()
    ]
    value_type = FLOAT if any(isinstance(v, float) for v, _ in figures.values()) else INT
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset_key,
        passed=not mismatched,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            "disagrees with "
            + other
            + " on "
            + ", ".join(f"{n} ({figures[n][0]} vs {figures[n][1]})" for n in mismatched)
            if mismatched
            else f"agrees with {other}"
        ),
        metadata={
            "mismatches": len(mismatched),
            "figures": table_metadata(
                rows,
                [
                    ("figure", STRING),
                    ("dataset", value_type),
                    (other, value_type),
                    ("agrees", BOOL),
                ],
            ),
        },
    )


def pulse_matches_usage(
    conn: sa.Connection, params: Mapping[str, Any], pulse: Mapping[str, Any]
) -> dg.AssetCheckResult:
    """`platform_pulse_matches_usage_metrics` for the pulse row `pulse` of `params["day"]`."""
    usage = conn.execute(sa.text(load_sql("dashboard_check_pulse_usage")), params).one()._mapping
    figures = {f: (int(pulse[f]), int(usage[f])) for f in USAGE_FIGURES}
    return _comparison(PULSE_USAGE_CHECK, PULSE_KEY, figures, "usage_metrics_daily")


def request_log_counts(conn: sa.Connection, params: Mapping[str, Any]) -> dict[str, int]:
    """The day's request figures, added up in Python from the request log's groups."""
    counts = dict.fromkeys(("requested", "completed", "cached", "failed", "rejected"), 0)
    for g in conn.execute(sa.text(load_sql("dashboard_check_request_log")), params):
        n = int(g.n)
        if g.asked_on_day:
            counts["requested"] += n
        if not g.finished_on_day:
            continue
        if g.status == "done":
            counts["completed"] += n
            counts["cached"] += n if g.without_batch else 0
        elif g.status in ("failed", "rejected"):
            counts[g.status] += n
    return counts


def pulse_matches_request_log(
    conn: sa.Connection, params: Mapping[str, Any], pulse: Mapping[str, Any]
) -> dg.AssetCheckResult:
    """`platform_pulse_matches_request_log` for the pulse row `pulse`."""
    log = request_log_counts(conn, params)
    figures = {
        f"enrichments_{name}": (int(pulse[f"enrichments_{name}"]), n) for name, n in log.items()
    }
    return _comparison(PULSE_REQUEST_LOG_CHECK, PULSE_KEY, figures, "enrichment_requests")


def pulse_matches_call_log(
    conn: sa.Connection, params: Mapping[str, Any], pulse: Mapping[str, Any]
) -> dg.AssetCheckResult:
    """`platform_pulse_matches_call_log` for the pulse row `pulse`."""
    log = conn.execute(sa.text(load_sql("dashboard_check_call_log")), params).one()
    figures = {
        "pipeline_provider_calls": (float(pulse["pipeline_provider_calls"]), float(log.calls)),
        "provider_spend_usd": (
            round(float(pulse["provider_spend_usd"]), 6),
            round(float(log.spend_usd), 6),
        ),
    }
    return _comparison(
        PULSE_CALL_LOG_CHECK,
        PULSE_KEY,
        figures,
        "api_call_log",
        same=lambda a, b: abs(a - b) <= SPEND_TOLERANCE_USD,
    )


def funnel_stages_result(conn: sa.Connection, params: Mapping[str, Any]) -> dg.AssetCheckResult:
    """`funnel_stages_never_grow` for `params["day"]`."""
    bad = [
        dict(r._mapping)
        for r in conn.execute(sa.text(load_sql("dashboard_check_funnel_stages")), params)
    ]
    return dg.AssetCheckResult(
        check_name=FUNNEL_STAGES_CHECK,
        asset_key=FUNNEL_KEY,
        passed=not bad,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(bad)} rows where a stage exceeds the stage before it"
        if bad
        else "every stage is at most the stage before it",
        metadata={
            "rows_with_a_growing_stage": len(bad),
            "rows": table_metadata(
                bad, [("tenant_id", STRING), *((s, INT) for s in FUNNEL_STAGES)]
            ),
        },
    )


def funnel_total_result(conn: sa.Connection, params: Mapping[str, Any]) -> dg.AssetCheckResult:
    """`funnel_platform_row_is_tenant_sum` for `params["day"]`."""
    r = conn.execute(sa.text(load_sql("dashboard_check_funnel_total")), params).one()._mapping
    figures = {"platform_rows": (int(r["platform_rows"]), 1)}
    for stage in FUNNEL_STAGES:
        short = stage.removesuffix("_users")
        figures[stage] = (int(r[f"platform_{short}"]), int(r[f"tenants_{short}"]))
    return _comparison(FUNNEL_TOTAL_CHECK, FUNNEL_KEY, figures, "tenant_rows")
