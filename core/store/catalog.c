#include "core/store/catalog.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/agreements.h"
#include "core/store/published_models.h"
#include "runtime/json_out.h"
#include "runtime/util.h"

#define PRODUCT_TYPE_SOURCE "source"   /* imported from a contract (publish makes "consumer") */

/* The texts every read of a port takes, with their column in read_port's query: read_port reads
 * them, port_clear frees them (and port_contract_texts, which only catalog_port_get reads). */
static const db_text_field port_texts[] = {
	DB_TEXT_FIELD(cat_port, name, 2),        DB_TEXT_FIELD(cat_port, type, 3),
	DB_TEXT_FIELD(cat_port, server_json, 4), DB_TEXT_FIELD(cat_port, contract_id, 5),
	DB_TEXT_FIELD(cat_port, retired_at, 6),
};

/* catalog_port_get(with_contract)'s texts of the port's data product, with their column. */
static const db_text_field port_contract_texts[] = {
	DB_TEXT_FIELD(cat_port, contract_text, 7),
	DB_TEXT_FIELD(cat_port, product_name, 8),
	DB_TEXT_FIELD(cat_port, product_version, 9),
};

static void port_clear(cat_port *p)
{
	db_texts_free(p, port_texts, DB_NFIELDS(port_texts));
	db_texts_free(p, port_contract_texts, DB_NFIELDS(port_contract_texts));
	memset(p, 0, sizeof *p);
}

void catalog_port_free(cat_port *p)
{
	if (!p)
		return;
	port_clear(p);
	free(p);
}

/* The texts every read of a product takes, with their column in read_product's queries:
 * read_product reads them, product_clear frees them (and contract_text, read only on request). */
static const db_text_field product_texts[] = {
	DB_TEXT_FIELD(cat_product, contract_id, 1), DB_TEXT_FIELD(cat_product, name, 2),
	DB_TEXT_FIELD(cat_product, type, 3),        DB_TEXT_FIELD(cat_product, version, 4),
	DB_TEXT_FIELD(cat_product, created_at, 6),  DB_TEXT_FIELD(cat_product, updated_at, 7),
};

static void product_clear(cat_product *p)
{
	db_texts_free(p, product_texts, DB_NFIELDS(product_texts));
	free(p->contract_text);
	for (size_t i = 0; i < p->nports; i++)
		port_clear(&p->ports[i]);
	free(p->ports);
	memset(p, 0, sizeof *p);
}

void catalog_product_free(cat_product *p)
{
	if (!p)
		return;
	product_clear(p);
	free(p);
}

void catalog_products_free(cat_product *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		product_clear(&v[i]);
	free(v);
}

/* The port's server as the API shows it: the ODCS v3 server entry's own shape. */
static char *server_json_text(const pb_server *s)
{
	json_t *o = json_object();
	char *text = NULL;
	if (!o)
		return NULL;
	if (json_object_set_new(o, "server", json_string(s->name ? s->name : "")) ||
	    json_object_set_new(o, "type", json_string(s->type ? s->type : "")))
		goto out;
	for (size_t i = 0; i < s->nfields; i++)
		if (strcmp(s->fields[i].key, "server") && strcmp(s->fields[i].key, "type") &&
		    json_object_set_new(o, s->fields[i].key, json_string(s->fields[i].value)))
			goto out;
	if (s->ncustom) {
		json_t *custom = json_object();
		if (json_object_set_new(o, "customProperties", custom))
			goto out;
		for (size_t i = 0; i < s->ncustom; i++)
			if (json_object_set_new(custom, s->custom[i].key, json_string(s->custom[i].value)))
				goto out;
	}
	text = json_dumps(o, JSON_COMPACT);
out:
	json_decref(o);
	return text;
}

/* ---- reads ---- */

/* Columns: id, data_product_id, name, type, server_json, contract_id, retired_at */
static int read_port(db_stmt *st, cat_port *p, char *err)
{
	memset(p, 0, sizeof *p);
	xsnprintf(p->id, sizeof p->id, "%s", db_col_text(st, 0));
	xsnprintf(p->data_product_id, sizeof p->data_product_id, "%s", db_col_text(st, 1));
	return db_col_texts(st, p, port_texts, DB_NFIELDS(port_texts), err);
}

