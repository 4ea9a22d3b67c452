-- pbiport schema 6: semantic-model refreshes (schedules, our own history) and push datasets
-- (team-shared connections, datasets with their schema, spooled rows, the shared rate limiter).

-- A refresh schedule per semantic model. model_ref is an assets.id (semantic_model) or a
-- published model id; it is not a foreign key because it may point at either table.
CREATE TABLE refresh_schedules (
    model_ref    TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    schedule     TEXT NOT NULL,               -- preset or 5-field cron (UTC), core/lang/cron.h
    next_run_at  TEXT NOT NULL,
    created_by   TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX refresh_schedules_due ON refresh_schedules (next_run_at);

-- Refreshes pbiport started or joined (merged with Power BI's own history on read).
CREATE TABLE refresh_runs (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    model_ref     TEXT NOT NULL,
    job_id        TEXT NOT NULL,
    trigger       TEXT NOT NULL CHECK (trigger IN ('manual', 'schedule', 'event')),
    request_id    TEXT,                       -- Power BI's id of the refresh, once known
    status        TEXT NOT NULL,              -- queued, Unknown (running), Completed, Failed, Cancelled, Disabled;
                                              -- Error: pbiport could not trigger or follow it
    joined        INTEGER NOT NULL DEFAULT 0, -- 1: a refresh already running was followed
    start_time    TEXT,
    end_time      TEXT,
    error         TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX refresh_runs_model ON refresh_runs (org_id, model_ref, created_at);

-- Service principals for pushing, shared within one team of the org.
CREATE TABLE push_connections (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    team_id        TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    tenant_id      TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    client_secret  TEXT NOT NULL,             -- sealed (runtime/crypto), context "push_connection:<id>"
    created_by     TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at     TEXT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE push_datasets (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    connection_id  TEXT NOT NULL REFERENCES push_connections (id) ON DELETE CASCADE,
    workspace_id   TEXT NOT NULL,             -- Power BI workspace (group) id
    powerbi_id     TEXT NOT NULL,             -- Power BI dataset id
    name           TEXT NOT NULL,
    retention      TEXT NOT NULL CHECK (retention IN ('None', 'basicFIFO')),
    schema_json    TEXT NOT NULL,             -- [{"name","columns":[{"name","dataType"}]}]
    created_by     TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (org_id, connection_id, workspace_id, name)
);

-- Rows a table holds as far as pbiport knows (Power BI slows pushes past 250,000).
CREATE TABLE push_table_rows (
    dataset_id     TEXT NOT NULL REFERENCES push_datasets (id) ON DELETE CASCADE,
    table_name     TEXT NOT NULL,
    rows           INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, table_name)
);

-- Validated, converted rows waiting to be sent: one chunk = one POST rows request body.
CREATE TABLE push_chunks (
    upload_id      TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    nrows          INTEGER NOT NULL,
    rows_json      TEXT NOT NULL,             -- JSON array of row objects
    created_at     TEXT NOT NULL,
    PRIMARY KEY (upload_id, seq)
);

-- The per-dataset rate limiter shared by every process: one row per POST rows request
-- granted in the last hour (at_ms = Unix milliseconds; done = 0 while it is in flight).
CREATE TABLE push_rate_events (
    id             INTEGER PRIMARY KEY,
    dataset_key    TEXT NOT NULL,             -- Power BI dataset id
    at_ms          INTEGER NOT NULL,
    rows           INTEGER NOT NULL,
    done           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX push_rate_events_key ON push_rate_events (dataset_key, at_ms);
