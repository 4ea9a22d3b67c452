-- pbiport schema 17: webhooks (docs/webhooks.md, core/store/webhooks.h).
--
-- Organization owners register HTTPS endpoints for events; each event becomes one delivery per
-- active webhook that subscribes to it, sent by a job (kind webhook_delivery) and signed with the
-- webhook's secret, which is sealed with APPLICATION_ENCRYPTION_KEYS like every stored secret.
CREATE TABLE webhooks (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url                 TEXT NOT NULL,             -- https://, no credentials (checked on save)
    events              TEXT NOT NULL,             -- JSON array of event names, sorted, no repeats
    secret_sealed       TEXT NOT NULL,             -- the HMAC key, sealed under "webhook:<id>"
    active              INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    disabled_reason     TEXT,                      -- why pbiport turned it off (a 410); NULL otherwise
    created_by          TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    -- the last delivery attempt, whatever its event
    last_delivery_at    TEXT,
    last_delivery_state TEXT,                      -- the delivery's state after it
    last_status         INTEGER,                   -- the receiver's HTTP status; NULL: no answer
    last_error          TEXT                       -- one line when it was not delivered
);
-- webhook_emit reads the organization's active webhooks: one indexed read
CREATE INDEX webhooks_org_active ON webhooks (org_id, active);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,              -- X-Pbiport-Delivery: the same on every retry
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,                 -- the payload's "id": the same for every webhook
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,                 -- the exact body sent and signed
    state           TEXT NOT NULL CHECK (state IN ('pending', 'retrying', 'delivered', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_status     INTEGER,
    last_error      TEXT,
    job_id          TEXT,                          -- the delivery job (runtime/jobs)
    next_attempt_at TEXT,                          -- when retrying
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    delivered_at    TEXT,
    -- an event reaches a webhook once, even when the job that reports it runs again
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (webhook_id, created_at);
