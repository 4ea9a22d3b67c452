#include "runtime/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/crypto.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

#ifndef PBIPORT_DATADIR
#define PBIPORT_DATADIR "."
#endif

static int parse_bool(const char *name, bool *out, char *err)
{
	const char *v = getenv(name);
	*out = false;
	if (!v || !*v || !strcmp(v, "false") || !strcmp(v, "0"))
		return PB_OK;
	if (!strcmp(v, "true") || !strcmp(v, "1")) {
		*out = true;
		return PB_OK;
	}
	return pb_err(err, PB_EINVAL, "%s: expected true or false, got '%.40s'", name, v);
}

static int copy_opt(const char *name, char **out, char *err)
{
	const char *v = getenv(name);
	*out = NULL;
	if (!v || !*v)
		return PB_OK;
	*out = xstrdup(v);
	return *out ? PB_OK : pb_err(err, PB_ENOMEM, "%s: out of memory", name);
}

/* A key list that is required only when a feature using it is on. */
static int load_keys(const char *name, bool required, pb_keyring **keys, char *err)
{
	const char *v = getenv(name);
	if (!v || !*v) {
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

/* A duration setting (seconds, or a number with s, m, h or d) between min_s and max_s. */
static int parse_duration(const char *name, long long def_s, long long min_s, long long max_s, long long *out,
			  char *err)
{
	const char *v = getenv(name);
	char why[PB_ERR_MAX];
	int64_t secs;
	*out = def_s;
	if (!v || !*v)
		return PB_OK;
	if (pb_duration_parse(v, &secs, why))
		return pb_err(err, PB_EINVAL, "%s: %s", name, why);
	if (secs < min_s || secs > max_s)
		return pb_err(err, PB_EINVAL, "%s: expected a duration from %llds to %llds, got '%.40s'", name, min_s,
			      max_s, v);
	*out = secs;
	return PB_OK;
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
	if ((rc = parse_duration("PBIPORT_SESSION_IDLE_TIMEOUT", PB_SESSION_IDLE_DEFAULT_S, 60, 366LL * 86400,
				 &cfg->session_idle_s, err)) ||
	    (rc = parse_duration("PBIPORT_SESSION_LIFETIME", PB_SESSION_LIFETIME_DEFAULT_S, 60, 366LL * 86400,
				 &cfg->session_lifetime_s, err)))
		return rc;
	if (cfg->session_idle_s > cfg->session_lifetime_s)
		return pb_err(err, PB_EINVAL, "PBIPORT_SESSION_IDLE_TIMEOUT (%llds) is longer than PBIPORT_SESSION_LIFETIME "
			      "(%llds)", cfg->session_idle_s, cfg->session_lifetime_s);
	return PB_OK;
}

int config_load(pb_config *cfg, char *err)
{
	int rc;
	memset(cfg, 0, sizeof *cfg);
	cfg->max_body = PB_BODY_MAX_DEFAULT;

	const char *db = getenv("PBIPORT_DB");
	if (!db || !*db) {
		rc = pb_err(err, PB_EINVAL, "PBIPORT_DB is not set (path of the SQLite database file)");
		goto out;
	}
	cfg->db_path = xstrdup(db);
	if (!cfg->db_path) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}

	const char *mb = getenv("PBIPORT_MAX_BODY");
	if (mb && *mb) {
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
	if ((rc = copy_opt("PBIPORT_TEMPLATE_PATH", &cfg->template_path, err)))
		goto out;
	if ((rc = copy_opt("PBIPORT_SQL_DIR", &cfg->sql_dir, err)))
		goto out;
	if (!cfg->sql_dir) {
		cfg->sql_dir = xstrdup(PBIPORT_DATADIR "/sql");
		if (!cfg->sql_dir) {
			rc = pb_err(err, PB_ENOMEM, "out of memory");
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
	    (rc = copy_opt("PBIPORT_SSO_CLIENT_ID", &cfg->sso_client_id, err)))
		goto out;
	if ((rc = copy_opt("PBIPORT_SSO_CLIENT_SECRET", &cfg->sso_client_secret, err)))
		goto out;
	rc = load_signin(cfg, err);
out:
	if (rc)
		config_release(cfg);
	return rc;
}

void config_release(pb_config *cfg)
{
	free(cfg->db_path);
	free(cfg->public_url);
	free(cfg->template_path);
	free(cfg->sql_dir);
	pb_keyring_free(cfg->encryption_keys);
	pb_keyring_free(cfg->rememberme_keys);
	free(cfg->sso_tenant_id);
	free(cfg->sso_client_id);
	pb_secret_free(cfg->sso_client_secret, cfg->sso_client_secret ? strlen(cfg->sso_client_secret) : 0);
	memset(cfg, 0, sizeof *cfg);
}
