-- pbiport schema 8: staged lineage edges are appended, not kept in a random-order key.
-- lineage_staging's primary key (run_id, from_id, to_id) put every staged edge at a random
-- place in a b-tree the size of the run, so each scanned batch rewrote about one index page
-- per edge (most of a run's WAL writes). Edges are now appended with an index on run_id only;
-- the same edge staged twice is harmless (applying an edge that exists does nothing).

CREATE TABLE lineage_staging_new (
    run_id     TEXT NOT NULL REFERENCES integration_runs (id) ON DELETE CASCADE,
    from_kind  TEXT NOT NULL,
    from_id    TEXT NOT NULL,
    to_kind    TEXT NOT NULL,
    to_id      TEXT NOT NULL
);
INSERT INTO lineage_staging_new (run_id, from_kind, from_id, to_kind, to_id)
    SELECT run_id, from_kind, from_id, to_kind, to_id FROM lineage_staging;
DROP TABLE lineage_staging;
ALTER TABLE lineage_staging_new RENAME TO lineage_staging;
CREATE INDEX lineage_staging_run ON lineage_staging (run_id);
