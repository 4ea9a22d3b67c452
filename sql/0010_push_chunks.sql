-- pbiport schema 10: a spooled push chunk says which table it goes to and whether a POST of it
-- may be under way. A chunk is marked 'sending' (with its rate-limiter ticket and the time) in
-- the transaction that grants the request, before the POST; it leaves the table in one
-- transaction with the table's row count once Power BI accepted it, and goes back to 'queued'
-- when Power BI answered that it did not add it. A worker that finds a chunk still 'sending'
-- does not know whether its rows were added: it asks Power BI for the table's row count before
-- sending it again (core/push.c, chunk_outcome).

ALTER TABLE push_chunks ADD COLUMN dataset_id TEXT;              -- push_datasets.id (NULL on an upload's owner row)
ALTER TABLE push_chunks ADD COLUMN table_name TEXT;
ALTER TABLE push_chunks ADD COLUMN state TEXT NOT NULL DEFAULT 'queued'
    CHECK (state IN ('queued', 'sending'));
ALTER TABLE push_chunks ADD COLUMN sending_at_ms INTEGER;        -- Unix ms when the POST began
ALTER TABLE push_chunks ADD COLUMN ticket INTEGER;               -- its push_rate_events id

-- the chunks of one table whose outcome may be unknown
CREATE INDEX push_chunks_sending ON push_chunks (dataset_id, table_name) WHERE state = 'sending';
