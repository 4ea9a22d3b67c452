/* lineage_edges writes. See core/lineage_store.h. */
#include "core/lineage_store.h"

#include "runtime/util.h"

int lineage_edge_add(pb_db *db, const char *org_id, const char *from_kind, const char *from_id,
		     const char *to_kind, const char *to_id, char *err)
{
	const char *v[6] = { NULL, org_id, from_kind, from_id, to_kind, to_id };
	char id[PB_ID_BUF], now[PB_TIME_BUF];
	sqlite3_stmt *st = NULL;
	int rc;
	for (int i = 1; i < 6; i++)
		if (!v[i] || !*v[i])
			return pb_err(err, PB_EINVAL, "lineage edge: every kind and id is required");
	if ((rc = pb_new_id(id, err)))
		return rc;
	pb_now(now);
	v[0] = id;
	if ((rc = db_prepare(db,
			     "INSERT INTO lineage_edges (id, org_id, from_kind, from_id, to_kind, to_id, created_at) "
			     "VALUES (?, ?, ?, ?, ?, ?, ?) "
			     "ON CONFLICT (org_id, from_kind, from_id, to_kind, to_id) DO NOTHING",
			     &st, err)))
		return rc;
	for (int i = 0; i < 6 && !rc; i++)
		rc = db_bind_text(st, i + 1, v[i], err);
	if (!rc)
		rc = db_bind_text(st, 7, now, err);
	if (!rc)
		rc = db_exec(db, st, err);
	db_done(st);
	return rc;
}
