/* Tests for msapi/: error translation (offline) and every client call against the
 * emulator (tests/emulator/server.py, fixture tests/fixtures/msapi/tenant.json): token
 * refresh on Fabric 401 / Power BI 403 TokenExpired, 429 storms, 503 bursts, LRO success and
 * failure, paging, dropped connections on creates, wrong CA, scanner. Without python3 or the
 * emulator the emulator tests print SKIP and pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "msapi/entra.h"
#include "msapi/errors.h"
#include "msapi/fabric.h"
#include "msapi/graph.h"
#include "msapi/msapi.h"
#include "msapi/powerbi.h"
#include "msapi/scanner.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

#define TENANT  "11111111-1111-4111-8111-111111111111"
#define SP_ID   "22222222-2222-4222-8222-000000000001"
#define SP_SEC  "scanner-secret"
#define WEB_ID  "22222222-2222-4222-8222-000000000002"
#define WEB_SEC "web-secret"
#define PLAIN_ID "22222222-2222-4222-8222-000000000003"
#define REDIRECT "https://pbiport.test/powerbi/callback"
#define WS_SALES   "33333333-3333-4333-8333-000000000001"
#define WS_FINANCE "33333333-3333-4333-8333-000000000002"
#define WS_TEAM3   "33333333-3333-4333-8333-000000000003"
#define DS_ORDERS  "44444444-4444-4444-8444-000000000001"
#define DASH       "66666666-6666-4666-8666-000000000001"
#define FIXTURE "tests/fixtures/msapi/tenant.json"


/* ---------- offline: error translation ---------- */

static void translate(int svc, long status, const char *body, char *err)
{
	json_t *j = json_loads(body, 0, NULL);
	char code[128], msg[300];
	msapi_error_parse(svc, j, body, code, sizeof code, msg, sizeof msg);
	msapi_error_message(svc, status, code, msg, "list the datasets of workspace 'Sales'", err);
	json_decref(j);
}

static void error_messages_name_the_fix(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	translate(MSAPI_POWERBI, 401,
		  "{\"error\":{\"code\":\"PowerBINotAuthorizedException\",\"pbi.error\":{\"code\":"
		  "\"PowerBINotAuthorizedException\",\"parameters\":{},\"details\":[],\"exceptionCulprit\":1}}}", err);
	assert_non_null(strstr(err, "Power BI refused to list the datasets of workspace 'Sales'"));
	assert_non_null(strstr(err, "PowerBINotAuthorizedException"));
	assert_non_null(strstr(err, "as Viewer"));
	translate(MSAPI_ENTRA, 400,
		  "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS700082: The refresh token has expired due "
		  "to inactivity.\\r\\nTrace ID: x\",\"error_codes\":[700082]}", err);
	assert_string_equal(err, "Entra refused the refresh token (AADSTS700082, expired after 90 days without use): "
				 "sign in again");
	translate(MSAPI_FABRIC, 403, "{\"errorCode\":\"InsufficientWorkspaceRole\",\"message\":\"no\"}", err);
	assert_non_null(strstr(err, "Fabric refused"));
	assert_non_null(strstr(err, "Contributor or higher"));
	translate(MSAPI_FABRIC, 400, "{\"errorCode\":\"CorruptedPayload\",\"message\":\"bad part\"}", err);
	assert_non_null(strstr(err, "could not read the model definition"));
	/* unknown codes keep Microsoft's words (first line only) */
	translate(MSAPI_FABRIC, 400, "{\"errorCode\":\"SomethingNew\",\"message\":\"first line\\nsecond\"}", err);
	assert_non_null(strstr(err, "SomethingNew"));
	assert_non_null(strstr(err, "first line"));
	assert_null(strstr(err, "second"));
	/* Power BI's bare 429 body */
	translate(MSAPI_POWERBI, 429, "{\"message\":\"You have exceeded the amount of requests. Retry in 3392 seconds.\"}",
		  err);
	assert_non_null(strstr(err, "HTTP 429"));
	assert_non_null(strstr(err, "Retry in 3392"));
	/* not JSON at all */
	translate(MSAPI_GRAPH, 502, "<html>bad gateway</html>", err);
	assert_non_null(strstr(err, "HTTP 502"));
	/* no fix text names where credentials are kept, or pbiport's own actions */
	static const char *const entra_bodies[] = {
		"{\"error\":\"invalid_client\",\"error_codes\":[7000215]}", "{\"error\":\"invalid_client\",\"error_codes\":[7000222]}",
		"{\"error\":\"unauthorized_client\",\"error_codes\":[700016]}", "{\"error\":\"invalid_request\",\"error_codes\":[90002]}",
		"{\"error\":\"invalid_client\"}", "{\"error\":\"invalid_grant\"}",
		"{\"error\":\"invalid_grant\",\"error_codes\":[54005]}",
	};
	for (size_t i = 0; i < sizeof entra_bodies / sizeof entra_bodies[0]; i++) {
		translate(MSAPI_ENTRA, 400, entra_bodies[i], err);
		if (strstr(err, "Power BI settings") || strstr(err, "reconnect Power BI") || strstr(err, "Power BI connection"))
			fail_msg("msapi names pbiport's credentials or actions: %s", err);
	}
	assert_int_equal(msapi_status_rc(404), PB_ENOTFOUND);
	assert_int_equal(msapi_status_rc(429), PB_ELIMIT);
	assert_int_equal(msapi_status_rc(503), PB_EIO);
	assert_int_equal(msapi_status_rc(403), PB_EINVAL);
}

