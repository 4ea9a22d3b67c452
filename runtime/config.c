/* The process environment, read once at start-up: see config.h. */
#include "runtime/config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/http.h"
#include "runtime/strbuf.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

#ifndef PBIPORT_DATADIR
#define PBIPORT_DATADIR "."
#endif

#define URL_MAX 1024   /* a configured base URL */

/* The variable's value, or NULL when it is unset or empty (empty = unset everywhere). */
static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static int parse_bool(const char *name, bool *out, char *err)
{
	const char *v = env(name);
	*out = false;
	if (!v || !strcmp(v, "false") || !strcmp(v, "0"))
		return PB_OK;
	if (!strcmp(v, "true") || !strcmp(v, "1")) {
		*out = true;
		return PB_OK;
	}
	return pb_err(err, PB_EINVAL, "%s: expected true or false, got '%.40s'", name, v);
}

static int copy_opt(const char *name, char **out, char *err)
{
	const char *v = env(name);
	*out = NULL;
	if (!v)
		return PB_OK;
	*out = xstrdup(v);
	return *out ? PB_OK : pb_err(err, PB_ENOMEM, "%s: out of memory", name);
}

/* A whole number from lo to hi; unset keeps *out. */
static int parse_long(const char *name, long lo, long hi, long *out, char *err)
{
	const char *v = env(name);
	char *end;
	if (!v)
		return PB_OK;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || *end || x < lo || x > hi)
		return pb_err(err, PB_EINVAL, "%s: expected a whole number from %ld to %ld, got '%.40s'", name, lo,
			      hi, v);
	*out = x;
	return PB_OK;
}

/* A duration (runtime/timeutil.h) of at least min_s; unset keeps *out. */
static int parse_duration(const char *name, int64_t min_s, int64_t *out, char *err)
{
	const char *v = env(name);
	char sub[PB_ERR_MAX];
	int64_t s;
	if (!v)
		return PB_OK;
	if (pb_duration_parse(v, &s, sub))
		return pb_err(err, PB_EINVAL, "%s: %s", name, sub);
	if (s < min_s)
		return pb_err(err, PB_EINVAL, "%s: at least %lld s, got '%.40s'", name, (long long)min_s, v);
	*out = s;
	return PB_OK;
}

/* A base URL: https://, bounded, one line; kept without trailing slashes. */
static int parse_base_url(const char *name, char **out, char *err)
{
	const char *v = env(name);
	*out = NULL;
	if (!v)
		return PB_OK;
	size_t n = strlen(v);
	bool ok = n > 8 && n <= URL_MAX && !strncasecmp(v, "https://", 8) && v[8] != '/';
	for (size_t i = 0; ok && i < n; i++)
		ok = (unsigned char)v[i] > 0x20 && v[i] != 0x7f;
	if (!ok)
		return pb_err(err, PB_EINVAL, "%s must be an https:// URL of at most %d characters (got \"%.100s\")",
			      name, URL_MAX, v);
	while (n > 9 && v[n - 1] == '/')
		n--;
	*out = xstrndup(v, n);
	return *out ? PB_OK : pb_err(err, PB_ENOMEM, "%s: out of memory", name);
}

/* Every folder of a colon-separated list exists: a typo must not silently fall back to the
 * built-in templates. */
static int check_folders(const char *name, const char *list, char *err)
{
	size_t count = 0;
	for (const char *p = list; p;) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		if (n) {
			char dir[PB_RENDER_MAX_PATH];
			struct stat st;
			if (n >= sizeof dir)
				return pb_err(err, PB_EINVAL, "%s: a folder name longer than %zu bytes", name,
					      sizeof dir - 1);
			memcpy(dir, p, n);
			dir[n] = '\0';
			if (stat(dir, &st) || !S_ISDIR(st.st_mode))
				return pb_err(err, PB_EINVAL, "%s: template folder %s: not a readable folder", name, dir);
			/* room is left for the built-in folders on the search path */
			if (++count > PB_TEMPLATE_MAX_DIRS - 2)
				return pb_err(err, PB_EINVAL, "%s: more than %d template folders", name,
					      PB_TEMPLATE_MAX_DIRS - 2);
		}
		p = colon ? colon + 1 : NULL;
	}
	return PB_OK;
}

