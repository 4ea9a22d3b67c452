/* Unit tests for signing in with Microsoft: runtime/jwt (RS256 signatures against a JWK set, the
 * registered claims), msapi/oidc's ID token check (issuer template, tenant, object id), and the
 * session cookie helpers of runtime/auth. Keys are made here with OpenSSL; tokens are built by hand,
 * including the forged ones an attacker would send (alg none, HS256 with the public key, ...). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "msapi/oidc.h"
#include "runtime/auth.h"
#include "runtime/crypto.h"
#include "runtime/jwt.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

#define TENANT "7e1a0000-0000-4000-8000-000000000001"
#define OTHER_TENANT "7e1a0000-0000-4000-8000-0000000000ff"
#define CLIENT "11111111-aaaa-4000-8000-000000000001"
#define OID "0f0f0f0f-1111-4222-8333-444444444444"
#define ISS "https://login.microsoftonline.com/" TENANT "/v2.0"
#define NOW 1800000000LL

static EVP_PKEY *key, *other_key, *small_key;
static json_t *jwks;

static char *b64url(const void *data, size_t len)
{
	char *out = NULL, err[PB_ERR_MAX];
	assert_int_equal(pb_b64url_encode(data, len, &out, err), PB_OK);
	return out;
}

static char *bn_b64url(EVP_PKEY *k, const char *name)
{
	BIGNUM *bn = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(k, name, &bn), 1);
	unsigned char buf[1024];
	int n = BN_bn2bin(bn, buf);
	BN_free(bn);
	return b64url(buf, (size_t)n);
}

static json_t *jwk_of(EVP_PKEY *k, const char *kid, const char *kty, const char *use)
{
	char *n = bn_b64url(k, OSSL_PKEY_PARAM_RSA_N), *e = bn_b64url(k, OSSL_PKEY_PARAM_RSA_E);
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", kty, "use", use, "kid", kid, "n", n, "e", e);
	free(n);
	free(e);
	return j;
}

static int setup(void **state)
{
	(void)state;
	key = EVP_RSA_gen(2048);
	other_key = EVP_RSA_gen(2048);
	small_key = EVP_RSA_gen(1024);
	assert_non_null(key);
	jwks = json_pack("{s:[o, o, o, o]}", "keys", jwk_of(key, "k1", "RSA", "sig"), jwk_of(small_key, "small", "RSA", "sig"),
			 jwk_of(key, "enc", "RSA", "enc"), jwk_of(key, "ec", "EC", "sig"));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(small_key);
	json_decref(jwks);
	return 0;
}

/* "<b64url(header)>.<b64url(claims)>.<signature>": RS256 with k, or HS256 with secret, or none. */
static char *make_token(const char *header, const char *claims, EVP_PKEY *k, const char *hs256_secret)
{
	char *h = b64url(header, strlen(header)), *c = b64url(claims, strlen(claims)), *sig = NULL;
	sbuf input, out;
	sbuf_init(&input, 1 << 16);
	sbuf_init(&out, 1 << 16);
	assert_int_equal(sbuf_addf(&input, "%s.%s", h, c), 0);
	unsigned char raw[1024];
	size_t len = 0;
	if (k) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		len = sizeof raw;
		assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
		assert_int_equal(EVP_DigestSign(md, raw, &len, (const unsigned char *)input.buf, input.len), 1);
		EVP_MD_CTX_free(md);
	} else if (hs256_secret) {
		unsigned int n = 0;
		HMAC(EVP_sha256(), hs256_secret, (int)strlen(hs256_secret), (const unsigned char *)input.buf, input.len, raw,
		     &n);
		len = n;
	}
	sig = len ? b64url(raw, len) : xstrdup("");
	assert_int_equal(sbuf_addf(&out, "%s.%s", input.buf, sig), 0);
	free(h);
	free(c);
	free(sig);
	sbuf_release(&input);
	return sbuf_detach(&out, NULL);
}

#define HDR "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"kid\":\"k1\"}"

/* The claims of a good ID token, with one member replaced or added by extra (may be ""). */
static char *claims_with(const char *extra)
{
	sbuf sb;
	sbuf_init(&sb, 4096);
	assert_int_equal(sbuf_addf(&sb, "{%s%s\"iss\":\"" ISS "\",\"aud\":\"" CLIENT "\",\"tid\":\"" TENANT "\","
				       "\"oid\":\"" OID "\",\"nonce\":\"n-1\",\"preferred_username\":\"alice@contoso.example\"}",
				   extra, *extra ? "," : ""), 0);
	return sbuf_detach(&sb, NULL);
}

