#include "core/store/integrations.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/connections.h"
#include "core/lang/cron.h"
#include "runtime/crypto.h"
#include "runtime/jobs.h"
#include "runtime/json_body.h"
#include "runtime/json_out.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

#define STR2(x) #x
#define STR(x) STR2(x)
#define RUNS_KEPT_TEXT STR(PB_INTEGRATION_RUNS_KEPT)
#define FIELD_MAX 256          /* ids, names, rule names */
#define SECRET_MAX 1024

static const char *const filter_keys[] = { "workspaces", "semantic_models", "reports", NULL };

/* ---------------- validation ---------------- */

int integration_check_ids(const char *tenant_id, const char *client_id, char *err)
{
	/* a GUID, not a domain name: the tenant's Power BI budget and back-off are keyed by it */
	if (tenant_id && !str_is_guid(tenant_id))
		return pb_err(err, PB_EINVAL, "tenant_id: expected the Entra directory (tenant) id, a GUID like "
			      "00000000-0000-0000-0000-000000000000 (Entra ID > Overview > Tenant ID)");
	if (client_id && !str_is_guid(client_id))
		return pb_err(err, PB_EINVAL, "client_id: expected the application (client) id, a GUID like "
			      "00000000-0000-0000-0000-000000000000 (App registrations > the app > Overview)");
	return 0;
}

static int check_pattern(const char *where, const char *p, char *err)
{
	size_t len = strlen(p), stars = 0;
	if (!len || len > PB_FILTER_PATTERN_MAX_BYTES || !utf8_valid(p, len))
		return pb_err(err, PB_EINVAL, "%s: a pattern must be 1 to %d bytes of text", where,
			      PB_FILTER_PATTERN_MAX_BYTES);
	for (const char *c = p; *c; c++)
		stars += *c == '*';
	if (stars > PB_FILTER_PATTERN_MAX_STARS)
		return pb_err(err, PB_EINVAL, "%s: pattern '%.64s' has more than %d '*'", where, p,
			      PB_FILTER_PATTERN_MAX_STARS);
	return 0;
}

