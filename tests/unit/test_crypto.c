/* Unit tests for runtime/crypto: key ring, seal/open, rotation, HMAC, base64, tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/crypto.h"
#include "runtime/util.h"

#define K1 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define K2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define K3 "0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000"

static pb_keyring *ring(const char *spec)
{
	char err[PB_ERR_MAX];
	pb_keyring *kr = NULL;
	assert_int_equal(pb_keyring_parse(spec, &kr, err), PB_OK);
	return kr;
}

static void seal_open_round_trip(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_keyring *kr = ring(K1);
	const char *secret = "s3cr3t password \xc3\xa9";
	char *sealed = NULL, *plain = NULL;
	size_t len = 0;
	assert_int_equal(pb_seal(kr, secret, strlen(secret), "row-1", &sealed, err), PB_OK);
	assert_true(!strncmp(sealed, "v1:", 3));
	assert_true(!strncmp(sealed + 3, pb_keyring_kid(kr, 0), PB_KID_LEN));
	assert_null(strstr(sealed, "s3cr3t"));
	assert_int_equal(pb_open(kr, sealed, "row-1", &plain, &len, err), PB_OK);
	assert_int_equal(len, strlen(secret));
	assert_string_equal(plain, secret);
	pb_secret_free(plain, len);
	/* two seals of the same text differ (fresh nonce) */
	char *again = NULL;
	assert_int_equal(pb_seal(kr, secret, strlen(secret), "row-1", &again, err), PB_OK);
	assert_string_not_equal(sealed, again);
	/* the empty secret works too */
	char *empty = NULL;
	assert_int_equal(pb_seal(kr, "", 0, NULL, &empty, err), PB_OK);
	assert_int_equal(pb_open(kr, empty, NULL, &plain, &len, err), PB_OK);
	assert_int_equal(len, 0);
	pb_secret_free(plain, len);
	free(empty);
	free(again);
	free(sealed);
	pb_keyring_free(kr);
}

static void wrong_key_and_wrong_context_fail(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_keyring *a = ring(K1), *b = ring(K2);
	char *sealed = NULL, *plain = NULL;
	size_t len;
	assert_int_equal(pb_seal(a, "x", 1, "ctx", &sealed, err), PB_OK);
	assert_int_equal(pb_open(b, sealed, "ctx", &plain, &len, err), PB_EINVAL);
	assert_null(plain);
	assert_non_null(strstr(err, "not in APPLICATION_ENCRYPTION_KEYS"));
	assert_non_null(strstr(err, pb_keyring_kid(a, 0)));
	assert_int_equal(pb_open(a, sealed, "other", &plain, &len, err), PB_EINVAL);
	assert_non_null(strstr(err, "altered"));
	assert_int_equal(pb_open(a, sealed, NULL, &plain, &len, err), PB_EINVAL);
	free(sealed);
	pb_keyring_free(a);
	pb_keyring_free(b);
}

static void tampered_ciphertext_fails(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_keyring *kr = ring(K1);
	char *sealed = NULL, *plain = NULL;
	size_t len;
	assert_int_equal(pb_seal(kr, "hello world", 11, NULL, &sealed, err), PB_OK);
	size_t n = strlen(sealed);
	/* flip one base64 character in the middle of the ciphertext */
	char *bad = strdup(sealed);
	char *mid = bad + 3 + PB_KID_LEN + 1 + 20;
	*mid = *mid == 'A' ? 'B' : 'A';
	assert_int_equal(pb_open(kr, bad, NULL, &plain, &len, err), PB_EINVAL);
	assert_null(plain);
	/* cut tag */
	bad[n - 6] = '\0';
	assert_int_equal(pb_open(kr, bad, NULL, &plain, &len, err), PB_EINVAL);
	/* move to another key id */
	free(bad);
	bad = strdup(sealed);
	memcpy(bad + 3, "deadbeef", 8);
	assert_int_equal(pb_open(kr, bad, NULL, &plain, &len, err), PB_EINVAL);
	/* not sealed text at all */
	assert_int_equal(pb_open(kr, "hunter2", NULL, &plain, &len, err), PB_EINVAL);
	assert_non_null(strstr(err, "not a sealed secret"));
	assert_int_equal(pb_open(kr, "v1:zzzzzzzz:AAAA", NULL, &plain, &len, err), PB_EINVAL);
	free(bad);
	free(sealed);
	pb_keyring_free(kr);
}

