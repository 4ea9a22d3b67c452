/* `pbiport serve` (and the binary started as pbiport.fcgi): the FastCGI application,
 * or one CGI request when not started under FastCGI. */
#include <stdio.h>

#include "cli/cli.h"
#include "handlers/handlers.h"

int cmd_serve(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: pbiport serve   (FastCGI on fd 0, or one CGI request)\n");
		return 2;
	}
	return pb_serve(&pb_app);
}