/* A key list that is required only when a feature using it is on. */
static int load_keys(const char *name, bool required, pb_keyring **keys, char *err)
{
	const char *v = env(name);
	if (!v) {
		if (required)
			return pb_err(err, PB_EINVAL,
				      "%s is not set (required when APPLICATION_POWERBI_WEB_ENABLED or "
				      "APPLICATION_INGESTIONS_ENABLED is true)", name);
		return PB_OK;
	}
	char msg[PB_ERR_MAX];
	int rc = pb_keyring_parse(v, keys, msg);
	if (!rc)
		return PB_OK;
	/* the key-ring parser names APPLICATION_ENCRYPTION_KEYS; name the variable we read */
	static const char ring[] = "APPLICATION_ENCRYPTION_KEYS";
	const char *rest = strncmp(msg, ring, sizeof ring - 1) ? msg : msg + sizeof ring - 1;
	return pb_err(err, rc, "%s%s%s", name, rest == msg ? ": " : "", rest);
}

void config_defaults(pb_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->max_body = PB_BODY_MAX_DEFAULT;
	cfg->min_schedule_interval_s = 12 * 3600;
	cfg->refresh_timeout_s = PB_REFRESH_TIMEOUT_S_DEFAULT;
	cfg->refresh_poll_ms = PB_REFRESH_POLL_MIN_MS;
	cfg->scan_poll_ms = 2000;
	cfg->scan_poll_max_ms = 60000;
	cfg->scan_budget_per_hour = PB_SCAN_GETINFO_PER_HOUR;
	cfg->push_rate_scale = 1.0;
	cfg->push_inflight_ms = PB_PUSH_INFLIGHT_STALE_MS;
	cfg->session_idle_s = PB_SESSION_IDLE_DEFAULT_S;
	cfg->session_lifetime_s = PB_SESSION_LIFETIME_DEFAULT_S;
}

const char *config_datadir(const pb_config *cfg)
{
	return cfg && cfg->datadir ? cfg->datadir : PBIPORT_DATADIR;
}

static int load_templates(pb_config *cfg, char *err)
{
	int rc;
	if ((rc = copy_opt("PBIPORT_DATADIR", &cfg->datadir, err)) ||
	    (rc = copy_opt("PBIPORT_TEMPLATE_PATH", &cfg->template_path, err)) ||
	    (rc = parse_long("PBIPORT_RENDER_TIME_LIMIT_MS", 1, PB_RENDER_TIME_LIMIT_MAX_MS,
			     &cfg->render_time_limit_ms, err)))
		return rc;
	return cfg->template_path ? check_folders("PBIPORT_TEMPLATE_PATH", cfg->template_path, err) : PB_OK;
}

#define HOST_MAX 253   /* a DNS name; IPv6 addresses are shorter */

/* PBIPORT_WEBHOOK_ALLOW_HOSTS: "host[,host...]" (spaces around commas, [IPv6] brackets and case
 * are dropped) into the normalized list webhooks compare hosts with. */
