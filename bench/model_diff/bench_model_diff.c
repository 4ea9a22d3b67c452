/* An update's CPU in pbiport against a publish's, in one process (bench/model_diff/run.sh):
 *
 *   bench_model_diff BEFORE AFTER ROUNDS
 *
 * BEFORE is the contract the model was published from, AFTER the contract now. The live model
 * ("have") is BEFORE's render plus what analysts add in Power BI: two measures in every table
 * (one naming a column as 'Table'[Column], one as [Column]) and a calculated table with its
 * ref. Each round times, with the templates already compiled (the first render of a process
 * compiles them; it is not counted):
 *   render  tmdl_render(AFTER)               what a publish computes (the baseline)
 *   diff    model_diff(want, have)           the dry run / drift
 *   merge   model_merge(want, have, false)   the definition an update uploads
 *   plan    model_plan_new + model_plan_diff + model_plan_merge: both from one reading
 * and keeps each one's fastest round. Prints key=value lines; fails unless the diff lists the
 * expected changes, every analyst object is kept, and the merged definition diffed against
 * `want` shows no change. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/lang/contract.h"
#include "core/lang/model_diff.h"
#include "core/lang/render.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

static double now_s(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct timing {
	double cpu, wall;
} timing;

static void keep_best(timing *best, double cpu0, double wall0, int round)
{
	double cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0, wall = now_s(CLOCK_MONOTONIC) - wall0;
	if (!round || cpu < best->cpu)
		best->cpu = cpu;
	if (!round || wall < best->wall)
		best->wall = wall;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const pb_file *)a)->path, ((const pb_file *)b)->path);
}

/* The analysts' additions: measures at the end of every table file, a calculated table. */
static int add_analyst_objects(pb_files *f, size_t *n_measures, char *err)
{
	size_t n = f->n;
	pb_file *v = realloc(f->v, (n + 1) * sizeof *v);
	if (!v)
		return pb_err(err, PB_ENOMEM, "out of memory");
	f->v = v;
	*n_measures = 0;
	for (size_t i = 0; i < n; i++) {
		pb_file *p = &f->v[i];
		const char *stem = strncmp(p->path, "definition/tables/", 18) ? NULL : p->path + 18;
		if (!stem && strcmp(p->path, "definition/model.tmdl"))
			continue;
		sbuf sb;
		sbuf_init(&sb, PB_RENDER_MAX_BYTES);
		int bad = sbuf_add(&sb, p->content, p->len);
		if (stem) {
			int len = (int)(strlen(stem) - 5);
			bad |= sbuf_addf(&sb,
					 "\n\t/// Paid amount, all orders.\n"
					 "\tmeasure 'Total %.*s' = SUM('%.*s'[column 02 number])\n"
					 "\t\tformatString: #,0.00\n\t\tlineageTag: analyst-%zu-a\n"
					 "\n\t\tannotation PBI_FormatHint = {\"isGeneralNumber\":true}\n"
					 "\n\tmeasure 'Share %.*s' = ```\n"
					 "\t\t\tVAR total = CALCULATE(SUM([column 02 number]), ALL('%.*s'))\n"
					 "\t\t\tRETURN DIVIDE(SUM([column 02 number]), total)\n"
					 "\t\t\t```\n\t\tformatString: 0.0%%\n\t\tlineageTag: analyst-%zu-b\n",
					 len, stem, len, stem, i, len, stem, len, stem, i);
			*n_measures += 2;
		} else {
			bad |= sbuf_adds(&sb, "\nref table 'Top Rows'\n");
		}
		if (bad) {
			sbuf_release(&sb);
			return pb_err(err, PB_ENOMEM, "out of memory");
		}
		free(p->content);
		p->content = sbuf_detach(&sb, &p->len);
	}
	f->v[n].path = xstrdup("definition/tables/Top Rows.tmdl");
	f->v[n].content = xstrdup("table 'Top Rows'\n\tlineageTag: analyst-calc\n\n"
				  "\tcolumn id\n\t\tdataType: int64\n\t\tsourceColumn: [id]\n\n"
				  "\tpartition 'Top Rows' = calculated\n\t\tmode: import\n"
				  "\t\tsource = TOPN(100, table_00001, table_00001[id])\n");
	if (!f->v[n].path || !f->v[n].content)
		return pb_err(err, PB_ENOMEM, "out of memory");
	f->v[n].len = strlen(f->v[n].content);
	f->n = n + 1;
	qsort(f->v, f->n, sizeof *f->v, cmp_file);
	return PB_OK;
}

