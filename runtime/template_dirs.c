#include "runtime/template_dirs.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/strbuf.h"
#include "runtime/util.h"

void template_dirs_release(template_dirs *td)
{
	for (size_t i = 0; i < td->nowned; i++)
		free(td->owned[i]);
	memset(td, 0, sizeof *td);
}

static int add_dir(template_dirs *td, char *dir, const char *label, bool must_exist, char *err)
{
	struct stat st;
	if (!*dir)
		return 0;
	if (td->n == PB_TEMPLATE_MAX_DIRS)
		return pb_err(err, PB_ELIMIT, "more than %d template folders", PB_TEMPLATE_MAX_DIRS);
	if (must_exist && (stat(dir, &st) || !S_ISDIR(st.st_mode)))
		return pb_err(err, PB_EINVAL, "template folder %s: not a readable folder", dir);
	td->dirs[td->n].dir = dir;
	td->dirs[td->n].label = label;
	td->n++;
	return 0;
}

/* Keeps s (new, may be NULL: out of memory) for the folders that point into it. */
static int own(template_dirs *td, char *s, char *err)
{
	if (!s)
		return pb_err(err, PB_ENOMEM, "template folder path too long or out of memory");
	td->owned[td->nowned++] = s;
	return 0;
}

/* Splits a colon-separated list (copied) into admin folders, each of which must exist. */
static int add_list(template_dirs *td, const char *list, char *err)
{
	int rc;
	if (!list || !*list)
		return 0;
	char *copy = xstrdup(list);
	if ((rc = own(td, copy, err)))
		return rc;
	for (char *p = copy; p && !rc;) {
		char *colon = strchr(p, ':');
		if (colon)
			*colon = '\0';
		rc = add_dir(td, p, NULL, true, err);
		p = colon ? colon + 1 : NULL;
	}
	return rc;
}

/* A built-in folder <datadir>/<sub>, shown in chunk names and messages as sub, as in the
 * source tree. */
static int add_builtin(template_dirs *td, const char *datadir, const char *sub, char *err)
{
	sbuf b;
	sbuf_init(&b, PB_RENDER_MAX_PATH);
	char *path = sbuf_addf(&b, "%s/%s", datadir, sub) ? NULL : sbuf_detach(&b, NULL);
	sbuf_release(&b);
	int rc = own(td, path, err);
	return rc ? rc : add_dir(td, path, sub, false, err);
}

int template_dirs_build(const pb_config *cfg, const char *extra, const char *builtin, template_dirs *out,
			char *err)
{
	const char *datadir = config_datadir(cfg);
	int rc;
	memset(out, 0, sizeof *out);
	if ((rc = add_list(out, extra, err)) || (rc = add_list(out, cfg ? cfg->template_path : NULL, err)) ||
	    (rc = add_builtin(out, datadir, builtin, err)) || (rc = add_builtin(out, datadir, "lua", err)))
		template_dirs_release(out);
	return rc;
}