/* The rest of st's rows (read_port's columns) as p's ports. */
static int add_ports(pb_db *db, db_stmt *st, cat_product *p, char *err)
{
	int r;
	while ((r = db_row(db, st, err)) == 1) {
		cat_port *v = realloc(p->ports, (p->nports + 1) * sizeof *v);
		if (!v)
			return pb_err(err, PB_ENOMEM, "out of memory");
		p->ports = v;
		int rc = read_port(st, &p->ports[p->nports], err);
		if (rc)
			return rc;
		p->nports++;
	}
	return r < 0 ? r : PB_OK;
}

static int load_ports(pb_db *db, cat_product *p, char *err)
{
	db_stmt *st;
	const char *which[] = { p->id };
	int rc = db_prepare_texts(db, "SELECT p.id, p.data_product_id, p.name, p.type, p.server_json, d.contract_id, "
				  "p.retired_at FROM output_ports p JOIN data_products d ON d.id = p.data_product_id "
				  "WHERE p.data_product_id = ? ORDER BY p.name", which, 1, &st, err);
	if (!rc)
		rc = add_ports(db, st, p, err);
	db_done(st);
	return rc;
}

/* Columns: id, contract_id, name, type, version, revision, created_at, updated_at, owner_user_id
 * [, contract_text] */
static int read_product(db_stmt *st, bool with_contract, cat_product *p, char *err)
{
	memset(p, 0, sizeof *p);
	xsnprintf(p->id, sizeof p->id, "%s", db_col_text(st, 0));
	p->revision = db_col_int(st, 5);
	xsnprintf(p->owner_user_id, sizeof p->owner_user_id, "%s", db_col_text(st, 8));
	int rc = db_col_texts(st, p, product_texts, DB_NFIELDS(product_texts), err);
	if (!rc && with_contract) {
		bool ok = true;
		p->contract_text = db_col_dup(st, 9, &ok);
		if (!ok) {
			product_clear(p);
			rc = pb_err(err, PB_ENOMEM, "out of memory");
		}
	}
	return rc;
}

/* Runs query sql for (org_id, id) and steps st to its row; PB_ENOTFOUND "no <what> with id '<id>'"
 * when there is none. *st is to be db_done whatever this returns. */
static int get_row(pb_db *db, const char *sql, const char *org_id, const char *id, const char *what, db_stmt **st,
		   char *err)
{
	const char *which[] = { org_id, id };
	char missing[PB_ERR_MAX];
	xsnprintf(missing, sizeof missing, "no %s with id '%.64s'", what, id);
	return db_first_row(db, sql, which, 2, missing, st, err);
}

/* The product (its row first: kind 0) and its ports (kind 1, by name) in one statement, whose
 * rows read_product and read_port read: every read of a product pays one round trip, not one
 * per table (on PostgreSQL one statement is also one snapshot). The revision is text in the
 * product row because the port rows have text there (the types of a UNION's columns agree). */
#define PRODUCT_COL_CONSUMES 10
static const char product_with_ports_sql[] =
	"SELECT d.id, d.contract_id, d.name, d.type, d.version, CAST(d.revision AS TEXT), d.created_at, d.updated_at, "
	"d.owner_user_id, d.contract_text, " AGREEMENTS_CONSUMER_ANY_SQL("d") ", 0 AS kind "
	"FROM data_products d WHERE d.org_id = ?1 AND d.id = ?2 "
	"UNION ALL SELECT p.id, p.data_product_id, p.name, p.type, p.server_json, d.contract_id, p.retired_at, NULL, "
	"NULL, NULL, 0, 1 FROM output_ports p JOIN data_products d ON d.id = p.data_product_id "
	"WHERE d.org_id = ?1 AND p.data_product_id = ?2 ORDER BY kind, name";