static void rotation_keeps_old_keys_opening(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_keyring *old = ring(K1);
	char *sealed = NULL, *plain = NULL, *resealed = NULL;
	size_t len;
	assert_int_equal(pb_seal(old, "token", 5, NULL, &sealed, err), PB_OK);
	assert_false(pb_sealed_needs_rotation(old, sealed));
	/* new key first, old key kept */
	pb_keyring *rot = ring(K2 " , " K1);
	assert_non_null(pb_keyring_kid(rot, 1));
	assert_null(pb_keyring_kid(rot, 2));
	assert_true(pb_sealed_needs_rotation(rot, sealed));
	assert_int_equal(pb_open(rot, sealed, NULL, &plain, &len, err), PB_OK);
	assert_string_equal(plain, "token");
	assert_int_equal(pb_seal(rot, plain, len, NULL, &resealed, err), PB_OK);
	pb_secret_free(plain, len);
	assert_false(pb_sealed_needs_rotation(rot, resealed));
	assert_true(!strncmp(resealed + 3, pb_keyring_kid(rot, 0), PB_KID_LEN));
	/* the old ring cannot open what the new key sealed */
	assert_int_equal(pb_open(old, resealed, NULL, &plain, &len, err), PB_EINVAL);
	/* after dropping the old key, the re-sealed value still opens */
	pb_keyring *fresh = ring(K2);
	assert_int_equal(pb_open(fresh, resealed, NULL, &plain, &len, err), PB_OK);
	pb_secret_free(plain, len);
	free(sealed);
	free(resealed);
	pb_keyring_free(old);
	pb_keyring_free(rot);
	pb_keyring_free(fresh);
}

static void malformed_key_lists_are_clear_errors(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_keyring *kr = NULL;
	assert_int_equal(pb_keyring_parse("", &kr, err), PB_EINVAL);
	assert_non_null(strstr(err, "APPLICATION_ENCRYPTION_KEYS"));
	assert_int_equal(pb_keyring_parse("abcd", &kr, err), PB_EINVAL);
	assert_non_null(strstr(err, "key 1 has 4 characters"));
	assert_int_equal(pb_keyring_parse(K1 ",", &kr, err), PB_EINVAL);
	assert_non_null(strstr(err, "key 2"));
	assert_int_equal(pb_keyring_parse(K1 "," K1, &kr, err), PB_EINVAL);
	assert_non_null(strstr(err, "repeats key 1"));
	char bad[65];
	memcpy(bad, K3, 65);
	bad[10] = 'g';
	assert_int_equal(pb_keyring_parse(bad, &kr, err), PB_EINVAL);
	assert_non_null(strstr(err, "non-hex"));
	assert_null(strstr(err, "0f0e0d0c")); /* never echoes key material */
	assert_null(kr);
	assert_int_equal(pb_keyring_parse(K1 " " K2, &kr, err), PB_EINVAL);
	/* uppercase hex is fine and gives the same key id */
	pb_keyring *lo = ring(K1), *up = NULL;
	char upper[65];
	for (int i = 0; i < 65; i++)
		upper[i] = (char)(K1[i] >= 'a' && K1[i] <= 'f' ? K1[i] - 32 : K1[i]);
	assert_int_equal(pb_keyring_parse(upper, &up, err), PB_OK);
	assert_string_equal(pb_keyring_kid(lo, 0), pb_keyring_kid(up, 0));
	pb_keyring_free(lo);
	pb_keyring_free(up);
}

