/* handlers/routes.c: every GET reads in one snapshot (ROUTE_READ_ONLY) unless it has a reason not
 * to: it calls Microsoft (which may refresh and store a user's token, and must not hold a snapshot
 * open while it waits), writes, or reads no database. A GET added without the flag reads related
 * rows in separate snapshots (a run and its job, a dataset and its tables), which a worker's commit
 * between two statements shows half done: this test names the route until it is flagged or listed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "handlers/handlers.h"
#include "runtime/fcgi.h"
#include "runtime/router.h"

/* The GETs that are not read-only, each with why. */
static const struct {
	const char *pattern, *why;
} not_read_only[] = {
	{ "/powerbi/connect", "writes the signed OAuth state" },
	{ "/powerbi/callback", "redeems the code with Entra and stores the connection" },
	{ "/signin", "writes the signed sign-in state" },
	{ "/signin/callback", "redeems the code and writes the session" },
	{ "/api/me/powerbi-connections", "marks connections whose app registration changed" },
	{ "/api/powerbi/workspaces", "calls Power BI with the user's token (refreshed and stored)" },
	{ "/api/powerbi/connections", "calls Fabric" },
	{ "/api/powerbi/gateways", "calls Power BI" },
	{ "/api/output-ports/{id}/powerbi-models", "calls Power BI" },
	{ "/api/published-models/{id}/drift", "calls Fabric for the model's definition" },
	{ "/api/semantic-models/{id}/refreshes", "calls Power BI for the refresh history" },
	{ "/semantic-models/{id}", "calls Power BI for the refresh history" },
	{ "/output-ports/{id}/power-bi", "calls Power BI for the workspaces" },
	{ "/profile/power-bi", "marks connections whose app registration changed" },
	{ "/static/{name}", "reads no database" },
};

static const char *why_not(const char *pattern)
{
	for (size_t i = 0; i < sizeof not_read_only / sizeof not_read_only[0]; i++)
		if (!strcmp(not_read_only[i].pattern, pattern))
			return not_read_only[i].why;
	return NULL;
}

static void every_get_reads_one_snapshot_or_says_why_not(void **state)
{
	(void)state;
	size_t listed_seen = 0;
	for (size_t i = 0; i < pb_app.nroutes; i++) {
		const struct route *r = &pb_app.routes[i];
		if (strcmp(r->method, "GET"))
			continue;
		const char *why = why_not(r->pattern);
		if (why) {
			listed_seen++;
			if (r->flags & ROUTE_READ_ONLY)
				fail_msg("GET %s is read-only now: take it off the list (%s)", r->pattern, why);
		} else if (!(r->flags & ROUTE_READ_ONLY)) {
			fail_msg("GET %s is not ROUTE_READ_ONLY: flag it, or list it here with the reason", r->pattern);
		}
	}
	/* every listed route still exists */
	assert_int_equal(listed_seen, sizeof not_read_only / sizeof not_read_only[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_get_reads_one_snapshot_or_says_why_not),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
