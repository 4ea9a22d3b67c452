/* On-premises data gateways (Power BI REST, and Fabric's list of gateway connections). See
 * msapi/gateways.h. */
#include "msapi/gateways.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/crypto.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

/* Power BI's built-in data source types (datasourceType) with the Fabric connection type of the
 * same connector and the connectionDetails keys its path is made of (Gateways - Get Datasources:
 * "Sql" with {"server","database"}; Datasets - Get Datasources: the Oracle example has "server"
 * only). Every other connector is an "Extension" data source. */
static const struct builtin {
	const char *type;
	const char *ds_type;
	const char *keys[2];
} builtins[] = {
	{ "SQL", "Sql", { "server", "database" } },
	{ "PostgreSQL", "PostgreSql", { "server", "database" } },
	{ "MySQL", "MySql", { "server", "database" } },
	{ "Oracle", "Oracle", { "server", NULL } },
	{ "AnalysisServices", "AnalysisServices", { "server", "database" } },
};

static const struct builtin *builtin_of(const char *type, bool by_ds_type)
{
	for (size_t i = 0; type && i < sizeof builtins / sizeof builtins[0]; i++)
		if (str_ieq(type, by_ds_type ? builtins[i].ds_type : builtins[i].type))
			return &builtins[i];
	return NULL;
}

void gateway_release(gateway *g)
{
	if (!g)
		return;
	free_each(g->id, g->name, g->type, g->status, g->exponent, g->modulus);
	memset(g, 0, sizeof *g);
}

void gateways_release(gateways *l)
{
	MSAPI_LIST_RELEASE(l, gateway_release);
}

void gateway_source_release(gateway_source *s)
{
	if (!s)
		return;
	free_each(s->id, s->gateway_id, s->name, s->datasource_type, s->type, s->path, s->credential_type);
	memset(s, 0, sizeof *s);
}

void gateway_sources_release(gateway_sources *l)
{
	MSAPI_LIST_RELEASE(l, gateway_source_release);
}

/* *dst = a copy of v (NULL stays NULL); false only when out of memory. */
static bool dup_or_null(char **dst, const char *v)
{
	*dst = v ? xstrdup(v) : NULL;
	return !v || *dst;
}

/* *dst = a copy of o[key] when it is a string (else NULL); false only when out of memory. */
static bool dup_str(char **dst, const json_t *o, const char *key)
{
	return dup_or_null(dst, json_string_value(json_object_get(o, key)));
}