int catalog_product_get(pb_db *db, const char *org_id, const char *id, bool with_contract,
			cat_product **out, char *err)
{
	db_stmt *st = NULL;
	cat_product *p = calloc(1, sizeof *p);
	int rc;
	*out = NULL;
	if (!p)
		return pb_err(err, PB_ENOMEM, "out of memory");
	if ((rc = get_row(db, product_with_ports_sql, org_id, id, "data product", &st, err)) ||
	    (rc = read_product(st, with_contract, p, err)))
		goto out;
	p->consumes = db_col_int(st, PRODUCT_COL_CONSUMES) != 0;
	rc = add_ports(db, st, p, err);
out:
	db_done(st);
	if (rc)
		catalog_product_free(p);
	else
		*out = p;
	return rc;
}

void catalog_product_prefetch(pb_db *db, const char *org_id, const char *id)
{
	const char *which[] = { org_id, id };
	db_prefetch(db, product_with_ports_sql, which, 2, NULL);   /* a hint: its failure is the read's */
}

int catalog_product_list(pb_db *db, const char *org_id, cat_product **out, size_t *n, char *err)
{
	db_stmt *st;
	cat_product *v = NULL;
	size_t count = 0;
	int r, rc;
	*out = NULL;
	*n = 0;
	rc = db_prepare_list(db, "SELECT id, contract_id, name, type, version, revision, created_at, updated_at, "
			     "owner_user_id FROM data_products WHERE org_id = ? ORDER BY name, id LIMIT ?", &org_id, 1,
			     PB_LIST_MAX_ITEMS, &st, err);
	if (rc)
		goto out;
	while ((r = db_row(db, st, err)) == 1) {
		cat_product *nv = realloc(v, (count + 1) * sizeof *nv);
		if (!nv) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		v = nv;
		if ((rc = read_product(st, false, &v[count], err)))
			goto out;
		count++;
	}
	if (r < 0) {
		rc = r;
		goto out;
	}
	db_done(st);
	st = NULL;
	for (size_t i = 0; i < count; i++)
		if ((rc = load_ports(db, &v[i], err)))
			goto out;
out:
	db_done(st);
	if (rc) {
		catalog_products_free(v, count);
		return rc;
	}
	*out = v;
	*n = count;
	return PB_OK;
}

int catalog_port_get(pb_db *db, const char *org_id, const char *id, bool with_contract,
		     cat_port **out, char *err)
{
	db_stmt *st = NULL;
	cat_port *p = calloc(1, sizeof *p);
	int rc;
	*out = NULL;
	if (!p)
		return pb_err(err, PB_ENOMEM, "out of memory");
	if ((rc = get_row(db, "SELECT p.id, p.data_product_id, p.name, p.type, p.server_json, d.contract_id, "
			  "p.retired_at, d.contract_text, d.name, d.version, d.revision FROM output_ports p "
			  "JOIN data_products d ON d.id = p.data_product_id WHERE p.org_id = ? AND p.id = ?",
			  org_id, id, "output port", &st, err)) ||
	    (rc = read_port(st, p, err)))
		goto out;
	if (with_contract) {
		rc = db_col_texts(st, p, port_contract_texts, DB_NFIELDS(port_contract_texts), err);
		p->product_revision = db_col_int(st, 10);
	}
out:
	db_done(st);
	if (rc) {
		catalog_port_free(p);
	} else {
		*out = p;
	}
	return rc;
}

const char *catalog_port_retired_message(const cat_port *p, char *err)
{
	pb_err(err, PB_EINVAL, "output port %s ('%.128s') is retired: its server left the data product's contract "
	       "on %s, and it is kept only for the models and agreements that use it; publish from a port in service",
	       p->id, p->name ? p->name : "", p->retired_at ? p->retired_at : "?");
	return err;
}

/* ---- import ---- */

struct port_plan {
	const char *name;
	const char *type;
	char *server_json;
};

