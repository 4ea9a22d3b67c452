-- PostgreSQL's version of 0019_catalog_version_pages.sql (the same tables, with sql/0018's
-- deferred trigger function).
--
-- The page /data-products/{id} shows, beside what GET /api/data-products/{id} shows, the
-- semantic models published from each port (published_models) and the organization's name. A
-- FastCGI process keeps the page it rendered and gives it again while the organization's
-- catalog_version is the one it was rendered at (handlers/pages_catalog.c), so every write of
-- those rows moves the version too, as sql/0018's triggers do for the rest.
CREATE CONSTRAINT TRIGGER published_models_catalog AFTER INSERT OR UPDATE OR DELETE ON published_models
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION catalog_version_bump();

-- a rename moves the version in the same row (a BEFORE trigger: no second update of the row)
CREATE FUNCTION catalog_version_bump_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.catalog_version := OLD.catalog_version + 1;
    RETURN NEW;
END
$$;
CREATE TRIGGER organizations_catalog_name BEFORE UPDATE OF name ON organizations
    FOR EACH ROW WHEN (NEW.name IS DISTINCT FROM OLD.name) EXECUTE FUNCTION catalog_version_bump_renamed();
