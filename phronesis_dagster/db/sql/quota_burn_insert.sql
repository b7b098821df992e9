-- One api_quota_burn_daily row (the asset computes the projections from quota_mtd_calls.sql).
INSERT INTO api_quota_burn_daily (date, provider, calls, mtd_calls, monthly_quota, pct_burned,
                                  projected_month_end_calls, projected_pct, days_until_exhausted)
VALUES (:day, :provider, :calls, :mtd_calls, :monthly_quota, :pct_burned,
        :projected_month_end_calls, :projected_pct, :days_until_exhausted)
