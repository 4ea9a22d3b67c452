/* Semantic-model refreshes: resolving a model, submitting, the "refresh" job, history,
 * schedules and upstream events. See core/flow/refresh.h. */
#include "core/flow/refresh.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/assets.h"
#include "core/lang/cron.h"
#include "core/store/identity.h"
#include "core/store/integrations.h"
#include "core/flow/lineage.h"
#include "core/flow/ms_failure.h"
#include "core/flow/pbi_session.h"
#include "core/flow/webhooks.h"
#include "core/store/published_models.h"
#include "msapi/powerbi.h"
#include "runtime/crypto.h"
#include "runtime/jobs.h"
#include "runtime/json_body.h"
#include "runtime/log.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

/* Bytes of a name quoted in a message (with its NUL): several fit in one message line. */
#define SHOWN_NAME 81
/* "semantic model '<name>' in workspace '<name>'", and the credentials in words */
#define WHAT_MAX (2 * SHOWN_NAME + 64)
#define VIA_MAX (SHOWN_NAME + 64)

static void copy(char *dst, size_t size, const char *src)
{
	if (xsnprintf(dst, size, "%s", src ? src : ""))
		dst[0] = '\0';
}

/* A name to show: cut when it is too long, at a character boundary, so messages and JSON
 * made from it stay valid UTF-8. */
static void copy_name(char *dst, size_t size, const char *src)
{
	(void)xsnprintf(dst, size, "%s", src ? src : "");
	size_t n = strlen(dst);
	while (n && !utf8_valid(dst, n))
		dst[--n] = '\0';
}

/* Puts "what: " before f's message (a failure a lower step described). */
static void failure_prefix(pb_failure *f, const char *what)
{
	pb_fail_prefix(f, "%s", what);
}

/* "semantic model 'Sales' in workspace 'Finance'" (the workspace's id when pbiport does not
 * know its name), names cut to SHOWN_NAME. */
static void describe(const char *name, const char *ws_name, const char *ws_id, char out[WHAT_MAX])
{
	char n[SHOWN_NAME], w[SHOWN_NAME];
	copy_name(n, sizeof n, name);
	copy_name(w, sizeof w, ws_name);
	if (w[0])
		(void)xsnprintf(out, WHAT_MAX, "semantic model '%s' in workspace '%s'", n, w);
	else
		(void)xsnprintf(out, WHAT_MAX, "semantic model '%s' in workspace %s", n,
				str_is_guid(ws_id) ? ws_id : "(id not valid)");
}

static void describe_target(const refresh_target *t, char out[WHAT_MAX])
{
	describe(t->name, t->workspace_name, t->workspace_id, out);
}

/* ======================================================================== targets */

static int published_lookup(pb_db *db, const char *org_id, const char *ref, refresh_target *t, bool *found, char *err)
{
	pm_model m;
	int rc = published_model_find(db, org_id, ref, &m, found, err);
	if (rc || !*found)
		return rc;
	copy(t->model_ref, sizeof t->model_ref, m.id);
	copy(t->workspace_id, sizeof t->workspace_id, m.workspace_id);
	copy(t->dataset_id, sizeof t->dataset_id, m.semantic_model_id);
	copy_name(t->name, sizeof t->name, m.name);
	copy(t->publisher_id, sizeof t->publisher_id, m.user_id);
	t->published = true;
	return 0;
}

/* The workspace's name, when an import brought the workspace in (messages name it). */
static void workspace_lookup(pb_db *db, const char *org_id, refresh_target *t)
{
	pb_asset *w = NULL;
	char ignore[PB_ERR_MAX];
	if (!assets_get_by_powerbi_id(db, org_id, "workspace", t->workspace_id, &w, ignore) && w->name)
		copy_name(t->workspace_name, sizeof t->workspace_name, w->name);
	asset_free(w);
}

/* The Power BI ids go into URLs: only Microsoft ids (GUIDs) may, whatever a stored row holds.
 * The message shows the id's first 40 bytes, anything but printable ASCII as '?'. */
static int ids_check(const refresh_target *t, pb_failure *f)
{
	const char *what = !str_is_guid(t->workspace_id) ? "workspace" : !str_is_guid(t->dataset_id) ? "semantic model" : NULL;
	char shown[41], name[SHOWN_NAME];
	if (!what)
		return 0;
	const char *id = !strcmp(what, "workspace") ? t->workspace_id : t->dataset_id;
	size_t n = 0;
	for (; id[n] && n < sizeof shown - 1; n++)
		shown[n] = id[n] >= 0x20 && id[n] < 0x7f ? id[n] : '?';
	shown[n] = '\0';
	copy_name(name, sizeof name, t->name);
	return pb_fail(f, PB_ECONFLICT, "conflict",
		       "semantic model '%s' has a Power BI %s id ('%s') that is not a Microsoft id (GUID): pbiport does "
		       "not call Power BI with it; import or publish the model again",
		       name, what, shown);
}

int refresh_resolve(pb_db *db, const char *org_id, const char *ref, refresh_target *out, pb_failure *f)
{
	pb_asset *a = NULL;
	bool found = false;
	memset(out, 0, sizeof *out);
	int rc = assets_get(db, org_id, ref, &a, f->message);
	if (!rc && !strcmp(a->kind, "semantic_model") && a->workspace_powerbi_id) {
		copy(out->model_ref, sizeof out->model_ref, a->id);
		copy(out->workspace_id, sizeof out->workspace_id, a->workspace_powerbi_id);
		copy(out->dataset_id, sizeof out->dataset_id, a->powerbi_id);
		copy_name(out->name, sizeof out->name, a->name);
		copy(out->integration_id, sizeof out->integration_id, a->integration_id);
		asset_free(a);
		workspace_lookup(db, org_id, out);
		return ids_check(out, f);
	}
	asset_free(a);
	if (rc && rc != PB_ENOTFOUND)
		return pb_fail_as(f, rc, NULL);
	if ((rc = published_lookup(db, org_id, ref, out, &found, f->message)))
		return pb_fail_as(f, rc, NULL);
	if (!found) {
		char shown[41];
		copy_name(shown, sizeof shown, ref);
		return pb_fail(f, PB_ENOTFOUND, "not_found", "no semantic model '%s' in this organization", shown);
	}
	workspace_lookup(db, org_id, out);
	return ids_check(out, f);
}

/* Who refreshes a model, and how messages name those credentials. */
typedef struct refresh_auth {
	const char *kind;             /* "sp": the integration's service principal; "user": a delegated connection */
	const char *user_id;          /* "user": the publisher (borrowed from the target) */
	char via[VIA_MAX];            /* "integration 'prod'", "the Power BI connection of ann, who published it" */
} refresh_auth;

static void via_integration(const pb_integration *i, char via[VIA_MAX])
{
	char name[SHOWN_NAME];
	copy_name(name, sizeof name, i->name);
	(void)xsnprintf(via, VIA_MAX, "integration '%s'", name);
}

static void via_publisher(pb_db *db, const char *org_id, const char *user_id, char via[VIA_MAX])
{
	char name[PB_NAME_FIELD_MAX + 1], shown[SHOWN_NAME], ignore[PB_ERR_MAX];
	if (user_id && *user_id && !identity_user_name(db, org_id, user_id, name, ignore)) {
		copy_name(shown, sizeof shown, name);
		(void)xsnprintf(via, VIA_MAX, "the Power BI connection of %s, who published it", shown);
	} else {
		copy(via, VIA_MAX, "the Power BI connection of its publisher");
	}
}

/* Who refreshes t; asker NULL for schedules and events, which act for a publisher.
 * no_credentials when nobody can, forbidden when a published model is someone else's. */
static int choose_auth(pb_db *db, const char *org_id, const refresh_target *t, const char *asker, refresh_auth *a,
		       pb_failure *f)
{
	char what[WHAT_MAX];
	memset(a, 0, sizeof *a);
	describe_target(t, what);
	if (!t->published) {
		pb_integration *i = NULL;
		int rc = t->integration_id[0] ? integrations_get(db, org_id, t->integration_id, &i, f->message) : PB_ENOTFOUND;
		if (!rc)
			via_integration(i, a->via);
		integration_free(i);
		if (rc == PB_ENOTFOUND)
			return pb_fail(f, PB_EINVAL, "no_credentials",
				       "no credentials to refresh %s: the integration that imported it was deleted (an "
				       "integration that sees the workspace imports it again)",
				       what);
		if (rc)
			return pb_fail_as(f, rc, NULL);
		a->kind = "sp";
		return 0;
	}
	if (!t->publisher_id[0])
		return pb_fail(f, PB_EINVAL, "no_credentials",
			       "no credentials to refresh %s: the user who published it was deleted (publish it again)", what);
	via_publisher(db, org_id, t->publisher_id, a->via);
	if (asker && strcmp(asker, t->publisher_id))
		return pb_fail(f, PB_EFORBIDDEN, "forbidden",
			       "%s is refreshed with %s: pbiport refreshes a published model only with its publisher's "
			       "connection, so only they may ask for a refresh or change its schedule (schedules and events "
			       "refresh it for them)",
			       what, a->via);
	a->kind = "user";
	a->user_id = t->publisher_id;
	return 0;
}

