/* Tests for msapi/gateways.c: the credentials encrypted for a gateway, checked offline by
 * decrypting them with the private key as a gateway does (both of Power BI's formats), and every
 * call against the emulator (fixture tests/fixtures/msapi/gateways.json: a gateway admin, a data
 * source user and someone without rights, as service principals): listing, creating a data
 * source whose credentials the emulator decrypts and checks (the round trip), refusals and their
 * classification, a dropped create answer, discover, bind, the Fabric view, delete. Without
 * python3 or the emulator the emulator tests print SKIP and pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/publish_gateway.h"
#include "msapi/entra.h"
#include "msapi/errors.h"
#include "msapi/gateways.h"
#include "runtime/crypto.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

#define FIXTURE "tests/fixtures/msapi/gateways.json"
#define TENANT "55555555-0000-4000-8000-000000000000"
#define ADMIN_SP "55555555-0000-4000-8000-00000000000a"
#define USER_SP "55555555-0000-4000-8000-00000000000b"
#define NOBODY_SP "55555555-0000-4000-8000-00000000000c"
#define WS "55555555-1000-4000-8000-000000000001"
#define MODEL_ADMIN "55555555-2000-4000-8000-000000000001"
#define MODEL_USER "55555555-2000-4000-8000-000000000002"
#define MODEL_NOBODY "55555555-2000-4000-8000-000000000003"
#define GW "55555555-3000-4000-8000-000000000001"
#define GW_SMALL "55555555-3000-4000-8000-000000000002"
#define DS_SF "55555555-4000-4000-8000-000000000001"
#define DS_SQL "55555555-4000-4000-8000-000000000002"
#define DS_BARE "55555555-4000-4000-8000-000000000003"
#define CREDS                                                                                                  \
	"{\"credentialData\":[{\"name\":\"username\",\"value\":\"svc\"},{\"name\":\"password\",\"value\":\"pw\"}]}"

/* ---------- offline: the encryption, decrypted as a gateway would ---------- */

/* A fresh key pair of bits; *e64 and *n64 (new) its public exponent and modulus in base64. */
static EVP_PKEY *new_key(int bits, char **e64, char **n64)
{
	char err[PB_ERR_MAX];
	EVP_PKEY *key = EVP_RSA_gen((unsigned)bits);
	BIGNUM *n = NULL, *e = NULL;
	assert_non_null(key);
	assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e), 1);
	unsigned char nb[512], eb[16];
	int nl = BN_bn2bin(n, nb), el = BN_bn2bin(e, eb);
	assert_int_equal(pb_b64_encode(nb, (size_t)nl, n64, err), PB_OK);
	assert_int_equal(pb_b64_encode(eb, (size_t)el, e64, err), PB_OK);
	BN_free(n);
	BN_free(e);
	return key;
}

/* RSA-OAEP decryption with md of in[0..len) into out (at most outsz); its length. */
static size_t oaep_decrypt(EVP_PKEY *key, const EVP_MD *md, const unsigned char *in, size_t len, unsigned char *out,
			   size_t outsz)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	size_t n = outsz;
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_decrypt_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md), 1);
	assert_int_equal(EVP_PKEY_decrypt(ctx, out, &n, in, len), 1);
	EVP_PKEY_CTX_free(ctx);
	return n;
}

static unsigned char *b64(const char *text, size_t len, size_t *n)
{
	unsigned char *out = NULL;
	char err[PB_ERR_MAX];
	assert_int_equal(pb_b64_decode(text, len, &out, n, err), PB_OK);
	return out;
}

