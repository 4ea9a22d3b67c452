#include "core/assets.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/lineage_store.h"
#include "runtime/crypto.h"
#include "runtime/strbuf.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

static const char *const kinds[] = { "workspace", "semantic_model", "report", "dashboard", "datasource", NULL };

void assets_id_for(const char *org_id, const char *kind, const char *powerbi_id, char out[PB_ID_BUF])
{
	char hex[PB_SHA256_HEX_LEN + 1];
	sbuf b;
	sbuf_init(&b, 4096);
	if (sbuf_addf(&b, "%s\n%s\n%s", org_id, kind, powerbi_id)) {
		/* ids longer than the ceiling: hash the parts one after the other */
		sbuf_reset(&b);
		pb_sha256_hex(powerbi_id, strlen(powerbi_id), hex);
		sbuf_addf(&b, "%s\n%s\n%s", org_id, kind, hex);
	}
	pb_sha256_hex(sbuf_str(&b), b.len, hex);
	sbuf_release(&b);
	memcpy(out, hex, PB_ID_BUF - 1);
	out[PB_ID_BUF - 1] = '\0';
}

bool asset_kind_valid(const char *kind)
{
	for (size_t i = 0; kind && kinds[i]; i++)
		if (!strcmp(kind, kinds[i]))
			return true;
	return false;
}

static void asset_clear(pb_asset *a)
{
	free(a->integration_id);
	free(a->kind);
	free(a->powerbi_id);
	free(a->workspace_powerbi_id);
	free(a->name);
	free(a->details_json);
	free(a->state);
}

void asset_free(pb_asset *a)
{
	if (!a)
		return;
	asset_clear(a);
	free(a);
}

void assets_free(pb_asset *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		asset_clear(&v[i]);
	free(v);
}

#define ASSET_COLS "id, org_id, integration_id, kind, powerbi_id, workspace_powerbi_id, name, details_json, " \
		   "state, created_at, updated_at"

static int read_row(sqlite3_stmt *st, pb_asset *a, char *err)
{
	bool ok = true;
	memset(a, 0, sizeof *a);
	xsnprintf(a->id, sizeof a->id, "%s", db_col_text(st, 0));
	xsnprintf(a->org_id, sizeof a->org_id, "%s", db_col_text(st, 1));
	a->integration_id = db_col_dup(st, 2, &ok);
	a->kind = db_col_dup(st, 3, &ok);
	a->powerbi_id = db_col_dup(st, 4, &ok);
	a->workspace_powerbi_id = db_col_dup(st, 5, &ok);
	a->name = db_col_dup(st, 6, &ok);
	a->details_json = db_col_dup(st, 7, &ok);
	a->state = db_col_dup(st, 8, &ok);
	xsnprintf(a->created_at, sizeof a->created_at, "%s", db_col_text(st, 9));
	xsnprintf(a->updated_at, sizeof a->updated_at, "%s", db_col_text(st, 10));
	if (!ok) {
		asset_clear(a);
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	return 0;
}

static int get_one(pb_db *db, const char *sql, const char *a1, const char *a2, const char *a3, pb_asset **out,
		   char *err)
{
	sqlite3_stmt *st = NULL;
	pb_asset *a = NULL;
	int rc = db_prepare(db, sql, &st, err);
	*out = NULL;
	if (rc || (rc = db_bind_text(st, 1, a1, err)) || (rc = db_bind_text(st, 2, a2, err)) ||
	    (a3 && (rc = db_bind_text(st, 3, a3, err))))
		goto out;
	int r = db_row(db, st, err);
	if (r <= 0) {
		rc = r < 0 ? r : pb_err(err, PB_ENOTFOUND, "no asset %s", a3 ? a3 : a2);
		goto out;
	}
	if (!(a = calloc(1, sizeof *a))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = read_row(st, a, err))) {
		free(a);
		goto out;
	}
	*out = a;
out:
	db_done(st);
	return rc;
}

int assets_get(pb_db *db, const char *org_id, const char *id, pb_asset **out, char *err)
{
	return get_one(db, "SELECT " ASSET_COLS " FROM assets WHERE org_id = ? AND id = ?", org_id, id, NULL, out,
		       err);
}

int assets_get_by_powerbi_id(pb_db *db, const char *org_id, const char *kind, const char *powerbi_id,
			     pb_asset **out, char *err)
{
	return get_one(db, "SELECT " ASSET_COLS " FROM assets WHERE org_id = ? AND kind = ? AND powerbi_id = ?",
		       org_id, kind, powerbi_id, out, err);
}

