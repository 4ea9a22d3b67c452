/* The request path's floor for bench/http: a FastCGI responder that does nothing but answer.
 *
 * BENCH_FLOOR_API and BENCH_FLOOR_PAGE name two files holding the bytes pbiport.fcgi writes on
 * its FastCGI stdout (CGI header lines, a blank line, the body) for the two requests the benchmark
 * measures, captured once by bench/http/bench.py. A request whose REQUEST_URI starts with /api/
 * gets the first, any other the second. The same nginx configuration, the same pool script and
 * as many processes in front of a program that looks nothing up and builds nothing show what
 * serving an answer of that size costs before pbiport does any work of its own. libfcgi's accept
 * loop as its examples write it (blocking FCGX_Accept_r, one connection per request).
 * Built by bench/http/bench.py: cc -O2 floor.c -lfcgi. */
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct answer {
	char *bytes;
	int len;
};

/* The whole file named by the environment variable var; 0 on success. */
static int load(const char *var, struct answer *a)
{
	const char *path = getenv(var);
	FILE *f = path ? fopen(path, "rb") : NULL;
	long len = -1;
	int rc = 1;
	if (f && !fseek(f, 0, SEEK_END) && (len = ftell(f)) > 0 && len < 1 << 30 && !fseek(f, 0, SEEK_SET) &&
	    (a->bytes = malloc((size_t)len)) && fread(a->bytes, 1, (size_t)len, f) == (size_t)len) {
		a->len = (int)len;
		rc = 0;
	}
	if (f)
		fclose(f);
	if (rc)
		fprintf(stderr, "floor: cannot read the file named by %s (%s)\n", var, path ? path : "not set");
	return rc;
}

int main(void)
{
	FCGX_Request req;
	struct answer api = { NULL, 0 }, page = { NULL, 0 };
	if (load("BENCH_FLOOR_API", &api) || load("BENCH_FLOOR_PAGE", &page))
		return 1;
	if (FCGX_Init() || FCGX_InitRequest(&req, 0, 0)) {
		fprintf(stderr, "floor: cannot initialize FastCGI\n");
		return 1;
	}
	while (FCGX_Accept_r(&req) >= 0) {
		const char *uri = FCGX_GetParam("REQUEST_URI", req.envp);
		const struct answer *a = uri && !strncmp(uri, "/api/", 5) ? &api : &page;
		FCGX_PutStr(a->bytes, a->len, req.out);
		FCGX_Finish_r(&req);
	}
	free(api.bytes);
	free(page.bytes);
	return 0;
}