/* What a 2048-bit gateway does: the keys from the first base64 text, the tag checked, AES-CBC. */
static char *gateway_decrypt_hybrid(EVP_PKEY *key, const char *text)
{
	size_t head = 4 * ((256 + 2) / 3), kl = 0, ml = 0;
	unsigned char *ek = b64(text, head, &kl), keys[256], tag[32];
	unsigned char *msg = b64(text + head, strlen(text) - head, &ml);
	char err[PB_ERR_MAX];
	assert_int_equal(oaep_decrypt(key, EVP_sha256(), ek, kl, keys, sizeof keys), 2 + 32 + 64);
	assert_int_equal(keys[0], 0);
	assert_int_equal(keys[1], 1);
	assert_true(ml >= 2 + 32 + 16 + 16);
	assert_int_equal(msg[0], 0);
	assert_int_equal(msg[1], 0);
	/* the tag covers the algorithm choices, the iv and the ciphertext */
	unsigned char *covered = malloc(ml - 32);
	memcpy(covered, msg, 2);
	memcpy(covered + 2, msg + 34, ml - 34);
	assert_int_equal(pb_hmac_sha256(keys + 34, 64, covered, ml - 32, tag, err), PB_OK);
	assert_memory_equal(tag, msg + 2, 32);
	free(covered);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	char *plain = calloc(1, ml);
	int n1 = 0, n2 = 0;
	assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_256_cbc(), NULL, keys + 2, msg + 34), 1);
	assert_int_equal(EVP_DecryptUpdate(c, (unsigned char *)plain, &n1, msg + 50, (int)(ml - 50)), 1);
	assert_int_equal(EVP_DecryptFinal_ex(c, (unsigned char *)plain + n1, &n2), 1);
	plain[n1 + n2] = '\0';
	EVP_CIPHER_CTX_free(c);
	free(ek);
	free(msg);
	return plain;
}

/* What a 1024-bit gateway does: each 128-byte block RSA-OAEP (SHA-1). */
static char *gateway_decrypt_blocks(EVP_PKEY *key, const char *text)
{
	size_t rl = 0;
	unsigned char *raw = b64(text, strlen(text), &rl);
	char *plain = calloc(1, rl + 1);
	size_t at = 0;
	assert_int_equal(rl % 128, 0);
	for (size_t i = 0; i < rl; i += 128) {
		size_t n = oaep_decrypt(key, EVP_sha1(), raw + i, 128, (unsigned char *)plain + at, rl - at);
		assert_true(n <= 85);
		at += n;
	}
	free(raw);
	return plain;
}

static void encryption_round_trip_offline(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], *e64 = NULL, *n64 = NULL, *enc = NULL, *plain = NULL;
	/* a 2048-bit key: hybrid; every encryption differs (fresh keys and iv) */
	EVP_PKEY *key = new_key(2048, &e64, &n64);
	assert_int_equal(gateway_encrypt_credentials(e64, n64, CREDS, strlen(CREDS), &enc, err), PB_OK);
	plain = gateway_decrypt_hybrid(key, enc);
	assert_string_equal(plain, CREDS);
	char *again = NULL;
	assert_int_equal(gateway_encrypt_credentials(e64, n64, CREDS, strlen(CREDS), &again, err), PB_OK);
	assert_string_not_equal(again, enc);
	free(again);
	free(plain);
	free(enc);
	EVP_PKEY_free(key);
	free(e64);
	free(n64);
	/* a 1024-bit key: 85-byte segments, so 200 bytes make three blocks */
	char long_creds[201];
	memset(long_creds, 'x', 200);
	long_creds[200] = '\0';
	key = new_key(1024, &e64, &n64);
	assert_int_equal(gateway_encrypt_credentials(e64, n64, long_creds, 200, &enc, err), PB_OK);
	size_t rl = 0;
	free(b64(enc, strlen(enc), &rl));
	assert_int_equal(rl, 3 * 128);
	plain = gateway_decrypt_blocks(key, enc);
	assert_string_equal(plain, long_creds);
	free(plain);
	free(enc);
	EVP_PKEY_free(key);
	/* refusals: a key that is not one, nothing to encrypt */
	assert_int_equal(gateway_encrypt_credentials(e64, "!!not base64", CREDS, strlen(CREDS), &enc, err), PB_EIO);
	assert_non_null(strstr(err, "public key is not usable"));
	assert_null(enc);
	assert_int_equal(gateway_encrypt_credentials(e64, n64, "", 0, &enc, err), PB_EINVAL);
	assert_int_equal(gateway_encrypt_credentials(NULL, n64, CREDS, strlen(CREDS), &enc, err), PB_EIO);
	free(e64);
	free(n64);
}