static int plan_ports(const pb_contract *c, struct port_plan **out, char *err)
{
	struct port_plan *plan = calloc(c->nservers ? c->nservers : 1, sizeof *plan);
	*out = NULL;
	if (!plan)
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->nservers; i++) {
		const pb_server *s = &c->servers[i];
		if (!s->name || !*s->name || !s->type || !*s->type) {
			for (size_t k = 0; k < i; k++)
				free(plan[k].server_json);
			free(plan);
			return pb_err(err, PB_EINVAL, "servers[%zu]: %s is required", i,
				      !s->name || !*s->name ? "server" : "type");
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(plan[j].name, s->name)) {
				for (size_t k = 0; k < i; k++)
					free(plan[k].server_json);
				free(plan);
				return pb_err(err, PB_EINVAL, "servers[%zu].server: '%.128s' is used twice", i, s->name);
			}
		}
		plan[i].name = s->name;
		plan[i].type = s->type;
		if (!(plan[i].server_json = server_json_text(s))) {
			for (size_t k = 0; k < i; k++)
				free(plan[k].server_json);
			free(plan);
			return pb_err(err, PB_ENOMEM, "out of memory");
		}
	}
	*out = plan;
	return PB_OK;
}

static void free_plan(struct port_plan *plan, size_t n)
{
	for (size_t i = 0; plan && i < n; i++)
		free(plan[i].server_json);
	free(plan);
}

/* upsert_product's one attempt: *raced set when the INSERT of a new product wrote nothing. */
static int upsert_product_once(pb_db *db, const char *org_id, const cat_actor *by, const pb_contract *c,
			       const char *text, size_t len, const char *type, const char *now, char id[PB_ID_BUF],
			       bool *created, bool *raced, char *err)
{
	db_stmt *st;
	const char *which[] = { org_id, c->id };
	*raced = false;
	int rc = db_prepare_texts(db, "SELECT id, owner_user_id FROM data_products WHERE org_id = ? AND contract_id = ?",
				  which, 2, &st, err);
	if (rc)
		goto out;
	int r = db_row(db, st, err);
	if (r < 0) {
		rc = r;
		goto out;
	}
	*created = r == 0;
	if (r == 1 && by && !by->org_owner && (!by->user_id || strcmp(db_col_text(st, 1), by->user_id))) {
		rc = pb_err(err, PB_EFORBIDDEN, "data product %s (contract id '%.128s') exists and is not yours: only its "
			    "owner or an organization owner may update it", db_col_text(st, 0), c->id);
		goto out;
	}
	if (r == 1)
		xsnprintf(id, PB_ID_BUF, "%s", db_col_text(st, 0));
	else if ((rc = pb_new_id(id, err)))
		goto out;
	db_done(st);
	if (*created)
		rc = db_prepare(db, "INSERT INTO data_products (name, version, status, domain, description, "
				"contract_text, updated_at, id, org_id, contract_id, type, revision, created_at, "
				"owner_user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?) "
				"ON CONFLICT (org_id, contract_id) DO NOTHING", &st, err);
	else
		rc = db_prepare(db, "UPDATE data_products SET name = ?1, version = ?2, status = ?3, domain = ?4, "
				"description = ?5, contract_text = ?6, updated_at = ?7, type = COALESCE(?9, type), "
				"revision = revision + 1 WHERE id = ?8", &st, err);
	if (rc || (rc = db_bind_text(st, 1, c->name ? c->name : c->id, err)) ||
	    (rc = db_bind_text(st, 2, c->version, err)) || (rc = db_bind_text(st, 3, c->status, err)) ||
	    (rc = db_bind_text(st, 4, c->domain, err)) || (rc = db_bind_text(st, 5, c->description, err)))
		goto out;
	if ((rc = db_bind_textn(st, 6, text, len, err)))
		goto out;
	if ((rc = db_bind_text(st, 7, now, err)) || (rc = db_bind_text(st, 8, id, err)))
		goto out;
	if (*created && ((rc = db_bind_text(st, 9, org_id, err)) || (rc = db_bind_text(st, 10, c->id, err)) ||
			 (rc = db_bind_text(st, 11, type ? type : PRODUCT_TYPE_SOURCE, err)) ||
			 (rc = db_bind_text(st, 12, now, err)) ||
			 (rc = db_bind_text(st, 13, by ? by->user_id : NULL, err))))
		goto out;
	if (!*created && (rc = db_bind_text(st, 9, type, err)))
		goto out;
	rc = db_exec(db, st, err);
	if (!rc && *created && db_changes(db) == 0)
		*raced = true;
out:
	db_done(st);
	return rc;
}

