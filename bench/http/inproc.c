/* bench/http's in-process measurements, on the database of the pbiport stack it measured
 * (PBIPORT_DB and the rest of pbiport's settings from the environment, as runtime/config.c reads
 * them): what one request costs a FastCGI process with no socket, no web server and hot caches.
 *
 *   inproc PRODUCT_ID TOKEN ITERATIONS
 *
 * Prints key=value lines, CPU microseconds per request (the thread's CPU time, median of
 * 5 runs of ITERATIONS requests each):
 *   api_us    GET /api/data-products/{id} through pb_handle and pb_after, as the FastCGI loop
 *             runs it (route, token, read transaction, handler, response text, log line, metrics)
 *   reads_us  the database reads that answer needs and nothing else: the read transaction, the
 *             token's identity (kept, as nothing is written meanwhile: core/store/identity.c),
 *             the product with its ports and the agreements it consumes
 *   page_us   the web page GET /data-products/{id} through pb_handle and pb_after
 * The log lines go wherever stderr goes (bench.py sends them to /dev/null). INPROC_ONLY=api (or
 * reads, page) measures that one alone (bench/db: the server's CPU over the same requests).
 * Built by bench/http/bench.py against build/libpbiport.a. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/store/agreements.h"
#include "core/store/catalog.h"
#include "handlers/handlers.h"
#include "runtime/auth.h"
#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/fcgi.h"
#include "runtime/util.h"

#define ROUNDS 5

static long discard_read(void *ctx, char *buf, size_t n)
{
	(void)ctx;
	(void)buf;
	(void)n;
	return 0;
}

static int discard_write(void *ctx, const char *buf, size_t n)
{
	(void)ctx;
	(void)buf;
	(void)n;
	return 0;
}

static double thread_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct ctx {
	pb_db *db;
	struct req r;
	char *env[24];
	const char *token_header;
	const char *product;
};

/* One request as the FastCGI loop runs it; its status. */
static int handle(struct ctx *c)
{
	struct req_io io = { discard_read, discard_write, NULL };
	pb_handle(&c->r, &pb_app, c->env, &io);
	int status = c->r.status;
	pb_after(&c->r);
	req_reset(&c->r);
	return status;
}

/* The reads GET /api/data-products/{id} needs, in one read transaction. */
static int reads(struct ctx *c)
{
	char err[PB_ERR_MAX];
	pb_identity who;
	cat_product *p = NULL;
	json_t *consumes = NULL;
	pb_auth_request in = { .authorization = c->token_header };
	int rc = db_read_begin(c->db, err);
	if (rc)
		return rc;
	if (!(rc = auth_identify_request(c->db, &pb_app.auth, &in, &who, err)) &&
	    !(rc = catalog_product_get(c->db, who.org_id, c->product, true, &p, err)))
		rc = agreements_consumed_known(c->db, who.org_id, p->id, p->consumes, &consumes, err);
	db_read_end(c->db);
	json_decref(consumes);
	catalog_product_free(p);
	if (rc)
		fprintf(stderr, "inproc: %s\n", err);
	return rc;
}

/* Median over ROUNDS of the CPU per call of `iterations` calls of one. */
static double measure(struct ctx *c, int (*one)(struct ctx *), int want, int iterations)
{
	double per[ROUNDS];
	for (int i = 0; i < 50; i++)   /* prepared statements, caches, compiled templates */
		if (one(c) != want) {
			fprintf(stderr, "inproc: the request did not answer %d\n", want);
			exit(1);
		}
	for (int k = 0; k < ROUNDS; k++) {
		double t0 = thread_us();
		for (int i = 0; i < iterations; i++)
			if (one(c) != want) {
				fprintf(stderr, "inproc: the request did not answer %d\n", want);
				exit(1);
			}
		per[k] = (thread_us() - t0) / iterations;
	}
	qsort(per, ROUNDS, sizeof per[0], cmp_double);
	return per[ROUNDS / 2];
}

static int api_request(struct ctx *c)
{
	return handle(c);
}

int main(int argc, char **argv)
{
	char err[PB_ERR_MAX], uri[160], page_uri[160], info[160], auth[200], auth_env[220];
	pb_config cfg;
	struct ctx c;
	if (argc != 4) {
		fprintf(stderr, "usage: inproc PRODUCT_ID TOKEN ITERATIONS\n");
		return 2;
	}
	int iterations = atoi(argv[3]);
	memset(&c, 0, sizeof c);
	if (config_load(&cfg, err) || db_open(cfg.db_path, false, &c.db, err)) {
		fprintf(stderr, "inproc: %s\n", err);
		return 1;
	}
	c.product = argv[1];
	xsnprintf(auth, sizeof auth, "Bearer %s", argv[2]);
	xsnprintf(auth_env, sizeof auth_env, "HTTP_AUTHORIZATION=%s", auth);
	c.token_header = auth;
	req_init(&c.r, &cfg, c.db);
	/* the parameters deploy/nginx/pbiport.conf passes */
	char *fixed[] = { "GATEWAY_INTERFACE=CGI/1.1", "SERVER_SOFTWARE=nginx", "SERVER_PROTOCOL=HTTP/1.1",
			  "SERVER_NAME=_", "SERVER_ADDR=127.0.0.1", "SERVER_PORT=8080", "REMOTE_ADDR=127.0.0.1",
			  "REMOTE_PORT=40000", "REQUEST_METHOD=GET", "SCRIPT_NAME=", "QUERY_STRING=", "CONTENT_TYPE=",
			  "CONTENT_LENGTH=", "HTTP_X_REQUEST_ID=0123456789abcdef0123456789abcdef" };
	size_t n = 0;
	for (; n < sizeof fixed / sizeof fixed[0]; n++)
		c.env[n] = fixed[n];
	c.env[n++] = auth_env;
	c.env[n++] = uri;
	c.env[n++] = info;
	c.env[n] = NULL;

	const char *only = getenv("INPROC_ONLY");
	xsnprintf(uri, sizeof uri, "REQUEST_URI=/api/data-products/%s", argv[1]);
	xsnprintf(info, sizeof info, "PATH_INFO=/api/data-products/%s", argv[1]);
	if (!only || !strcmp(only, "api"))
		printf("api_us=%.2f\n", measure(&c, api_request, 200, iterations));
	if (!only || !strcmp(only, "reads"))
		printf("reads_us=%.2f\n", measure(&c, reads, PB_OK, iterations));
	xsnprintf(page_uri, sizeof page_uri, "/data-products/%s", argv[1]);
	xsnprintf(uri, sizeof uri, "REQUEST_URI=%s", page_uri);
	xsnprintf(info, sizeof info, "PATH_INFO=%s", page_uri);
	if (!only || !strcmp(only, "page"))
		printf("page_us=%.2f\n", measure(&c, api_request, 200, iterations / 10 ? iterations / 10 : 1));
	req_release(&c.r);
	db_close(c.db);
	config_release(&cfg);
	return 0;
}
