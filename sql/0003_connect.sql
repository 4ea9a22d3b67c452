-- pbiport schema 3: Connect Power BI. Per-org app credentials, per-user delegated consent
-- (sealed tokens), and the single-use OAuth state rows of sign-ins in progress.
-- Every secret column holds text made by pb_seal (runtime/crypto.h), never plaintext.

-- One row per organization. mode 'sso' reuses the deployment's sign-in app
-- (PBIPORT_SSO_*): tenant_id / client_id / client_secret stay NULL then.
CREATE TABLE powerbi_settings (
    org_id               TEXT PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    mode                 TEXT NOT NULL CHECK (mode IN ('sso', 'custom')),
    tenant_id            TEXT,
    client_id            TEXT,
    client_secret_sealed TEXT,
    application_name     TEXT,
    updated_by           TEXT REFERENCES users (id) ON DELETE SET NULL,
    updated_at           TEXT NOT NULL
);

-- A user's delegated Power BI consent: at most one per (user, tenant); connecting again
-- replaces it. token_gen counts refreshes: a refresher claims the row for its generation
-- (refresh_claim + refresh_claim_until, compare-and-swap) so concurrent processes refresh
-- once and the others wait for the next generation.
CREATE TABLE user_datasource_connection (
    id                   TEXT PRIMARY KEY,
    org_id               TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id            TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('active', 'needs_reconnect')),
    access_token_sealed  TEXT,
    refresh_token_sealed TEXT,
    expires_at           TEXT NOT NULL,
    scopes               TEXT NOT NULL,
    token_gen            INTEGER NOT NULL,
    refresh_claim        TEXT,
    refresh_claim_until  TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    UNIQUE (user_id, tenant_id)
);
CREATE INDEX user_datasource_connection_org_user ON user_datasource_connection (org_id, user_id);

-- One row per started sign-in; used_at is set once by the callback (single use).
CREATE TABLE oauth_states (
    nonce                TEXT PRIMARY KEY,
    org_id               TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id            TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    redirect_uri         TEXT NOT NULL,
    code_verifier_sealed TEXT NOT NULL,
    return_to            TEXT NOT NULL,
    expires_at           TEXT NOT NULL,
    used_at              TEXT,
    created_at           TEXT NOT NULL
);
CREATE INDEX oauth_states_expires ON oauth_states (expires_at);