int integration_filters_normalize(const json_t *filters, char **out, char *err)
{
	static const char *const list_keys[] = { "include", "exclude", NULL };
	json_t *norm = json_object();
	char where[96];
	int rc = 0;
	*out = NULL;
	if (!norm)
		return pb_err(err, PB_ENOMEM, "out of memory");
	if (filters && !json_is_null(filters)) {
		if (!json_is_object(filters)) {
			rc = pb_err(err, PB_EINVAL, "filters: expected an object with workspaces, semantic_models, "
				    "reports");
			goto out;
		}
		if ((rc = json_body_only_keys(filters, filter_keys, "filters", err)))
			goto out;
	}
	for (size_t k = 0; filter_keys[k]; k++) {
		json_t *grp = filters ? json_object_get(filters, filter_keys[k]) : NULL;
		json_t *ng = json_object();
		if (!ng || json_object_set_new(norm, filter_keys[k], ng)) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		if (grp && !json_is_null(grp) && !json_is_object(grp)) {
			rc = pb_err(err, PB_EINVAL, "filters.%s: expected an object with include and exclude lists",
				    filter_keys[k]);
			goto out;
		}
		xsnprintf(where, sizeof where, "filters.%s", filter_keys[k]);
		if (grp && json_is_object(grp) && (rc = json_body_only_keys(grp, list_keys, where, err)))
			goto out;
		for (size_t l = 0; list_keys[l]; l++) {
			json_t *list = grp && json_is_object(grp) ? json_object_get(grp, list_keys[l]) : NULL;
			json_t *nl = json_array();
			size_t i;
			json_t *v;
			if (!nl || json_object_set_new(ng, list_keys[l], nl)) {
				rc = pb_err(err, PB_ENOMEM, "out of memory");
				goto out;
			}
			xsnprintf(where, sizeof where, "filters.%s.%s", filter_keys[k], list_keys[l]);
			if (!list || json_is_null(list))
				continue;
			if (!json_is_array(list) || json_array_size(list) > PB_FILTER_MAX_PATTERNS) {
				rc = pb_err(err, PB_EINVAL, "%s: expected a list of at most %d patterns", where,
					    PB_FILTER_MAX_PATTERNS);
				goto out;
			}
			json_array_foreach(list, i, v) {
				if (!json_is_string(v)) {
					rc = pb_err(err, PB_EINVAL, "%s[%zu]: expected a string", where, i);
					goto out;
				}
				if ((rc = check_pattern(where, json_string_value(v), err)))
					goto out;
				if (json_array_append(nl, v)) {
					rc = pb_err(err, PB_ENOMEM, "out of memory");
					goto out;
				}
			}
		}
	}
	if (!(*out = json_dumps(norm, JSON_COMPACT | JSON_SORT_KEYS)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	json_decref(norm);
	return rc;
}

static int get_string(const json_t *body, const char *key, bool required, size_t max, const char **out, char *err)
{
	json_t *v = json_object_get(body, key);
	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return pb_err(err, PB_EINVAL, "%s is required", key);
		return 0;
	}
	if (!json_is_string(v))
		return pb_err(err, PB_EINVAL, "%s: expected a string", key);
	const char *s = json_string_value(v);
	if (strlen(s) > max || strlen(s) != json_string_length(v))
		return pb_err(err, PB_EINVAL, "%s: longer than %zu bytes or holds a NUL", key, max);
	if (required && !*s)
		return pb_err(err, PB_EINVAL, "%s must not be empty", key);
	*out = s;
	return 0;
}

static bool rule_name_ok(const char *s)
{
	if (!*s || strlen(s) > 128 || *s == '.')
		return false;
	for (const char *c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.')
			return false;
	return !strstr(s, "..");
}

int integration_parse(const json_t *body, bool create, int64_t min_interval_s, integration_input *in, char *err)
{
	static const char *const keys[] = { "name", "type", "tenant_id", "client_id", "client_secret", "filters",
					    "filter_rule", "include_personal", "schedule", NULL };
	int rc;
	char *norm = NULL;
	memset(in, 0, sizeof *in);
	in->include_personal = -1;
	if (!json_is_object(body))
		return pb_err(err, PB_EINVAL, "request body: expected a JSON object");
	if ((rc = json_body_only_keys(body, keys, "", err)) ||
	    (rc = get_string(body, "name", create, PB_NAME_FIELD_MAX, &in->name, err)) ||
	    (rc = get_string(body, "type", create, 32, &in->type, err)) ||
	    (rc = get_string(body, "tenant_id", create, FIELD_MAX, &in->tenant_id, err)) ||
	    (rc = get_string(body, "client_id", create, FIELD_MAX, &in->client_id, err)) ||
	    (rc = get_string(body, "client_secret", create, SECRET_MAX, &in->client_secret, err)) ||
	    (rc = get_string(body, "filter_rule", false, 128, &in->filter_rule, err)) ||
	    (rc = get_string(body, "schedule", false, PB_CRON_MAX_TEXT, &in->schedule, err)))
		return rc;
	if (in->name && !*in->name)
		return pb_err(err, PB_EINVAL, "name must not be empty");
	if (in->type && strcmp(in->type, "powerbi"))
		return pb_err(err, PB_EINVAL, "type: only \"powerbi\" is supported");
	if ((rc = integration_check_ids(in->tenant_id, in->client_id, err)))
		return rc;
	if (in->client_secret && !*in->client_secret)
		return pb_err(err, PB_EINVAL, "client_secret must not be empty");
	if (in->filter_rule && *in->filter_rule && !rule_name_ok(in->filter_rule))
		return pb_err(err, PB_EINVAL, "filter_rule: expected a Lua module name like filters.prod_only "
			      "(letters, digits, '_' and '.')");
	json_t *ip = json_object_get(body, "include_personal");
	if (ip && !json_is_null(ip)) {
		if (!json_is_boolean(ip))
			return pb_err(err, PB_EINVAL, "include_personal: expected true or false");
		in->include_personal = json_is_true(ip);
	}
	json_t *f = json_object_get(body, "filters");
	if (f) {
		if ((rc = integration_filters_normalize(f, &norm, err)))
			return rc;
		free(norm);
		in->filters = f;
	}
	json_t *sch = json_object_get(body, "schedule");
	in->schedule_set = sch != NULL;
	if (sch && json_is_null(sch))
		in->schedule = "";
	if (in->schedule && *in->schedule) {
		pb_cron c;
		if ((rc = cron_validate(in->schedule, min_interval_s, &c, err)))
			return rc;
	}
	return 0;
}

/* ---------------- rows ---------------- */

#define INTEGRATION_COLS "i.id, i.org_id, i.name, i.type, i.tenant_id, i.client_id, i.client_secret, " \
	"i.filters_json, i.filter_rule, i.include_personal, i.schedule, i.next_run_at, i.last_success_at, " \
	"(SELECT r.state FROM integration_runs r WHERE r.integration_id = i.id ORDER BY r.created_at DESC " \
	"LIMIT 1), i.created_at, i.updated_at, " \
	"(SELECT r.job_id FROM integration_runs r WHERE r.integration_id = i.id ORDER BY r.created_at DESC LIMIT 1)"

/* An integration's columns (INTEGRATION_COLS' order), read and freed through these lists. */
static const db_fixed_field integration_fixed[] = {
	DB_FIXED_FIELD(pb_integration, id, 0),          DB_FIXED_FIELD(pb_integration, org_id, 1),
	DB_FIXED_FIELD(pb_integration, created_at, 14), DB_FIXED_FIELD(pb_integration, updated_at, 15),
};
static const db_text_field integration_texts[] = {
	DB_TEXT_FIELD(pb_integration, name, 2),          DB_TEXT_FIELD(pb_integration, type, 3),
	DB_TEXT_FIELD(pb_integration, tenant_id, 4),     DB_TEXT_FIELD(pb_integration, client_id, 5),
	DB_TEXT_FIELD(pb_integration, client_secret, 6), DB_TEXT_FIELD(pb_integration, filters_json, 7),
	DB_TEXT_FIELD(pb_integration, filter_rule, 8),   DB_TEXT_FIELD(pb_integration, schedule, 10),
	DB_TEXT_FIELD(pb_integration, next_run_at, 11),  DB_TEXT_FIELD(pb_integration, last_success_at, 12),
	DB_TEXT_FIELD(pb_integration, last_run_state, 13),
};

static int last_state_from_job(pb_db *db, pb_integration *i, const char *job_id, char *err);

static int integration_more(pb_db *db, db_stmt *st, void *row, void *ctx, char *err)
{
	pb_integration *i = row;
	i->include_personal = db_col_int(st, 9) != 0;
	return last_state_from_job(db, i, db_col_text(st, 16), err);
}

static const db_reader integration_reader = DB_READER(pb_integration, "integration", integration_fixed,
						      integration_texts, integration_more);

void integration_free(pb_integration *i)
{
	db_reader_free(&integration_reader, i);
}

void integrations_free(pb_integration *v, size_t n)
{
	db_reader_rows_free(&integration_reader, v, n);
}

int integrations_get(pb_db *db, const char *org_id, const char *id, pb_integration **out, char *err)
{
	const char *v[] = { id, org_id, org_id };
	void *i;
	int rc = db_get_one(db, "SELECT " INTEGRATION_COLS " FROM integrations i WHERE i.id = ? "
			    "AND (CAST(? AS TEXT) IS NULL OR i.org_id = ?)", v, 3, &integration_reader, NULL, id, &i, err);
	*out = i;
	return rc;
}

static int list_query(pb_db *db, const char *sql, const char *arg, pb_integration **out, size_t *n, char *err)
{
	void *v;
	int rc = db_get_rows(db, sql, &arg, 1, PB_LIST_MAX_ITEMS, &integration_reader, NULL, &v, n, err);
	*out = v;
	return rc;
}

int integrations_list(pb_db *db, const char *org_id, pb_integration **out, size_t *n, char *err)
{
	return list_query(db, "SELECT " INTEGRATION_COLS " FROM integrations i WHERE i.org_id = ? "
			  "ORDER BY i.name LIMIT ?", org_id, out, n, err);
}

int integrations_due(pb_db *db, const char *now, pb_integration **out, size_t *n, char *err)
{
	return list_query(db, "SELECT " INTEGRATION_COLS " FROM integrations i WHERE i.next_run_at IS NOT NULL "
			  "AND i.next_run_at <= ? ORDER BY i.next_run_at LIMIT ?", now, out, n, err);
}

json_t *integration_json(const pb_integration *i)
{
	json_t *filters = json_loads(i->filters_json ? i->filters_json : "{}", 0, NULL);
	if (!filters)
		return NULL;
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:o, s:s?, s:b, s:s?, s:s?, s:s?, s:s?, s:s, s:s}", "id",
			 i->id, "name", i->name, "type", i->type, "tenant_id", i->tenant_id, "client_id", i->client_id,
			 "has_client_secret", i->client_secret && *i->client_secret, "filters", filters, "filter_rule",
			 i->filter_rule, "include_personal", i->include_personal, "schedule", i->schedule,
			 "next_run_at", i->next_run_at, "last_run_state", i->last_run_state, "last_success_at",
			 i->last_success_at, "created_at", i->created_at, "updated_at", i->updated_at);
}

