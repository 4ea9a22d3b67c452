/* Push datasets: created in Power BI with its limits checked first, listed, read and deleted
 * (core/flow/push.h). */
#include <ctype.h>
#include <string.h>

#include "core/flow/push_internal.h"
#include "msapi/powerbi.h"
#include "runtime/json_body.h"

/* ======================================================================== datasets */


void push_ds_free(push_ds *d)
{
	if (!d)
		return;
	free_each(d->workspace_id, d->powerbi_id, d->name, d->retention, d->schema_json);
	push_schema_release(&d->schema);
	free(d);
}

#define DS_COLS                                                                                             \
	"SELECT d.id, d.org_id, d.connection_id, d.workspace_id, d.powerbi_id, d.name, d.retention, "       \
	"d.schema_json, d.created_at, d.updated_at, c.team_id FROM push_datasets d JOIN push_connections c " \
	"ON c.id = d.connection_id "

static int ds_row(db_stmt *st, push_ds **out, char *err)
{
	bool ok = true;
	json_error_t je;
	push_ds *d = calloc(1, sizeof *d);
	if (!d)
		return pb_err(err, PB_ENOMEM, "out of memory");
	xsnprintf(d->id, sizeof d->id, "%s", db_col_text(st, 0));
	xsnprintf(d->org_id, sizeof d->org_id, "%s", db_col_text(st, 1));
	xsnprintf(d->connection_id, sizeof d->connection_id, "%s", db_col_text(st, 2));
	d->workspace_id = db_col_dup(st, 3, &ok);
	d->powerbi_id = db_col_dup(st, 4, &ok);
	d->name = db_col_dup(st, 5, &ok);
	d->retention = db_col_dup(st, 6, &ok);
	d->schema_json = db_col_dup(st, 7, &ok);
	xsnprintf(d->created_at, sizeof d->created_at, "%s", db_col_text(st, 8));
	xsnprintf(d->updated_at, sizeof d->updated_at, "%s", db_col_text(st, 9));
	xsnprintf(d->team_id, sizeof d->team_id, "%s", db_col_text(st, 10));
	int rc = ok ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
	json_t *tables = rc ? NULL : json_loads(d->schema_json, 0, &je);
	if (!rc && (rc = push_schema_parse(tables, &d->schema, err)))
		{
		char what[80];
		xsnprintf(what, sizeof what, "stored schema of push dataset %s", d->id);
		rc = push_wrap_err(err, PB_EIO, what);
	}
	json_decref(tables);
	if (rc) {
		push_ds_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

int push_ds_get(pb_db *db, const push_caller *who, const char *id, push_ds **out, char *err)
{
	db_stmt *st = NULL;
	team_list tl = { 0 };
	*out = NULL;
	int rc = db_prepare(db, who ? DS_COLS "WHERE d.id = ? AND d.org_id = ?" : DS_COLS "WHERE d.id = ?", &st, err);
	if (rc || (rc = db_bind_text(st, 1, id, err)) || (who && (rc = db_bind_text(st, 2, who->org_id, err))))
		goto out;
	rc = db_row(db, st, err);
	if (rc == 1)
		rc = ds_row(st, out, err);
	else if (!rc)
		rc = pb_err(err, PB_ENOTFOUND, "push dataset %.40s not found", id);
	/* a member sees the datasets of their teams' connections */
	if (!rc && who && ((rc = push_visible_teams(db, who, who->org_id, &tl, err)) || !push_team_find(&tl, (*out)->team_id, NULL))) {
		push_ds_free(*out);
		*out = NULL;
		if (!rc)
			rc = pb_err(err, PB_ENOTFOUND, "push dataset %.40s not found", id);
	}
out:
	db_done(st);
	free(tl.v);
	return rc;
}

static int ds_find(pb_db *db, const char *org_id, const char *conn_id, const char *ws, const char *name, push_ds **out,
		   char *err)
{
	db_stmt *st = NULL;
	*out = NULL;
	const char *which[] = { org_id, conn_id, ws, name };
	int rc = db_prepare_texts(db, DS_COLS "WHERE d.org_id = ? AND d.connection_id = ? AND d.workspace_id = ? "
				  "AND d.name = ?", which, 4, &st, err);
	if (rc)
		goto out;
	rc = db_row(db, st, err);
	if (rc == 1)
		rc = ds_row(st, out, err);
out:
	db_done(st);
	return rc < 0 ? rc : 0;
}

static json_t *ds_json(const push_ds *d)
{
	json_t *tables = json_loads(d->schema_json, 0, NULL);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "id", d->id, "connection_id", d->connection_id,
			 "workspace_id", d->workspace_id, "powerbi_id", d->powerbi_id, "name", d->name, "retention",
			 d->retention, "tables", tables ? tables : json_array(), "created_at", d->created_at, "updated_at",
			 d->updated_at);
}

int push_dataset_get(pb_db *db, const push_caller *who, const char *id, json_t **reply, char *err)
{
	push_ds *d = NULL;
	int rc = push_ds_get(db, who, id, &d, err);
	if (!rc && !(*reply = ds_json(d)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	push_ds_free(d);
	return rc;
}

int push_datasets_list(pb_db *db, const push_caller *who, json_t **reply, char *err)
{
	db_stmt *st = NULL;
	team_list tl = { 0 };
	json_t *arr = json_array();
	int rc = arr ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
	if (rc || (rc = push_visible_teams(db, who, who->org_id, &tl, err)) ||
	    (rc = db_prepare(db, DS_COLS "WHERE d.org_id = ? ORDER BY d.name", &st, err)) ||
	    (rc = db_bind_text(st, 1, who->org_id, err)))
		goto out;
	while (json_array_size(arr) < PB_LIST_MAX_ITEMS && (rc = db_row(db, st, err)) == 1) {
		push_ds *d = NULL;
		if ((rc = ds_row(st, &d, err)))
			goto out;
		rc = push_team_find(&tl, d->team_id, NULL) && json_array_append_new(arr, ds_json(d))
			     ? pb_err(err, PB_ENOMEM, "out of memory")
			     : 0;
		push_ds_free(d);
		if (rc)
			goto out;
	}
	if (!rc && !(*reply = json_pack("{s:O}", "push_datasets", arr)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	db_done(st);
	free(tl.v);
	json_decref(arr);
	return rc;
}

static int ds_save(pb_db *db, const push_caller *who, const push_conn *c, const char *ws, const char *pbi_id,
		   const char *name, const char *retention, const char *schema_json, const char *replace_id, char id[PB_ID_BUF],
		   char *err)
{
	db_stmt *st = NULL;
	char now[PB_TIME_BUF];
	int rc;
	pb_now(now);
	if (replace_id) {
		xsnprintf(id, PB_ID_BUF, "%s", replace_id);
		if ((rc = db_prepare(db, "UPDATE push_datasets SET powerbi_id = ?, retention = ?, schema_json = ?, "
					 "updated_at = ? WHERE id = ?",
				     &st, err)) ||
		    (rc = db_bind_text(st, 1, pbi_id, err)) || (rc = db_bind_text(st, 2, retention, err)) ||
		    (rc = db_bind_text(st, 3, schema_json, err)) || (rc = db_bind_text(st, 4, now, err)) ||
		    (rc = db_bind_text(st, 5, id, err)) || (rc = db_exec(db, st, err)))
			goto out;
		db_done(st);
		if ((rc = db_prepare(db, "DELETE FROM push_table_rows WHERE dataset_id = ?", &st, err)) ||
		    (rc = db_bind_text(st, 1, id, err)))
			goto out;
		rc = db_exec(db, st, err);
		goto out;
	}
	if ((rc = pb_new_id(id, err)) ||
	    (rc = db_prepare(db, "INSERT INTO push_datasets (id, org_id, connection_id, workspace_id, powerbi_id, name, "
				 "retention, schema_json, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, id, err)) || (rc = db_bind_text(st, 2, who->org_id, err)) ||
	    (rc = db_bind_text(st, 3, c->id, err)) || (rc = db_bind_text(st, 4, ws, err)) ||
	    (rc = db_bind_text(st, 5, pbi_id, err)) || (rc = db_bind_text(st, 6, name, err)) ||
	    (rc = db_bind_text(st, 7, retention, err)) || (rc = db_bind_text(st, 8, schema_json, err)) ||
	    (rc = db_bind_text(st, 9, who->user_id, err)) || (rc = db_bind_text(st, 10, now, err)) ||
	    (rc = db_bind_text(st, 11, now, err)))
		goto out;
	rc = db_exec(db, st, err);
out:
	db_done(st);
	return rc;
}

/* Power BI's shape of a schema (pt, pc borrow schema's names; free both). */
static int pbi_tables(const push_schema *schema, powerbi_push_table **pt, powerbi_push_column **pc, char *err)
{
	size_t total = 0;
	for (size_t i = 0; i < schema->ntables; i++)
		total += schema->tables[i].ncols;
	*pt = calloc(schema->ntables, sizeof **pt);
	*pc = calloc(total ? total : 1, sizeof **pc);
	if (!*pt || !*pc)
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t i = 0, k0 = 0; i < schema->ntables; i++) {
		(*pt)[i].name = schema->tables[i].name;
		(*pt)[i].columns = *pc + k0;
		(*pt)[i].ncolumns = schema->tables[i].ncols;
		for (size_t k = 0; k < schema->tables[i].ncols; k++, k0++) {
			(*pc)[k0].name = schema->tables[i].cols[k].name;
			(*pc)[k0].data_type = push_type_name(schema->tables[i].cols[k].type);
		}
	}
	return 0;
}

/* reply gets "warnings": the retirement notice, and after a replace, the replaced dataset's
 * fate (del_rc, the delete's result, and derr its message). */
static int add_warnings(json_t *reply, const push_ds *replaced, bool same, int del_rc, const char *derr, char *err)
{
	json_t *w = json_pack("[s]", PUSH_RETIREMENT_WARNING);
	if (replaced) {
		json_object_set_new(reply, "replaced_powerbi_id", json_string(replaced->powerbi_id));
		json_object_set_new(reply, "replaced_deleted", json_boolean(!del_rc && !same));
		/* the replace itself stands: a failed delete leaves the old dataset in Power BI and says so */
		if (del_rc && w)
			json_array_append_new(w, json_sprintf("the replaced Power BI dataset %s could not be deleted; "
							      "delete it in Power BI: %s",
							      replaced->powerbi_id, derr));
	}
	/* json_object_set_new takes w, even when failing */
	if (!w || json_object_set_new(reply, "warnings", w))
		return pb_err(err, PB_ENOMEM, "out of memory");
	return 0;
}

int push_dataset_create(pb_db *db, const pb_config *cfg, const push_caller *who, const json_t *body, int *status,
			json_t **reply, const char **warning, pb_failure *f)
{
	static const char *const keys[] = { "connection_id", "workspace_id", "name", "tables", "retention", "replace", NULL };
	push_schema schema = { 0 };
	push_conn *c = NULL;
	push_ds *existing = NULL, *d = NULL;
	pbi_session s = { 0 };
	powerbi_push_table *pt = NULL;
	powerbi_push_column *pc = NULL;
	msapi_item item = { 0 };
	char *schema_text = NULL, id[PB_ID_BUF], *err = f->message, derr[PB_ERR_MAX] = "";
	json_t *tables = NULL;
	bool have_session = false, same = false;
	int rc, del_rc = 0;
	*reply = NULL;
	*warning = NULL;
	if (!json_is_object(body))
		return pb_fail(f, PB_EINVAL, NULL, "the body must be an object");
	if (json_body_only_keys(body, keys, "", err))
		return pb_fail_as(f, PB_EINVAL, NULL);
	const char *conn_id = json_string_value(json_object_get(body, "connection_id"));
	const char *ws = json_string_value(json_object_get(body, "workspace_id"));
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *retention = json_string_value(json_object_get(body, "retention"));
	const json_t *jreplace = json_object_get(body, "replace");
	if (!retention)
		retention = "None";
	if (!conn_id || !push_id_text(ws))
		return pb_fail(f, PB_EINVAL, NULL, "\"connection_id\" and \"workspace_id\" are required");
	if (jreplace && !json_is_boolean(jreplace))
		return pb_fail(f, PB_EINVAL, NULL, "\"replace\" must be true or false");
	if (strcmp(retention, "None") && strcmp(retention, "basicFIFO"))
		return pb_fail(f, PB_EINVAL, NULL, "\"retention\" must be None or basicFIFO");
	if ((rc = push_check_name("dataset", name, err)) || (rc = push_schema_parse(json_object_get(body, "tables"), &schema, err)))
		return pb_fail_as(f, PB_EINVAL, NULL);
	rc = push_conn_get(db, who, conn_id, &c, err);
	if (rc == PB_ENOTFOUND) {
		rc = pb_fail(f, PB_ENOTFOUND, NULL, "\"connection_id\": push connection '%.40s' not found (or not shared "
			     "with your teams)", conn_id);
		goto out;
	}
	if (rc || (rc = ds_find(db, who->org_id, c->id, ws, name, &existing, err)))
		goto out;
	if (existing && push_schema_equal(&existing->schema, &schema) && !strcmp(existing->retention, retention)) {
		*status = 200;
		*warning = PUSH_RETIREMENT_WARNING;
		if (!(*reply = ds_json(existing)))
			rc = pb_err(err, PB_ENOMEM, "out of memory");
		else
			rc = add_warnings(*reply, NULL, false, 0, NULL, err);
		goto out;
	}
	if (existing && !json_is_true(jreplace)) {
		rc = pb_fail(f, PB_ECONFLICT, "schema_conflict",
			     "push dataset '%s' exists with another schema; send \"replace\": true to create it again "
			     "with the new schema (its rows are not kept)",
			     name);
		goto out;
	}
	if (!(tables = push_schema_json(&schema)) || !(schema_text = json_dumps(tables, JSON_COMPACT))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = pbi_tables(&schema, &pt, &pc, err)) || (rc = push_conn_session(cfg, c, &s, f)))
		goto out;
	have_session = true;
	if ((rc = powerbi_push_create(&s.api, ws, name, pt, schema.ntables, retention, &item, err))) {
		rc = pbi_session_fail(&s, rc, f);
		goto out;
	}
	if (!item.id) {
		rc = pb_fail(f, PB_EUPSTREAM, NULL, "Power BI created push dataset '%s' without an id", name);
		goto out;
	}
	if ((rc = ds_save(db, who, c, ws, item.id, name, retention, schema_text, existing ? existing->id : NULL, id, err)) ||
	    (rc = push_ds_get(db, NULL, id, &d, err)))
		goto out;
	/* replaced: the new dataset exists and the record points at it, so the old one goes */
	same = existing && !strcmp(existing->powerbi_id, item.id);
	if (existing && !same)
		del_rc = powerbi_dataset_delete(&s.api, ws, existing->powerbi_id, derr);
	*status = existing ? 200 : 201;
	*warning = PUSH_RETIREMENT_WARNING;
	if (!(*reply = ds_json(d)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	else
		rc = add_warnings(*reply, existing, same, del_rc, derr, err);
out:
	if (rc) {
		json_decref(*reply);
		*reply = NULL;
	}
	if (have_session)
		pbi_session_release(&s);
	msapi_item_release(&item);
	free(pt);
	free(pc);
	free(schema_text);
	json_decref(tables);
	push_ds_free(existing);
	push_ds_free(d);
	push_conn_free(c);
	push_schema_release(&schema);
	return rc;
}
