/* Process configuration from the environment, read and validated once at start-up.
 *
 * This is the ONE place pbiport reads its environment (tests/cli/t0010-config-getenv.sh
 * fails on a getenv anywhere else): every setting is parsed and checked here, so that a
 * missing or malformed one stops the process with ONE line naming it (the caller prints err
 * and exits), and later code trusts the struct, which is passed down to what needs it.
 * Variables: README "Configuration" (and the guides in docs/ for the tuning ones).
 *
 * Ownership: config_load() fills a caller-owned struct; config_release() frees what it
 * allocated. The struct lives for the whole process (kept across requests). Tests and tools
 * that build one by hand start from config_defaults(). */
#ifndef PBIPORT_CONFIG_H
#define PBIPORT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pb_keyring;

typedef struct pb_config {
	char *db_path;              /* PBIPORT_DB (required): a SQLite file path or a PostgreSQL connection string */
	size_t max_body;            /* PBIPORT_MAX_BODY, default PB_BODY_MAX_DEFAULT */
	char *public_url;           /* PBIPORT_PUBLIC_URL without trailing '/', or NULL */
	char *datadir;              /* PBIPORT_DATADIR (built-in templates/, lua/, sql/), or NULL: the
	                               folder pbiport was built for (config_datadir) */
	char *template_path;        /* PBIPORT_TEMPLATE_PATH: colon-separated admin template folders,
	                               each an existing folder at start-up, or NULL */
	char *sql_dir;              /* PBIPORT_SQL_DIR, default <datadir>/sql */
	long render_time_limit_ms;  /* PBIPORT_RENDER_TIME_LIMIT_MS: the templates' CPU-time deadline
	                               per render, for profiling (docs/templates.md); 0 = the default,
	                               scaled to the contract and the machine (core/lang/render.c) */
	bool powerbi_web_enabled;   /* APPLICATION_POWERBI_WEB_ENABLED */
	bool ingestions_enabled;    /* APPLICATION_INGESTIONS_ENABLED */
	struct pb_keyring *encryption_keys;  /* APPLICATION_ENCRYPTION_KEYS (runtime/crypto.h), or NULL */
	struct pb_keyring *rememberme_keys;  /* APPLICATION_SECURITY_REMEMBERME_KEY, or NULL */
	char *sso_tenant_id;        /* PBIPORT_SSO_TENANT_ID, or NULL */
	char *sso_client_id;        /* PBIPORT_SSO_CLIENT_ID, or NULL */
	char *sso_client_secret;    /* PBIPORT_SSO_CLIENT_SECRET (secret: wiped on release), or NULL */
	/* Sign in with Microsoft (docs/signin.md): on when all three PBIPORT_SSO_* are set */
	bool sso_signin;
	int64_t session_idle_s;        /* PBIPORT_SESSION_IDLE_TIMEOUT, default PB_SESSION_IDLE_DEFAULT_S */
	int64_t session_lifetime_s;    /* PBIPORT_SESSION_LIFETIME, default PB_SESSION_LIFETIME_DEFAULT_S */

	/* Outbound calls. The base URLs are https:// URLs without a trailing '/', or NULL for
	 * the public cloud's own (msapi/msapi.c knows them). */
	char *entra_url;            /* PBIPORT_ENTRA_URL */
	char *fabric_url;           /* PBIPORT_FABRIC_URL */
	char *powerbi_url;          /* PBIPORT_POWERBI_URL */
	char *graph_url;            /* PBIPORT_GRAPH_URL */
	char *ca_bundle;            /* PBIPORT_CA_BUNDLE: an extra CA PEM file (checked), or NULL */
	char *webhook_allow_hosts;  /* PBIPORT_WEBHOOK_ALLOW_HOSTS: host names and IP addresses that
	                               webhook URLs may name although they are (or resolve to)
	                               loopback, private or link-local addresses: lower case, comma-
	                               separated, no spaces or brackets ("localhost,10.0.0.7,::1"),
	                               or NULL (none: webhooks reach public addresses only) */

	/* Schedules and jobs (defaults in config_defaults) */
	int64_t min_schedule_interval_s;   /* PBIPORT_MIN_SCHEDULE_INTERVAL (duration), 12 h */
	int64_t refresh_timeout_s;         /* PBIPORT_REFRESH_TIMEOUT (duration), PB_REFRESH_TIMEOUT_S_DEFAULT */
	long refresh_poll_ms;              /* PBIPORT_REFRESH_POLL_MS, PB_REFRESH_POLL_MIN_MS */
	long scan_poll_ms;                 /* PBIPORT_SCAN_POLL_MS, 2000 */
	long scan_poll_max_ms;             /* PBIPORT_SCAN_POLL_MAX_MS, 60000 (at least scan_poll_ms) */
	long scan_budget_per_hour;         /* PBIPORT_SCAN_BUDGET_PER_HOUR, PB_SCAN_GETINFO_PER_HOUR */
	double push_rate_scale;            /* PBIPORT_PUSH_RATE_SCALE, 1 */
	long push_inflight_ms;             /* PBIPORT_PUSH_INFLIGHT_S x 1000, PB_PUSH_INFLIGHT_STALE_MS */
	char *test_pause_phase;            /* PBIPORT_TEST_PAUSE_PHASE: a test hook (docs/publish.md), or NULL */
} pb_config;

/* Every default, nothing read: what config_load starts from. Allocates nothing. */
void config_defaults(pb_config *cfg);

/* Reads the process environment: the FastCGI server, the worker and the commands that open
 * the database. On failure err holds one line naming the variable, e.g.
 * "PBIPORT_DB is not set" or "PBIPORT_MAX_BODY: expected a byte count ..., got 'x'",
 * and the struct is left released. Returns PB_OK, PB_EINVAL or PB_ENOMEM. */
int config_load(pb_config *cfg, char *err);

/* The same for commands that only render templates (pbiport tmdl): PBIPORT_DATADIR,
 * PBIPORT_TEMPLATE_PATH and PBIPORT_RENDER_TIME_LIMIT_MS only; nothing else is required or
 * read. */
int config_load_templates(pb_config *cfg, char *err);

void config_release(pb_config *cfg);

/* cfg->datadir, or the folder pbiport was built for when cfg (or its datadir) is NULL.
 * Borrowed from cfg or static. */
const char *config_datadir(const pb_config *cfg);

#endif
