-- pbiport schema 15: signing in with Microsoft (OpenID Connect against Entra) and browser sessions.
-- See docs/signin.md. The web server's own sign-in (REMOTE_USER) and API tokens are unchanged.

-- users: the e-mail a person's first sign-in is matched by (stored lower-case), and the Entra
-- tenant + object id they are pinned to from then on (a later e-mail change does not matter).
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN entra_tenant_id TEXT;
ALTER TABLE users ADD COLUMN entra_object_id TEXT;
CREATE UNIQUE INDEX users_email ON users (email);
CREATE UNIQUE INDEX users_entra ON users (entra_tenant_id, entra_object_id);

-- organizations: people of this Entra tenant whom no user matches may sign themselves up as
-- members (NULL: nobody may). One organization per tenant, so a new person has one place to go.
ALTER TABLE organizations ADD COLUMN signup_tenant_id TEXT;
CREATE UNIQUE INDEX organizations_signup_tenant ON organizations (signup_tenant_id);

-- oauth_states now also holds sign-ins in progress (purpose 'signin'), which belong to nobody
-- yet: org_id and user_id may be NULL for them. id_nonce is the nonce the ID token must carry,
-- the hash of a cookie that binds the sign-in to the browser that started it; with_powerbi says
-- that the Power BI permissions were asked for in the same consent. A NOT NULL constraint
-- changes only by rebuilding the table, the way SQLite documents it.
CREATE TABLE oauth_states_new (
    nonce                TEXT PRIMARY KEY,
    purpose              TEXT NOT NULL DEFAULT 'powerbi' CHECK (purpose IN ('powerbi', 'signin')),
    org_id               TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    user_id              TEXT REFERENCES users (id) ON DELETE CASCADE,
    tenant_id            TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    redirect_uri         TEXT NOT NULL,
    code_verifier_sealed TEXT NOT NULL,
    return_to            TEXT NOT NULL,
    id_nonce             TEXT,
    with_powerbi         INTEGER NOT NULL DEFAULT 0,
    expires_at           TEXT NOT NULL,
    used_at              TEXT,
    created_at           TEXT NOT NULL,
    CHECK (purpose = 'signin' OR (org_id IS NOT NULL AND user_id IS NOT NULL))
);
INSERT INTO oauth_states_new (nonce, purpose, org_id, user_id, tenant_id, client_id, redirect_uri,
                              code_verifier_sealed, return_to, expires_at, used_at, created_at)
    SELECT nonce, 'powerbi', org_id, user_id, tenant_id, client_id, redirect_uri, code_verifier_sealed,
           return_to, expires_at, used_at, created_at FROM oauth_states;
DROP TABLE oauth_states;
ALTER TABLE oauth_states_new RENAME TO oauth_states;
CREATE INDEX oauth_states_expires ON oauth_states (expires_at);

-- A signed-in browser. The cookie holds a random secret (signed with
-- APPLICATION_SECURITY_REMEMBERME_KEY); only its SHA-256 is stored. id is the public name of the
-- session (GET /api/me/sessions), never the secret. A session ends at expires_at (absolute), when
-- last_seen_at is older than the idle timeout, or when revoked (sign-out, DELETE). last_seen_at
-- moves at most once a minute, so a signed-in request does not write.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    user_agent    TEXT NOT NULL,
    revoked_at    TEXT
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- The identity provider's OpenID configuration and signing keys (JWKS) as fetched, by the
-- configuration's URL: shared by every process, fetched again when expired or when a token names
-- a key that is not there (at most once a minute: fetched_at). A process claims the next fetch by
-- moving claim on by one from the value it read (compare-and-swap), so one fetches.
CREATE TABLE oidc_providers (
    config_url    TEXT PRIMARY KEY,
    metadata      TEXT NOT NULL,
    jwks          TEXT NOT NULL,
    fetched_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    claim         INTEGER NOT NULL DEFAULT 0
);
