/* runtime/config.c: every setting read at start-up, its default, and one line naming the
 * variable for each malformed value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "runtime/config.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

#define KEY "1111111111111111111111111111111111111111111111111111111111111111"

/* Every variable config_load reads, cleared between cases. */
static const char *const VARS[] = {
	"PBIPORT_DB", "PBIPORT_MAX_BODY", "PBIPORT_PUBLIC_URL", "PBIPORT_DATADIR", "PBIPORT_TEMPLATE_PATH",
	"PBIPORT_SQL_DIR", "APPLICATION_POWERBI_WEB_ENABLED", "APPLICATION_INGESTIONS_ENABLED",
	"APPLICATION_ENCRYPTION_KEYS", "APPLICATION_SECURITY_REMEMBERME_KEY", "PBIPORT_SSO_TENANT_ID",
	"PBIPORT_SSO_CLIENT_ID", "PBIPORT_SSO_CLIENT_SECRET", "PBIPORT_ENTRA_URL", "PBIPORT_FABRIC_URL",
	"PBIPORT_POWERBI_URL", "PBIPORT_GRAPH_URL", "PBIPORT_CA_BUNDLE", "PBIPORT_MIN_SCHEDULE_INTERVAL",
	"PBIPORT_REFRESH_TIMEOUT", "PBIPORT_REFRESH_POLL_MS", "PBIPORT_SCAN_POLL_MS", "PBIPORT_SCAN_POLL_MAX_MS",
	"PBIPORT_SCAN_BUDGET_PER_HOUR", "PBIPORT_PUSH_RATE_SCALE", "PBIPORT_PUSH_INFLIGHT_S",
	"PBIPORT_TEST_PAUSE_PHASE", "PBIPORT_SESSION_IDLE_TIMEOUT", "PBIPORT_SESSION_LIFETIME",
	"PBIPORT_RENDER_TIME_LIMIT_MS",
};

static int clear_env(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof VARS / sizeof VARS[0]; i++)
		unsetenv(VARS[i]);
	setenv("PBIPORT_DB", "/tmp/pbiport-config-test.db", 1);
	return 0;
}

static void defaults(void **state)
{
	(void)state;
	pb_config c;
	char err[PB_ERR_MAX];
	assert_int_equal(config_load(&c, err), PB_OK);
	assert_string_equal(c.db_path, "/tmp/pbiport-config-test.db");
	assert_int_equal(c.max_body, PB_BODY_MAX_DEFAULT);
	assert_null(c.datadir);
	assert_string_equal(config_datadir(&c), PBIPORT_DATADIR);
	assert_string_equal(config_datadir(NULL), PBIPORT_DATADIR);
	assert_string_equal(c.sql_dir, PBIPORT_DATADIR "/sql");
	assert_null(c.template_path);
	assert_null(c.entra_url);
	assert_null(c.fabric_url);
	assert_null(c.powerbi_url);
	assert_null(c.graph_url);
	assert_null(c.ca_bundle);
	assert_int_equal(c.min_schedule_interval_s, 12 * 3600);
	assert_int_equal(c.refresh_timeout_s, PB_REFRESH_TIMEOUT_S_DEFAULT);
	assert_int_equal(c.refresh_poll_ms, PB_REFRESH_POLL_MIN_MS);
	assert_int_equal(c.scan_poll_ms, 2000);
	assert_int_equal(c.render_time_limit_ms, 0);   /* the scaled default */
	assert_int_equal(c.scan_poll_max_ms, 60000);
	assert_int_equal(c.scan_budget_per_hour, PB_SCAN_GETINFO_PER_HOUR);
	assert_true(c.push_rate_scale == 1.0);
	assert_int_equal(c.push_inflight_ms, PB_PUSH_INFLIGHT_STALE_MS);
	assert_null(c.test_pause_phase);
	config_release(&c);
	/* config_defaults gives the same defaults, reading nothing */
	setenv("PBIPORT_SCAN_POLL_MS", "5", 1);   /* malformed, but not read */
	config_defaults(&c);
	assert_int_equal(c.scan_poll_ms, 2000);
	assert_int_equal(c.min_schedule_interval_s, 12 * 3600);
	assert_null(c.db_path);
}

