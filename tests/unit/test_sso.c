/* Signing in with Microsoft, the stores under it: e-mails and Entra ids of users (first match by
 * e-mail, then pinned), self-sign-up tenants, sessions (idle and absolute ends, the once-a-minute
 * renewal, revoking), sign-in states kept apart from Power BI ones, and the provider key cache's
 * once-a-minute claim. The sign-in settings are test_config.c's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/connections.h"
#include "core/store/identity.h"
#include "core/store/oidc_keys.h"
#include "core/store/sessions.h"
#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

#define TENANT "7e1a0000-0000-4000-8000-000000000001"
#define OID_A  "0a0a0a0a-0000-4000-8000-00000000000a"
#define OID_B  "0b0b0b0b-0000-4000-8000-00000000000b"
#define KEY_A  "1111111111111111111111111111111111111111111111111111111111111111"
#define KEY_S  "3333333333333333333333333333333333333333333333333333333333333333"

static char tmpdir[64];
static pb_db *db;
static pb_keyring *seal, *sign;
static char acme[PB_ID_BUF], globex[PB_ID_BUF], ann[PB_ID_BUF], bob[PB_ID_BUF], cat[PB_ID_BUF];

static int setup(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	if (tu_db_setup("sso", tmpdir, NULL, &db, NULL, err) ||
	    tu_acme(db, PB_ROLE_OWNER, acme, ann, err) || identity_org_create(db, "globex", globex, err) ||
	    identity_user_add(db, "bob@acme.example", "acme", PB_ROLE_MEMBER, NULL, 0, bob, err) ||
	    identity_user_add(db, "cat", "globex", PB_ROLE_OWNER, NULL, 0, cat, err) ||
	    pb_keyring_parse(KEY_A, &seal, err) || pb_keyring_parse(KEY_S, &sign, err))
		return tu_setup_failed(err);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pb_keyring_free(seal);
	pb_keyring_free(sign);
	return tu_db_teardown(tmpdir, db, NULL);
}

static void sql_exec(const char *sql)
{
	tu_sql(db, sql);
}

static void emails_normalized_and_unique(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], out[PB_EMAIL_MAX + 1];
	assert_int_equal(identity_email_normalize("  Ann@Acme.Example ", out, err), PB_OK);
	assert_string_equal(out, "ann@acme.example");
	static const char *const bad[] = { "", "ann", "@acme", "ann@", "a@b@c", "an n@acme", "ann@acme\n" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(identity_email_normalize(bad[i], out, err), PB_EINVAL);
	assert_int_equal(identity_user_set_email(db, "ann", "ANN@acme.example", err), PB_OK);
	/* another user cannot have the same address */
	assert_int_equal(identity_user_set_email(db, "cat", "ann@acme.example", err), PB_EINVAL);
	assert_non_null(strstr(err, "another user"));
	assert_int_equal(identity_user_set_email(db, "nobody", "x@y.z", err), PB_ENOTFOUND);
}

