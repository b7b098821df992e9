-- A filed SEC document, if a run fetched it before (filed documents never change).
SELECT content
FROM sec_document_cache
WHERE accession_number = :accession_number
  AND document = :document