int assets_list(pb_db *db, const char *org_id, const char *kind, const char *q, pb_asset **out, size_t *n,
		char *err)
{
	sqlite3_stmt *st = NULL;
	pb_asset *v = NULL;
	size_t len = 0;
	char *pattern = NULL;
	int rc;
	*out = NULL;
	*n = 0;
	if (q && *q) {
		/* LIKE is case-insensitive for ASCII on SQLite; %, _ and \ in q are escaped */
		sbuf b;
		sbuf_init(&b, 4 * strlen(q) + 8);
		int bad = sbuf_addc(&b, '%');
		for (const char *p = q; *p && !bad; p++)
			bad = (strchr("%_\\", *p) && sbuf_addc(&b, '\\')) || sbuf_addc(&b, *p);
		if (bad || sbuf_addc(&b, '%') || !(pattern = sbuf_detach(&b, NULL))) {
			sbuf_release(&b);
			return pb_err(err, PB_ENOMEM, "out of memory");
		}
	}
	rc = db_prepare(db, "SELECT " ASSET_COLS " FROM assets WHERE org_id = ? AND state = 'active' "
			"AND (? IS NULL OR kind = ?) AND (? IS NULL OR name LIKE ? ESCAPE '\\') "
			"ORDER BY kind, name, id LIMIT ?", &st, err);
	if (rc || (rc = db_bind_text(st, 1, org_id, err)) || (rc = db_bind_text(st, 2, kind, err)) ||
	    (rc = db_bind_text(st, 3, kind, err)) || (rc = db_bind_text(st, 4, pattern, err)) ||
	    (rc = db_bind_text(st, 5, pattern, err)))
		goto out;
	sqlite3_bind_int(st, 6, PB_LIST_MAX_ITEMS);
	if (!(v = calloc(PB_LIST_MAX_ITEMS, sizeof *v))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	int r;
	while (len < PB_LIST_MAX_ITEMS && (r = db_row(db, st, err)) == 1) {
		if ((rc = read_row(st, &v[len], err)))
			goto out;
		len++;
	}
	if (len < PB_LIST_MAX_ITEMS && r < 0)
		rc = r;
out:
	db_done(st);
	free(pattern);
	if (rc) {
		assets_free(v, len);
		return rc;
	}
	*out = v;
	*n = len;
	return 0;
}

int assets_workspace_names(pb_db *db, const char *integration_id, char ***ids, char ***names, size_t *n,
			   char *err)
{
	sqlite3_stmt *st = NULL;
	char **vi = NULL, **vn = NULL;
	size_t len = 0, cap = 0;
	int rc = db_prepare(db, "SELECT powerbi_id, name FROM assets WHERE integration_id = ? AND kind = 'workspace' "
			    "AND state = 'active'", &st, err);
	*ids = *names = NULL;
	*n = 0;
	if (rc || (rc = db_bind_text(st, 1, integration_id, err)))
		goto out;
	int r;
	while ((r = db_row(db, st, err)) == 1) {
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 64;
			char **a = realloc(vi, nc * sizeof *a);
			if (a)
				vi = a;
			char **b = a ? realloc(vn, nc * sizeof *b) : NULL;
			if (b)
				vn = b;
			if (!a || !b) {
				rc = pb_err(err, PB_ENOMEM, "out of memory");
				goto out;
			}
			cap = nc;
		}
		vi[len] = xstrdup(db_col_text(st, 0));
		vn[len] = xstrdup(db_col_text(st, 1));
		len++;
		if (!vi[len - 1] || !vn[len - 1]) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
	}
	rc = r < 0 ? r : 0;
out:
	db_done(st);
	if (rc) {
		for (size_t i = 0; i < len; i++) {
			free(vi[i]);
			free(vn[i]);
		}
		free(vi);
		free(vn);
		return rc;
	}
	*ids = vi;
	*names = vn;
	*n = len;
	return 0;
}

