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

/* ---- signing in with Microsoft (core/flow/sso.h): e-mail, Entra ids, self-sign-up ---- */

#define PB_EMAIL_MAX 254
#define PB_ENTRA_ID_BUF 37          /* a GUID (36) + NUL */

/* An e-mail address as stored: trimmed, ASCII lower-cased, 3..PB_EMAIL_MAX bytes with one '@'
 * inside and no spaces or control characters, into out. PB_EINVAL otherwise. */
int identity_email_normalize(const char *in, char out[PB_EMAIL_MAX + 1], char *err);

/* Sets (or, with email NULL, clears) user_name's e-mail. PB_EINVAL for a malformed address or
 * one another user has; PB_ENOTFOUND for no such user. */
int identity_user_set_email(pb_db *db, const char *user_name, const char *email, char *err);

/* The user pinned to the Entra account (tenant_id, object_id); PB_ENOTFOUND when none. */
int identity_user_by_entra(pb_db *db, const char *tenant_id, const char *object_id, pb_identity *who, char *err);

/* The user whose e-mail, or whose name, equals one of addrs[0..n) (normalized addresses; NULL
 * entries skipped), for a first sign-in. *pinned_tenant receives the tenant the user is pinned
 * to ("" when not pinned). PB_ENOTFOUND when none; PB_ECONFLICT when they name more than one
 * user. */
int identity_user_by_email(pb_db *db, const char *const *addrs, size_t n, pb_identity *who,
			   char pinned_tenant[PB_ENTRA_ID_BUF], char *err);

/* Pins user_id to the Entra account (tenant_id, object_id), only while it is pinned to none
 * (PB_ECONFLICT otherwise, or when another user has that account), and gives it email when it
 * has no e-mail yet and no other user has that one (email may be NULL). */
int identity_user_pin_entra(pb_db *db, const char *user_id, const char *tenant_id, const char *object_id,
			    const char *email, char *err);

/* The organization whose people of Entra tenant tenant_id may sign themselves up; PB_ENOTFOUND
 * when none. */
int identity_org_by_signup_tenant(pb_db *db, const char *tenant_id, char org_id[PB_ID_BUF], char *err);

/* Adds a member named name (with email, may be NULL) to org_id, pinned to (tenant_id,
 * object_id), and fills *who. PB_ECONFLICT when the name or e-mail is taken. */
int identity_user_signup(pb_db *db, const char *org_id, const char *name, const char *email, const char *tenant_id,
			 const char *object_id, pb_identity *who, char *err);

/* The Entra tenant whose people may sign up into org_id: tenant_id receives it, or "" when
 * self-sign-up is off. */
int identity_org_signup_get(pb_db *db, const char *org_id, char tenant_id[PB_ENTRA_ID_BUF], char *err);
/* Turns self-sign-up on for tenant_id (a GUID), or off with tenant_id NULL. PB_EINVAL for a
 * malformed tenant id; PB_ECONFLICT when another organization allows that tenant already. */
int identity_org_signup_set(pb_db *db, const char *org_id, const char *tenant_id, char *err);

/* Fills *who for user_id; PB_ENOTFOUND when there is no such user. */
int identity_user_by_id(pb_db *db, const char *user_id, pb_identity *who, char *err);

/* Lookups for runtime/auth (struct pb_auth_ops). */
int identity_user_by_name(pb_db *db, const char *name, pb_identity *who, char *err);
int identity_token_by_id(pb_db *db, const char *token_id, pb_identity *who,
			 char hash_hex[PB_TOKEN_HASH_HEX], char *err);

#endif