/* type NULL: "source" for a new product, the stored type kept on update. by (may be NULL: no
 * check) must own the product or the organization to update it: else PB_EFORBIDDEN.
 * On PostgreSQL two imports of one new contract id may both find no product (each transaction
 * sees only what was committed when its statement began): the second one's INSERT then writes
 * nothing (ON CONFLICT DO NOTHING, which waits for the first to commit) and it looks again,
 * finding the product to update, as SQLite's one writer at a time would have. */
static int upsert_product(pb_db *db, const char *org_id, const cat_actor *by, const pb_contract *c, const char *text,
			  size_t len, const char *type, const char *now, char id[PB_ID_BUF], bool *created, char *err)
{
	bool raced = false;
	int rc = upsert_product_once(db, org_id, by, c, text, len, type, now, id, created, &raced, err);
	if (!rc && raced)   /* the product exists now: this import updates it */
		rc = upsert_product_once(db, org_id, by, c, text, len, type, now, id, created, &raced, err);
	if (!rc && raced)
		rc = pb_err(err, PB_EUNAVAIL, "data product with contract id '%.128s' was created and removed meanwhile: "
			    "send it again", c->id);
	return rc;
}

/* Whether consumers depend on port id: an agreement or a published model names it. */
static int port_in_use(pb_db *db, const char *id, bool *in_use, char *err)
{
	int rc = agreements_port_in_use(db, id, in_use, err);
	if (!rc && !*in_use)
		rc = published_models_port_in_use(db, id, in_use, err);
	return rc;
}

/* Ports of product id become exactly plan: matched by name (and back in service if they
 * were retired), added, or removed; a removed port consumers depend on is retired instead
 * (and removed by a later import once nothing depends on it any more). */
static int sync_ports(pb_db *db, const char *org_id, const char *product_id, const struct port_plan *plan,
		      size_t n, const char *now, char *err)
{
	db_stmt *st = NULL;
	char (*stale)[PB_ID_BUF] = NULL;
	size_t nstale = 0;
	int r, rc = db_prepare(db, "SELECT id, name FROM output_ports WHERE data_product_id = ?",
			       &st, err);
	if (rc || (rc = db_bind_text(st, 1, product_id, err)))
		goto out;
	while ((r = db_row(db, st, err)) == 1) {
		bool keep = false;
		for (size_t i = 0; i < n && !keep; i++)
			keep = !strcmp(plan[i].name, db_col_text(st, 1));
		if (keep)
			continue;
		void *v = realloc(stale, (nstale + 1) * sizeof *stale);
		if (!v) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		stale = v;
		xsnprintf(stale[nstale++], PB_ID_BUF, "%s", db_col_text(st, 0));
	}
	if (r < 0) {
		rc = r;
		goto out;
	}
	db_done(st);
	st = NULL;
	for (size_t i = 0; i < nstale; i++) {
		bool in_use = false;
		if ((rc = port_in_use(db, stale[i], &in_use, err)))
			goto out;
		const char *v[] = { now, stale[i] };
		if (in_use)
			rc = db_exec_texts(db, "UPDATE output_ports SET retired_at = ?1, updated_at = ?1 "
					   "WHERE id = ?2 AND retired_at IS NULL", v, 2, err);
		else
			rc = db_exec_texts(db, "DELETE FROM output_ports WHERE id = ?", v + 1, 1, err);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char id[PB_ID_BUF];
		if ((rc = pb_new_id(id, err)))
			goto out;
		const char *v[] = { id, product_id, org_id, plan[i].name, plan[i].type, plan[i].server_json, now, now };
		if ((rc = db_exec_texts(db,
					"INSERT INTO output_ports (id, data_product_id, org_id, name, type, server_json, "
					"created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
					"ON CONFLICT (data_product_id, name) DO UPDATE SET type = excluded.type, "
					"server_json = excluded.server_json, updated_at = excluded.updated_at, "
					"retired_at = NULL",
					v, 8, err)))
			goto out;
	}
out:
	db_done(st);
	free(stale);
	return rc;
}

