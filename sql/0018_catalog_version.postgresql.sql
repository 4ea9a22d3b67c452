-- PostgreSQL's version of 0018_catalog_version.sql (the same column and the same tables; triggers
-- are written as a function here).
--
-- GET /api/data-products/{id} is built from data_products, output_ports, agreements and users
-- (the names of who requested or ended an agreement). Every insert, update or delete of a row of
-- those tables moves its organization's catalog_version up, by these triggers, in the same
-- transaction: no write path can forget it. The token lookup reads the version with the token
-- (core/store/identity.c), and a FastCGI process reuses an answer it built only while the version
-- read in the request is the one it was built at (handlers/data_products.c).
--
-- The triggers are deferred to the commit: the organization's row is locked only at the end of a
-- writing transaction, so two writers of one organization do not hold it while they take the
-- locks of other rows (no deadlock between them; the second waits for the first's commit).
ALTER TABLE organizations ADD COLUMN catalog_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION catalog_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = OLD.org_id;
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.org_id IS DISTINCT FROM OLD.org_id) THEN
        UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = NEW.org_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER data_products_catalog AFTER INSERT OR UPDATE OR DELETE ON data_products
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION catalog_version_bump();
CREATE CONSTRAINT TRIGGER output_ports_catalog AFTER INSERT OR UPDATE OR DELETE ON output_ports
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION catalog_version_bump();
CREATE CONSTRAINT TRIGGER agreements_catalog AFTER INSERT OR UPDATE OR DELETE ON agreements
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION catalog_version_bump();
-- a user's name shows in agreements; a new user shows nowhere until an agreement names them
CREATE CONSTRAINT TRIGGER users_catalog AFTER UPDATE OR DELETE ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION catalog_version_bump();