int integrations_list_json(pb_db *db, const char *org_id, json_t **out, char *err)
{
	pb_integration *v = NULL;
	size_t n = 0;
	int rc = integrations_list(db, org_id, &v, &n, err);
	json_t *list = rc ? NULL : json_array();
	for (size_t k = 0; list && k < n; k++)
		json_out_list_add_new(&list, integration_json(&v[k]));
	integrations_free(v, n);
	*out = list;
	return rc || list ? rc : pb_err(err, PB_ENOMEM, "out of memory");
}

static int seal_context(const char *id, char ctx[PB_ID_BUF + 16])
{
	return xsnprintf(ctx, PB_ID_BUF + 16, "integration:%s", id);
}

int integrations_rotate(pb_db *db, const pb_config *cfg, size_t *resealed, char *err)
{
	/* kind "integration" + the row id: the context seal_context() seals with */
	static const sealed_column cols[] = {
		{ "SELECT id, client_secret FROM integrations", "UPDATE integrations SET client_secret = ? WHERE id = ?",
		  "integration", NULL },
	};
	return reseal_columns(db, cfg->encryption_keys, cols, sizeof cols / sizeof cols[0], resealed, err);
}

int integration_open_secret(const pb_config *cfg, const pb_integration *i, char **plain, size_t *len, char *err)
{
	char ctx[PB_ID_BUF + 16], sub[PB_ERR_MAX];
	*plain = NULL;
	*len = 0;
	if (!cfg->encryption_keys)
		return pb_err(err, PB_EINVAL, "integration '%s': its client secret cannot be opened: "
			      "APPLICATION_ENCRYPTION_KEYS is not set", i->name);
	seal_context(i->id, ctx);
	int rc = pb_open(cfg->encryption_keys, i->client_secret, ctx, plain, len, sub);
	if (rc)
		pb_err(err, rc, "integration '%s': its client secret cannot be opened (%s); save the client secret "
		       "of the integration again", i->name, sub);
	return rc;
}

