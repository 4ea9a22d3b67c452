/* Power BI admin scanner (metadata scanning) API:
 * /v1.0/myorg/admin/workspaces/{modified,getInfo,scanStatus/{id},scanResult/{id}}.
 *
 * Power BI's rules (reference §4): at most 100 workspace ids per getInfo, 16 scans in
 * flight, 500 getInfo per hour, results kept 24 h. scanner_scan_batches keeps to the first two
 * on its own (batches of PB_SCAN_BATCH_MAX, at most min(c->parallel, PB_SCAN_PARALLEL_MAX)
 * scans in progress) and leaves 429s to the usual Retry-After handling. */
#ifndef PBIPORT_MSAPI_SCANNER_H
#define PBIPORT_MSAPI_SCANNER_H

#include "msapi/msapi.h"

typedef struct scanner_opts {
	bool lineage;
	bool datasource_details;
	bool dataset_schema;
	bool dataset_expressions;
	bool artifact_users;
} scanner_opts;

/* GET .../modified. modified_since: ISO-8601 UTC (30 min .. 30 days ago) or NULL for all.
 * *ids is a new array of *n new strings: free with msapi_strv_free(*ids, *n). */
int scanner_modified(msapi *c, const char *modified_since, bool exclude_personal, char ***ids, size_t *n,
		     char *err);
/* POST .../getInfo for 1..100 ids. *scan_id new. */
int scanner_get_info(msapi *c, const char *const *ids, size_t n, const scanner_opts *o, char **scan_id, char *err);
/* GET .../scanStatus/{id}. *status new: NotStarted, Running, Succeeded, Failed. */
int scanner_status(msapi *c, const char *scan_id, char **status, char *err);
/* GET .../scanResult/{id}. *out new: the WorkspaceInfoResponse JSON (reference §4.1);
 * caller decrefs. */
int scanner_result(msapi *c, const char *scan_id, json_t **out, char *err);

/* A scan result (reference §4.1) in plain C. Every pointer lives in the result's own arena
 * and is freed by scan_result_release; strings are NULL when Microsoft sent no such field.
 * Field names are matched case-insensitively (the service mixes CreatedDate/createdDate). */
typedef struct scan_column {
	const char *name, *data_type, *column_type, *expression;
	bool hidden;
} scan_column;
typedef struct scan_measure {
	const char *name, *expression;
	bool hidden;
} scan_measure;
typedef struct scan_table {
	const char *name;
	bool hidden;
	scan_column *columns;
	size_t ncolumns;
	scan_measure *measures;
	size_t nmeasures;
	const char **sources;            /* partition source expressions (M) */
	size_t nsources;
} scan_table;
typedef struct scan_expression {     /* a shared expression (M parameter or query) */
	const char *name, *expression;
} scan_expression;
typedef struct scan_dataset {
	const char *id, *name, *configured_by, *storage_mode, *schema_error;
	scan_table *tables;
	size_t ntables;
	scan_expression *expressions;    /* expressions[]; only entries with a name */
	size_t nexpressions;
	const char **datasource_ids;     /* datasourceUsages[].datasourceInstanceId */
	size_t ndatasource_ids;
	const char **upstream_dataset_ids;
	size_t nupstream_dataset_ids;
} scan_dataset;
typedef struct scan_report {
	const char *id, *name, *dataset_id, *report_type, *app_id;
} scan_report;
typedef struct scan_tile {
	const char *id, *title, *report_id, *dataset_id;
} scan_tile;
typedef struct scan_dashboard {
	const char *id, *name, *app_id;
	scan_tile *tiles;
	size_t ntiles;
} scan_dashboard;
typedef struct scan_workspace {
	const char *id, *name, *type, *state;
	scan_dataset *datasets;
	size_t ndatasets;
	scan_report *reports;
	size_t nreports;
	scan_dashboard *dashboards;
	size_t ndashboards;
} scan_workspace;
typedef struct scan_datasource {
	const char *id, *type, *gateway_id;
	const char *server, *database, *path, *url, *kind;   /* connectionDetails */
	/* connectionDetails.extensionDataSourceKind / Path: how connectors such as Snowflake
	 * and Databricks describe themselves (e.g. "Snowflake", "host;warehouse") */
	const char *extension_kind, *extension_path;
} scan_datasource;
typedef struct scan_result {
	scan_workspace *workspaces;
	size_t nworkspaces;
	scan_datasource *datasources;
	size_t ndatasources;
	void *arena;                     /* owned: every allocation above */
} scan_result;

/* Converts a scanResult body. Release out with scan_result_release (also after an error). */
int scanner_parse_result(const json_t *result, scan_result *out, char *err);
void scan_result_release(scan_result *r);