static int check(const char *token, const pb_jwt_expect *e, char *err)
{
	pb_jwt t;
	int rc = pb_jwt_parse(token, &t, err);
	if (!rc)
		rc = pb_jwt_verify_rs256(&t, jwks, err);
	if (!rc)
		rc = pb_jwt_check_claims(&t, e, err);
	pb_jwt_release(&t);
	return rc;
}

static const pb_jwt_expect expect = { .issuer = ISS, .audience = CLIENT, .nonce = "n-1", .now_s = NOW,
				      .skew_s = PB_JWT_SKEW_S };

static void expect_refused(int want, const char *header, const char *claims, EVP_PKEY *k, const char *hs,
			   const char *word)
{
	char err[PB_ERR_MAX];
	char *tok = make_token(header, claims, k, hs);
	int rc = check(tok, &expect, err);
	if (rc != want || !strstr(err, word))
		fail_msg("expected %d with '%s', got %d: %s", want, word, rc, err);
	free(tok);
}

#define TIMES "\"iat\":1800000000,\"nbf\":1800000000,\"exp\":1800003600"

static void good_token_passes(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], *claims = claims_with(TIMES), *tok = make_token(HDR, claims, key, NULL);
	assert_int_equal(check(tok, &expect, err), PB_OK);
	/* within the allowed clock skew either way */
	pb_jwt_expect late = expect, early = expect;
	late.now_s = 1800003600LL + PB_JWT_SKEW_S - 1;
	early.now_s = 1800000000LL - PB_JWT_SKEW_S + 1;
	assert_int_equal(check(tok, &late, err), PB_OK);
	assert_int_equal(check(tok, &early, err), PB_OK);
	/* the nonce is not checked when none is expected */
	pb_jwt_expect any = expect;
	any.nonce = NULL;
	assert_int_equal(check(tok, &any, err), PB_OK);
	free(tok);
	free(claims);
}

static void signature_and_algorithm_refused(void **state)
{
	(void)state;
	char *claims = claims_with(TIMES);
	/* signed by a key the set does not hold under that id */
	expect_refused(PB_EINVAL, HDR, claims, other_key, NULL, "does not verify");
	/* a key id the set does not have: the caller may fetch the keys again */
	expect_refused(PB_ENOTFOUND, "{\"alg\":\"RS256\",\"kid\":\"k9\"}", claims, key, NULL, "does not publish");
	expect_refused(PB_EINVAL, "{\"alg\":\"RS256\"}", claims, key, NULL, "kid");
	/* the token does not choose its algorithm */
	expect_refused(PB_EINVAL, "{\"alg\":\"none\",\"kid\":\"k1\"}", claims, NULL, NULL, "only RS256");
	expect_refused(PB_EINVAL, "{\"alg\":\"RS512\",\"kid\":\"k1\"}", claims, key, NULL, "only RS256");
	/* HS256 with the public key as the HMAC secret (the classic confusion) */
	char *n = bn_b64url(key, OSSL_PKEY_PARAM_RSA_N);
	expect_refused(PB_EINVAL, "{\"alg\":\"HS256\",\"kid\":\"k1\"}", claims, NULL, n, "only RS256");
	free(n);
	/* RS256 in the header but no signature */
	expect_refused(PB_EINVAL, HDR, claims, NULL, NULL, "no signature");
	expect_refused(PB_EINVAL, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"crit\":[\"x\"]}", claims, key, NULL, "critical");
	expect_refused(PB_EINVAL, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"at+jwt\"}", claims, key, NULL, "type");
	/* keys that are not RS256 signing keys of a sound size */
	expect_refused(PB_EINVAL, "{\"alg\":\"RS256\",\"kid\":\"small\"}", claims, small_key, NULL, "bits");
	expect_refused(PB_EINVAL, "{\"alg\":\"RS256\",\"kid\":\"enc\"}", claims, key, NULL, "not an RS256 signing key");
	expect_refused(PB_EINVAL, "{\"alg\":\"RS256\",\"kid\":\"ec\"}", claims, key, NULL, "not an RS256 signing key");
	free(claims);
}