static void first_sign_in_by_email_then_pinned(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], pinned[PB_ENTRA_ID_BUF];
	pb_identity who;
	/* by e-mail, or by a name that is an address (bob's) */
	const char *by_mail[] = { "ann@acme.example", NULL };
	assert_int_equal(identity_user_by_email(db, by_mail, 2, &who, pinned, err), PB_OK);
	assert_string_equal(who.user_id, ann);
	assert_string_equal(pinned, "");
	const char *by_name[] = { NULL, "bob@acme.example" };
	assert_int_equal(identity_user_by_email(db, by_name, 2, &who, pinned, err), PB_OK);
	assert_string_equal(who.user_id, bob);
	/* two addresses naming two users: refused, never a guess */
	const char *both[] = { "ann@acme.example", "bob@acme.example" };
	assert_int_equal(identity_user_by_email(db, both, 2, &who, pinned, err), PB_ECONFLICT);
	const char *nobody[] = { "zed@acme.example", NULL };
	assert_int_equal(identity_user_by_email(db, nobody, 2, &who, pinned, err), PB_ENOTFOUND);

	assert_int_equal(identity_user_by_entra(db, TENANT, OID_A, &who, err), PB_ENOTFOUND);
	assert_int_equal(identity_user_pin_entra(db, ann, TENANT, OID_A, NULL, err), PB_OK);
	assert_int_equal(identity_user_by_entra(db, TENANT, OID_A, &who, err), PB_OK);
	assert_string_equal(who.user_name, "ann");
	/* pinned once: not to another account, and the account not to another user */
	assert_int_equal(identity_user_pin_entra(db, ann, TENANT, OID_B, NULL, err), PB_ECONFLICT);
	assert_int_equal(identity_user_pin_entra(db, bob, TENANT, OID_A, NULL, err), PB_ECONFLICT);
	assert_int_equal(identity_user_by_email(db, by_mail, 2, &who, pinned, err), PB_OK);
	assert_string_equal(pinned, TENANT);
	/* pinning bob gives him the token's e-mail when he has none */
	assert_int_equal(identity_user_pin_entra(db, bob, TENANT, OID_B, "bob.b@acme.example", err), PB_OK);
	const char *bobs_mail[] = { "bob.b@acme.example", NULL };
	assert_int_equal(identity_user_by_email(db, bobs_mail, 2, &who, pinned, err), PB_OK);
	assert_string_equal(who.user_id, bob);
}

static void self_sign_up_tenant(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], tenant[PB_ENTRA_ID_BUF], org[PB_ID_BUF];
	pb_identity who;
	assert_int_equal(identity_org_signup_get(db, acme, tenant, err), PB_OK);
	assert_string_equal(tenant, "");
	assert_int_equal(identity_org_by_signup_tenant(db, TENANT, org, err), PB_ENOTFOUND);
	assert_int_equal(identity_org_signup_set(db, acme, "contoso.example", err), PB_EINVAL);
	assert_int_equal(identity_org_signup_set(db, acme, "7E1A0000-0000-4000-8000-000000000001", err), PB_OK);
	assert_int_equal(identity_org_signup_get(db, acme, tenant, err), PB_OK);
	assert_string_equal(tenant, TENANT);
	assert_int_equal(identity_org_signup_set(db, globex, TENANT, err), PB_ECONFLICT);
	assert_int_equal(identity_org_by_signup_tenant(db, TENANT, org, err), PB_OK);
	assert_string_equal(org, acme);
	assert_int_equal(identity_user_signup(db, acme, "dee@acme.example", "dee@acme.example", TENANT,
					      "0d0d0d0d-0000-4000-8000-00000000000d", &who, err), PB_OK);
	assert_int_equal(who.role, PB_ROLE_MEMBER);
	assert_string_equal(who.org_id, acme);
	/* a name or e-mail that is taken */
	assert_int_equal(identity_user_signup(db, acme, "ann", NULL, TENANT, "0e0e0e0e-0000-4000-8000-00000000000e", &who,
					      err), PB_ECONFLICT);
	assert_int_equal(identity_user_signup(db, acme, "eve", "ann@acme.example", TENANT,
					      "0e0e0e0e-0000-4000-8000-00000000000e", &who, err), PB_ECONFLICT);
	assert_int_equal(identity_org_signup_set(db, acme, NULL, err), PB_OK);
	assert_int_equal(identity_org_by_signup_tenant(db, TENANT, org, err), PB_ENOTFOUND);
}