/* ======================================================================== options */

/* One of names, case-insensitively (Power BI's docs write them both ways); *canon is the
 * spelling sent on. */
static bool one_of(const json_t *v, const char *const *names, const char **canon)
{
	for (size_t i = 0; json_is_string(v) && names[i]; i++)
		if (str_ieq(names[i], json_string_value(v))) {
			*canon = names[i];
			return true;
		}
	return false;
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int two_digits(const char *s)
{
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/* A day that exists in the Gregorian calendar ("YYYY-MM-DD"), optionally followed by a time
 * of day "Thh:mm:ss" with an optional fraction and "Z". Otherwise PB_EINVAL naming field. */
static int calendar_date(const char *field, const char *s, char *err)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	static const char *const months[] = { "January", "February", "March",     "April",   "May",      "June",
					      "July",    "August",   "September", "October", "November", "December" };
	size_t n = strlen(s);
	if (n < 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2))
		return pb_err(err, PB_EINVAL, "%s must be a date (YYYY-MM-DD), got '%.40s'", field, s);
	int y = (int)strtol(s, NULL, 10), mo = two_digits(s + 5), d = two_digits(s + 8);
	if (mo < 1 || mo > 12)
		return pb_err(err, PB_EINVAL, "%s '%.40s' has no month %02d (YYYY-MM-DD)", field, s, mo);
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	int last = days[mo - 1] + (mo == 2 && leap);
	if (d < 1 || d > last)
		return pb_err(err, PB_EINVAL, "%s '%.40s' is not a calendar date: %s %d has %d days", field, s,
			      months[mo - 1], y, last);
	const char *t = s + 10;
	if (!*t)
		return 0;
	/* Thh:mm:ss[.f...][Z] */
	if (t[0] != 'T' || strlen(t) < 9 || !digits(t + 1, 2) || t[3] != ':' || !digits(t + 4, 2) || t[6] != ':' ||
	    !digits(t + 7, 2) || two_digits(t + 1) > 23 || two_digits(t + 4) > 59 || two_digits(t + 7) > 59)
		return pb_err(err, PB_EINVAL, "%s '%.40s': a time after the date must be Thh:mm:ss", field, s);
	t += 9;
	if (*t == '.' && digits(t + 1, 1))
		t += 1 + strspn(t + 1, "0123456789");
	if (!strcmp(t, "Z"))
		t++;
	return *t ? pb_err(err, PB_EINVAL, "%s '%.40s': a time after the date must be Thh:mm:ss", field, s) : 0;
}

/* "hh:mm:ss" with hh 0-23 (one or two digits): Power BI's pattern. *secs its length. */
static bool timeout_text(const char *s, long *secs)
{
	size_t h = strspn(s, "0123456789");
	if (h < 1 || h > 2 || strlen(s) != h + 6 || s[h] != ':' || s[h + 3] != ':' || !digits(s + h + 1, 2) ||
	    !digits(s + h + 4, 2))
		return false;
	long hh = strtol(s, NULL, 10), mm = strtol(s + h + 1, NULL, 10), ss = strtol(s + h + 4, NULL, 10);
	*secs = hh * 3600 + mm * 60 + ss;
	return hh <= 23 && mm <= 59 && ss <= 59;
}

static int int_field(const json_t *body, const char *name, long lo, long hi, json_t *out, char *err)
{
	const json_t *v = json_object_get(body, name);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return pb_err(err, PB_EINVAL, "%s must be a whole number from %ld to %ld", name, lo, hi);
	return json_object_set_new(out, name, json_integer(json_integer_value(v))) ? pb_err(err, PB_ENOMEM, "out of memory")
										   : 0;
}

static int objects_field(const json_t *objs, json_t *out, char *err)
{
	static const char *const keys[] = { "table", "partition", NULL };
	if (!json_is_array(objs) || !json_array_size(objs) || json_array_size(objs) > PB_REFRESH_OBJECTS_MAX)
		return pb_err(err, PB_EINVAL, "objects must be a list of 1 to %d {\"table\", \"partition\"?} entries",
			      PB_REFRESH_OBJECTS_MAX);
	json_t *arr = json_array();
	if (!arr || json_object_set_new(out, "objects", arr))
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t i = 0; i < json_array_size(objs); i++) {
		const json_t *o = json_array_get(objs, i);
		char what[64];
		xsnprintf(what, sizeof what, "objects[%zu]", i);
		if (!json_is_object(o))
			return pb_err(err, PB_EINVAL, "%s must be an object {\"table\", \"partition\"?}", what);
		int rc = json_body_only_keys(o, keys, what, err);
		if (rc)
			return rc;
		const json_t *t = json_object_get(o, "table"), *p = json_object_get(o, "partition");
		if (!json_is_string(t) || !json_string_length(t) || json_string_length(t) > PB_NAME_MAX_BYTES)
			return pb_err(err, PB_EINVAL, "%s.table must be a table name (1 to %d bytes)", what, PB_NAME_MAX_BYTES);
		if (p && (!json_is_string(p) || !json_string_length(p) || json_string_length(p) > PB_NAME_MAX_BYTES))
			return pb_err(err, PB_EINVAL, "%s.partition must be a partition name (1 to %d bytes)", what,
				      PB_NAME_MAX_BYTES);
		if (json_array_append_new(arr, json_pack("{s:O, s:O*}", "table", t, "partition", p)))
			return pb_err(err, PB_ENOMEM, "out of memory");
	}
	return 0;
}

/* Checks the enhanced-refresh fields of body and builds *out: the same fields in Power BI's
 * spelling (NULL when there are none: a standard refresh). */
static int enhanced_options(const json_t *body, json_t **out, char *err)
{
	static const char *const types[] = { "Full", "ClearValues", "Calculate", "DataOnly", "Automatic", "Defragment",
					     NULL };
	static const char *const modes[] = { "Transactional", "PartialBatch", NULL };
	const char *canon = NULL;
	json_t *o = json_object();
	int rc = 0;
	*out = NULL;
	if (!o)
		return pb_err(err, PB_ENOMEM, "out of memory");
	const json_t *v;
	if ((v = json_object_get(body, "type"))) {
		if (!one_of(v, types, &canon)) {
			rc = pb_err(err, PB_EINVAL, "type must be Full, ClearValues, Calculate, DataOnly, Automatic or Defragment");
			goto out;
		}
		json_object_set_new(o, "type", json_string(canon));
	}
	bool partial = false;
	if ((v = json_object_get(body, "commitMode"))) {
		if (!one_of(v, modes, &canon)) {
			rc = pb_err(err, PB_EINVAL, "commitMode must be Transactional or PartialBatch");
			goto out;
		}
		partial = !strcmp(canon, "PartialBatch");
		json_object_set_new(o, "commitMode", json_string(canon));
	}
	if ((v = json_object_get(body, "objects")) && (rc = objects_field(v, o, err)))
		goto out;
	if ((rc = int_field(body, "retryCount", 0, PB_REFRESH_RETRY_MAX, o, err)) ||
	    (rc = int_field(body, "maxParallelism", 1, PB_REFRESH_PARALLELISM_MAX, o, err)))
		goto out;
	if ((v = json_object_get(body, "applyRefreshPolicy"))) {
		if (!json_is_boolean(v)) {
			rc = pb_err(err, PB_EINVAL, "applyRefreshPolicy must be true or false");
			goto out;
		}
		json_object_set_new(o, "applyRefreshPolicy", json_boolean(json_is_true(v)));
	}
	/* Power BI's default for applyRefreshPolicy is true, which PartialBatch does not allow */
	if (partial && !json_is_false(json_object_get(o, "applyRefreshPolicy"))) {
		rc = pb_err(err, PB_EINVAL, "applyRefreshPolicy must be false with commitMode PartialBatch (Power BI allows "
					    "the refresh policy only in a transactional refresh)");
		goto out;
	}
	if ((v = json_object_get(body, "effectiveDate"))) {
		if (!json_is_string(v)) {
			rc = pb_err(err, PB_EINVAL, "effectiveDate must be a date (YYYY-MM-DD)");
			goto out;
		}
		if ((rc = calendar_date("effectiveDate", json_string_value(v), err)))
			goto out;
		json_object_set_new(o, "effectiveDate", json_string(json_string_value(v)));
	}
	if ((v = json_object_get(body, "timeout"))) {
		long secs = 0;
		if (!json_is_string(v) || !timeout_text(json_string_value(v), &secs)) {
			rc = pb_err(err, PB_EINVAL, "timeout must be hh:mm:ss (at most 23:59:59), the time one attempt may take");
			goto out;
		}
		long tries = 1 + (long)json_integer_value(json_object_get(o, "retryCount"));
		if (secs * tries > 24 * 3600) {
			rc = pb_err(err, PB_EINVAL, "timeout: %ld attempts of %s exceed the 24 hours Power BI allows a refresh "
						    "in all (lower timeout or retryCount)", tries, json_string_value(v));
			goto out;
		}
		json_object_set_new(o, "timeout", json_string(json_string_value(v)));
	}
	if (json_object_size(o) && json_object_get(body, "notifyOption")) {
		rc = pb_err(err, PB_EINVAL, "notifyOption is for a standard refresh only: leave it out of an enhanced refresh "
					    "(type, commitMode, objects, ...)");
		goto out;
	}
	if (json_object_size(o)) {
		*out = o;
		o = NULL;
	}
out:
	json_decref(o);
	return rc;
}

