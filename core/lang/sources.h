/* Sources: what pbiport knows about one kind of server (Snowflake, PostgreSQL, BigQuery...) is
 * its description, a Lua template on the template path: templates/tmdl/sources/<type>.lua,
 * <type> the contract server's type (docs/templates.md "Sources"). It returns a table:
 *   label            "PostgreSQL"
 *   fields           the values the model needs from the server: { name, keys, what, add,
 *                    required, default, default_from, option, request }
 *   parameters       M parameters for definition/expressions.tmdl (Lua only)
 *   reads            the source type pbiport's M reader finds in the partitions
 *                    (core/lang/mlineage.h: "postgresql", "sql", ...)
 *   connection       { type, creation_method, parameters = { { name, from, match } } }: the
 *                    Fabric ShareableCloud connection, its parameters taken from what the
 *                    model's M reads; its path (Fabric joins the values with ';') is what
 *                    existing connections are matched on
 *   credentials      { { kind, fabric, label, fields = { { name, label, secret, guid } } } }
 *   storage_modes    the partition modes Power BI allows for it ("import", "directQuery",
 *                    "dual"); default_storage_mode (else import when allowed, else the first)
 *   gateway_only     true when Fabric offers the connector only through an on-premises
 *                    data gateway (no cloud connection can be made)
 *   m, column_type   Lua functions: the partition M and the type mapping (Lua only)
 * C reads it through the sandbox (lua/source_json.lua turns it into JSON text, within the
 * render's bounds) and never branches on a source's name: adding a source is adding files.
 *
 * Ownership: source_load() returns a new source_desc (source_desc_free()); every string in it
 * is borrowed from it until then. */
#ifndef PBIPORT_SOURCES_H
#define PBIPORT_SOURCES_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/lua_sandbox.h"
#include "runtime/strbuf.h"

#define SOURCE_TYPE_MAX 64          /* a server type: [a-z0-9_], the file's name */
#define SOURCE_MAX_FIELDS 16
#define SOURCE_MAX_KEYS 4           /* server keys one field is read from */
#define SOURCE_MAX_PARAMS 8         /* connection parameters */
#define SOURCE_MAX_CREDS 8
#define SOURCE_MAX_CRED_FIELDS 3
#define SOURCE_TEXT_MAX 256         /* one text of a description */
#define SOURCE_DESC_MAX_BYTES (64u * 1024)  /* a description as JSON */

/* What a connection parameter takes from the source the model's M reads. */
typedef enum source_from { SOURCE_FROM_HOST, SOURCE_FROM_WAREHOUSE, SOURCE_FROM_HTTP_PATH, SOURCE_FROM_DATABASE }
	source_from;

/* Storage modes, as bits. */
enum { SOURCE_MODE_IMPORT = 1, SOURCE_MODE_DIRECTQUERY = 2, SOURCE_MODE_DUAL = 4 };

typedef struct source_key {
	const char *key;       /* a server field or customProperties name */
	const char *suffix;    /* appended unless the value ends with it (Snowflake's account), or NULL */
} source_key;

typedef struct source_field {
	const char *name;      /* ctx.target key; flag --name (with - for _), query ?name= */
	const char *what;      /* in "no <what>" (default: name, _ as space) */
	const char *add;       /* how to add it to the server (default: "\"<first key>\"") */
	const char *hint;      /* what it is, for a form that asks for it, or NULL */
	const char *dflt;      /* value when the server and the caller give none, or NULL */
	const char *dflt_from; /* else the value of this other field, or NULL */
	source_key keys[SOURCE_MAX_KEYS];   /* default: the name */
	size_t nkeys;
	bool required;         /* the render fails without it */
	bool option;           /* a flag / query parameter may give it (default true) */
	bool request;          /* the publish request may give it (its body field is the name) */
} source_field;

typedef struct source_param {
	const char *name;      /* Fabric's parameter name: "server" */
	source_from from;
	bool server;           /* compared as a server name (mlineage_same_server), else as text */
} source_param;

