-- Keep a fetched SEC document; a concurrent run that stored it first wins (same bytes).
INSERT INTO sec_document_cache (accession_number, document, content, content_type, size_bytes)
VALUES (:accession_number, :document, :content, :content_type, :size_bytes)
ON CONFLICT (accession_number, document) DO NOTHING
