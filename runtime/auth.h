/* Who is calling: REMOTE_USER set by the web server, or an API token
 * (Authorization: Bearer <token>, passed through as HTTP_AUTHORIZATION).
 *
 * Tokens look like "pbi_<32-hex id>_<64-hex secret>". Only SHA-256(token) is stored,
 * found by the id, and compared in constant time, so neither the lookup nor the
 * comparison leaks how much of a guess was right.
 *
 * runtime/ knows no tables: the lookups are functions the application supplies
 * (core/store/identity.c), passed in struct pb_auth_ops. */
#ifndef PBIPORT_AUTH_H
#define PBIPORT_AUTH_H

#include <stdbool.h>

#include "runtime/db.h"
#include "runtime/limits.h"

typedef enum pb_role {
	PB_ROLE_NONE = 0,    /* route: no identity needed */
	PB_ROLE_MEMBER = 1,  /* route: any user of an org; user: a member */
	PB_ROLE_OWNER = 2,   /* route: org owners only; user: an owner */
} pb_role;

typedef struct pb_identity {
	bool known;                            /* false: anonymous */
	char user_id[PB_ID_BUF];
	char org_id[PB_ID_BUF];
	char user_name[PB_NAME_FIELD_MAX + 1];
	pb_role role;
} pb_identity;

#define PB_TOKEN_HASH_HEX 65                   /* 64 hex digits + NUL */
#define PB_TOKEN_BUF (4 + 32 + 1 + 64 + 1)     /* "pbi_" id "_" secret NUL */

struct pb_auth_ops {
	/* Fills *who for an existing user name; PB_ENOTFOUND when there is none. */
	int (*user_by_name)(pb_db *db, const char *name, pb_identity *who, char *err);
	/* Fills *who and the stored hash for a live token id; PB_ENOTFOUND otherwise. */
	int (*token_by_id)(pb_db *db, const char *token_id, pb_identity *who,
			   char hash_hex[PB_TOKEN_HASH_HEX], char *err);
};

/* Identifies the caller from REMOTE_USER / Authorization header values (either may
 * be NULL). PB_OK with who->known set; PB_ENOTFOUND when no identity was offered or
 * it is unknown/invalid (→ 401, err says why without echoing the secret); other
 * pb_rc on database trouble. */
int auth_identify(pb_db *db, const struct pb_auth_ops *ops, const char *remote_user,
		  const char *authorization, pb_identity *who, char *err);

/* A new random token (token is secret: show once, never log), its id and hash. */
int auth_token_new(char token[PB_TOKEN_BUF], char id[PB_ID_BUF],
		   char hash_hex[PB_TOKEN_HASH_HEX], char *err);
/* Extracts the id of a token in our format; PB_EINVAL if it is not one. */
int auth_token_id(const char *token, char id[PB_ID_BUF], char *err);
/* SHA-256 of the token text as lower-case hex. */
void auth_token_hash(const char *token, char hash_hex[PB_TOKEN_HASH_HEX]);
/* Constant-time equality of two NUL-terminated strings of the same expected length
 * (hash hex): time depends only on the length of a. */
bool auth_equal_ct(const char *a, const char *b);

const char *auth_role_name(pb_role role);        /* "owner", "member", "none" */
int auth_role_parse(const char *s, pb_role *out); /* PB_EINVAL for anything else */

#endif
