#include "runtime/crypto.h"

#include <ctype.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/strbuf.h"
#include "runtime/util.h"

#define GCM_NONCE 12
#define GCM_TAG   16
#define SEAL_VERSION "v1"

struct pb_keyring {
	size_t n;
	unsigned char key[PB_KEYRING_MAX_KEYS][PB_KEY_BYTES];
	char kid[PB_KEYRING_MAX_KEYS][PB_KID_LEN + 1];
};

void pb_wipe(void *p, size_t len)
{
	if (p && len)
		OPENSSL_cleanse(p, len);
}

void pb_secret_free(void *p, size_t len)
{
	if (!p)
		return;
	pb_wipe(p, len);
	free(p);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* SHA-256 looked up once per process: SHA256() fetches the algorithm on every call, which was
 * a third of checking an API token (every API request). Once for all threads of the worker. And a
 * digest context kept per thread (freed when the thread ends): EVP_Digest makes and frees one
 * per call, two allocations and the provider's own context. */
static EVP_MD *sha256_md;
static pthread_key_t sha256_ctx_key;
static bool sha256_ctx_keyed;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void ctx_free(void *ctx)
{
	EVP_MD_CTX_free(ctx);
}

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	sha256_ctx_keyed = !pthread_key_create(&sha256_ctx_key, ctx_free);
}

/* This thread's kept context, or NULL when none can be had. */
static EVP_MD_CTX *thread_ctx(void)
{
	EVP_MD_CTX *ctx = sha256_ctx_keyed ? pthread_getspecific(sha256_ctx_key) : NULL;
	if (!ctx && sha256_ctx_keyed && (ctx = EVP_MD_CTX_new()) && pthread_setspecific(sha256_ctx_key, ctx)) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

void pb_sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int n = 32;
	pthread_once(&sha256_once, sha256_fetch);
	EVP_MD_CTX *ctx = sha256_md ? thread_ctx() : NULL;
	if (!ctx || EVP_DigestInit_ex2(ctx, sha256_md, NULL) != 1 || EVP_DigestUpdate(ctx, data, len) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, &n) != 1)
		SHA256(data, len, out);
}

/* A 32-byte digest as lowercase hex. */
static void digest_hex(const unsigned char md[32], char out[PB_SHA256_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[PB_SHA256_HEX_LEN] = '\0';
}

void pb_sha256_hex(const void *data, size_t len, char out[PB_SHA256_HEX_LEN + 1])
{
	unsigned char md[32];
	pb_sha256(data, len, md);
	digest_hex(md, out);
}

int pb_keyring_parse(const char *spec, pb_keyring **out, char *err)
{
	*out = NULL;
	if (!spec || !*spec)
		return pb_err(err, PB_EINVAL, "APPLICATION_ENCRYPTION_KEYS is empty: give one or more "
			      "64-hex-digit keys separated by commas (pbiport keygen makes one)");
	pb_keyring *kr = calloc(1, sizeof *kr);
	if (!kr)
		return pb_err(err, PB_ENOMEM, "out of memory");
	int rc = PB_OK;
	const char *p = spec;
	for (size_t idx = 1;; idx++) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *start = p;
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		size_t n = (size_t)(p - start);
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p && *p != ',') {
			rc = pb_err(err, PB_EINVAL, "APPLICATION_ENCRYPTION_KEYS: key %zu contains a space", idx);
			goto out;
		}
		if (n != 2 * PB_KEY_BYTES) {
			rc = pb_err(err, PB_EINVAL, "APPLICATION_ENCRYPTION_KEYS: key %zu has %zu characters; "
				    "each key must be exactly 64 hex digits", idx, n);
			goto out;
		}
		if (kr->n == PB_KEYRING_MAX_KEYS) {
			rc = pb_err(err, PB_ELIMIT, "APPLICATION_ENCRYPTION_KEYS: more than %d keys",
				    PB_KEYRING_MAX_KEYS);
			goto out;
		}
		for (size_t i = 0; i < PB_KEY_BYTES; i++) {
			int hi = hexval((unsigned char)start[2 * i]), lo = hexval((unsigned char)start[2 * i + 1]);
			if (hi < 0 || lo < 0) {
				rc = pb_err(err, PB_EINVAL, "APPLICATION_ENCRYPTION_KEYS: key %zu has a "
					    "non-hex character at position %zu", idx, 2 * i + (hi < 0 ? 1 : 2));
				goto out;
			}
			kr->key[kr->n][i] = (unsigned char)(hi << 4 | lo);
		}
		char hex[PB_SHA256_HEX_LEN + 1];
		pb_sha256_hex(kr->key[kr->n], PB_KEY_BYTES, hex);
		memcpy(kr->kid[kr->n], hex, PB_KID_LEN);
		kr->kid[kr->n][PB_KID_LEN] = '\0';
		for (size_t j = 0; j < kr->n; j++) {
			if (!strcmp(kr->kid[j], kr->kid[kr->n])) {
				rc = pb_err(err, PB_EINVAL, "APPLICATION_ENCRYPTION_KEYS: key %zu repeats key %zu",
					    idx, j + 1);
				goto out;
			}
		}
		kr->n++;
		if (!*p)
			break;
		p++; /* the comma */
	}