int main(int argc, char **argv)
{
	pb_contract *before = NULL, *after = NULL;
	pb_files have = { 0 }, want = { 0 }, merged = { 0 };
	json_t *d = NULL;
	char err[PB_ERR_MAX];
	timing render = { 0 }, diff = { 0 }, merge = { 0 }, plan = { 0 };
	model_plan *mp = NULL;
	size_t n_measures = 0, bytes = 0;
	int rounds = argc > 3 ? atoi(argv[3]) : 0, rc = 1;
	if (argc != 4 || rounds < 1) {
		fprintf(stderr, "usage: bench_model_diff BEFORE AFTER ROUNDS\n");
		return 2;
	}
	render_opts o = { 0 };
	if (contract_load(argv[1], &before, err) || contract_load(argv[2], &after, err) ||
	    tmdl_render(before, &o, &have, err) || add_analyst_objects(&have, &n_measures, err))
		goto out;
	for (int r = 0; r < rounds; r++) {
		pb_files_release(&want);
		pb_files_release(&merged);
		json_decref(d);
		d = NULL;
		double cpu = now_s(CLOCK_PROCESS_CPUTIME_ID), wall = now_s(CLOCK_MONOTONIC);
		if (tmdl_render(after, &o, &want, err))
			goto out;
		keep_best(&render, cpu, wall, r);
		cpu = now_s(CLOCK_PROCESS_CPUTIME_ID);
		wall = now_s(CLOCK_MONOTONIC);
		if (model_diff(&want, &have, &d, err))
			goto out;
		keep_best(&diff, cpu, wall, r);
		cpu = now_s(CLOCK_PROCESS_CPUTIME_ID);
		wall = now_s(CLOCK_MONOTONIC);
		if (model_merge(&want, &have, false, &merged, err))
			goto out;
		keep_best(&merge, cpu, wall, r);
		pb_files_release(&merged);
		json_decref(d);
		d = NULL;
		cpu = now_s(CLOCK_PROCESS_CPUTIME_ID);
		wall = now_s(CLOCK_MONOTONIC);
		if (model_plan_new(&want, &have, &mp, err) || model_plan_diff(mp, &d, err) ||
		    model_plan_merge(mp, false, &merged, err))
			goto out;
		model_plan_free(mp);
		mp = NULL;
		keep_best(&plan, cpu, wall, r);
	}
	json_t *summary = json_object_get(d, "summary");
	size_t kept = json_array_size(json_object_get(d, "kept"));
	if (kept != n_measures + 1 || json_array_size(json_object_get(d, "blocking"))) {
		snprintf(err, sizeof err, "%zu objects kept, %zu blocking (want %zu kept, none blocking)", kept,
			 json_array_size(json_object_get(d, "blocking")), n_measures + 1);
		goto out;
	}
	printf("tables=%zu\nfiles=%zu\nkept=%zu\nadded=%lld\nchanged=%lld\nremoved=%lld\n", after->ntables, want.n, kept,
	       (long long)json_integer_value(json_object_get(summary, "added")),
	       (long long)json_integer_value(json_object_get(summary, "changed")),
	       (long long)json_integer_value(json_object_get(summary, "removed")));
	json_decref(d);
	d = NULL;
	if (model_diff(&want, &merged, &d, err))
		goto out;
	if (json_array_size(json_object_get(d, "changes")) || json_array_size(json_object_get(d, "kept")) != kept) {
		snprintf(err, sizeof err, "the merged definition differs from want");
		goto out;
	}
	for (size_t i = 0; i < merged.n; i++)
		bytes += merged.v[i].len;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("merged_bytes=%zu\nrounds=%d\nrender_cpu_ms=%.2f\nrender_wall_ms=%.2f\ndiff_cpu_ms=%.2f\n"
	       "diff_wall_ms=%.2f\nmerge_cpu_ms=%.2f\nmerge_wall_ms=%.2f\nplan_cpu_ms=%.2f\nplan_wall_ms=%.2f\n"
	       "max_rss_kb=%ld\n",
	       bytes, rounds, render.cpu * 1e3, render.wall * 1e3, diff.cpu * 1e3, diff.wall * 1e3, merge.cpu * 1e3,
	       merge.wall * 1e3, plan.cpu * 1e3, plan.wall * 1e3, ru.ru_maxrss);
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "bench_model_diff: %s\n", err);
	json_decref(d);
	model_plan_free(mp);
	pb_files_release(&have);
	pb_files_release(&want);
	pb_files_release(&merged);
	contract_free(before);
	contract_free(after);
	return rc;
}