/* Checks the body; *enhanced (may be NULL) receives the enhanced-refresh options in Power
 * BI's spelling, or NULL for a standard refresh. */
static int options_parse(const json_t *body, json_t **enhanced, char *err)
{
	static const char *const keys[] = { "notifyOption", "type", "commitMode", "objects", "retryCount", "maxParallelism",
					     "applyRefreshPolicy", "effectiveDate", "timeout", "wait_timeout", NULL };
	static const char *const notify[] = { "NoNotification", "MailOnFailure", "MailOnCompletion", NULL };
	json_t *opts = NULL;
	if (enhanced)
		*enhanced = NULL;
	if (!body)
		return 0;
	if (!json_is_object(body))
		return pb_err(err, PB_EINVAL, "the body must be a JSON object");
	int rc = json_body_only_keys(body, keys, "", err);
	if (rc)
		return rc;
	const json_t *n = json_object_get(body, "notifyOption");
	if (n) {
		bool ok = false;
		for (size_t i = 0; json_is_string(n) && notify[i]; i++)
			ok = ok || !strcmp(notify[i], json_string_value(n));
		if (!ok)
			return pb_err(err, PB_EINVAL, "notifyOption must be NoNotification, MailOnFailure or MailOnCompletion");
	}
	const json_t *wt = json_object_get(body, "wait_timeout");
	if (wt && !(json_is_integer(wt) && json_integer_value(wt) > 0) && !json_is_string(wt))
		return pb_err(err, PB_EINVAL, "wait_timeout must be seconds or a duration such as \"2h\"");
	if ((rc = enhanced_options(body, &opts, err)))
		return rc;
	if (enhanced)
		*enhanced = opts;
	else
		json_decref(opts);
	return 0;
}

int refresh_options_check(const json_t *body, char *err)
{
	return options_parse(body, NULL, err);
}

/* Puts prefix before the message already in err. */
static int wrap_err(char *err, int rc, const char *prefix)
{
	char sub[PB_ERR_MAX];
	copy(sub, sizeof sub, err);
	return pb_err(err, rc, "%s: %s", prefix, sub);
}

static int wait_timeout_s(const json_t *body, const pb_config *cfg, int64_t *secs, char *err)
{
	const json_t *wt = body ? json_object_get(body, "wait_timeout") : NULL;
	*secs = cfg->refresh_timeout_s;
	if (json_is_integer(wt)) {
		*secs = json_integer_value(wt);
		return 0;
	}
	if (json_is_string(wt))
		return pb_duration_parse(json_string_value(wt), secs, err) ? wrap_err(err, PB_EINVAL, "wait_timeout")
									   : 0;
	return 0;
}

/* ======================================================================== runs */

static int run_insert(pb_db *db, const char *org_id, const char *ref, const char *job_id, const char *trigger,
		      char id[PB_ID_BUF], char *err)
{
	db_stmt *st = NULL;
	char now[PB_TIME_BUF];
	pb_now(now);
	int rc = pb_new_id(id, err);
	if (rc || (rc = db_prepare(db,
				   "INSERT INTO refresh_runs (id, org_id, model_ref, job_id, trigger, status, created_at, "
				   "updated_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
				   &st, err)) ||
	    (rc = db_bind_text(st, 1, id, err)) || (rc = db_bind_text(st, 2, org_id, err)) ||
	    (rc = db_bind_text(st, 3, ref, err)) || (rc = db_bind_text(st, 4, job_id, err)) ||
	    (rc = db_bind_text(st, 5, trigger, err)) || (rc = db_bind_text(st, 6, now, err)) ||
	    (rc = db_bind_text(st, 7, now, err)))
		goto out;
	rc = db_exec(db, st, err);
out:
	db_done(st);
	return rc;
}

static int run_update(pb_db *db, const char *job_id, const char *request_id, const char *status, bool joined,
		      const char *start, const char *end, const char *error, char *err)
{
	db_stmt *st = NULL;
	char now[PB_TIME_BUF];
	pb_now(now);
	int rc = db_prepare(db,
			    "UPDATE refresh_runs SET request_id = COALESCE(?, request_id), status = ?, joined = ?, "
			    "start_time = COALESCE(?, start_time), end_time = ?, error = ?, updated_at = ? WHERE job_id = ?",
			    &st, err);
	if (rc || (rc = db_bind_text(st, 1, request_id, err)) || (rc = db_bind_text(st, 2, status, err)))
		goto out;
	db_bind_int64(st, 3, joined ? 1 : 0, NULL);
	if ((rc = db_bind_text(st, 4, start, err)) || (rc = db_bind_text(st, 5, end, err)) ||
	    (rc = db_bind_text(st, 6, error, err)) || (rc = db_bind_text(st, 7, now, err)) ||
	    (rc = db_bind_text(st, 8, job_id, err)))
		goto out;
	rc = db_exec(db, st, err);
out:
	db_done(st);
	return rc;
}

/* ======================================================================== sessions */

/* A session's failure in refresh's words: settings that are gone mean the model has no
 * credentials to refresh with (no_credentials); a publisher who is not connected, or no longer,
 * must reconnect (needs_reconnect). Returns f->rc. */
static int session_code(pb_failure *f)
{
	const char *code = pb_failure_code(f);
	if (!strcmp(code, "not_configured"))
		return pb_fail_as(f, PB_EINVAL, "no_credentials");
	if (!strcmp(code, "not_connected"))
		return pb_fail_as(f, PB_ECONFLICT, "needs_reconnect");
	return f->rc;
}

/* A call through s that failed with rc, its message in f->message: the token refresh that
 * failed inside it, else Microsoft's failure (core/flow/pbi_session.h pbi_session_fail). */
static int call_failed(const pbi_session *s, int rc, pb_failure *f)
{
	pbi_session_fail(s, rc, f);
	return session_code(f);
}

/* Opens a session with the credentials auth ("sp" or "user") names; via receives them in
 * words, also when they cannot be used. */
static int open_session(pb_db *db, const pb_config *cfg, const char *org_id, const char *auth, const char *integration_id,
			const char *user_id, pbi_session *s, char via[VIA_MAX], pb_failure *f)
{
	pb_integration *i = NULL;
	char *secret = NULL;
	size_t len = 0;
	int rc;
	memset(s, 0, sizeof *s);
	if (auth && !strcmp(auth, "user")) {
		via_publisher(db, org_id, user_id, via);
		rc = pbi_session_open_user(s, db, cfg, org_id, user_id, f);
		return rc ? session_code(f) : 0;
	}
	copy(via, VIA_MAX, "the integration that imported it");
	rc = integrations_get(db, NULL, integration_id ? integration_id : "", &i, f->message);
	if (rc == PB_ENOTFOUND) {
		rc = pb_fail(f, PB_EINVAL, "no_credentials", "the integration that imported it was deleted");
		goto out;
	}
	if (rc) {
		rc = pb_fail_as(f, rc, NULL);
		goto out;
	}
	via_integration(i, via);
	/* a secret sealed under a key no longer configured */
	if ((rc = integration_open_secret(cfg, i, &secret, &len, f->message))) {
		rc = pb_fail_as(f, rc, rc == PB_EINVAL ? "no_credentials" : NULL);
		goto out;
	}
	if ((rc = pbi_session_open_app(s, cfg, via, i->tenant_id, i->client_id, secret, f)))
		rc = session_code(f);
out:
	pb_secret_free(secret, len);
	integration_free(i);
	return rc;
}

/* ======================================================================== capacity */

/* Power BI runs an enhanced refresh only in a workspace on a capacity (Premium, PPU,
 * Embedded or Fabric) and refuses it on shared capacity. *shared says which; name gets the
 * workspace's name (its id when Power BI gives none). */
static int workspace_on_shared_capacity(msapi *api, const char *ws, bool *shared, char *name, size_t size, char *err)
{
	powerbi_group g;
	int rc = powerbi_get_group(api, ws, &g, err);
	if (!rc) {
		*shared = !g.on_dedicated_capacity;
		copy_name(name, size, g.name ? g.name : ws);
	}
	powerbi_group_release(&g);
	return rc;
}

/* The failure of an enhanced refresh in workspace ws_name (on shared capacity). */
static int needs_capacity(const char *ws_name, pb_failure *f)
{
	return pb_fail(f, PB_ECONFLICT, "enhanced_refresh_needs_capacity",
		       "workspace '%s' is on shared capacity, and Power BI runs an enhanced refresh (type, commitMode, "
		       "objects, retryCount, maxParallelism, applyRefreshPolicy, effectiveDate, timeout) only on Premium, "
		       "Premium Per User, Embedded or Fabric capacity: ask for a standard refresh ({} or only "
		       "notifyOption), or assign the workspace to a capacity",
		       ws_name);
}

