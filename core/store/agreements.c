/* Data-usage agreements: reads. See core/store/agreements.h. */
#include "core/store/agreements.h"

#include <jansson.h>
#include <string.h>

#include "core/store/identity.h"
#include "runtime/util.h"

/* One agreement with both ends; agreement_from_row() reads the columns in this order. */
#define AGREEMENT_SELECT                                                                                    \
	"SELECT a.id, a.state, a.purpose, a.consumer_product_id, c.name, c.type, a.output_port_id, p.name, "   \
	"p.retired_at IS NOT NULL, p.data_product_id, d.name, a.requested_by, a.approved_at, a.created_at, "   \
	"a.updated_at, a.terminated_by, a.terminated_at, c.status FROM agreements a JOIN data_products c ON c.id = a.consumer_product_id "                  \
	"JOIN output_ports p ON p.id = a.output_port_id JOIN data_products d ON d.id = p.data_product_id "

static json_t *text_or_null(db_stmt *st, int i)
{
	return db_col_is_null(st, i) ? json_null() : json_string(db_col_text(st, i));
}

/* {"user_id","name"} (+ extra) for a user of org_id, or null when user_id is NULL. */
static int user_json(pb_db *db, const char *org_id, db_stmt *st, int col, json_t **out, char *err)
{
	char name[PB_NAME_FIELD_MAX + 1];
	*out = json_null();
	if (db_col_is_null(st, col))
		return PB_OK;
	char id[PB_ID_BUF];
	xsnprintf(id, sizeof id, "%s", db_col_text(st, col));
	int rc = identity_user_name(db, org_id, id, name, err);
	if (rc && rc != PB_ENOTFOUND)
		return rc;
	*out = json_pack("{s:s,s:s?}", "user_id", id, "name", rc ? NULL : name);
	return *out ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
}

static int agreement_from_row(pb_db *db, const char *org_id, db_stmt *st, json_t **out, char *err)
{
	json_t *requested = NULL, *approved = json_null(), *terminated = NULL;
	*out = NULL;
	int rc = user_json(db, org_id, st, 11, &requested, err);
	if (!rc)
		rc = user_json(db, org_id, st, 15, &terminated, err);
	if (rc) {
		json_decref(requested);
		return rc;
	}
	/* agreements are approved by the publish that asks for them (core/store/agreements.h); a
	 * terminated one was approved before it ended */
	if (!db_col_is_null(st, 12)) {
		approved = json_is_object(requested) ? json_deep_copy(requested) : json_object();
		if (!approved || json_object_set_new(approved, "automatic", json_true())) {
			json_decref(approved);
			json_decref(requested);
			json_decref(terminated);
			return pb_err(err, PB_ENOMEM, "out of memory");
		}
	}
	*out = json_pack("{s:s,s:s,s:o,s:{s:s,s:s,s:s,s:o},s:{s:s,s:s,s:b,s:s,s:s},s:o,s:o,s:o,s:o,s:o,s:s,s:s}",
			 "id", db_col_text(st, 0), "state", db_col_text(st, 1), "purpose", text_or_null(st, 2),
			 "consumer", "data_product_id", db_col_text(st, 3), "name", db_col_text(st, 4), "type",
			 db_col_text(st, 5), "status", text_or_null(st, 17), "provider", "output_port_id", db_col_text(st, 6),
			 "output_port_name", db_col_text(st, 7), "retired", db_col_int(st, 8) != 0, "data_product_id",
			 db_col_text(st, 9), "data_product_name", db_col_text(st, 10), "requested_by", requested,
			 "approved_by", approved, "approved_at", text_or_null(st, 12), "terminated_by", terminated,
			 "terminated_at", text_or_null(st, 16), "created_at", db_col_text(st, 13), "updated_at",
			 db_col_text(st, 14));
	return *out ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
}

/* Appends the rows st yields to list, at most max; *more tells whether one was left. */
static int collect(pb_db *db, const char *org_id, db_stmt *st, size_t max, json_t *list, bool *more,
		   char *err)
{
	*more = false;
	for (;;) {
		int row = db_row(db, st, err);
		if (row <= 0)
			return row;
		if (json_array_size(list) == max) {
			*more = true;
			return PB_OK;
		}
		json_t *one = NULL;
		int rc = agreement_from_row(db, org_id, st, &one, err);
		if (rc)
			return rc;
		if (json_array_append_new(list, one))
			return pb_err(err, PB_ENOMEM, "out of memory");
	}
}

static int product_exists(pb_db *db, const char *org_id, const char *id, char *err)
{
	const char *v[] = { org_id, id };
	bool found = false;
	int rc = db_has_row(db, "SELECT 1 FROM data_products WHERE org_id = ? AND id = ?", v, 2, &found, err);
	return rc ? rc : found ? PB_OK : pb_err(err, PB_ENOTFOUND, "data_product: no data product %.64s", id);
}