static int load_webhook_hosts(pb_config *cfg, char *err)
{
	static const char name[] = "PBIPORT_WEBHOOK_ALLOW_HOSTS";
	const char *v = env(name);
	sbuf b;
	int rc = PB_OK;
	size_t idx = 0;
	if (!v)
		return PB_OK;
	sbuf_init(&b, strlen(v) + 1);
	for (const char *p = v; !rc; idx++) {
		const char *comma = strchr(p, ',');
		const char *s = p, *e = comma ? comma : p + strlen(p);
		while (s < e && *s == ' ')
			s++;
		while (e > s && e[-1] == ' ')
			e--;
		if (e - s >= 2 && *s == '[' && e[-1] == ']') {
			s++;
			e--;
		}
		bool ok = e > s && e - s <= HOST_MAX;
		for (const char *c = s; ok && c < e; c++)
			ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
			     *c == '-' || *c == ':';
		if (!ok) {
			rc = pb_err(err, PB_EINVAL, "%s: entry %zu ('%.*s') is not a host name or IP address", name, idx + 1,
				    (int)(e - s > 60 ? 60 : e - s), s);
			break;
		}
		if (b.len && sbuf_addc(&b, ','))
			rc = pb_err(err, PB_ENOMEM, "%s: out of memory", name);
		for (const char *c = s; !rc && c < e; c++)
			if (sbuf_addc(&b, (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c)))
				rc = pb_err(err, PB_ENOMEM, "%s: out of memory", name);
		if (!comma)
			break;
		p = comma + 1;
	}
	if (!rc && !(cfg->webhook_allow_hosts = sbuf_detach(&b, NULL)))
		rc = pb_err(err, PB_ENOMEM, "%s: out of memory", name);
	sbuf_release(&b);
	return rc;
}

static int load_microsoft(pb_config *cfg, char *err)
{
	int rc;
	if ((rc = parse_base_url("PBIPORT_ENTRA_URL", &cfg->entra_url, err)) ||
	    (rc = parse_base_url("PBIPORT_FABRIC_URL", &cfg->fabric_url, err)) ||
	    (rc = parse_base_url("PBIPORT_POWERBI_URL", &cfg->powerbi_url, err)) ||
	    (rc = parse_base_url("PBIPORT_GRAPH_URL", &cfg->graph_url, err)) ||
	    (rc = copy_opt("PBIPORT_CA_BUNDLE", &cfg->ca_bundle, err)))
		return rc;
	if (cfg->ca_bundle && (rc = pb_http_ca_check(cfg->ca_bundle, err)))
		return rc;
	return load_webhook_hosts(cfg, err);
}

static int load_tuning(pb_config *cfg, char *err)
{
	int rc;
	if ((rc = parse_duration("PBIPORT_MIN_SCHEDULE_INTERVAL", 0, &cfg->min_schedule_interval_s, err)) ||
	    (rc = parse_duration("PBIPORT_REFRESH_TIMEOUT", 1, &cfg->refresh_timeout_s, err)) ||
	    (rc = parse_long("PBIPORT_REFRESH_POLL_MS", 1, PB_REFRESH_POLL_MAX_MS, &cfg->refresh_poll_ms, err)) ||
	    (rc = parse_long("PBIPORT_SCAN_POLL_MS", 10, 3600000, &cfg->scan_poll_ms, err)) ||
	    (rc = parse_long("PBIPORT_SCAN_POLL_MAX_MS", 10, 3600000, &cfg->scan_poll_max_ms, err)) ||
	    (rc = parse_long("PBIPORT_SCAN_BUDGET_PER_HOUR", 1, 100000, &cfg->scan_budget_per_hour, err)))
		return rc;
	if (cfg->scan_poll_max_ms < cfg->scan_poll_ms) {
		if (env("PBIPORT_SCAN_POLL_MAX_MS"))
			return pb_err(err, PB_EINVAL, "PBIPORT_SCAN_POLL_MAX_MS: at least PBIPORT_SCAN_POLL_MS (%ld), got %ld",
				      cfg->scan_poll_ms, cfg->scan_poll_max_ms);
		cfg->scan_poll_max_ms = cfg->scan_poll_ms;
	}
	const char *s = env("PBIPORT_PUSH_RATE_SCALE");
	if (s) {
		char *end = NULL;
		errno = 0;
		double scale = strtod(s, &end);
		if (errno || *end || !isfinite(scale) || scale <= 0 || scale > 1e6)
			return pb_err(err, PB_EINVAL, "PBIPORT_PUSH_RATE_SCALE: expected a positive number, got '%.40s'", s);
		cfg->push_rate_scale = scale;
	}
	long inflight_s = cfg->push_inflight_ms / 1000;
	if ((rc = parse_long("PBIPORT_PUSH_INFLIGHT_S", 1, 86400, &inflight_s, err)))
		return rc;
	cfg->push_inflight_ms = inflight_s * 1000;
	return copy_opt("PBIPORT_TEST_PAUSE_PHASE", &cfg->test_pause_phase, err);
}