static void sessions_end_idle_absolute_and_revoked(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], id[PB_ID_BUF], id2[PB_ID_BUF];
	pb_identity who;
	json_t *list = NULL;
	const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
	const char *h2 = "2222222222222222222222222222222222222222222222222222222222222222";
	assert_int_equal(sessions_create(db, ann, h1, "Firefox on Linux", 3600, 600, id, err), PB_OK);
	assert_int_equal(sessions_identify(db, h1, 600, &who, err), PB_OK);
	assert_string_equal(who.user_id, ann);
	assert_string_equal(who.session_id, id);
	assert_false(who.session_renew);   /* just seen */
	assert_int_equal(sessions_identify(db, "ffff", 600, &who, err), PB_ENOTFOUND);
	/* seen 2 minutes ago: still live, and its last sighting should move */
	sql_exec("UPDATE sessions SET last_seen_at = '2000-01-01T00:00:00.000Z'");
	char recent[PB_TIME_BUF], q[256];
	pb_time_in(-120 * 1000, recent);
	xsnprintf(q, sizeof q, "UPDATE sessions SET last_seen_at = '%s'", recent);
	sql_exec(q);
	assert_int_equal(sessions_identify(db, h1, 600, &who, err), PB_OK);
	assert_true(who.session_renew);
	assert_int_equal(sessions_seen(db, id, err), PB_OK);
	assert_int_equal(sessions_identify(db, h1, 600, &who, err), PB_OK);
	assert_false(who.session_renew);
	/* a short idle timeout renews sooner (half of it) */
	pb_time_in(-40 * 1000, recent);
	xsnprintf(q, sizeof q, "UPDATE sessions SET last_seen_at = '%s'", recent);
	sql_exec(q);
	assert_int_equal(sessions_identify(db, h1, 60, &who, err), PB_OK);
	assert_true(who.session_renew);
	/* idle too long */
	assert_int_equal(sessions_identify(db, h1, 30, &who, err), PB_ENOTFOUND);
	assert_non_null(strstr(err, "without use"));
	/* the list: live ones only, newest first, the current marked */
	sql_exec("UPDATE sessions SET created_at = '2001-01-01T00:00:00.000Z'");
	assert_int_equal(sessions_create(db, ann, h2, "curl", 3600, 600, id2, err), PB_OK);
	assert_int_equal(sessions_list(db, ann, 600, id2, &list, err), PB_OK);
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), id2);
	assert_true(json_is_true(json_object_get(json_array_get(list, 0), "current")));
	assert_true(json_is_false(json_object_get(json_array_get(list, 1), "current")));
	assert_null(json_object_get(json_array_get(list, 0), "token_hash"));
	json_decref(list);
	/* revoking: only the owner's, once */
	assert_int_equal(sessions_revoke(db, bob, id2, err), PB_ENOTFOUND);
	assert_int_equal(sessions_revoke(db, ann, id2, err), PB_OK);
	assert_int_equal(sessions_revoke(db, ann, id2, err), PB_ENOTFOUND);
	assert_int_equal(sessions_identify(db, h2, 600, &who, err), PB_ENOTFOUND);
	assert_non_null(strstr(err, "signed out"));
	/* past the absolute end */
	sql_exec("UPDATE sessions SET expires_at = '2000-01-01T00:00:00.000Z' WHERE token_hash LIKE '1111%'");
	assert_int_equal(sessions_identify(db, h1, 600, &who, err), PB_ENOTFOUND);
	assert_non_null(strstr(err, "end"));
	assert_int_equal(sessions_revoke_hash(db, h1, err), PB_ENOTFOUND);
	/* ended sessions are dropped when a new one starts */
	assert_int_equal(sessions_create(db, cat, h2 + 1, "x", 3600, 600, id, err), PB_OK);
	assert_int_equal(sessions_list(db, ann, 600, NULL, &list, err), PB_OK);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
	db_stmt *st;
	assert_int_equal(db_prepare(db, "SELECT count(*) FROM sessions", &st, err), PB_OK);
	assert_int_equal(db_row(db, st, err), 1);
	assert_int_equal(db_col_int(st, 0), 1);
	db_done(st);
}

