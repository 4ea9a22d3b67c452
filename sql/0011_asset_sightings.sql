-- pbiport schema 11: an asset seen by several integrations is one asset.
--
-- Two integrations that see the same workspace used to overwrite each other's assets (the last
-- run won: a listing-mode run wiped the tables a scanner-mode run had recorded and took over the
-- asset's integration_id, which refresh uses for credentials). Now:
--  * assets.integration_id is the integration the asset belongs to: the one whose description it
--    carries and whose service principal refreshes it, chosen among the integrations that see it,
--    the richest access first (core/store/assets.h);
--  * assets.access is how that integration sees Power BI: 'scanner' (the admin scanner APIs:
--    tables, columns, expressions, lineage) or 'listing' (the per-workspace listing APIs);
--  * asset_sightings lists the OTHER integrations that see the asset now, so the common case of
--    one integration per asset writes no extra row, and an asset is removed only when neither
--    its integration nor any of these sees it any more.
ALTER TABLE assets ADD COLUMN access TEXT NOT NULL DEFAULT 'scanner' CHECK (access IN ('scanner', 'listing'));
-- assets whose integration's last successful run used the listing APIs
UPDATE assets SET access = 'listing' WHERE integration_id IN
    (SELECT r.integration_id FROM integration_runs r WHERE r.state = 'succeeded' AND r.mode = 'listing'
     AND r.created_at = (SELECT MAX(x.created_at) FROM integration_runs x
                         WHERE x.integration_id = r.integration_id AND x.state = 'succeeded'));

CREATE TABLE asset_sightings (
    asset_id        TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    integration_id  TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    access          TEXT NOT NULL CHECK (access IN ('scanner', 'listing')),
    first_seen_at   TEXT NOT NULL,
    PRIMARY KEY (asset_id, integration_id)
);
CREATE INDEX asset_sightings_integration ON asset_sightings (integration_id);

-- A resumed run counts the scans its earlier attempts started: getInfo calls per batch.
ALTER TABLE integration_scans ADD COLUMN scans INTEGER NOT NULL DEFAULT 0;

-- Why a queued run waits and until when (the tenant's back-off, its scan budget); NULL when it
-- does not wait. Shown with the run.
ALTER TABLE integration_runs ADD COLUMN wait_until TEXT;
ALTER TABLE integration_runs ADD COLUMN wait_reason TEXT;
