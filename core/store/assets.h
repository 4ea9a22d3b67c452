/* The assets store: what imports brought in from Power BI (workspaces, semantic models,
 * reports, dashboards, data sources), keyed by (org, kind, Power BI id). Owns the tables
 * assets, asset_sightings and asset_staging.
 *
 * A run stages what it scans (assets_stage, row by row as batches finish; staged rows
 * survive a worker restart), then assets_apply_run() applies the whole run in ONE
 * transaction: upserts, marks what disappeared as removed (never deleted), counts
 * added / changed / removed. The staging rows stay until the caller has recorded the run
 * and drops them (assets_unstage): a worker that dies in between applies the same rows
 * again (nothing changes) instead of an empty run that would remove everything. A run
 * that fails before the apply leaves the previous assets untouched.
 *
 * An asset seen by several integrations is one asset. It belongs to one of them
 * (integration_id): that integration's runs write its name and description, and its service
 * principal refreshes the model (core/flow/refresh.c). The others are its sightings. Who it
 * belongs to: the integration with the richest access that sees it, scanner (the admin
 * scanner APIs: tables, columns, expressions) before listing (the per-workspace listing
 * APIs); among equals, the one it belongs to already; when that one no longer sees it, the
 * other with scanner access first, then the one that has seen it longest. So a listing run
 * never replaces what a scanner run recorded while a scanner integration still sees the asset,
 * and an asset is marked removed only when no integration that covered it sees it any more.
 *
 * Every read takes the caller's org id: another org's assets are not found.
 * Ownership: pb_asset values are new; free with asset_free / assets_free. */
#ifndef PBIPORT_ASSETS_H
#define PBIPORT_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/db.h"

struct json_t;

typedef struct pb_asset {
	char id[PB_ID_BUF];
	char org_id[PB_ID_BUF];
	char *integration_id;           /* NULL when the integration was deleted */
	char *kind;                     /* workspace, semantic_model, report, dashboard, datasource */
	char *powerbi_id;
	char *workspace_powerbi_id;     /* NULL for data sources; a workspace's own id for workspaces */
	char *name;
	char *details_json;             /* JSON object text (see docs/import.md "Assets") */
	char *state;                    /* active, removed */
	char *access;                   /* how integration_id sees Power BI: scanner, listing */
	char created_at[PB_TIME_BUF], updated_at[PB_TIME_BUF];
} pb_asset;

/* The id an asset gets: derived from (org, kind, Power BI id), so a run can name assets
 * (lineage edges) before they are written. 32 hex digits. */
void assets_id_for(const char *org_id, const char *kind, const char *powerbi_id, char out[PB_ID_BUF]);

/* True for the five kinds above. */
bool asset_kind_valid(const char *kind);

int assets_get(pb_db *db, const char *org_id, const char *id, pb_asset **out, char *err);
int assets_get_by_powerbi_id(pb_db *db, const char *org_id, const char *kind, const char *powerbi_id,
			     pb_asset **out, char *err);
/* Active assets of org, optionally of one kind and whose name contains q (case-insensitive,
 * ASCII), ordered by kind and name; at most PB_LIST_MAX_ITEMS. *out is a new array. */
int assets_list(pb_db *db, const char *org_id, const char *kind, const char *q, pb_asset **out, size_t *n,
		char *err);
/* Active workspaces an integration sees (its own and those it shares with another): *ids and
 * *names are new arrays of *n new strings (free each, then the arrays). For filtering before
 * a scan. */
int assets_workspace_names(pb_db *db, const char *integration_id, char ***ids, char ***names, size_t *n,
			   char *err);
void asset_free(pb_asset *a);
void assets_free(pb_asset *v, size_t n);

/* {"id","kind","powerbi_id","workspace_powerbi_id","name","state","integration_id",
 *  "access","created_at","updated_at"} + "details" (parsed) when with_details. New reference. */
struct json_t *asset_json(const pb_asset *a, bool with_details);
/* assets_list as asset_json shows each (without details): *out a new array (NULL on failure,
 * never a list missing an asset). */
int assets_list_json(pb_db *db, const char *org_id, const char *kind, const char *q, struct json_t **out,
		     char *err);

/* The integrations that see asset a now: *out (new) is
 * [{"integration_id","access","refresh":bool}], the one it belongs to first (refresh true: its
 * service principal refreshes the model); [] for a removed asset. The integrations' names come
 * from their store (core/flow/ingest.h ingest_asset_seen_by). */
int assets_seen_by(pb_db *db, const pb_asset *a, struct json_t **out, char *err);

/* Before integration_id of org_id is deleted: what belongs to it passes to another integration
 * that sees it (the order above); the rest keeps its last state. Runs inside the caller's
 * transaction, which it makes hold the organization's assets lock (as assets_apply_run does:
 * the two write the same assets). */
int assets_integration_leaving(pb_db *db, const char *org_id, const char *integration_id, char *err);

/* ---- staging (one run) ---- */

/* Stages one scanned object, appended: stage each object once per run (a data source, which
 * many batches name, is replaced instead). kind "_scope" marks a workspace id that the run
 * scanned (incremental runs remove only within scanned workspaces). */
int assets_stage(pb_db *db, const char *org_id, const char *run_id, const char *kind, const char *powerbi_id,
		 const char *workspace_powerbi_id, const char *name, const char *details_json, char *err);
/* Stages a lineage edge between asset ids (assets_id_for) or from an output port or data
 * product (from_kind "output_port" / "data_product"); applied by assets_apply_run when the
 * asset ends are active. */
int assets_stage_edge(pb_db *db, const char *run_id, const char *from_kind, const char *from_id,
		      const char *to_kind, const char *to_id, char *err);
/* Drops a run's staging rows (a run restarting from scratch, or after the apply). */
int assets_unstage(pb_db *db, const char *run_id, char *err);

typedef struct assets_counts {
	long workspaces, semantic_models, reports, dashboards, datasources;   /* active after the run */
	long added, changed, removed;
} assets_counts;

/* Applies the staged run in one transaction (see above), staged lineage edges included; the
 * staging rows are kept (drop them with assets_unstage once the run is recorded). access:
 * how the run saw Power BI, "scanner" or "listing". full: the run covers every asset the
 * integration sees; else only those within the staged "_scope" workspaces. What it covers and
 * did not see: the integration's sightings go, its own assets pass to another integration that
 * sees them or are marked removed. counts: the integration's active assets after the run (its
 * own and those it sees that belong to another); added / changed / removed by this run. */
int assets_apply_run(pb_db *db, const char *org_id, const char *integration_id, const char *run_id, bool full,
		     const char *access, assets_counts *counts, char *err);

#endif
