#include "msapi/oidc.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/json_body.h"
#include "runtime/jwt.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

int entra_oidc_config_url(const msapi *c, const char *tenant, char **url, char *err)
{
	char *path = NULL;
	sbuf sb;
	*url = NULL;
	int rc = msapi_path(&path, err, "/%s/v2.0/.well-known/openid-configuration", tenant);
	if (rc)
		return rc;
	sbuf_init(&sb, PB_HTTP_URL_MAX);
	if (sbuf_adds(&sb, msapi_base(c, MSAPI_ENTRA)) || sbuf_adds(&sb, path))
		rc = pb_err(err, PB_ELIMIT, "the OpenID configuration URL is too long");
	else if (!(*url = sbuf_detach(&sb, NULL)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	sbuf_release(&sb);
	free(path);
	return rc;
}

/* GETs url (absolute, or a path under Entra's base) as compact JSON text. */
static int get_doc(msapi *c, const char *url, const char *what, char **out, json_t **doc, char *err)
{
	msapi_reply r = { 0 };
	msapi_call call = { .svc = MSAPI_ENTRA, .method = "GET", .url = url, .idempotent = true, .no_auth = true,
			    .what = what };
	*out = NULL;
	*doc = NULL;
	int rc = msapi_do(c, &call, &r, err);
	if (!rc && !json_is_object(r.json))
		rc = pb_err(err, PB_EUPSTREAM, "Entra answered %s with something that is not a JSON object", what);
	if (!rc && !(*out = json_dumps(r.json, JSON_COMPACT)))
		rc = pb_err(err, PB_ENOMEM, "out of memory");
	if (!rc && strlen(*out) > PB_OIDC_DOC_MAX)
		rc = pb_err(err, PB_EUPSTREAM, "Entra answered %s with more than %u bytes", what, PB_OIDC_DOC_MAX);
	if (!rc) {
		*doc = json_incref(r.json);
	} else {
		free(*out);
		*out = NULL;
	}
	msapi_reply_release(&r);
	return rc;
}

/* The configuration's checks: issuer, an https jwks_uri on an allowed origin, RS256 offered. */
static int check_metadata(const msapi *c, const json_t *m, char *err)
{
	const char *iss = json_string_value(json_object_get(m, "issuer"));
	const char *jwks = json_string_value(json_object_get(m, "jwks_uri"));
	const json_t *algs = json_object_get(m, "id_token_signing_alg_values_supported");
	if (!iss || strncmp(iss, "https://", 8))
		return pb_err(err, PB_EUPSTREAM, "Entra's OpenID configuration has no https issuer");
	if (!jwks || strncmp(jwks, "https://", 8) || !msapi_url_allowed(c, jwks))
		return pb_err(err, PB_EUPSTREAM, "Entra's OpenID configuration names its keys (jwks_uri) at an address that "
			      "is not on PBIPORT_ENTRA_URL's host");
	if (algs) {
		size_t i;
		const json_t *a;
		bool rs256 = false;
		json_array_foreach(algs, i, a)
			rs256 = rs256 || (json_is_string(a) && !strcmp(json_string_value(a), "RS256"));
		if (!rs256)
			return pb_err(err, PB_EUPSTREAM, "Entra's OpenID configuration does not offer RS256 ID tokens");
	}
	return PB_OK;
}

int entra_oidc_fetch(msapi *c, const char *tenant, char **metadata, char **jwks, char *err)
{
	json_t *m = NULL, *k = NULL;
	char *path = NULL;
	*metadata = *jwks = NULL;
	int rc = msapi_path(&path, err, "/%s/v2.0/.well-known/openid-configuration", tenant);
	if (!rc)
		rc = get_doc(c, path, "reading the tenant's OpenID configuration", metadata, &m, err);
	if (!rc)
		rc = check_metadata(c, m, err);
	if (!rc)
		rc = get_doc(c, json_string_value(json_object_get(m, "jwks_uri")), "reading the tenant's signing keys", jwks,
			     &k, err);
	if (!rc && !json_is_array(json_object_get(k, "keys")))
		rc = pb_err(err, PB_EUPSTREAM, "Entra's key set has no \"keys\" array");
	if (rc) {
		free(*metadata);
		free(*jwks);
		*metadata = *jwks = NULL;
	}
	json_decref(m);
	json_decref(k);
	free(path);
	return rc;
}

void entra_id_claims_release(entra_id_claims *c)
{
	free_each(c->preferred_username, c->email, c->name);
	memset(c, 0, sizeof *c);
}

/* A GUID claim, lower-cased, into out. */
static int guid_claim(const pb_jwt *t, const char *name, char out[ENTRA_GUID_BUF], char *err)
{
	const char *v = pb_jwt_claim_str(t, name);
	if (!v || !str_is_guid(v))
		return pb_err(err, PB_EINVAL, "the token has no %s claim (a GUID)", name);
	for (size_t i = 0; i < ENTRA_GUID_BUF; i++)
		out[i] = (char)(v[i] >= 'A' && v[i] <= 'Z' ? v[i] + 32 : v[i]);
	return PB_OK;
}

/* The issuer a token of tid must carry: the configuration's, with "{tenantid}" filled in. */
static int expected_issuer(const char *template, const char *tid, char **out, char *err)
{
	static const char hole[] = "{tenantid}";
	const char *at = strstr(template, hole);
	sbuf sb;
	sbuf_init(&sb, 1024);
	if (at ? sbuf_add(&sb, template, (size_t)(at - template)) || sbuf_adds(&sb, tid) ||
		     sbuf_adds(&sb, at + sizeof hole - 1)
	       : sbuf_adds(&sb, template)) {
		sbuf_release(&sb);
		return pb_err(err, PB_EUPSTREAM, "Entra's issuer is too long");
	}
	*out = sbuf_detach(&sb, NULL);
	return *out ? PB_OK : pb_err(err, PB_ENOMEM, "out of memory");
}

static int parse_doc(const char *text, const char *what, json_t **out, char *err)
{
	char why[PB_ERR_MAX];
	if (!text || json_body_parse(text, strlen(text), 0, out, why))
		return pb_err(err, PB_EIO, "the cached %s is not JSON", what);
	return PB_OK;
}

/* Copies an optional string claim. */
static int opt_claim(const pb_jwt *t, const char *name, char **out, char *err)
{
	const char *v = pb_jwt_claim_str(t, name);
	*out = NULL;
	if (v && *v && !(*out = xstrdup(v)))
		return pb_err(err, PB_ENOMEM, "out of memory");
	return PB_OK;
}

int entra_id_token_check(const char *id_token, const char *metadata, const char *jwks, const entra_id_expect *e,
			 entra_id_claims *out, char *err)
{
	pb_jwt t = { 0 };
	json_t *m = NULL, *k = NULL;
	char *issuer = NULL, seg[ENTRA_GUID_BUF + 2];
	memset(out, 0, sizeof *out);
	int rc = parse_doc(metadata, "OpenID configuration", &m, err);
	if (!rc)
		rc = parse_doc(jwks, "key set", &k, err);
	if (!rc)
		rc = pb_jwt_parse(id_token, &t, err);
	/* the signature first: nothing in an unverified token is believed */
	if (!rc)
		rc = pb_jwt_verify_rs256(&t, k, err);
	if (!rc)
		rc = guid_claim(&t, "tid", out->tenant_id, err);
	if (!rc)
		rc = expected_issuer(json_string_value(json_object_get(m, "issuer")), out->tenant_id, &issuer, err);
	if (!rc) {
		pb_jwt_expect x = { .issuer = issuer, .audience = e->client_id, .nonce = e->nonce, .now_s = e->now_s,
				    .skew_s = PB_JWT_SKEW_S };
		rc = pb_jwt_check_claims(&t, &x, err);
	}
	/* the tenant the token is about is the issuer's, and the configured one when that is an id */
	if (!rc && (xsnprintf(seg, sizeof seg, "/%s/", out->tenant_id) || !strcasestr(issuer, seg)))
		rc = pb_err(err, PB_EINVAL, "the token's tenant (tid) is not its issuer's");
	if (!rc && e->tenant && str_is_guid(e->tenant) && !str_ieq(e->tenant, out->tenant_id))
		rc = pb_err(err, PB_EINVAL, "the token is for the tenant %s, not the configured %s", out->tenant_id, e->tenant);
	if (!rc)
		rc = guid_claim(&t, "oid", out->object_id, err);
	if (!rc && !(rc = opt_claim(&t, "preferred_username", &out->preferred_username, err)) &&
	    !(rc = opt_claim(&t, "email", &out->email, err)))
		rc = opt_claim(&t, "name", &out->name, err);
	if (rc)
		entra_id_claims_release(out);
	free(issuer);
	json_decref(m);
	json_decref(k);
	pb_jwt_release(&t);
	return rc;
}
