/* Webhooks: webhook_emit queues one delivery job per active webhook of the organization that
 * subscribes to the event (inside the caller's transaction; once per key with webhook_emit_once),
 * the payload's shape, the signature (a known HMAC-SHA256 vector), the back-off schedule and what
 * each answer leads to, the addresses a webhook may not reach (before and after DNS), URL checks,
 * and a delivery job against a real HTTPS server (the emulator): a non-2xx answer is recorded
 * and retried, an address not allowed is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/flow/webhooks.h"
#include "core/flow/worker.h"
#include "core/store/identity.h"
#include "core/store/webhooks.h"
#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/http.h"
#include "runtime/jobs.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

static char tmpdir[64];
static char db_path[256];
static pb_db *db;
static pb_config cfg;
static char org_id[PB_ID_BUF], other_org[PB_ID_BUF], owner_id[PB_ID_BUF];

static int setup(void **state)
{
	(void)state;
	char err[PB_ERR_MAX] = "", other_user[PB_ID_BUF];
	config_defaults(&cfg);
	if (tu_mkdtemp(tmpdir, sizeof tmpdir, "webhooks") ||
	    tu_db_open_migrated(tmpdir, "hooks.db", db_path, sizeof db_path, &db, err) ||
	    identity_org_create(db, "acme", org_id, err) || identity_org_create(db, "globex", other_org, err) ||
	    identity_user_add(db, "alice", "acme", PB_ROLE_OWNER, NULL, 0, owner_id, err) ||
	    identity_user_add(db, "carol", "globex", PB_ROLE_OWNER, NULL, 0, other_user, err) ||
	    pb_keyring_parse("4444444444444444444444444444444444444444444444444444444444444444", &cfg.encryption_keys,
			     err)) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	cfg.db_path = db_path;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pb_keyring_free(cfg.encryption_keys);
	db_close(db);
	tu_emu_teardown(state);
	return tu_rmtree(tmpdir);
}

/* A webhook of org made through the API's core function; id receives its id. */
static void make_hook_with(const pb_config *c, const char *org, const char *url, const char *events_json, bool active,
			   char id[PB_ID_BUF])
{
	char body[1024];
	pb_failure f;
	json_t *out = NULL;
	pb_failure_clear(&f);
	assert_int_equal(xsnprintf(body, sizeof body, "{\"url\":\"%s\",\"events\":%s,\"secret\":\"s3cret-s3cret-s3cret\"}",
				   url, events_json), 0);
	json_t *b = json_loads(body, 0, NULL);
	assert_non_null(b);
	int rc = webhook_create(db, c, org, owner_id, b, &out, &f);
	if (rc)
		fail_msg("webhook_create: %s", f.message);
	assert_int_equal(xsnprintf(id, PB_ID_BUF, "%s", json_string_value(json_object_get(out, "id"))), 0);
	assert_null(json_object_get(out, "secret"));   /* a given secret is never returned */
	json_decref(out);
	json_decref(b);
	if (!active) {
		webhook_change ch = { .active = 0 };
		char err[PB_ERR_MAX];
		assert_int_equal(webhooks_update(db, cfg.encryption_keys, org, id, &ch, err), PB_OK);
	}
}

static void make_hook(const char *org, const char *url, const char *events_json, bool active, char id[PB_ID_BUF])
{
	make_hook_with(&cfg, org, url, events_json, active, id);
}

static void delete_all_hooks(void)
{
	char err[PB_ERR_MAX];
	const char *v[] = { NULL };
	assert_int_equal(db_exec_texts(db, "DELETE FROM webhooks", v, 0, err), PB_OK);
	assert_int_equal(db_exec_texts(db, "DELETE FROM jobs", v, 0, err), PB_OK);
}

