-- pbiport schema 1: identity, catalog, request metrics.
-- Portable subset of SQLite and PostgreSQL: TEXT ids (32 hex digits made by pbiport),
-- timestamps as ISO-8601 UTC text written by pbiport, no engine-specific functions.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

-- A user name is what the web server puts in REMOTE_USER, so it is unique across orgs.
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    created_at  TEXT NOT NULL
);
CREATE INDEX users_org ON users (org_id);

CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE team_members (
    team_id     TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

-- Only the SHA-256 of a token is stored (hex); the id is the token's public prefix.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- One row per imported contract per org; re-importing the same contract id updates it.
CREATE TABLE data_products (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    contract_id   TEXT NOT NULL,
    name          TEXT NOT NULL,
    type          TEXT NOT NULL,
    version       TEXT,
    status        TEXT,
    domain        TEXT,
    description   TEXT,
    contract_text TEXT NOT NULL,
    revision      INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (org_id, contract_id)
);

-- One port per contract server; server_json holds the server's connection fields.
CREATE TABLE output_ports (
    id              TEXT PRIMARY KEY,
    data_product_id TEXT NOT NULL REFERENCES data_products (id) ON DELETE CASCADE,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    type            TEXT NOT NULL,
    server_json     TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (data_product_id, name)
);
CREATE INDEX output_ports_org ON output_ports (org_id);

-- Prometheus counters, shared by every FastCGI process (they keep no state of their own).
CREATE TABLE metrics_requests (
    route   TEXT NOT NULL,
    method  TEXT NOT NULL,
    status  INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (route, method, status)
);

-- Request duration histogram: non-cumulative count per bucket index (see runtime/metrics.c).
CREATE TABLE metrics_durations (
    route   TEXT NOT NULL,
    bucket  INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (route, bucket)
);

CREATE TABLE metrics_duration_sums (
    route        TEXT PRIMARY KEY,
    count        INTEGER NOT NULL,
    sum_seconds  REAL NOT NULL
);
