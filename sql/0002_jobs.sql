-- pbiport schema 2: the job queue. Anything slower than one quick call runs as a job,
-- claimed by `pbiport worker` processes under a lease that they renew while they work.

CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         TEXT REFERENCES users (id) ON DELETE SET NULL,
    kind            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    phase           TEXT,
    progress        INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    run_after       TEXT NOT NULL,
    lease_owner     TEXT,
    lease_expires   TEXT,
    idempotency_key TEXT,
    input           TEXT NOT NULL,          -- public JSON parameters
    private_input   TEXT,                   -- sealed JSON (typed-in credentials); erased at the end
    checkpoint      TEXT NOT NULL,          -- JSON: what earlier phases created, for a resumed run
    result          TEXT,                   -- JSON
    error_code      TEXT,
    error_message   TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    finished_at     TEXT
);
CREATE INDEX jobs_due ON jobs (state, run_after);
CREATE INDEX jobs_org ON jobs (org_id, created_at);
-- At most one queued or running job per idempotency key: a repeated submit finds it.
CREATE UNIQUE INDEX jobs_inflight_key ON jobs (idempotency_key)
    WHERE idempotency_key IS NOT NULL AND state IN ('queued', 'running');
