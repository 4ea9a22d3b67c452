/* On-premises data gateways: the gateways an identity may use, their data sources, a new data
 * source with credentials encrypted for the gateway, and binding a semantic model to a gateway.
 *
 * Microsoft's current APIs for this (all delegated with Dataset.ReadWrite.All, which pbiport's
 * consent already asks for):
 *  - Power BI REST "Gateways" (https://learn.microsoft.com/rest/api/power-bi/gateways):
 *    GET /v1.0/myorg/gateways and GET /gateways/{id} (gateways the caller administers, with the
 *    RSA public key `publicKey {exponent, modulus}`), GET/POST /gateways/{id}/datasources (gateway
 *    admins only; "On premises data source credentials must be encrypted ... using the gateway
 *    public key", Gateways - Create Datasource), DELETE /gateways/{id}/datasources/{dsId}.
 *  - Power BI REST "Datasets": POST /groups/{g}/datasets/{d}/Default.BindToGateway
 *    {gatewayObjectId, datasourceObjectIds?} ("Only supports the on-premises data gateway"; the
 *    caller must be a data source user on the gateway; without ids the dataset binds to the
 *    first matching data source, Datasets - Bind To Gateway In Group) and GET
 *    /groups/{g}/datasets/{d}/Default.DiscoverGateways (the gateways the dataset can bind to).
 *  - Fabric GET /v1/connections lists gateway data sources too, as connections of
 *    connectivityType OnPremisesGateway with their gatewayId (Connections - List Connections):
 *    the way a data source *user* (not a gateway admin) sees the ones shared with them. Fabric's
 *    GET /v1/gateways needs the Gateway.Read.All scope, which pbiport does not ask for (every
 *    connected user would have to consent again), so gateway names and keys come from Power BI.
 *
 * A gateway data source is described here the way Fabric describes a connection's data source
 * (type + path), so that callers match it against a model's data source exactly as they match
 * cloud connections: Power BI's datasourceType "Sql" with connectionDetails {server, database}
 * is type "SQL", path "server;database"; an "Extension" data source (Snowflake, Databricks, ...)
 * is type = extensionDataSourceKind, path = extensionDataSourcePath (Datasets - Get Datasources,
 * "Extension datasource example"). */
#ifndef PBIPORT_MSAPI_GATEWAYS_H
#define PBIPORT_MSAPI_GATEWAYS_H

#include <stdbool.h>
#include <stddef.h>

#include "msapi/msapi.h"

/* The longest encrypted credentials text pbiport sends. */
#define GATEWAY_CREDENTIALS_MAX (64 * 1024)

/* A gateway as Power BI describes it. Strings new (NULL when absent); gateway_release. */
typedef struct gateway {
	char *id;          /* the gateway (cluster) id: gatewayObjectId when binding */
	char *name;
	char *type;        /* "Resource" (on-premises gateway) or "Personal" */
	char *status;      /* gatewayStatus, e.g. "Live" */
	char *exponent;    /* publicKey.exponent, base64 */
	char *modulus;     /* publicKey.modulus, base64 */
} gateway;
typedef struct gateways {
	gateway *v;        /* owned */
	size_t n;
} gateways;
void gateway_release(gateway *g);
void gateways_release(gateways *l);

/* GET /gateways: the gateways the caller administers (all pages). */
int gateway_list(msapi *c, gateways *out, char *err);
/* GET /gateways/{id} (gateway admins). */
int gateway_get(msapi *c, const char *id, gateway *out, char *err);
/* GET /groups/{group}/datasets/{dataset}/Default.DiscoverGateways: the gateways the dataset can be
 * bound to (empty for a dataset with cloud sources only). */
int gateway_discover(msapi *c, const char *group, const char *dataset, gateways *out, char *err);

