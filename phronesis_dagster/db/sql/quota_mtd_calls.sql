-- Calls that count against the monthly quota, per provider, from the 1st of the month through
-- day, all origins summed. A quota counts successful (billable) calls; failures and 429s don't.
SELECT provider,
       SUM(CASE WHEN date = :day THEN success_count ELSE 0 END) AS calls,
       SUM(success_count) AS mtd_calls
FROM api_usage
WHERE date >= :month_start
  AND date <= :day
GROUP BY provider
