/* The identity store: organizations, users (role owner/member), teams and API tokens.
 * Owns the tables organizations, users, teams, team_members, api_tokens; no other
 * module writes them. Names are 1..PB_NAME_FIELD_MAX bytes of UTF-8 without control
 * characters. Every write runs in one BEGIN IMMEDIATE transaction.
 *
 * Errors: PB_EINVAL for bad input (a bad name), PB_ECONFLICT for a name taken, PB_ENOTFOUND
 * for a missing org/user (all the caller's mistake), PB_EIO/PB_ENOMEM otherwise. */
#ifndef PBIPORT_IDENTITY_H
#define PBIPORT_IDENTITY_H

#include <stddef.h>

#include "runtime/auth.h"
#include "runtime/db.h"

int identity_org_create(pb_db *db, const char *name, char id[PB_ID_BUF], char *err);

/* Adds user `name` to org `org_name` with role, and to each team in teams (created in
 * the org when missing). */
int identity_user_add(pb_db *db, const char *name, const char *org_name, pb_role role,
		      const char *const *teams, size_t nteams, char id[PB_ID_BUF], char *err);

/* A new API token for user_name. token is the secret: shown once, never stored or
 * logged (only its SHA-256 is kept). */
int identity_token_create(pb_db *db, const char *user_name, char token[PB_TOKEN_BUF], char *err);

/* A team of an organization. */
typedef struct pb_team {
	char id[PB_ID_BUF];
	char name[PB_NAME_FIELD_MAX + 1];
} pb_team;

/* The teams of org_id that user_id belongs to, or every team of the org when user_id is
 * NULL; ordered by name, at most PB_LIST_MAX_ITEMS. *out new (free()); NULL when *n is 0. */
int identity_teams(pb_db *db, const char *org_id, const char *user_id, pb_team **out, size_t *n, char *err);

/* The name of user_id in org_id (to show who did something). PB_ENOTFOUND when the org has
 * no such user. */
int identity_user_name(pb_db *db, const char *org_id, const char *user_id, char name[PB_NAME_FIELD_MAX + 1],
		       char *err);

/* The name of organization org_id (for the pages' header). PB_ENOTFOUND when there is none. */
int identity_org_name(pb_db *db, const char *org_id, char name[PB_NAME_FIELD_MAX + 1], char *err);

/* Lookups for runtime/auth (struct pb_auth_ops). */
int identity_user_by_name(pb_db *db, const char *name, pb_identity *who, char *err);
int identity_token_by_id(pb_db *db, const char *token_id, pb_identity *who,
			 char hash_hex[PB_TOKEN_HASH_HEX], char *err);

#endif