out:
	if (rc) {
		pb_keyring_free(kr);
		return rc;
	}
	*out = kr;
	return PB_OK;
}

void pb_keyring_free(pb_keyring *kr)
{
	if (!kr)
		return;
	pb_wipe(kr, sizeof *kr);
	free(kr);
}

const char *pb_keyring_kid(const pb_keyring *kr, size_t i)
{
	return kr && i < kr->n ? kr->kid[i] : NULL;
}

/* AAD = "v1:<kid>" [ "\n" context ] */
static int build_aad(sbuf *aad, const char *kid, const char *context)
{
	if (sbuf_addf(aad, "%s:%s", SEAL_VERSION, kid))
		return -1;
	if (context && (sbuf_addc(aad, '\n') || sbuf_adds(aad, context)))
		return -1;
	return 0;
}

int pb_seal(const pb_keyring *kr, const void *plain, size_t len, const char *context,
	    char **out, char *err)
{
	*out = NULL;
	int rc = PB_OK;
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *blob = NULL;
	size_t bloblen = GCM_NONCE + len + GCM_TAG;
	char *b64 = NULL;
	sbuf aad, res;
	sbuf_init(&aad, PB_SECRET_MAX_BYTES);
	sbuf_init(&res, 2 * PB_SECRET_MAX_BYTES);
	if (!kr || !kr->n) {
		rc = pb_err(err, PB_EINVAL, "no encryption key configured (APPLICATION_ENCRYPTION_KEYS)");
		goto out;
	}
	if (len > PB_SECRET_MAX_BYTES) {
		rc = pb_err(err, PB_ELIMIT, "secret larger than %u bytes", PB_SECRET_MAX_BYTES);
		goto out;
	}
	blob = malloc(bloblen);
	ctx = EVP_CIPHER_CTX_new();
	if (!blob || !ctx || build_aad(&aad, kr->kid[0], context)) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = pb_random_bytes(blob, GCM_NONCE, err)))
		goto out;
	int outl = 0;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, kr->key[0], blob) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, (const unsigned char *)aad.buf, (int)aad.len) != 1 ||
	    (len && EVP_EncryptUpdate(ctx, blob + GCM_NONCE, &outl, plain, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(ctx, blob + GCM_NONCE + len, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG, blob + GCM_NONCE + len) != 1) {
		rc = pb_err(err, PB_EINTERNAL, "AES-256-GCM encryption failed");
		goto out;
	}
	if ((rc = pb_b64_encode(blob, bloblen, &b64, err)))
		goto out;
	if (sbuf_addf(&res, "%s:%s:%s", SEAL_VERSION, kr->kid[0], b64)) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	*out = sbuf_detach(&res, NULL);
	if (!*out)
		rc = pb_err(err, PB_ENOMEM, "out of memory");
out:
	EVP_CIPHER_CTX_free(ctx);
	pb_secret_free(blob, bloblen);
	free(b64);
	sbuf_release(&aad);
	sbuf_release(&res);
	return rc;
}

