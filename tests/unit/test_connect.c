/* Connect Power BI: return_to checks, the signed single-use OAuth state, the settings store
 * (sealed secret, keep-on-update, sso), the connection store (scoping, one per tenant), the
 * token service against the emulator (refresh near expiry, forced refresh, exactly one
 * refresh for 20 processes, invalid_grant -> needs_reconnect), key rotation, app sessions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/store/connections.h"
#include "core/store/identity.h"
#include "core/flow/pbi_session.h"
#include "core/store/powerbi_settings.h"
#include "core/flow/powerbi_setup.h"
#include "msapi/entra.h"
#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/http.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

#define TENANT   "7e1a0000-0000-4000-8000-000000000001"   /* tests/fixtures/tenants/demo.json */
#define APP_ID   "11111111-aaaa-4000-8000-000000000001"
#define APP_SEC  "demo-web-secret"
#define ALICE    "alice@contoso.example"
#define REDIRECT "https://pbiport.test/powerbi/callback"
#define KEY_A    "1111111111111111111111111111111111111111111111111111111111111111"
#define KEY_B    "2222222222222222222222222222222222222222222222222222222222222222"
#define KEY_SIGN "3333333333333333333333333333333333333333333333333333333333333333"
#define PROCS    20

static char tmpdir[64], db_path[256];
static pb_db *db;
static pb_config cfg;
static pb_keyring *signing;
static char org_id[PB_ID_BUF], ann_id[PB_ID_BUF], bob_id[PB_ID_BUF];
static char org2_id[PB_ID_BUF], cat_id[PB_ID_BUF];

static int setup(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "";
	if (tu_db_setup("connect", tmpdir, db_path, &db, &cfg, err) ||
	    tu_acme(db, PB_ROLE_OWNER, org_id, ann_id, err) || identity_org_create(db, "globex", org2_id, err) ||
	    identity_user_add(db, "bob", "acme", PB_ROLE_MEMBER, NULL, 0, bob_id, err) ||
	    identity_user_add(db, "cat", "globex", PB_ROLE_OWNER, NULL, 0, cat_id, err) ||
	    pb_keyring_parse(KEY_A, &cfg.encryption_keys, err) || pb_keyring_parse(KEY_SIGN, &signing, err))
		return tu_setup_failed(err);
	cfg.rememberme_keys = signing;
	return 0;
}

static int teardown(void **state)
{
	pb_keyring_free(signing);
	tu_emu_teardown(state);
	return tu_db_teardown(tmpdir, db, &cfg);
}

/* The failure of the last setup_save, token_once or session call. */
static pb_failure last;

/* pbi_setup_save with its failure in last and the message in err. */
static int setup_save(const pb_config *c, const char *org, const char *user, const pbi_settings_input *in,
		      pbi_setup_saved *saved, char *err)
{
	int rc = pbi_setup_save(db, c, org, user, in, saved, &last);
	memcpy(err, last.message, PB_ERR_MAX);
	return rc;
}

static bool have_emu(void)
{
	if (!tu_have_emu())   /* demo.json */
		return false;
	emu_config(&tu_emu, &cfg);
	tu_emu_ok("POST", "reset", NULL);
	return true;
}

static void sql_exec(const char *sql)
{
	tu_sql(db, sql);
}

/* ---------- return_to ---------- */

static void return_to_only_local_paths(void **state)
{
	(void)state;
	static const char *const good[] = { "/", "/data-products/x", "/a?b=c&d=/e", "/a#frag", "/a//b", NULL };
	static const char *const bad[] = { "", "https://evil.example", "//evil", "/\\evil", "\\\\evil", "evil",
					   "/a\\b", "/ok\r\nX: y", "/tab\there", "javascript:alert(1)", NULL };
	for (size_t i = 0; good[i]; i++)
		assert_true(conn_return_to_ok(good[i]));
	for (size_t i = 0; bad[i]; i++)
		assert_false(conn_return_to_ok(bad[i]));
	assert_false(conn_return_to_ok(NULL));
	char longp[PB_RETURN_TO_MAX + 2];
	memset(longp, 'a', sizeof longp - 1);
	longp[0] = '/';
	longp[sizeof longp - 1] = '\0';
	assert_false(conn_return_to_ok(longp));
}

/* ---------- OAuth state ---------- */

static char *begin_state(const char *user_id, const char *verifier)
{
	char err[PB_ERR_MAX], *st = NULL;
	oauth_state in = { .tenant_id = TENANT, .client_id = APP_ID, .redirect_uri = REDIRECT,
			   .return_to = "/back", .code_verifier = (char *)verifier };
	memcpy(in.org_id, org_id, sizeof in.org_id);
	memcpy(in.user_id, user_id, sizeof in.user_id);
	assert_int_equal(oauth_state_begin(db, cfg.encryption_keys, signing, &in, &st, err), PB_OK);
	return st;
}

