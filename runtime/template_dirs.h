/* The ONE template search path, for TMDL renders, import filter rules and web pages
 * (builtin "templates": pages are web/NAME.lua, their static files web/static/NAME). */
#ifndef PBIPORT_TEMPLATE_DIRS_H
#define PBIPORT_TEMPLATE_DIRS_H

#include "runtime/config.h"
#include "runtime/limits.h"
#include "runtime/lua_sandbox.h"

/* First match wins:
 *  1. the folders in extra (colon-separated; pbiport tmdl --templates; may be NULL),
 *  2. the admin folders of PBIPORT_TEMPLATE_PATH (cfg->template_path),
 *  3. the built-in <datadir>/<builtin> ("templates/tmdl" for renders, "templates" for filter
 *     rules, whose module names start with "filters.") and <datadir>/lua, shown in chunk names
 *     as "<builtin>/..." and "lua/..." (datadir: config_datadir(cfg)).
 * An admin folder that is not a folder is an error ("template folder X: not a readable
 * folder"): a typo must not silently fall back to the built-in templates. cfg may be NULL. */
typedef struct template_dirs {
	sandbox_dir dirs[PB_TEMPLATE_MAX_DIRS];   /* ready for sandbox_opts.dirs */
	size_t n;
	char *owned[4];                           /* copies the dirs point into */
	size_t nowned;
} template_dirs;

/* Fills out (release with template_dirs_release(), also after an error: it is then empty). */
int template_dirs_build(const pb_config *cfg, const char *extra, const char *builtin, template_dirs *out,
			char *err);
void template_dirs_release(template_dirs *td);

#endif