/* Splits "v1:<kid>:<b64>"; kid out[PB_KID_LEN+1]; *b64 borrowed from sealed. */
static int parse_sealed(const char *sealed, char kid[PB_KID_LEN + 1], const char **b64)
{
	size_t vl = strlen(SEAL_VERSION);
	if (!sealed || strncmp(sealed, SEAL_VERSION ":", vl + 1) != 0)
		return -1;
	const char *k = sealed + vl + 1;
	for (size_t i = 0; i < PB_KID_LEN; i++)
		if (hexval((unsigned char)k[i]) < 0)
			return -1;
	if (k[PB_KID_LEN] != ':')
		return -1;
	memcpy(kid, k, PB_KID_LEN);
	kid[PB_KID_LEN] = '\0';
	*b64 = k + PB_KID_LEN + 1;
	return 0;
}

bool pb_sealed_needs_rotation(const pb_keyring *kr, const char *sealed)
{
	char kid[PB_KID_LEN + 1];
	const char *b64;
	if (!kr || !kr->n || parse_sealed(sealed, kid, &b64))
		return false;
	return strcmp(kid, kr->kid[0]) != 0;
}

int pb_open(const pb_keyring *kr, const char *sealed, const char *context,
	    char **plain, size_t *len, char *err)
{
	*plain = NULL;
	if (len)
		*len = 0;
	int rc = PB_OK;
	char kid[PB_KID_LEN + 1];
	const char *b64;
	unsigned char *blob = NULL;
	size_t bloblen = 0;
	char *pt = NULL;
	size_t ptlen = 0;
	EVP_CIPHER_CTX *ctx = NULL;
	sbuf aad;
	sbuf_init(&aad, PB_SECRET_MAX_BYTES);
	if (parse_sealed(sealed, kid, &b64)) {
		rc = pb_err(err, PB_EINVAL, "not a sealed secret (expected \"v1:<key id>:<base64>\")");
		goto out;
	}
	size_t k = 0;
	while (kr && k < kr->n && strcmp(kr->kid[k], kid))
		k++;
	if (!kr || k == kr->n) {
		rc = pb_err(err, PB_EINVAL, "secret was sealed with key id %s, which is not in "
			    "APPLICATION_ENCRYPTION_KEYS (was that key removed too early?)", kid);
		goto out;
	}
	if (pb_b64_decode(b64, strlen(b64), &blob, &bloblen, NULL) || bloblen < GCM_NONCE + GCM_TAG) {
		rc = pb_err(err, PB_EINVAL, "sealed secret (key id %s) is damaged: bad base64 or too short", kid);
		goto out;
	}
	ptlen = bloblen - GCM_NONCE - GCM_TAG;
	if (ptlen > PB_SECRET_MAX_BYTES) {
		rc = pb_err(err, PB_ELIMIT, "sealed secret larger than %u bytes", PB_SECRET_MAX_BYTES);
		goto out;
	}
	pt = malloc(ptlen + 1);
	ctx = EVP_CIPHER_CTX_new();
	if (!pt || !ctx || build_aad(&aad, kid, context)) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	int outl = 0;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, kr->key[k], blob) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &outl, (const unsigned char *)aad.buf, (int)aad.len) != 1 ||
	    (ptlen && EVP_DecryptUpdate(ctx, (unsigned char *)pt, &outl, blob + GCM_NONCE, (int)ptlen) != 1) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG, blob + GCM_NONCE + ptlen) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)pt + ptlen, &outl) != 1) {
		rc = pb_err(err, PB_EINVAL, "cannot open secret sealed with key id %s: it was altered, "
			    "or sealed for another record", kid);
		goto out;
	}
	pt[ptlen] = '\0';
	*plain = pt;
	pt = NULL;
	if (len)
		*len = ptlen;
