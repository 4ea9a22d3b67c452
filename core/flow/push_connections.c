/* Push connections: team-shared service principals, their sealed secrets and who may use them
 * (core/flow/push.h). */
#include <ctype.h>
#include <string.h>

#include "core/flow/push_internal.h"
#include "core/store/connections.h"
#include "runtime/json_body.h"

/* ======================================================================== connections */


void push_conn_free(push_conn *c)
{
	if (!c)
		return;
	free_each(c->team, c->name, c->tenant_id, c->client_id, c->client_secret, c);
}

#define CONN_COLS                                                                                          \
	"SELECT c.id, c.org_id, c.team_id, c.name, c.tenant_id, c.client_id, c.client_secret, c.created_at "  \
	"FROM push_connections c "


int push_visible_teams(pb_db *db, const push_caller *who, const char *org_id, team_list *out, char *err)
{
	return identity_teams(db, org_id, who && who->role != PB_ROLE_OWNER ? who->user_id : NULL, &out->v, &out->n,
			      err);
}

const pb_team *push_team_find(const team_list *l, const char *id, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if ((id && !strcmp(l->v[i].id, id)) || (name && !strcmp(l->v[i].name, name)))
			return &l->v[i];
	return NULL;
}

static int conn_row(db_stmt *st, push_conn **out, char *err)
{
	bool ok = true;
	push_conn *c = calloc(1, sizeof *c);
	if (!c)
		return pb_err(err, PB_ENOMEM, "out of memory");
	xsnprintf(c->id, sizeof c->id, "%s", db_col_text(st, 0));
	xsnprintf(c->org_id, sizeof c->org_id, "%s", db_col_text(st, 1));
	xsnprintf(c->team_id, sizeof c->team_id, "%s", db_col_text(st, 2));
	c->name = db_col_dup(st, 3, &ok);
	c->tenant_id = db_col_dup(st, 4, &ok);
	c->client_id = db_col_dup(st, 5, &ok);
	c->client_secret = db_col_dup(st, 6, &ok);
	xsnprintf(c->created_at, sizeof c->created_at, "%s", db_col_text(st, 7));
	if (!ok) {
		push_conn_free(c);
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	*out = c;
	return 0;
}

/* c's team name from l; false when the team is not in l (not visible to the caller). */
static bool conn_team(push_conn *c, const team_list *l, bool *oom)
{
	const pb_team *t = push_team_find(l, c->team_id, NULL);
	*oom = false;
	if (!t)
		return false;
	free(c->team);
	*oom = !(c->team = xstrdup(t->name));
	return true;
}

/* push_conn_get; team_name false (with who NULL): without c->team, whose read of the org's
 * teams a session does not need. */
static int conn_get(pb_db *db, const push_caller *who, const char *id, bool team_name, push_conn **out, char *err)
{
	db_stmt *st = NULL;
	team_list tl = { 0 };
	push_conn *c = NULL;
	bool oom = false;
	*out = NULL;
	int rc = db_prepare(db, who ? CONN_COLS "WHERE c.id = ? AND c.org_id = ?" : CONN_COLS "WHERE c.id = ?", &st, err);
	if (rc || (rc = db_bind_text(st, 1, id, err)) || (who && (rc = db_bind_text(st, 2, who->org_id, err))))
		goto out;
	rc = db_row(db, st, err);
	if (rc == 1)
		rc = conn_row(st, &c, err);
	else if (!rc)
		rc = pb_err(err, PB_ENOTFOUND, "push connection %.40s not found", id);
	db_done(st);
	st = NULL;
	if (rc || !team_name || (rc = push_visible_teams(db, who, c->org_id, &tl, err)))
		goto out;
	if (!conn_team(c, &tl, &oom) && who) {
		rc = pb_err(err, PB_ENOTFOUND, "push connection %.40s not found", id);
		goto out;
	}
	if (oom)
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	if (!rc) {
		*out = c;
		c = NULL;
	}
	db_done(st);
	free(tl.v);
	push_conn_free(c);
	return rc;
}

int push_conn_get(pb_db *db, const push_caller *who, const char *id, push_conn **out, char *err)
{
	return conn_get(db, who, id, true, out, err);
}

int push_conn_for_session(pb_db *db, const char *id, push_conn **out, char *err)
{
	return conn_get(db, NULL, id, false, out, err);
}

static json_t *conn_json(const push_conn *c)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "id", c->id, "name", c->name, "team", c->team, "tenant_id",
			 c->tenant_id, "client_id", c->client_id, "has_client_secret", 1, "created_at", c->created_at);
}