static void claims_refused(void **state)
{
	(void)state;
	static const struct { const char *extra, *word; } cases[] = {
		{ "\"iat\":1790000000,\"nbf\":1790000000,\"exp\":1799999000", "expired" },
		{ "\"iat\":1800000000,\"nbf\":1800001000,\"exp\":1800003600", "not valid yet" },
		{ "\"iat\":1800001000,\"exp\":1800003600", "future" },
		{ "\"iat\":1800000000", "no expiry" },
		{ "\"exp\":\"soon\"", "malformed expiry" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *claims = claims_with(cases[i].extra);
		expect_refused(PB_EINVAL, HDR, claims, key, NULL, cases[i].word);
		free(claims);
	}
	/* issuer, audience and nonce: the later member of a duplicate is refused as malformed, so
	 * these are written out whole */
	static const char *const whole[][2] = {
		{ "{" TIMES ",\"iss\":\"https://sts.windows.net/" TENANT "/\",\"aud\":\"" CLIENT "\",\"nonce\":\"n-1\"}", "issuer" },
		{ "{" TIMES ",\"iss\":\"" ISS "\",\"aud\":\"someone-else\",\"nonce\":\"n-1\"}", "audience" },
		{ "{" TIMES ",\"iss\":\"" ISS "\",\"aud\":[\"someone-else\",\"" CLIENT "\"],\"nonce\":\"n-1\"}", "authorized party" },
		{ "{" TIMES ",\"iss\":\"" ISS "\",\"aud\":[\"x\",\"" CLIENT "\"],\"azp\":\"x\",\"nonce\":\"n-1\"}", "authorized party" },
		{ "{" TIMES ",\"iss\":\"" ISS "\",\"aud\":\"" CLIENT "\",\"nonce\":\"n-2\"}", "nonce" },
		{ "{" TIMES ",\"iss\":\"" ISS "\",\"aud\":\"" CLIENT "\"}", "nonce" },
	};
	for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
		expect_refused(PB_EINVAL, HDR, whole[i][0], key, NULL, whole[i][1]);
	/* an audience array holding us, with azp us, passes */
	char err[PB_ERR_MAX];
	char *tok = make_token(HDR, "{" TIMES ",\"iss\":\"" ISS "\",\"aud\":[\"x\",\"" CLIENT "\"],\"azp\":\"" CLIENT "\","
				    "\"nonce\":\"n-1\"}", key, NULL);
	assert_int_equal(check(tok, &expect, err), PB_OK);
	free(tok);
}

static void malformed_tokens_refused(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_jwt t;
	const char *bad[] = { "", "abc", "a.b", "a.b.c.d", "!!!.e30.", "e30.!!!.", "bnVsbA.e30.", "e30.WzFd.",
			      "eyJhIjoxLCJhIjoyfQ.e30." /* {"a":1,"a":2}: a duplicate member */ };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(pb_jwt_parse(bad[i], &t, err), PB_EINVAL);
		assert_null(t.header);
	}
	char *huge = malloc(PB_JWT_MAX_BYTES + 2);
	memset(huge, 'a', PB_JWT_MAX_BYTES + 1);
	huge[PB_JWT_MAX_BYTES + 1] = '\0';
	assert_int_equal(pb_jwt_parse(huge, &t, err), PB_EINVAL);
	assert_non_null(strstr(err, "longer"));
	free(huge);
}

/* ---- msapi/oidc: the Entra checks on top ---- */

static char *jwks_text(void)
{
	return json_dumps(jwks, JSON_COMPACT);
}

static int entra_check(const char *claims, const char *issuer_template, const char *tenant, char *err,
		       entra_id_claims *out)
{
	char meta[512], *keys = jwks_text(), *tok = make_token(HDR, claims, key, NULL);
	xsnprintf(meta, sizeof meta, "{\"issuer\":\"%s\",\"jwks_uri\":\"https://login.example/keys\"}", issuer_template);
	entra_id_expect e = { .client_id = CLIENT, .tenant = tenant, .nonce = "n-1", .now_s = NOW };
	int rc = entra_id_token_check(tok, meta, keys, &e, out, err);
	free(keys);
	free(tok);
	return rc;
}

