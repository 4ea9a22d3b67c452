/* Power BI admin scanner (metadata scanning) API:
 * /v1.0/myorg/admin/workspaces/{modified,getInfo,scanStatus/{id},scanResult/{id}}.
 *
 * Power BI's rules (reference §4): at most 100 workspace ids per getInfo, 16 scans in
 * flight, 500 getInfo per hour, results kept 24 h. scanner_scan_all keeps to the first two
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

/* Called once per scanned batch with the scan result (borrowed for the call). Return 0,
 * or a negative pb_rc (message in err) to stop the whole scan. */
typedef int (*scanner_result_fn)(void *ctx, json_t *result, char *err);

typedef struct scanner_stats {
	size_t batches;          /* getInfo calls planned */
	size_t succeeded;
	size_t failed;
	size_t requests;         /* HTTP requests made (including polls and retries) */
	size_t retries;          /* 429/503/network retries */
	int parallel;            /* scans allowed in flight */
	double busy_seconds;     /* sum of the requests' transfer times */
	double slot_seconds;     /* sum over batches of the time each held a scan slot; divided by
				  * wall time x parallel it is how fully the allowed concurrency was used */
	long long wall_ms;
	char first_error[PB_ERR_MAX];
} scanner_stats;

/* Scans every id: getInfo in batches, polls scanStatus (Retry-After or c->poll_ms), fetches
 * scanResult and hands it to fn. A batch that fails is counted and the others go on; the
 * call then returns its error. 401/403 stop everything at once (the others would fail the
 * same way). st may be NULL. */
int scanner_scan_all(msapi *c, const char *const *ids, size_t n, const scanner_opts *o, scanner_result_fn fn,
		     void *ctx, scanner_stats *st, char *err);

#endif
