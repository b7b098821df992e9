-- The insiders seen in an issuer's ownership filings, most recently active first.
SELECT owner_cik, owner_name, last_filing_date
FROM sec_reporting_owners
WHERE issuer_cik = :issuer_cik
ORDER BY last_filing_date DESC NULLS LAST, owner_cik