static void gateway_failures_are_classified(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	assert_int_equal(msapi_failure_of(MSAPI_POWERBI, 400, "DM_GWPipeline_Gateway_DataSourceAccessError"),
			 MSAPI_BAD_CREDENTIALS);
	assert_int_equal(msapi_failure_of(MSAPI_POWERBI, 400, "DM_GWPipeline_Gateway_InvalidConnectionCredentials"),
			 MSAPI_BAD_CREDENTIALS);
	assert_int_equal(msapi_failure_of(MSAPI_POWERBI, 400, "DMTS_CanNotFindMatchingDatasourceInGatewayError"),
			 MSAPI_REJECTED);
	assert_int_equal(msapi_failure_of(MSAPI_POWERBI, 401, "PowerBINotAuthorizedException"), MSAPI_FORBIDDEN);
	msapi_error_message(MSAPI_POWERBI, 400, "DM_GWPipeline_Gateway_DataSourceAccessError", "Login failed",
			    "create data source 'x' on the gateway", err);
	assert_non_null(strstr(err, "could not sign in to the data source"));
	/* Fabric's gateway connections are not cloud connections */
	msapi_item cloud = { .raw = json_pack("{s:s}", "connectivityType", "ShareableCloud") };
	msapi_item onprem = { .raw = json_pack("{s:s}", "connectivityType", "OnPremisesGateway") };
	msapi_item bare = { 0 };
	assert_false(fabric_connection_on_gateway(&cloud));
	assert_true(fabric_connection_on_gateway(&onprem));
	assert_false(fabric_connection_on_gateway(&bare));
	assert_false(fabric_connection_on_gateway(NULL));
	json_decref(cloud.raw);
	json_decref(onprem.raw);
}

/* ---------- offline: which servers, and the request's gateway fields ---------- */

/* A port whose server carries customProperties powerbi.gateway = value (NULL: none). */
static void port_with(cat_port *p, char *json_buf, size_t size, const char *value)
{
	memset(p, 0, sizeof *p);
	p->name = "plant";
	p->type = "snowflake";
	if (value)
		xsnprintf(json_buf, size, "{\"server\":\"plant\",\"type\":\"snowflake\",\"customProperties\":{\"%s\":\"%s\"}}",
			  PUBLISH_GATEWAY_PROPERTY, value);
	else
		xsnprintf(json_buf, size, "{\"server\":\"plant\",\"type\":\"snowflake\"}");
	p->server_json = json_buf;
}

static void servers_marked_on_premises(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		bool on;
		const char *gw;
	} cases[] = {
		{ "true", true, "" }, { "TRUE", true, "" }, { "yes", true, "" }, { "onPremises", true, "" },
		{ "ONPREMISES", true, "" }, { GW, true, GW }, { "false", false, "" }, { "No", false, "" },
		{ "cloud", false, "" }, { NULL, false, "" },
	};
	char buf[300], gw[PB_PBI_ID_MAX + 1], err[PB_ERR_MAX];
	cat_port p;
	bool on;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		port_with(&p, buf, sizeof buf, cases[i].value);
		assert_int_equal(publish_gateway_marked(&p, &on, gw, err), PB_OK);
		assert_int_equal(on, cases[i].on);
		assert_string_equal(gw, cases[i].gw);
	}
	port_with(&p, buf, sizeof buf, "maybe");
	assert_int_equal(publish_gateway_marked(&p, &on, gw, err), PB_EINVAL);
	assert_non_null(strstr(err, "powerbi.gateway"));
	assert_non_null(strstr(err, "\"maybe\""));
}

/* publish_gateway_read of body (JSON text) for a port marked value; rc, and the fields in *g. */
static int read_body(const char *value, const char *body, publish_gateway_req *g, char **sealed, char *err)
{
	static char buf[300];
	static pb_config cfg;
	cat_port p;
	if (!cfg.encryption_keys)
		assert_int_equal(pb_keyring_parse("7777777777777777777777777777777777777777777777777777777777777777",
						  &cfg.encryption_keys, err), PB_OK);
	port_with(&p, buf, sizeof buf, value);
	json_t *b = json_loads(body, 0, NULL);
	assert_non_null(b);
	*sealed = NULL;
	int rc = publish_gateway_read(&cfg, &p, b, g, sealed, err);
	json_decref(b);
	return rc;
}