json_t *asset_json(const pb_asset *a, bool with_details)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:s?, s:s, s:s}", "id", a->id, "kind", a->kind,
			      "powerbi_id", a->powerbi_id, "workspace_powerbi_id", a->workspace_powerbi_id, "name",
			      a->name, "state", a->state, "integration_id", a->integration_id, "created_at",
			      a->created_at, "updated_at", a->updated_at);
	if (o && with_details) {
		json_t *d = json_loads(a->details_json ? a->details_json : "{}", 0, NULL);
		if (!d || json_object_set_new(o, "details", d)) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

int assets_stage(pb_db *db, const char *org_id, const char *run_id, const char *kind, const char *powerbi_id,
		 const char *workspace_powerbi_id, const char *name, const char *details_json, char *err)
{
	sqlite3_stmt *st = NULL;
	char id[PB_ID_BUF];
	assets_id_for(org_id, kind, powerbi_id, id);
	/* appended (sql/0009); only a data source can come again in the same run */
	int rc = db_prepare(db, "INSERT INTO asset_staging (run_id, kind, powerbi_id, workspace_powerbi_id, name, "
			    "details_json, asset_id) VALUES (?, ?, ?, ?, ?, ?, ?) "
			    "ON CONFLICT (run_id, powerbi_id) WHERE kind = 'datasource' "
			    "DO UPDATE SET workspace_powerbi_id = excluded.workspace_powerbi_id, name = excluded.name, "
			    "details_json = excluded.details_json", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, run_id, err)) && !(rc = db_bind_text(st, 2, kind, err)) &&
	    !(rc = db_bind_text(st, 3, powerbi_id, err)) && !(rc = db_bind_text(st, 4, workspace_powerbi_id, err)) &&
	    !(rc = db_bind_text(st, 5, name ? name : "", err)) &&
	    !(rc = db_bind_text(st, 6, details_json ? details_json : "{}", err)) && !(rc = db_bind_text(st, 7, id, err)))
		rc = db_exec(db, st, err);
	db_done(st);
	return rc;
}

int assets_stage_edge(pb_db *db, const char *run_id, const char *from_kind, const char *from_id,
		      const char *to_kind, const char *to_id, char *err)
{
	sqlite3_stmt *st = NULL;
	/* appended (sql/0008): a duplicate is dropped when the run is applied */
	int rc = db_prepare(db, "INSERT INTO lineage_staging (run_id, from_kind, from_id, to_kind, to_id) "
			    "VALUES (?, ?, ?, ?, ?)", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, run_id, err)) && !(rc = db_bind_text(st, 2, from_kind, err)) &&
	    !(rc = db_bind_text(st, 3, from_id, err)) && !(rc = db_bind_text(st, 4, to_kind, err)) &&
	    !(rc = db_bind_text(st, 5, to_id, err)))
		rc = db_exec(db, st, err);
	db_done(st);
	return rc;
}

int assets_unstage(pb_db *db, const char *run_id, char *err)
{
	sqlite3_stmt *st = NULL;
	int rc = db_prepare(db, "DELETE FROM asset_staging WHERE run_id = ?", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, run_id, err)))
		rc = db_exec(db, st, err);
	db_done(st);
	st = NULL;
	if (!rc && !(rc = db_prepare(db, "DELETE FROM lineage_staging WHERE run_id = ?", &st, err)) &&
	    !(rc = db_bind_text(st, 1, run_id, err)))
		rc = db_exec(db, st, err);
	db_done(st);
	return rc;
}

/* One COUNT(*) over staged rows, bound (run_id, org_id). */
static int count_staged(pb_db *db, const char *sql, const char *run_id, const char *org_id, long *out, char *err)
{
	sqlite3_stmt *st = NULL;
	int rc = db_prepare(db, sql, &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, run_id, err)) && !(rc = db_bind_text(st, 2, org_id, err))) {
		int r = db_row(db, st, err);
		if (r < 0)
			rc = r;
		else
			*out = r ? (long)sqlite3_column_int64(st, 0) : 0;
	}
	db_done(st);
	return rc;
}

/* One set-based statement: the staged rows carry their asset ids already. Unchanged rows are
 * left alone (the DO UPDATE's WHERE), so updated_at moves only when something changed. The
 * SELECT needs its WHERE for SQLite to read ON CONFLICT as the upsert clause. */
static int upsert_staged(pb_db *db, const char *org_id, const char *integration_id, const char *run_id,
			 const char *now, char *err)
{
	sqlite3_stmt *st = NULL;
	int rc = db_prepare(db, "INSERT INTO assets (id, org_id, integration_id, kind, powerbi_id, workspace_powerbi_id, "
			    "name, details_json, state, created_at, updated_at) "
			    "SELECT s.asset_id, ?, ?, s.kind, s.powerbi_id, s.workspace_powerbi_id, s.name, s.details_json, "
			    "'active', ?, ? FROM asset_staging s WHERE s.run_id = ? AND s.kind <> '_scope' "
			    "ON CONFLICT (org_id, kind, powerbi_id) DO UPDATE SET "
			    "integration_id = excluded.integration_id, "
			    "workspace_powerbi_id = excluded.workspace_powerbi_id, name = excluded.name, "
			    "details_json = excluded.details_json, state = 'active', updated_at = excluded.updated_at "
			    "WHERE assets.details_json <> excluded.details_json OR assets.name <> excluded.name "
			    "OR assets.state <> 'active' OR assets.integration_id IS NULL "
			    "OR assets.integration_id <> excluded.integration_id "
			    "OR COALESCE(assets.workspace_powerbi_id, '') <> COALESCE(excluded.workspace_powerbi_id, '')",
			    &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, org_id, err)) && !(rc = db_bind_text(st, 2, integration_id, err)) &&
	    !(rc = db_bind_text(st, 3, now, err)) && !(rc = db_bind_text(st, 4, now, err)) &&
	    !(rc = db_bind_text(st, 5, run_id, err)))
		rc = db_exec(db, st, err);
	db_done(st);
	return rc;
}