static void entra_id_token(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	entra_id_claims c;
	char *claims = claims_with(TIMES ",\"email\":\"Alice@Contoso.example\"");
	assert_int_equal(entra_check(claims, ISS, TENANT, err, &c), PB_OK);
	assert_string_equal(c.tenant_id, TENANT);
	assert_string_equal(c.object_id, OID);
	assert_string_equal(c.preferred_username, "alice@contoso.example");
	assert_string_equal(c.email, "Alice@Contoso.example");
	entra_id_claims_release(&c);
	/* a multi-tenant app: the issuer's {tenantid} is the token's tid */
	assert_int_equal(entra_check(claims, "https://login.microsoftonline.com/{tenantid}/v2.0", "organizations", err, &c),
			 PB_OK);
	entra_id_claims_release(&c);
	/* ... but then a token whose iss names another tenant than its tid is refused */
	free(claims);
	assert_int_equal(entra_check("{" TIMES ",\"iss\":\"https://login.microsoftonline.com/" OTHER_TENANT "/v2.0\","
				     "\"aud\":\"" CLIENT "\",\"tid\":\"" TENANT "\",\"oid\":\"" OID "\",\"nonce\":\"n-1\"}",
				     "https://login.microsoftonline.com/{tenantid}/v2.0", "organizations", err, &c),
			 PB_EINVAL);
	assert_non_null(strstr(err, "issuer"));
	/* the configured tenant when it is an id, whatever the issuer says */
	claims = claims_with(TIMES);
	assert_int_equal(entra_check(claims, ISS, OTHER_TENANT, err, &c), PB_EINVAL);
	assert_non_null(strstr(err, "configured"));
	free(claims);
	/* tid not the issuer's (the iss is right, the tid another tenant) */
	assert_int_equal(entra_check("{" TIMES ",\"iss\":\"" ISS "\",\"aud\":\"" CLIENT "\",\"tid\":\"" OTHER_TENANT "\","
				     "\"oid\":\"" OID "\",\"nonce\":\"n-1\"}",
				     "https://login.microsoftonline.com/{tenantid}/v2.0", "organizations", err, &c),
			 PB_EINVAL);
	assert_int_equal(entra_check("{" TIMES ",\"iss\":\"" ISS "\",\"aud\":\"" CLIENT "\",\"tid\":\"" OTHER_TENANT "\","
				     "\"oid\":\"" OID "\",\"nonce\":\"n-1\"}", ISS, "contoso.example", err, &c),
			 PB_EINVAL);
	assert_non_null(strstr(err, "issuer"));
	/* no object id, or not a GUID */
	assert_int_equal(entra_check("{" TIMES ",\"iss\":\"" ISS "\",\"aud\":\"" CLIENT "\",\"tid\":\"" TENANT "\","
				     "\"nonce\":\"n-1\"}", ISS, TENANT, err, &c), PB_EINVAL);
	assert_non_null(strstr(err, "oid"));
	assert_int_equal(entra_check("{" TIMES ",\"iss\":\"" ISS "\",\"aud\":\"" CLIENT "\",\"tid\":\"" TENANT "\","
				     "\"oid\":\"../x\",\"nonce\":\"n-1\"}", ISS, TENANT, err, &c), PB_EINVAL);
}

/* ---- runtime/auth: session cookies ---- */

static pb_keyring *ring(const char *spec)
{
	char err[PB_ERR_MAX];
	pb_keyring *kr = NULL;
	assert_int_equal(pb_keyring_parse(spec, &kr, err), PB_OK);
	return kr;
}

#define RK1 "1111111111111111111111111111111111111111111111111111111111111111"
#define RK2 "2222222222222222222222222222222222222222222222222222222222222222"