static int import(pb_db *db, const char *org_id, const cat_actor *by, const pb_contract *c, const char *text,
		  size_t len, const char *type, cat_product **out, bool *created, char *err)
{
	struct port_plan *plan = NULL;
	char id[PB_ID_BUF], now[PB_TIME_BUF];
	int rc;
	*out = NULL;
	/* everything that can be refused is refused before the transaction starts */
	if (!c->id || !*c->id)
		return pb_err(err, PB_EINVAL, "id: the contract has no id");
	if (strlen(c->id) > PB_NAME_MAX_BYTES)
		return pb_err(err, PB_EINVAL, "id: longer than %d bytes", PB_NAME_MAX_BYTES);
	if (len > INT32_MAX)
		return pb_err(err, PB_ELIMIT, "contract is too large");
	if (type && (!*type || strlen(type) > PB_NAME_MAX_BYTES))
		return pb_err(err, PB_EINVAL, "type: 1 to %d bytes", PB_NAME_MAX_BYTES);
	if ((rc = plan_ports(c, &plan, err)))
		return rc;
	pb_now(now);
	if ((rc = db_begin(db, err)))
		goto out;
	if (!(rc = upsert_product(db, org_id, by, c, text, len, type, now, id, created, err)))
		rc = sync_ports(db, org_id, id, plan, c->nservers, now, err);
	if (!(rc = db_end(db, rc, err)))
		rc = catalog_product_get(db, org_id, id, false, out, err);
out:
	free_plan(plan, c->nservers);
	return rc;
}

int catalog_import(pb_db *db, const char *org_id, const pb_contract *c, const char *text, size_t len,
		   cat_product **out, bool *created, char *err)
{
	return import(db, org_id, NULL, c, text, len, NULL, out, created, err);
}

int catalog_import_typed(pb_db *db, const char *org_id, const pb_contract *c, const char *text, size_t len,
			 const char *type, cat_product **out, bool *created, char *err)
{
	return import(db, org_id, NULL, c, text, len, type, out, created, err);
}

int catalog_import_by(pb_db *db, const char *org_id, const cat_actor *by, const pb_contract *c, const char *text,
		      size_t len, cat_product **out, bool *created, pb_failure *f)
{
	int rc = import(db, org_id, by, c, text, len, NULL, out, created, f->message);
	return rc ? pb_fail_as(f, rc, NULL) : PB_OK;
}

int catalog_product_delete(pb_db *db, const char *org_id, const char *id, char *err)
{
	db_stmt *st = NULL;
	int rc = db_begin(db, err);
	if (rc)
		return rc;
	/* ports go with it (ON DELETE CASCADE) */
	const char *which[] = { org_id, id };
	if ((rc = db_prepare_texts(db, "DELETE FROM data_products WHERE org_id = ? AND id = ? RETURNING id", which, 2,
				   &st, err)))
		goto out;
	int r = db_row(db, st, err);
	if (r <= 0) {
		rc = r < 0 ? r : pb_err(err, PB_ENOTFOUND, "no data product with id '%.64s'", id);
		goto out;
	}
	/* finish the statement before COMMIT: RETURNING keeps it active */
	while ((r = db_row(db, st, err)) == 1)
		;
	rc = r < 0 ? r : PB_OK;
out:
	db_done(st);
	return db_end(db, rc, err);
}

/* ---- API shapes ----
 *
 * Written as text straight into the response (no JSON tree: this is every product read); the
 * json_t forms for pages and other callers are read back from the same text, so the shape is
 * defined once. */

/* prefix (a member name with its punctuation) and s as a JSON string, or null when s is NULL.
 * Text that is not UTF-8 fails, as json_pack would have. */