int agreements_list_json(pb_db *db, const char *org_id, const char *data_product_id, const char *state,
			 const pb_page *page, json_t **out, char *err)
{
	static const char *const states[] = { "requested", "approved", "rejected", "cancelled", "terminated", NULL };
	db_stmt *st = NULL;
	json_t *list = NULL;
	char next[PB_PAGE_CURSOR_BUF] = "";
	bool more = false, known = !state;
	int rc;
	*out = NULL;
	for (size_t i = 0; state && states[i]; i++)
		known = known || !strcmp(states[i], state);
	if (!known)
		return pb_err(err, PB_EINVAL, "state: one of requested, approved, rejected, cancelled, terminated, not \"%.64s\"",
			      state);
	if (data_product_id && (rc = product_exists(db, org_id, data_product_id, err)))
		return rc;
	if (!(list = json_array()))
		return pb_err(err, PB_ENOMEM, "out of memory");
	if ((rc = db_prepare(db,
			     AGREEMENT_SELECT "WHERE a.org_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR a.consumer_product_id = ?2 OR "
			     "p.data_product_id = ?2) AND (CAST(?3 AS TEXT) IS NULL OR a.state = ?3) AND (CAST(?4 AS TEXT) IS NULL OR "
			     "a.created_at < ?4 OR (a.created_at = ?4 AND a.id < ?5)) "
			     "ORDER BY a.created_at DESC, a.id DESC LIMIT ?6",
			     &st, err)) ||
	    (rc = db_bind_text(st, 1, org_id, err)) || (rc = db_bind_text(st, 2, data_product_id, err)) ||
	    (rc = db_bind_text(st, 3, state, err)) || (rc = db_bind_text(st, 4, page->after ? page->at : NULL, err)) ||
	    (rc = db_bind_text(st, 5, page->after ? page->id : NULL, err)))
		goto out;
	db_bind_int64(st, 6, page->limit + 1, NULL);
	if ((rc = collect(db, org_id, st, (size_t)page->limit, list, &more, err)))
		goto out;
	if (more) {
		const json_t *last = json_array_get(list, json_array_size(list) - 1);
		if ((rc = pb_page_cursor(json_string_value(json_object_get(last, "created_at")),
					 json_string_value(json_object_get(last, "id")), next, err)))
			goto out;
	}
	*out = json_pack("{s:O,s:s?}", "agreements", list, "next_cursor", next[0] ? next : NULL);
	if (!*out)
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	db_done(st);
	json_decref(list);
	return rc;
}

int agreement_get_json(pb_db *db, const char *org_id, const char *id, json_t **out, char *err)
{
	db_stmt *st = NULL;
	*out = NULL;
	int rc = db_prepare(db, AGREEMENT_SELECT "WHERE a.org_id = ? AND a.id = ?", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, org_id, err)) && !(rc = db_bind_text(st, 2, id, err))) {
		int row = db_row(db, st, err);
		rc = row < 0 ? row
			     : row == 0 ? pb_err(err, PB_ENOTFOUND, "no agreement %.64s", id)
					: agreement_from_row(db, org_id, st, out, err);
	}
	db_done(st);
	return rc;
}

int agreements_consumed_json(pb_db *db, const char *org_id, const char *product_id, json_t **out, char *err)
{
	/* most products read nothing: one index probe answers that without the sorted join */
	const char *v[] = { org_id, product_id };
	bool any = false;
	int rc = db_has_row(db, "SELECT 1 FROM agreements WHERE consumer_product_id = ?2 AND org_id = ?1 LIMIT 1", v, 2,
			    &any, err);
	if (rc) {
		*out = NULL;
		return rc;
	}
	return agreements_consumed_known(db, org_id, product_id, any, out, err);
}

int agreements_consumed_known(pb_db *db, const char *org_id, const char *product_id, bool any, json_t **out,
			      char *err)
{
	db_stmt *st = NULL;
	json_t *list = json_array();
	bool more;
	int rc = PB_OK;
	*out = NULL;
	if (!list)
		return pb_err(err, PB_ENOMEM, "out of memory");
	if (any)
		rc = db_prepare(db,
				AGREEMENT_SELECT "WHERE a.org_id = ? AND a.consumer_product_id = ? "
				"ORDER BY a.created_at DESC, a.id DESC LIMIT ?",
				&st, err);
	if (!rc && any && !(rc = db_bind_text(st, 1, org_id, err)) && !(rc = db_bind_text(st, 2, product_id, err))) {
		db_bind_int64(st, 3, PB_LIST_MAX_ITEMS, NULL);
		rc = collect(db, org_id, st, PB_LIST_MAX_ITEMS, list, &more, err);
	}
	db_done(st);
	if (rc)
		json_decref(list);
	else
		*out = list;
	return rc;
}

int agreements_port_in_use(pb_db *db, const char *port_id, bool *in_use, char *err)
{
	return db_has_row(db, "SELECT 1 FROM agreements WHERE output_port_id = ? LIMIT 1", &port_id, 1, in_use, err);
}

int agreement_terminate(pb_db *db, const char *org_id, const char *id, const char *by_user, char *err)
{
	char now[PB_TIME_BUF];
	pb_now(now);
	const char *v[] = { org_id, id, by_user, now };
	return db_exec_texts(db,
			     "UPDATE agreements SET state = 'terminated', terminated_by = ?3, terminated_at = ?4, "
			     "updated_at = ?4 WHERE org_id = ?1 AND id = ?2 AND state <> 'terminated'",
			     v, 4, err);
}
