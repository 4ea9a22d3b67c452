-- PostgreSQL's version of 0016_model_lifecycle.sql (runtime/db.h: it replaces that file on PostgreSQL).
-- The same steps and schema; the one difference is reading http_path from a job's JSON input:
-- SQLite's json_extract(input, '$.http_path') is CAST(input AS jsonb) ->> 'http_path' here.

-- pbiport schema 16: a published model has a life (docs/lifecycle.md): it is updated in place from
-- its contract, its drift is checked, and it can be unpublished. Its agreement can end.
--
-- Both tables change a CHECK constraint, which SQLite changes only by rebuilding the table (as
-- 0013 did for jobs). published_models refers to agreements, and dropping a table with foreign
-- keys on runs its ON DELETE actions: so the new published_models is made to refer to the new
-- agreements table first, and the old tables are dropped only once nothing refers to them; the
-- renames then carry the references along.

-- agreements: a new state 'terminated' (a published model was unpublished), who ended it and when.
CREATE TABLE agreements_new (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    consumer_product_id TEXT NOT NULL REFERENCES data_products (id) ON DELETE CASCADE,
    output_port_id      TEXT NOT NULL REFERENCES output_ports (id) ON DELETE CASCADE,
    state               TEXT NOT NULL CHECK (state IN ('requested', 'approved', 'rejected', 'cancelled',
                                                       'terminated')),
    purpose             TEXT,
    requested_by        TEXT REFERENCES users (id) ON DELETE SET NULL,
    approved_at         TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    terminated_by       TEXT REFERENCES users (id) ON DELETE SET NULL,
    terminated_at       TEXT,
    UNIQUE (consumer_product_id, output_port_id)
);
INSERT INTO agreements_new (id, org_id, consumer_product_id, output_port_id, state, purpose, requested_by,
                            approved_at, created_at, updated_at)
    SELECT id, org_id, consumer_product_id, output_port_id, state, purpose, requested_by, approved_at, created_at,
           updated_at FROM agreements;

-- published_models: what the model was built from and what has happened to it since.
--   definition         the TMDL files rendered at the last publish or update, as one JSON object
--                      {path: text} (NULL when it was larger than PB_PM_DEFINITION_MAX, or for
--                      models published before this migration)
--   contract_version / contract_revision / contract_hash
--                      the contract it was built from: its version, the data product's revision,
--                      SHA-256 of the contract text
--   http_path          the Databricks HTTP path the publish was given (its server had none), so an
--                      update renders the same source; NULL otherwise
--   connection_created 1 when pbiport created the Fabric connection for this publish (it may be
--                      deleted with the model), 0 when the publish reused one the user chose
--   state              active | updating | unpublishing (a job is at work: lifecycle_job_id) |
--                      unpublished (model deleted) | detached (model kept, pbiport let go)
--   update_available   1 when the contract renders differently from the definition: update_diff
--   auto_update        'off' or 'additive' (update at once when a change only adds)
--   drift, drift_cause, drift_checked_at, drift_detected_at
--                      the last drift check: the diff, contract | power_bi | both (NULL: none)
CREATE TABLE published_models_new (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    output_port_id      TEXT NOT NULL REFERENCES output_ports (id) ON DELETE CASCADE,
    user_id             TEXT REFERENCES users (id) ON DELETE SET NULL,
    job_id              TEXT NOT NULL UNIQUE,
    workspace_id        TEXT NOT NULL,
    semantic_model_id   TEXT NOT NULL,
    name                TEXT NOT NULL,
    web_url             TEXT,
    connection_id       TEXT,
    consumer_product_id TEXT REFERENCES data_products (id) ON DELETE SET NULL,
    agreement_id        TEXT REFERENCES agreements_new (id) ON DELETE SET NULL,
    published_at        TEXT NOT NULL,
    definition          TEXT,
    contract_version    TEXT,
    contract_revision   INTEGER,
    contract_hash       TEXT,
    http_path           TEXT,
    connection_created  INTEGER NOT NULL DEFAULT 0,
    state               TEXT NOT NULL DEFAULT 'active'
                        CHECK (state IN ('active', 'updating', 'unpublishing', 'unpublished', 'detached')),
    lifecycle_job_id    TEXT,
    updated_at          TEXT,
    update_available    INTEGER NOT NULL DEFAULT 0,
    update_diff         TEXT,
    update_found_at     TEXT,
    auto_update         TEXT NOT NULL DEFAULT 'off' CHECK (auto_update IN ('off', 'additive')),
    drift               TEXT,
    drift_cause         TEXT CHECK (drift_cause IN ('contract', 'power_bi', 'both')),
    drift_checked_at    TEXT,
    drift_detected_at   TEXT,
    unpublished_at      TEXT,
    unpublished_by      TEXT REFERENCES users (id) ON DELETE SET NULL
);
-- A publish that chose its connection has connection_id in its job's input; one that created a
-- connection has not (a publish whose job is gone counts as reusing one: nothing is deleted). The
-- HTTP path a Databricks publish was given is in the same input.
INSERT INTO published_models_new (id, org_id, output_port_id, user_id, job_id, workspace_id, semantic_model_id,
                                  name, web_url, connection_id, consumer_product_id, agreement_id, published_at,
                                  http_path, connection_created)
    SELECT pm.id, pm.org_id, pm.output_port_id, pm.user_id, pm.job_id, pm.workspace_id, pm.semantic_model_id,
           pm.name, pm.web_url, pm.connection_id, pm.consumer_product_id, pm.agreement_id, pm.published_at,
           (SELECT CAST(j.input AS jsonb) ->> 'http_path' FROM jobs j WHERE j.id = pm.job_id),
           CASE WHEN pm.connection_id IS NOT NULL AND
                     (SELECT j.input FROM jobs j WHERE j.id = pm.job_id) NOT LIKE '%"connection_id"%'
                THEN 1 ELSE 0 END
      FROM published_models pm;

DROP TABLE published_models;
DROP TABLE agreements;
ALTER TABLE agreements_new RENAME TO agreements;
ALTER TABLE published_models_new RENAME TO published_models;
CREATE INDEX agreements_port ON agreements (output_port_id);
CREATE INDEX published_models_port ON published_models (output_port_id, published_at);
-- GET /api/drift, the drift check, and "is this connection still used"
CREATE INDEX published_models_org_state ON published_models (org_id, state);
CREATE INDEX published_models_connection ON published_models (connection_id);

-- The daily drift check of each organization (core/flow/drift.c): the worker's tick queues a
-- drift_check job when next_run_at has come, moving it a day on in the same transaction.
CREATE TABLE drift_checks (
    org_id      TEXT PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    next_run_at TEXT NOT NULL,
    last_run_at TEXT
);

-- Drift of data products made from Power BI assets (POST /api/data-products/from-asset): how the
-- latest import of the model differs from the schema the product had recorded (baseline: its
-- contract before the first change an import run brought). Written when an import run changes the
-- product's schema; removed when the schema comes back to the baseline, or when the product is made
-- from the asset again (its schema is taken anew).
CREATE TABLE product_drift (
    data_product_id TEXT PRIMARY KEY REFERENCES data_products (id) ON DELETE CASCADE,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    baseline        TEXT NOT NULL,
    diff            TEXT NOT NULL,
    detected_at     TEXT NOT NULL,
    checked_at      TEXT NOT NULL
);
CREATE INDEX product_drift_org ON product_drift (org_id);
