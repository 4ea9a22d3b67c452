/* The catalog store: data products and their output ports, imported from ODCS
 * contracts. Owns the tables data_products and output_ports.
 *
 * A contract becomes one data product (type "source", or the caller's with
 * catalog_import_typed) per organization and contract
 * id, with one output port per contract server (named by the server). Importing the
 * same contract id again in the same org updates the product (revision + 1, the new
 * version and text) and its ports: ports keep their id by server name, new servers
 * add ports, servers no longer in the contract lose theirs -- except a port that
 * consumers depend on (an agreement or a published model names it): that one is kept and
 * marked retired (retired_at), refuses new publishes, and comes back into service if its
 * server returns to the contract. Every read takes the
 * caller's org id: another org's objects are simply not found (PB_ENOTFOUND).
 *
 * Who may change a product: the user who first imported it owns it (owner_user_id; NULL for
 * products made by pbiport itself or before owners were recorded). Through the API
 * (catalog_import_by) any member may create a product, but only its owner or an
 * organization owner may update it (new version, servers changed, ports removed).
 *
 * Ownership: the cat_* values returned are new; free them with the matching _free. */
#ifndef PBIPORT_CATALOG_H
#define PBIPORT_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/lang/contract.h"
#include "runtime/db.h"
#include "runtime/failure.h"
#include "runtime/strbuf.h"

struct json_t;

typedef struct cat_port {
	char id[PB_ID_BUF];
	char data_product_id[PB_ID_BUF];
	char *name;          /* the contract server's name */
	char *type;          /* server type: snowflake, databricks, ... */
	char *server_json;   /* {"server":name,"type":...,<fields>...,"customProperties"?:{...}} */
	char *contract_id;
	char *contract_text; /* only from catalog_port_get(with_contract=true), else NULL */
	char *retired_at;    /* NULL while in service; when its server left the contract */
	/* only from catalog_port_get(with_contract=true), else NULL / 0: its data product's name,
	 * contract version (may be NULL) and revision, read with contract_text (one row, one
	 * snapshot: the revision is the one of that text) */
	char *product_name, *product_version;
	int product_revision;
} cat_port;

typedef struct cat_product {
	char id[PB_ID_BUF];
	char *contract_id;
	char *name;
	char *type;
	char *version;       /* the contract's version (may be NULL) */
	int revision;        /* 1 on first import, +1 per re-import */
	char owner_user_id[PB_ID_BUF];   /* "" when nobody owns it (see above) */
	char *created_at, *updated_at;
	char *contract_text; /* only from catalog_product_get(with_contract=true), else NULL */
	cat_port *ports;     /* ordered by name */
	size_t nports;
	bool consumes;       /* catalog_product_get: some agreement names it as consumer (for
			      * agreements_consumed_known) */
} cat_product;

/* Imports c (parsed from text[0..len)) into org_id. Everything is checked before the
 * write, and the write is one transaction. *created tells insert from update. */
int catalog_import(pb_db *db, const char *org_id, const pb_contract *c, const char *text, size_t len,
		   cat_product **out, bool *created, char *err);
/* catalog_import for products of another type than "source" (e.g. "powerbi_semantic_model"):
 * type is set on insert and on every re-import. catalog_import is type NULL: "source" on
 * insert, the stored type kept on update. */
int catalog_import_typed(pb_db *db, const char *org_id, const pb_contract *c, const char *text, size_t len,
			 const char *type, cat_product **out, bool *created, char *err);

/* Who imports through the API. */
typedef struct cat_actor {
	const char *user_id;   /* owns a product it creates */
	bool org_owner;        /* may update any product of the organization */
} cat_actor;

/* catalog_import on behalf of `by`. When the contract id names a product that by may not
 * update, nothing is written: PB_EFORBIDDEN ("forbidden") with a message naming it; a contract
 * that cannot be imported is PB_EINVAL / PB_ELIMIT naming the field. */
int catalog_import_by(pb_db *db, const char *org_id, const cat_actor *by, const pb_contract *c, const char *text,
		      size_t len, cat_product **out, bool *created, pb_failure *f);

/* Product id of org_id with its ports, in one statement (one round trip on PostgreSQL, one
 * snapshot without a transaction). PB_ENOTFOUND "no data product with id '<id>'". */
int catalog_product_get(pb_db *db, const char *org_id, const char *id, bool with_contract,
			cat_product **out, char *err);
/* catalog_product_get(db, org_id, id) will be read in this read transaction: db_prefetch. */
void catalog_product_prefetch(pb_db *db, const char *org_id, const char *id);
/* At most PB_LIST_MAX_ITEMS products, ordered by name. *out is new (array). */
int catalog_product_list(pb_db *db, const char *org_id, cat_product **out, size_t *n, char *err);
int catalog_port_get(pb_db *db, const char *org_id, const char *id, bool with_contract,
		     cat_port **out, char *err);

/* The message for a use of retired port p that is refused (409 port_retired), written into
 * err (PB_ERR_MAX bytes), which it returns. */
const char *catalog_port_retired_message(const cat_port *p, char *err);

/* Deletes a product and its ports; PB_ENOTFOUND when org_id has no such product. */
int catalog_product_delete(pb_db *db, const char *org_id, const char *id, char *err);

/* Free a port or product returned by the functions above: its strings and the struct. */
void catalog_port_free(cat_port *p);
void catalog_product_free(cat_product *p);
void catalog_products_free(cat_product *v, size_t n);

/* API shapes:
 *   product: {"id","name","type","version","contract_id","revision","owner_user_id"|null,
 *             "created_at","updated_at","output_ports":[port brief]}
 *            + "contract" (text) when with_contract and the text was loaded
 *   port brief: {"id","name","type","server":{...},"status":"active"|"retired","retired_at"|null}
 *   port: port brief + {"data_product_id","contract_id"}
 * The _out functions append the shape as compact JSON text (json_out's spelling) to out and
 * return 0, or -1 when out would pass its ceiling, on no memory, or for stored text that is not
 * UTF-8. catalog_product_out_open leaves the object open after its members (the caller adds
 * its own and the closing brace). The _json functions give the same shape as a new value
 * (read back from that text), or NULL. */
int catalog_product_out(sbuf *out, const cat_product *p, bool with_contract);
int catalog_product_out_open(sbuf *out, const cat_product *p, bool with_contract);
int catalog_port_out(sbuf *out, const cat_port *p);
struct json_t *catalog_product_json(const cat_product *p, bool with_contract);
struct json_t *catalog_port_json(const cat_port *p);

#endif
