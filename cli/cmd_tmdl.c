/* `pbiport tmdl CONTRACT [--server NAME] [--out DIR] [--templates DIR]
 *  [--mode import|directquery|dual] [--type TYPE] [--FIELD VALUE ...] [--time-limit-ms MS]`
 *
 * Renders a TMDL definition (core/lang/render.h) from an ODCS contract. With --out the model
 * replaces DIR whole: it is written into a new folder beside DIR, which then takes DIR's
 * place in one rename, so DIR holds exactly one render (no table file of an earlier render
 * stays behind) and a render that fails leaves the previous one as it was. DIR must be new,
 * empty, or hold only a previous render (definition.pbism and definition/): pbiport does not
 * replace a folder holding anything else. Without --out each file is printed as
 * "==> path <==" followed by its content. --templates DIR is searched before
 * PBIPORT_TEMPLATE_PATH and the built-in templates. --type and the connection flags fill in
 * what the chosen server lacks (its own values win), or make the server of a contract that
 * has none: any other --FIELD VALUE gives the value of the source's field FIELD (its
 * description's name, - for _: --host, --warehouse, --http-path, --billing-project...); flags
 * that the server's source does not have are ignored. --time-limit-ms sets
 * the templates' CPU-time deadline (as PBIPORT_RENDER_TIME_LIMIT_MS, which it overrides), for
 * profiling: the instruction budget stays.
 * Exit 0 ok, 2 bad input (message on stderr), 1 when files cannot be written. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/lang/contract.h"
#include "core/lang/render.h"
#include "core/lang/sources.h"
#include "runtime/lua_sandbox.h"
#include "runtime/util.h"

static const char TMDL_USAGE[] =
	"usage: pbiport tmdl CONTRACT [--server NAME] [--out DIR] [--templates DIR]\n"
	"                    [--mode import|directquery|dual] [--type TYPE]\n"
	"                    [--FIELD VALUE ...] (the source's fields: --host HOST, --warehouse WH,\n"
	"                    --database DB, --http-path PATH, --catalog C, --schema S, ...)\n"
	"                    [--time-limit-ms MS]\n";

/* Most --FIELD VALUE flags one command takes. */
#define TMDL_MAX_VALUES 32

/* "--FIELD VALUE" or "--FIELD=VALUE" for a field name ([a-z][a-z0-9-]*, - read as _): into
 * *v (name in buf). 1 when taken, 0 when argv[*i] is not such a flag, -1 when its value is
 * missing. */
static int field_flag(int argc, char **argv, int *i, char buf[SOURCE_TEXT_MAX + 1], render_value *v)
{
	const char *a = argv[*i], *eq;
	if (strncmp(a, "--", 2) || !(a[2] >= 'a' && a[2] <= 'z'))
		return 0;
	size_t n = (eq = strchr(a, '=')) ? (size_t)(eq - a - 2) : strlen(a + 2);
	if (n > SOURCE_TEXT_MAX)
		return 0;
	for (size_t k = 0; k < n; k++) {
		char c = a[2 + k];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
		buf[k] = c == '-' ? '_' : c;
	}
	buf[n] = '\0';
	if (!eq && *i + 1 >= argc)
		return -1;
	*v = (render_value){ buf, eq ? eq + 1 : argv[++*i] };
	return 1;
}

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

/* A path as echoed in a message: its last 80 bytes at most, so the cause put before it and
 * the message together fit in one error line. */
#define SHOWN_PATH 80
static const char *shown_path(const char *p, char buf[SHOWN_PATH + 4])
{
	size_t n = strlen(p);
	if (n <= SHOWN_PATH)
		return p;
	const char *tail = p + n - SHOWN_PATH;
	while (((unsigned char)*tail & 0xC0) == 0x80)
		tail++;         /* do not start inside a character */
	(void)xsnprintf(buf, SHOWN_PATH + 4, "...%s", tail);
	return buf;
}

static int io_error(char *err, const char *doing, int e, const char *path)
{
	char buf[SHOWN_PATH + 4];
	return pb_err(err, PB_EIO, "cannot %s: %s (%s)", doing, strerror(e), shown_path(path, buf));
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
		int failed = mkdir(path, 0777) && errno != EEXIST;
		int saved = errno;
		if (failed)
			(void)io_error(err, "create a folder", saved, path);
		*p = '/';
		if (failed)
			return PB_EIO;
	}
	return 0;
}

/* One open and one write per file, into a folder of our own that nothing else writes. Folders
 * are created once per distinct folder (files come sorted by path). */