static void test_emit_without_webhooks_queues_nothing(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	delete_all_hooks();
	json_t *data = json_pack("{s:s}", "job_id", "j1");
	assert_int_equal(webhook_emit(db, org_id, "publish.succeeded", data, err), PB_OK);
	json_decref(data);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM jobs", NULL), 0);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM webhook_deliveries", NULL), 0);
	/* an unknown event is the caller's mistake */
	assert_int_equal(webhook_emit(db, org_id, "publish.done", NULL, err), PB_EINVAL);
}

static void test_emit_queues_one_job_per_subscriber(void **state)
{
	(void)state;
	char a[PB_ID_BUF], b[PB_ID_BUF], c[PB_ID_BUF], off[PB_ID_BUF], other[PB_ID_BUF], err[PB_ERR_MAX];
	delete_all_hooks();
	make_hook(org_id, "https://a.example.com/hook", "[\"publish.succeeded\",\"refresh.failed\"]", true, a);
	make_hook(org_id, "https://b.example.com/hook", "[\"publish.succeeded\"]", true, b);
	make_hook(org_id, "https://c.example.com/hook", "[\"import.failed\"]", true, c);
	make_hook(org_id, "https://off.example.com/hook", "[\"publish.succeeded\"]", false, off);
	make_hook(other_org, "https://other.example.com/hook", "[\"publish.succeeded\"]", true, other);

	json_t *data = json_pack("{s:s, s:s}", "job_id", "j1", "semantic_model_id", "m1");
	assert_int_equal(webhook_emit(db, org_id, "publish.succeeded", data, err), PB_OK);
	json_decref(data);
	/* a and b only: c does not subscribe, off is turned off, other is another organization's */
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM webhook_deliveries", NULL), 2);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ?", a), 1);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ?", b), 1);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM jobs WHERE kind = 'webhook_delivery' AND state = 'queued' "
				    "AND org_id = ?", org_id), 2);
	/* each delivery names its job, whose input names the delivery */
	pb_delivery **v = NULL;
	size_t n = 0;
	assert_int_equal(deliveries_list(db, a, 10, &v, &n, err), PB_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0]->state, "pending");
	assert_non_null(v[0]->job_id);
	pb_job *j = NULL;
	assert_int_equal(jobs_get(db, v[0]->job_id, &j, err), PB_OK);
	assert_string_equal(j->kind, WEBHOOK_JOB_KIND);
	assert_int_equal(j->max_attempts, PB_WEBHOOK_ATTEMPTS);
	json_t *in = json_loads(j->input, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(in, "delivery_id")), v[0]->id);
	json_decref(in);
	job_free(j);
	/* the body: {"id","event","created_at","organization_id","data"}, the same event id for every webhook */
	json_t *p = json_loads(v[0]->payload, 0, NULL);
	assert_non_null(p);
	assert_int_equal(json_object_size(p), 5);
	assert_string_equal(json_string_value(json_object_get(p, "event")), "publish.succeeded");
	assert_string_equal(json_string_value(json_object_get(p, "organization_id")), org_id);
	assert_string_equal(json_string_value(json_object_get(p, "id")), v[0]->event_id);
	assert_non_null(json_string_value(json_object_get(p, "created_at")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(p, "data"), "semantic_model_id")), "m1");
	json_decref(p);
	assert_int_equal(tu_count(db, "SELECT COUNT(DISTINCT event_id) FROM webhook_deliveries", NULL), 1);
	deliveries_free(v, n);
	/* the other event goes to a only */
	assert_int_equal(webhook_emit(db, org_id, "refresh.failed", NULL, err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ?", a), 2);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM webhook_deliveries", NULL), 3);
}