static void hmac_sign_verify(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	char sig[PB_HMAC_B64URL_LEN + 1];
	/* RFC 4231 test case 2 */
	assert_int_equal(pb_hmac_sign("Jefe", 4, "what do ya want for nothing?", 28, sig, err), PB_OK);
	static const unsigned char want[32] = {
		0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
		0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
	};
	char *want_b64 = NULL;
	assert_int_equal(pb_b64url_encode(want, sizeof want, &want_b64, err), PB_OK);
	assert_string_equal(sig, want_b64);
	free(want_b64);
	assert_true(pb_hmac_verify("Jefe", 4, "what do ya want for nothing?", 28, sig));
	assert_false(pb_hmac_verify("Jefe", 4, "what do ya want for nothing!", 28, sig));
	assert_false(pb_hmac_verify("Jeff", 4, "what do ya want for nothing?", 28, sig));
	sig[5] ^= 1;
	assert_false(pb_hmac_verify("Jefe", 4, "what do ya want for nothing?", 28, sig));
	assert_false(pb_hmac_verify("Jefe", 4, "x", 1, ""));
	assert_false(pb_hmac_verify("Jefe", 4, "x", 1, NULL));
	assert_int_equal(pb_hmac_sign("", 0, "x", 1, sig, err), PB_EINVAL);
	assert_true(pb_ct_equal("abc", 3, "abc", 3));
	assert_false(pb_ct_equal("abc", 3, "abd", 3));
	assert_false(pb_ct_equal("abc", 3, "abcd", 4));
}

#define SHA256_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Digests in a thread of their own (each thread keeps its own context); 0 when all were right. */
static void *sha256_in_thread(void *arg)
{
	(void)arg;
	char hex[PB_SHA256_HEX_LEN + 1];
	int wrong = 0;
	for (int i = 0; i < 1000; i++) {
		pb_sha256_hex(i % 2 ? "abc" : "", i % 2 ? 3 : 0, hex);
		wrong += strcmp(hex, i % 2 ? SHA256_ABC : SHA256_EMPTY) != 0;
	}
	return (void *)(intptr_t)wrong;
}

static void sha256_and_base64(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	char hex[PB_SHA256_HEX_LEN + 1];
	pb_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, SHA256_ABC);
	pb_sha256_hex("abc", 3, hex);   /* the kept context, again */
	assert_string_equal(hex, SHA256_ABC);
	pthread_t t[3];
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, sha256_in_thread, NULL), 0);
	for (size_t i = 0; i < 3; i++) {
		void *wrong = NULL;
		assert_int_equal(pthread_join(t[i], &wrong), 0);
		assert_null(wrong);
	}
	static const struct { const char *in, *b64, *url; } v[] = {
		{ "", "", "" }, { "f", "Zg==", "Zg" }, { "fo", "Zm8=", "Zm8" }, { "foo", "Zm9v", "Zm9v" },
		{ "foob", "Zm9vYg==", "Zm9vYg" }, { "\xfb\xff", "+/8=", "-_8" },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char *e = NULL;
		unsigned char *d = NULL;
		size_t dl;
		assert_int_equal(pb_b64_encode(v[i].in, strlen(v[i].in), &e, err), PB_OK);
		assert_string_equal(e, v[i].b64);
		assert_int_equal(pb_b64_decode(e, strlen(e), &d, &dl, err), PB_OK);
		assert_int_equal(dl, strlen(v[i].in));
		assert_memory_equal(d, v[i].in, dl);
		free(e);
		free(d);
		assert_int_equal(pb_b64url_encode(v[i].in, strlen(v[i].in), &e, err), PB_OK);
		assert_string_equal(e, v[i].url);
		free(e);
	}
	unsigned char *d = NULL;
	size_t dl;
	assert_int_equal(pb_b64_decode("Zm9", 3, &d, &dl, err), PB_EINVAL);
	assert_int_equal(pb_b64_decode("Zm-v", 4, &d, &dl, err), PB_EINVAL);
	assert_int_equal(pb_b64_decode("Zh==", 4, &d, &dl, err), PB_EINVAL); /* non-canonical */
	assert_null(d);
}

static void random_tokens(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	char *a = NULL, *b = NULL;
	assert_int_equal(pb_random_token(32, &a, err), PB_OK);
	assert_int_equal(pb_random_token(32, &b, err), PB_OK);
	assert_int_equal(strlen(a), 43);
	assert_string_not_equal(a, b);
	assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
	free(a);
	free(b);
	assert_int_equal(pb_random_token(0, &a, err), PB_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(seal_open_round_trip),
		cmocka_unit_test(wrong_key_and_wrong_context_fail),
		cmocka_unit_test(tampered_ciphertext_fails),
		cmocka_unit_test(rotation_keeps_old_keys_opening),
		cmocka_unit_test(malformed_key_lists_are_clear_errors),
		cmocka_unit_test(hmac_sign_verify),
		cmocka_unit_test(sha256_and_base64),
		cmocka_unit_test(random_tokens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
