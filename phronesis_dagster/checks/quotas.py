"""Quota checks of `api_quota_daily`, evaluated with each materialization.

- `quota_projected_month_end`: WARN when a provider's projected month-end use reaches 80% of its
  monthly quota (time to slow down or buy more before it runs out).
- `quota_month_to_date`: ERROR when a provider's month-to-date calls reach 100% of its quota
  (calls are failing or being billed as overage now).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from phronesis_dagster.assets.quotas import QuotaBurn

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


def _summary(burns: Sequence[QuotaBurn]) -> dict[str, float]:
    return {b.provider: round(b.pct_burned, 2) for b in burns}


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
            "projected_pct": {b.provider: round(b.projected_pct, 2) for b in burns},
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
            "pct_burned": _summary(burns),
        },
    )