static int write_files(const pb_files *files, const char *dir, char *err)
{
	char path[PB_RENDER_MAX_PATH * 2], made[PB_RENDER_MAX_PATH * 2] = "";
	for (size_t i = 0; i < files->n; i++) {
		const pb_file *f = &files->v[i];
		if (xsnprintf(path, sizeof path, "%s/%s", dir, f->path))
			return io_error(err, "write a file", ENAMETOOLONG, f->path);
		size_t dlen = (size_t)(strrchr(path, '/') - path);
		if (strlen(made) != dlen || strncmp(made, path, dlen)) {
			int rc = make_parents(path, err);
			if (rc)
				return rc;
			memcpy(made, path, dlen);
			made[dlen] = '\0';
		}
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
		if (fd < 0)
			return io_error(err, "write a file", errno, path);
		size_t done = 0;
		while (done < f->len) {
			ssize_t n = write(fd, f->content + done, f->len - done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				int saved = n < 0 ? errno : EIO;
				close(fd);
				return io_error(err, "write a file", saved, path);
			}
			done += (size_t)n;
		}
		if (close(fd))
			return io_error(err, "write a file", errno, path);
	}
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) ? -1 : 0;
}

/* Removes a folder and everything in it (symbolic links are removed, not followed). */
static int remove_tree(const char *dir)
{
	return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A folder --out may replace: new, empty, or holding only what a render writes. */
static int check_replaceable(const char *dir, char *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;
	if (!d)
		return io_error(err, "read the output folder", errno, dir);
	while (!rc && (e = readdir(d))) {
		const char *n = e->d_name;
		if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "definition.pbism") || !strcmp(n, "definition"))
			continue;
		char buf[SHOWN_PATH + 4];
		rc = pb_err(err, PB_EINVAL, "will not replace the output folder: it holds \"%.*s\", which is not "
			    "part of a rendered model (definition.pbism, definition/); choose a new or empty folder (%s)",
			    64, n, shown_path(dir, buf));
	}
	closedir(d);
	return rc;
}

/* Puts the folder `tmp` in the place of `dir` (an existing folder): both names swapped in one
 * step where the file system can (the previous render is then at `tmp`), else two renames
 * (it is then at `old`). *gone says where it is, for removal. */
static int swap_in(const char *tmp, const char *dir, const char *parent, char *old, size_t oldsize,
		   const char **gone, char *err)
{
	if (!renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE)) {
		*gone = tmp;
		return 0;
	}
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return io_error(err, "replace the output folder", errno, dir);
	/* no atomic exchange here: move the old render aside, the new one in, and back on failure */
	if (xsnprintf(old, oldsize, "%s/.pbiport-old-XXXXXX", parent) || !mkdtemp(old))
		return io_error(err, "replace the output folder", errno ? errno : ENAMETOOLONG, parent);
	if (rename(dir, old)) {
		int e = errno;
		rmdir(old);
		return io_error(err, "replace the output folder", e, dir);
	}
	if (rename(tmp, dir)) {
		int e = errno;
		if (rename(old, dir))
			return pb_err(err, PB_EIO, "cannot replace the output folder: %s; the previous render is "
				      "in %s", strerror(e), old);
		return io_error(err, "replace the output folder", e, dir);
	}
	*gone = old;
	return 0;
}

/* Writes the render as the folder `out` (see the top of this file). */
static int write_render(const pb_files *files, const char *out, char *err)
{
	char dir[PATH_MAX], parent[PATH_MAX], tmp[PATH_MAX], old[PATH_MAX];
	const char *gone = NULL;
	struct stat st;
	bool exists = true, made = false;
	mode_t mode;
	int rc = 0;

	if (lstat(out, &st)) {
		if (errno != ENOENT)
			return io_error(err, "use the output folder", errno, out);
		exists = false;
	}
	if (exists) {
		/* the real folder: "." and "..", trailing slashes and symbolic links resolved */
		if (!realpath(out, dir))
			return io_error(err, "use the output folder", errno, out);
		if (stat(dir, &st))
			return io_error(err, "use the output folder", errno, dir);
		if (!S_ISDIR(st.st_mode)) {
			char buf[SHOWN_PATH + 4];
			return pb_err(err, PB_EINVAL, "the output folder is not a folder (%s)", shown_path(out, buf));
		}
		if (!strcmp(dir, "/"))
			return pb_err(err, PB_EINVAL, "will not replace the root folder with a model");
		if ((rc = check_replaceable(dir, err)))
			return rc;
		mode = st.st_mode & 07777;
	} else {
		size_t n = strlen(out);
		while (n > 1 && out[n - 1] == '/')
			n--;
		if (n >= sizeof dir)
			return io_error(err, "use the output folder", ENAMETOOLONG, out);
		memcpy(dir, out, n);
		dir[n] = '\0';
		mode_t mask = umask(0);
		umask(mask);
		mode = 0777 & ~mask;
	}
	const char *slash = strrchr(dir, '/');
	if (!slash)
		memcpy(parent, ".", 2);
	else if (slash == dir)
		memcpy(parent, "/", 2);
	else {
		memcpy(parent, dir, (size_t)(slash - dir));
		parent[slash - dir] = '\0';
	}
	if (xsnprintf(tmp, sizeof tmp, "%s/.pbiport-tmdl-XXXXXX", parent))
		return io_error(err, "use the output folder", ENAMETOOLONG, out);
	if (!exists && (rc = make_parents(tmp, err)))
		return rc;
	if (!mkdtemp(tmp))
		return io_error(err, "create a folder beside the output folder", errno, tmp);
	made = true;
	if ((rc = write_files(files, tmp, err)))
		goto out;
	if (chmod(tmp, mode)) {
		rc = io_error(err, "set the output folder's mode", errno, tmp);
		goto out;
	}
	if (!exists) {
		if (rename(tmp, dir))
			rc = io_error(err, "create the output folder", errno, dir);
		else
			made = false;
		goto out;
	}
	if ((rc = swap_in(tmp, dir, parent, old, sizeof old, &gone, err)))
		goto out;
	made = false;
	if (remove_tree(gone))
		fprintf(stderr, "pbiport tmdl: warning: the previous render could not be removed: %s (%s)\n",
			strerror(errno), gone);
out:
	if (made)
		(void)remove_tree(tmp);
	return rc;
}