/* "refreshing semantic model 'Sales' in workspace 'Finance' with integration 'prod'" before
 * f's message: what was refreshed, and with which credentials. */
static void refreshing(pb_failure *f, const char *what, const char *via)
{
	char context[WHAT_MAX + VIA_MAX + 32];
	(void)xsnprintf(context, sizeof context, "refreshing %s with %s", what, via);
	failure_prefix(f, context);
}

/* Refuses an enhanced refresh of a model on shared capacity before anything is queued, when
 * Power BI can say where the workspace is. When it cannot be asked now, the job asks again
 * and reports what fails. */
static int capacity_precheck(pb_db *db, const pb_config *cfg, const char *org_id, const refresh_target *t,
			     const refresh_auth *a, pb_failure *f)
{
	pbi_session s;
	pb_failure sub = { 0 };
	char via[VIA_MAX], name[SHOWN_NAME], what[WHAT_MAX];
	bool shared = false;
	if (open_session(db, cfg, org_id, a->kind, t->integration_id, a->user_id, &s, via, &sub))
		return 0;
	int rc = workspace_on_shared_capacity(&s.api, t->workspace_id, &shared, name, sizeof name, sub.message);
	pbi_session_release(&s);
	if (rc || !shared)
		return 0;
	needs_capacity(name, f);
	describe_target(t, what);
	refreshing(f, what, a->via);
	return f->rc;
}

/* ======================================================================== submit */

/* The job and its run row commit together or not at all (inside the caller's transaction
 * when it holds one); a job joined while in flight has its row already. */
static int queue_job(pb_db *db, const pb_job_spec *spec, const char *ref, const char *trigger, char job_id[PB_ID_BUF],
		     bool *existing, char *err)
{
	char run_id[PB_ID_BUF];
	int rc = db_begin(db, err);
	if (rc)
		return rc;
	if (!(rc = jobs_submit(db, spec, job_id, existing, err)) && !*existing)
		rc = run_insert(db, spec->org_id, ref, job_id, trigger, run_id, err);
	return db_end(db, rc, err);
}

bool refresh_refused(const pb_failure *f)
{
	return f->rc == PB_EINVAL || f->rc == PB_ELIMIT || f->rc == PB_ENOTFOUND || f->rc == PB_ECONFLICT ||
	       f->rc == PB_EFORBIDDEN;
}

int refresh_submit(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *ref,
		   const json_t *body, const char *trigger, json_t **reply, pb_failure *f)
{
	refresh_target t;
	refresh_auth a;
	char job_id[PB_ID_BUF], key[PB_PBI_ID_MAX + 16], url[80], what[WHAT_MAX];
	bool existing = false;
	int64_t timeout_s = 0;
	char *text = NULL;
	json_t *options = NULL, *input = NULL;
	int rc;
	*reply = NULL;
	if ((rc = options_parse(body, &options, f->message)) || (rc = wait_timeout_s(body, cfg, &timeout_s, f->message))) {
		rc = pb_fail_as(f, rc, NULL);
		goto out;
	}
	/* options_parse checked everything; from here the options go into the job input */
	if ((rc = refresh_resolve(db, org_id, ref, &t, f)))
		goto out;
	/* a person asking for a published model must be its publisher; schedules and events
	 * act for the publisher (the job still belongs to whoever sent the event) */
	const char *asker = trigger && !strcmp(trigger, "manual") ? user_id : NULL;
	if ((rc = choose_auth(db, org_id, &t, asker, &a, f)))
		goto out;
	const json_t *notify = body ? json_object_get(body, "notifyOption") : NULL;
	if (!strcmp(a.kind, "sp") && notify && strcmp(json_string_value(notify), "NoNotification")) {
		describe_target(&t, what);
		rc = pb_fail(f, PB_EINVAL, "bad_request",
			     "notifyOption must be NoNotification: %s is refreshed with the service principal of %s, and "
			     "Power BI sends service principals no mail",
			     what, a.via);
		goto out;
	}
	if (options && (rc = capacity_precheck(db, cfg, org_id, &t, &a, f)))
		goto out;
	input = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s, s:s?, s:s?, s:I, s:s, s:s?, s:O?}", "model_ref", t.model_ref,
			  "workspace_id", t.workspace_id, "workspace_name", t.workspace_name[0] ? t.workspace_name : NULL,
			  "dataset_id", t.dataset_id, "name", t.name, "auth", a.kind, "integration_id",
			  t.integration_id[0] ? t.integration_id : NULL, "user_id", a.user_id, "wait_timeout_s",
			  (json_int_t)timeout_s, "trigger", trigger, "notify", json_string_value(notify), "options", options);
	if (!input || !(text = json_dumps(input, JSON_COMPACT))) {
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		goto out;
	}
	/* one refresh per model at a time: a queued or running job for it is joined */
	xsnprintf(key, sizeof key, "refresh:%s", t.dataset_id);
	pb_job_spec spec = { .kind = "refresh", .org_id = org_id, .user_id = user_id, .input = text, .idempotency_key = key,
			     .max_attempts = PB_JOB_DEFAULT_ATTEMPTS };
	if ((rc = queue_job(db, &spec, t.model_ref, trigger, job_id, &existing, f->message))) {
		/* everything the caller sent was checked above: a write that fails (a constraint, a
		 * busy database) is pbiport's failure, never a refusal of this request */
		rc = pb_fail_as(f, rc == PB_ENOMEM || rc == PB_EIO ? rc : PB_EINTERNAL, NULL);
		goto out;
	}
	xsnprintf(url, sizeof url, "/api/jobs/%s", job_id);
	*reply = json_pack("{s:s, s:s, s:s, s:s, s:b}", "job_id", job_id, "status_url", url, "model_ref", t.model_ref, "name",
			   t.name, "joined", existing);
	if (!*reply)
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
out:
	free(text);
	json_decref(input);
	json_decref(options);
	return rc;
}

/* ======================================================================== the job */

static const char *entry_error(const powerbi_refresh *e, char *buf, size_t size)
{
	if (!e->error)
		return NULL;
	json_t *j = json_loads(e->error, 0, NULL);
	const char *desc = json_string_value(json_object_get(j, "errorDescription"));
	const char *code = json_string_value(json_object_get(j, "errorCode"));
	if (desc && code && strcmp(desc, code))
		xsnprintf(buf, size, "%s: %s", code, desc);
	else
		copy(buf, size, desc ? desc : code ? code : e->error);
	json_decref(j);
	return buf;
}

static bool stopping(pb_job_ctx *ctx)
{
	return (ctx->stop && *ctx->stop) || atomic_load(&ctx->lease_lost);
}

/* Reads the model's refresh history; a failure says what pbiport was reading. */
static int read_history(pbi_session *s, const char *ws, const char *ds, powerbi_refresh **h, size_t *n, pb_failure *f)
{
	int rc = powerbi_refresh_history(&s->api, ws, ds, PB_REFRESH_HISTORY_TOP, h, n, f->message);
	if (!rc)
		return 0;
	call_failed(s, rc, f);
	failure_prefix(f, "reading the refresh history");
	return f->rc;
}

static bool in_list(json_t *ids, const char *id)
{
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	if (json_is_string(v) && id && !strcmp(json_string_value(v), id))
		return true;
	return false;
}

/* The job input's "options" (checked at submit, Power BI's spelling) as msapi's struct;
 * borrowed from opts. objs holds up to PB_REFRESH_OBJECTS_MAX entries. */
static void refresh_opts(const json_t *opts, powerbi_refresh_options *o, powerbi_refresh_object *objs)
{
	powerbi_refresh_options none = POWERBI_REFRESH_OPTIONS_NONE;
	*o = none;
	if (!json_is_object(opts))
		return;
	const json_t *v;
	o->type = json_string_value(json_object_get(opts, "type"));
	o->commit_mode = json_string_value(json_object_get(opts, "commitMode"));
	o->effective_date = json_string_value(json_object_get(opts, "effectiveDate"));
	o->timeout = json_string_value(json_object_get(opts, "timeout"));
	if ((v = json_object_get(opts, "retryCount")))
		o->retry_count = (int)json_integer_value(v);
	if ((v = json_object_get(opts, "maxParallelism")))
		o->max_parallelism = (int)json_integer_value(v);
	if ((v = json_object_get(opts, "applyRefreshPolicy")))
		o->apply_refresh_policy = json_is_true(v);
	const json_t *arr = json_object_get(opts, "objects");
	for (size_t i = 0; i < json_array_size(arr) && i < PB_REFRESH_OBJECTS_MAX; i++) {
		objs[i].table = json_string_value(json_object_get(json_array_get(arr, i), "table"));
		objs[i].partition = json_string_value(json_object_get(json_array_get(arr, i), "partition"));
		o->nobjects = i + 1;
	}
	o->objects = o->nobjects ? objs : NULL;
}