static void signin_states_apart_from_powerbi(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], *signin = NULL, *pbi = NULL;
	oauth_state in = { .tenant_id = TENANT, .client_id = "c", .redirect_uri = "https://x/signin/callback",
			   .return_to = "/back", .code_verifier = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG" };
	oauth_state out;
	xsnprintf(in.id_nonce, sizeof in.id_nonce, "%s", "nonce-of-the-browser");
	in.with_powerbi = true;
	assert_int_equal(oauth_signin_begin(db, seal, sign, &in, &signin, err), PB_OK);
	memcpy(in.org_id, acme, sizeof in.org_id);
	memcpy(in.user_id, ann, sizeof in.user_id);
	in.id_nonce[0] = '\0';
	assert_int_equal(oauth_state_begin(db, seal, sign, &in, &pbi, err), PB_OK);
	/* a Power BI state does not finish a sign-in, nor the other way round */
	assert_int_equal(oauth_signin_finish(db, seal, sign, pbi, &out, err), PB_EINVAL);
	assert_int_equal(oauth_state_finish(db, seal, sign, signin, acme, ann, &out, err), PB_EINVAL);
	assert_int_equal(oauth_signin_finish(db, seal, sign, signin, &out, err), PB_OK);
	assert_string_equal(out.id_nonce, "nonce-of-the-browser");
	assert_true(out.with_powerbi);
	assert_string_equal(out.return_to, "/back");
	assert_string_equal(out.org_id, "");
	oauth_state_release(&out);
	assert_int_equal(oauth_signin_finish(db, seal, sign, signin, &out, err), PB_EINVAL);
	assert_non_null(strstr(err, "already used"));
	assert_int_equal(oauth_state_finish(db, seal, sign, pbi, acme, ann, &out, err), PB_OK);
	oauth_state_release(&out);
	/* a sign-in state needs the ID token's nonce */
	char *third = NULL;
	assert_int_equal(oauth_signin_begin(db, seal, sign, &in, &third, err), PB_EINTERNAL);
	assert_null(third);
	free(signin);
	free(pbi);
}

static void key_cache_claims_once_a_minute(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	oidc_cached c = { 0 };
	const char *url = "https://login.example/t/v2.0/.well-known/openid-configuration";
	assert_int_equal(oidc_cache_get(db, url, &c, err), PB_ENOTFOUND);
	assert_int_equal(oidc_cache_put(db, url, "{\"issuer\":\"x\"}", "{\"keys\":[]}", 86400, err), PB_OK);
	assert_int_equal(oidc_cache_get(db, url, &c, err), PB_OK);
	assert_string_equal(c.jwks, "{\"keys\":[]}");
	assert_true(c.expires_ms > pb_epoch_ms() + 86000 * 1000LL);
	/* fetched a moment ago: no refetch for an unknown key; an expired copy may be claimed */
	assert_int_equal(oidc_cache_claim(db, url, c.claim, 60, err), PB_ECONFLICT);
	assert_int_equal(oidc_cache_claim(db, url, c.claim, 0, err), PB_OK);
	/* the claim moved fetched_at: a second claimer with the old value loses */
	assert_int_equal(oidc_cache_claim(db, url, c.claim, 0, err), PB_ECONFLICT);
	oidc_cached_release(&c);
	sql_exec("UPDATE oidc_providers SET fetched_at = '2000-01-01T00:00:00.000Z'");
	assert_int_equal(oidc_cache_get(db, url, &c, err), PB_OK);
	assert_int_equal(oidc_cache_claim(db, url, c.claim, 60, err), PB_OK);
	oidc_cached_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(emails_normalized_and_unique),
		cmocka_unit_test(first_sign_in_by_email_then_pinned),
		cmocka_unit_test(self_sign_up_tenant),
		cmocka_unit_test(sessions_end_idle_absolute_and_revoked),
		cmocka_unit_test(signin_states_apart_from_powerbi),
		cmocka_unit_test(key_cache_claims_once_a_minute),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
