-- pbiport schema 9: staged assets are appended too (see 0008 for lineage_staging). The
-- primary key (run_id, kind, powerbi_id) put every staged asset at a random place in a
-- b-tree the size of the run, so each scanned batch rewrote about one index page per asset.
-- Every kind but data sources is staged once per run by construction (a workspace is in one
-- batch, a batch is staged in one transaction with its "done" mark); a data source can come
-- back in many batches, so only data sources keep a unique key, in a small partial index.

CREATE TABLE asset_staging_new (
    run_id               TEXT NOT NULL REFERENCES integration_runs (id) ON DELETE CASCADE,
    asset_id             TEXT NOT NULL,       -- the id the asset gets (core/store/assets.h assets_id_for)
    kind                 TEXT NOT NULL,
    powerbi_id           TEXT NOT NULL,
    workspace_powerbi_id TEXT,
    name                 TEXT NOT NULL,
    details_json         TEXT NOT NULL
);
INSERT INTO asset_staging_new (run_id, asset_id, kind, powerbi_id, workspace_powerbi_id, name, details_json)
    SELECT run_id, asset_id, kind, powerbi_id, workspace_powerbi_id, name, details_json FROM asset_staging;
DROP TABLE asset_staging;
ALTER TABLE asset_staging_new RENAME TO asset_staging;
CREATE INDEX asset_staging_run ON asset_staging (run_id);
CREATE UNIQUE INDEX asset_staging_datasource ON asset_staging (run_id, powerbi_id) WHERE kind = 'datasource';