/* Triggers the refresh (or joins a running one) and finds ours in the history. A failure
 * of Power BI is described in f; one of the job's own steps (a phase, a checkpoint, a stop)
 * leaves f alone and returns its rc with ctx->err. */
static int start_refresh(pb_job_ctx *ctx, pbi_session *s, const char *ws, const char *ds, const char *notify,
			 const json_t *opts, char **request_id, bool *joined, pb_failure *f)
{
	powerbi_refresh_options o;
	powerbi_refresh_object *objs = calloc(PB_REFRESH_OBJECTS_MAX, sizeof *objs);
	powerbi_refresh *h = NULL;
	size_t n = 0;
	char *msid = NULL;
	json_t *before = json_array();
	int rc;
	*joined = false;
	if (!before || !objs) {
		free(objs);
		json_decref(before);
		return pb_err(ctx->err, PB_ENOMEM, "out of memory");
	}
	refresh_opts(opts, &o, objs);
	if ((rc = job_phase(ctx, "triggering", 10)) || (rc = read_history(s, ws, ds, &h, &n, f)))
		goto out;
	if (n && powerbi_refresh_running(&h[0]) && h[0].request_id) {
		/* Power BI runs one refresh at a time: follow the running one */
		*joined = true;
		rc = (*request_id = xstrdup(h[0].request_id)) ? 0 : pb_err(ctx->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (h[i].request_id && json_array_append_new(before, json_string(h[i].request_id))) {
			rc = pb_err(ctx->err, PB_ENOMEM, "out of memory");
			goto out;
		}
	/* saved first: a job resumed after a crash must not take an older refresh for its own */
	if ((rc = job_checkpoint(ctx, "before", json_incref(before))))
		goto out;
	rc = powerbi_refresh_dataset_with(&s->api, ws, ds, notify, &o, &msid, f->message);
	if (rc && (call_failed(s, rc, f), strcmp(pb_failure_code(f), "powerbi_rejected"))) {
		failure_prefix(f, "triggering the refresh");
		rc = f->rc;
		goto out;
	}
	if (rc) {
		/* refused as sent: an enhanced refresh on shared capacity (say so rather than
		 * "refused", or joining a standard refresh that happens to run), or another refresh
		 * started in between (join it) */
		char first[PB_ERR_MAX], name[SHOWN_NAME];
		bool shared = false;
		copy(first, sizeof first, f->message);
		if (powerbi_refresh_options_enhanced(&o) &&
		    !workspace_on_shared_capacity(&s->api, ws, &shared, name, sizeof name, f->message) && shared) {
			rc = needs_capacity(name, f);
			goto out;
		}
		powerbi_refreshes_release(h, n);
		h = NULL;
		n = 0;
		if ((rc = read_history(s, ws, ds, &h, &n, f)))
			goto out;
		if (n && powerbi_refresh_running(&h[0]) && h[0].request_id) {
			*joined = true;
			rc = (*request_id = xstrdup(h[0].request_id)) ? 0 : pb_err(ctx->err, PB_ENOMEM, "out of memory");
			goto out;
		}
		rc = pb_fail(f, PB_EUPSTREAM, "powerbi_rejected", "Power BI refused the refresh: %s", first);
		goto out;
	}
	rc = job_phase(ctx, "finding", 20);
	/* ours = the id from the 202 if it is new, else the newest entry that was not there before */
	long wait = ctx->cfg->refresh_poll_ms;
	for (int tries = 0; !rc && tries < PB_REFRESH_FIND_TRIES; tries++) {
		powerbi_refreshes_release(h, n);
		h = NULL;
		n = 0;
		if ((rc = read_history(s, ws, ds, &h, &n, f)))
			goto out;
		const char *found = NULL;
		for (size_t i = 0; i < n && !found; i++)
			if (h[i].request_id && !in_list(before, h[i].request_id) && msid && !strcmp(msid, h[i].request_id))
				found = h[i].request_id;
		for (size_t i = 0; i < n && !found; i++)
			if (h[i].request_id && !in_list(before, h[i].request_id))
				found = h[i].request_id;
		if (found) {
			rc = (*request_id = xstrdup(found)) ? 0 : pb_err(ctx->err, PB_ENOMEM, "out of memory");
			goto out;
		}
		pb_sleep_interruptible(wait, ctx->stop);
		if (stopping(ctx)) {
			rc = job_wait(ctx, 0, "stopped", "the worker stopped while finding the refresh");
			goto out;
		}
		wait = wait * 2 > PB_REFRESH_POLL_MAX_MS ? PB_REFRESH_POLL_MAX_MS : wait * 2;
	}
	if (!rc)
		rc = pb_fail(f, PB_EUPSTREAM, "refresh_not_found",
			     "Power BI accepted the refresh request, but no new entry appeared in the model's refresh "
			     "history (Power BI may have dropped it as part of a burst); ask again");
out:
	free(msid);
	free(objs);
	json_decref(before);
	powerbi_refreshes_release(h, n);
	return rc;
}

/* The refresh.failed webhook event, when the refresh ended failed: Power BI ran it and reports
 * it "Failed" (the job itself succeeded), or pbiport could not trigger or follow it and the job
 * ends failed (ctx's error). */
static void failed_event(pb_job_ctx *ctx, int rc, const json_t *in, const char *request_id)
{
	const char *status = json_string_value(json_object_get(ctx->result, "status"));
	bool pbi_failed = !rc && status && !strcmp(status, "Failed");
	if (!pbi_failed && (!rc || !job_failing_for_good(ctx)))
		return;
	const char *why = json_string_value(json_object_get(ctx->result, "error"));
	json_t *data = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s}", "model_ref",
				 json_string_value(json_object_get(in, "model_ref")), "workspace_id",
				 json_string_value(json_object_get(in, "workspace_id")), "dataset_id",
				 json_string_value(json_object_get(in, "dataset_id")), "name",
				 json_string_value(json_object_get(in, "name")), "request_id", request_id, "user_id",
				 ctx->job->user_id[0] ? ctx->job->user_id : NULL, "status", pbi_failed ? "Failed" : "Error");
	if (data && pbi_failed)
		json_object_set_new(data, "error", json_pack("{s:s, s:s}", "code", "refresh_failed", "message",
							    why ? why : "Power BI reports the refresh failed"));
	webhook_job_event(ctx, "refresh.failed", data);
}