/* The next due time of schedule after now, as stored text; *out "" for no schedule. */
static int next_due(const char *schedule, char out[PB_TIME_BUF], char *err)
{
	pb_cron c;
	int64_t next;
	int rc;
	out[0] = '\0';
	if (!schedule || !*schedule)
		return 0;
	if ((rc = cron_parse(schedule, &c, err)) || (rc = cron_next(&c, pb_epoch_ms() / 1000, &next, err)))
		return rc == PB_ENOTFOUND ? PB_EINVAL : rc;
	pb_time_format(next * 1000, out);
	return 0;
}

/* PB_ECONFLICT (code "conflict") when another integration of org_id than except_id (NULL:
 * none) is named name. */
static int check_name_free(pb_db *db, const char *org_id, const char *name, const char *except_id, pb_failure *f)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db, "SELECT 1 FROM integrations WHERE org_id = ? AND name = ? AND id <> ?", &st, f->message);
	if (!rc && !(rc = db_bind_text(st, 1, org_id, f->message)) && !(rc = db_bind_text(st, 2, name, f->message)) &&
	    !(rc = db_bind_text(st, 3, except_id ? except_id : "", f->message))) {
		int r = db_row(db, st, f->message);
		if (r < 0)
			rc = r;
		else if (r == 1)
			rc = pb_fail(f, PB_ECONFLICT, "conflict", "name: an integration named '%s' already exists in this "
				     "organization", name);
	}
	db_done(st);
	return rc;
}

/* The client secret sealed for integration id: *sealed new. */
static int seal_secret(const pb_config *cfg, const char *id, const char *secret, char **sealed, char *err)
{
	char ctx[PB_ID_BUF + 16];
	*sealed = NULL;
	if (!cfg->encryption_keys)
		return pb_err(err, PB_EINVAL, "client_secret: APPLICATION_ENCRYPTION_KEYS is not set on this server, so "
			      "client secrets cannot be stored");
	seal_context(id, ctx);
	return pb_seal(cfg->encryption_keys, secret, strlen(secret), ctx, sealed, err);
}

/* Ends a write that failed with rc: rolls back (st done first) and fills f with rc and its
 * default code unless a more precise one was named already. */
static int save_failed(pb_db *db, db_stmt *st, int rc, pb_failure *f)
{
	db_done(st);
	db_rollback(db);
	return f->rc == rc ? rc : pb_fail_as(f, rc, NULL);
}

/* Ends the write of integration id (org_id) whose statement st is bound: runs st, commits and
 * reads the integration back into *out (new: integration_free). A failure fills f and, before
 * the commit, rolls back (save_failed). */
static int save_and_read(pb_db *db, db_stmt *st, const char *org_id, const char *id, pb_integration **out,
			 pb_failure *f)
{
	int rc = db_exec(db, st, f->message);
	if (rc)
		return save_failed(db, st, rc, f);
	db_done(st);
	if ((rc = db_commit(db, f->message)) || (rc = integrations_get(db, org_id, id, out, f->message)))
		pb_fail_as(f, rc, NULL);
	return rc;
}

