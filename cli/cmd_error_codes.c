/* pbiport error-codes: the table of user-facing error codes, as docs/errors.md shows it. */
#include <stdio.h>

#include "cli/cli.h"
#include "core/flow/error_codes.h"

int cmd_error_codes(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: pbiport error-codes\n");
		return 2;
	}
	pb_error_codes_markdown(stdout);
	return fflush(stdout) ? 1 : 0;
}