static void test_emit_joins_the_callers_transaction(void **state)
{
	(void)state;
	char a[PB_ID_BUF], err[PB_ERR_MAX];
	delete_all_hooks();
	make_hook(org_id, "https://a.example.com/hook", "[\"drift.detected\"]", true, a);
	assert_int_equal(db_begin(db, err), PB_OK);
	assert_int_equal(webhook_emit(db, org_id, "drift.detected", NULL, err), PB_OK);
	db_rollback(db);
	/* what the event reported was not committed: neither is the event */
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM webhook_deliveries", NULL), 0);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM jobs", NULL), 0);
	assert_int_equal(db_begin(db, err), PB_OK);
	assert_int_equal(webhook_emit(db, org_id, "drift.detected", NULL, err), PB_OK);
	assert_int_equal(db_commit(db, err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM webhook_deliveries", NULL), 1);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM jobs", NULL), 1);
}

static void test_emit_once_per_key(void **state)
{
	(void)state;
	char a[PB_ID_BUF], b[PB_ID_BUF], err[PB_ERR_MAX];
	delete_all_hooks();
	make_hook(org_id, "https://a.example.com/hook", "[\"import.failed\"]", true, a);
	make_hook(org_id, "https://b.example.com/hook", "[\"import.failed\"]", true, b);
	/* a job that runs again after its worker died reports its end again */
	assert_int_equal(webhook_emit_once(db, org_id, "import.failed", "job-1", NULL, err), PB_OK);
	assert_int_equal(webhook_emit_once(db, org_id, "import.failed", "job-1", NULL, err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM webhook_deliveries", NULL), 2);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM jobs", NULL), 2);
	assert_int_equal(webhook_emit_once(db, org_id, "import.failed", "job-2", NULL, err), PB_OK);
	assert_int_equal(tu_count(db, "SELECT COUNT(*) FROM webhook_deliveries", NULL), 4);
}

