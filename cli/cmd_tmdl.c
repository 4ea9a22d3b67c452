/* `pbiport tmdl CONTRACT [--server NAME] [--out DIR] [--templates DIR]
 *  [--mode import|directquery] [--host HOST] [--warehouse WH] [--http-path PATH]`
 *
 * Renders a TMDL definition (core/render.h) from an ODCS contract. With --out the files
 * are written under DIR; without it each file is printed as "==> path <==" followed by
 * its content. --templates DIR is searched before PBIPORT_TEMPLATE_PATH and the built-in
 * templates. --host, --warehouse and --http-path fill in what the chosen server lacks (its
 * own values win). Flags that do not apply to the server's type are ignored.
 * Exit 0 ok, 2 bad input (message on stderr), 1 when files cannot be written. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/contract.h"
#include "core/render.h"
#include "runtime/util.h"

static const char TMDL_USAGE[] =
	"usage: pbiport tmdl CONTRACT [--server NAME] [--out DIR] [--templates DIR]\n"
	"                    [--mode import|directquery] [--host HOST] [--warehouse WH]\n"
	"                    [--http-path PATH]\n";

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

/* mkdir -p for the folder part of path (up to its last '/'); path is modified and restored. */
static int make_parents(char *path, char *err)
{
	char *last = strrchr(path, '/');
	if (!last)
		return 0;
	for (char *p = path + 1; p <= last; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int failed = mkdir(path, 0755) && errno != EEXIST;
		int saved = errno;
		*p = '/';
		if (failed)
			return pb_err(err, PB_EIO, "%.*s: %s", (int)(p - path), path, strerror(saved));
	}
	return 0;
}

/* One open and one write per file, written in place: rendering again into the same
 * folder reuses the files (a temporary file renamed over each one allocated a new inode
 * per file and freed the old one, which costs most of the time for big models on ext4).
 * Folders are created once per distinct folder (files come sorted by path). */
static int write_files(const pb_files *files, const char *dir, char *err)
{
	char path[PB_RENDER_MAX_PATH * 2], made[PB_RENDER_MAX_PATH * 2] = "";
	for (size_t i = 0; i < files->n; i++) {
		const pb_file *f = &files->v[i];
		if (xsnprintf(path, sizeof path, "%s/%s", dir, f->path))
			return pb_err(err, PB_EINVAL, "output path too long: %s/%s", dir, f->path);
		size_t dlen = (size_t)(strrchr(path, '/') - path);
		if (strlen(made) != dlen || strncmp(made, path, dlen)) {
			int rc = make_parents(path, err);
			if (rc)
				return rc;
			memcpy(made, path, dlen);
			made[dlen] = '\0';
		}
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0)
			return pb_err(err, PB_EIO, "%s: %s", path, strerror(errno));
		size_t done = 0;
		while (done < f->len) {
			ssize_t n = write(fd, f->content + done, f->len - done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				int saved = n < 0 ? errno : EIO;
				close(fd);
				return pb_err(err, PB_EIO, "%s: write failed: %s", path, strerror(saved));
			}
			done += (size_t)n;
		}
		if (close(fd))
			return pb_err(err, PB_EIO, "%s: write failed: %s", path, strerror(errno));
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
		    (r = flag_value(argc, argv, &i, "--host", &o.host)) ||
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