out:
	EVP_CIPHER_CTX_free(ctx);
	pb_secret_free(pt, ptlen + 1);
	pb_secret_free(blob, bloblen);
	sbuf_release(&aad);
	return rc;
}

bool pb_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen || !a || !b)
		return false;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

static int hmac_raw(const void *key, size_t keylen, const void *msg, size_t len, unsigned char md[32])
{
	unsigned int mdlen = 0;
	if (!HMAC(EVP_sha256(), key, (int)keylen, msg, len, md, &mdlen) || mdlen != 32)
		return -1;
	return 0;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Encodes into dst (room for 4*ceil(len/3)+1); returns length written. */
static size_t b64_into(const unsigned char *s, size_t len, const char *alpha, bool pad, char *dst)
{
	size_t o = 0, i = 0;
	for (; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		dst[o++] = alpha[v >> 18];
		dst[o++] = alpha[(v >> 12) & 63];
		dst[o++] = alpha[(v >> 6) & 63];
		dst[o++] = alpha[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0);
		dst[o++] = alpha[v >> 18];
		dst[o++] = alpha[(v >> 12) & 63];
		if (i + 1 < len)
			dst[o++] = alpha[(v >> 6) & 63];
		else if (pad)
			dst[o++] = '=';
		if (pad)
			dst[o++] = '=';
	}
	dst[o] = '\0';
	return o;
}

static int b64_encode_alpha(const void *data, size_t len, const char *alpha, bool pad, char **out, char *err)
{
	*out = NULL;
	if (len > SIZE_MAX / 2)
		return pb_err(err, PB_ELIMIT, "data too large to encode");
	char *dst = malloc((len + 2) / 3 * 4 + 1);
	if (!dst)
		return pb_err(err, PB_ENOMEM, "out of memory");
	b64_into(data, len, alpha, pad, dst);
	*out = dst;
	return PB_OK;
}

int pb_b64_encode(const void *data, size_t len, char **out, char *err)
{
	return b64_encode_alpha(data, len, B64, true, out, err);
}

int pb_b64url_encode(const void *data, size_t len, char **out, char *err)
{
	return b64_encode_alpha(data, len, B64URL, false, out, err);
}

static int b64_decode_alpha(const char *text, size_t len, const char *alpha, bool pad_required,
			    unsigned char **out, size_t *outlen, char *err)
{
	*out = NULL;
	if (outlen)
		*outlen = 0;
	signed char map[256];
	memset(map, -1, sizeof map);
	for (int i = 0; i < 64; i++)
		map[(unsigned char)alpha[i]] = (signed char)i;
	size_t n = len;
	size_t pads = 0;
	while (n > 0 && text[n - 1] == '=' && pads < 2) {
		n--;
		pads++;
	}
	if (pad_required && (len % 4))
		return pb_err(err, PB_EINVAL, "base64 text length is not a multiple of 4");
	if (pads && (n + pads) % 4)
		return pb_err(err, PB_EINVAL, "base64 padding is wrong");
	if (n % 4 == 1)
		return pb_err(err, PB_EINVAL, "base64 text has a dangling character");
	unsigned char *dst = malloc(n / 4 * 3 + 3);
	if (!dst)
		return pb_err(err, PB_ENOMEM, "out of memory");
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = map[(unsigned char)text[i]];
		if (v < 0) {
			free(dst);
			return pb_err(err, PB_EINVAL, "base64 text has an invalid character at offset %zu", i);
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			dst[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) { /* leftover bits must be zero (canonical encoding) */
		free(dst);
		return pb_err(err, PB_EINVAL, "base64 text is not canonical");
	}
	dst[o] = '\0';
	*out = dst;
	if (outlen)
		*outlen = o;
	return PB_OK;
}

int pb_b64_decode(const char *text, size_t len, unsigned char **out, size_t *outlen, char *err)
{
	return b64_decode_alpha(text, len, B64, true, out, outlen, err);
}

int pb_b64url_decode(const char *text, size_t len, unsigned char **out, size_t *outlen, char *err)
{
	return b64_decode_alpha(text, len, B64URL, false, out, outlen, err);
}

int pb_hmac_sign(const void *key, size_t keylen, const void *msg, size_t len,
		 char out[PB_HMAC_B64URL_LEN + 1], char *err)
{
	unsigned char md[32];
	if (!key || !keylen)
		return pb_err(err, PB_EINVAL, "HMAC key is empty");
	if (hmac_raw(key, keylen, msg, len, md))
		return pb_err(err, PB_EINTERNAL, "HMAC-SHA256 failed");
	b64_into(md, sizeof md, B64URL, false, out);
	return PB_OK;
}

int pb_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len, unsigned char out[32], char *err)
{
	if (!key || !keylen)
		return pb_err(err, PB_EINVAL, "HMAC key is empty");
	return hmac_raw(key, keylen, msg, len, out) ? pb_err(err, PB_EINTERNAL, "HMAC-SHA256 failed") : PB_OK;
}

int pb_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t len, char out[PB_SHA256_HEX_LEN + 1],
		       char *err)
{
	unsigned char md[32];
	if (!key || !keylen)
		return pb_err(err, PB_EINVAL, "HMAC key is empty");
	if (hmac_raw(key, keylen, msg, len, md))
		return pb_err(err, PB_EINTERNAL, "HMAC-SHA256 failed");
	digest_hex(md, out);
	pb_wipe(md, sizeof md);
	return PB_OK;
}