static void values_are_parsed(void **state)
{
	(void)state;
	pb_config c;
	char err[PB_ERR_MAX], ca[600];
	assert_int_equal(tu_src_path(ca, sizeof ca, "tests/fixtures/msapi/other-ca.pem"), 0);
	setenv("PBIPORT_DATADIR", "/opt/pbiport", 1);
	setenv("PBIPORT_TEMPLATE_PATH", ":" PBIPORT_DATADIR "/docs/examples::" PBIPORT_DATADIR "/templates", 1);
	setenv("PBIPORT_ENTRA_URL", "https://login.example.test/", 1);
	setenv("PBIPORT_FABRIC_URL", "HTTPS://fabric.example.test:8443/fabric//", 1);
	setenv("PBIPORT_POWERBI_URL", "https://powerbi.example.test", 1);
	setenv("PBIPORT_GRAPH_URL", "https://graph.example.test/g", 1);
	setenv("PBIPORT_CA_BUNDLE", ca, 1);
	setenv("PBIPORT_MIN_SCHEDULE_INTERVAL", "90m", 1);
	setenv("PBIPORT_REFRESH_TIMEOUT", "2h", 1);
	setenv("PBIPORT_REFRESH_POLL_MS", "100", 1);
	setenv("PBIPORT_SCAN_POLL_MS", "100", 1);
	setenv("PBIPORT_SCAN_POLL_MAX_MS", "400", 1);
	setenv("PBIPORT_SCAN_BUDGET_PER_HOUR", "7", 1);
	setenv("PBIPORT_PUSH_RATE_SCALE", "0.5", 1);
	setenv("PBIPORT_PUSH_INFLIGHT_S", "2", 1);
	setenv("PBIPORT_TEST_PAUSE_PHASE", "binding", 1);
	assert_int_equal(config_load(&c, err), PB_OK);
	assert_string_equal(config_datadir(&c), "/opt/pbiport");
	assert_string_equal(c.sql_dir, "/opt/pbiport/sql");   /* the SQL files live beside the templates */
	assert_string_equal(c.template_path, ":" PBIPORT_DATADIR "/docs/examples::" PBIPORT_DATADIR "/templates");
	assert_string_equal(c.entra_url, "https://login.example.test");
	assert_string_equal(c.fabric_url, "HTTPS://fabric.example.test:8443/fabric");
	assert_string_equal(c.powerbi_url, "https://powerbi.example.test");
	assert_string_equal(c.graph_url, "https://graph.example.test/g");
	assert_string_equal(c.ca_bundle, ca);
	assert_int_equal(c.min_schedule_interval_s, 5400);
	assert_int_equal(c.refresh_timeout_s, 7200);
	assert_int_equal(c.refresh_poll_ms, 100);
	assert_int_equal(c.scan_poll_ms, 100);
	assert_int_equal(c.scan_poll_max_ms, 400);
	assert_int_equal(c.scan_budget_per_hour, 7);
	assert_true(c.push_rate_scale == 0.5);
	assert_int_equal(c.push_inflight_ms, 2000);
	assert_string_equal(c.test_pause_phase, "binding");
	config_release(&c);
	/* a shorter first scan poll lowers an unset longest one with it */
	unsetenv("PBIPORT_SCAN_POLL_MAX_MS");
	setenv("PBIPORT_SCAN_POLL_MS", "90000", 1);
	assert_int_equal(config_load(&c, err), PB_OK);
	assert_int_equal(c.scan_poll_max_ms, 90000);
	config_release(&c);
	/* an empty value is no value */
	setenv("PBIPORT_ENTRA_URL", "", 1);
	setenv("PBIPORT_MIN_SCHEDULE_INTERVAL", "", 1);
	assert_int_equal(config_load(&c, err), PB_OK);
	assert_null(c.entra_url);
	assert_int_equal(c.min_schedule_interval_s, 12 * 3600);
	config_release(&c);
}

/* Start-up refuses the environment as it is, with one line naming what is missing. */
static void refused_naming(const char *what)
{
	pb_config c;
	char err[PB_ERR_MAX] = "";
	assert_int_equal(config_load(&c, err), PB_EINVAL);
	assert_non_null(strstr(err, what));
	assert_null(strchr(err, '\n'));
}