static void test_signature(void **state)
{
	(void)state;
	char sig[WEBHOOK_SIGNATURE_BUF], err[PB_ERR_MAX];
	static const char msg[] = "The quick brown fox jumps over the lazy dog";
	/* RFC 4231-style published vector (key "key") */
	assert_int_equal(webhook_signature("key", 3, msg, sizeof msg - 1, sig, err), PB_OK);
	assert_string_equal(sig, "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
	/* over the exact bytes: one more byte, another signature */
	assert_int_equal(webhook_signature("key", 3, "The quick brown fox jumps over the lazy dog.", sizeof msg, sig, err),
			 PB_OK);
	assert_string_not_equal(sig, "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
	assert_int_equal(webhook_signature("", 0, msg, sizeof msg - 1, sig, err), PB_EINVAL);
}

static void test_backoff_schedule(void **state)
{
	(void)state;
	static const long want[] = { 5000, 10000, 20000, 40000, 80000, 160000, 320000, 640000, 1280000, 2560000, 3600000,
				     3600000 };
	long total = 0;
	for (int i = 0; i < (int)(sizeof want / sizeof want[0]); i++) {
		assert_int_equal(webhook_backoff_ms(i + 1), want[i]);
		if (i + 1 < PB_WEBHOOK_ATTEMPTS)
			total += want[i];
	}
	/* about two and a half hours from the first try to the last */
	assert_true(total > 2 * 3600 * 1000L && total < 3 * 3600 * 1000L);
	assert_int_equal(webhook_backoff_ms(1000), PB_WEBHOOK_BACKOFF_MAX_MS);
}

static void test_verdicts(void **state)
{
	(void)state;
	long delay = 0;
	assert_int_equal(webhook_verdict_of(PB_OK, 200, -1, 1, &delay), WEBHOOK_DELIVERED);
	assert_int_equal(webhook_verdict_of(PB_OK, 204, -1, 1, &delay), WEBHOOK_DELIVERED);
	assert_int_equal(webhook_verdict_of(PB_OK, 410, -1, 1, &delay), WEBHOOK_GONE);
	assert_int_equal(webhook_verdict_of(PB_EFORBIDDEN, 0, -1, 1, &delay), WEBHOOK_REFUSED);
	assert_int_equal(webhook_verdict_of(PB_OK, 500, -1, 3, &delay), WEBHOOK_RETRY);
	assert_int_equal(delay, 20000);
	assert_int_equal(webhook_verdict_of(PB_OK, 301, -1, 1, &delay), WEBHOOK_RETRY);   /* never followed */
	assert_int_equal(webhook_verdict_of(PB_EIO, 0, -1, 2, &delay), WEBHOOK_RETRY);   /* no answer, timeout */
	assert_int_equal(delay, 10000);
	/* Retry-After on 429 and 503, bounded; elsewhere the back-off */
	assert_int_equal(webhook_verdict_of(PB_OK, 429, 7, 1, &delay), WEBHOOK_RETRY);
	assert_int_equal(delay, 7000);
	assert_int_equal(webhook_verdict_of(PB_OK, 503, 0, 5, &delay), WEBHOOK_RETRY);
	assert_int_equal(delay, 1000);
	assert_int_equal(webhook_verdict_of(PB_OK, 503, 999999, 1, &delay), WEBHOOK_RETRY);
	assert_int_equal(delay, PB_WEBHOOK_RETRY_AFTER_MAX_S * 1000L);
	assert_int_equal(webhook_verdict_of(PB_OK, 500, 7, 1, &delay), WEBHOOK_RETRY);
	assert_int_equal(delay, 5000);
}

/* The emit points report a failure once: when the worker will end the job failed. */
static void test_job_failing_for_good(void **state)
{
	(void)state;
	pb_job j = { .attempts = 1, .max_attempts = 3 };
	pb_job_ctx ctx = { .job = &j };
	atomic_init(&ctx.lease_lost, 0);
	job_fail(&ctx, "connection_mismatch", "not retried");
	assert_true(job_failing_for_good(&ctx));
	job_retry_later(&ctx, 1000, "unavailable", "retried");
	assert_false(job_failing_for_good(&ctx));
	j.attempts = 3;   /* the last attempt: the worker gives up */
	assert_true(job_failing_for_good(&ctx));
	job_wait(&ctx, 1000, "throttled", "a wait uses no attempt");
	assert_false(job_failing_for_good(&ctx));
	/* an unexpected failure (no code) is retried while attempts are left */
	memset(ctx.error_code, 0, sizeof ctx.error_code);
	ctx.transient = ctx.waiting = false;
	j.attempts = 1;
	assert_false(job_failing_for_good(&ctx));
	j.attempts = 3;
	assert_true(job_failing_for_good(&ctx));
	/* a cancel, or another worker holding the job, is not a failure to report */
	ctx.cancel_requested = true;
	assert_false(job_failing_for_good(&ctx));
	ctx.cancel_requested = false;
	atomic_store(&ctx.lease_lost, 1);
	assert_false(job_failing_for_good(&ctx));
}

static bool internal4(const char *text)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	assert_int_equal(inet_pton(AF_INET, text, &a.sin_addr), 1);
	return pb_addr_internal((struct sockaddr *)&a);
}

static bool internal6(const char *text)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6 };
	assert_int_equal(inet_pton(AF_INET6, text, &a.sin6_addr), 1);
	return pb_addr_internal((struct sockaddr *)&a);
}

/* Fails naming the first of the n addresses v that is_internal does not judge internal (want
 * true) or public (want false). */
static void expect_internal(bool (*is_internal)(const char *), const char *const *v, size_t n, bool want)
{
	for (size_t i = 0; i < n; i++)
		if (is_internal(v[i]) != want)
			fail_msg("%s should be %s", v[i], want ? "internal" : "public");
}