bool pb_hmac_verify(const void *key, size_t keylen, const void *msg, size_t len, const char *sig)
{
	char want[PB_HMAC_B64URL_LEN + 1];
	if (!sig || pb_hmac_sign(key, keylen, msg, len, want, NULL))
		return false;
	return pb_ct_equal(want, PB_HMAC_B64URL_LEN, sig, strlen(sig));
}

/* Signing with a key ring (e.g. the remember-me key): the first key signs, every key
 * verifies, so signed values survive a key rotation like sealed ones. */
int pb_keyring_hmac_sign(const pb_keyring *kr, const void *msg, size_t len,
			 char out[PB_HMAC_B64URL_LEN + 1], char *err)
{
	if (!kr || !kr->n)
		return pb_err(err, PB_EINVAL, "no signing key configured");
	return pb_hmac_sign(kr->key[0], PB_KEY_BYTES, msg, len, out, err);
}

bool pb_keyring_hmac_verify(const pb_keyring *kr, const void *msg, size_t len, const char *sig)
{
	bool ok = false;
	for (size_t i = 0; kr && i < kr->n; i++)
		ok |= pb_hmac_verify(kr->key[i], PB_KEY_BYTES, msg, len, sig);
	return ok;
}

int pb_random_bytes(void *buf, size_t len, char *err)
{
	if (len > INT32_MAX || RAND_bytes(buf, (int)len) != 1)
		return pb_err(err, PB_EINTERNAL, "no randomness available from OpenSSL");
	return PB_OK;
}

int pb_random_token(size_t nbytes, char **out, char *err)
{
	*out = NULL;
	if (nbytes == 0 || nbytes > 1024)
		return pb_err(err, PB_EINVAL, "random token size must be 1..1024 bytes");
	unsigned char buf[1024];
	int rc = pb_random_bytes(buf, nbytes, err);
	if (!rc)
		rc = pb_b64url_encode(buf, nbytes, out, err);
	pb_wipe(buf, nbytes);
	return rc;
}

/* ---- RSA encryption, AES-CBC ---- */