int integrations_create(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
			const integration_input *in, pb_integration **out, pb_failure *f)
{
	db_stmt *st = NULL;
	char id[PB_ID_BUF], now[PB_TIME_BUF], next[PB_TIME_BUF];
	char *sealed = NULL, *filters = NULL, *err = f->message;
	int rc;
	*out = NULL;
	if ((rc = pb_new_id(id, err)) || (rc = integration_filters_normalize(in->filters, &filters, err)) ||
	    (rc = next_due(in->schedule, next, err)) || (rc = seal_secret(cfg, id, in->client_secret, &sealed, err))) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	pb_now(now);
	if ((rc = db_begin(db, err))) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	if ((rc = check_name_free(db, org_id, in->name, NULL, f)) ||
	    (rc = db_prepare(db, "INSERT INTO integrations (id, org_id, name, type, tenant_id, client_id, "
			     "client_secret, filters_json, filter_rule, include_personal, schedule, next_run_at, "
			     "created_by, created_at, updated_at) VALUES (?, ?, ?, 'powerbi', ?, ?, ?, ?, ?, ?, ?, ?, "
			     "?, ?, ?)", &st, err)) ||
	    (rc = db_bind_text(st, 1, id, err)) || (rc = db_bind_text(st, 2, org_id, err)) ||
	    (rc = db_bind_text(st, 3, in->name, err)) || (rc = db_bind_text(st, 4, in->tenant_id, err)) ||
	    (rc = db_bind_text(st, 5, in->client_id, err)) || (rc = db_bind_text(st, 6, sealed, err)) ||
	    (rc = db_bind_text(st, 7, filters, err)) ||
	    (rc = db_bind_text(st, 8, in->filter_rule && *in->filter_rule ? in->filter_rule : NULL, err))) {
		rc = save_failed(db, st, rc, f);
		goto out;
	}
	db_bind_int64(st, 9, in->include_personal == 1, NULL);
	if ((rc = db_bind_text(st, 10, in->schedule && *in->schedule ? in->schedule : NULL, err)) ||
	    (rc = db_bind_text(st, 11, next[0] ? next : NULL, err)) || (rc = db_bind_text(st, 12, user_id, err)) ||
	    (rc = db_bind_text(st, 13, now, err)) || (rc = db_bind_text(st, 14, now, err))) {
		rc = save_failed(db, st, rc, f);
		goto out;
	}
	rc = save_and_read(db, st, org_id, id, out, f);
out:
	free(sealed);
	free(filters);
	return rc;
}

int integrations_update(pb_db *db, const pb_config *cfg, const char *org_id, const char *id,
			const integration_input *in, pb_integration **out, pb_failure *f)
{
	db_stmt *st = NULL;
	pb_integration *cur = NULL;
	char now[PB_TIME_BUF], next[PB_TIME_BUF];
	char *sealed = NULL, *filters = NULL, *err = f->message;
	int rc;
	*out = NULL;
	if (in->type && strcmp(in->type, "powerbi")) {
		rc = pb_fail(f, PB_EINVAL, NULL, "type: only \"powerbi\" is supported");
		goto out;
	}
	if ((rc = integrations_get(db, org_id, id, &cur, err)) ||
	    (in->client_secret && (rc = seal_secret(cfg, id, in->client_secret, &sealed, err))) ||
	    (in->filters && (rc = integration_filters_normalize(in->filters, &filters, err)))) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	const char *schedule = in->schedule_set ? (in->schedule && *in->schedule ? in->schedule : NULL) : cur->schedule;
	if (in->schedule_set) {
		if ((rc = next_due(schedule, next, err))) {
			pb_fail_as(f, rc, NULL);
			goto out;
		}
	} else {
		xsnprintf(next, sizeof next, "%s", cur->next_run_at ? cur->next_run_at : "");
	}
	const char *rule = in->filter_rule ? (*in->filter_rule ? in->filter_rule : NULL) : cur->filter_rule;
	pb_now(now);
	if ((rc = db_begin(db, err))) {
		pb_fail_as(f, rc, NULL);
		goto out;
	}
	if ((in->name && (rc = check_name_free(db, org_id, in->name, id, f))) ||
	    (rc = db_prepare(db, "UPDATE integrations SET name = ?, tenant_id = ?, client_id = ?, client_secret = ?, "
			     "filters_json = ?, filter_rule = ?, include_personal = ?, schedule = ?, next_run_at = ?, "
			     "updated_at = ? WHERE id = ? AND org_id = ?", &st, err)) ||
	    (rc = db_bind_text(st, 1, in->name ? in->name : cur->name, err)) ||
	    (rc = db_bind_text(st, 2, in->tenant_id ? in->tenant_id : cur->tenant_id, err)) ||
	    (rc = db_bind_text(st, 3, in->client_id ? in->client_id : cur->client_id, err)) ||
	    (rc = db_bind_text(st, 4, sealed ? sealed : cur->client_secret, err)) ||
	    (rc = db_bind_text(st, 5, filters ? filters : cur->filters_json, err)) ||
	    (rc = db_bind_text(st, 6, rule, err))) {
		rc = save_failed(db, st, rc, f);
		goto out;
	}
	db_bind_int64(st, 7, in->include_personal >= 0 ? in->include_personal : cur->include_personal, NULL);
	if ((rc = db_bind_text(st, 8, schedule, err)) || (rc = db_bind_text(st, 9, next[0] ? next : NULL, err)) ||
	    (rc = db_bind_text(st, 10, now, err)) || (rc = db_bind_text(st, 11, id, err)) ||
	    (rc = db_bind_text(st, 12, org_id, err))) {
		rc = save_failed(db, st, rc, f);
		goto out;
	}
	rc = save_and_read(db, st, org_id, id, out, f);
out:
	integration_free(cur);
	free(sealed);
	free(filters);
	return rc;
}

