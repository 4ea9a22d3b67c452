/* Server time of the web pages, in-process: the demo's data (the contracts in examples/contracts,
 * imported as the demo imports them) in a fresh database, then GET / and GET /data-products/{id}
 * through pb_handle (route, identity, read transaction, handler, Lua page template, response
 * text) as the FastCGI loop runs them, against the JSON API reads of the same data as a baseline
 * measured in the same run. Also the page weight: each page's HTML plus the stylesheet, the
 * script and the icon it loads.
 *
 * Build and run from the repository root, after `make` (bench/pages/run.sh does both):
 *   cc -std=c11 -D_GNU_SOURCE -O2 -I. -o build/bench/pages_bench bench/pages/pages_bench.c \
 *      build/libpbiport.a $(pkg-config --libs lua5.4 sqlite3 jansson libcurl openssl yaml-0.1 libutf8proc) \
 *      -lfcgi -lm -lpthread
 *   build/bench/pages_bench DIR ITERATIONS
 * Prints the Markdown rows of bench/README.md's "pages" section. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/store/identity.h"
#include "handlers/handlers.h"
#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/fcgi.h"
#include "runtime/util.h"

struct mem_io {
	const char *body;
	size_t len, off;
	sbuf out;
};

static long mem_read(void *ctx, char *buf, size_t n)
{
	struct mem_io *m = ctx;
	if (n > m->len - m->off)
		n = m->len - m->off;
	memcpy(buf, m->body + m->off, n);
	m->off += n;
	return (long)n;
}

static int mem_write(void *ctx, const char *buf, size_t n)
{
	return sbuf_add(&((struct mem_io *)ctx)->out, buf, n);
}

typedef struct bench {
	pb_config cfg;
	pb_db *db;
	struct req r;
	struct mem_io io;
} bench;

/* One request; returns the status, the response (headers and body) in b->io.out. */
static int run(bench *b, const char *method, const char *uri, const char *user, const char *type, const char *body)
{
	char m[32], u[512], who[64], ct[128], cl[32];
	char *env[12];
	size_t n = 0;
	xsnprintf(m, sizeof m, "REQUEST_METHOD=%s", method);
	xsnprintf(u, sizeof u, "REQUEST_URI=%s", uri);
	xsnprintf(who, sizeof who, "REMOTE_USER=%s", user);
	env[n++] = m;
	env[n++] = u;
	env[n++] = who;
	env[n++] = "HTTP_ACCEPT=text/html";
	env[n++] = "HTTP_HOST=bench.test";
	if (type) {
		xsnprintf(ct, sizeof ct, "CONTENT_TYPE=%s", type);
		xsnprintf(cl, sizeof cl, "CONTENT_LENGTH=%zu", strlen(body));
		env[n++] = ct;
		env[n++] = cl;
	}
	env[n] = NULL;
	b->io.body = body;
	b->io.len = body ? strlen(body) : 0;
	b->io.off = 0;
	sbuf_reset(&b->io.out);
	struct req_io rio = { mem_read, mem_write, &b->io };
	pb_handle(&b->r, &pb_app, env, &rio);
	int status = b->r.status;
	req_reset(&b->r);
	return status;
}

static size_t body_bytes(const bench *b)
{
	const char *s = sbuf_str(&b->io.out), *p = strstr(s, "\r\n\r\n");
	return p ? b->io.out.len - (size_t)(p + 4 - s) : 0;
}

/* CPU time of this thread: the machine's other work (2 shared cores) moves wall time a lot
 * more than the work a request does. Wall time is reported beside it. */
static double now_us(clockid_t clock)
{
	struct timespec t;
	clock_gettime(clock, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

typedef struct timing {
	double p50, p99;      /* CPU time, us */
	double wall_p50;      /* us */
	size_t bytes;
} timing;

static timing measure(bench *b, const char *uri, int iterations)
{
	double *t = calloc((size_t)iterations, sizeof *t), *w = calloc((size_t)iterations, sizeof *w);
	timing out = { 0 };
	if (!t || !w)
		exit(1);
	for (int i = 0; i < 20; i++)   /* warm caches and prepared statements */
		run(b, "GET", uri, "member", NULL, NULL);
	for (int i = 0; i < iterations; i++) {
		double start = now_us(CLOCK_THREAD_CPUTIME_ID), wall = now_us(CLOCK_MONOTONIC);
		int status = run(b, "GET", uri, "member", NULL, NULL);
		t[i] = now_us(CLOCK_THREAD_CPUTIME_ID) - start;
		w[i] = now_us(CLOCK_MONOTONIC) - wall;
		if (status != 200) {
			fprintf(stderr, "pages_bench: GET %s answered %d: %.300s\n", uri, status, sbuf_str(&b->io.out));
			exit(1);
		}
	}
	out.bytes = body_bytes(b);
	qsort(t, (size_t)iterations, sizeof *t, cmp_double);
	qsort(w, (size_t)iterations, sizeof *w, cmp_double);
	out.p50 = t[iterations / 2];
	out.p99 = t[(int)(iterations * 0.99)];
	out.wall_p50 = w[iterations / 2];
	free(t);
	free(w);
	return out;
}

static void row(const char *what, const timing *t, const timing *base)
{
	printf("| %s | %.3f | %.3f | %.3f | %.1fx | %zu |\n", what, t->p50 / 1000, t->p99 / 1000, t->wall_p50 / 1000,
	       t->p50 / base->p50, t->bytes);
}

static size_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) ? 0 : (size_t)st.st_size;
}

