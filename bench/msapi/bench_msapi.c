/* msapi benchmark: against an emulator started by bench/msapi/run.sh (PBIPORT_*_URL and
 * PBIPORT_CA_BUNDLE set, read as pbiport reads them: runtime/config.c), lists every workspace through Fabric, Power BI and the scanner's
 * "modified" call, then scans them all with scanner_scan_batches (batches of 100, at most
 * `parallel` scans in flight). Prints one "key=value" line per measurement.
 *
 *   bench_msapi TENANT CLIENT_ID CLIENT_SECRET [PARALLEL [POLL_MS [POLL_MAX_MS]]]
 * The client secret may also come from BENCH_CLIENT_SECRET (then pass "-"). POLL_MS and
 * POLL_MAX_MS "-" (or left out, for POLL_MAX_MS) take pbiport's own settings
 * (PBIPORT_SCAN_POLL_MS, PBIPORT_SCAN_POLL_MAX_MS: runtime/config.c), as a worker polls.
 * BENCH_SCAN_ONLY=1 skips the Fabric and Power BI listings (bench/ingest's reference: the
 * emulator's scan throughput under the same poll settings as the worker it compares with). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "runtime/config.h"
#include "runtime/timeutil.h"
#include "msapi/entra.h"
#include "msapi/fabric.h"
#include "msapi/msapi.h"
#include "msapi/powerbi.h"
#include "msapi/scanner.h"
#include "runtime/util.h"

struct tally {
	size_t workspaces;
	size_t datasets;
	size_t reports;
};

/* Counts through the plain-C form, as an importer would read it. */
static int tally_scan(void *ctx, size_t batch, json_t *result, char *err)
{
	(void)batch;
	struct tally *t = ctx;
	scan_result r;
	int rc = scanner_parse_result(result, &r, err);
	for (size_t i = 0; !rc && i < r.nworkspaces; i++) {
		t->workspaces++;
		t->datasets += r.workspaces[i].ndatasets;
		t->reports += r.workspaces[i].nreports;
	}
	scan_result_release(&r);
	return rc;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static int scan(msapi *c, char **ids, size_t n, int parallel, long poll_max_ms, const char *label, char *err)
{
	double cpu0 = cpu_seconds();
	scanner_opts o = { .lineage = true, .datasource_details = true, .dataset_schema = true };
	struct tally t = { 0, 0, 0 };
	scanner_stats st;
	c->parallel = parallel;
	size_t nb = (n + PB_SCAN_BATCH_MAX - 1) / PB_SCAN_BATCH_MAX;
	scanner_batch *b = calloc(nb ? nb : 1, sizeof *b);
	if (!b)
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t i = 0; i < nb; i++) {
		size_t first = i * PB_SCAN_BATCH_MAX;
		b[i] = (scanner_batch){ .ids = (const char *const *)ids + first,
					.n = n - first < PB_SCAN_BATCH_MAX ? n - first : PB_SCAN_BATCH_MAX };
	}
	scanner_hooks h = { .ctx = &t, .result = tally_scan, .poll_max_ms = poll_max_ms };
	int rc = scanner_scan_batches(c, b, nb, &o, &h, &st, err);
	free(b);
	if (rc)
		return rc;
	double wall = (double)st.wall_ms / 1000.0;
	printf("%s_parallel=%d\n", label, st.parallel);
	printf("%s_wall_s=%.2f\n", label, wall);
	printf("%s_batches=%zu\n", label, st.batches);
	printf("%s_requests=%zu\n", label, st.requests);
	printf("%s_retries=%zu\n", label, st.retries);
	printf("%s_workspaces=%zu\n", label, t.workspaces);
	printf("%s_datasets=%zu\n", label, t.datasets);
	printf("%s_reports=%zu\n", label, t.reports);
	printf("%s_avg_requests_in_flight=%.2f\n", label, wall > 0 ? st.busy_seconds / wall : 0);
	printf("%s_slot_occupancy=%.2f\n", label, wall > 0 ? st.slot_seconds / (wall * st.parallel) : 0);
	printf("%s_workspaces_per_s=%.0f\n", label, wall > 0 ? (double)t.workspaces / wall : 0);
	printf("%s_client_cpu_s=%.2f\n", label, cpu_seconds() - cpu0);
	return PB_OK;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: bench_msapi TENANT CLIENT_ID CLIENT_SECRET|- [PARALLEL [POLL_MS]]\n");
		return 2;
	}
	const char *secret = strcmp(argv[3], "-") ? argv[3] : getenv("BENCH_CLIENT_SECRET");
	int parallel = argc > 4 ? atoi(argv[4]) : PB_SCAN_PARALLEL_MAX;
	const char *poll_arg = argc > 5 ? argv[5] : "100", *poll_max_arg = argc > 6 ? argv[6] : "-";
	bool scan_only = getenv("BENCH_SCAN_ONLY") && !strcmp(getenv("BENCH_SCAN_ONLY"), "1");
	char err[PB_ERR_MAX];
	pb_config cfg;
	pb_http *h = NULL;
	msapi c;
	memset(&c, 0, sizeof c);
	entra_token t;
	memset(&t, 0, sizeof t);
	char **ids = NULL;
	size_t nids = 0;
	if (config_load(&cfg, err)) {
		fprintf(stderr, "bench_msapi: %s\n", err);
		return 2;
	}
	pb_http_opts ho = { .ca_bundle = cfg.ca_bundle };
	int rc = pb_http_new(&ho, &h, err);
	if (rc)
		goto out;
	msapi_init(&c, h, &cfg);
	c.poll_ms = strcmp(poll_arg, "-") ? atol(poll_arg) : cfg.scan_poll_ms;
	long poll_max_ms = strcmp(poll_max_arg, "-") ? atol(poll_max_arg) : cfg.scan_poll_max_ms;
	printf("poll_ms=%ld\npoll_max_ms=%ld\n", c.poll_ms, poll_max_ms);
	entra_app app = { argv[1], argv[2], secret };
	if ((rc = entra_client_credentials(&c, &app, NULL, &t, err)) || (rc = msapi_set_token(&c, t.access_token, err)))
		goto out;

	long long t0 = pb_mono_ms();
	msapi_items l;
	if (!scan_only) {
		if ((rc = fabric_list_workspaces(&c, &l, err)))
			goto out;
		printf("fabric_list_workspaces=%zu\nfabric_list_wall_s=%.2f\n", l.n, (double)(pb_mono_ms() - t0) / 1000.0);
		msapi_items_release(&l);

		t0 = pb_mono_ms();
		if ((rc = powerbi_list_groups(&c, NULL, &l, err)))
			goto out;
		printf("powerbi_list_groups=%zu\npowerbi_list_wall_s=%.2f\n", l.n, (double)(pb_mono_ms() - t0) / 1000.0);
		msapi_items_release(&l);
	}

	t0 = pb_mono_ms();
	if ((rc = scanner_modified(&c, NULL, true, &ids, &nids, err)))
		goto out;
	printf("scanner_modified=%zu\nscanner_modified_wall_s=%.2f\n", nids, (double)(pb_mono_ms() - t0) / 1000.0);
	fflush(stdout);

	if ((rc = scan(&c, ids, nids, parallel, poll_max_ms, "scan", err)))
		goto out;
	fflush(stdout);
	if (getenv("BENCH_SERIAL"))
		rc = scan(&c, ids, nids, 1, poll_max_ms, "serial", err);
out:
	if (rc)
		fprintf(stderr, "bench_msapi: %s\n", err);
	msapi_strv_free(ids, nids);
	entra_token_release(&t);
	msapi_release(&c);
	pb_http_free(h);
	config_release(&cfg);
	return rc ? 1 : 0;
}
