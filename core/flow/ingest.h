/* Import from Power BI: the "ingest" job kind, the schedule tick and the permission doctor.
 *
 * A run (one "ingest" job, input {"integration_id","run_id"}):
 *  1. token by client credentials for the integration's service principal;
 *  2. plan: full scan on the first run, after a filter change and when the last success is
 *     30 days old or more; else incremental (admin "modified" workspaces since the last
 *     success, clamped to at least 30 minutes ago). Workspace filters are applied before
 *     scanning where names are known from earlier runs. The plan (batches of up to 100
 *     workspace ids) is written to integration_scans;
 *  3. scan: at most PB_SCAN_PARALLEL_MAX scans in flight, each getInfo charged to the
 *     tenant's hourly budget (PBIPORT_SCAN_BUDGET_PER_HOUR, default 500, shared by every
 *     integration on the tenant); scan ids are saved as soon as Power BI hands them out, so a
 *     worker that dies resumes polling them. Status polls back off from
 *     PBIPORT_SCAN_POLL_MS (default 2000) to PBIPORT_SCAN_POLL_MAX_MS (default 60000).
 *     Each finished batch is filtered (Lua rule) and staged in one transaction;
 *  4. apply: assets_apply_run() in one transaction (an asset other integrations see too stays
 *     one asset, core/store/assets.h), then lineage edges, then the run's counts (over every
 *     attempt of the run: a resumed run counts the workspaces planned and scans started before).
 * When admin APIs are refused, the per-workspace listing APIs are used instead and the run
 * carries a warning saying what that loses. A Retry-After longer than the msapi wait budget
 * puts the job back in the queue for that long (the plan and finished batches are kept), and
 * a 429 from the scanner APIs is recorded for the tenant (core/store/tenant_backoff.h): every run on
 * the tenant then waits in the queue until it ends, checked before planning, before each scan
 * round and every 2 s while scanning. A run put back in the queue records why and until when
 * (integration_run_wait, shown as the run's "waiting"). The permission doctor does not call
 * the scanner APIs while the tenant waits.
 *
 * Settings (runtime/config.h, read at start-up): PBIPORT_SCAN_POLL_MS, PBIPORT_SCAN_POLL_MAX_MS,
 * PBIPORT_SCAN_BUDGET_PER_HOUR. */
#ifndef PBIPORT_INGEST_H
#define PBIPORT_INGEST_H

#include "core/flow/worker.h"
#include "core/store/assets.h"
#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/failure.h"

struct json_t;

/* The "ingest" job kind (row in core/flow/job_kinds.c). */
int ingest_job(pb_job_ctx *ctx);

/* Worker tick: queues a run for every integration whose schedule came due and moves its
 * next due time past now (a worker that was down runs one catch-up, not a burst). */
int ingest_schedule_tick(pb_db *db, const pb_config *cfg, char *err);

/* The permission doctor for a service principal: signs in, lists workspaces, calls the
 * admin APIs and scans up to 100 workspaces. *report is new:
 * {"ok":bool,"checks":[{"check","ok":true|false|null,"message","fix"|null}]}: ok null =
 * not checked (an earlier check failed). Checks: credentials, fabric_api_access,
 * admin_api_access, detailed_metadata, mashup_expressions, workspace_roles. The test scan is
 * charged to the tenant's getInfo budget in db (skipped, "not checked", when it is used up).
 * whose names the credentials in messages ("integration 'prod'", "the credentials sent").
 * A failure to answer at all fills f: Entra or Power BI out of reach (unavailable,
 * throttled), Power BI refusing for another reason than the identity (ms_failure.h). */
int ingest_doctor(pb_db *db, const pb_config *cfg, const char *whose, const char *tenant_id,
		  const char *client_id, const char *client_secret, struct json_t **report, pb_failure *f);

/* Checks that the filter rule (module name, NULL = filters.default) loads and answers for
 * a sample item with the given filters (JSON text). For saving an integration. */
int ingest_filter_check(const pb_config *cfg, const char *rule, const char *filters_json, char *err);

/* Deletes integration id of org_id in one transaction: what its assets become first (each
 * passes to another integration that sees it, core/store/assets.h assets_integration_leaving),
 * then the integration. PB_ENOTFOUND when org_id has no such integration (nothing touched). */
int ingest_integration_delete(pb_db *db, const char *org_id, const char *id, char *err);

/* The integrations that see asset a (assets_seen_by), each with its "name": *out is new. */
int ingest_asset_seen_by(pb_db *db, const pb_asset *a, struct json_t **out, char *err);

#endif
