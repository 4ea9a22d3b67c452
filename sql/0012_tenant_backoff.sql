-- pbiport schema 12: a Retry-After holds back every caller on the tenant (core/store/tenant_backoff.h).
--
-- Power BI's throttling budgets for the scanner, admin and push APIs are the tenant's, shared by
-- every caller: a 429 with "Retry-After: 3600" that one job got must hold back every other job
-- that calls the same API family on the same tenant, and keep doing so across restarts.
CREATE TABLE tenant_backoff (
    tenant_id   TEXT NOT NULL,             -- lower case
    family      TEXT NOT NULL CHECK (family IN ('scanner', 'admin', 'push')),
    wait_until  TEXT NOT NULL,             -- ISO-8601 UTC: no call of the family before this
    reason      TEXT NOT NULL,             -- one line: who got the 429, for what, and the Retry-After
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, family)
);
