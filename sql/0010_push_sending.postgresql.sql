-- PostgreSQL's version of 0010_push_sending.sql (runtime/db.h: it replaces that file on PostgreSQL).
-- The same table; sending_at_ms (Unix milliseconds) and ticket (a push_rate_events id, BIGINT in
-- 0006_refresh_push.postgresql.sql) are BIGINT: PostgreSQL's INTEGER has 32 bits, SQLite's 64.

-- pbiport schema 10: the push chunks whose POST may be under way or may have been made without
-- an answer. A row is written in the transaction that grants the request, before the POST; it
-- leaves with its chunk, in the transaction that adds the chunk's rows to the table's count, once
-- Power BI accepted them, or alone when Power BI answered that it did not add them. A worker that
-- finds a chunk here does not know whether its rows were added: it asks Power BI for the table's
-- row count before sending it again (core/flow/push.c, chunk_outcome_find). A table of its own, so
-- that marking a chunk does not rewrite its rows (up to 10,000 of them) in push_chunks.

CREATE TABLE push_sending (
    upload_id      TEXT NOT NULL,             -- the push_chunks row (upload_id, seq)
    seq            INTEGER NOT NULL,
    dataset_id     TEXT NOT NULL,             -- push_datasets.id
    table_name     TEXT NOT NULL,
    sending_at_ms  BIGINT NOT NULL,           -- Unix ms when the POST began
    ticket         BIGINT NOT NULL,           -- its push_rate_events id
    PRIMARY KEY (upload_id, seq)
);
CREATE INDEX push_sending_table ON push_sending (dataset_id, table_name);