int integrations_delete(pb_db *db, const char *org_id, const char *id, char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db, "DELETE FROM integrations WHERE id = ? AND org_id = ?", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, id, err)) && !(rc = db_bind_text(st, 2, org_id, err)) &&
	    !(rc = db_exec(db, st, err)) && db_changes(db) == 0)
		rc = pb_err(err, PB_ENOTFOUND, "no integration %s", id);
	db_done(st);
	return rc;
}

int integration_advance_schedule(pb_db *db, const char *id, const char *seen, const char *next, bool *won,
				 char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare(db, "UPDATE integrations SET next_run_at = ? WHERE id = ? AND next_run_at = ?", &st, err);
	*won = false;
	if (!rc && !(rc = db_bind_text(st, 1, next, err)) && !(rc = db_bind_text(st, 2, id, err)) &&
	    !(rc = db_bind_text(st, 3, seen, err)) && !(rc = db_exec(db, st, err)))
		*won = db_changes(db) == 1;
	db_done(st);
	return rc;
}

/* ---------------- runs ---------------- */

#define RUN_COLS "id, integration_id, org_id, job_id, trigger, state, mode, started_at, finished_at, " \
	"counts_json, warnings_json, error_code, error_message, created_at, wait_until, wait_reason"

/* A run's columns (RUN_COLS' order), read and freed through these lists. */
static const db_fixed_field run_fixed[] = {
	DB_FIXED_FIELD(pb_run, id, 0),     DB_FIXED_FIELD(pb_run, integration_id, 1),
	DB_FIXED_FIELD(pb_run, org_id, 2), DB_FIXED_FIELD(pb_run, created_at, 13),
};
static const db_text_field run_texts[] = {
	DB_TEXT_FIELD(pb_run, job_id, 3),         DB_TEXT_FIELD(pb_run, trigger, 4),
	DB_TEXT_FIELD(pb_run, state, 5),          DB_TEXT_FIELD(pb_run, mode, 6),
	DB_TEXT_FIELD(pb_run, started_at, 7),     DB_TEXT_FIELD(pb_run, finished_at, 8),
	DB_TEXT_FIELD(pb_run, counts_json, 9),    DB_TEXT_FIELD(pb_run, warnings_json, 10),
	DB_TEXT_FIELD(pb_run, error_code, 11),    DB_TEXT_FIELD(pb_run, error_message, 12),
	DB_TEXT_FIELD(pb_run, wait_until, 14),    DB_TEXT_FIELD(pb_run, wait_reason, 15),
};
static const db_reader run_reader = DB_READER(pb_run, "run", run_fixed, run_texts, NULL);

void run_free(pb_run *r)
{
	db_reader_free(&run_reader, r);
}

void runs_free(pb_run *v, size_t n)
{
	db_reader_rows_free(&run_reader, v, n);
}

static int run_query_one(pb_db *db, const char *sql, const char *arg, pb_run **out, char *err)
{
	void *r;
	int rc = db_get_one(db, sql, &arg, 1, &run_reader, NULL, arg, &r, err);
	*out = r;
	return rc;
}

int integration_run_get(pb_db *db, const char *run_id, pb_run **out, char *err)
{
	return run_query_one(db, "SELECT " RUN_COLS " FROM integration_runs WHERE id = ?", run_id, out, err);
}