int refresh_job(pb_job_ctx *ctx)
{
	json_t *in = json_loads(ctx->job->input, 0, NULL);
	const char *ws = json_string_value(json_object_get(in, "workspace_id"));
	const char *ds = json_string_value(json_object_get(in, "dataset_id"));
	const char *ref = json_string_value(json_object_get(in, "model_ref"));
	int64_t timeout_s = json_integer_value(json_object_get(in, "wait_timeout_s"));
	pbi_session s = { 0 };
	pb_failure f = { 0 };   /* why Power BI could not be asked or refused (else ctx->err) */
	bool have = false, named = false, joined = json_is_true(json_object_get(ctx->checkpoint, "joined"));
	char *request_id = NULL, errbuf[PB_ERR_MAX], via[VIA_MAX] = "", what[WHAT_MAX];
	powerbi_refresh *h = NULL;
	size_t n = 0;
	int rc;
	if (!ws || !ds || !ref) {
		rc = pb_fail(&f, PB_EINVAL, "bad_input", "the job input lacks workspace_id, dataset_id or model_ref");
		goto out;
	}
	if (!str_is_guid(ws) || !str_is_guid(ds)) {
		rc = pb_fail(&f, PB_EINVAL, "bad_input",
			     "the job input's workspace_id or dataset_id is not a Microsoft id (GUID)");
		goto out;
	}
	named = true;
	if (timeout_s <= 0)
		timeout_s = PB_REFRESH_TIMEOUT_S_DEFAULT;
	/* the worker's limit for this attempt: the wait, plus an hour for the calls around it */
	job_extend_time_limit(ctx, timeout_s * 1000 + 3600LL * 1000);
	/* the wait started with the first attempt, not this one */
	int64_t started = json_integer_value(json_object_get(ctx->checkpoint, "started_ms"));
	if (!started && (rc = job_checkpoint(ctx, "started_ms", json_integer(started = pb_epoch_ms()))))
		goto out;
	if ((rc = open_session(ctx->db, ctx->cfg, ctx->job->org_id, json_string_value(json_object_get(in, "auth")),
			       json_string_value(json_object_get(in, "integration_id")),
			       json_string_value(json_object_get(in, "user_id")), &s, via, &f)))
		goto out;
	have = true;
	const char *saved = json_string_value(json_object_get(ctx->checkpoint, "request_id"));
	if (saved) {
		request_id = xstrdup(saved);
	} else if (json_object_get(ctx->checkpoint, "before")) {
		/* resumed after the trigger: find ours among the entries that are new */
		json_t *before = json_object_get(ctx->checkpoint, "before");
		if ((rc = read_history(&s, ws, ds, &h, &n, &f)))
			goto out;
		for (size_t i = 0; i < n && !request_id; i++)
			if (h[i].request_id && !in_list(before, h[i].request_id))
				request_id = xstrdup(h[i].request_id);
		powerbi_refreshes_release(h, n);
		h = NULL;
		n = 0;
		if (!request_id && (rc = start_refresh(ctx, &s, ws, ds, json_string_value(json_object_get(in, "notify")),
						      json_object_get(in, "options"), &request_id, &joined, &f)))
			goto out;
	} else if ((rc = start_refresh(ctx, &s, ws, ds, json_string_value(json_object_get(in, "notify")),
				       json_object_get(in, "options"), &request_id, &joined, &f))) {
		goto out;
	}
	if (!request_id) {
		rc = pb_err(ctx->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = job_checkpoint(ctx, "request_id", json_string(request_id))) ||
	    (rc = job_checkpoint(ctx, "joined", json_boolean(joined))) ||
	    (rc = run_update(ctx->db, ctx->job->id, request_id, "Unknown", joined, NULL, NULL, NULL, ctx->err)) ||
	    (rc = job_phase(ctx, "running", 30)))
		goto out;
	/* follow it: Unknown = still running */
	long wait = ctx->cfg->refresh_poll_ms;
	for (;;) {
		powerbi_refreshes_release(h, n);
		h = NULL;
		n = 0;
		if ((rc = read_history(&s, ws, ds, &h, &n, &f)))
			goto out;
		const powerbi_refresh *e = NULL;
		for (size_t i = 0; i < n && !e; i++)
			if (h[i].request_id && !strcmp(h[i].request_id, request_id))
				e = &h[i];
		if (e && e->status && strcmp(e->status, "Unknown")) {
			int64_t a = 0, b = 0;
			double duration = -1;
			if (e->start_time && e->end_time && !pb_time_parse(e->start_time, &a) && !pb_time_parse(e->end_time, &b))
				duration = (double)(b - a) / 1000.0;
			const char *error = entry_error(e, errbuf, sizeof errbuf);
			ctx->result = json_pack("{s:s, s:s, s:s?, s:s?, s:o, s:s?, s:b, s:s, s:s, s:s}", "status", e->status,
						"request_id", request_id, "start", e->start_time, "end", e->end_time,
						"duration_s", duration >= 0 ? json_real(duration) : json_null(), "error",
						error, "joined", joined, "model_ref", ref, "dataset_id", ds, "workspace_id", ws);
			if (!ctx->result) {
				rc = pb_err(ctx->err, PB_ENOMEM, "out of memory");
				goto out;
			}
			rc = run_update(ctx->db, ctx->job->id, request_id, e->status, joined, e->start_time, e->end_time, error,
					ctx->err);
			goto out;
		}
		if (e && e->start_time)
			run_update(ctx->db, ctx->job->id, request_id, "Unknown", joined, e->start_time, NULL, NULL, errbuf);
		int64_t elapsed_ms = pb_epoch_ms() - started;
		if (elapsed_ms >= timeout_s * 1000) {
			char msg[PB_ERR_MAX];
			xsnprintf(msg, sizeof msg,
				  "still running in Power BI after %lld s; pbiport stopped waiting (PBIPORT_REFRESH_TIMEOUT), "
				  "the refresh itself goes on",
				  (long long)(elapsed_ms / 1000));
			ctx->result = json_pack("{s:s, s:s, s:s?, s:n, s:n, s:n, s:b, s:b, s:s, s:s, s:s, s:s}", "status", "Unknown",
						"request_id", request_id, "start", e ? e->start_time : NULL, "end",
						"duration_s", "error", "still_running", 1, "joined", joined, "message", msg,
						"model_ref", ref, "dataset_id", ds, "workspace_id", ws);
			rc = ctx->result ? 0 : pb_err(ctx->err, PB_ENOMEM, "out of memory");
			goto out;
		}
		long sleep_ms = wait;
		if (sleep_ms > timeout_s * 1000 - elapsed_ms)
			sleep_ms = (long)(timeout_s * 1000 - elapsed_ms);
		pb_sleep_interruptible(sleep_ms, ctx->stop);
		if (stopping(ctx)) {
			/* resumed later from the checkpoint (request id saved) */
			rc = job_wait(ctx, 0, "stopped", "the worker stopped while the refresh was running");
			goto out;
		}
		wait = wait * 2 > PB_REFRESH_POLL_MAX_MS ? PB_REFRESH_POLL_MAX_MS : wait * 2;
	}
out:
	if (rc && f.rc) {
		/* what was refreshed, and with which credentials, before the cause */
		if (named) {
			describe(json_string_value(json_object_get(in, "name")),
				 json_string_value(json_object_get(in, "workspace_name")), ws, what);
			refreshing(&f, what, via);
		}
		rc = job_end_with(ctx, &f);
	}
	if (rc && !ctx->transient) {
		char uerr[PB_ERR_MAX];
		/* "Error": pbiport could not trigger or follow it (not Power BI's "Failed") */
		run_update(ctx->db, ctx->job->id, request_id, "Error", joined, NULL, NULL, ctx->err, uerr);
	}
	failed_event(ctx, rc, in, request_id);
	powerbi_refreshes_release(h, n);
	free(request_id);
	if (have)
		pbi_session_release(&s);
	json_decref(in);
	return rc;
}

/* ======================================================================== history */

static json_t *run_entry(db_stmt *st)
{
	const char *rid = db_col_text(st, 0);
	return json_pack("{s:s?, s:s, s:s?, s:s?, s:s?, s:s, s:s, s:b, s:s, s:[s]}", "request_id", *rid ? rid : NULL, "status",
			 db_col_text(st, 1), "start", *db_col_text(st, 2) ? db_col_text(st, 2) : NULL, "end",
			 *db_col_text(st, 3) ? db_col_text(st, 3) : NULL, "error",
			 *db_col_text(st, 4) ? db_col_text(st, 4) : NULL, "job_id", db_col_text(st, 5), "trigger",
			 db_col_text(st, 6), "joined", db_col_int(st, 7), "created_at", db_col_text(st, 8), "sources",
			 "pbiport");
}

int refresh_history(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *ref,
		    json_t **reply, pb_failure *f)
{
	refresh_target t;
	refresh_auth a;
	db_stmt *st = NULL;
	json_t *list = json_array(), *byid = json_object();
	powerbi_refresh *h = NULL;
	size_t n = 0;
	pbi_session s = { 0 };
	pb_failure pbi = { 0 };   /* why Power BI's side is missing: told, not a failure */
	bool have = false;
	char via[VIA_MAX], ebuf[PB_ERR_MAX];
	int rc;
	(void)user_id;
	*reply = NULL;
	if (!list || !byid) {
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		goto out;
	}
	if ((rc = refresh_resolve(db, org_id, ref, &t, f)))
		goto out;
	if ((rc = db_prepare(db,
			     "SELECT request_id, status, start_time, end_time, error, job_id, trigger, joined, created_at "
			     "FROM refresh_runs WHERE org_id = ? AND model_ref = ? ORDER BY created_at DESC LIMIT 60",
			     &st, f->message)) ||
	    (rc = db_bind_text(st, 1, org_id, f->message)) || (rc = db_bind_text(st, 2, t.model_ref, f->message)))
		goto failed;
	while ((rc = db_row(db, st, f->message)) == 1) {
		json_t *e = run_entry(st);
		if (!e || json_array_append_new(list, e)) {
			rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
			goto out;
		}
		const char *rid = json_string_value(json_object_get(e, "request_id"));
		if (rid)
			json_object_set(byid, rid, e);
	}
	if (rc < 0)
		goto failed;
	db_done(st);
	st = NULL;
	/* Power BI's side, with the same credentials a refresh would use (members see it when
	 * the model is theirs to refresh) */
	if (!choose_auth(db, org_id, &t, NULL, &a, &pbi)) {
		char asking[VIA_MAX + 48];
		if (!open_session(db, cfg, org_id, a.kind, t.integration_id, a.user_id, &s, via, &pbi)) {
			have = true;
			if (powerbi_refresh_history(&s.api, t.workspace_id, t.dataset_id, PB_REFRESH_HISTORY_TOP, &h, &n,
						    pbi.message))
				n = 0;
			else
				pbi.message[0] = '\0';
		}
		(void)xsnprintf(asking, sizeof asking, "reading Power BI's history with %s", via);
		if (pbi.message[0])
			failure_prefix(&pbi, asking);
	}
	for (size_t i = 0; i < n; i++) {
		const char *error = entry_error(&h[i], ebuf, sizeof ebuf);
		json_t *ours = h[i].request_id ? json_object_get(byid, h[i].request_id) : NULL;
		if (ours) {
			/* Power BI knows the latest state; keep our job id and trigger */
			json_object_set_new(ours, "status", json_string(h[i].status ? h[i].status : "Unknown"));
			json_object_set_new(ours, "start", h[i].start_time ? json_string(h[i].start_time) : json_null());
			json_object_set_new(ours, "end", h[i].end_time ? json_string(h[i].end_time) : json_null());
			json_object_set_new(ours, "error", error ? json_string(error) : json_null());
			json_object_set_new(ours, "refresh_type", h[i].refresh_type ? json_string(h[i].refresh_type) : json_null());
			json_array_append_new(json_object_get(ours, "sources"), json_string("powerbi"));
			continue;
		}
		json_t *e = json_pack("{s:s?, s:s, s:s?, s:s?, s:s?, s:s?, s:[s]}", "request_id", h[i].request_id, "status",
				      h[i].status ? h[i].status : "Unknown", "start", h[i].start_time, "end", h[i].end_time,
				      "error", error, "refresh_type", h[i].refresh_type, "sources", "powerbi");
		if (!e || json_array_append_new(list, e)) {
			rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
			goto out;
		}
	}
	*reply = json_pack("{s:s, s:s, s:O, s:b}", "model_ref", t.model_ref, "name", t.name, "refreshes", list,
			   "powerbi_history", have && !pbi.message[0]);
	if (*reply && pbi.message[0])
		json_object_set_new(*reply, "powerbi_error", json_string(pbi.message));
	rc = *reply ? 0 : pb_fail(f, PB_ENOMEM, NULL, "out of memory");
	goto out;
failed:
	rc = pb_fail_as(f, rc, NULL);
out:
	db_done(st);
	powerbi_refreshes_release(h, n);
	if (have)
		pbi_session_release(&s);
	json_decref(list);
	json_decref(byid);
	return rc;
}

