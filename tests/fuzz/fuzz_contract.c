/* libFuzzer harness for the ODCS reader: any bytes, as YAML or JSON, must give a
 * contract or one error line, never a crash or a leak. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/lang/contract.h"
#include "runtime/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[PB_ERR_MAX];
	pb_contract *c = NULL;
	/* a private copy: the reader must not rely on a NUL after the text */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	if (size)
		memcpy(text, data, size);
	if (contract_parse(text, size, "fuzz", &c, err) == PB_OK) {
		json_t *j = contract_to_json(c);
		if (!j)
			abort(); /* only invalid UTF-8 in the model could make this fail */
		for (size_t i = 0; i < c->nwarnings; i++)
			if (strchr(c->warnings[i], '\n'))
				abort();
		char *s = json_dumps(j, JSON_COMPACT);
		free(s);
		json_decref(j);
		(void)contract_server(c, NULL);
		if (c->nservers)
			(void)server_field(&c->servers[0], "host");
		contract_free(c);
	} else if (strlen(err) >= PB_ERR_MAX || strchr(err, '\n')) {
		abort(); /* one line, always */
	}
	free(text);
	return 0;
}
