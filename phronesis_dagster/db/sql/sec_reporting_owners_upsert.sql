-- Remember an issuer's reporting owner (SEC's spelling of the name, their own CIK) and the
-- newest filing date seen for them.
INSERT INTO sec_reporting_owners (issuer_cik, owner_cik, owner_name, last_filing_date)
VALUES (:issuer_cik, :owner_cik, :owner_name, :last_filing_date)
ON CONFLICT (issuer_cik, owner_cik) DO UPDATE SET
    owner_name = CASE
        WHEN sec_reporting_owners.last_filing_date IS NULL
          OR excluded.last_filing_date >= sec_reporting_owners.last_filing_date
        THEN excluded.owner_name ELSE sec_reporting_owners.owner_name END,
    last_filing_date = CASE
        WHEN sec_reporting_owners.last_filing_date IS NULL
          OR excluded.last_filing_date > sec_reporting_owners.last_filing_date
        THEN excluded.last_filing_date ELSE sec_reporting_owners.last_filing_date END,
    updated_at = CURRENT_TIMESTAMP