typedef struct source_cred_field {
	const char *name;      /* the request's field: "username" */
	const char *label;     /* the form's label: "Username" */
	const char *guid;      /* must be a GUID: "a Microsoft Entra tenant"; NULL when not */
	bool secret;
} source_cred_field;

typedef struct source_cred {
	const char *kind;      /* the request's credential_type: "basic" */
	const char *fabric;    /* Fabric's credentialType: "Basic", "Key" or "ServicePrincipal" */
	const char *label;     /* "Username and password" */
	source_cred_field fields[SOURCE_MAX_CRED_FIELDS];   /* in the order Fabric's kind takes them */
	size_t nfields;
} source_cred;

typedef struct source_desc {
	char type[SOURCE_TYPE_MAX + 1];   /* the file's name: "postgres" */
	const char *label;
	const char *reads;                 /* mlineage source type */
	const char *conn_type, *creation_method;
	source_field fields[SOURCE_MAX_FIELDS];
	size_t nfields;
	source_param params[SOURCE_MAX_PARAMS];
	size_t nparams;
	source_cred creds[SOURCE_MAX_CREDS];
	size_t ncreds;
	unsigned modes;                    /* SOURCE_MODE_* allowed */
	unsigned default_mode;             /* one SOURCE_MODE_* */
	bool gateway_only;
	struct json_t *doc;                /* owns the strings */
} source_desc;

/* True when type is a name a description file can have: 1..SOURCE_TYPE_MAX of [a-z0-9_]. */
bool source_type_valid(const char *type);

/* Whether dirs (the render's search path) hold sources/<type>.lua. */
bool source_exists(const sandbox_dir *dirs, size_t ndirs, const char *type);

/* Whether the TMDL template path of cfg (core/lang/sources.h source_describe) holds a
 * description of type: a port of that type can be published. */
struct pb_config;
bool source_supported(const struct pb_config *cfg, const char *type);

/* Appends the types dirs have descriptions for to b, sorted, unique, joined with ", ". */
void source_list(const sandbox_dir *dirs, size_t ndirs, sbuf *b);

/* Reads the description of type (source_exists) in sb: *out new. Errors name the file
 * ("template sources/x.lua: fields[2].keys: ..."); PB_EINVAL, PB_ELIMIT, PB_ENOMEM, or the
 * sandbox's. */
int source_load(lua_sandbox *sb, const char *type, source_desc **out, char *err);
void source_desc_free(source_desc *d);

/* source_load in a sandbox of its own on the TMDL template path (cfg's PBIPORT_TEMPLATE_PATH
 * and built-in folders, the colon-separated folders of extra first; both may be NULL), with the
 * bounds of a render of an empty contract. PB_ENOTFOUND when the path has no description of
 * type (the message lists the types it has). */
int source_describe(const struct pb_config *cfg, const char *extra, const char *type, source_desc **out, char *err);

/* The field named name, the credential kind named kind: borrowed, NULL when none. */
const source_field *source_field_named(const source_desc *d, const char *name);
const source_cred *source_cred_named(const source_desc *d, const char *kind);

/* "import" / "directQuery" / "dual" for one SOURCE_MODE_* bit; the mode of a text (any case;
 * 0 when it is none of them). */
const char *source_mode_name(unsigned mode);
unsigned source_mode_of(const char *text);
/* Appends the allowed modes to b: "import, directQuery and dual". */
void source_modes_text(unsigned modes, sbuf *b);

/* The kinds of credentials d takes, as the request names them: "basic", "token or
 * service_principal" (into b). */
void source_creds_text(const source_desc *d, sbuf *b);

/* {"type","label","gateway_only","storage_modes":[...],"request_fields":[...],
 *  "credentials":[{"kind","label","fields":[{"name","label","secret"}]}]}; request_fields:
 * [{"name","what","hint"?}]: what a publish form
 * shows. New reference, NULL on memory failure. */
struct json_t *source_desc_json(const source_desc *d);

#endif