static void test_internal_addresses(void **state)
{
	(void)state;
	static const char *const in4[] = { "127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.255",
					   "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1", "224.0.0.1",
					   "255.255.255.255", "198.18.0.1" };
	static const char *const out4[] = { "8.8.8.8", "172.32.0.1", "172.15.255.255", "100.128.0.1", "1.1.1.1",
					    "193.0.0.1" };
	static const char *const in6[] = { "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
					   "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1",
					   "2001:db8::1", "::127.0.0.1" };
	static const char *const out6[] = { "2606:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8",
					    "64:ff9b::808:808", "2002:808:808::1" };
	expect_internal(internal4, in4, sizeof in4 / sizeof in4[0], true);
	expect_internal(internal4, out4, sizeof out4 / sizeof out4[0], false);
	expect_internal(internal6, in6, sizeof in6 / sizeof in6[0], true);
	expect_internal(internal6, out6, sizeof out6 / sizeof out6[0], false);
	assert_true(pb_addr_internal(NULL));
}

static void url_case(const pb_config *c, const char *url, int want_rc, const char *want_code, const char *want_host)
{
	pb_failure f;
	char host[WEBHOOK_HOST_BUF] = "";
	pb_failure_clear(&f);
	int rc = webhook_url_check(c, url, host, NULL, &f);
	if (rc != want_rc)
		fail_msg("%s: rc %d (%s), wanted %d", url, rc, f.message, want_rc);
	if (want_code)
		assert_string_equal(pb_failure_code(&f), want_code);
	if (want_host)
		assert_string_equal(host, want_host);
	if (rc)
		assert_non_null(strstr(f.message, "url"));
}

static void test_url_checks(void **state)
{
	(void)state;
	pb_config c;
	config_defaults(&c);
	url_case(&c, "https://hooks.example.com/pbiport?x=1", PB_OK, NULL, "hooks.example.com");
	url_case(&c, "HTTPS://Hooks.Example.COM:8443/p", PB_OK, NULL, "hooks.example.com");
	url_case(&c, "https://[2606:4700::1111]:443/", PB_OK, NULL, "2606:4700::1111");
	url_case(&c, "http://hooks.example.com/", PB_EINVAL, "webhook_url_refused", NULL);
	url_case(&c, "ftp://hooks.example.com/", PB_EINVAL, "webhook_url_refused", NULL);
	url_case(&c, "https://user:pw@hooks.example.com/", PB_EINVAL, "webhook_url_refused", NULL);
	url_case(&c, "https://hooks.example.com@127.0.0.1/", PB_EINVAL, "webhook_url_refused", NULL);
	url_case(&c, "https://127.0.0.1:8443/hook", PB_EINVAL, "webhook_url_refused", NULL);
	url_case(&c, "https://169.254.169.254/latest/meta-data", PB_EINVAL, "webhook_url_refused", NULL);
	url_case(&c, "https://[::1]/", PB_EINVAL, "webhook_url_refused", NULL);
	url_case(&c, "https://[::ffff:10.0.0.1]/", PB_EINVAL, "webhook_url_refused", NULL);
	url_case(&c, "https://localhost/", PB_EINVAL, "webhook_url_refused", NULL);
	url_case(&c, "https://api.localhost/", PB_EINVAL, "webhook_url_refused", NULL);
	url_case(&c, "https://hooks.example.com\\@evil/", PB_EINVAL, "bad_request", NULL);
	url_case(&c, "https://hooks example.com/", PB_EINVAL, "bad_request", NULL);
	url_case(&c, "https:///path", PB_EINVAL, "bad_request", NULL);
	url_case(&c, "https://host:0/", PB_EINVAL, "bad_request", NULL);
	url_case(&c, "https://host:65536/", PB_EINVAL, "bad_request", NULL);
	url_case(&c, "https://host:80x/", PB_EINVAL, "bad_request", NULL);
	url_case(&c, "https://[::1/", PB_EINVAL, "bad_request", NULL);
	url_case(&c, "https://h%41st/", PB_EINVAL, "bad_request", NULL);
	url_case(&c, "", PB_EINVAL, "bad_request", NULL);
	/* the administrator's allow list */
	c.webhook_allow_hosts = (char *)"localhost,10.0.0.7,::1";
	url_case(&c, "https://localhost:9443/hook", PB_OK, NULL, "localhost");
	url_case(&c, "https://LOCALHOST/hook", PB_OK, NULL, "localhost");
	url_case(&c, "https://10.0.0.7/hook", PB_OK, NULL, "10.0.0.7");
	url_case(&c, "https://[::1]:8443/", PB_OK, NULL, "::1");
	url_case(&c, "https://10.0.0.8/hook", PB_EINVAL, "webhook_url_refused", NULL);
	url_case(&c, "https://127.0.0.1/hook", PB_EINVAL, "webhook_url_refused", NULL);
}

