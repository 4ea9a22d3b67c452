-- pbiport schema 13: jobs can be cancelled and keep the history of their phases; data products
-- know who owns them; an output port that consumers depend on is retired instead of deleted.

-- jobs: a new state 'cancelled' (a CHECK constraint changes only by rebuilding the table, the
-- way SQLite documents it) and the cancel request: when, whether the job should remove what it
-- created, and who asked. A queued job is cancelled at once; a running one by its worker at its
-- next checkpoint (runtime/jobs.h).
CREATE TABLE jobs_new (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         TEXT REFERENCES users (id) ON DELETE SET NULL,
    kind            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    phase           TEXT,
    progress        INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    run_after       TEXT NOT NULL,
    lease_owner     TEXT,
    lease_expires   TEXT,
    idempotency_key TEXT,
    input           TEXT NOT NULL,
    private_input   TEXT,
    checkpoint      TEXT NOT NULL,
    result          TEXT,
    error_code      TEXT,
    error_message   TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    finished_at     TEXT,
    cancel_requested_at TEXT,
    cancel_cleanup  INTEGER NOT NULL DEFAULT 0,
    cancelled_by    TEXT REFERENCES users (id) ON DELETE SET NULL
);
INSERT INTO jobs_new (id, org_id, user_id, kind, state, phase, progress, attempts, max_attempts, run_after,
                      lease_owner, lease_expires, idempotency_key, input, private_input, checkpoint, result,
                      error_code, error_message, created_at, updated_at, finished_at)
    SELECT id, org_id, user_id, kind, state, phase, progress, attempts, max_attempts, run_after,
           lease_owner, lease_expires, idempotency_key, input, private_input, checkpoint, result,
           error_code, error_message, created_at, updated_at, finished_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_due ON jobs (state, run_after);
CREATE INDEX jobs_org ON jobs (org_id, created_at);
-- GET /api/jobs for a member: their own jobs, newest first
CREATE INDEX jobs_org_user ON jobs (org_id, user_id, created_at);
CREATE UNIQUE INDEX jobs_inflight_key ON jobs (idempotency_key)
    WHERE idempotency_key IS NOT NULL AND state IN ('queued', 'running');

-- Every phase a job entered, in order, with the attempt it belonged to: a watcher that polls
-- slowly still sees each one (GET /api/jobs/{id} "phases").
CREATE TABLE job_phases (
    job_id      TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    phase       TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- The user who first imported a data product owns it: they (or an organization owner) may
-- update it. NULL for products imported before this migration or made by pbiport itself.
ALTER TABLE data_products ADD COLUMN owner_user_id TEXT REFERENCES users (id) ON DELETE SET NULL;

-- A port whose server left the contract while consumers depend on it (agreements, published
-- models) is kept, marked retired: it refuses new publishes. NULL: in service.
ALTER TABLE output_ports ADD COLUMN retired_at TEXT;
