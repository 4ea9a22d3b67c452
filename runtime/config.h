/* Process configuration from the environment, read and validated once at start-up.
 *
 * Every setting is checked here so that a missing or malformed one stops the
 * process with ONE line naming it (the caller prints err and exits); later code
 * trusts the struct. Variables: see docs/ARCHITECTURE "Configuration".
 *
 * Ownership: config_load() fills a caller-owned struct; config_release() frees
 * what it allocated. The struct lives for the whole process (kept across requests). */
#ifndef PBIPORT_CONFIG_H
#define PBIPORT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct pb_keyring;

typedef struct pb_config {
	char *db_path;              /* PBIPORT_DB (required) */
	size_t max_body;            /* PBIPORT_MAX_BODY, default PB_BODY_MAX_DEFAULT */
	char *public_url;           /* PBIPORT_PUBLIC_URL without trailing '/', or NULL */
	char *template_path;        /* PBIPORT_TEMPLATE_PATH (colon-separated), or NULL */
	char *sql_dir;              /* PBIPORT_SQL_DIR, default <datadir>/sql */
	bool powerbi_web_enabled;   /* APPLICATION_POWERBI_WEB_ENABLED */
	bool ingestions_enabled;    /* APPLICATION_INGESTIONS_ENABLED */
	struct pb_keyring *encryption_keys;  /* APPLICATION_ENCRYPTION_KEYS (runtime/crypto.h), or NULL */
	struct pb_keyring *rememberme_keys;  /* APPLICATION_SECURITY_REMEMBERME_KEY, or NULL */
	char *sso_tenant_id;        /* PBIPORT_SSO_TENANT_ID, or NULL */
	char *sso_client_id;        /* PBIPORT_SSO_CLIENT_ID, or NULL */
	char *sso_client_secret;    /* PBIPORT_SSO_CLIENT_SECRET (secret: wiped on release), or NULL */
	/* Sign in with Microsoft (docs/signin.md): on when all three PBIPORT_SSO_* are set */
	bool sso_signin;
	long long session_idle_s;      /* PBIPORT_SESSION_IDLE_TIMEOUT, default PB_SESSION_IDLE_DEFAULT_S */
	long long session_lifetime_s;  /* PBIPORT_SESSION_LIFETIME, default PB_SESSION_LIFETIME_DEFAULT_S */
} pb_config;

/* Reads the process environment. On failure err holds e.g.
 * "PBIPORT_DB is not set" or "PBIPORT_MAX_BODY: expected a byte count, got 'x'"
 * and the struct is left released. Returns PB_OK, PB_EINVAL or PB_ENOMEM. */
int config_load(pb_config *cfg, char *err);
void config_release(pb_config *cfg);

#endif