bool push_id_text(const char *s)
{
	if (!s || !*s || strlen(s) > PB_PBI_ID_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' && *s != '_')
			return false;
	return true;
}

/* The team's id if the caller may use it (owners: any team of the org; members: theirs). */
static int team_for_caller(pb_db *db, const push_caller *who, const char *team, char id[PB_ID_BUF], bool *found,
			   char *err)
{
	team_list tl = { 0 };
	int rc = push_visible_teams(db, who, who->org_id, &tl, err);
	const pb_team *t = rc ? NULL : push_team_find(&tl, NULL, team);
	*found = t != NULL;
	if (t)
		xsnprintf(id, PB_ID_BUF, "%s", t->id);
	free(tl.v);
	return rc;
}

int push_connection_create(pb_db *db, const pb_config *cfg, const push_caller *who, const json_t *body,
			   json_t **reply, pb_failure *f)
{
	static const char *const keys[] = { "name", "team", "tenant_id", "client_id", "client_secret", NULL };
	db_stmt *st = NULL;
	char id[PB_ID_BUF], team_id[PB_ID_BUF], now[PB_TIME_BUF], context[64];
	char *sealed = NULL, *err = f->message;
	push_conn *c = NULL;
	bool found = false;
	int rc;
	*reply = NULL;
	if (!json_is_object(body))
		return pb_fail(f, PB_EINVAL, NULL, "the body must be an object");
	if (json_body_only_keys(body, keys, "", err))
		return pb_fail_as(f, PB_EINVAL, NULL);
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *team = json_string_value(json_object_get(body, "team"));
	const char *tenant = json_string_value(json_object_get(body, "tenant_id"));
	const char *client = json_string_value(json_object_get(body, "client_id"));
	const char *secret = json_string_value(json_object_get(body, "client_secret"));
	if (!name || !*name || strlen(name) > PB_NAME_FIELD_MAX || !utf8_valid(name, strlen(name)))
		return pb_fail(f, PB_EINVAL, NULL, "\"name\" is required (1 to 128 bytes of UTF-8)");
	if (!team || !*team)
		return pb_fail(f, PB_EINVAL, NULL, "\"team\" is required: the team that shares it");
	if (!push_id_text(tenant) || !push_id_text(client))
		return pb_fail(f, PB_EINVAL, NULL, "\"tenant_id\" and \"client_id\" are required ids");
	if (!secret || !*secret || strlen(secret) > PB_PBI_SECRET_MAX)
		return pb_fail(f, PB_EINVAL, NULL, "\"client_secret\" is required");
	if (!cfg->encryption_keys)
		return pb_fail(f, PB_EINTERNAL, NULL, "APPLICATION_ENCRYPTION_KEYS is not set: the client secret of push "
			       "connection '%s' cannot be stored", name);
	if ((rc = team_for_caller(db, who, team, team_id, &found, err)))
		return rc;
	if (!found && who->role == PB_ROLE_OWNER)
		return pb_fail(f, PB_EINVAL, NULL, "\"team\": no team '%s' in this organization", team);
	if (!found)
		return pb_fail(f, PB_EFORBIDDEN, NULL, "\"team\": members create push connections only for their own "
			       "teams, and '%s' is not one of them", team);
	if ((rc = pb_new_id(id, err)))
		return rc;
	xsnprintf(context, sizeof context, "push_connection:%s", id);
	if ((rc = pb_seal(cfg->encryption_keys, secret, strlen(secret), context, &sealed, err)))
		return rc;
	pb_now(now);
	if ((rc = db_prepare(db,
			     "INSERT INTO push_connections (id, org_id, team_id, name, tenant_id, client_id, client_secret, "
			     "created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, id, err)) || (rc = db_bind_text(st, 2, who->org_id, err)) ||
	    (rc = db_bind_text(st, 3, team_id, err)) || (rc = db_bind_text(st, 4, name, err)) ||
	    (rc = db_bind_text(st, 5, tenant, err)) || (rc = db_bind_text(st, 6, client, err)) ||
	    (rc = db_bind_text(st, 7, sealed, err)) || (rc = db_bind_text(st, 8, who->user_id, err)) ||
	    (rc = db_bind_text(st, 9, now, err)))
		goto out;
	rc = db_exec(db, st, err);
	db_done(st);
	st = NULL;
	if (rc == PB_EINVAL) {
		rc = pb_fail(f, PB_ECONFLICT, NULL, "\"name\": a push connection named '%s' exists in the organization",
			     name);
		goto out;
	}
	if (rc || (rc = push_conn_get(db, NULL, id, &c, err)))
		goto out;
	if (!(*reply = conn_json(c)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	db_done(st);
	free(sealed);
	push_conn_free(c);
	return rc;
}

int push_connections_list(pb_db *db, const push_caller *who, json_t **reply, char *err)
{
	db_stmt *st = NULL;
	team_list tl = { 0 };
	json_t *arr = json_array();
	int rc = arr ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
	if (rc || (rc = push_visible_teams(db, who, who->org_id, &tl, err)) ||
	    (rc = db_prepare(db, CONN_COLS "WHERE c.org_id = ? ORDER BY c.name", &st, err)) ||
	    (rc = db_bind_text(st, 1, who->org_id, err)))
		goto out;
	while (json_array_size(arr) < PB_LIST_MAX_ITEMS && (rc = db_row(db, st, err)) == 1) {
		push_conn *c = NULL;
		bool oom = false;
		if ((rc = conn_row(st, &c, err)))
			goto out;
		if (conn_team(c, &tl, &oom))
			rc = oom || json_array_append_new(arr, conn_json(c)) ? pb_err(err, PB_ENOMEM, "out of memory") : 0;
		push_conn_free(c);
		if (rc)
			goto out;
	}
	if (!rc && !(*reply = json_pack("{s:O}", "push_connections", arr)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	db_done(st);
	free(tl.v);
	json_decref(arr);
	return rc;
}

int push_connections_rotate(pb_db *db, const pb_config *cfg, size_t *resealed, char *err)
{
	/* kind "push_connection" + the row id: the context push_connection_create seals with */
	static const sealed_column cols[] = {
		{ "SELECT id, client_secret FROM push_connections",
		  "UPDATE push_connections SET client_secret = ? WHERE id = ?", "push_connection", NULL },
	};
	return reseal_columns(db, cfg->encryption_keys, cols, sizeof cols / sizeof cols[0], resealed, err);
}

int push_connection_delete(pb_db *db, const push_caller *who, const char *id, pb_failure *f)
{
	push_conn *c = NULL;
	db_stmt *st = NULL;
	char *err = f->message;
	int rc = push_conn_get(db, who, id, &c, err);
	if (rc || (rc = db_begin(db, err)))
		goto out;
	const char *which[] = { c->id };
	bool found = false;
	/* its datasets would go with it (ON DELETE CASCADE) and live on in Power BI, out of reach. The
	 * connection's row is locked first (PostgreSQL): a dataset added meanwhile on another host
	 * waits for this delete, then fails on the connection gone, instead of being counted out. */
	if ((rc = db_has_row(db, DB_LOCKING(db, "SELECT 1 FROM push_connections WHERE id = ?", "FOR UPDATE"), which, 1,
			     &found, err)) ||
	    (rc = db_prepare_texts(db, "SELECT count(*) FROM push_datasets WHERE connection_id = ?", which, 1, &st,
				   err)))
		goto end;
	if ((rc = db_row(db, st, err)) < 0)
		goto end;
	rc = PB_OK;
	long datasets = db_col_int64(st, 0);
	db_done(st);
	st = NULL;
	if (datasets > 0) {
		rc = pb_fail(f, PB_ECONFLICT, NULL, "push connection '%s' still has %ld push dataset%s: delete %s first "
			     "(DELETE /api/push-datasets/{id}, which removes them in Power BI too)",
			     c->name, datasets, datasets == 1 ? "" : "s", datasets == 1 ? "it" : "them");
		goto end;
	}
	rc = db_exec_texts(db, "DELETE FROM push_connections WHERE id = ?", which, 1, err);
end:
	rc = db_end(db, rc, err);
out:
	db_done(st);
	push_conn_free(c);
	return rc;
}

int push_conn_session(const pb_config *cfg, const push_conn *c, pbi_session *s, pb_failure *f)
{
	char *plain = NULL, context[64], label[PB_NAME_FIELD_MAX + 32];
	size_t len = 0;
	memset(s, 0, sizeof *s);
	if (!cfg->encryption_keys)
		return pb_fail(f, PB_EINVAL, "bad_credentials", "push connection '%s': its client secret cannot be opened: "
			       "APPLICATION_ENCRYPTION_KEYS is not set", c->name);
	xsnprintf(context, sizeof context, "push_connection:%s", c->id);
	xsnprintf(label, sizeof label, "push connection '%s'", c->name);
	int rc = pb_open(cfg->encryption_keys, c->client_secret, context, &plain, &len, f->message);
	if (rc)
		rc = pb_fail(f, PB_EINVAL, "bad_credentials", "%s: its client secret cannot be opened (%s): create the push "
			     "connection again", label, f->message);
	else
		rc = pbi_session_open_app(s, cfg, label, c->tenant_id, c->client_id, plain, f);
	pb_secret_free(plain, len);
	return rc;
}
