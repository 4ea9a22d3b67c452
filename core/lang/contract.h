/* The normalized data contract: what pbiport reads out of an ODCS document.
 *
 * ODCS v3.x (schema[].properties[], servers[]) and the older v2.x shape
 * (dataset[].columns[], top-level server fields) both become this one model.
 * Everything the TMDL templates, the catalog and the publish need comes from here.
 *
 * Nested properties rule: a top-level property whose logicalType is object or array
 * (or whose physicalType is struct/array/map/variant/object/list) stays ONE column
 * with logical_type "string", because Snowflake and Databricks hand such values to
 * Power BI as JSON text. Its nested `properties`/`items` are validated but are not
 * turned into columns, and a warning says so.
 *
 * Ownership: contract_parse() returns a new pb_contract; every string and array
 * inside it belongs to it and is freed by contract_free(). Pointers returned by
 * the lookup functions are borrowed until contract_free(). */
#ifndef PBIPORT_CONTRACT_H
#define PBIPORT_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct pb_kv {
	char *key;
	char *value;           /* scalars as text; arrays/objects as compact JSON */
} pb_kv;

typedef struct pb_column {
	char *name;            /* property name as written */
	char *physical_name;   /* source column; = name when the contract has none */
	char *logical_type;    /* v3 logical type: string date timestamp time number integer boolean
	                          (object/array properties become one "string" column: see above) */
	char *physical_type;   /* free text from the contract, or NULL */
	char *description;     /* may contain newlines; NULL when absent */
	char *business_name;   /* NULL when absent */
	char *classification;  /* NULL when absent */
	bool required;
	bool unique;
	bool primary_key;
	int primary_key_position; /* 1-based; 0 when not given */
	int precision, scale;  /* from DECIMAL(p,s)/NUMBER(p,s) or customProperties; -1 unknown */
	char *id;              /* ODCS stable id (v3 `id`), NULL when absent */
} pb_column;

typedef struct pb_table {
	char *name;
	char *physical_name;   /* = name when absent */
	char *physical_type;   /* "table" or "view" (normalized lower case) */
	char *description;     /* NULL when absent */
	char *business_name;
	pb_column *columns;
	size_t ncolumns;
	char *id;              /* ODCS stable id (v3 `id`), NULL when absent */
	char *storage_mode;    /* customProperties powerbi.storageMode: import, directQuery or dual
	                          (any case, checked), NULL when absent */
} pb_table;

typedef struct pb_server {
	char *name;            /* `server` field (v3) or "default" (v2) */
	char *type;            /* lower case: snowflake, databricks, postgresql, ... */
	pb_kv *fields;         /* every connection field as text (host, account, database,
	                          schema, warehouse, catalog, port, ...), in document order */
	size_t nfields;
	pb_kv *custom;         /* customProperties property -> value (e.g. httpPath) */
	size_t ncustom;
} pb_server;

typedef struct pb_relationship {
	char *from_table, *from_column;   /* many side */
	char *to_table, *to_column;       /* one side */
	char *cardinality;                /* e.g. "many-to-one", NULL when unstated */
} pb_relationship;

typedef struct pb_contract {
	char *id;              /* v3 id, v2 uuid */
	char *name;            /* v3 name, v2 datasetName; falls back to id */
	char *version;
	char *api_version;     /* as written, NULL when absent */
	int odcs_major;        /* 2 or 3 */
	char *status;
	char *domain;
	char *description;     /* description.purpose (v3 object) or the plain string */
	pb_table *tables;
	size_t ntables;
	pb_server *servers;
	size_t nservers;
	pb_relationship *relationships;
	size_t nrelationships;
	char **warnings;       /* things read leniently (unknown keys, skipped nested fields,
	                          composite keys); one line each */
	size_t nwarnings;
} pb_contract;

/* Parses an ODCS contract (YAML or JSON, detected from the text). `source` names the
 * document in messages (a file name, or "request body"). On failure *out is NULL and
 * err holds one line naming the place, e.g.
 *   schema[0].properties[1].logicalType: unknown type "strng"
 *   contract.yaml:12:3: YAML syntax error: ...
 * Things read leniently (unknown keys below the top level, unmapped v2 types, nested
 * fields, skipped relationships, dropped secret-looking server fields) become
 * warnings, not errors. The full rule list is at the top of core/lang/contract.c.
 * Returns PB_OK or PB_EINVAL (bad input) / PB_ENOMEM / PB_ELIMIT. */
int contract_parse(const char *text, size_t len, const char *source, pb_contract **out, char *err);

/* Reads and parses a file (bounded by PB_CONTRACT_MAX_BYTES). */
int contract_load(const char *path, pb_contract **out, char *err);

void contract_free(pb_contract *c);

/* The whole model as JSON (a new reference; the caller json_decref()s it). This one
 * shape feeds the Lua templates, the CLI and the HTTP API:
 * {"id","name","version","api_version","odcs_major","status","domain","description",
 *  "tables":[{"name","physical_name","physical_type","description","business_name","id",
 *     "storage_mode",
 *     "columns":[{"name","physical_name","logical_type","physical_type","description",
 *        "business_name","classification","required","unique","primary_key",
 *        "primary_key_position","precision","scale","id"}]}],
 *  "servers":[{"name","type","fields":{k:v},"custom":{k:v}}],
 *  "relationships":[{"from_table","from_column","to_table","to_column","cardinality"}],
 *  "warnings":["..."]}
 * Absent strings are omitted; precision/scale are omitted when unknown (-1) and
 * primary_key_position when 0. */
struct json_t;
struct json_t *contract_to_json(const pb_contract *c);

/* The server named `name`, or the first server when name is NULL; NULL if none. */
const pb_server *contract_server(const pb_contract *c, const char *name);
/* A server connection field (fields first, then custom properties); NULL if absent. */
const char *server_field(const pb_server *s, const char *key);

/* The contract reader's JSON reader, for other large JSON texts too (scan results): the tree
 * json_loadb(text, len, JSON_REJECT_DUPLICATES) gives (new), several times faster, or NULL for
 * anything it does not take plainly (a syntax error, a duplicate key, \u0000, a number out of
 * range, no memory): the caller then asks json_loadb. It recurses per nesting level: bound the
 * depth first (json_depth_check, runtime/json_body.h). */
struct json_t *fast_json_load(const char *text, size_t len);

#endif