static int active_counts(pb_db *db, const char *integration_id, assets_counts *c, char *err)
{
	sqlite3_stmt *st = NULL;
	int r, rc = db_prepare(db, "SELECT kind, COUNT(*) FROM assets WHERE integration_id = ? AND state = 'active' "
			       "GROUP BY kind", &st, err);
	if (rc || (rc = db_bind_text(st, 1, integration_id, err)))
		goto out;
	while ((r = db_row(db, st, err)) == 1) {
		const char *k = db_col_text(st, 0);
		long v = (long)sqlite3_column_int64(st, 1);
		if (!strcmp(k, "workspace"))
			c->workspaces = v;
		else if (!strcmp(k, "semantic_model"))
			c->semantic_models = v;
		else if (!strcmp(k, "report"))
			c->reports = v;
		else if (!strcmp(k, "dashboard"))
			c->dashboards = v;
		else if (!strcmp(k, "datasource"))
			c->datasources = v;
	}
	rc = r < 0 ? r : 0;
out:
	db_done(st);
	return rc;
}

int assets_apply_run(pb_db *db, const char *org_id, const char *integration_id, const char *run_id, bool full,
		     assets_counts *counts, char *err)
{
	sqlite3_stmt *st = NULL;
	char now[PB_TIME_BUF];
	int rc;
	memset(counts, 0, sizeof *counts);
	pb_now(now);
	if ((rc = db_begin(db, err)))
		return rc;
	/* DISTINCT: a row staged twice (never expected, see sql/0009) counts once */
	if ((rc = count_staged(db, "SELECT COUNT(DISTINCT s.asset_id) FROM asset_staging s WHERE s.run_id = ? "
			       "AND s.kind <> '_scope' AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.org_id = ? "
			       "AND a.kind = s.kind AND a.powerbi_id = s.powerbi_id)", run_id, org_id, &counts->added, err)) ||
	    (rc = count_staged(db, "SELECT COUNT(DISTINCT s.asset_id) FROM asset_staging s JOIN assets a "
			       "ON a.kind = s.kind AND a.powerbi_id = s.powerbi_id WHERE s.run_id = ? AND a.org_id = ? "
			       "AND (a.details_json <> s.details_json OR a.name <> s.name OR a.state <> 'active')",
			       run_id, org_id, &counts->changed, err)))
		goto out;
	/* Removal first (it only looks at rows not staged), then the upsert. The staged ids are a
	 * NOT IN list (built once, sorted in temporary storage) rather than a lookup per asset:
	 * the staging table has no key on them (sql/0009). asset_id is never NULL. */
	if ((rc = db_prepare(db, "UPDATE assets SET state = 'removed', updated_at = ? WHERE org_id = ? "
			     "AND integration_id = ? AND state = 'active' AND (? = 'full' OR workspace_powerbi_id IN "
			     "(SELECT powerbi_id FROM asset_staging WHERE run_id = ? AND kind = '_scope')) "
			     "AND id NOT IN (SELECT asset_id FROM asset_staging WHERE run_id = ?)", &st, err)) ||
	    (rc = db_bind_text(st, 1, now, err)) || (rc = db_bind_text(st, 2, org_id, err)) ||
	    (rc = db_bind_text(st, 3, integration_id, err)) ||
	    (rc = db_bind_text(st, 4, full ? "full" : "scoped", err)) || (rc = db_bind_text(st, 5, run_id, err)) ||
	    (rc = db_bind_text(st, 6, run_id, err)) || (rc = db_exec(db, st, err)))
		goto out;
	counts->removed = sqlite3_changes(db_sqlite(db));
	db_done(st);
	st = NULL;
	if ((rc = upsert_staged(db, org_id, integration_id, run_id, now, err)) ||
	    (rc = lineage_edges_add_staged(db, org_id, run_id, err)) || (rc = active_counts(db, integration_id, counts, err)))
		goto out;
	rc = db_commit(db, err);
out:
	db_done(st);
	if (rc)
		db_rollback(db);
	return rc;
}