/* Sign in with Microsoft: the deployment's app (all three PBIPORT_SSO_* or none), the keys that
 * sign its state and session cookies and seal its PKCE verifiers, and the session timeouts. */
static int load_signin(pb_config *cfg, char *err)
{
	int set = !!cfg->sso_tenant_id + !!cfg->sso_client_id + !!cfg->sso_client_secret;
	int rc;
	if (set > 0 && set < 3)
		return pb_err(err, PB_EINVAL, "%s is not set (the deployment's sign-in app needs PBIPORT_SSO_TENANT_ID, "
			      "PBIPORT_SSO_CLIENT_ID and PBIPORT_SSO_CLIENT_SECRET together)",
			      !cfg->sso_tenant_id ? "PBIPORT_SSO_TENANT_ID" :
			      !cfg->sso_client_id ? "PBIPORT_SSO_CLIENT_ID" : "PBIPORT_SSO_CLIENT_SECRET");
	cfg->sso_signin = set == 3;
	if (cfg->sso_signin && !cfg->rememberme_keys)
		return pb_err(err, PB_EINVAL, "APPLICATION_SECURITY_REMEMBERME_KEY is not set (required when "
			      "PBIPORT_SSO_* is set: it signs the sign-in state and the session cookies)");
	if (cfg->sso_signin && !cfg->encryption_keys)
		return pb_err(err, PB_EINVAL, "APPLICATION_ENCRYPTION_KEYS is not set (required when PBIPORT_SSO_* is "
			      "set: it seals the sign-in's PKCE verifier)");
	if ((rc = parse_duration("PBIPORT_SESSION_IDLE_TIMEOUT", 60, &cfg->session_idle_s, err)) ||
	    (rc = parse_duration("PBIPORT_SESSION_LIFETIME", 60, &cfg->session_lifetime_s, err)))
		return rc;
	if (cfg->session_idle_s > cfg->session_lifetime_s)
		return pb_err(err, PB_EINVAL, "PBIPORT_SESSION_IDLE_TIMEOUT (%llds) is longer than PBIPORT_SESSION_LIFETIME "
			      "(%llds)", (long long)cfg->session_idle_s, (long long)cfg->session_lifetime_s);
	return PB_OK;
}

/* PBIPORT_DB: a path means SQLite, a postgresql:// URL or libpq key=value string PostgreSQL
 * (runtime/db.h db_target_is_pg). A URL of another scheme is refused here rather than taken for a
 * file path; the message names the scheme only, never the rest (it may hold a password). */
