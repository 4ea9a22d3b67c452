/* The integrations store: Power BI import integrations (service principal, filters,
 * schedule) and their runs. Owns the tables integrations and integration_runs.
 *
 * - The client secret is sealed with the key ring (context "integration:<id>") and never
 *   returned; integration_open_secret() opens it for the worker and the permission doctor.
 * - A name is unique within an org (PB_ECONFLICT, code "conflict", on a clash).
 * - A schedule (preset or 5-field cron, UTC; core/lang/cron.h) must not run more often than
 *   PBIPORT_MIN_SCHEDULE_INTERVAL. It is first due at its next matching time.
 * - Runs: at most one queued or running per integration (the "ingest" job's idempotency key
 *   "ingest:<integration id>"); the last PB_INTEGRATION_RUNS_KEPT are kept.
 *
 * Every read takes the caller's org id: another org's integrations are not found.
 * Ownership: values returned are new; free with the matching _free. */
#ifndef PBIPORT_INTEGRATIONS_H
#define PBIPORT_INTEGRATIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/failure.h"

struct json_t;

typedef struct pb_integration {
	char id[PB_ID_BUF];
	char org_id[PB_ID_BUF];
	char *name, *type, *tenant_id, *client_id;
	char *client_secret;       /* sealed text; open with integration_open_secret */
	char *filters_json;        /* normalized {"workspaces":{"include":[],"exclude":[]},...} */
	char *filter_rule;         /* Lua module name, NULL = "filters.default" */
	bool include_personal;
	char *schedule;            /* NULL: manual only */
	char *next_run_at;         /* NULL without a schedule */
	char *last_success_at;     /* start of the last succeeded run, NULL before one */
	char *last_run_state;      /* newest run's state, NULL when never run */
	char created_at[PB_TIME_BUF], updated_at[PB_TIME_BUF];
} pb_integration;

/* Fields of a create / update request, validated by integration_parse(). Strings borrowed
 * from the JSON body. For an update, NULL / -1 means "keep". */
typedef struct integration_input {
	const char *name, *type, *tenant_id, *client_id, *client_secret;
	const struct json_t *filters;    /* borrowed; NULL keeps */
	const char *filter_rule;          /* "" clears */
	int include_personal;             /* -1 keeps */
	const char *schedule;             /* "" clears */
	bool schedule_set;
} integration_input;

/* tenant_id and client_id (either may be NULL: not checked) must be GUIDs; PB_EINVAL naming
 * the field. */
int integration_check_ids(const char *tenant_id, const char *client_id, char *err);
/* Checks a request body (unknown fields, types, ids, filters, rule name, schedule and its
 * interval: at least min_interval_s, PBIPORT_MIN_SCHEDULE_INTERVAL). create: the required
 * fields must be there. PB_EINVAL with a message. */
int integration_parse(const struct json_t *body, bool create, int64_t min_interval_s, integration_input *in,
		      char *err);
/* Checks and normalizes a filters object; *out is new JSON text. */
int integration_filters_normalize(const struct json_t *filters, char **out, char *err);

/* Save an integration checked by integration_parse (and, for a custom filter_rule, by
 * core/flow/ingest.h ingest_filter_check). f: PB_EINVAL naming the field (a secret that
 * cannot be sealed: APPLICATION_ENCRYPTION_KEYS), PB_ECONFLICT "conflict" for a name taken,
 * PB_ENOTFOUND (update) when org_id has no such integration; nothing is written then. */
int integrations_create(pb_db *db, const pb_config *cfg, const char *org_id, const char *user_id,
			const integration_input *in, pb_integration **out, pb_failure *f);
int integrations_update(pb_db *db, const pb_config *cfg, const char *org_id, const char *id,
			const integration_input *in, pb_integration **out, pb_failure *f);
/* Deletes the integration (its runs go with it) inside the caller's transaction; what its
 * assets become is the caller's to settle first (core/flow/ingest.h ingest_integration_delete).
 * PB_ENOTFOUND when org_id has no such integration. */
int integrations_delete(pb_db *db, const char *org_id, const char *id, char *err);
/* org_id NULL: any org (the worker, which got the id from its own job). */
int integrations_get(pb_db *db, const char *org_id, const char *id, pb_integration **out, char *err);
/* Ordered by name; at most PB_LIST_MAX_ITEMS. */
int integrations_list(pb_db *db, const char *org_id, pb_integration **out, size_t *n, char *err);
void integration_free(pb_integration *i);
void integrations_free(pb_integration *v, size_t n);
/* Never the secret: {"id","name","type","tenant_id","client_id","has_client_secret",
 * "filters","filter_rule","include_personal","schedule","next_run_at","last_run_state",
 * "last_success_at","created_at","updated_at"}. New reference. */