/* Each failure is classified once, here: what callers branch on. */
static void failures_are_classified_once(void **state)
{
	(void)state;
	static const struct {
		int svc;
		long status;
		const char *code;
		msapi_failure want;
	} cases[] = {
		{ MSAPI_ENTRA, 400, "AADSTS7000215", MSAPI_BAD_CREDENTIALS },
		{ MSAPI_ENTRA, 400, "AADSTS700082", MSAPI_REAUTHENTICATE },
		/* an authorization code that cannot be redeemed: sign in again */
		{ MSAPI_ENTRA, 400, "AADSTS54005", MSAPI_REAUTHENTICATE },
		{ MSAPI_ENTRA, 400, "AADSTS50148", MSAPI_REAUTHENTICATE },
		{ MSAPI_ENTRA, 400, "AADSTS70011", MSAPI_REJECTED },
		{ MSAPI_ENTRA, 503, "", MSAPI_UNAVAILABLE },
		/* a delegated sign-in without a scope the call needs */
		{ MSAPI_FABRIC, 403, "InsufficientScopes", MSAPI_REAUTHENTICATE },
		{ MSAPI_FABRIC, 403, "InsufficientWorkspaceRole", MSAPI_FORBIDDEN },
		/* a data source's credentials, refused when a connection is created */
		{ MSAPI_FABRIC, 400, "IncorrectCredentials", MSAPI_BAD_CREDENTIALS },
		{ MSAPI_FABRIC, 400, "InvalidCredentialDetails", MSAPI_BAD_CREDENTIALS },
		{ MSAPI_FABRIC, 400, "InvalidConnectionDetails", MSAPI_REJECTED },
		{ MSAPI_FABRIC, 400, "CorruptedPayload", MSAPI_REJECTED },
		{ MSAPI_FABRIC, 409, "ItemDisplayNameAlreadyInUse", MSAPI_NAME_TAKEN },
		{ MSAPI_FABRIC, 404, "WorkspaceNotFound", MSAPI_NOT_FOUND },
		{ MSAPI_POWERBI, 429, "", MSAPI_RETRY_AFTER },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (msapi_failure_of(cases[i].svc, cases[i].status, cases[i].code) != cases[i].want)
			fail_msg("case %zu (%s): %d, wanted %d", i, cases[i].code,
				 (int)msapi_failure_of(cases[i].svc, cases[i].status, cases[i].code), (int)cases[i].want);
	/* Entra's answer to the redirect URI instead of a code */
	char err[PB_ERR_MAX];
	msapi c = { 0 };
	assert_int_equal(entra_authorize_failed(&c, "access_denied", "AADSTS65004: User declined\r\nTrace", err), PB_EINVAL);
	assert_int_equal(c.last.failure, MSAPI_FORBIDDEN);
	assert_string_equal(c.last.code, "access_denied");
	assert_string_equal(c.last.message, "AADSTS65004: User declined");
	assert_non_null(strstr(err, "cancelled or declined"));
	assert_int_equal(entra_authorize_failed(&c, "temporarily_unavailable", NULL, err), PB_EIO);
	assert_int_equal(c.last.failure, MSAPI_UNAVAILABLE);
	assert_int_equal(entra_authorize_failed(&c, "consent_required", "x", err), PB_EINVAL);
	assert_int_equal(c.last.failure, MSAPI_REAUTHENTICATE);
	assert_int_equal(entra_authorize_failed(&c, "invalid_scope", "bad\x01scope", err), PB_EINVAL);
	assert_int_equal(c.last.failure, MSAPI_REJECTED);
	assert_string_equal(c.last.message, "bad?scope");
	assert_non_null(strstr(err, "Entra did not complete the sign-in (invalid_scope: bad?scope)"));
}

static void urls_pkce_and_paths(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_config cfg;
	config_defaults(&cfg);
	cfg.entra_url = "https://login.example.test";
	msapi c;
	msapi_init(&c, NULL, &cfg);
	assert_string_equal(msapi_base(&c, MSAPI_ENTRA), "https://login.example.test");
	assert_string_equal(msapi_base(&c, MSAPI_FABRIC), "https://api.fabric.microsoft.com");
	entra_pkce p;
	assert_int_equal(entra_pkce_new(&p, err), PB_OK);
	assert_int_equal(strlen(p.verifier), 43);
	assert_int_equal(strlen(p.challenge), 43);
	/* RFC 7636 appendix B */
	char ch[44];
	assert_int_equal(entra_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", ch, err), PB_OK);
	assert_string_equal(ch, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
	entra_authorize a = { .tenant = "contoso.test", .client_id = WEB_ID, .redirect_uri = REDIRECT,
			      .scope = "offline_access https://analysis.windows.net/powerbi/api/Dataset.Read.All",
			      .state = "s t&x", .code_challenge = p.challenge, .prompt = "consent" };
	char *url = NULL;
	assert_int_equal(entra_authorize_url(&c, &a, &url, err), PB_OK);
	assert_true(!strncmp(url, "https://login.example.test/contoso.test/oauth2/v2.0/authorize?client_id=", 72));
	assert_non_null(strstr(url, "redirect_uri=https%3A%2F%2Fpbiport.test%2Fpowerbi%2Fcallback"));
	assert_non_null(strstr(url, "state=s%20t%26x"));
	assert_non_null(strstr(url, "code_challenge_method=S256"));
	assert_non_null(strstr(url, "prompt=consent"));
	assert_non_null(strstr(url, "scope=offline_access%20https%3A%2F%2F"));
	free(url);
	char *path = NULL;
	assert_int_equal(msapi_path(&path, err, "/v1/workspaces/%s/items", "a/b?c"), PB_OK);
	assert_string_equal(path, "/v1/workspaces/a%2Fb%3Fc/items");
	free(path);
	assert_int_equal(msapi_path(&path, err, "/v1/workspaces/%s", ""), PB_EINVAL);
	msapi_release(&c);
	/* an id can never change the endpoint: dot segments, "/", "?", "#" and "%" are encoded */
	static const struct {
		const char *id, *path;
	} ids[] = {
		{ "..", "/v1/workspaces/%2E%2E/semanticModels" },
		{ ".", "/v1/workspaces/%2E/semanticModels" },
		{ "...", "/v1/workspaces/%2E%2E%2E/semanticModels" },
		{ "../connections", "/v1/workspaces/..%2Fconnections/semanticModels" },
		{ "a#b", "/v1/workspaces/a%23b/semanticModels" },
		{ "%2e%2e", "/v1/workspaces/%252e%252e/semanticModels" },
		{ "x?roles=Admin", "/v1/workspaces/x%3Froles%3DAdmin/semanticModels" },
		{ "contoso.example", "/v1/workspaces/contoso.example/semanticModels" },   /* dots inside stay */
	};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		assert_int_equal(msapi_path(&path, err, "/v1/workspaces/%s/semanticModels", ids[i].id), PB_OK);
		assert_string_equal(path, ids[i].path);
		free(path);
	}
	/* a malformed base URL stops start-up: tests/unit/test_config.c */
}

/* A reply as pb_http_do would leave it: status and one header. */
static void fake_reply(pb_http_resp *resp, long status, const char *header, const char *value)
{
	memset(resp, 0, sizeof *resp);
	resp->status = status;
	size_t hn = strlen(header) + 1, vn = strlen(value) + 1;
	resp->hdrs = malloc(hn + vn);
	assert_non_null(resp->hdrs);
	memcpy(resp->hdrs, header, hn);
	memcpy(resp->hdrs + hn, value, vn);
	resp->hdrs_len = hn + vn;
	resp->body = calloc(1, 1);
}

/* Follow-up URLs carry our token: only to the configured services' hosts. */
static void follow_up_urls_stay_on_the_configured_hosts(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_config cfg;
	config_defaults(&cfg);   /* Microsoft's own URLs, and Graph on an emulator */
	cfg.graph_url = "https://emulator.test:8443/graph";
	msapi c;
	msapi_init(&c, NULL, &cfg);
	static const struct {
		const char *url;
		bool ok;
	} cases[] = {
		{ "https://api.fabric.microsoft.com/v1/operations/1", true },
		{ "https://API.Fabric.Microsoft.com/operations/1/result", true },
		{ "https://api.powerbi.com/v1.0/myorg/groups?$skip=100", true },
		{ "https://emulator.test:8443/fabric/v1/operations/1", true },      /* same origin as a base */
		{ "/v1/operations/1", true },                                         /* a path: the service's base */
		/* customer-controlled hosts under Microsoft's domains */
		{ "https://evil.blob.core.windows.net/op?sig=x", false },
		{ "https://contoso.database.windows.net/", false },
		{ "https://attacker.powerbi.com/v1/operations/1", false },
		{ "https://wabi-west-us-redirect.analysis.windows.net/v1.0/myorg/groups", false },
		/* look-alikes */
		{ "https://api.fabric.microsoft.com.evil.test/v1/operations/1", false },
		{ "https://api.fabric.microsoft.com@evil.test/v1/operations/1", false },
		{ "https://api.fabric.microsoft.com:8443/v1/operations/1", false },
		{ "https://emulator.test/fabric/v1/operations/1", false },           /* other port */
		{ "http://api.fabric.microsoft.com/v1/operations/1", false },
		{ "//evil.test/v1/operations/1", false },
		{ "evil.test/v1/operations/1", false },
		{ "", false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (msapi_url_allowed(&c, cases[i].url) != cases[i].ok)
			fail_msg("%s: expected %s", cases[i].url, cases[i].ok ? "allowed" : "refused");
	assert_false(msapi_url_allowed(&c, NULL));
	/* a long-running operation whose Location points at a storage host is not followed (no
	 * HTTP client here: a request would crash the test) */
	msapi_reply first = { .status = 202 };
	fake_reply(&first.http, 202, "Location", "https://evil.blob.core.windows.net/operations/1?sig=secret");
	assert_int_equal(msapi_lro(&c, MSAPI_FABRIC, &first, "create semantic model 'X'", NULL, err), PB_EIO);
	assert_non_null(strstr(err, "evil.blob.core.windows.net"));
	assert_non_null(strstr(err, "PBIPORT_FABRIC_URL"));
	assert_null(strstr(err, "sig=secret"));
	msapi_reply_release(&first);
	/* nor a redirect */
	pb_http_resp resp;
	fake_reply(&resp, 307, "Location", "https://customer.queue.core.windows.net/x");
	msapi_call call = { .svc = MSAPI_POWERBI, .method = "GET", .url = "/v1.0/myorg/groups", .idempotent = true,
			    .what = "list workspaces" };
	msapi_try t = { 0 };
	long delay;
	assert_int_equal(msapi_classify(&c, &call, &resp, PB_OK, "", &t, &delay, err), PB_EIO);
	assert_non_null(strstr(err, "customer.queue.core.windows.net"));
	pb_http_resp_release(&resp);
	fake_reply(&resp, 307, "Location", "https://api.powerbi.com/v1.0/myorg/groups?x=1");
	t = (msapi_try){ 0 };
	assert_int_equal(msapi_classify(&c, &call, &resp, PB_OK, "", &t, &delay, err), MSAPI_A_REDIRECT);
	pb_http_resp_release(&resp);
	msapi_release(&c);
}

/* ---------- emulator helpers ---------- */

/* Skips the calling test when the emulator is absent (skip() does not return); else loads
 * the tenant fixture afresh. */
static void need_emu(void)
{
	tu_need_emu();
	assert_int_equal(emu_load(&tu_emu, FIXTURE), 200);
}

struct sp_refresh {
	msapi *entra;
	const char *scope;
	int calls;
};

static int sp_refresh_cb(void *ctx, char **tok, char *err)
{
	struct sp_refresh *r = ctx;
	r->calls++;
	entra_app app = { TENANT, SP_ID, SP_SEC };
	entra_token t;
	int rc = entra_client_credentials(r->entra, &app, r->scope, &t, err);
	if (!rc) {
		*tok = t.access_token;
		t.access_token = NULL;
	}
	entra_token_release(&t);
	return rc;
}

/* A service principal's session, set up per test (cmocka fixture): the client with a token
 * refresh callback, the Entra client the callback uses, and the callback's state. */
struct sp {
	msapi c;
	msapi entra;
	struct sp_refresh r;
};

static int sp_setup_scope(void **state, const char *scope)
{
	char err[PB_ERR_MAX];
	*state = NULL;
	if (!tu_have_emu())
		return 0; /* sp_of skips the test */
	assert_int_equal(emu_load(&tu_emu, FIXTURE), 200);
	struct sp *s = calloc(1, sizeof *s);
	assert_non_null(s);
	msapi_init(&s->c, tu_emu.http, &tu_emu.cfg);
	msapi_init(&s->entra, tu_emu.http, &tu_emu.cfg);
	*state = s;
	s->c.retry_base_ms = 10;
	s->c.poll_ms = 20;
	s->r.entra = &s->entra;
	s->r.scope = scope;
	char *tok = NULL;
	assert_int_equal(sp_refresh_cb(&s->r, &tok, err), PB_OK);
	s->r.calls = 0;
	assert_int_equal(msapi_set_token(&s->c, tok, err), PB_OK);
	free(tok);
	msapi_set_refresh(&s->c, sp_refresh_cb, &s->r);
	return 0;
}

static int sp_setup(void **state)
{
	return sp_setup_scope(state, ENTRA_SCOPE_POWERBI_DEFAULT);
}

static int sp_setup_graph(void **state)
{
	return sp_setup_scope(state, ENTRA_SCOPE_GRAPH_DEFAULT);
}

static int sp_teardown(void **state)
{
	struct sp *s = *state;
	if (s) {
		msapi_release(&s->c);
		msapi_release(&s->entra);
		free(s);
	}
	return 0;
}

/* The test's session; skips the test (skip() does not return) without the emulator. */
static struct sp *sp_of(void **state)
{
	if (!*state)
		skip();
	return *state;
}

static void config(const char *json)
{
	tu_emu_ok("POST", "config", json);
}

/* Moves the emulator's clock: refreshes and scans finish. */
static void advance_60s(void)
{
	tu_emu_ok("POST", "advance", "{\"seconds\":60}");
}

/* Signs ann in through authorize (login_hint: no browser) + code exchange. */
static void user_login(msapi *entra, entra_token *t)
{
	char err[PB_ERR_MAX];
	entra_pkce p;
	assert_int_equal(entra_pkce_new(&p, err), PB_OK);
	entra_authorize a = { .tenant = TENANT, .client_id = WEB_ID, .redirect_uri = REDIRECT,
			      .scope = "openid offline_access https://api.fabric.microsoft.com/Item.ReadWrite.All "
				       "https://api.fabric.microsoft.com/Connection.ReadWrite.All "
				       "https://analysis.windows.net/powerbi/api/Dataset.ReadWrite.All "
				       "https://analysis.windows.net/powerbi/api/Workspace.ReadWrite.All",
			      .state = "state-123", .code_challenge = p.challenge, .login_hint = "ann@contoso.test" };
	char *url = NULL;
	assert_int_equal(entra_authorize_url(entra, &a, &url, err), PB_OK);
	pb_http_req req = { .method = "GET", .url = url };
	pb_http_resp resp;
	assert_int_equal(pb_http_do(tu_emu.http, &req, &resp, err), PB_OK);
	assert_int_equal(resp.status, 302);
	const char *loc = pb_http_header(&resp, "Location");
	assert_non_null(loc);
	assert_true(!strncmp(loc, REDIRECT "?", strlen(REDIRECT) + 1));
	assert_non_null(strstr(loc, "state=state-123"));
	const char *cp = strstr(loc, "code=");
	assert_non_null(cp);
	char code[1024];
	size_t n = strcspn(cp + 5, "&");
	assert_true(n < sizeof code);
	memcpy(code, cp + 5, n);
	code[n] = '\0';
	entra_app app = { TENANT, WEB_ID, WEB_SEC };
	/* a wrong verifier is refused (and spends nothing on our side) */
	entra_token bad;
	assert_int_equal(entra_exchange_code(entra, &app, code, REDIRECT,
					     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, &bad, err), PB_EINVAL);
	assert_non_null(strstr(err, "PKCE code verifier"));
	/* sign in again for a fresh code */
	pb_http_resp_release(&resp);
	assert_int_equal(pb_http_do(tu_emu.http, &req, &resp, err), PB_OK);
	loc = pb_http_header(&resp, "Location");
	cp = strstr(loc, "code=");
	n = strcspn(cp + 5, "&");
	memcpy(code, cp + 5, n);
	code[n] = '\0';
	assert_int_equal(entra_exchange_code(entra, &app, code, REDIRECT, p.verifier, NULL, t, err), PB_OK);
	assert_non_null(t->access_token);
	assert_non_null(t->refresh_token);
	assert_non_null(t->id_token);
	assert_true(t->expires_in > 0);
	/* the code is single-use */
	entra_token again;
	assert_int_not_equal(entra_exchange_code(entra, &app, code, REDIRECT, p.verifier, NULL, &again, err), PB_OK);
	assert_non_null(strstr(err, "Entra refused"));
	pb_http_resp_release(&resp);
	free(url);
}

/* ---------- Entra / Graph ---------- */

static void entra_flows(void **state)
{
	(void)state;
	need_emu();
	char err[PB_ERR_MAX];
	msapi entra;
	msapi_init(&entra, tu_emu.http, &tu_emu.cfg);
	entra_token t;
	entra_app sp = { TENANT, SP_ID, SP_SEC };
	assert_int_equal(entra_client_credentials(&entra, &sp, NULL, &t, err), PB_OK);
	assert_true(!strncmp(t.access_token, "emu_at_", 7));
	assert_null(t.refresh_token);
	entra_token_release(&t);
	entra_app wrong = { TENANT, SP_ID, "nope" };
	assert_int_equal(entra_client_credentials(&entra, &wrong, NULL, &t, err), PB_EINVAL);
	assert_string_equal(entra.last.code, "AADSTS7000215");
	assert_non_null(strstr(err, "Entra refused the client secret"));
	/* msapi does not know where the secret is kept: its caller says */
	assert_null(strstr(err, "Power BI settings"));
	assert_int_equal(entra.last.failure, MSAPI_BAD_CREDENTIALS);
	assert_null(strstr(err, "nope"));
	entra_app nowhere = { "99999999-9999-4999-8999-999999999999", SP_ID, SP_SEC };
	assert_int_equal(entra_client_credentials(&entra, &nowhere, NULL, &t, err), PB_EINVAL);
	assert_non_null(strstr(err, "tenant"));

	entra_token u;
	user_login(&entra, &u);
	entra_app web = { TENANT, WEB_ID, WEB_SEC };
	entra_token r1, r2;
	assert_int_equal(entra_refresh(&entra, &web, u.refresh_token, NULL, &r1, err), PB_OK);
	assert_non_null(r1.refresh_token);
	assert_string_not_equal(r1.refresh_token, u.refresh_token); /* rotation */
	assert_string_not_equal(r1.access_token, u.access_token);
	/* inactivity: the emulator ages every refresh token past 90 days */
	tu_fault("{\"expire_refresh_tokens\":true}");
	assert_int_equal(entra_refresh(&entra, &web, r1.refresh_token, NULL, &r2, err), PB_EINVAL);
	assert_string_equal(err, "Entra refused the refresh token (AADSTS700082, expired after 90 days without use): "
				 "sign in again");
	tu_no_faults();
	/* a dropped connection on the refresh grant is not repeated */
	user_login(&entra, &r2);
	tu_fault("{\"drop_connections\":1,\"path_prefix\":\"/entra\"}");
	entra_token r3;
	assert_int_equal(entra_refresh(&entra, &web, r2.refresh_token, NULL, &r3, err), PB_EIO);
	assert_true(entra.last.outcome_unknown);
	assert_non_null(strstr(err, "unknown"));
	tu_no_faults();
	entra_token_release(&u);
	entra_token_release(&r1);
	entra_token_release(&r2);
	msapi_release(&entra);
}

static void graph_display_name(void **state)
{
	struct sp *s = sp_of(state);
	char err[PB_ERR_MAX];
	char *name = NULL;
	assert_int_equal(graph_app_display_name(&s->c, SP_ID, &name, err), PB_OK);
	assert_string_equal(name, "pbiport Scanner");
	free(name);
	assert_int_equal(graph_app_display_name(&s->c, "not-a-guid'", &name, err), PB_EINVAL);
}

/* ---------- Fabric ---------- */

/* Workspaces the service principal sees in the fixture: Sales + Team 03..10 (not Finance). */
#define SP_WORKSPACES 9

/* Lists the Fabric workspaces c sees, expecting n of them. */
static void expect_workspaces(msapi *c, size_t n)
{
	char err[PB_ERR_MAX];
	msapi_items l;
	assert_int_equal(fabric_list_workspaces(c, &l, err), PB_OK);
	assert_int_equal(l.n, n);
	msapi_items_release(&l);
}

static void fabric_paging_and_token_refresh(void **state)
{
	struct sp *s = sp_of(state);
	char err[PB_ERR_MAX];
	msapi_items l;
	assert_int_equal(fabric_list_workspaces(&s->c, &l, err), PB_OK);
	assert_int_equal(l.n, SP_WORKSPACES); /* page size 3 */
	assert_non_null(msapi_items_find_name(&l, "Sales"));
	assert_non_null(msapi_items_find_name(&l, "Team 10"));
	assert_null(msapi_items_find_name(&l, "Finance"));
	msapi_items_release(&l);
	/* many pages: one item per page */
	config("{\"page_size\":1}");
	expect_workspaces(&s->c, SP_WORKSPACES);
	assert_int_equal(s->c.last.attempts, 1); /* last page's call */
	config("{\"page_size\":3}");
	/* a continuationUri on another origin is not followed (our token would go there): the
	 * continuationToken is used instead. Here the client knows the emulator as "localhost"
	 * while its links say 127.0.0.1. */
	char local[600];
	const char *port = strrchr(tu_emu.url, ':');
	snprintf(local, sizeof local, "https://localhost%s/fabric", port);
	pb_config as_localhost = tu_emu.cfg;
	as_localhost.fabric_url = local;
	msapi c2;
	msapi_init(&c2, tu_emu.http, &as_localhost);
	assert_int_equal(msapi_set_token(&c2, s->c.token, err), PB_OK);
	expect_workspaces(&c2, SP_WORKSPACES);
	msapi_release(&c2);

	/* expired token: Fabric answers 401 TokenExpired -> one refresh -> retried */
	tu_fault("{\"expire_tokens\":true}");
	expect_workspaces(&s->c, SP_WORKSPACES);
	assert_int_equal(s->r.calls, 1);
	/* without a refresh callback the expiry is a clear error */
	tu_fault("{\"expire_tokens\":true}");
	msapi_set_refresh(&s->c, NULL, NULL);
	assert_int_equal(fabric_list_workspaces(&s->c, &l, err), PB_EINVAL);
	assert_non_null(strstr(err, "expired"));
	assert_int_equal(s->c.last.status, 401);
}

static void fabric_throttling_and_bursts(void **state)
{
	struct sp *s = sp_of(state);
	char err[PB_ERR_MAX];
	msapi_items l;
	/* a 429 storm with Retry-After: 0 -> retried until it passes */
	tu_fault("{\"burst_429\":{\"count\":5,\"retry_after\":0},\"path_prefix\":\"/fabric\"}");
	expect_workspaces(&s->c, SP_WORKSPACES);
	tu_no_faults();
	/* Retry-After honoured (1 s, twice) */
	tu_fault("{\"burst_429\":{\"count\":2,\"retry_after\":1},\"path_prefix\":\"/fabric\"}");
	config("{\"page_size\":100}");
	expect_workspaces(&s->c, SP_WORKSPACES);
	assert_int_equal(s->c.last.attempts, 3);
	tu_no_faults();
	/* asked to wait longer than the budget: fails at once, saying so */
	tu_fault("{\"burst_429\":{\"count\":1,\"retry_after\":3600},\"path_prefix\":\"/fabric\"}");
	assert_int_equal(fabric_list_workspaces(&s->c, &l, err), PB_ELIMIT);
	assert_non_null(strstr(err, "Fabric asked to wait 3600 s"));
	assert_int_equal(s->c.last.attempts, 1);
	tu_no_faults();
	/* 503 bursts: every other request fails */
	tu_fault("{\"error_rate\":{\"status\":503,\"percent\":50,\"retry_after\":0},\"path_prefix\":\"/fabric\"}");
	config("{\"page_size\":2}");
	expect_workspaces(&s->c, SP_WORKSPACES);
	tu_no_faults();
	/* 503 for ever: gives up after max_attempts with a clear message */
	tu_fault("{\"error_rate\":{\"status\":503,\"percent\":100,\"retry_after\":0},\"path_prefix\":\"/fabric\"}");
	s->c.max_attempts = 4;
	assert_int_equal(fabric_list_workspaces(&s->c, &l, err), PB_EIO);
	assert_non_null(strstr(err, "gave up after 4 attempts"));
	assert_non_null(strstr(err, "HTTP 503"));
	tu_no_faults();
	/* dropped connections on a GET are retried */
	tu_fault("{\"drop_connections\":3,\"path_prefix\":\"/fabric\"}");
	s->c.max_attempts = 8;
	expect_workspaces(&s->c, SP_WORKSPACES);
	tu_no_faults();
	config("{\"page_size\":3}");
}

static const char MODEL_TMDL[] = "model Model\n\tculture: en-US\n";
static const char TABLE_TMDL[] =
	"table Sales\n"
	"\n"
	"\tcolumn Amount\n"
	"\t\tdataType: double\n"
	"\t\tsourceColumn: AMOUNT\n"
	"\n"
	"\tpartition Sales = m\n"
	"\t\tmode: import\n"
	"\t\tsource =\n"
	"\t\t\t\tlet\n"
	"\t\t\t\t    Source = Snowflake.Databases(\"acme.snowflakecomputing.com\", \"WH\"),\n"
	"\t\t\t\t    T = Source{[Name = \"SALES\"]}[Data]\n"
	"\t\t\t\tin\n"
	"\t\t\t\t    T\n";
static const char PBISM[] = "{\"version\":\"4.0\",\"settings\":{}}";

static size_t model_parts(fabric_part *p, const char *table)
{
	p[0] = (fabric_part){ "definition.pbism", PBISM, strlen(PBISM) };
	p[1] = (fabric_part){ "definition/model.tmdl", MODEL_TMDL, strlen(MODEL_TMDL) };
	p[2] = (fabric_part){ "definition/tables/Sales.tmdl", table, strlen(table) };
	return 3;
}

static size_t count_models_named(msapi *c, const char *ws, const char *name)
{
	char err[PB_ERR_MAX];
	msapi_items l;
	assert_int_equal(fabric_list_semantic_models(c, ws, &l, err), PB_OK);
	size_t n = 0;
	for (size_t i = 0; i < l.n; i++)
		n += l.v[i].name && !strcmp(l.v[i].name, name);
	msapi_items_release(&l);
	return n;
}

static void fabric_models_lro(void **state)
{
	struct sp *s = sp_of(state);
	char err[PB_ERR_MAX];
	fabric_part parts[3];
	size_t np = model_parts(parts, TABLE_TMDL);
	msapi_item m;
	/* 202 + Location, polled to Succeeded, result = the item */
	assert_int_equal(fabric_create_semantic_model(&s->c, WS_SALES, "Sales model", "generated", parts, np, &m, err),
			 PB_OK);
	assert_non_null(m.id);
	assert_string_equal(m.name, "Sales model");
	msapi_items models;
	assert_int_equal(fabric_list_semantic_models(&s->c, WS_SALES, &models, err), PB_OK);
	assert_non_null(msapi_items_find_name(&models, "Sales model"));
	msapi_items_release(&models);
	/* definition round trip */
	fabric_definition d;
	assert_int_equal(fabric_get_definition(&s->c, WS_SALES, m.id, NULL, &d, err), PB_OK);
	bool saw_table = false;
	for (size_t i = 0; i < d.n; i++)
		if (!strcmp(d.v[i].path, "definition/tables/Sales.tmdl"))
			saw_table = strstr((char *)d.v[i].data, "Snowflake.Databases") != NULL;
	assert_true(saw_table);
	fabric_definition_release(&d);
	assert_int_equal(fabric_update_definition(&s->c, WS_SALES, m.id, parts, np, err), PB_OK);
	/* the model's data source, then bind it to a new connection */
	msapi_items ds;
	assert_int_equal(fabric_list_item_connections(&s->c, WS_SALES, m.id, &ds, err), PB_OK);
	assert_int_equal(ds.n, 1);
	assert_string_equal(ds.v[0].type, "Snowflake");
	assert_string_equal(ds.v[0].path, "acme.snowflakecomputing.com;WH");
	fabric_param params[] = { { "server", "acme.snowflakecomputing.com", NULL }, { "warehouse", "WH", NULL } };
	fabric_connection_req cr = { .display_name = "sf-sales", .type = "Snowflake",
				     .creation_method = "Snowflake.Databases", .params = params, .nparams = 2,
				     .cred = FABRIC_CRED_BASIC, .username = "svc", .password = "pw-123" };
	msapi_item conn;
	assert_int_equal(fabric_create_connection(&s->c, &cr, &conn, err), PB_OK);
	assert_non_null(conn.id);
	assert_string_equal(conn.type, "Snowflake");
	char *dumped = json_dumps(conn.raw, 0);
	assert_null(strstr(dumped, "pw-123")); /* secrets never come back */
	free(dumped);
	assert_int_equal(fabric_bind_connection(&s->c, WS_SALES, m.id, conn.id, ds.v[0].type, ds.v[0].path, err), PB_OK);
	/* a path that is not one of the model's data sources is refused */
	assert_int_not_equal(fabric_bind_connection(&s->c, WS_SALES, m.id, conn.id, "Snowflake", "other;WH", err), PB_OK);
	assert_non_null(strstr(err, "Fabric refused to bind"));
	msapi_items_release(&ds);
	/* the same connection name again */
	msapi_item dup;
	assert_int_equal(fabric_create_connection(&s->c, &cr, &dup, err), PB_EINVAL);
	assert_non_null(strstr(err, "DuplicateConnectionName"));
	assert_non_null(strstr(err, "reuse the existing connection"));
	msapi_items conns;
	assert_int_equal(fabric_list_connections(&s->c, &conns, err), PB_OK);
	assert_non_null(msapi_items_find_name(&conns, "sf-sales"));
	msapi_items_release(&conns);
	msapi_item_release(&conn);

	/* the name is taken now */
	msapi_item m2;
	assert_int_not_equal(fabric_create_semantic_model(&s->c, WS_SALES, "Sales model", NULL, parts, np, &m2, err), PB_OK);
	assert_non_null(strstr(err, "ItemDisplayNameAlreadyInUse"));

	/* LRO failure: a TMDL part the service cannot read */
	fabric_part badp[3];
	model_parts(badp, "table Broken\n  column NoTabs\n");
	assert_int_not_equal(fabric_create_semantic_model(&s->c, WS_SALES, "Broken", NULL, badp, 3, &m2, err), PB_OK);
	assert_non_null(strstr(err, "Fabric refused to create semantic model 'Broken'"));
	assert_non_null(strstr(err, "CorruptedPayload"));
	assert_non_null(strstr(err, "long-running operation failed"));

	/* a dropped connection on create: listed first, created once */
	tu_fault("{\"drop_connections\":1,\"path_prefix\":\"/fabric/v1/workspaces/" WS_SALES "/semanticModels\"}");
	assert_int_equal(fabric_create_semantic_model(&s->c, WS_SALES, "After drop", NULL, parts, np, &m2, err), PB_OK);
	tu_no_faults();
	assert_int_equal(count_models_named(&s->c, WS_SALES, "After drop"), 1);
	msapi_item_release(&m2);

	/* after a drop, a model of the same name that another caller made (another description)
	 * is not taken for ours: the create reports the name clash */
	msapi_item theirs;
	assert_int_equal(fabric_create_semantic_model(&s->c, WS_SALES, "Contested", "made by job B", parts, np, &theirs,
						      err), PB_OK);
	assert_string_equal(theirs.description, "made by job B");
	tu_fault("{\"drop_connections\":1,\"method\":\"POST\",\"path_prefix\":\"/fabric/v1/workspaces/" WS_SALES
		 "/semanticModels\"}");
	assert_int_equal(fabric_create_semantic_model(&s->c, WS_SALES, "Contested", "made by job A", parts, np, &m2, err),
			 PB_EINVAL);
	tu_no_faults();
	assert_null(m2.id);
	assert_string_equal(s->c.last.code, "ItemDisplayNameAlreadyInUse");
	assert_non_null(strstr(err, "ItemDisplayNameAlreadyInUse"));
	msapi_items listed;
	assert_int_equal(fabric_list_semantic_models(&s->c, WS_SALES, &listed, err), PB_OK);
	const msapi_item *contested = msapi_items_find_name(&listed, "Contested");
	assert_non_null(contested);
	assert_string_equal(contested->id, theirs.id);
	assert_string_equal(contested->description, "made by job B");
	msapi_items_release(&listed);
	msapi_item_release(&theirs);
	/* ids are encoded: ".." names no workspace, it never reaches /v1/semanticModels */
	assert_int_equal(fabric_list_semantic_models(&s->c, "..", &listed, err), PB_ENOTFOUND);
	assert_string_equal(s->c.last.code, "WorkspaceNotFound");

	/* polls that get no answer do not fail the operation, even without per-call retries */
	tu_fault("{\"drop_connections\":2,\"path_prefix\":\"/fabric/v1/operations\"}");
	s->c.max_attempts = 1;
	assert_int_equal(fabric_create_semantic_model(&s->c, WS_SALES, "Polled", NULL, parts, np, &m2, err), PB_OK);
	s->c.max_attempts = 8;
	tu_no_faults();
	msapi_item_release(&m2);

	/* finishing at once (201) works too */
	config("{\"lro_mode\":\"sync\"}");
	assert_int_equal(fabric_create_semantic_model(&s->c, WS_SALES, "Sync model", NULL, parts, np, &m2, err), PB_OK);
	assert_string_equal(m2.name, "Sync model");
	msapi_item_release(&m2);
	config("{\"lro_mode\":\"async\"}");
	msapi_item_release(&m);
}

static void fabric_as_user(void **state)
{
	(void)state;
	need_emu();
	char err[PB_ERR_MAX];
	msapi entra, c;
	msapi_init(&entra, tu_emu.http, &tu_emu.cfg);
	msapi_init(&c, tu_emu.http, &tu_emu.cfg);
	entra_token u;
	user_login(&entra, &u);
	assert_int_equal(msapi_set_token(&c, u.access_token, err), PB_OK);
	expect_workspaces(&c, 10);
	/* a Viewer cannot create a model */
	fabric_part parts[3];
	size_t np = model_parts(parts, TABLE_TMDL);
	msapi_item m;
	assert_int_equal(fabric_create_semantic_model(&c, WS_FINANCE, "Nope", NULL, parts, np, &m, err), PB_EINVAL);
	assert_non_null(strstr(err, "Fabric refused to create semantic model 'Nope'"));
	assert_non_null(strstr(err, "Contributor or higher"));
	/* the SP-owned model cannot be bound by the user: owner only */
	msapi_item_release(&m);
	entra_token_release(&u);
	msapi_release(&c);
	msapi_release(&entra);
}

/* ---------- Power BI ---------- */

static void powerbi_reads_and_expiry(void **state)
{
	struct sp *s = sp_of(state);
	char err[PB_ERR_MAX];
	msapi_items l;
	assert_int_equal(powerbi_list_groups(&s->c, NULL, &l, err), PB_OK);
	assert_int_equal(l.n, 9);
	msapi_items_release(&l);
	assert_int_equal(powerbi_list_groups(&s->c, "name eq 'Sales'", &l, err), PB_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].id, WS_SALES);
	msapi_items_release(&l);
	assert_int_equal(powerbi_list_datasets(&s->c, WS_SALES, &l, err), PB_OK);
	assert_non_null(msapi_items_find_name(&l, "Orders"));
	msapi_items_release(&l);
	assert_int_equal(powerbi_list_reports(&s->c, WS_SALES, &l, err), PB_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].dataset_id, DS_ORDERS);
	msapi_items_release(&l);
	assert_int_equal(powerbi_list_dashboards(&s->c, WS_SALES, &l, err), PB_OK);
	assert_string_equal(l.v[0].name, "Orders board");
	msapi_items_release(&l);
	assert_int_equal(powerbi_list_tiles(&s->c, WS_SALES, DASH, &l, err), PB_OK);
	assert_string_equal(l.v[0].name, "Total");
	assert_string_equal(l.v[0].dataset_id, DS_ORDERS);
	msapi_items_release(&l);
	assert_int_equal(powerbi_list_datasources(&s->c, WS_SALES, DS_ORDERS, &l, err), PB_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].path, "acme.snowflakecomputing.com;WH");
	msapi_items_release(&l);
	/* no role in Finance */
	assert_int_equal(powerbi_list_datasets(&s->c, WS_FINANCE, &l, err), PB_EINVAL);
	assert_non_null(strstr(err, "Power BI refused to list the datasets of a workspace"));
	assert_non_null(strstr(err, "PowerBINotAuthorizedException"));
	assert_non_null(strstr(err, "as Viewer"));
	/* expired token: Power BI answers 403 TokenExpired -> refresh -> retry */
	tu_fault("{\"expire_tokens\":true}");
	assert_int_equal(powerbi_list_datasets(&s->c, WS_SALES, &l, err), PB_OK);
	assert_int_equal(s->r.calls, 1);
	assert_int_equal(s->c.last.refreshes, 1);
	msapi_items_release(&l);
	/* 429 storm on Power BI */
	tu_fault("{\"burst_429\":{\"count\":4,\"retry_after\":0},\"path_prefix\":\"/powerbi\"}");
	assert_int_equal(powerbi_list_reports(&s->c, WS_SALES, &l, err), PB_OK);
	assert_int_equal(s->c.last.attempts, 5);
	msapi_items_release(&l);
	tu_no_faults();
}

static void powerbi_refresh_and_push(void **state)
{
	struct sp *s = sp_of(state);
	char err[PB_ERR_MAX];
	char *rid = NULL;
	assert_int_equal(powerbi_refresh_dataset_with(&s->c, WS_SALES, DS_ORDERS, NULL, NULL, &rid, err), PB_OK);
	assert_non_null(rid);
	/* one refresh at a time */
	char *rid2 = NULL;
	assert_int_equal(powerbi_refresh_dataset_with(&s->c, WS_SALES, DS_ORDERS, NULL, NULL, &rid2, err), PB_EINVAL);
	assert_non_null(strstr(err, "Power BI refused to start a dataset refresh"));
	powerbi_refresh *h = NULL;
	size_t n = 0;
	assert_int_equal(powerbi_refresh_history(&s->c, WS_SALES, DS_ORDERS, 5, &h, &n, err), PB_OK);
	assert_true(n >= 1);
	assert_string_equal(h[0].request_id, rid);
	assert_true(powerbi_refresh_running(&h[0]));
	powerbi_refreshes_release(h, n);
	advance_60s();
	assert_int_equal(powerbi_refresh_history(&s->c, WS_SALES, DS_ORDERS, 1, &h, &n, err), PB_OK);
	assert_string_equal(h[0].status, "Completed");
	assert_non_null(h[0].end_time);
	powerbi_refreshes_release(h, n);
	free(rid);
	/* a dropped trigger: the running refresh is found instead of starting another */
	tu_fault("{\"drop_connections\":1,\"path_prefix\":\"/powerbi/v1.0/myorg/groups/" WS_SALES "/datasets/" DS_ORDERS
	      "/refreshes\"}");
	assert_int_equal(powerbi_refresh_dataset_with(&s->c, WS_SALES, DS_ORDERS, NULL, NULL, &rid, err), PB_OK);
	assert_non_null(rid);
	tu_no_faults();
	free(rid);
	advance_60s();

	/* push datasets */
	powerbi_push_column cols[] = { { "Id", "Int64" }, { "Name", "string" } };
	powerbi_push_table tab = { "Events", cols, 2 };
	msapi_item ds;
	tu_fault("{\"drop_connections\":1,\"path_prefix\":\"/powerbi/v1.0/myorg/groups/" WS_SALES "/datasets\"}");
	assert_int_equal(powerbi_push_create(&s->c, WS_SALES, "Pushed", &tab, 1, "basicFIFO", &ds, err), PB_OK);
	tu_no_faults();
	assert_non_null(ds.id);
	msapi_items l;
	assert_int_equal(powerbi_list_datasets(&s->c, WS_SALES, &l, err), PB_OK);
	size_t pushed = 0;
	for (size_t i = 0; i < l.n; i++)
		pushed += !strcmp(l.v[i].name, "Pushed");
	assert_int_equal(pushed, 1);
	msapi_items_release(&l);
	static const char rows[] = "{\"rows\":[{\"Id\":1,\"Name\":\"a\"},{\"Id\":2,\"Name\":\"b\"}]}";
	assert_int_equal(powerbi_push_rows_text(&s->c, WS_SALES, ds.id, "Events", rows, sizeof rows - 1, err), PB_OK);
	/* a dropped POST rows is not repeated: outcome unknown */
	tu_fault("{\"drop_connections\":1,\"path_prefix\":\"/powerbi/v1.0/myorg/groups/" WS_SALES "/datasets/\"}");
	assert_int_equal(powerbi_push_rows_text(&s->c, WS_SALES, ds.id, "Events", rows, sizeof rows - 1, err), PB_EIO);
	assert_true(s->c.last.outcome_unknown);
	tu_no_faults();
	assert_int_equal(powerbi_push_delete_rows(&s->c, WS_SALES, ds.id, "Events", err), PB_OK);
	/* only a {"rows":[...]} body goes out */
	assert_int_equal(powerbi_push_rows_text(&s->c, WS_SALES, ds.id, "Events", "[{}]", 4, err), PB_EINVAL);
	msapi_item_release(&ds);
}

/* ---------- scanner ---------- */

struct scan_count {
	size_t workspaces;
	size_t datasets;
};

static int count_scan(void *ctx, size_t batch, json_t *result, char *err)
{
	(void)batch;
	(void)err;
	struct scan_count *sc = ctx;
	json_t *wss = json_object_get(result, "workspaces");
	size_t i;
	json_t *w;
	json_array_foreach(wss, i, w) {
		sc->workspaces++;
		sc->datasets += json_array_size(json_object_get(w, "datasets"));
	}
	return 0;
}

/* The result_text hook: the bytes Power BI sent, not decoded by the scanner; counted after
 * decoding them here, as the import's staging thread does. */
static int count_scan_text(void *ctx, size_t batch, const char *body, size_t len, char *err)
{
	json_t *result = json_loadb(body, len, 0, NULL);
	assert_non_null(result);
	int rc = count_scan(ctx, batch, result, err);
	json_decref(result);
	return rc;
}

/* Scans ids[0..n) in batches of PB_SCAN_BATCH_MAX, counting what the results hold. */
static int scan_ids(msapi *c, const char *const *ids, size_t n, const scanner_opts *o, struct scan_count *sc,
		    scanner_stats *st, char *err)
{
	scanner_batch b[8];
	size_t nb = 0;
	for (size_t first = 0; first < n && nb < 8; first += PB_SCAN_BATCH_MAX, nb++)
		b[nb] = (scanner_batch){ .ids = ids + first, .n = n - first < PB_SCAN_BATCH_MAX ? n - first : PB_SCAN_BATCH_MAX };
	scanner_hooks h = { .ctx = sc, .result = count_scan };
	return scanner_scan_batches(c, b, nb, o, &h, st, err);
}

/* What scanner_scan_batches told its hooks, per batch (at most 4 in these tests). */
struct batch_log {
	char started[4][64];
	size_t workspaces[4];
	int failed_rc[4];
	size_t nstarted, nresults, nfailed;
};

static int log_started(void *ctx, size_t batch, const char *scan_id, char *err)
{
	(void)err;
	struct batch_log *l = ctx;
	assert_true(batch < 4);
	snprintf(l->started[batch], sizeof l->started[batch], "%s", scan_id);
	l->nstarted++;
	return 0;
}

static int log_result(void *ctx, size_t batch, json_t *result, char *err)
{
	(void)err;
	struct batch_log *l = ctx;
	assert_true(batch < 4);
	/* the scan id was handed over before the result */
	l->workspaces[batch] = json_array_size(json_object_get(result, "workspaces"));
	l->nresults++;
	return 0;
}

static int log_failed(void *ctx, size_t batch, int rc, const char *msg, char *err)
{
	(void)err;
	(void)msg;
	struct batch_log *l = ctx;
	assert_true(batch < 4);
	l->failed_rc[batch] = rc;
	l->nfailed++;
	return 0;
}

/* scanner_scan_batches: new scans report their ids before they are polled, a scan started
 * earlier is polled instead of started again, a lost scan goes to the failed hook. */
static void scan_batches_resume_and_ids(struct sp *s, char **ids, size_t n)
{
	char err[PB_ERR_MAX], *sid = NULL;
	const char *two[] = { ids[0], ids[1] };
	assert_true(n >= 5);
	config("{\"scan_duration_s\":0.05}");
	assert_int_equal(scanner_get_info(&s->c, two, 2, NULL, &sid, err), PB_OK);
	scanner_batch b[3] = {
		{ .ids = (const char *const *)ids + 2, .n = 3 },
		{ .scan_id = sid },
		{ .scan_id = "00000000-0000-0000-0000-000000000000" },
	};
	struct batch_log l;
	memset(&l, 0, sizeof l);
	scanner_hooks h = { .ctx = &l, .started = log_started, .result = log_result, .failed = log_failed,
			    .poll_max_ms = 200 };
	scanner_stats stats;
	assert_int_equal(scanner_scan_batches(&s->c, b, 3, NULL, &h, &stats, err), PB_OK);
	assert_int_equal(l.nstarted, 1);
	assert_true(l.started[0][0] && strcmp(l.started[0], sid));
	assert_int_equal(l.nresults, 2);
	assert_int_equal(l.workspaces[0], 3);
	assert_int_equal(l.workspaces[1], 2);
	assert_int_equal(l.nfailed, 1);
	assert_true(l.failed_rc[2] < 0);
	assert_int_equal(stats.failed, 1);
	assert_int_equal(stats.succeeded, 2);
	/* without a failed hook the same lost scan is the call's error */
	h.failed = NULL;
	memset(&l, 0, sizeof l);
	assert_int_not_equal(scanner_scan_batches(&s->c, b + 2, 1, NULL, &h, &stats, err), PB_OK);
	assert_non_null(strstr(err, "1 of 1 workspace batches"));
	free(sid);
}

static void scanner_flow(void **state)
{
	struct sp *s = sp_of(state);
	char err[PB_ERR_MAX];
	char **ids = NULL;
	size_t n = 0;
	assert_int_equal(scanner_modified(&s->c, NULL, true, &ids, &n, err), PB_OK);
	assert_int_equal(n, 10);
	/* one scan by hand */
	char *sid = NULL, *st = NULL;
	const char *sales[] = { WS_SALES, WS_TEAM3 };
	scanner_opts full = { .lineage = true, .datasource_details = true, .dataset_schema = true,
			      .dataset_expressions = true };
	assert_int_equal(scanner_get_info(&s->c, sales, 2, &full, &sid, err), PB_OK);
	advance_60s();
	assert_int_equal(scanner_status(&s->c, sid, &st, err), PB_OK);
	assert_string_equal(st, "Succeeded");
	json_t *res = NULL;
	assert_int_equal(scanner_result(&s->c, sid, &res, err), PB_OK);
	assert_int_equal(json_array_size(json_object_get(res, "workspaces")), 2);
	/* the same result as plain C */
	scan_result sr;
	assert_int_equal(scanner_parse_result(res, &sr, err), PB_OK);
	assert_int_equal(sr.nworkspaces, 2);
	const scan_workspace *w = !strcmp(sr.workspaces[0].id, WS_SALES) ? &sr.workspaces[0] : &sr.workspaces[1];
	assert_string_equal(w->name, "Sales");
	assert_int_equal(w->ndatasets, 1);
	assert_string_equal(w->datasets[0].name, "Orders");
	assert_int_equal(w->datasets[0].ntables, 1);
	assert_int_equal(w->datasets[0].tables[0].ncolumns, 2);
	assert_string_equal(w->datasets[0].tables[0].columns[1].name, "Amount");
	assert_int_equal(w->datasets[0].tables[0].nsources, 1);
	assert_non_null(strstr(w->datasets[0].tables[0].sources[0], "Snowflake.Databases"));
	assert_int_equal(w->nreports, 1);
	assert_string_equal(w->reports[0].dataset_id, DS_ORDERS);
	assert_int_equal(w->ndashboards, 1);
	assert_int_equal(w->dashboards[0].ntiles, 1);
	assert_string_equal(w->dashboards[0].tiles[0].title, "Total");
	assert_int_equal(w->datasets[0].ndatasource_ids, 1);
	assert_true(sr.ndatasources >= 1);
	assert_string_equal(sr.datasources[0].id, w->datasets[0].datasource_ids[0]);
	scan_result_release(&sr);
	json_decref(res);
	/* field names are matched case-insensitively */
	json_t *odd = json_pack("{s:[{s:s, s:s, s:[{s:s, s:[{s:s}]}]}]}", "workspaces", "Id", "w1", "Name", "W",
				"Datasets", "Name", "d", "Tables", "Name", "t");
	assert_int_equal(scanner_parse_result(odd, &sr, err), PB_OK);
	assert_string_equal(sr.workspaces[0].id, "w1");
	assert_string_equal(sr.workspaces[0].datasets[0].tables[0].name, "t");
	scan_result_release(&sr);
	json_decref(odd);
	free(sid);
	free(st);
	assert_int_equal(scanner_get_info(&s->c, (const char *const *)ids, 0, NULL, &sid, err), PB_EINVAL);
	/* all of them in parallel batches, with a 429 in the middle and an expired token */
	config("{\"scan_duration_s\":0.05}");
	tu_fault("{\"burst_429\":{\"count\":2,\"retry_after\":0},\"path_prefix\":\"/powerbi/v1.0/myorg/admin/workspaces/getInfo\"}");
	tu_fault("{\"expire_tokens\":true}");
	scanner_opts o = { .lineage = true, .datasource_details = true, .dataset_schema = true };
	struct scan_count sc = { 0, 0 };
	scanner_stats stats;
	assert_int_equal(scan_ids(&s->c, (const char *const *)ids, n, &o, &sc, &stats, err), PB_OK);
	assert_int_equal(sc.workspaces, 10);
	assert_int_equal(sc.datasets, 1);
	assert_int_equal(stats.succeeded, 1);
	assert_true(stats.retries >= 2);
	assert_int_equal(s->r.calls, 1);
	tu_no_faults();
	/* batches of 100: 250 ids (unknown ids are simply not in the result) */
	char **many = calloc(250, sizeof *many);
	for (size_t i = 0; i < 250; i++)
		many[i] = (char *)ids[i % n];
	memset(&sc, 0, sizeof sc);
	assert_int_equal(scan_ids(&s->c, (const char *const *)many, 250, NULL, &sc, &stats, err), PB_OK);
	assert_int_equal(stats.batches, 3);
	assert_int_equal(stats.succeeded, 3);
	/* the same with the results handed over as text: the same counts, and the json_t hook is
	 * not asked */
	struct scan_count text_sc = { 0, 0 };
	scanner_batch tb[3];
	for (size_t i = 0; i < 3; i++)
		tb[i] = (scanner_batch){ .ids = (const char *const *)many + i * PB_SCAN_BATCH_MAX,
					 .n = i < 2 ? PB_SCAN_BATCH_MAX : 50 };
	scanner_hooks th = { .ctx = &text_sc, .result_text = count_scan_text };
	assert_int_equal(scanner_scan_batches(&s->c, tb, 3, NULL, &th, &stats, err), PB_OK);
	assert_int_equal(stats.succeeded, 3);
	assert_true(text_sc.workspaces > 0);
	assert_int_equal(text_sc.workspaces, sc.workspaces);
	assert_int_equal(text_sc.datasets, sc.datasets);
	free(many);
	scan_batches_resume_and_ids(s, ids, n);
	config("{\"scan_duration_s\":30}");
	msapi_strv_free(ids, n);

	/* an app that may not use admin APIs: clear message, stops at once */
	msapi p;
	msapi_init(&p, tu_emu.http, &tu_emu.cfg);
	entra_app plain = { TENANT, PLAIN_ID, "plain-secret" };
	entra_token t;
	assert_int_equal(entra_client_credentials(&p, &plain, NULL, &t, err), PB_OK);
	assert_int_equal(msapi_set_token(&p, t.access_token, err), PB_OK);
	entra_token_release(&t);
	assert_int_not_equal(scanner_modified(&p, NULL, true, &ids, &n, err), PB_OK);
	assert_non_null(strstr(err, "Power BI refused to list modified workspaces"));
	const char *one[] = { WS_SALES };
	assert_int_not_equal(scan_ids(&p, one, 1, NULL, &sc, &stats, err), PB_OK);
	assert_non_null(strstr(err, "Power BI refused to start a workspace scan"));
	msapi_release(&p);
}

/* ---------- TLS ---------- */

static void wrong_ca_is_a_clear_error(void **state)
{
	(void)state;
	need_emu();
	char err[PB_ERR_MAX], other[700];
	snprintf(other, sizeof other, "%s/tests/fixtures/msapi/other-ca.pem", emu_src_dir());
	pb_http_opts o = { .ca_bundle = other };
	pb_http *h = NULL;
	assert_int_equal(pb_http_new(&o, &h, err), PB_OK);
	msapi c;
	msapi_init(&c, h, &tu_emu.cfg);
	entra_app sp = { TENANT, SP_ID, SP_SEC };
	entra_token t;
	assert_int_equal(entra_client_credentials(&c, &sp, NULL, &t, err), PB_EIO);
	assert_non_null(strstr(err, "TLS check failed"));
	assert_int_equal(c.last.attempts, 1); /* not retried: a TLS failure does not heal */
	msapi_release(&c);
	pb_http_free(h);
}

/* The first status poll of a scan comes sooner for a small batch: proportional to its
 * workspaces, never before PB_SCAN_FIRST_POLL_MIN_MS, never later than the full batch's. */
static void scan_first_poll_follows_the_batch_size(void **state)
{
	(void)state;
	assert_int_equal(scanner_first_poll_ms(2000, PB_SCAN_BATCH_MAX), 2000);
	assert_int_equal(scanner_first_poll_ms(2000, 50), 1000);
	assert_int_equal(scanner_first_poll_ms(2000, 10), 200);
	assert_int_equal(scanner_first_poll_ms(2000, 1), PB_SCAN_FIRST_POLL_MIN_MS);
	assert_int_equal(scanner_first_poll_ms(2000, 7), 140);
	assert_int_equal(scanner_first_poll_ms(60000, 1), 600);
	/* an interval already at or below the floor is kept as configured */
	assert_int_equal(scanner_first_poll_ms(100, 1), 100);
	assert_int_equal(scanner_first_poll_ms(10, 1), 10);
	for (size_t n = 1; n <= PB_SCAN_BATCH_MAX; n++) {
		long ms = scanner_first_poll_ms(5000, n);
		assert_true(ms >= PB_SCAN_FIRST_POLL_MIN_MS && ms <= 5000);
		assert_true(n == 1 || ms >= scanner_first_poll_ms(5000, n - 1));
	}
}

/* Status and result are asked where Power BI's Location says, when it is on the Power BI
 * origin and names the scan; otherwise at the documented path. */
static void scan_follows_its_location(void **state)
{
	(void)state;
	char err[PB_ERR_MAX], *url = NULL;
	pb_config cfg;
	config_defaults(&cfg);
	cfg.powerbi_url = "https://emulator.test:8443/powerbi";
	msapi c;
	msapi_init(&c, NULL, &cfg);
	const char *sid = "e7d03602-4873-4760-b37e-1563ef5358e3";
	static const struct {
		const char *location;
		bool followed;
	} cases[] = {
		{ "https://emulator.test:8443/powerbi/v1.0/myorg/admin/workspaces/scanStatus/e7d03602-4873-4760-b37e-1563ef5358e3",
		  true },
		{ "https://EMULATOR.test:8443/v1.0/myorg/admin/workspaces/scanStatus/e7d03602-4873-4760-b37e-1563ef5358e3?x=1",
		  true },
		{ "/v1.0/myorg/admin/workspaces/scanStatus/e7d03602-4873-4760-b37e-1563ef5358e3", true },
		/* another host would get the token; another scan is not this one */
		{ "https://evil.test/v1.0/myorg/admin/workspaces/scanStatus/e7d03602-4873-4760-b37e-1563ef5358e3", false },
		{ "https://emulator.test:8443/powerbi/v1.0/myorg/admin/workspaces/scanStatus/00000000-0000-0000-0000-000000000000",
		  false },
		{ "//evil.test/scanStatus/e7d03602-4873-4760-b37e-1563ef5358e3", false },
		{ "", false },
		{ NULL, false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(scanner_next_url(&c, cases[i].location, "scanStatus", sid, &url, err), PB_OK);
		if (cases[i].followed)
			assert_string_equal(url, cases[i].location);
		else
			assert_string_equal(url, "/v1.0/myorg/admin/workspaces/scanStatus/e7d03602-4873-4760-b37e-1563ef5358e3");
		free(url);
	}
	assert_int_equal(scanner_next_url(&c, NULL, "scanResult", sid, &url, err), PB_OK);
	assert_string_equal(url, "/v1.0/myorg/admin/workspaces/scanResult/e7d03602-4873-4760-b37e-1563ef5358e3");
	free(url);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(error_messages_name_the_fix),
		cmocka_unit_test(failures_are_classified_once),
		cmocka_unit_test(urls_pkce_and_paths),
		cmocka_unit_test(follow_up_urls_stay_on_the_configured_hosts),
		cmocka_unit_test(scan_first_poll_follows_the_batch_size),
		cmocka_unit_test(scan_follows_its_location),
		cmocka_unit_test(entra_flows),
		cmocka_unit_test_setup_teardown(graph_display_name, sp_setup_graph, sp_teardown),
		cmocka_unit_test_setup_teardown(fabric_paging_and_token_refresh, sp_setup, sp_teardown),
		cmocka_unit_test_setup_teardown(fabric_throttling_and_bursts, sp_setup, sp_teardown),
		cmocka_unit_test_setup_teardown(fabric_models_lro, sp_setup, sp_teardown),
		cmocka_unit_test(fabric_as_user),
		cmocka_unit_test_setup_teardown(powerbi_reads_and_expiry, sp_setup, sp_teardown),
		cmocka_unit_test_setup_teardown(powerbi_refresh_and_push, sp_setup, sp_teardown),
		cmocka_unit_test_setup_teardown(scanner_flow, sp_setup, sp_teardown),
		cmocka_unit_test(wrong_ca_is_a_clear_error),
	};
	return cmocka_run_group_tests(tests, NULL, tu_emu_teardown);
}