/* What a render leaves behind when the process ends right after it: the contract, the files
 * and the templates' Lua state are left to the exit, which takes the whole heap back at once
 * (freeing a 2,000-table render object by object cost ~10% of its CPU). Kept reachable from
 * here, so a leak checker does not count them. */
static struct {
	pb_contract *contract;
	pb_files files;
	lua_sandbox *sandbox;
} left_to_exit;

static void release_left(void)
{
	pb_files_release(&left_to_exit.files);
	contract_free(left_to_exit.contract);
	sandbox_free(left_to_exit.sandbox);
	memset(&left_to_exit, 0, sizeof left_to_exit);
}

int cmd_tmdl(int argc, char **argv)
{
	const char *contract_path = NULL, *out_dir = NULL, *time_limit = NULL;
	render_opts o = { .params = RENDER_PARAMS_CLI };
	render_value values[TMDL_MAX_VALUES];
	char names[TMDL_MAX_VALUES][SOURCE_TEXT_MAX + 1];
	pb_contract *c = NULL;
	pb_files files = { 0 };
	pb_config cfg;
	char err[PB_ERR_MAX];
	int status = 0;

	release_left();   /* a caller that runs the command again */
	config_defaults(&cfg);
	for (int i = 1; i < argc; i++) {
		int r = 0, field = 0;
		if ((r = flag_value(argc, argv, &i, "--server", &o.server)) ||
		    (r = flag_value(argc, argv, &i, "--out", &out_dir)) ||
		    (r = flag_value(argc, argv, &i, "--templates", &o.template_path)) ||
		    (r = flag_value(argc, argv, &i, "--mode", &o.mode)) ||
		    (r = flag_value(argc, argv, &i, "--type", &o.type)) ||
		    (r = flag_value(argc, argv, &i, "--time-limit-ms", &time_limit)) ||
		    (o.nvalues < TMDL_MAX_VALUES &&
		     (r = field = field_flag(argc, argv, &i, names[o.nvalues], &values[o.nvalues])))) {
			if (field > 0)
				o.nvalues++;
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

	o.values = values;
	o.keep_sandbox = &left_to_exit.sandbox;
	/* the folders of --templates come first, then the configured ones */
	int rc = config_load_templates(&cfg, err);
	o.cfg = &cfg;
	if (!rc && time_limit) {
		char *end;
		errno = 0;
		long ms = strtol(time_limit, &end, 10);
		if (errno || *end || ms < 1 || ms > PB_RENDER_TIME_LIMIT_MAX_MS) {
			fprintf(stderr, "pbiport tmdl: --time-limit-ms: expected a whole number from 1 to %ld, got '%.40s'\n",
				PB_RENDER_TIME_LIMIT_MAX_MS, time_limit);
			status = 2;
			goto out;
		}
		cfg.render_time_limit_ms = ms;
	}
	if (!rc)
		rc = contract_load(contract_path, &c, err);
	if (!rc)
		rc = tmdl_render(c, &o, &files, err);
	if (rc) {
		fprintf(stderr, "pbiport tmdl: %s\n", err);
		status = 2;
		goto out;
	}
	if (out_dir) {
		if ((rc = write_render(&files, out_dir, err))) {
			fprintf(stderr, "pbiport tmdl: %s\n", err);
			status = rc == PB_EINVAL ? 2 : 1;
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
	left_to_exit.files = files;
	left_to_exit.contract = c;
	config_release(&cfg);
	return status;
}
