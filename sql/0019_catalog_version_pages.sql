-- pbiport schema 19: the catalog version also covers what a data product's page shows
-- (SQLite; PostgreSQL has its own file).
--
-- The page /data-products/{id} shows, beside what GET /api/data-products/{id} shows, the
-- semantic models published from each port (published_models) and the organization's name. A
-- FastCGI process keeps the page it rendered and gives it again while the organization's
-- catalog_version is the one it was rendered at (handlers/pages_catalog.c), so every write of
-- those rows moves the version too, as sql/0018's triggers do for the rest.
CREATE TRIGGER published_models_catalog_insert AFTER INSERT ON published_models BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = NEW.org_id;
END;
CREATE TRIGGER published_models_catalog_update AFTER UPDATE ON published_models BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id IN (OLD.org_id, NEW.org_id);
END;
CREATE TRIGGER published_models_catalog_delete AFTER DELETE ON published_models BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = OLD.org_id;
END;

CREATE TRIGGER organizations_catalog_name AFTER UPDATE OF name ON organizations
WHEN NEW.name IS NOT OLD.name BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = NEW.id;
END;