static int check_db_target(const char *db, char *err)
{
	const char *sep = strstr(db, "://");
	if (!sep || db_target_is_pg(db))
		return PB_OK;
	size_t n = (size_t)(sep - db);
	if (n == 0 || n > 16 || strspn(db, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-") != n)
		return PB_OK;   /* not a scheme: a path that happens to hold "://" */
	return pb_err(err, PB_EINVAL, "PBIPORT_DB: unknown scheme '%.*s://': use the path of a SQLite file or a "
		      "postgresql:// URL", (int)n, db);
}

int config_load(pb_config *cfg, char *err)
{
	int rc;
	config_defaults(cfg);

	const char *db = env("PBIPORT_DB");
	if (!db) {
		rc = pb_err(err, PB_EINVAL, "PBIPORT_DB is not set (the path of a SQLite database file, or a PostgreSQL "
			    "connection string: postgresql://user@host/db or host=... dbname=...)");
		goto out;
	}
	if ((rc = check_db_target(db, err)))
		goto out;
	cfg->db_path = xstrdup(db);
	if (!cfg->db_path) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}

	const char *mb = env("PBIPORT_MAX_BODY");
	if (mb) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(mb, &end, 10);
		if (errno || *end || mb[0] == '-' || v == 0 || v > PB_RESPONSE_MAX_BYTES) {
			rc = pb_err(err, PB_EINVAL,
				    "PBIPORT_MAX_BODY: expected a byte count between 1 and %u, got '%.40s'",
				    PB_RESPONSE_MAX_BYTES, mb);
			goto out;
		}
		cfg->max_body = (size_t)v;
	}

	if ((rc = copy_opt("PBIPORT_PUBLIC_URL", &cfg->public_url, err)))
		goto out;
	if (cfg->public_url) {
		size_t n = strlen(cfg->public_url);
		if (strncmp(cfg->public_url, "https://", 8) && strncmp(cfg->public_url, "http://", 7)) {
			rc = pb_err(err, PB_EINVAL, "PBIPORT_PUBLIC_URL: expected an http:// or https:// URL");
			goto out;
		}
		while (n > 0 && cfg->public_url[n - 1] == '/')
			cfg->public_url[--n] = '\0';
	}
	if ((rc = load_templates(cfg, err)) || (rc = copy_opt("PBIPORT_SQL_DIR", &cfg->sql_dir, err)))
		goto out;
	if (!cfg->sql_dir) {
		sbuf b;
		sbuf_init(&b, PB_RENDER_MAX_PATH);
		if (sbuf_addf(&b, "%s/sql", config_datadir(cfg)) || !(cfg->sql_dir = sbuf_detach(&b, NULL))) {
			sbuf_release(&b);
			rc = pb_err(err, PB_EINVAL, "PBIPORT_DATADIR: path too long or out of memory");
			goto out;
		}
	}

	if ((rc = parse_bool("APPLICATION_POWERBI_WEB_ENABLED", &cfg->powerbi_web_enabled, err)) ||
	    (rc = parse_bool("APPLICATION_INGESTIONS_ENABLED", &cfg->ingestions_enabled, err)))
		goto out;
	bool need_keys = cfg->powerbi_web_enabled || cfg->ingestions_enabled;
	if ((rc = load_keys("APPLICATION_ENCRYPTION_KEYS", need_keys, &cfg->encryption_keys, err)))
		goto out;
	if ((rc = load_keys("APPLICATION_SECURITY_REMEMBERME_KEY", need_keys, &cfg->rememberme_keys, err)))
		goto out;
	/* the deployment's sign-in app, reused by organizations in Power BI "sso" mode */
	if ((rc = copy_opt("PBIPORT_SSO_TENANT_ID", &cfg->sso_tenant_id, err)) ||
	    (rc = copy_opt("PBIPORT_SSO_CLIENT_ID", &cfg->sso_client_id, err)) ||
	    (rc = copy_opt("PBIPORT_SSO_CLIENT_SECRET", &cfg->sso_client_secret, err)))
		goto out;
	if ((rc = load_signin(cfg, err)) || (rc = load_microsoft(cfg, err)))
		goto out;
	rc = load_tuning(cfg, err);
out:
	if (rc)
		config_release(cfg);
	return rc;
}

int config_load_templates(pb_config *cfg, char *err)
{
	config_defaults(cfg);
	int rc = load_templates(cfg, err);
	if (rc)
		config_release(cfg);
	return rc;
}

void config_release(pb_config *cfg)
{
	free(cfg->db_path);
	free(cfg->public_url);
	free(cfg->datadir);
	free(cfg->template_path);
	free(cfg->sql_dir);
	pb_keyring_free(cfg->encryption_keys);
	pb_keyring_free(cfg->rememberme_keys);
	free(cfg->sso_tenant_id);
	free(cfg->sso_client_id);
	pb_secret_free(cfg->sso_client_secret, cfg->sso_client_secret ? strlen(cfg->sso_client_secret) : 0);
	free(cfg->entra_url);
	free(cfg->fabric_url);
	free(cfg->powerbi_url);
	free(cfg->graph_url);
	free(cfg->ca_bundle);
	free(cfg->webhook_allow_hosts);
	free(cfg->test_pause_phase);
	memset(cfg, 0, sizeof *cfg);
}
