/* The lineage store, write side: owns the lineage_edges table (sql/0004_publish.sql).
 * core/flow/lineage.h reads it. Publish writes output_port -> data_product (the consumer
 * product of a published model); import writes its asset edges. */
#ifndef PBIPORT_LINEAGE_STORE_H
#define PBIPORT_LINEAGE_STORE_H

#include "runtime/db.h"

/* The statement that adds one edge (nothing when it exists), values its 7 value expressions for
 * (id, org_id, from_kind, from_id, to_kind, to_id, created_at): a string literal. For a store
 * that writes an edge within one statement of its own (published_models). */
#define LINEAGE_EDGE_INSERT(values)                                                             \
	"INSERT INTO lineage_edges (id, org_id, from_kind, from_id, to_kind, to_id, created_at) " \
	"VALUES (" values ") ON CONFLICT (org_id, from_kind, from_id, to_kind, to_id) DO NOTHING"

/* Records the edge from (from_kind, from_id) to (to_kind, to_id) in org_id. Adding an
 * edge that exists already changes nothing and succeeds, so a resumed job can repeat
 * it. Every argument is required (PB_EINVAL when one is NULL or empty). Runs inside the
 * caller's transaction when there is one. */
int lineage_edge_add(pb_db *db, const char *org_id, const char *from_kind, const char *from_id,
		     const char *to_kind, const char *to_id, char *err);

/* Records, as one set-based statement, every edge staged for import run run_id (table
 * lineage_staging, sql/0008) whose ends stand: the to end an active asset of org_id, the
 * from end an active asset or an output port / data product. Edges that exist already and
 * edges staged twice are skipped, so a re-applied run changes nothing. Runs inside the
 * caller's transaction when there is one (import applies assets and edges in one). */
int lineage_edges_add_staged(pb_db *db, const char *org_id, const char *run_id, char *err);

#endif
