/* `pbiport migrate`: create or update the database PBIPORT_DB to this binary's schema. */
#include <stdio.h>

#include "cli/cli.h"
#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/util.h"

int cmd_migrate(int argc, char **argv)
{
	pb_config cfg;
	pb_db *db = NULL;
	char err[PB_ERR_MAX];
	int applied = 0, version = 0, code = 1;
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: pbiport migrate   (database: PBIPORT_DB)\n");
		return 2;
	}
	if (config_load(&cfg, err)) {
		fprintf(stderr, "pbiport migrate: %s\n", err);
		return 2;
	}
	if (db_open(cfg.db_path, true, &db, err) || db_migrate(db, cfg.sql_dir, &applied, err) ||
	    db_schema_version(db, &version, err)) {
		fprintf(stderr, "pbiport migrate: %s\n", err);
		goto out;
	}
	fprintf(stderr, "pbiport migrate: applied %d migration%s; schema is at version %d\n", applied,
		applied == 1 ? "" : "s", version);
	code = 0;
out:
	db_close(db);
	config_release(&cfg);
	return code;
}
