/* The apply step of an import alone (core/store/assets.h assets_apply_run), in CPU time, without the
 * emulator: a run shaped like bench/ingest's (N workspaces x 5 models x 10 reports + 1
 * dashboard, a model -> report edge per report) is staged, then applied three times: all new,
 * all unchanged, and an incremental run that scanned nothing. With "shared", three integrations
 * (scanner, scanner, listing) apply the same run in turn, twice.
 *
 * Build and run from the repository root, after `make`:
 *   cc -std=c11 -D_GNU_SOURCE -O2 -I. -o /tmp/apply bench/ingest/apply.c build/libpbiport.a \
 *      $(pkg-config --libs lua5.4 sqlite3 jansson libcurl openssl yaml-0.1 fcgi) -lm -lpthread
 *   /tmp/apply /tmp/apply.db 10000 sql [shared]
 * For a tree from before sql/0011 (assets_apply_run without its access argument), add
 * -DAPPLY_BEFORE_SIGHTINGS to compare. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/store/assets.h"
#include "core/store/identity.h"
#include "runtime/db.h"
#include "runtime/util.h"

#define MODEL_DETAILS                                                                                            \
	"{\"workspace_id\":\"W\",\"workspace_name\":\"Workspace name\",\"configured_by\":\"alice@contoso.example\","    \
	"\"storage_mode\":\"Abf\",\"tables\":[{\"name\":\"Facts\",\"hidden\":false,\"columns\":[{\"name\":\"Id\","       \
	"\"data_type\":\"Int64\",\"hidden\":false,\"column_type\":\"Data\"},{\"name\":\"Amount\",\"data_type\":"         \
	"\"Double\",\"hidden\":false,\"column_type\":\"Data\"}],\"measures\":[],\"sources\":[\"let S = "                 \
	"Snowflake.Databases(\\\"acme\\\", \\\"WH\\\") in S\"]}],\"expressions\":[],\"datasource_ids\":[\"d1\"],"        \
	"\"upstream_dataset_ids\":[],\"upstream_tables\":[{\"type\":\"snowflake\",\"host\":\"acme\",\"table\":\"FACTS\"}]}"

static double cpu_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void check(int rc, const char *what, const char *err)
{
	if (rc) {
		fprintf(stderr, "%s: %s\n", what, err);
		exit(1);
	}
}

/* One statement with three text parameters. */
static void exec3(pb_db *db, const char *sql, const char *a, const char *b, const char *c)
{
	char err[PB_ERR_MAX];
	const char *v[3] = { a, b, c };
	check(db_exec_texts(db, sql, v, 3, err), sql, err);
}

static void integration(pb_db *db, const char *org, const char *id)
{
	exec3(db, "INSERT INTO integrations (id, org_id, name, type, tenant_id, client_id, client_secret, filters_json, "
		  "created_at, updated_at) VALUES (?, ?, ?, 'powerbi', 't', 'c', 's', '{}', 'x', 'x')", id, org, id);
}

/* Stages a run of integ over nws workspaces, 100 workspaces a transaction (a scan batch). */
static void stage_run(pb_db *db, const char *org, const char *integ, const char *run, int nws)
{
	char err[PB_ERR_MAX], ws[64], model[64], report[64], a[PB_ID_BUF], b[PB_ID_BUF], d[256];
	exec3(db, "INSERT INTO integration_runs (id, integration_id, org_id, trigger, state, created_at) "
		  "VALUES (?, ?, ?, 'manual', 'running', '2026-01-01T00:00:00.000Z')", run, integ, org);
	for (int w = 0; w < nws; w++) {
		if (w % 100 == 0)
			check(db_begin(db, err), "begin", err);
		snprintf(ws, sizeof ws, "22222222-0000-4000-8000-%012d", w);
		check(assets_stage(db, org, run, "workspace", ws, ws, "Workspace", "{\"type\":\"Workspace\"}", err), "stage",
		      err);
		for (int m = 0; m < 5; m++) {
			snprintf(model, sizeof model, "33333333-%04d-4000-8000-%012d", m, w);
			check(assets_stage(db, org, run, "semantic_model", model, ws, "Model", MODEL_DETAILS, err), "stage", err);
			for (int r = 0; r < 2; r++) {
				snprintf(report, sizeof report, "44444444-%04d-4000-8000-%012d", m * 2 + r, w);
				snprintf(d, sizeof d, "{\"workspace_id\":\"%s\",\"dataset_id\":\"%s\"}", ws, model);
				check(assets_stage(db, org, run, "report", report, ws, "Report", d, err), "stage", err);
				assets_id_for(org, "semantic_model", model, a);
				assets_id_for(org, "report", report, b);
				check(assets_stage_edge(db, run, "semantic_model", a, "report", b, err), "edge", err);
			}
		}
		snprintf(d, sizeof d, "55555555-0000-4000-8000-%012d", w);
		check(assets_stage(db, org, run, "dashboard", d, ws, "Dash", "{\"tiles\":[]}", err), "stage", err);
		if (w % 100 == 99)
			check(db_commit(db, err), "commit", err);
	}
	if (nws % 100)
		check(db_commit(db, err), "commit", err);
}

static void apply(pb_db *db, const char *org, const char *integ, const char *run, bool full, const char *access,
		  const char *label)
{
	char err[PB_ERR_MAX];
	assets_counts c;
	double t0 = cpu_ms();
#ifdef APPLY_BEFORE_SIGHTINGS
	(void)access;
	check(assets_apply_run(db, org, integ, run, full, &c, err), "apply", err);
#else
	check(assets_apply_run(db, org, integ, run, full, access, &c, err), "apply", err);
#endif
	check(assets_unstage(db, run, err), "unstage", err);
	printf("%-28s cpu_ms %6.0f  added %ld changed %ld removed %ld seen %ld\n", label, cpu_ms() - t0, c.added,
	       c.changed, c.removed, c.workspaces + c.semantic_models + c.reports + c.dashboards + c.datasources);
}

int main(int argc, char **argv)
{
	char err[PB_ERR_MAX], org[PB_ID_BUF], run[32], label[64];
	pb_db *db = NULL;
	if (argc < 4) {
		fprintf(stderr, "usage: %s DB WORKSPACES SQL_DIR [shared]\n", argv[0]);
		return 2;
	}
	int nws = atoi(argv[2]);
	unlink(argv[1]);
	check(db_open(argv[1], true, &db, err) || db_migrate(db, argv[3], NULL, err) ||
	      identity_org_create(db, "acme", org, err), "open", err);
	integration(db, org, "i1");
	if (argc > 4 && !strcmp(argv[4], "shared")) {
		static const char *const who[] = { "i1", "i2", "i3" }, *const access[] = { "scanner", "scanner", "listing" };
		integration(db, org, "i2");
		integration(db, org, "i3");
		for (int k = 0; k < 6; k++) {
			snprintf(run, sizeof run, "shared%d", k);
			snprintf(label, sizeof label, "%s (%s)", who[k % 3], access[k % 3]);
			stage_run(db, org, who[k % 3], run, nws);
			apply(db, org, who[k % 3], run, true, access[k % 3], label);
		}
	} else {
		static const char *const labels[] = { "all new", "all unchanged", "incremental, nothing scanned" };
		for (int k = 0; k < 3; k++) {
			snprintf(run, sizeof run, "run%d", k);
			stage_run(db, org, "i1", run, k < 2 ? nws : 0);
			apply(db, org, "i1", run, k < 2, "scanner", labels[k]);
		}
	}
	db_close(db);
	unlink(argv[1]);
	return 0;
}