static void session_cookie_signed_and_checked(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], value[PB_SESSION_COOKIE_BUF], hash[PB_TOKEN_HASH_HEX], again[PB_TOKEN_HASH_HEX];
	pb_keyring *k1 = ring(RK1), *k2 = ring(RK2), *rotated = ring(RK2 "," RK1);
	assert_int_equal(auth_session_cookie_new(k1, value, hash, err), PB_OK);
	assert_int_equal(strlen(value), PB_SESSION_COOKIE_BUF - 1);
	assert_null(strstr(value, hash));
	assert_int_equal(auth_session_cookie_check(k1, value, again, err), PB_OK);
	assert_string_equal(hash, again);
	/* the stored hash is SHA-256 of the secret part */
	char secret[PB_HMAC_B64URL_LEN + 1], want[PB_TOKEN_HASH_HEX];
	memcpy(secret, value, PB_HMAC_B64URL_LEN);
	secret[PB_HMAC_B64URL_LEN] = '\0';
	auth_token_hash(secret, want);
	assert_string_equal(hash, want);
	/* a rotated key ring still verifies it; another key does not */
	assert_int_equal(auth_session_cookie_check(rotated, value, again, err), PB_OK);
	assert_int_equal(auth_session_cookie_check(k2, value, again, err), PB_ENOTFOUND);
	/* any change is a forgery, refused before a lookup */
	for (size_t i = 0; i < strlen(value); i += 7) {
		char forged[PB_SESSION_COOKIE_BUF];
		memcpy(forged, value, sizeof forged);
		forged[i] = forged[i] == 'A' ? 'B' : 'A';
		if (forged[i] == value[i] || value[i] == '.')
			continue;
		assert_int_equal(auth_session_cookie_check(k1, forged, again, err), PB_ENOTFOUND);
	}
	assert_int_equal(auth_session_cookie_check(k1, "short", again, err), PB_ENOTFOUND);
	assert_int_equal(auth_session_cookie_check(NULL, value, again, err), PB_ENOTFOUND);
	assert_int_equal(auth_session_cookie_new(NULL, value, hash, err), PB_EINVAL);
	pb_keyring_free(k1);
	pb_keyring_free(k2);
	pb_keyring_free(rotated);
}

static void cookie_header_parsing(void **state)
{
	(void)state;
	char v[16];
	assert_int_equal(auth_cookie_get("a=1; pbiport_session=abc; b=2", "pbiport_session", v, sizeof v), PB_OK);
	assert_string_equal(v, "abc");
	assert_int_equal(auth_cookie_get("pbiport_session=first;pbiport_session=second", "pbiport_session", v, sizeof v),
			 PB_OK);
	assert_string_equal(v, "first");
	assert_int_equal(auth_cookie_get("xpbiport_session=abc", "pbiport_session", v, sizeof v), PB_ENOTFOUND);
	assert_int_equal(auth_cookie_get("pbiport_session=", "pbiport_session", v, sizeof v), PB_ENOTFOUND);
	assert_int_equal(auth_cookie_get(NULL, "pbiport_session", v, sizeof v), PB_ENOTFOUND);
	assert_int_equal(auth_cookie_get("pbiport_session=0123456789abcdef", "pbiport_session", v, sizeof v), PB_ELIMIT);

	char line[PB_SET_COOKIE_MAX], err[PB_ERR_MAX];
	assert_int_equal(auth_set_cookie(line, "s", "v", "/", 60, true, err), PB_OK);
	assert_string_equal(line, "s=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure");
	assert_int_equal(auth_set_cookie(line, "s", "v", "/signin", -1, false, err), PB_OK);
	assert_string_equal(line, "s=; Path=/signin; Max-Age=0; HttpOnly; SameSite=Lax");
	assert_int_equal(auth_set_cookie(line, "s", "v; Domain=evil", "/", 60, false, err), PB_EINVAL);
	assert_int_equal(auth_set_cookie(line, "s", "v\r\nX: y", "/", 60, false, err), PB_EINVAL);
}

static void user_agent_summaries(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{ "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux" },
		{ "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
		  "Safari/537.36 Edg/126.0.0.0", "Edge on Windows" },
		{ "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
		  "Safari/605.1.15", "Safari on macOS" },
		{ "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Mobile "
		  "Safari/604.1", "Safari on iOS" },
		{ "curl/8.5.0", "curl" },
		{ "", "unknown" },
	};
	char out[PB_USER_AGENT_MAX + 1];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		auth_user_agent_summary(cases[i][0], out);
		assert_string_equal(out, cases[i][1]);
	}
	auth_user_agent_summary(NULL, out);
	assert_string_equal(out, "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_token_passes),
		cmocka_unit_test(signature_and_algorithm_refused),
		cmocka_unit_test(claims_refused),
		cmocka_unit_test(malformed_tokens_refused),
		cmocka_unit_test(entra_id_token),
		cmocka_unit_test(session_cookie_signed_and_checked),
		cmocka_unit_test(cookie_header_parsing),
		cmocka_unit_test(user_agent_summaries),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
