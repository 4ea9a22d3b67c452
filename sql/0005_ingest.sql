-- pbiport schema 5: import from Power BI. Integrations (service principal + filters +
-- schedule), their runs (last 10 kept), the scans a run has in flight (so a restarted
-- worker resumes polling instead of rescanning), the rows a run has scanned so far
-- (staged, applied to assets in one transaction at the end), the per-tenant getInfo
-- budget, and the imported assets.

CREATE TABLE integrations (
    id                TEXT PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    type              TEXT NOT NULL CHECK (type IN ('powerbi')),
    tenant_id         TEXT NOT NULL,
    client_id         TEXT NOT NULL,
    client_secret     TEXT NOT NULL,          -- sealed (runtime/crypto), context = integration id
    filters_json      TEXT NOT NULL,          -- {"workspaces":{"include":[..],"exclude":[..]},...}
    filter_rule       TEXT,                   -- Lua module name of an admin rule; NULL = filters.default
    include_personal  INTEGER NOT NULL DEFAULT 0,
    schedule          TEXT,                   -- preset or 5-field cron (UTC); NULL = manual only
    next_run_at       TEXT,                   -- when the schedule is next due
    last_success_at   TEXT,                   -- start of the last succeeded run (incremental scans)
    created_by        TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (org_id, name)
);
CREATE INDEX integrations_due ON integrations (next_run_at);

CREATE TABLE integration_runs (
    id              TEXT PRIMARY KEY,
    integration_id  TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    job_id          TEXT,
    trigger         TEXT NOT NULL CHECK (trigger IN ('manual', 'schedule')),
    state           TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    mode            TEXT,                     -- full, incremental, listing
    started_at      TEXT,
    finished_at     TEXT,
    counts_json     TEXT NOT NULL DEFAULT '{}',
    warnings_json   TEXT NOT NULL DEFAULT '[]',
    error_code      TEXT,
    error_message   TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX integration_runs_integration ON integration_runs (integration_id, created_at);

-- One row per getInfo batch of a run: the workspace ids it covers, and the scan id once
-- Power BI accepted it. state: pending (not asked yet), scanning, done.
CREATE TABLE integration_scans (
    run_id          TEXT NOT NULL REFERENCES integration_runs (id) ON DELETE CASCADE,
    batch           INTEGER NOT NULL,
    workspace_ids   TEXT NOT NULL,            -- JSON array
    scan_id         TEXT,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'scanning', 'done')),
    started_at      TEXT,
    PRIMARY KEY (run_id, batch)
);

-- What a run found so far, before it is applied to assets in one transaction.
CREATE TABLE asset_staging (
    run_id               TEXT NOT NULL REFERENCES integration_runs (id) ON DELETE CASCADE,
    asset_id             TEXT NOT NULL,       -- the id the asset gets (core/store/assets.h assets_id_for)
    kind                 TEXT NOT NULL,
    powerbi_id           TEXT NOT NULL,
    workspace_powerbi_id TEXT,
    name                 TEXT NOT NULL,
    details_json         TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, powerbi_id)
);

-- Lineage edges a run found (asset ids are derived from org, kind and Power BI id, so they
-- are known before the assets are written); applied with the assets.
CREATE TABLE lineage_staging (
    run_id     TEXT NOT NULL REFERENCES integration_runs (id) ON DELETE CASCADE,
    from_kind  TEXT NOT NULL,
    from_id    TEXT NOT NULL,
    to_kind    TEXT NOT NULL,
    to_id      TEXT NOT NULL,
    PRIMARY KEY (run_id, from_id, to_id)
);

-- getInfo calls made per service-principal tenant per clock hour, shared by every integration.
CREATE TABLE scan_budget (
    tenant_id    TEXT NOT NULL,
    hour         TEXT NOT NULL,               -- "YYYY-MM-DDTHH"
    calls        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, hour)
);

CREATE TABLE assets (
    id                   TEXT PRIMARY KEY,
    org_id               TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    integration_id       TEXT REFERENCES integrations (id) ON DELETE SET NULL,
    kind                 TEXT NOT NULL CHECK (kind IN ('workspace', 'semantic_model', 'report',
                                                       'dashboard', 'datasource')),
    powerbi_id           TEXT NOT NULL,
    workspace_powerbi_id TEXT,
    name                 TEXT NOT NULL,
    details_json         TEXT NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('active', 'removed')),
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    UNIQUE (org_id, kind, powerbi_id)
);
CREATE INDEX assets_integration ON assets (integration_id, workspace_powerbi_id);
CREATE INDEX assets_org_kind ON assets (org_id, kind, name);
