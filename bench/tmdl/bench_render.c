/* Renders in one process, as a FastCGI process serving GET /api/output-ports/{id}/tmdl does:
 * the contract is read once, then rendered ITERATIONS times with the built-in templates.
 * Prints the CPU and wall time per render (first render apart: it compiles the templates
 * when nothing is cached yet) and fails unless every render succeeded with the same files.
 *
 *   bench_render CONTRACT ITERATIONS [TIME_LIMIT_MS]
 * TIME_LIMIT_MS (default: the contract-scaled budget) replaces the render's limits, e.g. for
 * a run under valgrind, which is ~50x slower than the budget expects. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/lang/contract.h"
#include "core/lang/render.h"
#include "runtime/util.h"

static double now_s(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 3 || atoi(argv[2]) < 1) {
		fprintf(stderr, "usage: bench_render CONTRACT ITERATIONS [TIME_LIMIT_MS]\n");
		return 2;
	}
	int iterations = atoi(argv[2]);
	render_opts o = { .time_limit_ms = argc > 3 ? atoi(argv[3]) : 0 };
	pb_contract *c = NULL;
	char err[PB_ERR_MAX];
	size_t nfiles = 0, nbytes = 0;
	double first_cpu = 0, first_wall = 0, cpu0 = 0, wall0 = 0;
	if (contract_load(argv[1], &c, err)) {
		fprintf(stderr, "bench_render: %s\n", err);
		return 1;
	}
	for (int i = 0; i < iterations; i++) {
		double cpu = now_s(CLOCK_PROCESS_CPUTIME_ID), wall = now_s(CLOCK_MONOTONIC);
		pb_files f = { 0 };
		if (tmdl_render(c, &o, &f, err)) {
			fprintf(stderr, "bench_render: render %d: %s\n", i + 1, err);
			return 1;
		}
		size_t bytes = 0;
		for (size_t k = 0; k < f.n; k++)
			bytes += f.v[k].len;
		if (i == 0) {
			nfiles = f.n;
			nbytes = bytes;
			first_cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu;
			first_wall = now_s(CLOCK_MONOTONIC) - wall;
			cpu0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
			wall0 = now_s(CLOCK_MONOTONIC);
		} else if (f.n != nfiles || bytes != nbytes) {
			fprintf(stderr, "bench_render: render %d made %zu files (%zu bytes), the first %zu (%zu)\n", i + 1,
				f.n, bytes, nfiles, nbytes);
			return 1;
		}
		pb_files_release(&f);
	}
	int rest = iterations - 1;
	printf("files=%zu\nbytes=%zu\nfirst_cpu_us=%.0f\nfirst_wall_us=%.0f\n", nfiles, nbytes, first_cpu * 1e6,
	       first_wall * 1e6);
	if (rest > 0)
		printf("renders=%d\ncpu_us_per_render=%.1f\nwall_us_per_render=%.1f\n", rest,
		       (now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / rest * 1e6, (now_s(CLOCK_MONOTONIC) - wall0) / rest * 1e6);
	contract_free(c);
	return 0;
}
