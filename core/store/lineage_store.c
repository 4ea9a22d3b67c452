/* lineage_edges writes. See core/store/lineage_store.h. */
#include "core/store/lineage_store.h"

#include "runtime/util.h"

int lineage_edge_add(pb_db *db, const char *org_id, const char *from_kind, const char *from_id,
		     const char *to_kind, const char *to_id, char *err)
{
	char id[PB_ID_BUF], now[PB_TIME_BUF];
	const char *v[7] = { id, org_id, from_kind, from_id, to_kind, to_id, now };
	int rc;
	for (int i = 1; i < 6; i++)
		if (!v[i] || !*v[i])
			return pb_err(err, PB_EINVAL, "lineage edge: every kind and id is required");
	if ((rc = pb_new_id(id, err)))
		return rc;
	pb_now(now);
	return db_exec_texts(db,
			     LINEAGE_EDGE_INSERT("?, ?, ?, ?, ?, ?, ?"), v, 7, err);
}

/* The statement of lineage_edges_add_staged around id, an expression of a fresh id per row of
 * pb_new_id's form: the one part with no common form (SQLite randomblob, PostgreSQL 13+
 * gen_random_uuid). */
#define ADD_STAGED(id)                                                                                  \
	"INSERT INTO lineage_edges (id, org_id, from_kind, from_id, to_kind, to_id, created_at) "        \
	"SELECT " id ", ?1, e.from_kind, e.from_id, e.to_kind, e.to_id, ?3 FROM "                         \
	"(SELECT DISTINCT from_kind, from_id, to_kind, to_id FROM lineage_staging WHERE run_id = ?2) e " \
	"WHERE (e.from_kind IN ('output_port', 'data_product') OR EXISTS (SELECT 1 FROM assets a "      \
	"WHERE a.id = e.from_id AND a.org_id = ?1 AND a.state = 'active')) AND EXISTS "                  \
	"(SELECT 1 FROM assets b WHERE b.id = e.to_id AND b.org_id = ?1 AND b.state = 'active') "        \
	"ORDER BY e.from_id, e.to_id "                                                                   \
	"ON CONFLICT (org_id, from_kind, from_id, to_kind, to_id) DO NOTHING"

int lineage_edges_add_staged(pb_db *db, const char *org_id, const char *run_id, char *err)
{
	char now[PB_TIME_BUF];
	const char *v[] = { org_id, run_id, now };
	if (!org_id || !*org_id || !run_id || !*run_id)
		return pb_err(err, PB_EINVAL, "staged lineage edges: org and run are required");
	pb_now(now);
	/* One statement instead of a prepared INSERT per edge. The ids have pb_new_id's form
	 * (32 lowercase hex digits from 16 random bytes); DISTINCT drops an edge staged twice and
	 * DO NOTHING one that exists already. The ends must be active assets of the org (a
	 * published model's source may be a data product or an output port). Rows go in from_id
	 * order so the edges' indexes are written in order rather than at random. The SELECT
	 * needs its WHERE for SQLite to read ON CONFLICT as the upsert clause. */
	return db_exec_texts(db,
			     db_dialect(db) == DB_DIALECT_POSTGRESQL
				     ? ADD_STAGED("replace(CAST(gen_random_uuid() AS TEXT), '-', '')")
				     : ADD_STAGED("lower(hex(randomblob(16)))"),
			     v, 3, err);
}