static void gateway_request_fields(void **state)
{
	(void)state;
	publish_gateway_req g;
	char *sealed = NULL, err[PB_ERR_MAX];
	/* on premises, nothing named: the job (or the request check) chooses */
	assert_int_equal(read_body("true", "{}", &g, &sealed, err), PB_OK);
	assert_true(g.on);
	assert_true(json_is_true(json_object_get(g.fields, "gateway")));
	assert_null(json_object_get(g.fields, "gateway_id"));
	assert_true(json_is_false(json_object_get(g.fields, "gateway_create")));
	assert_null(sealed);
	publish_gateway_req_release(&g);
	/* the gateway the property names is the default; the request's wins */
	assert_int_equal(read_body(GW, "{}", &g, &sealed, err), PB_OK);
	assert_string_equal(json_string_value(json_object_get(g.fields, "gateway_id")), GW);
	publish_gateway_req_release(&g);
	assert_int_equal(read_body(GW, "{\"gateway_id\":\"" GW_SMALL "\",\"gateway_datasource_id\":\"" DS_SF "\"}", &g,
				   &sealed, err), PB_OK);
	assert_string_equal(json_string_value(json_object_get(g.fields, "gateway_id")), GW_SMALL);
	assert_string_equal(json_string_value(json_object_get(g.fields, "gateway_datasource_id")), DS_SF);
	publish_gateway_req_release(&g);
	/* credentials for a new data source: sealed, the kind kept in the input */
	assert_int_equal(read_body("true", "{\"connection\":{\"credential_type\":\"windows\",\"username\":\"PLANT\\\\svc\","
				   "\"password\":\"w1n-s3cret\"}}", &g, &sealed, err), PB_OK);
	assert_non_null(sealed);
	assert_null(strstr(sealed, "w1n-s3cret"));
	assert_true(json_is_true(json_object_get(g.fields, "gateway_create")));
	assert_string_equal(json_string_value(json_object_get(g.fields, "credential_type")), "windows");
	char *text = json_dumps(g.fields, 0);
	assert_null(strstr(text, "w1n-s3cret"));
	free(text);
	free(sealed);
	publish_gateway_req_release(&g);
	/* refusals, each naming the field */
	static const struct {
		const char *value, *body, *names;
	} bad[] = {
		{ "true", "{\"connection_id\":\"" DS_SF "\"}", "connection_id" },
		{ "true", "{\"gateway_id\":\"gw-1\"}", "gateway_id" },
		{ "true", "{\"gateway_datasource_id\":7}", "gateway_datasource_id" },
		{ "true", "{\"gateway_datasource_id\":\"" DS_SF "\",\"connection\":{\"credential_type\":\"token\","
			  "\"token\":\"t\"}}", "not both" },
		{ "true", "{\"connection\":{\"credential_type\":\"service_principal\"}}", "credential_type" },
		{ "true", "{\"connection\":{\"credential_type\":\"basic\",\"username\":\"u\"}}", "connection.password" },
		{ "true", "{\"connection\":{\"credential_type\":\"token\",\"token\":\"t\",\"extra\":1}}", "extra" },
		{ "true", "{\"connection\":{\"credential_type\":\"basic\",\"username\":\"u\",\"password\":\"a\\nb\"}}",
		  "connection.password" },
		{ NULL, "{\"gateway_id\":\"" GW "\"}", "not marked on-premises" },
		{ "false", "{\"gateway_datasource_id\":\"" DS_SF "\"}", "not marked on-premises" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(read_body(bad[i].value, bad[i].body, &g, &sealed, err), PB_EINVAL);
		if (!strstr(err, bad[i].names))
			fail_msg("%s: \"%s\" not in: %s", bad[i].body, bad[i].names, err);
		free(sealed);
		publish_gateway_req_release(&g);
	}
	/* a cloud port without gateway fields: nothing for the gateway path */
	assert_int_equal(read_body(NULL, "{\"connection_id\":\"" DS_SF "\"}", &g, &sealed, err), PB_OK);
	assert_false(g.on);
	assert_null(g.fields);
}

/* ---------- against the emulator ---------- */

/* A client acting as service principal id (secret) of the fixture's tenant. */
static void sp_client(msapi *c, const char *id, const char *secret)
{
	char err[PB_ERR_MAX];
	msapi entra;
	entra_token t;
	entra_app app = { TENANT, id, secret };
	msapi_init(&entra, tu_emu.http, &tu_emu.cfg);
	msapi_init(c, tu_emu.http, &tu_emu.cfg);
	c->retry_base_ms = 10;
	assert_int_equal(entra_client_credentials(&entra, &app, ENTRA_SCOPE_POWERBI_DEFAULT, &t, err), PB_OK);
	assert_int_equal(msapi_set_token(c, t.access_token, err), PB_OK);
	entra_token_release(&t);
	msapi_release(&entra);
}

/* The fixture's three identities: the gateway's admin, a user of its Snowflake data source, and
 * a service principal without any right on it. */
struct who {
	msapi admin, user, nobody;
};

/* Loads the fixture into the emulator first: the three are its service principals. */
static void who_open(struct who *w)
{
	tu_need_emu();
	assert_int_equal(emu_load(&tu_emu, FIXTURE), 200);
	sp_client(&w->admin, ADMIN_SP, "gw-admin-secret");
	sp_client(&w->user, USER_SP, "gw-user-secret");
	sp_client(&w->nobody, NOBODY_SP, "gw-nobody-secret");
}

static void who_release(struct who *w)
{
	msapi_release(&w->admin);
	msapi_release(&w->user);
	msapi_release(&w->nobody);
}

static const gateway *gateway_in(const gateways *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].id, id))
			return &l->v[i];
	return NULL;
}

