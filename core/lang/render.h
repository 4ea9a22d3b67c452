/* The renderer: a contract plus options become a TMDL definition (a set of files), by
 * running the Lua templates in templates/tmdl/ inside the sandbox (runtime/lua_sandbox.h).
 *
 * The entry template `main.lua` returns a function that receives one table
 *   ctx = { contract = <contract_to_json() shape as a Lua table; each table also has
 *                       storage_mode = "import" | "directQuery" | "dual", resolved>,
 *           target   = { name, type, and one value per field of the source's description
 *                        (core/lang/sources.h): host, warehouse, database, schema, ... },
 *           options  = { mode = "import" | "directquery" | "dual" (the caller's),
 *                        storage_mode = the TMDL mode of a table nothing else decides },
 *           names    = { key = function(name), length = function(name),
 *                        max_length = 512 } }
 * names.key(s) is the key Power BI compares object names by (core/lang/names.h: NFC + case
 * folding; equal keys = the same name) and names.length(s) the length Power BI counts
 * (UTF-16 units), for templates that rename objects.
 * It returns { [path] = text }. Paths must be relative, without "..", "." or empty
 * parts, absolute parts or backslashes, and be `definition.pbism` or under
 * `definition/`; texts must be UTF-8 strings; all files together at most
 * PB_RENDER_MAX_BYTES.
 *
 * The server's type names its source description, templates/tmdl/sources/<type>.lua: the
 * values the model needs from the server and their messages, the storage modes Power BI
 * allows, and (for publishing) the Fabric connection. A type without one is "not supported".
 *
 * Template search path: template_dirs_build() below, with the built-in folder
 * templates/tmdl. Compiled templates are kept per process (runtime/lua_sandbox.h). */
#ifndef PBIPORT_RENDER_H
#define PBIPORT_RENDER_H

#include <stddef.h>

#include "core/lang/contract.h"
#include "runtime/config.h"
#include "runtime/limits.h"
#include "runtime/lua_sandbox.h"
#include "runtime/template_dirs.h"

typedef struct pb_file {
	char *path;      /* relative, '/'-separated */
	char *content;   /* NUL-terminated; len bytes */
	size_t len;
} pb_file;

typedef struct pb_files {
	pb_file *v;      /* sorted by path (strcmp) */
	size_t n;
} pb_files;

/* Frees everything in f and leaves it empty. */
void pb_files_release(pb_files *f);

/* How a caller lets users give what the server lacks; messages name those, not CLI flags in
 * an API answer. */
typedef enum render_params {
	RENDER_PARAMS_BODY = 0,     /* a request body: the source's request fields (POST .../powerbi-publish) */
	RENDER_PARAMS_CLI,          /* pbiport tmdl flags: --host, --http-path ... */
	RENDER_PARAMS_QUERY,        /* query parameters: ?host=, ?http_path= ... */
} render_params;

/* Which side a failed render is at fault: what the caller gave (the contract, the server, the
 * options: PB_EINVAL's "missing warehouse") or the server's templates (an admin template that
 * fails, returns too little, or runs past its limits). */
typedef enum render_fault { RENDER_FAULT_NONE = 0, RENDER_FAULT_INPUT, RENDER_FAULT_TEMPLATE } render_fault;

/* A value the caller gives for a field the server lacks: name as the source's description
 * names it ("host", "http_path"), value NULL or empty for none. Both borrowed. */
typedef struct render_value {
	const char *name;
	const char *value;
} render_value;

struct source_desc;

typedef struct render_opts {
	const char *server;         /* server name; NULL = the contract's first server */
	const char *mode;           /* "import" (default), "directquery" or "dual" (any case): the tables'
	                               storage mode unless the contract says (powerbi.storageMode) */
	/* What the server lacks; the server's own values win. `type` without `server` picks the
	 * contract's first server of that type, else its first server whose type is unknown
	 * ("custom": a v2 connection that does not say what it is), else none: a server made
	 * from these values; with `server` it applies when that server's type is unknown. */
	const char *type;           /* a source type: snowflake, databricks, postgres, ... */
	const render_value *values; /* by field name: host, warehouse, database, http_path, schema... */
	size_t nvalues;
	render_params params;       /* how the values above are named in messages */
	const pb_config *cfg;       /* PBIPORT_TEMPLATE_PATH and PBIPORT_DATADIR; NULL: neither */
	const char *template_path;  /* more admin folders searched first, colon-separated (pbiport tmdl
	                               --templates); NULL for none */
	render_fault *fault;        /* may be NULL: set on failure to the side at fault */
	struct source_desc **source; /* may be NULL: set on success to the source's description (new:
	                               the caller frees it with source_desc_free) */
	int time_limit_ms;          /* CPU time for the templates, replacing both limits below;
	                               0 = scaled to the contract: an instruction budget of
	                               PB_LUA_INSTR_BASE + per table and per column, and a deadline
	                               of PB_LUA_TIME_BASE_MS + per column, the per-column part times
	                               the machine's measured slowness (sandbox_time_scale_pct), at most
	                               PB_LUA_TIME_MAX_MS (runtime/limits.h); cfg's
	                               render_time_limit_ms, when set, is the deadline instead */
	struct lua_sandbox **keep_sandbox; /* may be NULL: set on success to the templates' sandbox
	                               instead of freeing it (the caller frees it with sandbox_free,
	                               or a process that exits right after leaves it to the exit) */
} render_opts;

/* The storage mode of each table of c (modes[i], SOURCE_MODE_*; modes may be NULL to check
 * only): the table's powerbi.storageMode custom property, else server s's (s may be NULL),
 * else asked (the caller's --mode / ?mode=, a SOURCE_MODE_* or 0), else the source's default;
 * each one Power BI allows for the source (d's storage_modes). PB_EINVAL naming what asked for
 * a mode that is not allowed (messages name the caller's option as params says). */
int render_storage_modes(const pb_contract *c, const pb_server *s, const struct source_desc *d, unsigned asked,
			 render_params params, unsigned *modes, char *err);

/* The value o gives for field name (non-empty), or NULL. */
const char *render_value_of(const render_opts *o, const char *name);

/* Renders c. On success out holds new files (caller releases with pb_files_release());
 * on failure out is empty and err holds one line naming everything that is missing, e.g.
 *   server "prod" (snowflake): no warehouse and schema; add "warehouse" and "schema" to the
 *     server or pass --warehouse and --schema              (RENDER_PARAMS_CLI)
 *   ... or pass ?warehouse= and ?schema=                   (RENDER_PARAMS_QUERY)
 *   the contract has no servers; pass --type with the values its source needs (types: ...)
 *   server type s3 is not supported for Power BI (bigquery, databricks, ...)
 *   table "orders": storage mode directQuery is not allowed for mysql sources in Power BI (import)
 *   template templates/tmdl/table.lua:12: ...
 *   template output: no definition/model.tmdl (a model needs definition.pbism, ...)
 * The output must hold definition.pbism, definition/database.tmdl, definition/model.tmdl and
 * at least one definition/tables/ file per contract table.
 * Returns PB_OK, PB_EINVAL (bad contract, options or template), PB_ELIMIT (template
 * memory, time or output limits), PB_ENOMEM. opts may be NULL. */
int tmdl_render(const pb_contract *c, const render_opts *opts, pb_files *out, char *err);


#endif
