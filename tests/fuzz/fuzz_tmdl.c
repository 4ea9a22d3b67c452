/* libFuzzer harness for core/lang/tmdl: any bytes as one or two TMDL documents, then
 * finish, both JSON views and free. A 0xFF byte in the input splits it into two
 * documents so partial-declaration merging across files is exercised too. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/lang/tmdl.h"
#include "runtime/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[PB_ERR_MAX];
	tmdl_model *m = tmdl_model_new();
	if (!m)
		return 0;
	const char *text = (const char *)data;
	const uint8_t *cut = memchr(data, 0xFF, size);
	size_t first = cut ? (size_t)(cut - data) : size;
	int rc = tmdl_parse_buffer(m, "a.tmdl", text, first, err);
	if (!rc && cut)
		rc = tmdl_parse_buffer(m, "b.tmdl", text + first + 1, size - first - 1, err);
	if (!rc)
		rc = tmdl_model_finish(m, err);
	if (!rc) {
		json_decref(tmdl_model_to_json(m));
		json_decref(tmdl_node_to_json(tmdl_model_root(m)));
		for (size_t i = 0; i < m->n_tables; i++)
			(void)tmdl_table_find_column(&m->tables[i], "x");
	} else if (!memchr(err, '\0', sizeof err)) {
		__builtin_trap();  /* every error must be one terminated line */
	}
	tmdl_model_free(m);
	return 0;
}
