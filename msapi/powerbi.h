/* Power BI REST (https://api.powerbi.com/v1.0/myorg): workspaces (groups), datasets,
 * reports, dashboards and tiles, data sources, refreshes, push datasets.
 * Lists follow @odata.nextLink and $top/$skip paging. Outputs are msapi_item values
 * (see msapi.h) or the plain structs below. */
#ifndef PBIPORT_MSAPI_POWERBI_H
#define PBIPORT_MSAPI_POWERBI_H

#include "msapi/msapi.h"

/* GET /groups (all pages). filter: OData $filter (e.g. "name eq 'Sales'") or NULL.
 * item: id, name, type. */
int powerbi_list_groups(msapi *c, const char *filter, msapi_items *out, char *err);
/* A workspace as GET /groups/{g} describes it (Groups - Get Group). Strings new (NULL when
 * absent); release with powerbi_group_release. */
typedef struct powerbi_group {
	char *id;
	char *name;
	char *capacity_id;            /* capacityId: absent on shared capacity */
	bool on_dedicated_capacity;   /* isOnDedicatedCapacity: Premium, PPU, Embedded or Fabric capacity */
} powerbi_group;
int powerbi_get_group(msapi *c, const char *group, powerbi_group *out, char *err);
void powerbi_group_release(powerbi_group *g);
/* GET /groups/{g}/datasets. item: id, name, web_url. */
int powerbi_list_datasets(msapi *c, const char *group, msapi_items *out, char *err);
/* GET /groups/{g}/datasets/{d} (Datasets - Get Dataset In Group): one dataset, as a list item
 * (id, name, web_url, description); release with msapi_item_release. */
int powerbi_get_dataset(msapi *c, const char *group, const char *dataset, msapi_item *out, char *err);
/* GET /groups/{g}/reports. item: id, name, type (reportType), dataset_id, web_url. */
int powerbi_list_reports(msapi *c, const char *group, msapi_items *out, char *err);
/* GET /groups/{g}/dashboards. item: id, name (displayName), web_url. */
int powerbi_list_dashboards(msapi *c, const char *group, msapi_items *out, char *err);
/* GET /groups/{g}/dashboards/{d}/tiles. item: id, name (title), dataset_id. */
int powerbi_list_tiles(msapi *c, const char *group, const char *dashboard, msapi_items *out, char *err);
/* GET /groups/{g}/datasets/{d}/datasources. item: id (datasourceId), type (datasourceType),
 * path (server;database, or url). */
int powerbi_list_datasources(msapi *c, const char *group, const char *dataset, msapi_items *out, char *err);

/* One refresh history entry; strings new (NULL when absent); release with
 * powerbi_refreshes_release. status: "Unknown" (running), "Completed", "Failed",
 * "Cancelled", "Disabled". */
typedef struct powerbi_refresh {
	char *request_id;
	char *refresh_type;
	char *status;
	char *start_time;
	char *end_time;
	char *error;          /* serviceExceptionJson, when failed */
} powerbi_refresh;
void powerbi_refreshes_release(powerbi_refresh *v, size_t n);
bool powerbi_refresh_running(const powerbi_refresh *r);

/* Enhanced-refresh options (strings borrowed). Any field set makes the call an enhanced
 * refresh: notifyOption is then left out (Power BI refuses it there), and Power BI answers
 * with the refresh's id. Unset: NULL strings, nobjects 0, and -1 for the numbers and
 * apply_refresh_policy (0 false, 1 true). */
typedef struct powerbi_refresh_object {
	const char *table;
	const char *partition;    /* NULL: the whole table */
} powerbi_refresh_object;
typedef struct powerbi_refresh_options {
	const char *type;         /* Full, ClearValues, Calculate, DataOnly, Automatic, Defragment */
	const char *commit_mode;  /* Transactional, PartialBatch */
	const powerbi_refresh_object *objects;
	size_t nobjects;
	int retry_count;
	int max_parallelism;
	int apply_refresh_policy;
	const char *effective_date;
	const char *timeout;      /* "hh:mm:ss" */
} powerbi_refresh_options;
#define POWERBI_REFRESH_OPTIONS_NONE { NULL, NULL, NULL, 0, -1, -1, -1, NULL, NULL }
bool powerbi_refresh_options_enhanced(const powerbi_refresh_options *o);
/* POST /groups/{g}/datasets/{d}/refreshes: with o NULL or none of its options set, a
 * standard refresh {"notifyOption": notify} (NULL = "NoNotification"; service principals
 * must use that), else an enhanced refresh with o. *request_id (may be NULL to ignore) is
 * new: the x-ms-request-id when Power BI gives one, else the id of the newest running
 * history entry. After a dropped connection the history is checked first: a running
 * refresh is taken as this one rather than starting another. */
int powerbi_refresh_dataset_with(msapi *c, const char *group, const char *dataset, const char *notify,
				 const powerbi_refresh_options *o, char **request_id, char *err);
/* GET .../refreshes?$top=top (top <= 0: service default). *out new array of *n entries. */
int powerbi_refresh_history(msapi *c, const char *group, const char *dataset, int top,
			    powerbi_refresh **out, size_t *n, char *err);

/* Push dataset definition (borrowed strings). data_type: Int64, Double, Boolean, Datetime,
 * String, Decimal. */
typedef struct powerbi_push_column {
	const char *name;
	const char *data_type;
} powerbi_push_column;
typedef struct powerbi_push_table {
	const char *name;
	const powerbi_push_column *columns;
	size_t ncolumns;
} powerbi_push_table;

/* POST /groups/{g}/datasets?defaultRetentionPolicy=... (retention NULL = "None", or
 * "basicFIFO"), defaultMode Push. After a dropped connection an existing dataset with
 * the same name is returned instead of creating a second. item: id, name. */
int powerbi_push_create(msapi *c, const char *group, const char *name, const powerbi_push_table *tables,
			size_t ntables, const char *retention, msapi_item *out, char *err);
/* POST .../tables/{t}/rows: body is the whole {"rows":[...]} JSON text (borrowed), sent as
 * it is; the caller keeps it within POWERBI_PUSH_ROWS_MAX rows (Power BI's limit). Not
 * repeated after a dropped connection or a gateway's 500/502/504: c->last.failure
 * MSAPI_OUTCOME_UNKNOWN (and c->last.outcome_unknown) then tells the rows may or may not have
 * been added. */
int powerbi_push_rows_text(msapi *c, const char *group, const char *dataset, const char *table,
			   const char *body, size_t len, char *err);
/* DELETE /groups/{g}/datasets/{d}: removes the dataset (semantic model) and its rows.
 * A dataset already gone (404) counts as deleted. */
int powerbi_dataset_delete(msapi *c, const char *group, const char *dataset, char *err);
/* DELETE .../tables/{t}/rows (all rows). */
int powerbi_push_delete_rows(msapi *c, const char *group, const char *dataset, const char *table, char *err);

/* POST /groups/{g}/datasets/{d}/executeQueries with EVALUATE ROW("n", COUNTROWS('table')):
 * the rows the table holds now (an empty table counts BLANK: 0). Needs the tenant setting
 * "Dataset Execute Queries REST API" and read + build permission on the dataset; Power BI
 * allows 120 such queries a minute per caller (429 then, retried like any 429). A DAX error
 * (no such table) is Power BI's 400 DatasetExecuteQueriesError, with its detail message. */
int powerbi_table_row_count(msapi *c, const char *group, const char *dataset, const char *table, long long *rows,
			    char *err);

#define POWERBI_PUSH_ROWS_MAX 10000

#endif
