/* Who is calling, decided here and nowhere else, in this order: an API token
 * (Authorization: Bearer <token>, passed through as HTTP_AUTHORIZATION), then REMOTE_USER set by
 * the web server, then pbiport's own session cookie (set by signing in with Microsoft,
 * core/flow/sso.h).
 *
 * Tokens look like "pbi_<32-hex id>_<64-hex secret>". Only SHA-256(token) is stored,
 * found by the id, and compared in constant time, so neither the lookup nor the
 * comparison leaks how much of a guess was right.
 *
 * Session cookie: "<secret>.<signature>", the secret 32 random bytes in base64url, the signature
 * an HMAC-SHA256 over it with APPLICATION_SECURITY_REMEMBERME_KEY (any key of the ring verifies),
 * so a forged or altered cookie is refused before the database is asked. Only SHA-256(secret)
 * is stored. A browser sends the cookie (like basic-auth credentials) by itself: state-changing
 * requests it identifies pass the cross-site check of runtime/page_csrf.h.
 *
 * runtime/ knows no tables: the lookups are functions the application supplies
 * (core/store/identity.c, core/store/sessions.c), passed in struct pb_auth_ops. */
#ifndef PBIPORT_AUTH_H
#define PBIPORT_AUTH_H

#include <stdbool.h>

#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/limits.h"

typedef enum pb_role {
	PB_ROLE_NONE = 0,    /* route: no identity needed */
	PB_ROLE_MEMBER = 1,  /* route: any user of an org; user: a member */
	PB_ROLE_OWNER = 2,   /* route: org owners only; user: an owner */
} pb_role;

typedef enum pb_auth_via {
	PB_VIA_NONE = 0,
	PB_VIA_TOKEN,          /* Authorization: Bearer <API token> */
	PB_VIA_REMOTE_USER,    /* the web server signed the person in */
	PB_VIA_SESSION,        /* pbiport's session cookie */
} pb_auth_via;

typedef struct pb_identity {
	bool known;                            /* false: anonymous */
	char user_id[PB_ID_BUF];
	char org_id[PB_ID_BUF];
	char user_name[PB_NAME_FIELD_MAX + 1];
	pb_role role;
	pb_auth_via via;                       /* how the caller was identified */
	char session_id[PB_ID_BUF];            /* PB_VIA_SESSION: the session's public id, else "" */
	bool session_renew;                    /* PB_VIA_SESSION: its last sighting should move to now */
	/* the organization's catalog version, read in the statement that identified the caller
	 * (sql/0018 and 0019: moved up by every write of what a product's answer or page shows);
	 * -1 when it was not read */
	int64_t catalog_version;
} pb_identity;

/* who's catalog version, -1 when no identity (none was read). */
static inline int64_t pb_identity_version(const pb_identity *who)
{
	return who->known ? who->catalog_version : -1;
}

#define PB_TOKEN_HASH_HEX 65                   /* 64 hex digits + NUL */
#define PB_TOKEN_BUF (4 + 32 + 1 + 64 + 1)     /* "pbi_" id "_" secret NUL */

#define PB_SESSION_COOKIE "pbiport_session"
#define PB_SESSION_COOKIE_BUF (PB_HMAC_B64URL_LEN + 1 + PB_HMAC_B64URL_LEN + 1)   /* secret "." sig NUL */
#define PB_SET_COOKIE_MAX 512                  /* one Set-Cookie header value */

struct pb_auth_ops {
	/* Fills *who for an existing user name; PB_ENOTFOUND when there is none. */
	int (*user_by_name)(pb_db *db, const char *name, pb_identity *who, char *err);
	/* Fills *who and the stored hash for a live token id; PB_ENOTFOUND otherwise. */
	int (*token_by_id)(pb_db *db, const char *token_id, pb_identity *who,
			   char hash_hex[PB_TOKEN_HASH_HEX], char *err);
	/* Fills *who (with session_id) for the session whose secret hashes to token_hash when it is
	 * live: not revoked, before its absolute end, seen within idle_s; sets who->session_renew
	 * when its last sighting is PB_SESSION_RENEW_S old or more. PB_ENOTFOUND saying which end
	 * it met otherwise. NULL: no sessions. */
	int (*session_by_hash)(pb_db *db, const char *token_hash, long long idle_s, pb_identity *who, char *err);
	/* Moves session_id's last sighting to now (sliding idle timeout). */
	int (*session_seen)(pb_db *db, const char *session_id, char *err);
};