static void expect_refused(const char *st, const char *org, const char *user, const char *word)
{
	char err[PB_ERR_MAX];
	oauth_state out;
	assert_int_equal(oauth_state_finish(db, cfg.encryption_keys, signing, st, org, user, &out, err), PB_EINVAL);
	if (!strstr(err, word))
		fail_msg("expected '%s' in: %s", word, err);
}

static void state_signed_bound_single_use_expiring(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	const char *verifier = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
	char *st = begin_state(ann_id, verifier);
	assert_true(strlen(st) < PB_OAUTH_STATE_MAX);
	assert_null(strstr(st, verifier));
	/* the verifier is sealed at rest */
	db_stmt *q;
	assert_int_equal(db_prepare(db, "SELECT code_verifier_sealed FROM oauth_states", &q, err), PB_OK);
	while (db_row(db, q, err) == 1) {
		assert_null(strstr(db_col_text(q, 0), verifier));
		assert_true(!strncmp(db_col_text(q, 0), "v1:", 3));
	}
	db_done(q);

	/* tampered: each part changed */
	char *t = xstrdup(st);
	t[strlen(t) - 1] = t[strlen(t) - 1] == 'A' ? 'B' : 'A';
	expect_refused(t, org_id, ann_id, "altered");
	t[0] = t[0] == 'A' ? 'B' : 'A';
	expect_refused(t, org_id, ann_id, "altered");
	free(t);
	expect_refused("", org_id, ann_id, "missing");
	expect_refused("a.b.c", org_id, ann_id, "malformed");
	expect_refused("no-dots-at-all", org_id, ann_id, "malformed");
	/* another user of the same org, and a user of another org */
	expect_refused(st, org_id, bob_id, "another user");
	expect_refused(st, org2_id, cat_id, "another user");

	oauth_state out;
	assert_int_equal(oauth_state_finish(db, cfg.encryption_keys, signing, st, org_id, ann_id, &out, err), PB_OK);
	assert_string_equal(out.code_verifier, verifier);
	assert_string_equal(out.return_to, "/back");
	assert_string_equal(out.redirect_uri, REDIRECT);
	assert_string_equal(out.client_id, APP_ID);
	oauth_state_release(&out);
	/* replay */
	expect_refused(st, org_id, ann_id, "already used");
	free(st);

	/* expired: a correctly signed state whose time is over */
	st = begin_state(ann_id, verifier);
	char nonce[OAUTH_NONCE_BUF], msg[256], sig[PB_HMAC_B64URL_LEN + 1], old[PB_OAUTH_STATE_MAX];
	xsnprintf(nonce, sizeof nonce, "%.*s", (int)strcspn(st, "."), st);
	long long exp = (long long)(pb_epoch_ms() / 1000) - 1;
	xsnprintf(msg, sizeof msg, "pbiport-oauth-state-v1\n%s\n%lld\n%s\n%s", nonce, exp, org_id, ann_id);
	assert_int_equal(pb_keyring_hmac_sign(signing, msg, strlen(msg), sig, err), PB_OK);
	xsnprintf(old, sizeof old, "%s.%lld.%s", nonce, exp, sig);
	expect_refused(old, org_id, ann_id, "expired");
	/* a state for a nonce that was never issued (signed with the right key) */
	xsnprintf(msg, sizeof msg, "pbiport-oauth-state-v1\n%s\n%lld\n%s\n%s",
		  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", exp + 600, org_id, ann_id);
	assert_int_equal(pb_keyring_hmac_sign(signing, msg, strlen(msg), sig, err), PB_OK);
	xsnprintf(old, sizeof old, "%s.%lld.%s", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", exp + 600, sig);
	expect_refused(old, org_id, ann_id, "unknown");
	/* a row whose verifier went missing */
	sql_exec("UPDATE oauth_states SET code_verifier_sealed = '' WHERE used_at IS NULL");
	expect_refused(st, org_id, ann_id, "PKCE");
	free(st);
	/* a signing key rotation keeps states in flight valid: old key second in the ring */
	st = begin_state(ann_id, verifier);
	pb_keyring *rotated = NULL;
	assert_int_equal(pb_keyring_parse(KEY_B "," KEY_SIGN, &rotated, err), PB_OK);
	assert_int_equal(oauth_state_finish(db, cfg.encryption_keys, rotated, st, org_id, ann_id, &out, err), PB_OK);
	oauth_state_release(&out);
	pb_keyring_free(rotated);
	free(st);
}

/* ---------- settings ---------- */

static void settings_sealed_kept_and_sso(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pbi_settings s;
	pbi_app app;
	assert_int_equal(pbi_settings_get(db, &cfg, org2_id, &s, err), PB_ENOTFOUND);
	assert_int_equal(pbi_settings_app(db, &cfg, org2_id, &app, err), PB_ENOTFOUND);

	pbi_settings_input sso = { .mode = "sso" };
	assert_int_equal(setup_save(&cfg, org_id, ann_id, &sso, NULL, err), PB_EINVAL);
	assert_non_null(strstr(err, "PBIPORT_SSO_TENANT_ID"));
	pbi_settings_input in = { .mode = "custom", .tenant_id = TENANT, .client_id = APP_ID };
	assert_int_equal(setup_save(&cfg, org_id, ann_id, &in, NULL, err), PB_EINVAL);
	assert_non_null(strstr(err, "client_secret"));
	in.tenant_id = "bad tenant/../x";
	in.client_secret = APP_SEC;
	assert_int_equal(setup_save(&cfg, org_id, ann_id, &in, NULL, err), PB_EINVAL);
	in.tenant_id = TENANT;
	pbi_settings_input nomode = { 0 };
	assert_int_equal(setup_save(&cfg, org_id, ann_id, &nomode, NULL, err), PB_EINVAL);
	assert_int_equal(setup_save(&cfg, org_id, ann_id, &in, NULL, err), PB_OK);

	assert_int_equal(pbi_settings_get(db, &cfg, org_id, &s, err), PB_OK);
	assert_string_equal(s.mode, "custom");
	assert_true(s.has_client_secret);
	json_t *j = pbi_settings_json(&s, REDIRECT);
	char *text = json_dumps(j, 0);
	assert_null(strstr(text, APP_SEC));
	assert_non_null(strstr(text, "\"redirect_uri\": \"" REDIRECT "\""));
	free(text);
	json_decref(j);
	pbi_settings_release(&s);

	/* sealed at rest, bound to the org */
	db_stmt *q;
	assert_int_equal(db_prepare(db, "SELECT client_secret_sealed FROM powerbi_settings", &q, err), PB_OK);
	assert_int_equal(db_row(db, q, err), 1);
	assert_null(strstr(db_col_text(q, 0), APP_SEC));
	db_done(q);
	sql_exec("INSERT INTO powerbi_settings (org_id, mode, tenant_id, client_id, client_secret_sealed, updated_at) "
		 "SELECT o.id, 'custom', s.tenant_id, s.client_id, s.client_secret_sealed, s.updated_at "
		 "FROM powerbi_settings s, organizations o WHERE o.name = 'globex'");
	assert_int_not_equal(pbi_settings_app(db, &cfg, org2_id, &app, err), PB_OK);
	sql_exec("DELETE FROM powerbi_settings WHERE org_id IN (SELECT id FROM organizations WHERE name = 'globex')");

	/* update without a secret keeps it */
	in.client_secret = NULL;
	assert_int_equal(setup_save(&cfg, org_id, ann_id, &in, NULL, err), PB_OK);
	assert_int_equal(pbi_settings_app(db, &cfg, org_id, &app, err), PB_OK);
	assert_string_equal(app.client_secret, APP_SEC);
	assert_string_equal(app.tenant_id, TENANT);
	pbi_app_release(&app);

	/* sso once the deployment's app is configured */
	pb_config c2 = cfg;
	c2.sso_tenant_id = "sso-tenant";
	c2.sso_client_id = "sso-client";
	c2.sso_client_secret = "sso-secret";
	assert_int_equal(setup_save(&c2, org2_id, cat_id, &sso, NULL, err), PB_OK);
	assert_int_equal(pbi_settings_get(db, &c2, org2_id, &s, err), PB_OK);
	assert_string_equal(s.mode, "sso");
	assert_string_equal(s.client_id, "sso-client");
	assert_true(s.has_client_secret);
	pbi_settings_release(&s);
	assert_int_equal(pbi_settings_app(db, &c2, org2_id, &app, err), PB_OK);
	assert_string_equal(app.client_secret, "sso-secret");
	pbi_app_release(&app);
	/* ... and the server lost its PBIPORT_SSO_*: a clear not-configured */
	assert_int_equal(pbi_settings_app(db, &cfg, org2_id, &app, err), PB_ENOTFOUND);
	assert_non_null(strstr(err, "PBIPORT_SSO"));
	sql_exec("DELETE FROM powerbi_settings WHERE org_id IN (SELECT id FROM organizations WHERE name = 'globex')");
}

/* ---------- connections against the emulator ---------- */

static long long refresh_exchanges(void)
{
	char *body = NULL;
	assert_int_equal(emu_ctl(&tu_emu, "GET", "state?sections=tokens", NULL, &body), 200);
	json_t *j = json_loads(body, 0, NULL);
	free(body);
	assert_non_null(j);
	long long n = json_integer_value(json_object_get(json_object_get(j, "tokens"), "refresh_token_exchanges"));
	json_decref(j);
	return n;
}

/* alice consents (login_hint: no page) and the code is exchanged; the tokens are stored for user. */
static void connect_user(const char *org, const char *user, char id[PB_ID_BUF])
{
	char err[PB_ERR_MAX], *url = NULL;
	pb_http *h = NULL;
	msapi c;
	entra_pkce p;
	pb_http_opts ho = { .ca_bundle = cfg.ca_bundle };
	assert_int_equal(pb_http_new(&ho, &h, err), PB_OK);
	msapi_init(&c, h, &cfg);
	assert_int_equal(entra_pkce_new(&p, err), PB_OK);
	entra_authorize a = { .tenant = TENANT, .client_id = APP_ID, .redirect_uri = REDIRECT, .scope = CONN_SCOPES,
			      .state = "s", .code_challenge = p.challenge, .login_hint = ALICE };
	assert_int_equal(entra_authorize_url(&c, &a, &url, err), PB_OK);
	pb_http_req req = { .method = "GET", .url = url };
	pb_http_resp resp;
	assert_int_equal(pb_http_do(h, &req, &resp, err), PB_OK);
	assert_int_equal(resp.status, 302);
	const char *loc = pb_http_header(&resp, "Location");
	assert_non_null(loc);
	const char *cs = strstr(loc, "code=");
	assert_non_null(cs);
	char code[512];
	xsnprintf(code, sizeof code, "%.*s", (int)strcspn(cs + 5, "&"), cs + 5);
	pb_http_resp_release(&resp);
	entra_app app = { TENANT, APP_ID, APP_SEC };
	entra_token tok;
	assert_int_equal(entra_exchange_code(&c, &app, code, REDIRECT, p.verifier, CONN_SCOPES, &tok, err), PB_OK);
	assert_int_equal(conn_save(db, cfg.encryption_keys, org, user, TENANT, APP_ID, &tok, id, err), PB_OK);
	entra_token_release(&tok);
	free(url);
	msapi_release(&c);
	pb_http_free(h);
}

static void store_scoping_and_one_per_tenant(void **state)
{
	(void)state;
	if (!have_emu())
		return;
	char err[PB_ERR_MAX], id1[PB_ID_BUF], id2[PB_ID_BUF];
	connect_user(org_id, bob_id, id1);
	json_t *l = NULL;
	assert_int_equal(conn_list(db, org_id, bob_id, &l, err), PB_OK);
	assert_int_equal(json_array_size(l), 1);
	char *text = json_dumps(l, 0);
	assert_null(strstr(text, "emu_at_"));
	assert_null(strstr(text, "emu_rt_"));
	assert_non_null(strstr(text, "Dataset.ReadWrite.All"));
	free(text);
	json_decref(l);
	/* connecting again replaces */
	connect_user(org_id, bob_id, id2);
	assert_string_not_equal(id1, id2);
	assert_int_equal(conn_list(db, org_id, bob_id, &l, err), PB_OK);
	assert_int_equal(json_array_size(l), 1);
	json_decref(l);
	/* other users and orgs see nothing and cannot delete it */
	assert_int_equal(conn_list(db, org_id, ann_id, &l, err), PB_OK);
	assert_int_equal(json_array_size(l), 0);
	json_decref(l);
	assert_int_equal(conn_delete(db, org_id, ann_id, id2, err), PB_ENOTFOUND);
	assert_int_equal(conn_delete(db, org2_id, cat_id, id2, err), PB_ENOTFOUND);
	assert_int_equal(conn_delete(db, org2_id, bob_id, id2, err), PB_ENOTFOUND);
	assert_int_equal(conn_delete(db, org_id, bob_id, id1, err), PB_ENOTFOUND);
	pbi_conn c;
	assert_int_equal(conn_find(db, org_id, bob_id, TENANT, &c, err), PB_OK);
	assert_string_equal(c.id, id2);
	conn_release(&c);
	assert_int_equal(conn_delete(db, org_id, bob_id, id2, err), PB_OK);
	assert_int_equal(conn_find(db, org_id, bob_id, NULL, &c, err), PB_ENOTFOUND);
}

/* The store's refresh function, as core/flow/pbi_session.c's: Entra through c. */
static int redeem(void *ctx, const char *refresh_token, entra_token *out, pb_failure *f)
{
	msapi *c = ctx;
	entra_app app = { TENANT, APP_ID, APP_SEC };
	int rc = entra_refresh(c, &app, refresh_token, CONN_SCOPES, out, f->message);
	return rc ? pbi_entra_user_fail(c, rc, f) : PB_OK;
}

static int token_once(const char *id, long long stale, char code[PB_CODE_MAX], long long *gen, char *err)
{
	pb_http *h = NULL;
	msapi c;
	char *tok = NULL;
	pb_failure f;
	pb_failure_clear(&f);
	pb_http_opts ho = { .ca_bundle = cfg.ca_bundle };
	int rc = pb_http_new(&ho, &h, f.message);
	msapi_init(&c, h, &cfg);
	if (!rc)
		rc = conn_token(db, cfg.encryption_keys, id, stale, redeem, &c, &tok, gen, &f);
	if (!rc && strncmp(tok, "emu_at_", 7))
		rc = pb_fail(&f, PB_EINTERNAL, NULL, "not an emulator token");
	xsnprintf(code, PB_CODE_MAX, "%s", rc ? pb_failure_code(&f) : "");
	memcpy(err, f.message, PB_ERR_MAX);
	pb_secret_free(tok, tok ? strlen(tok) : 0);
	msapi_release(&c);
	pb_http_free(h);
	return rc;
}

static void token_service_refreshes_once(void **state)
{
	(void)state;
	if (!have_emu())
		return;
	char err[PB_ERR_MAX], id[PB_ID_BUF], code[PB_CODE_MAX];
	long long gen = -1, base = refresh_exchanges();
	connect_user(org_id, ann_id, id);
	assert_int_equal(token_once(id, -1, code, &gen, err), PB_OK);
	assert_int_equal(gen, 0);
	assert_int_equal(refresh_exchanges(), base);
	/* within 5 minutes of expiry: refreshed first */
	char sql[256];
	char soon[PB_TIME_BUF];
	pb_time_in(120 * 1000, soon);
	xsnprintf(sql, sizeof sql, "UPDATE user_datasource_connection SET expires_at = '%s' WHERE id = '%s'", soon, id);
	sql_exec(sql);
	assert_int_equal(token_once(id, -1, code, &gen, err), PB_OK);
	assert_int_equal(gen, 1);
	assert_int_equal(refresh_exchanges(), base + 1);
	/* Microsoft said "expired" for generation 1: forced; for generation 0 (already moved on): not */
	assert_int_equal(token_once(id, 1, code, &gen, err), PB_OK);
	assert_int_equal(gen, 2);
	assert_int_equal(token_once(id, 0, code, &gen, err), PB_OK);
	assert_int_equal(gen, 2);
	assert_int_equal(refresh_exchanges(), base + 2);

	/* 20 processes, each with its own database handle, all holding an expired token */
	pb_time_in(-1000, soon);
	xsnprintf(sql, sizeof sql, "UPDATE user_datasource_connection SET expires_at = '%s' WHERE id = '%s'", soon, id);
	sql_exec(sql);
	/* a slow token endpoint keeps the winner's refresh in flight while the others arrive */
	tu_fault("{\"path_prefix\": \"/entra\", \"latency_ms\": 300}");
	pid_t pids[PROCS];
	for (int i = 0; i < PROCS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			pb_db *own = NULL;
			char e[PB_ERR_MAX], cd[PB_CODE_MAX];
			long long g = 0;
			int rc = db_open(db_path, false, &own, e);
			if (!rc) {
				pb_db *parent = db;
				db = own;   /* token_once uses the global handle */
				rc = token_once(id, -1, cd, &g, e);
				db = parent;
			}
			if (rc)
				fprintf(stderr, "child %d: %s\n", i, e);
			db_close(own);
			_exit(rc || g != 3 ? 1 : 0);
		}
	}
	int failed = 0;
	for (int i = 0; i < PROCS; i++) {
		int st = 0;
		waitpid(pids[i], &st, 0);
		failed += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	tu_no_faults();
	assert_int_equal(failed, 0);
	assert_int_equal(refresh_exchanges(), base + 3);

	/* a refresh token Entra no longer accepts: needs_reconnect, tokens erased */
	tu_fault("{\"expire_refresh_tokens\": true}");
	tu_no_faults();
	assert_int_not_equal(token_once(id, 3, code, &gen, err), PB_OK);
	assert_string_equal(code, "needs_reconnect");
	assert_non_null(strstr(err, "reconnect Power BI"));
	assert_int_not_equal(token_once(id, -1, code, &gen, err), PB_OK);
	assert_string_equal(code, "needs_reconnect");
	pbi_conn c;
	assert_int_equal(conn_find(db, org_id, ann_id, TENANT, &c, err), PB_OK);
	assert_string_equal(c.status, "needs_reconnect");
	conn_release(&c);
	db_stmt *q;
	assert_int_equal(db_prepare(db, "SELECT access_token_sealed IS NULL AND refresh_token_sealed IS NULL "
				    "FROM user_datasource_connection WHERE id = ?", &q, err), PB_OK);
	assert_int_equal(db_bind_text(q, 1, id, err), PB_OK);
	assert_int_equal(db_row(db, q, err), 1);
	assert_int_equal(db_col_int(q, 0), 1);
	db_done(q);
	/* unknown connection */
	assert_int_not_equal(token_once("00000000000000000000000000000000", -1, code, &gen, err), PB_OK);
	assert_string_equal(code, "not_connected");
}

static void sessions_user_and_app(void **state)
{
	(void)state;
	if (!have_emu())
		return;
	char err[PB_ERR_MAX], id[PB_ID_BUF];
	pbi_session s;
	/* settings for acme exist (settings test above); bob has no connection */
	assert_int_equal(pbi_session_open_user(&s, db, &cfg, org_id, bob_id, &last), PB_ECONFLICT);
	assert_string_equal(pb_failure_code(&last), "not_connected");
	assert_int_equal(pbi_session_open_user(&s, db, &cfg, org2_id, cat_id, &last), PB_ECONFLICT);
	assert_string_equal(pb_failure_code(&last), "not_configured");
	connect_user(org_id, bob_id, id);
	assert_int_equal(pbi_session_open_user(&s, db, &cfg, org_id, bob_id, &last), PB_OK);
	assert_true(!strncmp(s.api.token, "emu_at_", 7));
	/* Microsoft expires the token mid-session: the msapi callback refreshes through the row */
	long long base = refresh_exchanges();
	tu_fault("{\"expire_tokens\": true}");
	tu_no_faults();
	char *fresh = NULL;
	assert_int_equal(msapi_refresh_token(&s.api, s.api.token_gen, err), PB_OK);
	assert_int_equal(refresh_exchanges(), base + 1);
	pbi_conn c;
	assert_int_equal(conn_find(db, org_id, bob_id, TENANT, &c, err), PB_OK);
	assert_int_equal(c.token_gen, 1);
	conn_release(&c);
	free(fresh);
	pbi_session_release(&s);

	assert_int_equal(pbi_session_open_app(&s, &cfg, "push connection 'sales'", TENANT, APP_ID, APP_SEC, &last), PB_OK);
	assert_non_null(s.api.token);
	pbi_session_release(&s);
	/* the next session (a worker's next job) uses the thread's kept HTTP client: its token call
	 * goes over the connection the last one left open, no new connection or TLS handshake */
	unsigned long conns = pb_http_connections_opened();
	assert_int_equal(pbi_session_open_app(&s, &cfg, "push connection 'sales'", TENANT, APP_ID, APP_SEC, &last), PB_OK);
	pbi_session_release(&s);
	assert_int_equal(pb_http_connections_opened(), conns);
	/* refused credentials: the message says whose (msapi's words do not) and which part */
	assert_int_equal(pbi_session_open_app(&s, &cfg, "push connection 'sales'", TENANT, APP_ID, "Zq9-not-the-secret", &last),
			 PB_EINVAL);
	assert_string_equal(pb_failure_code(&last), "bad_credentials");
	assert_true(!strncmp(last.message, "push connection 'sales': Entra refused the client secret", 56));
	assert_null(strstr(last.message, "Zq9-not-the-secret"));
	assert_null(strstr(last.message, "Power BI settings"));
	assert_int_equal(pbi_session_open_app(&s, &cfg, NULL, "00000000-0000-4000-8000-00000000dead", APP_ID, APP_SEC, &last),
			 PB_EINVAL);
	assert_string_equal(pb_failure_code(&last), "bad_credentials");
	assert_non_null(strstr(last.message, "tenant"));
	assert_int_equal(pbi_session_open_app(&s, &cfg, "integration 'prod'", TENANT, APP_ID, "", &last), PB_EINVAL);
	assert_non_null(strstr(last.message, "integration 'prod'"));
	/* a user of an organization without Power BI settings */
	assert_int_not_equal(pbi_session_open_user(&s, db, &cfg, org2_id, cat_id, &last), PB_OK);
	assert_string_equal(pb_failure_code(&last), "not_configured");

	char *name = NULL;
	assert_int_equal(pbi_setup_test(db, &cfg, org_id, &name, &last), PB_OK);
	assert_string_equal(name, "pbiport");
	free(name);
}

/* The status of a connection (with its reason) as the list shows it. */
static void expect_listed(const char *org, const char *user, const char *status, const char *reason)
{
	char err[PB_ERR_MAX];
	json_t *l = NULL;
	assert_int_equal(conn_list(db, org, user, &l, err), PB_OK);
	assert_int_equal(json_array_size(l), 1);
	json_t *c = json_array_get(l, 0);
	assert_string_equal(json_string_value(json_object_get(c, "status")), status);
	if (reason)
		assert_non_null(strstr(json_string_value(json_object_get(c, "status_reason")), reason));
	else
		assert_true(json_is_null(json_object_get(c, "status_reason")));
	json_decref(l);
}

/* A save proves the credentials with Entra and stores the app's name at once; credentials
 * Entra refuses are not saved unless verify is off. */
static void settings_save_verifies_and_names_the_app(void **state)
{
	(void)state;
	if (!have_emu())
		return;
	char err[PB_ERR_MAX];
	pbi_settings s;
	pbi_setup_saved saved;
	pbi_settings_input in = { .mode = "custom", .tenant_id = TENANT, .client_id = APP_ID, .client_secret = APP_SEC,
				  .verify = true };
	sql_exec("UPDATE powerbi_settings SET application_name = NULL");
	assert_int_equal(setup_save(&cfg, org_id, ann_id, &in, &saved, err), PB_OK);
	assert_string_equal(saved.warning, "");
	assert_int_equal(pbi_settings_get(db, &cfg, org_id, &s, err), PB_OK);
	assert_non_null(s.application_name);
	assert_string_equal(s.application_name, "pbiport");   /* no test call needed */
	pbi_settings_release(&s);
	/* without a secret: the stored one is verified */
	in.client_secret = NULL;
	assert_int_equal(setup_save(&cfg, org_id, ann_id, &in, &saved, err), PB_OK);
	/* refused by Entra: nothing saved, the reason says which part */
	static const struct { const char *tenant, *client, *secret, *word; } bad[] = {
		{ TENANT, APP_ID, "Zq9-not-the-secret", "secret" },
		{ "00000000-0000-4000-8000-00000000dead", APP_ID, APP_SEC, "tenant" },
		{ TENANT, "00000000-0000-4000-8000-00000000beef", APP_SEC, "client id" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pbi_settings_input b = { .mode = "custom", .tenant_id = bad[i].tenant, .client_id = bad[i].client,
					 .client_secret = bad[i].secret, .verify = true };
		assert_int_not_equal(setup_save(&cfg, org_id, ann_id, &b, &saved, err), PB_OK);
		assert_string_equal(pb_failure_code(&last), "bad_credentials");
		for (char *p = err; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (!strstr(err, bad[i].word))
			fail_msg("case %zu: the reason does not name the %s: %s", i, bad[i].word, err);
		assert_null(strstr(err, "zq9-not-the-secret"));
		pbi_app app;
		assert_int_equal(pbi_settings_app(db, &cfg, org_id, &app, err), PB_OK);
		assert_string_equal(app.client_secret, APP_SEC);
		assert_string_equal(app.client_id, APP_ID);
		pbi_app_release(&app);
	}
	/* client ids are GUIDs */
	pbi_settings_input g = { .mode = "custom", .tenant_id = TENANT, .client_id = "my-app", .client_secret = APP_SEC };
	assert_int_equal(setup_save(&cfg, org_id, ann_id, &g, &saved, err), PB_EINVAL);
	assert_non_null(strstr(err, "GUID"));
	/* verify off: stored unchecked */
	pbi_settings_input off = { .mode = "custom", .tenant_id = TENANT, .client_id = APP_ID,
				   .client_secret = "Zq9-not-the-secret" };
	assert_int_equal(setup_save(&cfg, org_id, ann_id, &off, &saved, err), PB_OK);
	/* Graph cannot tell the name: saved all the same (the Power BI token proved the
	 * credentials), with a warning */
	tu_fault("{\"path_prefix\": \"/graph\", \"error_rate\": {\"status\": 403, \"percent\": 100}}");
	in.client_secret = APP_SEC;
	int rc = setup_save(&cfg, org_id, ann_id, &in, &saved, err);
	tu_no_faults();
	assert_int_equal(rc, PB_OK);
	assert_non_null(strstr(saved.warning, "Graph"));
	assert_int_equal(pbi_settings_get(db, &cfg, org_id, &s, err), PB_OK);
	assert_null(s.application_name);
	pbi_settings_release(&s);
	assert_int_equal(setup_save(&cfg, org_id, ann_id, &in, &saved, err), PB_OK);
}

/* One status for a connection: whichever path learns it is dead records it (with why), and
 * the list and the token service read the same. */
static void connection_status_one_source(void **state)
{
	(void)state;
	if (!have_emu())
		return;
	char err[PB_ERR_MAX], id[PB_ID_BUF], code[PB_CODE_MAX];
	long long gen;
	pbi_session s;
	sql_exec("DELETE FROM user_datasource_connection");
	connect_user(org_id, ann_id, id);
	expect_listed(org_id, ann_id, "active", NULL);
	/* the organization's app changes: the connection (made with the old app) needs a reconnect */
	pbi_settings_input other = { .mode = "custom", .tenant_id = TENANT,
				     .client_id = "11111111-aaaa-4000-8000-000000000003", .client_secret = "x" };
	assert_int_equal(setup_save(&cfg, org_id, ann_id, &other, NULL, err), PB_OK);
	expect_listed(org_id, ann_id, "needs_reconnect", CONN_APP_CHANGED);
	assert_int_not_equal(token_once(id, -1, code, &gen, err), PB_OK);
	assert_string_equal(code, "needs_reconnect");
	assert_non_null(strstr(err, CONN_APP_CHANGED));
	pbi_settings_input back = { .mode = "custom", .tenant_id = TENANT, .client_id = APP_ID, .client_secret = APP_SEC };
	assert_int_equal(setup_save(&cfg, org_id, ann_id, &back, NULL, err), PB_OK);
	/* reconnecting makes it active again */
	connect_user(org_id, ann_id, id);
	expect_listed(org_id, ann_id, "active", NULL);
	/* Entra refuses the refresh token: recorded with Entra's code */
	tu_fault("{\"expire_tokens\": true, \"expire_refresh_tokens\": true}");
	tu_no_faults();
	sql_exec("UPDATE user_datasource_connection SET expires_at = '2000-01-01T00:00:00.000Z'");
	assert_int_equal(pbi_session_open_user(&s, db, &cfg, org_id, ann_id, &last), PB_ECONFLICT);
	assert_string_equal(pb_failure_code(&last), "needs_reconnect");
	assert_non_null(strstr(last.message, "your Power BI connection: Entra refused the refresh token"));
	expect_listed(org_id, ann_id, "needs_reconnect", "AADSTS700082");
	/* the deployment's sign-in app changed on the server (no save): the session finds out and
	 * records it */
	connect_user(org2_id, cat_id, id);
	pb_config c2 = cfg;
	c2.sso_tenant_id = TENANT;
	c2.sso_client_id = "11111111-aaaa-4000-8000-000000000003";
	c2.sso_client_secret = "x";
	sql_exec("INSERT INTO powerbi_settings (org_id, mode, updated_at) SELECT id, 'sso', 'x' FROM organizations "
		 "WHERE name = 'globex'");
	expect_listed(org2_id, cat_id, "active", NULL);
	assert_int_equal(pbi_session_open_user(&s, db, &c2, org2_id, cat_id, &last), PB_ECONFLICT);
	assert_string_equal(pb_failure_code(&last), "needs_reconnect");
	expect_listed(org2_id, cat_id, "needs_reconnect", CONN_APP_CHANGED);
	sql_exec("DELETE FROM powerbi_settings WHERE org_id IN (SELECT id FROM organizations WHERE name = 'globex')");
	sql_exec("DELETE FROM user_datasource_connection");
}

static void rotate_keys_then_drop_old(void **state)
{
	(void)state;
	if (!have_emu())
		return;
	char err[PB_ERR_MAX], id[PB_ID_BUF], code[PB_CODE_MAX];
	size_t n = 0;
	connect_user(org_id, ann_id, id);
	char *st = begin_state(ann_id, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG");
	pb_keyring *old = cfg.encryption_keys, *both = NULL, *fresh = NULL;
	assert_int_equal(pb_keyring_parse(KEY_B "," KEY_A, &both, err), PB_OK);
	assert_int_equal(pb_keyring_parse(KEY_B, &fresh, err), PB_OK);
	cfg.encryption_keys = both;
	assert_int_equal(pbi_settings_rotate(db, &cfg, &n, err), PB_OK);
	assert_int_equal(n, 1);
	assert_int_equal(conn_rotate(db, both, &n, err), PB_OK);
	assert_true(n >= 3);   /* bob's and ann's two tokens... and the sign-in's verifier */
	assert_int_equal(conn_rotate(db, both, &n, err), PB_OK);
	assert_int_equal(n, 0); /* nothing left to do */
	cfg.encryption_keys = fresh;
	pbi_app app;
	assert_int_equal(pbi_settings_app(db, &cfg, org_id, &app, err), PB_OK);
	assert_string_equal(app.client_secret, APP_SEC);
	pbi_app_release(&app);
	long long gen;
	pb_keyring *saved = cfg.encryption_keys;
	assert_int_equal(token_once(id, -1, code, &gen, err), PB_OK);
	assert_int_equal(token_once(id, gen, code, &gen, err), PB_OK);   /* opens the refresh token too */
	oauth_state out;
	assert_int_equal(oauth_state_finish(db, fresh, signing, st, org_id, ann_id, &out, err), PB_OK);
	oauth_state_release(&out);
	free(st);
	/* the old key alone opens nothing any more */
	cfg.encryption_keys = old;
	assert_int_not_equal(pbi_settings_app(db, &cfg, org_id, &app, err), PB_OK);
	assert_int_not_equal(token_once(id, -1, code, &gen, err), PB_OK);
	cfg.encryption_keys = saved;
	pb_keyring_free(both);
	/* keep the ring the database is sealed with for teardown */
	pb_keyring_free(old);
	cfg.encryption_keys = fresh;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(return_to_only_local_paths),
		cmocka_unit_test(state_signed_bound_single_use_expiring),
		cmocka_unit_test(settings_sealed_kept_and_sso),
		cmocka_unit_test(store_scoping_and_one_per_tenant),
		cmocka_unit_test(token_service_refreshes_once),
		cmocka_unit_test(sessions_user_and_app),
		cmocka_unit_test(settings_save_verifies_and_names_the_app),
		cmocka_unit_test(connection_status_one_source),
		cmocka_unit_test(rotate_keys_then_drop_old),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