static void test_allow_hosts_setting(void **state)
{
	(void)state;
	pb_config c;
	char err[PB_ERR_MAX];
	setenv("PBIPORT_DB", db_path, 1);
	setenv("PBIPORT_WEBHOOK_ALLOW_HOSTS", " LocalHost , [::1],10.0.0.7", 1);
	assert_int_equal(config_load(&c, err), PB_OK);
	assert_string_equal(c.webhook_allow_hosts, "localhost,::1,10.0.0.7");
	config_release(&c);
	static const char *const bad[] = { "a b", "x,,y", ",", "host/path", "h\\x" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setenv("PBIPORT_WEBHOOK_ALLOW_HOSTS", bad[i], 1);
		if (config_load(&c, err) != PB_EINVAL)
			fail_msg("%s was accepted", bad[i]);
		assert_non_null(strstr(err, "PBIPORT_WEBHOOK_ALLOW_HOSTS: entry"));
	}
	unsetenv("PBIPORT_WEBHOOK_ALLOW_HOSTS");
	assert_int_equal(config_load(&c, err), PB_OK);
	assert_null(c.webhook_allow_hosts);
	config_release(&c);
}

/* ---- a delivery job against a real HTTPS server: the emulator ---- */

static const pb_job_kind delivery_kinds[] = {
	{ WEBHOOK_JOB_KIND, webhook_delivery_job, NULL },
	{ NULL, NULL, NULL },
};
static const pb_worker_tick no_ticks[] = { NULL };

static void run_due_deliveries(const pb_config *c)
{
	char err[PB_ERR_MAX];
	long ran = 0;
	pb_worker_opts o = { .worker_id = "unit", .once = true, .kinds = delivery_kinds, .ticks = no_ticks };
	assert_int_equal(worker_run(db, c, &o, &ran, err), PB_OK);
}

static pb_delivery *only_delivery(const char *hook)
{
	pb_delivery **v = NULL;
	size_t n = 0;
	char err[PB_ERR_MAX];
	assert_int_equal(deliveries_list(db, hook, 10, &v, &n, err), PB_OK);
	assert_int_equal(n, 1);
	pb_delivery *d = v[0];
	v[0] = NULL;
	deliveries_free(v, n);
	return d;
}

/* The only webhook: one for publish.failed at <emulator>/path (its host allowed in *c, the
 * emulator's configuration), and one such event queued for it. Skips the test when the emulator
 * does not run. */
static void hook_on_emulator(pb_config *c, const char *path, char hook[PB_ID_BUF])
{
	char url[700], err[PB_ERR_MAX];
	tu_need_emu();
	*c = cfg;
	emu_config(&tu_emu, c);
	c->webhook_allow_hosts = (char *)"127.0.0.1";
	delete_all_hooks();
	assert_int_equal(xsnprintf(url, sizeof url, "%s%s", tu_emu.url, path), 0);
	make_hook_with(c, org_id, url, "[\"publish.failed\"]", true, hook);
	assert_int_equal(webhook_emit(db, org_id, "publish.failed", NULL, err), PB_OK);
}

