/* Identity administration: `pbiport org create NAME`, `pbiport user add NAME --org ORG
 * [--role owner|member] [--team T]... [--email ADDRESS]`, `pbiport user email NAME ADDRESS|--clear`
 * (the address a first sign-in with Microsoft is matched by), `pbiport token create USER`.
 * Exit codes: 0 done, 2 bad input (usage, bad name, duplicate, unknown org/user), 1 otherwise. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "core/store/identity.h"
#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/util.h"

#define MAX_TEAMS 64

static int exit_code(int rc)
{
	return rc == PB_EINVAL || rc == PB_ECONFLICT || rc == PB_ENOTFOUND ? 2 : 1;
}

/* Opens PBIPORT_DB, which must be migrated to this binary's schema. */
static int open_db(const char *cmd, pb_config *cfg, pb_db **db)
{
	char err[PB_ERR_MAX];
	int rc = config_load(cfg, err);
	if (rc) {
		fprintf(stderr, "pbiport %s: %s\n", cmd, err);
		return 2;
	}
	if ((rc = db_open(cfg->db_path, false, db, err)) || (rc = db_check_schema(*db, cfg->sql_dir, err))) {
		fprintf(stderr, "pbiport %s: %s\n", cmd, err);
		db_close(*db);
		*db = NULL;
		config_release(cfg);
		return 1;
	}
	return 0;
}

/* Ends a command: prints out (the new id or token) or what failed, closes db and cfg. The
 * exit code. */
static int finish(const char *what, int rc, const char *err, const char *out, pb_db *db, pb_config *cfg)
{
	int code = 0;
	if (rc) {
		fprintf(stderr, "pbiport %s: %s\n", what, err);
		code = exit_code(rc);
	} else {
		printf("%s\n", out);
		fflush(stdout);
	}
	db_close(db);
	config_release(cfg);
	return code;
}

int cmd_org(int argc, char **argv)
{
	pb_config cfg;
	pb_db *db = NULL;
	char err[PB_ERR_MAX], id[PB_ID_BUF];
	if (argc != 3 || strcmp(argv[1], "create")) {
		fprintf(stderr, "usage: pbiport org create NAME\n");
		return 2;
	}
	int code = open_db("org", &cfg, &db);
	if (code)
		return code;
	int rc = identity_org_create(db, argv[2], id, err);
	return finish("org create", rc, err, id, db, &cfg);
}

static int user_usage(void)
{
	fprintf(stderr, "usage: pbiport user add NAME --org ORG [--role owner|member] [--team TEAM]... [--email ADDRESS]\n"
			"       pbiport user email NAME ADDRESS|--clear\n");
	return 2;
}

/* `pbiport user email NAME ADDRESS|--clear` */
static int user_email(int argc, char **argv)
{
	pb_config cfg;
	pb_db *db = NULL;
	char err[PB_ERR_MAX];
	if (argc != 4)
		return user_usage();
	const char *email = strcmp(argv[3], "--clear") ? argv[3] : NULL;
	int code = open_db("user", &cfg, &db);
	if (code)
		return code;
	int rc = identity_user_set_email(db, argv[2], email, err);
	return finish("user email", rc, err, email ? email : "(no e-mail)", db, &cfg);
}

int cmd_user(int argc, char **argv)
{
	pb_config cfg;
	pb_db *db = NULL;
	char err[PB_ERR_MAX], id[PB_ID_BUF];
	const char *org = NULL, *teams[MAX_TEAMS];
	size_t nteams = 0;
	const char *email = NULL;
	pb_role role = PB_ROLE_MEMBER;
	if (argc >= 2 && !strcmp(argv[1], "email"))
		return user_email(argc, argv);
	if (argc < 3 || strcmp(argv[1], "add"))
		return user_usage();
	for (int i = 3; i < argc; i++) {
		if (i + 1 >= argc)
			return user_usage();
		if (!strcmp(argv[i], "--org")) {
			org = argv[++i];
		} else if (!strcmp(argv[i], "--role")) {
			if (auth_role_parse(argv[++i], &role)) {
				fprintf(stderr, "pbiport user add: --role must be owner or member\n");
				return 2;
			}
		} else if (!strcmp(argv[i], "--team")) {
			if (nteams == MAX_TEAMS) {
				fprintf(stderr, "pbiport user add: more than %d teams\n", MAX_TEAMS);
				return 2;
			}
			teams[nteams++] = argv[++i];
		} else if (!strcmp(argv[i], "--email")) {
			email = argv[++i];
		} else {
			return user_usage();
		}
	}
	if (!org)
		return user_usage();
	int code = open_db("user", &cfg, &db);
	if (code)
		return code;
	/* the user and their e-mail are added together or not at all */
	int rc = db_begin(db, err);
	if (!rc && !(rc = identity_user_add(db, argv[2], org, role, teams, nteams, id, err)) && email)
		rc = identity_user_set_email(db, argv[2], email, err);
	if (!rc)
		rc = db_commit(db, err);
	else
		db_rollback(db);
	return finish("user add", rc, err, id, db, &cfg);
}

int cmd_token(int argc, char **argv)
{
	pb_config cfg;
	pb_db *db = NULL;
	char err[PB_ERR_MAX], token[PB_TOKEN_BUF];
	if (argc != 3 || strcmp(argv[1], "create")) {
		fprintf(stderr, "usage: pbiport token create USER\n");
		return 2;
	}
	int code = open_db("token", &cfg, &db);
	if (code)
		return code;
	int rc = identity_token_create(db, argv[2], token, err);
	code = finish("token create", rc, err, token, db, &cfg);   /* the only time the token is ever shown */
	OPENSSL_cleanse(token, sizeof token);
	return code;
}
