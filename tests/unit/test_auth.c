/* Identity: token format, SHA-256 hashing, constant-time compare, REMOTE_USER vs Bearer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "runtime/auth.h"
#include "runtime/util.h"

/* A one-user, one-token directory standing in for core/store/identity. */
static char stored_id[PB_ID_BUF];
static char stored_hash[PB_TOKEN_HASH_HEX];

static void fill(pb_identity *who, const char *name, pb_role role)
{
	memset(who, 0, sizeof *who);
	xsnprintf(who->user_id, sizeof who->user_id, "u-%s", name);
	xsnprintf(who->org_id, sizeof who->org_id, "org1");
	xsnprintf(who->user_name, sizeof who->user_name, "%s", name);
	who->role = role;
}

static int by_name(pb_db *db, const char *name, pb_identity *who, char *err)
{
	(void)db;
	if (strcmp(name, "alice"))
		return pb_err(err, PB_ENOTFOUND, "no user");
	fill(who, "alice", PB_ROLE_OWNER);
	return PB_OK;
}

static int by_token(pb_db *db, const char *id, pb_identity *who, char hash[PB_TOKEN_HASH_HEX], char *err)
{
	(void)db;
	if (strcmp(id, stored_id))
		return pb_err(err, PB_ENOTFOUND, "no token");
	fill(who, "bob", PB_ROLE_MEMBER);
	memcpy(hash, stored_hash, PB_TOKEN_HASH_HEX);
	return PB_OK;
}

static const struct pb_auth_ops ops = { .user_by_name = by_name, .token_by_id = by_token };

static void token_hash_is_sha256(void **state)
{
	(void)state;
	char hex[PB_TOKEN_HASH_HEX];
	auth_token_hash("abc", hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	auth_token_hash("", hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void constant_time_compare(void **state)
{
	(void)state;
	assert_true(auth_equal_ct("abcdef", "abcdef"));
	assert_false(auth_equal_ct("abcdef", "abcdeg"));
	assert_false(auth_equal_ct("abcdef", "bbcdef"));
	assert_false(auth_equal_ct("abcdef", "abcde"));
	assert_false(auth_equal_ct("", "a"));
	assert_true(auth_equal_ct("", ""));
}

static void token_format(void **state)
{
	(void)state;
	char token[PB_TOKEN_BUF], id[PB_ID_BUF], hash[PB_TOKEN_HASH_HEX], id2[PB_ID_BUF], again[PB_TOKEN_HASH_HEX];
	char err[PB_ERR_MAX];
	assert_int_equal(auth_token_new(token, id, hash, err), PB_OK);
	assert_int_equal(strlen(token), PB_TOKEN_BUF - 1);
	assert_memory_equal(token, "pbi_", 4);
	assert_int_equal(auth_token_id(token, id2, err), PB_OK);
	assert_string_equal(id, id2);
	auth_token_hash(token, again);
	assert_string_equal(hash, again);
	/* the stored hash does not contain the secret */
	assert_null(strstr(token, hash));

	char other[PB_TOKEN_BUF], oid[PB_ID_BUF], ohash[PB_TOKEN_HASH_HEX];
	assert_int_equal(auth_token_new(other, oid, ohash, err), PB_OK);
	assert_string_not_equal(token, other);

	assert_int_equal(auth_token_id("pbi_short", id2, err), PB_EINVAL);
	char bad[PB_TOKEN_BUF];
	memcpy(bad, token, sizeof bad);
	/* not lower-case hex, in either part: the characters next to the ranges too */
	const char near[] = { 'Z', 'A', 'F', 'g', '/', ':', '`', ' ' };
	for (size_t i = 0; i < sizeof near; i++)
		for (int at = 10; at <= 60; at += 50) {
			memcpy(bad, token, sizeof bad);
			bad[at] = near[i];
			assert_int_equal(auth_token_id(bad, id2, err), PB_EINVAL);
		}
	memcpy(bad, token, sizeof bad);
	bad[10] = '0';
	bad[60] = 'f';
	assert_int_equal(auth_token_id(bad, id2, err), PB_OK);
}

static void identify(void **state)
{
	(void)state;
	char token[PB_TOKEN_BUF], err[PB_ERR_MAX], header[PB_TOKEN_BUF + 16];
	pb_identity who;
	assert_int_equal(auth_token_new(token, stored_id, stored_hash, err), PB_OK);

	assert_int_equal(auth_identify(NULL, &ops, "alice", NULL, &who, err), PB_OK);
	assert_true(who.known);
	assert_int_equal(who.role, PB_ROLE_OWNER);
	assert_int_equal(auth_identify(NULL, &ops, "mallory", NULL, &who, err), PB_ENOTFOUND);
	assert_false(who.known);
	assert_non_null(strstr(err, "mallory"));

	xsnprintf(header, sizeof header, "Bearer %s", token);
	assert_int_equal(auth_identify(NULL, &ops, NULL, header, &who, err), PB_OK);
	assert_string_equal(who.user_name, "bob");
	assert_int_equal(who.role, PB_ROLE_MEMBER);
	xsnprintf(header, sizeof header, "bearer %s", token);   /* scheme is case-insensitive */
	assert_int_equal(auth_identify(NULL, &ops, NULL, header, &who, err), PB_OK);

	/* right id, wrong secret: refused, and the message does not echo the token */
	char wrong[PB_TOKEN_BUF];
	memcpy(wrong, token, sizeof wrong);
	wrong[PB_TOKEN_BUF - 2] = wrong[PB_TOKEN_BUF - 2] == 'a' ? 'b' : 'a';
	xsnprintf(header, sizeof header, "Bearer %s", wrong);
	assert_int_equal(auth_identify(NULL, &ops, NULL, header, &who, err), PB_ENOTFOUND);
	assert_false(who.known);
	assert_null(strstr(err, wrong + 37));

	assert_int_equal(auth_identify(NULL, &ops, NULL, "Basic YWxpY2U6eA==", &who, err), PB_ENOTFOUND);
	assert_int_equal(auth_identify(NULL, &ops, NULL, "Bearer garbage", &who, err), PB_ENOTFOUND);
	assert_int_equal(auth_identify(NULL, &ops, NULL, NULL, &who, err), PB_ENOTFOUND);
	assert_int_equal(auth_identify(NULL, &ops, "", "", &who, err), PB_ENOTFOUND);
}

static void roles(void **state)
{
	(void)state;
	pb_role r;
	assert_int_equal(auth_role_parse("owner", &r), PB_OK);
	assert_int_equal(r, PB_ROLE_OWNER);
	assert_int_equal(auth_role_parse("member", &r), PB_OK);
	assert_int_equal(r, PB_ROLE_MEMBER);
	assert_int_equal(auth_role_parse("admin", &r), PB_EINVAL);
	assert_int_equal(auth_role_parse(NULL, &r), PB_EINVAL);
	assert_string_equal(auth_role_name(PB_ROLE_OWNER), "owner");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(token_hash_is_sha256),
		cmocka_unit_test(constant_time_compare),
		cmocka_unit_test(token_format),
		cmocka_unit_test(identify),
		cmocka_unit_test(roles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