static void test_delivery_job_records_answer_and_retries(void **state)
{
	(void)state;
	char hook[PB_ID_BUF], err[PB_ERR_MAX];
	pb_config c;
	/* the emulator answers 404 to a POST it does not know: not delivered */
	hook_on_emulator(&c, "/no-such-receiver", hook);
	run_due_deliveries(&c);
	pb_delivery *d = only_delivery(hook);
	assert_string_equal(d->state, "retrying");
	assert_int_equal(d->attempts, 1);
	assert_int_equal(d->last_status, 404);
	assert_non_null(strstr(d->last_error, "HTTP 404"));
	assert_non_null(d->next_attempt_at);
	pb_job *j = NULL;
	assert_int_equal(jobs_get(db, d->job_id, &j, err), PB_OK);
	assert_string_equal(j->state, "queued");   /* again after the back-off */
	assert_string_equal(j->error_code, "webhook_failed");
	job_free(j);
	/* the webhook shows its last delivery */
	pb_webhook *w = NULL;
	assert_int_equal(webhooks_get(db, org_id, hook, &w, err), PB_OK);
	assert_int_equal(w->last_status, 404);
	assert_string_equal(w->last_delivery_state, "retrying");
	webhook_free(w);
	delivery_free(d);
}

static void test_delivery_refuses_internal_addresses(void **state)
{
	(void)state;
	char hook[PB_ID_BUF], err[PB_ERR_MAX];
	pb_config c;
	hook_on_emulator(&c, "/hook", hook);
	/* a worker without the allow list does not send it, and says why */
	c.webhook_allow_hosts = NULL;
	run_due_deliveries(&c);
	pb_delivery *d = only_delivery(hook);
	assert_string_equal(d->state, "failed");
	assert_non_null(strstr(d->last_error, "PBIPORT_WEBHOOK_ALLOW_HOSTS"));
	pb_job *j = NULL;
	assert_int_equal(jobs_get(db, d->job_id, &j, err), PB_OK);
	assert_string_equal(j->state, "failed");
	assert_string_equal(j->error_code, "webhook_url_refused");
	job_free(j);
	delivery_free(d);

	/* after DNS: a host name that resolves to loopback is refused when the connection opens */
	pb_http *h = NULL;
	pb_http_resp resp;
	char hurl[700];
	const char *port = strrchr(tu_emu.url, ':');
	assert_non_null(port);
	assert_int_equal(xsnprintf(hurl, sizeof hurl, "https://localhost%s/_emulator/state", port), 0);
	pb_http_opts ho = { .ca_bundle = c.ca_bundle, .public_only = true };
	assert_int_equal(pb_http_new(&ho, &h, err), PB_OK);
	pb_http_req req = { .method = "GET", .url = hurl };
	assert_int_equal(pb_http_do(h, &req, &resp, err), PB_EFORBIDDEN);
	assert_true(resp.address_refused);
	assert_non_null(strstr(err, "loopback"));
	pb_http_resp_release(&resp);
	pb_http_free(h);
	/* the same client without the guard reaches it */
	ho.public_only = false;
	assert_int_equal(pb_http_new(&ho, &h, err), PB_OK);
	assert_int_equal(pb_http_do(h, &req, &resp, err), PB_OK);
	assert_int_equal(resp.status, 200);
	pb_http_resp_release(&resp);
	pb_http_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_emit_without_webhooks_queues_nothing),
		cmocka_unit_test(test_emit_queues_one_job_per_subscriber),
		cmocka_unit_test(test_emit_joins_the_callers_transaction),
		cmocka_unit_test(test_emit_once_per_key),
		cmocka_unit_test(test_signature),
		cmocka_unit_test(test_backoff_schedule),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_job_failing_for_good),
		cmocka_unit_test(test_internal_addresses),
		cmocka_unit_test(test_url_checks),
		cmocka_unit_test(test_allow_hosts_setting),
		cmocka_unit_test(test_delivery_job_records_answer_and_retries),
		cmocka_unit_test(test_delivery_refuses_internal_addresses),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
