/* Fabric REST (https://api.fabric.microsoft.com/v1): workspaces, semantic models from TMDL,
 * connections, binding. Tokens: delegated (Item/SemanticModel/Connection scopes) or a
 * service principal's. All lists follow every page. Outputs are msapi_item values (see
 * msapi.h for which Microsoft field lands in which member). */
#ifndef PBIPORT_MSAPI_FABRIC_H
#define PBIPORT_MSAPI_FABRIC_H

#include "msapi/msapi.h"

/* One definition file: raw bytes (borrowed); the client base64-encodes them. */
typedef struct fabric_part {
	const char *path;            /* "definition.pbism", "definition/tables/Sales.tmdl", ... */
	const void *data;
	size_t len;
} fabric_part;

/* A definition as returned by getDefinition: every field new; release with
 * fabric_definition_release. */
typedef struct fabric_def_part {
	char *path;
	unsigned char *data;         /* decoded bytes, NUL-terminated */
	size_t len;
} fabric_def_part;
typedef struct fabric_definition {
	fabric_def_part *v;
	size_t n;
} fabric_definition;
void fabric_definition_release(fabric_definition *d);

/* GET /v1/workspaces (all pages). item: id, name (displayName), type. */
int fabric_list_workspaces(msapi *c, msapi_items *out, char *err);
/* The caller's workspaces in which they hold `role` (Admin, Member, Contributor or Viewer,
 * or several joined by commas: "Admin,Member,Contributor"): Fabric's list does not say the
 * role, only filters by it. out as above. */
int fabric_list_workspaces_in_role(msapi *c, const char *role, msapi_items *out, char *err);
/* GET /v1/workspaces/{ws}/semanticModels (all pages). */
int fabric_list_semantic_models(msapi *c, const char *ws, msapi_items *out, char *err);

/* POST /v1/workspaces/{ws}/semanticModels with the parts, following the long-running
 * operation to the created item. If the connection drops after sending, the client lists
 * the workspace's models and returns the one with this display name (and this description,
 * when one is given: a caller marks its models so that another's model of the same name is
 * never taken for its own) instead of creating a second; likewise after
 * ItemDisplayNameAlreadyInUse that follows such a drop. description (at most 256
 * characters, Fabric's limit) may be NULL. out->id is the new model's id. */
int fabric_create_semantic_model(msapi *c, const char *ws, const char *display_name, const char *description,
				 const fabric_part *parts, size_t nparts, msapi_item *out, char *err);
/* POST .../getDefinition?format=TMDL|TMSL (format NULL = TMDL), LRO. */
int fabric_get_definition(msapi *c, const char *ws, const char *id, const char *format,
			  fabric_definition *out, char *err);
/* POST .../updateDefinition (LRO, no result). */
int fabric_update_definition(msapi *c, const char *ws, const char *id, const fabric_part *parts, size_t nparts,
			     char *err);

/* GET /v1/connections (all pages). item: id, name, type (connectionDetails.type), path. */
int fabric_list_connections(msapi *c, msapi_items *out, char *err);

typedef struct fabric_param {
	const char *name;
	const char *value;
	const char *data_type;       /* NULL = "Text" */
} fabric_param;

enum fabric_cred { FABRIC_CRED_BASIC, FABRIC_CRED_KEY, FABRIC_CRED_SERVICE_PRINCIPAL };

typedef struct fabric_connection_req {
	const char *display_name;
	const char *type;            /* "Snowflake", "Databricks", ... */
	const char *creation_method; /* "Snowflake.Databases", "Databricks.Catalogs", ... */
	const fabric_param *params;
	size_t nparams;
	const char *privacy_level;   /* NULL = "Organizational" */
	const char *encryption;      /* NULL = "NotEncrypted" */
	bool skip_test;
	enum fabric_cred cred;
	const char *username;        /* BASIC */
	const char *password;        /* BASIC (secret) */
	const char *key;             /* KEY (secret) */
	const char *tenant_id;       /* SERVICE_PRINCIPAL */
	const char *sp_client_id;
	const char *sp_secret;       /* secret */
} fabric_connection_req;

/* POST /v1/connections (ShareableCloud). Secrets are wiped from memory after sending.
 * After a dropped connection (or DuplicateConnectionName following one) the existing
 * connection with that display name is returned. */
int fabric_create_connection(msapi *c, const fabric_connection_req *r, msapi_item *out, char *err);

/* POST .../semanticModels/{id}/bindConnection for one data-source reference (type + path
 * as listed by fabric_list_item_connections). connection_id NULL unbinds. */
int fabric_bind_connection(msapi *c, const char *ws, const char *model_id, const char *connection_id,
			   const char *ds_type, const char *ds_path, char *err);
/* GET /v1/workspaces/{ws}/items/{id}/connections. item: type, path, id (bound connection). */
int fabric_list_item_connections(msapi *c, const char *ws, const char *item_id, msapi_items *out, char *err);

/* DELETE /v1/workspaces/{ws}/semanticModels/{id} and DELETE /v1/connections/{id}. One that
 * is already gone (404) counts as deleted. */
int fabric_delete_semantic_model(msapi *c, const char *ws, const char *id, char *err);
int fabric_delete_connection(msapi *c, const char *id, char *err);

#endif