/* Each malformed value stops start-up with one line that names its variable. */
static void malformed_values_stop_start_up(void **state)
{
	static const struct {
		const char *name, *value, *says;
	} cases[] = {
		{ "PBIPORT_MAX_BODY", "12x", "PBIPORT_MAX_BODY: expected a byte count" },
		{ "PBIPORT_PUBLIC_URL", "ftp://x", "PBIPORT_PUBLIC_URL: expected an http:// or https:// URL" },
		{ "PBIPORT_TEMPLATE_PATH", "/nonexistent/pbiport-templates",
		  "PBIPORT_TEMPLATE_PATH: template folder /nonexistent/pbiport-templates: not a readable folder" },
		{ "PBIPORT_TEMPLATE_PATH", PBIPORT_DATADIR "/README.md", "not a readable folder" },
		{ "PBIPORT_ENTRA_URL", "http://login.example.test", "PBIPORT_ENTRA_URL must be an https:// URL" },
		{ "PBIPORT_FABRIC_URL", "https://", "PBIPORT_FABRIC_URL must be an https:// URL" },
		{ "PBIPORT_POWERBI_URL", "https://api.powerbi.com/a b", "PBIPORT_POWERBI_URL must be an https:// URL" },
		{ "PBIPORT_GRAPH_URL", "graph.microsoft.com", "PBIPORT_GRAPH_URL must be an https:// URL" },
		{ "PBIPORT_CA_BUNDLE", "/nonexistent/ca.pem", "PBIPORT_CA_BUNDLE: /nonexistent/ca.pem" },
		{ "PBIPORT_CA_BUNDLE", PBIPORT_DATADIR "/README.md", "holds no PEM certificate" },
		{ "PBIPORT_MIN_SCHEDULE_INTERVAL", "soon", "PBIPORT_MIN_SCHEDULE_INTERVAL: expected a duration" },
		{ "PBIPORT_REFRESH_TIMEOUT", "4 hours", "PBIPORT_REFRESH_TIMEOUT: expected a duration" },
		{ "PBIPORT_REFRESH_TIMEOUT", "0", "PBIPORT_REFRESH_TIMEOUT: at least 1 s" },
		{ "PBIPORT_REFRESH_POLL_MS", "0", "PBIPORT_REFRESH_POLL_MS: expected a whole number from 1 to" },
		{ "PBIPORT_SCAN_POLL_MS", "fast", "PBIPORT_SCAN_POLL_MS: expected a whole number" },
		{ "PBIPORT_SCAN_POLL_MAX_MS", "50", "PBIPORT_SCAN_POLL_MAX_MS: at least PBIPORT_SCAN_POLL_MS (2000)" },
		{ "PBIPORT_SCAN_BUDGET_PER_HOUR", "0", "PBIPORT_SCAN_BUDGET_PER_HOUR: expected a whole number from 1" },
		{ "PBIPORT_PUSH_RATE_SCALE", "-1", "PBIPORT_PUSH_RATE_SCALE: expected a positive number" },
		{ "PBIPORT_PUSH_RATE_SCALE", "nan", "PBIPORT_PUSH_RATE_SCALE: expected a positive number" },
		{ "PBIPORT_PUSH_INFLIGHT_S", "86401", "PBIPORT_PUSH_INFLIGHT_S: expected a whole number from 1 to 86400" },
		{ "PBIPORT_RENDER_TIME_LIMIT_MS", "0", "PBIPORT_RENDER_TIME_LIMIT_MS: expected a whole number from 1 to 3600000" },
		{ "PBIPORT_RENDER_TIME_LIMIT_MS", "10s", "PBIPORT_RENDER_TIME_LIMIT_MS: expected a whole number" },
		{ "APPLICATION_POWERBI_WEB_ENABLED", "yes", "APPLICATION_POWERBI_WEB_ENABLED: expected true or false" },
		{ "APPLICATION_ENCRYPTION_KEYS", "abc", "APPLICATION_ENCRYPTION_KEYS" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		clear_env(state);
		setenv(cases[i].name, cases[i].value, 1);
		pb_config c;
		char err[PB_ERR_MAX] = "";
		if (config_load(&c, err) != PB_EINVAL || !strstr(err, cases[i].says) || strchr(err, '\n'))
			fail_msg("%s=%s: got \"%s\", want \"%s\"", cases[i].name, cases[i].value, err, cases[i].says);
		/* released on failure: nothing to free, nothing left behind */
		assert_null(c.db_path);
	}
	clear_env(state);
	unsetenv("PBIPORT_DB");
	pb_config c;
	char err[PB_ERR_MAX];
	refused_naming("PBIPORT_DB is not set");
	/* the keys are required once a feature needing them is on */
	setenv("PBIPORT_DB", "/tmp/x.db", 1);
	setenv("APPLICATION_INGESTIONS_ENABLED", "true", 1);
	refused_naming("APPLICATION_ENCRYPTION_KEYS is not set");
	setenv("APPLICATION_ENCRYPTION_KEYS", KEY, 1);
	setenv("APPLICATION_SECURITY_REMEMBERME_KEY", KEY, 1);
	assert_int_equal(config_load(&c, err), PB_OK);
	assert_true(c.ingestions_enabled);
	assert_non_null(c.encryption_keys);
	config_release(&c);
}

/* Signing in with Microsoft: the three PBIPORT_SSO_* together, the keys it needs, the session
 * timeouts (defaults, durations, idle no longer than the lifetime). */
static void signin_settings(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_config c;
	assert_int_equal(config_load(&c, err), PB_OK);
	assert_false(c.sso_signin);   /* none set: no sign-in, and no keys needed */
	assert_int_equal(c.session_idle_s, PB_SESSION_IDLE_DEFAULT_S);
	assert_int_equal(c.session_lifetime_s, PB_SESSION_LIFETIME_DEFAULT_S);
	config_release(&c);
	setenv("PBIPORT_SSO_TENANT_ID", "7e1a0000-0000-4000-8000-000000000001", 1);
	refused_naming("PBIPORT_SSO_CLIENT_ID is not set");
	setenv("PBIPORT_SSO_CLIENT_ID", "c", 1);
	setenv("PBIPORT_SSO_CLIENT_SECRET", "s", 1);
	refused_naming("APPLICATION_SECURITY_REMEMBERME_KEY");
	setenv("APPLICATION_SECURITY_REMEMBERME_KEY", KEY, 1);
	refused_naming("APPLICATION_ENCRYPTION_KEYS");
	setenv("APPLICATION_ENCRYPTION_KEYS", KEY, 1);
	assert_int_equal(config_load(&c, err), PB_OK);
	assert_true(c.sso_signin);
	config_release(&c);
	setenv("PBIPORT_SESSION_IDLE_TIMEOUT", "30m", 1);
	setenv("PBIPORT_SESSION_LIFETIME", "12h", 1);
	assert_int_equal(config_load(&c, err), PB_OK);
	assert_int_equal(c.session_idle_s, 1800);
	assert_int_equal(c.session_lifetime_s, 12 * 3600);
	config_release(&c);
	static const struct { const char *value, *says; } idle[] = {
		{ "2d", "longer than PBIPORT_SESSION_LIFETIME" }, { "soon", "PBIPORT_SESSION_IDLE_TIMEOUT" },
		{ "5s", "at least 60 s" },
	};
	for (size_t i = 0; i < sizeof idle / sizeof idle[0]; i++) {
		setenv("PBIPORT_SESSION_IDLE_TIMEOUT", idle[i].value, 1);
		if (config_load(&c, err) != PB_EINVAL || !strstr(err, idle[i].says))
			fail_msg("PBIPORT_SESSION_IDLE_TIMEOUT=%s: got \"%s\"", idle[i].value, err);
	}
}

/* pbiport tmdl reads the template settings only: no database, nothing else checked. */
static void templates_only(void **state)
{
	(void)state;
	pb_config c;
	char err[PB_ERR_MAX];
	unsetenv("PBIPORT_DB");
	setenv("PBIPORT_FABRIC_URL", "http://not-checked", 1);
	setenv("PBIPORT_DATADIR", "/opt/pbiport", 1);
	setenv("PBIPORT_TEMPLATE_PATH", PBIPORT_DATADIR "/docs/examples", 1);
	setenv("PBIPORT_RENDER_TIME_LIMIT_MS", "600000", 1);   /* profiling a render under valgrind */
	assert_int_equal(config_load_templates(&c, err), PB_OK);
	assert_int_equal(c.render_time_limit_ms, 600000);
	assert_string_equal(config_datadir(&c), "/opt/pbiport");
	assert_string_equal(c.template_path, PBIPORT_DATADIR "/docs/examples");
	assert_null(c.db_path);
	assert_null(c.fabric_url);
	config_release(&c);
	setenv("PBIPORT_TEMPLATE_PATH", "/nonexistent/x", 1);
	assert_int_equal(config_load_templates(&c, err), PB_EINVAL);
	assert_string_equal(err, "PBIPORT_TEMPLATE_PATH: template folder /nonexistent/x: not a readable folder");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(defaults, clear_env),
		cmocka_unit_test_setup(values_are_parsed, clear_env),
		cmocka_unit_test_setup(malformed_values_stop_start_up, clear_env),
		cmocka_unit_test_setup(templates_only, clear_env),
		cmocka_unit_test_setup(signin_settings, clear_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