struct json_t *integration_json(const pb_integration *i);
/* integrations_list as integration_json shows each: *out a new array (NULL on failure). */
int integrations_list_json(pb_db *db, const char *org_id, struct json_t **out, char *err);

/* pbiport rotate-keys: re-seals every client secret sealed with an older key than the
 * first of cfg's ring (one transaction); *resealed counts them. */
int integrations_rotate(pb_db *db, const pb_config *cfg, size_t *resealed, char *err);

/* The plain client secret: *plain new, free with pb_secret_free(*plain, *len). A secret that
 * cannot be opened (APPLICATION_ENCRYPTION_KEYS unset, or without the key it was sealed with)
 * fails with a message naming the integration. */
int integration_open_secret(const pb_config *cfg, const pb_integration *i, char **plain, size_t *len, char *err);

/* Schedules: integrations whose next_run_at has come (at most PB_LIST_MAX_ITEMS). */
int integrations_due(pb_db *db, const char *now, pb_integration **out, size_t *n, char *err);
/* Moves next_run_at from seen to next (compare-and-swap: *won false when another worker
 * moved it first). */
int integration_advance_schedule(pb_db *db, const char *id, const char *seen, const char *next, bool *won,
				 char *err);

/* ---- runs ---- */

typedef struct pb_run {
	char id[PB_ID_BUF];
	char integration_id[PB_ID_BUF];
	char org_id[PB_ID_BUF];
	char *job_id, *trigger, *state, *mode;
	char *started_at, *finished_at;   /* NULL until then */
	char *counts_json;                /* flat object of integers */
	char *warnings_json;              /* array of strings */
	char *error_code, *error_message;
	char created_at[PB_TIME_BUF];
	char *wait_until, *wait_reason;   /* why a queued run waits and until when; NULL when it does not */
} pb_run;

/* Queues a run (trigger "manual" or "schedule"): a run row and an "ingest" job, in one
 * transaction (the caller's, when it holds one): both are written or neither. When one is
 * already queued or running, nothing is written: *out is that run and *existing true.
 * user_id may be NULL (schedule). */
int integration_run_submit(pb_db *db, const char *org_id, const char *user_id, const char *integration_id,
			   const char *trigger, pb_run **out, bool *existing, char *err);
/* Newest first, at most PB_INTEGRATION_RUNS_KEPT. A run whose job ended without closing it
 * (cancelled while queued, its workers lost for good) is shown failed with the job's code,
 * message and end; so is last_run_state. Reads only: nothing is written. */
int integration_runs_list(pb_db *db, const char *org_id, const char *integration_id, pb_run **out, size_t *n,
			  char *err);
int integration_run_get(pb_db *db, const char *run_id, pb_run **out, char *err);
/* queued -> running (started_at set on the first start only), with the mode; clears the wait. */
int integration_run_start(pb_db *db, const char *run_id, const char *mode, char *err);
/* The run goes back to the queue until `until` (ISO-8601 UTC) because of reason (one line):
 * shown as "waiting" while it is queued. */
int integration_run_wait(pb_db *db, const char *run_id, const char *until, const char *reason, char *err);
/* Records warnings (JSON array text) while the run goes on. */
int integration_run_warnings(pb_db *db, const char *run_id, const char *warnings_json, char *err);
/* Ends a run: state "succeeded" or "failed", counts (JSON object text or NULL), warnings
 * (JSON array text or NULL keeps), error. A success also sets the integration's
 * last_success_at to the run's start. Prunes the history to the last PB_INTEGRATION_RUNS_KEPT. */
int integration_run_finish(pb_db *db, const char *run_id, bool ok, const char *counts_json,
			   const char *warnings_json, const char *code, const char *message, char *err);
void run_free(pb_run *r);
void runs_free(pb_run *v, size_t n);
/* {"id","integration_id","trigger","state","mode","job_id","started_at","finished_at",
 *  "counts":{...},"warnings":[...],"error":{"code","message"}|null,
 *  "waiting":{"until","reason"}|null,"created_at"} */
struct json_t *run_json(const pb_run *r);
/* integration_runs_list as run_json shows each: *out a new array (NULL on failure). */
int integration_runs_json(pb_db *db, const char *org_id, const char *integration_id, struct json_t **out,
			  char *err);

#endif