struct pb_keyring;

/* What a request offers to identify itself; every string may be NULL (borrowed). */
typedef struct pb_auth_request {
	const char *remote_user;       /* REMOTE_USER */
	const char *authorization;     /* HTTP_AUTHORIZATION */
	const char *cookie;            /* HTTP_COOKIE */
	const struct pb_keyring *cookie_keys;   /* verify session cookies; NULL: none is accepted */
	long long idle_s;              /* a session unused this long has ended */
} pb_auth_request;

/* Identifies the caller: Bearer token, then REMOTE_USER, then the session cookie. PB_OK with
 * who->known and who->via set; PB_ENOTFOUND when no identity was offered or it is
 * unknown/invalid/expired (→ 401, err says why without echoing a secret; who->via is
 * PB_VIA_SESSION when it was a session cookie that failed, so the caller can drop it); other
 * pb_rc on database trouble. */
int auth_identify_request(pb_db *db, const struct pb_auth_ops *ops, const pb_auth_request *in, pb_identity *who,
			  char *err);
/* auth_identify_request with only REMOTE_USER and the Authorization header. */
int auth_identify(pb_db *db, const struct pb_auth_ops *ops, const char *remote_user,
		  const char *authorization, pb_identity *who, char *err);

/* A new session secret: the cookie value "<secret>.<signature>" (secret: never log it) and
 * SHA-256 of the secret as hex, which is what is stored. */
int auth_session_cookie_new(const struct pb_keyring *keys, char value[PB_SESSION_COOKIE_BUF],
			    char hash_hex[PB_TOKEN_HASH_HEX], char *err);
/* The stored hash for a cookie value whose signature verifies with keys; PB_ENOTFOUND for a
 * malformed or forged one. */
int auth_session_cookie_check(const struct pb_keyring *keys, const char *value, char hash_hex[PB_TOKEN_HASH_HEX],
			      char *err);
/* The value of cookie name in a Cookie request header (the first one), copied into out (size
 * bytes). PB_ENOTFOUND when absent or empty; PB_ELIMIT when longer than size - 1. */
int auth_cookie_get(const char *header, const char *name, char *out, size_t size);
/* A Set-Cookie header value: "name=value; Path=path; Max-Age=max_age; HttpOnly; SameSite=Lax"
 * plus "; Secure" when secure. max_age < 0 removes the cookie (empty value, Max-Age=0). Value and
 * path must be cookie-safe text (no ';', ',', space or control characters): PB_EINVAL. */
int auth_set_cookie(char out[PB_SET_COOKIE_MAX], const char *name, const char *value, const char *path,
		    long long max_age, bool secure, char *err);

/* A short description of a User-Agent header for a person to recognise a session by, e.g.
 * "Firefox on Linux", "Edge on Windows", "curl"; "unknown" when there is nothing to go on. */
void auth_user_agent_summary(const char *user_agent, char out[PB_USER_AGENT_MAX + 1]);

/* A new random token (token is secret: show once, never log), its id and hash. */
int auth_token_new(char token[PB_TOKEN_BUF], char id[PB_ID_BUF],
		   char hash_hex[PB_TOKEN_HASH_HEX], char *err);
/* The id of the Bearer token an Authorization header carries, as auth_identify_request reads it;
 * false when it carries none in our format. Checks nothing: only the token's lookup does. */
bool auth_bearer_token_id(const char *authorization, char id[PB_ID_BUF]);
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