/* ======================================================================== schedules */

static int schedule_json(pb_db *db, const char *org_id, const char *ref, json_t **out, char *err)
{
	db_stmt *st = NULL;
	*out = NULL;
	int rc = db_prepare(db, "SELECT schedule, next_run_at FROM refresh_schedules WHERE org_id = ? AND model_ref = ?", &st,
			    err);
	if (rc || (rc = db_bind_text(st, 1, org_id, err)) || (rc = db_bind_text(st, 2, ref, err)))
		goto out;
	rc = db_row(db, st, err);
	if (rc >= 0) {
		*out = rc == 1 ? json_pack("{s:s, s:s, s:s}", "model_ref", ref, "schedule", db_col_text(st, 0), "next_run_at",
					   db_col_text(st, 1))
			       : json_pack("{s:s, s:n, s:n}", "model_ref", ref, "schedule", "next_run_at");
		rc = *out ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
	}
out:
	db_done(st);
	return rc;
}

int refresh_schedule_get(pb_db *db, const char *org_id, const char *ref, json_t **reply, pb_failure *f)
{
	refresh_target t;
	*reply = NULL;
	int rc = refresh_resolve(db, org_id, ref, &t, f);
	if (!rc && (rc = schedule_json(db, org_id, t.model_ref, reply, f->message)))
		pb_fail_as(f, rc, NULL);
	return rc;
}

/* Runs st (prepared and bound when rc is 0; finalized here) and answers with the model's
 * schedule as it now is. */
static int change_schedule(pb_db *db, db_stmt *st, int rc, const char *org_id, const char *ref, json_t **reply,
			   pb_failure *f)
{
	if (!rc)
		rc = db_exec(db, st, f->message);
	db_done(st);
	if (!rc)
		rc = schedule_json(db, org_id, ref, reply, f->message);
	return rc ? pb_fail_as(f, rc, NULL) : 0;
}

/* Why refresh schedules have a floor, for the message that refuses a shorter one. */
#define REFRESH_SCHEDULE_FLOOR_WHY                                                                                     \
	"each run is a refresh in Power BI, which allows 8 refreshes a day on shared capacity (48 scheduled ones on "  \
	"Premium); for more, refresh on demand (POST /api/semantic-models/{id}/refreshes) or when the data changes "  \
	"(POST /api/events)"

int refresh_schedule_delete(pb_db *db, const char *org_id, const char *user_id, const char *ref, json_t **reply,
			    pb_failure *f)
{
	refresh_target t;
	db_stmt *st = NULL;
	char what[WHAT_MAX];
	*reply = NULL;
	/* removing needs no credentials (a model whose integration or publisher is gone must
	 * still lose its schedule), and a model with unusable Power BI ids may lose it too */
	int rc = refresh_resolve(db, org_id, ref, &t, f);
	if (rc && (rc != PB_ECONFLICT || !t.model_ref[0]))
		return rc;
	pb_failure_clear(f);
	if (t.published && t.publisher_id[0] && user_id && strcmp(user_id, t.publisher_id)) {
		describe_target(&t, what);
		rc = pb_fail(f, PB_EFORBIDDEN, "forbidden",
			     "%s was published by another user: only they may change its refresh schedule", what);
		return rc;
	}
	(void)((rc = db_prepare(db, "DELETE FROM refresh_schedules WHERE org_id = ? AND model_ref = ?", &st, f->message)) ||
	       (rc = db_bind_text(st, 1, org_id, f->message)) || (rc = db_bind_text(st, 2, t.model_ref, f->message)));
	return change_schedule(db, st, rc, org_id, t.model_ref, reply, f);
}

int refresh_schedule_put(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const char *ref,
			 const json_t *body, json_t **reply, pb_failure *f)
{
	static const char *const keys[] = { "schedule", NULL };
	refresh_target t;
	refresh_auth a;
	db_stmt *st = NULL;
	pb_cron c;
	int64_t next_s = 0;
	char now[PB_TIME_BUF], next[PB_TIME_BUF];
	int rc;
	*reply = NULL;
	if (!json_is_object(body))
		return pb_fail(f, PB_EINVAL, "bad_request", "the body must be an object {\"schedule\": \"<cron or preset>\" | null}");
	if ((rc = json_body_only_keys(body, keys, "", f->message)))
		return pb_fail_as(f, rc, NULL);
	if (!json_object_get(body, "schedule"))
		return pb_fail(f, PB_EINVAL, "bad_request", "schedule is required: {\"schedule\": \"<cron or preset>\" | null}");
	const json_t *js = json_object_get(body, "schedule");
	if (!json_is_null(js) && !json_is_string(js))
		return pb_fail(f, PB_EINVAL, "bad_request", "schedule must be a string or null");
	const char *text = json_string_value(js);
	if (!text)
		return refresh_schedule_delete(db, org_id, user_id, ref, reply, f);
	/* an empty text is a mistake more often than a wish to remove the schedule: say how */
	if (!text[strspn(text, " \t")])
		return pb_fail(f, PB_EINVAL, "bad_request",
			       "schedule is empty: to remove the refresh schedule send {\"schedule\": null} or DELETE "
			       "/api/semantic-models/{id}/refresh-schedule");
	if ((rc = refresh_resolve(db, org_id, ref, &t, f)) || (rc = choose_auth(db, org_id, &t, user_id, &a, f)))
		goto out;
	if ((rc = cron_parse(text, &c, f->message)) ||
	    (rc = cron_check_interval(&c, text, cfg->min_schedule_interval_s, "refresh schedule", REFRESH_SCHEDULE_FLOOR_WHY, f->message)) ||
	    (rc = cron_next(&c, pb_epoch_ms() / 1000, &next_s, f->message))) {
		rc = pb_fail_as(f, PB_EINVAL, "bad_request");
		goto out;
	}
	pb_now(now);
	pb_time_format(next_s * 1000, next);
	(void)((rc = db_prepare(db,
				"INSERT INTO refresh_schedules (model_ref, org_id, schedule, next_run_at, created_by, "
				"created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_ref) DO UPDATE SET "
				"schedule = excluded.schedule, next_run_at = excluded.next_run_at, "
				"updated_at = excluded.updated_at",
				&st, f->message)) ||
	       (rc = db_bind_text(st, 1, t.model_ref, f->message)) || (rc = db_bind_text(st, 2, org_id, f->message)) ||
	       (rc = db_bind_text(st, 3, text, f->message)) || (rc = db_bind_text(st, 4, next, f->message)) ||
	       (rc = db_bind_text(st, 5, user_id, f->message)) || (rc = db_bind_text(st, 6, now, f->message)) ||
	       (rc = db_bind_text(st, 7, now, f->message)));
	rc = change_schedule(db, st, rc, org_id, t.model_ref, reply, f);
out:
	return rc;
}

int refresh_schedules_due(pb_db *db, const char *now, refresh_due **out, size_t *n, char *err)
{
	db_stmt *st = NULL;
	refresh_due *v = NULL;
	size_t cnt = 0;
	*out = NULL;
	*n = 0;
	int rc = db_prepare(db,
			    "SELECT model_ref, org_id, schedule, next_run_at FROM refresh_schedules WHERE next_run_at <= ? "
			    "ORDER BY next_run_at LIMIT 1000",
			    &st, err);
	if (rc || (rc = db_bind_text(st, 1, now, err)))
		goto out;
	while ((rc = db_row(db, st, err)) == 1) {
		refresh_due *nv = realloc(v, (cnt + 1) * sizeof *v);
		if (!nv) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
			goto out;
		}
		v = nv;
		copy(v[cnt].ref, sizeof v[cnt].ref, db_col_text(st, 0));
		copy(v[cnt].org_id, sizeof v[cnt].org_id, db_col_text(st, 1));
		copy(v[cnt].schedule, sizeof v[cnt].schedule, db_col_text(st, 2));
		copy(v[cnt].next_run_at, sizeof v[cnt].next_run_at, db_col_text(st, 3));
		cnt++;
	}