int main(int argc, char **argv)
{
	char err[PB_ERR_MAX], path[512], id[PB_ID_BUF], product[PB_ID_BUF] = "", uri[128], api_uri[128];
	static const char *const contracts[] = { "examples/contracts/orders.odcs.yaml",
						 "examples/contracts/events-databricks.odcs.yaml" };
	bench b;
	if (argc != 3) {
		fprintf(stderr, "usage: pages_bench DIR ITERATIONS\n");
		return 2;
	}
	int iterations = atoi(argv[2]);
	memset(&b, 0, sizeof b);
	xsnprintf(path, sizeof path, "%s/pages.db", argv[1]);
	if (db_open(path, true, &b.db, err) || db_migrate(b.db, "sql", NULL, err) ||
	    identity_org_create(b.db, "demo", id, err) ||
	    identity_user_add(b.db, "owner", "demo", PB_ROLE_OWNER, NULL, 0, id, err) ||
	    identity_user_add(b.db, "member", "demo", PB_ROLE_MEMBER, NULL, 0, id, err) ||
	    pb_keyring_parse("5555555555555555555555555555555555555555555555555555555555555555",
			     &b.cfg.rememberme_keys, err)) {
		fprintf(stderr, "pages_bench: %s\n", err);
		return 1;
	}
	b.cfg.max_body = 1 << 20;
	b.cfg.template_path = getenv("BENCH_TEMPLATES");   /* an admin folder to compare a template with */
	b.cfg.powerbi_web_enabled = true;
	req_init(&b.r, &b.cfg, b.db);
	sbuf_init(&b.io.out, 64u << 20);
	for (size_t i = 0; i < sizeof contracts / sizeof contracts[0]; i++) {
		char *text = NULL;
		size_t len;
		if (read_file(contracts[i], 1 << 20, &text, &len, err) ||
		    run(&b, "POST", "/api/data-products", "owner", "application/yaml", text) != 201) {
			fprintf(stderr, "pages_bench: importing %s: %s %.300s\n", contracts[i], err, sbuf_str(&b.io.out));
			return 1;
		}
		if (i == 0) {   /* the Orders product: its id from the answer */
			const char *p = strstr(sbuf_str(&b.io.out), "{\"id\":\"");
			if (p)
				xsnprintf(product, sizeof product, "%.32s", p + 7);
		}
		free(text);
	}
	xsnprintf(uri, sizeof uri, "/data-products/%s", product);
	xsnprintf(api_uri, sizeof api_uri, "/api/data-products/%s", product);
	timing home = measure(&b, "/", iterations), list = measure(&b, "/api/data-products", iterations);
	timing page = measure(&b, uri, iterations), api = measure(&b, api_uri, iterations);
	size_t css = file_size("templates/web/static/pbiport.css"), js = file_size("templates/web/static/pbiport.js");
	size_t icon = file_size("templates/web/static/favicon.svg");

	printf("| request | CPU p50 ms | CPU p99 ms | wall p50 ms | CPU p50 vs. the API read | response bytes |\n"
	       "|---|---:|---:|---:|---:|---:|\n");
	row("page `GET /` (2 data products)", &home, &list);
	row("API `GET /api/data-products` (baseline)", &list, &list);
	row("page `GET /data-products/{id}` (Orders: 2 ports, 2 tables, 9 columns)", &page, &api);
	row("API `GET /api/data-products/{id}` (baseline)", &api, &api);
	printf("\n");
	printf("| page weight (HTML + pbiport.css %zu + pbiport.js %zu + favicon.svg %zu bytes) | KB | goal <= 100 KB |\n"
	       "|---|---:|---|\n", css, js, icon);
	printf("| `/` | %.1f | %s |\n", (double)(home.bytes + css + js + icon) / 1024,
	       home.bytes + css + js + icon <= 100 * 1024 ? "met" : "NOT met");
	printf("| `/data-products/{id}` | %.1f | %s |\n\n", (double)(page.bytes + css + js + icon) / 1024,
	       page.bytes + css + js + icon <= 100 * 1024 ? "met" : "NOT met");
	printf("- server time goal <= 2 ms p50 (CPU): `/` %s (%.3f ms), `/data-products/{id}` %s (%.3f ms)\n",
	       home.p50 <= 2000 ? "met" : "NOT met", home.p50 / 1000, page.p50 <= 2000 ? "met" : "NOT met",
	       page.p50 / 1000);
	req_release(&b.r);
	sbuf_release(&b.io.out);
	pb_keyring_free(b.cfg.rememberme_keys);
	db_close(b.db);
	return 0;
}
