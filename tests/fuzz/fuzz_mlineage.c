/* libFuzzer harness for core/lang/mlineage: the input is an M expression, optionally
 * followed by shared expressions, each after a 0xFF byte; they are named A, B, C, ...
 * (names the seeds use). Also feeds the first two parts to mlineage_same_server. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/lang/mlineage.h"
#include "runtime/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARTS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[MAX_PARTS] = { "", "A", "B", "C", "Host", "Db", "Schema", "Sql" };
	char *parts[MAX_PARTS] = { 0 };
	mlineage_param params[MAX_PARTS];
	size_t nparts = 0, start = 0;
	for (size_t i = 0; i <= size && nparts < MAX_PARTS; i++) {
		if (i == size || data[i] == 0xFF) {
			parts[nparts] = xstrndup((const char *)data + start, i - start);   /* stops at a NUL */
			if (!parts[nparts])
				goto out;
			nparts++;
			start = i + 1;
		}
	}
	for (size_t i = 1; i < nparts; i++) {
		params[i - 1].name = names[i];
		params[i - 1].value = parts[i];
	}
	char err[PB_ERR_MAX];
	mlineage_sources s = { 0 };
	int rc = mlineage_parse(parts[0], params, nparts - 1, &s, err);
	if (!rc) {
		json_decref(mlineage_sources_json(&s));
		for (size_t i = 0; i < s.n; i++)
			if (!s.v[i].type || !s.v[i].kind)
				__builtin_trap();   /* every source names its type and kind */
	} else if (!memchr(err, '\0', sizeof err) || s.n || s.v) {
		__builtin_trap();   /* one terminated error line, nothing returned */
	}
	mlineage_sources_release(&s);
	if (nparts > 1) {
		(void)mlineage_same_server("snowflake", parts[0], parts[1]);
		(void)mlineage_same_server("databricks", parts[0], parts[1]);
	}
out:
	for (size_t i = 0; i < nparts; i++)
		free(parts[i]);
	return 0;
}
