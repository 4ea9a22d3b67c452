/* `pbiport rotate-keys`: re-seals every stored secret with the first key of
 * APPLICATION_ENCRYPTION_KEYS, so older keys can be removed from the ring afterwards.
 * Each store that keeps sealed secrets has one row in `stores`. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/store/connections.h"
#include "core/store/integrations.h"
#include "core/store/powerbi_settings.h"
#include "core/store/webhooks.h"
#include "core/flow/publish.h"
#include "core/flow/push.h"
#include "runtime/config.h"
#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/util.h"

static int rotate_settings(pb_db *db, const pb_config *cfg, size_t *n, char *err)
{
	return pbi_settings_rotate(db, cfg, n, err);
}

static int rotate_connections(pb_db *db, const pb_config *cfg, size_t *n, char *err)
{
	return conn_rotate(db, cfg->encryption_keys, n, err);
}

static const struct {
	const char *what;
	int (*rotate)(pb_db *db, const pb_config *cfg, size_t *n, char *err);
} stores[] = {
	{ "Power BI settings client secrets", rotate_settings },
	{ "Power BI connection tokens and sign-in verifiers", rotate_connections },
	{ "credentials of unfinished publish jobs", publish_reseal_credentials },
	{ "push connection client secrets", push_connections_rotate },
	{ "import integration client secrets", integrations_rotate },
	{ "webhook secrets", webhooks_rotate },
};

int cmd_rotate_keys(int argc, char **argv)
{
	pb_config cfg;
	pb_db *db = NULL;
	char err[PB_ERR_MAX];
	int code = 1;
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: pbiport rotate-keys   (database: PBIPORT_DB; keys: APPLICATION_ENCRYPTION_KEYS)\n");
		return 2;
	}
	if (config_load(&cfg, err)) {
		fprintf(stderr, "pbiport rotate-keys: %s\n", err);
		return 2;
	}
	if (!cfg.encryption_keys) {
		fprintf(stderr, "pbiport rotate-keys: APPLICATION_ENCRYPTION_KEYS is not set\n");
		config_release(&cfg);
		return 2;
	}
	if (db_open(cfg.db_path, false, &db, err) || db_check_schema(db, cfg.sql_dir, err)) {
		fprintf(stderr, "pbiport rotate-keys: %s\n", err);
		goto out;
	}
	for (size_t i = 0; i < sizeof stores / sizeof stores[0]; i++) {
		size_t n = 0;
		if (stores[i].rotate(db, &cfg, &n, err)) {
			fprintf(stderr, "pbiport rotate-keys: %s: %s\n", stores[i].what, err);
			goto out;
		}
		fprintf(stderr, "pbiport rotate-keys: %s: %zu re-sealed\n", stores[i].what, n);
	}
	fprintf(stderr, "pbiport rotate-keys: every secret is sealed with key %s; older keys may be removed\n",
		pb_keyring_kid(cfg.encryption_keys, 0));
	code = 0;
out:
	db_close(db);
	config_release(&cfg);
	return code;
}