int integration_run_submit(pb_db *db, const char *org_id, const char *user_id, const char *integration_id,
			   const char *trigger, pb_run **out, bool *existing, char *err)
{
	char run_id[PB_ID_BUF], job_id[PB_ID_BUF] = "", now[PB_TIME_BUF], key[PB_ID_BUF + 16];
	char *input = NULL;
	int rc;
	*out = NULL;
	*existing = false;
	if ((rc = pb_new_id(run_id, err)))
		return rc;
	pb_now(now);
	json_t *in = json_pack("{s:s, s:s}", "integration_id", integration_id, "run_id", run_id);
	input = in ? json_dumps(in, JSON_COMPACT) : NULL;
	json_decref(in);
	if (!input)
		return pb_err(err, PB_ENOMEM, "out of memory");
	xsnprintf(key, sizeof key, "ingest:%s", integration_id);
	pb_job_spec spec = { .kind = "ingest", .org_id = org_id, .user_id = user_id, .input = input,
			     .idempotency_key = key, .max_attempts = 10 };
	/* The job and its run row commit together (jobs_submit joins the transaction): a worker
	 * never claims a job whose run is missing, and no run waits for a job never queued. */
	const char *ins[] = { run_id, integration_id, org_id, job_id, trigger, now };
	if ((rc = db_begin(db, err)))
		goto out;
	if (!(rc = jobs_submit(db, &spec, job_id, existing, err)) && !*existing)
		rc = db_exec_texts(db, "INSERT INTO integration_runs (id, integration_id, org_id, job_id, trigger, state, "
				   "created_at) VALUES (?, ?, ?, ?, ?, 'queued', ?)", ins, 6, err);
	if ((rc = db_end(db, rc, err)))
		goto out;
	/* one already queued or running answers: nothing was written */
	rc = *existing ? run_query_one(db, "SELECT " RUN_COLS " FROM integration_runs WHERE job_id = ?", job_id, out, err)
		       : integration_run_get(db, run_id, out, err);
out:
	free(input);
	return rc;
}

/* A run still queued or running whose job has ended without closing it (cancelled while
 * queued, its worker lost for good) ended with its job: the job is the record of how, so the
 * run is shown failed with the job's code and message. Reads only: nothing is written.
 * *ended (new: job_free) is that job, NULL when the run is not such a run. */
static int ended_without_run(pb_db *db, const char *job_id, const char *state, pb_job **ended, char *err)
{
	*ended = NULL;
	if (!job_id || !*job_id || !state || (strcmp(state, "queued") && strcmp(state, "running")))
		return 0;
	int rc = jobs_get(db, job_id, ended, err);
	if (rc == PB_ENOTFOUND)
		rc = 0;
	if (rc || !*ended || !job_ended(*ended)) {
		job_free(*ended);
		*ended = NULL;
	}
	return rc;
}