/* A gateway data source. Strings new (NULL when absent); gateway_sources_release. */
typedef struct gateway_source {
	char *id;                /* datasourceObjectId when binding (Fabric: the connection's id) */
	char *gateway_id;
	char *name;              /* datasourceName (Fabric: displayName) */
	char *datasource_type;   /* Power BI's datasourceType ("Sql", "Extension", ...); NULL from Fabric */
	char *type;              /* the connector as Fabric names connection types ("SQL", "Snowflake") */
	char *path;              /* its connection details as a Fabric path ("server;database") */
	char *credential_type;   /* "Basic", "Windows", "Key", ... */
} gateway_source;
typedef struct gateway_sources {
	gateway_source *v;       /* owned */
	size_t n;
} gateway_sources;
void gateway_source_release(gateway_source *s);
void gateway_sources_release(gateway_sources *l);

/* GET /gateways/{gateway}/datasources (gateway admins). */
int gateway_list_sources(msapi *c, const char *gateway, gateway_sources *out, char *err);
/* The gateway data sources the caller may use, from Fabric's GET /v1/connections (connections of
 * connectivityType OnPremisesGateway): what a data source user sees. */
int gateway_list_connections(msapi *c, gateway_sources *out, char *err);
/* True when conn (an item of fabric_list_connections) is a gateway data source, not a cloud
 * connection: its connectivityType names an on-premises gateway. */
bool fabric_connection_on_gateway(const msapi_item *conn);

enum gateway_cred { GATEWAY_CRED_BASIC, GATEWAY_CRED_WINDOWS, GATEWAY_CRED_KEY };

/* A new data source (borrowed strings). */
typedef struct gateway_source_req {
	const gateway *gw;          /* its id and public key (gateway_get) */
	const char *name;           /* datasourceName: unique on the gateway */
	const char *type;           /* the source as Fabric types it ("SQL", "PostgreSQL", "Snowflake", ...) */
	const char *path;           /* its parameters joined by ';' ("server;database", "host;warehouse") */
	enum gateway_cred cred;
	const char *username;       /* BASIC, WINDOWS */
	const char *password;       /* BASIC, WINDOWS (secret) */
	const char *key;            /* KEY (secret) */
	const char *privacy_level;  /* NULL = "Organizational" */
} gateway_source_req;

/* POST /gateways/{id}/datasources: the credentials ({"credentialData":[{name, value}...]}) are
 * encrypted with the gateway's public key (gateway_encrypt_credentials), sent with
 * encryptedConnection "Encrypted" and encryptionAlgorithm "RSA-OAEP", and wiped from memory.
 * After a dropped connection the gateway's data source of that name is returned when it is there
 * (the create is not sent again). */
int gateway_create_source(msapi *c, const gateway_source_req *r, gateway_source *out, char *err);
/* DELETE /gateways/{gateway}/datasources/{id}; one already gone counts as deleted. */
int gateway_delete_source(msapi *c, const char *gateway, const char *id, char *err);
/* POST /groups/{group}/datasets/{dataset}/Default.BindToGateway with gatewayObjectId = gateway and
 * datasourceObjectIds = ids[0..n) (n 0: Power BI picks the matching data sources). Repeatable. */
int gateway_bind(msapi *c, const char *group, const char *dataset, const char *gateway, const char *const *ids,
		 size_t n, char *err);

/* The credentials text plain[0..len) encrypted for the gateway whose public key is exponent and
 * modulus (base64), as Power BI's SDKs do it (PowerBI-CSharp AsymmetricKeyEncryptor): a 1024-bit
 * key (128-byte modulus) encrypts 85-byte segments with RSA-OAEP (SHA-1) and concatenates them; a
 * larger key encrypts with AES-256-CBC under an ephemeral key, authenticated with HMAC-SHA256 under
 * a second one (AuthenticatedEncryption: 0x00 0x00 || tag || iv || ciphertext, the tag over
 * 0x00 0x00 || iv || ciphertext), and sends both keys (0x00 0x01 || aes key || hmac key) under
 * RSA-OAEP with SHA-256: base64(encrypted keys) followed by base64(the rest). *out is new text. */
int gateway_encrypt_credentials(const char *exponent, const char *modulus, const char *plain, size_t len, char **out,
				char *err);

#endif
