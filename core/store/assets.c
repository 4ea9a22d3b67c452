#include "core/store/assets.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/lineage_store.h"
#include "runtime/crypto.h"
#include "runtime/json_out.h"
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

#define ASSET_COLS "id, org_id, integration_id, kind, powerbi_id, workspace_powerbi_id, name, details_json, " \
		   "state, created_at, updated_at, access"

/* An asset's columns (ASSET_COLS' order), read and freed through these lists. */
static const db_fixed_field asset_fixed[] = {
	DB_FIXED_FIELD(pb_asset, id, 0),          DB_FIXED_FIELD(pb_asset, org_id, 1),
	DB_FIXED_FIELD(pb_asset, created_at, 9),  DB_FIXED_FIELD(pb_asset, updated_at, 10),
};
static const db_text_field asset_texts[] = {
	DB_TEXT_FIELD(pb_asset, integration_id, 2), DB_TEXT_FIELD(pb_asset, kind, 3),
	DB_TEXT_FIELD(pb_asset, powerbi_id, 4),     DB_TEXT_FIELD(pb_asset, workspace_powerbi_id, 5),
	DB_TEXT_FIELD(pb_asset, name, 6),           DB_TEXT_FIELD(pb_asset, details_json, 7),
	DB_TEXT_FIELD(pb_asset, state, 8),          DB_TEXT_FIELD(pb_asset, access, 11),
};
static const db_reader asset_reader = DB_READER(pb_asset, "asset", asset_fixed, asset_texts, NULL);

void asset_free(pb_asset *a)
{
	db_reader_free(&asset_reader, a);
}

void assets_free(pb_asset *v, size_t n)
{
	db_reader_rows_free(&asset_reader, v, n);
}

static int get_one(pb_db *db, const char *sql, const char *const *v, int n, pb_asset **out, char *err)
{
	void *a;
	int rc = db_get_one(db, sql, v, n, &asset_reader, NULL, v[n - 1], &a, err);
	*out = a;
	return rc;
}

int assets_get(pb_db *db, const char *org_id, const char *id, pb_asset **out, char *err)
{
	const char *v[] = { org_id, id };
	return get_one(db, "SELECT " ASSET_COLS " FROM assets WHERE org_id = ? AND id = ?", v, 2, out, err);
}

int assets_get_by_powerbi_id(pb_db *db, const char *org_id, const char *kind, const char *powerbi_id,
			     pb_asset **out, char *err)
{
	const char *v[] = { org_id, kind, powerbi_id };
	return get_one(db, "SELECT " ASSET_COLS " FROM assets WHERE org_id = ? AND kind = ? AND powerbi_id = ?", v,
		       3, out, err);
}