int pb_rsa_public_key(const unsigned char *n, size_t nlen, const unsigned char *e, size_t elen, EVP_PKEY **out,
		      char *err)
{
	BIGNUM *bn = nlen && nlen <= 2048 ? BN_bin2bn(n, (int)nlen, NULL) : NULL;
	BIGNUM *be = elen && elen <= 64 ? BN_bin2bn(e, (int)elen, NULL) : NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	int rc = PB_OK;
	*out = NULL;
	if (!bn || !be || BN_is_zero(bn) || BN_is_zero(be)) {
		rc = pb_err(err, PB_EINVAL, "the RSA key has no usable modulus or exponent");
		goto out;
	}
	if (!(bld = OSSL_PARAM_BLD_new()) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) || !(params = OSSL_PARAM_BLD_to_param(bld)) ||
	    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		EVP_PKEY_free(*out);
		*out = NULL;
		rc = pb_err(err, PB_EINVAL, "the modulus and exponent are not a valid RSA public key");
	}
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return rc;
}

int pb_rsa_oaep_encrypt(EVP_PKEY *key, const char *md, const void *plain, size_t len, unsigned char **out,
			size_t *outlen, char *err)
{
	const EVP_MD *hash = md && !strcmp(md, "SHA1") ? EVP_sha1() : md && !strcmp(md, "SHA256") ? EVP_sha256() : NULL;
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char *buf = NULL;
	size_t n = 0;
	int rc = PB_OK;
	*out = NULL;
	*outlen = 0;
	if (!hash)
		return pb_err(err, PB_EINVAL, "RSA-OAEP hash must be SHA1 or SHA256");
	/* OAEP takes at most k - 2 hLen - 2 bytes (RFC 8017 §7.1.1) */
	size_t room = (size_t)EVP_PKEY_get_size(key), hlen = (size_t)EVP_MD_get_size(hash);
	if (room < 2 * hlen + 2 || len > room - 2 * hlen - 2)
		return pb_err(err, PB_EINVAL, "%zu bytes are too many for RSA-OAEP with a %zu-byte key", len, room);
	if (!(ctx = EVP_PKEY_CTX_new(key, NULL)) || EVP_PKEY_encrypt_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, hash) <= 0 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, hash) <= 0 ||
	    EVP_PKEY_encrypt(ctx, NULL, &n, plain, len) <= 0) {
		rc = pb_err(err, PB_EINTERNAL, "RSA-OAEP could not be set up");
		goto out;
	}
	if (!(buf = malloc(n))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if (EVP_PKEY_encrypt(ctx, buf, &n, plain, len) <= 0) {
		rc = pb_err(err, PB_EINTERNAL, "RSA-OAEP encryption failed");
		goto out;
	}
	*out = buf;
	*outlen = n;
	buf = NULL;
out:
	free(buf);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

int pb_aes256_cbc_encrypt(const unsigned char key[32], const unsigned char iv[16], const void *plain, size_t len,
			  unsigned char **out, size_t *outlen, char *err)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *buf = NULL;
	int n1 = 0, n2 = 0, rc = PB_OK;
	*out = NULL;
	*outlen = 0;
	if (len > (size_t)INT_MAX - 32)
		return pb_err(err, PB_ELIMIT, "%zu bytes are too many to encrypt at once", len);
	if (!(buf = malloc(len + 16)) || !(ctx = EVP_CIPHER_CTX_new())) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	/* PKCS#7 padding is EVP's default for CBC */
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv) != 1 ||
	    EVP_EncryptUpdate(ctx, buf, &n1, plain, (int)len) != 1 || EVP_EncryptFinal_ex(ctx, buf + n1, &n2) != 1) {
		rc = pb_err(err, PB_EINTERNAL, "AES-256-CBC encryption failed");
		goto out;
	}
	*out = buf;
	*outlen = (size_t)n1 + (size_t)n2;
	buf = NULL;
out:
	free(buf);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}