static const gateway_source *source_in(const gateway_sources *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].id && !strcmp(l->v[i].id, id))
			return &l->v[i];
	return NULL;
}

/* The emulator's record of the gateway data source id (its credential user and secret hash);
 * new reference, NULL when gone. */
static json_t *emu_source(const char *id)
{
	char *text = NULL;
	assert_int_equal(emu_ctl(&tu_emu, "GET", "state?sections=connections", NULL, &text), 200);
	json_t *st = json_loads(text, 0, NULL), *found = NULL;
	free(text);
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(st, "connections"), i, c)
		if (!strcmp(json_string_value(json_object_get(c, "id")), id))
			found = json_incref(c);
	json_decref(st);
	return found;
}

static long emu_counter(const char *name)
{
	char *text = NULL;
	assert_int_equal(emu_ctl(&tu_emu, "GET", "state?sections=counters", NULL, &text), 200);
	json_t *st = json_loads(text, 0, NULL);
	free(text);
	long n = (long)json_integer_value(json_object_get(json_object_get(st, "counters"), name));
	json_decref(st);
	return n;
}

static void lists_and_who_sees_what(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	struct who w;
	who_open(&w);
	msapi *admin = &w.admin, *user = &w.user, *nobody = &w.nobody;
	gateways gws = { 0 };
	assert_int_equal(gateway_list(admin, &gws, err), PB_OK);
	assert_int_equal(gws.n, 2);
	const gateway *g = gateway_in(&gws, GW);
	assert_non_null(g);
	assert_string_equal(g->name, "Plant gateway");
	assert_string_equal(g->type, "Resource");
	assert_string_equal(g->exponent, "AQAB");
	assert_non_null(g->modulus);
	gateway one = { 0 };
	assert_int_equal(gateway_get(admin, GW, &one, err), PB_OK);
	assert_string_equal(one.modulus, g->modulus);
	gateway_release(&one);
	gateways_release(&gws);
	/* the data sources, described as Fabric describes connections */
	gateway_sources srcs = { 0 };
	assert_int_equal(gateway_list_sources(admin, GW, &srcs, err), PB_OK);
	assert_int_equal(srcs.n, 3);
	/* details that say nothing: no type, no path, so it matches nothing */
	const gateway_source *bare = source_in(&srcs, DS_BARE);
	assert_string_equal(bare->datasource_type, "Extension");
	assert_null(bare->type);
	assert_null(bare->path);
	const gateway_source *sf = source_in(&srcs, DS_SF), *sql = source_in(&srcs, DS_SQL);
	assert_string_equal(sf->type, "Snowflake");
	assert_string_equal(sf->path, "plant.snowflakecomputing.com;PLANT_WH");
	assert_string_equal(sf->datasource_type, "Extension");
	assert_string_equal(sf->gateway_id, GW);
	assert_string_equal(sql->type, "SQL");
	assert_string_equal(sql->path, "sql01.plant.local;mes");
	assert_string_equal(sql->credential_type, "Windows");
	gateway_sources_release(&srcs);
	/* a data source user: no gateway of their own, 401 on the admin calls, the source via Fabric */
	assert_int_equal(gateway_list(user, &gws, err), PB_OK);
	assert_int_equal(gws.n, 0);
	assert_int_not_equal(gateway_list_sources(user, GW, &srcs, err), PB_OK);
	assert_int_equal(user->last.failure, MSAPI_FORBIDDEN);
	assert_int_equal(gateway_list_connections(user, &srcs, err), PB_OK);
	assert_int_equal(srcs.n, 1);
	assert_string_equal(srcs.v[0].id, DS_SF);
	assert_string_equal(srcs.v[0].gateway_id, GW);
	assert_string_equal(srcs.v[0].type, "Snowflake");
	assert_string_equal(srcs.v[0].path, "plant.snowflakecomputing.com;PLANT_WH");
	assert_string_equal(srcs.v[0].name, "Plant Snowflake");
	gateway_sources_release(&srcs);
	/* nobody: the gateway does not exist for them */
	assert_int_not_equal(gateway_get(nobody, GW, &one, err), PB_OK);
	assert_int_equal(nobody->last.failure, MSAPI_NOT_FOUND);
	assert_int_equal(gateway_list_connections(nobody, &srcs, err), PB_OK);
	assert_int_equal(srcs.n, 0);
	who_release(&w);
}

