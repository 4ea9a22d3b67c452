-- pbiport schema 18: an organization's catalog version (SQLite; PostgreSQL has its own file).
--
-- GET /api/data-products/{id} is built from data_products, output_ports, agreements and users
-- (the names of who requested or ended an agreement). Every insert, update or delete of a row of
-- those tables moves its organization's catalog_version up, by these triggers, in the same
-- transaction: no write path can forget it. The token lookup reads the version with the token
-- (core/store/identity.c), and a FastCGI process reuses an answer it built only while the version
-- read in the request is the one it was built at (handlers/data_products.c).
ALTER TABLE organizations ADD COLUMN catalog_version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER data_products_catalog_insert AFTER INSERT ON data_products BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = NEW.org_id;
END;
CREATE TRIGGER data_products_catalog_update AFTER UPDATE ON data_products BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id IN (OLD.org_id, NEW.org_id);
END;
CREATE TRIGGER data_products_catalog_delete AFTER DELETE ON data_products BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = OLD.org_id;
END;

CREATE TRIGGER output_ports_catalog_insert AFTER INSERT ON output_ports BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = NEW.org_id;
END;
CREATE TRIGGER output_ports_catalog_update AFTER UPDATE ON output_ports BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id IN (OLD.org_id, NEW.org_id);
END;
CREATE TRIGGER output_ports_catalog_delete AFTER DELETE ON output_ports BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = OLD.org_id;
END;

CREATE TRIGGER agreements_catalog_insert AFTER INSERT ON agreements BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = NEW.org_id;
END;
CREATE TRIGGER agreements_catalog_update AFTER UPDATE ON agreements BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id IN (OLD.org_id, NEW.org_id);
END;
CREATE TRIGGER agreements_catalog_delete AFTER DELETE ON agreements BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = OLD.org_id;
END;

-- a user's name shows in agreements; a new user shows nowhere until an agreement names them
CREATE TRIGGER users_catalog_update AFTER UPDATE ON users BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id IN (OLD.org_id, NEW.org_id);
END;
CREATE TRIGGER users_catalog_delete AFTER DELETE ON users BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = OLD.org_id;
END;