typedef struct scanner_stats {
	size_t batches;          /* getInfo calls planned */
	size_t succeeded;
	size_t failed;
	size_t requests;         /* HTTP requests made (including polls and retries) */
	size_t retries;          /* 429/503/network retries */
	int parallel;            /* scans allowed in flight */
	size_t max_running;      /* most scans started and not yet ended at once (scanner_scan_batches) */
	double busy_seconds;     /* sum of the requests' transfer times */
	double slot_seconds;     /* sum over batches of the time each held a scan slot; divided by
				  * wall time x parallel it is how fully the allowed concurrency was used */
	long long wall_ms;
	char first_error[PB_ERR_MAX];
} scanner_stats;

/* One batch of scanner_scan_batches: the workspaces of one getInfo, or a scan started
 * earlier (by a worker that stopped) to poll instead of starting it again. */
typedef struct scanner_batch {
	const char *const *ids;  /* borrowed: 1..PB_SCAN_BATCH_MAX workspace ids; unused with scan_id */
	size_t n;
	const char *scan_id;     /* borrowed; NULL: start the scan with getInfo */
} scanner_batch;

/* What scanner_scan_batches tells its caller; every member may be NULL / 0. batch is the
 * index into the batches array. A hook returns 0, or a negative pb_rc with its message in
 * err to stop the whole scan (the call then returns that rc). */
typedef struct scanner_hooks {
	void *ctx;
	/* getInfo returned the batch's scan id (borrowed for the call); called before the
	 * scan's first poll, so the caller can keep the id and resume after a restart */
	int (*started)(void *ctx, size_t batch, const char *scan_id, char *err);
	/* the batch's scan result (borrowed for the call) */
	int (*result)(void *ctx, size_t batch, json_t *result, char *err);
	/* instead of result: the batch's scan result as the bytes Power BI sent (borrowed for the
	 * call), not decoded here, so the caller can decode it elsewhere (on a thread of its own)
	 * while this one drives the other scans; the caller then also checks it is a JSON object */
	int (*result_text)(void *ctx, size_t batch, const char *body, size_t len, char *err);
	/* the batch failed for good (its calls failed, or Power BI failed, lost or timed out the
	 * scan or its result): rc and its one-line message. 401/403 stop the scan before this
	 * hook is asked. With this hook the call returns 0 after failures it let pass. */
	int (*failed)(void *ctx, size_t batch, int rc, const char *msg, char *err);
	/* asked before each reply is handled: true stops the scan (PB_EIO) */
	bool (*stop)(void *ctx);
	/* the first poll comes scanner_first_poll_ms after getInfo (or Power BI's Retry-After), then
	 * at doubling intervals up to this (or Retry-After); <= c->poll_ms: at most every c->poll_ms */
	long poll_max_ms;
} scanner_hooks;

/* When a new scan of n workspaces is first asked about (ms after getInfo accepted it), unless
 * Power BI sent Retry-After: a scan takes about as long as what it reads, so poll_ms (the
 * interval for a full batch of PB_SCAN_BATCH_MAX) scaled by n / PB_SCAN_BATCH_MAX, at least
 * PB_SCAN_FIRST_POLL_MIN_MS and at most poll_ms. Later polls double from there. */
long scanner_first_poll_ms(long poll_ms, size_t n);

/* Where to ask next about scan_id (what: "scanStatus" after getInfo, "scanResult" after a
 * Succeeded status): the Location Power BI sent with the answer, as the scanner API says to
 * use it, when it is on the origin msapi talks to (msapi_url_allowed: it carries the token)
 * and names this scan; otherwise the documented path admin/workspaces/<what>/<scan_id>.
 * *out: new (free). */
int scanner_next_url(const msapi *c, const char *location, const char *what, const char *scan_id, char **out,
		     char *err);

/* Scans batches[0..nb): getInfo for each (at most min(c->parallel, PB_SCAN_PARALLEL_MAX)
 * scans in flight), polls scanStatus at getInfo's Location (Retry-After, or sooner for a small
 * batch: scanner_first_poll_ms), fetches the results (at scanStatus's Location) in
 * parallel, telling h about each scan id, result and failure as they come. A batch that
 * fails is counted and the others go on; without a failed hook the call then returns its
 * error. 401/403 stop everything at once (the others would fail the same way). h and st may
 * be NULL. */
int scanner_scan_batches(msapi *c, const scanner_batch *batches, size_t nb, const scanner_opts *o,
			 const scanner_hooks *h, scanner_stats *st, char *err);

#endif