static int replace_str(char **field, const char *value)
{
	char *copy = value ? xstrdup(value) : NULL;
	if (value && !copy)
		return PB_ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

static int run_end_from_job(pb_db *db, pb_run *r, char *err)
{
	pb_job *j = NULL;
	int rc = ended_without_run(db, r->job_id, r->state, &j, err);
	if (rc || !j)
		return rc;
	if (replace_str(&r->state, "failed") ||
	    replace_str(&r->error_code, j->error_code ? j->error_code : "worker_lost") ||
	    replace_str(&r->error_message, j->error_message ? j->error_message
							    : "the run's job ended without finishing the run") ||
	    replace_str(&r->finished_at, j->finished_at))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	job_free(j);
	return rc;
}

/* The newest run's state (last_run_state) as run_end_from_job shows it. */
static int last_state_from_job(pb_db *db, pb_integration *i, const char *job_id, char *err)
{
	pb_job *j = NULL;
	int rc = ended_without_run(db, job_id, i->last_run_state, &j, err);
	if (!rc && j && replace_str(&i->last_run_state, "failed"))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	job_free(j);
	return rc;
}

int integration_runs_list(pb_db *db, const char *org_id, const char *integration_id, pb_run **out, size_t *n,
			  char *err)
{
	void *got;
	pb_run *v;
	size_t len;
	const char *args[] = { integration_id, org_id };
	int rc = db_get_rows(db, "SELECT " RUN_COLS " FROM integration_runs WHERE integration_id = ? "
			     "AND org_id = ? ORDER BY created_at DESC, id LIMIT ?", args, 2, PB_INTEGRATION_RUNS_KEPT,
			     &run_reader, NULL, &got, &len, err);
	*out = NULL;
	*n = 0;
	if (rc)
		return rc;
	v = got;
	for (size_t i = 0; !rc && i < len; i++)
		rc = run_end_from_job(db, &v[i], err);
	if (rc) {
		runs_free(v, len);
		return rc;
	}
	*out = v;
	*n = len;
	return 0;
}

int integration_run_start(pb_db *db, const char *run_id, const char *mode, char *err)
{
	char now[PB_TIME_BUF];
	pb_now(now);
	const char *a[] = { mode, now, run_id };
	return db_exec_texts(db, "UPDATE integration_runs SET state = 'running', mode = ?, "
			     "started_at = COALESCE(started_at, ?), wait_until = NULL, wait_reason = NULL WHERE id = ?", a,
			     3, err);
}

int integration_run_wait(pb_db *db, const char *run_id, const char *until, const char *reason, char *err)
{
	const char *a[] = { until, reason, run_id };
	return db_exec_texts(db, "UPDATE integration_runs SET wait_until = ?, wait_reason = ? WHERE id = ?", a, 3, err);
}

int integration_run_warnings(pb_db *db, const char *run_id, const char *warnings_json, char *err)
{
	const char *a[] = { warnings_json, run_id };
	return db_exec_texts(db, "UPDATE integration_runs SET warnings_json = ? WHERE id = ?", a, 2, err);
}

int integration_run_finish(pb_db *db, const char *run_id, bool ok, const char *counts_json,
			   const char *warnings_json, const char *code, const char *message, char *err)
{
	char now[PB_TIME_BUF];
	pb_run *r = NULL;
	int rc;
	pb_now(now);
	if ((rc = integration_run_get(db, run_id, &r, err)))
		return rc;
	if ((rc = db_begin(db, err)))
		goto out;
	const char *a[] = { ok ? "succeeded" : "failed", now, counts_json, warnings_json, ok ? NULL : code,
			    ok ? NULL : message, now, run_id };
	const char *b[] = { r->started_at ? r->started_at : r->created_at, r->integration_id };
	const char *c[] = { r->integration_id, r->integration_id };
	rc = db_exec_texts(db, "UPDATE integration_runs SET state = ?, finished_at = ?, "
			   "counts_json = COALESCE(?, counts_json), warnings_json = COALESCE(?, warnings_json), "
			   "error_code = ?, error_message = ?, started_at = COALESCE(started_at, ?), "
			   "wait_until = NULL, wait_reason = NULL WHERE id = ?",
			   a, 8, err);
	if (!rc && ok)
		rc = db_exec_texts(db, "UPDATE integrations SET last_success_at = ? WHERE id = ?", b, 2, err);
	if (!rc)
		rc = db_exec_texts(db, "DELETE FROM integration_runs WHERE integration_id = ? AND id NOT IN "
				   "(SELECT id FROM integration_runs WHERE integration_id = ? "
				   "ORDER BY created_at DESC, id LIMIT " RUNS_KEPT_TEXT ")", c, 2, err);
	rc = db_end(db, rc, err);
out:
	run_free(r);
	return rc;
}

json_t *run_json(const pb_run *r)
{
	json_t *counts = json_loads(r->counts_json ? r->counts_json : "{}", 0, NULL);
	json_t *warnings = json_loads(r->warnings_json ? r->warnings_json : "[]", 0, NULL);
	json_t *error = r->error_code || r->error_message
		? json_pack("{s:s?, s:s?}", "code", r->error_code, "message", r->error_message) : json_null();
	/* a run put back in the queue says why it waits and until when */
	bool waits = r->wait_until && (!strcmp(r->state, "queued") || !strcmp(r->state, "running"));
	json_t *waiting = waits ? json_pack("{s:s, s:s?}", "until", r->wait_until, "reason", r->wait_reason) : json_null();
	if (!counts || !warnings || !error || !waiting) {
		json_decref(counts);
		json_decref(warnings);
		json_decref(error);
		json_decref(waiting);
		return NULL;
	}
	return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:o, s:o, s:o, s:o, s:s}", "id", r->id,
			 "integration_id", r->integration_id, "trigger", r->trigger, "state", r->state, "mode", r->mode,
			 "job_id", r->job_id, "started_at", r->started_at, "finished_at", r->finished_at, "counts",
			 counts, "warnings", warnings, "error", error, "waiting", waiting, "created_at", r->created_at);
}

int integration_runs_json(pb_db *db, const char *org_id, const char *integration_id, json_t **out, char *err)
{
	pb_run *v = NULL;
	size_t n = 0;
	int rc = integration_runs_list(db, org_id, integration_id, &v, &n, err);
	json_t *list = rc ? NULL : json_array();
	for (size_t k = 0; list && k < n; k++)
		json_out_list_add_new(&list, run_json(&v[k]));
	runs_free(v, n);
	*out = list;
	return rc || list ? rc : pb_err(err, PB_ENOMEM, "out of memory");
}