static int gateway_from_json(const json_t *o, gateway *g, char *err)
{
	const json_t *key = json_object_get(o, "publicKey");
	memset(g, 0, sizeof *g);
	if (!json_is_object(o) || !json_string_value(json_object_get(o, "id")))
		return pb_err(err, PB_EIO, "Power BI described a gateway without an id");
	if (!dup_str(&g->id, o, "id") || !dup_str(&g->name, o, "name") || !dup_str(&g->type, o, "type") ||
	    !dup_str(&g->status, o, "gatewayStatus") || !dup_str(&g->exponent, key, "exponent") ||
	    !dup_str(&g->modulus, key, "modulus")) {
		gateway_release(g);
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	return PB_OK;
}

/* The gateways of a Power BI list at path (all pages). */
static int gateways_at(msapi *c, const char *path, const char *what, gateways *out, char *err)
{
	json_t *items = NULL;
	out->v = NULL;
	out->n = 0;
	int rc = msapi_get_all(c, MSAPI_POWERBI, path, what, 0, &items, err);
	size_t n = json_array_size(items);
	if (!rc && n && !(out->v = calloc(n, sizeof *out->v)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < n; i++)
		if (!(rc = gateway_from_json(json_array_get(items, i), &out->v[out->n], err)))
			out->n++;
	if (rc)
		gateways_release(out);
	json_decref(items);
	return rc;
}

int gateway_list(msapi *c, gateways *out, char *err)
{
	return gateways_at(c, "/v1.0/myorg/gateways", "list the gateways", out, err);
}

int gateway_get(msapi *c, const char *id, gateway *out, char *err)
{
	char *path = NULL;
	msapi_reply r = { 0 };
	memset(out, 0, sizeof *out);
	int rc = msapi_path(&path, err, "/v1.0/myorg/gateways/%s", id);
	if (!rc) {
		msapi_call call = { .svc = MSAPI_POWERBI, .method = "GET", .url = path, .idempotent = true,
				    .what = "read the gateway" };
		if (!(rc = msapi_do(c, &call, &r, err)))
			rc = gateway_from_json(r.json, out, err);
	}
	free(path);
	msapi_reply_release(&r);
	return rc;
}

int gateway_discover(msapi *c, const char *group, const char *dataset, gateways *out, char *err)
{
	char *path = NULL;
	out->v = NULL;
	out->n = 0;
	int rc = msapi_path(&path, err, "/v1.0/myorg/groups/%s/datasets/%s/Default.DiscoverGateways", group, dataset);
	if (!rc)
		rc = gateways_at(c, path, "discover the gateways of the semantic model", out, err);
	free(path);
	return rc;
}

/* ---- data sources ---- */

/* s->type and s->path from Power BI's datasourceType and connectionDetails (a JSON text); details
 * that do not say make a NULL path (matching nothing). False only when out of memory. */
static bool describe_source(gateway_source *s, const char *ds_type, const char *details_text)
{
	json_t *d = details_text ? json_loads(details_text, 0, NULL) : NULL;
	const struct builtin *b = builtin_of(ds_type, true);
	const char *type = ds_type, *p = NULL;
	sbuf path;
	sbuf_init(&path, PB_HTTP_URL_MAX);
	if (b) {
		bool fits = true;
		for (size_t k = 0; k < 2 && b->keys[k]; k++) {
			const char *v = json_string_value(json_object_get(d, b->keys[k]));
			if (v && ((k && sbuf_addc(&path, ';')) || sbuf_adds(&path, v)))
				fits = false;
		}
		type = b->type;
		p = fits && path.len ? sbuf_str(&path) : NULL;
	} else if (ds_type && str_ieq(ds_type, "Extension")) {
		type = json_string_value(json_object_get(d, "extensionDataSourceKind"));
		p = json_string_value(json_object_get(d, "extensionDataSourcePath"));
	} else {
		/* another kind of source: its own type, and the first of the usual details */
		static const char *const keys[] = { "server", "url", "path", NULL };
		for (size_t k = 0; keys[k] && !p; k++)
			p = json_string_value(json_object_get(d, keys[k]));
	}
	bool ok = dup_or_null(&s->type, type) && dup_or_null(&s->path, p);
	sbuf_release(&path);
	json_decref(d);
	return ok;
}

static int source_from_powerbi(const json_t *o, gateway_source *s, char *err)
{
	memset(s, 0, sizeof *s);
	if (!json_is_object(o) || !json_string_value(json_object_get(o, "id")))
		return pb_err(err, PB_EIO, "Power BI described a gateway data source without an id");
	if (!dup_str(&s->id, o, "id") || !dup_str(&s->gateway_id, o, "gatewayId") ||
	    !dup_str(&s->name, o, "datasourceName") || !dup_str(&s->datasource_type, o, "datasourceType") ||
	    !dup_str(&s->credential_type, o, "credentialType") ||
	    !describe_source(s, s->datasource_type, json_string_value(json_object_get(o, "connectionDetails")))) {
		gateway_source_release(s);
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	return PB_OK;
}

/* Fabric's connectivity types of gateway connections (Connections - List Connections:
 * ConnectivityType); the personal gateway's cannot serve a shared model, and is left out. */
static bool on_prem_gateway(const char *connectivity)
{
	return connectivity && !strcmp(connectivity, "OnPremisesGateway");
}

bool fabric_connection_on_gateway(const msapi_item *conn)
{
	const char *ct = json_string_value(json_object_get(conn ? conn->raw : NULL, "connectivityType"));
	return ct && (on_prem_gateway(ct) || !strcmp(ct, "OnPremisesGatewayPersonal"));
}

static int source_from_fabric(const json_t *o, gateway_source *s, char *err)
{
	const json_t *cd = json_object_get(o, "connectionDetails"), *cred = json_object_get(o, "credentialDetails");
	memset(s, 0, sizeof *s);
	if (!dup_str(&s->id, o, "id") || !dup_str(&s->gateway_id, o, "gatewayId") || !dup_str(&s->name, o, "displayName") ||
	    !dup_str(&s->type, cd, "type") || !dup_str(&s->path, cd, "path") ||
	    !dup_str(&s->credential_type, cred, "credentialType")) {
		gateway_source_release(s);
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	return PB_OK;
}

/* Appends to out the entries of items that keep (NULL: all) accepts, converted by conv. */
static int sources_of(const json_t *items, bool (*keep)(const json_t *),
		      int (*conv)(const json_t *, gateway_source *, char *), gateway_sources *out, char *err)
{
	size_t n = json_array_size(items);
	int rc = PB_OK;
	out->v = NULL;
	out->n = 0;
	if (n && !(out->v = calloc(n, sizeof *out->v)))
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < n; i++) {
		const json_t *o = json_array_get(items, i);
		if ((!keep || keep(o)) && !(rc = conv(o, &out->v[out->n], err)))
			out->n++;
	}
	if (rc)
		gateway_sources_release(out);
	return rc;
}

int gateway_list_sources(msapi *c, const char *gateway_id, gateway_sources *out, char *err)
{
	char *path = NULL;
	json_t *items = NULL;
	int rc = msapi_path(&path, err, "/v1.0/myorg/gateways/%s/datasources", gateway_id);
	if (!rc)
		rc = msapi_get_all(c, MSAPI_POWERBI, path, "list the data sources of the gateway", 0, &items, err);
	out->v = NULL;
	out->n = 0;
	if (!rc)
		rc = sources_of(items, NULL, source_from_powerbi, out, err);
	free(path);
	json_decref(items);
	return rc;
}

static bool gateway_connection(const json_t *o)
{
	return on_prem_gateway(json_string_value(json_object_get(o, "connectivityType"))) &&
	       json_string_value(json_object_get(o, "id")) && json_string_value(json_object_get(o, "gatewayId"));
}

int gateway_list_connections(msapi *c, gateway_sources *out, char *err)
{
	json_t *items = NULL;
	int rc = msapi_get_all(c, MSAPI_FABRIC, "/v1/connections", "list connections", 0, &items, err);
	out->v = NULL;
	out->n = 0;
	if (!rc)
		rc = sources_of(items, gateway_connection, source_from_fabric, out, err);
	json_decref(items);
	return rc;
}

/* ---- credentials for the gateway ---- */

#define GW_SEGMENT 85          /* plaintext bytes per RSA-OAEP block of a 1024-bit key */
#define GW_AES_KEY 32
#define GW_MAC_KEY 64
#define GW_IV 16
#define GW_TAG 32

/* A 1024-bit key: each 85-byte segment RSA-OAEP (SHA-1) encrypted, concatenated (PowerBI-CSharp
 * Asymmetric1024KeyEncryptionHelper). */
static int encrypt_segments(EVP_PKEY *key, const unsigned char *plain, size_t len, sbuf *raw, char *err)
{
	for (size_t at = 0; at < len; at += GW_SEGMENT) {
		unsigned char *block = NULL;
		size_t n = 0;
		int rc = pb_rsa_oaep_encrypt(key, "SHA1", plain + at, len - at < GW_SEGMENT ? len - at : GW_SEGMENT, &block,
					     &n, err);
		if (!rc && sbuf_add(raw, block, n))
			rc = pb_err(err, PB_ELIMIT, "the credentials are too long");
		free(block);
		if (rc)
			return rc;
	}
	return PB_OK;
}

/* A larger key: AES-256-CBC + HMAC-SHA256 under ephemeral keys sent with RSA-OAEP (SHA-256)
 * (PowerBI-CSharp AsymmetricHigherKeyEncryptionHelper and AuthenticatedEncryption). Appends the
 * two base64 texts to out. */
static int encrypt_hybrid(EVP_PKEY *key, const unsigned char *plain, size_t len, sbuf *out, char *err)
{
	unsigned char keys[2 + GW_AES_KEY + GW_MAC_KEY], iv[GW_IV], tag[GW_TAG];
	unsigned char *ct = NULL, *enc_keys = NULL, *msg = NULL;
	char *b64 = NULL;
	size_t ctlen = 0, enc_len = 0, msglen = 0;
	int rc;
	keys[0] = 0;   /* KeyLengths.KeyLength32: the AES key */
	keys[1] = 1;   /* KeyLengths.KeyLength64: the HMAC key */
	if ((rc = pb_random_bytes(keys + 2, GW_AES_KEY + GW_MAC_KEY, err)) || (rc = pb_random_bytes(iv, sizeof iv, err)) ||
	    (rc = pb_aes256_cbc_encrypt(keys + 2, iv, plain, len, &ct, &ctlen, err)))
		goto out;
	/* algorithm choices (Aes256CbcPkcs7 = 0, HMACSHA256 = 0), tag, iv, ciphertext */
	msglen = 2 + GW_TAG + GW_IV + ctlen;
	if (!(msg = calloc(1, msglen))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	/* first the data the tag covers: the algorithm choices, the iv, the ciphertext */
	memcpy(msg + 2, iv, GW_IV);
	memcpy(msg + 2 + GW_IV, ct, ctlen);
	if ((rc = pb_hmac_sha256(keys + 2 + GW_AES_KEY, GW_MAC_KEY, msg, 2 + GW_IV + ctlen, tag, err)))
		goto out;
	/* then the tag goes in after the algorithm choices */
	memmove(msg + 2 + GW_TAG, msg + 2, GW_IV + ctlen);
	memcpy(msg + 2, tag, GW_TAG);
	if ((rc = pb_rsa_oaep_encrypt(key, "SHA256", keys, sizeof keys, &enc_keys, &enc_len, err)) ||
	    (rc = pb_b64_encode(enc_keys, enc_len, &b64, err)))
		goto out;
	if (sbuf_adds(out, b64)) {
		rc = pb_err(err, PB_ELIMIT, "the credentials are too long");
		goto out;
	}
	free(b64);
	b64 = NULL;
	if ((rc = pb_b64_encode(msg, msglen, &b64, err)))
		goto out;
	if (sbuf_adds(out, b64))
		rc = pb_err(err, PB_ELIMIT, "the credentials are too long");
out:
	pb_wipe(keys, sizeof keys);
	pb_wipe(iv, sizeof iv);
	free(b64);
	free(enc_keys);
	pb_secret_free(ct, ctlen);
	pb_secret_free(msg, msglen);
	return rc;
}

int gateway_encrypt_credentials(const char *exponent, const char *modulus, const char *plain, size_t len, char **out,
				char *err)
{
	unsigned char *n = NULL, *e = NULL;
	size_t nlen = 0, elen = 0;
	EVP_PKEY *key = NULL;
	sbuf text;
	char sub[PB_ERR_MAX];
	int rc = PB_OK;
	*out = NULL;
	sbuf_init(&text, GATEWAY_CREDENTIALS_MAX);
	if (!exponent || !modulus || pb_b64_decode(modulus, strlen(modulus), &n, &nlen, sub) ||
	    pb_b64_decode(exponent, strlen(exponent), &e, &elen, sub) || pb_rsa_public_key(n, nlen, e, elen, &key, sub)) {
		rc = pb_err(err, PB_EIO, "the gateway's public key is not usable (publicKey exponent and modulus)");
		goto out;
	}
	if (!len) {
		rc = pb_err(err, PB_EINVAL, "there are no credentials to encrypt");
		goto out;
	}
	if (nlen == 128) {
		sbuf raw;
		char *b64 = NULL;
		sbuf_init(&raw, GATEWAY_CREDENTIALS_MAX);
		if (!(rc = encrypt_segments(key, (const unsigned char *)plain, len, &raw, err)) &&
		    !(rc = pb_b64_encode(sbuf_str(&raw), raw.len, &b64, err)) && sbuf_adds(&text, b64))
			rc = pb_err(err, PB_ELIMIT, "the credentials are too long");
		free(b64);
		sbuf_release(&raw);
	} else {
		rc = encrypt_hybrid(key, (const unsigned char *)plain, len, &text, err);
	}
	if (!rc && !(*out = xstrdup(sbuf_str(&text))))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	EVP_PKEY_free(key);
	free(n);
	free(e);
	sbuf_release(&text);
	return rc;
}

/* {"credentialData":[{"name","value"}...]} for r's kind of credentials (new text, secret). */
static char *credentials_text(const gateway_source_req *r, char *err)
{
	json_t *data = NULL;
	switch (r->cred) {
	case GATEWAY_CRED_BASIC:
	case GATEWAY_CRED_WINDOWS:
		if (r->username && r->password)
			data = json_pack("[{s:s, s:s}, {s:s, s:s}]", "name", "username", "value", r->username, "name",
					 "password", "value", r->password);
		break;
	case GATEWAY_CRED_KEY:
		if (r->key)
			data = json_pack("[{s:s, s:s}]", "name", "key", "value", r->key);
		break;
	}
	json_t *doc = data ? json_pack("{s:o}", "credentialData", data) : NULL;
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	if (doc)
		msapi_wipe_json(doc);
	json_decref(doc);
	if (!text)
		pb_err(err, PB_EINVAL, "the data source's credentials are incomplete (or not UTF-8)");
	return text;
}

/* connectionDetails for r: the built-in type's keys, or the Extension's kind and path (new text). */
static char *details_text(const gateway_source_req *r, const char **ds_type)
{
	const struct builtin *b = builtin_of(r->type, false);
	json_t *d = json_object();
	char *text = NULL;
	*ds_type = b ? b->ds_type : "Extension";
	if (!d)
		return NULL;
	if (b) {
		/* "server;database" (a one-key source's path is all server) */
		const char *semi = b->keys[1] ? strchr(r->path, ';') : NULL;
		char *first = semi ? xstrndup(r->path, (size_t)(semi - r->path)) : xstrdup(r->path);
		bool ok = first && !json_object_set_new(d, b->keys[0], json_string(first));
		free(first);
		if (!ok || (semi && json_object_set_new(d, b->keys[1], json_string(semi + 1))))
			goto out;
	} else if (json_object_set_new(d, "extensionDataSourceKind", json_string(r->type)) ||
		   json_object_set_new(d, "extensionDataSourcePath", json_string(r->path))) {
		goto out;
	}
	text = json_dumps(d, JSON_COMPACT);
out:
	json_decref(d);
	return text;
}

/* A data source being created: where, under which name, and where what was found goes. */
struct source_target {
	const char *gw, *name;
	gateway_source *out;
};

/* Whether the gateway has a data source of t's name (ctx), moved into t->out; an msapi_happened_fn,
 * for a create whose outcome is unknown. */
static int find_source(msapi *c, void *ctx, bool *found, char *err)
{
	struct source_target *t = ctx;
	gateway_sources l = { 0 };
	int rc = gateway_list_sources(c, t->gw, &l, err);
	*found = false;
	for (size_t i = 0; !rc && i < l.n && !*found; i++) {
		if (l.v[i].name && !strcmp(l.v[i].name, t->name)) {
			*t->out = l.v[i];
			memset(&l.v[i], 0, sizeof l.v[i]);
			*found = true;
		}
	}
	gateway_sources_release(&l);
	return rc;
}

int gateway_create_source(msapi *c, const gateway_source_req *r, gateway_source *out, char *err)
{
	char *plain = NULL, *enc = NULL, *details = NULL, *path = NULL;
	const char *ds_type = NULL;
	json_t *body = NULL;
	msapi_reply rep = { 0 };
	char what[300];
	int rc = PB_OK;
	memset(out, 0, sizeof *out);
	if (!r->gw || !r->gw->id || !r->name || !*r->name || !r->type || !r->path)
		return pb_err(err, PB_EINVAL, "a gateway data source needs a gateway, a name, a type and a path");
	if (xsnprintf(what, sizeof what, "create data source '%.200s' on the gateway", r->name))
		what[sizeof what - 1] = '\0';
	if (!(plain = credentials_text(r, err))) {
		rc = PB_EINVAL;
		goto out;
	}
	if ((rc = gateway_encrypt_credentials(r->gw->exponent, r->gw->modulus, plain, strlen(plain), &enc, err)) ||
	    (rc = msapi_path(&path, err, "/v1.0/myorg/gateways/%s/datasources", r->gw->id)))
		goto out;
	if (!(details = details_text(r, &ds_type)) ||
	    !(body = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}}", "dataSourceType", ds_type,
			       "connectionDetails", details, "dataSourceName", r->name, "credentialDetails",
			       "credentialType", r->cred == GATEWAY_CRED_KEY ? "Key" :
						 r->cred == GATEWAY_CRED_WINDOWS ? "Windows" : "Basic",
			       "credentials", enc, "encryptedConnection", "Encrypted", "encryptionAlgorithm", "RSA-OAEP",
			       "privacyLevel", r->privacy_level ? r->privacy_level : "Organizational"))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory (or a value is not UTF-8)");
		goto out;
	}
	msapi_call call = { .svc = MSAPI_POWERBI, .method = "POST", .url = path, .json = body, .idempotent = false,
			    .what = what };
	struct source_target made = { r->gw->id, r->name, out };
	bool found = false;
	rc = msapi_post_at_most_once(c, &call, &rep, find_source, &made, "checking whether it was created", &found, err);
	if (!rc && !found)
		rc = source_from_powerbi(rep.json, out, err);
	if (!rc && !out->gateway_id && !(out->gateway_id = xstrdup(r->gw->id)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	if (plain)
		pb_secret_free(plain, strlen(plain));
	free(enc);
	free(details);
	free(path);
	json_decref(body);
	msapi_reply_release(&rep);
	return rc;
}

int gateway_delete_source(msapi *c, const char *gw, const char *id, char *err)
{
	char *path = NULL;
	msapi_reply r = { 0 };
	int rc = msapi_path(&path, err, "/v1.0/myorg/gateways/%s/datasources/%s", gw, id);
	if (!rc) {
		msapi_call call = { .svc = MSAPI_POWERBI, .method = "DELETE", .url = path, .idempotent = true,
				    .what = "delete the data source from the gateway" };
		rc = msapi_do(c, &call, &r, err);
		if (rc && c->last.failure == MSAPI_NOT_FOUND)
			rc = PB_OK;   /* gone already: what was asked for */
	}
	free(path);
	msapi_reply_release(&r);
	return rc;
}

int gateway_bind(msapi *c, const char *group, const char *dataset, const char *gw, const char *const *ids, size_t n,
		 char *err)
{
	char *path = NULL;
	json_t *body = json_pack("{s:s}", "gatewayObjectId", gw ? gw : ""), *list = n ? json_array() : NULL;
	msapi_reply r = { 0 };
	int rc = PB_OK;
	bool ok = body && (!n || list);
	for (size_t i = 0; ok && i < n; i++)
		ok = !json_array_append_new(list, json_string(ids[i]));
	if (ok && list) {
		ok = !json_object_set_new(body, "datasourceObjectIds", list);
		list = NULL;
	}
	if (!ok) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = msapi_path(&path, err, "/v1.0/myorg/groups/%s/datasets/%s/Default.BindToGateway", group, dataset)))
		goto out;
	/* binding to the same gateway data sources again leaves the same state: repeatable */
	msapi_call call = { .svc = MSAPI_POWERBI, .method = "POST", .url = path, .json = body, .idempotent = true,
			    .what = "bind the semantic model to the gateway" };
	rc = msapi_do(c, &call, &r, err);
out:
	json_decref(list);
	json_decref(body);
	free(path);
	msapi_reply_release(&r);
	return rc;
}
