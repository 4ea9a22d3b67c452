/* `pbiport` entry point: one table of sub-commands. When started under the name
 * pbiport.fcgi (or with the `serve` command) it becomes the FastCGI application. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "runtime/util.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};

static const struct command commands[] = {
	{ "serve", cmd_serve, "serve   run as the FastCGI application (or answer one CGI request)" },
	{ "migrate", cmd_migrate, "migrate   create or update the database PBIPORT_DB" },
	{ "db", cmd_db, "db copy --from FILE --to URL   copy a SQLite database into an empty PostgreSQL one" },
	{ "org", cmd_org, "org create NAME   add an organization" },
	{ "user", cmd_user, "user add NAME --org ORG [--role owner|member] [--team T]... [--email E]   add a user;\n"
		  "      user email NAME ADDRESS|--clear   the e-mail a first sign-in with Microsoft is matched by" },
	{ "token", cmd_token, "token create USER   print a new API token for USER (shown once)" },
	{ "worker", cmd_worker, "worker [--once] [--id NAME] [--poll-ms N] [--lease-seconds N]   run due jobs and schedules" },
	{ "keygen", cmd_keygen, "keygen   print a fresh 64-hex key" },
	{ "rotate-keys", cmd_rotate_keys, "rotate-keys   re-seal every stored secret with the first key of APPLICATION_ENCRYPTION_KEYS" },
	{ "tmdl", cmd_tmdl, "tmdl CONTRACT [--server NAME] [--out DIR] [--templates DIR] [--mode import|directquery] [--host HOST] [--warehouse WH] [--http-path PATH]   render a TMDL definition" },
	{ "error-codes", cmd_error_codes, "error-codes   print the table of error codes (docs/errors.md)" },
	{ "tmdl-parse", cmd_tmdl_parse, "tmdl-parse PATH [--json]   parse a TMDL folder or file, print a summary or JSON" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: pbiport COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  pbiport %s\n", commands[i].usage);
}

int main(int argc, char **argv)
{
	/* started as pbiport.fcgi (a symlink): the FastCGI application */
	const char *base = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
	base = base ? base + 1 : argc > 0 && argv[0] ? argv[0] : "";
	if (!strcmp(base, "pbiport.fcgi"))
		return cmd_serve(1, argv);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "pbiport: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
