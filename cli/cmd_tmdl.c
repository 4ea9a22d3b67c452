/* `pbiport tmdl CONTRACT [--server NAME] [--out DIR] [--templates DIR]
 *  [--mode import|directquery] [--warehouse WH] [--http-path PATH]`
 *
 * Renders a TMDL definition (core/render.h) from an ODCS contract. With --out the files
 * are written under DIR; without it each file is printed as "==> path <==" followed by
 * its content. --templates DIR is searched before PBIPORT_TEMPLATE_PATH and the built-in
 * templates. Flags that do not apply to the server's type are ignored.
 * Exit 0 ok, 2 bad input (message on stderr), 1 when files cannot be written. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/contract.h"
#include "core/render.h"
#include "runtime/util.h"

static const char TMDL_USAGE[] =
	"usage: pbiport tmdl CONTRACT [--server NAME] [--out DIR] [--templates DIR]\n"
	"                    [--mode import|directquery] [--warehouse WH] [--http-path PATH]\n";

/* Matches "--name VALUE" or "--name=VALUE"; advances *i past what it used. */
static int flag_value(int argc, char **argv, int *i, const char *name, const char **out)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n))
		return 0;
	if (argv[*i][n] == '=') {
		*out = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*out = argv[++*i];
	return 1;
}

static int write_files(const pb_files *files, const char *dir, char *err)
{
	char path[PB_RENDER_MAX_PATH * 2];
	for (size_t i = 0; i < files->n; i++) {
		if (xsnprintf(path, sizeof path, "%s/%s", dir, files->v[i].path))
			return pb_err(err, PB_EINVAL, "output path too long: %s/%s", dir, files->v[i].path);
		int rc = write_file(path, files->v[i].content, files->v[i].len, err);
		if (rc)
			return rc;
	}
	return 0;
}

int cmd_tmdl(int argc, char **argv)
{
	const char *contract_path = NULL, *out_dir = NULL;
	render_opts o = { 0 };
	pb_contract *c = NULL;
	pb_files files = { 0 };
	char err[PB_ERR_MAX];
	int status = 0;

	for (int i = 1; i < argc; i++) {
		int r = 0;
		if ((r = flag_value(argc, argv, &i, "--server", &o.server)) ||
		    (r = flag_value(argc, argv, &i, "--out", &out_dir)) ||
		    (r = flag_value(argc, argv, &i, "--templates", &o.template_path)) ||
		    (r = flag_value(argc, argv, &i, "--mode", &o.mode)) ||
		    (r = flag_value(argc, argv, &i, "--warehouse", &o.warehouse)) ||
		    (r = flag_value(argc, argv, &i, "--http-path", &o.http_path))) {
			if (r < 0) {
				fprintf(stderr, "pbiport tmdl: %s needs a value\n%s", argv[i], TMDL_USAGE);
				return 2;
			}
			continue;
		}
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(TMDL_USAGE, stdout);
			return 0;
		}
		if (argv[i][0] == '-' || contract_path) {
			fprintf(stderr, "pbiport tmdl: unexpected argument '%s'\n%s", argv[i], TMDL_USAGE);
			return 2;
		}
		contract_path = argv[i];
	}
	if (!contract_path) {
		fputs(TMDL_USAGE, stderr);
		return 2;
	}

	int rc = contract_load(contract_path, &c, err);
	if (!rc)
		rc = tmdl_render(c, &o, &files, err);
	if (rc) {
		fprintf(stderr, "pbiport tmdl: %s\n", err);
		status = 2;
		goto out;
	}
	if (out_dir) {
		if (write_files(&files, out_dir, err)) {
			fprintf(stderr, "pbiport tmdl: %s\n", err);
			status = 1;
		}
		goto out;
	}
	for (size_t i = 0; i < files.n; i++) {
		printf("%s==> %s <==\n", i ? "\n" : "", files.v[i].path);
		fwrite(files.v[i].content, 1, files.v[i].len, stdout);
	}
	if (fflush(stdout)) {
		perror("pbiport tmdl: stdout");
		status = 1;
	}
out:
	pb_files_release(&files);
	contract_free(c);
	return status;
}