int assets_list(pb_db *db, const char *org_id, const char *kind, const char *q, pb_asset **out, size_t *n,
		char *err)
{
	char *pattern = NULL;
	int rc;
	*out = NULL;
	*n = 0;
	if (q && *q) {
		/* matched case-insensitively (lower() on both sides: LIKE is case-sensitive on
		 * PostgreSQL); %, _ and \ in q are escaped */
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
	const char *args[] = { org_id, kind, kind, pattern, pattern };
	void *v;
	rc = db_get_rows(db, "SELECT " ASSET_COLS " FROM assets WHERE org_id = ? AND state = 'active' "
			 "AND (CAST(? AS TEXT) IS NULL OR kind = ?) AND (CAST(? AS TEXT) IS NULL OR "
			 "lower(name) LIKE lower(CAST(? AS TEXT)) ESCAPE '\\') "
			 "ORDER BY kind, name, id LIMIT ?", args, 5, PB_LIST_MAX_ITEMS, &asset_reader, NULL, &v, n, err);
	free(pattern);
	*out = v;
	return rc;
}

int assets_workspace_names(pb_db *db, const char *integration_id, char ***ids, char ***names, size_t *n,
			   char *err)
{
	db_stmt *st = NULL;
	char **vi = NULL, **vn = NULL;
	size_t len = 0, cap = 0;
	int rc = db_prepare(db, "SELECT powerbi_id, name FROM assets WHERE integration_id = ?1 AND kind = 'workspace' "
			    "AND state = 'active' UNION ALL SELECT a.powerbi_id, a.name FROM asset_sightings x JOIN assets a "
			    "ON a.id = x.asset_id WHERE x.integration_id = ?1 AND a.kind = 'workspace' AND a.state = 'active'",
			    &st, err);
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
	json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:s?, s:s?, s:s, s:s}", "id", a->id, "kind", a->kind,
			      "powerbi_id", a->powerbi_id, "workspace_powerbi_id", a->workspace_powerbi_id, "name",
			      a->name, "state", a->state, "integration_id", a->integration_id, "access", a->access,
			      "created_at", a->created_at, "updated_at", a->updated_at);
	if (o && with_details) {
		json_t *d = json_loads(a->details_json ? a->details_json : "{}", 0, NULL);
		if (!d || json_object_set_new(o, "details", d)) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

int assets_list_json(pb_db *db, const char *org_id, const char *kind, const char *q, json_t **out, char *err)
{
	pb_asset *v = NULL;
	size_t n = 0;
	int rc = assets_list(db, org_id, kind, q, &v, &n, err);
	json_t *list = rc ? NULL : json_array();
	for (size_t i = 0; list && i < n; i++)
		json_out_list_add_new(&list, asset_json(&v[i], false));
	assets_free(v, n);
	*out = list;
	return rc || list ? rc : pb_err(err, PB_ENOMEM, "out of memory");
}

int assets_stage(pb_db *db, const char *org_id, const char *run_id, const char *kind, const char *powerbi_id,
		 const char *workspace_powerbi_id, const char *name, const char *details_json, char *err)
{
	db_stmt *st = NULL;
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
	db_stmt *st = NULL;
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
	db_stmt *st = NULL;
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

/* ---- applying a run ----
 *
 * An asset may be seen by several integrations (two service principals on one tenant, or
 * overlapping filters). assets.integration_id is the one the asset belongs to: its runs write
 * the asset's name and description and its service principal refreshes the model; the others
 * are rows of asset_sightings (sql/0011). Every statement of an apply binds the same numbered
 * parameters (struct apply); the SQL below reads an asset row named "assets". */

/* the run's view is the listing's while the asset's description came from a scanner */
#define POORER "(?5 = 'listing' AND assets.access = 'scanner')"
/* another integration sees the asset with the scanner */
#define SCANNER_SIGHTING                                                                            \
	"EXISTS (SELECT 1 FROM asset_sightings x WHERE x.asset_id = assets.id AND x.integration_id <> ?2 " \
	"AND x.access = 'scanner')"
/* the run writes the asset's name and description: never a poorer view over a richer one that
 * an integration still has */
#define WRITES                                                                            \
	"(assets.state <> 'active' OR assets.integration_id IS NULL OR NOT " POORER " OR " \
	"(assets.integration_id = ?2 AND NOT " SCANNER_SIGHTING "))"
/* the asset belongs to the run's integration afterwards: it was nobody's (or removed), it was
 * its own, or the run's access is richer than its integration's */
#define TAKES                                                                                               \
	"(assets.state <> 'active' OR assets.integration_id IS NULL OR assets.integration_id = ?2 OR " \
	"(?5 = 'scanner' AND assets.access = 'listing'))"
/* column col of the integration the asset passes to when its own no longer sees it: another
 * that sees it, scanner access first, then the one that has seen it longest */
#define NEXT_OWNER(col)                                                                                        \
	"(SELECT x." col " FROM asset_sightings x WHERE x.asset_id = assets.id AND x.integration_id <> ?2 "      \
	"ORDER BY CASE x.access WHEN 'scanner' THEN 0 ELSE 1 END, x.first_seen_at, x.integration_id LIMIT 1)"
/* the run's integration's active assets that another integration sees too (with access
 * condition cond); "|| ''": the sightings drive the statement (they are few), not the indexes over
 * all the org's assets (SQLite's unary + does that too, but PostgreSQL has no + for text) */
#define OWN_SEEN_BY_OTHERS(cond)                                                                        \
	"assets.id IN (SELECT asset_id FROM asset_sightings WHERE integration_id <> ?2" cond ") AND "      \
	"(assets.org_id || '') = ?1 AND (assets.integration_id || '') = ?2 AND assets.state = 'active'"
/* what the run covers: everything (a full run), or the workspaces it scanned */
#define IN_SCOPE \
	"(?6 = 'full' OR assets.workspace_powerbi_id IN (SELECT powerbi_id FROM asset_staging WHERE run_id = ?4 AND kind = '_scope'))"
/* the asset ids the run saw, as one NOT IN list (the staging table has no key on them, sql/0009) */
#define NOT_STAGED(id) id " NOT IN (SELECT asset_id FROM asset_staging WHERE run_id = ?4)"
/* the existing asset of each staged row */
#define STAGED_ASSETS \
	"FROM asset_staging s JOIN assets ON assets.kind = s.kind AND assets.powerbi_id = s.powerbi_id " \
	"WHERE s.run_id = ?4 AND assets.org_id = ?1"

enum { A_ORG, A_INTEG, A_NOW, A_RUN, A_ACCESS, A_SCOPE, A_NPARAMS };
struct apply {
	const char *v[A_NPARAMS];   /* ?1 .. ?6 */
};

/* Prepares sql and binds the apply's parameters it uses (numbered ?1 .. ?6). */
static int apply_prepare(pb_db *db, const struct apply *a, const char *sql, db_stmt **st, char *err)
{
	int rc = db_prepare(db, sql, st, err);
	int n = rc ? 0 : db_param_count(*st);
	for (int i = 0; !rc && i < n && i < A_NPARAMS; i++)
		rc = db_bind_text(*st, i + 1, a->v[i], err);
	return rc;
}

/* Runs one statement of the apply; *changes (may be NULL) gets the rows it changed. */
static int apply_exec(pb_db *db, const struct apply *a, const char *sql, long *changes, char *err)
{
	db_stmt *st = NULL;
	int rc = apply_prepare(db, a, sql, &st, err);
	if (!rc)
		rc = db_exec(db, st, err);
	if (!rc && changes)
		*changes = db_changes(db);
	db_done(st);
	return rc;
}

/* One row of integers (at most 2 columns) from a query of the apply. */
static int apply_counts(pb_db *db, const struct apply *a, const char *sql, long *c0, long *c1, char *err)
{
	db_stmt *st = NULL;
	int rc = apply_prepare(db, a, sql, &st, err);
	if (!rc) {
		int r = db_row(db, st, err);
		if (r < 0)
			rc = r;
		*c0 = r == 1 ? (long)db_col_int64(st, 0) : 0;
		if (c1)
			*c1 = r == 1 ? (long)db_col_int64(st, 1) : 0;
	}
	db_done(st);
	return rc;
}

/* Before the upsert: what the run no longer sees, within what it covers. Its own sightings
 * go; an asset of its own that another integration still sees passes to that one; the rest of
 * its own are marked removed (*removed counts them). A listing run also hands back, to an
 * integration with scanner access, the assets whose description came from its own earlier
 * scanner runs (the service principal lost its admin API access). */
static int forget_unseen(pb_db *db, const struct apply *a, long *removed, char *err)
{
	long moved = 0, handed = 0;
	int rc;
	if ((rc = apply_exec(db, a, "DELETE FROM asset_sightings WHERE integration_id = ?2 AND "
			     NOT_STAGED("asset_id") " AND (?6 = 'full' OR EXISTS (SELECT 1 FROM assets WHERE "
			     "assets.id = asset_sightings.asset_id AND " IN_SCOPE "))", NULL, err)) ||
	    (rc = apply_exec(db, a, "UPDATE assets SET integration_id = " NEXT_OWNER("integration_id") ", access = "
			     NEXT_OWNER("access") ", updated_at = ?3 WHERE " OWN_SEEN_BY_OTHERS("") " AND " IN_SCOPE
			     " AND " NOT_STAGED("assets.id"), &moved, err)))
		return rc;
	if (!strcmp(a->v[A_ACCESS], "listing") &&
	    ((rc = apply_exec(db, a, "INSERT INTO asset_sightings (asset_id, integration_id, access, first_seen_at) "
			      "SELECT assets.id, ?2, ?5, assets.created_at FROM assets WHERE "
			      OWN_SEEN_BY_OTHERS(" AND access = 'scanner'") " AND assets.access = 'scanner' "
			      "ON CONFLICT (asset_id, integration_id) DO UPDATE SET access = excluded.access", NULL, err)) ||
	     (rc = apply_exec(db, a, "UPDATE assets SET integration_id = " NEXT_OWNER("integration_id") ", access = "
			      "'scanner', updated_at = ?3 WHERE " OWN_SEEN_BY_OTHERS(" AND access = 'scanner'")
			      " AND assets.access = 'scanner'", &handed, err))))
		return rc;
	/* the integration an asset passed to is its owner now, no longer one of its sightings */
	if ((moved || handed) &&
	    (rc = apply_exec(db, a, "DELETE FROM asset_sightings WHERE EXISTS (SELECT 1 FROM assets WHERE assets.id = "
			     "asset_sightings.asset_id AND assets.integration_id = asset_sightings.integration_id)",
			     NULL, err)))
		return rc;
	return apply_exec(db, a, "UPDATE assets SET state = 'removed', updated_at = ?3 WHERE assets.org_id = ?1 AND "
			  "assets.integration_id = ?2 AND assets.state = 'active' AND " IN_SCOPE " AND "
			  NOT_STAGED("assets.id"), removed, err);
}

/* One set-based statement: the staged rows carry their asset ids already. Unchanged rows are
 * left alone (the DO UPDATE's WHERE), so updated_at moves only when something changed. The
 * SELECT needs its WHERE for SQLite to read ON CONFLICT as the upsert clause. */
static int upsert_staged(pb_db *db, const struct apply *a, char *err)
{
	return apply_exec(db, a, "INSERT INTO assets (id, org_id, integration_id, kind, powerbi_id, workspace_powerbi_id, "
			  "name, details_json, state, access, created_at, updated_at) "
			  "SELECT s.asset_id, ?1, ?2, s.kind, s.powerbi_id, s.workspace_powerbi_id, s.name, s.details_json, "
			  "'active', ?5, ?3, ?3 FROM asset_staging s WHERE s.run_id = ?4 AND s.kind <> '_scope' "
			  "ON CONFLICT (org_id, kind, powerbi_id) DO UPDATE SET "
			  "integration_id = CASE WHEN " TAKES " THEN excluded.integration_id ELSE assets.integration_id END, "
			  "access = CASE WHEN " TAKES " THEN excluded.access ELSE assets.access END, "
			  "workspace_powerbi_id = CASE WHEN " WRITES " THEN excluded.workspace_powerbi_id "
			  "ELSE assets.workspace_powerbi_id END, "
			  "name = CASE WHEN " WRITES " THEN excluded.name ELSE assets.name END, "
			  "details_json = CASE WHEN " WRITES " THEN excluded.details_json ELSE assets.details_json END, "
			  "state = 'active', updated_at = excluded.updated_at "
			  "WHERE assets.state <> 'active' OR (" TAKES " AND (assets.integration_id IS NULL OR "
			  "assets.integration_id <> excluded.integration_id OR assets.access <> excluded.access)) OR "
			  "(" WRITES " AND (assets.details_json <> excluded.details_json OR assets.name <> excluded.name OR "
			  "COALESCE(assets.workspace_powerbi_id, '') <> COALESCE(excluded.workspace_powerbi_id, '')))",
			  NULL, err);
}

/* Adds the active assets of each kind that one query counts (rows: kind, count). */
static int add_counts(pb_db *db, const char *sql, const char *integration_id, assets_counts *c, char *err)
{
	db_stmt *st = NULL;
	int r, rc = db_prepare(db, sql, &st, err);
	if (rc || (rc = db_bind_text(st, 1, integration_id, err)))
		goto out;
	while ((r = db_row(db, st, err)) == 1) {
		const char *k = db_col_text(st, 0);
		long v = (long)db_col_int64(st, 1);
		if (!strcmp(k, "workspace"))
			c->workspaces += v;
		else if (!strcmp(k, "semantic_model"))
			c->semantic_models += v;
		else if (!strcmp(k, "report"))
			c->reports += v;
		else if (!strcmp(k, "dashboard"))
			c->dashboards += v;
		else if (!strcmp(k, "datasource"))
			c->datasources += v;
	}
	rc = r < 0 ? r : 0;
out:
	db_done(st);
	return rc;
}

/* The integration's own active assets and those it sees that belong to another (two queries:
 * one UNION ALL made the common case, no sightings, about 10% slower). */
static int active_counts(pb_db *db, const char *integration_id, assets_counts *c, char *err)
{
	int rc = add_counts(db, "SELECT kind, COUNT(*) FROM assets WHERE integration_id = ? AND state = 'active' "
			    "GROUP BY kind", integration_id, c, err);
	if (!rc)
		rc = add_counts(db, "SELECT a.kind, COUNT(*) FROM asset_sightings x JOIN assets a ON a.id = x.asset_id "
				"WHERE x.integration_id = ? AND a.state = 'active' GROUP BY a.kind", integration_id, c, err);
	return rc;
}

/* Inside a write transaction: holds the organization's assets lock until it ends. The runs of an
 * organization's integrations, and an integration leaving, write its assets one at a time: a run's
 * counts are read then written, and two upserts of the same assets in another order could
 * deadlock (PostgreSQL; SQLite's write lock serializes them already). */
static int lock_org_assets(pb_db *db, const char *org_id, char *err)
{
	char lock[sizeof "assets:" + PB_ID_BUF];
	if (xsnprintf(lock, sizeof lock, "assets:%s", org_id))
		return pb_err(err, PB_EINVAL, "assets: the organization id is too long");
	return db_lock_name(db, lock, err);
}

/* assets_apply_run's transaction: the run applied and the counts it answers. */
struct apply_run {
	const struct apply *a;
	const char *org_id, *integration_id, *run_id, *access;
	assets_counts *counts;
};

static int apply_run_work(pb_db *db, void *ctx, char *err)
{
	const struct apply_run *ar = ctx;
	const struct apply *ap = ar->a;
	const char *org_id = ar->org_id, *integration_id = ar->integration_id, *run_id = ar->run_id,
		   *access = ar->access;
	assets_counts *counts = ar->counts;
	long others = 0;
	int rc;
	memset(counts, 0, sizeof *counts);
	if ((rc = lock_org_assets(db, org_id, err)))
		return rc;
	/* Removal first (it only looks at rows not staged), then the upsert. */
	if ((rc = forget_unseen(db, ap, &counts->removed, err)))
		return rc;
	/* DISTINCT: a row staged twice (never expected, see sql/0009) counts once. "others": staged
	 * assets that belong to another integration, which need the sightings written below */
	if ((rc = apply_counts(db, ap, "SELECT COUNT(DISTINCT s.asset_id) FROM asset_staging s WHERE s.run_id = ?4 "
			       "AND s.kind <> '_scope' AND NOT EXISTS (SELECT 1 FROM assets WHERE assets.org_id = ?1 "
			       "AND assets.kind = s.kind AND assets.powerbi_id = s.powerbi_id)", &counts->added, NULL, err)) ||
	    (rc = apply_counts(db, ap, "SELECT COUNT(DISTINCT CASE WHEN assets.state <> 'active' OR (" WRITES " AND "
			       "(assets.details_json <> s.details_json OR assets.name <> s.name)) THEN s.asset_id END), "
			       "COUNT(CASE WHEN assets.state = 'active' AND assets.integration_id <> ?2 THEN 1 END) "
			       STAGED_ASSETS, &counts->changed, &others, err)))
		return rc;
	/* an asset the run takes over from an integration with listing access keeps that one as a
	 * sighting */
	if (others && !strcmp(access, "scanner") &&
	    (rc = apply_exec(db, ap, "INSERT INTO asset_sightings (asset_id, integration_id, access, first_seen_at) "
			     "SELECT assets.id, assets.integration_id, assets.access, assets.created_at " STAGED_ASSETS
			     " AND assets.state = 'active' AND assets.integration_id <> ?2 AND assets.access = 'listing' "
			     "ON CONFLICT (asset_id, integration_id) DO NOTHING", NULL, err)))
		return rc;
	if ((rc = upsert_staged(db, ap, err)))
		return rc;
	/* the run's integration is a sighting of what stays another's */
	if (others &&
	    (rc = apply_exec(db, ap, "INSERT INTO asset_sightings (asset_id, integration_id, access, first_seen_at) "
			     "SELECT assets.id, ?2, ?5, ?3 " STAGED_ASSETS " AND assets.integration_id <> ?2 "
			     "ON CONFLICT (asset_id, integration_id) DO UPDATE SET access = excluded.access "
			     "WHERE asset_sightings.access <> excluded.access", NULL, err)))
		return rc;
	/* ... and no longer one of what it took over */
	if (!(rc = apply_exec(db, ap, "DELETE FROM asset_sightings WHERE integration_id = ?2 AND EXISTS (SELECT 1 FROM "
			      "assets WHERE assets.id = asset_sightings.asset_id AND assets.integration_id = ?2)", NULL,
			      err)) &&
	    !(rc = lineage_edges_add_staged(db, org_id, run_id, err)))
		rc = active_counts(db, integration_id, counts, err);
	return rc;
}

int assets_apply_run(pb_db *db, const char *org_id, const char *integration_id, const char *run_id, bool full,
		     const char *access, assets_counts *counts, char *err)
{
	char now[PB_TIME_BUF];
	memset(counts, 0, sizeof *counts);
	if (!access || (strcmp(access, "scanner") && strcmp(access, "listing")))
		return pb_err(err, PB_EINVAL, "an import run sees Power BI through the scanner or the listing APIs");
	pb_now(now);
	struct apply a = { { org_id, integration_id, now, run_id, access, full ? "full" : "scoped" } };
	struct apply_run ar = { &a, org_id, integration_id, run_id, access, counts };
	return db_transaction(db, apply_run_work, &ar, err);
}

/* One entry of assets_seen_by. */
static int seen_entry(json_t *list, const char *integration_id, const char *access, bool refresh, char *err)
{
	return json_array_append_new(list, json_pack("{s:s, s:s, s:b}", "integration_id", integration_id, "access",
						     access && *access ? access : "scanner", "refresh", refresh))
		? pb_err(err, PB_ENOMEM, "out of memory") : 0;
}

int assets_seen_by(pb_db *db, const pb_asset *a, json_t **out, char *err)
{
	db_stmt *st = NULL;
	json_t *list = json_array();
	int r = 0, rc = list ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
	*out = NULL;
	if (rc || strcmp(a->state, "active"))
		goto out;
	if (a->integration_id && (rc = seen_entry(list, a->integration_id, a->access, true, err)))
		goto out;
	const char *which[] = { a->id };
	if ((rc = db_prepare_texts(db, "SELECT integration_id, access FROM asset_sightings WHERE asset_id = ? "
				   "ORDER BY first_seen_at, integration_id", which, 1, &st, err)))
		goto out;
	while (!rc && (r = db_row(db, st, err)) == 1)
		rc = seen_entry(list, db_col_text(st, 0), db_col_text(st, 1), false, err);
	if (!rc && r < 0)
		rc = r;
out:
	db_done(st);
	if (rc)
		json_decref(list);
	else
		*out = list;
	return rc;
}

int assets_integration_leaving(pb_db *db, const char *org_id, const char *integration_id, char *err)
{
	char now[PB_TIME_BUF];
	long moved = 0;
	pb_now(now);
	struct apply a = { { NULL, integration_id, now, NULL, NULL, NULL } };
	int rc = lock_org_assets(db, org_id, err);
	if (!rc)
		rc = apply_exec(db, &a, "UPDATE assets SET integration_id = " NEXT_OWNER("integration_id") ", access = "
				NEXT_OWNER("access") ", updated_at = ?3 WHERE assets.id IN (SELECT asset_id FROM "
				"asset_sightings WHERE integration_id <> ?2) AND (assets.integration_id || '') = ?2", &moved,
				err);
	if (!rc && moved)
		rc = apply_exec(db, &a, "DELETE FROM asset_sightings WHERE EXISTS (SELECT 1 FROM assets WHERE assets.id = "
				"asset_sightings.asset_id AND assets.integration_id = asset_sightings.integration_id)",
				NULL, err);
	return rc;
}