/* Creates a data source on gateway gid as admin with req's credentials; the emulator's record. */
static int create_on(msapi *c, const char *gid, gateway_source_req *req, gateway_source *out, char *err)
{
	gateway g = { 0 };
	int rc = gateway_get(c, gid, &g, err);
	if (!rc) {
		req->gw = &g;
		rc = gateway_create_source(c, req, out, err);
		req->gw = NULL;
	}
	gateway_release(&g);
	return rc;
}

static void credentials_round_trip(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], hex[PB_SHA256_HEX_LEN + 1];
	struct who w;
	who_open(&w);
	msapi *admin = &w.admin, *user = &w.user;
	gateway_source made = { 0 };
	/* a built-in type: connectionDetails {server, database} */
	gateway_source_req req = { .name = "Plant orders", .type = "PostgreSQL", .path = "pg01.plant.local;orders",
				   .cred = GATEWAY_CRED_BASIC, .username = "svc_pg", .password = "Pg-s3cret" };
	assert_int_equal(create_on(admin, GW, &req, &made, err), PB_OK);
	assert_string_equal(made.type, "PostgreSQL");
	assert_string_equal(made.path, "pg01.plant.local;orders");
	assert_string_equal(made.datasource_type, "PostgreSql");
	assert_string_equal(made.gateway_id, GW);
	json_t *rec = emu_source(made.id);
	assert_non_null(rec);
	assert_string_equal(json_string_value(json_object_get(rec, "credential_user")), "svc_pg");
	pb_sha256_hex("Pg-s3cret", 9, hex);
	assert_string_equal(json_string_value(json_object_get(rec, "credential_sha256")), hex);
	assert_string_equal(json_string_value(json_object_get(rec, "credentialType")), "Basic");
	json_decref(rec);
	gateway_source_release(&made);
	/* an Extension type with a key, on the 1024-bit gateway */
	gateway_source_req key = { .name = "Lake", .type = "Databricks", .path = "adb-1.azuredatabricks.net;/sql/1.0/x",
				   .cred = GATEWAY_CRED_KEY, .key = "dapi-key-value" };
	assert_int_equal(create_on(admin, GW_SMALL, &key, &made, err), PB_OK);
	assert_string_equal(made.datasource_type, "Extension");
	assert_string_equal(made.type, "Databricks");
	assert_string_equal(made.path, "adb-1.azuredatabricks.net;/sql/1.0/x");
	rec = emu_source(made.id);
	pb_sha256_hex("dapi-key-value", 14, hex);
	assert_string_equal(json_string_value(json_object_get(rec, "credential_sha256")), hex);
	assert_string_equal(json_string_value(json_object_get(rec, "credentialType")), "Key");
	json_decref(rec);
	gateway_source_release(&made);
	/* the data source refuses the password: the credentials were rejected */
	gateway_source_req wrong = { .name = "Wrong", .type = "SQL", .path = "sql02.plant.local;mes",
				     .cred = GATEWAY_CRED_WINDOWS, .username = "PLANT\\svc", .password = "wrong-password" };
	assert_int_not_equal(create_on(admin, GW, &wrong, &made, err), PB_OK);
	assert_int_equal(admin->last.failure, MSAPI_BAD_CREDENTIALS);
	assert_non_null(strstr(err, "could not sign in to the data source"));
	/* the same name again */
	assert_int_not_equal(create_on(admin, GW, &req, &made, err), PB_OK);
	assert_int_equal(admin->last.status, 409);
	/* only admins add data sources (the user cannot even read the key) */
	assert_int_not_equal(create_on(user, GW, &req, &made, err), PB_OK);
	assert_int_equal(user->last.failure, MSAPI_FORBIDDEN);
	/* incomplete credentials never leave pbiport */
	gateway g = { 0 };
	assert_int_equal(gateway_get(admin, GW, &g, err), PB_OK);
	gateway_source_req none = { .gw = &g, .name = "None", .type = "SQL", .path = "a;b", .cred = GATEWAY_CRED_KEY };
	long before = emu_counter("gateway_datasources_created");
	assert_int_equal(gateway_create_source(admin, &none, &made, err), PB_EINVAL);
	assert_int_equal(emu_counter("gateway_datasources_created"), before);
	/* the answer to a create is lost: the data source of that name is found, none made twice */
	char fault[300];
	xsnprintf(fault, sizeof fault, "{\"path_prefix\": \"/powerbi/v1.0/myorg/gateways/%s/datasources\", \"method\": "
		  "\"POST\", \"drop_connections\": 1, \"drop_after\": true}", GW);
	tu_fault(fault);
	gateway_source_req dropped = { .gw = &g, .name = "Dropped", .type = "SQL", .path = "sql03.plant.local;mes",
				       .cred = GATEWAY_CRED_BASIC, .username = "u", .password = "p" };
	assert_int_equal(gateway_create_source(admin, &dropped, &made, err), PB_OK);
	assert_string_equal(made.name, "Dropped");
	assert_int_equal(emu_counter("gateway_datasources_created"), before + 1);
	tu_no_faults();
	/* delete, twice (gone counts as deleted) */
	assert_int_equal(gateway_delete_source(admin, GW, made.id, err), PB_OK);
	assert_null(emu_source(made.id));
	assert_int_equal(gateway_delete_source(admin, GW, made.id, err), PB_OK);
	gateway_source_release(&made);
	gateway_release(&g);
	who_release(&w);
}

