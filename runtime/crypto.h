/* Secrets and signatures: AES-256-GCM key ring, HMAC-SHA256, random tokens, SHA-256,
 * base64 / base64url.
 *
 * Key ring: APPLICATION_ENCRYPTION_KEYS holds comma-separated 64-hex keys. The first key
 * seals; every key opens, so an operator rotates by putting a new key first and keeping the
 * old ones until every secret was re-sealed. A sealed secret is text:
 *
 *     v1:<kid>:<base64(nonce[12] || ciphertext || tag[16])>
 *
 * where kid = first 8 hex digits of SHA-256(key). The "v1:<kid>" prefix (and an optional
 * caller context string, e.g. a row id) is authenticated as GCM additional data, so a
 * sealed value cannot be moved to another key id or context unnoticed.
 *
 * Messages never contain key material or plaintext. */
#ifndef PBIPORT_CRYPTO_H
#define PBIPORT_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PB_KEY_BYTES       32
#define PB_KID_LEN         8            /* hex digits */
#define PB_SHA256_HEX_LEN  64           /* without the NUL */
#define PB_HMAC_BYTES      32
#define PB_HMAC_B64URL_LEN 43           /* base64url(32 bytes) without padding, without NUL */

typedef struct pb_keyring pb_keyring;

/* Parses "hex64[,hex64...]" (spaces around commas allowed). *out is new: free with
 * pb_keyring_free. Errors name the position of the bad key, never its text. */
int pb_keyring_parse(const char *spec, pb_keyring **out, char *err);
void pb_keyring_free(pb_keyring *kr);              /* wipes the keys; NULL is fine */
/* The key id of key i (0 = the sealing key); borrowed until pb_keyring_free. */
const char *pb_keyring_kid(const pb_keyring *kr, size_t i);

/* Seals len bytes. context may be NULL; the same context must be given to open.
 * *out is new text (caller frees with free()). */
int pb_seal(const pb_keyring *kr, const void *plain, size_t len, const char *context,
	    char **out, char *err);
/* Opens a value made by pb_seal with any key of the ring. *plain is new, NUL-terminated
 * (len excludes the NUL); free it with pb_secret_free(*plain, *len). */
int pb_open(const pb_keyring *kr, const char *sealed, const char *context,
	    char **plain, size_t *len, char *err);
/* True when sealed was made with a key other than the current sealing key (re-seal it). */
bool pb_sealed_needs_rotation(const pb_keyring *kr, const char *sealed);
/* Wipes then frees a secret buffer; NULL is fine. */
void pb_secret_free(void *p, size_t len);
void pb_wipe(void *p, size_t len);

/* HMAC-SHA256 of msg under key, as base64url without padding into out[PB_HMAC_B64URL_LEN + 1]. */
int pb_hmac_sign(const void *key, size_t keylen, const void *msg, size_t len,
		 char out[PB_HMAC_B64URL_LEN + 1], char *err);
/* HMAC-SHA256 of msg under key as lowercase hex into out[PB_SHA256_HEX_LEN + 1] (webhook
 * signatures, which receivers compare with their own hex digest). */
int pb_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t len, char out[PB_SHA256_HEX_LEN + 1],
		       char *err);
/* Constant-time check of a signature made by pb_hmac_sign. */
bool pb_hmac_verify(const void *key, size_t keylen, const void *msg, size_t len, const char *sig);
/* Constant-time equality of two byte ranges (false when lengths differ). */
bool pb_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* HMAC with a key ring: signs with the first key, verifies against every key. */
int pb_keyring_hmac_sign(const pb_keyring *kr, const void *msg, size_t len,
			 char out[PB_HMAC_B64URL_LEN + 1], char *err);
bool pb_keyring_hmac_verify(const pb_keyring *kr, const void *msg, size_t len, const char *sig);

/* HMAC-SHA256 of msg under key into out (raw bytes). */
int pb_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len, unsigned char out[32], char *err);

/* ---- RSA encryption and AES-CBC, for the formats other services define (a Power BI gateway's
 * credentials: msapi/gateways.c) ---- */
struct evp_pkey_st;
/* The RSA public key of modulus n and public exponent e (unsigned big-endian bytes). *out is new
 * (EVP_PKEY_free). PB_EINVAL when they make no usable key. */
int pb_rsa_public_key(const unsigned char *n, size_t nlen, const unsigned char *e, size_t elen,
		      struct evp_pkey_st **out, char *err);
/* RSAES-OAEP (RFC 8017 §7.1) of plain under key, with md ("SHA1" or "SHA256") as the OAEP and
 * MGF1 hash and an empty label. *out is new (free) and holds *outlen bytes, the modulus' size;
 * plain longer than the key takes is PB_EINVAL. */
int pb_rsa_oaep_encrypt(struct evp_pkey_st *key, const char *md, const void *plain, size_t len, unsigned char **out,
			size_t *outlen, char *err);
/* AES-256-CBC with PKCS#7 padding of plain under key and iv. *out is new (free), *outlen bytes
 * (len rounded up to the next multiple of 16). */
int pb_aes256_cbc_encrypt(const unsigned char key[32], const unsigned char iv[16], const void *plain, size_t len,
			  unsigned char **out, size_t *outlen, char *err);

/* Cryptographically random bytes. */
int pb_random_bytes(void *buf, size_t len, char *err);
/* A random token: nbytes random bytes as base64url without padding. *out is new. */
int pb_random_token(size_t nbytes, char **out, char *err);

/* SHA-256 of data as lowercase hex into out[PB_SHA256_HEX_LEN + 1]. */
void pb_sha256_hex(const void *data, size_t len, char out[PB_SHA256_HEX_LEN + 1]);
void pb_sha256(const void *data, size_t len, unsigned char out[32]);

/* base64 (RFC 4648 §4, padded) and base64url (§5, unpadded). Encoders: *out is new text.
 * Decoders accept only their own alphabet (base64 padded; base64url also with padding: JSON Web
 * Tokens and keys, runtime/jwt.c); *out is new, NUL-terminated, *outlen excludes the NUL. */
int pb_b64_encode(const void *data, size_t len, char **out, char *err);
int pb_b64url_encode(const void *data, size_t len, char **out, char *err);
int pb_b64_decode(const char *text, size_t len, unsigned char **out, size_t *outlen, char *err);
int pb_b64url_decode(const char *text, size_t len, unsigned char **out, size_t *outlen, char *err);

#endif