static int out_text(sbuf *o, const char *prefix, const char *s)
{
	if (sbuf_adds(o, prefix))
		return -1;
	if (!s)
		return sbuf_add(o, "null", 4);
	size_t n = strlen(s);
	return utf8_valid(s, n) ? json_out_string(o, s, n) : -1;
}

/* The stored server object (written by server_json_text) as it is; anything else in that
 * column goes through the reader, and text it does not read is {} as before. */
static int out_server(sbuf *o, const cat_port *p)
{
	const char *text = p->server_json ? p->server_json : "{}";
	int rc = json_out_as_is(o, text, strlen(text));
	if (rc != 1)
		return rc;
	json_t *v = json_loads(text, 0, NULL);
	rc = v ? json_out(o, v, JSON_COMPACT) : sbuf_add(o, "{}", 2);
	json_decref(v);
	return rc;
}

/* The port brief's members after its opening brace. */
static int out_port_brief(sbuf *o, const cat_port *p)
{
	return out_text(o, "{\"id\":", p->id) || out_text(o, ",\"name\":", p->name ? p->name : "") ||
	       out_text(o, ",\"type\":", p->type ? p->type : "") || sbuf_adds(o, ",\"server\":") || out_server(o, p) ||
	       out_text(o, ",\"status\":", p->retired_at ? "retired" : "active") ||
	       out_text(o, ",\"retired_at\":", p->retired_at);
}

int catalog_port_out(sbuf *out, const cat_port *p)
{
	return out_port_brief(out, p) || out_text(out, ",\"data_product_id\":", p->data_product_id) ||
	       out_text(out, ",\"contract_id\":", p->contract_id ? p->contract_id : "") || sbuf_addc(out, '}') ? -1 : 0;
}

int catalog_product_out_open(sbuf *out, const cat_product *p, bool with_contract)
{
	if (out_text(out, "{\"id\":", p->id) || out_text(out, ",\"name\":", p->name ? p->name : "") ||
	    out_text(out, ",\"type\":", p->type ? p->type : "") || out_text(out, ",\"version\":", p->version) ||
	    out_text(out, ",\"contract_id\":", p->contract_id ? p->contract_id : "") ||
	    sbuf_addf(out, ",\"revision\":%d", p->revision) ||
	    out_text(out, ",\"owner_user_id\":", p->owner_user_id[0] ? p->owner_user_id : NULL) ||
	    out_text(out, ",\"created_at\":", p->created_at ? p->created_at : "") ||
	    out_text(out, ",\"updated_at\":", p->updated_at ? p->updated_at : "") || sbuf_adds(out, ",\"output_ports\":["))
		return -1;
	for (size_t i = 0; i < p->nports; i++)
		if ((i && sbuf_addc(out, ',')) || out_port_brief(out, &p->ports[i]) || sbuf_addc(out, '}'))
			return -1;
	if (sbuf_addc(out, ']'))
		return -1;
	return with_contract && p->contract_text && out_text(out, ",\"contract\":", p->contract_text) ? -1 : 0;
}

int catalog_product_out(sbuf *out, const cat_product *p, bool with_contract)
{
	return catalog_product_out_open(out, p, with_contract) || sbuf_addc(out, '}') ? -1 : 0;
}

/* The value the text of a writer above reads back as (new), or NULL. */
static json_t *read_back(sbuf *text, int bad)
{
	json_t *v = bad ? NULL : json_loadb(sbuf_str(text), text->len, 0, NULL);
	sbuf_release(text);
	return v;
}

json_t *catalog_port_json(const cat_port *p)
{
	sbuf text;
	sbuf_init(&text, PB_RESPONSE_MAX_BYTES);
	return read_back(&text, catalog_port_out(&text, p));
}

json_t *catalog_product_json(const cat_product *p, bool with_contract)
{
	sbuf text;
	sbuf_init(&text, PB_RESPONSE_MAX_BYTES);
	return read_back(&text, catalog_product_out(&text, p, with_contract));
}