static void discover_and_bind(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	struct who w;
	who_open(&w);
	msapi *admin = &w.admin, *user = &w.user, *nobody = &w.nobody;
	gateways offered = { 0 };
	assert_int_equal(gateway_discover(admin, WS, MODEL_ADMIN, &offered, err), PB_OK);
	assert_int_equal(offered.n, 1);
	assert_string_equal(offered.v[0].id, GW);
	gateways_release(&offered);
	/* the wrong data source for the model, then the right one, twice (repeatable) */
	const char *sql = DS_SQL, *sf = DS_SF;
	assert_int_not_equal(gateway_bind(admin, WS, MODEL_ADMIN, GW, &sql, 1, err), PB_OK);
	assert_string_equal(admin->last.code, "DMTS_CanNotFindMatchingDatasourceInGatewayError");
	assert_int_equal(gateway_bind(admin, WS, MODEL_ADMIN, GW, &sf, 1, err), PB_OK);
	assert_int_equal(gateway_bind(admin, WS, MODEL_ADMIN, GW, NULL, 0, err), PB_OK);
	/* a data source user binds their own model; someone without rights cannot */
	assert_int_equal(gateway_bind(user, WS, MODEL_USER, GW, &sf, 1, err), PB_OK);
	assert_int_equal(gateway_discover(nobody, WS, MODEL_NOBODY, &offered, err), PB_OK);
	assert_int_equal(offered.n, 0);
	assert_int_not_equal(gateway_bind(nobody, WS, MODEL_NOBODY, GW, &sf, 1, err), PB_OK);
	assert_int_equal(nobody->last.failure, MSAPI_FORBIDDEN);
	assert_int_equal(emu_counter("gateway_bindings"), 3);
	who_release(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(encryption_round_trip_offline),
		cmocka_unit_test(gateway_failures_are_classified),
		cmocka_unit_test(servers_marked_on_premises),
		cmocka_unit_test(gateway_request_fields),
		cmocka_unit_test(lists_and_who_sees_what),
		cmocka_unit_test(credentials_round_trip),
		cmocka_unit_test(discover_and_bind),
	};
	return cmocka_run_group_tests(tests, NULL, tu_emu_teardown);
}