out:
	db_done(st);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	*n = cnt;
	return 0;
}

int refresh_schedule_advance(pb_db *db, const char *ref, const char *seen, const char *next, bool *won, char *err)
{
	db_stmt *st = NULL;
	*won = false;
	int rc = db_prepare(db, "UPDATE refresh_schedules SET next_run_at = ? WHERE model_ref = ? AND next_run_at = ?", &st,
			    err);
	if (!rc && !(rc = db_bind_text(st, 1, next, err)) && !(rc = db_bind_text(st, 2, ref, err)) &&
	    !(rc = db_bind_text(st, 3, seen, err)) && !(rc = db_exec(db, st, err)))
		*won = db_changes(db) == 1;
	db_done(st);
	return rc;
}

/* ======================================================================== events */

/* Semantic models downstream of product_id: directed breadth-first search over the
 * lineage graph around it (which holds every node within PB_LINEAGE_DEPTH_MAX edges). */
static int downstream_models(pb_db *db, const char *org_id, const char *product_id, json_t *refs, char *err)
{
	lineage_graph g;
	int rc = lineage_graph_get(db, org_id, product_id, PB_LINEAGE_DEPTH_MAX, &g, err);
	if (rc)
		return rc;
	char **queue = calloc(g.nnodes + 1, sizeof *queue);
	bool *seen = calloc(g.nnodes + 1, sizeof *seen);
	size_t head = 0, tail = 0;
	if (!queue || !seen) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	queue[tail++] = g.nodes[0].id;
	seen[0] = true;
	while (head < tail) {
		const char *cur = queue[head++];
		for (size_t e = 0; e < g.nedges; e++) {
			if (strcmp(g.edges[e].from, cur))
				continue;
			for (size_t k = 0; k < g.nnodes; k++) {
				if (seen[k] || strcmp(g.nodes[k].id, g.edges[e].to))
					continue;
				seen[k] = true;
				queue[tail++] = g.nodes[k].id;
				/* imported models are assets; published ones appear as their consumer product */
				if (!strcmp(g.nodes[k].type, "semantic_model") || !strcmp(g.nodes[k].type, "data_product"))
					if (json_array_append_new(refs, json_pack("[s, s]", g.nodes[k].id, g.nodes[k].type))) {
						rc = pb_err(err, PB_ENOMEM, "out of memory");
						goto out;
					}
			}
		}
	}
out:
	free(queue);
	free(seen);
	lineage_graph_release(&g);
	return rc;
}

/* Queues a refresh of every model in cands (["id", "node type"] pairs), once per Power BI
 * model: jobs gets the queued ones, skipped the ones refused (without credentials, with ids
 * that are not GUIDs, past PB_REFRESH_FANOUT_MAX). Runs inside the caller's transaction. */
static int fan_out(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const json_t *cands,
		   json_t *jobs, json_t *skipped, pb_failure *f)
{
	json_t *done = json_object(), *c;
	size_t i;
	int rc = done ? 0 : pb_fail(f, PB_ENOMEM, NULL, "out of memory");
	json_array_foreach(cands, i, c)
	{
		const char *node = json_string_value(json_array_get(c, 0));
		const char *type = json_string_value(json_array_get(c, 1));
		refresh_target t;
		json_t *one = NULL;
		if (rc)
			break;
		if ((rc = refresh_resolve(db, org_id, node, &t, f))) {
			/* a data product that is not a published model is no model at all */
			if (rc == PB_ECONFLICT || (rc == PB_ENOTFOUND && !strcmp(type, "semantic_model")))
				json_array_append_new(skipped, json_pack("{s:s, s:s}", "model_ref", node, "reason", f->message));
			if (rc == PB_ECONFLICT || rc == PB_ENOTFOUND)
				rc = 0;
			continue;
		}
		/* once each, however many events or paths lead to it */
		if (json_object_get(done, t.dataset_id))
			continue;
		json_object_set_new(done, t.dataset_id, json_true());
		if (json_array_size(jobs) >= PB_REFRESH_FANOUT_MAX) {
			json_array_append_new(skipped, json_pack("{s:s, s:s}", "model_ref", t.model_ref, "reason",
								 "more downstream models than one event may refresh"));
			continue;
		}
		if (!(rc = refresh_submit(db, cfg, org_id, user_id, t.model_ref, NULL, "event", &one, f))) {
			json_array_append_new(jobs, one);
		} else if (refresh_refused(f)) {
			json_array_append_new(skipped, json_pack("{s:s, s:s}", "model_ref", t.model_ref, "reason", f->message));
			rc = 0;
		}
	}
	json_decref(done);
	if (!rc)
		pb_failure_clear(f);
	return rc;
}

/* fan_out as the work of a db_transaction: several events may queue refreshes of the same
 * models at once (another host's), and a deadlock between them runs it again. */
struct fan_out_args {
	const pb_config *cfg;
	const char *org_id, *user_id;
	const json_t *cands;
	json_t *jobs, *skipped;
	pb_failure *f;
};

static int fan_out_work(pb_db *db, void *ctx, char *err)
{
	const struct fan_out_args *a = ctx;
	json_array_clear(a->jobs);   /* what an earlier run of this transaction queued was rolled back */
	json_array_clear(a->skipped);
	pb_failure_clear(a->f);
	return fan_out(db, a->cfg, a->org_id, a->user_id, a->cands, a->jobs, a->skipped, a->f);
}

int refresh_events(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id, const json_t *body,
		   json_t **reply, pb_failure *f)
{
	static const char *const event_keys[] = { "type", "data_product_id", NULL };
	static const char *const batch_keys[] = { "events", NULL };
	json_t *events = NULL, *cands = json_array(), *jobs = json_array(), *skipped = json_array();
	bool batch = json_is_object(body) && json_object_get(body, "events");
	int rc = 0;
	*reply = NULL;
	if (!cands || !jobs || !skipped) {
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		goto out;
	}
	if (batch) {
		if ((rc = json_body_only_keys(body, batch_keys, "", f->message))) {
			rc = pb_fail_as(f, rc, NULL);
			goto out;
		}
		const json_t *v = json_object_get(body, "events");
		if (!json_is_array(v) || !json_array_size(v) || json_array_size(v) > 100) {
			rc = pb_fail(f, PB_EINVAL, "bad_request", "events must be an array of 1 to 100 events");
			goto out;
		}
		events = json_incref(json_object_get(body, "events"));
	} else if (!(events = json_pack("[O]", body))) {
		rc = pb_fail(f, PB_ENOMEM, NULL, "out of memory");
		goto out;
	}
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev)
	{
		/* fields named as the caller wrote them: "type", or "events[2].type" in a batch */
		char what[32] = "";
		if (batch)
			xsnprintf(what, sizeof what, "events[%zu]", i);
		const char *type = json_string_value(json_object_get(ev, "type"));
		const char *dp = json_string_value(json_object_get(ev, "data_product_id"));
		if (!json_is_object(ev)) {
			rc = pb_fail(f, PB_EINVAL, "bad_request", "%s must be an object {\"type\", \"data_product_id\"}",
				     batch ? what : "the body");
			goto out;
		}
		if ((rc = json_body_only_keys(ev, event_keys, what, f->message))) {
			rc = pb_fail_as(f, rc, NULL);
			goto out;
		}
		if (!type || strcmp(type, "data_product.updated")) {
			rc = pb_fail(f, PB_EINVAL, "bad_request", "%s%stype must be \"data_product.updated\"", what,
				     batch ? "." : "");
			goto out;
		}
		if (!dp || !*dp) {
			rc = pb_fail(f, PB_EINVAL, "bad_request", "%s%sdata_product_id is required", what, batch ? "." : "");
			goto out;
		}
		if ((rc = downstream_models(db, org_id, dp, cands, f->message))) {
			rc = pb_fail_as(f, rc, NULL);
			goto out;
		}
	}
	/* every job of the request, with its run row, or none */
	struct fan_out_args fo = { cfg, org_id, user_id, cands, jobs, skipped, f };
	if ((rc = db_transaction(db, fan_out_work, &fo, f->message))) {
		if (!f->rc)
			pb_fail_as(f, rc, NULL);
		goto out;
	}
	*reply = json_pack("{s:O, s:O}", "jobs", jobs, "skipped", skipped);
	rc = *reply ? 0 : pb_fail(f, PB_ENOMEM, NULL, "out of memory");
out:
	json_decref(events);
	json_decref(cands);
	json_decref(jobs);
	json_decref(skipped);
	return rc;
}
